//! Sending COMMIT/ABORT markers: Kafka's WriteTxnMarkers (API 27, the
//! broker-to-broker request) to the current leader of every partition in a
//! transaction, through the project's Kafka client. Leaders are re-resolved
//! from the metadata cache each round, and partitions are retried (on
//! NOT_LEADER_OR_FOLLOWER, a dropped connection, a leader not yet elected)
//! until every one acknowledged; a partition whose topic was deleted is
//! dropped, as Kafka drops it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use fjord_kafka::client::{ClientConfig, Conn};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;

use super::codes;
use crate::cluster::metadata::MetadataCache;

/// Pause between rounds while some partition has not acknowledged.
const BACKOFF: Duration = Duration::from_millis(100);

/// One marker to write: the transaction's producer, its outcome and where.
#[derive(Debug, Clone)]
pub struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    /// Orders coordinators for the same id (the Prepare record's version).
    pub coordinator_epoch: i32,
    pub partitions: BTreeMap<String, BTreeSet<i32>>,
}

type Shared = Arc<tokio::sync::Mutex<Option<Conn>>>;

/// Connections kept to each partition leader. A connection carries one
/// request at a time, so with one, concurrent transactions' markers to a
/// leader queued behind each other; a few let them overlap (the leader
/// appends and awaits the ISR for each independently).
const CONNS_PER_LEADER: usize = 4;

/// Connections to partition leaders, [`CONNS_PER_LEADER`] per broker, shared
/// by every transaction this coordinator completes.
pub struct MarkerSender {
    cache: Arc<MetadataCache>,
    cfg: ClientConfig,
    conns: parking_lot::Mutex<HashMap<i32, Vec<Shared>>>,
}

impl MarkerSender {
    pub fn new(cache: Arc<MetadataCache>, me: i32) -> MarkerSender {
        let mut cfg = crate::config::inter_broker_client(format!("fjord-txn-coordinator-{me}"));
        cfg.request_timeout = Duration::from_secs(10);
        MarkerSender {
            cache,
            cfg,
            conns: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The leader's connections: an idle one if any (taken locked), else
    /// the one `spread` picks, to wait for.
    async fn conn(&self, broker: i32, spread: usize) -> tokio::sync::OwnedMutexGuard<Option<Conn>> {
        let pool: Vec<Shared> = self
            .conns
            .lock()
            .entry(broker)
            .or_insert_with(|| (0..CONNS_PER_LEADER).map(|_| Shared::default()).collect())
            .clone();
        for c in &pool {
            if let Ok(g) = c.clone().try_lock_owned() {
                return g;
            }
        }
        pool[spread % pool.len()].clone().lock_owned().await
    }

    /// Write `m` to every partition; true once all acknowledged, false if
    /// `stop` turned true first.
    pub async fn write_all(&self, m: &Marker, stop: &mut watch::Receiver<bool>) -> bool {
        let mut left: BTreeSet<(String, i32)> = m
            .partitions
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
            .collect();
        let mut round = 0u64;
        while !left.is_empty() {
            if *stop.borrow() {
                return false;
            }
            if round > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(BACKOFF) => {}
                    _ = stop.changed() => {}
                }
            }
            round += 1;
            let view = self.cache.view();
            let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
            let mut gone = Vec::new();
            for (t, p) in &left {
                let meta = view.topics.get(t);
                let Some(pm) = meta.and_then(|tm| tm.partitions.iter().find(|x| x.index == *p))
                else {
                    gone.push((t.clone(), *p));
                    continue;
                };
                let leader = pm.leader();
                if let Some(b) = view.brokers.get(&leader) {
                    by_leader
                        .entry(b.id)
                        .or_default()
                        .entry(t.clone())
                        .or_default()
                        .push(*p);
                }
            }
            for tp in gone {
                tracing::warn!(topic = %tp.0, partition = tp.1, "topic gone; marker dropped");
                left.remove(&tp);
            }
            for (leader, topics) in by_leader {
                let Some(addr) = view
                    .brokers
                    .get(&leader)
                    .map(|b| format!("{}:{}", b.host, b.port))
                else {
                    continue;
                };
                for tp in self.send(leader, &addr, m, topics).await {
                    left.remove(&tp);
                }
            }
            if round.is_multiple_of(50) && !left.is_empty() {
                tracing::warn!(
                    producer_id = m.producer_id,
                    left = left.len(),
                    "transaction markers still not acknowledged"
                );
            }
        }
        true
    }

    /// One WriteTxnMarkers to one leader: the partitions it acknowledged (or
    /// that can never take the marker).
    async fn send(
        &self,
        leader: i32,
        addr: &str,
        m: &Marker,
        topics: BTreeMap<String, Vec<i32>>,
    ) -> Vec<(String, i32)> {
        let req =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(m.producer_id.into())
                .with_producer_epoch(m.producer_epoch)
                .with_transaction_result(m.commit)
                .with_coordinator_epoch(m.coordinator_epoch)
                .with_topics(
                    topics
                        .iter()
                        .map(|(t, ps)| {
                            WritableTxnMarkerTopic::default()
                                .with_name(TopicName(StrBytes::from_string(t.clone())))
                                .with_partition_indexes(ps.clone())
                        })
                        .collect(),
                )]);
        let mut slot = self.conn(leader, m.producer_id as usize).await;
        if slot.as_ref().is_none_or(|c| c.addr() != addr) {
            match Conn::open(addr, &self.cfg).await {
                Ok(c) => *slot = Some(c),
                Err(e) => {
                    tracing::debug!(leader, addr, error = %e, "cannot reach partition leader");
                    return Vec::new();
                }
            }
        }
        let Some(conn) = slot.as_mut() else {
            return Vec::new();
        };
        let resp = match conn.call(&req, 1).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(leader, error = %e, "WriteTxnMarkers failed; will retry");
                *slot = None;
                return Vec::new();
            }
        };
        let mut done = Vec::new();
        for mr in resp.markers {
            for tr in mr.topics {
                for pr in tr.partitions {
                    let t = tr.name.0.to_string();
                    match pr.error_code {
                        codes::NONE => done.push((t, pr.partition_index)),
                        c if c == codes::INVALID_PRODUCER_EPOCH
                            || c == kafka_protocol::error::ResponseError::TransactionCoordinatorFenced
                                .code() =>
                        {
                            // A newer epoch or coordinator already wrote past us.
                            tracing::warn!(topic = %t, partition = pr.partition_index, code = c,
                                "marker refused as stale; dropping it");
                            done.push((t, pr.partition_index));
                        }
                        c => {
                            tracing::debug!(topic = %t, partition = pr.partition_index, code = c,
                                "marker not written; will retry");
                        }
                    }
                }
            }
        }
        done
    }
}
