//! How the JDBC sink turns a record into a row: the shape its schemas give (table,
//! columns, primary key, and where each column's value comes from) and the values of
//! one record. The shape is the same for every record of a topic with the same key
//! and value schemas, so it is worked out once per run of them (the converters share
//! one schema `Arc` among such records); per record only the values are read.

use std::sync::Arc;

use serde_json::Value;

use super::jdbc_dialect::ColDef;
use super::jdbc_sink::{JdbcSinkConfig, PkMode};
use super::jdbc_types::{to_sql, ColType, SqlValue};
use super::SinkRecord;
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
    Ok(Shape {
        table: table.into(),
        cols: cols.into(),
        pk: pk.into(),
        srcs,
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
