//! The AvroConverter's Schema Registry client: the id of each schema a
//! converter writes (registered, or looked up when `auto.register.schemas`
//! is false, under the subject its naming strategy gives: once per subject
//! and schema), and the schema of each id it reads (fetched once). A registry
//! that does not answer is retried for a while and then reported as
//! unavailable, which fails the task rather than dead-lettering the record,
//! as Connect treats a lost connection; a registry that answers "no" is the
//! record's fault.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fjord_http::client::{enc, Rest, RestError};
use serde_json::{json, Value};

use crate::avro_data;

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

/// A schema read back by id: the parsed Avro schema and its Connect schema.
#[derive(Debug)]
pub struct Reader {
    pub avro: apache_avro::Schema,
    pub connect: Value,
}

/// A schema to write with: parsed once per distinct Connect schema.
#[derive(Debug)]
pub struct Writer {
    pub avro: apache_avro::Schema,
    pub text: String,
    /// The full name a record strategy names the subject after.
    pub record_name: String,
}

#[derive(Debug)]
pub struct SchemaRegistry {
    rest: Rest,
    auto_register: bool,
    writers: Mutex<HashMap<String, Arc<Writer>>>,
    ids: Mutex<HashMap<(String, String), i32>>,
    readers: Mutex<HashMap<i32, Arc<Reader>>>,
}

impl SchemaRegistry {
    pub fn new(url: &str, auto_register: bool) -> Result<SchemaRegistry, String> {
        Ok(SchemaRegistry {
            rest: Rest::new("the schema registry", url, TIMEOUT).map_err(|e| e.to_string())?,
            auto_register,
            writers: Mutex::default(),
            ids: Mutex::default(),
            readers: Mutex::default(),
        })
    }

    pub fn url(&self) -> &str {
        self.rest.url()
    }

    /// The Avro schema a Connect schema is written with (built and parsed once).
    pub fn writer(&self, connect: &Value) -> Result<Arc<Writer>, RegistryError> {
        let key = connect.to_string();
        if let Some(w) = lock(&self.writers).get(&key) {
            return Ok(w.clone());
        }
        let a = avro_data::avro_schema(connect).map_err(RegistryError::Refused)?;
        let text = a.to_string();
        let avro = apache_avro::Schema::parse_str(&text)
            .map_err(|e| RegistryError::Refused(format!("not a valid Avro schema: {e}")))?;
        let record_name = match &avro {
            apache_avro::Schema::Record(r) => r.name.fullname(None),
            _ => match &a {
                Value::String(t) => t.clone(),
                Value::Object(o) => o
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                _ => "union".to_string(),
            },
        };
        let w = Arc::new(Writer {
            avro,
            text,
            record_name,
        });
        lock(&self.writers).insert(key, w.clone());
        Ok(w)
    }

    /// The id of `w` under `subject`: registered (or looked up) once.
    pub async fn id(&self, subject: &str, w: &Writer) -> Result<i32, RegistryError> {
        let key = (subject.to_string(), w.text.clone());
        if let Some(id) = lock(&self.ids).get(&key) {
            return Ok(*id);
        }
        let path = if self.auto_register {
            format!("/subjects/{}/versions", enc(subject))
        } else {
            format!("/subjects/{}", enc(subject))
        };
        let body = json!({"schema": w.text});
        let v = self.call("POST", &path, Some(&body)).await?;
        let id = v
            .get("id")
            .and_then(Value::as_i64)
            .and_then(|i| i32::try_from(i).ok())
            .ok_or_else(|| {
                RegistryError::Refused(format!("the registry answered {v} without an id"))
            })?;
        lock(&self.ids).insert(key, id);
        Ok(id)
    }

    /// The schema registered under `id` (fetched once).
    pub async fn reader(&self, id: i32) -> Result<Arc<Reader>, RegistryError> {
        if let Some(r) = lock(&self.readers).get(&id) {
            return Ok(r.clone());
        }
        let v = self
            .call("GET", &format!("/schemas/ids/{id}"), None)
            .await?;
        let kind = v
            .get("schemaType")
            .and_then(Value::as_str)
            .unwrap_or("AVRO");
        if kind != "AVRO" {
            return Err(RegistryError::Refused(format!(
                "schema id {id} is a {kind} schema, not Avro"
            )));
        }
        if v.get("references")
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty())
        {
            return Err(RegistryError::Refused(format!(
                "schema id {id} has references, which this AvroConverter does not follow"
            )));
        }
        let text = v.get("schema").and_then(Value::as_str).unwrap_or("");
        let bad = |e: String| RegistryError::Refused(format!("schema id {id}: {e}"));
        let avro = apache_avro::Schema::parse_str(text).map_err(|e| bad(e.to_string()))?;
        let json: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let connect = avro_data::connect_schema(&json).map_err(bad)?;
        let r = Arc::new(Reader { avro, connect });
        lock(&self.readers).insert(id, r.clone());
        Ok(r)
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
    fn writers_are_parsed_once_per_schema() {
        let r = SchemaRegistry::new("http://127.0.0.1:1", true).expect("url");
        let c = json!({"type": "struct", "name": "shop.Order", "optional": false,
                       "fields": [{"field": "id", "type": "int64", "optional": false}]});
        let w = r.writer(&c).expect("writer");
        assert_eq!(w.record_name, "shop.Order");
        assert!(Arc::ptr_eq(&w, &r.writer(&c).expect("again")));
        assert!(SchemaRegistry::new("https://x", true).is_err());
    }
}
