//! Leader side of the ISR: every so often (and when a follower's fetch
//! nudges it), drop followers that have not caught up within
//! `replica.lag.time.max.ms` and add those that have, each change a
//! conditional write through `Cluster::write_isr`. The HW those members
//! hold back is computed in `log::hw`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::manager::{Key, ReplicaManager};
use crate::cluster::IsrChange;
use crate::log::Partition;

/// Leader side: every so often (and when nudged), shrink the ISR by followers
/// that have not caught up within `replica.lag.time.max.ms` and add followers
/// that caught up, each change a conditional write of the state znode.
pub async fn isr_loop(rm: Arc<ReplicaManager>) {
    if !rm.cluster.replicated() {
        return;
    }
    let mut stop = rm.shutdown.clone();
    let lag = rm.lag;
    let every = (lag / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = rm.isr_check.notified() => {}
            _ = stop.changed() => return,
        }
        let jobs: Vec<(Key, Arc<Partition>, i32, i32, Instant)> = rm
            .led
            .lock()
            .iter()
            .filter(|(_, l)| !l.writing)
            .map(|(k, l)| (k.clone(), l.part.clone(), l.epoch, l.version, l.since))
            .collect();
        let view = rm.cache.view();
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
                .filter(|r| *r != rm.me)
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
                        && !view.withdrawn.contains(r)
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
            if let Some(l) = rm.led.lock().get_mut(&key) {
                l.writing = true;
            }
            let res = rm
                .cluster
                .write_isr(&IsrChange {
                    topic: &key.0,
                    partition: key.1,
                    me: rm.me,
                    epoch,
                    cached_isr: &committed,
                    cached_version: version,
                    add: &add,
                    remove: &remove,
                })
                .await;
            let mut led = rm.led.lock();
            let Some(l) = led.get_mut(&key) else { continue };
            l.writing = false;
            match res {
                Ok(Some((new_isr, new_version))) if l.epoch == epoch => {
                    tracing::info!(topic = %key.0, partition = key.1, isr = ?new_isr, added = ?add, removed = ?remove, "ISR changed");
                    l.version = new_version;
                    part.set_isr(&new_isr);
                    rm.metrics.isr_changed(!remove.is_empty(), !add.is_empty());
                }
                Ok(None) if l.epoch == epoch => {
                    // The state znode no longer names us leader at this epoch
                    // (the controller elected another): stop taking produce
                    // now, before the cache catches up; waiting acks=all
                    // requests answer NOT_LEADER_OR_FOLLOWER.
                    tracing::warn!(topic = %key.0, partition = key.1, epoch, "ISR write refused: replaced as leader; stepping down");
                    part.become_follower(rm.me, epoch);
                    led.remove(&key);
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
