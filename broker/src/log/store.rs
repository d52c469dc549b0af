//! `LogStore`: the partitions this broker holds, over a `PartitionStore`
//! (RocksDB in the broker, memory in tests): recovery on open, appends
//! (leader and replica), reads for consumers and followers, truncation,
//! timestamps and retention. Every path keeps the partition's transaction
//! state (`txn`) and its persisted aborted-transaction index in step with the
//! batches. Offsets are assigned under the partition's lock and the bytes
//! handed to the group-commit writer (`writer`).

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};

use bytes::{Bytes, BytesMut};
use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::disk::{DiskGuard, FreeSpaceLimits, Refusal};
use super::error::LogError;
use super::hw::Role;
use super::memory::MemStore;
use super::partition::*;
use super::partition_store::{PartitionStore, Registered};
use super::rocks::RocksStore;
use super::txn::TxnState;
use super::writer::*;
use fjord_kafka::batch::{self, BatchHeader};

/// Result of an append: base offset assigned (or the original one for a
/// duplicate), and a receiver that fires when the batch is durable-in-WAL.
pub struct Appended {
    pub base_offset: i64,
    /// Last offset of the appended (or duplicate) batches: acks=all waits for HW > this.
    pub last_offset: i64,
    pub log_start: i64,
    pub done: oneshot::Receiver<Result<(), String>>,
}

/// What a read returns, as `LogStore::plan` decided it.
enum Planned {
    /// The batches, shared from the partition's tail cache.
    Cached(Vec<Bytes>),
    /// Stored batches with base offsets in `from..to`, `bytes` in all.
    Stored { from: i64, to: i64, bytes: usize },
}

/// The broker's partition store.
pub struct LogStore {
    db: Arc<dyn PartitionStore>,
    parts: DashMap<(String, i32), Arc<Partition>>,
    next_id: AtomicU32,
    writer: Mutex<Option<mpsc::Sender<WriteJob>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The free-space guard and the storage-failure latch (`disk`).
    disk: Arc<DiskGuard>,
    /// Data was deleted (topic deletion, retention) since the last
    /// `reclaim`: below the floor, the monitor flushes to free its space.
    reclaim_wanted: std::sync::atomic::AtomicBool,
}

impl LogStore {
    /// Open (or create) the RocksDB store under `dir` and recover every partition.
    pub fn open(dir: &Path, flush: FlushPolicy) -> Result<Arc<LogStore>, LogError> {
        LogStore::open_guarded(dir, flush, FreeSpaceLimits::OFF)
    }

    /// `open`, with appends refused below the free-space floor `limits`.
    pub fn open_guarded(
        dir: &Path,
        flush: FlushPolicy,
        limits: FreeSpaceLimits,
    ) -> Result<Arc<LogStore>, LogError> {
        let db = Arc::new(RocksStore::open(dir)?);
        LogStore::start(db, flush, Arc::new(DiskGuard::new(dir, limits)))
    }

    /// A store in memory (unit tests): same logic, no files.
    pub fn in_memory(flush: FlushPolicy) -> Result<Arc<LogStore>, LogError> {
        LogStore::with_store(Arc::new(MemStore::new()), flush)
    }

    /// Run the log over `db`: recover every partition, start the writer.
    pub fn with_store(
        db: Arc<dyn PartitionStore>,
        flush: FlushPolicy,
    ) -> Result<Arc<LogStore>, LogError> {
        let disk = Arc::new(DiskGuard::new(Path::new("."), FreeSpaceLimits::OFF));
        LogStore::start(db, flush, disk)
    }

    fn start(
        db: Arc<dyn PartitionStore>,
        flush: FlushPolicy,
        disk: Arc<DiskGuard>,
    ) -> Result<Arc<LogStore>, LogError> {
        let store = LogStore {
            db: db.clone(),
            parts: DashMap::new(),
            next_id: AtomicU32::new(1),
            writer: Mutex::new(None),
            writer_thread: Mutex::new(None),
            disk: disk.clone(),
            reclaim_wanted: std::sync::atomic::AtomicBool::new(false),
        };
        store.recover()?;
        let (tx, rx) = mpsc::channel::<WriteJob>();
        let handle = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer_loop(db, rx, flush, disk))
            .map_err(|e| LogError::Meta(format!("spawn writer: {e}")))?;
        *store.writer.lock() = Some(tx);
        *store.writer_thread.lock() = Some(handle);
        Ok(Arc::new(store))
    }

    fn recover(&self) -> Result<(), LogError> {
        let mut max_id = 0u32;
        let found = self.db.registered()?;
        for r in &found {
            max_id = max_id.max(r.id);
        }
        for Registered { topic, index, id } in found {
            let p = Partition::new(id, topic.clone(), index);
            {
                let mut s = p.state.lock();
                if let Some(v) = self.db.log_start(id)? {
                    s.log_start = v;
                }
                // leader epochs
                s.epochs.extend(self.db.epochs(id)?);
                let mut next = s.log_start;
                self.db.scan(id, 0, i64::MAX, &mut |v| {
                    let h = batch::parse_header(v)?;
                    let base = h.base_offset;
                    let last = base + h.last_offset_delta as i64;
                    if base < s.log_start {
                        // Left behind by a retention run interrupted before DeleteRange.
                        return Ok(true);
                    }
                    s.index_batch(&h, base, last, v.len());
                    apply_txn(&mut s.txn, &h, v, base, last);
                    next = last + 1;
                    Ok(true)
                })?;
                s.next_offset = next.max(s.log_start);
                self.reconcile_aborted(id, &mut s)?;
                // Kafka's rule: the HW is the checkpointed one (log start
                // without one), never the log end: records above it were
                // never known committed. A leader moves it on from there.
                s.hw = self
                    .db
                    .hw_checkpoint(id)?
                    .unwrap_or(s.log_start)
                    .clamp(s.log_start, s.next_offset);
                s.durable = s.next_offset;
                // Forget the transactions decided below the HW (all replayed).
                let (hw, start) = (s.hw, s.log_start);
                s.txn.last_stable(hw, start);
                // No role until the metadata gives one: as the initial solo
                // leader a stray recompute would lift the HW to the log end.
                s.repl.role = Role::Follower;
            }
            tracing::info!(topic = %p.topic, partition = index, log_end = p.offsets().log_end, "recovered partition");
            self.parts.insert((topic, index), Arc::new(p));
        }
        self.next_id.store(max_id + 1, Ordering::SeqCst);
        Ok(())
    }

    /// Recovery: the aborted index rebuilt from the log's markers, checked
    /// against the persisted one: entries at or past the log end (their
    /// marker lost in a crash) are dropped, entries whose marker is no
    /// longer in the log are kept, markers without an entry get one.
    fn reconcile_aborted(&self, id: u32, s: &mut PState) -> Result<(), LogError> {
        let stored = self.db.aborted(id)?;
        if stored
            .last()
            .is_some_and(|a| a.last_offset >= s.next_offset)
        {
            self.db.drop_aborted(id, s.next_offset, i64::MAX)?;
        }
        let known: std::collections::HashSet<i64> = stored.iter().map(|a| a.last_offset).collect();
        for a in s.txn.aborted_all() {
            if !known.contains(&a.last_offset) {
                self.db.put_aborted(id, a)?;
            }
        }
        for a in stored {
            if a.last_offset >= s.log_start && a.last_offset < s.next_offset {
                s.txn.restore_aborted(a);
            }
        }
        Ok(())
    }

    /// Rebuild `s`'s transaction state from its log (a truncation below
    /// what memory can undo).
    fn rebuild_txn(&self, id: u32, s: &mut PState) -> Result<(), LogError> {
        let mut txn = TxnState::default();
        self.db.scan(id, s.log_start, s.next_offset, &mut |v| {
            let h = batch::parse_header(v)?;
            let base = h.base_offset;
            apply_txn(&mut txn, &h, v, base, base + h.last_offset_delta as i64);
            Ok(true)
        })?;
        s.txn = txn;
        Ok(())
    }

    /// The partition's log if this broker holds it.
    pub fn get(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.parts
            .get(&(topic.to_string(), index))
            .map(|p| p.value().clone())
    }

    /// Every partition held locally.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.parts.iter().map(|p| p.value().clone()).collect()
    }

    /// Create the partition's log if missing (idempotent).
    pub fn ensure(&self, topic: &str, index: i32) -> Result<Arc<Partition>, LogError> {
        if let Some(p) = self.get(topic, index) {
            return Ok(p);
        }
        let entry = self.parts.entry((topic.to_string(), index));
        match entry {
            dashmap::Entry::Occupied(o) => Ok(o.get().clone()),
            dashmap::Entry::Vacant(v) => {
                let id = self.next_id.fetch_add(1, Ordering::SeqCst);
                self.db.register(topic, index, id)?;
                let p = Arc::new(Partition::new(id, topic.to_string(), index));
                v.insert(p.clone());
                tracing::info!(topic, partition = index, id, "created partition log");
                Ok(p)
            }
        }
    }

    /// Remove a partition and all its data (topic deletion).
    pub fn remove(&self, topic: &str, index: i32) -> Result<(), LogError> {
        let Some((_, p)) = self.parts.remove(&(topic.to_string(), index)) else {
            return Ok(());
        };
        p.deleted.store(true, Ordering::SeqCst);
        self.db.drop_aborted(p.id, 0, i64::MAX)?;
        self.db.remove(topic, index, p.id)?;
        self.reclaim_wanted.store(true, Ordering::Relaxed);
        let mut s = p.state.lock();
        s.offline = true;
        wake(&mut s);
        tracing::info!(topic, partition = index, "deleted partition log");
        Ok(())
    }

    /// The writer's queue and `p`'s state, locked, once `p` is online and
    /// in `role` (NotLeader otherwise).
    fn open_for_append<'a>(
        &self,
        p: &'a Partition,
        role: Role,
    ) -> Result<(mpsc::Sender<WriteJob>, parking_lot::MutexGuard<'a, PState>), LogError> {
        let tx = self.writer.lock().clone().ok_or(LogError::Stopped)?;
        match self.disk.refusal() {
            None => {}
            Some(Refusal::LowSpace) => return Err(LogError::Storage("below its free-space floor")),
            Some(Refusal::Failed) => return Err(LogError::Storage("a write failed")),
        }
        let s = p.state.lock();
        if s.offline || p.deleted.load(Ordering::Relaxed) {
            return Err(LogError::Offline);
        }
        if s.repl.role != role {
            return Err(LogError::NotLeader);
        }
        Ok((tx, s))
    }

    /// Append a produce request's batches for one partition (leader path).
    /// Offsets are assigned here, in call order; the write itself is grouped.
    pub fn append(
        &self,
        p: &Arc<Partition>,
        batches: Vec<(BatchHeader, Bytes)>,
        leader_epoch: i32,
    ) -> Result<Appended, LogError> {
        // Fencing: a replica demoted by a newer state znode takes no more produce.
        let (tx, mut s) = self.open_for_append(p, Role::Leader)?;
        // Idempotence: check every batch before assigning anything.
        let mut dup_of: Option<(i64, i64)> = None;
        for (h, raw) in &batches {
            if h.producer_id < 0 {
                continue;
            }
            let marker = h
                .is_control()
                .then(|| batch::control_marker(raw, h))
                .flatten();
            s.txn.check(h, marker)?;
            if let Some(e) = s.producers.get(&h.producer_id) {
                if h.producer_epoch < e.epoch {
                    return Err(LogError::InvalidProducerEpoch);
                }
                // A transaction marker carries no sequence.
                if h.producer_epoch == e.epoch && !h.is_control() {
                    if let Some(d) = e
                        .recent
                        .iter()
                        .find(|r| r.0 == h.base_sequence && r.1 == h.last_sequence())
                    {
                        dup_of = Some((d.2, d.3));
                        continue;
                    }
                    if let Some(last) = e.recent.back() {
                        let expect = if last.1 == i32::MAX { 0 } else { last.1 + 1 };
                        if h.base_sequence != expect {
                            return Err(LogError::OutOfOrderSequence);
                        }
                    }
                }
            }
        }
        if let Some((base, last)) = dup_of {
            // Acknowledge once more, after whatever is queued before it is written.
            let (dtx, drx) = oneshot::channel();
            let log_start = s.log_start;
            drop(s);
            tx.send(WriteJob {
                entry: None,
                done: Some(dtx),
            })
            .map_err(|_| LogError::Stopped)?;
            return Ok(Appended {
                base_offset: base,
                last_offset: last,
                log_start,
                done: drx,
            });
        }
        if s.epochs
            .keys()
            .next_back()
            .is_none_or(|e| *e < leader_epoch)
            && leader_epoch >= 0
        {
            let at = s.next_offset;
            s.epochs.insert(leader_epoch, at);
            self.db.put_epoch(p.id, leader_epoch, at)?;
        }
        let first_base = s.next_offset;
        let mut jobs = Vec::with_capacity(batches.len());
        for (h, raw) in batches {
            let base = s.next_offset;
            let last = base + h.last_offset_delta as i64;
            let data = batch::patched(&raw, base, leader_epoch.max(0));
            jobs.push(record(&*self.db, &mut s, p, &h, base, last, data)?);
        }
        // Queued under the partition lock, so the writer sees offsets in order.
        let result_rx = send_entries(&tx, jobs)?;
        let log_start = s.log_start;
        let last_offset = s.next_offset - 1;
        drop(s);
        let done = result_rx.ok_or(LogError::Batch(batch::BatchError::Corrupt))?;
        Ok(Appended {
            base_offset: first_base,
            last_offset,
            log_start,
            done,
        })
    }

    /// Append batches fetched from the leader (follower path): offsets and
    /// leader epochs are already assigned, so the bytes are stored verbatim.
    /// Batches wholly below the log end are skipped (a re-fetch after a
    /// reconnect); an overlap is an error (the caller re-truncates), a gap
    /// is not (batches the leader's cleaner removed). Returns the
    /// receiver of the last batch's write, or None if nothing was new.
    pub fn append_replica(
        &self,
        p: &Arc<Partition>,
        batches: Vec<(BatchHeader, Bytes)>,
    ) -> Result<Option<oneshot::Receiver<Result<(), String>>>, LogError> {
        let (tx, mut s) = self.open_for_append(p, Role::Follower)?;
        let mut jobs = Vec::new();
        for (h, data) in batches {
            let base = h.base_offset;
            let last = base + h.last_offset_delta as i64;
            if last < s.next_offset {
                continue;
            }
            // A gap is legitimate: the leader's cleaner removed whole batches
            // (log compaction), as Kafka's follower accepts; an overlap is not.
            if base < s.next_offset {
                return Err(LogError::NonContiguous {
                    expected: s.next_offset,
                    got: base,
                });
            }
            // Leader-epoch cache (KIP-101): first offset of each epoch seen.
            if h.leader_epoch >= 0
                && s.epochs
                    .keys()
                    .next_back()
                    .is_none_or(|e| *e < h.leader_epoch)
            {
                s.epochs.insert(h.leader_epoch, base);
                self.db.put_epoch(p.id, h.leader_epoch, base)?;
            }
            jobs.push(record(&*self.db, &mut s, p, &h, base, last, data)?);
        }
        send_entries(&tx, jobs)
    }

    /// Wait until every write queued so far has been applied (before a truncation).
    pub async fn barrier(&self) -> Result<(), LogError> {
        let tx = self.writer.lock().clone().ok_or(LogError::Stopped)?;
        let (dtx, drx) = oneshot::channel();
        tx.send(WriteJob {
            entry: None,
            done: Some(dtx),
        })
        .map_err(|_| LogError::Stopped)?;
        drx.await
            .map_err(|_| LogError::Stopped)?
            .map_err(LogError::Meta)
    }

    /// Follower: cut the log back to `offset` (KIP-101: the end of the largest
    /// epoch shared with the leader), on a batch boundary at or below it.
    /// Drops the epochs and producer entries that start past the new end so a
    /// later leadership of this replica never answers for truncated batches.
    /// Call after [`LogStore::barrier`], with no appends in flight.
    pub fn truncate(&self, p: &Partition, offset: i64) -> Result<i64, LogError> {
        let mut s = p.state.lock();
        if s.repl.role != Role::Follower {
            return Err(LogError::NotLeader);
        }
        if offset >= s.next_offset {
            return Ok(s.next_offset);
        }
        let end = self.cut(p, &mut s, offset)?;
        tracing::info!(topic = %p.topic, partition = p.index, to = end, "truncated follower log");
        Ok(end)
    }

    /// The log directory's guard and failure latch.
    pub fn disk(&self) -> &Arc<DiskGuard> {
        &self.disk
    }

    /// After a failed write, once the store takes writes again (`probe`):
    /// drain the writer (it refuses everything while the latch is set), cut
    /// every partition back to its durable end, so the offsets of refused
    /// batches are assigned again and nothing unwritten is indexed, then
    /// lift the latch. Appends stay refused until then.
    pub async fn resume(&self) -> Result<(), LogError> {
        let _ = self.barrier().await;
        for p in self.all() {
            let mut s = p.state.lock();
            if s.next_offset > s.durable && !p.deleted.load(Ordering::Relaxed) {
                let (from, durable) = (s.next_offset, s.durable);
                self.cut(&p, &mut s, durable)?;
                tracing::info!(topic = %p.topic, partition = p.index, from, to = durable,
                    "dropped the batches a failed write left unwritten");
            }
        }
        self.disk.resumed();
        Ok(())
    }

    /// Can the store take a write now? (A failed write latched `disk`.)
    pub fn probe(&self) -> Result<(), LogError> {
        self.db.probe()
    }

    /// A failed write the store does not clear by itself (EIO): drain the
    /// writer, close and reopen the store, then check each partition
    /// against what the store really holds and cut it back where the disk
    /// lost batches (logged: an acknowledged write lost by this replica is
    /// for its followers to restore). `resume` follows.
    pub async fn reopen(&self) -> Result<(), LogError> {
        let _ = self.barrier().await;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.reopen())
            .await
            .map_err(|_| LogError::Stopped)??;
        for p in self.all() {
            let mut s = p.state.lock();
            let mut end = s.log_start;
            for (b, m) in s.index.iter().rev() {
                let mut found = false;
                self.db.scan(p.id, *b, *b + 1, &mut |_| {
                    found = true;
                    Ok(false)
                })?;
                if found {
                    end = m.last_offset + 1;
                    break;
                }
            }
            if end < s.durable {
                tracing::error!(topic = %p.topic, partition = p.index, durable = s.durable, on_disk = end,
                    "the reopened store lacks batches once written; cutting the log back to what is on disk");
                self.cut(&p, &mut s, end)?;
            }
        }
        Ok(())
    }

    /// Cut `p`'s log back to `offset` (on a batch boundary at or below it):
    /// stored batches, epochs, index, tail cache, producer state and
    /// transactions. Returns the new end.
    fn cut(&self, p: &Partition, s: &mut PState, offset: i64) -> Result<i64, LogError> {
        let mut end = offset.max(s.log_start);
        if let Some((b, m)) = s.index.range(..end).next_back() {
            if m.last_offset >= end {
                end = *b;
            }
        }
        let gone: Vec<i32> = s
            .epochs
            .iter()
            .filter(|(_, o)| **o >= end)
            .map(|(e, _)| *e)
            .collect();
        self.db.truncate(p.id, end, &gone)?;
        for e in gone {
            s.epochs.remove(&e);
        }
        let dropped = s.index.split_off(&end);
        let bytes: u64 = dropped.values().map(|m| m.size as u64).sum();
        s.size_bytes = s.size_bytes.saturating_sub(bytes);
        while s.cache.back().is_some_and(|(b, _, _)| *b >= end) {
            if let Some((_, _, d)) = s.cache.pop_back() {
                s.cache_bytes -= d.len();
            }
        }
        for e in s.producers.values_mut() {
            e.recent.retain(|r| r.3 < end);
        }
        s.producers.retain(|_, e| !e.recent.is_empty());
        s.generation += 1;
        s.next_offset = end;
        s.durable = end;
        s.hw = s.hw.min(end);
        self.db.drop_aborted(p.id, end, i64::MAX)?;
        if !s.txn.truncate(end) {
            self.rebuild_txn(p.id, s)?;
        }
        Ok(end)
    }

    /// Follower whose log is entirely below the leader's log start (retention
    /// on the leader): drop everything and restart the log at `start`.
    pub fn reset_to(&self, p: &Partition, start: i64) -> Result<(), LogError> {
        let mut s = p.state.lock();
        self.db.reset(p.id, start)?;
        self.db.drop_aborted(p.id, 0, i64::MAX)?;
        s.txn = TxnState::default();
        s.generation += 1;
        s.index.clear();
        s.cache.clear();
        s.cache_bytes = 0;
        s.size_bytes = 0;
        s.producers.clear();
        s.log_start = start;
        s.next_offset = start;
        s.durable = start;
        s.hw = start;
        tracing::info!(topic = %p.topic, partition = p.index, start, "reset follower log to the leader's log start");
        Ok(())
    }

    /// Read committed batches from `offset`, at most `max_bytes` but always the
    /// whole batch containing `offset` (at least one batch when any exists),
    /// one `Bytes` per batch.
    pub fn read(
        &self,
        p: &Partition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, LogError> {
        self.read_bounded(p, offset, max_bytes, Upto::HighWatermark)
    }

    /// Like [`LogStore::read`], for a follower's fetch: up to the written log
    /// end instead of the high watermark.
    pub fn read_replica(
        &self,
        p: &Partition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, LogError> {
        self.read_bounded(p, offset, max_bytes, Upto::LogEnd)
    }

    fn read_bounded(
        &self,
        p: &Partition,
        offset: i64,
        max_bytes: usize,
        upto: Upto,
    ) -> Result<Vec<Bytes>, LogError> {
        Ok(match self.plan(p, offset, max_bytes, true, upto)? {
            None => Vec::new(),
            Some(Planned::Cached(v)) => v,
            Some(Planned::Stored { from, to, bytes }) => {
                let mut out = Vec::new();
                let mut total = 0usize;
                self.db.scan(p.id, from, to, &mut |v| {
                    total += v.len();
                    out.push(Bytes::copy_from_slice(v));
                    Ok(total < bytes)
                })?;
                out
            }
        })
    }

    /// A fetch's read of one partition, as one contiguous buffer: the whole
    /// batches from the one holding `offset` while they fit in `max_bytes`;
    /// with `min_one` the first batch even if it alone is larger (KIP-74:
    /// the first non-empty partition of a fetch always makes progress).
    /// Up to `upto`: the high watermark (read_uncommitted), the last stable
    /// offset (read_committed) or, for a follower, the written end.
    /// A single cached batch is shared, not copied; stored batches are copied
    /// once, straight into the result.
    pub fn read_for_fetch(
        &self,
        p: &Partition,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        upto: Upto,
    ) -> Result<Bytes, LogError> {
        Ok(match self.plan(p, offset, max_bytes, min_one, upto)? {
            None => Bytes::new(),
            Some(Planned::Cached(v)) if v.len() == 1 => v.into_iter().next().unwrap_or_default(),
            Some(Planned::Cached(v)) => {
                let mut m = BytesMut::with_capacity(v.iter().map(|x| x.len()).sum());
                for x in v {
                    m.extend_from_slice(&x);
                }
                m.freeze()
            }
            Some(Planned::Stored { from, to, bytes }) => {
                let mut m = BytesMut::with_capacity(bytes);
                self.db.scan(p.id, from, to, &mut |v| {
                    if m.len() + v.len() > bytes {
                        return Ok(false);
                    }
                    m.extend_from_slice(v);
                    Ok(m.len() < bytes)
                })?;
                m.freeze()
            }
        })
    }

    /// Which batches a read returns, decided from the in-memory index alone
    /// (no bytes touched): the cached ones themselves, or a key range of the
    /// store with its total size. `None` when nothing is readable.
    fn plan(
        &self,
        p: &Partition,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        upto: Upto,
    ) -> Result<Option<Planned>, LogError> {
        let mut s = p.state.lock();
        if s.offline {
            return Err(LogError::Offline);
        }
        if offset < s.log_start || offset > s.durable.max(s.hw) {
            return Err(LogError::OffsetOutOfRange);
        }
        let bound = s.bound(upto);
        if offset >= bound {
            return Ok(None);
        }
        let base = s
            .index
            .range(..=offset)
            .next_back()
            .filter(|(_, m)| m.last_offset >= offset)
            .map(|(b, _)| *b)
            .or_else(|| s.index.range(offset..).next().map(|(b, _)| *b));
        let Some(base) = base else {
            return Ok(None);
        };
        let (mut bytes, mut count, mut to) = (0usize, 0usize, base);
        for m in s.index.range(base..).map(|(_, m)| m) {
            let size = m.size as usize;
            if m.last_offset >= bound || (bytes + size > max_bytes && !(min_one && count == 0)) {
                break;
            }
            bytes += size;
            count += 1;
            to = m.last_offset + 1;
        }
        if count == 0 {
            return Ok(None);
        }
        // Serve from the in-memory tail when it covers the start.
        if s.cache.front().is_some_and(|(b, _, _)| *b <= base) {
            let i = s.cache.partition_point(|(b, _, _)| *b < base);
            let v: Vec<Bytes> = s
                .cache
                .range(i..)
                .take_while(|(_, last, _)| *last < to)
                .map(|(_, _, d)| d.clone())
                .collect();
            return Ok(Some(Planned::Cached(v)));
        }
        Ok(Some(Planned::Stored {
            from: base,
            to,
            bytes,
        }))
    }

    /// First offset with timestamp >= ts (exact to the record), or None.
    pub fn offset_for_timestamp(
        &self,
        p: &Partition,
        ts: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let Some((base, _last)) = p.batch_for_timestamp(ts) else {
            return Ok(None);
        };
        let Some(raw) = self.read(p, base, 1)?.into_iter().next() else {
            return Ok(None);
        };
        let mut buf = raw.clone();
        match kafka_protocol::records::RecordBatchDecoder::decode(&mut buf) {
            Ok(set) => {
                for r in set.records {
                    if r.timestamp >= ts {
                        return Ok(Some((r.offset, r.timestamp)));
                    }
                }
                Ok(None)
            }
            Err(_) => {
                let h = batch::parse_header(&raw)?;
                Ok(Some((base, h.max_timestamp)))
            }
        }
    }

    /// Forget the producers of `p` whose last batch is `expiration_ms` old
    /// (Kafka's `producer.id.expiration.ms`), unless a transaction of theirs
    /// is open here. Their idempotence state goes, and the cleaner stops
    /// keeping their last batch and their markers' epochs (without this,
    /// every producer that ever wrote to a compacted topic would keep a batch
    /// there for good). Returns how many were forgotten.
    pub fn expire_producers(&self, p: &Partition, now_ms: i64, expiration_ms: i64) -> usize {
        let mut s = p.state.lock();
        let before = s.producers.len();
        let PState { producers, txn, .. } = &mut *s;
        producers.retain(|pid, e| {
            now_ms.saturating_sub(e.last_timestamp) < expiration_ms
                || txn.open_since(*pid).is_some()
        });
        before - s.producers.len()
    }

    /// Drop whole batches from the front: those older than `retention_ms`
    /// (by max timestamp) and those beyond `retention_bytes`. Returns the new start.
    pub fn apply_retention(
        &self,
        p: &Partition,
        now_ms: i64,
        retention_ms: i64,
        retention_bytes: i64,
    ) -> Result<Option<i64>, LogError> {
        let (old_start_key, new_start) = {
            let s = p.state.lock();
            let mut size = s.size_bytes as i64;
            let mut new_start = s.log_start;
            for (b, m) in s.index.iter() {
                if m.last_offset >= s.hw {
                    break;
                }
                let old = retention_ms >= 0 && m.max_timestamp < now_ms - retention_ms;
                let big = retention_bytes >= 0 && size > retention_bytes;
                if !(old || big) {
                    break;
                }
                size -= m.size as i64;
                new_start = m.last_offset + 1;
                let _ = b;
            }
            if new_start == s.log_start {
                return Ok(None);
            }
            (s.log_start, new_start)
        };
        // Persist the new start first so a crash mid-way never exposes a hole.
        self.db.advance_start(p.id, new_start)?;
        self.db.drop_aborted(p.id, 0, new_start)?;
        let mut s = p.state.lock();
        s.log_start = new_start.max(s.log_start);
        s.txn.advance_start(new_start);
        let keep = s.index.split_off(&new_start);
        let dropped: u64 = s.index.values().map(|m| m.size as u64).sum();
        s.index = keep;
        s.size_bytes = s.size_bytes.saturating_sub(dropped);
        while s.cache.front().is_some_and(|(b, _, _)| *b < new_start) {
            if let Some((_, _, d)) = s.cache.pop_front() {
                s.cache_bytes -= d.len();
            }
        }
        tracing::info!(topic = %p.topic, partition = p.index, from = old_start_key, to = new_start, "retention advanced log start");
        Ok(Some(new_start))
    }

    /// The durable storage under the log (the cleaner rewrites through it).
    pub(crate) fn db(&self) -> &Arc<dyn PartitionStore> {
        &self.db
    }

    /// Ask RocksDB to reclaim space of deleted ranges (compaction of the range).
    pub fn compact_partition(&self, p: &Partition) {
        self.reclaim_wanted.store(true, Ordering::Relaxed);
        self.db.compact(p.id);
    }

    /// Below the free-space floor, after deletions: flush so their space
    /// (the WAL the memtables pin) is given back now. True if it ran.
    pub fn reclaim_if_wanted(&self) -> bool {
        if !self.reclaim_wanted.swap(false, Ordering::Relaxed) {
            return false;
        }
        self.db.reclaim();
        true
    }

    /// Checkpoint every partition's high watermark (fsynced) when any moved
    /// since `last`, which it updates. Run every
    /// replica.high.watermark.checkpoint.interval.ms and at shutdown.
    pub fn checkpoint_hw(&self, last: &mut std::collections::HashMap<u32, i64>) {
        let hws: Vec<(u32, i64)> = self
            .all()
            .iter()
            .map(|p| (p.id, p.offsets().high_watermark))
            .filter(|(id, hw)| last.get(id) != Some(hw))
            .collect();
        if hws.is_empty() {
            return;
        }
        match self.db.put_hw_checkpoints(&hws) {
            Ok(()) => last.extend(hws),
            Err(e) => tracing::warn!(error = %e, "high-watermark checkpoint failed"),
        }
    }

    /// Stop the writer after draining queued appends, flush the WAL, then
    /// checkpoint every high watermark (controlled shutdown included).
    pub fn shutdown(&self) {
        self.writer.lock().take();
        if let Some(h) = self.writer_thread.lock().take() {
            let _ = h.join();
        }
        if let Err(e) = self.db.flush() {
            tracing::warn!(error = %e, "WAL flush at shutdown failed");
        }
        self.checkpoint_hw(&mut std::collections::HashMap::new());
    }
}

impl Drop for LogStore {
    /// The writer thread holds the database: join it, so that the database
    /// is closed when the last handle goes. A process that exits (say, a
    /// start that failed after the log opened) while the thread still
    /// closes RocksDB aborts in RocksDB's static destructors.
    fn drop(&mut self) {
        self.writer.get_mut().take();
        if let Some(h) = self.writer_thread.get_mut().take() {
            let _ = h.join();
        }
    }
}

/// Record one batch (offsets `base..=last`) in the partition's state and make
/// its write entry. An ABORT marker's aborted-index entry is persisted
/// before the batch is queued (recovery drops it should the batch be lost).
fn record(
    db: &dyn PartitionStore,
    s: &mut PState,
    p: &Arc<Partition>,
    h: &BatchHeader,
    base: i64,
    last: i64,
    data: Bytes,
) -> Result<WriteEntry, LogError> {
    if let Some(a) = apply_txn(&mut s.txn, h, &data, base, last) {
        db.put_aborted(p.id, &a)?;
    }
    if h.is_control() {
        // Forget what the HW has passed even where nobody asks for the LSO
        // (a follower), so decided transactions do not pile up.
        let (hw, start) = (s.hw, s.log_start);
        s.txn.last_stable(hw, start);
    }
    s.record_batch(h, base, last, &data);
    Ok(WriteEntry {
        part: p.clone(),
        base,
        last,
        data,
        msgs: h.record_count as i64,
    })
}

/// Apply a stored batch (`raw`, at `base..=last`) to transaction state.
fn apply_txn(
    txn: &mut TxnState,
    h: &BatchHeader,
    raw: &[u8],
    base: i64,
    last: i64,
) -> Option<super::txn::AbortedTxn> {
    if !h.is_transactional() {
        return None;
    }
    let marker = h
        .is_control()
        .then(|| batch::control_marker(raw, h))
        .flatten();
    txn.apply(h, marker, base, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use fjord_kafka::testing::make_batch;

    fn policy() -> FlushPolicy {
        FlushPolicy {
            interval_messages: i64::MAX,
            interval: None,
        }
    }

    /// A store in a fresh directory with partition t-0; keep the directory
    /// guard alive as long as the store.
    fn fresh() -> (tempfile::TempDir, Arc<LogStore>, Arc<Partition>) {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path(), policy()).unwrap();
        let p = store.ensure("t", 0).unwrap();
        (dir, store, p)
    }

    async fn append(store: &LogStore, p: &Arc<Partition>, b: Bytes) -> Result<i64, LogError> {
        let v = batch::split_batches(&b)?;
        let a = store.append(p, v, 0)?;
        a.done
            .await
            .map_err(|_| LogError::Stopped)?
            .map_err(LogError::Meta)?;
        Ok(a.base_offset)
    }

    #[tokio::test]
    async fn restart_takes_the_checkpointed_high_watermark_not_the_log_end() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(dir.path(), policy()).unwrap();
            let p = store.ensure("t", 0).unwrap();
            let solo = store.ensure("s", 0).unwrap();
            p.become_leader(1, 0, &[1, 2]);
            solo.become_leader(1, 0, &[1]);
            append(&store, &p, make_batch(3, 10, -1, -1)).await.unwrap();
            append(&store, &solo, make_batch(3, 10, -1, -1))
                .await
                .unwrap();
            p.follower_fetched(2, 3);
            assert_eq!(p.offsets().high_watermark, 3);
            store.checkpoint_hw(&mut std::collections::HashMap::new());
            // Above the HW: follower 2 has not fetched these (acks=1).
            append(&store, &p, make_batch(2, 20, -1, -1)).await.unwrap();
            append(&store, &solo, make_batch(2, 20, -1, -1))
                .await
                .unwrap();
            assert_eq!(p.offsets().high_watermark, 3);
            // kill -9: no shutdown, so no final checkpoint.
            store.writer.lock().take();
            let writer = store.writer_thread.lock().take();
            if let Some(h) = writer {
                h.join().unwrap();
            }
        }
        let store = LogStore::open(dir.path(), policy()).unwrap();
        let p = store.get("t", 0).unwrap();
        assert_eq!(p.offsets().log_end, 5);
        assert_eq!(p.offsets().high_watermark, 3);
        assert_eq!(store.read(&p, 0, 1 << 20).unwrap().len(), 1);
        // Leading with followers again: the HW waits for them.
        p.become_leader(1, 1, &[1, 2]);
        assert_eq!(p.offsets().high_watermark, 3);
        p.follower_fetched(2, 5);
        assert_eq!(p.offsets().high_watermark, 5);
        // Alone (RF=1): the log end as soon as it leads.
        let solo = store.get("s", 0).unwrap();
        assert_eq!(solo.offsets().high_watermark, 3);
        solo.become_leader(1, 1, &[1]);
        assert_eq!(solo.offsets().high_watermark, 5);
    }

    #[tokio::test]
    async fn append_read_recover() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(dir.path(), policy()).unwrap();
            let p = store.ensure("t", 0).unwrap();
            assert_eq!(
                append(&store, &p, make_batch(3, 10, -1, -1)).await.unwrap(),
                0
            );
            assert_eq!(
                append(&store, &p, make_batch(2, 20, -1, -1)).await.unwrap(),
                3
            );
            assert_eq!(p.offsets().high_watermark, 5);
            let r = store.read(&p, 4, 1).unwrap();
            assert_eq!(r.len(), 1);
            assert_eq!(batch::parse_header(&r[0]).unwrap().base_offset, 3);
            store.shutdown();
        }
        let store = LogStore::open(dir.path(), policy()).unwrap();
        let p = store.get("t", 0).unwrap();
        assert_eq!(p.offsets().log_end, 5);
        let r = store.read(&p, 0, 1 << 20).unwrap();
        assert_eq!(r.len(), 2);
        assert!(matches!(
            store.read(&p, 6, 100),
            Err(LogError::OffsetOutOfRange)
        ));
        // Deleting and recreating starts a fresh log; the store keeps working.
        store.remove("t", 0).unwrap();
        let p = store.ensure("t", 0).unwrap();
        assert_eq!(
            append(&store, &p, make_batch(1, 30, -1, -1)).await.unwrap(),
            0
        );
        store.shutdown();
    }

    #[tokio::test]
    async fn idempotent_dedupe_and_gap() {
        let (_dir, store, p) = fresh();
        assert_eq!(append(&store, &p, make_batch(2, 1, 7, 0)).await.unwrap(), 0);
        assert_eq!(append(&store, &p, make_batch(2, 1, 7, 2)).await.unwrap(), 2);
        // retry of the first batch: same offsets, nothing stored
        assert_eq!(append(&store, &p, make_batch(2, 1, 7, 0)).await.unwrap(), 0);
        assert_eq!(p.offsets().log_end, 4);
        assert!(matches!(
            append(&store, &p, make_batch(1, 1, 7, 9)).await,
            Err(LogError::OutOfOrderSequence)
        ));
        store.shutdown();
    }

    /// Leader with an ISR of three: the HW waits for the slowest ISR member,
    /// consumers read only below it, followers up to the written end, and a
    /// demoted leader refuses produce.
    #[tokio::test]
    async fn leader_hw_follows_isr() {
        let (_dir, store, p) = fresh();
        p.become_leader(1, 3, &[1, 2, 3]);
        append(&store, &p, make_batch(3, 10, -1, -1)).await.unwrap();
        append(&store, &p, make_batch(2, 20, -1, -1)).await.unwrap();
        assert_eq!(p.durable_end(), 5);
        assert_eq!(p.offsets().high_watermark, 0);
        assert!(store.read(&p, 0, 1 << 20).unwrap().is_empty());
        assert_eq!(store.read_replica(&p, 0, 1 << 20).unwrap().len(), 2);
        p.follower_fetched(2, 5);
        assert_eq!(p.offsets().high_watermark, 0, "replica 3 has not fetched");
        p.follower_fetched(3, 3);
        assert_eq!(p.offsets().high_watermark, 3);
        assert_eq!(store.read(&p, 0, 1 << 20).unwrap().len(), 1);
        // Shrink to the leader alone: HW = log end, as for replication factor 1.
        p.set_isr(&[1]);
        assert_eq!(p.offsets().high_watermark, 5);
        assert_eq!(p.latest_epoch(), 0);
        p.become_follower(1, 4);
        let v = batch::split_batches(&make_batch(1, 30, -1, -1)).unwrap();
        assert!(matches!(store.append(&p, v, 4), Err(LogError::NotLeader)));
        store.shutdown();
    }

    /// Follower: appends the leader's batches verbatim (offsets and epochs
    /// kept), skips re-sent ones, refuses gaps, truncates to a batch boundary
    /// dropping later epochs and producer state, and survives a restart.
    #[tokio::test]
    async fn follower_append_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let (_leader_dir, leader, lp) = fresh();
        lp.become_leader(1, 0, &[1]);
        append(&leader, &lp, make_batch(2, 10, 7, 0)).await.unwrap();
        let v = batch::split_batches(&make_batch(3, 11, 7, 2)).unwrap();
        leader
            .append(&lp, v, 2)
            .unwrap()
            .done
            .await
            .unwrap()
            .unwrap();
        let fetched: Vec<Bytes> = leader.read_replica(&lp, 0, 1 << 20).unwrap();
        assert_eq!(fetched.len(), 2);
        {
            let store = LogStore::open(dir.path(), policy()).unwrap();
            let p = store.ensure("t", 0).unwrap();
            p.become_follower(2, 2);
            let mut all = BytesMut::new();
            for b in &fetched {
                all.extend_from_slice(b);
            }
            let batches = batch::split_batches(&all.freeze()).unwrap();
            let done = store.append_replica(&p, batches.clone()).unwrap().unwrap();
            done.await.unwrap().unwrap();
            assert_eq!(p.offsets().log_end, 5);
            assert_eq!(p.end_offset_for_epoch(0), (0, 2));
            assert_eq!(p.end_offset_for_epoch(2), (2, 5));
            // Re-sent batches are skipped; an overlap is refused.
            assert!(store.append_replica(&p, batches.clone()).unwrap().is_none());
            let mut gap = batches[1].clone();
            let mut raw = BytesMut::from(&gap.1[..]);
            raw[..8].copy_from_slice(&4i64.to_be_bytes());
            gap.0.base_offset = 4;
            gap.1 = raw.freeze();
            assert!(matches!(
                store.append_replica(&p, vec![gap]),
                Err(LogError::NonContiguous {
                    expected: 5,
                    got: 4
                })
            ));
            p.set_follower_hw(4);
            assert_eq!(p.offsets().high_watermark, 4);
            // Truncating inside the second batch cuts at its base.
            store.barrier().await.unwrap();
            assert_eq!(store.truncate(&p, 3).unwrap(), 2);
            assert_eq!(p.offsets().log_end, 2);
            assert_eq!(p.offsets().high_watermark, 2);
            assert_eq!(p.latest_epoch(), 0);
            // Leader again after truncation: the truncated producer batch is
            // not remembered, so its retry is appended, not acknowledged as a duplicate.
            p.become_leader(2, 5, &[2]);
            let v = batch::split_batches(&make_batch(3, 11, 7, 2)).unwrap();
            let a = store.append(&p, v, 5).unwrap();
            assert_eq!(a.base_offset, 2);
            a.done.await.unwrap().unwrap();
            store.shutdown();
        }
        let store = LogStore::open(dir.path(), policy()).unwrap();
        let p = store.get("t", 0).unwrap();
        assert_eq!(p.offsets().log_end, 5);
        assert_eq!(p.end_offset_for_epoch(2), (0, 2));
        assert_eq!(p.latest_epoch(), 5);
        leader.shutdown();
        store.shutdown();
    }

    #[tokio::test]
    async fn retention_by_time_and_size() {
        let (_dir, store, p) = fresh();
        append(&store, &p, make_batch(2, 1_000, -1, -1))
            .await
            .unwrap();
        append(&store, &p, make_batch(2, 5_000, -1, -1))
            .await
            .unwrap();
        assert_eq!(
            store.apply_retention(&p, 6_000, 3_000, -1).unwrap(),
            Some(2)
        );
        assert_eq!(p.offsets().log_start, 2);
        assert!(matches!(
            store.read(&p, 0, 100),
            Err(LogError::OffsetOutOfRange)
        ));
        assert_eq!(store.read(&p, 2, 100).unwrap().len(), 1);
        assert_eq!(store.apply_retention(&p, 6_000, -1, 0).unwrap(), Some(4));
        store.shutdown();
    }
}
