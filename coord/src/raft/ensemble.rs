//! The running ensemble as the client path sees it ([`Ensemble`]: propose a
//! write, who leads, whether this member serves) and the tasks that keep it
//! going: the proposer (client writes to openraft or to the leader, in
//! order), the bootstrap of a new member, the role watcher (session expiry
//! follows leadership), the guard (stop serving when cut off from the
//! quorum) and the touch forwarder.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fjord_proto::raft as pb;
use openraft::{BasicNode, ServerState};
use parking_lot::Mutex;
use prost::Message;
use tokio::sync::mpsc;

use super::elect::Elector;
use super::net::Peers;
use super::types::{zxid_base, NodeId, Raft, MAX_BATCH, MAX_BATCH_BYTES};
use crate::config::{Config, ServerLine};
use crate::core::Core;
use fjord_zk::proto::ErrorCode;

// ---- the running ensemble -------------------------------------------------

/// A write waiting to be proposed: the command and the connection to close
/// if its fate becomes unknown (leader lost, forward failed).
pub(super) struct Proposal {
    cmd: pb::Command,
}

/// Log entries a follower may trail the leader by and still count as
/// synced (ZooKeeper's `synced_followers`).
const SYNC_SLACK: u64 = 1000;

/// The ensemble as one member sees it (see [`Ensemble::quorum_view`]).
#[derive(Debug, Clone)]
pub struct QuorumView {
    pub my_id: NodeId,
    pub leader: Option<NodeId>,
    /// (id, membership address `host:peer:election[;client]`, voter?)
    pub members: Vec<(NodeId, String, bool)>,
    /// Leader only: voters other than itself within [`SYNC_SLACK`] entries.
    pub synced_followers: usize,
    /// Leader only: learners (observers) within [`SYNC_SLACK`] entries.
    pub synced_observers: usize,
}

/// Handle the client path uses to replicate writes.
pub struct Ensemble {
    pub raft: Raft,
    pub my_id: NodeId,
    proposals: mpsc::UnboundedSender<Proposal>,
    pub(super) peers: Arc<Peers>,
    /// When this member campaigns, and its answers to pre-votes.
    pub(super) elector: Arc<Elector>,
    /// Set once this member leads and gave every session a fresh timeout
    /// (see [`watch_role`]); only then may it expire sessions.
    owns_expiry: AtomicBool,
    /// False while this member is cut off from a quorum (see [`guard`]),
    /// and from its start until it knows a live leader: it then refuses
    /// clients so they move to (or wait for) a member that can serve them
    /// (or, with `readonlymode.enabled`, serves read-only ones). ZooKeeper's
    /// restarted member likewise takes no client until it has synced.
    serving: tokio::sync::watch::Sender<bool>,
    /// `readonlymode.enabled`.
    read_only_enabled: bool,
    /// One reconfig at a time (ZooKeeper: ZRECONFIGINPROGRESS).
    reconfig_lock: tokio::sync::Mutex<()>,
    /// How long a reconfig waits for a joiner to catch up, and for the new
    /// membership to commit: initLimit ticks, ZooKeeper's bound for a
    /// learner to sync with the leader.
    reconfig_step: Duration,
}

impl Ensemble {
    /// The handle over a started openraft; its tasks are spawned by
    /// `raft::start`. Returns the receiving end of the proposal queue, for
    /// [`proposer`].
    pub(super) fn new(
        raft: Raft,
        my_id: NodeId,
        peers: Arc<Peers>,
        elector: Arc<Elector>,
        cfg: &Config,
    ) -> (Arc<Ensemble>, mpsc::UnboundedReceiver<Proposal>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let ens = Arc::new(Ensemble {
            raft,
            my_id,
            proposals: tx,
            peers,
            elector,
            owns_expiry: AtomicBool::new(false),
            serving: tokio::sync::watch::channel(false).0,
            read_only_enabled: cfg.read_only_enabled,
            reconfig_lock: tokio::sync::Mutex::new(()),
            reconfig_step: Duration::from_millis(
                (cfg.tick_time_ms * cfg.init_limit.max(1)).max(1000),
            ),
        });
        (ens, rx)
    }

    /// Queues a command; the proposer keeps the order of calls.
    pub fn propose(&self, cmd: pb::Command) {
        let _ = self.proposals.send(Proposal { cmd });
    }

    /// The ensemble as this member sees it, for `mntr`, the AdminServer's
    /// `leader`/`voting_view` and the metrics endpoint.
    pub fn quorum_view(&self) -> QuorumView {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone(), voters.contains(id)))
            .collect();
        let last = m.last_log_index.unwrap_or(0);
        let (mut synced_followers, mut synced_observers) = (0, 0);
        if let Some(repl) = &m.replication {
            for (id, matched) in repl {
                let caught_up = matched
                    .map(|l| l.index + SYNC_SLACK >= last)
                    .unwrap_or(false);
                if *id == self.my_id || !caught_up {
                    continue;
                }
                if voters.contains(id) {
                    synced_followers += 1;
                } else {
                    synced_observers += 1;
                }
            }
        }
        QuorumView {
            my_id: self.my_id,
            leader: m.current_leader,
            members,
            synced_followers,
            synced_observers,
        }
    }

    /// The leader as this member currently knows it.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.my_id)
    }

    /// Whether this member may expire sessions: it leads, and has given
    /// every session a fresh timeout since it took over (it did not see
    /// the touches the old leader saw), as ZooKeeper's new leader does.
    pub fn owns_expiry(&self) -> bool {
        self.owns_expiry.load(Ordering::Acquire) && self.is_leader()
    }

    /// Whether this member can currently take clients (it has a leader that
    /// has a quorum, as far as it can tell).
    pub fn serving(&self) -> bool {
        *self.serving.borrow()
    }

    /// Follows [`Ensemble::serving`] (read-only clients leave when it
    /// turns true).
    pub fn serving_watch(&self) -> tokio::sync::watch::Receiver<bool> {
        self.serving.subscribe()
    }

    /// Whether this member now takes read-only clients: cut off from the
    /// quorum with `readonlymode.enabled`.
    pub fn read_only(&self) -> bool {
        self.read_only_enabled && !self.serving()
    }

    /// A client's `reconfig`: run on the leader (here or over the peer
    /// link). Returns the log index of the membership then in force.
    pub async fn reconfig(&self, req: pb::ReconfigReq) -> Result<u64, ErrorCode> {
        match self.leader() {
            Some(l) if l == self.my_id => self.execute_reconfig(&req).await,
            Some(l) => match self.peers.reconfig(l, req, self.reconfig_step * 3).await {
                Ok((0, index)) => Ok(index),
                Ok((code, _)) => Err(ErrorCode::from_i32(code)),
                Err(e) => {
                    tracing::info!(leader = l, error = %e, "reconfig not delivered to the leader");
                    Err(ErrorCode::ConnectionLoss)
                }
            },
            None => Err(ErrorCode::ConnectionLoss),
        }
    }

    /// The leader's side of `reconfig`, ZooKeeper's semantics on openraft:
    /// joiners become learners first (blocking until they caught up within
    /// initLimit ticks, else ZNEWCONFIGNOQUORUM), then one `change_membership` installs the new
    /// voter set through joint consensus. `from_config` other than -1 must
    /// be the current version (the zxid of the membership entry), else
    /// ZBADVERSION.
    pub async fn execute_reconfig(&self, r: &pb::ReconfigReq) -> Result<u64, ErrorCode> {
        let Ok(_one) = self.reconfig_lock.try_lock() else {
            return Err(ErrorCode::ReconfigInProgress);
        };
        let stored = self.raft.metrics().borrow().membership_config.clone();
        let current = stored.membership();
        if current.get_joint_config().len() > 1 {
            return Err(ErrorCode::ReconfigInProgress);
        }
        let current_index = stored.log_id().map_or(0, |l| l.index);
        if r.from_config != -1 && r.from_config != zxid_base(current_index) {
            return Err(ErrorCode::BadVersion);
        }
        let voters: BTreeSet<NodeId> = current.voter_ids().collect();
        let (joining, new_set) = if !r.new_members.trim().is_empty() {
            let all = parse_servers(&r.new_members)?;
            let set: BTreeSet<NodeId> = all.iter().map(|s| s.id).collect();
            (all, set)
        } else {
            let joining = parse_servers(&r.joining)?;
            let mut set = voters.clone();
            for l in r
                .leaving
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
            {
                let id: NodeId = l.parse().map_err(|_| ErrorCode::BadArguments)?;
                if !set.remove(&id) {
                    return Err(ErrorCode::BadArguments);
                }
            }
            for j in &joining {
                set.insert(j.id);
            }
            (joining, set)
        };
        if new_set.is_empty() {
            return Err(ErrorCode::BadArguments);
        }
        for j in joining.iter().filter(|j| !voters.contains(&j.id)) {
            tracing::info!(member = j.id, addr = %j.spec(), "reconfig: adding a learner; waiting for it to catch up");
            self.peers.learn(j.id, &j.spec());
            // openraft's own blocking add_learner counts a learner within
            // `replication_lag_threshold` entries as caught up, even one that
            // never answered; so wait here until it holds the entry that
            // added it.
            let added = match self
                .raft
                .add_learner(j.id, BasicNode::new(j.spec()), false)
                .await
            {
                Ok(r) => r.log_id.index,
                Err(e) => {
                    tracing::warn!(member = j.id, error = %e, "reconfig: cannot add the member");
                    return Err(ErrorCode::NewConfigNoQuorum);
                }
            };
            let id = j.id;
            let caught_up = self
                .raft
                .wait(Some(self.reconfig_step))
                .metrics(
                    move |m| {
                        m.replication
                            .as_ref()
                            .and_then(|r| r.get(&id))
                            .and_then(|l| l.as_ref())
                            .is_some_and(|l| l.index >= added)
                    },
                    "joining member caught up",
                )
                .await;
            if caught_up.is_err() {
                tracing::warn!(
                    member = j.id,
                    "reconfig: the new member did not catch up within initLimit ticks; dropping it"
                );
                let gone = BTreeSet::from([j.id]);
                if let Err(e) = self
                    .raft
                    .change_membership(openraft::ChangeMembers::RemoveNodes(gone), false)
                    .await
                {
                    tracing::warn!(member = j.id, error = %e, "reconfig: cannot drop the learner");
                }
                return Err(ErrorCode::NewConfigNoQuorum);
            }
        }
        if new_set == voters {
            let index = self
                .raft
                .metrics()
                .borrow()
                .membership_config
                .log_id()
                .map_or(0, |l| l.index);
            return Ok(index);
        }
        tracing::info!(from = ?voters, to = ?new_set, "reconfig: changing the voters");
        match tokio::time::timeout(
            self.reconfig_step,
            self.raft.change_membership(new_set, false),
        )
        .await
        {
            Ok(Ok(resp)) => Ok(resp.log_id.index),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reconfig: membership change failed");
                Err(ErrorCode::NewConfigNoQuorum)
            }
            Err(_) => Err(ErrorCode::NewConfigNoQuorum),
        }
    }
}

/// Starts a new ensemble, or joins one: a member with an empty log asks the
/// members its `server.N` lines name. If any already runs an ensemble, this
/// member waits to be added (`reconfig`) or caught up by the leader; if a
/// majority of the lines answer and none does, the lowest id among those
/// that answered initializes the membership from the lines (members that
/// race to do it write the identical first entry).
pub(super) async fn bootstrap(ens: Arc<Ensemble>, cfg: Arc<Config>) {
    let members: BTreeMap<NodeId, BasicNode> = cfg
        .servers
        .iter()
        .map(|s| (s.id, BasicNode::new(s.spec())))
        .collect();
    let others: Vec<NodeId> = members
        .keys()
        .copied()
        .filter(|id| *id != ens.my_id)
        .collect();
    let need = members.len() / 2 + 1;
    let mut told = false;
    loop {
        if ens.raft.is_initialized().await.unwrap_or(true) {
            return;
        }
        let answers =
            futures_util::future::join_all(others.iter().map(|id| ens.peers.initialized(*id)))
                .await;
        let joined = answers.iter().any(|a| matches!(a, Ok(true)));
        let fresh: Vec<NodeId> = others
            .iter()
            .zip(&answers)
            .filter(|(_, a)| matches!(a, Ok(false)))
            .map(|(id, _)| *id)
            .collect();
        if joined {
            if !told {
                tracing::info!(
                    member = ens.my_id,
                    "an ensemble already runs; waiting to be added (reconfig) or caught up"
                );
                told = true;
            }
        } else if fresh.len() + 1 >= need && fresh.iter().all(|id| *id > ens.my_id) {
            tracing::info!(member = ens.my_id, members = ?members.keys().collect::<Vec<_>>(), "initializing a new ensemble");
            if let Err(e) = ens.raft.initialize(members.clone()).await {
                tracing::info!(error = %e, "raft already initialized");
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Closes the client connections whose writes have an unknown fate: the
/// client sees a connection loss, reconnects (possibly elsewhere) and
/// resumes its session, as with ZooKeeper when a leader goes away.
fn fail(core: &Arc<Mutex<Core>>, conns: &[(u64, u64)], my_id: NodeId, why: &str) {
    let core = core.lock();
    let last = core.last_zxid();
    for (origin, conn) in conns {
        if *origin != my_id || *conn == 0 {
            continue;
        }
        if let Some(c) = core.conns().get(conn) {
            tracing::info!(addr = %c.addr, why, "write not replicated; closing the client connection");
            c.tx.close(last);
        }
    }
}

/// Entries this member may have proposed and not yet seen committed.
/// openraft 0.9 flushes its log once per entry, so submitting every command
/// as it arrives would cost one fsync each; instead commands queue here while
/// this many entries are in flight and leave together as the next entry
/// (group commit). Two keep the pipeline busy while one is being committed.
const IN_FLIGHT_ENTRIES: usize = 2;

/// Hands queued commands to the leader in queue order: to openraft directly
/// when this member leads, else as one forward batch to the leader.
pub(super) async fn proposer(
    ens: Arc<Ensemble>,
    core: Arc<Mutex<Core>>,
    mut rx: mpsc::UnboundedReceiver<Proposal>,
) {
    let mut metrics = ens.raft.metrics();
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_ENTRIES));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut bytes = first.cmd.encoded_len();
        let mut batch = vec![first.cmd];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.cmd.encoded_len();
                    batch.push(p.cmd)
                }
                Err(_) => break,
            }
        }
        // Wait (bounded) for a leader to be known, and reachable: a leader
        // whose peer port refuses connections has died, and the writes
        // (not sent yet) wait for its successor rather than failing.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut dead: Option<NodeId> = None;
        let leader = loop {
            let l = metrics.borrow().current_leader.filter(|l| Some(*l) != dead);
            match l {
                Some(l) if l == ens.my_id => break Some(l),
                Some(l) => match ens.peers.connect(l).await {
                    Ok(()) => break Some(l),
                    Err(e) => {
                        tracing::debug!(leader = l, error = %e, "leader unreachable; waiting for another");
                        dead = Some(l);
                        continue;
                    }
                },
                None => {}
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {}
                _ => break None,
            }
        };
        let origins: Vec<(u64, u64)> = batch.iter().map(|c| (c.origin, c.conn)).collect();
        match leader {
            None => fail(&core, &origins, ens.my_id, "no leader"),
            Some(l) if l == ens.my_id => {
                let rx = ens
                    .raft
                    .client_write_ff(pb::CommandBatch { commands: batch })
                    .await
                    .ok();
                let core = core.clone();
                let my_id = ens.my_id;
                tokio::spawn(async move {
                    let ok = match rx {
                        Some(rx) => matches!(rx.await, Ok(Ok(_))),
                        None => false,
                    };
                    drop(permit);
                    if !ok {
                        fail(&core, &origins, my_id, "leadership lost");
                    }
                });
            }
            Some(l) => {
                let call = match ens.peers.forward(l, batch).await {
                    Ok(c) => c,
                    Err(e) => {
                        fail(&core, &origins, ens.my_id, &e.to_string());
                        continue;
                    }
                };
                let core = core.clone();
                let my_id = ens.my_id;
                tokio::spawn(async move {
                    let result = call.await;
                    drop(permit);
                    match result {
                        Ok(errors) => {
                            for (e, origin) in errors.iter().zip(&origins) {
                                if !e.is_empty() {
                                    fail(&core, &[*origin], my_id, e);
                                }
                            }
                        }
                        Err(e) => fail(&core, &origins, my_id, &e.to_string()),
                    }
                });
            }
        }
    }
}

/// Tracks this member's Raft role for `srvr`/`mntr`, and gives every
/// session a fresh timeout when this member becomes leader (it did not see
/// the touches the old leader saw).
pub(super) async fn watch_role(ens: Arc<Ensemble>, core: Arc<Mutex<Core>>) {
    let mut metrics = ens.raft.metrics();
    // The term this member last led in (a leader change the metrics
    // coalesced away still counts as a new leadership).
    let mut led_in: Option<u64> = None;
    // Since when no leader is known (start-up counts): ZooKeeper's
    // `election_time` is how long that lasted.
    let mut leaderless_since = Some(std::time::Instant::now());
    loop {
        let (state, no_membership, voted, term) = {
            let m = metrics.borrow_and_update();
            match (m.current_leader, leaderless_since) {
                (Some(_), Some(since)) => {
                    crate::timings::TIMINGS
                        .election_time
                        .observe(since.elapsed().as_secs_f64() * 1000.0);
                    leaderless_since = None;
                }
                (None, None) => leaderless_since = Some(std::time::Instant::now()),
                _ => {}
            }
            for (id, node) in m.membership_config.membership().nodes() {
                ens.peers.learn(*id, &node.addr);
            }
            let no_membership = m.membership_config.membership().nodes().next().is_none();
            (
                m.state,
                no_membership,
                m.vote.leader_id.term > 0,
                m.current_term,
            )
        };
        let is_leader = state == ServerState::Leader;
        if !is_leader {
            ens.owns_expiry.store(false, Ordering::Release);
        }
        {
            let mut core = core.lock();
            core.set_role(match state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                // A fresh member that voted in the first election is a
                // voter whose membership entry has not arrived yet, not an
                // observer (a learner added by reconfig never votes).
                ServerState::Learner if no_membership && voted => "follower",
                ServerState::Learner => "observer",
                ServerState::Shutdown => "shutdown",
            });
            if is_leader && led_in != Some(term) {
                tracing::info!(member = ens.my_id, term, "this member is now the leader");
                core.sessions_mut().touch_all();
            }
        }
        if is_leader {
            ens.owns_expiry.store(true, Ordering::Release);
        }
        led_in = is_leader.then_some(term);
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// ZooKeeper's rule that a member cut off from the quorum stops serving: a
/// leader that cannot confirm its leadership with a quorum within syncLimit
/// ticks, or a member that has heard from no leader for that long, closes its
/// client connections and refuses new ones until it is back. Clients then
/// resume their sessions on members that can still commit (otherwise their
/// pings would be answered here while the real leader expires them). A
/// member a reconfig removed counts as cut off. With `readonlymode.enabled`
/// it then takes read-only clients (see `server`), which leave when the
/// quorum is back.
pub(super) async fn guard(ens: Arc<Ensemble>, core: Arc<Mutex<Core>>, limit: Duration) {
    // Not serving yet (see `Ensemble::serving`): read-only clients only.
    core.lock().set_read_only(ens.read_only_enabled);
    let mut iv = tokio::time::interval((limit / 10).max(Duration::from_millis(20)));
    let mut bad_since: Option<tokio::time::Instant> = None;
    let mut metrics = ens.raft.metrics();
    let mut metrics_open = true;
    let mut last_role = (None, ServerState::Learner);
    loop {
        // Each tick, and at once when the role or leader changes (a member
        // that just learned its leader starts serving without a tick's wait).
        tokio::select! {
            _ = iv.tick() => {}
            r = metrics.changed(), if metrics_open => {
                metrics_open = r.is_ok();
                let m = metrics.borrow_and_update();
                let role = (m.current_leader, m.state);
                if role == last_role {
                    continue; // only the log moved: wait for the tick
                }
                last_role = role;
            }
        }
        // A member a reconfig removed has no quorum to serve from either.
        let member = ens
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&ens.my_id)
            .is_some();
        let ok = member
            && if ens.is_leader() {
                matches!(
                    tokio::time::timeout(limit, ens.raft.ensure_linearizable()).await,
                    Ok(Ok(_))
                )
            } else {
                ens.leader().is_some() && ens.elector.heard_leader_within(limit)
            };
        let now = tokio::time::Instant::now();
        let serve = if ok {
            bad_since = None;
            true
        } else {
            let since = *bad_since.get_or_insert(now);
            ens.serving() && now.duration_since(since) < limit
        };
        let was_serving = ens.serving.send_replace(serve);
        if !serve && was_serving {
            tracing::warn!(
                member = ens.my_id,
                read_only = ens.read_only_enabled,
                "no quorum for syncLimit ticks; closing client connections until it is back"
            );
            let mut core = core.lock();
            core.set_read_only(ens.read_only_enabled);
            let last = core.last_zxid();
            for c in core.conns().values() {
                c.tx.close(last);
            }
        } else if serve && !was_serving {
            // Read-only connections end themselves (they follow `serving`).
            core.lock().set_read_only(false);
            tracing::info!(
                member = ens.my_id,
                "a leader with a quorum is known; serving clients"
            );
        }
    }
}

/// Followers tell the leader, every half tick, which sessions have a live
/// connection here, so the leader (which owns expiry) keeps them alive.
pub(super) async fn forward_touches(ens: Arc<Ensemble>, core: Arc<Mutex<Core>>, tick_ms: u64) {
    let mut iv = tokio::time::interval(Duration::from_millis((tick_ms / 2).clamp(10, 1000)));
    loop {
        iv.tick().await;
        let Some(leader) = ens.leader() else {
            continue;
        };
        if leader == ens.my_id {
            continue;
        }
        let sessions: Vec<i64> = {
            let core = core.lock();
            core.conns()
                .values()
                .map(|c| c.session)
                .filter(|s| *s != 0)
                .collect()
        };
        if sessions.is_empty() {
            continue;
        }
        let peers = ens.peers.clone();
        tokio::spawn(async move {
            if let Err(e) = peers.touch(leader, sessions).await {
                tracing::debug!(leader, error = %e, "session touches not delivered");
            }
        });
    }
}

/// The `server.N=...` entries of a reconfig string (comma or newline separated).
fn parse_servers(list: &str) -> Result<Vec<ServerLine>, ErrorCode> {
    list.split([',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| ServerLine::parse_entry(e).ok_or(ErrorCode::BadArguments))
        .collect()
}
