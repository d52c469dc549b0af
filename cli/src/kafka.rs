//! What the Kafka-side commands (topic, produce, consume, cluster, offsets)
//! share: the `--bootstrap-server` and `--command-config` flags (TLS and
//! SASL settings as Kafka's tools read them) and turning them into a
//! connected client, and the console tools' topic argument.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use fjord_kafka::client::{Client, ClientConfig};
use fjord_kafka::security::{parse_properties, ClientSecurity};

/// `--bootstrap-server` as the Kafka tools spell it (`--broker-list` too).
#[derive(Debug, Clone, Args)]
pub struct Bootstrap {
    /// Broker(s) to bootstrap from: host:port[,host:port...]
    #[arg(
        long = "bootstrap-server",
        visible_alias = "broker-list",
        short = 'b',
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_server: String,

    /// Per-request timeout in milliseconds.
    #[arg(long = "request-timeout-ms", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// Client properties as Kafka's tools take them (`security.protocol`,
    /// `sasl.mechanism`, `sasl.jaas.config`, `ssl.ca.location`, ...).
    #[arg(long = "command-config")]
    pub command_config: Option<std::path::PathBuf>,
}

impl Bootstrap {
    /// The client settings: `--command-config`'s security keys (TLS, SASL).
    pub fn config(&self) -> anyhow::Result<ClientConfig> {
        let mut cfg = client_config(&self.bootstrap_server, self.command_config.as_deref())?;
        cfg.request_timeout = Duration::from_millis(self.request_timeout_ms.max(1));
        Ok(cfg)
    }

    /// Connect to the first reachable bootstrap broker.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        Client::connect(self.config()?)
            .await
            .with_context(|| format!("bootstrap {}", self.bootstrap_server))
    }
}

/// Client settings for `bootstrap` with the security keys of a
/// `--command-config` properties file (`security.protocol`, `sasl.*`, `ssl.*`).
pub fn client_config(
    bootstrap: &str,
    command_config: Option<&std::path::Path>,
) -> anyhow::Result<ClientConfig> {
    let mut cfg = ClientConfig::new(bootstrap);
    if let Some(p) = command_config {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("--command-config {}", p.display()))?;
        cfg.security = ClientSecurity::from_map(&parse_properties(&text))
            .map_err(|e| anyhow::anyhow!("--command-config {}: {e}", p.display()))?;
    }
    Ok(cfg)
}

/// The topic of `fjord produce` / `fjord consume`: positional, or `--topic`
/// as kafka-console-producer and -consumer spell it.
#[derive(Debug, Clone, Args)]
pub struct TopicArg {
    /// Topic name.
    #[arg(required_unless_present = "topic_flag")]
    topic: Option<String>,
    /// Topic (kafka-console-* spelling).
    #[arg(long = "topic", short = 't', conflicts_with = "topic")]
    topic_flag: Option<String>,
}

impl TopicArg {
    /// The topic, however it was given.
    pub fn name(&self) -> anyhow::Result<String> {
        self.topic
            .clone()
            .or_else(|| self.topic_flag.clone())
            .ok_or_else(|| anyhow::anyhow!("a topic is required"))
    }
}

/// Bytes as text for people: UTF-8 where it is, lossy otherwise.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parse `k=v` (a `--config` value).
pub fn key_value(s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => anyhow::bail!("expected key=value, got '{s}'"),
    }
}
