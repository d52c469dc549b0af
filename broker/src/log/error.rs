//! The log's failure type. A leaf: the codes clients see for each variant
//! are chosen in `wire::error`.

use fjord_kafka::batch;

/// Log failures, mapped to Kafka error codes in `wire::error`.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("corrupt record batch: {0}")]
    Batch(#[from] batch::BatchError),
    #[error("out of order sequence number")]
    OutOfOrderSequence,
    #[error("invalid producer epoch")]
    InvalidProducerEpoch,
    #[error("a non-transactional write from a producer with an open transaction")]
    InvalidTxnState,
    #[error("transaction marker from a stale transaction coordinator")]
    CoordinatorFenced,
    #[error("offset out of range")]
    OffsetOutOfRange,
    #[error("partition log is offline after a storage error")]
    Offline,
    /// The log directory refuses writes (free-space guard, or a failed
    /// write not yet resumed: `disk`).
    #[error("log directory refuses writes: {0}")]
    Storage(&'static str),
    #[error("log writer stopped")]
    Stopped,
    #[error("corrupt metadata in the log store: {0}")]
    Meta(String),
    /// The store did not open (at start or at a reopen); says where.
    #[error("cannot open the log store {path}: {source}{hint}")]
    Open {
        path: String,
        source: rocksdb::Error,
        hint: &'static str,
    },
    #[error("this replica is not the partition's leader")]
    NotLeader,
    #[error("replicated batch at offset {got} does not continue the log end {expected}")]
    NonContiguous { expected: i64, got: i64 },
}
