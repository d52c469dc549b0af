//! The library's error type: what a topology, a store or the Kafka runtime can fail with.

use thiserror::Error;

/// Everything fjord-streams reports to its caller.
#[derive(Debug, Error)]
pub enum Error {
    /// Bytes that a serde could not turn back into a value (a malformed record).
    #[error("deserialization failed: {0}")]
    Serde(String),
    /// RocksDB (a state store) failed.
    #[error("state store {store}: {source}")]
    Store {
        store: String,
        #[source]
        source: rocksdb::Error,
    },
    /// Local files (state directory, checkpoint files).
    #[error("state directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// librdkafka (consumer, producer, admin client).
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A configuration that cannot work (unknown guarantee, missing application.id...).
    #[error("configuration: {0}")]
    Config(String),
    /// The topology cannot run as built (e.g. no source topic exists).
    #[error("topology: {0}")]
    Topology(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
