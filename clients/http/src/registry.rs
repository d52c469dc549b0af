//! A Schema Registry client: the id of each schema a serializer writes (registered, or
//! looked up when `auto.register.schemas` is false, under the subject its naming strategy
//! gives: once per subject and schema), and the registered text of an id a deserializer
//! reads. A registry that does not answer is retried for a while and then reported as
//! unavailable (a lost service: callers fail rather than blame the record); a registry that
//! answers "no" is the record's fault. Shared by fjord-connect's schema-aware converters and
//! fjord-streams' registry serdes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::{enc, Rest, RestError};

/// How long an unreachable registry is retried before the call gives up.
const RETRY_FOR: Duration = Duration::from_secs(15);
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No answer, or a 5xx: worth retrying; the task fails when it lasts.
    #[error("the schema registry is unavailable: {0}")]
    Unavailable(String),
    /// A definite answer that the record cannot be handled.
    #[error("{0}")]
    Refused(String),
}

/// How the subject of a record's schema is named (Confluent's
/// `key.subject.name.strategy` / `value.subject.name.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Topic,
    Record,
    TopicRecord,
}

impl Strategy {
    pub fn from_class(class: &str) -> Option<Strategy> {
        match class.rsplit('.').next().unwrap_or("") {
            "TopicNameStrategy" => Some(Strategy::Topic),
            "RecordNameStrategy" => Some(Strategy::Record),
            "TopicRecordNameStrategy" => Some(Strategy::TopicRecord),
            _ => None,
        }
    }

    /// `record` is the Avro schema's full name (or its primitive type's name).
    pub fn subject(&self, topic: &str, is_key: bool, record: &str) -> String {
        match self {
            Strategy::Topic => format!("{topic}-{}", if is_key { "key" } else { "value" }),
            Strategy::Record => record.to_string(),
            Strategy::TopicRecord => format!("{topic}-{record}"),
        }
    }
}

/// A schema as the registry holds it: `schemaType` (AVRO when absent) and text.
#[derive(Debug)]
pub struct Registered {
    pub kind: String,
    pub text: String,
}

#[derive(Debug)]
pub struct SchemaRegistry {
    rest: Rest,
    auto_register: bool,
    ids: Mutex<HashMap<(String, String), i32>>,
}

impl SchemaRegistry {
    pub fn new(url: &str, auto_register: bool) -> Result<SchemaRegistry, String> {
        Ok(SchemaRegistry {
            rest: Rest::new("the schema registry", url, TIMEOUT).map_err(|e| e.to_string())?,
            auto_register,
            ids: Mutex::default(),
        })
    }

    pub fn url(&self) -> &str {
        self.rest.url()
    }

    /// The id of schema `text` of type `kind` (AVRO, JSON) under `subject`:
    /// registered (or looked up) once.
    pub async fn id(&self, subject: &str, kind: &str, text: &str) -> Result<i32, RegistryError> {
        let key = (subject.to_string(), text.to_string());
        if let Some(id) = self.ids.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(*id);
        }
        let path = if self.auto_register {
            format!("/subjects/{}/versions", enc(subject))
        } else {
            format!("/subjects/{}", enc(subject))
        };
        let mut body = json!({"schema": text});
        if kind != "AVRO" {
            body["schemaType"] = json!(kind);
        }
        let v = self.call("POST", &path, Some(&body)).await?;
        let id = v
            .get("id")
            .and_then(Value::as_i64)
            .and_then(|i| i32::try_from(i).ok())
            .ok_or_else(|| {
                RegistryError::Refused(format!("the registry answered {v} without an id"))
            })?;
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, id);
        Ok(id)
    }

    /// The schema registered under `id`.
    pub async fn schema(&self, id: i32) -> Result<Registered, RegistryError> {
        let v = self
            .call("GET", &format!("/schemas/ids/{id}"), None)
            .await?;
        if v.get("references")
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty())
        {
            return Err(RegistryError::Refused(format!(
                "schema id {id} has references, which the converters here do not follow"
            )));
        }
        Ok(Registered {
            kind: v
                .get("schemaType")
                .and_then(Value::as_str)
                .unwrap_or("AVRO")
                .to_string(),
            text: v
                .get("schema")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
    }

    /// One call, retried while the registry does not answer (or answers 5xx).
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, RegistryError> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            match self.rest.call(method, path, body).await {
                Ok(v) => return Ok(v),
                Err(
                    e @ RestError::Refused {
                        status: 400..=499, ..
                    },
                ) => return Err(RegistryError::Refused(e.to_string())),
                Err(e) if start.elapsed() >= RETRY_FOR => {
                    return Err(RegistryError::Unavailable(e.to_string()))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "schema registry call failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_strategy() {
        let s = |c: &str| Strategy::from_class(c).expect("known");
        assert_eq!(
            s("io.confluent.kafka.serializers.subject.TopicNameStrategy")
                .subject("t", false, "a.R"),
            "t-value"
        );
        assert_eq!(
            s("io.confluent.kafka.serializers.subject.TopicNameStrategy").subject("t", true, "a.R"),
            "t-key"
        );
        assert_eq!(
            s("io.confluent.kafka.serializers.subject.RecordNameStrategy")
                .subject("t", false, "a.R"),
            "a.R"
        );
        assert_eq!(
            s("io.confluent.kafka.serializers.subject.TopicRecordNameStrategy")
                .subject("t", false, "a.R"),
            "t-a.R"
        );
        assert!(Strategy::from_class("com.example.Mine").is_none());
    }

    #[test]
    fn only_http_urls() {
        assert!(SchemaRegistry::new("http://127.0.0.1:1", true).is_ok());
        assert!(SchemaRegistry::new("https://x", true).is_err());
    }
}
