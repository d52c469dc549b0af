//! Java `.properties` parsing and the worker's keys (Kafka Connect's names), plus
//! the typed getters every connector uses so that a bad value is reported the same
//! way everywhere: the key, the file, and why.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

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

/// The worker's own keys (Kafka's names). Unknown keys are kept in `all` and ignored,
/// as Kafka only warns about them; `plugin.path` is accepted: the connectors are built in.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub bootstrap_servers: String,
    pub group_id: Option<String>,
    pub key_converter: ConfigMap,
    pub value_converter: ConfigMap,
    /// host:port to bind the REST listener on (from `listeners`).
    pub rest_addr: String,
    pub offset_flush_interval: Duration,
    pub offset_storage_file: Option<String>,
    pub shutdown_timeout: Duration,
    /// Distributed mode: how long a dead worker keeps its tasks (its coordinator
    /// session's timeout).
    pub session_timeout: Duration,
    /// Every key, so `producer.*`/`consumer.*` overrides can reach the clients.
    pub all: ConfigMap,
}

impl WorkerConfig {
    pub fn from_map(m: ConfigMap) -> Result<Self, ConfigError> {
        let bootstrap_servers = m
            .get("bootstrap.servers")
            .cloned()
            .unwrap_or_else(|| "localhost:9092".into());
        let key_converter = converter_section(&m, "key.converter", true)?;
        let value_converter = converter_section(&m, "value.converter", true)?;
        let listeners = m
            .get("listeners")
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:8083".into());
        let first = listeners.split(',').next().unwrap_or("").trim().to_string();
        let rest_addr = match first.strip_prefix("http://") {
            Some(a) if !a.is_empty() => normalise_host(a),
            _ => {
                return Err(ConfigError::new(
                    "listeners",
                    format!("Invalid value {listeners}: expected http://host:port (https listeners are not supported yet)"),
                ))
            }
        };
        let offset_flush_interval =
            Duration::from_millis(int_at_least(&m, "offset.flush.interval.ms", 60_000, 1)? as u64);
        let shutdown_timeout =
            Duration::from_millis(
                int_at_least(&m, "tasks.shutdown.graceful.timeout.ms", 5_000, 0)? as u64,
            );
        let session_timeout =
            Duration::from_millis(int_at_least(&m, "session.timeout.ms", 10_000, 1_000)? as u64);
        if let Some(v) = m.get("plugin.path") {
            tracing::info!(plugin_path = %v, "plugin.path ignored: the connectors are built into fjord-connect");
        }
        Ok(WorkerConfig {
            bootstrap_servers,
            group_id: m.get("group.id").cloned(),
            key_converter,
            value_converter,
            rest_addr,
            offset_flush_interval,
            offset_storage_file: m.get("offset.storage.file.filename").cloned(),
            shutdown_timeout,
            session_timeout,
            all: m,
        })
    }

    /// `producer.`/`consumer.`/`admin.` prefixed overrides for a client.
    pub fn client_overrides(&self, prefix: &str) -> Vec<(String, String)> {
        self.all
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|s| (s.to_string(), v.clone())))
            .collect()
    }
}

fn normalise_host(a: &str) -> String {
    let a = a.trim_end_matches('/');
    match a.rsplit_once(':') {
        Some(("", port)) | Some(("0.0.0.0", port)) if port.parse::<u16>().is_ok() => {
            format!("0.0.0.0:{port}")
        }
        Some((host, port)) if port.parse::<u16>().is_ok() => {
            let host = if host == "localhost" {
                "127.0.0.1"
            } else {
                host
            };
            format!("{host}:{port}")
        }
        _ => format!("{a}:8083"),
    }
}

/// The converter class under `prefix` and its `prefix.`-keys (the class's own settings),
/// e.g. `value.converter=...JsonConverter` and `value.converter.schemas.enable=false`.
/// `required` says whether the class must be there (worker) or may be absent (connector).
pub fn converter_section(
    m: &ConfigMap,
    prefix: &str,
    required_class: bool,
) -> Result<ConfigMap, ConfigError> {
    let mut out = ConfigMap::new();
    match m.get(prefix) {
        Some(class) => {
            out.insert("class".into(), class.trim().to_string());
        }
        None if required_class => {
            return Err(ConfigError::new(
                prefix,
                "Missing required configuration with no default value",
            ))
        }
        None => return Ok(out),
    }
    let dotted = format!("{prefix}.");
    for (k, v) in m {
        if let Some(sub) = k.strip_prefix(&dotted) {
            out.insert(sub.to_string(), v.clone());
        }
    }
    crate::converters::Converter::from_config(prefix, &out)?;
    Ok(out)
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

    #[test]
    fn worker_listeners_and_converters() {
        let m = parse_properties(
            "bootstrap.servers=127.0.0.1:9092\nkey.converter=org.apache.kafka.connect.storage.StringConverter\nvalue.converter=org.apache.kafka.connect.json.JsonConverter\nvalue.converter.schemas.enable=false\nlisteners=http://localhost:18083\n",
        );
        let w = WorkerConfig::from_map(m).unwrap();
        assert_eq!(w.rest_addr, "127.0.0.1:18083");
        assert_eq!(w.value_converter["schemas.enable"], "false");
        let bad = parse_properties("key.converter=com.example.Nope\nvalue.converter=org.apache.kafka.connect.storage.StringConverter\n");
        assert_eq!(
            WorkerConfig::from_map(bad).unwrap_err().key,
            "key.converter"
        );
    }
}
