//! The ensemble's vocabulary, shared by every file of `raft`: member ids,
//! openraft's type bundle, why the ensemble cannot start, zxids (= Raft log
//! indexes), the prost forms of openraft's types (the peer links and the
//! log carry them) and the membership as ZooKeeper shows it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;

use fjord_proto::raft as pb;
use openraft::{BasicNode, Entry, EntryPayload, LeaderId, LogId, Membership, Vote};

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

// ---- membership as ZooKeeper shows it ------------------------------------

/// The znode holding the membership, as in ZooKeeper 3.5+.
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// ZooKeeper's dynamic-config text for a membership:
/// `server.N=host:peer:election:participant;clientAddr:clientPort` per member
/// (non-voters, i.e. members being added, as `observer`), then
/// `version=<hex zxid of the membership entry>`.
pub fn render_config(m: &Membership<NodeId, BasicNode>, zxid: i64) -> String {
    let voters: BTreeSet<NodeId> = m.voter_ids().collect();
    let mut out = String::new();
    for (id, node) in m.nodes() {
        let mut halves = node.addr.splitn(2, ';');
        let addr = halves.next().unwrap_or_default();
        let role = if voters.contains(id) {
            "participant"
        } else {
            "observer"
        };
        out.push_str(&format!("server.{id}={addr}:{role}"));
        if let Some(client) = halves.next() {
            if client.contains(':') {
                out.push_str(&format!(";{client}"));
            } else {
                out.push_str(&format!(";0.0.0.0:{client}"));
            }
        }
        out.push('\n');
    }
    out.push_str(&format!("version={zxid:x}"));
    out
}
