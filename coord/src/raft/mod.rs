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
//!
//! Elections: `elect` decides when a member campaigns (at once when its
//! leader's process died, else after the election timeout) and runs a
//! pre-vote first; openraft's own election timer is off.
//!
//! Storage faults: a member whose Raft log cannot be written or whose data
//! dir is below the free-space floor restarts itself and waits to rejoin
//! until its disk takes writes (`rejoin`).
//!
//! Files, each depending only on those before it: `types` (ids, openraft's
//! type bundle, zxids, prost forms), `log`, `sm`, `rejoin`, `net` (the
//! sending side of the peer links), `elect`, `ensemble` (the handle and its
//! tasks), `peer_server` (the receiving side); this file only wires them
//! together ([`start`]).

pub mod elect;
mod ensemble;
pub mod log;
pub mod net;
mod peer_server;
pub mod rejoin;
pub mod sm;
mod types;

pub use ensemble::{Ensemble, QuorumView};
pub use types::*;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::config::Config;
use crate::core::Core;

/// Opens the Raft log and snapshot under dataDir/dataLogDir, starts
/// openraft, the peer listener, the elector, the proposer, the role
/// watcher, the guard and the touch forwarder: the wiring of this module's
/// pieces, which know nothing of each other beyond what they are handed.
/// The member with no log yet joins the membership every `server.N` line
/// describes.
pub async fn start(
    cfg: Arc<Config>,
    core: Arc<Mutex<Core>>,
    applied: tokio::sync::watch::Sender<i64>,
) -> Result<Arc<Ensemble>, EnsembleError> {
    let my_id = cfg.my_id.unwrap_or(0);
    // A member joins only with a data dir that takes writes (`rejoin`).
    let disk_guard = rejoin::wait_until_writable(&cfg).await;
    let (heartbeat, min, max) = cfg.raft_timing();
    // openraft's election timer is off (`elect` decides); its
    // election_timeout_max is then only its leader lease, during which
    // a voter refuses real votes after hearing from a leader: kept just
    // above the heartbeat so a dead leader's followers can elect soon.
    let lease = heartbeat + heartbeat / 4 + 2;
    let rcfg = openraft::Config {
        cluster_name: "fjord-coord".into(),
        heartbeat_interval: heartbeat,
        election_timeout_min: heartbeat + 1,
        election_timeout_max: lease,
        enable_elect: false,
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
    let state_machine =
        sm::StateMachine::open(&snap_dir, my_id, core.clone(), applied).map_err(|source| {
            EnsembleError::Io {
                path: snap_dir.clone(),
                source,
            }
        })?;
    let quorum_tls = match &cfg.security.quorum_tls {
        None => None,
        Some(t) => Some((
            t.client_config().map_err(EnsembleError::Raft)?,
            t.server_config().map_err(EnsembleError::Raft)?,
        )),
    };
    let peers = Arc::new(net::Peers::new(
        my_id,
        &cfg.servers,
        quorum_tls.as_ref().map(|t| t.0.clone()),
    ));
    let elector_log = log_store.clone();
    let raft = Raft::new(my_id, rcfg, peers.clone(), log_store, state_machine)
        .await
        .map_err(|e| EnsembleError::Raft(e.to_string()))?;
    let elector = Arc::new(elect::Elector::new(
        my_id,
        elect::Timing {
            heartbeat: Duration::from_millis(heartbeat),
            timeout_min: Duration::from_millis(min),
            timeout_max: Duration::from_millis(max),
            lease: Duration::from_millis(lease),
        },
        elector_log,
        raft.clone(),
        peers.clone(),
    ));
    let (ens, rx) = Ensemble::new(raft.clone(), my_id, peers, elector.clone(), &cfg);
    let me = cfg
        .servers
        .iter()
        .find(|s| s.id == my_id)
        .cloned()
        .ok_or_else(|| EnsembleError::Raft(format!("no server.{my_id} line")))?;
    peer_server::serve(&me, ens.clone(), core.clone(), quorum_tls.map(|t| t.1)).await?;

    if !raft
        .is_initialized()
        .await
        .map_err(|e| EnsembleError::Raft(e.to_string()))?
    {
        tokio::spawn(ensemble::bootstrap(ens.clone(), cfg.clone()));
    }
    tokio::spawn(ensemble::proposer(ens.clone(), core.clone(), rx));
    tokio::spawn(elect::run(elector));
    tokio::spawn(ensemble::watch_role(ens.clone(), core.clone()));
    tokio::spawn(ensemble::forward_touches(
        ens.clone(),
        core.clone(),
        cfg.tick_time_ms,
    ));
    let limit = Duration::from_millis(cfg.tick_time_ms * cfg.sync_limit.max(1));
    tokio::spawn(ensemble::guard(ens.clone(), core, limit));
    rejoin::spawn_watch(raft, disk_guard);
    Ok(ens)
}
