//! How client operations fail: [`ClientError`] for the caller, and
//! [`KafkaError`] for an error code a broker answered with, named as Kafka
//! names it through kafka-protocol's `ResponseError`.

use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;

/// Why a client operation failed; shown to the user as one line.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    /// The TLS handshake failed (untrusted or expired certificate, wrong host name...).
    #[error("TLS handshake with {addr} failed: {msg}")]
    Tls { addr: String, msg: String },
    /// SASL authentication was refused (SASL_AUTHENTICATION_FAILED, ...).
    #[error("authentication with {addr} failed: {msg}")]
    Auth { addr: String, msg: String },
    #[error("no broker reachable at {0}")]
    NoBroker(String),
    #[error("i/o error talking to {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("timed out waiting for {addr} ({what})")]
    Timeout { addr: String, what: String },
    #[error("{addr} sent a {len}-byte frame, above the {cap}-byte cap")]
    FrameTooLarge { addr: String, len: i64, cap: usize },
    #[error("malformed response from {addr}: {msg}")]
    Malformed { addr: String, msg: String },
    #[error("cannot encode request: {0}")]
    Encode(String),
    #[error("{addr} does not support {api:?} (versions {lo} to {hi} needed)")]
    Unsupported {
        addr: String,
        api: ApiKey,
        lo: i16,
        hi: i16,
    },
    #[error("unknown broker id {0}")]
    UnknownNode(i32),
    #[error("{0}")]
    Kafka(KafkaError),
    #[error("malformed record batch: {0}")]
    Batch(String),
    /// A group call the coordinator refused, e.g. `DeleteGroups for group g: NON_EMPTY_GROUP: ...`.
    #[error("{op} for group {group}: {error}")]
    Group {
        op: &'static str,
        group: String,
        error: KafkaError,
    },
    /// A group operation kept failing until its deadline.
    #[error("gave up on group {group}: {what}")]
    GaveUp { group: String, what: String },
    #[error(transparent)]
    Assignor(#[from] crate::assignor::AssignorError),
}

/// A Kafka error code with the broker's message, worded like the Java client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    pub code: i16,
    pub message: Option<String>,
}

impl KafkaError {
    /// The error for `code` plus an optional broker message.
    pub fn new(code: i16, message: Option<String>) -> Self {
        Self { code, message }
    }
    /// The error `e` plus an optional broker message.
    pub fn of(e: ResponseError, message: Option<String>) -> Self {
        Self::new(e.code(), message)
    }
    /// The code as kafka-protocol's `ResponseError` (None for 0).
    pub fn error(&self) -> Option<ResponseError> {
        self.code.err()
    }
    /// Kafka's upper-snake name for the code (e.g. `TOPIC_ALREADY_EXISTS`).
    pub fn name(&self) -> String {
        match self.code.err() {
            Some(e) => upper_snake(&format!("{e:?}")),
            None => "NONE".to_string(),
        }
    }
}

impl std::fmt::Display for KafkaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let detail = match (&self.message, self.code.err()) {
            (Some(m), _) if !m.is_empty() => m.clone(),
            (_, Some(e)) => e.to_string(),
            _ => String::new(),
        };
        write!(f, "{}: {}", self.name(), detail)
    }
}

fn upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// `Err(Kafka)` for a non-zero error code.
pub fn check(code: i16, message: Option<&StrBytes>) -> Result<(), ClientError> {
    if code == 0 {
        Ok(())
    } else {
        Err(ClientError::Kafka(KafkaError::new(
            code,
            message.map(|m| m.to_string()),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_error_names() {
        let e = KafkaError::new(36, None);
        assert_eq!(e.name(), "TOPIC_ALREADY_EXISTS");
        let e = KafkaError::new(3, Some("Topic 'x' does not exist".into()));
        assert_eq!(
            e.to_string(),
            "UNKNOWN_TOPIC_OR_PARTITION: Topic 'x' does not exist"
        );
    }
}
