//! How the JDBC sink turns a record into a row: the shape its schemas give (table,
//! columns, primary key, and where each column's value comes from) and the values of
//! one record. The shape is the same for every record of a topic with the same key
//! and value schemas, so it is worked out once per run of them (the converters share
//! one schema `Arc` among such records); per record only the values are read.
//!
//! A shape whose columns all come from the value's top-level primitive fields (or the
//! record's topic, partition, offset) also has a fast path ([`Shape::fast_values`]):
//! the JSON payload's text is read straight into SQL values, with no `serde_json::Value`
//! tree between. It accepts only what the converter's checks and [`values`] would
//! accept and give the same values for; anything else (a type mismatch, a missing
//! required field, a repeated key, ...) returns `None` and the record takes the full
//! path, which produces the error message the dead-letter queue shows.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::jdbc_config::{JdbcSinkConfig, PkMode};
use super::jdbc_dialect::ColDef;
use super::jdbc_types::{decimal_text, to_sql, ColType, SqlValue};
use super::records::SinkRecord;
use crate::converters::{Data, SchemaAndValue};

/// A field of a struct schema.
#[derive(Debug)]
pub(super) struct Field {
    pub(super) name: String,
    pub(super) ty: ColType,
    pub(super) optional: bool,
    pub(super) default: Option<Value>,
}

/// Where a column's value comes from.
#[derive(Debug)]
enum Src {
    Topic,
    Partition,
    Offset,
    /// A primitive key.
    Key(ColType),
    /// A field of a struct key (never NULL: it is a key column).
    KeyField(Field),
    /// A field of the value; `pk`: it is a key column, so never NULL.
    ValueField(Field, bool),
}

/// The columns a record's schemas give.
#[derive(Debug)]
pub struct Shape {
    pub table: Arc<str>,
    pub cols: Arc<[ColDef]>,
    pub pk: Arc<[String]>,
    /// One per column, in `cols` order.
    srcs: Vec<Src>,
    /// The value schema's fields as the fast path reads them; `None`: no fast path.
    fast: Option<Vec<FastField>>,
}

/// The shape of the last run of records: topic, key schema (when the key matters),
/// value schema.
#[derive(Default)]
pub struct ShapeCache {
    last: Option<Seen>,
}

/// What a shape was worked out from: topic, key schema, value schema.
type Seen = (String, Option<Arc<Value>>, Arc<Value>, Arc<Shape>);

fn same_schema(a: &Arc<Value>, b: &Arc<Value>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

impl ShapeCache {
    /// The shape of a record with a (non-null) value: the last one's when the topic
    /// and schemas are its, else worked out (and kept). `Err`: the schemas cannot
    /// make a row.
    pub fn shape(&mut self, cfg: &JdbcSinkConfig, r: &SinkRecord) -> Result<Arc<Shape>, String> {
        let Some(vs) = &r.value.schema else {
            return Err(no_schema("value"));
        };
        let ks = match cfg.pk_mode {
            PkMode::RecordKey => r.key.schema.as_ref(),
            _ => None,
        };
        if let Some((t, k, v, shape)) = &mut self.last {
            let key_same = match (k.as_ref(), ks) {
                (None, None) => true,
                (Some(a), Some(b)) => same_schema(a, b),
                _ => false,
            };
            if *t == r.topic && key_same && same_schema(v, vs) {
                // The copy is kept: the records sharing it are found by pointer.
                *v = vs.clone();
                if let (Some(k), Some(b)) = (k.as_mut(), ks) {
                    *k = b.clone();
                }
                return Ok(shape.clone());
            }
        }
        let shape = Arc::new(shape_of(cfg, r, vs)?);
        self.last = Some((r.topic.clone(), ks.cloned(), vs.clone(), shape.clone()));
        Ok(shape)
    }
}

impl ShapeCache {
    /// The last shape, when it was worked out for `topic` and this very value schema
    /// (by pointer: the converter hands out one `Arc` per schema text) and the key
    /// does not matter to it. The fast path takes only these.
    pub fn last_for(&self, topic: &str, value_schema: &Arc<Value>) -> Option<&Arc<Shape>> {
        match &self.last {
            Some((t, None, v, shape)) if Arc::ptr_eq(v, value_schema) && t == topic => Some(shape),
            _ => None,
        }
    }
}

pub(super) fn no_schema(what: &str) -> String {
    format!(
        "Sink connector requires records with a non-null Struct {what} and non-null Struct schema (the {what} has no schema: use JsonConverter with schemas.enable=true)"
    )
}

/// The fields of a struct schema.
pub(super) fn struct_fields(schema: &Value, what: &str) -> Result<Vec<Field>, String> {
    if schema.get("type").and_then(|t| t.as_str()) != Some("struct") {
        return Err(format!(
            "the {what} schema is {}, not a struct",
            schema.get("type").unwrap_or(&Value::Null)
        ));
    }
    let mut out = Vec::new();
    for f in schema
        .get("fields")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
    {
        let name = f
            .get("field")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            return Err(format!("a field of the {what} schema has no name"));
        }
        let ty = ColType::of_schema(f).map_err(|e| format!("field {name}: {e}"))?;
        let optional = f.get("optional").and_then(|o| o.as_bool()).unwrap_or(false);
        out.push(Field {
            name,
            ty,
            optional,
            default: f.get("default").cloned(),
        });
    }
    Ok(out)
}

fn shape_of(cfg: &JdbcSinkConfig, r: &SinkRecord, vs: &Value) -> Result<Shape, String> {
    let table = cfg.table_name(&r.topic);
    let vfields = struct_fields(vs, "value")?;
    let mut cols: Vec<ColDef> = Vec::new();
    let mut srcs: Vec<Src> = Vec::new();
    let pk: Vec<String> = match cfg.pk_mode {
        PkMode::None => Vec::new(),
        PkMode::Kafka => {
            let names: Vec<String> = if cfg.pk_fields.is_empty() {
                vec![
                    "__connect_topic".into(),
                    "__connect_partition".into(),
                    "__connect_offset".into(),
                ]
            } else {
                cfg.pk_fields.clone()
            };
            for (n, ty, src) in [
                (&names[0], ColType::Text, Src::Topic),
                (&names[1], ColType::Int32, Src::Partition),
                (&names[2], ColType::Int64, Src::Offset),
            ] {
                cols.push(ColDef {
                    name: n.clone(),
                    ty,
                    optional: false,
                });
                srcs.push(src);
            }
            names
        }
        PkMode::RecordKey => {
            let Some(ks) = &r.key.schema else {
                return Err("pk.mode=record_key needs keys with a schema (key.converter JsonConverter with schemas.enable=true)".into());
            };
            if ks.get("type").and_then(|t| t.as_str()) == Some("struct") {
                for f in struct_fields(ks, "key")? {
                    if cfg.pk_fields.is_empty() || cfg.pk_fields.contains(&f.name) {
                        cols.push(ColDef {
                            name: f.name.clone(),
                            ty: f.ty,
                            optional: false,
                        });
                        srcs.push(Src::KeyField(f));
                    }
                }
                if cols.is_empty() {
                    return Err(format!(
                        "none of pk.fields {:?} is in the key",
                        cfg.pk_fields
                    ));
                }
            } else {
                let name = cfg
                    .pk_fields
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "__connect_key".into());
                let ty = ColType::of_schema(ks)?;
                cols.push(ColDef {
                    name,
                    ty,
                    optional: false,
                });
                srcs.push(Src::Key(ty));
            }
            cols.iter().map(|c| c.name.clone()).collect()
        }
        PkMode::RecordValue => {
            let names: Vec<String> = if cfg.pk_fields.is_empty() {
                vfields.iter().map(|c| c.name.clone()).collect()
            } else {
                cfg.pk_fields.clone()
            };
            for n in &names {
                if !vfields.iter().any(|c| &c.name == n) {
                    return Err(format!("PK mode for table '{table}' is RECORD_VALUE with configured PK fields {names:?}, but record value schema does not contain field: {n}"));
                }
            }
            names
        }
    };
    for f in vfields {
        if cols.iter().any(|k| k.name == f.name) {
            continue;
        }
        let key = pk.contains(&f.name);
        cols.push(ColDef {
            name: f.name.clone(),
            ty: f.ty,
            optional: f.optional && !key,
        });
        srcs.push(Src::ValueField(f, key));
    }
    if cols.is_empty() {
        return Err("the record has no fields to write".into());
    }
    let fast = fast_plan(vs, &srcs);
    Ok(Shape {
        table: table.into(),
        cols: cols.into(),
        pk: pk.into(),
        srcs,
        fast,
    })
}

fn field_value(obj: &serde_json::Map<String, Value>, f: &Field) -> Result<SqlValue, String> {
    let raw = obj
        .get(&f.name)
        .or(f.default.as_ref())
        .unwrap_or(&Value::Null);
    to_sql(f.ty, raw).map_err(|e| format!("field {}: {e}", f.name))
}

fn object<'a>(
    v: &'a SchemaAndValue,
    what: &str,
) -> Result<&'a serde_json::Map<String, Value>, String> {
    match &v.data {
        Data::Value(Value::Object(o)) => Ok(o),
        _ => Err(format!("the {what} is not a struct")),
    }
}

/// The values of a record of `shape`, in its columns' order.
pub fn values(shape: &Shape, r: &SinkRecord) -> Result<Vec<SqlValue>, String> {
    let vobj = object(&r.value, "value")?;
    let mut out = Vec::with_capacity(shape.srcs.len());
    for src in &shape.srcs {
        out.push(match src {
            Src::Topic => SqlValue::Text(r.topic.clone()),
            Src::Partition => SqlValue::Int(r.partition as i64),
            Src::Offset => SqlValue::Int(r.offset),
            Src::Key(ty) => {
                if matches!(r.key.data, Data::Null) {
                    return Err("pk.mode=record_key but the record has a null key".into());
                }
                to_sql(*ty, &r.key.to_json())?
            }
            Src::KeyField(f) => {
                if matches!(r.key.data, Data::Null) {
                    return Err("pk.mode=record_key but the record has a null key".into());
                }
                let v = field_value(object(&r.key, "key")?, f)?;
                if matches!(v, SqlValue::Null) {
                    return Err(format!("key field {} is null", f.name));
                }
                v
            }
            Src::ValueField(f, key) => {
                let v = field_value(vobj, f)?;
                if *key && matches!(v, SqlValue::Null) {
                    return Err(format!("primary key field {} is null", f.name));
                }
                v
            }
        });
    }
    Ok(out)
}

/// A value field as the fast path reads it.
#[derive(Debug)]
struct FastField {
    name: String,
    ty: ColType,
    /// JSON null (or absence) is accepted: the field is optional or has a default.
    null_ok: bool,
    /// A key column: never NULL.
    key: bool,
    default: Option<Value>,
}

/// The fast path's fields when every column comes from the record's topic, partition or
/// offset or from a value field, every field of the value schema is a column (the
/// converter checks them all), and each field's JSON type is the one its column type
/// reads (as the converter's check of the schema's `type` demands).
fn fast_plan(vs: &Value, srcs: &[Src]) -> Option<Vec<FastField>> {
    let nfields = vs.get("fields")?.as_array()?.len();
    let mut out = Vec::with_capacity(nfields);
    for src in srcs {
        match src {
            Src::Topic | Src::Partition | Src::Offset => {}
            Src::Key(_) | Src::KeyField(_) => return None,
            Src::ValueField(f, key) => out.push(FastField {
                name: f.name.clone(),
                ty: f.ty,
                null_ok: f.optional || f.default.is_some(),
                key: *key,
                default: f.default.clone(),
            }),
        }
    }
    if out.len() != nfields {
        return None;
    }
    for (f, schema) in out.iter().zip(vs.get("fields")?.as_array()?) {
        let ty = schema.get("type").and_then(|t| t.as_str()).unwrap_or("");
        let fits = match f.ty {
            ColType::Int8 | ColType::Int16 | ColType::Int32 | ColType::Int64 => {
                matches!(ty, "int8" | "int16" | "int32" | "int64")
            }
            ColType::Timestamp => ty == "int64",
            ColType::Date | ColType::Time => ty == "int32",
            ColType::Float32 | ColType::Float64 => {
                matches!(ty, "float" | "float32" | "double" | "float64")
            }
            ColType::Bool => ty == "boolean",
            ColType::Text => ty == "string",
            ColType::Bytes | ColType::Decimal { .. } => ty == "bytes",
        };
        if !fits || schema.get("field").and_then(|n| n.as_str()) != Some(f.name.as_str()) {
            return None;
        }
    }
    Some(out)
}

impl Shape {
    /// The values of a record of this shape whose value is the JSON object `payload`
    /// (the envelope's payload text), read straight from the text; `None` when the
    /// shape has no fast path or the payload is anything but a well-formed row (the
    /// record then takes [`values`], which says what is wrong).
    pub fn fast_values(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        payload: &[u8],
    ) -> Option<Vec<SqlValue>> {
        let fields = self.fast.as_ref()?;
        let mut read: Vec<Option<SqlValue>> = Vec::with_capacity(fields.len());
        read.resize_with(fields.len(), || None);
        let mut de = serde_json::Deserializer::from_slice(payload);
        de::Deserializer::deserialize_map(
            &mut de,
            RowVisitor {
                fields,
                read: &mut read,
            },
        )
        .ok()?;
        de.end().ok()?;
        let mut read = read.into_iter();
        let mut out = Vec::with_capacity(self.srcs.len());
        let mut fi = 0;
        for src in &self.srcs {
            out.push(match src {
                Src::Topic => SqlValue::Text(topic.to_string()),
                Src::Partition => SqlValue::Int(partition as i64),
                Src::Offset => SqlValue::Int(offset),
                Src::Key(_) | Src::KeyField(_) => return None,
                Src::ValueField(..) => {
                    let f = fields.get(fi)?;
                    fi += 1;
                    let v = match read.next()? {
                        Some(v) => v,
                        // Absent: the default, else NULL (when the field allows it).
                        None if !f.null_ok => return None,
                        None => match &f.default {
                            Some(d) => to_sql(f.ty, d).ok()?,
                            None => SqlValue::Null,
                        },
                    };
                    if f.key && v == SqlValue::Null {
                        return None;
                    }
                    v
                }
            });
        }
        Some(out)
    }
}

/// Reads the payload object into `read` (by field), refusing repeated fields.
struct RowVisitor<'a> {
    fields: &'a [FastField],
    read: &'a mut [Option<SqlValue>],
}

impl<'de> Visitor<'de> for RowVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a struct payload")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut next = 0;
        while let Some(idx) = map.next_key_seed(FieldName {
            fields: self.fields,
            hint: next,
        })? {
            let Some(i) = idx else {
                // A key the schema does not have: the converter ignores it.
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if self.read[i].is_some() {
                return Err(de::Error::custom("repeated field"));
            }
            let f = &self.fields[i];
            let v = map.next_value_seed(FieldValue(f.ty))?;
            if v == SqlValue::Null && !f.null_ok {
                return Err(de::Error::custom("null in a required field"));
            }
            self.read[i] = Some(v);
            next = i + 1;
        }
        Ok(())
    }
}

/// A key of the payload object → the index of its field (`None`: not in the schema).
/// Fields usually come in schema order: `hint` is tried first.
struct FieldName<'a> {
    fields: &'a [FastField],
    hint: usize,
}

impl<'de> DeserializeSeed<'de> for FieldName<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldName<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, k: &str) -> Result<Option<usize>, E> {
        if self.fields.get(self.hint).is_some_and(|f| f.name == k) {
            return Ok(Some(self.hint));
        }
        Ok(self.fields.iter().position(|f| f.name == k))
    }
}

/// One field's JSON value → its SQL value, as the converter's type check and `to_sql`
/// would have it (JSON null → `SqlValue::Null`, checked by the caller).
struct FieldValue(ColType);

impl<'de> DeserializeSeed<'de> for FieldValue {
    type Value = SqlValue;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<SqlValue, D::Error> {
        d.deserialize_any(self)
    }
}

fn refuse<E: de::Error>() -> E {
    E::custom("a value of another type")
}

fn b64<E: de::Error>(s: &str) -> Result<Vec<u8>, E> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| refuse())
}

impl<'de> Visitor<'de> for FieldValue {
    type Value = SqlValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a primitive value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<SqlValue, E> {
        Ok(SqlValue::Null)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<SqlValue, E> {
        Ok(match self.0 {
            ColType::Int8 | ColType::Int16 | ColType::Int32 | ColType::Int64 => SqlValue::Int(v),
            ColType::Timestamp => SqlValue::Timestamp(v.saturating_mul(1000)),
            ColType::Date => SqlValue::Date(v as i32),
            ColType::Time => SqlValue::Time(v.saturating_mul(1000)),
            ColType::Float32 | ColType::Float64 => SqlValue::Float(v as f64),
            _ => return Err(refuse()),
        })
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<SqlValue, E> {
        match self.0 {
            ColType::Float32 | ColType::Float64 => Ok(SqlValue::Float(v as f64)),
            // Past i64: `to_sql` refuses it.
            _ => match i64::try_from(v) {
                Ok(i) => self.visit_i64(i),
                Err(_) => Err(refuse()),
            },
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<SqlValue, E> {
        match self.0 {
            ColType::Float32 | ColType::Float64 => Ok(SqlValue::Float(v)),
            _ => Err(refuse()),
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<SqlValue, E> {
        match self.0 {
            ColType::Bool => Ok(SqlValue::Bool(v)),
            _ => Err(refuse()),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<SqlValue, E> {
        match self.0 {
            ColType::Text => Ok(SqlValue::Text(v.to_string())),
            ColType::Bytes => Ok(SqlValue::Bytes(b64(v)?)),
            ColType::Decimal { scale } => Ok(SqlValue::Decimal(
                decimal_text(&b64::<E>(v)?, scale).map_err(|_| refuse::<E>())?,
            )),
            _ => Err(refuse()),
        }
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<SqlValue, E> {
        match self.0 {
            ColType::Text => Ok(SqlValue::Text(v)),
            _ => self.visit_str(&v),
        }
    }
}
