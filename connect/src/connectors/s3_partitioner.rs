//! The S3 sink's partitioners, under Confluent's class names and keys: the
//! directory (Confluent's "encoded partition") each record's object goes to,
//! `<topics.dir>/<topic>/<encoded partition>/<topic>+<partition>+<start>.<ext>`.
//!
//! - `DefaultPartitioner`: `partition=<Kafka partition>`.
//! - `FieldPartitioner`: `<field>=<value>` for each of `partition.field.name`
//!   (an integer, string or boolean field of the value's struct, or of a
//!   schemaless map), joined by `/`.
//! - `TimeBasedPartitioner`, and `DailyPartitioner`/`HourlyPartitioner` (its two
//!   presets): the record's time rounded down to `partition.duration.ms` in
//!   `timezone`, written with the Joda pattern `path.format`. The time comes from
//!   `timestamp.extractor`: `Wallclock` (the worker's clock), `Record` (the Kafka
//!   timestamp) or `RecordField` (`timestamp.field` of the value, dotted for a
//!   nested one: epoch milliseconds, a Connect `Timestamp` or an ISO-8601 string).
//!
//! Every partitioner but `Wallclock` time is deterministic: a record replayed
//! after a crash goes to the same directory, which keeps the sink exactly-once.
//! Time zones are `UTC` and fixed offsets (`+02:00`, `UTC+2`): a named zone with
//! daylight saving (`Europe/Paris`) is refused at configuration, not guessed.

use serde_json::Value;

use super::records::SinkRecord;
use crate::config::{self, ConfigError, ConfigMap};
use crate::converters::Data;
use crate::date_pattern::{format_ts, unknown_letter};
use crate::logical::days_from_civil;

const PKG: &str = "io.confluent.connect.storage.partitioner.";
pub const DEFAULT: &str = "io.confluent.connect.storage.partitioner.DefaultPartitioner";
const FIELD: &str = "FieldPartitioner";
const TIME_BASED: &str = "TimeBasedPartitioner";
const DAILY: &str = "DailyPartitioner";
const HOURLY: &str = "HourlyPartitioner";
const DAY_FORMAT: &str = "'year'=YYYY/'month'=MM/'day'=dd";
const HOUR_FORMAT: &str = "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH";

#[derive(Debug, Clone, PartialEq)]
pub enum Partitioner {
    Default,
    Field(Vec<String>),
    Time(TimePartitioner),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimePartitioner {
    duration_ms: i64,
    path_format: String,
    /// The time zone's fixed offset from UTC.
    offset_ms: i64,
    extractor: Extractor,
}

#[derive(Debug, Clone, PartialEq)]
enum Extractor {
    Wallclock,
    Record,
    /// The field's path in the value (`a.b` → `["a", "b"]`).
    RecordField(Vec<String>),
}

/// Where a record goes: its directory, and (time-based) the time that chose it,
/// which `rotate.interval.ms` measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub dir: String,
    pub time: Option<i64>,
}

impl Partitioner {
    pub fn from_config(m: &ConfigMap) -> Result<Self, ConfigError> {
        let class = m.get("partitioner.class").map_or(DEFAULT, |s| s.trim());
        let short = class.strip_prefix(PKG).unwrap_or("");
        let (duration_ms, path_format) = match short {
            "DefaultPartitioner" => return Ok(Partitioner::Default),
            FIELD => {
                let fields = config::list(m, "partition.field.name");
                if fields.is_empty() {
                    return Err(ConfigError::new(
                        "partition.field.name",
                        "FieldPartitioner needs partition.field.name (a comma-separated list of fields)",
                    ));
                }
                return Ok(Partitioner::Field(fields));
            }
            TIME_BASED => {
                let d = config::int(m, "partition.duration.ms", -1)?;
                if d <= 0 {
                    return Err(ConfigError::new(
                        "partition.duration.ms",
                        format!("Invalid value {d}: Partition duration needs to be a positive."),
                    ));
                }
                let f = m.get("path.format").map_or("", |s| s.trim());
                if f.is_empty() {
                    return Err(ConfigError::new(
                        "path.format",
                        "Path format cannot be empty.",
                    ));
                }
                (d, f.to_string())
            }
            DAILY => (86_400_000, DAY_FORMAT.to_string()),
            HOURLY => (3_600_000, HOUR_FORMAT.to_string()),
            _ => {
                return Err(ConfigError::new(
                    "partitioner.class",
                    format!(
                        "Invalid value {class}: built-in partitioners are {PKG}{{DefaultPartitioner, {FIELD}, {TIME_BASED}, {DAILY}, {HOURLY}}}"
                    ),
                ))
            }
        };
        if let Some(c) = unknown_letter(&path_format) {
            return Err(ConfigError::new(
                "path.format",
                format!("Invalid value {path_format}: the letter '{c}' is not supported (YYYY, yyyy, yy, MM, dd, HH, mm, ss, SSS and 'quoted text' are)"),
            ));
        }
        if m.get("locale").is_none_or(|s| s.trim().is_empty()) {
            return Err(ConfigError::new("locale", "Locale cannot be empty."));
        }
        let tz = m.get("timezone").map_or("", |s| s.trim());
        if tz.is_empty() {
            return Err(ConfigError::new("timezone", "Timezone cannot be empty."));
        }
        let offset_ms = fixed_offset_ms(tz).ok_or_else(|| {
            ConfigError::new(
                "timezone",
                format!("Invalid value {tz}: UTC and fixed offsets (+02:00, UTC-5) are supported; zones with daylight saving are not"),
            )
        })?;
        let extractor = match m
            .get("timestamp.extractor")
            .map_or("Wallclock", |s| s.trim())
        {
            "Wallclock" => Extractor::Wallclock,
            "Record" => Extractor::Record,
            "RecordField" => {
                let f = m.get("timestamp.field").map_or("timestamp", |s| s.trim());
                Extractor::RecordField(f.split('.').map(str::to_string).collect())
            }
            other => {
                return Err(ConfigError::new(
                    "timestamp.extractor",
                    format!("Invalid value {other}: one of Wallclock, Record, RecordField"),
                ))
            }
        };
        Ok(Partitioner::Time(TimePartitioner {
            duration_ms,
            path_format,
            offset_ms,
            extractor,
        }))
    }

    /// Whether [`Partitioner::place`] reads the worker's clock (`Wallclock`): the
    /// sink asks the clock only then.
    pub fn reads_clock(&self) -> bool {
        matches!(self, Partitioner::Time(t) if t.extractor == Extractor::Wallclock)
    }

    /// Whether the directory depends on the record's value (a field of it): the
    /// worker may hand the sink a schemaless JSON value as its text otherwise.
    pub fn reads_value(&self) -> bool {
        match self {
            Partitioner::Default => false,
            Partitioner::Field(_) => true,
            Partitioner::Time(t) => matches!(t.extractor, Extractor::RecordField(_)),
        }
    }

    /// The `DefaultPartitioner`'s directory of Kafka partition `p`.
    pub fn partition_dir(p: i32) -> String {
        format!("partition={p}")
    }

    /// The directory of `r` (`now_ms`: the worker's clock, for `Wallclock`).
    pub fn place(&self, r: &SinkRecord, now_ms: i64) -> Result<Placement, String> {
        match self {
            Partitioner::Default => Ok(Placement {
                dir: Self::partition_dir(r.partition),
                time: None,
            }),
            Partitioner::Field(fields) => {
                let parts = fields
                    .iter()
                    .map(|f| field_part(r, f))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Placement {
                    dir: parts.join("/"),
                    time: None,
                })
            }
            Partitioner::Time(t) => {
                let ts = match &t.extractor {
                    Extractor::Wallclock => now_ms,
                    Extractor::Record => r
                        .timestamp
                        .ok_or("Unable to determine timestamp using timestamp.extractor Record: the record has none")?,
                    Extractor::RecordField(path) => field_time(r, path)?,
                };
                if ts < 0 {
                    return Err(format!(
                        "Unable to determine timestamp: {ts} is negative (timestamp.extractor)"
                    ));
                }
                let local = ts + t.offset_ms;
                let bucket = local.div_euclid(t.duration_ms) * t.duration_ms;
                Ok(Placement {
                    dir: format_ts(&t.path_format, bucket)
                        .trim_end_matches('/')
                        .to_string(),
                    time: Some(ts),
                })
            }
        }
    }
}

/// `UTC`, `GMT`, `Z`, `Etc/UTC`, or a fixed offset (`+02:00`, `-0530`, `UTC+2`).
pub fn fixed_offset_ms(tz: &str) -> Option<i64> {
    let rest = ["Etc/UTC", "Etc/GMT", "UTC", "GMT", "Z"]
        .iter()
        .find_map(|p| tz.strip_prefix(p))
        .unwrap_or(tz);
    if rest.is_empty() {
        return Some(0);
    }
    let (sign, hm) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (h, m) = match hm.split_once(':') {
        Some((h, m)) => (h, m),
        None if hm.len() == 4 => hm.split_at(2),
        None => (hm, "0"),
    };
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 18 && m < 60 && !hm.is_empty()).then_some(sign * (h * 60 + m) * 60_000)
}

/// The value's struct (with its schema, if it came with one).
fn value_struct(
    r: &SinkRecord,
) -> Result<(&serde_json::Map<String, Value>, Option<&Value>), String> {
    match &r.value.data {
        Data::Value(Value::Object(o)) => Ok((o, r.value.schema.as_deref())),
        _ => Err("Error encoding partition: the value is not a struct or a map".into()),
    }
}

/// One `name=value` of the FieldPartitioner.
fn field_part(r: &SinkRecord, name: &str) -> Result<String, String> {
    let (o, schema) = value_struct(r)?;
    let v = o
        .get(name)
        .ok_or_else(|| format!("Error encoding partition: the value has no field {name}"))?;
    if let Some(fs) = schema.and_then(|s| field_schema(s, name)) {
        let t = fs.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(
            t,
            "int8" | "int16" | "int32" | "int64" | "string" | "boolean"
        ) {
            return Err(format!(
                "Error encoding partition: type {t} of field {name} is not supported as a partition key"
            ));
        }
    }
    match v {
        Value::String(s) => Ok(format!("{name}={s}")),
        Value::Bool(b) => Ok(format!("{name}={b}")),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(format!("{name}={n}")),
        other => Err(format!(
            "Error encoding partition: field {name} holds {other}, not an integer, string or boolean"
        )),
    }
}

fn field_schema<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    schema
        .get("fields")?
        .as_array()?
        .iter()
        .find(|f| f.get("field").and_then(Value::as_str) == Some(name))
}

/// The RecordField extractor's time: epoch ms (a number or a Connect
/// `Timestamp`), or an ISO-8601 string.
fn field_time(r: &SinkRecord, path: &[String]) -> Result<i64, String> {
    let (o, _) = value_struct(r)?;
    let mut v = None;
    let mut cur = o;
    for (i, p) in path.iter().enumerate() {
        let x = cur.get(p).ok_or_else(|| {
            format!(
                "Unable to determine timestamp: the value has no field {}",
                path.join(".")
            )
        })?;
        if i + 1 == path.len() {
            v = Some(x);
        } else {
            cur = x.as_object().ok_or_else(|| {
                format!(
                    "Unable to determine timestamp: {} is not a struct",
                    path[..=i].join(".")
                )
            })?;
        }
    }
    match v {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("Unable to determine timestamp: {n} is not epoch milliseconds")),
        Some(Value::String(s)) => iso_ms(s)
            .ok_or_else(|| format!("Unable to determine timestamp: {s:?} is not an ISO-8601 time")),
        Some(other) => Err(format!(
            "Unsupported type '{other}' for user-defined timestamp field."
        )),
        None => Err("Unable to determine timestamp: timestamp.field is empty".into()),
    }
}

/// `2024-02-29`, `2024-02-29T13:05`, `2024-02-29T13:05:09.042Z`, `...+02:00`
/// (no zone: UTC) as epoch milliseconds.
fn iso_ms(s: &str) -> Option<i64> {
    let num = |t: &str| -> Option<i64> {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())?
    };
    let (date, time) = s.split_once('T').unwrap_or((s, ""));
    let mut d = date.splitn(3, '-');
    let (y, mo, da) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return None;
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        (&time[..i], fixed_offset_ms(&time[i..])?)
    } else {
        (time, 0)
    };
    let mut ms = 0;
    if !clock.is_empty() {
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let mut t = hms.split(':');
        let h = num(t.next()?)?;
        let mi = num(t.next()?)?;
        let se = t.next().map_or(Some(0), num)?;
        if h > 23 || mi > 59 || se > 60 || t.next().is_some() {
            return None;
        }
        let f = if frac.is_empty() {
            0
        } else {
            num(&format!("{frac:0<3}")[..3])?
        };
        ms = ((h * 60 + mi) * 60 + se) * 1000 + f;
    }
    Some(days_from_civil(y, mo as u32, da as u32) * 86_400_000 + ms - offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::converters::SchemaAndValue;
    use serde_json::json;

    fn cfg(kv: &[(&str, &str)]) -> ConfigMap {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rec(value: Value, schema: Option<Value>, ts: Option<i64>) -> SinkRecord {
        SinkRecord {
            topic: "t".into(),
            partition: 3,
            offset: 7,
            timestamp: ts,
            key: SchemaAndValue::plain(Data::Null),
            value: SchemaAndValue {
                schema: schema.map(std::sync::Arc::new),
                data: Data::Value(value),
            },
        }
    }

    fn time(kv: &[(&str, &str)]) -> Result<Partitioner, ConfigError> {
        let mut all = vec![
            (
                "partitioner.class",
                "io.confluent.connect.storage.partitioner.TimeBasedPartitioner",
            ),
            ("locale", "en-US"),
            ("timezone", "UTC"),
        ];
        all.extend_from_slice(kv);
        Partitioner::from_config(&cfg(&all))
    }

    // 2024-02-29T13:05:09.042Z
    const T: i64 = 1_709_211_909_042;

    #[test]
    fn default_and_field_partitions() {
        let r = rec(json!({"region": "eu", "shard": 4, "hot": true}), None, None);
        let d = Partitioner::from_config(&cfg(&[])).unwrap();
        assert_eq!(d.place(&r, 0).unwrap().dir, "partition=3");
        let f = Partitioner::from_config(&cfg(&[
            (
                "partitioner.class",
                "io.confluent.connect.storage.partitioner.FieldPartitioner",
            ),
            ("partition.field.name", "region, shard,hot"),
        ]))
        .unwrap();
        assert_eq!(f.place(&r, 0).unwrap().dir, "region=eu/shard=4/hot=true");
        // A struct field of a type Confluent refuses, a float, a missing field.
        let schema = json!({"type": "struct", "fields": [
            {"field": "region", "type": "float64"}, {"field": "shard", "type": "int32"}]});
        let bad = rec(json!({"region": 1.5, "shard": 4}), Some(schema), None);
        assert!(f.place(&bad, 0).unwrap_err().contains("float64"));
        assert!(f
            .place(&rec(json!({"region": 1.5}), None, None), 0)
            .is_err());
        assert!(f.place(&rec(json!("x"), None, None), 0).is_err());
    }

    #[test]
    fn time_based_rounds_down_in_its_zone() {
        let hourly = time(&[
            ("partition.duration.ms", "3600000"),
            ("path.format", "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH/"),
            ("timestamp.extractor", "Record"),
        ])
        .unwrap();
        let p = hourly.place(&rec(json!({}), None, Some(T)), 0).unwrap();
        assert_eq!(p.dir, "year=2024/month=02/day=29/hour=13");
        assert_eq!(p.time, Some(T));
        // A day in UTC+2 begins at 22:00 UTC the day before.
        let daily = Partitioner::from_config(&cfg(&[
            (
                "partitioner.class",
                "io.confluent.connect.storage.partitioner.DailyPartitioner",
            ),
            ("locale", "en"),
            ("timezone", "UTC+02:00"),
            ("timestamp.extractor", "Record"),
        ]))
        .unwrap();
        let late = T + 9 * 3_600_000; // 22:05 UTC, 00:05 on 1 March in UTC+2
        assert_eq!(
            daily
                .place(&rec(json!({}), None, Some(late)), 0)
                .unwrap()
                .dir,
            "year=2024/month=03/day=01"
        );
        assert!(hourly.place(&rec(json!({}), None, None), 0).is_err());
        assert!(hourly.place(&rec(json!({}), None, Some(-5)), 0).is_err());
        // Wallclock takes the worker's clock.
        let wall = time(&[("partition.duration.ms", "60000"), ("path.format", "HHmm")]).unwrap();
        assert_eq!(
            wall.place(&rec(json!({}), None, None), T).unwrap().dir,
            "1305"
        );
    }

    #[test]
    fn record_field_times() {
        let p = time(&[
            ("partition.duration.ms", "86400000"),
            ("path.format", "'dt'=YYYY-MM-dd"),
            ("timestamp.extractor", "RecordField"),
            ("timestamp.field", "meta.at"),
        ])
        .unwrap();
        for at in [
            json!(T),
            json!("2024-02-29T13:05:09.042Z"),
            json!("2024-02-29T15:05:09+02:00"),
            json!("2024-02-29"),
        ] {
            let r = rec(json!({"meta": {"at": at}}), None, None);
            assert_eq!(p.place(&r, 0).unwrap().dir, "dt=2024-02-29", "{at}");
        }
        assert_eq!(iso_ms("2024-02-29T13:05:09.042Z"), Some(T));
        assert_eq!(iso_ms("2024-02-29T13:05:09.042"), Some(T));
        for bad in [json!("yesterday"), json!(true), json!("2024-13-01")] {
            assert!(p
                .place(&rec(json!({"meta": {"at": bad}}), None, None), 0)
                .is_err());
        }
        assert!(p.place(&rec(json!({"meta": 1}), None, None), 0).is_err());
    }

    #[test]
    fn configuration_errors_name_their_key() {
        let key = |r: Result<Partitioner, ConfigError>| r.unwrap_err().key;
        assert_eq!(
            key(time(&[("path.format", "YYYY")])),
            "partition.duration.ms"
        );
        assert_eq!(
            key(time(&[("partition.duration.ms", "1000")])),
            "path.format"
        );
        assert_eq!(
            key(time(&[
                ("partition.duration.ms", "1000"),
                ("path.format", "'w'=ww")
            ])),
            "path.format"
        );
        assert_eq!(
            key(time(&[
                ("partition.duration.ms", "1000"),
                ("path.format", "YYYY"),
                ("timezone", "Europe/Paris")
            ])),
            "timezone"
        );
        assert_eq!(
            key(time(&[
                ("partition.duration.ms", "1000"),
                ("path.format", "YYYY"),
                ("timestamp.extractor", "Header")
            ])),
            "timestamp.extractor"
        );
        assert_eq!(
            key(Partitioner::from_config(&cfg(&[(
                "partitioner.class",
                "io.confluent.connect.storage.partitioner.HourlyPartitioner"
            )]))),
            "locale"
        );
        assert_eq!(
            key(Partitioner::from_config(&cfg(&[(
                "partitioner.class",
                "x.Y"
            )]))),
            "partitioner.class"
        );
        assert_eq!(fixed_offset_ms("-0530"), Some(-330 * 60_000));
        assert_eq!(fixed_offset_ms("GMT+2"), Some(7_200_000));
        assert_eq!(fixed_offset_ms("America/New_York"), None);
    }
}
