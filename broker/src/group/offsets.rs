//! Committed offsets, kept in the coordinator as the znode table says
//! (docs/architecture.md):
//! `/consumers/<group>/offsets/<topic>/<partition>` holding
//! `{"version":1,"offset":42,"leader_epoch":-1,"metadata":"","timestamp":<ms>}`.
//!
//! Reads (OffsetFetch) are served from an in-memory cache that a persistent
//! recursive watch on `/consumers` keeps correct, so any broker that becomes a
//! group's coordinator already knows its offsets. A commit of many partitions
//! is one multi (creating missing nodes, setting existing ones), and commits
//! from many requests are pipelined on one session, so throughput is bounded by
//! the coordinator's group commit, not by a round trip per partition. That
//! session is the broker's one coordinator session, owned by `cluster::zk`
//! and handed over at startup as a watch of the current session.
//!
//! Without `zookeeper.connect` (standalone mode) offsets live in
//! `<log.dirs>/consumer-offsets.json`, written behind a coalescing writer.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fjord_zk::client::{CreateMode, SessionState, ZkClient, ZkError};
use fjord_zk::proto::{event, Acl, ErrorCode, MultiOp, MultiResult, Stat};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Notify};

use crate::cluster::next_session;

/// Largest number of partitions written by one multi (keeps frames far below jute.maxbuffer).
const MAX_OPS_PER_MULTI: usize = 1000;

/// Why offsets could not be stored or loaded.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("coordinator: {0}")]
    Zk(#[from] ZkError),
    #[error("offsets not loaded yet")]
    NotReady,
    #[error("local offsets file: {0}")]
    Local(String),
}

/// One committed offset as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub offset: i64,
    #[serde(default = "minus_one")]
    pub leader_epoch: i32,
    #[serde(default)]
    pub metadata: String,
    #[serde(default)]
    pub timestamp: i64,
}

fn minus_one() -> i32 {
    -1
}

impl Committed {
    /// The znode body (docs/architecture.md's znode table).
    pub fn to_json(&self) -> Vec<u8> {
        let meta = serde_json::to_string(&self.metadata).unwrap_or_else(|_| "\"\"".into());
        format!(
            "{{\"version\":1,\"offset\":{},\"leader_epoch\":{},\"metadata\":{},\"timestamp\":{}}}",
            self.offset, self.leader_epoch, meta, self.timestamp
        )
        .into_bytes()
    }

    /// Parse a znode body: our JSON, or the bare number old Kafka wrote.
    pub fn parse(data: &[u8]) -> Option<Committed> {
        if let Ok(c) = serde_json::from_slice::<Committed>(data) {
            return Some(c);
        }
        let s = std::str::from_utf8(data).ok()?.trim();
        Some(Committed {
            offset: s.parse().ok()?,
            leader_epoch: -1,
            metadata: String::new(),
            timestamp: 0,
        })
    }
}

#[derive(Debug, Clone)]
struct Entry {
    c: Committed,
    mzxid: i64,
    seq: u64,
}

#[derive(Debug, Default, Clone)]
struct TopicNodes {
    node: bool,
    parts: BTreeMap<i32, Entry>,
}

#[derive(Debug, Default, Clone)]
struct GroupNodes {
    node: bool,
    offsets_node: bool,
    topics: BTreeMap<String, TopicNodes>,
}

impl GroupNodes {
    fn is_empty(&self) -> bool {
        self.topics.values().all(|t| t.parts.is_empty())
    }
}

pub fn group_path(g: &str) -> String {
    format!("/consumers/{g}")
}
pub fn offsets_path(g: &str) -> String {
    format!("/consumers/{g}/offsets")
}
pub fn topic_path(g: &str, t: &str) -> String {
    format!("/consumers/{g}/offsets/{t}")
}
pub fn part_path(g: &str, t: &str, p: i32) -> String {
    format!("/consumers/{g}/offsets/{t}/{p}")
}

/// What a `/consumers/...` path names.
enum Node<'a> {
    Group(&'a str),
    Offsets(&'a str),
    Topic(&'a str, &'a str),
    Part(&'a str, &'a str, i32),
    Other,
}

fn classify(path: &str) -> Node<'_> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        ["consumers", g] => Node::Group(g),
        ["consumers", g, "offsets"] => Node::Offsets(g),
        ["consumers", g, "offsets", t] => Node::Topic(g, t),
        ["consumers", g, "offsets", t, p] => match p.parse() {
            Ok(p) => Node::Part(g, t, p),
            Err(_) => Node::Other,
        },
        _ => Node::Other,
    }
}

/// The offsets store shared by every group on this broker.
pub struct OffsetStore {
    cache: Mutex<HashMap<String, GroupNodes>>,
    ready: AtomicBool,
    seq: AtomicU64,
    backend: Backend,
}

enum Backend {
    Zk(ZkBackend),
    Local(LocalBackend),
}

struct ZkBackend {
    /// The broker's coordinator session while it is usable (None between
    /// sessions and after shutdown).
    client: RwLock<Option<ZkClient>>,
    /// Watch events our own successful writes will cause (skipped, not re-read).
    expected: Mutex<HashMap<String, u32>>,
}

struct LocalBackend {
    path: PathBuf,
    version: AtomicU64,
    wake: Notify,
    persisted: watch::Sender<u64>,
}

#[derive(Serialize, Deserialize, Default)]
struct LocalFile {
    groups: BTreeMap<String, BTreeMap<String, BTreeMap<i32, Committed>>>,
}

enum Applied {
    Read(
        String,
        tokio::task::JoinHandle<Result<(Bytes, Stat), ZkError>>,
    ),
    Deleted(String),
    Created(String),
}

impl OffsetStore {
    /// Start the store: on the broker's coordinator session (`sessions`: the
    /// current one and each one after an expiry; a watch and a loader run on
    /// it), or, standalone (None), on the local file. Returns at once;
    /// `ready()` turns true once offsets are loaded.
    pub fn start(
        sessions: Option<watch::Receiver<ZkClient>>,
        log_dir: PathBuf,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<OffsetStore> {
        let Some(sessions) = sessions else {
            let (persisted, _) = watch::channel(0);
            let store = Arc::new(OffsetStore {
                cache: Mutex::new(HashMap::new()),
                ready: AtomicBool::new(false),
                seq: AtomicU64::new(0),
                backend: Backend::Local(LocalBackend {
                    path: log_dir.join("consumer-offsets.json"),
                    version: AtomicU64::new(0),
                    wake: Notify::new(),
                    persisted,
                }),
            });
            store.load_local();
            tokio::spawn(local_writer(store.clone(), shutdown));
            return store;
        };
        let store = Arc::new(OffsetStore {
            cache: Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            backend: Backend::Zk(ZkBackend {
                client: RwLock::new(None),
                expected: Mutex::new(HashMap::new()),
            }),
        });
        tokio::spawn(zk_task(store.clone(), sessions, shutdown));
        store
    }

    /// True once the committed offsets are loaded (before that, fetches answer
    /// COORDINATOR_LOAD_IN_PROGRESS).
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The committed offset of one partition.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        let c = self.cache.lock();
        c.get(group)?
            .topics
            .get(topic)?
            .parts
            .get(&partition)
            .map(|e| e.c.clone())
    }

    /// Every committed offset of a group, by topic then partition.
    pub fn group_offsets(&self, group: &str) -> BTreeMap<String, BTreeMap<i32, Committed>> {
        let c = self.cache.lock();
        let mut out = BTreeMap::new();
        if let Some(g) = c.get(group) {
            for (t, tn) in &g.topics {
                if tn.parts.is_empty() {
                    continue;
                }
                out.insert(
                    t.clone(),
                    tn.parts.iter().map(|(p, e)| (*p, e.c.clone())).collect(),
                );
            }
        }
        out
    }

    /// Whether the group has any committed offset.
    pub fn has_offsets(&self, group: &str) -> bool {
        self.cache.lock().get(group).is_some_and(|g| !g.is_empty())
    }

    /// Groups with committed offsets.
    pub fn groups(&self) -> Vec<String> {
        self.cache
            .lock()
            .iter()
            .filter(|(_, g)| !g.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Store offsets for many partitions of one group (one multi per chunk).
    pub async fn commit(
        &self,
        group: &str,
        items: Vec<(String, i32, Committed)>,
    ) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        match &self.backend {
            Backend::Local(l) => {
                {
                    let mut c = self.cache.lock();
                    let g = c.entry(group.to_string()).or_default();
                    for (t, p, v) in items {
                        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
                        g.topics.entry(t).or_default().parts.insert(
                            p,
                            Entry {
                                c: v,
                                mzxid: 0,
                                seq,
                            },
                        );
                    }
                }
                let want = l.version.fetch_add(1, Ordering::SeqCst) + 1;
                let mut rx = l.persisted.subscribe();
                l.wake.notify_one();
                let res =
                    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|v| *v >= want))
                        .await;
                match res {
                    Ok(Ok(_)) => Ok(()),
                    _ => Err(StoreError::Local("offsets file not written".into())),
                }
            }
            Backend::Zk(z) => {
                for chunk in items.chunks(MAX_OPS_PER_MULTI) {
                    self.commit_zk(z, group, chunk).await?;
                }
                Ok(())
            }
        }
    }

    async fn commit_zk(
        &self,
        z: &ZkBackend,
        group: &str,
        items: &[(String, i32, Committed)],
    ) -> Result<(), StoreError> {
        let zk = z.client.read().clone().ok_or(StoreError::NotReady)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Plan under the lock: create what the cache says is missing, set the rest.
            let mut ops = Vec::with_capacity(items.len() + 3);
            // (index into ops, topic, partition) for partition ops.
            let mut part_ops: Vec<(usize, &str, i32)> = Vec::with_capacity(items.len());
            {
                let c = self.cache.lock();
                let g = c.get(group);
                let acl = Acl::open_unsafe();
                let missing = [
                    (g.is_some_and(|g| g.node), group_path(group)),
                    (g.is_some_and(|g| g.offsets_node), offsets_path(group)),
                ];
                for (_, path) in missing.iter().filter(|(exists, _)| !exists) {
                    ops.push(MultiOp::create(path, b"", &acl, CreateMode::Persistent));
                }
                let mut topics_done: Vec<&str> = Vec::new();
                for (t, p, v) in items {
                    let tn = g.and_then(|g| g.topics.get(t));
                    if !tn.is_some_and(|tn| tn.node) && !topics_done.contains(&t.as_str()) {
                        ops.push(MultiOp::create(
                            &topic_path(group, t),
                            b"",
                            &acl,
                            CreateMode::Persistent,
                        ));
                        topics_done.push(t);
                    }
                    let path = part_path(group, t, *p);
                    let data = v.to_json();
                    if tn.is_some_and(|tn| tn.parts.contains_key(p)) {
                        ops.push(MultiOp::set_data(&path, &data, -1));
                    } else {
                        ops.push(MultiOp::create(&path, &data, &acl, CreateMode::Persistent));
                    }
                    part_ops.push((ops.len() - 1, t.as_str(), *p));
                }
            }
            let paths: Vec<String> = part_ops
                .iter()
                .map(|(_, t, p)| part_path(group, t, *p))
                .collect();
            {
                let mut e = z.expected.lock();
                for p in &paths {
                    *e.entry(p.clone()).or_insert(0) += 1;
                }
            }
            let res = zk.multi(ops).await;
            let failed = match &res {
                Ok(results) => results.iter().find_map(|r| match r {
                    MultiResult::Error(c)
                        if *c != ErrorCode::Ok && *c != ErrorCode::RuntimeInconsistency =>
                    {
                        Some(*c)
                    }
                    _ => None,
                }),
                Err(_) => None,
            };
            if res.is_err() || failed.is_some() {
                let mut e = z.expected.lock();
                for p in &paths {
                    if let Some(n) = e.get_mut(p) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            e.remove(p);
                        }
                    }
                }
            }
            let results = match res {
                Err(e) => {
                    if matches!(e, ZkError::ConnectionLoss) {
                        // The write may or may not have happened: re-read the group.
                        let _ = self.reload_group(&zk, group).await;
                    }
                    return Err(e.into());
                }
                Ok(r) => r,
            };
            if let Some(code) = failed {
                if attempt < 4 && matches!(code, ErrorCode::NodeExists | ErrorCode::NoNode) {
                    tracing::debug!(
                        group,
                        ?code,
                        "offset commit raced; refreshing the group's nodes"
                    );
                    self.reload_group(&zk, group).await?;
                    continue;
                }
                return Err(StoreError::Zk(ZkError::Code(code)));
            }
            // Success: write through to the cache.
            let mut c = self.cache.lock();
            let g = c.entry(group.to_string()).or_default();
            g.node = true;
            g.offsets_node = true;
            for ((idx, t, p), (_, _, v)) in part_ops.iter().zip(items.iter()) {
                let mzxid = match results.get(*idx) {
                    Some(MultiResult::SetData(s)) => s.mzxid,
                    Some(MultiResult::Create { stat: Some(s), .. }) => s.mzxid,
                    _ => 0,
                };
                let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
                let tn = g.topics.entry(t.to_string()).or_default();
                tn.node = true;
                match tn.parts.get_mut(p) {
                    Some(e) if e.mzxid > mzxid && mzxid != 0 => {}
                    _ => {
                        tn.parts.insert(
                            *p,
                            Entry {
                                c: v.clone(),
                                mzxid,
                                seq,
                            },
                        );
                    }
                }
            }
            return Ok(());
        }
    }

    /// Delete offsets: the listed partitions, or (None) the whole group.
    pub async fn delete(
        &self,
        group: &str,
        parts: Option<Vec<(String, i32)>>,
    ) -> Result<(), StoreError> {
        let (victims, whole) = {
            let c = self.cache.lock();
            let Some(g) = c.get(group) else { return Ok(()) };
            match &parts {
                Some(ps) => (
                    ps.iter()
                        .filter(|(t, p)| g.topics.get(t).is_some_and(|tn| tn.parts.contains_key(p)))
                        .cloned()
                        .collect::<Vec<_>>(),
                    false,
                ),
                None => (
                    g.topics
                        .iter()
                        .flat_map(|(t, tn)| tn.parts.keys().map(move |p| (t.clone(), *p)))
                        .collect(),
                    true,
                ),
            }
        };
        {
            let mut c = self.cache.lock();
            if let Some(g) = c.get_mut(group) {
                for (t, p) in &victims {
                    if let Some(tn) = g.topics.get_mut(t) {
                        tn.parts.remove(p);
                    }
                }
                if whole {
                    c.remove(group);
                }
            }
        }
        match &self.backend {
            Backend::Local(l) => {
                l.version.fetch_add(1, Ordering::SeqCst);
                l.wake.notify_one();
                Ok(())
            }
            Backend::Zk(z) => {
                let zk = z.client.read().clone().ok_or(StoreError::NotReady)?;
                let mut paths: Vec<String> = victims
                    .iter()
                    .map(|(t, p)| part_path(group, t, *p))
                    .collect();
                if whole {
                    let mut topics: Vec<&String> = victims.iter().map(|(t, _)| t).collect();
                    topics.dedup();
                    paths.extend(topics.into_iter().map(|t| topic_path(group, t)));
                    paths.push(offsets_path(group));
                    paths.push(group_path(group));
                }
                for p in paths {
                    match zk.delete(&p, -1).await {
                        Ok(()) => {}
                        Err(e)
                            if matches!(
                                e.code(),
                                Some(ErrorCode::NoNode) | Some(ErrorCode::NotEmpty)
                            ) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(())
            }
        }
    }

    fn load_local(&self) {
        let Backend::Local(l) = &self.backend else {
            return;
        };
        let file: LocalFile = match std::fs::read(&l.path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::error!(path = %l.path.display(), error = %e, "unreadable offsets file; starting empty");
                LocalFile::default()
            }),
            Err(_) => LocalFile::default(),
        };
        let mut c = self.cache.lock();
        for (g, topics) in file.groups {
            let gn = c.entry(g).or_default();
            for (t, parts) in topics {
                let tn = gn.topics.entry(t).or_default();
                for (p, v) in parts {
                    tn.parts.insert(
                        p,
                        Entry {
                            c: v,
                            mzxid: 0,
                            seq: 0,
                        },
                    );
                }
            }
        }
        drop(c);
        self.ready.store(true, Ordering::SeqCst);
    }

    fn snapshot_local(&self) -> LocalFile {
        let c = self.cache.lock();
        let mut f = LocalFile::default();
        for (g, gn) in c.iter() {
            let mut topics = BTreeMap::new();
            for (t, tn) in &gn.topics {
                if !tn.parts.is_empty() {
                    topics.insert(
                        t.clone(),
                        tn.parts.iter().map(|(p, e)| (*p, e.c.clone())).collect(),
                    );
                }
            }
            if !topics.is_empty() {
                f.groups.insert(g.clone(), topics);
            }
        }
        f
    }

    /// Re-read offsets from the coordinator into the cache before a
    /// require_stable OffsetFetch is answered: the cache follows its watch a
    /// moment behind the multi that completes a transaction, and a consumer
    /// told "stable" must not start from the offsets before it. `parts`:
    /// the partitions asked for, None for the whole group.
    pub async fn refresh(
        &self,
        group: &str,
        parts: Option<&[(String, i32)]>,
    ) -> Result<(), StoreError> {
        let Backend::Zk(z) = &self.backend else {
            return Ok(());
        };
        let zk = z.client.read().clone().ok_or(StoreError::NotReady)?;
        let Some(parts) = parts else {
            return Ok(self.reload_group(&zk, group).await?);
        };
        let reads: Vec<_> = parts
            .iter()
            .map(|(t, p)| {
                let z = zk.clone();
                let path = part_path(group, t, *p);
                (
                    path.clone(),
                    tokio::spawn(async move { z.get_data(&path).await }),
                )
            })
            .collect();
        for (path, h) in reads {
            match h.await {
                Ok(Ok((data, stat))) => self.apply_read(&path, &data, &stat),
                Ok(Err(e)) if e.code() == Some(ErrorCode::NoNode) => {}
                Ok(Err(e)) => return Err(e.into()),
                Err(e) => return Err(StoreError::Zk(ZkError::Protocol(e.to_string()))),
            }
        }
        Ok(())
    }

    /// Read one group's subtree from the coordinator and merge it into the cache.
    async fn reload_group(&self, zk: &ZkClient, group: &str) -> Result<(), ZkError> {
        let start = self.seq.load(Ordering::SeqCst);
        let fresh = load_group(zk, group).await?;
        let mut c = self.cache.lock();
        merge_group(c.entry(group.to_string()).or_default(), fresh, start, group);
        Ok(())
    }

    /// Re-read everything under /consumers and merge (start, reconnect, expiry).
    async fn reload_all(&self, zk: &ZkClient) -> Result<(), ZkError> {
        let start = self.seq.load(Ordering::SeqCst);
        let groups = match zk.get_children("/consumers").await {
            Ok(g) => g,
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut tasks = Vec::with_capacity(groups.len());
        for g in groups {
            let z = zk.clone();
            tasks.push((
                g.clone(),
                tokio::spawn(async move { load_group(&z, &g).await }),
            ));
        }
        let mut fresh = HashMap::new();
        for (g, t) in tasks {
            match t.await {
                Ok(Ok(gn)) => {
                    fresh.insert(g, gn);
                }
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(ZkError::Protocol(e.to_string())),
            }
        }
        let mut c = self.cache.lock();
        merge_all(&mut c, fresh, start);
        let n: usize = c
            .values()
            .map(|g| g.topics.values().map(|t| t.parts.len()).sum::<usize>())
            .sum();
        tracing::info!(
            groups = c.len(),
            offsets = n,
            "committed offsets loaded from the coordinator"
        );
        Ok(())
    }

    fn apply_read(&self, path: &str, data: &[u8], stat: &Stat) {
        let Node::Part(g, t, p) = classify(path) else {
            return;
        };
        let Some(v) = Committed::parse(data) else {
            tracing::warn!(path, "unparseable committed offset ignored");
            return;
        };
        let seq = self.next_seq();
        let mut c = self.cache.lock();
        let gn = c.entry(g.to_string()).or_default();
        gn.node = true;
        gn.offsets_node = true;
        let tn = gn.topics.entry(t.to_string()).or_default();
        tn.node = true;
        match tn.parts.get(&p) {
            Some(e) if e.mzxid > stat.mzxid => {}
            _ => {
                tn.parts.insert(
                    p,
                    Entry {
                        c: v,
                        mzxid: stat.mzxid,
                        seq,
                    },
                );
            }
        }
    }

    fn apply_deleted(&self, path: &str) {
        let mut c = self.cache.lock();
        match classify(path) {
            Node::Group(g) => {
                c.remove(g);
            }
            Node::Offsets(g) => {
                if let Some(gn) = c.get_mut(g) {
                    gn.offsets_node = false;
                    gn.topics.clear();
                }
            }
            Node::Topic(g, t) => {
                if let Some(gn) = c.get_mut(g) {
                    gn.topics.remove(t);
                }
            }
            Node::Part(g, t, p) => {
                if let Some(tn) = c.get_mut(g).and_then(|gn| gn.topics.get_mut(t)) {
                    tn.parts.remove(&p);
                }
            }
            Node::Other => {}
        }
    }

    fn apply_created(&self, path: &str) {
        let mut c = self.cache.lock();
        match classify(path) {
            Node::Group(g) => c.entry(g.to_string()).or_default().node = true,
            Node::Offsets(g) => {
                let gn = c.entry(g.to_string()).or_default();
                gn.node = true;
                gn.offsets_node = true;
            }
            Node::Topic(g, t) => {
                let gn = c.entry(g.to_string()).or_default();
                gn.node = true;
                gn.offsets_node = true;
                gn.topics.entry(t.to_string()).or_default().node = true;
            }
            _ => {}
        }
    }
}

/// Merge a full re-read (`fresh`, every group under /consumers) into the
/// cache: what was read wins, except commits that completed after the read
/// started (`seq > start`).
fn merge_all(
    c: &mut HashMap<String, GroupNodes>,
    mut fresh: HashMap<String, GroupNodes>,
    start: u64,
) {
    // Each group once: a group both cached and re-read must be merged with what
    // was read, not merged a second time with nothing (which would drop every
    // offset it had before this reload).
    let names: std::collections::BTreeSet<String> = c.keys().chain(fresh.keys()).cloned().collect();
    for g in names {
        let f = fresh.remove(&g).unwrap_or_default();
        merge_group(c.entry(g.clone()).or_default(), f, start, &g);
    }
    c.retain(|_, g| g.node || !g.is_empty());
}

fn merge_group(cur: &mut GroupNodes, fresh: GroupNodes, start: u64, _group: &str) {
    let mut merged = fresh;
    for (t, tn) in std::mem::take(&mut cur.topics) {
        for (p, e) in tn.parts {
            if e.seq <= start {
                continue;
            }
            let mt = merged.topics.entry(t.clone()).or_default();
            mt.node = true;
            match mt.parts.get(&p) {
                Some(f) if f.mzxid >= e.mzxid && e.mzxid != 0 => {}
                _ => {
                    mt.parts.insert(p, e);
                }
            }
            merged.node = true;
            merged.offsets_node = true;
        }
    }
    *cur = merged;
}

async fn children(zk: &ZkClient, path: &str) -> Result<Option<Vec<String>>, ZkError> {
    match zk.get_children(path).await {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn load_group(zk: &ZkClient, group: &str) -> Result<GroupNodes, ZkError> {
    let mut gn = GroupNodes::default();
    if zk.exists(&group_path(group)).await?.is_none() {
        return Ok(gn);
    }
    gn.node = true;
    let Some(topics) = children(zk, &offsets_path(group)).await? else {
        return Ok(gn);
    };
    gn.offsets_node = true;
    let mut reads = Vec::new();
    for t in topics {
        let Some(parts) = children(zk, &topic_path(group, &t)).await? else {
            continue;
        };
        gn.topics.entry(t.clone()).or_default().node = true;
        for p in parts {
            let Ok(pi) = p.parse::<i32>() else { continue };
            let z = zk.clone();
            let path = part_path(group, &t, pi);
            reads.push((
                t.clone(),
                pi,
                tokio::spawn(async move { z.get_data(&path).await }),
            ));
        }
    }
    for (t, p, h) in reads {
        match h.await {
            Ok(Ok((data, stat))) => {
                if let Some(c) = Committed::parse(&data) {
                    gn.topics.entry(t).or_default().parts.insert(
                        p,
                        Entry {
                            c,
                            mzxid: stat.mzxid,
                            seq: 0,
                        },
                    );
                }
            }
            Ok(Err(e)) if e.code() == Some(ErrorCode::NoNode) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(ZkError::Protocol(e.to_string())),
        }
    }
    Ok(gn)
}

/// Runs the offsets side of the broker's session: watch /consumers, load,
/// keep the cache fed; after an expiry, start over on the cluster's next
/// session. The session itself belongs to the cluster state (`cluster::zk`),
/// which opens, re-establishes and closes it.
async fn zk_task(
    store: Arc<OffsetStore>,
    mut sessions: watch::Receiver<ZkClient>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Backend::Zk(z) = &store.backend else {
        return;
    };
    'session: loop {
        let Some(zk) = next_session(&mut sessions, &mut shutdown).await else {
            return;
        };
        let mut events = loop {
            let setup = async {
                match zk
                    .create(
                        "/consumers",
                        b"",
                        &Acl::open_unsafe(),
                        CreateMode::Persistent,
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.code() == Some(ErrorCode::NodeExists) => {}
                    Err(e) => return Err(e),
                }
                zk.add_watch("/consumers", true).await
            };
            match setup.await {
                Ok(ev) => break ev,
                Err(e) => {
                    tracing::warn!(error = %e, "offsets: cannot watch /consumers; retrying");
                    if matches!(e, ZkError::SessionExpired | ZkError::Closed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue 'session;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        *z.client.write() = Some(zk.clone());
        z.expected.lock().clear();
        // Applier: results in event order, reads pipelined.
        let (atx, mut arx) = mpsc::unbounded_channel::<Applied>();
        let st = store.clone();
        let applier = tokio::spawn(async move {
            while let Some(a) = arx.recv().await {
                match a {
                    Applied::Read(path, h) => match h.await {
                        Ok(Ok((data, stat))) => st.apply_read(&path, &data, &stat),
                        Ok(Err(e)) if e.code() == Some(ErrorCode::NoNode) => {
                            st.apply_deleted(&path)
                        }
                        Ok(Err(e)) => tracing::debug!(path, error = %e, "offsets: re-read failed"),
                        Err(_) => {}
                    },
                    Applied::Deleted(p) => st.apply_deleted(&p),
                    Applied::Created(p) => st.apply_created(&p),
                }
            }
        });
        let mut loaded = false;
        while !loaded {
            match store.reload_all(&zk).await {
                Ok(()) => loaded = true,
                Err(e) => {
                    tracing::warn!(error = %e, "offsets: initial load failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        store.ready.store(true, Ordering::SeqCst);
        let mut state = zk.state();
        // The load above already covers the current connection.
        state.borrow_and_update();
        loop {
            tokio::select! {
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    if ev.event_type == event::NONE {
                        continue;
                    }
                    let path = ev.path.clone();
                    match ev.event_type {
                        event::NODE_DELETED => { let _ = atx.send(Applied::Deleted(path)); }
                        event::NODE_CREATED | event::NODE_DATA_CHANGED => {
                            if !matches!(classify(&path), Node::Part(..)) {
                                let _ = atx.send(Applied::Created(path));
                                continue;
                            }
                            let ours = {
                                let mut e = z.expected.lock();
                                match e.get_mut(&path) {
                                    Some(n) if *n > 0 => {
                                        *n -= 1;
                                        if *n == 0 { e.remove(&path); }
                                        true
                                    }
                                    _ => false,
                                }
                            };
                            if !ours {
                                let zc = zk.clone();
                                let p2 = path.clone();
                                let h = tokio::spawn(async move { zc.get_data(&p2).await });
                                let _ = atx.send(Applied::Read(path, h));
                            }
                        }
                        _ => {}
                    }
                }
                r = state.changed() => {
                    if r.is_err() { break; }
                    let s = *state.borrow();
                    match s {
                        SessionState::Expired => {
                            tracing::warn!("offsets: coordinator session expired; waiting for the next one");
                            break;
                        }
                        SessionState::Closed => break,
                        SessionState::Connected => {
                            // Events may have been missed while disconnected.
                            z.expected.lock().clear();
                            if let Err(e) = store.reload_all(&zk).await {
                                tracing::warn!(error = %e, "offsets: reload after reconnect failed");
                            }
                        }
                        _ => {}
                    }
                }
                _ = shutdown.changed() => {
                    *z.client.write() = None;
                    applier.abort();
                    return;
                }
            }
        }
        *z.client.write() = None;
        applier.abort();
    }
}

/// Standalone mode: write the offsets file whenever commits are waiting.
async fn local_writer(store: Arc<OffsetStore>, mut shutdown: watch::Receiver<bool>) {
    let Backend::Local(l) = &store.backend else {
        return;
    };
    loop {
        tokio::select! {
            _ = l.wake.notified() => {}
            _ = shutdown.changed() => {}
        }
        let version = l.version.load(Ordering::SeqCst);
        let snap = store.snapshot_local();
        let path = l.path.clone();
        let res = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let tmp = path.with_extension("json.tmp");
            let data = serde_json::to_vec(&snap).map_err(std::io::Error::other)?;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&data)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path)
        })
        .await;
        match res {
            Ok(Ok(())) => {
                l.persisted.send_replace(version);
            }
            Ok(Err(e)) => {
                tracing::error!(path = %l.path.display(), error = %e, "cannot write offsets file")
            }
            Err(e) => tracing::error!(error = %e, "offsets writer failed"),
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let c = Committed {
            offset: 42,
            leader_epoch: 3,
            metadata: "m\"x".into(),
            timestamp: 7,
        };
        let j = c.to_json();
        let s = std::str::from_utf8(&j).unwrap();
        assert!(s.starts_with("{\"version\":1,\"offset\":42,\"leader_epoch\":3,"));
        assert_eq!(Committed::parse(&j).unwrap(), c);
        assert_eq!(Committed::parse(b"17").unwrap().offset, 17);
        assert!(Committed::parse(b"zz").is_none());
    }

    fn one(offset: i64, mzxid: i64, seq: u64) -> GroupNodes {
        let mut g = GroupNodes {
            node: true,
            offsets_node: true,
            ..Default::default()
        };
        let t = g.topics.entry("t".into()).or_default();
        t.node = true;
        t.parts.insert(
            0,
            Entry {
                c: Committed {
                    offset,
                    leader_epoch: -1,
                    metadata: String::new(),
                    timestamp: 0,
                },
                mzxid,
                seq,
            },
        );
        g
    }

    #[test]
    fn reload_keeps_groups_already_cached() {
        // A reconnect re-reads a group the cache already holds: it must stay.
        let mut cache = HashMap::from([("g".to_string(), one(40, 5, 0))]);
        let fresh = HashMap::from([("g".to_string(), one(40, 5, 0))]);
        merge_all(&mut cache, fresh, 10);
        assert_eq!(cache["g"].topics["t"].parts[&0].c.offset, 40);
        // A commit that finished after the read started wins over the read.
        let mut cache = HashMap::from([("g".to_string(), one(41, 6, 11))]);
        let fresh = HashMap::from([("g".to_string(), one(40, 5, 0))]);
        merge_all(&mut cache, fresh, 10);
        assert_eq!(cache["g"].topics["t"].parts[&0].c.offset, 41);
        // A group deleted meanwhile (absent from the read, nothing newer) goes.
        let mut cache = HashMap::from([("g".to_string(), one(40, 5, 3))]);
        merge_all(&mut cache, HashMap::new(), 10);
        assert!(cache.is_empty());
    }

    #[test]
    fn classify_paths() {
        assert!(matches!(
            classify("/consumers/g/offsets/t/3"),
            Node::Part("g", "t", 3)
        ));
        assert!(matches!(
            classify("/consumers/g/offsets/t"),
            Node::Topic("g", "t")
        ));
        assert!(matches!(classify("/consumers/g"), Node::Group("g")));
        assert!(matches!(classify("/consumers/g/owners/t/x"), Node::Other));
    }
}
