//! KafkaStreams: runs a topology against brokers with librdkafka (the `rdkafka` crate on
//! Debian's librdkafka 2.0.2). One stream thread per instance: a group consumer
//! (group.id = application.id) reads every source and repartition topic; a task per
//! partition number owns its RocksDB stores; one producer writes outputs, repartition and
//! changelog records. Commits every `commit.interval.ms`:
//!   at_least_once   flush the producer, commit offsets, apply the stores' writes;
//!   exactly_once_v2 send_offsets_to_transaction + commit_transaction, apply the writes.
//! Rebalances are handled in the loop, not in librdkafka's callback: the callback only
//! queues the event, and the loop commits (with the old generation, before anyone else can
//! own the partitions) and then assigns/unassigns, as Kafka Streams commits in
//! onPartitionsRevoked. A task that reads several topics into one sub-topology (a
//! stream–table join) takes their records in timestamp order ([`crate::merge`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext, NativeClient};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::checkpoint::{self, Offsets};
use crate::config::{Guarantee, StreamsConfig};
use crate::error::{Error, Result};
use crate::merge::{GroupKey, Merger};
use crate::poll::{self, Polled, Record};
use crate::store::{Backend, CachedStore, RocksKv};
use crate::task::{Output, Task, TaskStats};
use crate::topology::{TopicName, Topology};

const TIMEOUT: Duration = Duration::from_secs(30);

/// What a run did (returned when it stops).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunStats {
    /// Records read from the topology's user (non-internal) topics.
    pub input_records: u64,
    pub tasks: TaskStats,
    /// From the first to the last record processed (any topic), ms.
    pub processing_ms: u64,
    pub restored_records: u64,
    pub restore_ms: u64,
    pub commits: u64,
    pub aborts: u64,
}

enum RebalanceEvent {
    Assign(TopicPartitionList),
    Revoke,
    Error(String),
}

struct ConsumerCtx {
    events: Mutex<Vec<RebalanceEvent>>,
    /// Set with every event queued, so that the loop locks `events` only when one waits.
    pending: AtomicBool,
    closing: AtomicBool,
}

impl ConsumerCtx {
    fn take_events(&self) -> Vec<RebalanceEvent> {
        if !self.pending.swap(false, Ordering::SeqCst) {
            return Vec::new();
        }
        match self.events.lock() {
            Ok(mut q) => q.drain(..).collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl ClientContext for ConsumerCtx {}

impl ConsumerContext for ConsumerCtx {
    fn rebalance(
        &self,
        native_client: &NativeClient,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        if self.closing.load(Ordering::SeqCst) {
            // Closing: give everything up at once (what the default callback would do).
            // SAFETY: the client pointer is valid for the duration of the callback.
            unsafe { rdkafka_sys::rd_kafka_assign(native_client.ptr(), std::ptr::null()) };
            return;
        }
        let ev = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                RebalanceEvent::Assign(tpl.clone())
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => RebalanceEvent::Revoke,
            e => RebalanceEvent::Error(format!("{e:?}")),
        };
        if let Ok(mut q) = self.events.lock() {
            q.push(ev);
            self.pending.store(true, Ordering::SeqCst);
        }
    }
}

/// What the producer's delivery reports tell the loop.
#[derive(Default)]
struct Delivery {
    /// Highest offset delivered per changelog partition (the next checkpoint).
    delivered: Mutex<HashMap<(String, i32), i64>>,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

struct ProducerCtx(Arc<Delivery>);

/// The delivery opaque of a changelog record.
const CHANGELOG: usize = 1;

impl ClientContext for ProducerCtx {}

impl ProducerContext for ProducerCtx {
    /// [`CHANGELOG`] for a changelog record (whose delivered offset is checkpointed), else
    /// 0: cheaper than reading every delivered record's topic name back from librdkafka.
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, kind: usize) {
        match result {
            Ok(m) => {
                if kind == CHANGELOG {
                    if let Ok(mut d) = self.0.delivered.lock() {
                        let e = d
                            .entry((m.topic().to_string(), m.partition()))
                            .or_insert(-1);
                        *e = (*e).max(m.offset());
                    }
                }
            }
            Err((e, _)) => {
                self.0.errors.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut l) = self.0.last_error.lock() {
                    *l = Some(e.to_string());
                }
            }
        }
    }
}

type Prod = BaseProducer<ProducerCtx>;

/// A running (or ready to run) streams instance.
pub struct KafkaStreams {
    topology: Topology,
    config: StreamsConfig,
    shutdown: Arc<AtomicBool>,
}

impl KafkaStreams {
    pub fn new(topology: Topology, config: StreamsConfig) -> Self {
        KafkaStreams {
            topology,
            config,
            shutdown: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Set it to stop the instance after a final commit.
    pub fn shutdown_handle(&self) -> Arc<AtomicBool> {
        self.shutdown.clone()
    }

    /// Shuts the instance down (after a final commit) on SIGINT or SIGTERM, as a Kafka
    /// Streams application's shutdown hook does.
    pub fn stop_on_signals(&self) {
        let stop = self.shutdown.clone();
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            });
            stop.store(true, Ordering::SeqCst);
        });
    }

    /// Runs until shut down (or idle, with `exit_when_idle`). Blocks the calling thread.
    pub fn run(self) -> Result<RunStats> {
        Runner::start(self.topology, self.config, self.shutdown)?.run()
    }
}

struct Runner {
    topology: Topology,
    cfg: StreamsConfig,
    shutdown: Arc<AtomicBool>,
    app_dir: PathBuf,
    topics: HashMap<String, (TopicName, bool)>,
    num_tasks: i32,
    /// Records waiting for timestamp order. Declared before `consumer`: its librdkafka
    /// messages must go before the consumer does.
    merge: Merger<Record>,
    /// Partitions paused because their lane holds `buffered.records.per.partition`.
    paused: HashSet<(String, i32)>,
    consumer: BaseConsumer<ConsumerCtx>,
    restorer: BaseConsumer,
    producer: Prod,
    pctx: Arc<Delivery>,
    transactional_id: Option<String>,
    tasks: BTreeMap<i32, Task>,
    checkpoints: HashMap<i32, Offsets>,
    /// Next offset to commit, per topic and partition.
    positions: HashMap<String, BTreeMap<i32, i64>>,
    out: Vec<Output>,
    stats: RunStats,
    uncommitted: bool,
}

fn client_config(cfg: &StreamsConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.bootstrap_servers);
    for (k, v) in &cfg.client {
        c.set(k, v);
    }
    c
}

/// The user's properties win over the library's defaults (set after them).
fn user_overrides(c: &mut ClientConfig, cfg: &StreamsConfig) {
    for (k, v) in &cfg.client {
        c.set(k, v);
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Partition of a repartition record: FNV-1a of the key bytes (any stable hash works:
/// these topics are written and read only by this library).
fn key_partition(key: &[u8], n: i32) -> i32 {
    let mut h: u32 = 0x811c9dc5;
    for b in key {
        h ^= *b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    (h % n.max(1) as u32) as i32
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Borrows the fields `handle` needs one by one, so that the consumer stays borrowed by
/// the message meanwhile.
macro_rules! parts {
    ($s:ident) => {
        Parts {
            tasks: &mut $s.tasks,
            topology: &$s.topology,
            cfg: &$s.cfg,
            topics: &$s.topics,
            positions: &mut $s.positions,
            out: &mut $s.out,
            stats: &mut $s.stats,
        }
    };
}

impl Runner {
    fn start(topology: Topology, cfg: StreamsConfig, shutdown: Arc<AtomicBool>) -> Result<Self> {
        let app = cfg.application_id.clone();
        let app_dir = cfg.state_dir.join(&app);
        std::fs::create_dir_all(&app_dir).map_err(io_err(&app_dir))?;
        tracing::info!(application_id = %app, topology = %topology.describe(&app), guarantee = ?cfg.guarantee, "starting");

        let mut topics = HashMap::new();
        for t in topology.sources.keys().chain(topology.tables.keys()) {
            topics.insert(
                Topology::topic(&app, t),
                (t.clone(), matches!(t, TopicName::User(_))),
            );
        }

        let consumer_ctx = ConsumerCtx {
            events: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        };
        let mut cc = client_config(&cfg);
        cc.set("group.id", &app)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", "10000")
            // librdkafka stops fetching a partition once it holds queued.min.messages
            // (100,000 by default); on a backlog that left this loop waiting two thirds of
            // the time (bench-streams: ~90k events/s with the default, ~190k with this).
            // Memory stays bounded by queued.max.messages.kbytes per partition.
            .set("queued.min.messages", "1000000");
        let groups: Vec<Vec<String>> = topology
            .co_read_groups()
            .iter()
            .map(|g| g.iter().map(|t| Topology::topic(&app, t)).collect())
            .collect();
        if !groups.is_empty() {
            // Timestamp order across topics waits for a lane only until its end is known.
            // Only then: an EOF each time a fetch catches up costs the others for nothing.
            cc.set("enable.partition.eof", "true");
            tracing::info!(groups = ?groups, max_task_idle = ?cfg.max_task_idle, "topics read in timestamp order");
        }
        user_overrides(&mut cc, &cfg);
        let consumer: BaseConsumer<ConsumerCtx> = cc.create_with_context(consumer_ctx)?;
        let restorer: BaseConsumer = client_config(&cfg)
            .set("group.id", format!("{app}-restore"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "10")
            .create()?;

        // Tasks: as many as the largest user source topic has partitions.
        let mut num_tasks = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        for t in topology.user_source_topics() {
            loop {
                let md = consumer.fetch_metadata(Some(&t), Duration::from_secs(10))?;
                let n = md
                    .topics()
                    .first()
                    .filter(|m| m.error().is_none())
                    .map(|m| m.partitions().len())
                    .unwrap_or(0);
                if n > 0 {
                    num_tasks = num_tasks.max(n as i32);
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::Topology(format!("source topic {t} does not exist")));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        if num_tasks == 0 {
            return Err(Error::Topology("the topology reads no topic".into()));
        }
        create_internal_topics(&topology, &cfg, num_tasks)?;

        let pctx = Arc::new(Delivery::default());
        let transactional_id = match cfg.guarantee {
            Guarantee::ExactlyOnceV2 => Some(format!("{app}-{}", process_id(&app_dir)?)),
            Guarantee::AtLeastOnce => None,
        };
        let producer = new_producer(&cfg, &pctx, transactional_id.as_deref())?;

        let mut subs: Vec<String> = topics.keys().cloned().collect();
        subs.sort();
        let refs: Vec<&str> = subs.iter().map(|s| s.as_str()).collect();
        consumer.subscribe(&refs)?;
        let merge = Merger::new(groups, cfg.max_task_idle);
        Ok(Runner {
            topology,
            cfg,
            shutdown,
            app_dir,
            topics,
            num_tasks,
            merge,
            paused: HashSet::new(),
            consumer,
            restorer,
            producer,
            pctx,
            transactional_id,
            tasks: BTreeMap::new(),
            checkpoints: HashMap::new(),
            positions: HashMap::new(),
            out: Vec::with_capacity(64),
            stats: RunStats::default(),
            uncommitted: false,
        })
    }

    fn run(mut self) -> Result<RunStats> {
        let mut last_commit = Instant::now();
        let mut first_record: Option<Instant> = None;
        let mut last_record: Option<Instant> = None;
        let mut last_activity = Instant::now();
        let mut assigned_once = false;
        let mut since_poll = 0u32;
        loop {
            if self.shutdown.load(Ordering::SeqCst) {
                break;
            }
            let got = match poll::poll(&self.consumer, Duration::from_millis(50)) {
                None => false,
                Some(Polled::Error(e)) => {
                    tracing::warn!(error = %e, "consumer error");
                    false
                }
                Some(Polled::Eof { topic, partition }) => {
                    if let Some(k) = self.merge.eof(&topic, partition) {
                        self.drain_group(k)?;
                    }
                    false
                }
                Some(Polled::Record(r)) => {
                    self.take(r)?;
                    true
                }
            };
            if self.merge.idle != crate::merge::TaskIdle::UntilCaughtUp {
                for k in self.merge.due(Instant::now()) {
                    self.drain_group(k)?;
                }
            }
            // One clock read an iteration: on this loop's per-record path it was a tenth of
            // the CPU when read for each of the checks below.
            let now = Instant::now();
            // Outputs of what was processed: a polled record's, or those of records a
            // partition EOF (or the end of an idle wait) released from their group.
            if !self.out.is_empty() {
                let outs = std::mem::take(&mut self.out);
                for o in &outs {
                    self.send(o)?;
                }
                self.out = outs;
                self.out.clear();
            }
            if got {
                first_record.get_or_insert(now);
                last_record = Some(now);
                last_activity = now;
                since_poll += 1;
                if since_poll >= 1000 {
                    self.producer.poll(Duration::ZERO);
                    since_poll = 0;
                }
            } else {
                self.producer.poll(Duration::ZERO);
            }
            let events = self.consumer.context().take_events();
            for ev in events {
                self.on_rebalance(ev)?;
                assigned_once = true;
                last_activity = Instant::now();
            }
            if self.uncommitted && now.duration_since(last_commit) >= self.cfg.commit_interval {
                self.commit()?;
                last_commit = Instant::now();
            }
            if let Some(idle) = self.cfg.exit_when_idle {
                if assigned_once
                    && !self.tasks.is_empty()
                    && now.saturating_duration_since(last_activity) >= idle
                {
                    tracing::info!("idle: stopping");
                    break;
                }
            }
        }
        if self.uncommitted {
            self.commit()?;
        }
        // Buffered messages go before the consumer closes.
        self.merge.assign(&[]);
        if let (Some(a), Some(b)) = (first_record, last_record) {
            self.stats.processing_ms = b.duration_since(a).as_millis() as u64;
        }
        for t in self.tasks.values() {
            self.stats.tasks.add(&t.stats);
        }
        // Leave the group here, answering the revocation from this loop: a revocation left
        // for rd_kafka_consumer_close (when the consumer is dropped) can deadlock in
        // librdkafka 2.0.2's assign-from-callback during close.
        self.consumer.unsubscribe();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let _ = self.consumer.poll(Duration::from_millis(50));
            let events = self.consumer.context().take_events();
            if !events.is_empty() {
                let _ = self.consumer.unassign();
                break;
            }
        }
        self.consumer
            .context()
            .closing
            .store(true, Ordering::SeqCst);
        tracing::info!(stats = ?self.stats, "stopped");
        Ok(self.stats)
    }

    /// One polled record: opens its task if needed, then processes it, or queues it in its
    /// group when it waits for timestamp order.
    fn take(&mut self, r: Record) -> Result<()> {
        let p = r.partition();
        // The topic is looked up once a record (by `handle`, or for its event time below);
        // a record of a topic not read here is dropped there, and opens no task.
        if !self.tasks.contains_key(&p) {
            if !self.topics.contains_key(r.topic()) {
                return Ok(());
            }
            let t = self.open_task(p)?;
            self.tasks.insert(p, t);
        }
        let Some((k, lane)) = self.merge.lane(r.topic(), p) else {
            self.uncommitted |= handle(&r, &mut parts!(self))?;
            return Ok(());
        };
        let Some((name, _)) = self.topics.get(r.topic()) else {
            return Ok(());
        };
        let ts = self
            .topology
            .event_time(name, r.key(), r.payload(), r.timestamp());
        self.merge.push(k, lane, ts, r);
        if let Some((topic, n)) = self.merge.buffered(k, lane) {
            if n >= self.cfg.buffered_records_per_partition
                && self.paused.insert((topic.to_string(), p))
            {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(topic, p);
                self.consumer.pause(&tpl)?;
            }
        }
        self.drain_group(k)
    }

    /// Processes a group's records for as long as timestamp order allows; resumes a paused
    /// lane once it has room again.
    fn drain_group(&mut self, k: GroupKey) -> Result<()> {
        // One clock read a call: the records released now are all due at this instant.
        let now = Instant::now();
        while let Some(r) = self.merge.next(k, now) {
            self.uncommitted |= handle(&r, &mut parts!(self))?;
        }
        if self.paused.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        let limit = self.cfg.buffered_records_per_partition;
        for (lane, topic) in self.merge.lanes_of(k).into_iter().enumerate() {
            let room = self
                .merge
                .buffered(k, lane)
                .is_some_and(|(_, n)| n < limit / 2 + 1);
            if room && self.paused.remove(&(topic.clone(), k.1)) {
                tpl.add_partition(&topic, k.1);
            }
        }
        if tpl.count() > 0 {
            self.consumer.resume(&tpl)?;
        }
        Ok(())
    }

    /// After a seek or a revocation: drops buffered records (they are fetched again from the
    /// position sought) and resumes paused partitions.
    fn forget_buffered(&mut self) {
        self.merge.clear();
        let mut tpl = TopicPartitionList::new();
        for (t, p) in self.paused.drain() {
            tpl.add_partition(&t, p);
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.resume(&tpl) {
                tracing::debug!(error = %e, "resume after a seek");
            }
        }
    }

    fn send(&self, o: &Output) -> Result<()> {
        // Changelog records are the ones with a partition chosen by the task.
        let kind = if o.partition.is_some() { CHANGELOG } else { 0 };
        let mut rec: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&o.topic, kind).timestamp(o.ts.max(0));
        if let Some(k) = &o.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(v) = &o.value {
            rec = rec.payload(v.as_slice());
        }
        let part = match o.partition {
            Some(p) => Some(p),
            None if o.repartition => Some(key_partition(
                o.key.as_deref().unwrap_or_default(),
                self.num_tasks,
            )),
            None => None,
        };
        if let Some(p) = part {
            rec = rec.partition(p);
        }
        loop {
            match self.producer.send(rec) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    fn offsets_tpl(&self) -> Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for (t, ps) in &self.positions {
            for (p, o) in ps {
                tpl.add_partition_offset(t, *p, Offset::Offset(*o))?;
            }
        }
        Ok(tpl)
    }

    /// Commits everything processed since the last commit; on an exactly-once failure the
    /// transaction is aborted and the tasks go back to the last committed state.
    fn commit(&mut self) -> Result<()> {
        let mut cl = Vec::new();
        let now = now_ms();
        for t in self.tasks.values_mut() {
            t.prepare_commit(&self.cfg.application_id, now, &mut cl);
        }
        for o in &cl {
            self.send(o)?;
        }
        let tpl = self.offsets_tpl()?;
        match self.cfg.guarantee {
            Guarantee::AtLeastOnce => {
                // Not everything delivered in time: stop rather than commit offsets past
                // records that may be lost (a restart processes them again).
                self.producer.flush(TIMEOUT)?;
                self.producer.poll(Duration::ZERO);
                if self.pctx.errors.swap(0, Ordering::SeqCst) > 0 {
                    let e = self
                        .pctx
                        .last_error
                        .lock()
                        .ok()
                        .and_then(|l| l.clone())
                        .unwrap_or_default();
                    return Err(Error::Topology(format!("produce failed: {e}")));
                }
                // The outputs and changelog are written: the stores follow them even if the
                // offset commit fails (then input is processed again: at least once).
                self.apply_commit()?;
                if tpl.count() > 0 {
                    if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
                        tracing::warn!(error = %e, "offset commit failed (records will be processed again)");
                    }
                }
                self.positions.clear();
                self.stats.commits += 1;
            }
            Guarantee::ExactlyOnceV2 => {
                let res = (|| -> Result<()> {
                    let gm = self
                        .consumer
                        .group_metadata()
                        .ok_or_else(|| Error::Topology("no consumer group metadata".into()))?;
                    if tpl.count() > 0 {
                        self.producer
                            .send_offsets_to_transaction(&tpl, &gm, TIMEOUT)?;
                    }
                    self.producer.commit_transaction(TIMEOUT)?;
                    Ok(())
                })();
                match res {
                    Ok(()) => {
                        self.producer.poll(Duration::ZERO);
                        self.apply_commit()?;
                        self.positions.clear();
                        self.stats.commits += 1;
                        self.producer.begin_transaction()?;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "transaction commit failed: aborting and rewinding to the last commit");
                        self.stats.aborts += 1;
                        self.recover()?;
                    }
                }
            }
        }
        self.uncommitted = false;
        Ok(())
    }

    /// Applies the committed writes to the stores and writes the checkpoints.
    fn apply_commit(&mut self) -> Result<()> {
        let delivered = self
            .pctx
            .delivered
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        for (p, t) in self.tasks.iter_mut() {
            t.finish_commit()?;
            let ck = self.checkpoints.entry(*p).or_default();
            let mut changed = false;
            for name in t.stores.keys() {
                let topic = Topology::changelog_topic(&self.cfg.application_id, name);
                if let Some(o) = delivered.get(&(topic.clone(), *p)) {
                    changed |= ck.insert((topic, *p), o + 1) != Some(o + 1);
                }
            }
            if changed {
                checkpoint::write(&self.app_dir.join(p.to_string()).join(".checkpoint"), ck)?;
            }
        }
        Ok(())
    }

    /// After a failed transaction: abort (or replace a fenced producer), forget uncommitted
    /// state, catch the stores up with the changelog, and seek back to the committed offsets.
    fn recover(&mut self) -> Result<()> {
        if let Err(e) = self.producer.abort_transaction(TIMEOUT) {
            tracing::warn!(error = %e, "abort failed: replacing the producer");
            self.producer = new_producer(&self.cfg, &self.pctx, self.transactional_id.as_deref())?;
        }
        self.positions.clear();
        let parts: Vec<i32> = self.tasks.keys().copied().collect();
        for p in parts {
            if let Some(mut t) = self.tasks.remove(&p) {
                t.rollback()?;
                self.restore(&mut t)?;
                self.tasks.insert(p, t);
            }
        }
        self.forget_buffered();
        let assignment = self.consumer.assignment()?;
        let committed = self.consumer.committed_offsets(assignment, TIMEOUT)?;
        for e in committed.elements() {
            let off = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            if let Err(err) = self.consumer.seek(e.topic(), e.partition(), off, TIMEOUT) {
                tracing::warn!(topic = e.topic(), partition = e.partition(), error = %err, "seek failed");
            }
        }
        self.producer.begin_transaction()?;
        Ok(())
    }

    fn on_rebalance(&mut self, ev: RebalanceEvent) -> Result<()> {
        match ev {
            RebalanceEvent::Revoke => {
                tracing::info!("partitions revoked: committing");
                if self.uncommitted {
                    self.commit()?;
                }
                self.positions.clear();
                self.forget_buffered();
                self.merge.assign(&[]);
                self.consumer.unassign()?;
            }
            RebalanceEvent::Assign(tpl) => {
                let mut parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                parts.sort();
                parts.dedup();
                tracing::info!(tasks = ?parts, "partitions assigned");
                let gone: Vec<i32> = self
                    .tasks
                    .keys()
                    .filter(|p| !parts.contains(p))
                    .copied()
                    .collect();
                for p in gone {
                    if let Some(t) = self.tasks.remove(&p) {
                        self.stats.tasks.add(&t.stats);
                    }
                }
                for p in parts {
                    match self.tasks.remove(&p) {
                        Some(mut t) => {
                            self.restore(&mut t)?;
                            self.tasks.insert(p, t);
                        }
                        None => {
                            let t = self.open_task(p)?;
                            self.tasks.insert(p, t);
                        }
                    }
                }
                self.forget_buffered();
                let assigned: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                self.merge.assign(&assigned);
                let tpl = start_positions(&self.consumer, tpl);
                self.consumer.assign(&tpl)?;
            }
            RebalanceEvent::Error(e) => {
                tracing::warn!(error = %e, "rebalance error: unassigning");
                self.consumer.unassign()?;
            }
        }
        Ok(())
    }

    fn open_task(&mut self, p: i32) -> Result<Task> {
        let dir = self.app_dir.join(p.to_string());
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut stores = BTreeMap::new();
        for spec in self.topology.stores() {
            let path = dir.join(&spec.name);
            stores.insert(
                spec.name.clone(),
                CachedStore::new(
                    spec.clone(),
                    Backend::Rocks(RocksKv::open(&path, &spec.name)?),
                )?,
            );
        }
        self.checkpoints
            .insert(p, checkpoint::read(&dir.join(".checkpoint")));
        let mut t = Task::new(p, stores);
        self.restore(&mut t)?;
        Ok(t)
    }

    /// Catches the task's stores up with their changelogs from the checkpoint (or from the
    /// beginning when there is none, or when it points past the log's end).
    fn restore(&mut self, task: &mut Task) -> Result<()> {
        let p = task.partition;
        let dir = self.app_dir.join(p.to_string());
        let started = Instant::now();
        let mut total = 0u64;
        let ck = self.checkpoints.entry(p).or_default();
        let names: Vec<String> = task.stores.keys().cloned().collect();
        for name in names {
            let topic = Topology::changelog_topic(&self.cfg.application_id, &name);
            let (lo, hi) = self.restorer.fetch_watermarks(&topic, p, TIMEOUT)?;
            let mut start = ck.get(&(topic.clone(), p)).copied();
            if let Some(s) = start {
                if s > hi || s < lo {
                    tracing::warn!(store = %name, partition = p, checkpoint = s, lo, hi, "checkpoint outside the changelog: restoring from scratch");
                    let spec = task
                        .stores
                        .remove(&name)
                        .map(|s| s.spec)
                        .ok_or_else(|| Error::Topology("store".into()))?;
                    let path = dir.join(&name);
                    RocksKv::destroy(&path)?;
                    task.stores.insert(
                        name.clone(),
                        CachedStore::new(spec, Backend::Rocks(RocksKv::open(&path, &name)?))?,
                    );
                    start = None;
                }
            }
            let from = start.unwrap_or(lo);
            if from >= hi {
                ck.insert((topic.clone(), p), hi.max(from));
                continue;
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, p, Offset::Offset(from))?;
            self.restorer.assign(&tpl)?;
            let store = task
                .stores
                .get_mut(&name)
                .ok_or_else(|| Error::Topology("store".into()))?;
            let mut batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(10_000);
            let mut next = from;
            let mut quiet = Instant::now();
            loop {
                match self.restorer.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) => {
                        batch.push((
                            m.key().unwrap_or_default().to_vec(),
                            m.payload().map(|v| v.to_vec()),
                        ));
                        next = m.offset() + 1;
                        total += 1;
                        quiet = Instant::now();
                        if batch.len() >= 10_000 {
                            store.restore_batch(&batch)?;
                            batch.clear();
                        }
                        if next >= hi {
                            // The end measured before starting: no need to wait for the
                            // EOF event (a fetch that the broker holds fetch.wait.max.ms).
                            break;
                        }
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => break,
                    Some(Err(e)) => tracing::warn!(error = %e, "restore consumer error"),
                    None => {
                        if next >= hi || quiet.elapsed() > Duration::from_secs(30) {
                            break;
                        }
                    }
                }
            }
            store.restore_batch(&batch)?;
            store.reload_stream_time()?;
            ck.insert((topic.clone(), p), next.max(hi));
            self.restorer.unassign()?;
        }
        checkpoint::write(&dir.join(".checkpoint"), ck)?;
        let ms = started.elapsed().as_millis() as u64;
        if total > 0 {
            tracing::info!(
                partition = p,
                records = total,
                ms,
                "restored stores from changelogs"
            );
        }
        self.stats.restored_records += total;
        self.stats.restore_ms += ms;
        Ok(())
    }
}

/// The fields a record touches (borrowed apart from the consumer the message borrows).
struct Parts<'a> {
    tasks: &'a mut BTreeMap<i32, Task>,
    topology: &'a Topology,
    cfg: &'a StreamsConfig,
    topics: &'a HashMap<String, (TopicName, bool)>,
    positions: &'a mut HashMap<String, BTreeMap<i32, i64>>,
    out: &'a mut Vec<Output>,
    stats: &'a mut RunStats,
}

/// Where each newly assigned partition starts: its committed offset, or (never committed)
/// its log start as a number. Left to librdkafka, a partition its group never committed
/// waits out librdkafka 2.0.2's 100 ms back-off (it takes "no committed offset" for an
/// error) before the earliest offset is even looked up. On any failure the partition is
/// left as it was, and librdkafka's own lookup runs.
fn start_positions<C: ConsumerContext>(
    c: &BaseConsumer<C>,
    tpl: TopicPartitionList,
) -> TopicPartitionList {
    let committed = match c.committed_offsets(tpl.clone(), TIMEOUT) {
        Ok(t) => t,
        Err(e) => {
            tracing::debug!(error = %e, "committed offsets not known; librdkafka looks them up");
            return tpl;
        }
    };
    let mut out = tpl;
    for e in committed.elements() {
        let start = match (e.error(), e.offset()) {
            (Ok(()), Offset::Offset(o)) if o >= 0 => o,
            (Ok(()), Offset::Invalid) => {
                match c.fetch_watermarks(e.topic(), e.partition(), TIMEOUT) {
                    Ok((low, _)) if low >= 0 => low,
                    _ => continue,
                }
            }
            _ => continue,
        };
        let _ = out.set_partition_offset(e.topic(), e.partition(), Offset::Offset(start));
    }
    out
}

/// Processes one consumed record; true when it belonged to the topology.
fn handle(m: &Record, x: &mut Parts<'_>) -> Result<bool> {
    let topic = m.topic();
    let Some((name, user)) = x.topics.get(topic) else {
        return Ok(false);
    };
    let p = m.partition();
    let Some(task) = x.tasks.get_mut(&p) else {
        return Ok(false);
    };
    let ts = m.timestamp();
    task.process(
        x.topology,
        &x.cfg.application_id,
        name,
        m.key(),
        m.payload(),
        ts,
        x.cfg.dead_letter_topic.as_deref(),
        x.out,
    )?;
    if *user {
        x.stats.input_records += 1;
    }
    match x.positions.get_mut(topic) {
        Some(ps) => {
            ps.insert(p, m.offset() + 1);
        }
        None => {
            x.positions
                .insert(topic.to_string(), BTreeMap::from([(p, m.offset() + 1)]));
        }
    }
    Ok(true)
}

fn new_producer(cfg: &StreamsConfig, ctx: &Arc<Delivery>, txn_id: Option<&str>) -> Result<Prod> {
    let mut c = client_config(cfg);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5");
    if let Some(id) = txn_id {
        c.set("transactional.id", id)
            .set("transaction.timeout.ms", "10000");
    }
    let p: Prod = c.create_with_context(ProducerCtx(ctx.clone()))?;
    if txn_id.is_some() {
        p.init_transactions(TIMEOUT)?;
        p.begin_transaction()?;
    }
    Ok(p)
}

/// The instance's id, kept in the state directory so that a restarted instance reuses its
/// transactional.id and fences (and aborts) what its previous incarnation left open.
fn process_id(app_dir: &Path) -> Result<String> {
    let path = app_dir.join("process-id");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim();
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Ok(s.to_string());
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::write(&path, &id).map_err(io_err(&path))?;
    Ok(id)
}

/// A current-thread runtime for the few async calls (admin, Schema Registry) the stream
/// thread makes, blocking on each.
pub(crate) fn blocking_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            path: "tokio runtime".into(),
            source: e,
        })
}

fn create_internal_topics(topology: &Topology, cfg: &StreamsConfig, partitions: i32) -> Result<()> {
    let app = &cfg.application_id;
    let mut topics: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for t in topology.repartition_topics(app) {
        // As Kafka Streams: kept regardless of the records' (event) timestamps.
        topics.push((
            t,
            vec![
                ("cleanup.policy".into(), "delete".into()),
                ("retention.ms".into(), "-1".into()),
            ],
        ));
    }
    for s in topology.stores() {
        let mut conf = vec![];
        match s.windows {
            Some(w) => {
                conf.push(("cleanup.policy".to_string(), "compact,delete".to_string()));
                conf.push(("retention.ms".to_string(), w.retention_ms().to_string()));
            }
            None => conf.push(("cleanup.policy".to_string(), "compact".to_string())),
        }
        topics.push((Topology::changelog_topic(app, &s.name), conf));
    }
    if topics.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = client_config(cfg).create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, conf)| {
            let mut t = NewTopic::new(
                name,
                partitions,
                TopicReplication::Fixed(cfg.replication_factor),
            );
            for (k, v) in conf {
                t = t.set(k, v);
            }
            t
        })
        .collect();
    let results = blocking_runtime()?.block_on(
        admin.create_topics(&new, &AdminOptions::new().operation_timeout(Some(TIMEOUT))),
    )?;
    for r in results {
        match r {
            Ok(t) => tracing::info!(topic = %t, partitions, "created internal topic"),
            Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %t, "internal topic exists")
            }
            Err((t, e)) => return Err(Error::Topology(format!("creating {t}: {e:?}"))),
        }
    }
    Ok(())
}
