//! Transaction records in the coordinator (docs/architecture.md, "Transactions"):
//!
//! * `/transactions/<transactional.id>` — the record ([`TxnMeta`] as JSON);
//!   every write is a setData at the version read, so a deposed coordinator
//!   gets BadVersion and changes nothing;
//! * `/transactions/<transactional.id>/<group>` — offsets TxnOffsetCommit
//!   stored for `group` in the running transaction
//!   (`{"topic":{"0":{"offset":..}}}`), written in a multi that checks the
//!   record's version, so no offsets slip in after the transaction ended.
//!
//! * `/consumers/<group>/pending/<transactional.id>` — an empty index node,
//!   created with the first pending offsets of the group and deleted with
//!   them, so whichever broker coordinates the group now answers
//!   OffsetFetch's require_stable from here.
//!
//! An expired id (`TxnCoordinator::remove_expired`) is one multi too: any pending nodes, then
//! the record deleted at the version read.
//!
//! Completing a commit is one multi: the record (at its version), every
//! pending offset created/set under `/consumers/<group>/offsets/<topic>/<p>`
//! (where `group::offsets` keeps committed offsets; its watch picks them
//! up), and the pending and index nodes deleted. Ids and group names are
//! percent-encoded (`%`, `/`) into one path segment.

use std::collections::BTreeMap;

use fjord_zk::client::{CreateMode, ZkClient, ZkError};
use fjord_zk::proto::{Acl, ErrorCode, MultiOp, MultiResult};
use tokio::sync::watch;

use super::codes;
use super::state::TxnMeta;
use super::store::{Fut, OffsetCheck, PendingOffsets, Stored, TxnStore, TxnStoreError};
use crate::group::offsets::{group_path, offsets_path, part_path, topic_path};

const ROOT: &str = "/transactions";
const RETRIES: usize = 5;

/// One path segment for an id or group name.
pub fn encode(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

/// The inverse of [`encode`].
pub fn decode(s: &str) -> String {
    s.replace("%2F", "/").replace("%25", "%")
}

fn txn_path(id: &str) -> String {
    format!("{ROOT}/{}", encode(id))
}

fn pending_path(id: &str, group: &str) -> String {
    format!("{ROOT}/{}/{}", encode(id), encode(group))
}

/// The group's index of transactions holding its pending offsets.
fn index_path(group: &str) -> String {
    format!("{}/pending", group_path(group))
}

fn index_entry(group: &str, id: &str) -> String {
    format!("{}/{}", index_path(group), encode(id))
}

/// The store on the broker's coordinator session.
pub struct ZkStore {
    sessions: watch::Receiver<ZkClient>,
}

impl ZkStore {
    pub fn new(sessions: watch::Receiver<ZkClient>) -> ZkStore {
        ZkStore { sessions }
    }

    fn zk(&self) -> ZkClient {
        self.sessions.borrow().clone()
    }

    async fn read_pending(
        zk: &ZkClient,
        id: &str,
    ) -> Result<BTreeMap<String, (PendingOffsets, i32)>, TxnStoreError> {
        let kids = match zk.get_children(&txn_path(id)).await {
            Ok(k) => k,
            Err(e) if e.code() == Some(ErrorCode::NoNode) => return Ok(BTreeMap::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = BTreeMap::new();
        for k in kids {
            let group = decode(&k);
            match zk.get_data(&pending_path(id, &group)).await {
                Ok((data, stat)) => {
                    let p: PendingOffsets = serde_json::from_slice(&data).unwrap_or_else(|e| {
                        tracing::warn!(id, group, error = %e, "unreadable pending offsets dropped");
                        BTreeMap::new()
                    });
                    out.insert(group, (p, stat.version));
                }
                Err(e) if e.code() == Some(ErrorCode::NoNode) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }
}

fn failed(results: &[MultiResult]) -> Option<(usize, ErrorCode)> {
    results.iter().enumerate().find_map(|(i, r)| match r {
        MultiResult::Error(c) if *c != ErrorCode::Ok && *c != ErrorCode::RuntimeInconsistency => {
            Some((i, *c))
        }
        _ => None,
    })
}

async fn exists(zk: &ZkClient, path: &str) -> Result<bool, TxnStoreError> {
    Ok(zk.exists(path).await?.is_some())
}

impl TxnStore for ZkStore {
    fn list(&self) -> Fut<'_, Vec<String>> {
        Box::pin(async move {
            match self.zk().get_children(ROOT).await {
                Ok(k) => Ok(k.iter().map(|k| decode(k)).collect()),
                Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(Vec::new()),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn load<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Stored>> {
        Box::pin(async move {
            match self.zk().get_data(&txn_path(id)).await {
                Ok((data, stat)) => match TxnMeta::parse(&data) {
                    Some(meta) => Ok(Some(Stored {
                        meta,
                        version: stat.version,
                    })),
                    None => {
                        tracing::warn!(id, "unreadable transaction record; treating as absent");
                        Ok(None)
                    }
                },
                Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn put<'a>(&'a self, id: &'a str, meta: &'a TxnMeta, version: Option<i32>) -> Fut<'a, i32> {
        Box::pin(async move {
            let zk = self.zk();
            let data = meta.to_json();
            let path = txn_path(id);
            match version {
                Some(v) => match zk.set_data(&path, &data, v).await {
                    Ok(stat) => Ok(stat.version),
                    Err(e)
                        if matches!(e.code(), Some(ErrorCode::BadVersion | ErrorCode::NoNode)) =>
                    {
                        Err(TxnStoreError::Fenced)
                    }
                    Err(e) => Err(e.into()),
                },
                None => {
                    let acl = Acl::open_unsafe();
                    match zk.create(ROOT, b"", &acl, CreateMode::Persistent).await {
                        Ok(_) => {}
                        Err(e) if e.code() == Some(ErrorCode::NodeExists) => {}
                        Err(e) => return Err(e.into()),
                    }
                    match zk.create(&path, &data, &acl, CreateMode::Persistent).await {
                        Ok(_) => Ok(0),
                        Err(e) if e.code() == Some(ErrorCode::NodeExists) => {
                            Err(TxnStoreError::Fenced)
                        }
                        Err(e) => Err(e.into()),
                    }
                }
            }
        })
    }

    fn remove<'a>(&'a self, id: &'a str, version: i32) -> Fut<'a, ()> {
        Box::pin(async move {
            let zk = self.zk();
            for _ in 0..RETRIES {
                // An expired id is Empty or Complete*: nothing pending is
                // expected, but a znode with children cannot be deleted.
                let pending = ZkStore::read_pending(&zk, id).await?;
                let mut ops = Vec::new();
                for (group, (_, v)) in &pending {
                    ops.push(MultiOp::delete(&pending_path(id, group), *v));
                    let entry = index_entry(group, id);
                    if exists(&zk, &entry).await? {
                        ops.push(MultiOp::delete(&entry, -1));
                    }
                }
                // Last (children first); at the version read, so a write
                // since (a new InitProducerId) keeps the record.
                let record = ops.len();
                ops.push(MultiOp::delete(&txn_path(id), version));
                let res = zk.multi(ops).await?;
                match failed(&res) {
                    None => return Ok(()),
                    Some((i, ErrorCode::BadVersion | ErrorCode::NoNode)) if i == record => {
                        return Err(TxnStoreError::Fenced)
                    }
                    Some((i, c)) => {
                        tracing::debug!(id, op = i, ?c, "removing expired id raced; retrying");
                    }
                }
            }
            Err(TxnStoreError::Zk(ZkError::Code(
                ErrorCode::RuntimeInconsistency,
            )))
        })
    }

    fn put_offsets<'a>(
        &'a self,
        id: &'a str,
        group: &'a str,
        offsets: PendingOffsets,
        check: OffsetCheck<'a>,
    ) -> Fut<'a, i16> {
        Box::pin(async move {
            let zk = self.zk();
            for _ in 0..RETRIES {
                let (data, stat) = match zk.get_data(&txn_path(id)).await {
                    Ok(x) => x,
                    Err(e) if e.code() == Some(ErrorCode::NoNode) => {
                        return Ok(codes::INVALID_PRODUCER_ID_MAPPING)
                    }
                    Err(e) => return Err(e.into()),
                };
                let Some(meta) = TxnMeta::parse(&data) else {
                    return Ok(codes::INVALID_PRODUCER_ID_MAPPING);
                };
                let code = check(&meta);
                if code != codes::NONE {
                    return Ok(code);
                }
                let pp = pending_path(id, group);
                let (mut merged, op) = match zk.get_data(&pp).await {
                    Ok((d, s)) => (
                        serde_json::from_slice::<PendingOffsets>(&d).unwrap_or_default(),
                        Some(s.version),
                    ),
                    Err(e) if e.code() == Some(ErrorCode::NoNode) => (BTreeMap::new(), None),
                    Err(e) => return Err(e.into()),
                };
                for (t, ps) in &offsets {
                    merged.entry(t.clone()).or_default().extend(ps.clone());
                }
                let body = serde_json::to_vec(&merged).unwrap_or_default();
                let acl = Acl::open_unsafe();
                let mut ops = vec![MultiOp::check(&txn_path(id), stat.version)];
                match op {
                    Some(v) => ops.push(MultiOp::set_data(&pp, &body, v)),
                    None => {
                        ops.push(MultiOp::create(&pp, &body, &acl, CreateMode::Persistent));
                        for path in [group_path(group), index_path(group)] {
                            if !exists(&zk, &path).await? {
                                ops.push(MultiOp::create(&path, b"", &acl, CreateMode::Persistent));
                            }
                        }
                        ops.push(MultiOp::create(
                            &index_entry(group, id),
                            b"",
                            &acl,
                            CreateMode::Persistent,
                        ));
                    }
                }
                let res = zk.multi(ops).await?;
                match failed(&res) {
                    None => return Ok(codes::NONE),
                    Some((_, c)) => {
                        tracing::debug!(id, group, ?c, "pending offsets raced; retrying");
                    }
                }
            }
            Ok(codes::CONCURRENT_TRANSACTIONS)
        })
    }

    fn pending<'a>(&'a self, id: &'a str) -> Fut<'a, BTreeMap<String, PendingOffsets>> {
        Box::pin(async move {
            let zk = self.zk();
            Ok(ZkStore::read_pending(&zk, id)
                .await?
                .into_iter()
                .map(|(g, (p, _))| (g, p))
                .collect())
        })
    }

    fn pending_for_group<'a>(&'a self, group: &'a str) -> Fut<'a, Vec<PendingOffsets>> {
        Box::pin(async move {
            let zk = self.zk();
            // Read what the leader has, not what this member has applied so far.
            zk.sync("/consumers").await?;
            let ids = match zk.get_children(&index_path(group)).await {
                Ok(k) => k,
                Err(e) if e.code() == Some(ErrorCode::NoNode) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                match zk.get_data(&pending_path(&decode(&id), group)).await {
                    Ok((data, _)) => match serde_json::from_slice::<PendingOffsets>(&data) {
                        Ok(p) => out.push(p),
                        Err(e) => {
                            tracing::warn!(id, group, error = %e, "unreadable pending offsets");
                            return Err(TxnStoreError::Unreadable(decode(&id)));
                        }
                    },
                    // Completed between the two reads.
                    Err(e) if e.code() == Some(ErrorCode::NoNode) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(out)
        })
    }

    fn finish<'a>(
        &'a self,
        id: &'a str,
        meta: &'a TxnMeta,
        version: i32,
        commit: bool,
    ) -> Fut<'a, i32> {
        Box::pin(async move {
            let zk = self.zk();
            let acl = Acl::open_unsafe();
            for _ in 0..RETRIES {
                let pending = ZkStore::read_pending(&zk, id).await?;
                let mut ops = vec![MultiOp::set_data(&txn_path(id), &meta.to_json(), version)];
                for (group, (_, v)) in &pending {
                    ops.push(MultiOp::delete(&pending_path(id, group), *v));
                }
                if commit {
                    for (group, (topics, _)) in &pending {
                        for path in [group_path(group), offsets_path(group)] {
                            if !exists(&zk, &path).await? {
                                ops.push(MultiOp::create(&path, b"", &acl, CreateMode::Persistent));
                            }
                        }
                        for (t, ps) in topics {
                            let tp = topic_path(group, t);
                            if !exists(&zk, &tp).await? {
                                ops.push(MultiOp::create(&tp, b"", &acl, CreateMode::Persistent));
                            }
                            for (p, c) in ps {
                                let pp = part_path(group, t, *p);
                                if exists(&zk, &pp).await? {
                                    ops.push(MultiOp::set_data(&pp, &c.to_json(), -1));
                                } else {
                                    ops.push(MultiOp::create(
                                        &pp,
                                        &c.to_json(),
                                        &acl,
                                        CreateMode::Persistent,
                                    ));
                                }
                            }
                        }
                    }
                }
                // Last, so the index empties with (not before) the offsets' move.
                for group in pending.keys() {
                    let entry = index_entry(group, id);
                    if exists(&zk, &entry).await? {
                        ops.push(MultiOp::delete(&entry, -1));
                    }
                }
                let res = zk.multi(ops).await?;
                match failed(&res) {
                    None => {
                        return match res.first() {
                            Some(MultiResult::SetData(s)) => Ok(s.version),
                            _ => Ok(version + 1),
                        }
                    }
                    Some((0, _)) => return Err(TxnStoreError::Fenced),
                    Some((i, c)) => {
                        tracing::debug!(id, op = i, ?c, "completing raced; retrying");
                    }
                }
            }
            Err(TxnStoreError::Zk(ZkError::Code(
                ErrorCode::RuntimeInconsistency,
            )))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_one_segment() {
        for s in ["plain", "a/b", "100%", "%2F", "x/%/y"] {
            let e = encode(s);
            assert!(!e.contains('/'));
            assert_eq!(decode(&e), s);
        }
    }
}
