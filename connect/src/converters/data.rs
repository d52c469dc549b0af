//! Connect's data as the converters hand it over: the value model (`Data`,
//! `SchemaAndValue`), why a record did not convert (`ConvertError`), and the one-entry
//! schema cache every schema-aware converter keeps (`LastSchema`). The converters depend
//! on this file, never the other way.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use serde_json::Value;

use super::registry::RegistryError;

/// Connect's value model, as far as the built-in connectors need it: raw bytes
/// (ByteArrayConverter) or a JSON-shaped value (structs are objects), with the
/// Connect schema when the envelope carried one.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Null,
    Bytes(Vec<u8>),
    Value(Value),
    /// A schemaless JSON value as its compact text, exactly what serialising its
    /// parse writes ([`compact_json::compact`]); only the S3 sink's
    /// `JsonFormat` is handed these ([`Converter::json_text`]).
    Json(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SchemaAndValue {
    /// Shared: the records of a batch (a table's rows, a topic's run) carry one
    /// schema, so a record costs a reference count, not a copy of its tree.
    pub schema: Option<Arc<Value>>,
    pub data: Data,
}

impl SchemaAndValue {
    pub fn plain(data: Data) -> Self {
        SchemaAndValue { schema: None, data }
    }

    /// A value read with its schema (a JSON null is Connect's null).
    pub fn read(schema: Arc<Value>, v: Value) -> Self {
        SchemaAndValue {
            schema: Some(schema),
            data: if v.is_null() {
                Data::Null
            } else {
                Data::Value(v)
            },
        }
    }

    /// The value as JSON, bytes as base64 (what Kafka's JsonConverter writes for BYTES).
    pub fn to_json(&self) -> Value {
        match &self.data {
            Data::Null => Value::Null,
            Data::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Data::Value(v) => v.clone(),
            // Checked JSON: it parses (a null would be a bug, not a panic).
            Data::Json(text) => serde_json::from_slice(text).unwrap_or(Value::Null),
        }
    }
}

/// Why a record could not be converted (the DLQ's exception message).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("{message}")]
pub struct ConvertError {
    pub message: String,
    /// A service the converter needs (the Schema Registry) did not answer:
    /// the task fails and is restarted later; the record is not dead-lettered.
    pub unavailable: bool,
}

impl ConvertError {
    pub fn data(message: impl Into<String>) -> ConvertError {
        ConvertError {
            message: message.into(),
            unavailable: false,
        }
    }

    /// The Java class Kafka would name in `__connect.errors.exception.class.name`.
    pub fn class_name(&self) -> &'static str {
        "org.apache.kafka.connect.errors.DataException"
    }
}

type ToWrite<'a> = (Cow<'a, Value>, &'a Arc<Value>);

/// What a schema-aware converter writes: the value (bytes as Connect's base64
/// text) and its Connect schema; `None` for a null value (a null record).
pub(super) fn schema_and_value<'a>(
    v: &'a SchemaAndValue,
    converter: &str,
) -> Result<Option<ToWrite<'a>>, ConvertError> {
    let value = match &v.data {
        Data::Null => return Ok(None),
        Data::Bytes(b) => Cow::Owned(Value::String(
            base64::engine::general_purpose::STANDARD.encode(b),
        )),
        Data::Value(x) => Cow::Borrowed(x),
        Data::Json(_) => Cow::Owned(v.to_json()),
    };
    let schema = v.schema.as_ref().ok_or_else(|| {
        ConvertError::data(format!(
            "the {converter} needs a Connect schema with the value (this record has none)"
        ))
    })?;
    Ok(Some((value, schema)))
}

impl From<RegistryError> for ConvertError {
    fn from(e: RegistryError) -> ConvertError {
        ConvertError {
            unavailable: matches!(e, RegistryError::Unavailable(_)),
            message: e.to_string(),
        }
    }
}

/// The last Connect schema a cache was asked for, and what it found for it: a run of
/// records with one schema finds it by pointer, or (a copy: a source's next batch) by
/// value, without writing the schema's text for a map lookup.
#[derive(Debug)]
pub struct LastSchema<T>(pub(super) Option<(Arc<Value>, T)>);

impl<T> Default for LastSchema<T> {
    fn default() -> Self {
        LastSchema(None)
    }
}

impl<T: Clone> LastSchema<T> {
    pub fn get(&mut self, schema: &Arc<Value>) -> Option<T> {
        let (last, found) = self.0.as_mut()?;
        if !Arc::ptr_eq(last, schema) {
            if **last != **schema {
                return None;
            }
            // The copy is kept: the records sharing it are found by pointer.
            *last = schema.clone();
        }
        Some(found.clone())
    }

    pub fn set(&mut self, schema: &Arc<Value>, found: T) {
        self.0 = Some((schema.clone(), found));
    }
}
