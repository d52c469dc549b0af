//! JAAS login-module entries as Kafka's `sasl.jaas.config` values spell
//! them (`<class> required key="value" key=value;`): parsed for the broker's
//! PLAIN user lists and for the client's `username`/`password`.

use std::collections::BTreeMap;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let (c, o) = parse_jaas_options(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="a b" password=pw;"#,
        )
        .unwrap();
        assert_eq!(c, "org.apache.kafka.common.security.scram.ScramLoginModule");
        assert_eq!(o.get("username").map(String::as_str), Some("a b"));
        assert_eq!(o.get("password").map(String::as_str), Some("pw"));
        assert!(parse_jaas_options("X required =x;").is_none());
    }
}
