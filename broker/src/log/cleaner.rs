//! The log cleaner (log compaction, docs/architecture.md → Log compaction):
//! for a partition of a `cleanup.policy=compact` topic whose dirty ratio is
//! over `min.cleanable.dirty.ratio`, keep only the latest record of each key
//! below the clean limit, with survivors at their original offsets, drop
//! tombstones `delete.retention.ms` after their first cleaning, and delete
//! batches left empty. Each pass reads the log with no partition lock; the
//! lock is taken only to swap in a chunk of rewritten batches (one atomic
//! store write), after re-checking that nothing changed underneath.
//!
//! Transactions ([`TxnView`], [`AbortedIndex`] over the partition's
//! aborted-transaction index): below the clean limit (never past the LSO)
//! every transaction is decided, so records of aborted transactions are
//! dropped and committed transactional records are cleaned like plain ones.
//! A control batch (COMMIT/ABORT marker) goes as Kafka's cleaner removes it
//! (KIP-98, KIP-534): only once no batch of its transaction is left in the
//! log (a replay would otherwise reopen the transaction and hold the LSO
//! there for good), and only `delete.retention.ms` after that was first
//! seen, like a tombstone, so a consumer that read the transaction's records
//! before they were cleaned still finds where it ends. An ABORT marker's
//! aborted-index entry goes in the same swap: an entry without its marker
//! would make a read_committed consumer skip the producer's later
//! transactions. A marker that is the log's last batch, or that alone holds
//! its producer's current epoch (no data batch of that epoch left), stays.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use super::error::LogError;
use super::partition::{BatchMeta, Partition, Upto};
use super::records::{self, Rec};
use super::store::LogStore;
use fjord_kafka::batch;

/// Bytes of rewritten batches swapped in per lock acquisition: small, so a
/// produce to the same partition never waits long for the lock.
const SWAP_BYTES: usize = 256 << 10;
/// Batches swapped in per lock acquisition.
const SWAP_BATCHES: usize = 64;
/// What one key of the offset map costs beyond its bytes (estimate).
const MAP_ENTRY_OVERHEAD: usize = 64;

/// A compacted topic's settings, resolved from topic overrides and broker defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionConfig {
    pub min_cleanable_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub delete_retention_ms: i64,
    /// The active tail (never cleaned) is at most this old ...
    pub segment_ms: i64,
    /// ... and at most this many bytes: batches beyond either limit are
    /// the "rolled segments" the cleaner may touch.
    pub segment_bytes: i64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            min_cleanable_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
            segment_ms: 604_800_000,
            segment_bytes: 1 << 30,
        }
    }
}

/// The compaction settings of a topic, or None when it is not compacted.
pub type Configs = Arc<dyn Fn(&str) -> Option<CompactionConfig> + Send + Sync>;

/// What the cleaner knows about aborted transactions in a partition.
/// `aborted` is only asked about batches below the clean limit, which never
/// passes the LSO: their transactions are decided.
pub trait TxnView: Send + Sync {
    /// True when the record at `offset` of `producer_id` belongs to an
    /// aborted transaction. None: unknown, leave the batch as it is.
    fn aborted(&self, p: &Partition, producer_id: i64, offset: i64) -> Option<bool>;
}

/// No knowledge of aborted records: transactional batches stay.
pub struct NoTxnIndex;

impl TxnView for NoTxnIndex {
    fn aborted(&self, _p: &Partition, _pid: i64, _offset: i64) -> Option<bool> {
        None
    }
}

/// The partition's own aborted-transaction index (`Partition::aborted_ranges`):
/// a transactional record below the LSO is aborted exactly when an aborted
/// transaction of its producer covers its offset, else committed.
pub struct AbortedIndex;

impl TxnView for AbortedIndex {
    fn aborted(&self, p: &Partition, producer_id: i64, offset: i64) -> Option<bool> {
        if producer_id < 0 || offset >= p.offsets().last_stable {
            // Not a transaction, or not decided yet: leave it.
            return None;
        }
        Some(p.aborted_ranges(offset, offset + 1).iter().any(|a| {
            a.producer_id == producer_id && a.first_offset <= offset && offset <= a.last_offset
        }))
    }
}

/// What the cleaner remembers of a partition between passes (in memory: after
/// a restart the whole log counts as dirty once and tombstone clocks restart,
/// which only keeps tombstones longer).
#[derive(Debug, Default, Clone)]
struct CleanState {
    /// Everything below was cleaned by an earlier pass (Kafka's cleaner checkpoint).
    clean_end: i64,
    /// Base offset of a cleaned batch holding tombstones, or of a marker
    /// whose transaction has no batch left → when it may go.
    horizons: BTreeMap<i64, i64>,
}

/// The outcome of one pass over one partition.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    /// Offsets cleaned: `[start, limit)`.
    pub start: i64,
    pub limit: i64,
    pub batches_rewritten: u64,
    pub batches_deleted: u64,
    /// Data records removed (markers not counted).
    pub records_removed: u64,
    /// COMMIT/ABORT markers removed (their batches count in `batches_deleted`).
    pub markers_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// What one pass reads and never changes: the partition, the snapshot of its
/// batches, the latest offset of each key below the limit, the clock and the
/// topic's compaction config.
#[derive(Clone, Copy)]
struct Pass<'a> {
    p: &'a Partition,
    snap: &'a Snapshot,
    map: &'a HashMap<Bytes, i64>,
    now: i64,
    cfg: &'a CompactionConfig,
}

/// The cleaner over one broker's log.
pub struct Cleaner {
    log: Arc<LogStore>,
    txn: Arc<dyn TxnView>,
    states: Mutex<HashMap<u32, CleanState>>,
    /// log.cleaner.dedupe.buffer.size: bound of the key → offset map.
    map_bytes: usize,
}

/// The partition as the cleaner saw it under the lock, before reading.
struct Snapshot {
    generation: u64,
    /// The log's last batch: never deleted (kept empty if need be), so a
    /// restart finds the log end.
    last_base: i64,
    log_start: i64,
    limit: i64,
    /// Batches (base → meta) in `[log_start, limit)`.
    batches: BTreeMap<i64, BatchMeta>,
    /// The base of each producer's last batch: kept even when emptied, so
    /// the producer's sequence survives a restart (as Kafka).
    producer_last: HashSet<i64>,
    /// Producer id → its current epoch, for producers with no data batch of
    /// that epoch: their markers of that epoch are all that keeps the epoch
    /// (and so the fencing of older ones) over a restart.
    epoch_only: HashMap<i64, i16>,
}

/// What a pass has read of one producer's transaction since its previous
/// marker, for deciding the marker that ends it.
#[derive(Debug, Default, Clone, Copy)]
struct TxnSeen {
    /// A data batch of it was in the log when this pass read it.
    seen: bool,
    /// A batch of it stays after this pass (kept, rewritten or kept empty).
    left: bool,
}

/// One batch's change, swapped in with others under the lock.
enum Change {
    Put {
        base: i64,
        old_size: u32,
        data: Bytes,
        removed: u64,
    },
    Delete {
        base: i64,
        old_size: u32,
        removed: u64,
    },
    /// A marker goes; an ABORT marker takes its aborted-index entry (by its
    /// last offset) with it.
    DropMarker {
        base: i64,
        old_size: u32,
        aborted: Option<i64>,
    },
}

impl Cleaner {
    /// A cleaner over `log`, with `map_bytes` for a pass's key map.
    pub fn new(log: Arc<LogStore>, txn: Arc<dyn TxnView>, map_bytes: usize) -> Cleaner {
        Cleaner {
            log,
            txn,
            states: Mutex::new(HashMap::new()),
            map_bytes: map_bytes.max(1 << 20),
        }
    }

    /// Forget what is remembered of partitions no longer held.
    fn prune(&self) {
        let live: HashSet<u32> = self.log.all().iter().map(|p| p.id).collect();
        self.states.lock().retain(|id, _| live.contains(id));
    }

    /// Clean `p` once if it is due; None when there was nothing to do.
    pub fn clean(
        &self,
        p: &Arc<Partition>,
        cfg: &CompactionConfig,
        now: i64,
    ) -> Result<Option<PassStats>, LogError> {
        let mut st = self.states.lock().get(&p.id).cloned().unwrap_or_default();
        let Some(snap) = self.snapshot(p, cfg, now) else {
            return Ok(None);
        };
        st.clean_end = st.clean_end.max(snap.log_start);
        st.horizons = st.horizons.split_off(&snap.log_start);
        if !self.due(&snap, &st, cfg, now) {
            return Ok(None);
        }
        let (map, limit) = self.offset_map(p, &snap, st.clean_end)?;
        let mut stats = PassStats {
            start: snap.log_start,
            limit,
            ..Default::default()
        };
        let mut pending: Vec<Change> = Vec::new();
        let mut pending_bytes = 0usize;
        let mut failed: Option<LogError> = None;
        let mut txns: HashMap<i64, TxnSeen> = HashMap::new();
        let pass = Pass {
            p,
            snap: &snap,
            map: &map,
            now,
            cfg,
        };
        let db = self.log.db().clone();
        db.scan(p.id, snap.log_start, limit, &mut |v| {
            let Ok(h) = batch::parse_header(v) else {
                return Ok(true);
            };
            let base = h.base_offset;
            let Some(meta) = snap.batches.get(&base) else {
                return Ok(true);
            };
            stats.bytes_before += v.len() as u64;
            let change = if h.is_control() {
                let seen = txns.remove(&h.producer_id).unwrap_or_default();
                self.clean_marker(&pass, &mut st, v, &h, *meta, seen)
            } else {
                let c = self.clean_batch(&pass, &mut st, v, &h, *meta);
                if h.is_transactional() && h.producer_id >= 0 {
                    let t = txns.entry(h.producer_id).or_default();
                    t.seen = true;
                    t.left |= !matches!(c, Some(Change::Delete { .. }));
                }
                c
            };
            match &change {
                Some(Change::Put { data, .. }) => {
                    stats.bytes_after += data.len() as u64;
                    pending_bytes += data.len();
                }
                Some(Change::Delete { .. } | Change::DropMarker { .. }) => {}
                None => stats.bytes_after += v.len() as u64,
            }
            if let Some(c) = change {
                pending.push(c);
            }
            if pending_bytes >= SWAP_BYTES || pending.len() >= SWAP_BATCHES {
                if let Err(e) = self.swap(p, &snap, &mut pending, &mut stats, &mut st) {
                    failed = Some(e);
                    return Ok(false);
                }
                pending_bytes = 0;
            }
            Ok(true)
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        self.swap(p, &snap, &mut pending, &mut stats, &mut st)?;
        st.clean_end = limit;
        self.states.lock().insert(p.id, st);
        if stats.batches_rewritten + stats.batches_deleted > 0 {
            // Let RocksDB drop the overwritten and deleted versions now.
            db.compact(p.id);
        }
        metrics::counter!("fjord_log_cleaner_passes_total").increment(1);
        metrics::counter!("fjord_log_cleaner_records_removed_total")
            .increment(stats.records_removed);
        metrics::counter!("fjord_log_cleaner_bytes_reclaimed_total")
            .increment(stats.bytes_before.saturating_sub(stats.bytes_after));
        tracing::info!(
            topic = %p.topic, partition = p.index, start = stats.start, limit = stats.limit,
            rewritten = stats.batches_rewritten, deleted = stats.batches_deleted,
            records_removed = stats.records_removed, markers_removed = stats.markers_removed,
            bytes_before = stats.bytes_before,
            bytes_after = stats.bytes_after, "cleaned partition"
        );
        Ok(Some(stats))
    }

    /// The clean limit and the batches below it, from the in-memory state.
    /// The limit is the smallest of: the last stable offset (never above the HW), the
    /// start of the active tail (`segment.ms`/`segment.bytes`) and the first
    /// batch younger than `min.compaction.lag.ms`.
    fn snapshot(&self, p: &Arc<Partition>, cfg: &CompactionConfig, now: i64) -> Option<Snapshot> {
        let mut s = p.state.lock();
        if s.offline || p.deleted.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        // Never past an undecided transaction: a read_committed consumer
        // must not find what it waits for rewritten under it.
        let mut limit = s.bound(Upto::LastStable);
        let (last_base, _) = s.index.iter().next_back()?;
        let last_base = *last_base;
        // The active tail, walking back from the end.
        let mut tail_bytes = 0i64;
        let mut tail_start = s.next_offset;
        for (b, m) in s.index.iter().rev() {
            tail_bytes += m.size as i64;
            if tail_bytes > cfg.segment_bytes
                || m.max_timestamp < now.saturating_sub(cfg.segment_ms)
            {
                break;
            }
            tail_start = *b;
        }
        limit = limit.min(tail_start);
        let lag_edge = now.saturating_sub(cfg.min_compaction_lag_ms);
        if let Some((b, _)) = s.index.iter().find(|(_, m)| m.max_timestamp > lag_edge) {
            limit = limit.min(*b);
        }
        let batches: BTreeMap<i64, BatchMeta> = s
            .index
            .range(s.log_start..limit)
            .filter(|(_, m)| m.last_offset < limit)
            .map(|(b, m)| (*b, *m))
            .collect();
        if batches.is_empty() {
            return None;
        }
        let limit = batches.values().next_back().map(|m| m.last_offset + 1)?;
        Some(Snapshot {
            generation: s.generation,
            last_base,
            log_start: s.log_start,
            limit,
            batches,
            producer_last: s
                .producers
                .values()
                .filter_map(|e| e.recent.back().map(|r| r.2))
                .collect(),
            epoch_only: s
                .producers
                .iter()
                .filter(|(_, e)| e.recent.is_empty())
                .map(|(pid, e)| (*pid, e.epoch))
                .collect(),
        })
    }

    /// Whether a pass is due: the dirty part is over the ratio, or its oldest
    /// batch is past `max.compaction.lag.ms`, or a tombstone horizon passed.
    fn due(&self, snap: &Snapshot, st: &CleanState, cfg: &CompactionConfig, now: i64) -> bool {
        let (mut dirty, mut total) = (0u64, 0u64);
        let mut oldest_dirty = i64::MAX;
        for (b, m) in &snap.batches {
            total += m.size as u64;
            if *b >= st.clean_end {
                dirty += m.size as u64;
                oldest_dirty = oldest_dirty.min(m.max_timestamp);
            }
        }
        let horizon_due = st.horizons.range(..snap.limit).any(|(_, t)| *t <= now);
        if horizon_due {
            return true;
        }
        if dirty == 0 || total == 0 {
            return false;
        }
        let ratio = dirty as f64 / total as f64;
        ratio >= cfg.min_cleanable_ratio
            || oldest_dirty < now.saturating_sub(cfg.max_compaction_lag_ms)
    }

    /// Key → offset of its latest record in the dirty part `[clean_end,
    /// limit)`, from plain (non-transactional) batches. When the map would
    /// outgrow its budget the limit moves down to the batch where it stopped.
    fn offset_map(
        &self,
        p: &Partition,
        snap: &Snapshot,
        clean_end: i64,
    ) -> Result<(HashMap<Bytes, i64>, i64), LogError> {
        let mut map: HashMap<Bytes, i64> = HashMap::new();
        let mut used = 0usize;
        let mut limit = snap.limit;
        self.log.db().scan(p.id, clean_end, snap.limit, &mut |v| {
            let Ok(h) = batch::parse_header(v) else {
                return Ok(true);
            };
            if h.is_control() || !snap.batches.contains_key(&h.base_offset) {
                return Ok(true);
            }
            // Committed transactional records supersede like plain ones;
            // aborted (or undecided) ones never count.
            if h.is_transactional()
                && self.txn.aborted(p, h.producer_id, h.base_offset) != Some(false)
            {
                return Ok(true);
            }
            let Ok(recs) = records::records(v, &h) else {
                return Ok(true);
            };
            let grow: usize = recs
                .iter()
                .filter_map(|r| r.key.as_ref())
                .map(|k| k.len() + MAP_ENTRY_OVERHEAD)
                .sum();
            if used + grow > self.map_bytes && !map.is_empty() {
                limit = h.base_offset;
                return Ok(false);
            }
            for r in recs {
                if let Some(k) = r.key {
                    let o = h.base_offset + r.offset_delta as i64;
                    if map.insert(Bytes::copy_from_slice(&k), o).is_none() {
                        used += k.len() + MAP_ENTRY_OVERHEAD;
                    }
                }
            }
            Ok(true)
        })?;
        Ok((map, limit))
    }

    /// What becomes of one marker, given what the pass read of its
    /// transaction (`t`): it goes only when no batch of the transaction is
    /// left, none was there when this pass read the log (so its removal is
    /// swapped in, not just planned), and its horizon, set
    /// `delete.retention.ms` after it was first found with nothing left, has
    /// passed.
    fn clean_marker(
        &self,
        pass: &Pass<'_>,
        st: &mut CleanState,
        v: &[u8],
        h: &batch::BatchHeader,
        meta: BatchMeta,
        t: TxnSeen,
    ) -> Option<Change> {
        let Pass { snap, now, cfg, .. } = *pass;
        let base = h.base_offset;
        let marker = if h.is_transactional() && h.producer_id >= 0 {
            batch::control_marker(v, h)
        } else {
            None
        };
        let protected = base == snap.last_base
            || snap.epoch_only.get(&h.producer_id) == Some(&h.producer_epoch);
        let Some(m) = marker.filter(|_| !t.left && !protected) else {
            st.horizons.remove(&base);
            return None;
        };
        let horizon = *st
            .horizons
            .entry(base)
            .or_insert(now.saturating_add(cfg.delete_retention_ms));
        if t.seen || horizon > now {
            return None;
        }
        Some(Change::DropMarker {
            base,
            old_size: meta.size,
            aborted: (!m.commit).then_some(meta.last_offset),
        })
    }

    /// What becomes of one batch: None to leave it, a rewrite, or a delete.
    fn clean_batch(
        &self,
        pass: &Pass<'_>,
        st: &mut CleanState,
        v: &[u8],
        h: &batch::BatchHeader,
        meta: BatchMeta,
    ) -> Option<Change> {
        let Pass {
            p,
            snap,
            map,
            now,
            cfg,
        } = *pass;
        let base = h.base_offset;
        if h.is_control() {
            return None;
        }
        let keep_empty =
            base == snap.last_base || (h.producer_id >= 0 && snap.producer_last.contains(&base));
        if h.record_count == 0 {
            // Kept empty by an earlier pass as its producer's last batch: it
            // goes once it no longer is, else its transaction's marker (which
            // a replay needs to close it) could never go.
            return (!keep_empty).then_some(Change::Delete {
                base,
                old_size: meta.size,
                removed: 0,
            });
        }
        // A batch holds records of one transaction: all aborted or none.
        let aborted = if h.is_transactional() {
            // Unknown (undecided): leave the batch as it is.
            self.txn.aborted(p, h.producer_id, base)?
        } else {
            false
        };
        let recs = match records::records(v, h) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(topic = %p.topic, partition = p.index, base, error = %e, "cleaner left an unreadable batch as it is");
                return None;
            }
        };
        let expired = st.horizons.get(&base).is_some_and(|t| *t <= now);
        let keep: Vec<Rec> = recs
            .iter()
            .filter(|r| match &r.key {
                // Records of an aborted transaction were never readable
                // (read_committed): they go, keys or not.
                _ if aborted => false,
                // Keyless records (written before the topic was compacted) stay.
                None => true,
                Some(k) => {
                    let o = base + r.offset_delta as i64;
                    let latest = map.get(k).is_none_or(|l| o >= *l);
                    latest && !(r.tombstone && expired)
                }
            })
            .cloned()
            .collect();
        if keep.iter().any(|r| r.tombstone) {
            st.horizons
                .entry(base)
                .or_insert(now.saturating_add(cfg.delete_retention_ms));
        } else {
            st.horizons.remove(&base);
        }
        if keep.len() == recs.len() {
            return None;
        }
        let removed = (recs.len() - keep.len()) as u64;
        if keep.is_empty() && !keep_empty {
            return Some(Change::Delete {
                base,
                old_size: meta.size,
                removed,
            });
        }
        match records::rebuild(v, h, &keep) {
            Ok(data) => Some(Change::Put {
                base,
                old_size: meta.size,
                data,
                removed,
            }),
            Err(e) => {
                tracing::warn!(topic = %p.topic, partition = p.index, base, error = %e, "cleaner could not rebuild a batch");
                None
            }
        }
    }

    /// Swap `pending` in under the partition lock: only the batches still
    /// indexed as they were read (same generation, same size), as one
    /// atomic store write; then the index, size and tail cache follow.
    fn swap(
        &self,
        p: &Partition,
        snap: &Snapshot,
        pending: &mut Vec<Change>,
        stats: &mut PassStats,
        st: &mut CleanState,
    ) -> Result<(), LogError> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut s = p.state.lock();
        if s.generation != snap.generation
            || s.offline
            || p.deleted.load(std::sync::atomic::Ordering::Relaxed)
        {
            pending.clear();
            return Err(LogError::Meta("partition changed during cleaning".into()));
        }
        let unchanged = |s: &super::partition::PState, base: i64, size: u32| {
            s.index.get(&base).is_some_and(|m| m.size == size)
        };
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        let mut removed = Vec::new();
        let mut unindex = Vec::new();
        let mut markers = 0u64;
        for c in pending.drain(..) {
            match c {
                Change::Put {
                    base,
                    old_size,
                    data,
                    removed: n,
                } if unchanged(&s, base, old_size) => {
                    puts.push((base, data));
                    removed.push(n);
                }
                Change::Delete {
                    base,
                    old_size,
                    removed: n,
                } if unchanged(&s, base, old_size) => {
                    deletes.push(base);
                    stats.records_removed += n;
                }
                Change::DropMarker {
                    base,
                    old_size,
                    aborted,
                } if unchanged(&s, base, old_size) => {
                    deletes.push(base);
                    unindex.extend(aborted);
                    markers += 1;
                }
                _ => {}
            }
        }
        // The aborted-index entries go first: a crash in between leaves a
        // marker without an entry, which filters nothing, never an entry
        // without its marker.
        for last in &unindex {
            self.log.db().drop_aborted(p.id, *last, *last + 1)?;
        }
        self.log.db().rewrite(p.id, &puts, &deletes)?;
        for last in &unindex {
            s.txn.drop_aborted(*last);
        }
        stats.markers_removed += markers;
        stats.records_removed += removed.iter().sum::<u64>();
        for (base, data) in &puts {
            let old = s.index.get(base).map(|m| m.size).unwrap_or(0);
            if let Some(m) = s.index.get_mut(base) {
                m.size = data.len() as u32;
            }
            s.size_bytes = s.size_bytes.saturating_sub(old as u64) + data.len() as u64;
            if let Ok(i) = s.cache.binary_search_by_key(base, |(b, _, _)| *b) {
                let prev = std::mem::replace(&mut s.cache[i].2, data.clone());
                s.cache_bytes = s.cache_bytes + data.len() - prev.len();
            }
            stats.batches_rewritten += 1;
        }
        for base in &deletes {
            if let Some(m) = s.index.remove(base) {
                s.size_bytes = s.size_bytes.saturating_sub(m.size as u64);
            }
            if let Ok(i) = s.cache.binary_search_by_key(base, |(b, _, _)| *b) {
                if let Some((_, _, d)) = s.cache.remove(i) {
                    s.cache_bytes -= d.len();
                }
            }
            st.horizons.remove(base);
            stats.batches_deleted += 1;
        }
        Ok(())
    }
}

/// Run the cleaner until `stop` turns true: every `backoff` (at once again
/// after a pass that did work), each compacted partition is offered to one
/// of `threads` workers (by partition id), which cleans it if due.
pub async fn cleaner_loop(
    cleaner: Arc<Cleaner>,
    configs: Configs,
    threads: usize,
    backoff: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let threads = threads.max(1);
    let backoff = backoff.max(Duration::from_millis(10));
    loop {
        let mut work = Vec::new();
        for t in 0..threads {
            let cleaner = cleaner.clone();
            let configs = configs.clone();
            work.push(tokio::task::spawn_blocking(move || {
                let mut did = false;
                for p in cleaner.log.all() {
                    if p.id as usize % threads != t {
                        continue;
                    }
                    let Some(cfg) = configs(&p.topic) else {
                        continue;
                    };
                    let now = crate::wire::clock::now_ms();
                    match cleaner.clean(&p, &cfg, now) {
                        Ok(Some(x)) => did |= x.batches_rewritten + x.batches_deleted > 0,
                        Ok(None) => {}
                        Err(e) => tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "cleaning failed; retried later"),
                    }
                }
                did
            }));
        }
        let mut did = false;
        for w in work {
            did |= w.await.unwrap_or(false);
        }
        cleaner.prune();
        if *stop.borrow() {
            return;
        }
        if did {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
    }
}
