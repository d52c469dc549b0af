//! The replicated state machine: committed Raft entries applied to the
//! member's `Core`, in log order, on every member; and its snapshots.
//!
//! A client write is applied by running its original ZooKeeper request
//! through the same handler the standalone server uses, with the leader's
//! stamped time and the client's identity from the entry, so checks
//! (versions, ACLs, sequential suffixes) decide the same everywhere and
//! zxid = log index. Only the member that holds the client's connection
//! queues the reply (and it may go at once: the entry is committed).
//!
//! Snapshot file (`dataDir/fjord-raft/snapshot`): a length-delimited
//! `SnapshotFileHeader` then length-delimited `SnapshotRecord`s; the same
//! bytes travel to a follower that is too far behind for the log.

use std::fs::{self, File};
use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use fjord_proto::coord as cpb;
use fjord_proto::raft as pb;
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, StorageIOError, StoredMembership,
};
use parking_lot::Mutex;
use prost::Message;

use super::types::{
    membership_from_pb, membership_to_pb, opt_log_id_from_pb, opt_log_id_to_pb, zxid_after,
    zxid_base, NodeId, StorageError, TypeConfig,
};
use crate::acl::Identity;
use crate::core::{Core, Outbox};
use crate::handler::{self, ConnCtx};
use crate::tree::{DataTree, SessionInfo};
use fjord_zk::jute::Record;
use fjord_zk::proto::{frame, ConnectResponse, Id};

/// What has been applied; read and written only under the core lock so a
/// snapshot's metadata always matches the tree it was cut from.
#[derive(Default, Clone)]
struct Applied {
    last: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
}

/// openraft's state machine over the member's `Core`.
pub struct StateMachine {
    my_id: NodeId,
    core: Arc<Mutex<Core>>,
    applied: Arc<Mutex<Applied>>,
    applied_tx: tokio::sync::watch::Sender<i64>,
    dir: PathBuf,
}

/// Cuts snapshots (openraft runs it beside `apply`).
pub struct SnapshotBuilder {
    core: Arc<Mutex<Core>>,
    applied: Arc<Mutex<Applied>>,
    dir: PathBuf,
}

fn io_read(e: io::Error) -> StorageError {
    StorageError::IO {
        source: StorageIOError::read_snapshot(None, &e),
    }
}

fn io_write(e: io::Error) -> StorageError {
    StorageError::IO {
        source: StorageIOError::write_snapshot(None, &e),
    }
}

pub(crate) fn meta_to_pb(m: &SnapshotMeta<NodeId, BasicNode>) -> pb::SnapshotMeta {
    pb::SnapshotMeta {
        last: opt_log_id_to_pb(&m.last_log_id),
        membership_log_id: opt_log_id_to_pb(m.last_membership.log_id()),
        membership: Some(membership_to_pb(m.last_membership.membership())),
        id: m.snapshot_id.clone(),
    }
}

pub(crate) fn meta_from_pb(m: &pb::SnapshotMeta) -> SnapshotMeta<NodeId, BasicNode> {
    SnapshotMeta {
        last_log_id: opt_log_id_from_pb(&m.last),
        last_membership: StoredMembership::new(
            opt_log_id_from_pb(&m.membership_log_id),
            membership_from_pb(&m.membership.clone().unwrap_or_default()),
        ),
        snapshot_id: m.id.clone(),
    }
}

/// Decodes snapshot bytes into (meta, tree). Errors on any malformed record:
/// a snapshot is all or nothing.
fn decode(bytes: &[u8]) -> io::Result<(pb::SnapshotMeta, DataTree)> {
    let bad = |e: prost::DecodeError| io::Error::new(io::ErrorKind::InvalidData, e);
    let mut buf = Bytes::copy_from_slice(bytes);
    let header = pb::SnapshotFileHeader::decode_length_delimited(&mut buf).map_err(bad)?;
    let meta = header.meta.unwrap_or_default();
    let mut records = Vec::new();
    while buf.has_remaining() {
        records.push(cpb::SnapshotRecord::decode_length_delimited(&mut buf).map_err(bad)?);
    }
    let zxid = meta.last.as_ref().map_or(0, |l| zxid_after(l.index));
    Ok((meta, DataTree::from_snapshot(zxid, records)))
}

fn write_file(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join("snapshot.tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join("snapshot"))?;
    if let Ok(d) = File::open(dir) {
        d.sync_all()?;
    }
    Ok(())
}

impl StateMachine {
    /// Loads the last snapshot, if any, into `core`.
    pub fn open(
        dir: &Path,
        my_id: NodeId,
        core: Arc<Mutex<Core>>,
        applied_tx: tokio::sync::watch::Sender<i64>,
    ) -> io::Result<StateMachine> {
        fs::create_dir_all(dir)?;
        let _ = fs::remove_file(dir.join("snapshot.tmp"));
        let mut applied = Applied::default();
        match fs::read(dir.join("snapshot")) {
            Ok(bytes) => {
                let (meta, tree) = decode(&bytes)?;
                let m = meta_from_pb(&meta);
                tracing::info!(
                    index = m.last_log_id.map_or(0, |l| l.index),
                    nodes = tree.node_count(),
                    sessions = tree.sessions.len(),
                    "raft snapshot loaded"
                );
                applied.last = m.last_log_id;
                applied.membership = m.last_membership;
                applied_tx.send_replace(tree.last_zxid);
                core.lock().replace_tree(tree);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(StateMachine {
            my_id,
            core,
            applied: Arc::new(Mutex::new(applied)),
            applied_tx,
            dir: dir.to_path_buf(),
        })
    }
}

/// Applies one client command on this member.
fn apply_command(core: &mut Core, my_id: NodeId, cmd: pb::Command) {
    let local = cmd.origin == my_id && cmd.conn != 0;
    let tx = local
        .then(|| core.conns().get(&cmd.conn).map(|c| c.tx.clone()))
        .flatten();
    core.set_clock(Some(cmd.time_ms));
    match cmd.kind {
        Some(pb::command::Kind::Request(req)) => {
            // This member's own client's write: its reply counts in
            // `updatelatency` from the request's arrival.
            let arrived = if tx.is_some() {
                core.conns_mut()
                    .get_mut(&cmd.conn)
                    .and_then(|c| c.writes_in_flight.pop_front())
                    .map(|at| crate::core::Arrival { at, update: true })
            } else {
                None
            };
            let mut ctx = ConnCtx {
                id: if tx.is_some() { cmd.conn } else { 0 },
                session: cmd.session_id,
                identity: Identity {
                    ids: req
                        .ids
                        .into_iter()
                        .map(|i| Id {
                            scheme: i.scheme,
                            id: i.id,
                        })
                        .collect(),
                    is_super: req.is_super,
                },
                tx: tx.clone().unwrap_or_else(|| Outbox::new().0),
                arrived,
                sasl: None,
            };
            if let Err(e) = handler::handle(core, &mut ctx, req.frame) {
                // The origin decoded it before proposing; a member that
                // cannot is a bug, but it must not stop the log.
                tracing::warn!(error = %e, "replicated request did not decode");
            }
        }
        Some(pb::command::Kind::NewSession(s)) => {
            core.tree_mut().sessions.insert(
                s.session_id,
                SessionInfo {
                    timeout_ms: s.timeout_ms,
                    password: s.password.clone(),
                },
            );
            core.sessions_mut().add(s.session_id, s.timeout_ms);
            if let Some(tx) = &tx {
                core.sessions_mut().attach(s.session_id, cmd.conn);
                let resp = ConnectResponse {
                    protocol_version: 0,
                    timeout: s.timeout_ms,
                    session_id: s.session_id,
                    passwd: s.password,
                    read_only: false,
                };
                let mut b = BytesMut::with_capacity(64);
                frame(&mut b, |w| resp.write(w));
                tx.frame(core.last_zxid() + 1, b.freeze(), None);
            }
        }
        Some(pb::command::Kind::Expire(id)) if core.tree().sessions.contains_key(&id) => {
            tracing::info!(session = format!("0x{id:x}"), "session expired");
            core.close_session(id, 0);
        }
        Some(pb::command::Kind::Expire(_)) => {}
        Some(pb::command::Kind::Reap(path)) => core.reap(&path, cmd.time_ms),
        None => {}
    }
    core.set_clock(None);
    if local {
        run_deferred(core, cmd.conn);
    }
}

/// Writes the membership into `/zookeeper/config` in ZooKeeper's format at
/// zxid `zxid` (the entry's), firing its watches. The time is 0 on purpose:
/// a membership entry carries no leader-stamped clock, and every member
/// must build the same stat.
fn set_config_node(core: &mut Core, m: &openraft::Membership<NodeId, BasicNode>, zxid: i64) {
    let data = Bytes::from(super::types::render_config(m, zxid));
    core.set_clock(Some(0));
    let mut p = core.begin();
    core.set_clock(None);
    match core.tree_mut().set_data(
        super::types::CONFIG_NODE,
        Some(data.clone()),
        p.zxid,
        p.time,
        &mut p.triggers,
    ) {
        Ok(undo) => {
            p.undos.push(undo);
            p.ops.push(cpb::Op {
                kind: Some(cpb::op::Kind::SetData(cpb::SetData {
                    path: super::types::CONFIG_NODE.to_string(),
                    data: Some(data),
                })),
            });
            core.commit(0, p);
        }
        Err(e) => {
            tracing::warn!(error = ?e, "cannot update /zookeeper/config");
            core.abort(p);
        }
    }
}

/// Counts one more applied command of connection `conn` and runs the reads
/// that were waiting for it, before the next entry changes the tree: they
/// see their session's earlier writes and none of its later ones, and their
/// replies queue in request order.
fn run_deferred(core: &mut Core, conn: u64) {
    let Some(c) = core.conns_mut().get_mut(&conn) else {
        return;
    };
    let Some(a) = &c.applied else {
        return;
    };
    a.send_modify(|n| *n += 1);
    let done = *a.borrow();
    let mut ready = Vec::new();
    while c.deferred.front().is_some_and(|(need, _, _)| *need <= done) {
        if let Some((_, frame, arrived)) = c.deferred.pop_front() {
            ready.push((frame, arrived));
        }
    }
    if ready.is_empty() {
        return;
    }
    let mut ctx = ConnCtx {
        id: conn,
        session: c.session,
        identity: c.identity.clone(),
        tx: c.tx.clone(),
        arrived: None,
        sasl: None,
    };
    for (frame, arrived) in ready {
        ctx.arrived = arrived;
        if let Err(e) = handler::handle(core, &mut ctx, frame) {
            tracing::info!(error = %e, "malformed request; closing the connection");
            ctx.tx.close(core.last_zxid());
            return;
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError> {
        let _core = self.core.lock();
        let a = self.applied.lock();
        Ok((a.last, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let mut core = self.core.lock();
        let mut applied = self.applied.lock();
        for e in entries {
            let base = zxid_base(e.log_id.index);
            match e.payload {
                EntryPayload::Blank => {}
                EntryPayload::Membership(m) => {
                    // The entry's own zxid, on every member alike.
                    core.tree_mut().last_zxid = base - 1;
                    set_config_node(&mut core, &m, base);
                    applied.membership = StoredMembership::new(Some(e.log_id), m);
                }
                EntryPayload::Normal(batch) => {
                    for (i, cmd) in batch.commands.into_iter().enumerate() {
                        // The handler's next write takes last_zxid + 1.
                        core.tree_mut().last_zxid = base + i as i64 - 1;
                        apply_command(&mut core, self.my_id, cmd);
                    }
                }
            }
            core.tree_mut().last_zxid = zxid_after(e.log_id.index);
            applied.last = Some(e.log_id);
            out.push(());
        }
        self.applied_tx.send_replace(core.last_zxid());
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            core: self.core.clone(),
            applied: self.applied.clone(),
            dir: self.dir.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let (_, tree) = decode(&bytes).map_err(io_read)?;
        write_file(&self.dir, &bytes).map_err(io_write)?;
        tracing::info!(
            index = meta.last_log_id.map_or(0, |l| l.index),
            nodes = tree.node_count(),
            "installed a snapshot from the leader"
        );
        let mut core = self.core.lock();
        let mut applied = self.applied.lock();
        core.replace_tree(tree);
        applied.last = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        self.applied_tx.send_replace(core.last_zxid());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let bytes = match fs::read(self.dir.join("snapshot")) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_read(e)),
        };
        let mut buf = Bytes::copy_from_slice(&bytes);
        let header = pb::SnapshotFileHeader::decode_length_delimited(&mut buf)
            .map_err(|e| io_read(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        Ok(Some(Snapshot {
            meta: meta_from_pb(&header.meta.unwrap_or_default()),
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    /// Encodes the tree under the core lock (clients wait for that long:
    /// O(state), every snapCount entries), then writes and fsyncs outside it.
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (meta, bytes) = {
            let core = self.core.lock();
            let applied = self.applied.lock().clone();
            let last = applied.last;
            let meta = SnapshotMeta {
                last_log_id: last,
                last_membership: applied.membership,
                snapshot_id: format!(
                    "{}-{}-{}",
                    last.map_or(0, |l| l.leader_id.term),
                    last.map_or(0, |l| l.index),
                    crate::core::now_ms()
                ),
            };
            let mut bytes = Vec::with_capacity(core.tree().approximate_data_size() + 1024);
            let header = pb::SnapshotFileHeader {
                meta: Some(meta_to_pb(&meta)),
            };
            header
                .encode_length_delimited(&mut bytes)
                .map_err(|e| io_write(io::Error::other(e)))?;
            for r in core.tree().snapshot_records() {
                r.encode_length_delimited(&mut bytes)
                    .map_err(|e| io_write(io::Error::other(e)))?;
            }
            (meta, bytes)
        };
        write_file(&self.dir, &bytes).map_err(io_write)?;
        tracing::info!(
            index = meta.last_log_id.map_or(0, |l| l.index),
            bytes = bytes.len(),
            "raft snapshot written"
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}
