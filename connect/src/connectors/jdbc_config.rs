//! The JDBC connectors' configuration: the sink's keys (`insert.mode`, `pk.mode`,
//! `pk.fields`, `auto.create`, ...) as `JdbcSinkConfig`, the keys both connectors take,
//! and the connection with `connection.attempts` / `connection.backoff.ms`. The sink's
//! row building and COPY path read it; it depends on none of them.

use std::time::Duration;

use super::jdbc_db::{Db, DbError};
use super::jdbc_url::JdbcUrl;
use super::records::TaskError;
use crate::config::{self, ConfigError, ConfigMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMode {
    Insert,
    Upsert,
    Update,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkMode {
    None,
    Kafka,
    RecordKey,
    RecordValue,
}

#[derive(Debug, Clone)]
pub struct JdbcSinkConfig {
    pub url: JdbcUrl,
    pub insert_mode: InsertMode,
    pub pk_mode: PkMode,
    pub pk_fields: Vec<String>,
    pub auto_create: bool,
    pub auto_evolve: bool,
    pub table_format: String,
    pub delete_enabled: bool,
    pub batch_size: usize,
    pub max_retries: i64,
    pub retry_backoff: Duration,
    pub connection_attempts: i64,
    pub connection_backoff: Duration,
}

impl JdbcSinkConfig {
    pub fn from_config(m: &ConfigMap) -> Result<Self, ConfigError> {
        let url = JdbcUrl::from_config(m)?;
        let insert_mode =
            match config::one_of(m, "insert.mode", "insert", &["insert", "upsert", "update"])? {
                "upsert" => InsertMode::Upsert,
                "update" => InsertMode::Update,
                _ => InsertMode::Insert,
            };
        let pk_mode = match config::one_of(
            m,
            "pk.mode",
            "none",
            &["none", "kafka", "record_key", "record_value"],
        )? {
            "kafka" => PkMode::Kafka,
            "record_key" => PkMode::RecordKey,
            "record_value" => PkMode::RecordValue,
            _ => PkMode::None,
        };
        let delete_enabled = config::boolean(m, "delete.enabled", false)?;
        if delete_enabled && pk_mode != PkMode::RecordKey {
            return Err(ConfigError::new(
                "delete.enabled",
                "Primary key mode must be 'record_key' when delete support is enabled",
            ));
        }
        if insert_mode != InsertMode::Insert && pk_mode == PkMode::None {
            return Err(ConfigError::new(
                "pk.mode",
                format!(
                    "insert.mode={} needs a primary key: set pk.mode to record_key, record_value or kafka",
                    if insert_mode == InsertMode::Upsert { "upsert" } else { "update" }
                ),
            ));
        }
        let pk_fields = config::list(m, "pk.fields");
        if pk_mode == PkMode::Kafka && !pk_fields.is_empty() && pk_fields.len() != 3 {
            return Err(ConfigError::new(
                "pk.fields",
                "With pk.mode=kafka, pk.fields must name exactly 3 columns (topic, partition, offset) or be empty",
            ));
        }
        let table_format = m
            .get("table.name.format")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "${topic}".into());
        Ok(JdbcSinkConfig {
            url,
            insert_mode,
            pk_mode,
            pk_fields,
            auto_create: config::boolean(m, "auto.create", false)?,
            auto_evolve: config::boolean(m, "auto.evolve", false)?,
            table_format,
            delete_enabled,
            batch_size: config::int_at_least(m, "batch.size", 3000, 1)? as usize,
            max_retries: config::int_at_least(m, "max.retries", 10, 0)?,
            retry_backoff: Duration::from_millis(config::int_at_least(
                m,
                "retry.backoff.ms",
                3000,
                0,
            )? as u64),
            connection_attempts: config::int_at_least(m, "connection.attempts", 3, 1)?,
            connection_backoff: Duration::from_millis(config::int_at_least(
                m,
                "connection.backoff.ms",
                10_000,
                0,
            )? as u64),
        })
    }

    pub fn table_name(&self, topic: &str) -> String {
        self.table_format.replace("${topic}", topic)
    }
}

pub fn definitions() -> Vec<(&'static str, &'static str, bool, Option<&'static str>)> {
    let mut d = common_definitions();
    d.extend([
        ("insert.mode", "STRING", false, Some("insert")),
        ("pk.mode", "STRING", false, Some("none")),
        ("pk.fields", "LIST", false, Some("")),
        ("auto.create", "BOOLEAN", false, Some("false")),
        ("auto.evolve", "BOOLEAN", false, Some("false")),
        ("table.name.format", "STRING", false, Some("${topic}")),
        ("delete.enabled", "BOOLEAN", false, Some("false")),
        ("batch.size", "INT", false, Some("3000")),
        ("max.retries", "INT", false, Some("10")),
        ("retry.backoff.ms", "INT", false, Some("3000")),
    ]);
    d
}

/// Keys both JDBC connectors take.
pub fn common_definitions() -> Vec<(&'static str, &'static str, bool, Option<&'static str>)> {
    vec![
        ("connection.url", "STRING", true, None),
        ("connection.user", "STRING", false, None),
        ("connection.password", "PASSWORD", false, None),
        ("connection.attempts", "INT", false, Some("3")),
        ("connection.backoff.ms", "LONG", false, Some("10000")),
    ]
}

/// Connect with retries; `Fatal` after the last attempt (or at once for a refused login).
pub async fn connect(url: &JdbcUrl, attempts: i64, backoff: Duration) -> Result<Db, TaskError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match Db::connect(url).await {
            Ok(db) => return Ok(db),
            Err(DbError::Statement(m)) => {
                return Err(TaskError::Fatal(format!(
                    "org.apache.kafka.connect.errors.ConnectException: java.sql.SQLException: {m}"
                )))
            }
            Err(DbError::Connection(m)) if attempt >= attempts => {
                return Err(TaskError::Fatal(format!(
                    "org.apache.kafka.connect.errors.ConnectException: java.sql.SQLException: {m} (after {attempt} connection attempts)"
                )))
            }
            Err(DbError::Connection(m)) => {
                tracing::warn!(attempt, error = %m, "cannot connect to the database; retrying");
                tokio::time::sleep(backoff).await;
            }
        }
    }
}
