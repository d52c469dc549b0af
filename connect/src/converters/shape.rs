//! Reading a Connect schema as JSON (the form JsonConverter's envelope carries
//! and every converter here passes on): its type, whether it is optional, its
//! logical name and a decimal's scale. The schema-aware converters' mappings
//! (Avro, JSON Schema) both read schemas through these.

use base64::Engine;
use serde_json::Value;

pub fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

pub fn ty(s: &Value) -> &str {
    s.get("type").and_then(Value::as_str).unwrap_or("")
}

pub fn optional(s: &Value) -> bool {
    s.get("optional").and_then(Value::as_bool).unwrap_or(false)
}

/// The schema's name (a logical type's, or a struct's).
pub fn name(s: &Value) -> &str {
    s.get("name").and_then(Value::as_str).unwrap_or("")
}

/// A `Decimal`'s `scale` parameter (a string in Connect's schemas, a number accepted).
pub fn decimal_scale(s: &Value) -> i32 {
    s.get("parameters")
        .and_then(|p| p.get("scale"))
        .and_then(|v| v.as_str().and_then(|t| t.parse().ok()).or(v.as_i64()))
        .unwrap_or(0) as i32
}

/// Base64 text of bytes, decoded.
pub fn base64_bytes(v: &Value) -> Option<Vec<u8>> {
    v.as_str().and_then(|s| b64().decode(s).ok())
}
