//! Single message transforms (SMTs) and their predicates, from a connector's
//! `transforms=` and `predicates=` keys under Kafka's class names and keys:
//! `InsertField`, `ReplaceField`, `MaskField`, `ExtractField`, `Cast`,
//! `TimestampConverter` (each `$Key`/`$Value`), `ValueToKey`, `RegexRouter`,
//! `TimestampRouter`, `Filter`; predicates
//! `TopicNameMatches`, `HasHeaderKey`, `RecordIsTombstone` (`transforms.<t>.predicate`,
//! `.negate`). They run in order on each record: after the converters for a
//! sink, before them for a source. Structs carry their Connect schema when the
//! converter gave one, and a transform changes it with the value. A record a
//! transform cannot handle (a schemaless value that is not a map, a missing
//! field, a string that does not parse) is a poison record at stage
//! TRANSFORMATION. Dates follow the pattern subset of [`crate::date_pattern`], in UTC.

use std::sync::Arc;

use regex::Regex;
use serde_json::{json, Map, Value};

use crate::config::{boolean, list, required, ConfigError, ConfigMap};
use crate::converters::{Data, SchemaAndValue};
use crate::date_pattern::{format_ts, parse_ts};
use crate::logical::{DATE, TIME, TIMESTAMP};

const PKG: &str = "org.apache.kafka.connect.transforms.";

/// One record as the transforms see it.
pub struct Rec<'a> {
    pub topic: &'a mut String,
    pub key: &'a mut SchemaAndValue,
    pub value: &'a mut SchemaAndValue,
    /// Kafka partition and offset (sink records only).
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    pub timestamp: Option<i64>,
    pub headers: &'a [(String, Option<Vec<u8>>)],
}

/// Why a transform refused a record (the DLQ's exception message) and its class.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformError {
    pub class: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Key,
    Value,
}

#[derive(Debug)]
enum Kind {
    InsertField {
        topic: Option<String>,
        partition: Option<String>,
        offset: Option<String>,
        timestamp: Option<String>,
        fixed: Option<(String, String)>,
    },
    ReplaceField {
        include: Vec<String>,
        exclude: Vec<String>,
        renames: Vec<(String, String)>,
    },
    MaskField {
        fields: Vec<String>,
        replacement: Option<String>,
    },
    ExtractField {
        field: String,
    },
    ValueToKey {
        fields: Vec<String>,
    },
    RegexRouter {
        regex: Regex,
        replacement: String,
    },
    TimestampRouter {
        topic_format: String,
        timestamp_format: String,
    },
    Filter,
    Cast {
        /// `spec` as one type: the whole (primitive) value.
        whole: Option<CastTo>,
        fields: Vec<(String, CastTo)>,
    },
    TimestampConverter {
        to: TsType,
        /// None: the whole value.
        field: Option<String>,
        format: Option<String>,
        /// Milliseconds per unit of a unix value (`unix.precision`); negative:
        /// units per millisecond (micro- and nanoseconds).
        unix_ms: i64,
    },
}

/// Cast's target types, as Kafka spells them in `spec`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CastTo {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    Str,
}

impl CastTo {
    fn parse(s: &str) -> Option<CastTo> {
        Some(match s.trim() {
            "int8" => CastTo::Int8,
            "int16" => CastTo::Int16,
            "int32" => CastTo::Int32,
            "int64" => CastTo::Int64,
            "float32" => CastTo::Float32,
            "float64" => CastTo::Float64,
            "boolean" => CastTo::Boolean,
            "string" => CastTo::Str,
            _ => return None,
        })
    }

    /// The type's name in a Connect JSON schema.
    fn schema_type(self) -> &'static str {
        match self {
            CastTo::Int8 => "int8",
            CastTo::Int16 => "int16",
            CastTo::Int32 => "int32",
            CastTo::Int64 => "int64",
            CastTo::Float32 => "float",
            CastTo::Float64 => "double",
            CastTo::Boolean => "boolean",
            CastTo::Str => "string",
        }
    }
}

/// TimestampConverter's `target.type`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TsType {
    Str,
    Unix,
    Date,
    Time,
    Timestamp,
}

const DAY_MS: i64 = 86_400_000;

#[derive(Debug)]
enum Predicate {
    TopicNameMatches(Regex),
    HasHeaderKey(String),
    RecordIsTombstone,
}

#[derive(Debug)]
struct Transform {
    class: String,
    side: Side,
    kind: Kind,
    /// The predicate (by name, resolved at build) and `negate`.
    predicate: Option<(usize, bool)>,
}

/// A connector's transform chain (empty without `transforms`).
#[derive(Debug, Default)]
pub struct Transforms {
    chain: Vec<Transform>,
    predicates: Vec<Predicate>,
}

fn opt(c: &ConfigMap, k: &str) -> Option<String> {
    c.get(k)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `name` or `name?`/`name!` (InsertField's optional/required suffix) as the plain name.
fn field_name(s: Option<String>) -> Option<String> {
    s.map(|f| f.trim_end_matches(['?', '!']).to_string())
}

fn regex(key: &str, s: &str) -> Result<Regex, ConfigError> {
    // Java's matches(): the whole name.
    Regex::new(&format!("^(?:{s})$"))
        .map_err(|e| ConfigError::new(key, format!("Invalid regex: {e}")))
}

/// Java's `$1` group references as the regex crate spells them (`${1}`).
fn java_replacement(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            let mut n = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(*d);
                chars.next();
            }
            out.push_str(&format!("${{{n}}}"));
        } else if c == '\\' {
            if let Some(n) = chars.next() {
                if n == '$' {
                    out.push_str("$$");
                } else {
                    out.push(n);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Transforms {
    /// The chain the connector config `m` asks for; every problem names its key.
    pub fn from_config(m: &ConfigMap) -> Result<Transforms, ConfigError> {
        let mut t = Transforms::default();
        let names = list(m, "predicates");
        for p in &names {
            let pre = format!("predicates.{p}.");
            let sub: ConfigMap = m
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&pre).map(|k| (k.to_string(), v.clone())))
                .collect();
            let key = format!("{pre}type");
            let ty = required(&sub, "type")
                .map_err(|_| ConfigError::new(&key, "Missing required configuration"))?;
            let short = ty.strip_prefix(&format!("{PKG}predicates.")).unwrap_or(ty);
            t.predicates.push(match short {
                "TopicNameMatches" => {
                    let pat = required(&sub, "pattern")
                        .map_err(|_| ConfigError::new(&format!("{pre}pattern"), "Missing required configuration"))?;
                    Predicate::TopicNameMatches(regex(&format!("{pre}pattern"), pat)?)
                }
                "HasHeaderKey" => Predicate::HasHeaderKey(
                    required(&sub, "name")
                        .map_err(|_| ConfigError::new(&format!("{pre}name"), "Missing required configuration"))?
                        .to_string(),
                ),
                "RecordIsTombstone" => Predicate::RecordIsTombstone,
                _ => return Err(ConfigError::new(&key, format!("Invalid value {ty}: Class {ty} could not be found (built in: TopicNameMatches, HasHeaderKey, RecordIsTombstone)"))),
            });
        }
        for name in list(m, "transforms") {
            let pre = format!("transforms.{name}.");
            let c: ConfigMap = m
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&pre).map(|k| (k.to_string(), v.clone())))
                .collect();
            let tkey = format!("{pre}type");
            let class = required(&c, "type")
                .map_err(|_| ConfigError::new(&tkey, "Missing required configuration"))?
                .to_string();
            let short = class.strip_prefix(PKG).unwrap_or(&class);
            let (base, side) = match short.split_once('$') {
                Some((b, "Key")) => (b, Side::Key),
                Some((b, "Value")) => (b, Side::Value),
                Some(_) => ("", Side::Value),
                None => (short, Side::Value),
            };
            let needs_side = matches!(
                base,
                "InsertField"
                    | "ReplaceField"
                    | "MaskField"
                    | "ExtractField"
                    | "Cast"
                    | "TimestampConverter"
            );
            if needs_side != short.contains('$') {
                return Err(ConfigError::new(
                    &tkey,
                    format!("Invalid value {class}: Class {class} could not be found"),
                ));
            }
            let key = |k: &str| format!("{pre}{k}");
            let missing = |k: &str| ConfigError::new(&key(k), "Missing required configuration");
            let kind = match base {
                "InsertField" => Kind::InsertField {
                    topic: field_name(opt(&c, "topic.field")),
                    partition: field_name(opt(&c, "partition.field")),
                    offset: field_name(opt(&c, "offset.field")),
                    timestamp: field_name(opt(&c, "timestamp.field")),
                    fixed: field_name(opt(&c, "static.field"))
                        .map(|f| (f, c.get("static.value").cloned().unwrap_or_default())),
                },
                "ReplaceField" => {
                    let mut include = list(&c, "include");
                    include.extend(list(&c, "whitelist"));
                    let mut exclude = list(&c, "exclude");
                    exclude.extend(list(&c, "blacklist"));
                    let mut renames = Vec::new();
                    for r in list(&c, "renames") {
                        let Some((a, b)) = r.split_once(':') else {
                            return Err(ConfigError::new(
                                &key("renames"),
                                format!("Invalid rename mapping: {r}"),
                            ));
                        };
                        renames.push((a.to_string(), b.to_string()));
                    }
                    Kind::ReplaceField {
                        include,
                        exclude,
                        renames,
                    }
                }
                "MaskField" => {
                    let fields = list(&c, "fields");
                    if fields.is_empty() {
                        return Err(missing("fields"));
                    }
                    Kind::MaskField {
                        fields,
                        replacement: opt(&c, "replacement"),
                    }
                }
                "ExtractField" => Kind::ExtractField {
                    field: opt(&c, "field").ok_or_else(|| missing("field"))?,
                },
                "ValueToKey" => {
                    let fields = list(&c, "fields");
                    if fields.is_empty() {
                        return Err(missing("fields"));
                    }
                    Kind::ValueToKey { fields }
                }
                "RegexRouter" => Kind::RegexRouter {
                    regex: regex(
                        &key("regex"),
                        &opt(&c, "regex").ok_or_else(|| missing("regex"))?,
                    )?,
                    replacement: java_replacement(
                        c.get("replacement").ok_or_else(|| missing("replacement"))?,
                    ),
                },
                "TimestampRouter" => Kind::TimestampRouter {
                    topic_format: opt(&c, "topic.format")
                        .unwrap_or_else(|| "${topic}-${timestamp}".into()),
                    timestamp_format: opt(&c, "timestamp.format")
                        .unwrap_or_else(|| "yyyyMMdd".into()),
                },
                "Filter" => Kind::Filter,
                "Cast" => {
                    let spec = opt(&c, "spec").ok_or_else(|| missing("spec"))?;
                    let bad = || {
                        ConfigError::new(&key("spec"), format!("Invalid value {spec} for configuration spec: types are int8, int16, int32, int64, float32, float64, boolean, string"))
                    };
                    let mut whole = None;
                    let mut fields = Vec::new();
                    for part in spec.split(',') {
                        match part.split_once(':') {
                            Some((f, ty)) => fields
                                .push((f.trim().to_string(), CastTo::parse(ty).ok_or_else(bad)?)),
                            None => whole = Some(CastTo::parse(part).ok_or_else(bad)?),
                        }
                    }
                    if whole.is_some() && spec.contains(',') {
                        return Err(bad());
                    }
                    Kind::Cast { whole, fields }
                }
                "TimestampConverter" => {
                    let ty = opt(&c, "target.type").ok_or_else(|| missing("target.type"))?;
                    let to = match ty.as_str() {
                        "string" => TsType::Str,
                        "unix" => TsType::Unix,
                        "Date" => TsType::Date,
                        "Time" => TsType::Time,
                        "Timestamp" => TsType::Timestamp,
                        _ => return Err(ConfigError::new(&key("target.type"), format!("Unknown timestamp type in TimestampConverter: {ty}. Valid values are string, unix, Date, Time, Timestamp"))),
                    };
                    let format = opt(&c, "format");
                    if to == TsType::Str && format.is_none() {
                        return Err(ConfigError::new(&key("format"), "TimestampConverter requires format option to be specified when using string timestamps"));
                    }
                    let unix_ms = match opt(&c, "unix.precision").as_deref().unwrap_or("milliseconds") {
                        "seconds" => 1000,
                        "milliseconds" => 1,
                        "microseconds" => -1000,
                        "nanoseconds" => -1_000_000,
                        p => return Err(ConfigError::new(&key("unix.precision"), format!("Invalid value {p}: seconds, milliseconds, microseconds, nanoseconds"))),
                    };
                    Kind::TimestampConverter {
                        to,
                        field: opt(&c, "field"),
                        format,
                        unix_ms,
                    }
                }
                _ => {
                    return Err(ConfigError::new(
                        &tkey,
                        format!("Invalid value {class}: Class {class} could not be found"),
                    ))
                }
            };
            let predicate = match opt(&c, "predicate") {
                None => None,
                Some(p) => {
                    let i = names.iter().position(|n| *n == p).ok_or_else(|| {
                        ConfigError::new(
                            &key("predicate"),
                            format!("Predicate '{p}' is not listed in 'predicates'"),
                        )
                    })?;
                    Some((
                        i,
                        boolean(&c, "negate", false)
                            .map_err(|e| ConfigError::new(&key("negate"), e.message))?,
                    ))
                }
            };
            t.chain.push(Transform {
                class,
                side,
                kind,
                predicate,
            });
        }
        Ok(t)
    }

    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }

    /// Run the chain on `r`: Ok(false) when a transform (Filter) dropped it.
    pub fn apply(&self, r: &mut Rec<'_>) -> Result<bool, TransformError> {
        for t in &self.chain {
            if let Some((p, negate)) = t.predicate {
                let hit = match &self.predicates[p] {
                    Predicate::TopicNameMatches(re) => re.is_match(r.topic),
                    Predicate::HasHeaderKey(h) => r.headers.iter().any(|(k, _)| k == h),
                    Predicate::RecordIsTombstone => r.value.data == Data::Null,
                };
                if hit == negate {
                    continue;
                }
            }
            let fail = |m: String| TransformError {
                class: t.class.clone(),
                message: m,
            };
            match &t.kind {
                Kind::Filter => return Ok(false),
                Kind::RegexRouter { regex, replacement } => {
                    if regex.is_match(r.topic) {
                        *r.topic = regex.replace(r.topic, replacement.as_str()).into_owned();
                    }
                }
                Kind::TimestampRouter {
                    topic_format,
                    timestamp_format,
                } => {
                    let ts = r.timestamp.ok_or_else(|| {
                        fail(format!("Timestamp missing on record: topic {}", r.topic))
                    })?;
                    *r.topic = topic_format
                        .replace("${topic}", r.topic)
                        .replace("${timestamp}", &format_ts(timestamp_format, ts));
                }
                Kind::ValueToKey { fields } => {
                    let v = r.value.clone();
                    let map = struct_of(&v, "copying fields from value to key").map_err(fail)?;
                    let mut key = Map::new();
                    let mut key_fields = Vec::new();
                    for f in fields {
                        let x = map
                            .get(f)
                            .ok_or_else(|| fail(format!("{f} is not a valid field name")))?;
                        key.insert(f.clone(), x.clone());
                        if let Some(s) = &v.schema {
                            key_fields.push(
                                field_schema(s, f).ok_or_else(|| {
                                    fail(format!("{f} is not a valid field name"))
                                })?,
                            );
                        }
                    }
                    *r.key = SchemaAndValue {
                        schema: v.schema.as_ref().map(|_| {
                            Arc::new(
                                json!({"type": "struct", "fields": key_fields, "optional": false}),
                            )
                        }),
                        data: Data::Value(Value::Object(key)),
                    };
                }
                Kind::Cast { .. } | Kind::TimestampConverter { .. } => {
                    let target = if t.side == Side::Key {
                        &mut *r.key
                    } else {
                        &mut *r.value
                    };
                    if target.data != Data::Null {
                        convert(&t.kind, target).map_err(fail)?;
                    }
                }
                kind => {
                    let target = if t.side == Side::Key {
                        &mut *r.key
                    } else {
                        &mut *r.value
                    };
                    if target.data == Data::Null {
                        continue; // tombstones pass
                    }
                    let meta = (r.topic.as_str(), r.partition, r.offset, r.timestamp);
                    edit(kind, target, meta).map_err(fail)?;
                }
            }
        }
        Ok(true)
    }
}

/// The struct (map) a field transform works on.
fn struct_of<'v>(v: &'v SchemaAndValue, purpose: &str) -> Result<&'v Map<String, Value>, String> {
    match &v.data {
        Data::Value(Value::Object(m)) => Ok(m),
        _ if v.schema.is_some() => Err(format!(
            "Only Struct objects supported for [{purpose}], found: {}",
            kind_of(&v.data)
        )),
        _ => Err(format!(
            "Only Map objects supported in absence of schema for [{purpose}], found: {}",
            kind_of(&v.data)
        )),
    }
}

fn kind_of(d: &Data) -> &'static str {
    match d {
        Data::Null => "null",
        Data::Bytes(_) => "byte[]",
        Data::Value(Value::String(_)) => "java.lang.String",
        Data::Value(Value::Number(_)) => "java.lang.Number",
        Data::Value(Value::Bool(_)) => "java.lang.Boolean",
        Data::Value(Value::Array(_)) => "java.util.List",
        Data::Value(_) => "java.util.Map",
        // Schemaless JSON text (transforms are never handed it): its kind by its first byte.
        Data::Json(t) => match t.first() {
            Some(b'"') => "java.lang.String",
            Some(b't' | b'f') => "java.lang.Boolean",
            Some(b'[') => "java.util.List",
            Some(b'{') => "java.util.Map",
            _ => "java.lang.Number",
        },
    }
}

/// The Connect schema of `field` in struct schema `s`, renamed as itself.
fn field_schema(s: &Value, field: &str) -> Option<Value> {
    s.get("fields")?
        .as_array()?
        .iter()
        .find(|f| f.get("field").and_then(Value::as_str) == Some(field))
        .cloned()
}

/// The field transforms (InsertField, ReplaceField, MaskField, ExtractField) on one side.
fn edit(
    kind: &Kind,
    target: &mut SchemaAndValue,
    (topic, partition, offset, ts): (&str, Option<i32>, Option<i64>, Option<i64>),
) -> Result<(), String> {
    let purpose = match kind {
        Kind::InsertField { .. } => "field insertion",
        Kind::ReplaceField { .. } => "field replacement",
        Kind::MaskField { .. } => "masking fields",
        _ => "field extraction",
    };
    let mut map = struct_of(target, purpose)?.clone();
    let mut fields: Option<Vec<Value>> = target
        .schema
        .as_ref()
        .and_then(|s| s.get("fields"))
        .and_then(Value::as_array)
        .cloned();
    match kind {
        Kind::InsertField {
            topic: tf,
            partition: pf,
            offset: of,
            timestamp: sf,
            fixed,
        } => {
            let mut add = |name: &Option<String>, v: Option<Value>, schema: Value| {
                if let (Some(n), Some(v)) = (name, v) {
                    map.insert(n.clone(), v);
                    if let Some(fs) = fields.as_mut() {
                        let mut s = schema;
                        s["field"] = json!(n);
                        s["optional"] = json!(true);
                        fs.push(s);
                    }
                }
            };
            add(tf, Some(json!(topic)), json!({"type": "string"}));
            add(pf, partition.map(|p| json!(p)), json!({"type": "int32"}));
            add(of, offset.map(|o| json!(o)), json!({"type": "int64"}));
            add(
                sf,
                ts.map(|t| json!(t)),
                json!({"type": "int64", "name": TIMESTAMP, "version": 1}),
            );
            if let Some((f, v)) = fixed {
                add(&Some(f.clone()), Some(json!(v)), json!({"type": "string"}));
            }
        }
        Kind::ReplaceField {
            include,
            exclude,
            renames,
        } => {
            let keep = |f: &str| {
                (include.is_empty() || include.iter().any(|i| i == f))
                    && !exclude.iter().any(|e| e == f)
            };
            let rename = |f: &str| {
                renames
                    .iter()
                    .find(|(a, _)| a == f)
                    .map_or(f.to_string(), |(_, b)| b.clone())
            };
            map = map
                .into_iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (rename(&k), v))
                .collect();
            if let Some(fs) = fields.as_mut() {
                fs.retain(|f| f.get("field").and_then(Value::as_str).is_some_and(keep));
                for f in fs.iter_mut() {
                    let n = rename(f.get("field").and_then(Value::as_str).unwrap_or(""));
                    f["field"] = json!(n);
                }
            }
        }
        Kind::MaskField {
            fields: masked,
            replacement,
        } => {
            for f in masked {
                let Some(v) = map.get_mut(f) else {
                    return Err(format!("Unknown field {f}"));
                };
                *v = match (&*v, replacement) {
                    (Value::String(_), Some(r)) => json!(r),
                    (Value::Number(_), Some(r)) => r
                        .parse::<i64>()
                        .map(|n| json!(n))
                        .or_else(|_| r.parse::<f64>().map(|n| json!(n)))
                        .map_err(|_| format!("Unable to convert {r} to a number for field {f}"))?,
                    (Value::String(_), None) => json!(""),
                    (Value::Number(_), None) => json!(0),
                    (Value::Bool(_), _) => json!(false),
                    (Value::Array(_), _) => json!([]),
                    (Value::Object(_), _) => json!({}),
                    (Value::Null, _) => Value::Null,
                };
            }
        }
        Kind::ExtractField { field } => {
            let v = map.get(field).cloned().unwrap_or(Value::Null);
            let schema = match &target.schema {
                Some(s) => {
                    Some(field_schema(s, field).ok_or_else(|| format!("Unknown field: {field}"))?)
                }
                None => None,
            };
            *target = SchemaAndValue {
                schema: schema.map(|mut s| {
                    if let Some(o) = s.as_object_mut() {
                        o.remove("field");
                    }
                    Arc::new(s)
                }),
                data: if v.is_null() {
                    Data::Null
                } else {
                    Data::Value(v)
                },
            };
            return Ok(());
        }
        _ => {}
    }
    if let (Some(s), Some(fs)) = (target.schema.as_mut().map(Arc::make_mut), fields) {
        s["fields"] = Value::Array(fs);
    }
    target.data = Data::Value(Value::Object(map));
    Ok(())
}

/// Cast and TimestampConverter on one side: the whole value or the named fields.
fn convert(kind: &Kind, target: &mut SchemaAndValue) -> Result<(), String> {
    let found = kind_of(&target.data);
    let Data::Value(v) = &mut target.data else {
        return Err(format!("Cast and TimestampConverter do not handle {found}"));
    };
    match kind {
        Kind::Cast {
            whole: Some(to), ..
        } => {
            *v = cast_value(v, *to)?;
            if let Some(s) = target.schema.as_mut().map(Arc::make_mut) {
                retype(s, to.schema_type(), None);
            }
        }
        Kind::Cast { fields, .. } => {
            let Value::Object(map) = v else {
                return Err(format!("Only Map objects supported in absence of schema for [cast types], found: {found}"));
            };
            for (f, to) in fields {
                if let Some(x) = map.get_mut(f).filter(|x| !x.is_null()) {
                    *x = cast_value(x, *to)?;
                }
                if let Some(fs) = field_mut(&mut target.schema, f) {
                    retype(fs, to.schema_type(), None);
                }
            }
        }
        Kind::TimestampConverter {
            to,
            field,
            format,
            unix_ms,
        } => {
            let conv = |x: &Value,
                        schema: Option<&Value>|
             -> Result<(Value, &'static str, Option<&'static str>), String> {
                let ms = to_epoch_ms(x, schema, format.as_deref(), *unix_ms)?;
                Ok(match to {
                    TsType::Str => (
                        json!(format_ts(format.as_deref().unwrap_or_default(), ms)),
                        "string",
                        None,
                    ),
                    TsType::Unix if *unix_ms > 0 => (json!(ms.div_euclid(*unix_ms)), "int64", None),
                    TsType::Unix => (json!(ms.saturating_mul(-*unix_ms)), "int64", None),
                    TsType::Timestamp => (json!(ms), "int64", Some(TIMESTAMP)),
                    TsType::Date => (json!(ms.div_euclid(DAY_MS)), "int32", Some(DATE)),
                    TsType::Time => (json!(ms.rem_euclid(DAY_MS)), "int32", Some(TIME)),
                })
            };
            match field {
                None => {
                    let (nv, ty, name) = conv(v, target.schema.as_deref())?;
                    *v = nv;
                    if let Some(s) = target.schema.as_mut().map(Arc::make_mut) {
                        retype(s, ty, name);
                    }
                }
                Some(f) => {
                    let Value::Object(map) = v else {
                        return Err(format!("Only Map objects supported in absence of schema for [converting timestamp formats], found: {found}"));
                    };
                    let Some(x) = map.get_mut(f).filter(|x| !x.is_null()) else {
                        return Ok(());
                    };
                    let fs = target.schema.as_ref().and_then(|s| field_schema(s, f));
                    let (nv, ty, name) = conv(x, fs.as_ref())?;
                    *x = nv;
                    if let Some(fs) = field_mut(&mut target.schema, f) {
                        retype(fs, ty, name);
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The schema of `field` in the struct schema, to change in place (a copy of a
/// schema other records share).
fn field_mut<'s>(schema: &'s mut Option<Arc<Value>>, field: &str) -> Option<&'s mut Value> {
    Arc::make_mut(schema.as_mut()?)
        .get_mut("fields")?
        .as_array_mut()?
        .iter_mut()
        .find(|f| f.get("field").and_then(Value::as_str) == Some(field))
}

/// Give a (field) schema a new type and logical name, keeping `field` and `optional`.
fn retype(s: &mut Value, ty: &str, name: Option<&str>) {
    if let Some(o) = s.as_object_mut() {
        o.retain(|k, _| k == "field" || k == "optional");
        o.insert("type".into(), json!(ty));
        if let Some(n) = name {
            o.insert("name".into(), json!(n));
            o.insert("version".into(), json!(1));
        }
    }
}

/// One primitive cast as Kafka's Cast does it.
fn cast_value(v: &Value, to: CastTo) -> Result<Value, String> {
    let unsupported = || {
        format!(
            "Cast transformation does not support casting to {} from {v}",
            to.schema_type()
        )
    };
    let int = || -> Result<i64, String> {
        match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .ok_or_else(unsupported),
            Value::Bool(b) => Ok(i64::from(*b)),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|e| format!("Value '{s}' cannot be cast to {}: {e}", to.schema_type())),
            _ => Err(unsupported()),
        }
    };
    let float = || -> Result<f64, String> {
        match v {
            Value::Number(n) => n.as_f64().ok_or_else(unsupported),
            Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|e| format!("Value '{s}' cannot be cast to {}: {e}", to.schema_type())),
            _ => Err(unsupported()),
        }
    };
    Ok(match to {
        CastTo::Int8 => json!(int()? as i8),
        CastTo::Int16 => json!(int()? as i16),
        CastTo::Int32 => json!(int()? as i32),
        CastTo::Int64 => json!(int()?),
        CastTo::Float32 => json!(float()? as f32 as f64),
        CastTo::Float64 => json!(float()?),
        CastTo::Boolean => match v {
            Value::Bool(b) => json!(b),
            Value::Number(n) => json!(n.as_f64().is_some_and(|f| f != 0.0)),
            Value::String(s) => json!(s.trim().eq_ignore_ascii_case("true")),
            _ => return Err(unsupported()),
        },
        CastTo::Str => match v {
            Value::String(s) => json!(s),
            Value::Number(_) | Value::Bool(_) => json!(v.to_string()),
            _ => return Err(unsupported()),
        },
    })
}

/// A timestamp value as ms since the epoch: by its schema's logical type when
/// it has one, a string through `format`, a number as unix time.
fn to_epoch_ms(
    v: &Value,
    schema: Option<&Value>,
    format: Option<&str>,
    unix_ms: i64,
) -> Result<i64, String> {
    let name = schema.and_then(|s| s.get("name")).and_then(Value::as_str);
    match (v, name) {
        (Value::Number(n), Some(DATE)) => n
            .as_i64()
            .map(|d| d * DAY_MS)
            .ok_or_else(|| format!("Invalid Date {n}")),
        (Value::Number(n), Some(TIMESTAMP | TIME)) => {
            n.as_i64().ok_or_else(|| format!("Invalid timestamp {n}"))
        }
        (Value::Number(n), _) => {
            let u = n
                .as_i64()
                .ok_or_else(|| format!("Invalid unix timestamp {n}"))?;
            Ok(if unix_ms > 0 {
                u.saturating_mul(unix_ms)
            } else {
                u.div_euclid(-unix_ms)
            })
        }
        (Value::String(s), _) => {
            let f = format.ok_or("TimestampConverter requires format option to be specified when using string timestamps")?;
            parse_ts(f, s).ok_or_else(|| {
                format!("Could not parse timestamp: value ({s}) does not match pattern ({f})")
            })
        }
        _ => Err(format!("Expected a timestamp, found {v}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kv: &[(&str, &str)]) -> ConfigMap {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn val(v: Value, schema: Option<Value>) -> SchemaAndValue {
        SchemaAndValue {
            schema: schema.map(Arc::new),
            data: Data::Value(v),
        }
    }

    /// Run `t` on a record of `topic` with `value`; (kept, topic, key, value).
    fn run(
        t: &Transforms,
        topic: &str,
        value: SchemaAndValue,
    ) -> Result<(bool, String, SchemaAndValue, SchemaAndValue), TransformError> {
        let mut topic = topic.to_string();
        let mut key = SchemaAndValue::plain(Data::Null);
        let mut value = value;
        let headers = vec![("trace".to_string(), None)];
        let mut r = Rec {
            topic: &mut topic,
            key: &mut key,
            value: &mut value,
            partition: Some(3),
            offset: Some(42),
            timestamp: Some(1_733_400_000_000),
            headers: &headers,
        };
        let kept = t.apply(&mut r)?;
        Ok((kept, topic, key, value))
    }

    #[test]
    fn field_transforms_change_the_value_and_its_schema() {
        let t = Transforms::from_config(&cfg(&[
            ("transforms", "ins,drop,mask"),
            (
                "transforms.ins.type",
                "org.apache.kafka.connect.transforms.InsertField$Value",
            ),
            ("transforms.ins.topic.field", "src_topic"),
            ("transforms.ins.offset.field", "src_offset!"),
            ("transforms.ins.static.field", "dc"),
            ("transforms.ins.static.value", "eu-1"),
            (
                "transforms.drop.type",
                "org.apache.kafka.connect.transforms.ReplaceField$Value",
            ),
            ("transforms.drop.exclude", "secret"),
            ("transforms.drop.renames", "id:order_id"),
            (
                "transforms.mask.type",
                "org.apache.kafka.connect.transforms.MaskField$Value",
            ),
            ("transforms.mask.fields", "card,amount"),
        ]))
        .expect("config");
        let schema = json!({"type": "struct", "fields": [
            {"field": "id", "type": "int32", "optional": false},
            {"field": "secret", "type": "string", "optional": false},
            {"field": "card", "type": "string", "optional": false},
            {"field": "amount", "type": "float64", "optional": false}], "optional": false});
        let v = json!({"id": 7, "secret": "s", "card": "4111", "amount": 9.5});
        let (kept, topic, _, out) = run(&t, "orders", val(v, Some(schema))).expect("applies");
        assert!(kept);
        assert_eq!(topic, "orders");
        assert_eq!(
            out.data,
            Data::Value(
                json!({"order_id": 7, "card": "", "amount": 0, "src_topic": "orders", "src_offset": 42, "dc": "eu-1"})
            )
        );
        let names: Vec<&str> = out
            .schema
            .as_ref()
            .and_then(|s| s["fields"].as_array())
            .expect("fields")
            .iter()
            .filter_map(|f| f["field"].as_str())
            .collect();
        assert_eq!(
            names,
            vec![
                "order_id",
                "card",
                "amount",
                "src_topic",
                "src_offset",
                "dc"
            ]
        );
        // Schemaless: a value that is not a map is refused (a poison record).
        let e = run(&t, "orders", val(json!("text"), None)).expect_err("refused");
        assert!(e.message.contains("Only Map objects supported"), "{e:?}");
        assert!(e.class.ends_with("InsertField$Value"));
        // A tombstone passes untouched.
        let (kept, _, _, out) =
            run(&t, "orders", SchemaAndValue::plain(Data::Null)).expect("applies");
        assert!(kept && out.data == Data::Null);
    }

    #[test]
    fn key_from_value_then_extract() {
        let t = Transforms::from_config(&cfg(&[
            ("transforms", "k,x"),
            (
                "transforms.k.type",
                "org.apache.kafka.connect.transforms.ValueToKey",
            ),
            ("transforms.k.fields", "id"),
            (
                "transforms.x.type",
                "org.apache.kafka.connect.transforms.ExtractField$Key",
            ),
            ("transforms.x.field", "id"),
        ]))
        .expect("config");
        let (_, _, key, value) =
            run(&t, "t", val(json!({"id": 5, "n": "a"}), None)).expect("applies");
        assert_eq!(key.data, Data::Value(json!(5)));
        assert_eq!(value.data, Data::Value(json!({"id": 5, "n": "a"})));
    }

    #[test]
    fn routers_filters_and_predicates() {
        let t = Transforms::from_config(&cfg(&[
            ("transforms", "route,day,drop"),
            (
                "transforms.route.type",
                "org.apache.kafka.connect.transforms.RegexRouter",
            ),
            ("transforms.route.regex", "db-(.*)"),
            ("transforms.route.replacement", "$1_copy"),
            (
                "transforms.day.type",
                "org.apache.kafka.connect.transforms.TimestampRouter",
            ),
            ("transforms.day.topic.format", "${topic}-${timestamp}"),
            ("transforms.day.timestamp.format", "yyyy.MM.dd"),
            (
                "transforms.drop.type",
                "org.apache.kafka.connect.transforms.Filter",
            ),
            ("transforms.drop.predicate", "audit"),
            ("predicates", "audit"),
            (
                "predicates.audit.type",
                "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
            ),
            ("predicates.audit.pattern", "audit.*"),
        ]))
        .expect("config");
        let (kept, topic, _, _) = run(&t, "db-orders", val(json!({}), None)).expect("applies");
        assert!(kept);
        assert_eq!(topic, "orders_copy-2024.12.05");
        // The regex must match the whole name; the filter drops what the predicate matches.
        let (kept, _, _, _) = run(&t, "audit-db-x", val(json!({}), None)).expect("applies");
        assert!(!kept);
        // negate: drop everything without the header.
        let t = Transforms::from_config(&cfg(&[
            ("transforms", "drop"),
            (
                "transforms.drop.type",
                "org.apache.kafka.connect.transforms.Filter",
            ),
            ("transforms.drop.predicate", "traced"),
            ("transforms.drop.negate", "true"),
            ("predicates", "traced"),
            (
                "predicates.traced.type",
                "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
            ),
            ("predicates.traced.name", "trace"),
        ]))
        .expect("config");
        assert!(run(&t, "t", val(json!({}), None)).expect("applies").0);
    }

    #[test]
    fn cast_and_timestamp_converter() {
        let t = Transforms::from_config(&cfg(&[
            ("transforms", "cast,when,day"),
            (
                "transforms.cast.type",
                "org.apache.kafka.connect.transforms.Cast$Value",
            ),
            ("transforms.cast.spec", "id:string,amount:int32,ok:boolean"),
            (
                "transforms.when.type",
                "org.apache.kafka.connect.transforms.TimestampConverter$Value",
            ),
            ("transforms.when.field", "at"),
            ("transforms.when.target.type", "Timestamp"),
            ("transforms.when.format", "yyyy-MM-dd HH:mm:ss"),
            (
                "transforms.day.type",
                "org.apache.kafka.connect.transforms.TimestampConverter$Value",
            ),
            ("transforms.day.field", "ts"),
            ("transforms.day.target.type", "string"),
            ("transforms.day.format", "yyyyMMdd"),
            ("transforms.day.unix.precision", "seconds"),
        ]))
        .expect("config");
        let schema = json!({"type": "struct", "optional": false, "fields": [
            {"field": "id", "type": "int64", "optional": false},
            {"field": "amount", "type": "double", "optional": true},
            {"field": "ok", "type": "int8", "optional": false},
            {"field": "at", "type": "string", "optional": false},
            {"field": "ts", "type": "int64", "optional": false}]});
        let v = json!({"id": 12, "amount": 9.75, "ok": 1, "at": "2024-12-05 12:00:00", "ts": 1_733_400_000});
        let (_, _, _, out) = run(&t, "t", val(v, Some(schema))).expect("applies");
        assert_eq!(
            out.data,
            Data::Value(
                json!({"id": "12", "amount": 9, "ok": true, "at": 1_733_400_000_000i64, "ts": "20241205"})
            )
        );
        let fields = out.schema.expect("schema")["fields"].clone();
        assert_eq!(
            fields[0],
            json!({"field": "id", "type": "string", "optional": false})
        );
        assert_eq!(
            fields[1],
            json!({"field": "amount", "type": "int32", "optional": true})
        );
        assert_eq!(
            fields[3],
            json!({"field": "at", "type": "int64", "optional": false, "name": TIMESTAMP, "version": 1})
        );
        // A string that does not match the format is a poison record.
        let bad = json!({"id": 1, "amount": 1, "ok": 0, "at": "05/12/2024", "ts": 0});
        let e = run(&t, "t", val(bad, None)).expect_err("refused");
        assert!(e.message.contains("does not match pattern"), "{e:?}");
        // Whole-value cast; Date is days since the epoch.
        let t = Transforms::from_config(&cfg(&[
            ("transforms", "c,d"),
            (
                "transforms.c.type",
                "org.apache.kafka.connect.transforms.Cast$Value",
            ),
            ("transforms.c.spec", "int64"),
            (
                "transforms.d.type",
                "org.apache.kafka.connect.transforms.TimestampConverter$Value",
            ),
            ("transforms.d.target.type", "Date"),
        ]))
        .expect("config");
        let (_, _, _, out) = run(&t, "t", val(json!("1733400000000"), None)).expect("applies");
        assert_eq!(out.data, Data::Value(json!(20062)));
        assert_eq!(
            parse_ts("yyyyMMdd'T'HHmmss.SSS", "20241205T120000.123"),
            Some(1_733_400_000_123)
        );
        assert_eq!(parse_ts("yyyy-MM-dd", "2024-13-01"), None);
    }

    #[test]
    fn bad_configs_name_their_key() {
        let err = |kv: &[(&str, &str)]| Transforms::from_config(&cfg(kv)).expect_err("refused").key;
        assert_eq!(err(&[("transforms", "a")]), "transforms.a.type");
        assert_eq!(
            err(&[
                ("transforms", "a"),
                (
                    "transforms.a.type",
                    "org.apache.kafka.connect.transforms.Cast$Value"
                ),
                ("transforms.a.spec", "id:int128")
            ]),
            "transforms.a.spec"
        );
        assert_eq!(
            err(&[
                ("transforms", "a"),
                (
                    "transforms.a.type",
                    "org.apache.kafka.connect.transforms.InsertField"
                )
            ]),
            "transforms.a.type"
        );
        assert_eq!(
            err(&[
                ("transforms", "a"),
                (
                    "transforms.a.type",
                    "org.apache.kafka.connect.transforms.RegexRouter"
                ),
                ("transforms.a.regex", "(")
            ]),
            "transforms.a.regex"
        );
        assert_eq!(
            err(&[
                ("transforms", "a"),
                (
                    "transforms.a.type",
                    "org.apache.kafka.connect.transforms.Filter"
                ),
                ("transforms.a.predicate", "p")
            ]),
            "transforms.a.predicate"
        );
        assert_eq!(java_replacement("$1x\\$"), "${1}x$$");
        assert_eq!(
            format_ts("yyyyMMdd'T'HHmmss.SSS", 1_733_400_000_123),
            "20241205T120000.123"
        );
    }
}
