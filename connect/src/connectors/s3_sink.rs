//! `io.confluent.connect.s3.S3SinkConnector`: records of each topic-partition are
//! buffered into a chunk, one object per directory the partitioner gives
//! (`s3_partitioner`; `partition=<p>` by default), named as Confluent names them
//! (`<topics.dir>/<topic>/<directory>/<topic>+<p>+<startOffset %010d>.<ext>`), and
//! the chunk's objects are uploaded together when `flush.size` records of the
//! partition are in it (or a rotation interval passes); the uploads run beside the
//! filling of the next chunks (`s3_uploads`). The worker commits a partition's
//! offset only after its objects up to it are uploaded, and a chunk's bounds and
//! names depend only on the records: after a crash the task resumes at the start of
//! the chunk that was not committed and rewrites the same names, so S3 holds every
//! record exactly once (with `timestamp.extractor=Wallclock` the directories depend
//! on the clock, as in Confluent's).
//!
//! Formats: `JsonFormat` (a JSON value a line), `ByteArrayFormat` (raw bytes and a
//! separator) and `AvroFormat` (an Avro object container file of the records'
//! values, their Connect schema mapped as the AvroConverter maps it; a record whose
//! schema differs from the open object's closes it first, as Confluent's
//! `schema.compatibility=NONE` does, so every object has one schema).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use rusty_s3::Credentials;

use super::records::{SinkRecord, TaskError};
use super::s3_client::S3Client;
use super::s3_partitioner::{fixed_offset_ms, Partitioner, DEFAULT as DEFAULT_PARTITIONER};
use super::s3_uploads::{with_retries, Retry, Uploads};
use crate::config::{self, ConfigError, ConfigMap};
use crate::converters::{avro_data, Data, LastSchema};
use crate::errors::ErrorPolicy;

pub const S3_STORAGE: &str = "io.confluent.connect.s3.storage.S3Storage";
pub const JSON_FORMAT: &str = "io.confluent.connect.s3.format.json.JsonFormat";
pub const BYTES_FORMAT: &str = "io.confluent.connect.s3.format.bytearray.ByteArrayFormat";
pub const AVRO_FORMAT: &str = "io.confluent.connect.s3.format.avro.AvroFormat";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Json,
    ByteArray,
    Avro,
}

#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    pub store_url: String,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub topics_dir: String,
    pub flush_size: usize,
    pub rotate_interval_ms: i64,
    pub rotate_schedule_interval_ms: i64,
    /// `timezone`'s offset from UTC: scheduled rotations fall on multiples of the
    /// interval from midnight there (UTC when unset).
    pub schedule_offset_ms: i64,
    pub format: Format,
    pub partitioner: Partitioner,
    pub separator: Vec<u8>,
    pub extension: String,
    pub ignore_nulls: bool,
    pub part_retries: i64,
    pub retry_backoff_ms: i64,
}

impl S3Config {
    pub fn from_config(m: &ConfigMap) -> Result<Self, ConfigError> {
        let bucket = config::required(m, "s3.bucket.name")?.to_string();
        let region = m
            .get("s3.region")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "us-west-2".into());
        let store_url = m
            .get("store.url")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        if !(store_url.starts_with("http://") || store_url.starts_with("https://")) {
            return Err(ConfigError::new(
                "store.url",
                format!("Invalid value {store_url}: expected an http(s) URL"),
            ));
        }
        let storage = config::required(m, "storage.class")?;
        if storage != S3_STORAGE {
            return Err(ConfigError::new(
                "storage.class",
                format!("Invalid value {storage}: only {S3_STORAGE} is built in"),
            ));
        }
        let format = match config::required(m, "format.class")? {
            JSON_FORMAT => Format::Json,
            BYTES_FORMAT => Format::ByteArray,
            AVRO_FORMAT => Format::Avro,
            other => {
                return Err(ConfigError::new(
                    "format.class",
                    format!(
                    "Invalid value {other}: built-in formats are {JSON_FORMAT}, {AVRO_FORMAT} and {BYTES_FORMAT}"
                ),
                ))
            }
        };
        let partitioner = Partitioner::from_config(m)?;
        let flush_size = config::required(m, "flush.size")
            .and_then(|_| config::int_at_least(m, "flush.size", 1, 1))?
            as usize;
        let separator = m
            .get("format.bytearray.separator")
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_else(|| b"\n".to_vec());
        let extension = match format {
            Format::Json => ".json".to_string(),
            Format::Avro => ".avro".to_string(),
            Format::ByteArray => m
                .get("format.bytearray.extension")
                .cloned()
                .unwrap_or_else(|| ".bin".into()),
        };
        let ignore_nulls = config::one_of(
            m,
            "behavior.on.null.values",
            "fail",
            &["fail", "ignore", "write"],
        )? != "fail";
        let rotate_schedule_interval_ms =
            config::int_at_least(m, "rotate.schedule.interval.ms", -1, -1)?;
        Ok(S3Config {
            bucket,
            region,
            store_url,
            access_key: m
                .get("aws.access.key.id")
                .cloned()
                .filter(|s| !s.is_empty())
                .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok()),
            secret_key: m
                .get("aws.secret.access.key")
                .cloned()
                .filter(|s| !s.is_empty())
                .or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok()),
            topics_dir: m
                .get("topics.dir")
                .map(|s| s.trim().trim_matches('/').to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "topics".into()),
            flush_size,
            rotate_interval_ms: config::int_at_least(m, "rotate.interval.ms", -1, -1)?,
            rotate_schedule_interval_ms,
            // Read only where it is used: a DefaultPartitioner file may carry any
            // `timezone` without a schedule.
            schedule_offset_ms: match m.get("timezone").map(|s| s.trim()) {
                None | Some("") => 0,
                Some(_) if rotate_schedule_interval_ms <= 0 => 0,
                Some(tz) => fixed_offset_ms(tz).ok_or_else(|| {
                    ConfigError::new(
                        "timezone",
                        format!("Invalid value {tz}: UTC and fixed offsets (+02:00, UTC-5) are supported; zones with daylight saving are not"),
                    )
                })?,
            },
            format,
            partitioner,
            separator,
            extension,
            ignore_nulls,
            part_retries: config::int_at_least(m, "s3.part.retries", 3, 0)?,
            retry_backoff_ms: config::int_at_least(m, "s3.retry.backoff.ms", 200, 0)?,
        })
    }

    /// Confluent's object name for the file of `topic`/`partition` in directory
    /// `dir` (the partitioner's) starting at `start`.
    pub fn object_name(&self, topic: &str, partition: i32, dir: &str, start: i64) -> String {
        format!(
            "{}/{topic}/{dir}/{topic}+{partition}+{start:010}{}",
            self.topics_dir, self.extension
        )
    }
}

pub fn definitions() -> Vec<(&'static str, &'static str, bool, Option<&'static str>)> {
    vec![
        ("s3.bucket.name", "STRING", true, None),
        ("s3.region", "STRING", false, Some("us-west-2")),
        ("store.url", "STRING", false, None),
        ("aws.access.key.id", "STRING", false, Some("")),
        ("aws.secret.access.key", "PASSWORD", false, Some("")),
        ("topics.dir", "STRING", false, Some("topics")),
        ("flush.size", "INT", true, None),
        ("rotate.interval.ms", "LONG", false, Some("-1")),
        ("rotate.schedule.interval.ms", "LONG", false, Some("-1")),
        ("storage.class", "CLASS", true, None),
        ("format.class", "CLASS", true, None),
        (
            "partitioner.class",
            "CLASS",
            false,
            Some(DEFAULT_PARTITIONER),
        ),
        ("partition.field.name", "LIST", false, None),
        ("partition.duration.ms", "LONG", false, Some("-1")),
        ("path.format", "STRING", false, None),
        ("locale", "STRING", false, None),
        ("timezone", "STRING", false, None),
        ("timestamp.extractor", "STRING", false, Some("Wallclock")),
        ("timestamp.field", "STRING", false, Some("timestamp")),
        ("format.bytearray.separator", "STRING", false, None),
        ("behavior.on.null.values", "STRING", false, Some("fail")),
        ("s3.part.retries", "INT", false, Some("3")),
        ("s3.retry.backoff.ms", "LONG", false, Some("200")),
    ]
}

/// What one topic-partition has buffered since its last upload: the records
/// `start..next`, one object per directory, all uploaded together (Confluent's
/// rotation commits every open file of the partition at once, so a chunk's bounds
/// depend only on the records).
struct Chunk {
    start: i64,
    next: i64,
    count: usize,
    objects: BTreeMap<String, Object>,
    /// The last record's directory (time-based rotation also rotates when it changes).
    dir: String,
    /// The time `rotate.interval.ms` counts from: the first record's (the
    /// time-based partitioner's time, else the Kafka timestamp).
    first_ts: Option<i64>,
    /// AvroFormat: the chunk's schema (a new one closes the chunk).
    schema: Option<Arc<AvroSchema>>,
    /// When `rotate.schedule.interval.ms` closes the chunk (ms since the epoch).
    rotate_at_ms: Option<i64>,
}

/// When a chunk opened at `now` is closed by `rotate.schedule.interval.ms`, as
/// Confluent's sinks have it: at the first multiple of `interval` after `now`,
/// counted from midnight of `now`'s day in the zone `offset` ms east of UTC, and at
/// the latest at the next midnight. So an hourly schedule closes files at the top
/// of each hour, whenever they were opened.
fn next_scheduled_rotation(now: i64, interval: i64, offset: i64) -> i64 {
    const DAY: i64 = 86_400_000;
    let start_of_day = (now + offset).div_euclid(DAY) * DAY - offset;
    let next = ((now - start_of_day) / interval + 1) * interval;
    start_of_day + next.min(DAY)
}

/// One object being filled.
struct Object {
    start: i64,
    buf: Vec<u8>,
    /// AvroFormat: the values, written as one container file at upload (the
    /// container's header needs the schema first).
    avro: Vec<apache_avro::types::Value>,
}

/// A Connect schema as the Avro schema its objects are written with.
struct AvroSchema {
    connect: Arc<serde_json::Value>,
    avro: apache_avro::Schema,
}

pub struct S3Sink {
    cfg: S3Config,
    client: Arc<S3Client>,
    retry: Retry,
    files: BTreeMap<(String, i32), Chunk>,
    /// Objects on their way to S3, and per partition what is written.
    uploads: Uploads,
    /// AvroFormat: each distinct Connect schema mapped once.
    avro_schemas: HashMap<String, Arc<AvroSchema>>,
    /// The last record's: the records of a run share one schema, and looking it up
    /// by its text meant writing that text for every record.
    last_avro: LastSchema<Arc<AvroSchema>>,
    /// The size of the last object written (JSON, bytes): the next one's first capacity.
    object_hint: usize,
}

/// At most this much is reserved for an object up front (it still grows past it).
const MAX_OBJECT_HINT: usize = 64 << 20;

impl S3Sink {
    pub fn new(cfg: S3Config, policy: ErrorPolicy) -> Result<Self, TaskError> {
        let creds = match (&cfg.access_key, &cfg.secret_key) {
            (Some(k), Some(s)) => Some(match std::env::var("AWS_SESSION_TOKEN") {
                Ok(t) if cfg.access_key == std::env::var("AWS_ACCESS_KEY_ID").ok() => {
                    Credentials::new_with_token(k.clone(), s.clone(), t)
                }
                _ => Credentials::new(k.clone(), s.clone()),
            }),
            _ => None,
        };
        let client = Arc::new(
            S3Client::new(&cfg.store_url, &cfg.bucket, &cfg.region, creds)
                .map_err(|e| TaskError::Fatal(e.to_string()))?,
        );
        let retry = Retry {
            backoff_ms: cfg.retry_backoff_ms,
            part_retries: cfg.part_retries,
            timeout_ms: policy.retry_timeout_ms,
            delay_max_ms: policy.retry_delay_max_ms,
        };
        Ok(S3Sink {
            cfg,
            uploads: Uploads::new(client.clone(), retry),
            client,
            retry,
            files: BTreeMap::new(),
            avro_schemas: HashMap::new(),
            last_avro: LastSchema::default(),
            object_hint: 0,
        })
    }

    /// Whether a schemaless JSON value may come as its compact text (`Data::Json`):
    /// `JsonFormat` writes that text as it is, and the partitioner does not read
    /// the value.
    pub fn takes_json_text(&self) -> bool {
        self.cfg.format == Format::Json && !self.cfg.partitioner.reads_value()
    }

    /// Confluent checks the bucket at start: a missing bucket fails the task.
    pub async fn start(&mut self) -> Result<(), TaskError> {
        let client = &self.client;
        with_retries(self.retry, "HEAD bucket", || client.head_bucket()).await.map_err(|e| match e {
            TaskError::Fatal(m) => TaskError::Fatal(format!("org.apache.kafka.connect.errors.ConnectException: bucket {} is not usable: {m}", self.cfg.bucket)),
            other => other,
        })
    }

    /// Add records; start the upload of every object that is full (or due by rotation).
    /// Returns whether more is in S3 than before (the worker commits at once if so).
    pub async fn put(&mut self, records: &[SinkRecord]) -> Result<bool, TaskError> {
        let mut uploaded = self.uploads.reap()?;
        let mut tp = (String::new(), -1);
        // The DefaultPartitioner's `partition=<p>`, formatted once per run of a
        // partition's records (it was one `format!` and two copies per record).
        let by_partition = self.cfg.partitioner == Partitioner::Default;
        let mut run_dir = String::new();
        let clock = self.cfg.partitioner.reads_clock();
        for r in records {
            // Records of a partition come in runs: the key is rebuilt only between runs.
            if tp.1 != r.partition || tp.0 != r.topic {
                tp = (r.topic.clone(), r.partition);
                if by_partition {
                    run_dir = Partitioner::partition_dir(r.partition);
                }
            }
            // A redelivery (after a seek or rebalance) starting before what is buffered
            // or uploading: drop those and start again at that offset (same object name).
            let seen = self
                .files
                .get(&tp)
                .map(|f| f.next)
                .or_else(|| self.uploads.end_of(&tp));
            if seen.is_some_and(|n| r.offset < n) {
                self.files.remove(&tp);
                self.uploads.discard(&tp);
            }
            if matches!(r.value.data, Data::Null) {
                if !self.cfg.ignore_nulls {
                    return Err(TaskError::Fatal(format!(
                        "org.apache.kafka.connect.errors.ConnectException: Null valued records are not writeable with current behavior.on.null.values 'fail' setting ({}-{}@{})",
                        r.topic, r.partition, r.offset
                    )));
                }
                // Nothing written, but the offset is consumed.
                if let Some(f) = self.files.get_mut(&tp) {
                    f.next = r.offset + 1;
                }
                continue;
            }
            let bad = |e: String| {
                TaskError::Fatal(format!(
                    "org.apache.kafka.connect.errors.DataException: cannot write {}-{}@{}: {e}",
                    r.topic, r.partition, r.offset
                ))
            };
            let placed;
            let (dir, place_time) = if by_partition {
                (run_dir.as_str(), None)
            } else {
                let now = if clock { now_ms() } else { 0 };
                placed = self.cfg.partitioner.place(r, now).map_err(|e| {
                    bad(format!(
                        "io.confluent.connect.storage.errors.PartitionException: {e}"
                    ))
                })?;
                (placed.dir.as_str(), placed.time)
            };
            let time = place_time.or(r.timestamp);
            if let (Some(f), true) = (self.files.get(&tp), self.cfg.rotate_interval_ms > 0) {
                let late = matches!((f.first_ts, time), (Some(first), Some(ts)) if ts - first >= self.cfg.rotate_interval_ms);
                // Confluent's time-based rotation also closes a chunk when the directory changes.
                let moved = place_time.is_some() && f.dir != dir;
                if late || moved {
                    uploaded |= self.upload(&tp).await?;
                }
            }
            let schema = match self.cfg.format {
                Format::Avro => {
                    let s = self.avro_schema(r.value.schema.as_ref()).map_err(bad)?;
                    // A new schema closes the chunk: one schema an object.
                    if self
                        .files
                        .get(&tp)
                        .and_then(|f| f.schema.as_ref())
                        .is_some_and(|o| !Arc::ptr_eq(o, &s))
                    {
                        uploaded |= self.upload(&tp).await?;
                    }
                    Some(s)
                }
                _ => None,
            };
            let f = self.files.entry(tp.clone()).or_insert_with(|| Chunk {
                start: r.offset,
                next: r.offset,
                count: 0,
                objects: BTreeMap::new(),
                dir: String::new(),
                first_ts: time,
                schema,
                rotate_at_ms: (self.cfg.rotate_schedule_interval_ms > 0).then(|| {
                    next_scheduled_rotation(
                        now_ms(),
                        self.cfg.rotate_schedule_interval_ms,
                        self.cfg.schedule_offset_ms,
                    )
                }),
            });
            if !f.objects.contains_key(dir) {
                // Sized as the last object was: a 10 MB object grew by doubling, each
                // step a copy of what it held.
                let hint = self.object_hint.min(MAX_OBJECT_HINT);
                f.objects.insert(
                    dir.to_string(),
                    Object {
                        start: r.offset,
                        buf: Vec::with_capacity(hint),
                        avro: Vec::new(),
                    },
                );
            }
            let o = f
                .objects
                .get_mut(dir)
                .ok_or_else(|| bad("the object was not opened".into()))?;
            // Only the time-based rotation reads it (a change of directory).
            if place_time.is_some() && f.dir != dir {
                f.dir = dir.to_string();
            }
            // Written straight into the object's buffer: no copy of the value per record.
            let written = match (&r.value.data, self.cfg.format) {
                (data, Format::Avro) => {
                    let value = match data {
                        Data::Value(v) => Cow::Borrowed(v),
                        _ => Cow::Owned(r.value.to_json()),
                    };
                    let s = f.schema.as_ref().ok_or_else(|| bad("no schema".into()))?;
                    o.avro
                        .push(avro_data::avro_value(&s.connect, &value).map_err(bad)?);
                    Ok(())
                }
                (Data::Bytes(b), Format::ByteArray) => {
                    o.buf.extend_from_slice(b);
                    Ok(())
                }
                (Data::Value(serde_json::Value::String(s)), Format::ByteArray) => {
                    o.buf.extend_from_slice(s.as_bytes());
                    Ok(())
                }
                (Data::Value(v), _) => {
                    serde_json::to_writer(&mut o.buf, v).map_err(|e| e.to_string())
                }
                // Schemaless JSON already as JsonFormat writes it (`compact_json`).
                (Data::Json(text), Format::Json) => {
                    o.buf.extend_from_slice(text);
                    Ok(())
                }
                _ => {
                    serde_json::to_writer(&mut o.buf, &r.value.to_json()).map_err(|e| e.to_string())
                }
            };
            written.map_err(bad)?;
            match self.cfg.format {
                Format::Json => o.buf.push(b'\n'),
                Format::ByteArray => o.buf.extend_from_slice(&self.cfg.separator),
                Format::Avro => {}
            }
            f.count += 1;
            f.next = r.offset + 1;
            if f.count >= self.cfg.flush_size {
                uploaded |= self.upload(&tp).await?;
            }
        }
        if self.cfg.rotate_schedule_interval_ms > 0 {
            let now = now_ms();
            let due: Vec<_> = self
                .files
                .iter()
                .filter(|(_, f)| f.count > 0 && f.rotate_at_ms.is_some_and(|at| now >= at))
                .map(|(k, _)| k.clone())
                .collect();
            for tp in due {
                uploaded |= self.upload(&tp).await?;
            }
        }
        Ok(uploaded)
    }

    /// Offsets safe to commit: the end of what is in S3, per partition.
    pub fn committable(&self) -> BTreeMap<(String, i32), i64> {
        self.uploads.committable()
    }

    /// Let the uploads under way finish (a graceful stop commits them).
    pub async fn finish_uploads(&mut self) -> Result<bool, TaskError> {
        self.uploads.drain().await
    }

    /// Forget buffered data (stop, rebalance): it is re-read from the committed offset.
    pub fn close(&mut self) {
        self.files.clear();
        self.uploads.clear();
    }

    /// Hand `tp`'s chunk to the uploads (it waits only for a free upload slot).
    /// Only its last object carries the chunk's end: the partition's offset moves
    /// past the chunk when every object of it is in S3.
    async fn upload(&mut self, tp: &(String, i32)) -> Result<bool, TaskError> {
        let Some(f) = self.files.remove(tp) else {
            return Ok(false);
        };
        if f.count == 0 {
            return Ok(false);
        }
        let mut moved = false;
        let last = f.objects.len().saturating_sub(1);
        for (i, (dir, o)) in f.objects.into_iter().enumerate() {
            let key = self.cfg.object_name(&tp.0, tp.1, &dir, o.start);
            let body = match &f.schema {
                Some(s) => container(&s.avro, o.avro).map_err(|e| {
                    TaskError::Fatal(format!(
                        "org.apache.kafka.connect.errors.DataException: cannot write {key}: {e}"
                    ))
                })?,
                None => {
                    self.object_hint = o.buf.len();
                    o.buf
                }
            };
            let end = if i == last { f.next } else { f.start };
            moved |= self
                .uploads
                .start(tp.clone(), key, Bytes::from(body), end)
                .await?;
        }
        Ok(moved)
    }

    /// The Avro schema of a record's Connect schema (mapped once per schema).
    fn avro_schema(
        &mut self,
        connect: Option<&Arc<serde_json::Value>>,
    ) -> Result<Arc<AvroSchema>, String> {
        let connect = connect.ok_or(
            "AvroFormat needs records with a schema (AvroConverter, or JsonConverter with schemas.enable=true)",
        )?;
        if let Some(s) = self.last_avro.get(connect) {
            return Ok(s);
        }
        let key = connect.to_string();
        let s = match self.avro_schemas.get(&key) {
            Some(s) => s.clone(),
            None => {
                let text = avro_data::avro_schema(connect)?.to_string();
                let avro = apache_avro::Schema::parse_str(&text).map_err(|e| e.to_string())?;
                let s = Arc::new(AvroSchema {
                    connect: connect.clone(),
                    avro,
                });
                self.avro_schemas.insert(key, s.clone());
                s
            }
        };
        self.last_avro.set(connect, s.clone());
        Ok(s)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An Avro object container file of `values` (no codec, as Confluent's default
/// `avro.codec=null`).
fn container(
    schema: &apache_avro::Schema,
    values: Vec<apache_avro::types::Value>,
) -> Result<Vec<u8>, String> {
    let mut w = apache_avro::Writer::new(schema, Vec::new());
    for v in values {
        w.append(v).map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

#[cfg(test)]
mod avro_format_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_files_read_back() {
        let c = json!({"type": "struct", "name": "t", "optional": false,
                       "fields": [{"field": "id", "type": "int64", "optional": false}]});
        let text = avro_data::avro_schema(&c).unwrap().to_string();
        let s = apache_avro::Schema::parse_str(&text).unwrap();
        let vals = (0..3)
            .map(|i| avro_data::avro_value(&c, &json!({"id": i})).unwrap())
            .collect();
        let bytes = container(&s, vals).unwrap();
        let back: Vec<_> = apache_avro::Reader::new(&bytes[..])
            .unwrap()
            .map(|v| v.unwrap())
            .collect();
        assert_eq!(back.len(), 3);
        assert_eq!(
            avro_data::connect_value(back[2].clone()).unwrap(),
            json!({"id": 2})
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_properties;

    fn cfg(extra: &str) -> Result<S3Config, ConfigError> {
        S3Config::from_config(&parse_properties(&format!(
            "s3.bucket.name=b\nflush.size=3\nstorage.class={S3_STORAGE}\nformat.class={JSON_FORMAT}\nstore.url=http://127.0.0.1:9\n{extra}"
        )))
    }

    #[test]
    fn scheduled_rotation_falls_on_the_clock() {
        const H: i64 = 3_600_000;
        // 2024-10-04T00:00Z.
        let midnight = 20_000 * 86_400_000;
        // Hourly: the top of the next hour, wherever in the hour the chunk opened.
        assert_eq!(next_scheduled_rotation(midnight, H, 0), midnight + H);
        assert_eq!(next_scheduled_rotation(midnight + 1, H, 0), midnight + H);
        assert_eq!(next_scheduled_rotation(midnight - 1, H, 0), midnight);
        assert_eq!(
            next_scheduled_rotation(midnight + H - 1, H, 0),
            midnight + H
        );
        // An interval that does not divide the day stops at midnight.
        let seven = 7 * H;
        assert_eq!(
            next_scheduled_rotation(midnight + 22 * H, seven, 0),
            midnight + 24 * H
        );
        // Counted from midnight in the zone: at +02:00 the local day starts at 22:00Z,
        // so 3-hourly falls on 01:00Z, 04:00Z, ...
        assert_eq!(
            next_scheduled_rotation(midnight + H - 1, 3 * H, 2 * H),
            midnight + H
        );
        assert_eq!(
            next_scheduled_rotation(midnight + H, 3 * H, 2 * H),
            midnight + 4 * H
        );
        let sched = "rotate.schedule.interval.ms=60000\n";
        assert_eq!(
            cfg(&format!("{sched}timezone=+02:00\n"))
                .unwrap()
                .schedule_offset_ms,
            2 * H
        );
        assert_eq!(cfg(sched).unwrap().schedule_offset_ms, 0);
        assert_eq!(
            cfg(&format!("{sched}timezone=Europe/Paris\n"))
                .unwrap_err()
                .key,
            "timezone"
        );
        // Without a schedule the zone is not read (DefaultPartitioner files carry one).
        assert!(cfg("timezone=Europe/Paris\n").is_ok());
    }

    #[test]
    fn object_names_are_confluents() {
        let c = cfg("").unwrap();
        assert_eq!(
            c.object_name("orders", 2, "partition=2", 1000),
            "topics/orders/partition=2/orders+2+0000001000.json"
        );
        let c = cfg(&format!(
            "format.class={BYTES_FORMAT}\ntopics.dir=/lake/raw/\n"
        ))
        .unwrap();
        assert_eq!(
            c.object_name("t", 0, "partition=0", 0),
            "lake/raw/t/partition=0/t+0+0000000000.bin"
        );
    }

    #[test]
    fn bad_keys_are_named() {
        assert_eq!(cfg("flush.size=zero\n").unwrap_err().key, "flush.size");
        assert_eq!(
            cfg("format.class=io.confluent.connect.s3.format.parquet.ParquetFormat\n")
                .unwrap_err()
                .key,
            "format.class"
        );
        assert_eq!(
            cfg(&format!("format.class={AVRO_FORMAT}\n"))
                .unwrap()
                .extension,
            ".avro"
        );
        assert_eq!(
            cfg("partitioner.class=x.Y\n").unwrap_err().key,
            "partitioner.class"
        );
        assert_eq!(cfg("storage.class=x.Y\n").unwrap_err().key, "storage.class");
        let m = parse_properties(&format!(
            "storage.class={S3_STORAGE}\nformat.class={JSON_FORMAT}\nflush.size=1\n"
        ));
        assert_eq!(S3Config::from_config(&m).unwrap_err().key, "s3.bucket.name");
    }
}
