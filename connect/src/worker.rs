//! Task loops: a source task polls its connector and produces; a sink task consumes
//! (its own consumer in group `connect-<name>`, manual commits), converts, hands
//! records to its connector and commits only what the connector says is written.
//! A failing task records FAILED with its trace and ends; it never takes the worker
//! or other tasks down.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use tokio::sync::watch;

use crate::acks::{Acks, BatchId};
use crate::config::{self, ConfigMap};
use crate::connectors::file_sink::{FileSink, FileSinkConfig};
use crate::connectors::file_source::{FileSource, FileSourceConfig};
use crate::connectors::jdbc_config::JdbcSinkConfig;
use crate::connectors::jdbc_sink::{JdbcSink, Prepared, Preparer};
use crate::connectors::jdbc_source::{JdbcSource, JdbcSourceConfig};
use crate::connectors::s3_sink::{S3Config, S3Sink};
use crate::connectors::{self, SinkRecord, TaskError};
use crate::converters::Converter;
use crate::errors::{headers_of, ErrorPolicy, Failure, RawRecord, Reporter, Stage};
use crate::sink_context::SinkContext;
use crate::storage::OffsetStore;
use crate::transforms::{Rec, Transforms};
use crate::worker_config::WorkerConfig;

/// What the herder asks of a task (stored with a connector's config in distributed mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Target {
    Running,
    Paused,
    Stopped,
}

#[derive(Debug, Clone)]
pub struct TaskStatus {
    pub state: &'static str,
    pub trace: Option<String>,
}

pub type SharedStatus = Arc<Mutex<TaskStatus>>;

pub fn set_status(s: &SharedStatus, state: &'static str, trace: Option<String>) {
    let mut g = s.lock().unwrap_or_else(|p| p.into_inner());
    g.state = state;
    g.trace = trace;
}

/// Everything one task runs with: the handles it uses, nothing more.
pub struct TaskCtx {
    pub connector: String,
    pub id: i32,
    pub config: ConfigMap,
    pub worker: Arc<WorkerConfig>,
    pub offsets: Arc<dyn OffsetStore>,
    pub status: SharedStatus,
    pub control: watch::Receiver<Target>,
    /// The connector's active topics (`GET /connectors/{n}/topics`).
    pub topics: Arc<Mutex<BTreeSet<String>>>,
}

/// The consumer group of a sink connector (Kafka's naming).
pub fn sink_group(connector: &str) -> String {
    format!("connect-{connector}")
}

/// Run a task to its end; the outcome is left in its status.
pub async fn run_task(mut ctx: TaskCtx) {
    set_status(&ctx.status, "RUNNING", None);
    let result = match ctx
        .config
        .get("connector.class")
        .and_then(|c| connectors::plugin(c))
        .map(|p| p.class)
    {
        Some(connectors::FILE_SOURCE) | Some(connectors::JDBC_SOURCE) => run_source(&mut ctx).await,
        Some(connectors::FILE_SINK) | Some(connectors::S3_SINK) | Some(connectors::JDBC_SINK) => {
            run_sink(&mut ctx).await
        }
        _ => Err("unknown connector class".to_string()),
    };
    match result {
        Ok(()) => set_status(&ctx.status, "UNASSIGNED", None),
        Err(trace) => {
            tracing::error!(connector = %ctx.connector, task = ctx.id, error = %trace, "task failed");
            set_status(&ctx.status, "FAILED", Some(trace));
        }
    }
}

fn converters(ctx: &TaskCtx) -> Result<(Converter, Converter), String> {
    let pick = |prefix: &str, worker: &ConfigMap| -> Result<Converter, String> {
        let own =
            crate::converters::section(&ctx.config, prefix, false).map_err(|e| e.to_string())?;
        let section = if own.contains_key("class") {
            own
        } else {
            worker.clone()
        };
        Converter::from_config(prefix, &section).map_err(|e| e.to_string())
    };
    Ok((
        pick("key.converter", &ctx.worker.key_converter)?,
        pick("value.converter", &ctx.worker.value_converter)?,
    ))
}

/// A task's client: `defaults`, then the worker file's `<prefix>*` and the connector's
/// `<override_prefix>*` settings over them.
fn client_config(
    ctx: &TaskCtx,
    prefix: &str,
    override_prefix: &str,
    defaults: &[(&str, &str)],
) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &ctx.worker.bootstrap_servers);
    for (k, v) in defaults {
        cc.set(*k, *v);
    }
    let overrides =
        ctx.worker
            .client_overrides(prefix)
            .into_iter()
            .chain(ctx.config.iter().filter_map(|(k, v)| {
                k.strip_prefix(override_prefix)
                    .map(|s| (s.to_string(), v.clone()))
            }));
    for (k, v) in overrides {
        match java_client_key(&k, &v) {
            JavaKey::Same => {
                cc.set(k, v);
            }
            JavaKey::As(name, value) => {
                cc.set(name, value);
            }
            // The worker's own: a sink task's batch (`sink_batch_cap`).
            JavaKey::Worker => {}
            JavaKey::Ignored => {
                tracing::info!(connector = %ctx.connector, key = %format!("{prefix}{k}"), "a Java client setting librdkafka has no equivalent for: ignored");
            }
        }
    }
    cc
}

/// How a Java client key from a worker file reaches librdkafka.
#[derive(Debug, PartialEq)]
enum JavaKey {
    Same,
    As(&'static str, String),
    /// Not librdkafka's, but the worker reads it (`max.poll.records`).
    Worker,
    Ignored,
}

/// Worker files written for Kafka's Java clients carry keys librdkafka names
/// differently or lacks (serializer classes, `max.poll.records`, ...): renamed or
/// ignored here, so an existing `consumer.*`/`producer.*` line does not fail the task.
fn java_client_key(k: &str, v: &str) -> JavaKey {
    match k {
        "max.poll.records" => JavaKey::Worker,
        "key.deserializer"
        | "value.deserializer"
        | "key.serializer"
        | "value.serializer"
        | "buffer.memory"
        | "max.block.ms"
        | "interceptor.classes"
        | "metric.reporters"
        | "default.api.timeout.ms"
        | "exclude.internal.topics" => JavaKey::Ignored,
        "send.buffer.bytes" => JavaKey::As("socket.send.buffer.bytes", v.to_string()),
        "receive.buffer.bytes" => JavaKey::As("socket.receive.buffer.bytes", v.to_string()),
        "partition.assignment.strategy" => {
            let names: Vec<&str> = v
                .split(',')
                .map(|c| match c.trim().rsplit('.').next().unwrap_or("") {
                    "RangeAssignor" => "range",
                    "RoundRobinAssignor" => "roundrobin",
                    "CooperativeStickyAssignor" => "cooperative-sticky",
                    other => other,
                })
                .collect();
            JavaKey::As("partition.assignment.strategy", names.join(","))
        }
        _ => JavaKey::Same,
    }
}

/// Wait while paused; `Ok(false)` means stop.
async fn wait_while_paused(ctx: &mut TaskCtx) -> bool {
    loop {
        let t = *ctx.control.borrow_and_update();
        match t {
            Target::Running => return true,
            Target::Stopped => return false,
            Target::Paused => {
                set_status(&ctx.status, "PAUSED", None);
                if ctx.control.changed().await.is_err() {
                    return false;
                }
                if *ctx.control.borrow() == Target::Running {
                    set_status(&ctx.status, "RUNNING", None);
                }
            }
        }
    }
}

// ---------------------------------------------------------------- source

enum Source {
    /// Batches read by the file's own reader task (see [`read_ahead`]).
    File(tokio::sync::mpsc::Receiver<Result<Vec<connectors::SourceRecord>, TaskError>>),
    Jdbc(Box<JdbcSource>),
}

impl Source {
    async fn poll(&mut self) -> Result<Vec<connectors::SourceRecord>, TaskError> {
        match self {
            Source::File(batches) => batches
                .recv()
                .await
                .unwrap_or_else(|| Err(TaskError::Fatal("the file reader ended".into()))),
            Source::Jdbc(j) => j.poll().await,
        }
    }
}

/// Read the file in a task of its own, one batch ahead: lines are split while the
/// previous batch is converted and sent (the two stages run on both cores). Records
/// read ahead are only sent, never stored as done, so a stop loses nothing; the task
/// ends when the receiver is dropped.
fn read_ahead(
    mut source: FileSource,
) -> tokio::sync::mpsc::Receiver<Result<Vec<connectors::SourceRecord>, TaskError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            let batch = source.poll().await;
            if tx.send(batch).await.is_err() {
                break;
            }
        }
    });
    rx
}

/// Hand the acknowledged batches' source offsets to the store and make them durable.
async fn flush_offsets(
    pending: &mut BTreeMap<String, (Value, Value)>,
    ctx: &TaskCtx,
) -> Result<(), String> {
    if pending.is_empty() {
        return Ok(());
    }
    ctx.offsets.put(
        &ctx.connector,
        std::mem::take(pending)
            .into_values()
            .map(|(p, o)| (p, Some(o)))
            .collect(),
    );
    ctx.offsets.flush().await.map_err(|e| e.to_string())
}

async fn run_source(ctx: &mut TaskCtx) -> Result<(), String> {
    let (kc, vc) = converters(ctx)?;
    let policy = ErrorPolicy::from_config(&ctx.config).map_err(|e| e.to_string())?;
    let transforms = Transforms::from_config(&ctx.config).map_err(|e| e.to_string())?;
    let stored = ctx
        .offsets
        .get(&ctx.connector)
        .await
        .map_err(|e| e.to_string())?;
    let is_jdbc = ctx
        .config
        .get("connector.class")
        .and_then(|c| connectors::plugin(c))
        .map(|p| p.class)
        == Some(connectors::JDBC_SOURCE);
    let mut source = if is_jdbc {
        let cfg = JdbcSourceConfig::from_config(&ctx.config).map_err(|e| e.to_string())?;
        let mut s = JdbcSource::new(cfg, &stored);
        // A bad URL, password or unreachable database fails the task here, with the trace.
        s.start().await.map_err(|e| e.to_string())?;
        let mut t = ctx.topics.lock().unwrap_or_else(|p| p.into_inner());
        t.extend(s.topics());
        drop(t);
        Source::Jdbc(Box::new(s))
    } else {
        let cfg = FileSourceConfig::from_config(&ctx.config).map_err(|e| e.to_string())?;
        let s = FileSource::new(cfg, &stored);
        ctx.topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(s.topic().to_string());
        Source::File(read_ahead(s))
    };
    // Delivery reports are counted per batch by the producer's context (`acks`).
    let mut pc = client_config(ctx, "producer.", "producer.override.", &[]);
    // A worker's `producer.linger.ms` (or librdkafka's alias) is kept; 5 ms otherwise.
    if pc.get("linger.ms").is_none() && pc.get("queue.buffering.max.ms").is_none() {
        pc.set("linger.ms", "5");
    }
    let producer: ThreadedProducer<Acks> = pc
        .set("enable.idempotence", "true")
        .create_with_context(Acks::default())
        .map_err(|e| format!("cannot create producer: {e}"))?;
    let acks = producer.context().clone();
    let mut next_batch: BatchId = 0;
    // The JDBC source flushes its offsets after every acknowledged batch: a table is
    // re-read from its offset after a crash, and a late flush would send rows twice.
    let flush_every = if is_jdbc {
        Duration::ZERO
    } else {
        ctx.worker.offset_flush_interval
    };
    let mut last_flush = Instant::now();
    let mut pending: BTreeMap<String, (Value, Value)> = BTreeMap::new();
    // Batches sent and not yet known acknowledged, oldest first: the next batch is read
    // and sent while these are under way; a batch's offsets count only once it and
    // every batch before it are acknowledged.
    let mut sent: VecDeque<SentBatch> = VecDeque::new();
    // The JDBC source waits for each batch (its offsets stored at once, see above).
    let max_sent = if is_jdbc { 0 } else { MAX_SENT_BATCHES };
    loop {
        if *ctx.control.borrow() != Target::Running {
            settle_all(&mut sent, &mut pending, &acks).await?;
            flush_offsets(&mut pending, ctx).await?;
        }
        if !wait_while_paused(ctx).await {
            break;
        }
        let batch = tokio::select! {
            r = source.poll() => r,
            _ = ctx.control.changed() => continue,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(TaskError::Retriable(m)) => {
                tracing::warn!(connector = %ctx.connector, error = %m, "source poll failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(TaskError::Fatal(m)) => return Err(m),
        };
        let id = next_batch;
        next_batch = next_batch.wrapping_add(1);
        acks.open(id);
        let mut sent_records = 0;
        for r0 in &batch {
            let mut owned;
            let r = if transforms.is_empty() {
                r0
            } else {
                owned = r0.clone();
                let mut t = Rec {
                    topic: &mut owned.topic,
                    key: &mut owned.key,
                    value: &mut owned.value,
                    partition: None,
                    offset: None,
                    timestamp: None,
                    headers: &[],
                };
                match transforms.apply(&mut t) {
                    Ok(true) => &owned,
                    Ok(false) => continue,
                    Err(e) if policy.tolerate_all => {
                        tracing::error!(connector = %ctx.connector, error = %e.message, transform = %e.class, "source record skipped: a transform refused it");
                        continue;
                    }
                    Err(e) => {
                        return Err(format!("org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler\nCaused by: org.apache.kafka.connect.errors.DataException: {} ({})", e.message, e.class));
                    }
                }
            };
            let key = kc.to_kafka(&r.topic, &r.key).await;
            let value = match &key {
                Ok(_) => vc.to_kafka(&r.topic, &r.value).await,
                Err(_) => Ok(None),
            };
            let (key, value) = match (key, value) {
                (Ok(k), Ok(v)) => (k, v),
                (Err(e), _) | (_, Err(e)) => {
                    if e.unavailable {
                        return Err(format!(
                            "org.apache.kafka.connect.errors.RetriableException: {e}"
                        ));
                    }
                    if policy.tolerate_all {
                        tracing::error!(connector = %ctx.connector, error = %e, "source record skipped: conversion failed");
                        continue;
                    }
                    return Err(format!("org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler\nCaused by: {}: {e}", e.class_name()));
                }
            };
            loop {
                let mut rec: BaseRecord<'_, [u8], [u8], BatchId> =
                    BaseRecord::with_opaque_to(&r.topic, id);
                if let Some(k) = key.as_deref() {
                    rec = rec.key(k);
                }
                if let Some(v) = value.as_deref() {
                    rec = rec.payload(v);
                }
                match producer.send(rec) {
                    Ok(()) => {
                        sent_records += 1;
                        break;
                    }
                    Err((e, _)) => {
                        if !matches!(
                            e,
                            rdkafka::error::KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull
                            )
                        ) {
                            return Err(format!("org.apache.kafka.connect.errors.ConnectException: produce failed: {e}"));
                        }
                        // The producer's queue is full: wait for the oldest sends (or,
                        // this batch being the only one, for its first records).
                        if sent.is_empty() {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        } else {
                            settle_oldest(&mut sent, &mut pending, &acks).await?;
                        }
                    }
                }
            }
        }
        let idle = batch.is_empty();
        acks.seal(id, sent_records);
        sent.push_back(SentBatch {
            id,
            offsets: last_offsets(batch),
        });
        // An idle source (nothing new) waits for what it sent, so its offsets are stored.
        while sent.len() > max_sent || (idle && !sent.is_empty()) {
            settle_oldest(&mut sent, &mut pending, &acks).await?;
        }
        if last_flush.elapsed() >= flush_every {
            flush_offsets(&mut pending, ctx).await?;
            last_flush = Instant::now();
        }
    }
    settle_all(&mut sent, &mut pending, &acks).await?;
    flush_offsets(&mut pending, ctx).await
}

/// Batches a source task may have sent and not yet seen acknowledged. Two keep the
/// producer busy while the next batch is read and converted (waiting for each batch
/// before reading the next left the task idle for a round trip per batch).
const MAX_SENT_BATCHES: usize = 2;

/// A source batch handed to the producer: its id (its records' delivery reports are
/// counted under it, see `acks`) and, per source partition, the offset of its last record.
struct SentBatch {
    id: BatchId,
    offsets: Vec<(Value, Value)>,
}

/// The last offset of each source partition in `batch` (a file source has one; the
/// JDBC source one per table).
fn last_offsets(batch: Vec<connectors::SourceRecord>) -> Vec<(Value, Value)> {
    let mut out: Vec<(Value, Value)> = Vec::new();
    for r in batch.into_iter().rev() {
        if !r.offset.is_null() && !out.iter().any(|(p, _)| *p == r.partition) {
            out.push((r.partition, r.offset));
        }
    }
    out.reverse();
    out
}

/// Wait for the oldest sent batch; once acknowledged, its offsets may be stored.
async fn settle_oldest(
    sent: &mut VecDeque<SentBatch>,
    pending: &mut BTreeMap<String, (Value, Value)>,
    acks: &Acks,
) -> Result<(), String> {
    let Some(b) = sent.pop_front() else {
        return Ok(());
    };
    acks.wait(b.id).await?;
    for (p, o) in b.offsets {
        pending.insert(p.to_string(), (p, o));
    }
    Ok(())
}

async fn settle_all(
    sent: &mut VecDeque<SentBatch>,
    pending: &mut BTreeMap<String, (Value, Value)>,
    acks: &Acks,
) -> Result<(), String> {
    while !sent.is_empty() {
        settle_oldest(sent, pending, acks).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------- sink

enum Sink {
    File(FileSink),
    S3(Box<S3Sink>),
    Jdbc(Box<JdbcSink>),
}

/// A sink task's consumer settings unless the worker file or connector sets them.
/// librdkafka 2.0.2 stops fetching a partition whose local queue holds
/// `queued.min.messages` (100,000) or `queued.max.messages.kbytes` (64 MiB) and looks
/// at it again only on its broker thread's next wake-up, up to a second later: a sink
/// that drains faster than that (100,000 records or 64 MiB in under a second) then
/// waits with an empty queue. These limits hold more than a second of either sink's
/// benchmark rate, at up to 128 MiB of prefetched records per task.
const SINK_CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("queued.min.messages", "1000000"),
    ("queued.max.messages.kbytes", "131072"),
];

/// A sink batch (one `put`) without `max.poll.records`: librdkafka has no such cap, and
/// Kafka's default of 500 would cost the JDBC sink a transaction per 500 records.
const MAX_BATCH: usize = 2000;
/// The most a sink batch holds whatever `max.poll.records` says (the batch's messages
/// stay in memory until it is written).
const MAX_BATCH_CEILING: usize = 100_000;

/// How many messages a sink task hands its connector at most in one `put`: Kafka
/// Connect's `max.poll.records` of the task's consumer (`consumer.override.` in the
/// connector, else `consumer.` in the worker file), else `MAX_BATCH`.
fn sink_batch_cap(ctx: &TaskCtx) -> usize {
    ctx.config
        .get("consumer.override.max.poll.records")
        .cloned()
        .or_else(|| {
            ctx.worker
                .client_overrides("consumer.")
                .into_iter()
                .find(|(k, _)| k == "max.poll.records")
                .map(|(_, v)| v)
        })
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .map_or(MAX_BATCH, |n| n.min(MAX_BATCH_CEILING))
}

async fn run_sink(ctx: &mut TaskCtx) -> Result<(), String> {
    let started = Instant::now();
    let (kc, vc) = converters(ctx)?;
    let policy = ErrorPolicy::from_config(&ctx.config).map_err(|e| e.to_string())?;
    let transforms = Transforms::from_config(&ctx.config).map_err(|e| e.to_string())?;
    let class = ctx
        .config
        .get("connector.class")
        .and_then(|c| connectors::plugin(c))
        .map(|p| p.class)
        .unwrap_or("");
    let mut sink = if class == connectors::S3_SINK {
        let cfg = S3Config::from_config(&ctx.config).map_err(|e| e.to_string())?;
        let mut s = S3Sink::new(cfg, policy.clone()).map_err(|e| e.to_string())?;
        s.start().await.map_err(|e| e.to_string())?;
        Sink::S3(Box::new(s))
    } else if class == connectors::JDBC_SINK {
        let cfg = JdbcSinkConfig::from_config(&ctx.config).map_err(|e| e.to_string())?;
        let mut s = JdbcSink::new(cfg);
        s.start().await.map_err(|e| e.to_string())?;
        Sink::Jdbc(Box::new(s))
    } else {
        Sink::File(FileSink::new(
            FileSinkConfig::from_config(&ctx.config).map_err(|e| e.to_string())?,
        ))
    };
    // Schemaless JSON already in JsonFormat's compact form skips the parse and the
    // re-serialisation (byte-identical output; see `converters::compact_json`).
    let json_text = transforms.is_empty() && matches!(&sink, Sink::S3(s) if s.takes_json_text());
    let reporter = Reporter::new(
        policy,
        &ctx.connector,
        ctx.id,
        &ctx.worker.bootstrap_servers,
    )
    .await?;
    let revoked = Arc::new(AtomicBool::new(false));
    let consumer: StreamConsumer<SinkContext> = client_config(
        ctx,
        "consumer.",
        "consumer.override.",
        SINK_CONSUMER_DEFAULTS,
    )
    .set("group.id", sink_group(&ctx.connector))
    .set("enable.auto.commit", "false")
    .set("auto.offset.reset", "earliest")
    .set("enable.partition.eof", "false")
    .create_with_context(SinkContext {
        revoked: revoked.clone(),
    })
    .map_err(|e| format!("cannot create consumer: {e}"))?;
    let mut topics = config::list(&ctx.config, "topics");
    if let Some(re) = ctx
        .config
        .get("topics.regex")
        .filter(|s| !s.trim().is_empty())
    {
        topics = vec![format!("^{}", re.trim().trim_start_matches('^'))];
    }
    let refs: Vec<&str> = topics.iter().map(|s| s.as_str()).collect();
    consumer
        .subscribe(&refs)
        .map_err(|e| format!("subscribe failed: {e}"))?;
    tracing::debug!(
        connector = %ctx.connector,
        since_start_ms = started.elapsed().as_millis() as u64,
        "sink task subscribed"
    );
    let flush_every = ctx.worker.offset_flush_interval;
    let mut last_commit = Instant::now();
    // Next offset to consume, per partition, of everything handed to the connector.
    let mut consumed: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut paused = false;
    // A batch gathered and converted while the last put ran.
    let mut ahead: Option<Gathered> = None;
    // The last batch, freed while the next put waits on the database (tens of
    // thousands of librdkafka messages and rows: milliseconds the database would
    // otherwise wait for between two puts).
    let mut retired: Option<Gathered> = None;
    let mut jdbc_prep = match &sink {
        Sink::Jdbc(j) => Some(j.preparer()),
        _ => None,
    };
    let result: Result<(), String> = async {
        let gatherer = Gatherer {
            max_batch: sink_batch_cap(ctx),
            consumer: &consumer,
            connector: &ctx.connector,
            kc: &kc,
            vc: &vc,
            transforms: &transforms,
            topics: &ctx.topics,
            json_text,
        };
        loop {
            match *ctx.control.borrow_and_update() {
                Target::Stopped => break,
                Target::Paused if !paused => {
                    if let Ok(a) = consumer.assignment() {
                        let _ = consumer.pause(&a);
                    }
                    paused = true;
                    set_status(&ctx.status, "PAUSED", None);
                }
                Target::Running if paused => {
                    if let Ok(a) = consumer.assignment() {
                        let _ = consumer.resume(&a);
                    }
                    paused = false;
                    set_status(&ctx.status, "RUNNING", None);
                }
                _ => {}
            }
            // A batch: the one gathered and converted while the last put ran, or a new
            // one (up to `max.poll.records` messages or 100 ms; the consumer keeps being polled
            // while paused, so the group does not expel it).
            let Gathered {
                raw,
                records,
                origin,
                failures,
                prepared,
            } = match ahead.take() {
                Some(b) => b,
                None => {
                    let mut ctl = ctx.control.clone();
                    gather(&gatherer, &mut ctl, jdbc_prep.as_mut()).await?
                }
            };
            let put_started = Instant::now();
            tracing::debug!(
                connector = %ctx.connector,
                records = raw.len(),
                since_start_ms = started.elapsed().as_millis() as u64,
                "batch gathered"
            );
            if revoked.swap(false, Ordering::SeqCst) {
                // Partitions may have moved: drop what is buffered; the new owner (or
                // we, after reassignment) starts again at the committed offsets.
                if let Sink::S3(s) = &mut sink {
                    s.close();
                }
                consumed.clear();
            }
            // Records the converters or transforms refused, dead-lettered in order.
            for f in &failures {
                let Some(m) = raw.get(f.index) else { continue };
                let rr = RawRecord::of(m);
                let fl = Failure {
                    stage: f.stage,
                    class_name: &f.class_name,
                    exception_class: &f.exception_class,
                    message: &f.message,
                };
                reporter.report(&fl, &rr).await?;
            }
            // A JDBC put waits on the database: the next batch is gathered and converted
            // meanwhile (it is put, and committed, only after this one).
            let overlap = matches!(sink, Sink::Jdbc(_))
                && !origin.is_empty()
                && *ctx.control.borrow() == Target::Running;
            let mut ctl = ctx.control.clone();
            let freed = retired.take();
            let next = async {
                tokio::task::yield_now().await;
                drop(freed);
                if overlap {
                    Some(gather(&gatherer, &mut ctl, jdbc_prep.as_mut()).await)
                } else {
                    None
                }
            };
            let (uploaded, next) = tokio::join!(
                put_batch(
                    &mut sink,
                    &records,
                    prepared.as_ref(),
                    &origin,
                    &raw,
                    &reporter,
                    &ctx.connector,
                    ctx.id,
                    &ctx.control
                ),
                next
            );
            let uploaded = uploaded?;
            if !raw.is_empty() {
                tracing::debug!(
                    connector = %ctx.connector,
                    records = raw.len(),
                    since_start_ms = started.elapsed().as_millis() as u64,
                    put_and_next_ms = put_started.elapsed().as_millis() as u64,
                    "batch written"
                );
            }
            let next_err = match next {
                Some(Ok(b)) => {
                    ahead = Some(b);
                    None
                }
                Some(Err(e)) => Some(e),
                None => None,
            };
            // Messages of a partition come in runs: one map update per run.
            let mut i = 0;
            while i < raw.len() {
                let (t, p) = (raw[i].topic(), raw[i].partition());
                while i + 1 < raw.len() && raw[i + 1].partition() == p && raw[i + 1].topic() == t {
                    i += 1;
                }
                consumed.insert((t.to_string(), p), raw[i].offset() + 1);
                i += 1;
            }
            match &mut sink {
                Sink::S3(s) if uploaded => commit(&consumer, &s.committable(), CommitMode::Sync),
                // Rows are committed in the database: commit what they came from.
                // Not waited for (Kafka Connect's commitAsync): a lost commit is covered
                // by the next one, and a sync commit per batch held the task for the
                // broker's round trip every 2,000 records.
                Sink::Jdbc(_) if !raw.is_empty() => commit(&consumer, &consumed, CommitMode::Async),
                Sink::File(f) if last_commit.elapsed() >= flush_every && !consumed.is_empty() => {
                    f.flush().map_err(|e| e.to_string())?;
                    commit(&consumer, &consumed, CommitMode::Sync);
                    last_commit = Instant::now();
                }
                _ => {}
            }
            retired = Some(Gathered {
                raw,
                records,
                origin,
                failures,
                prepared,
            });
            // The batch gathered meanwhile failed (this one is written and committed).
            if let Some(e) = next_err {
                return Err(e);
            }
        }
        Ok(())
    }
    .await;
    // Graceful end: what is written is committed; S3 buffers are dropped (re-read later).
    match &mut sink {
        Sink::File(f) => {
            if f.flush().is_ok() {
                commit(&consumer, &consumed, CommitMode::Sync);
            }
        }
        Sink::S3(s) => {
            // Uploads under way may finish within the graceful timeout; what did is
            // committed, the rest is re-read from the committed offset.
            let _ = tokio::time::timeout(ctx.worker.shutdown_timeout, s.finish_uploads()).await;
            commit(&consumer, &s.committable(), CommitMode::Sync);
            s.close();
        }
        Sink::Jdbc(_) => commit(&consumer, &consumed, CommitMode::Sync),
    }
    consumer.unsubscribe();
    // Closing the consumer (leaving the group, the last revocation) blocks in librdkafka,
    // on a runtime thread it would hold that thread meanwhile: two tasks stopping at once
    // can hold both of a 2-core worker's threads (a CI run once saw a worker's REST API
    // not answer for 60 s just after a connector's two tasks there were stopped). The
    // blocking pool takes the close instead.
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
    result
}

/// A batch as gathered: the messages, the records they made (`records[i]` came from
/// `raw[origin[i]]`), and the messages the converters or transforms refused.
struct Gathered<'c> {
    /// Kept as librdkafka's messages (not copied out): values are read in place
    /// and the messages freed with the batch.
    raw: Vec<rdkafka::message::BorrowedMessage<'c>>,
    /// Empty for a JDBC sink, whose records are made into `prepared` as they come.
    records: Vec<SinkRecord>,
    /// One per record the connector gets (JDBC: its index in `prepared`).
    origin: Vec<usize>,
    failures: Vec<Refused>,
    /// A JDBC sink's ops of `records`.
    prepared: Option<Prepared>,
}

/// A message refused before the connector saw it; dead-lettered when its batch is
/// taken, so the DLQ keeps the order of the records.
struct Refused {
    index: usize,
    stage: Stage,
    class_name: String,
    exception_class: String,
    message: String,
}

/// What a sink task gathers and converts each batch with.
struct Gatherer<'c, C: ConsumerContext + 'static> {
    /// Messages in a batch at most (`sink_batch_cap`).
    max_batch: usize,
    consumer: &'c StreamConsumer<C>,
    connector: &'c str,
    kc: &'c Converter,
    vc: &'c Converter,
    transforms: &'c Transforms,
    topics: &'c Mutex<BTreeSet<String>>,
    /// Schemaless JSON for JsonFormat skips the parse (`converters::compact_json`).
    json_text: bool,
}

/// Gather a batch (up to `max_batch` messages or 100 ms, or until the task's target
/// changes) and convert it.
async fn gather<'c, C: ConsumerContext + 'static>(
    g: &Gatherer<'c, C>,
    control: &mut watch::Receiver<Target>,
    jdbc: Option<&mut Preparer>,
) -> Result<Gathered<'c>, String> {
    let (consumer, connector, kc, vc) = (g.consumer, g.connector, g.kc, g.vc);
    let (transforms, topics, json_text) = (g.transforms, g.topics, g.json_text);
    let mut raw = Vec::new();
    // One timer for the whole batch (not one registered per message).
    let deadline = tokio::time::sleep(Duration::from_millis(100));
    tokio::pin!(deadline);
    while raw.len() < g.max_batch {
        tokio::select! {
            biased;
            m = consumer.recv() => match m {
                Ok(m) => raw.push(m),
                Err(e) => {
                    tracing::warn!(connector = %connector, error = %e, "consumer error");
                    break;
                }
            },
            _ = &mut deadline => break,
            _ = control.changed() => break,
        }
    }
    let mut records = Vec::with_capacity(if jdbc.is_some() { 0 } else { raw.len() });
    let mut origin = Vec::with_capacity(raw.len());
    let mut failures = Vec::new();
    // A JDBC sink's ops are made here, off its put, record by record (its records are
    // not kept: `origin` still counts them).
    let mut jdbc = jdbc;
    let mut prepared = jdbc.as_ref().map(|_| Prepared::with_capacity(raw.len()));
    // The batch's topics, listed once per batch (`GET /connectors/{n}/topics`).
    let mut batch_topics: Vec<&str> = Vec::new();
    for (ri, m) in raw.iter().enumerate() {
        if ri % 16 == 15 {
            // Converting is CPU work: let a put running beside it (`tokio::join!`)
            // answer the database, so the two overlap.
            tokio::task::yield_now().await;
        }
        if !batch_topics.contains(&m.topic()) {
            batch_topics.push(m.topic());
        }
        let key = kc
            .to_connect(m.key())
            .await
            .map_err(|e| (Stage::KeyConverter, kc.class_name(), e));
        // A JDBC row read straight from the envelope's payload text (no transforms;
        // the key converted all the same, so a bad key is still refused).
        if let (Some(p), Some(prep), Ok(_), true) = (
            jdbc.as_deref_mut(),
            prepared.as_mut(),
            &key,
            transforms.is_empty(),
        ) {
            if let Some((schema, payload)) = vc.envelope_payload(m.payload()) {
                let at = (m.topic(), m.partition(), m.offset());
                if p.add_fast(prep, origin.len(), at, &schema, payload) {
                    origin.push(ri);
                    continue;
                }
            }
        }
        let value = match key {
            Ok(k) => match json_text.then(|| vc.json_text(m.payload())).flatten() {
                Some(v) => Ok((k, v)),
                None => vc
                    .to_connect(m.payload())
                    .await
                    .map(|v| (k, v))
                    .map_err(|e| (Stage::ValueConverter, vc.class_name(), e)),
            },
            Err(e) => Err(e),
        };
        if let Err((_, _, e)) = &value {
            if e.unavailable {
                // Nothing of this batch is committed: the restarted task reads it again.
                return Err(format!(
                    "org.apache.kafka.connect.errors.RetriableException: {e}"
                ));
            }
        }
        match value {
            Ok((key, value)) => {
                let mut rec = SinkRecord {
                    topic: m.topic().to_string(),
                    partition: m.partition(),
                    offset: m.offset(),
                    timestamp: m.timestamp().to_millis(),
                    key,
                    value,
                };
                let kept = if transforms.is_empty() {
                    true
                } else {
                    let headers = headers_of(m.headers());
                    let mut t = Rec {
                        topic: &mut rec.topic,
                        key: &mut rec.key,
                        value: &mut rec.value,
                        partition: Some(rec.partition),
                        offset: Some(rec.offset),
                        timestamp: rec.timestamp,
                        headers: &headers,
                    };
                    match transforms.apply(&mut t) {
                        Ok(kept) => kept,
                        Err(e) => {
                            failures.push(Refused {
                                index: ri,
                                stage: Stage::Transformation,
                                class_name: e.class.clone(),
                                exception_class: "org.apache.kafka.connect.errors.DataException"
                                    .into(),
                                message: e.message.clone(),
                            });
                            false
                        }
                    }
                };
                if kept {
                    match (jdbc.as_deref_mut(), prepared.as_mut()) {
                        (Some(p), Some(prep)) => p.add(prep, origin.len(), &rec),
                        _ => records.push(rec),
                    }
                    origin.push(ri);
                }
            }
            Err((stage, class, e)) => failures.push(Refused {
                index: ri,
                stage,
                class_name: class.to_string(),
                exception_class: e.class_name().to_string(),
                message: e.message.clone(),
            }),
        }
    }
    if !batch_topics.is_empty() {
        let mut t = topics.lock().unwrap_or_else(|p| p.into_inner());
        for topic in batch_topics {
            if !t.contains(topic) {
                t.insert(topic.to_string());
            }
        }
    }
    Ok(Gathered {
        raw,
        records,
        origin,
        failures,
        prepared,
    })
}

/// Hand a batch to the connector; retriable failures are tried again (not
/// dead-lettered). `Ok(true)`: the batch is written (S3: an upload finished).
#[allow(clippy::too_many_arguments)]
async fn put_batch(
    sink: &mut Sink,
    records: &[SinkRecord],
    prepared: Option<&Prepared>,
    origin: &[usize],
    raw: &[rdkafka::message::BorrowedMessage<'_>],
    reporter: &Reporter,
    connector: &str,
    task: i32,
    control: &watch::Receiver<Target>,
) -> Result<bool, String> {
    loop {
        let r = match sink {
            Sink::File(f) => f.put(records).map(|_| false),
            Sink::S3(s) => s.put(records).await,
            Sink::Jdbc(_) if origin.is_empty() => Ok(false),
            Sink::Jdbc(j) => match match prepared {
                Some(p) => j.put_prepared(p).await,
                None => j.put(records).await,
            } {
                Ok(rejected) => {
                    for rj in rejected {
                        let Some(m) = origin.get(rj.index).and_then(|i| raw.get(*i)) else {
                            continue;
                        };
                        let rr = RawRecord::of(m);
                        let f = Failure {
                            stage: Stage::TaskPut,
                            class_name: connectors::JDBC_SINK,
                            exception_class: "java.sql.SQLException",
                            message: &rj.message,
                        };
                        reporter.report(&f, &rr).await?;
                    }
                    Ok(true)
                }
                Err(e) => Err(e),
            },
        };
        match r {
            Ok(u) => return Ok(u),
            Err(TaskError::Retriable(m)) => {
                tracing::warn!(connector = %connector, task, error = %m, "put failed; retrying");
                if *control.borrow() == Target::Stopped {
                    return Err(m);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(TaskError::Fatal(m)) => return Err(m),
        }
    }
}

/// Commit `offsets` (next offset to read) for the partitions this consumer still owns.
fn commit<C: ConsumerContext>(
    consumer: &StreamConsumer<C>,
    offsets: &BTreeMap<(String, i32), i64>,
    mode: CommitMode,
) {
    if offsets.is_empty() {
        return;
    }
    let owned: BTreeSet<(String, i32)> = consumer
        .assignment()
        .map(|a| {
            a.elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect()
        })
        .unwrap_or_default();
    let mut tpl = TopicPartitionList::new();
    for ((t, p), o) in offsets {
        if owned.contains(&(t.clone(), *p)) {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
        }
    }
    if tpl.count() == 0 {
        return;
    }
    if let Err(e) = consumer.commit(&tpl, mode) {
        tracing::warn!(error = %e, "offset commit failed; it will be retried with the next one");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_client_keys_are_renamed_or_ignored() {
        assert_eq!(
            java_client_key("max.poll.records", "10000"),
            JavaKey::Worker
        );
        assert_eq!(java_client_key("key.deserializer", "x"), JavaKey::Ignored);
        assert_eq!(java_client_key("fetch.min.bytes", "1"), JavaKey::Same);
        assert_eq!(
            java_client_key(
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.RangeAssignor"
            ),
            JavaKey::As("partition.assignment.strategy", "range".into())
        );
    }
}
