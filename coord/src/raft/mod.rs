//! Ensemble mode: the coordinator replicated with Raft (openraft 0.9).
//!
//! Boundary: the client path (`server`) hands every mutating request to
//! [`Ensemble::propose`] instead of applying it. The proposer gives it to
//! openraft on the leader, or forwards it to the leader over the peer link
//! (`net`), in the order the member's clients sent them. openraft persists
//! it (`log`, fsync before acknowledgement, group commit) and replicates it;
//! once committed, every member's state machine (`sm`) runs the same
//! request through the same handler against the same tree, so all trees stay
//! identical and zxid = Raft log index. Only the member holding the client's
//! connection sends the reply; by then the entry is durable on a quorum.
//!
//! Sessions: members create session ids (member id in the top byte) and
//! propose them; the leader owns expiry and proposes it; followers forward
//! which sessions have a live connection (touches); a new leader gives every
//! session a fresh timeout, so a leader change expires nobody.

pub mod log;
pub mod net;
pub mod sm;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use fjord_proto::raft as pb;
use openraft::{BasicNode, Entry, EntryPayload, LeaderId, LogId, Membership, ServerState, Vote};
use parking_lot::Mutex;
use prost::Message;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::core::Core;

/// Member ids are ZooKeeper's `server.N` numbers.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft's type bundle for the coordinator.
    pub TypeConfig:
        D = pb::CommandBatch,
        R = (),
        NodeId = NodeId,
        Node = BasicNode,
        Entry = Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;

/// Why the ensemble could not start.
#[derive(Debug, thiserror::Error)]
pub enum EnsembleError {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("raft: {0}")]
    Raft(String),
    #[error("cannot listen for peers on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

// ---- openraft <-> prost -------------------------------------------------

pub(crate) fn log_id_to_pb(l: &LogId<NodeId>) -> pb::LogId {
    pb::LogId {
        term: l.leader_id.term,
        node_id: l.leader_id.node_id,
        index: l.index,
    }
}

pub(crate) fn log_id_from_pb(l: &pb::LogId) -> LogId<NodeId> {
    LogId::new(LeaderId::new(l.term, l.node_id), l.index)
}

pub(crate) fn opt_log_id_to_pb(l: &Option<LogId<NodeId>>) -> Option<pb::LogId> {
    l.as_ref().map(log_id_to_pb)
}

pub(crate) fn opt_log_id_from_pb(l: &Option<pb::LogId>) -> Option<LogId<NodeId>> {
    l.as_ref().map(log_id_from_pb)
}

pub(crate) fn vote_to_pb(v: &Vote<NodeId>) -> pb::Vote {
    pb::Vote {
        term: v.leader_id.term,
        node_id: v.leader_id.node_id,
        committed: v.committed,
    }
}

pub(crate) fn vote_from_pb(v: &Option<pb::Vote>) -> Vote<NodeId> {
    let v = v.unwrap_or_default();
    if v.committed {
        Vote::new_committed(v.term, v.node_id)
    } else {
        Vote::new(v.term, v.node_id)
    }
}

pub(crate) fn membership_to_pb(m: &Membership<NodeId, BasicNode>) -> pb::Membership {
    pb::Membership {
        configs: m
            .get_joint_config()
            .iter()
            .map(|s| pb::MemberSet {
                ids: s.iter().copied().collect(),
            })
            .collect(),
        nodes: m
            .nodes()
            .map(|(id, n)| pb::Member {
                id: *id,
                addr: n.addr.clone(),
            })
            .collect(),
    }
}

pub(crate) fn membership_from_pb(m: &pb::Membership) -> Membership<NodeId, BasicNode> {
    let configs: Vec<BTreeSet<NodeId>> = m
        .configs
        .iter()
        .map(|s| s.ids.iter().copied().collect())
        .collect();
    let nodes: BTreeMap<NodeId, BasicNode> = m
        .nodes
        .iter()
        .map(|n| (n.id, BasicNode::new(n.addr.clone())))
        .collect();
    Membership::new(configs, nodes)
}

pub(crate) fn entry_to_pb(e: &Entry<TypeConfig>) -> pb::Entry {
    pb::Entry {
        log_id: Some(log_id_to_pb(&e.log_id)),
        payload: Some(match &e.payload {
            EntryPayload::Blank => pb::entry::Payload::Blank(true),
            EntryPayload::Normal(c) => pb::entry::Payload::Normal(c.clone()),
            EntryPayload::Membership(m) => pb::entry::Payload::Membership(membership_to_pb(m)),
        }),
    }
}

pub(crate) fn entry_from_pb(e: &pb::Entry) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id_from_pb(&e.log_id.unwrap_or_default()),
        payload: match &e.payload {
            None | Some(pb::entry::Payload::Blank(_)) => EntryPayload::Blank,
            Some(pb::entry::Payload::Normal(c)) => EntryPayload::Normal(c.clone()),
            Some(pb::entry::Payload::Membership(m)) => {
                EntryPayload::Membership(membership_from_pb(m))
            }
        },
    }
}

// ---- zxids ----------------------------------------------------------------

/// Commands of one entry get consecutive zxids under the entry's index:
/// zxid = (log index << 16) + position, so zxids stay unique and ordered
/// like the log while one Raft entry carries a whole batch.
pub const ZXID_SHIFT: u32 = 16;
/// Most commands in one entry.
pub const MAX_BATCH: usize = (1 << ZXID_SHIFT) - 1;
/// Roughly the most bytes of requests in one entry (at least one command).
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// The first zxid of the entry at `index`.
pub fn zxid_base(index: u64) -> i64 {
    (index as i64) << ZXID_SHIFT
}

/// The zxid a member reports once it has applied the entry at `index`.
pub fn zxid_after(index: u64) -> i64 {
    zxid_base(index) | MAX_BATCH as i64
}

// ---- the running ensemble -------------------------------------------------

/// A write waiting to be proposed: the command and the connection to close
/// if its fate becomes unknown (leader lost, forward failed).
struct Proposal {
    cmd: pb::Command,
}

/// Handle the client path uses to replicate writes.
pub struct Ensemble {
    pub raft: Raft,
    pub my_id: NodeId,
    proposals: mpsc::UnboundedSender<Proposal>,
    peers: Arc<net::Peers>,
    /// False while this member is cut off from a quorum (see [`guard`]):
    /// it then refuses clients so they move to a member that can serve them.
    serving: std::sync::atomic::AtomicBool,
}

impl Ensemble {
    /// Opens the Raft log and snapshot under dataDir/dataLogDir, starts
    /// openraft, the peer listener, the proposer, the role watcher and the
    /// touch forwarder. The member with no log yet joins the membership
    /// every `server.N` line describes.
    pub async fn start(
        cfg: Arc<Config>,
        core: Arc<Mutex<Core>>,
        applied: tokio::sync::watch::Sender<i64>,
    ) -> Result<Arc<Ensemble>, EnsembleError> {
        let my_id = cfg.my_id.unwrap_or(0);
        let (heartbeat, min, max) = cfg.raft_timing();
        let rcfg = openraft::Config {
            cluster_name: "fjord-coord".into(),
            heartbeat_interval: heartbeat,
            election_timeout_min: min,
            election_timeout_max: max,
            install_snapshot_timeout: (cfg.tick_time_ms * cfg.init_limit.max(1)).max(1000),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(cfg.snap_count),
            max_in_snapshot_log_to_keep: 1000,
            max_payload_entries: 2000,
            ..Default::default()
        };
        let rcfg = Arc::new(
            rcfg.validate()
                .map_err(|e| EnsembleError::Raft(e.to_string()))?,
        );
        let dir = cfg.data_log_dir.join("fjord-raft");
        let snap_dir = cfg.data_dir.join("fjord-raft");
        let log_store = log::LogStore::open(&dir).map_err(|source| EnsembleError::Io {
            path: dir.clone(),
            source,
        })?;
        let state_machine = sm::StateMachine::open(&snap_dir, my_id, core.clone(), applied)
            .map_err(|source| EnsembleError::Io {
                path: snap_dir.clone(),
                source,
            })?;
        let peers = Arc::new(net::Peers::new(my_id, &cfg.servers));
        let raft = Raft::new(my_id, rcfg, peers.clone(), log_store, state_machine)
            .await
            .map_err(|e| EnsembleError::Raft(e.to_string()))?;

        let (tx, rx) = mpsc::unbounded_channel();
        let ens = Arc::new(Ensemble {
            raft: raft.clone(),
            my_id,
            proposals: tx,
            peers: peers.clone(),
            serving: std::sync::atomic::AtomicBool::new(true),
        });
        let me = cfg
            .servers
            .iter()
            .find(|s| s.id == my_id)
            .cloned()
            .ok_or_else(|| EnsembleError::Raft(format!("no server.{my_id} line")))?;
        net::serve(&me, ens.clone(), core.clone()).await?;

        if !raft
            .is_initialized()
            .await
            .map_err(|e| EnsembleError::Raft(e.to_string()))?
        {
            let members: BTreeMap<NodeId, BasicNode> = cfg
                .servers
                .iter()
                .map(|s| (s.id, BasicNode::new(format!("{}:{}", s.host, s.peer_port))))
                .collect();
            // Every member of a new ensemble initializes with the same
            // membership (identical first entry), so whichever starts first
            // can be elected once a quorum is up.
            if let Err(e) = raft.initialize(members).await {
                tracing::info!(error = %e, "raft already initialized");
            }
        }
        tokio::spawn(proposer(ens.clone(), core.clone(), rx));
        tokio::spawn(watch_role(ens.clone(), core.clone()));
        tokio::spawn(forward_touches(ens.clone(), core.clone(), cfg.tick_time_ms));
        let limit = Duration::from_millis(cfg.tick_time_ms * cfg.sync_limit.max(1));
        tokio::spawn(guard(ens.clone(), core, limit));
        Ok(ens)
    }

    /// Queues a command; the proposer keeps the order of calls.
    pub fn propose(&self, cmd: pb::Command) {
        let _ = self.proposals.send(Proposal { cmd });
    }

    /// The leader as this member currently knows it.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.my_id)
    }

    /// Whether this member can currently take clients (it has a leader that
    /// has a quorum, as far as it can tell).
    pub fn serving(&self) -> bool {
        self.serving.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Closes the client connections whose writes have an unknown fate: the
/// client sees a connection loss, reconnects (possibly elsewhere) and
/// resumes its session, as with ZooKeeper when a leader goes away.
fn fail(core: &Arc<Mutex<Core>>, conns: &[(u64, u64)], my_id: NodeId, why: &str) {
    let core = core.lock();
    let last = core.tree.last_zxid;
    for (origin, conn) in conns {
        if *origin != my_id || *conn == 0 {
            continue;
        }
        if let Some(c) = core.conns.get(conn) {
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
async fn proposer(
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
        // Wait (bounded) for a leader to be known.
        let leader = {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            loop {
                let l = metrics.borrow().current_leader;
                if let Some(l) = l {
                    break Some(l);
                }
                match tokio::time::timeout_at(deadline, metrics.changed()).await {
                    Ok(Ok(())) => {}
                    _ => break None,
                }
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
async fn watch_role(ens: Arc<Ensemble>, core: Arc<Mutex<Core>>) {
    let mut metrics = ens.raft.metrics();
    let mut was_leader = false;
    loop {
        let (state, leader) = {
            let m = metrics.borrow_and_update();
            (m.state, m.current_leader)
        };
        let is_leader = state == ServerState::Leader;
        {
            let mut core = core.lock();
            core.role = Some(match state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "observer",
                ServerState::Shutdown => "shutdown",
            });
            core.leader = leader;
            if is_leader && !was_leader {
                tracing::info!(member = ens.my_id, "this member is now the leader");
                core.sessions.touch_all();
            }
        }
        was_leader = is_leader;
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// ZooKeeper's rule that a member cut off from the quorum stops serving: a
/// leader that cannot confirm its leadership with a quorum within syncLimit
/// ticks, or a member that has known no leader for that long, closes its
/// client connections and refuses new ones until it is back. Clients then
/// resume their sessions on members that can still commit (otherwise their
/// pings would be answered here while the real leader expires them).
async fn guard(ens: Arc<Ensemble>, core: Arc<Mutex<Core>>, limit: Duration) {
    let mut iv = tokio::time::interval((limit / 10).max(Duration::from_millis(20)));
    let mut bad_since: Option<tokio::time::Instant> = None;
    loop {
        iv.tick().await;
        let ok = if ens.is_leader() {
            matches!(
                tokio::time::timeout(limit, ens.raft.ensure_linearizable()).await,
                Ok(Ok(_))
            )
        } else {
            ens.leader().is_some()
        };
        let now = tokio::time::Instant::now();
        let cut_off = if ok {
            bad_since = None;
            false
        } else {
            now.duration_since(*bad_since.get_or_insert(now)) >= limit
        };
        let was_serving = ens
            .serving
            .swap(!cut_off, std::sync::atomic::Ordering::Relaxed);
        if cut_off && was_serving {
            tracing::warn!(
                member = ens.my_id,
                "no quorum for syncLimit ticks; closing client connections until it is back"
            );
            let core = core.lock();
            let last = core.tree.last_zxid;
            for c in core.conns.values() {
                c.tx.close(last);
            }
        } else if !cut_off && !was_serving {
            tracing::info!(member = ens.my_id, "quorum is back; serving clients again");
        }
    }
}

/// Followers tell the leader, every half tick, which sessions have a live
/// connection here, so the leader (which owns expiry) keeps them alive.
async fn forward_touches(ens: Arc<Ensemble>, core: Arc<Mutex<Core>>, tick_ms: u64) {
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
            core.conns
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
