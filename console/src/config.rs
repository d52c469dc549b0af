//! `console.properties`: the console's keys (`listeners`, `bootstrap.servers`,
//! `zookeeper.connect`, `schema.registry.url`, `connect.url`,
//! `console.read.only`, `console.request.timeout.ms`,
//! `console.sample.interval.ms`), parsed and checked
//! before anything starts so a bad file exits naming the key.

use std::collections::BTreeMap;
use std::time::Duration;

/// A key that is missing or wrong, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {msg}")]
pub struct ConfigError {
    pub key: String,
    pub msg: String,
}

fn bad(key: &str, msg: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        msg: msg.into(),
    }
}

/// The console's settings.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// `host:port` the HTTP listener binds (from `listeners=http://host:port`).
    pub listen: String,
    /// Kafka bootstrap brokers, `host:port[,host:port]`.
    pub bootstrap: String,
    /// The coordinator (`host:port[/chroot]`); the znode pages need it.
    pub zookeeper: Option<String>,
    /// Optional services: their pages appear only when set.
    pub schema_registry: Option<String>,
    pub connect: Option<String>,
    /// Hide every state-changing form and answer 403 to every POST.
    pub read_only: bool,
    /// How long one page may wait on the cluster before it says so.
    pub timeout: Duration,
    /// How often the console samples end offsets, committed offsets and
    /// lag for its charts.
    pub sample_interval: Duration,
}

/// Java-properties lines: `key=value` or `key: value`, `#`/`!` comments.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let at = l.find(['=', ':'])?;
            Some((l[..at].trim().to_string(), l[at + 1..].trim().to_string()))
        })
        .collect()
}

const KNOWN: &[&str] = &[
    "listeners",
    "bootstrap.servers",
    "zookeeper.connect",
    "schema.registry.url",
    "connect.url",
    "console.read.only",
    "console.request.timeout.ms",
    "console.sample.interval.ms",
];

/// A positive number of milliseconds under `key`, or `default`.
fn millis(
    m: &BTreeMap<String, String>,
    key: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match m.get(key) {
        None => Ok(default),
        Some(s) => match s.parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
            _ => Err(bad(key, "expected a positive number of ms")),
        },
    }
}

impl ConsoleConfig {
    /// Settings from parsed properties; unknown keys are returned for a warning.
    pub fn from_map(m: &BTreeMap<String, String>) -> Result<(Self, Vec<String>), ConfigError> {
        let listeners = m
            .get("listeners")
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1:9021");
        let listen = listeners
            .strip_prefix("http://")
            .ok_or_else(|| bad("listeners", "expected http://host:port"))?
            .trim_end_matches('/')
            .to_string();
        if !listen.contains(':') {
            return Err(bad("listeners", "expected http://host:port"));
        }
        let bootstrap = m
            .get("bootstrap.servers")
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| "127.0.0.1:9092".to_string());
        let opt = |k: &str| m.get(k).filter(|s| !s.is_empty()).cloned();
        let read_only = match m.get("console.read.only").map(|s| s.to_ascii_lowercase()) {
            None => false,
            Some(s) if s == "true" => true,
            Some(s) if s == "false" => false,
            Some(s) => {
                return Err(bad(
                    "console.read.only",
                    format!("expected true or false, not {s}"),
                ))
            }
        };
        let timeout = millis(m, "console.request.timeout.ms", Duration::from_secs(5))?;
        let sample_interval = millis(m, "console.sample.interval.ms", Duration::from_secs(5))?;
        let unknown = m
            .keys()
            .filter(|k| !KNOWN.contains(&k.as_str()))
            .cloned()
            .collect();
        Ok((
            ConsoleConfig {
                listen,
                bootstrap,
                zookeeper: opt("zookeeper.connect"),
                schema_registry: opt("schema.registry.url"),
                connect: opt("connect.url"),
                read_only,
                timeout,
                sample_interval,
            },
            unknown,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_defaults() {
        let m = parse_properties(
            "# c\nlisteners=http://127.0.0.1:9999\nbootstrap.servers = a:1,b:2\nconsole.read.only=TRUE\nfoo=bar\n",
        );
        let (c, unknown) = ConsoleConfig::from_map(&m).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert_eq!(c.bootstrap, "a:1,b:2");
        assert!(c.read_only);
        assert!(c.zookeeper.is_none());
        assert_eq!(unknown, vec!["foo".to_string()]);
        let (d, _) = ConsoleConfig::from_map(&BTreeMap::new()).unwrap();
        assert_eq!(d.listen, "127.0.0.1:9021");
        assert!(!d.read_only);
    }

    #[test]
    fn bad_values_name_the_key() {
        let m = parse_properties("console.read.only=maybe");
        assert_eq!(
            ConsoleConfig::from_map(&m).unwrap_err().key,
            "console.read.only"
        );
        let m = parse_properties("listeners=PLAINTEXT://x:1");
        assert_eq!(ConsoleConfig::from_map(&m).unwrap_err().key, "listeners");
        let m = parse_properties("console.sample.interval.ms=0");
        assert_eq!(
            ConsoleConfig::from_map(&m).unwrap_err().key,
            "console.sample.interval.ms"
        );
    }
}
