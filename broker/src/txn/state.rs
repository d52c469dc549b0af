//! One transactional id's durable record and the pure rules of Kafka's
//! transaction state machine (KIP-98, KIP-360, KIP-588) over it: which
//! request is valid in which state, what it changes, and which error code a
//! client gets otherwise. No I/O here; `txn::TxnCoordinator` loads, applies
//! and stores.
//!
//! ```text
//!  Empty ──AddPartitions/AddOffsets──▶ Ongoing ──EndTxn(commit)──▶ PrepareCommit ──markers──▶ CompleteCommit
//!    ▲                                   │  └──EndTxn(abort) / timeout / Init──▶ PrepareAbort ──markers──▶ CompleteAbort
//!    └──────────── InitProducerId (epoch bump) ◀── Complete* ──AddPartitions──▶ Ongoing
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::codes;

/// Kafka's TransactionState names (DescribeTransactions/ListTransactions
/// show them as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
}

impl TxnState {
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
        }
    }

    pub fn parse(s: &str) -> Option<TxnState> {
        [
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::PrepareAbort,
            TxnState::CompleteCommit,
            TxnState::CompleteAbort,
            TxnState::Dead,
        ]
        .into_iter()
        .find(|st| st.name() == s)
    }

    /// Every marker written: CompleteCommit or CompleteAbort.
    pub fn is_complete(self) -> bool {
        matches!(self, TxnState::CompleteCommit | TxnState::CompleteAbort)
    }

    /// Markers are being written: requests wait (CONCURRENT_TRANSACTIONS).
    pub fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }

    /// No transaction in progress, so the id may expire (Kafka's
    /// `isExpirationAllowed`): an Ongoing one is aborted by its timeout
    /// first, a Prepare* one still owes its markers.
    pub fn expiration_allowed(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}

/// The durable record of one transactional id (`/transactions/<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMeta {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The id and epoch before the last bump (-1: none), so a retried
    /// KIP-360 InitProducerId gets the current epoch instead of a fence.
    #[serde(default = "minus_one_i64")]
    pub last_producer_id: i64,
    #[serde(default = "minus_one_i16")]
    pub last_producer_epoch: i16,
    pub state: TxnState,
    /// Partitions in the current transaction (topic -> partitions).
    #[serde(default)]
    pub partitions: BTreeMap<String, BTreeSet<i32>>,
    /// Groups whose offsets the transaction carries (AddOffsetsToTxn).
    #[serde(default)]
    pub groups: BTreeSet<String>,
    pub timeout_ms: i32,
    /// When the transaction began (first AddPartitions/AddOffsets), -1 if none.
    pub start_ms: i64,
    pub last_update_ms: i64,
}

fn minus_one_i64() -> i64 {
    -1
}
fn minus_one_i16() -> i16 {
    -1
}

/// Highest epoch before a producer id is exhausted and a new one is needed.
pub const MAX_EPOCH: i16 = i16::MAX - 1;

/// The fence error a client at `version` of an API understands: KIP-588's
/// PRODUCER_FENCED from `since`, else INVALID_PRODUCER_EPOCH.
pub fn fenced(version: i16, since: i16) -> i16 {
    if version >= since {
        codes::PRODUCER_FENCED
    } else {
        codes::INVALID_PRODUCER_EPOCH
    }
}

/// What InitProducerId does to an existing record.
#[derive(Debug, PartialEq, Eq)]
pub enum InitStep {
    /// Answer now with this (producer id, epoch); write `meta` first if Some.
    Done(Option<TxnMeta>, i64, i16),
    /// The ongoing transaction must be aborted first (write this PrepareAbort,
    /// send markers); the client gets CONCURRENT_TRANSACTIONS and retries.
    AbortFirst(TxnMeta),
    Error(i16),
}

impl TxnMeta {
    /// A brand-new record for a first InitProducerId.
    pub fn fresh(producer_id: i64, timeout_ms: i32, now: i64) -> TxnMeta {
        TxnMeta {
            producer_id,
            producer_epoch: 0,
            last_producer_id: -1,
            last_producer_epoch: -1,
            state: TxnState::Empty,
            partitions: BTreeMap::new(),
            groups: BTreeSet::new(),
            timeout_ms,
            start_ms: -1,
            last_update_ms: now,
        }
    }

    /// InitProducerId on an existing record. `expected` is the (id, epoch)
    /// a KIP-360 client sends (None: a new producer instance, which fences
    /// every older one). `allocate` gives a fresh producer id when the epoch
    /// is exhausted.
    pub fn init(
        &self,
        expected: Option<(i64, i16)>,
        timeout_ms: i32,
        now: i64,
        version: i16,
        allocate: impl FnOnce() -> i64,
    ) -> InitStep {
        if self.state.is_prepare() {
            return InitStep::Error(codes::CONCURRENT_TRANSACTIONS);
        }
        if let Some((pid, epoch)) = expected {
            let valid =
                pid == self.producer_id || (pid == self.last_producer_id && epoch >= MAX_EPOCH);
            if !valid {
                return InitStep::Error(fenced(version, 4));
            }
            // A retry of a bump whose answer was lost: the current epoch.
            if epoch != self.producer_epoch
                && self.last_producer_epoch >= 0
                && epoch == self.last_producer_epoch
                && self.state != TxnState::Ongoing
            {
                return InitStep::Done(None, self.producer_id, self.producer_epoch);
            }
            if epoch != self.producer_epoch {
                return InitStep::Error(fenced(version, 4));
            }
        }
        if self.state == TxnState::Ongoing {
            // Fence the running producer and abort its transaction first.
            let mut m = self.bumped(now, None, allocate);
            m.state = TxnState::PrepareAbort;
            return InitStep::AbortFirst(m);
        }
        if self.state == TxnState::Dead {
            return InitStep::Error(codes::CONCURRENT_TRANSACTIONS);
        }
        let mut m = self.bumped(now, expected.map(|(_, e)| e), allocate);
        m.state = TxnState::Empty;
        m.partitions.clear();
        m.groups.clear();
        m.timeout_ms = timeout_ms;
        m.start_ms = -1;
        let (pid, epoch) = (m.producer_id, m.producer_epoch);
        InitStep::Done(Some(m), pid, epoch)
    }

    /// The record with the epoch bumped (a new producer id once the epoch is
    /// exhausted). `last` is the epoch to remember for a KIP-360 retry.
    pub fn bumped(&self, now: i64, last: Option<i16>, allocate: impl FnOnce() -> i64) -> TxnMeta {
        let mut m = self.clone();
        if self.producer_epoch >= MAX_EPOCH {
            m.last_producer_id = self.producer_id;
            m.last_producer_epoch = self.producer_epoch;
            m.producer_id = allocate();
            m.producer_epoch = 0;
        } else {
            m.last_producer_id = if last.is_some() { self.producer_id } else { -1 };
            m.last_producer_epoch = last.unwrap_or(-1);
            m.producer_epoch = self.producer_epoch + 1;
        }
        m.last_update_ms = now;
        m
    }

    /// The checks every in-transaction request (AddPartitions, AddOffsets,
    /// EndTxn, TxnOffsetCommit) makes first: id mapping, epoch, and markers
    /// in flight. `fence_since`: the API version that knows PRODUCER_FENCED.
    pub fn check_producer(&self, pid: i64, epoch: i16, version: i16, fence_since: i16) -> i16 {
        if pid != self.producer_id {
            return codes::INVALID_PRODUCER_ID_MAPPING;
        }
        if epoch != self.producer_epoch {
            return fenced(version, fence_since);
        }
        if self.state.is_prepare() {
            return codes::CONCURRENT_TRANSACTIONS;
        }
        if self.state == TxnState::Dead {
            return codes::INVALID_PRODUCER_ID_MAPPING;
        }
        codes::NONE
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the record with the partitions
    /// and groups added (None: nothing new, no write needed).
    pub fn add(
        &self,
        parts: &BTreeMap<String, BTreeSet<i32>>,
        group: Option<&str>,
        now: i64,
    ) -> Option<TxnMeta> {
        let new_parts = parts.iter().any(|(t, ps)| {
            let have = self.partitions.get(t);
            ps.iter().any(|p| !have.is_some_and(|h| h.contains(p)))
        });
        let new_group = group.is_some_and(|g| !self.groups.contains(g));
        if self.state == TxnState::Ongoing && !new_parts && !new_group {
            return None;
        }
        let mut m = self.clone();
        if m.state != TxnState::Ongoing {
            m.partitions.clear();
            m.groups.clear();
            m.start_ms = now;
            m.state = TxnState::Ongoing;
        }
        for (t, ps) in parts {
            m.partitions.entry(t.clone()).or_default().extend(ps);
        }
        if let Some(g) = group {
            m.groups.insert(g.to_string());
        }
        m.last_update_ms = now;
        Some(m)
    }

    /// EndTxn after `check_producer` passed: Ok(Some(prepared record)) to
    /// write and complete, Ok(None) for a retried end that already happened,
    /// Err(code) otherwise.
    pub fn end(&self, commit: bool, now: i64) -> Result<Option<TxnMeta>, i16> {
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut m = self.clone();
                m.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                m.last_update_ms = now;
                Ok(Some(m))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(None),
            _ => Err(codes::INVALID_TXN_STATE),
        }
    }

    /// A timed-out Ongoing transaction: fence its producer (epoch bump) and
    /// prepare the abort.
    pub fn timeout_abort(&self, now: i64, allocate: impl FnOnce() -> i64) -> Option<TxnMeta> {
        if self.state != TxnState::Ongoing || self.start_ms < 0 {
            return None;
        }
        if now < self.start_ms.saturating_add(self.timeout_ms as i64) {
            return None;
        }
        let mut m = self.bumped(now, None, allocate);
        m.state = TxnState::PrepareAbort;
        Some(m)
    }

    /// The record once every marker is written (Prepare* → Complete*).
    pub fn completed(&self, now: i64) -> TxnMeta {
        let mut m = self.clone();
        m.state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            s => s,
        };
        // As Kafka: a finished transaction holds no partitions.
        m.partitions.clear();
        m.groups.clear();
        m.last_update_ms = now;
        m
    }

    /// `transactional.id.expiration.ms` passed since the id was last used
    /// and no transaction is in it: its coordinator may forget it.
    pub fn should_expire(&self, now: i64, expiration_ms: i64) -> bool {
        self.state.expiration_allowed() && self.last_update_ms <= now.saturating_sub(expiration_ms)
    }

    /// TxnOffsetCommit's check against the record: the producer matches, the
    /// transaction is ongoing and AddOffsetsToTxn added `group`.
    pub fn check_offsets(&self, pid: i64, epoch: i16, group: &str, version: i16) -> i16 {
        let c = self.check_producer(pid, epoch, version, 3);
        if c != codes::NONE {
            return c;
        }
        if self.state != TxnState::Ongoing || !self.groups.contains(group) {
            return codes::INVALID_TXN_STATE;
        }
        codes::NONE
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn parse(data: &[u8]) -> Option<TxnMeta> {
        serde_json::from_slice(data).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(t: &str, ps: &[i32]) -> BTreeMap<String, BTreeSet<i32>> {
        [(t.to_string(), ps.iter().copied().collect())].into()
    }

    #[test]
    fn init_bumps_and_fences() {
        let m = TxnMeta::fresh(7, 1000, 0);
        let InitStep::Done(Some(m2), pid, epoch) = m.init(None, 1000, 1, 4, || 99) else {
            panic!()
        };
        assert_eq!((pid, epoch), (7, 1));
        // The old instance (epoch 0) asking for a KIP-360 bump is fenced.
        assert_eq!(
            m2.init(Some((7, 0)), 1000, 2, 4, || 99),
            InitStep::Error(codes::PRODUCER_FENCED)
        );
        assert_eq!(
            m2.init(Some((7, 0)), 1000, 2, 3, || 99),
            InitStep::Error(codes::INVALID_PRODUCER_EPOCH)
        );
        // The current one may bump, and a retry of that bump gets the same.
        let InitStep::Done(Some(m3), _, e3) = m2.init(Some((7, 1)), 1000, 3, 4, || 99) else {
            panic!()
        };
        assert_eq!(e3, 2);
        assert_eq!(
            m3.init(Some((7, 1)), 1000, 4, 4, || 99),
            InitStep::Done(None, 7, 2)
        );
    }

    #[test]
    fn exhausted_epoch_gets_a_new_id() {
        let mut m = TxnMeta::fresh(7, 1000, 0);
        m.producer_epoch = MAX_EPOCH;
        let InitStep::Done(Some(_), pid, epoch) = m.init(None, 1000, 1, 4, || 99) else {
            panic!()
        };
        assert_eq!((pid, epoch), (99, 0));
    }

    #[test]
    fn init_while_ongoing_aborts_first() {
        let m = TxnMeta::fresh(7, 1000, 0)
            .add(&parts("t", &[0]), None, 5)
            .unwrap();
        let InitStep::AbortFirst(a) = m.init(None, 1000, 6, 4, || 99) else {
            panic!()
        };
        assert_eq!(a.state, TxnState::PrepareAbort);
        assert_eq!(a.producer_epoch, 1);
        assert_eq!(
            a.init(None, 1000, 7, 4, || 99),
            InitStep::Error(codes::CONCURRENT_TRANSACTIONS)
        );
    }

    #[test]
    fn end_rules() {
        let m = TxnMeta::fresh(7, 1000, 0);
        assert_eq!(m.end(true, 1), Err(codes::INVALID_TXN_STATE));
        let o = m.add(&parts("t", &[0, 1]), None, 2).unwrap();
        assert!(o.add(&parts("t", &[1]), None, 3).is_none());
        let p = o.end(true, 4).unwrap().unwrap();
        assert_eq!(p.state, TxnState::PrepareCommit);
        assert_eq!(p.check_producer(7, 0, 3, 2), codes::CONCURRENT_TRANSACTIONS);
        let c = p.completed(5);
        assert_eq!(c.state, TxnState::CompleteCommit);
        assert_eq!(c.end(true, 6), Ok(None));
        assert_eq!(c.end(false, 6), Err(codes::INVALID_TXN_STATE));
        // The next transaction starts clean.
        let n = c.add(&parts("u", &[0]), Some("g"), 7).unwrap();
        assert_eq!(n.partitions, parts("u", &[0]));
        assert_eq!(n.start_ms, 7);
        assert_eq!(n.check_offsets(7, 0, "g", 3), codes::NONE);
        assert_eq!(n.check_offsets(7, 0, "h", 3), codes::INVALID_TXN_STATE);
        assert_eq!(
            n.check_offsets(8, 0, "g", 3),
            codes::INVALID_PRODUCER_ID_MAPPING
        );
    }

    #[test]
    fn timeout_fences_and_aborts() {
        let o = TxnMeta::fresh(7, 100, 0)
            .add(&parts("t", &[0]), None, 10)
            .unwrap();
        assert!(o.timeout_abort(109, || 99).is_none());
        let a = o.timeout_abort(110, || 99).unwrap();
        assert_eq!((a.state, a.producer_epoch), (TxnState::PrepareAbort, 1));
        assert_eq!(o.check_producer(7, 0, 3, 2), codes::NONE);
        assert_eq!(a.check_producer(7, 0, 3, 2), codes::PRODUCER_FENCED);
        assert_eq!(a.check_producer(7, 0, 1, 2), codes::INVALID_PRODUCER_EPOCH);
    }

    #[test]
    fn only_idle_ids_without_a_transaction_expire() {
        let e = TxnMeta::fresh(7, 100, 0);
        assert!(!e.should_expire(999, 1000));
        assert!(e.should_expire(1000, 1000));
        let o = e.add(&parts("t", &[0]), None, 10).unwrap();
        assert!(!o.should_expire(1_000_000, 1000));
        let p = o.end(true, 20).unwrap().unwrap();
        assert!(!p.should_expire(1_000_000, 1000));
        let c = p.completed(30);
        assert!(!c.should_expire(1029, 1000));
        assert!(c.should_expire(1030, 1000));
        let a = o.end(false, 40).unwrap().unwrap().completed(50);
        assert!(a.should_expire(1050, 1000));
    }

    #[test]
    fn json_round_trip() {
        let o = TxnMeta::fresh(7, 100, 0)
            .add(&parts("t", &[0, 3]), Some("g"), 10)
            .unwrap();
        let back = TxnMeta::parse(&o.to_json()).unwrap();
        assert_eq!(back, o);
        assert!(TxnMeta::parse(b"{not json").is_none());
    }
}
