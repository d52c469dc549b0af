//! Confluent's Schema Registry serdes (what `KafkaAvroSerde`, `KafkaJsonSchemaSerde` and
//! `KafkaProtobufSerde` are to Kafka Streams) for serde types: values are written in the
//! Confluent wire format (magic byte, schema id, payload) with the schema given, registered
//! under a subject when the serde is built; any record framed with an id the registry knows
//! is read back (its writer schema fetched once per id). Records written by Confluent's
//! serializers in any client read here, and the other way round. The encoding itself is
//! fjord-schema's (`codec`: the type goes through its JSON form).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use fjord_http::registry::SchemaRegistry;
use fjord_schema::{codec, framing, Parsed, SchemaType};

use crate::error::{Error, Result};
use crate::runtime::blocking_runtime;
use crate::serdes::Serde;

/// A registry serde for values (or keys) of type `T`.
pub struct RegistrySerde<T> {
    inner: Arc<Inner>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for RegistrySerde<T> {
    fn clone(&self) -> Self {
        RegistrySerde {
            inner: self.inner.clone(),
            _t: PhantomData,
        }
    }
}

struct Inner {
    registry: SchemaRegistry,
    /// Blocking calls from the stream thread (the registry client is async).
    rt: tokio::runtime::Runtime,
    id: i32,
    writer: Arc<Parsed>,
    /// Writer schemas of the ids read so far.
    readers: Mutex<HashMap<i32, Arc<Parsed>>>,
}

impl<T> RegistrySerde<T> {
    /// Writes Avro with `schema` (its JSON text), registered under `subject` (Confluent's
    /// TopicNameStrategy would name it `<topic>-value`).
    pub fn avro(url: &str, subject: &str, schema: &str) -> Result<Self> {
        Self::new(url, SchemaType::Avro, subject, schema, true)
    }

    /// Writes JSON Schema-validated JSON with `schema`, registered under `subject`.
    pub fn json_schema(url: &str, subject: &str, schema: &str) -> Result<Self> {
        Self::new(url, SchemaType::Json, subject, schema, true)
    }

    /// Writes the first message of the Protobuf file `schema`, registered under `subject`.
    pub fn protobuf(url: &str, subject: &str, schema: &str) -> Result<Self> {
        Self::new(url, SchemaType::Protobuf, subject, schema, true)
    }

    /// `auto_register` false (`auto.register.schemas=false`): the schema must already be
    /// registered under `subject`; it is looked up instead.
    pub fn new(
        url: &str,
        kind: SchemaType,
        subject: &str,
        schema: &str,
        auto_register: bool,
    ) -> Result<Self> {
        let writer = fjord_schema::parse(kind, schema, &[])
            .map_err(|e| Error::Config(format!("schema for {subject}: {e}")))?;
        let registry = SchemaRegistry::new(url, auto_register)
            .map_err(|e| Error::Config(format!("schema registry {url}: {e}")))?;
        let rt = blocking_runtime()?;
        let id = rt
            .block_on(registry.id(subject, kind.as_str(), schema))
            .map_err(|e| Error::Config(format!("registering the schema of {subject}: {e}")))?;
        let writer = Arc::new(writer);
        Ok(RegistrySerde {
            inner: Arc::new(Inner {
                registry,
                rt,
                id,
                writer: writer.clone(),
                readers: Mutex::new(HashMap::from([(id, writer)])),
            }),
            _t: PhantomData,
        })
    }

    /// The id the values are written with.
    pub fn schema_id(&self) -> i32 {
        self.inner.id
    }
}

impl Inner {
    fn reader(&self, id: i32) -> Result<Arc<Parsed>> {
        let lock = |m: &Mutex<HashMap<i32, Arc<Parsed>>>| {
            m.lock().map(|g| g.get(&id).cloned()).unwrap_or(None)
        };
        if let Some(p) = lock(&self.readers) {
            return Ok(p);
        }
        let reg = self
            .rt
            .block_on(self.registry.schema(id))
            .map_err(|e| Error::Serde(format!("schema id {id}: {e}")))?;
        let kind = SchemaType::parse(&reg.kind)
            .ok_or_else(|| Error::Serde(format!("schema id {id}: type {}", reg.kind)))?;
        let parsed = Arc::new(
            fjord_schema::parse(kind, &reg.text, &[])
                .map_err(|e| Error::Serde(format!("schema id {id}: {e}")))?,
        );
        if let Ok(mut m) = self.readers.lock() {
            m.insert(id, parsed.clone());
        }
        Ok(parsed)
    }
}

impl<T> Serde<T> for RegistrySerde<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serialize(&self, value: &T) -> Result<Vec<u8>> {
        let doc = serde_json::to_value(value).map_err(|e| Error::Serde(e.to_string()))?;
        let (payload, indexes) = codec::encode(&self.inner.writer, &doc)
            .map_err(|e| Error::Serde(format!("schema id {}: {e}", self.inner.id)))?;
        Ok(framing::frame(self.inner.id, indexes.as_deref(), &payload))
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<T> {
        let (id, rest) = framing::unframe(bytes).map_err(|e| Error::Serde(e.to_string()))?;
        let schema = self.inner.reader(id)?;
        let doc = codec::decode_for_serde(&schema, rest)
            .map_err(|e| Error::Serde(format!("schema id {id}: {e}")))?;
        serde_json::from_value(doc).map_err(|e| Error::Serde(format!("schema id {id}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_that_does_not_parse_is_refused_naming_the_subject() {
        let e = RegistrySerde::<String>::avro("http://127.0.0.1:1", "t-value", "{not avro")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("t-value"), "{e}");
        let e = RegistrySerde::<String>::avro("https://x", "t-value", r#""string""#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("schema registry https://x"), "{e}");
    }
}
