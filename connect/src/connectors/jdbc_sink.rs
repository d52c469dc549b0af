//! `io.confluent.connect.jdbc.JdbcSinkConnector`: records with a Connect schema
//! (JsonConverter's envelope) become rows. `insert.mode` insert | upsert | update,
//! `pk.mode` none | kafka | record_key | record_value with `pk.fields`, `auto.create`
//! and `auto.evolve` (add nullable columns), `delete.enabled` (a tombstone deletes the
//! row of its key), `table.name.format` (`${topic}`), `batch.size`.
//!
//! One `put` is one transaction: consecutive records of the same table and shape go
//! together — into PostgreSQL by `COPY` into a stage table and one statement from it
//! (jdbc_copy.rs), into MySQL/MariaDB as multi-row statements. When the database refuses a statement (a constraint, a
//! bad value) the transaction is rolled back and the records are written one by one,
//! so the ones it refuses are reported to the worker as poison records (DLQ /
//! `errors.tolerance`), and the others are written. A lost connection is retried
//! (`max.retries`, `retry.backoff.ms`) and never dead-letters anything.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::jdbc_config::{connect, InsertMode, JdbcSinkConfig, PkMode};
use super::jdbc_copy::{self, Stages};
use super::jdbc_db::{Db, DbError};
use super::jdbc_dialect::{key_indexes, ColDef, Dialect};
use super::jdbc_rows::{self, ShapeCache};
use super::jdbc_types::{to_sql, ColType, SqlValue};
use super::jdbc_url::Engine;
use super::records::{SinkRecord, TaskError};
use crate::converters::{Data, SchemaAndValue};

/// What one record does to the database.
#[derive(Debug, Clone)]
enum Op {
    /// Table, columns and key shared by the records of one shape (jdbc_rows.rs).
    Write {
        table: Arc<str>,
        cols: Arc<[ColDef]>,
        values: Vec<SqlValue>,
        pk: Arc<[String]>,
    },
    Delete {
        table: String,
        keys: Vec<ColDef>,
        values: Vec<SqlValue>,
    },
    Skip,
}

/// A record the database (or the record's own shape) refused: its place in the batch
/// and why. The worker dead-letters it or fails the task, per `errors.tolerance`.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub index: usize,
    pub message: String,
}

pub struct JdbcSink {
    cfg: JdbcSinkConfig,
    dialect: Dialect,
    db: Option<Db>,
    /// The COPY stage tables of `db`'s session (PostgreSQL).
    stages: Stages,
    /// Records → ops, for `put`.
    prep: Preparer,
    /// table → its columns (lower case), as last seen or created.
    tables: HashMap<String, HashSet<String>>,
    failures: i64,
}

impl JdbcSink {
    pub fn new(cfg: JdbcSinkConfig) -> Self {
        let dialect = Dialect(cfg.url.engine);
        JdbcSink {
            prep: Preparer::new(&cfg),
            cfg,
            dialect,
            db: None,
            stages: Stages::default(),
            tables: HashMap::new(),
            failures: 0,
        }
    }

    /// Connect (`connection.attempts` tries, `connection.backoff.ms` apart). A refused
    /// login or an unknown database fails at once: retrying will not fix it.
    pub async fn start(&mut self) -> Result<(), TaskError> {
        self.db = Some(
            connect(
                &self.cfg.url,
                self.cfg.connection_attempts,
                self.cfg.connection_backoff,
            )
            .await?,
        );
        self.stages = Stages::default();
        Ok(())
    }

    /// Write a batch. `Ok(rejected)`: everything else is in the database and committed.
    pub async fn put(&mut self, records: &[SinkRecord]) -> Result<Vec<Rejected>, TaskError> {
        let p = self.prep.prepare(records);
        self.put_prepared(&p).await
    }

    /// A `Preparer` of this sink's records, to turn a batch into ops away from `put`
    /// (the worker does it while the batch before is being written).
    pub fn preparer(&self) -> Preparer {
        Preparer::new(&self.cfg)
    }

    /// Write a prepared batch, as `put`.
    pub async fn put_prepared(&mut self, p: &Prepared) -> Result<Vec<Rejected>, TaskError> {
        if p.ops.is_empty() && p.rejected.is_empty() {
            return Ok(Vec::new());
        }
        let started = std::time::Instant::now();
        match self.try_put(p).await {
            Ok(r) => {
                tracing::debug!(
                    rows = p.ops.len(),
                    ms = started.elapsed().as_secs_f64() * 1000.0,
                    "put written"
                );
                self.failures = 0;
                Ok(r)
            }
            Err(DbError::Connection(m)) => {
                self.db = None;
                self.failures += 1;
                if self.failures > self.cfg.max_retries {
                    return Err(TaskError::Fatal(format!(
                        "org.apache.kafka.connect.errors.ConnectException: java.sql.SQLException: {m} (gave up after max.retries={} retries)",
                        self.cfg.max_retries
                    )));
                }
                tokio::time::sleep(self.cfg.retry_backoff).await;
                Err(TaskError::Retriable(m))
            }
            Err(DbError::Statement(m)) => Err(TaskError::Fatal(format!(
                "org.apache.kafka.connect.errors.ConnectException: java.sql.SQLException: {m}"
            ))),
        }
    }

    async fn try_put(&mut self, p: &Prepared) -> Result<Vec<Rejected>, DbError> {
        if self.db.is_none() {
            let db = Db::connect(&self.cfg.url).await?;
            self.db = Some(db);
            self.stages = Stages::default();
        }
        let mut rejected = p.rejected.clone();
        let ops = &p.ops;
        // Tables (and PostgreSQL's COPY stages) first, once per shape: DDL is not part
        // of the batch's transaction on MySQL anyway, and a stage must outlive a
        // rolled-back put.
        let mut last: Option<&Op> = None;
        for (_, op) in ops {
            if let Op::Write {
                table, cols, pk, ..
            } = op
            {
                if last.is_some_and(|l| same_shape(l, op)) {
                    continue;
                }
                last = Some(op);
                self.ensure_table(table, cols, pk).await?;
                if self.dialect.0 == Engine::Postgres {
                    let db = self
                        .db
                        .as_mut()
                        .ok_or_else(|| DbError::Connection("not connected".into()))?;
                    self.stages.ensure(db, table, cols).await?;
                }
            }
        }
        let db = self
            .db
            .as_mut()
            .ok_or_else(|| DbError::Connection("not connected".into()))?;
        // Sent with the put's first statement (PostgreSQL), not waited for alone.
        db.defer("BEGIN").await?;
        self.stages.begin();
        match run_ops(
            db,
            self.dialect,
            ops,
            self.cfg.insert_mode,
            self.cfg.batch_size,
            Some((&mut self.stages, p.lines())),
        )
        .await
        {
            Ok(()) => {
                db.batch("COMMIT").await?;
            }
            Err(DbError::Connection(m)) => return Err(DbError::Connection(m)),
            Err(DbError::Statement(first)) => {
                tracing::warn!(error = %first, "a batch was refused; writing its records one by one");
                db.batch("ROLLBACK").await?;
                for (i, op) in ops {
                    let one = [(*i, op.clone())];
                    match run_ops(db, self.dialect, &one, self.cfg.insert_mode, 1, None).await {
                        Ok(()) => {}
                        Err(DbError::Statement(m)) => rejected.push(Rejected {
                            index: *i,
                            message: m,
                        }),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        rejected.sort_by_key(|r| r.index);
        Ok(rejected)
    }

    /// Create the table, or add the columns it lacks, as `auto.create`/`auto.evolve` allow.
    async fn ensure_table(
        &mut self,
        table: &str,
        cols: &[ColDef],
        pk: &[String],
    ) -> Result<(), DbError> {
        let known = match self.tables.get(table) {
            Some(k) => k.clone(),
            None => {
                let db = self
                    .db
                    .as_mut()
                    .ok_or_else(|| DbError::Connection("not connected".into()))?;
                match db.table_columns(table).await? {
                    Some(c) => c.into_iter().collect(),
                    None => {
                        if !self.cfg.auto_create {
                            return Err(DbError::Statement(format!(
                                "Table \"{table}\" is missing and auto-creation is disabled"
                            )));
                        }
                        let sql = self.dialect.create_table(table, cols, pk);
                        tracing::info!(%table, %sql, "creating table");
                        if let Err(e) = db.batch(&sql).await {
                            // Another task may have created it meanwhile.
                            if db.table_columns(table).await?.is_none() {
                                return Err(e);
                            }
                        }
                        let set: HashSet<String> = match db.table_columns(table).await? {
                            Some(c) => c.into_iter().collect(),
                            None => cols.iter().map(|c| c.name.to_lowercase()).collect(),
                        };
                        self.tables.insert(table.to_string(), set.clone());
                        set
                    }
                }
            }
        };
        let missing: Vec<&ColDef> = cols
            .iter()
            .filter(|c| !known.contains(&c.name.to_lowercase()))
            .collect();
        if missing.is_empty() {
            self.tables.insert(table.to_string(), known);
            return Ok(());
        }
        let names: Vec<&str> = missing.iter().map(|c| c.name.as_str()).collect();
        if !self.cfg.auto_evolve {
            return Err(DbError::Statement(format!(
                "Table \"{table}\" is missing fields ({}) and auto-evolution is disabled",
                names.join(", ")
            )));
        }
        let db = self
            .db
            .as_mut()
            .ok_or_else(|| DbError::Connection("not connected".into()))?;
        let mut known = known;
        for c in missing {
            if !c.optional {
                return Err(DbError::Statement(format!(
                    "Cannot ALTER table \"{table}\" to add missing field {}, as the field is not optional",
                    c.name
                )));
            }
            let sql = self.dialect.add_column(table, c);
            tracing::info!(%table, %sql, "adding a column");
            db.batch(&sql).await?;
            known.insert(c.name.to_lowercase());
        }
        self.tables.insert(table.to_string(), known);
        Ok(())
    }
}

/// A batch as ops, and the records that cannot become one (a bad shape or value).
#[derive(Debug, Default)]
pub struct Prepared {
    ops: Vec<(usize, Op)>,
    rejected: Vec<Rejected>,
    /// PostgreSQL: each write's row as a COPY text line (`jdbc_copy::encode_row`),
    /// made with the ops so that a put only sends them; `line_ends[k]` is where
    /// `ops[k]`'s line ends in `text` (a delete's is empty).
    text: Vec<u8>,
    line_ends: Vec<usize>,
}

impl Prepared {
    pub fn with_capacity(n: usize) -> Self {
        Prepared {
            ops: Vec::with_capacity(n),
            ..Prepared::default()
        }
    }

    /// Add an op; its COPY line too when `copy_text` (a write, for PostgreSQL).
    fn push(&mut self, index: usize, op: Op, copy_text: bool) {
        if copy_text {
            if let Op::Write { values, .. } = &op {
                jdbc_copy::encode_row(&mut self.text, None, values);
            }
            self.line_ends.push(self.text.len());
        }
        self.ops.push((index, op));
    }

    /// The ops' COPY lines, when they were made.
    fn lines(&self) -> Option<Lines<'_>> {
        (self.line_ends.len() == self.ops.len()).then_some(Lines {
            text: &self.text,
            ends: &self.line_ends,
        })
    }
}

/// The COPY lines of a run of ops (`Prepared::lines`, sliced with the ops).
#[derive(Clone, Copy)]
pub struct Lines<'a> {
    text: &'a [u8],
    /// Where each op's line ends; the first starts where the one before it ends.
    ends: &'a [usize],
}

impl<'a> Lines<'a> {
    /// The lines of ops `i..j` (of the ops these lines were made with).
    fn slice(&self, i: usize, j: usize) -> Option<(&'a [u8], Vec<&'a [u8]>)> {
        let start = if i == 0 { 0 } else { *self.ends.get(i - 1)? };
        let mut at = start;
        let mut lines = Vec::with_capacity(j - i);
        for &end in self.ends.get(i..j)? {
            lines.push(self.text.get(at..end)?);
            at = end;
        }
        Some((self.text.get(start..at)?, lines))
    }
}

/// Turns records into ops: the sink's configuration and the shape of the last run of
/// records (jdbc_rows.rs). No connection: it can run while a put waits on the database.
pub struct Preparer {
    cfg: JdbcSinkConfig,
    shapes: ShapeCache,
    /// PostgreSQL: rows are also written as COPY text while preparing.
    copy_text: bool,
}

impl Preparer {
    fn new(cfg: &JdbcSinkConfig) -> Self {
        Preparer {
            cfg: cfg.clone(),
            shapes: ShapeCache::default(),
            copy_text: cfg.url.engine == Engine::Postgres,
        }
    }

    /// The ops of a batch; `Rejected` indexes are places in `records`.
    pub fn prepare(&mut self, records: &[SinkRecord]) -> Prepared {
        let mut p = Prepared::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            self.add(&mut p, i, r);
        }
        p
    }

    /// Add record `index` of a batch to `p` (its op, or why it has none).
    pub fn add(&mut self, p: &mut Prepared, index: usize, r: &SinkRecord) {
        match self.op_of(r) {
            Ok(Op::Skip) => {}
            Ok(op) => p.push(index, op, self.copy_text),
            Err(m) => p.rejected.push(Rejected { index, message: m }),
        }
    }

    /// Add record `index` straight from its value's JSON text (`payload`, the envelope's
    /// payload, whose schema the converter read as `schema`), when the shape is the last
    /// record's and the text is a well-formed row (`jdbc_rows` fast path). `false`:
    /// nothing was added; the record must go through the converter and [`Preparer::add`].
    pub fn add_fast(
        &mut self,
        p: &mut Prepared,
        index: usize,
        (topic, partition, offset): (&str, i32, i64),
        schema: &Arc<Value>,
        payload: &[u8],
    ) -> bool {
        if self.cfg.pk_mode == PkMode::RecordKey {
            return false;
        }
        let Some(shape) = self.shapes.last_for(topic, schema) else {
            return false;
        };
        let Some(values) = shape.fast_values(topic, partition, offset, payload) else {
            return false;
        };
        p.push(
            index,
            Op::Write {
                table: shape.table.clone(),
                cols: shape.cols.clone(),
                values,
                pk: shape.pk.clone(),
            },
            self.copy_text,
        );
        true
    }

    /// The row a record makes (or why it cannot make one).
    fn op_of(&mut self, r: &SinkRecord) -> Result<Op, String> {
        if matches!(r.value.data, Data::Null) {
            if !self.cfg.delete_enabled {
                return Ok(Op::Skip);
            }
            let (keys, values) = key_columns(&r.key, &self.cfg.pk_fields)?;
            return Ok(Op::Delete {
                table: self.cfg.table_name(&r.topic),
                keys,
                values,
            });
        }
        let shape = self.shapes.shape(&self.cfg, r)?;
        let values = jdbc_rows::values(&shape, r)?;
        Ok(Op::Write {
            table: shape.table.clone(),
            cols: shape.cols.clone(),
            values,
            pk: shape.pk.clone(),
        })
    }
}

/// The fields of a struct value as columns and values (a field missing from the
/// value takes its schema default).
fn struct_columns(v: &SchemaAndValue, what: &str) -> Result<(Vec<ColDef>, Vec<SqlValue>), String> {
    let Some(schema) = &v.schema else {
        return Err(jdbc_rows::no_schema(what));
    };
    let fields = jdbc_rows::struct_fields(schema, what)?;
    let Data::Value(Value::Object(obj)) = &v.data else {
        return Err(format!("the {what} is not a struct"));
    };
    let mut cols = Vec::with_capacity(fields.len());
    let mut vals = Vec::with_capacity(fields.len());
    for f in fields {
        let raw = obj
            .get(&f.name)
            .or(f.default.as_ref())
            .unwrap_or(&Value::Null);
        let val = to_sql(f.ty, raw).map_err(|e| format!("field {}: {e}", f.name))?;
        cols.push(ColDef {
            name: f.name,
            ty: f.ty,
            optional: f.optional,
        });
        vals.push(val);
    }
    Ok((cols, vals))
}

/// The key as primary-key columns: a struct's fields (all, or those in `pk.fields`),
/// or a primitive key under `pk.fields[0]` (default `__connect_key`).
fn key_columns(
    k: &SchemaAndValue,
    pk_fields: &[String],
) -> Result<(Vec<ColDef>, Vec<SqlValue>), String> {
    let Some(schema) = &k.schema else {
        return Err("pk.mode=record_key needs keys with a schema (key.converter JsonConverter with schemas.enable=true)".into());
    };
    if matches!(k.data, Data::Null) {
        return Err("pk.mode=record_key but the record has a null key".into());
    }
    if schema.get("type").and_then(|t| t.as_str()) == Some("struct") {
        let (cols, vals) = struct_columns(k, "key")?;
        let mut out_c = Vec::new();
        let mut out_v = Vec::new();
        for (mut c, v) in cols.into_iter().zip(vals) {
            if pk_fields.is_empty() || pk_fields.contains(&c.name) {
                if matches!(v, SqlValue::Null) {
                    return Err(format!("key field {} is null", c.name));
                }
                c.optional = false;
                out_c.push(c);
                out_v.push(v);
            }
        }
        if out_c.is_empty() {
            return Err(format!("none of pk.fields {pk_fields:?} is in the key"));
        }
        return Ok((out_c, out_v));
    }
    let name = pk_fields
        .first()
        .cloned()
        .unwrap_or_else(|| "__connect_key".into());
    let ty = ColType::of_schema(schema)?;
    let v = to_sql(ty, &k.to_json())?;
    Ok((
        vec![ColDef {
            name,
            ty,
            optional: false,
        }],
        vec![v],
    ))
}

/// Whether `b` is a write of `a`'s shape (table, column names and types), so the two
/// may go in one statement. Compared in place: it runs for every row.
fn same_shape(a: &Op, b: &Op) -> bool {
    match (a, b) {
        (
            Op::Write {
                table: ta,
                cols: ca,
                ..
            },
            Op::Write {
                table: tb,
                cols: cb,
                ..
            },
        ) => {
            (Arc::ptr_eq(ca, cb) && Arc::ptr_eq(ta, tb))
                || ta == tb
                    && ca.len() == cb.len()
                    && ca
                        .iter()
                        .zip(cb.iter())
                        .all(|(x, y)| x.name == y.name && x.ty == y.ty)
        }
        _ => false,
    }
}

/// The shortest run of same-shape writes worth a COPY (two statements, not one).
const COPY_MIN_ROWS: usize = 2;

/// Run ops in order. With `stages` (PostgreSQL), runs of same-shape writes of at
/// least `COPY_MIN_ROWS` rows are COPYed, each run in one COPY, whatever the insert
/// mode. Otherwise they are multi-row statements of at most `batch` rows
/// (an upsert run is cut where a key repeats: one statement may not touch a row
/// twice), and updates and deletes one statement each.
async fn run_ops(
    db: &mut Db,
    d: Dialect,
    ops: &[(usize, Op)],
    mode: InsertMode,
    batch: usize,
    mut stages: Option<(&mut Stages, Option<Lines<'_>>)>,
) -> Result<(), DbError> {
    let mut i = 0;
    while i < ops.len() {
        if let (
            Some((st, lines)),
            Op::Write {
                table, cols, pk, ..
            },
        ) = (stages.as_mut(), &ops[i].1)
        {
            // A run is one COPY however long: `batch.size` bounds a statement's
            // parameters, and splitting a COPY cost a round trip per piece, during
            // which PostgreSQL waited on the worker (the put is one transaction anyway).
            let mut j = i;
            while j < ops.len() && same_shape(&ops[i].1, &ops[j].1) {
                j += 1;
            }
            if j - i >= COPY_MIN_ROWS && st.has(table, cols) {
                {
                    let rows: Vec<&[SqlValue]> = ops[i..j]
                        .iter()
                        .filter_map(|(_, op)| match op {
                            Op::Write { values, .. } => Some(values.as_slice()),
                            _ => None,
                        })
                        .collect();
                    let text = lines.and_then(|l| l.slice(i, j));
                    st.write(db, d, table, cols, pk, mode, &rows, text).await?;
                    i = j;
                    continue;
                }
            }
        }
        match &ops[i].1 {
            Op::Skip => i += 1,
            Op::Delete {
                table,
                keys,
                values,
            } => {
                db.execute(&d.delete(table, keys), values).await?;
                i += 1;
            }
            Op::Write {
                table,
                cols,
                values,
                pk,
            } if mode == InsertMode::Update => {
                let mut params: Vec<SqlValue> = Vec::with_capacity(values.len());
                for (c, v) in cols.iter().zip(values) {
                    if !pk.contains(&c.name) {
                        params.push(v.clone());
                    }
                }
                for (c, v) in cols.iter().zip(values) {
                    if pk.contains(&c.name) {
                        params.push(v.clone());
                    }
                }
                if cols.len() > pk.len() {
                    db.execute(&d.update(table, cols, pk), &params).await?;
                }
                i += 1;
            }
            Op::Write {
                table, cols, pk, ..
            } => {
                let max_rows = batch.min((60_000 / cols.len().max(1)).max(1));
                let key_idx = key_indexes(cols, pk);
                let mut seen: HashSet<Vec<String>> = HashSet::new();
                let mut j = i;
                let mut params = Vec::new();
                while j < ops.len() && j - i < max_rows && same_shape(&ops[i].1, &ops[j].1) {
                    let Op::Write { values, .. } = &ops[j].1 else {
                        break;
                    };
                    if mode == InsertMode::Upsert {
                        let key: Vec<String> = key_idx
                            .iter()
                            .map(|k| format!("{:?}", values[*k]))
                            .collect();
                        if !seen.insert(key) {
                            break;
                        }
                    }
                    params.extend(values.iter().cloned());
                    j += 1;
                }
                let rows = j - i;
                let sql = if mode == InsertMode::Upsert {
                    d.upsert(table, cols, pk, rows)
                } else {
                    d.insert(table, cols, rows)
                };
                db.execute(&sql, &params).await?;
                i = j;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_properties, ConfigError, ConfigMap};
    use serde_json::json;

    fn cfg(extra: &str) -> Result<JdbcSinkConfig, ConfigError> {
        JdbcSinkConfig::from_config(&parse_properties(&format!(
            "connection.url=jdbc:postgresql://127.0.0.1:5432/db\n{extra}"
        )))
    }

    fn rec(key: Option<Value>, value: Option<Value>) -> SinkRecord {
        let sv = |v: Option<Value>| match v {
            None => SchemaAndValue {
                schema: None,
                data: Data::Null,
            },
            Some(e) => SchemaAndValue {
                schema: e.get("schema").cloned().map(std::sync::Arc::new),
                data: Data::Value(e["payload"].clone()),
            },
        };
        SinkRecord {
            topic: "orders".into(),
            partition: 0,
            offset: 7,
            timestamp: None,
            key: sv(key),
            value: sv(value),
        }
    }

    #[test]
    fn config_rules() {
        assert_eq!(cfg("insert.mode=merge\n").unwrap_err().key, "insert.mode");
        assert_eq!(cfg("insert.mode=upsert\n").unwrap_err().key, "pk.mode");
        assert_eq!(
            cfg("delete.enabled=true\npk.mode=record_value\n")
                .unwrap_err()
                .key,
            "delete.enabled"
        );
        assert_eq!(cfg("batch.size=0\n").unwrap_err().key, "batch.size");
        let c = cfg("table.name.format=kafka_${topic}\n").unwrap();
        assert_eq!(c.table_name("orders"), "kafka_orders");
        assert_eq!(
            JdbcSinkConfig::from_config(&ConfigMap::new())
                .unwrap_err()
                .key,
            "connection.url"
        );
    }

    #[test]
    fn records_become_rows() {
        let mut s = JdbcSink::new(
            cfg("insert.mode=upsert\npk.mode=record_key\ndelete.enabled=true\n").unwrap(),
        );
        let key = json!({"schema":{"type":"struct","fields":[{"field":"id","type":"int32"}]},"payload":{"id":5}});
        let val = json!({"schema":{"type":"struct","fields":[{"field":"id","type":"int32"},{"field":"name","type":"string","optional":true}]},"payload":{"id":5,"name":"x"}});
        let Op::Write {
            table,
            cols,
            values,
            pk,
        } = s.prep.op_of(&rec(Some(key.clone()), Some(val))).unwrap()
        else {
            panic!("not a write")
        };
        assert_eq!(&*table, "orders");
        assert_eq!(pk.to_vec(), vec!["id".to_string()]);
        assert_eq!(
            cols.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["id", "name"]
        );
        assert_eq!(values, vec![SqlValue::Int(5), SqlValue::Text("x".into())]);
        assert!(matches!(
            s.prep.op_of(&rec(Some(key), None)).unwrap(),
            Op::Delete { .. }
        ));
        // Schemaless values cannot become rows.
        let mut r = rec(None, None);
        r.value = SchemaAndValue {
            schema: None,
            data: Data::Value(json!({"id": 1})),
        };
        assert!(s.prep.op_of(&r).unwrap_err().contains("schema"));
        // Primitive keys use __connect_key.
        let (c, v) = key_columns(
            &SchemaAndValue {
                schema: Some(std::sync::Arc::new(json!({"type":"int64"}))),
                data: Data::Value(json!(9)),
            },
            &[],
        )
        .unwrap();
        assert_eq!(
            (c[0].name.as_str(), &v[0]),
            ("__connect_key", &SqlValue::Int(9))
        );
    }

    /// The fast path (payload text straight to values) gives exactly what the converter
    /// and `op_of` give, and refuses whatever they refuse.
    #[tokio::test]
    async fn fast_rows_match_the_full_path() {
        let mut m = ConfigMap::new();
        m.insert("class".into(), crate::converters::JSON.into());
        m.insert("schemas.enable".into(), "true".into());
        let conv = crate::converters::Converter::from_config("value.converter", &m).unwrap();
        let schema = r#"{"type":"struct","optional":false,"fields":[{"field":"id","type":"int32","optional":false},{"field":"name","type":"string","optional":false},{"field":"amount","type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},{"field":"note","type":"string","optional":true},{"field":"ts","type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1},{"field":"f","type":"double","optional":true},{"field":"b","type":"boolean","optional":true,"default":true},{"field":"d","type":"int32","optional":true,"name":"org.apache.kafka.connect.data.Date","version":1},{"field":"blob","type":"bytes","optional":true}]}"#;
        let env = |payload: &str| format!(r#"{{"schema":{schema},"payload":{payload}}}"#);
        let mut prep = Preparer::new(
            &cfg("insert.mode=upsert\npk.mode=record_value\npk.fields=id\n").unwrap(),
        );
        let slow = |conv: &crate::converters::Converter, prep: &mut Preparer, text: &str| {
            let conv = conv.clone();
            let text = text.to_string();
            let v = futures_util::FutureExt::now_or_never(conv.to_connect(Some(text.as_bytes())))
                .expect("the JSON converter does not wait");
            let value = v.map_err(|e| e.message)?;
            let mut r = rec(None, None);
            r.value = value;
            match prep.op_of(&r)? {
                Op::Write { values, .. } => Ok(values),
                other => Err(format!("not a write: {other:?}")),
            }
        };
        let fast = |conv: &crate::converters::Converter, prep: &mut Preparer, text: &str| {
            let (s, payload) = conv.envelope_payload(Some(text.as_bytes()))?;
            let mut p = Prepared::default();
            if !prep.add_fast(&mut p, 0, ("orders", 0, 7), &s, payload) {
                return None;
            }
            match p.ops.pop() {
                Some((0, Op::Write { values, .. })) => Some(values),
                _ => panic!("add_fast said yes but made no write"),
            }
        };
        let good = [
            r#"{"id":1,"name":"a","amount":"BOI=","note":null,"ts":1700000000123,"f":1.5,"b":false,"d":19000,"blob":"AAE="}"#,
            r#"{"blob":null,"d":null,"b":null,"f":3,"ts":-5,"note":"n\"o\\te\n\u00e9","amount":null,"name":"","id":-2147483648}"#,
            r#"{"id":2,"name":"x","ts":0}"#,
            r#" { "id" : 3 , "name" : "y" , "ts" : 1 , "extra" : {"deep":[1,2,{"z":null}]} } "#,
            r#"{"id":4,"name":"z","ts":9,"f":-1e300,"amount":"/w=="}"#,
        ];
        let bad = [
            r#"{"id":"1","name":"a","ts":1}"#,
            r#"{"id":1.5,"name":"a","ts":1}"#,
            r#"{"id":null,"name":"a","ts":1}"#,
            r#"{"name":"a","ts":1}"#,
            r#"{"id":1,"ts":1}"#,
            r#"{"id":1,"name":5,"ts":1}"#,
            r#"{"id":1,"name":"a","ts":1.5}"#,
            r#"{"id":1,"name":"a","ts":1,"amount":"!!"}"#,
            r#"{"id":1,"name":"a","ts":1,"amount":12.5}"#,
            r#"{"id":1,"name":"a","ts":1,"b":"true"}"#,
            r#"{"id":1,"name":"a","ts":1,"f":"1"}"#,
            r#"{"id":9223372036854775808,"name":"a","ts":1}"#,
            r#"{"id":1,"name":"a","ts":1,"id":2}"#,
            r#"{"id":1,"name":"a","ts":1} x"#,
            r#"{"id":1,"name":"a","ts":1"#,
            r#"[1,2]"#,
            "null",
            "7",
        ];
        // The first record teaches the converter the schema text and the preparer
        // the shape; the fast path takes the records after it.
        assert!(slow(&conv, &mut prep, &env(good[0])).is_ok());
        for p in good {
            let text = env(p);
            let want = slow(&conv, &mut prep, &text).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(fast(&conv, &mut prep, &text), Some(want), "{p}");
        }
        for p in bad {
            let text = env(p);
            let f = fast(&conv, &mut prep, &text);
            match slow(&conv, &mut prep, &text) {
                Ok(want) => assert!(f.is_none() || f == Some(want), "{p}"),
                Err(_) => assert_eq!(f, None, "{p}"),
            }
        }
        // Spaced differently or another schema: not the fast path's.
        let spaced = format!(r#"{{ "schema":{schema},"payload":{}}}"#, good[0]);
        assert_eq!(fast(&conv, &mut prep, &spaced), None);
        // pk.mode=record_key reads the key: never the fast path.
        let mut keyed = Preparer::new(&cfg("insert.mode=upsert\npk.mode=record_key\n").unwrap());
        assert_eq!(fast(&conv, &mut keyed, &env(good[0])), None);
    }

    /// A PostgreSQL sink's prepared batch carries each write's COPY line, sliced per run.
    #[test]
    fn prepared_rows_carry_their_copy_lines() {
        let mut prep = Preparer::new(
            &cfg("insert.mode=upsert\npk.mode=record_key\ndelete.enabled=true\n").unwrap(),
        );
        let key = |id: i64| json!({"schema":{"type":"struct","fields":[{"field":"id","type":"int32"}]},"payload":{"id":id}});
        let val = |id: i64, name: &str| json!({"schema":{"type":"struct","fields":[{"field":"id","type":"int32"},{"field":"name","type":"string","optional":true}]},"payload":{"id":id,"name":name}});
        let recs = [
            rec(Some(key(1)), Some(val(1, "a\tb"))),
            rec(Some(key(2)), None),
            rec(Some(key(3)), Some(val(3, "c"))),
        ];
        let p = prep.prepare(&recs);
        assert_eq!(p.ops.len(), 3);
        let lines = p
            .lines()
            .expect("PostgreSQL rows are encoded while preparing");
        let (all, each) = lines.slice(0, 3).unwrap();
        assert_eq!(all, b"1\ta\\tb\n3\tc\n");
        assert_eq!(each, vec![&b"1\ta\\tb\n"[..], &b""[..], &b"3\tc\n"[..]]);
        let (all, each) = lines.slice(2, 3).unwrap();
        assert_eq!((all, each), (&b"3\tc\n"[..], vec![&b"3\tc\n"[..]]));
        assert!(lines.slice(2, 4).is_none());
        // MySQL has no COPY: nothing is encoded.
        let my = JdbcSinkConfig::from_config(&parse_properties(
            "connection.url=jdbc:mysql://127.0.0.1:3306/db\ninsert.mode=upsert\npk.mode=record_key\n",
        ))
        .unwrap();
        assert!(Preparer::new(&my).prepare(&recs[..1]).lines().is_none());
    }
}
