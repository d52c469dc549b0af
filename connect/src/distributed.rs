//! Distributed mode's shared state, in the coordinator the brokers already use (found
//! through the brokers: their `zookeeper.connect`, read with DescribeConfigs), under
//! `/connect/<group.id>/` (under the brokers' chroot), readable with `fjord znode`:
//!
//! | znode | what | written by |
//! |---|---|---|
//! | `workers/<worker id>` | ephemeral, one per live worker (data: its REST URL) | each worker |
//! | `connectors` | bumped on every change below it: one watch tells a worker to look | any worker |
//! | `connectors/<name>` | the connector's record (config, target, task configs, restarts), JSON | the worker taking the REST call |
//! | `owners/<name>/<task>` | ephemeral: the worker running the task now | the task's worker |
//! | `status/<name>/<task>` | `{"state","trace","worker_id"}` of the task's last run | the task's worker |
//! | `offsets/<name>/<partition>` | a source partition and its offset, JSON | the task's worker |
//! | `topics/<name>/<topic>` | the connector's active topics | the task's worker |
//!
//! Membership is the ephemeral `workers` nodes: a worker that dies loses its session
//! after `session.timeout.ms`, its nodes go, and every survivor's watch fires; each
//! computes the same assignment (`assignment`) and starts what is now its own. A task
//! starts only once its worker holds the task's `owners` node, so a task moving off a
//! slow worker never runs twice at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use fjord_zk::client::{CreateMode, ZkClient, ZkError};
use fjord_zk::proto::{Acl, ErrorCode};
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::config_store::{ConfigStore, ConnectorRecord, StoreError, StoreResult};
use crate::storage::{OffsetStore, StorageError};

/// How often a worker looks again without being told (claims a slow worker has
/// released since, statuses changed by its own tasks).
const TICK: Duration = Duration::from_secs(1);

/// The coordinator address the brokers at `bootstrap` use (`zookeeper.connect`
/// from DescribeConfigs of a broker), so a worker file needs nothing beyond Kafka's.
pub async fn coordinator_of(bootstrap: &str) -> Result<String, String> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| e.to_string())?;
    let b = bootstrap.to_string();
    let ids: Vec<i32> = tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &b)
            .create()?;
        c.fetch_metadata(None, Duration::from_secs(15))
            .map(|md| md.brokers().iter().map(|b| b.id()).collect())
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("no broker answered at {bootstrap}: {e}"))?;
    let specs: Vec<ResourceSpecifier> = ids.iter().map(|i| ResourceSpecifier::Broker(*i)).collect();
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(15)));
    let results = admin
        .describe_configs(&specs, &opts)
        .await
        .map_err(|e| e.to_string())?;
    results
        .into_iter()
        .flatten()
        .find_map(|r| {
            r.entries
                .iter()
                .find(|e| e.name == "zookeeper.connect")
                .and_then(|e| e.value.clone())
                .filter(|v| !v.is_empty())
        })
        .ok_or_else(|| {
            "the brokers run without a coordinator (no zookeeper.connect): distributed mode keeps its state there".into()
        })
}

fn zk_err(e: ZkError) -> String {
    e.to_string()
}

fn is(e: &ZkError, code: ErrorCode) -> bool {
    e.code() == Some(code)
}

/// A znode name for any text: `%`, `/` and control characters percent-encoded.
fn node_name(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if ch == '%' || ch == '/' || ch.is_control() {
            let mut b = [0u8; 4];
            for byte in ch.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(ch);
        }
    }
    if out == "." || out == ".." {
        out = out.replace('.', "%2E");
    }
    out
}

/// One worker's membership of its group, and the group's znodes.
pub struct Cluster {
    /// Replaced when the session expires (a new session, registered again).
    zk: RwLock<ZkClient>,
    connect: String,
    session_timeout: Duration,
    root: String,
    pub me: String,
    url: String,
    /// Bumped with each new session: tasks claimed under an older one are stopped
    /// (their `owners` nodes died with it and another worker may have them now).
    epoch: AtomicU64,
}

impl Cluster {
    /// Open a session, create the group's znodes and register this worker.
    pub async fn join(
        connect: &str,
        group: &str,
        me: String,
        url: String,
        session_timeout: Duration,
    ) -> Result<Arc<Cluster>, String> {
        let zk = ZkClient::connect(connect, session_timeout)
            .await
            .map_err(|e| format!("cannot reach the coordinator at {connect}: {e}"))?;
        let c = Arc::new(Cluster {
            zk: RwLock::new(zk),
            connect: connect.to_string(),
            session_timeout,
            root: format!("/connect/{}", node_name(group)),
            me,
            url,
            epoch: AtomicU64::new(1),
        });
        c.register().await.map_err(zk_err)?;
        Ok(c)
    }

    fn zk(&self) -> ZkClient {
        self.zk.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The session is gone: its `owners` nodes with it, so this worker's tasks may
    /// already run elsewhere.
    pub fn expired(&self) -> bool {
        *self.zk().state().borrow() == fjord_zk::client::SessionState::Expired
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    fn path(&self, parts: &[&str]) -> String {
        let mut p = self.root.clone();
        for x in parts {
            p.push('/');
            p.push_str(x);
        }
        p
    }

    async fn register(&self) -> Result<(), ZkError> {
        let zk = self.zk();
        for d in [
            "workers",
            "connectors",
            "owners",
            "status",
            "offsets",
            "topics",
        ] {
            zk.ensure_path(&self.path(&[d])).await?;
        }
        let me = self.path(&["workers", &node_name(&self.me)]);
        let data = json!({ "url": self.url }).to_string();
        loop {
            match zk
                .create(
                    &me,
                    data.as_bytes(),
                    &Acl::open_unsafe(),
                    CreateMode::Ephemeral,
                )
                .await
            {
                Ok(_) => return Ok(()),
                // This worker's previous life (killed, restarted before its session
                // expired): the same identity, so its node is ours to replace.
                Err(e) if is(&e, ErrorCode::NodeExists) => match zk.delete(&me, -1).await {
                    Ok(()) => {}
                    Err(e) if is(&e, ErrorCode::NoNode) => {}
                    Err(e) => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// A new session after expiry, retried until the coordinator answers.
    async fn renew(&self) {
        loop {
            match ZkClient::connect(&self.connect, self.session_timeout).await {
                Ok(zk) => {
                    *self.zk.write().unwrap_or_else(|p| p.into_inner()) = zk;
                    self.epoch.fetch_add(1, Ordering::SeqCst);
                    match self.register().await {
                        Ok(()) => {
                            tracing::info!(worker = %self.me, "rejoined the group with a new coordinator session");
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot register again; retrying"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "coordinator unreachable; retrying"),
            }
            tokio::time::sleep(TICK).await;
        }
    }

    /// Live workers, sorted.
    pub async fn workers(&self) -> Result<Vec<String>, String> {
        let mut w = self
            .zk()
            .get_children(&self.path(&["workers"]))
            .await
            .map_err(zk_err)?;
        w.sort();
        Ok(w)
    }

    /// Watch membership and connector records; `poke` on every change, every `TICK`
    /// and after a new session. Runs until the process ends.
    pub async fn watch(self: Arc<Self>, poke: Arc<Notify>) {
        loop {
            let zk = self.zk();
            let mut state = zk.state();
            if *state.borrow() == fjord_zk::client::SessionState::Expired {
                tracing::warn!(worker = %self.me, "coordinator session expired: this worker's tasks stop until it has rejoined");
                poke.notify_one();
                self.renew().await;
                poke.notify_one();
                continue;
            }
            let watches = async {
                let (_, w) = zk.get_children_w(&self.path(&["workers"])).await?;
                let (_, _, c) = zk.get_data_w(&self.path(&["connectors"])).await?;
                Ok::<_, ZkError>((w, c))
            };
            match watches.await {
                Ok((mut w, mut c)) => {
                    poke.notify_one();
                    // The watches stay set across ticks; one firing sets them again.
                    loop {
                        tokio::select! {
                            _ = &mut w => break,
                            _ = &mut c => break,
                            _ = state.changed() => break,
                            _ = tokio::time::sleep(TICK) => poke.notify_one(),
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "watch not set; retrying");
                    tokio::time::sleep(TICK).await;
                }
            }
        }
    }

    /// Tell every worker to look at the records again.
    async fn bump(&self) -> Result<(), ZkError> {
        self.zk()
            .set_data(&self.path(&["connectors"]), b"", -1)
            .await
            .map(|_| ())
    }

    /// Take task `id` of `name` for this worker; false while another worker holds it.
    pub async fn claim(&self, name: &str, id: i32) -> Result<bool, String> {
        let zk = self.zk();
        let dir = self.path(&["owners", &node_name(name)]);
        let node = format!("{dir}/{id}");
        let mut created = Err(ZkError::Code(ErrorCode::NoNode));
        // Twice: a release elsewhere may remove the emptied parent between the two calls.
        for _ in 0..2 {
            zk.ensure_path(&dir).await.map_err(zk_err)?;
            created = zk
                .create(
                    &node,
                    self.me.as_bytes(),
                    &Acl::open_unsafe(),
                    CreateMode::Ephemeral,
                )
                .await;
            if !matches!(&created, Err(e) if is(e, ErrorCode::NoNode)) {
                break;
            }
        }
        match created {
            Ok(_) => Ok(true),
            Err(e) if is(&e, ErrorCode::NodeExists) => {
                let (owner, st) = match zk.get_data(&node).await {
                    Ok(x) => x,
                    Err(e) if is(&e, ErrorCode::NoNode) => return Ok(false),
                    Err(e) => return Err(zk_err(e)),
                };
                Ok(owner.as_ref() == self.me.as_bytes() && st.ephemeral_owner == zk.session_id())
            }
            Err(e) => Err(zk_err(e)),
        }
    }

    /// Give up task `id` of `name` (after it stopped). The last release of a connector
    /// also removes its emptied `owners/<name>`, so a deleted connector leaves nothing.
    pub async fn release(&self, name: &str, id: i32) {
        let zk = self.zk();
        let dir = self.path(&["owners", &node_name(name)]);
        let node = format!("{dir}/{id}");
        match zk.delete(&node, -1).await {
            Ok(()) => {}
            Err(e) if is(&e, ErrorCode::NoNode) => {}
            Err(e) => tracing::warn!(error = %e, node = %node, "cannot release a task"),
        }
        match zk.delete(&dir, -1).await {
            Ok(()) => {}
            Err(e) if is(&e, ErrorCode::NotEmpty) || is(&e, ErrorCode::NoNode) => {}
            Err(e) => tracing::debug!(error = %e, node = %dir, "owners node left"),
        }
    }

    pub async fn publish_status(&self, name: &str, id: i32, state: &str, trace: Option<&str>) {
        let zk = self.zk();
        let dir = self.path(&["status", &node_name(name)]);
        let node = format!("{dir}/{id}");
        let mut v = json!({"state": state, "worker_id": self.me});
        if let Some(t) = trace {
            v["trace"] = Value::String(t.to_string());
        }
        let data = v.to_string();
        let r = match zk.set_data(&node, data.as_bytes(), -1).await {
            Err(e) if is(&e, ErrorCode::NoNode) => match zk.ensure_path(&dir).await {
                Ok(()) => zk
                    .create(
                        &node,
                        data.as_bytes(),
                        &Acl::open_unsafe(),
                        CreateMode::Persistent,
                    )
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            },
            r => r.map(|_| ()),
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, connector = %name, task = id, "cannot publish a task status");
        }
    }

    /// The last status each task of `name` published, by task id.
    pub async fn statuses(&self, name: &str) -> Result<BTreeMap<i32, Value>, String> {
        let zk = self.zk();
        let dir = self.path(&["status", &node_name(name)]);
        let kids = match zk.get_children(&dir).await {
            Ok(k) => k,
            Err(e) if is(&e, ErrorCode::NoNode) => return Ok(BTreeMap::new()),
            Err(e) => return Err(zk_err(e)),
        };
        let mut out = BTreeMap::new();
        for k in kids {
            let Ok(id) = k.parse::<i32>() else { continue };
            match zk.get_data(&format!("{dir}/{k}")).await {
                Ok((d, _)) => {
                    if let Ok(v) = serde_json::from_slice::<Value>(&d) {
                        out.insert(id, v);
                    }
                }
                Err(e) if is(&e, ErrorCode::NoNode) => {}
                Err(e) => return Err(zk_err(e)),
            }
        }
        Ok(out)
    }

    pub async fn add_topic(&self, name: &str, topic: &str) -> Result<(), String> {
        let zk = self.zk();
        let dir = self.path(&["topics", &node_name(name)]);
        zk.ensure_path(&dir).await.map_err(zk_err)?;
        match zk
            .create(
                &format!("{dir}/{}", node_name(topic)),
                b"",
                &Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is(&e, ErrorCode::NodeExists) => Ok(()),
            Err(e) => Err(zk_err(e)),
        }
    }

    pub async fn topics(&self, name: &str) -> Result<Vec<String>, String> {
        let dir = self.path(&["topics", &node_name(name)]);
        match self.zk().get_children(&dir).await {
            Ok(k) => Ok(k.iter().map(|t| decode_name(t)).collect()),
            Err(e) if is(&e, ErrorCode::NoNode) => Ok(Vec::new()),
            Err(e) => Err(zk_err(e)),
        }
    }

    /// Delete `dir` and everything under it (children are one level deep here).
    async fn remove_tree(&self, dir: &str) -> Result<(), String> {
        let zk = self.zk();
        let kids = match zk.get_children(dir).await {
            Ok(k) => k,
            Err(e) if is(&e, ErrorCode::NoNode) => return Ok(()),
            Err(e) => return Err(zk_err(e)),
        };
        for k in kids {
            match zk.delete(&format!("{dir}/{k}"), -1).await {
                Ok(()) => {}
                Err(e) if is(&e, ErrorCode::NoNode) => {}
                Err(e) => return Err(zk_err(e)),
            }
        }
        match zk.delete(dir, -1).await {
            Ok(()) => Ok(()),
            // A task published again meanwhile: what is left is harmless.
            Err(e) if is(&e, ErrorCode::NoNode) || is(&e, ErrorCode::NotEmpty) => Ok(()),
            Err(e) => Err(zk_err(e)),
        }
    }

    pub async fn reset_topics(&self, name: &str) -> Result<(), String> {
        self.remove_tree(&self.path(&["topics", &node_name(name)]))
            .await
    }

    /// A deleted connector's statuses and topics (its offsets stay, as Kafka's do:
    /// a connector created again under the name resumes from them).
    pub async fn forget(&self, name: &str) -> Result<(), String> {
        self.remove_tree(&self.path(&["status", &node_name(name)]))
            .await?;
        self.reset_topics(name).await
    }

    /// Close the session: this worker's nodes go at once and the others take its
    /// tasks without waiting for the session timeout.
    pub async fn leave(&self) {
        self.zk().close().await;
    }
}

fn decode_name(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn store_err(e: ZkError) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Connector records in `connectors/<name>`.
pub struct ZkConfigs {
    pub cluster: Arc<Cluster>,
}

impl ZkConfigs {
    fn node(&self, name: &str) -> String {
        self.cluster.path(&["connectors", &node_name(name)])
    }
}

impl ConfigStore for ZkConfigs {
    fn list(&self) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        Box::pin(async move {
            let zk = self.cluster.zk();
            let mut names: Vec<String> = zk
                .get_children(&self.cluster.path(&["connectors"]))
                .await
                .map_err(store_err)?
                .iter()
                .map(|n| decode_name(n))
                .collect();
            names.sort();
            Ok(names)
        })
    }

    fn get<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, StoreResult<Option<(ConnectorRecord, i32)>>> {
        Box::pin(async move {
            match self.cluster.zk().get_data(&self.node(name)).await {
                Ok((d, st)) => serde_json::from_slice(&d)
                    .map(|r| Some((r, st.version)))
                    .map_err(|e| {
                        StoreError::Backend(format!(
                            "{} is not a connector record: {e}",
                            self.node(name)
                        ))
                    }),
                Err(e) if is(&e, ErrorCode::NoNode) => Ok(None),
                Err(e) => Err(store_err(e)),
            }
        })
    }

    fn put<'a>(
        &'a self,
        name: &'a str,
        rec: &'a ConnectorRecord,
        version: Option<i32>,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let zk = self.cluster.zk();
            let data = serde_json::to_vec(rec).map_err(|e| StoreError::Backend(e.to_string()))?;
            let r = match version {
                None => zk
                    .create(
                        &self.node(name),
                        &data,
                        &Acl::open_unsafe(),
                        CreateMode::Persistent,
                    )
                    .await
                    .map(|_| ()),
                Some(v) => zk.set_data(&self.node(name), &data, v).await.map(|_| ()),
            };
            match r {
                Ok(()) => {}
                Err(e) if is(&e, ErrorCode::NodeExists) => return Err(StoreError::Exists),
                Err(e) if is(&e, ErrorCode::BadVersion) => return Err(StoreError::Changed),
                Err(e) if is(&e, ErrorCode::NoNode) => return Err(StoreError::NotFound),
                Err(e) => return Err(store_err(e)),
            }
            self.cluster.bump().await.map_err(store_err)
        })
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            match self.cluster.zk().delete(&self.node(name), -1).await {
                Ok(()) => {}
                Err(e) if is(&e, ErrorCode::NoNode) => return Err(StoreError::NotFound),
                Err(e) => return Err(store_err(e)),
            }
            self.cluster.bump().await.map_err(store_err)
        })
    }
}

/// Source offsets in `offsets/<connector>/<partition>`: one node per source
/// partition, so tasks of one connector on different workers never overwrite each
/// other. `put` buffers; `flush` writes.
pub struct ZkOffsets {
    pub cluster: Arc<Cluster>,
    /// connector → partition JSON text → (partition, offset or removal)
    pending: Mutex<Pending>,
}

type Pending = BTreeMap<String, BTreeMap<String, (Value, Option<Value>)>>;

impl ZkOffsets {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        ZkOffsets {
            cluster,
            pending: Mutex::new(BTreeMap::new()),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dir(&self, connector: &str) -> String {
        self.cluster.path(&["offsets", &node_name(connector)])
    }

    async fn write(
        &self,
        connector: &str,
        key: &str,
        p: &Value,
        o: &Option<Value>,
    ) -> Result<(), ZkError> {
        let zk = self.cluster.zk();
        let dir = self.dir(connector);
        let node = format!("{dir}/{}", node_name(key));
        match o {
            None => match zk.delete(&node, -1).await {
                Err(e) if is(&e, ErrorCode::NoNode) => Ok(()),
                r => r,
            },
            Some(o) => {
                let data = json!({"partition": p, "offset": o}).to_string();
                match zk.set_data(&node, data.as_bytes(), -1).await {
                    Err(e) if is(&e, ErrorCode::NoNode) => {
                        zk.ensure_path(&dir).await?;
                        zk.create(
                            &node,
                            data.as_bytes(),
                            &Acl::open_unsafe(),
                            CreateMode::Persistent,
                        )
                        .await
                        .map(|_| ())
                    }
                    r => r.map(|_| ()),
                }
            }
        }
    }
}

fn coord(e: impl std::fmt::Display) -> StorageError {
    StorageError::Coordinator(e.to_string())
}

impl OffsetStore for ZkOffsets {
    fn get<'a>(
        &'a self,
        connector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(Value, Value)>, StorageError>> {
        Box::pin(async move {
            let zk = self.cluster.zk();
            let dir = self.dir(connector);
            let kids = match zk.get_children(&dir).await {
                Ok(k) => k,
                Err(e) if is(&e, ErrorCode::NoNode) => Vec::new(),
                Err(e) => return Err(coord(e)),
            };
            let mut by_key: BTreeMap<String, (Value, Value)> = BTreeMap::new();
            for k in kids {
                let d = match zk.get_data(&format!("{dir}/{k}")).await {
                    Ok((d, _)) => d,
                    Err(e) if is(&e, ErrorCode::NoNode) => continue,
                    Err(e) => return Err(coord(e)),
                };
                let v: Value =
                    serde_json::from_slice(&d).map_err(|e| coord(format!("{dir}/{k}: {e}")))?;
                if let (Some(p), Some(o)) = (v.get("partition"), v.get("offset")) {
                    by_key.insert(p.to_string(), (p.clone(), o.clone()));
                }
            }
            // What this worker put and has not flushed yet reads as written.
            if let Some(mine) = self.pending().get(connector) {
                for (k, (p, o)) in mine {
                    match o {
                        Some(o) => by_key.insert(k.clone(), (p.clone(), o.clone())),
                        None => by_key.remove(k),
                    };
                }
            }
            Ok(by_key.into_values().collect())
        })
    }

    fn put(&self, connector: &str, entries: Vec<(Value, Option<Value>)>) {
        let mut pending = self.pending();
        let m = pending.entry(connector.to_string()).or_default();
        for (p, o) in entries {
            m.insert(p.to_string(), (p, o));
        }
    }

    fn clear<'a>(&'a self, connector: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        self.pending().remove(connector);
        Box::pin(async move {
            self.cluster
                .remove_tree(&self.dir(connector))
                .await
                .map_err(coord)
        })
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), StorageError>> {
        Box::pin(async move {
            let todo = std::mem::take(&mut *self.pending());
            let mut failed: Option<ZkError> = None;
            let mut left: Pending = BTreeMap::new();
            for (c, m) in todo {
                for (k, (p, o)) in m {
                    if failed.is_none() {
                        if let Err(e) = self.write(&c, &k, &p, &o).await {
                            failed = Some(e);
                        } else {
                            continue;
                        }
                    }
                    left.entry(c.clone()).or_default().insert(k, (p, o));
                }
            }
            match failed {
                None => Ok(()),
                Some(e) => {
                    // Put back what was not written, under anything put since.
                    let mut pending = self.pending();
                    for (c, m) in left {
                        let cur = pending.entry(c).or_default();
                        for (k, v) in m {
                            cur.entry(k).or_insert(v);
                        }
                    }
                    Err(coord(e))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_round_trip_and_never_hold_a_slash() {
        for s in [r#"{"filename":"/tmp/a b%c"}"#, "plain", "..", "ünïcode/x"] {
            let n = node_name(s);
            assert!(!n.contains('/') && n != "..", "{n}");
            assert_eq!(decode_name(&n), s);
        }
    }
}
