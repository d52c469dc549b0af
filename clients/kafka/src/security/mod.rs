//! Connection security of fjord-kafka's client, from Kafka client settings
//! (the `--command-config` file of Fjord's tools, and the broker's
//! inter-broker settings): `security.protocol` (PLAINTEXT, SSL,
//! SASL_PLAINTEXT, SASL_SSL); TLS on rustls/ring with the truststore and the
//! optional client keystore read by fjord-tls (PEM or PKCS12; librdkafka's
//! `ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location` too) and
//! `ssl.endpoint.identification.algorithm` (`https`, the default, checks the
//! broker's name; empty checks only the chain); SASL PLAIN and
//! SCRAM-SHA-256/512 with `sasl.mechanism` and the credentials of
//! `sasl.jaas.config` (`username="" password=""`) or librdkafka's
//! `sasl.username` / `sasl.password`.
//!
//! Files: `jaas` (JAAS option parsing), `scram` (the SCRAM codec, shared
//! with the broker's server side), `tls` (the rustls client config),
//! `stream` (a plain or TLS socket behind one type), `sasl` (the client's
//! SaslHandshake/SaslAuthenticate exchange).

pub mod jaas;
pub(crate) mod sasl;
pub mod scram;
mod stream;
mod tls;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use stream::Stream;

use scram::ScramMechanism;

/// `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl Protocol {
    /// Kafka's spelling, case-insensitive.
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(Protocol::Plaintext),
            "SSL" => Some(Protocol::Ssl),
            "SASL_PLAINTEXT" => Some(Protocol::SaslPlaintext),
            "SASL_SSL" => Some(Protocol::SaslSsl),
            _ => None,
        }
    }
    pub fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }
    pub fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

/// A SASL mechanism the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

impl Mechanism {
    /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`.
    pub fn parse(s: &str) -> Option<Mechanism> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Mechanism::Plain),
            o => ScramMechanism::parse(o).map(Mechanism::Scram),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
        }
    }
}

/// Who the client authenticates as.
#[derive(Clone)]
pub struct SaslCredentials {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Everything a connection needs before its first request.
#[derive(Clone)]
pub struct ClientSecurity {
    pub protocol: Protocol,
    pub sasl: Option<SaslCredentials>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for ClientSecurity {
    fn default() -> Self {
        ClientSecurity {
            protocol: Protocol::Plaintext,
            sasl: None,
            tls: None,
        }
    }
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("protocol", &self.protocol)
            .field("sasl", &self.sasl)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Lookup of one setting by its Kafka name.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl ClientSecurity {
    /// Plaintext, no SASL.
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// The TLS config, when the protocol uses TLS.
    pub fn tls_config(&self) -> Option<&Arc<rustls::ClientConfig>> {
        self.tls.as_ref()
    }

    /// From Kafka client settings; an error names the setting.
    pub fn from_props(get: Lookup<'_>) -> Result<ClientSecurity, String> {
        let protocol = match get("security.protocol") {
            Some(p) => Protocol::parse(&p).ok_or_else(|| {
                format!(
                    "security.protocol={p}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                )
            })?,
            None => Protocol::Plaintext,
        };
        let tls = if protocol.tls() {
            Some(Arc::new(tls::client_config(get)?))
        } else {
            None
        };
        let sasl = if protocol.sasl() {
            Some(sasl_credentials(get)?)
        } else {
            None
        };
        Ok(ClientSecurity {
            protocol,
            sasl,
            tls,
        })
    }

    /// From a map of settings.
    pub fn from_map(m: &BTreeMap<String, String>) -> Result<ClientSecurity, String> {
        Self::from_props(&|k| m.get(k).map(|v| v.trim().to_string()))
    }
}

/// `sasl.mechanism` (default GSSAPI in Kafka: refused here, so it must be
/// set) and the user from `sasl.jaas.config` or `sasl.username`/`sasl.password`.
pub fn sasl_credentials(get: Lookup<'_>) -> Result<SaslCredentials, String> {
    let mech_name = get("sasl.mechanism")
        .or_else(|| get("sasl.mechanisms"))
        .unwrap_or_else(|| "GSSAPI".into());
    let mechanism = Mechanism::parse(&mech_name).ok_or_else(|| {
        format!("sasl.mechanism={mech_name} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")
    })?;
    let (mut user, mut pass) = (get("sasl.username"), get("sasl.password"));
    if let Some(j) = get("sasl.jaas.config") {
        let (_, opts) = jaas::parse_jaas_options(&j)
            .ok_or("sasl.jaas.config does not parse (expected `<LoginModule> required username=\"..\" password=\"..\";`)")?;
        user = opts.get("username").cloned().or(user);
        pass = opts.get("password").cloned().or(pass);
    }
    match (user, pass) {
        (Some(username), Some(password)) if !username.is_empty() => Ok(SaslCredentials {
            mechanism,
            username,
            password,
        }),
        _ => Err(format!(
            "SASL needs a user: sasl.jaas.config with username and password, or sasl.username and sasl.password ({})",
            mechanism.name()
        )),
    }
}

/// Parse Java properties text (`key=value` or `key: value`, `#`/`!`
/// comments, trailing `\` continuations) into a map.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if pending.is_empty() && (t.is_empty() || t.starts_with('#') || t.starts_with('!')) {
            continue;
        }
        if let Some(cont) = t.strip_suffix('\\') {
            pending.push_str(cont);
            continue;
        }
        pending.push_str(t);
        let l = std::mem::take(&mut pending);
        let split = l.find(['=', ':']);
        let (k, v) = match split {
            Some(i) => (&l[..i], &l[i + 1..]),
            None => (l.as_str(), ""),
        };
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        let m = parse_properties(
            "# c\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism: SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n  username=\"alice\" password=\"a=b\";\n",
        );
        let s = ClientSecurity::from_map(&m).unwrap();
        assert_eq!(s.protocol, Protocol::SaslPlaintext);
        let c = s.sasl.unwrap();
        assert_eq!(c.mechanism, Mechanism::Scram(ScramMechanism::Sha512));
        assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "a=b"));
        let m = parse_properties(
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=u\nsasl.password=p\n",
        );
        // SASL_SSL without a CA file: the system roots, or an error naming ssl.ca.location.
        match ClientSecurity::from_map(&m) {
            Ok(s) => assert_eq!(s.sasl.unwrap().username, "u"),
            Err(e) => assert!(e.contains("ssl.ca.location"), "{e}"),
        }
        for bad in [
            "security.protocol=SSLX\n",
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=GSSAPI\nsasl.username=a\nsasl.password=b\n",
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n",
            "security.protocol=SSL\nssl.ca.location=/nonexistent/ca.pem\n",
            "security.protocol=SSL\nssl.truststore.type=JKS\nssl.truststore.location=/x.jks\n",
        ] {
            assert!(ClientSecurity::from_map(&parse_properties(bad)).is_err(), "{bad}");
        }
    }
}
