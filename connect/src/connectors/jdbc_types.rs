//! The values the JDBC connectors move between Connect and SQL: a column type derived
//! from a Connect schema (sink: what `auto.create` declares) or from a result column
//! (source), a SQL value, and the conversions both ways, logical types included
//! (`Decimal` as base64 of the unscaled two's-complement integer, `Timestamp` as epoch
//! milliseconds, `Date` as epoch days, `Time` as milliseconds of the day), as Kafka's
//! JsonConverter writes them.

use base64::Engine;
use serde_json::{json, Value};

pub use crate::logical::{
    civil_from_days, days_from_civil, decimal_text, unscaled_bytes, DATE, DECIMAL, TIME, TIMESTAMP,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Bool,
    Text,
    Bytes,
    Decimal { scale: i32 },
    Date,
    Time,
    Timestamp,
}

/// A SQL value. Times are UTC; the connectors set the session time zone to UTC.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
    /// Decimal text (`-12.50`).
    Decimal(String),
    /// Microseconds since the epoch.
    Timestamp(i64),
    /// Days since the epoch.
    Date(i32),
    /// Microseconds of the day.
    Time(i64),
}

impl ColType {
    /// The type of a Connect schema (a struct field's schema).
    pub fn of_schema(s: &Value) -> Result<ColType, String> {
        let name = s.get("name").and_then(|n| n.as_str()).unwrap_or("");
        let ty = s.get("type").and_then(|t| t.as_str()).unwrap_or("");
        Ok(match (name, ty) {
            (DECIMAL, _) => ColType::Decimal {
                scale: s
                    .get("parameters")
                    .and_then(|p| p.get("scale"))
                    .and_then(|v| v.as_str().and_then(|t| t.parse().ok()).or(v.as_i64()))
                    .unwrap_or(0) as i32,
            },
            (TIMESTAMP, _) => ColType::Timestamp,
            (DATE, _) => ColType::Date,
            (TIME, _) => ColType::Time,
            (_, "int8") => ColType::Int8,
            (_, "int16") => ColType::Int16,
            (_, "int32") => ColType::Int32,
            (_, "int64") => ColType::Int64,
            (_, "float" | "float32") => ColType::Float32,
            (_, "double" | "float64") => ColType::Float64,
            (_, "boolean") => ColType::Bool,
            (_, "string") => ColType::Text,
            (_, "bytes") => ColType::Bytes,
            (_, other) => {
                return Err(format!(
                    "{} is not a primitive type a JDBC sink can write to a column",
                    if other.is_empty() { "(no type)" } else { other }
                ))
            }
        })
    }

    /// The Connect schema of a column of this type (source side).
    pub fn schema(&self, field: &str, optional: bool) -> Value {
        let (ty, name, params) = match self {
            ColType::Int8 => ("int8", None, None),
            ColType::Int16 => ("int16", None, None),
            ColType::Int32 => ("int32", None, None),
            ColType::Int64 => ("int64", None, None),
            ColType::Float32 => ("float", None, None),
            ColType::Float64 => ("double", None, None),
            ColType::Bool => ("boolean", None, None),
            ColType::Text => ("string", None, None),
            ColType::Bytes => ("bytes", None, None),
            ColType::Decimal { scale } => (
                "bytes",
                Some(DECIMAL),
                Some(json!({ "scale": scale.to_string() })),
            ),
            ColType::Timestamp => ("int64", Some(TIMESTAMP), None),
            ColType::Date => ("int32", Some(DATE), None),
            ColType::Time => ("int32", Some(TIME), None),
        };
        let mut s = json!({ "type": ty, "optional": optional, "field": field });
        if let Some(n) = name {
            s["name"] = json!(n);
            s["version"] = json!(1);
        }
        if let Some(p) = params {
            s["parameters"] = p;
        }
        s
    }
}

/// A JSON payload (as the converter left it) of a field of type `t` → a SQL value.
pub fn to_sql(t: ColType, v: &Value) -> Result<SqlValue, String> {
    if v.is_null() {
        return Ok(SqlValue::Null);
    }
    let int = |v: &Value| {
        v.as_i64()
            .ok_or_else(|| format!("expected an integer, got {v}"))
    };
    Ok(match t {
        ColType::Int8 | ColType::Int16 | ColType::Int32 | ColType::Int64 => SqlValue::Int(int(v)?),
        ColType::Float32 | ColType::Float64 => SqlValue::Float(
            v.as_f64()
                .ok_or_else(|| format!("expected a number, got {v}"))?,
        ),
        ColType::Bool => SqlValue::Bool(
            v.as_bool()
                .ok_or_else(|| format!("expected a boolean, got {v}"))?,
        ),
        ColType::Text => match v {
            Value::String(s) => SqlValue::Text(s.clone()),
            other => SqlValue::Text(other.to_string()),
        },
        ColType::Bytes => SqlValue::Bytes(b64(v)?),
        ColType::Decimal { scale } => match v {
            // decimal.format=NUMERIC writes a JSON number.
            Value::Number(n) => SqlValue::Decimal(n.to_string()),
            _ => SqlValue::Decimal(decimal_text(&b64(v)?, scale)?),
        },
        ColType::Timestamp => SqlValue::Timestamp(int(v)?.saturating_mul(1000)),
        ColType::Date => SqlValue::Date(int(v)? as i32),
        ColType::Time => SqlValue::Time(int(v)?.saturating_mul(1000)),
    })
}

/// A SQL value of a column of type `t` → the JSON payload Kafka's JsonConverter writes.
pub fn to_json(t: ColType, v: &SqlValue) -> Value {
    match (t, v) {
        (_, SqlValue::Null) => Value::Null,
        (ColType::Decimal { scale }, SqlValue::Decimal(s)) => {
            let bytes = unscaled_bytes(s, scale).unwrap_or_default();
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        (ColType::Timestamp, SqlValue::Timestamp(us)) => json!(us.div_euclid(1000)),
        (ColType::Date, SqlValue::Date(d)) => json!(d),
        (ColType::Time, SqlValue::Time(us)) => json!(us.div_euclid(1000)),
        (_, SqlValue::Int(i)) => json!(i),
        (_, SqlValue::Float(f)) => json!(f),
        (_, SqlValue::Bool(b)) => json!(b),
        (_, SqlValue::Text(s)) => json!(s),
        (_, SqlValue::Decimal(s)) => json!(s),
        (_, SqlValue::Bytes(b)) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
        (_, SqlValue::Timestamp(us)) => json!(us.div_euclid(1000)),
        (_, SqlValue::Date(d)) => json!(d),
        (_, SqlValue::Time(us)) => json!(us.div_euclid(1000)),
    }
}

fn b64(v: &Value) -> Result<Vec<u8>, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("expected base64 bytes, got {v}"))?;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("invalid base64 bytes: {e}"))
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since the epoch (UTC).
pub fn timestamp_text(us: i64) -> String {
    let days = us.div_euclid(86_400_000_000);
    let mut s = String::with_capacity(26);
    push_date(&mut s, days);
    s.push(' ');
    push_time(&mut s, us.rem_euclid(86_400_000_000));
    s
}

pub fn date_text(days: i32) -> String {
    let mut s = String::with_capacity(10);
    push_date(&mut s, days as i64);
    s
}

pub fn time_text(us: i64) -> String {
    let mut s = String::with_capacity(15);
    push_time(&mut s, us);
    s
}

// Written digit by digit: these run for every temporal value a sink writes, and
// `format!`'s padding machinery was a tenth of the JDBC sink's CPU.

/// `YYYY-MM-DD` of days since the epoch (years outside 0..=9999 as `format!` has them).
fn push_date(s: &mut String, days: i64) {
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        push_digits(s, y as u64, 4);
    } else {
        s.push_str(&format!("{y:04}"));
    }
    s.push('-');
    push_digits(s, m as u64, 2);
    s.push('-');
    push_digits(s, d as u64, 2);
}

/// `HH:MM:SS.ffffff` of microseconds since midnight.
fn push_time(s: &mut String, us: i64) {
    let secs = us.div_euclid(1_000_000);
    push_digits(s, (secs / 3600) as u64, 2);
    s.push(':');
    push_digits(s, ((secs / 60) % 60) as u64, 2);
    s.push(':');
    push_digits(s, (secs % 60) as u64, 2);
    s.push('.');
    push_digits(s, us.rem_euclid(1_000_000) as u64, 6);
}

/// `v` in decimal, zero-padded to at least `width` digits.
fn push_digits(s: &mut String, v: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v);
    for _ in digits.len()..width {
        s.push('0');
    }
    s.push_str(digits);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_trip() {
        for (text, scale) in [
            ("12.50", 2),
            ("-0.01", 2),
            ("0.00", 2),
            ("123456789012345678.9", 1),
            ("-128", 0),
            ("255", 0),
            ("0.05", 2),
            ("-0.05", 2),
            ("-1.5", 1),
            ("0.000001", 6),
        ] {
            let b = unscaled_bytes(text, scale).unwrap();
            assert_eq!(decimal_text(&b, scale).unwrap(), text, "{text}");
        }
        // Kafka's encoding of 12.50 at scale 2: unscaled 1250 = 0x04E2.
        assert_eq!(unscaled_bytes("12.5", 2).unwrap(), vec![0x04, 0xe2]);
        assert_eq!(unscaled_bytes("-1", 0).unwrap(), vec![0xff]);
        assert_eq!(unscaled_bytes("128", 0).unwrap(), vec![0x00, 0x80]);
        assert!(unscaled_bytes("1x", 0).is_err());
        // A negative scale multiplies: unscaled 12 at scale -2 is 1200.
        assert_eq!(decimal_text(&[12], -2).unwrap(), "1200");
    }

    #[test]
    fn calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(
            timestamp_text(1_700_000_000_123_456),
            "2023-11-14 22:13:20.123456"
        );
        assert_eq!(date_text(19_000), "2022-01-08");
        // Before the epoch, at midnight, and years `format!` pads or signs.
        assert_eq!(timestamp_text(-1), "1969-12-31 23:59:59.999999");
        assert_eq!(timestamp_text(0), "1970-01-01 00:00:00.000000");
        assert_eq!(date_text(-719_528), "0000-01-01");
        assert_eq!(date_text(-719_529), "-001-12-31");
        assert_eq!(date_text(2_932_897), "10000-01-01");
        assert_eq!(time_text(45_296_000_007), "12:34:56.000007");
    }

    #[test]
    fn schemas_and_values() {
        let dec = json!({"type":"bytes","name":DECIMAL,"parameters":{"scale":"2"}});
        let t = ColType::of_schema(&dec).unwrap();
        assert_eq!(t, ColType::Decimal { scale: 2 });
        assert_eq!(
            to_sql(t, &json!("BOI=")).unwrap(),
            SqlValue::Decimal("12.50".into())
        );
        assert_eq!(to_json(t, &SqlValue::Decimal("12.5".into())), json!("BOI="));
        let ts = ColType::of_schema(&json!({"type":"int64","name":TIMESTAMP})).unwrap();
        assert_eq!(
            to_sql(ts, &json!(1500)).unwrap(),
            SqlValue::Timestamp(1_500_000)
        );
        assert!(to_sql(ColType::Int32, &json!("x")).is_err());
        assert!(ColType::of_schema(&json!({"type":"struct"})).is_err());
        assert_eq!(ColType::Date.schema("d", true)["name"], json!(DATE));
    }
}
