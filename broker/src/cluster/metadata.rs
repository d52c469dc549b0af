//! The metadata cache: the broker's view of brokers, topics, partition leaders
//! and topic configs, fed by coordinator watches (or the standalone store) and
//! read lock-free-ish on every request (an `Arc` snapshot swapped on change).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// A live broker as registered under `/brokers/ids/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    /// The inter-broker listener's advertised address.
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Every advertised listener: (name, security protocol, host, port), as
    /// the znode's `endpoints` and `listener_security_protocol_map` say.
    /// Metadata answers a client with the listener it connected on.
    pub endpoints: Vec<ListenerEndpoint>,
}

/// One advertised listener of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerEndpoint {
    pub name: String,
    pub protocol: String,
    pub host: String,
    pub port: u16,
}

impl BrokerInfo {
    /// The address to give a client that connected on `listener` (empty:
    /// unknown, the inter-broker address); a broker without that listener
    /// gets None (Kafka leaves it out of the answer).
    pub fn address_for(&self, listener: &str) -> Option<(&str, u16)> {
        if listener.is_empty() || self.endpoints.is_empty() {
            return Some((&self.host, self.port));
        }
        self.endpoints
            .iter()
            .find(|e| e.name == listener)
            .map(|e| (e.host.as_str(), e.port))
    }
}

/// One partition's placement and leadership (`.../partitions/<p>/state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub leader: i32,
    pub leader_epoch: i32,
    #[serde(default)]
    pub controller_epoch: i32,
    pub isr: Vec<i32>,
}

/// One partition as the cache knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMeta {
    pub index: i32,
    pub replicas: Vec<i32>,
    /// None until the controller has written the state znode.
    pub state: Option<PartitionState>,
    /// The state znode's version: the leader's conditional ISR writes start from it.
    pub state_version: i32,
    /// A reassignment in progress (KIP-455): replicas being added (catching
    /// up, not yet counted as the target's) and being removed (kept until the
    /// target set is in sync). Both empty when none.
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

impl PartitionMeta {
    /// Leader id, or -1 when not yet elected.
    pub fn leader(&self) -> i32 {
        self.state.as_ref().map(|s| s.leader).unwrap_or(-1)
    }
    /// Current leader epoch, or -1.
    pub fn leader_epoch(&self) -> i32 {
        self.state.as_ref().map(|s| s.leader_epoch).unwrap_or(-1)
    }
    /// In-sync replicas (the replicas when unknown).
    pub fn isr(&self) -> Vec<i32> {
        self.state
            .as_ref()
            .map(|s| s.isr.clone())
            .unwrap_or_else(|| self.replicas.clone())
    }
}

/// A topic: id, partitions, per-topic config overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    pub topic_id: uuid::Uuid,
    pub partitions: Vec<PartitionMeta>,
    pub configs: BTreeMap<String, String>,
    /// Marked for deletion (`/admin/delete_topics/<t>` exists).
    pub deleting: bool,
}

/// An immutable snapshot of cluster metadata.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: BTreeMap<i32, BrokerInfo>,
    pub topics: HashMap<String, Arc<TopicMeta>>,
    /// Brokers that must hand over their leaderships and leave the ISRs:
    /// in controlled shutdown (`/admin/controlled_shutdown/<id>`) or with
    /// their log dir refusing writes (`/admin/log_dir_offline/<id>`, issue
    /// 19). Never chosen as leader, never taken back into an ISR.
    pub withdrawn: BTreeSet<i32>,
}

impl ClusterView {
    /// Partitions the controller still owes a controlled shutdown of broker
    /// `me`: led by it with another live, in-sync, not-stopping replica to
    /// take over, or led elsewhere with `me` still in the ISR.
    pub fn shutdown_pending(&self, me: i32) -> usize {
        let other_ok =
            |r: &i32| *r != me && self.brokers.contains_key(r) && !self.withdrawn.contains(r);
        self.topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|p| p.state.as_ref())
            .filter(|s| {
                if s.leader == me {
                    s.isr.iter().any(other_ok)
                } else {
                    s.isr.contains(&me) && other_ok(&s.leader)
                }
            })
            .count()
    }
}

/// Shared, swappable cluster view plus a change signal for the reconciler.
pub struct MetadataCache {
    view: RwLock<Arc<ClusterView>>,
    changed: watch::Sender<u64>,
}

impl Default for MetadataCache {
    fn default() -> Self {
        Self::new()
    }
}

impl MetadataCache {
    /// An empty cache (no brokers, no topics).
    pub fn new() -> MetadataCache {
        let (tx, _) = watch::channel(0);
        MetadataCache {
            view: RwLock::new(Arc::new(ClusterView {
                controller_id: -1,
                ..Default::default()
            })),
            changed: tx,
        }
    }

    /// The current snapshot (cheap: one Arc clone).
    pub fn view(&self) -> Arc<ClusterView> {
        self.view.read().clone()
    }

    /// Apply a change and notify subscribers.
    pub fn update(&self, f: impl FnOnce(&mut ClusterView)) {
        {
            let mut g = self.view.write();
            let mut v = (**g).clone();
            f(&mut v);
            *g = Arc::new(v);
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// A receiver that ticks on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Spread `partitions` × `rf` replicas over `brokers` the way Kafka's
/// rack-unaware assignment does: leaders round-robin from a start index,
/// followers shifted.
pub fn assign_replicas(
    brokers: &[i32],
    partitions: i32,
    rf: i16,
    start: usize,
    first_partition: i32,
) -> Option<BTreeMap<i32, Vec<i32>>> {
    let n = brokers.len();
    if n == 0 || rf < 1 || rf as usize > n {
        return None;
    }
    let mut sorted = brokers.to_vec();
    sorted.sort_unstable();
    let mut out = BTreeMap::new();
    for i in 0..partitions {
        let p = first_partition + i;
        let lead = (start + p as usize) % n;
        let mut r = Vec::with_capacity(rf as usize);
        for j in 0..rf as usize {
            r.push(sorted[(lead + j) % n]);
        }
        out.insert(p, r);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_spreads_leaders() {
        let a = assign_replicas(&[3, 1, 2], 6, 2, 0, 0).unwrap();
        let leaders: Vec<i32> = a.values().map(|r| r[0]).collect();
        assert_eq!(leaders, vec![1, 2, 3, 1, 2, 3]);
        assert!(a.values().all(|r| r[0] != r[1]));
        assert!(assign_replicas(&[1], 1, 2, 0, 0).is_none());
    }
}
