//! The client security settings read from Kafka properties, before any
//! connection exists: `security.protocol`, the SASL mechanism and user
//! (`sasl.jaas.config`, or librdkafka's `sasl.username`/`sasl.password`),
//! and the Java properties syntax of a `--command-config` file. The TLS
//! config is `tls`'s; `ClientSecurity` (in the module root) puts the two
//! together.

use std::collections::BTreeMap;

use super::jaas;
use super::scram::ScramMechanism;

/// Lookup of one setting by its Kafka name.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

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
