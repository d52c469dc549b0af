//! The records a connector's tasks exchange with the worker, and how a task call fails:
//! the types every connector uses (kept apart from the plugin catalog in `mod.rs`, which
//! names the connectors, so that they depend on it and not the other way).

use serde_json::Value;

use crate::converters::SchemaAndValue;

/// A record a source task produced, with its place in the source.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub partition: Value,
    pub offset: Value,
    pub topic: String,
    pub key: SchemaAndValue,
    pub value: SchemaAndValue,
}

/// A record a sink task receives (already converted).
#[derive(Debug, Clone)]
pub struct SinkRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    /// Converted like the value (a bad key is a poison record); the JDBC sink's
    /// `pk.mode=record_key` and `delete.enabled` read it.
    pub key: SchemaAndValue,
    pub value: SchemaAndValue,
}

/// How a task call failed: `Retriable` leaves the task running and the call is tried
/// again (a lost S3 connection); `Fatal` fails the task with the message as its trace.
#[derive(Debug, thiserror::Error, Clone)]
pub enum TaskError {
    #[error("{0}")]
    Retriable(String),
    #[error("{0}")]
    Fatal(String),
}
