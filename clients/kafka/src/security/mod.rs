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
//! `stream` (a plain or TLS socket behind one type), `sasl` (the tokens of
//! the client's SASL exchange, which `client::conn` carries), `settings`
//! (protocol, mechanism and user from the properties).

pub mod jaas;
pub(crate) mod sasl;
pub mod scram;
mod settings;
mod stream;
mod tls;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use settings::{
    parse_properties, sasl_credentials, Lookup, Mechanism, Protocol, SaslCredentials,
};
pub use stream::Stream;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::scram::ScramMechanism;

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
