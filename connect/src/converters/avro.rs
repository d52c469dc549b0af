//! Confluent's `AvroConverter`: Confluent's wire framing (magic byte 0, the
//! schema id) around Avro binary, the schemas in the Schema Registry. Each
//! Connect schema becomes an Avro schema once, each id read is parsed once; the
//! last writer is kept aside, so a run of records with one schema finds it without
//! writing the schema's text.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::avro_data;
use super::data::{schema_and_value, ConvertError, LastSchema, SchemaAndValue};
use super::registry::{lock, Subjects};
use crate::config::{ConfigError, ConfigMap};

#[derive(Debug)]
pub struct AvroConverter {
    subjects: Subjects,
    /// By the Connect schema's JSON text.
    writers: Mutex<HashMap<String, Arc<Writer>>>,
    /// The last record's.
    last: Mutex<LastSchema<Arc<Writer>>>,
    readers: Mutex<HashMap<i32, Arc<Reader>>>,
}

impl PartialEq for AvroConverter {
    fn eq(&self, o: &AvroConverter) -> bool {
        self.subjects == o.subjects
    }
}

/// A schema to write with.
#[derive(Debug)]
struct Writer {
    avro: apache_avro::Schema,
    text: String,
    /// The full name the record strategies name the subject after.
    record_name: String,
}

/// A schema read back by id, with its Connect schema.
#[derive(Debug)]
struct Reader {
    avro: apache_avro::Schema,
    connect: Arc<Value>,
}

impl AvroConverter {
    pub fn from_config(what: &str, c: &ConfigMap) -> Result<AvroConverter, ConfigError> {
        Ok(AvroConverter {
            subjects: Subjects::from_config(what, c)?,
            writers: Mutex::default(),
            last: Mutex::default(),
            readers: Mutex::default(),
        })
    }

    fn writer(&self, connect: &Arc<Value>) -> Result<Arc<Writer>, ConvertError> {
        let last = lock(&self.last).get(connect);
        if let Some(w) = last {
            return Ok(w);
        }
        let w = self.writer_of(connect)?;
        lock(&self.last).set(connect, w.clone());
        Ok(w)
    }

    fn writer_of(&self, connect: &Arc<Value>) -> Result<Arc<Writer>, ConvertError> {
        let key = connect.to_string();
        if let Some(w) = lock(&self.writers).get(&key) {
            return Ok(w.clone());
        }
        let a = avro_data::avro_schema(connect).map_err(ConvertError::data)?;
        let text = a.to_string();
        let avro = apache_avro::Schema::parse_str(&text)
            .map_err(|e| ConvertError::data(format!("not a valid Avro schema: {e}")))?;
        let record_name = match (&avro, &a) {
            (apache_avro::Schema::Record(r), _) => r.name.fullname(None),
            (_, Value::String(t)) => t.clone(),
            (_, Value::Object(o)) => o
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            _ => "union".to_string(),
        };
        let w = Arc::new(Writer {
            avro,
            text,
            record_name,
        });
        lock(&self.writers).insert(key, w.clone());
        Ok(w)
    }

    async fn reader(&self, id: i32) -> Result<Arc<Reader>, ConvertError> {
        if let Some(r) = lock(&self.readers).get(&id) {
            return Ok(r.clone());
        }
        let s = self.subjects.registry.schema(id).await?;
        let bad = |e: String| ConvertError::data(format!("schema id {id}: {e}"));
        if s.kind != "AVRO" {
            return Err(bad(format!("a {} schema, not Avro", s.kind)));
        }
        let avro = apache_avro::Schema::parse_str(&s.text).map_err(|e| bad(e.to_string()))?;
        let json: Value = serde_json::from_str(&s.text).map_err(|e| bad(e.to_string()))?;
        let connect = Arc::new(avro_data::connect_schema(&json).map_err(bad)?);
        let r = Arc::new(Reader { avro, connect });
        lock(&self.readers).insert(id, r.clone());
        Ok(r)
    }

    pub async fn to_connect(&self, bytes: &[u8]) -> Result<SchemaAndValue, ConvertError> {
        let (id, rest) = fjord_schema::framing::unframe(bytes)
            .map_err(|e| ConvertError::data(format!("Failed to deserialize data to Avro: {e}")))?;
        let reader = self.reader(id).await?;
        let datum =
            apache_avro::from_avro_datum(&reader.avro, &mut &rest[..], None).map_err(|e| {
                ConvertError::data(format!(
                    "Failed to deserialize data to Avro (schema id {id}): {e}"
                ))
            })?;
        let v = avro_data::connect_value(datum).map_err(ConvertError::data)?;
        Ok(SchemaAndValue::read(reader.connect.clone(), v))
    }

    pub async fn to_kafka(
        &self,
        topic: &str,
        v: &SchemaAndValue,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        let Some((value, schema)) = schema_and_value(v, "AvroConverter")? else {
            return Ok(None);
        };
        let w = self.writer(schema)?;
        let id = self
            .subjects
            .id(topic, &w.record_name, "AVRO", &w.text)
            .await?;
        let datum = avro_data::avro_value(schema, &value).map_err(ConvertError::data)?;
        let payload = apache_avro::to_avro_datum(&w.avro, datum).map_err(|e| {
            ConvertError::data(format!(
                "Failed to serialize Avro data for topic {topic}: {e}"
            ))
        })?;
        Ok(Some(fjord_schema::framing::frame(id, None, &payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writers_are_built_once_per_schema() {
        let mut m = ConfigMap::new();
        m.insert("schema.registry.url".into(), "http://127.0.0.1:1".into());
        let a = AvroConverter::from_config("value.converter", &m).expect("config");
        let c = Arc::new(
            json!({"type": "struct", "name": "shop.Order", "optional": false,
                   "fields": [{"field": "id", "type": "int64", "optional": false}]}),
        );
        let w = a.writer(&c).expect("writer");
        assert_eq!(w.record_name, "shop.Order");
        assert!(Arc::ptr_eq(&w, &a.writer(&c).expect("again")));
        // An equal schema in another Arc (a record of the next batch) finds it too.
        let copy = Arc::new((*c).clone());
        assert!(Arc::ptr_eq(&w, &a.writer(&copy).expect("copy")));
        let s = a
            .writer(&Arc::new(json!({"type": "string", "optional": false})))
            .expect("string");
        assert_eq!(s.record_name, "string");
        // Back to the first: from the map, not rebuilt.
        assert!(Arc::ptr_eq(&w, &a.writer(&c).expect("back")));
    }
}
