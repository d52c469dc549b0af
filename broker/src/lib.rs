//! fjord-broker: the Kafka half of Fjord (see DESIGN.md → Broker).
//!
//! Modules: `config` (server.properties), `codec` (wire glue over the
//! kafka-protocol crate), `server` (listener and connections), `handlers` (API
//! handlers), `batch` (record batch headers), `log` (partition log on RocksDB),
//! `metadata` (watch-fed cache), `cluster` + `zk` (cluster state), `broker`
//! (shared state and background tasks).

pub mod alloc_guard;
pub mod batch;
pub mod broker;
pub mod client;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod group;
pub mod handlers;
pub mod log;
pub mod metadata;
pub mod replica;
pub mod server;
pub mod zk;

pub use broker::Broker;
pub use config::BrokerConfig;
