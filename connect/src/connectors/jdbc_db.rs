//! One database connection behind the JDBC connectors: PostgreSQL through
//! `tokio-postgres`, MySQL/MariaDB through `mysql_async`, with one surface (execute
//! with parameters, query into typed columns, transactions, a table's columns) and one
//! error split: `Connection` (the server is gone or unreachable: retry, never
//! dead-letter) versus `Statement` (the server refused this SQL or these values: a
//! poison record when it is one record's).
//!
//! Statements without results that need not be waited for (`BEGIN`, `SAVEPOINT`,
//! `RELEASE SAVEPOINT`) can be deferred on PostgreSQL ([`Db::defer`]): they go out with
//! the next statement, pipelined on the connection, so a put's transaction costs
//! fewer round trips. Their errors are the next statement's.
//!
//! Values are decoded from the wire formats here (PostgreSQL binary, MySQL binary
//! protocol), so no client type features are needed (Cargo.toml: `tokio-postgres` and
//! `mysql_async` without default features).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::SinkExt;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use tokio_postgres::types::{FromSql, ToSql, Type};

use super::jdbc_dialect::Dialect;
use super::jdbc_types::{self as types, ColType, SqlValue};
use super::jdbc_url::{Engine, JdbcUrl};

#[derive(Debug, thiserror::Error, Clone)]
pub enum DbError {
    #[error("{0}")]
    Connection(String),
    #[error("{0}")]
    Statement(String),
}

impl DbError {
    /// A unique constraint refused a row (PostgreSQL's SQLSTATE 23505, as `pg_message`
    /// writes it).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Statement(m) if m.contains("(SQLSTATE 23505)"))
    }
}

/// A result column: its name, its Connect-side type, and whether it may be NULL.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: Option<ColType>,
    pub optional: bool,
}

pub enum Db {
    Pg {
        /// Boxed: the variants stay one pointer apart in size.
        client: Box<tokio_postgres::Client>,
        statements: HashMap<String, tokio_postgres::Statement>,
        conn_task: tokio::task::JoinHandle<()>,
        /// Deferred statements (`defer`), `;`-separated, sent before the next one.
        deferred: String,
    },
    My(Box<mysql_async::Conn>),
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Pg { conn_task, .. } = self {
            conn_task.abort();
        }
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Db {
    /// Connect and set the session to UTC (timestamps move as UTC, `db.timezone`'s default).
    pub async fn connect(url: &JdbcUrl) -> Result<Db, DbError> {
        match url.engine {
            Engine::Postgres => {
                let mut c = tokio_postgres::Config::new();
                c.host(&url.host)
                    .port(url.port)
                    .connect_timeout(CONNECT_TIMEOUT)
                    .application_name("fjord-connect");
                if !url.database.is_empty() {
                    c.dbname(&url.database);
                }
                if let Some(u) = &url.user {
                    c.user(u);
                }
                if let Some(p) = &url.password {
                    c.password(p);
                }
                let (client, conn) = c.connect(tokio_postgres::NoTls).await.map_err(|e| {
                    // A refused login is not going to heal by retrying.
                    if e.code().is_some() {
                        DbError::Statement(format!(
                            "cannot connect to {}: {}",
                            url.redacted(),
                            pg_message(&e)
                        ))
                    } else {
                        DbError::Connection(format!(
                            "cannot connect to {}: {}",
                            url.redacted(),
                            pg_message(&e)
                        ))
                    }
                })?;
                let conn_task = tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::warn!(error = %e, "PostgreSQL connection ended");
                    }
                });
                let db = Db::Pg {
                    client: Box::new(client),
                    statements: HashMap::new(),
                    conn_task,
                    deferred: String::new(),
                };
                if let Db::Pg { client, .. } = &db {
                    client
                        .batch_execute("SET TIME ZONE 'UTC'")
                        .await
                        .map_err(pg_err)?;
                }
                Ok(db)
            }
            Engine::MySql => {
                let opts = mysql_async::OptsBuilder::default()
                    .ip_or_hostname(url.host.clone())
                    .tcp_port(url.port)
                    .db_name((!url.database.is_empty()).then(|| url.database.clone()))
                    .user(url.user.clone())
                    .pass(url.password.clone())
                    .prefer_socket(false)
                    .init(vec!["SET time_zone = '+00:00'"]);
                let conn = tokio::time::timeout(CONNECT_TIMEOUT, mysql_async::Conn::new(opts))
                    .await
                    .map_err(|_| {
                        DbError::Connection(format!(
                            "cannot connect to {}: timed out after {CONNECT_TIMEOUT:?}",
                            url.redacted()
                        ))
                    })?
                    .map_err(|e| match my_err(e) {
                        DbError::Statement(m) => {
                            DbError::Statement(format!("cannot connect to {}: {m}", url.redacted()))
                        }
                        DbError::Connection(m) => DbError::Connection(format!(
                            "cannot connect to {}: {m}",
                            url.redacted()
                        )),
                    })?;
                Ok(Db::My(Box::new(conn)))
            }
        }
    }

    /// Run statements without parameters (`BEGIN`, DDL).
    pub async fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Pg {
                client, deferred, ..
            } => {
                if deferred.is_empty() {
                    client.batch_execute(sql).await.map_err(pg_err)
                } else {
                    let mut all = std::mem::take(deferred);
                    all.push_str("; ");
                    all.push_str(sql);
                    client.batch_execute(&all).await.map_err(pg_err)
                }
            }
            Db::My(c) => c.query_drop(sql).await.map_err(my_err),
        }
    }

    /// Send the deferred statements now (before one that is not pipelined with them).
    async fn flush_deferred(&mut self) -> Result<(), DbError> {
        if let Db::Pg {
            client, deferred, ..
        } = self
        {
            if !deferred.is_empty() {
                let before = std::mem::take(deferred);
                client.batch_execute(&before).await.map_err(pg_err)?;
            }
        }
        Ok(())
    }

    /// Run a statement without parameters or results whose outcome can wait: on
    /// PostgreSQL it is sent with the next statement (whose error it then is, if it
    /// fails); on MySQL it runs now.
    pub async fn defer(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Pg { deferred, .. } => {
                if !deferred.is_empty() {
                    deferred.push_str("; ");
                }
                deferred.push_str(sql);
                Ok(())
            }
            Db::My(c) => c.query_drop(sql).await.map_err(my_err),
        }
    }

    /// Execute one statement with parameters; the rows it changed.
    /// PostgreSQL parameters travel as text (`$n::type` casts in the SQL, written by
    /// the dialect), MySQL's as its own values.
    pub async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        self.flush_deferred().await?;
        match self {
            Db::Pg {
                client, statements, ..
            } => {
                let st = pg_statement(client, statements, sql, params.len()).await?;
                let texts: Vec<Option<String>> = params.iter().map(pg_text).collect();
                let refs: Vec<&(dyn ToSql + Sync)> =
                    texts.iter().map(|t| t as &(dyn ToSql + Sync)).collect();
                client.execute(&st, &refs).await.map_err(pg_err)
            }
            Db::My(c) => {
                let p: Vec<mysql_async::Value> = params.iter().map(my_value).collect();
                let p = if p.is_empty() {
                    mysql_async::Params::Empty
                } else {
                    mysql_async::Params::Positional(p)
                };
                c.exec_drop(sql, p).await.map_err(my_err)?;
                Ok(c.affected_rows())
            }
        }
    }

    /// Run a `COPY .. FROM STDIN` (PostgreSQL only) with `data` as its input; the rows
    /// it loaded. The statement is prepared once per connection, like the others.
    pub async fn copy_in(&mut self, sql: &str, data: Vec<u8>) -> Result<u64, DbError> {
        match self {
            Db::Pg {
                client,
                statements,
                deferred,
                ..
            } => {
                let before = std::mem::take(deferred);
                let client = &**client;
                let copy = async {
                    let st = pg_statement(client, statements, sql, 0).await?;
                    let sink = client
                        .copy_in::<_, bytes::Bytes>(&st)
                        .await
                        .map_err(pg_err)?;
                    futures_util::pin_mut!(sink);
                    sink.send(bytes::Bytes::from(data)).await.map_err(pg_err)?;
                    sink.finish().await.map_err(pg_err)
                };
                if before.is_empty() {
                    return copy.await;
                }
                // Pipelined: the deferred statements go first; their error is the one
                // that counts (the COPY then fails as part of an aborted transaction).
                let (b, c) = tokio::join!(client.batch_execute(&before), copy);
                b.map_err(pg_err)?;
                c
            }
            Db::My(_) => Err(DbError::Statement(
                "COPY is PostgreSQL's; MySQL has no COPY FROM STDIN".into(),
            )),
        }
    }

    /// Run a query; the result columns (also when no row came back) and the rows.
    pub async fn query(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<(Vec<Column>, Vec<Vec<SqlValue>>), DbError> {
        self.flush_deferred().await?;
        match self {
            Db::Pg {
                client, statements, ..
            } => {
                let st = pg_statement(client, statements, sql, params.len()).await?;
                let texts: Vec<Option<String>> = params.iter().map(pg_text).collect();
                let refs: Vec<&(dyn ToSql + Sync)> =
                    texts.iter().map(|t| t as &(dyn ToSql + Sync)).collect();
                let cols: Vec<Column> = st
                    .columns()
                    .iter()
                    .map(|c| Column {
                        name: c.name().to_string(),
                        ty: pg_col_type(c.type_(), c.type_modifier()),
                        optional: true,
                    })
                    .collect();
                let rows = client.query(&st, &refs).await.map_err(pg_err)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let mut vals = Vec::with_capacity(cols.len());
                    for (i, c) in st.columns().iter().enumerate() {
                        let raw: Raw = r
                            .try_get(i)
                            .map_err(|e| DbError::Statement(format!("column {}: {e}", c.name())))?;
                        vals.push(match raw.0 {
                            None => SqlValue::Null,
                            Some(b) => pg_decode(c.type_(), &b).map_err(|e| {
                                DbError::Statement(format!("column {}: {e}", c.name()))
                            })?,
                        });
                    }
                    out.push(vals);
                }
                Ok((cols, out))
            }
            Db::My(c) => {
                let p: Vec<mysql_async::Value> = params.iter().map(my_value).collect();
                let p = if p.is_empty() {
                    mysql_async::Params::Empty
                } else {
                    mysql_async::Params::Positional(p)
                };
                let mut res = c.exec_iter(sql, p).await.map_err(my_err)?;
                let cols: Vec<(Column, ColumnType, bool)> = res
                    .columns_ref()
                    .iter()
                    .map(|c| {
                        let unsigned = c.flags().contains(ColumnFlags::UNSIGNED_FLAG);
                        (
                            Column {
                                name: c.name_str().into_owned(),
                                ty: my_col_type(
                                    c.column_type(),
                                    unsigned,
                                    c.character_set(),
                                    c.decimals(),
                                    c.column_length(),
                                ),
                                optional: !c.flags().contains(ColumnFlags::NOT_NULL_FLAG),
                            },
                            c.column_type(),
                            unsigned,
                        )
                    })
                    .collect();
                let rows: Vec<mysql_async::Row> = res.collect().await.map_err(my_err)?;
                res.drop_result().await.map_err(my_err)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let vals = r.unwrap();
                    out.push(
                        vals.into_iter()
                            .zip(cols.iter())
                            .map(|(v, (c, _, _))| my_decode(c.ty, v))
                            .collect(),
                    );
                }
                Ok((cols.into_iter().map(|(c, _, _)| c).collect(), out))
            }
        }
    }

    /// The column names of `table` (lower-cased for comparison), or `None` when it does
    /// not exist.
    pub async fn table_columns(&mut self, table: &str) -> Result<Option<Vec<String>>, DbError> {
        let (sql, params) = match self {
            Db::Pg { .. } => (
                "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1::text ORDER BY ordinal_position",
                vec![SqlValue::Text(table.to_string())],
            ),
            Db::My(_) => (
                "SELECT CAST(column_name AS CHAR) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
                vec![SqlValue::Text(table.to_string())],
            ),
        };
        let (_, rows) = self.query(sql, &params).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            rows.into_iter()
                .filter_map(|r| match r.into_iter().next() {
                    Some(SqlValue::Text(s)) => Some(s.to_lowercase()),
                    Some(SqlValue::Bytes(b)) => Some(String::from_utf8_lossy(&b).to_lowercase()),
                    _ => None,
                })
                .collect(),
        ))
    }

    /// PostgreSQL: each column of `table` and its type's name (`int8`, `text`,
    /// `numeric`, ..., as `pg_type` names them); empty when the table is unknown.
    pub async fn column_types(&mut self, table: &str) -> Result<Vec<(String, String)>, DbError> {
        let sql = "SELECT a.attname::text, t.typname::text FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = to_regclass($1::text) AND a.attnum > 0 AND NOT a.attisdropped";
        let (_, rows) = self
            .query(
                sql,
                &[SqlValue::Text(Dialect(Engine::Postgres).quote(table))],
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| match (r.first(), r.get(1)) {
                (Some(SqlValue::Text(n)), Some(SqlValue::Text(t))) => Some((n.clone(), t.clone())),
                _ => None,
            })
            .collect())
    }

    /// The database's clock in UTC microseconds (timestamp mode's upper bound).
    pub async fn now_micros(&mut self) -> Result<i64, DbError> {
        let sql = match self {
            Db::Pg { .. } => "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::int8",
            Db::My(_) => "SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)",
        };
        let (_, rows) = self.query(sql, &[]).await?;
        match rows.first().and_then(|r| r.first()) {
            Some(SqlValue::Int(i)) => Ok(*i),
            Some(SqlValue::Decimal(d)) => d
                .split('.')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| DbError::Statement("bad clock value".into())),
            other => Err(DbError::Statement(format!("bad clock value {other:?}"))),
        }
    }
}

// ---------------------------------------------------------------- PostgreSQL

async fn pg_statement(
    client: &tokio_postgres::Client,
    cache: &mut HashMap<String, tokio_postgres::Statement>,
    sql: &str,
    nparams: usize,
) -> Result<tokio_postgres::Statement, DbError> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let types = vec![Type::TEXT; nparams];
    let st = client.prepare_typed(sql, &types).await.map_err(pg_err)?;
    if cache.len() > 256 {
        cache.clear();
    }
    cache.insert(sql.to_string(), st.clone());
    Ok(st)
}

fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!(
            "{} (SQLSTATE {}){}",
            d.message(),
            d.code().code(),
            d.detail().map(|x| format!(": {x}")).unwrap_or_default()
        ),
        None => {
            // The source carries the useful part (connection refused, ...).
            let mut m = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                m.push_str(": ");
                m.push_str(&s.to_string());
                src = s.source();
            }
            m
        }
    }
}

fn pg_err(e: tokio_postgres::Error) -> DbError {
    let msg = pg_message(&e);
    match e.code() {
        // Class 08 connection exceptions, 57P0x shutdowns, 53 out of resources: retry.
        Some(c)
            if c.code().starts_with("08")
                || c.code().starts_with("57P")
                || c.code().starts_with("53") =>
        {
            DbError::Connection(msg)
        }
        Some(_) => DbError::Statement(msg),
        None => DbError::Connection(msg),
    }
}

/// Any column, as its raw binary bytes.
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }
    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i32 = 10_957;

fn pg_col_type(t: &Type, typmod: i32) -> Option<ColType> {
    Some(match *t {
        Type::INT2 => ColType::Int16,
        Type::INT4 => ColType::Int32,
        Type::INT8 | Type::OID => ColType::Int64,
        Type::FLOAT4 => ColType::Float32,
        Type::FLOAT8 => ColType::Float64,
        Type::BOOL => ColType::Bool,
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::JSON
        | Type::JSONB
        | Type::UUID
        | Type::CHAR => ColType::Text,
        Type::BYTEA => ColType::Bytes,
        Type::NUMERIC => ColType::Decimal {
            scale: if typmod >= 4 {
                (typmod - 4) & 0xffff
            } else {
                0
            },
        },
        Type::TIMESTAMP | Type::TIMESTAMPTZ => ColType::Timestamp,
        Type::DATE => ColType::Date,
        Type::TIME => ColType::Time,
        _ => return None,
    })
}

fn be<const N: usize>(b: &[u8]) -> Result<[u8; N], String> {
    b.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", b.len()))
}

fn pg_decode(t: &Type, b: &[u8]) -> Result<SqlValue, String> {
    Ok(match *t {
        Type::INT2 => SqlValue::Int(i16::from_be_bytes(be(b)?) as i64),
        Type::INT4 => SqlValue::Int(i32::from_be_bytes(be(b)?) as i64),
        Type::OID => SqlValue::Int(u32::from_be_bytes(be(b)?) as i64),
        Type::INT8 => SqlValue::Int(i64::from_be_bytes(be(b)?)),
        Type::FLOAT4 => SqlValue::Float(f32::from_be_bytes(be(b)?) as f64),
        Type::FLOAT8 => SqlValue::Float(f64::from_be_bytes(be(b)?)),
        Type::BOOL => SqlValue::Bool(b.first().is_some_and(|x| *x != 0)),
        Type::BYTEA => SqlValue::Bytes(b.to_vec()),
        Type::JSONB => {
            SqlValue::Text(String::from_utf8_lossy(b.get(1..).unwrap_or_default()).into_owned())
        }
        Type::UUID => {
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            if h.len() == 32 {
                SqlValue::Text(format!(
                    "{}-{}-{}-{}-{}",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                ))
            } else {
                SqlValue::Text(h)
            }
        }
        Type::NUMERIC => SqlValue::Decimal(pg_numeric(b)?),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            SqlValue::Timestamp(i64::from_be_bytes(be(b)?).saturating_add(PG_EPOCH_US))
        }
        Type::DATE => SqlValue::Date(i32::from_be_bytes(be(b)?).saturating_add(PG_EPOCH_DAYS)),
        Type::TIME => SqlValue::Time(i64::from_be_bytes(be(b)?)),
        _ => SqlValue::Text(String::from_utf8_lossy(b).into_owned()),
    })
}

/// PostgreSQL's binary NUMERIC (base-10000 digits, weight, sign, display scale) → text.
fn pg_numeric(b: &[u8]) -> Result<String, String> {
    if b.len() < 8 {
        return Err("short NUMERIC".into());
    }
    let ndigits = u16::from_be_bytes([b[0], b[1]]) as usize;
    let weight = i16::from_be_bytes([b[2], b[3]]) as i32;
    let sign = u16::from_be_bytes([b[4], b[5]]);
    let dscale = u16::from_be_bytes([b[6], b[7]]) as usize;
    if sign == 0xC000 {
        return Err("NaN cannot be a Connect decimal".into());
    }
    if b.len() < 8 + 2 * ndigits {
        return Err("short NUMERIC".into());
    }
    let digits: Vec<u16> = (0..ndigits)
        .map(|i| u16::from_be_bytes([b[8 + 2 * i], b[9 + 2 * i]]))
        .collect();
    let mut int = String::new();
    for w in 0..=weight.max(-1) {
        let d = digits.get(w as usize).copied().unwrap_or(0);
        if int.is_empty() {
            if d != 0 {
                int = d.to_string();
            }
        } else {
            int.push_str(&format!("{d:04}"));
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    let mut frac = String::new();
    let mut i = weight + 1;
    while frac.len() < dscale {
        let d = if i < 0 {
            0
        } else {
            digits.get(i as usize).copied().unwrap_or(0)
        };
        frac.push_str(&format!("{d:04}"));
        i += 1;
    }
    frac.truncate(dscale);
    let neg = sign == 0x4000;
    let mut s = if neg { format!("-{int}") } else { int };
    if dscale > 0 {
        s.push('.');
        s.push_str(&frac);
    }
    Ok(s)
}

/// A parameter as PostgreSQL text input.
fn pg_text(v: &SqlValue) -> Option<String> {
    Some(match v {
        SqlValue::Null => return None,
        SqlValue::Int(i) => i.to_string(),
        SqlValue::Float(f) => {
            if f.is_nan() {
                "NaN".into()
            } else if f.is_infinite() {
                if *f > 0.0 {
                    "Infinity".into()
                } else {
                    "-Infinity".into()
                }
            } else {
                format!("{f:?}")
            }
        }
        SqlValue::Bool(b) => b.to_string(),
        SqlValue::Text(s) => s.clone(),
        SqlValue::Bytes(b) => {
            let mut s = String::with_capacity(2 + 2 * b.len());
            s.push_str("\\x");
            for x in b {
                s.push_str(&format!("{x:02x}"));
            }
            s
        }
        SqlValue::Decimal(d) => d.clone(),
        SqlValue::Timestamp(us) => types::timestamp_text(*us),
        SqlValue::Date(d) => types::date_text(*d),
        SqlValue::Time(us) => types::time_text(*us),
    })
}

// ---------------------------------------------------------------- MySQL / MariaDB

fn my_err(e: mysql_async::Error) -> DbError {
    match e {
        mysql_async::Error::Server(s) => {
            let msg = format!("{} (error {}, SQLSTATE {})", s.message, s.code, s.state);
            // 1040 too many connections, 1053 shutdown in progress, 1205 lock wait timeout,
            // 1213 deadlock, 2006/2013 gone away: transient.
            if matches!(s.code, 1040 | 1053 | 1205 | 1213 | 1927 | 2006 | 2013) {
                DbError::Connection(msg)
            } else {
                DbError::Statement(msg)
            }
        }
        other => DbError::Connection(other.to_string()),
    }
}

fn my_value(v: &SqlValue) -> mysql_async::Value {
    use mysql_async::Value as V;
    match v {
        SqlValue::Null => V::NULL,
        SqlValue::Int(i) => V::Int(*i),
        SqlValue::Float(f) => V::Double(*f),
        SqlValue::Bool(b) => V::Int(*b as i64),
        SqlValue::Text(s) => V::Bytes(s.as_bytes().to_vec()),
        SqlValue::Bytes(b) => V::Bytes(b.clone()),
        SqlValue::Decimal(d) => V::Bytes(d.as_bytes().to_vec()),
        SqlValue::Timestamp(us) => V::Bytes(types::timestamp_text(*us).into_bytes()),
        SqlValue::Date(d) => V::Bytes(types::date_text(*d).into_bytes()),
        SqlValue::Time(us) => V::Bytes(types::time_text(*us).into_bytes()),
    }
}

/// MySQL column → Connect type, as Confluent's MySQL dialect maps it.
fn my_col_type(
    t: ColumnType,
    unsigned: bool,
    charset: u16,
    decimals: u8,
    len: u32,
) -> Option<ColType> {
    use ColumnType::*;
    Some(match t {
        MYSQL_TYPE_TINY if len == 1 => ColType::Bool,
        MYSQL_TYPE_TINY if unsigned => ColType::Int16,
        MYSQL_TYPE_TINY => ColType::Int8,
        MYSQL_TYPE_SHORT | MYSQL_TYPE_YEAR if unsigned => ColType::Int32,
        MYSQL_TYPE_SHORT | MYSQL_TYPE_YEAR => ColType::Int16,
        MYSQL_TYPE_INT24 => ColType::Int32,
        MYSQL_TYPE_LONG if unsigned => ColType::Int64,
        MYSQL_TYPE_LONG => ColType::Int32,
        MYSQL_TYPE_LONGLONG => ColType::Int64,
        MYSQL_TYPE_FLOAT => ColType::Float32,
        MYSQL_TYPE_DOUBLE => ColType::Float64,
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => ColType::Decimal {
            scale: decimals as i32,
        },
        MYSQL_TYPE_BIT => ColType::Bytes,
        MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_STRING
        | MYSQL_TYPE_BLOB
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB => {
            // Character set 63 is `binary`: BLOB/BINARY/VARBINARY.
            if charset == 63 {
                ColType::Bytes
            } else {
                ColType::Text
            }
        }
        MYSQL_TYPE_ENUM | MYSQL_TYPE_SET | MYSQL_TYPE_JSON => ColType::Text,
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => ColType::Date,
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => ColType::Time,
        MYSQL_TYPE_DATETIME
        | MYSQL_TYPE_DATETIME2
        | MYSQL_TYPE_TIMESTAMP
        | MYSQL_TYPE_TIMESTAMP2 => ColType::Timestamp,
        _ => return None,
    })
}

fn my_decode(t: Option<ColType>, v: mysql_async::Value) -> SqlValue {
    use mysql_async::Value as V;
    match (t, v) {
        (_, V::NULL) => SqlValue::Null,
        (Some(ColType::Bool), V::Int(i)) => SqlValue::Bool(i != 0),
        (Some(ColType::Bool), V::UInt(i)) => SqlValue::Bool(i != 0),
        (_, V::Int(i)) => SqlValue::Int(i),
        (_, V::UInt(u)) => SqlValue::Int(u as i64),
        (_, V::Float(f)) => SqlValue::Float(f as f64),
        (_, V::Double(f)) => SqlValue::Float(f),
        (Some(ColType::Date), V::Date(y, m, d, ..)) => {
            SqlValue::Date(
                types::days_from_civil(y as i64, m.max(1) as u32, d.max(1) as u32) as i32,
            )
        }
        (_, V::Date(y, m, d, h, mi, s, us)) => {
            let days = types::days_from_civil(y as i64, m.max(1) as u32, d.max(1) as u32);
            SqlValue::Timestamp(
                days * 86_400_000_000
                    + (h as i64 * 3600 + mi as i64 * 60 + s as i64) * 1_000_000
                    + us as i64,
            )
        }
        (_, V::Time(neg, d, h, m, s, us)) => {
            let t = ((d as i64 * 24 + h as i64) * 3600 + m as i64 * 60 + s as i64) * 1_000_000
                + us as i64;
            SqlValue::Time(if neg { -t } else { t })
        }
        (Some(ColType::Decimal { .. }), V::Bytes(b)) => {
            SqlValue::Decimal(String::from_utf8_lossy(&b).into_owned())
        }
        (Some(ColType::Bytes), V::Bytes(b)) => SqlValue::Bytes(b),
        (_, V::Bytes(b)) => match String::from_utf8(b) {
            Ok(s) => SqlValue::Text(s),
            Err(e) => SqlValue::Bytes(e.into_bytes()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_binary() {
        // 12345.678 : ndigits 3, weight 1, +, dscale 3, digits [1, 2345, 6780]
        let b = [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c];
        assert_eq!(pg_numeric(&b).unwrap(), "12345.678");
        // -0.05 : ndigits 1, weight -1, -, dscale 2, digits [500]
        let b = [0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0x01, 0xf4];
        assert_eq!(pg_numeric(&b).unwrap(), "-0.05");
        // 0 with dscale 2
        assert_eq!(pg_numeric(&[0, 0, 0, 0, 0, 0, 0, 2]).unwrap(), "0.00");
        // 20000 : ndigits 1, weight 1, digits [2]
        assert_eq!(
            pg_numeric(&[0, 1, 0, 1, 0, 0, 0, 0, 0, 2]).unwrap(),
            "20000"
        );
        assert!(pg_numeric(&[0, 1]).is_err());
    }

    #[test]
    fn pg_text_params() {
        assert_eq!(
            pg_text(&SqlValue::Bytes(vec![0, 255])).as_deref(),
            Some("\\x00ff")
        );
        assert_eq!(pg_text(&SqlValue::Float(1.5)).as_deref(), Some("1.5"));
        assert_eq!(pg_text(&SqlValue::Null), None);
    }
}
