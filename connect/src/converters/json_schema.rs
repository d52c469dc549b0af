//! Confluent's `JsonSchemaConverter`: Confluent's wire framing (magic byte 0,
//! the schema id) around the JSON text, the JSON Schema in the Schema
//! Registry (`schemaType` JSON). Each Connect schema is mapped once, each id
//! read is parsed once; the last one written is kept aside, so a run of records
//! with one schema finds it without writing the schema's text.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::data::{schema_and_value, ConvertError, LastSchema, SchemaAndValue};
use super::json_schema_data;
use super::registry::{lock, Subjects};
use crate::config::{ConfigError, ConfigMap};

#[derive(Debug)]
pub struct JsonSchemaConverter {
    subjects: Subjects,
    /// Connect schema's JSON text → (JSON Schema text, record name).
    writers: Mutex<HashMap<String, Arc<(String, String)>>>,
    /// The last record's entry in `writers`.
    last: Mutex<LastSchema<Arc<(String, String)>>>,
    /// Schema id → Connect schema.
    readers: Mutex<HashMap<i32, Arc<Value>>>,
}

impl PartialEq for JsonSchemaConverter {
    fn eq(&self, o: &JsonSchemaConverter) -> bool {
        self.subjects == o.subjects
    }
}

impl JsonSchemaConverter {
    pub fn from_config(what: &str, c: &ConfigMap) -> Result<JsonSchemaConverter, ConfigError> {
        Ok(JsonSchemaConverter {
            subjects: Subjects::from_config(what, c)?,
            writers: Mutex::default(),
            last: Mutex::default(),
            readers: Mutex::default(),
        })
    }

    async fn reader(&self, id: i32) -> Result<Arc<Value>, ConvertError> {
        if let Some(r) = lock(&self.readers).get(&id) {
            return Ok(r.clone());
        }
        let s = self.subjects.registry.schema(id).await?;
        let bad = |e: String| ConvertError::data(format!("schema id {id}: {e}"));
        if s.kind != "JSON" {
            return Err(bad(format!("a {} schema, not a JSON Schema", s.kind)));
        }
        let json: Value = serde_json::from_str(&s.text).map_err(|e| bad(e.to_string()))?;
        let r = Arc::new(json_schema_data::connect_schema(&json).map_err(bad)?);
        lock(&self.readers).insert(id, r.clone());
        Ok(r)
    }

    pub async fn to_connect(&self, bytes: &[u8]) -> Result<SchemaAndValue, ConvertError> {
        let (id, rest) = fjord_schema::framing::unframe(bytes).map_err(|e| {
            ConvertError::data(format!("Failed to deserialize data to JSON Schema: {e}"))
        })?;
        let schema = self.reader(id).await?;
        let doc: Value = serde_json::from_slice(rest).map_err(|e| {
            ConvertError::data(format!("Failed to deserialize JSON (schema id {id}): {e}"))
        })?;
        let v = json_schema_data::connect_value(&schema, &doc).map_err(ConvertError::data)?;
        Ok(SchemaAndValue::read(schema, v))
    }

    pub async fn to_kafka(
        &self,
        topic: &str,
        v: &SchemaAndValue,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        let Some((value, schema)) = schema_and_value(v, "JsonSchemaConverter")? else {
            return Ok(None);
        };
        let last = lock(&self.last).get(schema);
        let w = match last {
            Some(w) => w,
            None => {
                let w = self.writer_of(schema)?;
                lock(&self.last).set(schema, w.clone());
                w
            }
        };
        let id = self.subjects.id(topic, &w.1, "JSON", &w.0).await?;
        let mut text = String::new();
        json_schema_data::write(schema, &value, &mut text).map_err(ConvertError::data)?;
        Ok(Some(fjord_schema::framing::frame(
            id,
            None,
            text.as_bytes(),
        )))
    }

    /// The JSON Schema text and record name of a Connect schema, mapped once.
    fn writer_of(&self, schema: &Value) -> Result<Arc<(String, String)>, ConvertError> {
        let key = schema.to_string();
        // The guard must be gone before the None arm locks again.
        let cached = lock(&self.writers).get(&key).cloned();
        Ok(match cached {
            Some(w) => w,
            None => {
                let js = json_schema_data::json_schema(schema).map_err(ConvertError::data)?;
                let record = js
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let w = Arc::new((js.to_string(), record));
                lock(&self.writers).insert(key, w.clone());
                w
            }
        })
    }
}
