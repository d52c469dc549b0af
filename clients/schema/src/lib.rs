//! fjord-schema: what a Confluent-compatible Schema Registry and its clients
//! need to know about schemas, without any I/O.
//!
//! * [`parse`] turns `(schemaType, text, resolved references)` into a
//!   [`Parsed`] schema (Avro through `apache-avro`, Protobuf through `protox`
//!   and `prost-reflect`, JSON Schema through `jsonschema`), or a
//!   [`SchemaError`] carrying the parser's message (the registry's 42201);
//! * [`Parsed::canonical`] is the form two registrations are compared by (the
//!   same schema registered twice gets the same id);
//! * [`compat::check`] applies one of Confluent's seven compatibility levels;
//! * [`framing`] is the Confluent wire framing (magic byte, schema id,
//!   Protobuf message indexes) and [`codec`] turns JSON documents into
//!   payloads and back (the CLI's `--value-format`).

pub mod avro;
pub mod codec;
pub mod compat;
pub mod framing;
pub mod json;
pub mod protobuf;

use sha2::{Digest, Sha256};

pub use compat::{check, Level};

/// The three schema types Confluent's registry knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchemaType {
    Avro,
    Protobuf,
    Json,
}

impl SchemaType {
    /// `schemaType` as sent on the wire (absent means AVRO).
    pub fn parse(s: &str) -> Option<SchemaType> {
        match s.to_ascii_uppercase().as_str() {
            "AVRO" => Some(SchemaType::Avro),
            "PROTOBUF" => Some(SchemaType::Protobuf),
            "JSON" => Some(SchemaType::Json),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Protobuf => "PROTOBUF",
            SchemaType::Json => "JSON",
        }
    }
}

/// Why a schema was refused (the registry answers 42201 with this text).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SchemaError {
    #[error("Invalid schema: {0}")]
    Invalid(String),
    #[error("Invalid schema: reference {0} could not be resolved")]
    MissingReference(String),
}

/// A reference already resolved to the text of the schema it names: `name` is
/// how the referring schema names it (an Avro full name, a Protobuf import
/// path, a JSON Schema `$ref` URI).
#[derive(Debug, Clone)]
pub struct ResolvedRef {
    pub name: String,
    pub schema: String,
}

/// A parsed, valid schema.
#[derive(Debug, Clone)]
pub enum Parsed {
    Avro(avro::AvroSchema),
    Protobuf(protobuf::ProtoSchema),
    Json(json::JsonSchema),
}

/// Parse and validate `text` as `kind`, resolving references through `refs`.
pub fn parse(kind: SchemaType, text: &str, refs: &[ResolvedRef]) -> Result<Parsed, SchemaError> {
    Ok(match kind {
        SchemaType::Avro => Parsed::Avro(avro::AvroSchema::parse(text, refs)?),
        SchemaType::Protobuf => Parsed::Protobuf(protobuf::ProtoSchema::parse(text, refs)?),
        SchemaType::Json => Parsed::Json(json::JsonSchema::parse(text, refs)?),
    })
}

impl Parsed {
    /// The schema's type.
    pub fn kind(&self) -> SchemaType {
        match self {
            Parsed::Avro(_) => SchemaType::Avro,
            Parsed::Protobuf(_) => SchemaType::Protobuf,
            Parsed::Json(_) => SchemaType::Json,
        }
    }

    /// The text two registrations are compared by and the registry stores:
    /// Avro and JSON Schema as compact JSON with object keys sorted (array
    /// order, which carries meaning, kept); Protobuf as sent, trimmed.
    pub fn canonical(&self) -> String {
        match self {
            Parsed::Avro(a) => a.canonical.clone(),
            Parsed::Protobuf(p) => p.canonical.clone(),
            Parsed::Json(j) => j.canonical.clone(),
        }
    }
}

/// Compact JSON with every object's keys sorted, whatever serde_json's map
/// order feature says (it is unified across the workspace).
pub fn canonical_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(*k) {
                    write_canonical(x, out);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Hex SHA-256 of the parts that make two registrations the same schema:
/// type, canonical text, references and any metadata/ruleSet (canonical JSON).
pub fn content_hash(kind: SchemaType, canonical: &str, extra: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_str().as_bytes());
    h.update([0u8]);
    h.update(canonical.as_bytes());
    for e in extra {
        h.update([0u8]);
        h.update(e.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{ "b": 1, "a": [3, {"y":1,"x":2}] }"#).expect("valid");
        assert_eq!(canonical_json(&a), r#"{"a":[3,{"x":2,"y":1}],"b":1}"#);
    }

    #[test]
    fn hash_depends_on_type_and_refs() {
        let a = content_hash(SchemaType::Avro, "\"string\"", &[]);
        let b = content_hash(SchemaType::Json, "\"string\"", &[]);
        let c = content_hash(SchemaType::Avro, "\"string\"", &["[]"]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 64);
    }
}
