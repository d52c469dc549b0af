//! Typed records for `fjord produce` / `fjord consume` (like
//! kafka-avro-console-producer and -consumer): `--value-format` /
//! `--key-format` avro, protobuf, json-schema (framed with the registry's
//! schema id: magic byte 0, 4-byte id, Protobuf message indexes), json
//! (checked to be JSON), string or bytes (as they are).

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use fjord_kafka::client::ConsumedRecord;
use fjord_schema::{codec, framing, Parsed, ResolvedRef, SchemaType};
use serde_json::{json, Value};

use crate::sr_client::{enc, service, Rest};

/// How a key or value is written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Avro,
    Protobuf,
    JsonSchema,
    Json,
    String,
    Bytes,
}

impl Format {
    fn schema_type(self) -> Option<SchemaType> {
        match self {
            Format::Avro => Some(SchemaType::Avro),
            Format::Protobuf => Some(SchemaType::Protobuf),
            Format::JsonSchema => Some(SchemaType::Json),
            _ => None,
        }
    }
}

/// Subject naming, as Confluent's serializers' `subject.name.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    Topic,
    Record,
    TopicRecord,
}

/// The typed-record options both commands share.
#[derive(Debug, Args, Clone)]
pub struct TypedArgs {
    /// How values are written/read.
    #[arg(long = "value-format", value_enum, default_value_t = Format::String)]
    pub value_format: Format,
    /// How keys are written/read.
    #[arg(long = "key-format", value_enum, default_value_t = Format::String)]
    pub key_format: Format,
    /// The value schema (produce), registered under the value subject.
    #[arg(long = "value-schema-file")]
    pub value_schema_file: Option<std::path::PathBuf>,
    /// Use this registered schema id for values instead of a file.
    #[arg(long = "value-schema-id")]
    pub value_schema_id: Option<i32>,
    #[arg(long = "key-schema-file")]
    pub key_schema_file: Option<std::path::PathBuf>,
    #[arg(long = "key-schema-id")]
    pub key_schema_id: Option<i32>,
    /// The Schema Registry's URL.
    #[arg(long = "schema-registry", default_value = "http://127.0.0.1:8081")]
    pub schema_registry: String,
    /// Subject naming: topic (`<topic>-value`), record (the record's full
    /// name) or topic-record (`<topic>-<record name>`).
    #[arg(long = "subject-name-strategy", value_enum, default_value_t = Strategy::Topic)]
    pub strategy: Strategy,
}

impl TypedArgs {
    fn typed(&self) -> bool {
        self.value_format.schema_type().is_some() || self.key_format.schema_type().is_some()
    }
}

/// Schemas by id, fetched once each.
pub struct SchemaCache {
    reg: Rest,
    by_id: HashMap<i32, Result<Parsed, String>>,
}

impl SchemaCache {
    pub fn new(reg: Rest) -> SchemaCache {
        SchemaCache {
            reg,
            by_id: HashMap::new(),
        }
    }

    async fn fetch_text(&self, id: i32) -> anyhow::Result<(SchemaType, String, Vec<ResolvedRef>)> {
        let v = self
            .reg
            .call("GET", &format!("/schemas/ids/{id}"), None)
            .await?;
        let kind = SchemaType::parse(
            v.get("schemaType")
                .and_then(Value::as_str)
                .unwrap_or("AVRO"),
        )
        .ok_or_else(|| anyhow!("schema {id}: unknown type"))?;
        let text = v
            .get("schema")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut refs = Vec::new();
        for r in v
            .get("references")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let (Some(name), Some(subject), Some(version)) = (
                r.get("name").and_then(Value::as_str),
                r.get("subject").and_then(Value::as_str),
                r.get("version").and_then(Value::as_i64),
            ) else {
                continue;
            };
            let rv = self
                .reg
                .call(
                    "GET",
                    &format!("/subjects/{}/versions/{version}", enc(subject)),
                    None,
                )
                .await?;
            refs.push(ResolvedRef {
                name: name.to_string(),
                schema: rv
                    .get("schema")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            });
        }
        Ok((kind, text, refs))
    }

    /// Make sure `id` is cached (a failed fetch is cached as the error).
    pub async fn load(&mut self, id: i32) {
        if self.by_id.contains_key(&id) {
            return;
        }
        let r = match self.fetch_text(id).await {
            Ok((kind, text, refs)) => {
                fjord_schema::parse(kind, &text, &refs).map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("{e:#}")),
        };
        self.by_id.insert(id, r);
    }

    fn get(&self, id: i32) -> Option<&Result<Parsed, String>> {
        self.by_id.get(&id)
    }
}

/// One side (key or value) of the encoder.
struct Side {
    format: Format,
    schema: Option<(i32, Parsed)>,
}

impl Side {
    fn encode(
        &self,
        data: Option<Bytes>,
        what: &str,
        lineno: u64,
    ) -> anyhow::Result<Option<Bytes>> {
        let Some(d) = data else { return Ok(None) };
        match self.format {
            Format::String | Format::Bytes => Ok(Some(d)),
            Format::Json => {
                serde_json::from_slice::<Value>(&d)
                    .with_context(|| format!("line {lineno}: the {what} is not JSON"))?;
                Ok(Some(d))
            }
            _ => {
                let (id, schema) = self
                    .schema
                    .as_ref()
                    .ok_or_else(|| anyhow!("no {what} schema"))?;
                let doc: Value = serde_json::from_slice(&d)
                    .with_context(|| format!("line {lineno}: the {what} is not JSON"))?;
                let (payload, idx) = codec::encode(schema, &doc)
                    .map_err(|e| anyhow!("line {lineno}: the {what} {e}"))?;
                Ok(Some(Bytes::from(framing::frame(
                    *id,
                    idx.as_deref(),
                    &payload,
                ))))
            }
        }
    }
}

/// Turns produced lines' keys and values into their formats.
pub struct Encoder {
    key: Side,
    value: Side,
}

fn record_name(p: &Parsed) -> Option<String> {
    match p {
        Parsed::Avro(a) => a.schema.name().map(|n| n.fullname(None)),
        Parsed::Protobuf(p) => p.file.messages().next().map(|m| m.full_name().to_string()),
        Parsed::Json(j) => j
            .value
            .get("title")
            .and_then(Value::as_str)
            .map(String::from),
    }
}

impl Encoder {
    /// Register (or look up) the schemas the options name.
    pub async fn new(a: &TypedArgs, topic: &str) -> anyhow::Result<Encoder> {
        let reg = if a.typed() {
            Some(service(
                "the schema registry",
                "--schema-registry",
                &a.schema_registry,
            )?)
        } else {
            None
        };
        let mut sides = Vec::new();
        for (is_key, format, file, id) in [
            (true, a.key_format, &a.key_schema_file, a.key_schema_id),
            (
                false,
                a.value_format,
                &a.value_schema_file,
                a.value_schema_id,
            ),
        ] {
            let what = if is_key { "key" } else { "value" };
            let Some(kind) = format.schema_type() else {
                sides.push(Side {
                    format,
                    schema: None,
                });
                continue;
            };
            let reg = reg.as_ref().ok_or_else(|| anyhow!("no registry"))?;
            let schema = match (file, id) {
                (_, Some(id)) => {
                    let mut cache = SchemaCache::new(reg.clone());
                    cache.load(id).await;
                    match cache.by_id.remove(&id) {
                        Some(Ok(p)) => (id, p),
                        Some(Err(e)) => bail!("{what} schema {id}: {e}"),
                        None => bail!("{what} schema {id} not found"),
                    }
                }
                (Some(f), None) => {
                    let text = std::fs::read_to_string(f)
                        .with_context(|| format!("reading {}", f.display()))?;
                    let parsed = fjord_schema::parse(kind, &text, &[])
                        .map_err(|e| anyhow!("{}: {e}", f.display()))?;
                    let subject = match a.strategy {
                        Strategy::Topic => format!("{topic}-{what}"),
                        Strategy::Record => record_name(&parsed).ok_or_else(|| {
                            anyhow!(
                                "the schema has no record name for --subject-name-strategy record"
                            )
                        })?,
                        Strategy::TopicRecord => format!(
                            "{topic}-{}",
                            record_name(&parsed)
                                .ok_or_else(|| anyhow!("the schema has no record name"))?
                        ),
                    };
                    let body = json!({"schema": text, "schemaType": kind.as_str()});
                    let v = reg
                        .call(
                            "POST",
                            &format!("/subjects/{}/versions", enc(&subject)),
                            Some(&body),
                        )
                        .await
                        .with_context(|| {
                            format!("registering the {what} schema under {subject}")
                        })?;
                    let id = v
                        .get("id")
                        .and_then(Value::as_i64)
                        .ok_or_else(|| anyhow!("the registry answered no id"))?;
                    (id as i32, parsed)
                }
                (None, None) => bail!(
                    "--{what}-format {format:?} needs --{what}-schema-file or --{what}-schema-id"
                ),
            };
            sides.push(Side {
                format,
                schema: Some(schema),
            });
        }
        let value = sides.pop().ok_or_else(|| anyhow!("internal"))?;
        let key = sides.pop().ok_or_else(|| anyhow!("internal"))?;
        Ok(Encoder { key, value })
    }

    /// Whether anything is transformed.
    pub fn active(&self) -> bool {
        self.key.format != Format::String || self.value.format != Format::String
    }

    /// Encode one produced record's key and value.
    pub fn apply(
        &self,
        rec: &mut fjord_kafka::client::ProducerRecord,
        lineno: u64,
    ) -> anyhow::Result<()> {
        rec.key = self.key.encode(rec.key.take(), "key", lineno)?;
        rec.value = self.value.encode(rec.value.take(), "value", lineno)?;
        Ok(())
    }
}

/// Turns consumed framed keys and values back into JSON text.
pub struct Decoder {
    key: Format,
    value: Format,
    cache: Option<SchemaCache>,
}

impl Decoder {
    pub fn new(a: &TypedArgs) -> anyhow::Result<Decoder> {
        let cache = if a.typed() {
            Some(SchemaCache::new(service(
                "the schema registry",
                "--schema-registry",
                &a.schema_registry,
            )?))
        } else {
            None
        };
        Ok(Decoder {
            key: a.key_format,
            value: a.value_format,
            cache,
        })
    }

    /// Decode every framed key/value of `recs` in place; a record that does
    /// not decode is printed as `!undecodable(<reason>): <bytes as text>`.
    pub async fn apply(&mut self, recs: &mut [(i32, ConsumedRecord)]) {
        let Some(cache) = self.cache.as_mut() else {
            return;
        };
        for (_, r) in recs.iter() {
            for (fmt, data) in [(self.key, &r.key), (self.value, &r.value)] {
                if fmt.schema_type().is_some() {
                    if let Some(Ok((id, _))) = data.as_ref().map(|d| framing::unframe(d)) {
                        cache.load(id).await;
                    }
                }
            }
        }
        for (_, r) in recs.iter_mut() {
            if self.key.schema_type().is_some() {
                r.key = r.key.take().map(|d| decode_one(cache, &d));
            }
            if self.value.schema_type().is_some() {
                r.value = r.value.take().map(|d| decode_one(cache, &d));
            }
        }
    }
}

fn decode_one(cache: &SchemaCache, d: &Bytes) -> Bytes {
    let res = framing::unframe(d)
        .map_err(|e| e.to_string())
        .and_then(|(id, rest)| match cache.get(id) {
            Some(Ok(p)) => codec::decode(p, rest).map_err(|e| e.to_string()),
            Some(Err(e)) => Err(format!("schema {id}: {e}")),
            None => Err(format!("schema {id} unknown")),
        });
    match res {
        Ok(v) => Bytes::from(v.to_string()),
        Err(e) => Bytes::from(format!("!undecodable({e}): {}", String::from_utf8_lossy(d))),
    }
}
