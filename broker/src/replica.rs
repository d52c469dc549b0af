//! Replication (DESIGN.md → Replication): applying the roles the state znodes
//! give this broker, the follower side (one fetcher task per leader broker,
//! fetching with Kafka Fetch and `replica_id` = our id, truncating per KIP-101
//! first), and the leader side's ISR maintenance (shrink after
//! `replica.lag.time.max.ms`, expand when caught up, written to the state
//! znode conditionally).
//!
//! The HW itself lives in the partition (`log::Partition`): the fetch handler
//! records follower LEOs there and the HW moves under the same lock that
//! append and the role check use, so produce never races a demotion.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::batch;
use crate::broker::Broker;
use crate::client::{ClientConfig, Conn};
use crate::cluster::Cluster;
use crate::handlers::err;
use crate::log::{LogError, Partition, Role};

/// Partition key: (topic, index).
type Key = (String, i32);

/// A partition this broker follows, as its fetcher sees it.
#[derive(Clone)]
struct Followed {
    part: Arc<Partition>,
    epoch: i32,
    /// False until the KIP-101 truncation for this epoch is done.
    truncated: bool,
}

/// One fetcher task's partition set (all led by one broker).
struct Fetcher {
    parts: Arc<Mutex<HashMap<Key, Followed>>>,
    wake: Arc<Notify>,
}

/// A partition this broker leads.
struct Led {
    part: Arc<Partition>,
    epoch: i32,
    /// State znode version last applied or written by us.
    version: i32,
    /// When leadership in this epoch started (stands in for a follower's
    /// caught-up time until it first fetches).
    since: Instant,
    /// An ISR write is in flight: the reconciler leaves the ISR alone.
    writing: bool,
}

/// Roles, fetchers and ISR bookkeeping of this broker.
pub struct ReplicaManager {
    fetchers: Mutex<HashMap<i32, Fetcher>>,
    led: Mutex<HashMap<Key, Led>>,
    /// Nudged by the fetch handler when a follower may rejoin the ISR.
    isr_check: Notify,
    /// Controlled shutdown under way: follow nobody, so no leader takes this
    /// broker back into an ISR it is about to leave.
    stopping: AtomicBool,
}

impl ReplicaManager {
    /// An empty manager.
    pub fn new() -> ReplicaManager {
        ReplicaManager {
            fetchers: Mutex::new(HashMap::new()),
            led: Mutex::new(HashMap::new()),
            isr_check: Notify::new(),
            stopping: AtomicBool::new(false),
        }
    }

    /// Stop fetching for good (controlled shutdown): every fetcher goes idle
    /// and reconcile_roles starts no new one.
    pub fn stop_following(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for f in self.fetchers.lock().values() {
            f.parts.lock().clear();
        }
    }

    /// Ask the ISR task to look now (a follower caught up).
    pub fn nudge_isr(&self) {
        self.isr_check.notify_one();
    }

    /// Partitions followed, per leader (for tests and logs).
    pub fn followed_count(&self) -> usize {
        self.fetchers
            .lock()
            .values()
            .map(|f| f.parts.lock().len())
            .sum()
    }

    fn unfollow(&self, key: &Key) {
        for f in self.fetchers.lock().values() {
            f.parts.lock().remove(key);
        }
    }
}

impl Default for ReplicaManager {
    fn default() -> Self {
        Self::new()
    }
}

/// Apply the cache's state znodes to every local partition: become leader or
/// follower on a leader or epoch change, adopt ISR changes made by others
/// (the controller). Runs on every metadata change; cheap when nothing moved.
pub fn reconcile_roles(b: &Arc<Broker>) {
    let view = b.cache.view();
    let me = b.id();
    let rm = &b.replicas;
    let mut seen: HashSet<Key> = HashSet::new();
    for part in b.log.all() {
        let Some(t) = view.topics.get(&part.topic) else {
            continue;
        };
        let Some(pm) = t.partitions.iter().find(|m| m.index == part.index) else {
            continue;
        };
        let Some(st) = &pm.state else { continue };
        let key: Key = (part.topic.clone(), part.index);
        seen.insert(key.clone());
        let (role, epoch) = part.role();
        if st.leader == me {
            rm.unfollow(&key);
            let mut led = rm.led.lock();
            let fresh = role != Role::Leader || epoch != st.leader_epoch || !led.contains_key(&key);
            if fresh {
                part.become_leader(me, st.leader_epoch, &st.isr);
                tracing::info!(topic = %part.topic, partition = part.index, epoch = st.leader_epoch, isr = ?st.isr, "became leader");
                led.insert(
                    key,
                    Led {
                        part: part.clone(),
                        epoch: st.leader_epoch,
                        version: pm.state_version,
                        since: Instant::now(),
                        writing: false,
                    },
                );
            } else if let Some(l) = led.get_mut(&key) {
                if !l.writing && pm.state_version != l.version {
                    l.version = pm.state_version;
                    part.set_isr(&st.isr);
                }
            }
        } else {
            rm.led.lock().remove(&key);
            if !pm.replicas.contains(&me) {
                continue;
            }
            if role != Role::Follower || epoch != st.leader_epoch {
                part.become_follower(me, st.leader_epoch);
                tracing::info!(topic = %part.topic, partition = part.index, leader = st.leader, epoch = st.leader_epoch, "became follower");
            }
            if st.leader < 0 || rm.stopping.load(Ordering::SeqCst) {
                rm.unfollow(&key);
                continue;
            }
            let mut fetchers = rm.fetchers.lock();
            for (l, f) in fetchers.iter() {
                if *l != st.leader {
                    f.parts.lock().remove(&key);
                }
            }
            let f = fetchers.entry(st.leader).or_insert_with(|| {
                let f = Fetcher {
                    parts: Arc::new(Mutex::new(HashMap::new())),
                    wake: Arc::new(Notify::new()),
                };
                tokio::spawn(fetcher_loop(
                    b.clone(),
                    st.leader,
                    f.parts.clone(),
                    f.wake.clone(),
                ));
                f
            });
            let mut parts = f.parts.lock();
            let stale = parts.get(&key).is_none_or(|x| x.epoch != st.leader_epoch);
            if stale {
                parts.insert(
                    key,
                    Followed {
                        part: part.clone(),
                        epoch: st.leader_epoch,
                        truncated: false,
                    },
                );
                f.wake.notify_one();
            }
        }
    }
    // Partitions deleted locally: forget them.
    rm.led.lock().retain(|k, _| seen.contains(k));
    for f in rm.fetchers.lock().values() {
        f.parts.lock().retain(|k, _| seen.contains(k));
    }
}

fn fetch_config(b: &Broker) -> ClientConfig {
    let mut cfg = ClientConfig::new("");
    cfg.client_id = format!("fjord-replica-{}", b.id());
    // A SIGSTOPped leader must not stall the follower forever.
    cfg.request_timeout = Duration::from_secs(5);
    cfg
}

/// Follower side for every partition led by `leader`: truncate (KIP-101),
/// then fetch from the log end, append verbatim, adopt the leader's HW.
async fn fetcher_loop(
    b: Arc<Broker>,
    leader: i32,
    parts: Arc<Mutex<HashMap<Key, Followed>>>,
    wake: Arc<Notify>,
) {
    let mut stop = b.shutdown_signal();
    let cfg = fetch_config(&b);
    let mut conn: Option<Conn> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        if *stop.borrow() {
            return;
        }
        let set: Vec<(Key, Followed)> = parts
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if set.is_empty() {
            conn = None;
            tokio::select! {
                _ = wake.notified() => {}
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        if conn.is_none() {
            let addr = b
                .cache
                .view()
                .brokers
                .get(&leader)
                .map(|i| format!("{}:{}", i.host, i.port));
            let Some(addr) = addr else {
                pause(&mut stop, &wake, Duration::from_millis(200)).await;
                continue;
            };
            match Conn::open(&addr, &cfg).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::debug!(leader, error = %e, "cannot reach leader; retrying");
                    pause(&mut stop, &wake, Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let res = fetch_round(&b, c, &parts, set).await;
        match res {
            Ok(true) => backoff = Duration::from_millis(50),
            Ok(false) => {
                pause(&mut stop, &wake, backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
            Err(e) => {
                tracing::debug!(leader, error = %e, "replica fetch failed; reconnecting");
                conn = None;
                pause(&mut stop, &wake, Duration::from_millis(100)).await;
            }
        }
    }
}

async fn pause(stop: &mut tokio::sync::watch::Receiver<bool>, wake: &Notify, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = wake.notified() => {}
        _ = stop.changed() => {}
    }
}

/// Errors of one fetch round (the connection is dropped on any of them).
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("{0}")]
    Client(#[from] crate::client::ClientError),
    #[error("{0}")]
    Log(#[from] LogError),
}

/// One round: truncations owed, then one Fetch for every partition that is
/// ready. Ok(false) = nothing useful happened (errors from the leader): back off.
async fn fetch_round(
    b: &Arc<Broker>,
    c: &mut Conn,
    parts: &Mutex<HashMap<Key, Followed>>,
    set: Vec<(Key, Followed)>,
) -> Result<bool, RoundError> {
    let mut progressed = false;
    let mut ready = Vec::new();
    for (key, f) in set {
        if f.truncated {
            ready.push((key, f));
            continue;
        }
        if truncate_for_epoch(b, c, &key, &f).await? {
            if let Some(x) = parts.lock().get_mut(&key) {
                if x.epoch == f.epoch {
                    x.truncated = true;
                }
            }
            progressed = true;
            ready.push((key, f));
        }
    }
    if ready.is_empty() {
        return Ok(progressed);
    }
    let mut by_topic: HashMap<String, Vec<fetch_request::FetchPartition>> = HashMap::new();
    for ((topic, idx), f) in &ready {
        let o = f.part.offsets();
        by_topic.entry(topic.clone()).or_default().push(
            fetch_request::FetchPartition::default()
                .with_partition(*idx)
                .with_current_leader_epoch(f.epoch)
                .with_fetch_offset(o.log_end)
                .with_log_start_offset(o.log_start)
                .with_partition_max_bytes(1 << 20),
        );
    }
    let wait = Duration::from_millis(500);
    let req = FetchRequest::default()
        .with_replica_id(b.id().into())
        .with_max_wait_ms(wait.as_millis() as i32)
        .with_min_bytes(1)
        .with_max_bytes(16 << 20)
        .with_session_epoch(-1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    fetch_request::FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(t)))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let resp: FetchResponse = c.call_wait(&req, 12, wait).await?;
    let lookup: HashMap<Key, Followed> = ready.into_iter().collect();
    for t in resp.responses {
        let topic = t.topic.0.to_string();
        for pd in t.partitions {
            let key = (topic.clone(), pd.partition_index);
            let Some(f) = lookup.get(&key) else { continue };
            match pd.error_code {
                err::NONE => {
                    let records = pd.records.unwrap_or_default();
                    if !records.is_empty() {
                        let batches = batch::split_batches(&records).map_err(LogError::Batch)?;
                        match b.log.append_replica(&f.part, batches) {
                            Ok(Some(done)) => {
                                done.await
                                    .map_err(|_| LogError::Stopped)?
                                    .map_err(LogError::Meta)?;
                            }
                            Ok(None) => {}
                            Err(LogError::NonContiguous { expected, got }) => {
                                tracing::warn!(
                                    topic,
                                    partition = pd.partition_index,
                                    expected,
                                    got,
                                    "gap in replicated batches; re-truncating"
                                );
                                retruncate(parts, &key, f.epoch);
                                continue;
                            }
                            // Demoted/promoted meanwhile: the reconciler moves us.
                            Err(LogError::NotLeader) => continue,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    f.part.set_follower_hw(pd.high_watermark);
                    progressed = true;
                }
                err::OFFSET_OUT_OF_RANGE => {
                    let o = f.part.offsets();
                    if pd.log_start_offset > o.log_end {
                        b.log.barrier().await?;
                        b.log.reset_to(&f.part, pd.log_start_offset)?;
                    } else {
                        tracing::warn!(
                            topic,
                            partition = pd.partition_index,
                            log_end = o.log_end,
                            "fetch offset out of range on the leader; re-truncating"
                        );
                        retruncate(parts, &key, f.epoch);
                    }
                }
                code => {
                    tracing::debug!(
                        topic,
                        partition = pd.partition_index,
                        code,
                        "leader refused replica fetch"
                    );
                }
            }
        }
    }
    Ok(progressed)
}

fn retruncate(parts: &Mutex<HashMap<Key, Followed>>, key: &Key, epoch: i32) {
    if let Some(x) = parts.lock().get_mut(key) {
        if x.epoch == epoch {
            x.truncated = false;
        }
    }
}

/// KIP-101/279: ask the leader where our latest epoch ends on its log and cut
/// ours there (never blindly at our HW, which may lag what was committed).
/// Ok(false) = the leader could not answer yet.
async fn truncate_for_epoch(
    b: &Arc<Broker>,
    c: &mut Conn,
    key: &Key,
    f: &Followed,
) -> Result<bool, RoundError> {
    // Writes queued while this replica still led must land before cutting.
    b.log.barrier().await?;
    let own_epoch = f.part.latest_epoch();
    let o = f.part.offsets();
    if own_epoch < 0 {
        if o.log_end > o.high_watermark {
            b.log.truncate(&f.part, o.high_watermark)?;
        }
        return Ok(true);
    }
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(b.id().into())
        .with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(TopicName(StrBytes::from_string(key.0.clone())))
                .with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(key.1)
                        .with_current_leader_epoch(f.epoch)
                        .with_leader_epoch(own_epoch),
                ]),
        ]);
    let resp: OffsetForLeaderEpochResponse = c.call(&req, 4).await?;
    let Some(e) = resp
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition == key.1)
    else {
        return Ok(false);
    };
    if e.error_code != err::NONE {
        tracing::debug!(topic = %key.0, partition = key.1, code = e.error_code, "OffsetForLeaderEpoch refused");
        return Ok(false);
    }
    let target = if e.leader_epoch < 0 || e.end_offset < 0 {
        // No common epoch at all: the committed prefix is all we can trust.
        o.high_watermark
    } else if e.leader_epoch == own_epoch {
        e.end_offset.min(o.log_end)
    } else {
        // The leader's largest epoch <= ours is older: cut at the end of that
        // epoch on our side too (KIP-279), whichever is smaller.
        let (_, ours) = f.part.end_offset_for_epoch(e.leader_epoch);
        e.end_offset.min(ours).min(o.log_end)
    };
    if target < o.log_end {
        b.log.truncate(&f.part, target)?;
    }
    Ok(true)
}

/// Leader side: every so often (and when nudged), shrink the ISR by followers
/// that have not caught up within `replica.lag.time.max.ms` and add followers
/// that caught up, each change a conditional write of the state znode.
pub async fn isr_loop(b: Arc<Broker>) {
    let Cluster::Zk(_) = &b.cluster else { return };
    let mut stop = b.shutdown_signal();
    let lag = b.config.replica_lag_time_max;
    let every = (lag / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = b.replicas.isr_check.notified() => {}
            _ = stop.changed() => return,
        }
        let jobs: Vec<(Key, Arc<Partition>, i32, i32, Instant)> = b
            .replicas
            .led
            .lock()
            .iter()
            .filter(|(_, l)| !l.writing)
            .map(|(k, l)| (k.clone(), l.part.clone(), l.epoch, l.version, l.since))
            .collect();
        let view = b.cache.view();
        for (key, part, epoch, version, since) in jobs {
            let Some(pm) = view
                .topics
                .get(&key.0)
                .and_then(|t| t.partitions.iter().find(|m| m.index == key.1))
            else {
                continue;
            };
            // Our last write has not reached the cache yet: its ISR is stale.
            if pm.replicas.len() < 2 || version > pm.state_version {
                continue;
            }
            let (_, followers, hw) = part.isr_view();
            let committed = pm.isr();
            let now = Instant::now();
            let f = |r: i32| followers.iter().find(|(id, _)| *id == r).map(|(_, s)| *s);
            let remove: Vec<i32> = committed
                .iter()
                .copied()
                .filter(|r| *r != b.id())
                .filter(|r| {
                    let caught = f(*r).map(|s| s.caught_up.max(since)).unwrap_or(since);
                    now.duration_since(caught) > lag
                })
                .collect();
            let epoch_start = part.end_offset_for_epoch(epoch - 1).1.max(0);
            let add: Vec<i32> = pm
                .replicas
                .iter()
                .copied()
                .filter(|r| {
                    !committed.contains(r)
                        && !pm.removing.contains(r)
                        && view.brokers.contains_key(r)
                        && !view.shutting_down.contains(r)
                })
                .filter(|r| {
                    f(*r).is_some_and(|s| {
                        s.leo >= hw
                            && s.leo >= epoch_start
                            && now.duration_since(s.caught_up) <= lag
                    })
                })
                .collect();
            if remove.is_empty() && add.is_empty() {
                continue;
            }
            // Maximal ISR: an added member counts for the HW before the write.
            for r in &add {
                part.isr_add(*r);
            }
            if let Some(l) = b.replicas.led.lock().get_mut(&key) {
                l.writing = true;
            }
            let res = match &b.cluster {
                Cluster::Zk(z) => {
                    z.write_isr(
                        &key.0,
                        key.1,
                        b.id(),
                        epoch,
                        &committed,
                        version,
                        &add,
                        &remove,
                    )
                    .await
                }
                Cluster::Standalone(_) => Ok(None),
            };
            let mut led = b.replicas.led.lock();
            let Some(l) = led.get_mut(&key) else { continue };
            l.writing = false;
            match res {
                Ok(Some((new_isr, new_version))) if l.epoch == epoch => {
                    tracing::info!(topic = %key.0, partition = key.1, isr = ?new_isr, added = ?add, removed = ?remove, "ISR changed");
                    l.version = new_version;
                    part.set_isr(&new_isr);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(topic = %key.0, partition = key.1, error = %e, "ISR write failed; will retry");
                    // Force a re-read of the committed ISR on the next change.
                    l.version = -1;
                }
            }
        }
    }
}
