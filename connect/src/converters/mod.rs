//! Converters between Kafka bytes and Connect data, under Kafka's class names:
//! `JsonConverter` (with or without the `{"schema":..,"payload":..}` envelope),
//! `StringConverter`, `ByteArrayConverter`, and Confluent's `AvroConverter`
//! (`avro.rs`) and `JsonSchemaConverter` (`json_schema.rs`) against a Schema
//! Registry: `avro_data.rs` and `json_schema_data.rs` map the data,
//! `shape.rs` reads Connect schemas for both, `registry.rs` keeps the ids. A record that does not convert is a poison record: the error goes
//! to the worker's error handler (DLQ, tolerance); a registry that does not
//! answer is not the record's fault and fails the task instead.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::config::{boolean, ConfigError, ConfigMap};

mod avro;
pub mod avro_data;
pub mod compact_json;
mod data;
mod json_schema;
mod json_schema_data;
mod registry;
mod shape;

pub use avro::AvroConverter;
pub use data::{ConvertError, Data, LastSchema, SchemaAndValue};
pub use json_schema::JsonSchemaConverter;

pub const JSON: &str = "org.apache.kafka.connect.json.JsonConverter";
pub const STRING: &str = "org.apache.kafka.connect.storage.StringConverter";
pub const BYTES: &str = "org.apache.kafka.connect.converters.ByteArrayConverter";
pub const AVRO: &str = "io.confluent.connect.avro.AvroConverter";
pub const JSON_SCHEMA: &str = "io.confluent.connect.json.JsonSchemaConverter";

#[derive(Debug, Clone, PartialEq)]
pub enum Converter {
    Json {
        schemas: bool,
        last: Arc<LastSchemas>,
    },
    String,
    ByteArray,
    Avro(Arc<AvroConverter>),
    JsonSchema(Arc<JsonSchemaConverter>),
}

impl Converter {
    /// Build from a converter section (`class` plus its own keys); `what` is the key
    /// (`value.converter`) named in errors.
    pub fn from_config(what: &str, c: &ConfigMap) -> Result<Converter, ConfigError> {
        match c.get("class").map(|s| s.as_str()) {
            Some(JSON) => Ok(Converter::Json {
                schemas: boolean(c, "schemas.enable", true).map_err(|e| ConfigError::new(&format!("{what}.schemas.enable"), e.message))?,
                last: Arc::default(),
            }),
            Some(STRING) => Ok(Converter::String),
            Some(BYTES) => Ok(Converter::ByteArray),
            Some(AVRO) => Ok(Converter::Avro(Arc::new(AvroConverter::from_config(what, c)?))),
            Some(JSON_SCHEMA) => Ok(Converter::JsonSchema(Arc::new(JsonSchemaConverter::from_config(what, c)?))),
            Some(other) => Err(ConfigError::new(
                what,
                format!("Invalid value {other} for configuration {what}: Class {other} could not be found (built in: {JSON}, {STRING}, {BYTES}, {AVRO}, {JSON_SCHEMA})"),
            )),
            None => Err(ConfigError::new(what, "Missing required configuration with no default value")),
        }
    }

    pub fn class_name(&self) -> &'static str {
        match self {
            Converter::Json { .. } => JSON,
            Converter::String => STRING,
            Converter::ByteArray => BYTES,
            Converter::Avro(_) => AVRO,
            Converter::JsonSchema(_) => JSON_SCHEMA,
        }
    }

    /// A schemaless JsonConverter's value as the text writing its parse would give,
    /// made without the parse (`compact_json`); `None` for anything else, which
    /// goes through [`Converter::to_connect`] (and its errors).
    pub fn json_text(&self, bytes: Option<&[u8]>) -> Option<SchemaAndValue> {
        match (self, bytes) {
            (Converter::Json { schemas: false, .. }, Some(b)) => {
                compact_json::compact(b).map(|t| SchemaAndValue::plain(Data::Json(t)))
            }
            _ => None,
        }
    }

    /// A JsonConverter envelope (schemas enabled) whose schema text is exactly the
    /// last one read: that schema and the payload's text, unparsed and unchecked.
    /// `None` for anything else. A consumer that reads the payload itself must accept
    /// only what [`Converter::to_connect`] would, and send anything else there.
    pub fn envelope_payload<'b>(&self, bytes: Option<&'b [u8]>) -> Option<(Arc<Value>, &'b [u8])> {
        match (self, bytes) {
            (
                Converter::Json {
                    schemas: true,
                    last,
                },
                Some(b),
            ) => last.payload_text(b),
            _ => None,
        }
    }

    /// Kafka bytes → Connect data (sink side).
    pub async fn to_connect(&self, bytes: Option<&[u8]>) -> Result<SchemaAndValue, ConvertError> {
        let Some(bytes) = bytes else {
            return Ok(SchemaAndValue::plain(Data::Null));
        };
        match self {
            Converter::Avro(a) => a.to_connect(bytes).await,
            Converter::JsonSchema(j) => j.to_connect(bytes).await,
            Converter::ByteArray => Ok(SchemaAndValue {
                schema: Some(Arc::new(json!({"type": "bytes", "optional": true}))),
                data: Data::Bytes(bytes.to_vec()),
            }),
            Converter::String => match std::str::from_utf8(bytes) {
                Ok(s) => Ok(SchemaAndValue {
                    schema: Some(Arc::new(json!({"type": "string", "optional": true}))),
                    data: Data::Value(Value::String(s.to_string())),
                }),
                Err(e) => Err(ConvertError::data(format!(
                    "Failed to deserialize string: {e}"
                ))),
            },
            Converter::Json {
                schemas: true,
                last,
            } => {
                if let Some((schema, payload)) = last.read_again(bytes) {
                    check_schema(&schema, &payload)?;
                    return Ok(SchemaAndValue {
                        schema: Some(schema),
                        data: if payload.is_null() {
                            Data::Null
                        } else {
                            Data::Value(payload)
                        },
                    });
                }
                let v: Value = serde_json::from_slice(bytes).map_err(|e| {
                    ConvertError::data(format!("Converting byte[] to Kafka Connect data failed due to serialization error: {e}"))
                })?;
                match v {
                    Value::Object(mut o) if o.len() == 2 && o.contains_key("schema") && o.contains_key("payload") => {
                        let schema = o.remove("schema").filter(|s| !s.is_null()).map(Arc::new);
                        let payload = o.remove("payload").unwrap_or(Value::Null);
                        if let Some(s) = &schema {
                            check_schema(s, &payload)?;
                            last.remember_read(bytes, s);
                        }
                        Ok(SchemaAndValue {
                            schema,
                            data: if payload.is_null() { Data::Null } else { Data::Value(payload) },
                        })
                    }
                    _ => Err(ConvertError::data(
                        "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.",
                    )),
                }
            }
            Converter::Json { schemas: false, .. } => {
                let v: Value = serde_json::from_slice(bytes).map_err(|e| {
                    ConvertError::data(format!("Converting byte[] to Kafka Connect data failed due to serialization error: {e}"))
                })?;
                Ok(SchemaAndValue::plain(if v.is_null() {
                    Data::Null
                } else {
                    Data::Value(v)
                }))
            }
        }
    }

    /// Connect data → Kafka bytes for `topic` (source side; Kafka's
    /// `fromConnectData`). Strings and bytes are lent, not copied: the producer
    /// copies them once anyway.
    pub async fn to_kafka<'a>(
        &self,
        topic: &str,
        v: &'a SchemaAndValue,
    ) -> Result<Option<Cow<'a, [u8]>>, ConvertError> {
        match self {
            Converter::Avro(a) => Ok(a.to_kafka(topic, v).await?.map(Cow::Owned)),
            Converter::JsonSchema(j) => Ok(j.to_kafka(topic, v).await?.map(Cow::Owned)),
            Converter::ByteArray => match &v.data {
                Data::Null => Ok(None),
                Data::Bytes(b) => Ok(Some(Cow::Borrowed(b))),
                Data::Value(_) | Data::Json(_) => Err(ConvertError::data(
                    "ByteArrayConverter is not compatible with objects of type string/struct",
                )),
            },
            Converter::String => match &v.data {
                Data::Null => Ok(None),
                Data::Bytes(b) => Ok(Some(Cow::Borrowed(b))),
                Data::Value(Value::String(s)) => Ok(Some(Cow::Borrowed(s.as_bytes()))),
                Data::Value(other) => Ok(Some(Cow::Owned(other.to_string().into_bytes()))),
                Data::Json(text) => match v.to_json() {
                    Value::String(s) => Ok(Some(Cow::Owned(s.into_bytes()))),
                    _ => Ok(Some(Cow::Borrowed(text))),
                },
            },
            Converter::Json { schemas, last } => {
                if matches!(v.data, Data::Null) && !schemas {
                    return Ok(None);
                }
                // Written straight out: no copy of the schema or the value per record.
                let mut out = Vec::with_capacity(256);
                let err = |e: serde_json::Error| ConvertError::data(e.to_string());
                if *schemas {
                    out.extend_from_slice(ENVELOPE_HEAD);
                    match &v.schema {
                        Some(s) => last.write(s, &mut out).map_err(err)?,
                        None => out.extend_from_slice(b"null"),
                    }
                    out.extend_from_slice(ENVELOPE_MID);
                }
                match &v.data {
                    Data::Null => out.extend_from_slice(b"null"),
                    Data::Value(x) => serde_json::to_writer(&mut out, x).map_err(err)?,
                    Data::Bytes(_) => serde_json::to_writer(&mut out, &v.to_json()).map_err(err)?,
                    // The text is what writing its parse gives (`compact_json`).
                    Data::Json(text) => out.extend_from_slice(text),
                }
                if *schemas {
                    out.push(b'}');
                }
                Ok(Some(Cow::Owned(out)))
            }
        }
    }
}

/// How the JsonConverter's envelope starts, and what comes between its schema and payload.
const ENVELOPE_HEAD: &[u8] = b"{\"schema\":";
const ENVELOPE_MID: &[u8] = b",\"payload\":";

/// The JsonConverter's last schema each way: a topic's records nearly always carry
/// the same schema, and parsing (or writing) its JSON for every record was most of
/// the worker's allocations. Not part of the configuration (equal to any other).
#[derive(Debug, Default)]
pub struct LastSchemas {
    /// The schema's text as it came in, and the schema parsed from it (an `Arc`:
    /// the tasks sharing the converter parse their payloads outside the lock).
    read: Mutex<Option<Arc<ReadSchema>>>,
    /// A schema written (by pointer: a source shares one among its records) and its text.
    written: Mutex<Option<(Arc<Value>, Vec<u8>)>>,
}

/// A schema's text as an envelope carried it, and the schema.
#[derive(Debug)]
struct ReadSchema {
    text: Vec<u8>,
    schema: Arc<Value>,
}

impl PartialEq for LastSchemas {
    fn eq(&self, _: &LastSchemas) -> bool {
        true
    }
}

impl LastSchemas {
    /// An envelope whose schema text is the last one's, exactly (`{"schema":` it
    /// `,"payload":` P `}`): the last schema and P, parsing only P. The same bytes
    /// parsed whole give the same result; anything else (other spacing, another
    /// schema, P not one JSON value) is `None` and parsed whole.
    fn read_again(&self, bytes: &[u8]) -> Option<(Arc<Value>, Value)> {
        let (schema, payload) = self.payload_text(bytes)?;
        let payload = serde_json::from_slice(payload).ok()?;
        Some((schema, payload))
    }

    /// The last schema and the payload's text of an envelope as `read_again` takes it.
    fn payload_text<'b>(&self, bytes: &'b [u8]) -> Option<(Arc<Value>, &'b [u8])> {
        let last = registry::lock(&self.read).clone()?;
        let payload = bytes
            .strip_prefix(ENVELOPE_HEAD)?
            .strip_prefix(last.text.as_slice())?
            .strip_prefix(ENVELOPE_MID)?
            .strip_suffix(b"}")?;
        Some((last.schema.clone(), payload))
    }

    /// Keep `schema` with its text in `bytes` (an envelope that parsed), when the
    /// envelope is written as `read_again` expects.
    fn remember_read(&self, bytes: &[u8], schema: &Arc<Value>) {
        let Some(rest) = bytes.strip_prefix(ENVELOPE_HEAD) else {
            return;
        };
        let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
        if !matches!(values.next(), Some(Ok(_))) {
            return;
        }
        let text = &rest[..values.byte_offset()];
        if rest[text.len()..].starts_with(ENVELOPE_MID) {
            *registry::lock(&self.read) = Some(Arc::new(ReadSchema {
                text: text.to_vec(),
                schema: schema.clone(),
            }));
        }
    }

    /// Write `schema`'s JSON: the last one's text again when it is the same `Arc`.
    fn write(&self, schema: &Arc<Value>, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let mut last = registry::lock(&self.written);
        if let Some((s, text)) = last.as_ref() {
            if Arc::ptr_eq(s, schema) {
                out.extend_from_slice(text);
                return Ok(());
            }
        }
        let start = out.len();
        serde_json::to_writer(&mut *out, &**schema)?;
        *last = Some((schema.clone(), out[start..].to_vec()));
        Ok(())
    }
}

/// The checks Kafka's JsonConverter makes while reading a payload against its schema:
/// the JSON type must be the schema's, required fields must be present.
fn check_schema(schema: &Value, payload: &Value) -> Result<(), ConvertError> {
    let ty = schema.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let optional = schema
        .get("optional")
        .and_then(|o| o.as_bool())
        .unwrap_or(false);
    if payload.is_null() {
        return if optional || schema.get("default").is_some() {
            Ok(())
        } else {
            Err(ConvertError::data(format!(
                "Invalid null value for required {} field",
                ty.to_uppercase()
            )))
        };
    }
    let ok = match ty {
        "int8" | "int16" | "int32" | "int64" => payload.is_i64() || payload.is_u64(),
        "float" | "float32" | "double" | "float64" => payload.is_number(),
        "boolean" => payload.is_boolean(),
        "string" | "bytes" => payload.is_string(),
        "array" => match (payload.as_array(), schema.get("items")) {
            (Some(items), Some(s)) => {
                for i in items {
                    check_schema(s, i)?;
                }
                true
            }
            (Some(_), None) => true,
            _ => false,
        },
        "map" => payload.is_object() || payload.is_array(),
        "struct" => match payload.as_object() {
            Some(o) => {
                for f in schema
                    .get("fields")
                    .and_then(|f| f.as_array())
                    .into_iter()
                    .flatten()
                {
                    let name = f.get("field").and_then(|n| n.as_str()).unwrap_or("");
                    check_schema(f, o.get(name).unwrap_or(&Value::Null))
                        .map_err(|e| ConvertError::data(format!("{} (field {name})", e.message)))?;
                }
                true
            }
            None => false,
        },
        "" => return Err(ConvertError::data("Schema must contain 'type' field")),
        other => return Err(ConvertError::data(format!("Unknown schema type: {other}"))),
    };
    if ok {
        Ok(())
    } else {
        Err(ConvertError::data(format!(
            "Expected {} value but got {}",
            ty.to_uppercase(),
            kind(payload)
        )))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The converter class under `prefix` and its `prefix.`-keys (the class's own settings),
/// e.g. `value.converter=...JsonConverter` and `value.converter.schemas.enable=false`.
/// `required` says whether the class must be there (worker) or may be absent (connector).
pub fn section(
    m: &ConfigMap,
    prefix: &str,
    required_class: bool,
) -> Result<ConfigMap, ConfigError> {
    let mut out = ConfigMap::new();
    match m.get(prefix) {
        Some(class) => {
            out.insert("class".into(), class.trim().to_string());
        }
        None if required_class => {
            return Err(ConfigError::new(
                prefix,
                "Missing required configuration with no default value",
            ))
        }
        None => return Ok(out),
    }
    let dotted = format!("{prefix}.");
    for (k, v) in m {
        if let Some(sub) = k.strip_prefix(&dotted) {
            out.insert(sub.to_string(), v.clone());
        }
    }
    Converter::from_config(prefix, &out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(class: &str, schemas: &str) -> Converter {
        let mut m = ConfigMap::new();
        m.insert("class".into(), class.into());
        m.insert("schemas.enable".into(), schemas.into());
        Converter::from_config("value.converter", &m).unwrap()
    }

    #[tokio::test]
    async fn json_without_schemas_round_trips() {
        let c = conv(JSON, "false");
        let v = c.to_connect(Some(br#"{"a":1,"b":"x"}"#)).await.unwrap();
        assert_eq!(v.data, Data::Value(json!({"a":1,"b":"x"})));
        assert_eq!(
            c.to_kafka("t", &v).await.unwrap().unwrap(),
            br#"{"a":1,"b":"x"}"#.to_vec()
        );
        assert!(c.to_connect(Some(b"{not json")).await.is_err());
        assert_eq!(c.to_connect(None).await.unwrap().data, Data::Null);
    }

    #[tokio::test]
    async fn json_envelope_is_checked() {
        let c = conv(JSON, "true");
        let good = br#"{"schema":{"type":"struct","fields":[{"field":"id","type":"int32","optional":false}]},"payload":{"id":3}}"#;
        let v = c.to_connect(Some(good)).await.unwrap();
        assert_eq!(v.data, Data::Value(json!({"id":3})));
        let wrong = br#"{"schema":{"type":"struct","fields":[{"field":"id","type":"int32","optional":false}]},"payload":{"id":"three"}}"#;
        assert!(c
            .to_connect(Some(wrong))
            .await
            .unwrap_err()
            .message
            .contains("INT32"));
        let missing = br#"{"schema":{"type":"struct","fields":[{"field":"id","type":"int32","optional":false}]},"payload":{}}"#;
        assert!(c.to_connect(Some(missing)).await.is_err());
        assert!(c
            .to_connect(Some(br#"{"id":3}"#))
            .await
            .unwrap_err()
            .message
            .contains("schemas.enable"));
        let hi = SchemaAndValue {
            schema: Some(Arc::new(json!({"type":"string"}))),
            data: Data::Value(json!("hi")),
        };
        let out = c.to_kafka("t", &hi).await.unwrap().unwrap();
        let parsed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed, json!({"schema":{"type":"string"},"payload":"hi"}));
    }

    #[tokio::test]
    async fn json_envelope_schema_is_parsed_once_per_text() {
        let c = conv(JSON, "true");
        let schema =
            r#"{"type":"struct","fields":[{"field":"id","type":"int32","optional":false}]}"#;
        let rec = |payload: &str| format!(r#"{{"schema":{schema},"payload":{payload}}}"#);
        let a = c
            .to_connect(Some(rec(r#"{"id":1}"#).as_bytes()))
            .await
            .unwrap();
        let b = c
            .to_connect(Some(rec(r#"{"id":2}"#).as_bytes()))
            .await
            .unwrap();
        let (sa, sb) = (a.schema.unwrap(), b.schema.unwrap());
        assert!(
            Arc::ptr_eq(&sa, &sb),
            "the second record reuses the parsed schema"
        );
        assert_eq!(b.data, Data::Value(json!({"id":2})));
        // The checks still run on the payload alone.
        assert!(c
            .to_connect(Some(rec(r#"{"id":"x"}"#).as_bytes()))
            .await
            .is_err());
        assert_eq!(
            c.to_connect(Some(rec("null").as_bytes()))
                .await
                .unwrap_err()
                .message,
            "Invalid null value for required STRUCT field"
        );
        // What the whole parse refuses is refused: a third field, trailing text.
        for bad in [
            rec(r#"{"id":3},"extra":1"#),
            rec(r#"{"id":3}} x"#),
            rec(r#"{"id":3"#),
        ] {
            assert!(c.to_connect(Some(bad.as_bytes())).await.is_err(), "{bad}");
        }
        // Other spacing or another schema: parsed whole, and the same value.
        let spaced = format!(r#"{{ "schema": {schema}, "payload": {{"id":4}} }}"#);
        let v = c.to_connect(Some(spaced.as_bytes())).await.unwrap();
        assert_eq!(v.schema.as_deref(), Some(&*sa));
        assert_eq!(v.data, Data::Value(json!({"id":4})));
        let other = br#"{"schema":{"type":"string","optional":false},"payload":"s"}"#;
        let v = c.to_connect(Some(other)).await.unwrap();
        assert_eq!(v.schema.unwrap()["type"], "string");
        let v = c
            .to_connect(Some(rec(r#"{"id":5}"#).as_bytes()))
            .await
            .unwrap();
        assert_eq!(*v.schema.unwrap(), *sa);
    }

    #[tokio::test]
    async fn json_envelope_writes_a_shared_schema_once() {
        let c = conv(JSON, "true");
        let s = Arc::new(json!({"type":"int64","optional":false}));
        let rec = |n: i64, s: &Arc<Value>| SchemaAndValue {
            schema: Some(s.clone()),
            data: Data::Value(json!(n)),
        };
        let want = |n: i64| {
            format!(r#"{{"schema":{{"optional":false,"type":"int64"}},"payload":{n}}}"#)
                .into_bytes()
        };
        assert_eq!(
            c.to_kafka("t", &rec(1, &s)).await.unwrap().unwrap(),
            want(1)
        );
        assert_eq!(
            c.to_kafka("t", &rec(2, &s)).await.unwrap().unwrap(),
            want(2)
        );
        let x = SchemaAndValue {
            schema: Some(Arc::new(json!({"type":"string"}))),
            data: Data::Value(json!("x")),
        };
        assert_eq!(
            c.to_kafka("t", &x).await.unwrap().unwrap(),
            br#"{"schema":{"type":"string"},"payload":"x"}"#.to_vec()
        );
        assert_eq!(
            c.to_kafka("t", &rec(3, &s)).await.unwrap().unwrap(),
            want(3)
        );
    }

    #[test]
    fn last_schema_finds_a_copy_and_keeps_it() {
        let a = Arc::new(json!({"type": "int64", "optional": false}));
        let mut last = LastSchema::default();
        assert_eq!(last.get(&a), None::<u8>);
        last.set(&a, 1);
        assert_eq!(last.get(&a), Some(1));
        let copy = Arc::new((*a).clone());
        assert_eq!(last.get(&copy), Some(1));
        assert!(last.0.as_ref().is_some_and(|(s, _)| Arc::ptr_eq(s, &copy)));
        assert_eq!(last.get(&Arc::new(json!({"type": "string"}))), None);
    }

    #[tokio::test]
    async fn string_and_bytes() {
        let s = conv(STRING, "false");
        assert_eq!(
            s.to_connect(Some(b"line")).await.unwrap().data,
            Data::Value(json!("line"))
        );
        assert!(s.to_connect(Some(&[0xff, 0xfe])).await.is_err());
        let b = conv(BYTES, "false");
        let v = b.to_connect(Some(&[0, 1, 2])).await.unwrap();
        assert_eq!(v.data, Data::Bytes(vec![0, 1, 2]));
        assert_eq!(v.to_json(), json!("AAEC"));
        assert_eq!(b.to_kafka("t", &v).await.unwrap().unwrap(), vec![0, 1, 2]);
        let mut m = ConfigMap::new();
        m.insert("class".into(), "com.example.Avro".into());
        assert_eq!(
            Converter::from_config("key.converter", &m).unwrap_err().key,
            "key.converter"
        );
        m.insert("class".into(), AVRO.into());
        assert_eq!(
            Converter::from_config("value.converter", &m)
                .unwrap_err()
                .key,
            "value.converter.schema.registry.url"
        );
        m.insert("schema.registry.url".into(), "http://127.0.0.1:8081".into());
        m.insert(
            "value.subject.name.strategy".into(),
            "com.example.Mine".into(),
        );
        assert_eq!(
            Converter::from_config("value.converter", &m)
                .unwrap_err()
                .key,
            "value.converter.value.subject.name.strategy"
        );
        m.remove("value.subject.name.strategy");
        assert!(Converter::from_config("value.converter", &m).is_ok());
        m.insert("class".into(), "com.example.Avro".into());
        assert_eq!(
            Converter::from_config("key.converter", &m).unwrap_err().key,
            "key.converter"
        );
    }
}
