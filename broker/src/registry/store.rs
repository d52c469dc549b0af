//! Where the registry's state lives and how every broker's copy of it stays
//! current.
//!
//! The state is a small tree of znodes under `/schema_registry` (the layout is
//! in docs/architecture.md). Every change is one conditional `multi`, so two
//! brokers deciding at once cannot both win: the loser's multi fails on a
//! version check or an existing node, re-reads what it planned from, and
//! tries again. Every broker keeps the parsed tree in memory ([`State`]), fed
//! by a persistent recursive watch on the root, and answers reads from it; its
//! own successful writes are applied at once (a client reading right after a
//! write to the same broker sees it).
//!
//! The backend is the broker's coordinator session, or — standalone, and in
//! tests — the in-memory twin, which keeps the same tree in
//! `<log.dirs>/schema-registry.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fjord_zk::client::{CreateMode, SessionState, ZkClient, ZkError};
use fjord_zk::proto::{event, Acl, ErrorCode, MultiOp, MultiResult};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, watch, Notify};

use crate::cluster::next_session;

use super::model::{
    decode_name, encode_name, ConfigRec, ModeRec, NodeMeta, SchemaRec, State, VersionRec,
};

/// The registry's root znode.
pub const ROOT: &str = "/schema_registry";

/// Nodes that always exist (created at start by whichever broker is first).
const FIXED: &[(&str, &[u8])] = &[
    ("", b""),
    ("ids", b""),
    ("hashes", b""),
    ("subjects", b""),
    ("counter", b"0"),
    ("config", b""),
    ("mode", b""),
];

/// One step of a conditional write, paths relative to the root.
#[derive(Debug, Clone)]
pub enum Op {
    Create(String, Vec<u8>),
    /// Set data if the node is still at this version.
    Set(String, Vec<u8>, i32),
    /// Delete if the node is still at this version (−1: any).
    Delete(String, i32),
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Someone else changed what the write was planned from: re-read, re-plan.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The coordinator cannot be reached (or refused for another reason).
    #[error("coordinator: {0}")]
    Unavailable(String),
}

/// Paths of the nodes one subject owns.
pub fn subject_path(subject: &str) -> String {
    format!("subjects/{}", encode_name(subject))
}
pub fn version_path(subject: &str, v: i32) -> String {
    format!("subjects/{}/{v}", encode_name(subject))
}
pub fn config_path(subject: Option<&str>) -> String {
    match subject {
        Some(s) => format!("config/{}", encode_name(s)),
        None => "config".into(),
    }
}
pub fn mode_path(subject: Option<&str>) -> String {
    match subject {
        Some(s) => format!("mode/{}", encode_name(s)),
        None => "mode".into(),
    }
}

fn abs(rel: &str) -> String {
    if rel.is_empty() {
        ROOT.to_string()
    } else {
        format!("{ROOT}/{rel}")
    }
}

/// The registry's state and the backend it is kept in.
pub struct Store {
    state: RwLock<State>,
    ready: AtomicBool,
    loaded: Notify,
    backend: Backend,
}

enum Backend {
    Zk(RwLock<Option<ZkClient>>),
    Mem(Mutex<MemTree>),
}

/// The in-memory twin of the znode tree (standalone mode and tests).
#[derive(Default)]
struct MemTree {
    nodes: BTreeMap<String, (Vec<u8>, i32)>,
    zxid: i64,
    file: Option<PathBuf>,
}

impl Store {
    /// A store on the broker's coordinator sessions (a watch of the current
    /// one); loads in the background, `wait_ready` tells when it has.
    pub fn start_zk(
        sessions: watch::Receiver<ZkClient>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Store> {
        let store = Arc::new(Store {
            state: RwLock::new(State::default()),
            ready: AtomicBool::new(false),
            loaded: Notify::new(),
            backend: Backend::Zk(RwLock::new(None)),
        });
        tokio::spawn(zk_task(store.clone(), sessions, shutdown));
        store
    }

    /// A store on the in-memory twin, persisted to `file` when given.
    pub fn start_memory(file: Option<PathBuf>) -> Arc<Store> {
        let mut tree = MemTree {
            file: file.clone(),
            ..Default::default()
        };
        if let Some(f) = &file {
            match std::fs::read(f) {
                Ok(b) => match serde_json::from_slice::<BTreeMap<String, (String, i32)>>(&b) {
                    Ok(m) => {
                        tree.nodes = m
                            .into_iter()
                            .map(|(k, (d, v))| (k, (d.into_bytes(), v)))
                            .collect()
                    }
                    Err(e) => {
                        tracing::error!(path = %f.display(), error = %e, "unreadable schema registry file; starting empty")
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::error!(path = %f.display(), error = %e, "cannot read schema registry file")
                }
            }
        }
        for (p, d) in FIXED {
            tree.nodes
                .entry(p.to_string())
                .or_insert_with(|| (d.to_vec(), 0));
        }
        let mut state = State::default();
        for (p, (d, v)) in &tree.nodes {
            apply_node(
                &mut state,
                p,
                d,
                NodeMeta {
                    version: *v,
                    mzxid: 0,
                },
            );
        }
        Arc::new(Store {
            state: RwLock::new(state),
            ready: AtomicBool::new(true),
            loaded: Notify::new(),
            backend: Backend::Mem(Mutex::new(tree)),
        })
    }

    /// A watch-fed state that has not yet seen `ids/{id}` (tests of races).
    #[cfg(test)]
    pub(super) fn forget_schema(&self, id: i32) {
        self.state.write().schemas.remove(&id);
    }

    /// Read access to the parsed state.
    pub fn state(&self) -> parking_lot::RwLockReadGuard<'_, State> {
        self.state.read()
    }

    /// Wait (bounded) until the state is loaded; false if it is not.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.loaded.notified();
            if self.ready.load(Ordering::SeqCst) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.ready.load(Ordering::SeqCst);
            }
        }
    }

    /// Run `ops` as one atomic write; applied to this broker's state on success.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<(), CommitError> {
        match &self.backend {
            Backend::Mem(tree) => self.commit_mem(tree, ops),
            Backend::Zk(client) => {
                let zk = client
                    .read()
                    .clone()
                    .ok_or_else(|| CommitError::Unavailable("no coordinator session".into()))?;
                self.commit_zk(&zk, ops).await
            }
        }
    }

    fn commit_mem(&self, tree: &Mutex<MemTree>, ops: Vec<Op>) -> Result<(), CommitError> {
        let mut t = tree.lock();
        // Check every op against a scratch copy first: all or nothing.
        let mut scratch = t.nodes.clone();
        for op in &ops {
            match op {
                Op::Create(p, d) => {
                    if scratch.contains_key(p) {
                        return Err(CommitError::Conflict(format!("{p} exists")));
                    }
                    scratch.insert(p.clone(), (d.clone(), 0));
                }
                Op::Set(p, d, v) => match scratch.get_mut(p) {
                    Some(n) if *v == -1 || n.1 == *v => {
                        n.0 = d.clone();
                        n.1 += 1;
                    }
                    Some(_) => return Err(CommitError::Conflict(format!("{p} changed"))),
                    None => return Err(CommitError::Conflict(format!("{p} missing"))),
                },
                Op::Delete(p, v) => match scratch.get(p) {
                    Some(n) if *v == -1 || n.1 == *v => {
                        let prefix = format!("{p}/");
                        if scratch
                            .range(prefix.clone()..)
                            .next()
                            .is_some_and(|(k, _)| k.starts_with(&prefix))
                        {
                            return Err(CommitError::Conflict(format!("{p} not empty")));
                        }
                        scratch.remove(p);
                    }
                    Some(_) => return Err(CommitError::Conflict(format!("{p} changed"))),
                    None => return Err(CommitError::Conflict(format!("{p} missing"))),
                },
            }
        }
        t.zxid += 1;
        let zxid = t.zxid;
        if let Some(f) = &t.file {
            let out: BTreeMap<&String, (String, i32)> = scratch
                .iter()
                .map(|(k, (d, v))| (k, (String::from_utf8_lossy(d).into_owned(), *v)))
                .collect();
            let tmp = f.with_extension("json.tmp");
            let res = serde_json::to_vec(&out)
                .map_err(std::io::Error::other)
                .and_then(|b| std::fs::write(&tmp, b))
                .and_then(|_| std::fs::rename(&tmp, f));
            if let Err(e) = res {
                return Err(CommitError::Unavailable(format!(
                    "schema registry file: {e}"
                )));
            }
        }
        t.nodes = scratch;
        let mut s = self.state.write();
        for op in &ops {
            match op {
                Op::Create(p, _) | Op::Set(p, _, _) => {
                    if let Some((d, v)) = t.nodes.get(p) {
                        apply_node(
                            &mut s,
                            p,
                            d,
                            NodeMeta {
                                version: *v,
                                mzxid: zxid,
                            },
                        );
                    }
                }
                Op::Delete(p, _) => apply_deleted(&mut s, p),
            }
        }
        Ok(())
    }

    async fn commit_zk(&self, zk: &ZkClient, ops: Vec<Op>) -> Result<(), CommitError> {
        let acl = Acl::open_unsafe();
        let multi: Vec<MultiOp> = ops
            .iter()
            .map(|op| match op {
                Op::Create(p, d) => MultiOp::create(&abs(p), d, &acl, CreateMode::Persistent),
                Op::Set(p, d, v) => MultiOp::set_data(&abs(p), d, *v),
                Op::Delete(p, v) => MultiOp::delete(&abs(p), *v),
            })
            .collect();
        let results = match zk.multi(multi).await {
            Ok(r) => r,
            // Unknown outcome: the caller re-reads and re-plans (its plan is idempotent).
            Err(ZkError::ConnectionLoss) => {
                return Err(CommitError::Conflict(
                    "connection lost during the write".into(),
                ))
            }
            Err(e) => return Err(CommitError::Unavailable(e.to_string())),
        };
        if let Some(code) = results.iter().find_map(|r| match r {
            MultiResult::Error(c)
                if *c != ErrorCode::Ok && *c != ErrorCode::RuntimeInconsistency =>
            {
                Some(*c)
            }
            _ => None,
        }) {
            return match code {
                ErrorCode::NodeExists
                | ErrorCode::NoNode
                | ErrorCode::BadVersion
                | ErrorCode::NotEmpty => Err(CommitError::Conflict(format!("{code:?}"))),
                other => Err(CommitError::Unavailable(format!("{other:?}"))),
            };
        }
        let mut s = self.state.write();
        for (op, r) in ops.iter().zip(results.iter()) {
            match (op, r) {
                (Op::Create(p, d), MultiResult::Create { stat, .. }) => {
                    let mzxid = stat.as_ref().map_or(0, |s| s.mzxid);
                    apply_node(&mut s, p, d, NodeMeta { version: 0, mzxid });
                }
                (Op::Set(p, d, _), MultiResult::SetData(st)) => {
                    apply_node(
                        &mut s,
                        p,
                        d,
                        NodeMeta {
                            version: st.version,
                            mzxid: st.mzxid,
                        },
                    );
                }
                (Op::Delete(p, _), _) => apply_deleted(&mut s, p),
                _ => {}
            }
        }
        Ok(())
    }

    /// Re-read these nodes from the backend into the state (after a conflict,
    /// or a read that missed: another broker may have written a moment ago).
    pub async fn refresh(&self, paths: &[String]) {
        let Backend::Zk(client) = &self.backend else {
            return;
        };
        let Some(zk) = client.read().clone() else {
            return;
        };
        for p in paths {
            self.refresh_one(&zk, p).await;
        }
    }

    async fn refresh_one(&self, zk: &ZkClient, p: &str) {
        match zk.get_data(&abs(p)).await {
            Ok((d, st)) => apply_node(
                &mut self.state.write(),
                p,
                &d,
                NodeMeta {
                    version: st.version,
                    mzxid: st.mzxid,
                },
            ),
            Err(e) if e.code() == Some(ErrorCode::NoNode) => {
                apply_deleted(&mut self.state.write(), p)
            }
            Err(e) => tracing::debug!(path = p, error = %e, "registry: re-read failed"),
        }
    }

    /// Re-read one subject (its node and every version) from the backend.
    pub async fn refresh_subject(&self, subject: &str) {
        let Backend::Zk(client) = &self.backend else {
            return;
        };
        let Some(zk) = client.read().clone() else {
            return;
        };
        let sp = subject_path(subject);
        match zk.get_children(&abs(&sp)).await {
            Ok(children) => {
                self.refresh_one(&zk, &sp).await;
                let mut seen = Vec::new();
                for c in children {
                    let Ok(v) = c.parse::<i32>() else { continue };
                    seen.push(v);
                    self.refresh_one(&zk, &version_path(subject, v)).await;
                }
                let mut s = self.state.write();
                if let Some(vs) = s.subjects.get_mut(subject) {
                    vs.retain(|v, _| seen.contains(v));
                }
            }
            Err(e) if e.code() == Some(ErrorCode::NoNode) => {
                apply_deleted(&mut self.state.write(), &sp)
            }
            Err(e) => tracing::debug!(subject, error = %e, "registry: subject re-read failed"),
        }
    }

    /// Read the whole tree into a fresh state and swap it in.
    async fn load_all(&self, zk: &ZkClient) -> Result<(), ZkError> {
        let mut paths: Vec<String> = FIXED.iter().map(|(p, _)| p.to_string()).collect();
        for dir in ["ids", "hashes", "config", "mode"] {
            for c in children(zk, dir).await? {
                paths.push(format!("{dir}/{c}"));
            }
        }
        for c in children(zk, "subjects").await? {
            let sp = format!("subjects/{c}");
            for v in children(zk, &sp).await? {
                paths.push(format!("{sp}/{v}"));
            }
            paths.push(sp);
        }
        // Pipelined reads.
        let mut reads = Vec::with_capacity(paths.len());
        for p in paths {
            let z = zk.clone();
            let a = abs(&p);
            reads.push((p, tokio::spawn(async move { z.get_data(&a).await })));
        }
        let mut fresh = State::default();
        for (p, h) in reads {
            match h.await {
                Ok(Ok((d, st))) => apply_node(
                    &mut fresh,
                    &p,
                    &d,
                    NodeMeta {
                        version: st.version,
                        mzxid: st.mzxid,
                    },
                ),
                Ok(Err(e)) if e.code() == Some(ErrorCode::NoNode) => {}
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(ZkError::Protocol(e.to_string())),
            }
        }
        let n = fresh.schemas.len();
        let subjects = fresh.subjects.len();
        *self.state.write() = fresh;
        tracing::info!(
            schemas = n,
            subjects,
            "schema registry loaded from the coordinator"
        );
        Ok(())
    }
}

async fn children(zk: &ZkClient, rel: &str) -> Result<Vec<String>, ZkError> {
    match zk.get_children(&abs(rel)).await {
        Ok(c) => Ok(c),
        Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Parse one node into the state (skipped if older than what is there).
fn apply_node(s: &mut State, path: &str, data: &[u8], meta: NodeMeta) {
    if let Some(cur) = s.nodes.get(path) {
        if meta.mzxid != 0 && cur.mzxid > meta.mzxid {
            return;
        }
    }
    s.nodes.insert(path.to_string(), meta);
    let parts: Vec<&str> = path.split('/').collect();
    let text = std::str::from_utf8(data).unwrap_or("").trim();
    match parts.as_slice() {
        ["counter"] => s.counter = text.parse().unwrap_or(s.counter),
        ["ids", id] => {
            let (Ok(id), Ok(rec)) = (id.parse::<i32>(), serde_json::from_slice::<SchemaRec>(data))
            else {
                tracing::warn!(path, "unparseable schema node ignored");
                return;
            };
            s.hashes.insert(rec.hash.clone(), id);
            s.schemas.insert(id, Arc::new(rec));
        }
        ["hashes", h] => {
            if let Ok(id) = text.parse() {
                s.hashes.insert(h.to_string(), id);
            }
        }
        ["subjects", enc] => {
            if let Some(name) = decode_name(enc) {
                s.subjects.entry(name).or_default();
            }
        }
        ["subjects", enc, v] => {
            let (Some(name), Ok(v), Ok(rec)) = (
                decode_name(enc),
                v.parse::<i32>(),
                serde_json::from_slice::<VersionRec>(data),
            ) else {
                tracing::warn!(path, "unparseable subject version node ignored");
                return;
            };
            s.subjects.entry(name).or_default().insert(v, rec);
        }
        ["config"] => {
            s.global_config = serde_json::from_slice::<ConfigRec>(data)
                .ok()
                .map(|c| c.compatibility_level)
        }
        ["config", enc] => {
            if let (Some(name), Ok(c)) =
                (decode_name(enc), serde_json::from_slice::<ConfigRec>(data))
            {
                s.subject_config.insert(name, c.compatibility_level);
            }
        }
        ["mode"] => s.global_mode = serde_json::from_slice::<ModeRec>(data).ok().map(|m| m.mode),
        ["mode", enc] => {
            if let (Some(name), Ok(m)) = (decode_name(enc), serde_json::from_slice::<ModeRec>(data))
            {
                s.subject_mode.insert(name, m.mode);
            }
        }
        _ => {}
    }
}

/// A node is gone: drop what it held.
fn apply_deleted(s: &mut State, path: &str) {
    s.nodes.remove(path);
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["ids", id] => {
            if let Ok(id) = id.parse::<i32>() {
                if let Some(rec) = s.schemas.remove(&id) {
                    s.hashes.remove(&rec.hash);
                }
            }
        }
        ["hashes", h] => {
            s.hashes.remove(*h);
        }
        ["subjects", enc] => {
            if let Some(name) = decode_name(enc) {
                s.subjects.remove(&name);
            }
        }
        ["subjects", enc, v] => {
            if let (Some(name), Ok(v)) = (decode_name(enc), v.parse::<i32>()) {
                if let Some(vs) = s.subjects.get_mut(&name) {
                    vs.remove(&v);
                }
            }
        }
        ["config"] => s.global_config = None,
        ["config", enc] => {
            if let Some(name) = decode_name(enc) {
                s.subject_config.remove(&name);
            }
        }
        ["mode"] => s.global_mode = None,
        ["mode", enc] => {
            if let Some(name) = decode_name(enc) {
                s.subject_mode.remove(&name);
            }
        }
        _ => {}
    }
}

enum Applied {
    Read(
        String,
        tokio::task::JoinHandle<Result<(Bytes, fjord_zk::proto::Stat), ZkError>>,
    ),
    Deleted(String),
}

/// Watch the root, load, keep the state fed; start over on the next session
/// after an expiry (the session belongs to `cluster::zk`).
async fn zk_task(
    store: Arc<Store>,
    mut sessions: watch::Receiver<ZkClient>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Backend::Zk(client) = &store.backend else {
        return;
    };
    'session: loop {
        let Some(zk) = next_session(&mut sessions, &mut shutdown).await else {
            return;
        };
        let mut events = loop {
            let setup = async {
                for (p, d) in FIXED {
                    match zk
                        .create(&abs(p), d, &Acl::open_unsafe(), CreateMode::Persistent)
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.code() == Some(ErrorCode::NodeExists) => {}
                        Err(e) => return Err(e),
                    }
                }
                zk.add_watch(ROOT, true).await
            };
            match setup.await {
                Ok(ev) => break ev,
                Err(e) => {
                    tracing::warn!(error = %e, "schema registry: cannot watch {ROOT}; retrying");
                    if matches!(e, ZkError::SessionExpired | ZkError::Closed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue 'session;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        *client.write() = Some(zk.clone());
        let (atx, mut arx) = mpsc::unbounded_channel::<Applied>();
        let st = store.clone();
        // Results applied in event order; reads pipelined.
        let applier = tokio::spawn(async move {
            while let Some(a) = arx.recv().await {
                match a {
                    Applied::Read(path, h) => match h.await {
                        Ok(Ok((data, stat))) => apply_node(
                            &mut st.state.write(),
                            &path,
                            &data,
                            NodeMeta {
                                version: stat.version,
                                mzxid: stat.mzxid,
                            },
                        ),
                        Ok(Err(e)) if e.code() == Some(ErrorCode::NoNode) => {
                            apply_deleted(&mut st.state.write(), &path)
                        }
                        Ok(Err(e)) => tracing::debug!(path, error = %e, "registry: re-read failed"),
                        Err(_) => {}
                    },
                    Applied::Deleted(p) => apply_deleted(&mut st.state.write(), &p),
                }
            }
        });
        loop {
            match store.load_all(&zk).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "schema registry: load failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        store.ready.store(true, Ordering::SeqCst);
        store.loaded.notify_waiters();
        let mut state = zk.state();
        state.borrow_and_update();
        let prefix = format!("{ROOT}/");
        loop {
            tokio::select! {
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    if ev.event_type == event::NONE {
                        continue;
                    }
                    let Some(rel) = ev.path.strip_prefix(&prefix).map(str::to_string) else { continue };
                    match ev.event_type {
                        event::NODE_DELETED => { let _ = atx.send(Applied::Deleted(rel)); }
                        event::NODE_CREATED | event::NODE_DATA_CHANGED => {
                            let z = zk.clone();
                            let a = ev.path.clone();
                            let h = tokio::spawn(async move { z.get_data(&a).await });
                            let _ = atx.send(Applied::Read(rel, h));
                        }
                        _ => {}
                    }
                }
                r = state.changed() => {
                    if r.is_err() { break; }
                    let s = *state.borrow();
                    match s {
                        SessionState::Expired | SessionState::Closed => break,
                        SessionState::Connected => {
                            // Events may have been missed while disconnected.
                            if let Err(e) = store.load_all(&zk).await {
                                tracing::warn!(error = %e, "schema registry: reload after reconnect failed");
                            }
                        }
                        _ => {}
                    }
                }
                _ = shutdown.changed() => {
                    *client.write() = None;
                    applier.abort();
                    return;
                }
            }
        }
        *client.write() = None;
        applier.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_twin_is_all_or_nothing_and_persists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("schema-registry.json");
        let s = Store::start_memory(Some(f.clone()));
        s.commit(vec![
            Op::Set("counter".into(), b"1".to_vec(), 0),
            Op::Create("subjects/a".into(), b"{}".to_vec()),
        ])
        .await
        .expect("first write");
        assert_eq!(s.state().counter, 1);
        // Stale version: nothing of this multi may land.
        let r = s
            .commit(vec![
                Op::Create("subjects/b".into(), b"{}".to_vec()),
                Op::Set("counter".into(), b"2".to_vec(), 0),
            ])
            .await;
        assert!(matches!(r, Err(CommitError::Conflict(_))));
        assert!(!s.state().subjects.contains_key("b"));
        let again = Store::start_memory(Some(f));
        assert_eq!(again.state().counter, 1);
        assert!(again.state().subjects.contains_key("a"));
    }
}
