//! The controller's decisions, as pure functions of the cached cluster view
//! (so they are unit-tested without a coordinator): what state a partition's
//! znode should move to (first leader, failover, controlled shutdown,
//! reassignment steps, ISR trimming) and which leaderships a preferred-leader
//! rebalance hands back. `zk` carries them out with fenced writes.

use std::collections::BTreeMap;

use super::metadata::{ClusterView, PartitionMeta, PartitionState};

/// One write the controller owes a partition.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// First state znode of a new partition.
    Create(PartitionState),
    /// A new state (leader, epoch, ISR), written only over the cached one.
    Set(PartitionState, &'static str),
    /// Every target replica is in sync and leads or follows: drop the
    /// reassignment's extra replicas from the topic znode.
    FinishReassignment(Vec<i32>),
}

/// The controller's rules for one partition, from the cache alone (pure, so
/// they are unit-tested): first leader; a new leader when the leader's broker
/// is gone (first live in-ISR replica in assignment order, else offline unless
/// unclean election) or in controlled shutdown; reassignment steps; dead or
/// stopping followers out of the ISR so acks=all does not wait for them.
pub fn plan_partition(
    p: &PartitionMeta,
    view: &ClusterView,
    unclean: bool,
    cepoch: i32,
) -> Option<Plan> {
    let alive = |r: &i32| view.brokers.contains_key(r);
    let eligible = |r: &i32| alive(r) && !view.withdrawn.contains(r);
    let reassigning = !p.adding.is_empty() || !p.removing.is_empty();
    let target: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.removing.contains(r))
        .collect();
    let Some(s) = &p.state else {
        let live: Vec<i32> = p.replicas.iter().copied().filter(alive).collect();
        let leader = target
            .iter()
            .copied()
            .find(eligible)
            .or_else(|| live.first().copied())?;
        // Kafka starts a partition with every live replica in the ISR:
        // acks=all then waits for all of them from the start.
        return Some(Plan::Create(PartitionState {
            leader,
            leader_epoch: 0,
            controller_epoch: cepoch,
            isr: live,
        }));
    };
    let next = |leader: i32, isr: Vec<i32>| PartitionState {
        leader,
        leader_epoch: s.leader_epoch + 1,
        controller_epoch: cepoch,
        isr,
    };
    if s.leader < 0 || !alive(&s.leader) {
        // Leader lost: first in-ISR replica in assignment order, preferring
        // brokers not shutting down.
        let in_isr = |ok: &dyn Fn(&i32) -> bool| {
            p.replicas
                .iter()
                .copied()
                .find(|r| ok(r) && s.isr.contains(r) && *r != s.leader)
        };
        let clean = in_isr(&eligible).or_else(|| in_isr(&alive));
        let pick = clean.or_else(|| {
            unclean
                .then(|| {
                    p.replicas
                        .iter()
                        .copied()
                        .find(eligible)
                        .or_else(|| p.replicas.iter().copied().find(alive))
                })
                .flatten()
        });
        return match pick {
            Some(l) if clean.is_some() => Some(Plan::Set(
                next(l, s.isr.iter().copied().filter(alive).collect()),
                "leader lost: elected an in-sync replica",
            )),
            Some(l) => Some(Plan::Set(
                next(l, vec![l]),
                "leader lost: unclean election of an out-of-sync replica",
            )),
            None if s.leader >= 0 => Some(Plan::Set(
                next(-1, s.isr.clone()),
                "leader lost and no in-sync replica alive: offline",
            )),
            None => None,
        };
    }
    let stopping = |r: &i32| view.withdrawn.contains(r);
    if stopping(&s.leader) || (reassigning && !target.contains(&s.leader)) {
        // Hand leadership to the first eligible in-sync target replica; the
        // withdrawn (or removed) broker leaves the ISR in the same write.
        let new = target
            .iter()
            .copied()
            .find(|r| *r != s.leader && eligible(r) && s.isr.contains(r))?;
        let isr = s
            .isr
            .iter()
            .copied()
            .filter(|r| !stopping(r) && (!reassigning || target.contains(r)))
            .collect();
        let why = if stopping(&s.leader) {
            "leader withdrawn (controlled shutdown or log dir offline): moved leadership"
        } else {
            "reassignment: moved leadership into the target replicas"
        };
        return Some(Plan::Set(next(new, isr), why));
    }
    if reassigning && target.iter().all(|r| s.isr.contains(r)) {
        if s.isr.iter().any(|r| !target.contains(r)) {
            let isr = s
                .isr
                .iter()
                .copied()
                .filter(|r| target.contains(r))
                .collect();
            return Some(Plan::Set(
                next(s.leader, isr),
                "reassignment: removed replicas leave the ISR",
            ));
        }
        return Some(Plan::FinishReassignment(target));
    }
    let keep = |r: &i32| *r == s.leader || (eligible(r) && p.replicas.contains(r));
    if s.isr.len() > 1 && !s.isr.iter().all(keep) {
        // A follower's broker is gone, stopping or no longer a replica: out of
        // the ISR now (as Kafka's controller does) rather than letting acks=all
        // stall for replica.lag.time.max.ms. Same leader and epoch; the
        // leader's own ISR writes retry on the version change.
        let isr = s.isr.iter().copied().filter(keep).collect();
        return Some(Plan::Set(
            PartitionState {
                isr,
                controller_epoch: cepoch,
                ..s.clone()
            },
            "dead or stopping replicas left the ISR",
        ));
    }
    None
}

/// One leadership move: topic, the partition as cached, its new state.
pub type Move = (String, PartitionMeta, PartitionState);

/// The preferred-leader moves a rebalance makes (pure; see rebalance_leaders).
pub fn preferred_moves(view: &ClusterView, pct: u32, cepoch: i32) -> Vec<Move> {
    // Per preferred broker: its partitions, and the movable ones led elsewhere.
    let mut per: BTreeMap<i32, (usize, Vec<Move>)> = BTreeMap::new();
    for t in view.topics.values().filter(|t| !t.deleting) {
        for p in &t.partitions {
            let (Some(s), Some(&pref)) = (&p.state, p.replicas.first()) else {
                continue;
            };
            if p.replicas.len() < 2 || !p.adding.is_empty() || !p.removing.is_empty() {
                continue;
            }
            let e = per.entry(pref).or_default();
            e.0 += 1;
            if s.leader != pref
                && view.brokers.contains_key(&pref)
                && !view.withdrawn.contains(&pref)
                && s.isr.contains(&pref)
            {
                let new = PartitionState {
                    leader: pref,
                    leader_epoch: s.leader_epoch + 1,
                    controller_epoch: cepoch,
                    isr: s.isr.clone(),
                };
                e.1.push((t.name.clone(), p.clone(), new));
            }
        }
    }
    per.into_values()
        .filter(|(total, off)| !off.is_empty() && off.len() * 100 > *total * pct as usize)
        .flat_map(|(_, off)| off)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::metadata::{BrokerInfo, TopicMeta};
    use super::*;
    use std::sync::Arc;

    fn view(live: &[i32], stopping: &[i32]) -> ClusterView {
        ClusterView {
            brokers: live
                .iter()
                .map(|id| {
                    (
                        *id,
                        BrokerInfo {
                            id: *id,
                            host: "h".into(),
                            port: 1,
                            rack: None,
                            endpoints: Vec::new(),
                        },
                    )
                })
                .collect(),
            withdrawn: stopping.iter().copied().collect(),
            ..Default::default()
        }
    }

    fn part(replicas: &[i32], leader: i32, epoch: i32, isr: &[i32]) -> PartitionMeta {
        PartitionMeta {
            index: 0,
            replicas: replicas.to_vec(),
            state: Some(PartitionState {
                leader,
                leader_epoch: epoch,
                controller_epoch: 1,
                isr: isr.to_vec(),
            }),
            state_version: 0,
            adding: vec![],
            removing: vec![],
        }
    }

    fn set(plan: Option<Plan>) -> (i32, i32, Vec<i32>) {
        match plan {
            Some(Plan::Set(s, _)) => (s.leader, s.leader_epoch, s.isr),
            other => panic!("expected a state write, got {other:?}"),
        }
    }

    #[test]
    fn lost_leader_goes_to_first_live_isr_replica_in_assignment_order() {
        let p = part(&[1, 2, 3], 1, 4, &[1, 3, 2]);
        assert_eq!(
            set(plan_partition(&p, &view(&[2, 3], &[]), false, 7)),
            (2, 5, vec![3, 2])
        );
        // A broker in controlled shutdown is passed over while another can lead.
        assert_eq!(set(plan_partition(&p, &view(&[2, 3], &[2]), false, 7)).0, 3);
    }

    #[test]
    fn no_isr_member_alive_is_offline_unless_unclean() {
        let p = part(&[1, 2, 3], 1, 4, &[1]);
        assert_eq!(
            set(plan_partition(&p, &view(&[2, 3], &[]), false, 7)),
            (-1, 5, vec![1])
        );
        assert_eq!(
            set(plan_partition(&p, &view(&[2, 3], &[]), true, 7)),
            (2, 5, vec![2])
        );
    }

    #[test]
    fn controlled_shutdown_moves_leadership_and_leaves_the_isr() {
        let p = part(&[1, 2, 3], 1, 4, &[1, 2, 3]);
        assert_eq!(
            set(plan_partition(&p, &view(&[1, 2, 3], &[1]), false, 7)),
            (2, 5, vec![2, 3])
        );
        // Nobody else in sync: it stays (the stopping broker gives up waiting).
        let solo = part(&[1, 2, 3], 1, 4, &[1]);
        assert_eq!(
            plan_partition(&solo, &view(&[1, 2, 3], &[1]), false, 7),
            None
        );
        // As a follower it leaves the ISR, same leader and epoch.
        let f = part(&[2, 1, 3], 2, 4, &[2, 1, 3]);
        assert_eq!(
            set(plan_partition(&f, &view(&[1, 2, 3], &[1]), false, 7)),
            (2, 4, vec![2, 3])
        );
    }

    #[test]
    fn reassignment_waits_for_the_target_then_switches_and_finishes() {
        // 1,2 -> 3,2: replicas [3,2,1], adding [3], removing [1], leader 1.
        let mut p = part(&[3, 2, 1], 1, 4, &[1, 2]);
        p.adding = vec![3];
        p.removing = vec![1];
        let v = view(&[1, 2, 3], &[]);
        // Leader 1 is being removed: leadership moves first, to an in-sync
        // target member, and 1 leaves the ISR.
        assert_eq!(set(plan_partition(&p, &v, false, 7)), (2, 5, vec![2]));
        // Leader 2 kept, 3 still catching up: nothing to do yet.
        p.state = Some(PartitionState {
            leader: 2,
            leader_epoch: 5,
            controller_epoch: 7,
            isr: vec![2, 1],
        });
        assert_eq!(plan_partition(&p, &v, false, 7), None);
        // 3 in sync: the removed replica leaves the ISR, then the topic znode.
        p.state.as_mut().unwrap().isr = vec![2, 1, 3];
        assert_eq!(set(plan_partition(&p, &v, false, 7)), (2, 6, vec![2, 3]));
        p.state.as_mut().unwrap().isr = vec![2, 3];
        assert_eq!(
            plan_partition(&p, &v, false, 7),
            Some(Plan::FinishReassignment(vec![3, 2]))
        );
    }

    #[test]
    fn rebalance_moves_back_only_past_the_imbalance_threshold() {
        let mut v = view(&[1, 2, 3], &[]);
        let parts: Vec<PartitionMeta> = (0..10)
            .map(|i| {
                let mut p = part(&[1, 2, 3], if i == 0 { 2 } else { 1 }, 3, &[1, 2, 3]);
                p.index = i;
                p
            })
            .collect();
        v.topics.insert(
            "t".into(),
            Arc::new(TopicMeta {
                name: "t".into(),
                topic_id: uuid::Uuid::nil(),
                partitions: parts,
                configs: BTreeMap::new(),
                deleting: false,
            }),
        );
        // 1 of broker 1's 10 preferred partitions led elsewhere: 10%, not > 10%.
        assert!(preferred_moves(&v, 10, 7).is_empty());
        let moves = preferred_moves(&v, 5, 7);
        assert_eq!(moves.len(), 1);
        assert_eq!((moves[0].2.leader, moves[0].2.leader_epoch), (1, 4));
        // Never to a broker in controlled shutdown.
        v.withdrawn.insert(1);
        assert!(preferred_moves(&v, 5, 7).is_empty());
    }
}
