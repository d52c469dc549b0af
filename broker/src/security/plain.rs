//! SASL/PLAIN (RFC 4616) with Kafka's user list: the one client message
//! `authzid NUL authcid NUL passwd`, checked against the `user_<name>="..."`
//! options of a `PlainLoginModule` JAAS entry (`listener.name.<l>.plain.sasl.jaas.config`
//! or `sasl.jaas.config`), as Kafka's PlainServerCallbackHandler does.

use std::collections::BTreeMap;

use super::scram::constant_time_eq;

/// The parts of a PLAIN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainMessage {
    pub authzid: String,
    pub username: String,
    pub password: String,
}

/// Parse `authzid NUL authcid NUL passwd`; None for anything else.
pub fn parse_plain(msg: &[u8]) -> Option<PlainMessage> {
    let s = std::str::from_utf8(msg).ok()?;
    let mut it = s.split('\0');
    let (authzid, username, password) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || username.is_empty() || password.is_empty() {
        return None;
    }
    Some(PlainMessage {
        authzid: authzid.to_string(),
        username: username.to_string(),
        password: password.to_string(),
    })
}

pub use fjord_kafka::security::jaas::parse_jaas_options;

/// The PLAIN users of a JAAS entry (`user_alice="secret"` → alice).
#[derive(Debug, Clone, Default)]
pub struct PlainUsers(BTreeMap<String, String>);

impl PlainUsers {
    pub fn from_jaas(text: &str) -> Option<PlainUsers> {
        let (_, opts) = parse_jaas_options(text)?;
        Some(PlainUsers(
            opts.into_iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v)))
                .collect(),
        ))
    }
    /// Whether `password` is `user`'s (compared in constant time).
    pub fn check(&self, user: &str, password: &str) -> bool {
        match self.0.get(user) {
            Some(p) => constant_time_eq(p.as_bytes(), password.as_bytes()),
            None => {
                // Same work for an unknown user as for a wrong password.
                let _ = constant_time_eq(password.as_bytes(), password.as_bytes());
                false
            }
        }
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages() {
        assert_eq!(
            parse_plain(b"\0alice\0pw"),
            Some(PlainMessage {
                authzid: "".into(),
                username: "alice".into(),
                password: "pw".into()
            })
        );
        assert_eq!(parse_plain(b"alice\0pw"), None);
        assert_eq!(parse_plain(b"\0\0pw"), None);
        assert_eq!(parse_plain(b"\0a\0b\0c"), None);
        assert_eq!(parse_plain(b"\xff\0a\0b"), None);
    }

    #[test]
    fn jaas_users() {
        let u = PlainUsers::from_jaas(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="al\"ice";"#,
        )
        .unwrap();
        assert_eq!(u.len(), 2);
        assert!(u.check("alice", "al\"ice"));
        assert!(!u.check("alice", "alice"));
        assert!(!u.check("bob", "x"));
        assert!(PlainUsers::from_jaas(r#"X required user_a="unterminated"#).is_none());
    }
}
