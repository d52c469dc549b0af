//! The worker's own configuration (worker.properties, Kafka's key names): bootstrap
//! servers, the key and value converters (checked by building them), the REST listener,
//! offset flushing and shutdown timeouts. Apart from `config` (the property-file
//! primitives) because it depends on the converters, which depend on `config`.

use std::time::Duration;

use crate::config::{int_at_least, ConfigError, ConfigMap};
use crate::converters::section as converter_section;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_properties;

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
