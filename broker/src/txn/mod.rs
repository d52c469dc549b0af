//! The transaction coordinator (KIP-98): for each `transactional.id` this
//! broker coordinates, the producer id and epoch, the transaction's state,
//! partitions and groups, durable in a [`store::TxnStore`]; the
//! InitProducerId / AddPartitionsToTxn / AddOffsetsToTxn / EndTxn /
//! TxnOffsetCommit / DescribeTransactions / ListTransactions logic; marker
//! writing at the end of a transaction; aborting timed-out transactions;
//! forgetting idle ids (Kafka's transactional-id expiration,
//! [`TxnCoordinator::remove_expired`]).
//!
//! * placement: like a group's ([`crate::group::coordinator_for`], the
//!   rendezvous hash over live brokers), so when a broker dies its ids move
//!   to others, which load the records and finish any prepared transaction;
//! * `state`: the record and the pure state-machine rules;
//! * `store` / `zk_store`: where records live (conditional writes fence a
//!   deposed coordinator);
//! * `markers`: WriteTxnMarkers to partition leaders.
//!
//! Requests for one id are serialised by that id's async mutex; marker
//! writing runs in a task of its own and never holds it. EndTxn of a
//! transaction without offsets answers once Prepare* is durable (as Kafka's
//! coordinator does); a request for the id that arrives while the markers
//! are still being written waits for them ([`TxnCoordinator::settled`])
//! instead of answering CONCURRENT_TRANSACTIONS at once, which a client would
//! only retry after a backoff.

pub mod codes;
#[cfg(test)]
mod expiry_tests;
pub mod markers;
pub mod state;
pub mod store;
pub mod zk_store;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::cluster::metadata::MetadataCache;
use crate::group::coordinator_for;
use crate::log::producer_ids::ProducerIds;
use crate::wire::clock::now_ms;
use markers::{Marker, MarkerSender};
use state::{InitStep, TxnMeta, TxnState};
use store::{PendingOffsets, Stored, TxnStore, TxnStoreError};

/// How long a request waits for the markers of the id's previous
/// transaction before answering CONCURRENT_TRANSACTIONS (which the client
/// retries); also how long EndTxn of a transaction with offsets waits for
/// its completion before answering anyway (the outcome is durable once
/// Prepare* is written).
const END_WAIT: Duration = Duration::from_secs(5);

/// How long after its markers a transaction without offsets waits for its
/// Complete* record. The record is not needed for correctness — a coordinator
/// that loads Prepare* (after a failover) writes the same markers again, which
/// the partitions take as a no-op — and a busy producer's next request
/// (AddPartitionsToTxn of the next transaction) replaces the Prepare* record
/// first, so a transaction costs two coordinator writes (Ongoing, Prepare*)
/// instead of three. Only an id left idle gets the Complete* write.
const LAZY_COMPLETE: Duration = Duration::from_secs(1);

/// What this broker knows of one id: not read yet, absent, or the record.
#[derive(Debug, Clone)]
enum Slot {
    Unloaded,
    Absent,
    Have(Stored),
}

type SlotRef = Arc<tokio::sync::Mutex<Slot>>;
type SlotGuard = tokio::sync::OwnedMutexGuard<Slot>;

/// The settings the coordinator reads.
#[derive(Debug, Clone, Copy)]
pub struct TxnSettings {
    pub me: i32,
    pub max_timeout_ms: i32,
    pub abort_interval: Duration,
    /// `transactional.id.expiration.ms`.
    pub expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub expiry_interval: Duration,
}

/// One transaction as DescribeTransactions shows it.
#[derive(Debug, Clone)]
pub struct Described {
    pub id: String,
    pub meta: TxnMeta,
}

/// The transaction coordinator of one broker.
pub struct TxnCoordinator {
    settings: TxnSettings,
    cache: Arc<MetadataCache>,
    store: Arc<dyn TxnStore>,
    ids: Arc<ProducerIds>,
    slots: Mutex<HashMap<String, SlotRef>>,
    /// Ids whose markers a task of ours is writing now; the receiver turns
    /// true when that task ends.
    completing: Mutex<HashMap<String, watch::Receiver<bool>>>,
    markers: MarkerSender,
    shutdown: watch::Receiver<bool>,
}

/// Result of InitProducerId: (error, producer id, epoch).
pub type InitResult = (i16, i64, i16);

impl TxnCoordinator {
    /// Build the coordinator and start its timeout/recovery and expiry
    /// loops. Must run inside the tokio runtime.
    pub fn start(
        settings: TxnSettings,
        cache: Arc<MetadataCache>,
        store: Arc<dyn TxnStore>,
        ids: Arc<ProducerIds>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<TxnCoordinator> {
        let c = Arc::new(TxnCoordinator {
            markers: MarkerSender::new(cache.clone(), settings.me),
            settings,
            cache,
            store,
            ids,
            slots: Mutex::new(HashMap::new()),
            completing: Mutex::new(HashMap::new()),
            shutdown,
        });
        tokio::spawn(sweep_loop(
            c.clone(),
            settings.abort_interval,
            |c| async move { c.abort_timed_out().await },
        ));
        tokio::spawn(sweep_loop(
            c.clone(),
            settings.expiry_interval,
            |c| async move {
                c.remove_expired(now_ms()).await;
            },
        ));
        c
    }

    /// Is this broker the coordinator of `id`? NONE, or the error to answer.
    pub fn owns(&self, id: &str) -> i16 {
        if id.is_empty() {
            return codes::INVALID_REQUEST;
        }
        if coordinator_for(&self.cache.view(), id) != Some(self.settings.me) {
            self.slots.lock().remove(id);
            return codes::NOT_COORDINATOR;
        }
        codes::NONE
    }

    fn slot(&self, id: &str) -> SlotRef {
        self.slots
            .lock()
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Slot::Unloaded)))
            .clone()
    }

    /// The locked, loaded slot of `id` once no marker writing of ours is
    /// running for it: a request that finds the previous transaction still
    /// prepared waits (up to [`END_WAIT`]) for its markers, then looks
    /// again. After that wait it gets the slot as is (still prepared: the
    /// caller answers CONCURRENT_TRANSACTIONS).
    async fn settled(self: &Arc<Self>, id: &str) -> Result<SlotGuard, i16> {
        let deadline = tokio::time::Instant::now() + END_WAIT;
        loop {
            let mut g = self.slot(id).lock_owned().await;
            self.ensure_loaded(id, &mut g).await?;
            if !matches!(&*g, Slot::Have(s) if s.meta.state.is_prepare()) {
                return Ok(g);
            }
            let running = self.completing.lock().get(id).cloned();
            let Some(mut done) = running.filter(|_| !*self.shutdown.borrow()) else {
                return Ok(g);
            };
            drop(g);
            // An Err inside (the task ended without saying so) looks again too.
            let timed_out = tokio::time::timeout_at(deadline, done.wait_for(|d| *d))
                .await
                .is_err();
            if timed_out {
                let mut g = self.slot(id).lock_owned().await;
                self.ensure_loaded(id, &mut g).await?;
                return Ok(g);
            }
        }
    }

    /// Load the slot if needed; a loaded prepared transaction gets its
    /// completion started (a previous coordinator may have left it).
    async fn ensure_loaded(self: &Arc<Self>, id: &str, slot: &mut Slot) -> Result<(), i16> {
        if matches!(slot, Slot::Unloaded) {
            *slot = match self.store.load(id).await {
                Ok(Some(s)) => Slot::Have(s),
                Ok(None) => Slot::Absent,
                Err(e) => {
                    tracing::warn!(id, error = %e, "cannot load transaction record");
                    return Err(codes::COORDINATOR_LOAD_IN_PROGRESS);
                }
            };
        }
        if let Slot::Have(s) = slot {
            if s.meta.state.is_prepare() {
                self.spawn_complete(id);
            }
        }
        Ok(())
    }

    /// Conditional write of `meta` over the slot's version; the error code
    /// for the client on failure (a fenced write forgets the slot).
    async fn write(&self, id: &str, slot: &mut Slot, meta: TxnMeta) -> Result<i32, i16> {
        let version = match slot {
            Slot::Have(s) => Some(s.version),
            _ => None,
        };
        match self.store.put(id, &meta, version).await {
            Ok(v) => {
                *slot = Slot::Have(Stored { meta, version: v });
                Ok(v)
            }
            Err(e) => Err(self.store_error(id, slot, e)),
        }
    }

    fn store_error(&self, id: &str, slot: &mut Slot, e: TxnStoreError) -> i16 {
        *slot = Slot::Unloaded;
        match e {
            TxnStoreError::Fenced => {
                tracing::info!(id, "transaction record written elsewhere; reloading");
                codes::NOT_COORDINATOR
            }
            e => {
                tracing::warn!(id, error = %e, "transaction record write failed");
                codes::COORDINATOR_NOT_AVAILABLE
            }
        }
    }

    /// InitProducerId with a transactional id. `expected`: the KIP-360
    /// (producer id, epoch) the client sent, if any.
    pub async fn init_producer_id(
        self: &Arc<Self>,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        version: i16,
    ) -> InitResult {
        if id.is_empty() {
            return (codes::INVALID_REQUEST, -1, -1);
        }
        if timeout_ms <= 0 || timeout_ms > self.settings.max_timeout_ms {
            return (codes::INVALID_TRANSACTION_TIMEOUT, -1, -1);
        }
        let code = self.owns(id);
        if code != codes::NONE {
            return (code, -1, -1);
        }
        let mut g = match self.settled(id).await {
            Ok(g) => g,
            Err(c) => return (c, -1, -1),
        };
        let now = now_ms();
        let step = match &*g {
            Slot::Have(s) => s
                .meta
                .init(expected, timeout_ms, now, version, || self.ids.allocate()),
            _ => {
                let m = TxnMeta::fresh(self.ids.allocate(), timeout_ms, now);
                let (p, e) = (m.producer_id, m.producer_epoch);
                InitStep::Done(Some(m), p, e)
            }
        };
        match step {
            InitStep::Done(None, p, e) => (codes::NONE, p, e),
            InitStep::Done(Some(m), p, e) => match self.write(id, &mut g, m).await {
                Ok(_) => (codes::NONE, p, e),
                Err(c) => (c, -1, -1),
            },
            InitStep::AbortFirst(m) => {
                if let Err(c) = self.write(id, &mut g, m).await {
                    return (c, -1, -1);
                }
                drop(g);
                self.spawn_complete(id);
                (codes::CONCURRENT_TRANSACTIONS, -1, -1)
            }
            InitStep::Error(c) => (c, -1, -1),
        }
    }

    /// AddPartitionsToTxn (`parts`) or AddOffsetsToTxn (`group`).
    pub async fn add(
        self: &Arc<Self>,
        id: &str,
        pid: i64,
        epoch: i16,
        parts: &BTreeMap<String, BTreeSet<i32>>,
        group: Option<&str>,
        version: i16,
    ) -> i16 {
        let code = self.owns(id);
        if code != codes::NONE {
            return code;
        }
        let mut g = match self.settled(id).await {
            Ok(g) => g,
            Err(c) => return c,
        };
        let Slot::Have(s) = &*g else {
            return codes::INVALID_PRODUCER_ID_MAPPING;
        };
        let c = s.meta.check_producer(pid, epoch, version, 2);
        if c != codes::NONE {
            return c;
        }
        match s.meta.add(parts, group, now_ms()) {
            None => codes::NONE,
            Some(m) => match self.write(id, &mut g, m).await {
                Ok(_) => codes::NONE,
                Err(c) => c,
            },
        }
    }

    /// EndTxn: prepare the outcome durably, then write the markers and
    /// complete in a task. Answers once Prepare* is durable — the outcome
    /// is decided then, and the id's next request waits for the markers —
    /// except for a transaction with offsets, which waits for its completion
    /// (up to [`END_WAIT`]): only that makes the offsets visible to a plain
    /// OffsetFetch, and clients without require_stable (kafka-python) read
    /// their commit back right after it.
    pub async fn end(
        self: &Arc<Self>,
        id: &str,
        pid: i64,
        epoch: i16,
        commit: bool,
        version: i16,
    ) -> i16 {
        let code = self.owns(id);
        if code != codes::NONE {
            return code;
        }
        let mut g = match self.settled(id).await {
            Ok(g) => g,
            Err(c) => return c,
        };
        let Slot::Have(s) = &*g else {
            return codes::INVALID_PRODUCER_ID_MAPPING;
        };
        let m = &s.meta;
        if m.producer_id == pid && m.producer_epoch == epoch && m.state.is_prepare() {
            let same = (m.state == TxnState::PrepareCommit) == commit;
            return if same {
                codes::CONCURRENT_TRANSACTIONS
            } else {
                codes::INVALID_TXN_STATE
            };
        }
        let c = m.check_producer(pid, epoch, version, 2);
        if c != codes::NONE {
            return c;
        }
        let prepared = match m.end(commit, now_ms()) {
            Err(c) => return c,
            Ok(None) => return codes::NONE,
            Ok(Some(p)) => p,
        };
        let offsets = !prepared.groups.is_empty();
        if let Err(c) = self.write(id, &mut g, prepared).await {
            return c;
        }
        drop(g);
        let mut done = self.spawn_complete(id);
        if offsets {
            let _ = tokio::time::timeout(END_WAIT, done.wait_for(|d| *d)).await;
        }
        codes::NONE
    }

    /// Start writing markers and completing `id` unless a task already is;
    /// the receiver turns true when the (new or running) task ends.
    fn spawn_complete(self: &Arc<Self>, id: &str) -> watch::Receiver<bool> {
        let (tx, rx) = {
            let mut running = self.completing.lock();
            if let Some(rx) = running.get(id) {
                return rx.clone();
            }
            let (tx, rx) = watch::channel(false);
            running.insert(id.to_string(), rx.clone());
            (tx, rx)
        };
        let me = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            me.complete(&id).await;
            me.completing.lock().remove(&id);
            let _ = tx.send(true);
        });
        rx
    }

    /// Markers for the prepared transaction of `id`, then its Complete record.
    async fn complete(self: &Arc<Self>, id: &str) {
        let mut stop = self.shutdown.clone();
        loop {
            let slot = self.slot(id);
            let (meta, version) = match &*slot.lock().await {
                Slot::Have(s) if s.meta.state.is_prepare() => (s.meta.clone(), s.version),
                _ => return,
            };
            let commit = meta.state == TxnState::PrepareCommit;
            let marker = Marker {
                producer_id: meta.producer_id,
                producer_epoch: meta.producer_epoch,
                commit,
                coordinator_epoch: version,
                partitions: meta.partitions.clone(),
            };
            if !self.markers.write_all(&marker, &mut stop).await {
                return;
            }
            let mut g = slot.lock().await;
            match &*g {
                Slot::Have(s) if s.version == version => {}
                _ => return,
            }
            let done = meta.completed(now_ms());
            if meta.groups.is_empty() {
                // Nothing to move (no offsets): the Complete record is written
                // lazily (see LAZY_COMPLETE); the store keeps Prepare* at
                // `version`, which the id's next write replaces.
                tracing::debug!(id, commit, "transaction completed (record lazily)");
                *g = Slot::Have(Stored {
                    meta: done,
                    version,
                });
                drop(g);
                self.spawn_lazy_complete(id, version);
                return;
            }
            match self.store.finish(id, &done, version, commit).await {
                Ok(v) => {
                    tracing::debug!(id, commit, "transaction completed");
                    *g = Slot::Have(Stored {
                        meta: done,
                        version: v,
                    });
                    return;
                }
                Err(TxnStoreError::Fenced) => {
                    *g = Slot::Unloaded;
                    return;
                }
                Err(e) => {
                    tracing::warn!(id, error = %e, "cannot complete transaction; retrying");
                    drop(g);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }

    /// Write the Complete* record of `id` after [`LAZY_COMPLETE`] unless the
    /// id was written since (its stored version moved past `version`).
    fn spawn_lazy_complete(self: &Arc<Self>, id: &str, version: i32) {
        let me = self.clone();
        let id = id.to_string();
        let mut stop = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(LAZY_COMPLETE) => {}
                _ = stop.changed() => return,
            }
            let slot = me.slot(&id);
            let mut g = slot.lock().await;
            let meta = match &*g {
                Slot::Have(s) if s.version == version && s.meta.state.is_complete() => {
                    s.meta.clone()
                }
                _ => return,
            };
            match me.store.put(&id, &meta, Some(version)).await {
                Ok(v) => *g = Slot::Have(Stored { meta, version: v }),
                Err(TxnStoreError::Fenced) => *g = Slot::Unloaded,
                // Harmless: a successor finding Prepare* rewrites the same markers.
                Err(e) => tracing::debug!(id, error = %e, "lazy Complete record not written"),
            }
        });
    }

    /// TxnOffsetCommit's transactional half (the group checks are the
    /// caller's): store `offsets` as pending in the transaction if it is
    /// ongoing with `group` added by this producer.
    pub async fn txn_offset_commit(
        &self,
        id: &str,
        group: &str,
        pid: i64,
        epoch: i16,
        offsets: PendingOffsets,
        version: i16,
    ) -> i16 {
        if id.is_empty() {
            return codes::INVALID_REQUEST;
        }
        let check = move |m: &TxnMeta| m.check_offsets(pid, epoch, group, version);
        match self.store.put_offsets(id, group, offsets, &check).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(id, group, error = %e, "cannot store transactional offsets");
                codes::COORDINATOR_NOT_AVAILABLE
            }
        }
    }

    /// The (topic, partition)s of `group` that a not-yet-completed
    /// transaction holds an offset for; None when the store cannot say (then
    /// every partition counts). OffsetFetch's require_stable answers
    /// UNSTABLE_OFFSET_COMMIT for them.
    pub async fn unstable(&self, group: &str) -> Option<BTreeSet<(String, i32)>> {
        match self.store.pending_for_group(group).await {
            Ok(all) => Some(
                all.into_iter()
                    .flat_map(|ts| {
                        ts.into_iter()
                            .flat_map(|(t, ps)| ps.into_keys().map(move |p| (t.clone(), p)))
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(group, error = %e, "cannot read pending transactional offsets");
                None
            }
        }
    }

    /// DescribeTransactions for one id: the record, or the error code.
    pub async fn describe(self: &Arc<Self>, id: &str) -> Result<Described, i16> {
        let code = self.owns(id);
        if code != codes::NONE {
            return Err(code);
        }
        let slot = self.slot(id);
        let mut g = slot.lock().await;
        self.ensure_loaded(id, &mut g).await?;
        match &*g {
            Slot::Have(s) => Ok(Described {
                id: id.to_string(),
                meta: s.meta.clone(),
            }),
            _ => Err(codes::TRANSACTIONAL_ID_NOT_FOUND),
        }
    }

    /// Every transaction this broker coordinates (ListTransactions).
    pub async fn list(self: &Arc<Self>) -> Result<Vec<Described>, i16> {
        let ids = match self.store.list().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list transactions");
                return Err(codes::COORDINATOR_LOAD_IN_PROGRESS);
            }
        };
        let mut out = Vec::new();
        for id in ids {
            if coordinator_for(&self.cache.view(), &id) != Some(self.settings.me) {
                continue;
            }
            if let Ok(d) = self.describe(&id).await {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// The ids this broker coordinates, for a sweep (`what`: the log's word for
    /// it) to lock and load one by one; none when the store cannot list them.
    async fn owned_ids(&self, what: &str) -> Vec<String> {
        match self.store.list().await {
            Ok(ids) => ids
                .into_iter()
                .filter(|id| self.owns(id) == codes::NONE)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, sweep = what, "cannot list transactions");
                Vec::new()
            }
        }
    }

    /// One pass of the timeout loop: abort (with an epoch bump, fencing the
    /// producer) every Ongoing transaction past its timeout, and finish any
    /// prepared one (a previous coordinator's, after failover).
    pub async fn abort_timed_out(self: &Arc<Self>) {
        for id in self.owned_ids("timeout").await {
            let slot = self.slot(&id);
            let mut g = slot.lock().await;
            if self.ensure_loaded(&id, &mut g).await.is_err() {
                continue;
            }
            let Slot::Have(s) = &*g else { continue };
            let Some(m) = s.meta.timeout_abort(now_ms(), || self.ids.allocate()) else {
                continue;
            };
            tracing::info!(
                id,
                producer_id = m.producer_id,
                "aborting timed-out transaction"
            );
            if self.write(&id, &mut g, m).await.is_ok() {
                drop(g);
                self.spawn_complete(&id);
            }
        }
    }

    /// One pass of Kafka's transactional-id expiration as of `now`: forget
    /// every id this broker coordinates that has no transaction in it and
    /// was last used `transactional.id.expiration.ms` ago
    /// ([`TxnMeta::should_expire`]). Returns how many went.
    ///
    /// The record leaves the store under the id's lock (a request here
    /// waits for it) and at the version held, so a write elsewhere since
    /// (another coordinator's InitProducerId) keeps it. An id without a
    /// record is one never seen: InitProducerId starts it over (a new
    /// producer id, epoch 0), DescribeTransactions answers
    /// TRANSACTIONAL_ID_NOT_FOUND, ListTransactions leaves it out.
    pub async fn remove_expired(self: &Arc<Self>, now: i64) -> usize {
        let mut removed = 0;
        for id in self.owned_ids("expiry").await {
            let slot = self.slot(&id);
            let mut g = slot.lock().await;
            if self.ensure_loaded(&id, &mut g).await.is_err() {
                continue;
            }
            let version = match &*g {
                Slot::Have(s) if s.meta.should_expire(now, self.settings.expiration_ms) => {
                    s.version
                }
                _ => continue,
            };
            match self.store.remove(&id, version).await {
                Ok(()) => {
                    tracing::info!(id, "transactional id expired");
                    *g = Slot::Absent;
                    removed += 1;
                }
                Err(TxnStoreError::Fenced) => {
                    tracing::debug!(id, "expired id written since; kept");
                    *g = Slot::Unloaded;
                }
                Err(e) => {
                    tracing::warn!(id, error = %e, "cannot remove expired transactional id");
                    continue;
                }
            }
            drop(g);
            self.forget(&id, &slot);
        }
        removed
    }

    /// Drop `id`'s slot from the cache unless a request holds or waits for
    /// it (they clone it under the map's lock, so the count is exact here):
    /// that request then sees it Absent, and any later one loads afresh.
    fn forget(&self, id: &str, slot: &SlotRef) {
        let mut slots = self.slots.lock();
        let ours = slots.get(id).is_some_and(|s| Arc::ptr_eq(s, slot));
        // The map's reference and the caller's.
        if ours && Arc::strong_count(slot) == 2 {
            slots.remove(id);
        }
    }
}

/// Run `pass` every `every` until shutdown: the timeout abort and the
/// expiry each have one.
async fn sweep_loop<F, Fut>(c: Arc<TxnCoordinator>, every: Duration, pass: F)
where
    F: Fn(Arc<TxnCoordinator>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut stop = c.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        pass(c.clone()).await;
    }
}
