//! `io.confluent.connect.jdbc.JdbcSourceConnector`: rows of tables (or of one `query`)
//! become Connect structs on `<topic.prefix><table>` (or `<topic.prefix>` for a query).
//! `mode` bulk (the whole table every `poll.interval.ms`), incrementing (rows whose
//! `incrementing.column.name` is above the last one seen), timestamp (rows whose
//! `timestamp.column.name` is after the last one seen and before the database's clock
//! minus `timestamp.delay.interval.ms`), or timestamp+incrementing (both, so rows
//! sharing a timestamp are neither skipped nor repeated).
//!
//! Source partitions and offsets are Confluent's (`{"protocol":"1","table":"db.t"}` /
//! `{"query":"query"}` → `{"incrementing":N}`, `{"timestamp":ms,"timestamp_nanos":ns}`)
//! and live in the worker's offset store: a restarted worker starts after the last
//! row whose record Kafka acknowledged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::jdbc_db::{Column, Db, DbError};
use super::jdbc_dialect::{Dialect, SourceFrom};
use super::jdbc_types::{to_json, ColType, SqlValue};
use super::jdbc_url::{Engine, JdbcUrl};
use super::records::{SourceRecord, TaskError};
use crate::config::{self, ConfigError, ConfigMap};
use crate::converters::{Data, SchemaAndValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bulk,
    Incrementing,
    Timestamp,
    TimestampIncrementing,
}

#[derive(Debug, Clone)]
pub struct JdbcSourceConfig {
    pub url: JdbcUrl,
    pub mode: Mode,
    pub incrementing_column: Option<String>,
    pub timestamp_column: Option<String>,
    pub tables: Vec<String>,
    pub exclude: Vec<String>,
    pub query: Option<String>,
    pub topic_prefix: String,
    pub poll_interval: Duration,
    pub batch_max_rows: usize,
    pub delay_ms: i64,
    pub connection_attempts: i64,
    pub connection_backoff: Duration,
}

fn list_of(m: &ConfigMap, a: &str, b: &str) -> Vec<String> {
    let v = config::list(m, a);
    if v.is_empty() {
        config::list(m, b)
    } else {
        v
    }
}

impl JdbcSourceConfig {
    pub fn from_config(m: &ConfigMap) -> Result<Self, ConfigError> {
        let url = JdbcUrl::from_config(m)?;
        config::required(m, "mode")?;
        let mode = match config::one_of(
            m,
            "mode",
            "",
            &[
                "bulk",
                "incrementing",
                "timestamp",
                "timestamp+incrementing",
            ],
        )? {
            "incrementing" => Mode::Incrementing,
            "timestamp" => Mode::Timestamp,
            "timestamp+incrementing" => Mode::TimestampIncrementing,
            _ => Mode::Bulk,
        };
        let col = |k: &str| {
            m.get(k)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let incrementing_column = col("incrementing.column.name");
        // Confluent takes a list (COALESCE of several); the first is used here.
        let timestamp_column = config::list(m, "timestamp.column.name").into_iter().next();
        if matches!(mode, Mode::Incrementing | Mode::TimestampIncrementing)
            && incrementing_column.is_none()
        {
            return Err(ConfigError::new(
                "incrementing.column.name",
                "Missing required configuration: mode incrementing and timestamp+incrementing need incrementing.column.name",
            ));
        }
        if matches!(mode, Mode::Timestamp | Mode::TimestampIncrementing)
            && timestamp_column.is_none()
        {
            return Err(ConfigError::new(
                "timestamp.column.name",
                "Missing required configuration: mode timestamp and timestamp+incrementing need timestamp.column.name",
            ));
        }
        let tables = list_of(m, "table.include.list", "table.whitelist");
        let exclude = list_of(m, "table.exclude.list", "table.blacklist");
        let query = col("query");
        if query.is_some() && !tables.is_empty() {
            return Err(ConfigError::new(
                "query",
                "query and table.whitelist/table.include.list are mutually exclusive",
            ));
        }
        if !tables.is_empty() && !exclude.is_empty() {
            return Err(ConfigError::new(
                "table.blacklist",
                "table.whitelist and table.blacklist are mutually exclusive",
            ));
        }
        let tz = m.get("db.timezone").map(|s| s.trim()).unwrap_or("UTC");
        if !matches!(tz, "" | "UTC" | "Etc/UTC" | "GMT" | "Z") {
            return Err(ConfigError::new(
                "db.timezone",
                format!("Invalid value {tz}: fjord-connect reads timestamps as UTC only"),
            ));
        }
        Ok(JdbcSourceConfig {
            url,
            mode,
            incrementing_column,
            timestamp_column,
            tables,
            exclude,
            query,
            topic_prefix: config::required(m, "topic.prefix")?.to_string(),
            poll_interval: Duration::from_millis(config::int_at_least(
                m,
                "poll.interval.ms",
                5000,
                1,
            )? as u64),
            batch_max_rows: config::int_at_least(m, "batch.max.rows", 100, 1)? as usize,
            delay_ms: config::int_at_least(m, "timestamp.delay.interval.ms", 0, 0)?,
            connection_attempts: config::int_at_least(m, "connection.attempts", 3, 1)?,
            connection_backoff: Duration::from_millis(config::int_at_least(
                m,
                "connection.backoff.ms",
                10_000,
                0,
            )? as u64),
        })
    }
}

pub fn definitions() -> Vec<(&'static str, &'static str, bool, Option<&'static str>)> {
    let mut d = super::jdbc_config::common_definitions();
    d.extend([
        ("mode", "STRING", true, None),
        ("incrementing.column.name", "STRING", false, Some("")),
        ("timestamp.column.name", "LIST", false, Some("")),
        ("table.whitelist", "LIST", false, Some("")),
        ("table.include.list", "LIST", false, Some("")),
        ("table.blacklist", "LIST", false, Some("")),
        ("table.exclude.list", "LIST", false, Some("")),
        ("query", "STRING", false, Some("")),
        ("topic.prefix", "STRING", true, None),
        ("poll.interval.ms", "INT", false, Some("5000")),
        ("batch.max.rows", "INT", false, Some("100")),
        ("timestamp.delay.interval.ms", "LONG", false, Some("0")),
        ("db.timezone", "STRING", false, Some("UTC")),
    ]);
    d
}

/// Where one table (or the query) stands.
struct Querier {
    from: String,
    is_query: bool,
    topic: String,
    partition: Value,
    incrementing: i64,
    /// Microseconds since the epoch of the last timestamp seen.
    timestamp: i64,
    due: Instant,
}

pub struct JdbcSource {
    cfg: JdbcSourceConfig,
    dialect: Dialect,
    db: Option<Db>,
    queriers: Vec<Querier>,
    stored: HashMap<String, Value>,
    started: bool,
}

impl JdbcSource {
    pub fn new(cfg: JdbcSourceConfig, stored: &[(Value, Value)]) -> Self {
        let dialect = Dialect(cfg.url.engine);
        JdbcSource {
            cfg,
            dialect,
            db: None,
            queriers: Vec::new(),
            stored: stored
                .iter()
                .map(|(p, o)| (p.to_string(), o.clone()))
                .collect(),
            started: false,
        }
    }

    /// Connect and find the tables (`table.whitelist`, else every table of the database
    /// less `table.blacklist`); place each at its stored offset.
    pub async fn start(&mut self) -> Result<(), TaskError> {
        let mut db = super::jdbc_config::connect(
            &self.cfg.url,
            self.cfg.connection_attempts,
            self.cfg.connection_backoff,
        )
        .await?;
        let mut froms: Vec<(String, bool)> = Vec::new();
        if let Some(q) = &self.cfg.query {
            froms.push((q.clone(), true));
        } else if !self.cfg.tables.is_empty() {
            froms.extend(self.cfg.tables.iter().map(|t| (t.clone(), false)));
        } else {
            let sql = match self.cfg.url.engine {
                Engine::Postgres => "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
                Engine::MySql => "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1",
            };
            let (_, rows) = db.query(sql, &[]).await.map_err(fatal)?;
            for r in rows {
                let name = match r.into_iter().next() {
                    Some(SqlValue::Text(s)) => s,
                    Some(SqlValue::Bytes(b)) => String::from_utf8_lossy(&b).into_owned(),
                    _ => continue,
                };
                if !self.cfg.exclude.contains(&name) {
                    froms.push((name, false));
                }
            }
        }
        let now = Instant::now();
        for (from, is_query) in froms {
            let partition = if is_query {
                json!({ "query": "query" })
            } else {
                json!({ "protocol": "1", "table": format!("{}.{}", self.cfg.url.database, from) })
            };
            let offset = self.stored.get(&partition.to_string());
            let incrementing = offset
                .and_then(|o| o.get("incrementing"))
                .and_then(|v| v.as_i64())
                .unwrap_or(-1);
            let timestamp = offset
                .and_then(|o| {
                    let ms = o.get("timestamp")?.as_i64()?;
                    let ns = o
                        .get("timestamp_nanos")
                        .and_then(|v| v.as_i64())
                        .unwrap_or((ms.rem_euclid(1000)) * 1_000_000);
                    Some(ms.div_euclid(1000) * 1_000_000 + ns / 1000)
                })
                .unwrap_or(0);
            self.queriers.push(Querier {
                topic: if is_query {
                    self.cfg.topic_prefix.clone()
                } else {
                    format!("{}{}", self.cfg.topic_prefix, from)
                },
                from,
                is_query,
                partition,
                incrementing,
                timestamp,
                due: now,
            });
        }
        tracing::info!(tables = self.queriers.len(), url = %self.cfg.url.redacted(), "JDBC source started");
        self.db = Some(db);
        self.started = true;
        Ok(())
    }

    /// The topics this source writes to.
    pub fn topics(&self) -> Vec<String> {
        self.queriers.iter().map(|q| q.topic.clone()).collect()
    }

    /// The next batch of one table that is due; waits until one is.
    pub async fn poll(&mut self) -> Result<Vec<SourceRecord>, TaskError> {
        if !self.started {
            self.start().await?;
        }
        let Some(idx) = self
            .queriers
            .iter()
            .enumerate()
            .min_by_key(|(_, q)| q.due)
            .map(|(i, _)| i)
        else {
            tokio::time::sleep(self.cfg.poll_interval).await;
            return Ok(Vec::new());
        };
        let due = self.queriers[idx].due;
        tokio::time::sleep_until(due.into()).await;
        if self.db.is_none() {
            match Db::connect(&self.cfg.url).await {
                Ok(db) => self.db = Some(db),
                Err(DbError::Connection(m)) => {
                    self.queriers[idx].due =
                        Instant::now() + self.cfg.connection_backoff.min(Duration::from_secs(5));
                    return Err(TaskError::Retriable(m));
                }
                Err(DbError::Statement(m)) => return Err(fatal(DbError::Statement(m))),
            }
        }
        match self.poll_one(idx).await {
            Ok(recs) => {
                let q = &mut self.queriers[idx];
                let more = self.cfg.mode != Mode::Bulk
                    && self.cfg.mode != Mode::Timestamp
                    && recs.len() >= self.cfg.batch_max_rows;
                q.due = if more {
                    Instant::now()
                } else {
                    Instant::now() + self.cfg.poll_interval
                };
                Ok(recs)
            }
            Err(DbError::Connection(m)) => {
                self.db = None;
                self.queriers[idx].due = Instant::now() + Duration::from_secs(1);
                Err(TaskError::Retriable(m))
            }
            Err(e) => Err(fatal(e)),
        }
    }

    async fn poll_one(&mut self, idx: usize) -> Result<Vec<SourceRecord>, DbError> {
        let db = self
            .db
            .as_mut()
            .ok_or_else(|| DbError::Connection("not connected".into()))?;
        let d = self.dialect;
        let q = &self.queriers[idx];
        let from = if q.is_query {
            SourceFrom::Query(q.from.clone())
        } else {
            SourceFrom::Table(q.from.clone())
        };
        let inc = self
            .cfg
            .incrementing_column
            .as_deref()
            .map(|c| d.quote(c))
            .unwrap_or_default();
        let ts = self
            .cfg
            .timestamp_column
            .as_deref()
            .map(|c| d.quote(c))
            .unwrap_or_default();
        let limit = self.cfg.batch_max_rows;
        let pi = |n: usize| d.param(n, ColType::Int64);
        let pt = |n: usize| d.param(n, ColType::Timestamp);
        let (criteria, params) = match self.cfg.mode {
            Mode::Bulk => (String::new(), vec![]),
            Mode::Incrementing => (
                format!("WHERE {inc} > {} ORDER BY {inc} ASC LIMIT {limit}", pi(1)),
                vec![SqlValue::Int(q.incrementing)],
            ),
            Mode::Timestamp | Mode::TimestampIncrementing => {
                let end = db.now_micros().await? - self.cfg.delay_ms * 1000;
                if self.cfg.mode == Mode::Timestamp {
                    (
                        format!(
                            "WHERE {ts} > {} AND {ts} < {} ORDER BY {ts} ASC",
                            pt(1),
                            pt(2)
                        ),
                        vec![SqlValue::Timestamp(q.timestamp), SqlValue::Timestamp(end)],
                    )
                } else {
                    match d.0 {
                        Engine::Postgres => (
                            format!(
                                "WHERE {ts} < {} AND (({ts} = {} AND {inc} > {}) OR {ts} > {}) ORDER BY {ts} ASC, {inc} ASC LIMIT {limit}",
                                pt(1), pt(2), pi(3), pt(2)
                            ),
                            vec![SqlValue::Timestamp(end), SqlValue::Timestamp(q.timestamp), SqlValue::Int(q.incrementing)],
                        ),
                        Engine::MySql => (
                            format!(
                                "WHERE {ts} < ? AND (({ts} = ? AND {inc} > ?) OR {ts} > ?) ORDER BY {ts} ASC, {inc} ASC LIMIT {limit}"
                            ),
                            vec![
                                SqlValue::Timestamp(end),
                                SqlValue::Timestamp(q.timestamp),
                                SqlValue::Int(q.incrementing),
                                SqlValue::Timestamp(q.timestamp),
                            ],
                        ),
                    }
                }
            }
        };
        let sql = d.source_query(&from, &criteria);
        let (cols, rows) = db.query(&sql, &params).await?;
        // One schema shared by the batch's records.
        let schema = Arc::new(struct_schema(
            if q.is_query { "query" } else { &q.from },
            &cols,
        ));
        let inc_idx = self
            .cfg
            .incrementing_column
            .as_ref()
            .and_then(|c| cols.iter().position(|x| x.name.eq_ignore_ascii_case(c)));
        let ts_idx = self
            .cfg
            .timestamp_column
            .as_ref()
            .and_then(|c| cols.iter().position(|x| x.name.eq_ignore_ascii_case(c)));
        if matches!(
            self.cfg.mode,
            Mode::Incrementing | Mode::TimestampIncrementing
        ) && inc_idx.is_none()
        {
            return Err(DbError::Statement(format!(
                "incrementing column {} is not in the result of {sql}",
                self.cfg.incrementing_column.as_deref().unwrap_or("")
            )));
        }
        if matches!(self.cfg.mode, Mode::Timestamp | Mode::TimestampIncrementing)
            && ts_idx.is_none()
        {
            return Err(DbError::Statement(format!(
                "timestamp column {} is not in the result of {sql}",
                self.cfg.timestamp_column.as_deref().unwrap_or("")
            )));
        }
        let q = &mut self.queriers[idx];
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut obj = serde_json::Map::new();
            for (c, v) in cols.iter().zip(row.iter()) {
                if let Some(t) = c.ty {
                    obj.insert(c.name.clone(), to_json(t, v));
                }
            }
            if let Some(i) = inc_idx {
                if let SqlValue::Int(n) = row[i] {
                    q.incrementing = n;
                }
            }
            if let Some(i) = ts_idx {
                if let SqlValue::Timestamp(us) = row[i] {
                    q.timestamp = us;
                }
            }
            let offset = match self.cfg.mode {
                Mode::Bulk => Value::Null,
                Mode::Incrementing => json!({ "incrementing": q.incrementing }),
                Mode::Timestamp => ts_offset(q.timestamp, None),
                Mode::TimestampIncrementing => ts_offset(q.timestamp, Some(q.incrementing)),
            };
            out.push(SourceRecord {
                partition: q.partition.clone(),
                offset,
                topic: q.topic.clone(),
                key: SchemaAndValue::plain(Data::Null),
                value: SchemaAndValue {
                    schema: Some(schema.clone()),
                    data: Data::Value(Value::Object(obj)),
                },
            });
        }
        Ok(out)
    }
}

fn ts_offset(us: i64, inc: Option<i64>) -> Value {
    let mut o = json!({
        "timestamp": us.div_euclid(1000),
        "timestamp_nanos": us.rem_euclid(1_000_000) * 1000,
    });
    if let Some(i) = inc {
        o["incrementing"] = json!(i);
    }
    o
}

/// The Connect struct schema of a result (columns of types Connect has no mapping for
/// are left out, as Confluent's connector does).
fn struct_schema(name: &str, cols: &[Column]) -> Value {
    let fields: Vec<Value> = cols
        .iter()
        .filter_map(|c| c.ty.map(|t| t.schema(&c.name, c.optional)))
        .collect();
    json!({ "type": "struct", "name": name, "optional": false, "fields": fields })
}

fn fatal(e: DbError) -> TaskError {
    TaskError::Fatal(format!(
        "org.apache.kafka.connect.errors.ConnectException: java.sql.SQLException: {e}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_properties;

    fn cfg(extra: &str) -> Result<JdbcSourceConfig, ConfigError> {
        JdbcSourceConfig::from_config(&parse_properties(&format!(
            "connection.url=jdbc:mysql://127.0.0.1:3306/shop\ntopic.prefix=mysql-\n{extra}"
        )))
    }

    #[test]
    fn config_rules() {
        assert_eq!(cfg("").unwrap_err().key, "mode");
        assert_eq!(
            cfg("mode=incrementing\n").unwrap_err().key,
            "incrementing.column.name"
        );
        assert_eq!(
            cfg("mode=timestamp+incrementing\nincrementing.column.name=id\n")
                .unwrap_err()
                .key,
            "timestamp.column.name"
        );
        assert_eq!(
            cfg("mode=bulk\nquery=select 1\ntable.whitelist=a\n")
                .unwrap_err()
                .key,
            "query"
        );
        assert_eq!(
            cfg("mode=bulk\ndb.timezone=Europe/Paris\n")
                .unwrap_err()
                .key,
            "db.timezone"
        );
        let c = cfg("mode=timestamp\ntimestamp.column.name=updated_at,created_at\ntable.include.list=a, b\n").unwrap();
        assert_eq!(c.timestamp_column.as_deref(), Some("updated_at"));
        assert_eq!(c.tables, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(c.batch_max_rows, 100);
    }

    #[test]
    fn offsets_are_confluents() {
        assert_eq!(
            ts_offset(1_700_000_000_123_456, Some(7)),
            json!({"timestamp": 1_700_000_000_123i64, "timestamp_nanos": 123_456_000, "incrementing": 7})
        );
    }
}
