//! Operations endpoints (`metrics.listeners`): one HTTP listener serving
//! Prometheus metrics and health checks. The top layer of the broker, beside
//! `server`: it reads the broker's handles (`broker::Broker`) and the
//! counters in `metrics`, and nothing below imports it.
//!
//! * `http` — the hyper listener and its routes (`/metrics`,
//!   `/metrics/cluster`, `/health`, `/ready`);
//! * `broker_metrics` — `/metrics`: this broker's JMX-exporter-named metrics
//!   and the process metrics;
//! * `cluster_metrics` — `/metrics/cluster`: kafka_exporter's cluster-wide
//!   names, from the metadata cache, the local logs and committed offsets,
//!   asking other brokers (`remote`) for what only they know;
//! * `remote` — ListOffsets / ListGroups / DescribeGroups to other brokers;
//! * `health` — the readiness rule of `/ready`.
//!
//! Children never reference this file, only their siblings.

pub mod broker_metrics;
pub mod cluster_metrics;
pub mod health;
pub mod http;
pub mod remote;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::broker::Broker;

/// Serve the endpoints on `listener` (bound by the caller before the broker
/// opened its logs, so a taken port fails the start cleanly) until the
/// broker shuts down.
pub fn start(listener: TcpListener, b: Arc<Broker>) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics and health endpoints listening");
    }
    let stop = b.shutdown_signal();
    tokio::spawn(http::serve(listener, b, stop));
}
