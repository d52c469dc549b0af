//! The group coordinator: Kafka's classic consumer-group protocol (assignors
//! run in the clients) plus committed offsets kept in fjord-coord.
//!
//! * placement: a group's coordinator is the live broker with the highest
//!   rendezvous score for the group id ([`coordinator_for`]), so every broker
//!   agrees without talking, and a broker's loss moves only its own groups;
//! * `state`: one group's state machine, run under the group's mutex; long
//!   polls (JoinGroup, SyncGroup) answer through oneshot channels, awaited
//!   after the lock is released; a timer task per group expires sessions and
//!   rebalances;
//! * `offsets`: OffsetCommit/OffsetFetch storage under `/consumers`.
//!
//! The request handlers that drive this state are in `api::groups`.

pub mod offsets;
pub mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::cluster::metadata::{ClusterView, MetadataCache};
use crate::config::BrokerConfig;
use crate::wire::error as err;
use offsets::OffsetStore;
use state::{Group, State, Timing};

/// Rendezvous score of (group, broker): FNV-1a of the group id mixed with the
/// broker id through splitmix64. Stable across versions and platforms.
pub fn rendezvous_score(group: &str, broker: i32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in group.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h ^ (broker as u32 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The coordinator of `group` among the live brokers in `view` (None: no broker).
pub fn coordinator_for(view: &ClusterView, group: &str) -> Option<i32> {
    view.brokers
        .keys()
        .copied()
        .max_by_key(|id| (rendezvous_score(group, *id), *id))
}

/// See [`Timing::first_join_window`]: long enough for clients started together,
/// short beside a heartbeat interval.
const FIRST_JOIN_WINDOW: std::time::Duration = std::time::Duration::from_millis(100);

pub(crate) struct GroupHandle {
    pub(crate) g: Mutex<Group>,
    pub(crate) wake: Notify,
}

/// Every group this broker coordinates, plus the offsets store.
pub struct Groups {
    pub(crate) me: i32,
    pub(crate) cache: Arc<MetadataCache>,
    pub(crate) timing: Timing,
    pub(crate) min_session: i32,
    pub(crate) max_session: i32,
    pub(crate) metadata_max: usize,
    pub(crate) groups: Mutex<HashMap<String, Arc<GroupHandle>>>,
    /// Committed offsets (coordinator-backed, watch-fed cache).
    pub offsets: Arc<OffsetStore>,
}

impl Groups {
    /// Build the coordinator and start its background tasks (offsets watch on
    /// the broker's coordinator session `sessions`, or the local file when
    /// standalone; ownership watcher). Must run inside the tokio runtime.
    pub fn start(
        config: &BrokerConfig,
        cache: Arc<MetadataCache>,
        sessions: Option<watch::Receiver<fjord_zk::client::ZkClient>>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Groups> {
        let offsets = OffsetStore::start(sessions, config.log_dir.clone(), shutdown.clone());
        let g = Arc::new(Groups {
            me: config.broker_id,
            cache,
            timing: Timing {
                initial_rebalance_delay: config.group_initial_rebalance_delay,
                first_join_window: FIRST_JOIN_WINDOW,
            },
            min_session: config.group_min_session_timeout_ms,
            max_session: config.group_max_session_timeout_ms,
            metadata_max: config.offset_metadata_max_bytes,
            groups: Mutex::new(HashMap::new()),
            offsets,
        });
        tokio::spawn(ownership_task(g.clone(), shutdown));
        g
    }

    pub(crate) fn coordinator_check(&self, group: &str) -> i16 {
        if group.is_empty() {
            return err::INVALID_GROUP_ID;
        }
        if coordinator_for(&self.cache.view(), group) != Some(self.me) {
            return err::NOT_COORDINATOR;
        }
        if !self.offsets.ready() {
            return err::COORDINATOR_LOAD_IN_PROGRESS;
        }
        err::NONE
    }

    pub(crate) fn get(&self, group: &str) -> Option<Arc<GroupHandle>> {
        self.groups.lock().get(group).cloned()
    }

    pub(crate) fn get_or_create(&self, group: &str) -> Arc<GroupHandle> {
        let mut m = self.groups.lock();
        if let Some(h) = m.get(group) {
            return h.clone();
        }
        let h = Arc::new(GroupHandle {
            g: Mutex::new(Group::new(group, self.timing)),
            wake: Notify::new(),
        });
        m.insert(group.to_string(), h.clone());
        tokio::spawn(timer_task(h.clone()));
        h
    }

    pub(crate) fn remove(&self, group: &str, error: i16) {
        if let Some(h) = self.groups.lock().remove(group) {
            h.g.lock().kill(error);
            h.wake.notify_one();
        }
    }

    /// Groups this broker coordinates right now, with state and protocol type.
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        let view = self.cache.view();
        let mut out: BTreeMap<String, (String, &'static str)> = BTreeMap::new();
        for g in self.offsets.groups() {
            if coordinator_for(&view, &g) == Some(self.me) {
                out.insert(g, (String::new(), State::Empty.name()));
            }
        }
        let handles: Vec<Arc<GroupHandle>> = self.groups.lock().values().cloned().collect();
        for h in handles {
            let g = h.g.lock();
            if g.state == State::Dead {
                continue;
            }
            out.insert(
                g.id.clone(),
                (g.protocol_type.clone().unwrap_or_default(), g.state.name()),
            );
        }
        out.into_iter().map(|(k, (t, st))| (k, t, st)).collect()
    }

    /// Live groups this broker coordinates, with their member counts (what
    /// DescribeGroups would list), for the cluster metrics.
    pub fn member_counts(&self) -> Vec<(String, usize)> {
        let handles: Vec<Arc<GroupHandle>> = self.groups.lock().values().cloned().collect();
        handles
            .iter()
            .filter_map(|h| {
                let g = h.g.lock();
                (g.state != State::Dead).then(|| (g.id.clone(), g.members.len()))
            })
            .collect()
    }
}

async fn timer_task(h: Arc<GroupHandle>) {
    loop {
        let next = {
            let g = h.g.lock();
            if g.state == State::Dead {
                return;
            }
            g.next_deadline()
        };
        match next {
            Some(t) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(t)) => {
                        h.g.lock().tick(Instant::now());
                    }
                    _ = h.wake.notified() => {}
                }
            }
            None => h.wake.notified().await,
        }
    }
}

/// Drop groups that moved to another broker (membership change) and answer
/// their waiters NOT_COORDINATOR; on shutdown, drop them all.
async fn ownership_task(g: Arc<Groups>, mut shutdown: watch::Receiver<bool>) {
    let mut rx = g.cache.subscribe();
    let mut last: BTreeSet<i32> = g.cache.view().brokers.keys().copied().collect();
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = shutdown.changed() => {
                let names: Vec<String> = g.groups.lock().keys().cloned().collect();
                for n in names {
                    g.remove(&n, err::NOT_COORDINATOR);
                }
                return;
            }
        }
        let view = g.cache.view();
        let now: BTreeSet<i32> = view.brokers.keys().copied().collect();
        if now == last {
            continue;
        }
        last = now;
        let names: Vec<String> = g.groups.lock().keys().cloned().collect();
        for n in names {
            if coordinator_for(&view, &n) != Some(g.me) {
                tracing::info!(group = %n, "group moved to another coordinator; unloading");
                g.remove(&n, err::NOT_COORDINATOR);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::metadata::BrokerInfo;

    #[test]
    fn rendezvous_is_deterministic_and_spreads() {
        let mut v = ClusterView::default();
        for id in 1..=3 {
            v.brokers.insert(
                id,
                BrokerInfo {
                    id,
                    host: "h".into(),
                    port: 1,
                    rack: None,
                    endpoints: Vec::new(),
                },
            );
        }
        let mut count = [0usize; 4];
        for i in 0..300 {
            let g = format!("group-{i}");
            let c = coordinator_for(&v, &g).unwrap();
            assert_eq!(coordinator_for(&v, &g), Some(c));
            count[c as usize] += 1;
        }
        assert!(count[1] > 50 && count[2] > 50 && count[3] > 50, "{count:?}");
        // Removing broker 3 moves only broker 3's groups.
        let mut v2 = v.clone();
        v2.brokers.remove(&3);
        for i in 0..300 {
            let g = format!("group-{i}");
            let before = coordinator_for(&v, &g).unwrap();
            if before != 3 {
                assert_eq!(coordinator_for(&v2, &g), Some(before));
            }
        }
    }
}
