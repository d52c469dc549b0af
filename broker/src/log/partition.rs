//! One partition's in-memory state: offsets (log start, high watermark,
//! durable end, log end), the batch index, the tail cache of recent batches,
//! producer sequences for idempotence, the leader-epoch cache and the
//! transaction state (`txn`: the last stable offset). Rebuilt
//! from the store on open (`store`), advanced by appends (`store`) and by the
//! group-commit writer (`writer`). The HW rule itself is `hw`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::hw::{FollowerState, Repl, Role};
use super::txn::{AbortedTxn, TxnState};
use fjord_kafka::batch::BatchHeader;

/// Recent batches kept in memory per partition for tail fetches.
pub(crate) const TAIL_CACHE_BYTES: usize = 32 << 20;
/// Producer batches remembered per producer for duplicate detection (Kafka: 5).
pub(crate) const PRODUCER_WINDOW: usize = 5;

/// Index entry for one stored batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchMeta {
    pub(crate) last_offset: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) size: u32,
}

#[derive(Debug, Default)]
pub(crate) struct ProducerEntry {
    pub(crate) epoch: i16,
    /// (first seq, last seq, base offset, last offset), oldest first.
    pub(crate) recent: VecDeque<(i32, i32, i64, i64)>,
    /// The largest batch timestamp seen from it (markers included): what
    /// `producer.id.expiration.ms` counts from, as Kafka's `lastTimestamp`.
    pub(crate) last_timestamp: i64,
}

pub(crate) struct PState {
    /// Log end offset: next offset to assign.
    pub(crate) next_offset: i64,
    /// High watermark: what consumers may read (committed).
    pub(crate) hw: i64,
    /// Everything below is written to RocksDB (served to followers).
    pub(crate) durable: i64,
    pub(crate) repl: Repl,
    pub(crate) log_start: i64,
    pub(crate) index: BTreeMap<i64, BatchMeta>,
    /// Recent committed-or-pending batches, contiguous up to next_offset.
    pub(crate) cache: VecDeque<(i64, i64, Bytes)>,
    pub(crate) cache_bytes: usize,
    pub(crate) size_bytes: u64,
    pub(crate) producers: HashMap<i64, ProducerEntry>,
    /// leader epoch → first offset written in it.
    pub(crate) epochs: BTreeMap<i32, i64>,
    pub(crate) waiters: Vec<Weak<Notify>>,
    pub(crate) offline: bool,
    /// Open transactions, the LSO and the aborted-transaction index.
    pub(crate) txn: TxnState,
    /// Bumped by every change that may put different bytes at an offset
    /// already indexed (truncation, reset): the cleaner's swap re-checks it.
    pub(crate) generation: u64,
}

/// One partition's log (leader or follower: the log does not care).
pub struct Partition {
    /// Internal id: the key prefix in the `log` column family.
    pub id: u32,
    pub topic: String,
    pub index: i32,
    pub(crate) state: Mutex<PState>,
    pub(crate) deleted: AtomicBool,
}

/// Positions a reader needs to answer a fetch or list-offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub log_start: i64,
    pub high_watermark: i64,
    pub log_end: i64,
    /// What read_committed consumers may read (`txn`): <= high_watermark.
    pub last_stable: i64,
}

/// How far a read may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upto {
    /// The high watermark (read_uncommitted consumers).
    HighWatermark,
    /// The last stable offset (read_committed consumers).
    LastStable,
    /// The written log end (follower replicas).
    LogEnd,
}

impl Partition {
    pub(crate) fn new(id: u32, topic: String, index: i32) -> Partition {
        Partition {
            id,
            topic,
            index,
            state: Mutex::new(PState {
                next_offset: 0,
                hw: 0,
                durable: 0,
                repl: Repl {
                    role: Role::Leader,
                    epoch: -1,
                    isr: Vec::new(),
                    me: -1,
                    followers: HashMap::new(),
                },
                log_start: 0,
                index: BTreeMap::new(),
                cache: VecDeque::new(),
                cache_bytes: 0,
                size_bytes: 0,
                producers: HashMap::new(),
                epochs: BTreeMap::new(),
                waiters: Vec::new(),
                offline: false,
                txn: TxnState::default(),
                generation: 0,
            }),
            deleted: AtomicBool::new(false),
        }
    }

    /// Current log start, high watermark and log end.
    pub fn offsets(&self) -> Offsets {
        let mut s = self.state.lock();
        Offsets {
            log_start: s.log_start,
            high_watermark: s.hw,
            log_end: s.next_offset,
            last_stable: s.bound(Upto::LastStable),
        }
    }

    /// Aborted transactions overlapping `from..to` (last offset >= from,
    /// first offset < to): what a read_committed fetch of that range
    /// returns, and what the log cleaner asks before keeping a
    /// transactional record.
    pub fn aborted_ranges(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.state.lock().txn.aborted_in(from, to)
    }

    /// First offset of `producer_id`'s open transaction here, if it has one.
    pub fn open_transaction(&self, producer_id: i64) -> Option<i64> {
        self.state.lock().txn.open_since(producer_id)
    }

    /// Role and leader epoch as last applied from the state znode.
    pub fn role(&self) -> (Role, i32) {
        let s = self.state.lock();
        (s.repl.role, s.repl.epoch)
    }

    /// Become (or stay) leader at `epoch` with the committed `isr`. Follower
    /// LEOs are forgotten on an epoch change: the HW only moves again once
    /// every ISR member has fetched from this leader (never backwards).
    pub fn become_leader(&self, me: i32, epoch: i32, isr: &[i32]) {
        let mut s = self.state.lock();
        if s.repl.role != Role::Leader || s.repl.epoch != epoch {
            s.repl.followers.clear();
        }
        s.repl.role = Role::Leader;
        s.repl.epoch = epoch;
        s.repl.me = me;
        s.repl.isr = isr.to_vec();
        recompute_hw(&mut s);
        wake(&mut s);
    }

    /// Become follower at `epoch`: produce is refused from now on and waiting
    /// acks=all requests are woken (they answer NOT_LEADER_OR_FOLLOWER).
    pub fn become_follower(&self, me: i32, epoch: i32) {
        let mut s = self.state.lock();
        s.repl.role = Role::Follower;
        s.repl.epoch = epoch;
        s.repl.me = me;
        s.repl.isr.clear();
        s.repl.followers.clear();
        wake(&mut s);
    }

    /// Leader: add `r` to the ISR counted for the HW (before its znode write).
    pub fn isr_add(&self, r: i32) {
        let mut s = self.state.lock();
        if s.repl.role == Role::Leader && !s.repl.isr.contains(&r) {
            if s.repl.isr.is_empty() {
                let me = s.repl.me;
                s.repl.isr.push(me);
            }
            s.repl.isr.push(r);
            recompute_hw(&mut s);
        }
    }

    /// Leader: the ISR now committed in the state znode (a shrink counts from here).
    pub fn set_isr(&self, isr: &[i32]) {
        let mut s = self.state.lock();
        if s.repl.role == Role::Leader {
            s.repl.isr = isr.to_vec();
            recompute_hw(&mut s);
            wake(&mut s);
        }
    }

    /// Leader: the ISR counted for the HW and what is known of each follower.
    pub fn isr_view(&self) -> (Vec<i32>, Vec<(i32, FollowerState)>, i64) {
        let s = self.state.lock();
        (
            s.repl.isr.clone(),
            s.repl.followers.iter().map(|(k, v)| (*k, *v)).collect(),
            s.hw,
        )
    }

    /// Leader: a follower fetched from `offset`. Records its LEO, advances the
    /// HW, and says whether it is a candidate to (re)join the ISR: not in it,
    /// and caught up to the HW and into the current epoch.
    pub fn follower_fetched(&self, replica: i32, offset: i64) -> bool {
        let now = Instant::now();
        let mut s = self.state.lock();
        if s.repl.role != Role::Leader || offset > s.durable {
            return false;
        }
        let leo_now = s.durable;
        let f = s.repl.followers.entry(replica).or_insert(FollowerState {
            leo: -1,
            caught_up: now - Duration::from_secs(3600),
            last_fetch: now,
            leo_at_last_fetch: leo_now,
        });
        if offset >= leo_now {
            f.caught_up = now;
        } else if offset >= f.leo_at_last_fetch && f.leo >= 0 {
            f.caught_up = f.caught_up.max(f.last_fetch);
        }
        f.leo = offset;
        f.last_fetch = now;
        f.leo_at_last_fetch = leo_now;
        let before = s.hw;
        recompute_hw(&mut s);
        if s.hw != before {
            wake(&mut s);
        }
        let epoch_start = s.epochs.get(&s.repl.epoch).copied().unwrap_or(0);
        !s.repl.isr.contains(&replica) && offset >= s.hw && offset >= epoch_start
    }

    /// Follower: adopt the leader's HW, capped by what is written locally.
    pub fn set_follower_hw(&self, leader_hw: i64) {
        let mut s = self.state.lock();
        if s.repl.role == Role::Follower {
            let hw = leader_hw.min(s.durable).max(s.log_start);
            if hw != s.hw {
                s.hw = hw;
                wake(&mut s);
            }
        }
    }

    /// Log end offset of what is written to RocksDB.
    pub fn durable_end(&self) -> i64 {
        self.state.lock().durable
    }

    /// Bytes stored (for size retention and DescribeLogDirs).
    pub fn size_bytes(&self) -> u64 {
        self.state.lock().size_bytes
    }

    /// Register `n` to be woken when the high watermark moves.
    pub fn add_waiter(&self, n: &Arc<Notify>) {
        let mut s = self.state.lock();
        s.waiters.retain(|w| w.strong_count() > 0);
        s.waiters.push(Arc::downgrade(n));
    }

    /// Bytes readable at or after `offset` (bounded by `limit`), for
    /// min_bytes: committed ones for consumers, written ones for followers.
    pub fn available_bytes(&self, offset: i64, limit: usize, upto: Upto) -> usize {
        let mut s = self.state.lock();
        let bound = s.bound(upto);
        if offset >= bound {
            return 0;
        }
        let mut total = 0usize;
        let start = s
            .index
            .range(..=offset)
            .next_back()
            .map(|(b, _)| *b)
            .unwrap_or(offset);
        for (_, m) in s.index.range(start..) {
            if m.last_offset >= bound {
                break;
            }
            total += m.size as usize;
            if total >= limit {
                break;
            }
        }
        total
    }

    /// First offset whose batch max timestamp is >= ts, with that batch's base.
    pub(crate) fn batch_for_timestamp(&self, ts: i64) -> Option<(i64, i64)> {
        let s = self.state.lock();
        s.index
            .iter()
            .find(|(_, m)| m.max_timestamp >= ts && m.last_offset < s.hw)
            .map(|(b, m)| (*b, m.last_offset))
    }

    /// Largest max timestamp and its batch (ListOffsets MAX_TIMESTAMP).
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let s = self.state.lock();
        s.index
            .iter()
            .filter(|(_, m)| m.last_offset < s.hw)
            .max_by_key(|(_, m)| m.max_timestamp)
            .map(|(_, m)| (m.max_timestamp, m.last_offset))
    }

    /// (epoch, end offset) per KIP-101 for a follower or client asking about `epoch`.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let s = self.state.lock();
        let Some((&first_epoch, _)) = s.epochs.iter().next() else {
            return (-1, -1);
        };
        if epoch < first_epoch {
            return (-1, -1);
        }
        let found = s.epochs.range(..=epoch).next_back().map(|(e, _)| *e);
        let end = s
            .epochs
            .range(epoch + 1..)
            .next()
            .map(|(_, o)| *o)
            .unwrap_or(s.next_offset);
        (found.unwrap_or(-1), end)
    }

    /// Latest leader epoch seen in this log (-1 if none).
    pub fn latest_epoch(&self) -> i32 {
        self.state
            .lock()
            .epochs
            .keys()
            .next_back()
            .copied()
            .unwrap_or(-1)
    }
}

impl PState {
    /// The end of what a read `upto` may return.
    pub(crate) fn bound(&mut self, upto: Upto) -> i64 {
        match upto {
            Upto::HighWatermark => self.hw,
            Upto::LogEnd => self.durable,
            Upto::LastStable => self.txn.last_stable(self.hw, self.log_start),
        }
    }

    /// Account a batch just placed at `base..=last`: index it, keep it in the
    /// tail cache (evicting the oldest past the cap) and note its producer's
    /// sequence. The leader's and the follower's appends share this.
    pub(crate) fn record_batch(&mut self, h: &BatchHeader, base: i64, last: i64, data: &Bytes) {
        self.next_offset = last + 1;
        self.index_batch(h, base, last, data.len());
        self.cache_bytes += data.len();
        self.cache.push_back((base, last, data.clone()));
        while self.cache_bytes > TAIL_CACHE_BYTES && self.cache.len() > 1 {
            if let Some((_, _, d)) = self.cache.pop_front() {
                self.cache_bytes -= d.len();
            }
        }
    }

    /// Index a stored batch at `base..=last` of `size` bytes and note its
    /// producer's sequence (recovery, and every append through `record_batch`).
    pub(crate) fn index_batch(&mut self, h: &BatchHeader, base: i64, last: i64, size: usize) {
        self.index.insert(
            base,
            BatchMeta {
                last_offset: last,
                max_timestamp: h.max_timestamp,
                size: size as u32,
            },
        );
        self.size_bytes += size as u64;
        if h.producer_id >= 0 {
            note_producer(&mut self.producers, h, base, last);
        }
    }
}

pub(crate) fn note_producer(
    map: &mut HashMap<i64, ProducerEntry>,
    h: &BatchHeader,
    base: i64,
    last: i64,
) {
    let e = map.entry(h.producer_id).or_default();
    e.last_timestamp = e.last_timestamp.max(h.max_timestamp);
    if h.producer_epoch != e.epoch {
        e.epoch = h.producer_epoch;
        e.recent.clear();
    }
    if h.is_control() {
        // Markers take no sequence numbers: only their epoch counts.
        return;
    }
    e.recent
        .push_back((h.base_sequence, h.last_sequence(), base, last));
    while e.recent.len() > PRODUCER_WINDOW {
        e.recent.pop_front();
    }
}

/// Apply the HW rule (`hw::recompute_hw`) to this partition's state.
pub(crate) fn recompute_hw(s: &mut PState) {
    if s.repl.role != Role::Leader {
        return;
    }
    super::hw::recompute_hw(&s.repl, s.durable, &mut s.hw);
}

pub(crate) fn wake(s: &mut PState) {
    for w in s.waiters.drain(..) {
        if let Some(n) = w.upgrade() {
            n.notify_one();
        }
    }
}
