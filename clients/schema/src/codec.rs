//! JSON documents to schema-encoded payloads and back, for the CLI's
//! `--value-format avro|protobuf|json-schema` (what kafka-avro-console-producer
//! and -consumer do): Avro binary through `apache-avro` (plain JSON values,
//! resolved against the schema: ints widen, objects become records, a union
//! takes the first branch that fits); Protobuf through `prost-reflect`'s
//! JSON mapping; JSON Schema as the JSON text itself, validated first.

use std::io::Cursor;

use prost::Message;
use prost_reflect::DynamicMessage;
use serde_json::Value;

use crate::Parsed;

/// Why a document could not be encoded, or a payload decoded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CodecError {
    #[error("does not match the schema: {0}")]
    Mismatch(String),
    #[error("cannot decode: {0}")]
    Decode(String),
}

/// Encode `doc` with `schema`; returns the payload and, for Protobuf, the
/// message-index path to frame it with (the file's first message).
pub fn encode(schema: &Parsed, doc: &Value) -> Result<(Vec<u8>, Option<Vec<i32>>), CodecError> {
    match schema {
        Parsed::Avro(a) => {
            let v = apache_avro::types::Value::from(doc.clone());
            let resolved = if a.refs.is_empty() {
                v.resolve(&a.schema)
            } else {
                v.resolve_schemata(&a.schema, a.refs.iter().collect())
            }
            .map_err(|e| CodecError::Mismatch(e.to_string()))?;
            let bytes = if a.refs.is_empty() {
                apache_avro::to_avro_datum(&a.schema, resolved)
            } else {
                apache_avro::to_avro_datum_schemata(&a.schema, a.refs.iter().collect(), resolved)
            }
            .map_err(|e| CodecError::Mismatch(e.to_string()))?;
            Ok((bytes, None))
        }
        Parsed::Protobuf(p) => {
            let desc = p
                .message_by_indexes(&[0])
                .ok_or_else(|| CodecError::Mismatch("the schema has no message".into()))?;
            let msg = DynamicMessage::deserialize(desc, doc.clone())
                .map_err(|e| CodecError::Mismatch(e.to_string()))?;
            Ok((msg.encode_to_vec(), Some(vec![0])))
        }
        Parsed::Json(j) => {
            let errs = j.validate(doc);
            if !errs.is_empty() {
                return Err(CodecError::Mismatch(errs.join("; ")));
            }
            serde_json::to_vec(doc)
                .map(|b| (b, None))
                .map_err(|e| CodecError::Mismatch(e.to_string()))
        }
    }
}

/// Decode a payload (after magic byte and id; Protobuf indexes still in
/// front) written with `schema` into JSON. Protobuf comes out in the
/// proto3 JSON mapping (lowerCamelCase names, 64-bit integers as strings,
/// fields at their default value left out): what `fjord consume` prints.
pub fn decode(schema: &Parsed, rest: &[u8]) -> Result<Value, CodecError> {
    decode_with(schema, rest, &prost_reflect::SerializeOptions::new())
}

/// [`decode`] into the shape a Rust type's `serde` derive takes: Protobuf
/// fields by their `.proto` names, 64-bit integers as numbers, and fields
/// at their default value present (proto3 writes no bytes for them). Avro
/// and JSON Schema come out as from [`decode`].
pub fn decode_for_serde(schema: &Parsed, rest: &[u8]) -> Result<Value, CodecError> {
    let opts = prost_reflect::SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false)
        .skip_default_fields(false);
    decode_with(schema, rest, &opts)
}

fn decode_with(
    schema: &Parsed,
    rest: &[u8],
    opts: &prost_reflect::SerializeOptions,
) -> Result<Value, CodecError> {
    match schema {
        Parsed::Avro(a) => {
            let mut cur = Cursor::new(rest);
            let v = if a.refs.is_empty() {
                apache_avro::from_avro_datum(&a.schema, &mut cur, None)
            } else {
                apache_avro::from_avro_datum_schemata(
                    &a.schema,
                    a.refs.iter().collect(),
                    &mut cur,
                    None,
                )
            }
            .map_err(|e| CodecError::Decode(e.to_string()))?;
            avro_to_json(v)
        }
        Parsed::Protobuf(p) => {
            let (idx, payload) = crate::framing::read_indexes(rest)
                .map_err(|e| CodecError::Decode(e.to_string()))?;
            let desc = p
                .message_by_indexes(&idx)
                .ok_or_else(|| CodecError::Decode(format!("no message at index {idx:?}")))?;
            let msg = DynamicMessage::decode(desc, payload)
                .map_err(|e| CodecError::Decode(e.to_string()))?;
            msg.serialize_with_options(serde_json::value::Serializer, opts)
                .map_err(|e| CodecError::Decode(e.to_string()))
        }
        Parsed::Json(_) => {
            serde_json::from_slice(rest).map_err(|e| CodecError::Decode(e.to_string()))
        }
    }
}

/// Avro values as plain JSON (unions unwrapped, bytes as arrays of numbers
/// turned into strings where they are UTF-8).
fn avro_to_json(v: apache_avro::types::Value) -> Result<Value, CodecError> {
    use apache_avro::types::Value as A;
    Ok(match v {
        A::Null => Value::Null,
        A::Boolean(b) => Value::Bool(b),
        A::Int(i) | A::Date(i) | A::TimeMillis(i) => Value::from(i),
        A::Long(i)
        | A::TimeMicros(i)
        | A::TimestampMillis(i)
        | A::TimestampMicros(i)
        | A::TimestampNanos(i)
        | A::LocalTimestampMillis(i)
        | A::LocalTimestampMicros(i)
        | A::LocalTimestampNanos(i) => Value::from(i),
        A::Float(f) => {
            serde_json::Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number)
        }
        A::Double(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        A::String(s) | A::Enum(_, s) => Value::String(s),
        A::Uuid(u) => Value::String(u.to_string()),
        A::Bytes(b) | A::Fixed(_, b) => match String::from_utf8(b) {
            Ok(s) => Value::String(s),
            Err(e) => Value::Array(e.into_bytes().into_iter().map(Value::from).collect()),
        },
        A::Union(_, inner) => avro_to_json(*inner)?,
        A::Array(items) => Value::Array(
            items
                .into_iter()
                .map(avro_to_json)
                .collect::<Result<_, _>>()?,
        ),
        A::Map(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| Ok((k, avro_to_json(v)?)))
                .collect::<Result<_, CodecError>>()?,
        ),
        A::Record(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| Ok((k, avro_to_json(v)?)))
                .collect::<Result<_, CodecError>>()?,
        ),
        other => {
            serde_json::Value::try_from(other).map_err(|e| CodecError::Decode(e.to_string()))?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse, SchemaType};

    #[test]
    fn avro_round_trip() {
        let s = parse(
            SchemaType::Avro,
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"n","type":"long"},{"name":"o","type":["null","int"],"default":null}]}"#,
            &[],
        )
        .expect("schema");
        let doc: Value = serde_json::json!({"a": "x", "n": 5, "o": 3});
        let (b, idx) = encode(&s, &doc).expect("encode");
        assert!(idx.is_none());
        assert_eq!(decode(&s, &b).expect("decode"), doc);
        assert!(encode(&s, &serde_json::json!({"a": 1})).is_err());
    }

    #[test]
    fn protobuf_round_trip() {
        let s = parse(
            SchemaType::Protobuf,
            r#"syntax = "proto3"; package t; message M { string a = 1; int32 n = 2; repeated string tags = 3; }"#,
            &[],
        )
        .expect("schema");
        let doc: Value = serde_json::json!({"a": "x", "n": 5, "tags": ["p", "q"]});
        let (b, idx) = encode(&s, &doc).expect("encode");
        assert_eq!(idx, Some(vec![0]));
        let mut framed = vec![0u8];
        framed.extend_from_slice(&b);
        assert_eq!(decode(&s, &framed).expect("decode"), doc);
    }

    #[test]
    fn protobuf_for_serde_keeps_names_numbers_and_defaults() {
        let s = parse(
            SchemaType::Protobuf,
            r#"syntax = "proto3"; package t; message P { string customer_id = 1; double amount = 2; int64 ts = 3; }"#,
            &[],
        )
        .expect("schema");
        // Either naming is taken on the way in; 0.0 is proto3's default.
        let (b, _) = encode(
            &s,
            &serde_json::json!({"customerId": "c1", "amount": 0.0, "ts": 1_700_000_000_000i64}),
        )
        .expect("encode");
        let (b2, _) = encode(
            &s,
            &serde_json::json!({"customer_id": "c1", "amount": 0.0, "ts": 1_700_000_000_000i64}),
        )
        .expect("encode");
        assert_eq!(b, b2);
        let mut framed = vec![0u8];
        framed.extend_from_slice(&b);
        assert_eq!(
            decode(&s, &framed).expect("decode"),
            serde_json::json!({"customerId": "c1", "ts": "1700000000000"})
        );
        assert_eq!(
            decode_for_serde(&s, &framed).expect("decode"),
            serde_json::json!({"customer_id": "c1", "amount": 0.0, "ts": 1_700_000_000_000i64})
        );
    }

    #[test]
    fn json_schema_validates() {
        let s = parse(
            SchemaType::Json,
            r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#,
            &[],
        )
        .expect("schema");
        assert!(encode(&s, &serde_json::json!({"a": "x"})).is_ok());
        assert!(encode(&s, &serde_json::json!({"b": 1})).is_err());
    }
}
