//! The Schema Registry every broker serves when `schema.registry.listeners`
//! is set: Confluent's REST API (`http`), its semantics (`service`), the
//! state in the coordinator under `/schema_registry` kept in one watch-fed
//! cache per broker (`store`, records in `model`), and Confluent's error
//! answers (`error`), and the produce path's schema-id check (`validation`). Schema parsing and compatibility live in the
//! `fjord-schema` crate, which the CLI shares.

pub mod error;
pub mod http;
pub mod model;
pub mod service;
pub mod store;
pub mod validation;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use fjord_zk::client::ZkClient;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use service::Registry;

/// Bind the listener and start serving: on the broker's coordinator sessions,
/// or (standalone) on `<log.dirs>/schema-registry.json`.
pub async fn start(
    addr: &str,
    sessions: Option<watch::Receiver<ZkClient>>,
    log_dir: &Path,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<Arc<Registry>> {
    let listener = TcpListener::bind(addr).await?;
    let store = match sessions {
        Some(s) => store::Store::start_zk(s, shutdown.clone()),
        None => store::Store::start_memory(Some(log_dir.join("schema-registry.json"))),
    };
    let reg = Arc::new(Registry::new(store));
    tracing::info!(%addr, "schema registry listening");
    tokio::spawn(http::serve(listener, reg.clone(), shutdown));
    Ok(reg)
}
