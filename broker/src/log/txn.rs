//! Transaction state of one partition (KIP-98), the partition half of
//! transactions: which producers have a transaction open here and from which
//! offset, which ended ones are decided but not yet replicated, and the
//! aborted-transaction index. It is driven by the batches themselves, on the
//! leader's appends, a follower's replicated appends and recovery alike, so
//! every replica holds the same state for the same log.
//!
//! The **last stable offset** (LSO) is the HW, or the first offset of the
//! earliest transaction that is still undecided here (open, or ended by a
//! marker the HW has not passed yet), whichever is lower; read_committed
//! consumers read up to it. An ABORT marker adds (producer id, first offset,
//! last offset = the marker's offset) to the aborted index, which Fetch
//! returns to read_committed consumers so they drop those records; the log
//! persists each entry (`keys::aborted_key`) so it outlives the batches.

use std::collections::{BTreeMap, HashMap};

use fjord_kafka::batch::{BatchHeader, ControlMarker};

use super::error::LogError;

/// One aborted transaction: the records of `producer_id` in
/// `first_offset..=last_offset` (the marker's offset) are not to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// A transaction whose marker is written but not yet below the HW.
#[derive(Debug, Clone, Copy)]
struct Decided {
    producer_id: i64,
    first_offset: i64,
    marker_offset: i64,
}

/// The transaction state of one partition (under the partition lock).
#[derive(Debug, Default)]
pub(crate) struct TxnState {
    /// Producer id → first offset of its open transaction.
    ongoing: HashMap<i64, i64>,
    /// Ended transactions whose marker the HW has not passed: still unstable.
    decided: Vec<Decided>,
    /// Markers below this were dropped from `decided` (the HW passed them):
    /// a truncation below it cannot be undone from memory.
    decided_floor: i64,
    /// Aborted transactions by last offset (the ABORT marker's offset).
    aborted: BTreeMap<i64, AbortedTxn>,
    /// The longest aborted transaction (last - first): bounds index scans.
    max_span: i64,
    /// Coordinator epoch of the last marker per producer (fences a stale
    /// transaction coordinator's markers).
    coordinator_epochs: HashMap<i64, i32>,
}

impl TxnState {
    /// Leader-side checks of a batch about to be appended, beyond the
    /// producer epoch (checked with the sequences): a producer with an open
    /// transaction writes only transactional batches here, and a marker from
    /// an older transaction coordinator is refused.
    pub(crate) fn check(
        &self,
        h: &BatchHeader,
        marker: Option<ControlMarker>,
    ) -> Result<(), LogError> {
        if h.producer_id < 0 {
            return Ok(());
        }
        if let Some(m) = marker {
            if self
                .coordinator_epochs
                .get(&h.producer_id)
                .is_some_and(|e| *e > m.coordinator_epoch)
            {
                return Err(LogError::CoordinatorFenced);
            }
            return Ok(());
        }
        if !h.is_transactional() && self.ongoing.contains_key(&h.producer_id) {
            return Err(LogError::InvalidTxnState);
        }
        Ok(())
    }

    /// Account a batch at `base..=last` (`marker`: what a control batch
    /// says). Returns the aborted-index entry an ABORT marker adds, for the
    /// caller to persist.
    pub(crate) fn apply(
        &mut self,
        h: &BatchHeader,
        marker: Option<ControlMarker>,
        base: i64,
        last: i64,
    ) -> Option<AbortedTxn> {
        if h.producer_id < 0 || !h.is_transactional() {
            return None;
        }
        let pid = h.producer_id;
        if !h.is_control() {
            self.ongoing.entry(pid).or_insert(base);
            return None;
        }
        let m = marker?;
        self.coordinator_epochs.insert(pid, m.coordinator_epoch);
        // A marker for a producer with nothing open here (an empty
        // transaction on this partition, a coordinator's retry) ends nothing.
        let first = self.ongoing.remove(&pid)?;
        self.decided.push(Decided {
            producer_id: pid,
            first_offset: first,
            marker_offset: last,
        });
        if m.commit {
            return None;
        }
        let a = AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
        };
        self.insert_aborted(a);
        Some(a)
    }

    fn insert_aborted(&mut self, a: AbortedTxn) {
        self.max_span = self.max_span.max(a.last_offset - a.first_offset);
        self.aborted.insert(a.last_offset, a);
    }

    /// Take an entry of the persisted index that the log no longer shows
    /// (its marker cleaned away), on recovery.
    pub(crate) fn restore_aborted(&mut self, a: AbortedTxn) {
        if !self.aborted.contains_key(&a.last_offset) {
            self.insert_aborted(a);
        }
    }

    /// Forget the entry ending at `last_offset` (its ABORT marker is being
    /// cleaned away with no record of the transaction left): an entry
    /// without its marker would make a consumer skip the producer's later
    /// transactions, which only that marker ends.
    pub(crate) fn drop_aborted(&mut self, last_offset: i64) {
        self.aborted.remove(&last_offset);
    }

    /// Every aborted-index entry held, by last offset.
    pub(crate) fn aborted_all(&self) -> impl Iterator<Item = &AbortedTxn> {
        self.aborted.values()
    }

    /// The last stable offset for high watermark `hw` and log start `start`.
    /// Forgets decided transactions the HW has passed.
    pub(crate) fn last_stable(&mut self, hw: i64, start: i64) -> i64 {
        if !self.decided.is_empty() {
            self.decided.retain(|d| d.marker_offset >= hw);
            self.decided_floor = self.decided_floor.max(hw);
        }
        let open = self.ongoing.values().copied().min();
        let decided = self.decided.iter().map(|d| d.first_offset).min();
        let first_unstable = open.into_iter().chain(decided).min().unwrap_or(i64::MAX);
        hw.min(first_unstable.max(start))
    }

    /// First offset of `producer_id`'s open transaction here, if any.
    pub(crate) fn open_since(&self, producer_id: i64) -> Option<i64> {
        self.ongoing.get(&producer_id).copied()
    }

    /// Aborted transactions that overlap `from..to`: last offset >= from and
    /// first offset < to (what a read_committed fetch of that range needs).
    pub(crate) fn aborted_in(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let mut out = Vec::new();
        for (last, a) in self.aborted.range(from..) {
            // Entries sort by last offset; none further on can start before
            // `to` once last - max_span >= to.
            if last.saturating_sub(self.max_span) >= to {
                break;
            }
            if a.first_offset < to {
                out.push(*a);
            }
        }
        out
    }

    /// The log now ends at `end` (follower truncation): forget what was
    /// written from `end` on. Transactions whose marker is cut off are open
    /// again. Returns false when that cannot be worked out from memory (the
    /// cut is below markers already forgotten): the caller rebuilds from the
    /// log.
    pub(crate) fn truncate(&mut self, end: i64) -> bool {
        self.ongoing.retain(|_, first| *first < end);
        let mut reopened = Vec::new();
        self.decided.retain(|d| {
            if d.marker_offset < end {
                return true;
            }
            if d.first_offset < end {
                reopened.push((d.producer_id, d.first_offset));
            }
            false
        });
        self.ongoing.extend(reopened);
        let _cut = self.aborted.split_off(&end);
        end >= self.decided_floor
    }

    /// The log now starts at `start` (retention): aborted transactions that
    /// ended before it can no longer matter to any read.
    pub(crate) fn advance_start(&mut self, start: i64) {
        self.aborted = self.aborted.split_off(&start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_kafka::batch::{control_batch, parse_header};
    use fjord_kafka::testing::{make_batch, make_txn_batch};

    fn data(st: &mut TxnState, pid: i64, base: i64, n: i64) {
        let h = parse_header(&make_txn_batch(n as i32, 1, pid, 0, 0)).unwrap();
        st.check(&h, None).unwrap();
        assert_eq!(st.apply(&h, None, base, base + n - 1), None);
    }

    fn end(st: &mut TxnState, pid: i64, at: i64, commit: bool) -> Option<AbortedTxn> {
        let m = ControlMarker {
            commit,
            coordinator_epoch: 1,
        };
        let h = parse_header(&control_batch(pid, 0, m, 1)).unwrap();
        st.check(&h, Some(m)).unwrap();
        st.apply(&h, Some(m), at, at)
    }

    #[test]
    fn lso_waits_for_open_and_unreplicated_transactions() {
        let mut st = TxnState::default();
        data(&mut st, 1, 0, 3); // pid 1: 0..=2
        data(&mut st, 2, 3, 2); // pid 2: 3..=4
        assert_eq!(st.last_stable(5, 0), 0);
        assert_eq!(end(&mut st, 1, 5, true), None);
        // Committed at 5, but the HW (5) has not passed the marker yet.
        assert_eq!(st.last_stable(5, 0), 0);
        assert_eq!(st.last_stable(6, 0), 3, "pid 2 still open from 3");
        let a = end(&mut st, 2, 6, false).unwrap();
        assert_eq!(
            a,
            AbortedTxn {
                producer_id: 2,
                first_offset: 3,
                last_offset: 6
            }
        );
        assert_eq!(st.last_stable(6, 0), 3);
        assert_eq!(st.last_stable(7, 0), 7);
        assert_eq!(st.aborted_in(0, 3), vec![]);
        assert_eq!(st.aborted_in(0, 4), vec![a]);
        assert_eq!(st.aborted_in(6, 100), vec![a]);
        assert_eq!(st.aborted_in(7, 100), vec![]);
        // A producer with an open transaction may not write outside it.
        data(&mut st, 3, 7, 1);
        let plain = parse_header(&make_batch(1, 1, 3, 1)).unwrap();
        assert!(matches!(
            st.check(&plain, None),
            Err(LogError::InvalidTxnState)
        ));
        // A marker from an older coordinator is fenced.
        let old = ControlMarker {
            commit: true,
            coordinator_epoch: 0,
        };
        let h = parse_header(&control_batch(2, 0, old, 1)).unwrap();
        assert!(matches!(
            st.check(&h, Some(old)),
            Err(LogError::CoordinatorFenced)
        ));
    }

    #[test]
    fn truncation_reopens_cut_transactions_and_retention_prunes() {
        let mut st = TxnState::default();
        data(&mut st, 1, 0, 2);
        end(&mut st, 1, 2, false);
        data(&mut st, 1, 3, 2);
        assert_eq!(st.last_stable(2, 0), 0);
        // Cut at the marker: pid 1's first transaction is open again, the
        // second never happened, its abort is forgotten.
        assert!(st.truncate(2));
        assert_eq!(st.open_since(1), Some(0));
        assert_eq!(st.aborted_in(0, 100), vec![]);
        end(&mut st, 1, 2, false);
        assert_eq!(st.last_stable(10, 0), 10);
        // The HW passed the marker: a cut below it needs the log.
        assert!(!st.truncate(1));
        let mut st = TxnState::default();
        data(&mut st, 1, 0, 2);
        end(&mut st, 1, 2, false);
        data(&mut st, 2, 3, 2);
        end(&mut st, 2, 5, false);
        st.advance_start(3);
        assert_eq!(st.aborted_in(0, 100).len(), 1);
        assert_eq!(st.last_stable(6, 6), 6);
    }
}
