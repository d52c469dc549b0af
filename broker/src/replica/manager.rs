//! `ReplicaManager`: this broker's replication bookkeeping (the partitions
//! it leads with their ISR write state, one fetcher per leader broker with the
//! partitions it follows) and the handles the replication tasks use (log,
//! metadata cache, cluster state), handed over by `broker.rs` at startup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::cluster::metadata::MetadataCache;
use crate::cluster::Cluster;
use crate::log::{LogStore, Partition};
use crate::metrics::counters::BrokerMetrics;

/// Partition key: (topic, index).
pub(crate) type Key = (String, i32);

/// A partition this broker follows, as its fetcher sees it.
#[derive(Clone)]
pub(crate) struct Followed {
    pub(crate) part: Arc<Partition>,
    pub(crate) epoch: i32,
    /// False until the KIP-101 truncation for this epoch is done.
    pub(crate) truncated: bool,
}

/// One fetcher task's partition set (all led by one broker).
pub(crate) struct Fetcher {
    pub(crate) parts: Arc<Mutex<HashMap<Key, Followed>>>,
    pub(crate) wake: Arc<Notify>,
}

/// A partition this broker leads.
pub(crate) struct Led {
    pub(crate) part: Arc<Partition>,
    pub(crate) epoch: i32,
    /// State znode version last applied or written by us.
    pub(crate) version: i32,
    /// When leadership in this epoch started (stands in for a follower's
    /// caught-up time until it first fetches).
    pub(crate) since: Instant,
    /// An ISR write is in flight: the reconciler leaves the ISR alone.
    pub(crate) writing: bool,
}

/// Roles, fetchers and ISR bookkeeping of this broker.
pub struct ReplicaManager {
    /// This broker's id.
    pub(crate) me: i32,
    pub(crate) log: Arc<LogStore>,
    pub(crate) cache: Arc<MetadataCache>,
    pub(crate) cluster: Arc<Cluster>,
    /// replica.lag.time.max.ms: a follower this far behind leaves the ISR.
    pub(crate) lag: Duration,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) fetchers: Mutex<HashMap<i32, Fetcher>>,
    pub(crate) led: Mutex<HashMap<Key, Led>>,
    /// Nudged by the fetch handler when a follower may rejoin the ISR.
    pub(crate) isr_check: Notify,
    /// Controlled shutdown under way: follow nobody, so no leader takes this
    /// broker back into an ISR it is about to leave.
    pub(crate) stopping: AtomicBool,
    /// Counts the leader's ISR shrinks and expands.
    pub(crate) metrics: Arc<BrokerMetrics>,
}

impl ReplicaManager {
    /// A manager with nothing led or followed yet.
    pub fn new(
        me: i32,
        log: Arc<LogStore>,
        cache: Arc<MetadataCache>,
        cluster: Arc<Cluster>,
        lag: Duration,
        shutdown: watch::Receiver<bool>,
        metrics: Arc<BrokerMetrics>,
    ) -> ReplicaManager {
        ReplicaManager {
            me,
            log,
            cache,
            cluster,
            lag,
            shutdown,
            fetchers: Mutex::new(HashMap::new()),
            led: Mutex::new(HashMap::new()),
            isr_check: Notify::new(),
            stopping: AtomicBool::new(false),
            metrics,
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

    pub(crate) fn unfollow(&self, key: &Key) {
        for f in self.fetchers.lock().values() {
            f.parts.lock().remove(key);
        }
    }
}
