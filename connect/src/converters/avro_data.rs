//! Connect data ↔ Avro, as Confluent's `AvroData` maps them, so the schemas
//! fjord-connect registers look like the ones Confluent's AvroConverter
//! registers and its records are read by any Avro consumer:
//!
//! * `int8`/`int16` are Avro `int` tagged `"connect.type"`; an optional schema
//!   is the union `["null", T]` (default null); a struct is a record named as
//!   the Connect schema (`io.confluent.connect.avro.ConnectDefault` when it
//!   has no name); maps have string keys;
//! * `Decimal`, `Date`, `Time` and `Timestamp` are the Avro logical types
//!   `decimal` (bytes, `connect.parameters` kept), `date`, `time-millis` and
//!   `timestamp-millis`;
//! * values are Connect's JSON shapes (as JsonConverter leaves them: bytes and
//!   decimals as base64, dates as epoch days, times as milliseconds), so a
//!   sink sees the same record whichever converter read it.
//!
//! Pure functions, no I/O: the registry calls live in `registry.rs`.

use std::collections::HashMap;

use apache_avro::types::Value as Avro;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::shape::{b64, decimal_scale, name as logical, optional, ty};
use crate::logical::{DATE, DECIMAL, TIME, TIMESTAMP};

const NAMESPACE: &str = "io.confluent.connect.avro";
const DEFAULT_NAME: &str = "ConnectDefault";
/// Confluent's default precision for a Decimal without `connect.decimal.precision`.
const DEFAULT_PRECISION: i64 = 64;

/// The Avro schema (as JSON) of a Connect schema.
pub fn avro_schema(connect: &Value) -> Result<Value, String> {
    avro_schema_at(connect)
}

fn avro_schema_at(c: &Value) -> Result<Value, String> {
    let base = match (logical(c), ty(c)) {
        (DECIMAL, _) => {
            let scale = decimal_scale(c);
            let params = c.get("parameters").cloned().unwrap_or_else(|| json!({}));
            let precision = params
                .get("connect.decimal.precision")
                .and_then(|v| v.as_str().and_then(|t| t.parse().ok()).or(v.as_i64()))
                .unwrap_or(DEFAULT_PRECISION);
            json!({"type": "bytes", "scale": scale, "precision": precision,
                   "connect.version": 1, "connect.parameters": params,
                   "connect.name": DECIMAL, "logicalType": "decimal"})
        }
        (DATE, _) => {
            json!({"type": "int", "connect.version": 1, "connect.name": DATE, "logicalType": "date"})
        }
        (TIME, _) => {
            json!({"type": "int", "connect.version": 1, "connect.name": TIME, "logicalType": "time-millis"})
        }
        (TIMESTAMP, _) => {
            json!({"type": "long", "connect.version": 1, "connect.name": TIMESTAMP, "logicalType": "timestamp-millis"})
        }
        (_, t @ ("int8" | "int16")) => json!({"type": "int", "connect.type": t}),
        (_, "int32") => json!("int"),
        (_, "int64") => json!("long"),
        (_, "float" | "float32") => json!("float"),
        (_, "double" | "float64") => json!("double"),
        (_, "boolean") => json!("boolean"),
        (_, "string") => json!("string"),
        (_, "bytes") => json!("bytes"),
        (_, "array") => {
            let items = c.get("items").ok_or("an array schema without items")?;
            json!({"type": "array", "items": avro_schema_at(items)?})
        }
        (_, "map") => {
            let keys = c.get("keys").map(ty).unwrap_or("string");
            if keys != "string" {
                return Err(format!(
                    "a map with {keys} keys: the AvroConverter here writes maps with string keys only"
                ));
            }
            let values = c.get("values").ok_or("a map schema without values")?;
            json!({"type": "map", "values": avro_schema_at(values)?})
        }
        (name, "struct") => {
            let (namespace, name) = match name.rsplit_once('.') {
                _ if name.is_empty() => (Some(NAMESPACE), DEFAULT_NAME),
                Some((ns, n)) => (Some(ns), n),
                None => (None, name),
            };
            let mut fields = Vec::new();
            for f in c
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let fname = f
                    .get("field")
                    .and_then(Value::as_str)
                    .ok_or("a struct field without a name")?;
                let mut af = json!({"name": fname, "type": avro_schema_at(f)?});
                if optional(f) {
                    af["default"] = Value::Null;
                }
                fields.push(af);
            }
            let mut r = json!({"type": "record", "name": name, "fields": fields});
            if let Some(ns) = namespace {
                r["namespace"] = json!(ns);
            }
            r
        }
        (_, "") => return Err("a Connect schema without a type".into()),
        (_, other) => return Err(format!("unknown Connect schema type {other}")),
    };
    Ok(if optional(c) {
        json!(["null", base])
    } else {
        base
    })
}

/// A Connect value (JSON-shaped) of schema `c` as the Avro value of `avro_schema(c)`.
pub fn avro_value(c: &Value, v: &Value) -> Result<Avro, String> {
    if optional(c) {
        return Ok(if v.is_null() {
            Avro::Union(0, Box::new(Avro::Null))
        } else {
            Avro::Union(1, Box::new(plain_value(c, v)?))
        });
    }
    if v.is_null() {
        return Err(format!(
            "Invalid null value for required {} field",
            ty(c).to_uppercase()
        ));
    }
    plain_value(c, v)
}

fn plain_value(c: &Value, v: &Value) -> Result<Avro, String> {
    let want = |what: &str| format!("Expected {what} value but got {v}");
    let int = || v.as_i64().ok_or_else(|| want(&ty(c).to_uppercase()));
    let bytes = || match v {
        Value::String(s) => b64()
            .decode(s)
            .map_err(|e| format!("bytes are not base64: {e}")),
        _ => Err(want("BYTES")),
    };
    Ok(match (logical(c), ty(c)) {
        (DECIMAL, _) => Avro::Decimal(apache_avro::Decimal::from(bytes()?)),
        (DATE, _) => Avro::Date(int()? as i32),
        (TIME, _) => Avro::TimeMillis(int()? as i32),
        (TIMESTAMP, _) => Avro::TimestampMillis(int()?),
        (_, "int8" | "int16" | "int32") => Avro::Int(
            i32::try_from(int()?).map_err(|_| format!("{v} is out of range for {}", ty(c)))?,
        ),
        (_, "int64") => Avro::Long(int()?),
        (_, "float" | "float32") => Avro::Float(v.as_f64().ok_or_else(|| want("FLOAT32"))? as f32),
        (_, "double" | "float64") => Avro::Double(v.as_f64().ok_or_else(|| want("FLOAT64"))?),
        (_, "boolean") => Avro::Boolean(v.as_bool().ok_or_else(|| want("BOOLEAN"))?),
        (_, "string") => Avro::String(v.as_str().ok_or_else(|| want("STRING"))?.to_string()),
        (_, "bytes") => Avro::Bytes(bytes()?),
        (_, "array") => {
            let items = c.get("items").ok_or("an array schema without items")?;
            let a = v.as_array().ok_or_else(|| want("ARRAY"))?;
            Avro::Array(
                a.iter()
                    .map(|i| avro_value(items, i))
                    .collect::<Result<_, _>>()?,
            )
        }
        (_, "map") => {
            let values = c.get("values").ok_or("a map schema without values")?;
            let o = v.as_object().ok_or_else(|| want("MAP"))?;
            Avro::Map(
                o.iter()
                    .map(|(k, x)| Ok((k.clone(), avro_value(values, x)?)))
                    .collect::<Result<HashMap<_, _>, String>>()?,
            )
        }
        (_, "struct") => {
            let o = v.as_object().ok_or_else(|| want("STRUCT"))?;
            let mut out = Vec::new();
            for f in c
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = f.get("field").and_then(Value::as_str).unwrap_or("");
                let x = o.get(name).unwrap_or(&Value::Null);
                let x = if x.is_null() {
                    f.get("default").unwrap_or(x)
                } else {
                    x
                };
                out.push((
                    name.to_string(),
                    avro_value(f, x).map_err(|e| format!("{e} (field {name})"))?,
                ));
            }
            Avro::Record(out)
        }
        (_, other) => return Err(format!("unknown Connect schema type {other}")),
    })
}

/// The Connect schema of an Avro schema (as JSON); named types defined inside it
/// may be referred to by name further on, as Avro allows.
pub fn connect_schema(avro: &Value) -> Result<Value, String> {
    connect_schema_at(avro, None, &mut HashMap::new())
}

fn connect_schema_at(
    a: &Value,
    ns: Option<&str>,
    names: &mut HashMap<String, Value>,
) -> Result<Value, String> {
    let full = |name: &str, ns: Option<&str>| match ns {
        Some(ns) if !name.contains('.') && !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_string(),
    };
    match a {
        Value::Array(branches) => {
            let non_null: Vec<&Value> = branches.iter().filter(|b| *b != "null").collect();
            if non_null.len() != 1 || branches.len() != 2 {
                return Err(format!(
                    "the union {a} is not [\"null\", T]: only optional values are read here"
                ));
            }
            let mut s = connect_schema_at(non_null[0], ns, names)?;
            s["optional"] = json!(true);
            Ok(s)
        }
        Value::String(t) => match t.as_str() {
            "null" => Err("a bare null schema has no Connect equivalent".into()),
            "boolean" | "string" | "bytes" | "float" | "double" => {
                Ok(json!({"type": t, "optional": false}))
            }
            "int" => Ok(json!({"type": "int32", "optional": false})),
            "long" => Ok(json!({"type": "int64", "optional": false})),
            name => names
                .get(&full(name, ns))
                .or_else(|| names.get(name))
                .cloned()
                .ok_or_else(|| format!("unknown Avro type {name}")),
        },
        Value::Object(o) => {
            let t = o.get("type").ok_or("an Avro schema without a type")?;
            let lt = o.get("logicalType").and_then(Value::as_str).unwrap_or("");
            let t_str = t.as_str().unwrap_or("");
            let mut s = match (lt, t_str) {
                ("decimal", "bytes" | "fixed") => {
                    let mut params = o
                        .get("connect.parameters")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    let scale = o.get("scale").and_then(Value::as_i64).unwrap_or(0);
                    params.insert("scale".into(), json!(scale.to_string()));
                    if let Some(p) = o.get("precision").and_then(Value::as_i64) {
                        params.insert("connect.decimal.precision".into(), json!(p.to_string()));
                    }
                    json!({"type": "bytes", "name": DECIMAL, "version": 1, "parameters": params})
                }
                ("date", "int") => json!({"type": "int32", "name": DATE, "version": 1}),
                ("time-millis", "int") => json!({"type": "int32", "name": TIME, "version": 1}),
                ("timestamp-millis", "long") => {
                    json!({"type": "int64", "name": TIMESTAMP, "version": 1})
                }
                (_, "int") => match o.get("connect.type").and_then(Value::as_str) {
                    Some(ct @ ("int8" | "int16")) => json!({"type": ct}),
                    _ => json!({"type": "int32"}),
                },
                (_, "long") => json!({"type": "int64"}),
                (_, "boolean" | "string" | "bytes" | "float" | "double") => json!({"type": t_str}),
                (_, "array") => {
                    let items = o.get("items").ok_or("an Avro array without items")?;
                    json!({"type": "array", "items": connect_schema_at(items, ns, names)?})
                }
                (_, "map") => {
                    let values = o.get("values").ok_or("an Avro map without values")?;
                    json!({"type": "map", "keys": {"type": "string", "optional": false},
                           "values": connect_schema_at(values, ns, names)?})
                }
                (_, "enum") => json!({"type": "string"}),
                (_, "fixed") => {
                    let name = o.get("name").and_then(Value::as_str).unwrap_or("");
                    let own_ns = o.get("namespace").and_then(Value::as_str).or(ns);
                    let s = json!({"type": "bytes", "optional": false});
                    names.insert(full(name, own_ns), s.clone());
                    s
                }
                (_, "record") => {
                    let name = o
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or("a record without a name")?;
                    let own_ns = o.get("namespace").and_then(Value::as_str).or(ns);
                    let fullname = full(name, own_ns);
                    let mut fields = Vec::new();
                    for f in o
                        .get("fields")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let fname = f
                            .get("name")
                            .and_then(Value::as_str)
                            .ok_or("a field without a name")?;
                        let ft = f.get("type").ok_or("a field without a type")?;
                        let mut fs = connect_schema_at(ft, own_ns, names)?;
                        fs["field"] = json!(fname);
                        if let Some(d) = f.get("default").filter(|d| !d.is_null()) {
                            fs["default"] = d.clone();
                        }
                        fields.push(fs);
                    }
                    let mut s = json!({"type": "struct", "fields": fields});
                    if fullname != format!("{NAMESPACE}.{DEFAULT_NAME}") {
                        s["name"] = json!(fullname);
                    }
                    names.insert(fullname, json!(s.clone()));
                    s
                }
                _ => return connect_schema_at(t, ns, names),
            };
            if s.get("optional").is_none() {
                s["optional"] = json!(false);
            }
            Ok(s)
        }
        other => Err(format!("{other} is not an Avro schema")),
    }
}

/// An Avro value in Connect's JSON shapes (unions unwrapped, records as objects,
/// bytes and decimals as base64, logical types as their numbers).
pub fn connect_value(v: Avro) -> Result<Value, String> {
    Ok(match v {
        Avro::Null => Value::Null,
        Avro::Boolean(b) => Value::Bool(b),
        Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i) => json!(i),
        Avro::Long(i)
        | Avro::TimeMicros(i)
        | Avro::TimestampMillis(i)
        | Avro::TimestampMicros(i)
        | Avro::LocalTimestampMillis(i)
        | Avro::LocalTimestampMicros(i) => json!(i),
        Avro::Float(f) => json!(f64::from(f)),
        Avro::Double(f) => json!(f),
        Avro::String(s) | Avro::Enum(_, s) => Value::String(s),
        Avro::Uuid(u) => Value::String(u.to_string()),
        Avro::Bytes(b) | Avro::Fixed(_, b) => Value::String(b64().encode(b)),
        Avro::Decimal(d) => {
            let b: Vec<u8> = Vec::try_from(&d).map_err(|e| e.to_string())?;
            Value::String(b64().encode(b))
        }
        Avro::Union(_, inner) => connect_value(*inner)?,
        Avro::Array(items) => Value::Array(
            items
                .into_iter()
                .map(connect_value)
                .collect::<Result<_, _>>()?,
        ),
        Avro::Map(m) => Value::Object(
            m.into_iter()
                .map(|(k, x)| Ok((k, connect_value(x)?)))
                .collect::<Result<Map<_, _>, String>>()?,
        ),
        Avro::Record(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, x)| Ok((k, connect_value(x)?)))
                .collect::<Result<Map<_, _>, String>>()?,
        ),
        other => return Err(format!("an Avro value Connect has no type for: {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_schema() -> Value {
        json!({"type": "struct", "name": "customers", "optional": false, "fields": [
            {"field": "id", "type": "int64", "optional": false},
            {"field": "small", "type": "int16", "optional": true},
            {"field": "name", "type": "string", "optional": true},
            {"field": "amount", "type": "bytes", "optional": true, "name": DECIMAL, "version": 1, "parameters": {"scale": "2"}},
            {"field": "at", "type": "int64", "optional": false, "name": TIMESTAMP, "version": 1},
            {"field": "day", "type": "int32", "optional": true, "name": DATE, "version": 1},
            {"field": "score", "type": "double", "optional": true},
            {"field": "tags", "type": "array", "optional": true, "items": {"type": "string", "optional": false}},
        ]})
    }

    #[test]
    fn connect_to_avro_and_back_keeps_schema_and_value() {
        let c = row_schema();
        let text = avro_schema(&c).expect("schema").to_string();
        let parsed = apache_avro::Schema::parse_str(&text).expect("valid Avro");
        // -1234 as the unscaled decimal (-12.34), base64 of its two's complement.
        let amount = b64().encode((-1234i16).to_be_bytes());
        let v = json!({"id": 7, "small": -3, "name": null, "amount": amount, "at": 1_700_000_000_123i64,
                       "day": 19_000, "score": 1.5, "tags": ["a", "b"]});
        let datum = apache_avro::to_avro_datum(&parsed, avro_value(&c, &v).expect("value"))
            .expect("encode");
        let back = apache_avro::from_avro_datum(&parsed, &mut &datum[..], None).expect("decode");
        assert_eq!(connect_value(back).expect("to connect"), v);

        let cs =
            connect_schema(&serde_json::from_str(&text).expect("json")).expect("connect schema");
        assert_eq!(cs["name"], "customers");
        let f = |n: &str| {
            cs["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["field"] == n)
                .cloned()
                .unwrap()
        };
        assert_eq!(f("id")["type"], "int64");
        assert_eq!(f("id")["optional"], false);
        assert_eq!(
            (f("small")["type"].clone(), f("small")["optional"].clone()),
            (json!("int16"), json!(true))
        );
        assert_eq!(f("amount")["name"], DECIMAL);
        assert_eq!(f("amount")["parameters"]["scale"], "2");
        assert_eq!(f("at")["name"], TIMESTAMP);
        assert_eq!(f("day")["name"], DATE);
        assert_eq!(f("tags")["items"]["type"], "string");
    }

    #[test]
    fn unnamed_structs_are_connect_default_and_read_back_unnamed() {
        let c = json!({"type": "struct", "optional": false, "fields": [{"field": "a", "type": "string", "optional": false}]});
        let a = avro_schema(&c).expect("schema");
        assert_eq!(
            (a["name"].as_str(), a["namespace"].as_str()),
            (Some(DEFAULT_NAME), Some(NAMESPACE))
        );
        assert!(connect_schema(&a).expect("back").get("name").is_none());
    }

    #[test]
    fn bad_values_say_which_field() {
        let c = row_schema();
        let e = avro_value(&c, &json!({"id": "seven", "at": 1})).unwrap_err();
        assert!(e.contains("field id"), "{e}");
        let e = avro_value(&c, &json!({"id": 1})).unwrap_err();
        assert!(e.contains("field at"), "{e}");
        assert!(connect_schema(&json!(["int", "string"])).is_err());
    }
}
