//! What the Kafka-side commands (topic, produce, consume, cluster, offsets)
//! share: the `--bootstrap-server` flag and turning it into a connected client.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use fjord_broker::client::{Client, ClientConfig};

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
}

impl Bootstrap {
    /// Connect to the first reachable bootstrap broker.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        let mut cfg = ClientConfig::new(&self.bootstrap_server);
        cfg.request_timeout = Duration::from_millis(self.request_timeout_ms.max(1));
        Client::connect(cfg)
            .await
            .with_context(|| format!("bootstrap {}", self.bootstrap_server))
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
