//! The readiness rule behind `/ready`: a broker is ready when it runs (not
//! starting, not in shutdown), holds a live coordinator session with its
//! registration visible in the cluster state, and leads or follows in sync
//! every partition it is a replica of (leaders hold the leader role in their
//! log; followers are in the ISR, i.e. caught up). `/health` only says the
//! process answers.

use fjord_zk::client::SessionState;

use crate::broker::Broker;
use crate::log::Role;

/// Reasons listed at most (the count says how many there were).
const MAX_REASONS: usize = 20;

/// Why the broker is not ready (empty: ready).
pub fn not_ready(b: &Broker) -> Vec<String> {
    let mut why = Vec::new();
    if !b.metrics.running() {
        why.push(format!(
            "broker state is {} (3 = running)",
            b.metrics.state()
        ));
    }
    if let Some(sessions) = b.cluster.sessions() {
        let state = *sessions.borrow().state().borrow();
        if state != SessionState::Connected {
            why.push(format!("coordinator session is {state:?}"));
        }
        if !b.cluster.loaded() {
            why.push("cluster state not loaded from the coordinator yet".into());
        }
    }
    let view = b.cache.view();
    let me = b.id();
    if !view.brokers.contains_key(&me) {
        why.push(format!(
            "broker {me} is not registered in the cluster state"
        ));
    }
    let mut parts = 0usize;
    for tm in view.topics.values().filter(|t| !t.deleting) {
        for p in &tm.partitions {
            if !p.replicas.contains(&me) {
                continue;
            }
            let name = format!("{}-{}", tm.name, p.index);
            let problem = match (p.leader(), b.log.get(&tm.name, p.index)) {
                (_, None) => Some(format!("{name}: no local log yet")),
                (-1, _) => Some(format!("{name}: no leader")),
                (l, Some(log)) if l == me => (log.role().0 != Role::Leader)
                    .then(|| format!("{name}: leader role not applied yet")),
                (l, Some(_)) => (!p.isr().contains(&me))
                    .then(|| format!("{name}: following {l}, not in the ISR (catching up)")),
            };
            if let Some(pr) = problem {
                parts += 1;
                if why.len() < MAX_REASONS {
                    why.push(pr);
                }
            }
        }
    }
    if parts > 0 && why.len() >= MAX_REASONS {
        why.push(format!("{parts} partitions not ready in all"));
    }
    why
}
