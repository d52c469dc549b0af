//! Java `.properties` parsing and the typed getters every connector (and the worker's
//! own keys, `worker_config.rs`) uses, so that a bad value is reported the same way
//! everywhere: the key, the file, and why.

use std::collections::BTreeMap;
use std::path::Path;

/// A connector's or worker's configuration: key → value, as Connect keeps it.
pub type ConfigMap = BTreeMap<String, String>;

/// A configuration problem, always naming the key (and the file when there is one).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("{}{key}: {message}", file.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct ConfigError {
    pub file: Option<String>,
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            key: key.to_string(),
            message: message.into(),
        }
    }

    pub fn in_file(mut self, file: &Path) -> Self {
        self.file = Some(file.display().to_string());
        self
    }
}

/// Parse `.properties` text: `key=value`, `key:value` or `key value`, `#`/`!` comments,
/// backslash line continuations, and the usual escapes (`\n`, `\t`, `\\`, `\=`, `\:`).
pub fn parse_properties(text: &str) -> ConfigMap {
    let mut out = ConfigMap::new();
    let mut logical = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if logical.is_empty()
            && (trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!'))
        {
            continue;
        }
        logical.push_str(trimmed);
        // An odd number of trailing backslashes continues the line.
        let trailing = logical.chars().rev().take_while(|c| *c == '\\').count();
        if trailing % 2 == 1 {
            logical.pop();
            if lines.clone().next().is_some() {
                continue;
            }
        }
        let (k, v) = split_entry(&logical);
        out.insert(unescape(&k), unescape(&v));
        logical.clear();
    }
    out
}

fn split_entry(line: &str) -> (String, String) {
    let mut key = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                key.push('\\');
                if let Some(n) = chars.next() {
                    key.push(n);
                }
            }
            '=' | ':' => break,
            c if c.is_whitespace() => {
                // `key value` or `key = value`: skip blanks and one separator.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|c| *c == '=' || *c == ':') {
                    chars.next();
                }
                break;
            }
            c => key.push(c),
        }
    }
    let rest: String = chars.collect();
    (key, rest.trim_start().to_string())
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => {}
        }
    }
    out
}

/// Read and parse a properties file.
pub fn load_properties(path: &Path) -> Result<ConfigMap, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: Some(path.display().to_string()),
        key: "(file)".into(),
        message: format!("cannot read: {e}"),
    })?;
    Ok(parse_properties(&text))
}

/// Required string value.
pub fn required<'a>(m: &'a ConfigMap, key: &str) -> Result<&'a str, ConfigError> {
    match m.get(key).map(|s| s.trim()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ConfigError::new(
            key,
            "Missing required configuration with no default value",
        )),
    }
}

/// Optional integer with a default; a non-integer is an error naming the key.
pub fn int(m: &ConfigMap, key: &str, default: i64) -> Result<i64, ConfigError> {
    match m.get(key).map(|s| s.trim()) {
        None | Some("") => Ok(default),
        Some(v) => v.parse::<i64>().map_err(|_| {
            ConfigError::new(
                key,
                format!("Invalid value {v} for configuration {key}: Not a number of type LONG"),
            )
        }),
    }
}

/// Integer that must be at least `min`.
pub fn int_at_least(m: &ConfigMap, key: &str, default: i64, min: i64) -> Result<i64, ConfigError> {
    let v = int(m, key, default)?;
    if v < min {
        return Err(ConfigError::new(
            key,
            format!("Invalid value {v} for configuration {key}: Value must be at least {min}"),
        ));
    }
    Ok(v)
}

/// Optional boolean with a default (`true`/`false`, any case).
pub fn boolean(m: &ConfigMap, key: &str, default: bool) -> Result<bool, ConfigError> {
    match m.get(key).map(|s| s.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v.is_empty() => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(ConfigError::new(key, format!("Invalid value {v} for configuration {key}: Expected value to be either true or false"))),
    }
}

/// One of a fixed set of values.
pub fn one_of<'a>(
    m: &'a ConfigMap,
    key: &str,
    default: &'a str,
    allowed: &[&str],
) -> Result<&'a str, ConfigError> {
    let v = m
        .get(key)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .unwrap_or(default);
    if allowed.contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError::new(
            key,
            format!(
                "Invalid value {v} for configuration {key}: String must be one of: {}",
                allowed.join(", ")
            ),
        ))
    }
}

/// A comma-separated list (blank entries dropped).
pub fn list(m: &ConfigMap, key: &str) -> Vec<String> {
    m.get(key)
        .map(|s| {
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_java_properties() {
        let m = parse_properties(
            "# comment\n! also\nname = s3-sink\nflush.size:1000\ntopics  a,b\nlong=one\\\n   two\nesc=a\\=b\\tc\n\n",
        );
        assert_eq!(m["name"], "s3-sink");
        assert_eq!(m["flush.size"], "1000");
        assert_eq!(m["topics"], "a,b");
        assert_eq!(m["long"], "onetwo");
        assert_eq!(m["esc"], "a=b\tc");
        assert_eq!(m.len(), 5);
    }

    #[test]
    fn typed_getters_name_the_key() {
        let m = parse_properties("flush.size=ten\nenable=maybe\n");
        let e = int(&m, "flush.size", 1).unwrap_err();
        assert_eq!(e.key, "flush.size");
        assert!(e.message.contains("ten"));
        assert_eq!(boolean(&m, "enable", true).unwrap_err().key, "enable");
        assert_eq!(required(&m, "topics").unwrap_err().key, "topics");
        assert_eq!(int(&m, "missing", 7).unwrap(), 7);
    }
}
