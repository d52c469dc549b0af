//! Applying roles: make the local logs match the metadata cache (create the
//! logs of partitions this broker replicates, delete those it no longer
//! does) and apply the leader/follower roles and ISR the state znodes give,
//! starting a fetcher per leader broker. Runs on every metadata change.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::fetcher::fetcher_loop;
use super::manager::{Fetcher, Followed, Key, Led, ReplicaManager};
use crate::log::Role;

impl ReplicaManager {
    /// Make local logs match the cache: create logs for partitions this broker
    /// replicates, delete logs of topics that are gone, then apply leader and
    /// follower roles from the state znodes. Blocking (RocksDB); call from
    /// `spawn_blocking` inside the runtime.
    pub fn reconcile(self: &Arc<Self>) {
        let view = self.cache.view();
        let me = self.me;
        for t in view.topics.values() {
            if t.deleting {
                continue;
            }
            for p in &t.partitions {
                if (p.leader() == me || p.replicas.contains(&me))
                    && self.log.get(&t.name, p.index).is_none()
                {
                    if let Err(e) = self.log.ensure(&t.name, p.index) {
                        tracing::error!(topic = %t.name, partition = p.index, error = %e, "cannot create partition log");
                    }
                }
            }
        }
        if !self.cluster.loaded() {
            return;
        }
        for p in self.log.all() {
            let keep = view.topics.get(&p.topic).is_some_and(|t| {
                !t.deleting
                    && t.partitions.iter().any(|m| {
                        m.index == p.index && (m.replicas.contains(&me) || m.leader() == me)
                    })
            });
            if !keep {
                if let Err(e) = self.log.remove(&p.topic, p.index) {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "cannot delete partition log");
                }
            }
        }
        reconcile_roles(self);
    }
}

/// Apply the cache's state znodes to every local partition: become leader or
/// follower on a leader or epoch change, adopt ISR changes made by others
/// (the controller). Runs on every metadata change; cheap when nothing moved.
fn reconcile_roles(rm: &Arc<ReplicaManager>) {
    let view = rm.cache.view();
    let me = rm.me;
    let mut seen: HashSet<Key> = HashSet::new();
    for part in rm.log.all() {
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
                    rm.clone(),
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
