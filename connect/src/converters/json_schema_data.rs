//! Connect data ↔ JSON Schema, as Confluent's `JsonSchemaData` maps them, for
//! the JsonSchemaConverter:
//!
//! * integers are `"integer"` and floats `"number"`, tagged `"connect.type"`
//!   (`int8`..`int64`, `float32`, `float64`); bytes are base64 strings tagged
//!   `bytes`; a struct is an object whose `title` is the schema's name and
//!   whose properties carry `"connect.index"`; a map is an object with
//!   `additionalProperties`; an optional schema is `oneOf [null, T]`;
//! * `Decimal`, `Date`, `Time` and `Timestamp` keep Connect's name as the
//!   `title`; a decimal is written as a JSON number (exactly: the digits of
//!   its unscaled value), everything else as Connect's JSON shapes.
//!
//! Decimals are read through `f64` (serde_json's numbers), so a decimal of
//! more than 15 significant digits is rounded on the way in.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::shape::{b64, base64_bytes, decimal_scale, name, optional, ty};
use crate::logical::{decimal_text, unscaled_bytes, DATE, DECIMAL, TIME, TIMESTAMP};

/// The JSON Schema of a Connect schema.
pub fn json_schema(c: &Value) -> Result<Value, String> {
    let mut s = match (name(c), ty(c)) {
        (_, t @ ("int8" | "int16" | "int32" | "int64")) => {
            json!({"type": "integer", "connect.type": t})
        }
        (_, "float" | "float32") => json!({"type": "number", "connect.type": "float32"}),
        (_, "double" | "float64") => json!({"type": "number", "connect.type": "float64"}),
        (DECIMAL, "bytes") => json!({"type": "number"}),
        (_, "bytes") => json!({"type": "string", "connect.type": "bytes"}),
        (_, "boolean") => json!({"type": "boolean"}),
        (_, "string") => json!({"type": "string"}),
        (_, "array") => {
            let items = c.get("items").ok_or("an array schema without items")?;
            json!({"type": "array", "items": json_schema(items)?})
        }
        (_, "map") => {
            let values = c.get("values").ok_or("a map schema without values")?;
            if c.get("keys").map(ty).unwrap_or("string") != "string" {
                return Err("a map with non-string keys: the JsonSchemaConverter here writes string keys only".into());
            }
            json!({"type": "object", "additionalProperties": json_schema(values)?, "connect.type": "map"})
        }
        (_, "struct") => {
            let mut props = Map::new();
            let mut required = Vec::new();
            for (i, f) in c
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let fname = f
                    .get("field")
                    .and_then(Value::as_str)
                    .ok_or("a struct field without a name")?;
                let mut fs = json_schema(f)?;
                fs["connect.index"] = json!(i);
                if !optional(f) {
                    required.push(json!(fname));
                }
                props.insert(fname.to_string(), fs);
            }
            json!({"type": "object", "properties": props, "required": required})
        }
        (_, "") => return Err("a Connect schema without a type".into()),
        (_, other) => return Err(format!("unknown Connect schema type {other}")),
    };
    if !name(c).is_empty() {
        s["title"] = json!(name(c));
    }
    if matches!(name(c), DECIMAL | DATE | TIME | TIMESTAMP) {
        s["connect.version"] = json!(1);
        if let Some(p) = c.get("parameters") {
            s["connect.parameters"] = p.clone();
        }
        s["connect.type"] = json!(ty(c));
    }
    Ok(if optional(c) {
        json!({"oneOf": [{"type": "null"}, s]})
    } else {
        s
    })
}

/// The JSON text of a Connect value of schema `c` (decimals as exact numbers).
pub fn write(c: &Value, v: &Value, out: &mut String) -> Result<(), String> {
    if v.is_null() {
        if !optional(c) && c.get("default").is_none() {
            return Err(format!(
                "Invalid null value for required {} field",
                ty(c).to_uppercase()
            ));
        }
        out.push_str("null");
        return Ok(());
    }
    match (name(c), ty(c)) {
        (DECIMAL, _) => {
            let raw = base64_bytes(v)
                .ok_or_else(|| format!("a Decimal that is not base64 bytes: {v}"))?;
            out.push_str(&decimal_text(&raw, decimal_scale(c))?);
        }
        (_, "struct") => {
            let o = v
                .as_object()
                .ok_or_else(|| format!("Expected STRUCT value but got {v}"))?;
            out.push('{');
            for (i, f) in c
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let fname = f.get("field").and_then(Value::as_str).unwrap_or("");
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(fname.to_string()).to_string());
                out.push(':');
                let x = o
                    .get(fname)
                    .filter(|x| !x.is_null())
                    .or(f.get("default"))
                    .unwrap_or(&Value::Null);
                write(f, x, out).map_err(|e| format!("{e} (field {fname})"))?;
            }
            out.push('}');
        }
        (_, "array") => {
            let items = c.get("items").ok_or("an array schema without items")?;
            let a = v
                .as_array()
                .ok_or_else(|| format!("Expected ARRAY value but got {v}"))?;
            write_all(items, a.iter().map(|x| (None, x)), "[]", out)?;
        }
        (_, "map") => {
            let values = c.get("values").ok_or("a map schema without values")?;
            let o = v
                .as_object()
                .ok_or_else(|| format!("Expected MAP value but got {v}"))?;
            write_all(values, o.iter().map(|(k, x)| (Some(k), x)), "{}", out)?;
        }
        _ => out.push_str(&v.to_string()),
    }
    Ok(())
}

/// An array's items or a map's entries (a key, then `:`), each against `schema`,
/// between the two `brackets`.
fn write_all<'v>(
    schema: &Value,
    entries: impl Iterator<Item = (Option<&'v String>, &'v Value)>,
    brackets: &str,
    out: &mut String,
) -> Result<(), String> {
    let (open, close) = brackets.split_at(1);
    out.push_str(open);
    for (i, (k, x)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if let Some(k) = k {
            out.push_str(&Value::String(k.clone()).to_string());
            out.push(':');
        }
        write(schema, x, out)?;
    }
    out.push_str(close);
    Ok(())
}

/// The Connect schema of a JSON Schema written as above (or by Confluent's converter).
pub fn connect_schema(j: &Value) -> Result<Value, String> {
    if let Some(branches) = j
        .get("oneOf")
        .or_else(|| j.get("anyOf"))
        .and_then(Value::as_array)
    {
        let non_null: Vec<&Value> = branches.iter().filter(|b| ty(b) != "null").collect();
        if non_null.len() != 1 || branches.len() != 2 {
            return Err("a oneOf other than [null, T]: only optional values are read here".into());
        }
        let mut s = connect_schema(non_null[0])?;
        s["optional"] = json!(true);
        return Ok(s);
    }
    let title = j.get("title").and_then(Value::as_str).unwrap_or("");
    let ct = j.get("connect.type").and_then(Value::as_str);
    let mut s = match (title, ty(j)) {
        (DECIMAL, _) => {
            let params = j
                .get("connect.parameters")
                .cloned()
                .unwrap_or_else(|| json!({"scale": "0"}));
            json!({"type": "bytes", "parameters": params})
        }
        (DATE | TIME, _) => json!({"type": "int32"}),
        (TIMESTAMP, _) => json!({"type": "int64"}),
        (_, "integer") => json!({"type": ct.unwrap_or("int64")}),
        (_, "number") => json!({"type": if ct == Some("float32") { "float" } else { "double" }}),
        (_, "string") if ct == Some("bytes") => json!({"type": "bytes"}),
        (_, t @ ("string" | "boolean")) => json!({"type": t}),
        (_, "array") => {
            json!({"type": "array", "items": connect_schema(j.get("items").ok_or("an array without items")?)?})
        }
        (_, "object") if j.get("properties").is_some() => {
            let props = j
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let mut fields: Vec<(i64, String, Value)> = Vec::new();
            for (k, p) in props {
                let idx = p
                    .get("connect.index")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::MAX);
                let mut fs = connect_schema(&p)?;
                fs["field"] = json!(k);
                fields.push((idx, k, fs));
            }
            fields.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            json!({"type": "struct", "fields": fields.into_iter().map(|f| f.2).collect::<Vec<_>>()})
        }
        (_, "object") => {
            let values = j
                .get("additionalProperties")
                .filter(|v| v.is_object())
                .ok_or("an object with neither properties nor additionalProperties")?;
            json!({"type": "map", "keys": {"type": "string", "optional": false}, "values": connect_schema(values)?})
        }
        (_, other) => {
            return Err(format!(
                "a JSON Schema of type {other:?} has no Connect type here"
            ))
        }
    };
    if !title.is_empty() {
        s["name"] = json!(title);
    }
    if matches!(title, DECIMAL | DATE | TIME | TIMESTAMP) {
        s["version"] = json!(1);
    }
    s["optional"] = json!(false);
    Ok(s)
}

/// A JSON document read with Connect schema `c` as Connect's JSON shapes
/// (a decimal's number becomes base64 of its unscaled value).
pub fn connect_value(c: &Value, v: &Value) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    Ok(match (name(c), ty(c)) {
        (DECIMAL, _) => {
            if !v.is_number() {
                return Err(format!("Expected a decimal number but got {v}"));
            }
            // The number's digits as serde_json reads them (through f64).
            Value::String(b64().encode(unscaled_bytes(&v.to_string(), decimal_scale(c))?))
        }
        (_, "struct") => {
            let o = v
                .as_object()
                .ok_or_else(|| format!("Expected STRUCT value but got {v}"))?;
            let mut out = Map::new();
            for f in c
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let fname = f.get("field").and_then(Value::as_str).unwrap_or("");
                let x = o.get(fname).unwrap_or(&Value::Null);
                if x.is_null() && !optional(f) {
                    return Err(format!(
                        "Invalid null value for required {} field (field {fname})",
                        ty(f).to_uppercase()
                    ));
                }
                out.insert(
                    fname.to_string(),
                    connect_value(f, x).map_err(|e| format!("{e} (field {fname})"))?,
                );
            }
            Value::Object(out)
        }
        (_, "array") => {
            let items = c.get("items").ok_or("an array schema without items")?;
            let a = v
                .as_array()
                .ok_or_else(|| format!("Expected ARRAY value but got {v}"))?;
            Value::Array(
                a.iter()
                    .map(|x| connect_value(items, x))
                    .collect::<Result<_, _>>()?,
            )
        }
        (_, "map") => {
            let values = c.get("values").ok_or("a map schema without values")?;
            let o = v
                .as_object()
                .ok_or_else(|| format!("Expected MAP value but got {v}"))?;
            Value::Object(
                o.iter()
                    .map(|(k, x)| Ok((k.clone(), connect_value(values, x)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
        (_, t) => {
            let ok = match t {
                "int8" | "int16" | "int32" | "int64" => v.is_i64() || v.is_u64(),
                "float" | "double" => v.is_number(),
                "boolean" => v.is_boolean(),
                "string" | "bytes" => v.is_string(),
                _ => false,
            };
            if !ok {
                return Err(format!("Expected {} value but got {v}", t.to_uppercase()));
            }
            v.clone()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_json_schema() {
        let c = json!({"type": "struct", "name": "orders", "optional": false, "fields": [
            {"field": "id", "type": "int32", "optional": false},
            {"field": "amount", "type": "bytes", "optional": true, "name": DECIMAL, "version": 1, "parameters": {"scale": "2"}},
            {"field": "at", "type": "int64", "optional": false, "name": TIMESTAMP, "version": 1},
            {"field": "note", "type": "string", "optional": true},
            {"field": "raw", "type": "bytes", "optional": false},
        ]});
        let amount = b64().encode((-1234i16).to_be_bytes());
        let v = json!({"id": 7, "amount": amount, "at": 1_700_000_000_123i64, "note": null, "raw": "AAEC"});
        let mut text = String::new();
        write(&c, &v, &mut text).expect("write");
        assert_eq!(
            text,
            r#"{"id":7,"amount":-12.34,"at":1700000000123,"note":null,"raw":"AAEC"}"#
        );
        let js = json_schema(&c).expect("schema");
        assert_eq!(js["title"], "orders");
        assert_eq!(js["required"], json!(["id", "at", "raw"]));
        assert_eq!(js["properties"]["amount"]["oneOf"][1]["title"], DECIMAL);
        let back = connect_schema(&js).expect("connect schema");
        let names: Vec<&str> = back["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["id", "amount", "at", "note", "raw"]);
        let doc: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(connect_value(&back, &doc).expect("value"), v);
        assert!(
            connect_value(&back, &json!({"id": "x", "at": 1, "raw": ""}))
                .unwrap_err()
                .contains("field id")
        );
    }

    #[test]
    fn arrays_and_maps_write_each_item_against_its_schema() {
        let dec = json!({"type": "bytes", "name": DECIMAL, "optional": true, "parameters": {"scale": "1"}});
        let one = b64().encode(15i8.to_be_bytes());
        let mut text = String::new();
        let array = json!({"type": "array", "items": dec, "optional": false});
        write(&array, &json!([one, null]), &mut text).expect("array");
        assert_eq!(text, "[1.5,null]");
        text.clear();
        let map =
            json!({"type": "map", "keys": {"type": "string"}, "values": dec, "optional": false});
        write(&map, &json!({"a\"b": one, "c": null}), &mut text).expect("map");
        assert_eq!(text, r#"{"a\"b":1.5,"c":null}"#);
        text.clear();
        write(&array, &json!([]), &mut text).expect("empty");
        write(&map, &json!({}), &mut text).expect("empty");
        assert_eq!(text, "[]{}");
        assert!(write(&map, &json!([1]), &mut text)
            .unwrap_err()
            .contains("MAP"));
    }

    #[test]
    fn decimals_print_exactly() {
        let c = json!({"type": "bytes", "name": DECIMAL, "optional": false, "parameters": {"scale": "4"}});
        let big = 123_456_789_012_345_678_901_234_567i128.to_be_bytes();
        let mut out = String::new();
        write(&c, &json!(b64().encode(big)), &mut out).unwrap();
        assert_eq!(out, "12345678901234567890123.4567");
        let back = connect_value(&c, &json!(0.5)).unwrap();
        assert_eq!(base64_bytes(&back).unwrap(), vec![0x13, 0x88]); // 5000
    }
}
