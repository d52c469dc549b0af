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

/// The options of one JAAS login-module entry:
/// `<class> required key="value" key=value ...;`.
pub fn parse_jaas_options(text: &str) -> Option<(String, BTreeMap<String, String>)> {
    let text = text.trim().trim_end_matches(';').trim();
    let (class, rest) = match text.split_once(char::is_whitespace) {
        Some((c, r)) => (c.to_string(), r.trim_start()),
        None => (text.to_string(), ""),
    };
    let mut rest = rest;
    for flag in ["required", "requisite", "sufficient", "optional"] {
        if let Some(r) = rest.strip_prefix(flag) {
            rest = r;
            break;
        }
    }
    let mut opts = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return None;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => val.push(chars.next()?),
                    c => val.push(c),
                }
            }
            if !closed {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        opts.insert(key, val);
    }
    Some((class, opts))
}

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
