//! Cluster state in fjord-coord, in Kafka's ZooKeeper-mode layout (docs/architecture.md,
//! znode table): registration under `/brokers/ids`, `/cluster/id`, topics under
//! `/brokers/topics`, configs under `/config/topics`, deletion requests under
//! `/admin/delete_topics`, and the controller elected through `/controller` +
//! `/controller_epoch`.
//!
//! One sync task owns the session: persistent recursive watches on `/brokers`,
//! `/config`, `/admin` and `/controller` mark what changed, the task re-reads
//! just that and swaps a new snapshot into the MetadataCache. Requests never
//! read the coordinator; admin requests write znodes and wait for the cache.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fjord_zk::client::{CreateMode, SessionState, WatchedEvent, ZkClient, ZkError, ZkOptions};
use fjord_zk::proto::{Acl, ErrorCode, MultiOp, MultiResult};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Mutex};

use super::admin::{
    new_base64_uuid, parse_base64_uuid, plan_assignment, validate_configs, AdminError, ConfigEdit,
    IsrChange, NewTopic,
};
use super::controller::{plan_partition, preferred_moves, Plan};
use super::liveness::Liveness;
use super::metadata::{
    assign_replicas, BrokerInfo, ClusterView, ListenerEndpoint, MetadataCache, PartitionMeta,
    PartitionState, TopicMeta,
};
use crate::config::BrokerConfig;
use crate::wire::clock::now_ms;

/// Why the broker could not join the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ZkStartError {
    #[error("coordinator unreachable at {0} within zookeeper.connection.timeout.ms: {1}")]
    Unreachable(String, String),
    #[error("broker.id already registered: {0} exists and belongs to a live broker")]
    DuplicateId(String),
    #[error("coordinator error: {0}")]
    Other(String),
}

fn zk_admin(e: ZkError) -> AdminError {
    AdminError::Unavailable(e.to_string())
}

fn is_code(e: &ZkError, c: ErrorCode) -> bool {
    e.code() == Some(c)
}

/// Create `path` with the open ACL every znode of the broker carries.
async fn create_open(
    zk: &ZkClient,
    path: &str,
    data: &[u8],
    mode: CreateMode,
) -> Result<String, ZkError> {
    zk.create(path, data, &Acl::open_unsafe(), mode).await
}

const PERSISTENT_PATHS: &[&str] = &[
    "/brokers",
    "/brokers/ids",
    "/brokers/topics",
    "/brokers/seqid",
    "/config",
    "/config/topics",
    "/config/changes",
    "/admin",
    "/admin/delete_topics",
    "/admin/controlled_shutdown",
    "/admin/log_dir_offline",
    "/consumers",
    "/cluster",
    "/isr_change_notification",
];

/// ZooKeeper-backed cluster state.
pub struct ZkCluster {
    /// The live session; the sync task swaps in the new one after an expiry
    /// (admin and ISR writes through a dead session would fail forever).
    /// Also handed to the offsets store (`sessions`): one session per broker.
    client: Arc<tokio::sync::watch::Sender<ZkClient>>,
    me: BrokerInfo,
    cache: Arc<MetadataCache>,
    loaded: Arc<AtomicBool>,
    /// Our controller epoch while we are controller, else -1.
    controller_epoch: Arc<AtomicI32>,
    admin_lock: Mutex<()>,
    stop: tokio::sync::watch::Sender<bool>,
    liveness: Arc<Liveness>,
}

struct Shared {
    me: BrokerInfo,
    cache: Arc<MetadataCache>,
    loaded: Arc<AtomicBool>,
    controller_epoch: Arc<AtomicI32>,
    /// Version of `/controller_epoch` when we bumped it: every state write of
    /// ours is a multi checking it, so a deposed controller cannot write.
    controller_epoch_version: AtomicI32,
    unclean: bool,
    /// auto.leader.rebalance.enable and its threshold (percent of a broker's
    /// preferred partitions led elsewhere).
    rebalance: bool,
    imbalance_pct: u32,
    /// Which brokers this one's probes find dead (broker.failure.detection.ms).
    liveness: Arc<Liveness>,
}

/// The session's options: its timeout, and Kafka's `zookeeper.ssl.*`
/// (TLS to the coordinator's secure client port, with a client certificate
/// for mutual TLS) and `zookeeper.set.acl=true` (znodes get Kafka's secure
/// default ACL: the broker's x509 identity may change them, everyone may
/// read). The x509 identity is this design's choice over a SASL login.
fn zk_options(config: &BrokerConfig) -> Result<ZkOptions, ZkStartError> {
    let props: Vec<(String, String)> = config
        .raw
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let tls = fjord_zk::tls::client_config_from(&props)
        .map_err(|e| ZkStartError::Other(format!("zookeeper.ssl.*: {e}")))?;
    let secure_acls = config
        .raw
        .get("zookeeper.set.acl")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let has_cert = config
        .raw
        .keys()
        .any(|k| k.eq_ignore_ascii_case("zookeeper.ssl.keystore.location"));
    if secure_acls && (tls.is_none() || !has_cert) {
        return Err(ZkStartError::Other(
            "zookeeper.set.acl=true needs an authenticated coordinator session: zookeeper.ssl.client.enable=true with zookeeper.ssl.keystore.location (mutual TLS: the x509 scheme)".into(),
        ));
    }
    Ok(ZkOptions {
        session_timeout: config.zookeeper_session_timeout,
        tls,
        secure_acls,
        ..ZkOptions::default()
    })
}

async fn connect(cs: &str, opts: &ZkOptions, limit: Duration) -> Result<ZkClient, ZkStartError> {
    let deadline = Instant::now() + limit;
    let mut backoff = Duration::from_millis(100);
    loop {
        match ZkClient::connect_with(cs, opts.clone()).await {
            Ok(c) => return Ok(c),
            Err(e) => {
                if Instant::now() + backoff >= deadline {
                    return Err(ZkStartError::Unreachable(cs.to_string(), e.to_string()));
                }
                tracing::warn!(connect = cs, error = %e, "coordinator not reachable yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

async fn ensure_path(zk: &ZkClient, path: &str) -> Result<(), ZkError> {
    let mut cur = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        cur.push('/');
        cur.push_str(part);
        match zk
            .create(&cur, b"", &Acl::open_unsafe(), CreateMode::Persistent)
            .await
        {
            Ok(_) => {}
            Err(e) if is_code(&e, ErrorCode::NodeExists) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn broker_json(me: &BrokerInfo) -> Vec<u8> {
    let (endpoints, map): (Vec<String>, serde_json::Map<String, Value>) = if me.endpoints.is_empty()
    {
        (
            vec![format!("PLAINTEXT://{}:{}", me.host, me.port)],
            [("PLAINTEXT".to_string(), json!("PLAINTEXT"))]
                .into_iter()
                .collect(),
        )
    } else {
        (
            me.endpoints
                .iter()
                .map(|e| format!("{}://{}:{}", e.name, e.host, e.port))
                .collect(),
            me.endpoints
                .iter()
                .map(|e| (e.name.clone(), json!(e.protocol)))
                .collect(),
        )
    };
    json!({
        "version": 5,
        "host": me.host,
        "port": me.port,
        "jmx_port": -1,
        "timestamp": now_ms().to_string(),
        "endpoints": endpoints,
        "listener_security_protocol_map": map,
        "features": {}
    })
    .to_string()
    .into_bytes()
}

fn state_json(s: &PartitionState) -> Vec<u8> {
    json!({
        "version": 1,
        "leader": s.leader,
        "leader_epoch": s.leader_epoch,
        "controller_epoch": s.controller_epoch,
        "isr": s.isr,
    })
    .to_string()
    .into_bytes()
}

/// `/brokers/topics/<t>` as Kafka 2.4+ writes it: the assignment, plus any
/// reassignment in progress (replicas being added and being removed).
#[derive(Debug, Clone, Default)]
struct TopicZnode {
    partitions: BTreeMap<i32, Vec<i32>>,
    adding: BTreeMap<i32, Vec<i32>>,
    removing: BTreeMap<i32, Vec<i32>>,
    topic_id: String,
}

fn topic_json(t: &TopicZnode) -> Vec<u8> {
    let map = |m: &BTreeMap<i32, Vec<i32>>| -> serde_json::Map<String, Value> {
        m.iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(p, r)| (p.to_string(), json!(r)))
            .collect()
    };
    json!({
        "version": 3,
        "partitions": map(&t.partitions),
        "adding_replicas": map(&t.adding),
        "removing_replicas": map(&t.removing),
        "topic_id": t.topic_id,
    })
    .to_string()
    .into_bytes()
}

fn parse_topic(data: &[u8]) -> Option<TopicZnode> {
    let v: Value = serde_json::from_slice(data).ok()?;
    fn map(v: Option<&Value>) -> Option<BTreeMap<i32, Vec<i32>>> {
        let mut out = BTreeMap::new();
        let Some(obj) = v.and_then(|v| v.as_object()) else {
            return Some(out);
        };
        for (k, r) in obj {
            let p: i32 = k.parse().ok()?;
            let reps = r
                .as_array()?
                .iter()
                .filter_map(|x| x.as_i64().map(|x| x as i32))
                .collect();
            out.insert(p, reps);
        }
        Some(out)
    }
    v.get("partitions")?.as_object()?;
    Some(TopicZnode {
        partitions: map(v.get("partitions"))?,
        adding: map(v.get("adding_replicas"))?,
        removing: map(v.get("removing_replicas"))?,
        topic_id: v
            .get("topic_id")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string(),
    })
}

fn parse_broker(id: i32, data: &[u8]) -> Option<BrokerInfo> {
    let v: Value = serde_json::from_slice(data).ok()?;
    let from_fields = v
        .get("host")
        .and_then(|h| h.as_str())
        .zip(v.get("port").and_then(|p| p.as_u64()));
    let (host, port) = match from_fields {
        Some((h, p)) if !h.is_empty() => (h.to_string(), p as u16),
        _ => {
            let ep = v.get("endpoints")?.as_array()?.first()?.as_str()?;
            let rest = ep.split_once("://")?.1;
            let (h, p) = rest.rsplit_once(':')?;
            (h.to_string(), p.parse().ok()?)
        }
    };
    let map = v
        .get("listener_security_protocol_map")
        .and_then(|m| m.as_object());
    let endpoints = v
        .get("endpoints")
        .and_then(|e| e.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let (name, rest) = e.as_str()?.split_once("://")?;
                    let (h, p) = rest.rsplit_once(':')?;
                    let protocol = map
                        .and_then(|m| m.get(name))
                        .and_then(|p| p.as_str())
                        .unwrap_or(name)
                        .to_string();
                    Some(ListenerEndpoint {
                        name: name.to_string(),
                        protocol,
                        host: h.to_string(),
                        port: p.parse().ok()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(BrokerInfo {
        id,
        host,
        port,
        rack: v.get("rack").and_then(|r| r.as_str()).map(String::from),
        endpoints,
    })
}

fn parse_configs(data: &[u8]) -> BTreeMap<String, String> {
    let v: Value = serde_json::from_slice(data).unwrap_or(Value::Null);
    v.get("config")
        .and_then(|c| c.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Delete `path` if it is an ephemeral of another session (a dead
/// predecessor of this broker), best effort.
async fn delete_stale(zk: &ZkClient, path: &str) {
    if let Ok(Some(st)) = zk.exists(path).await {
        if st.ephemeral_owner != zk.session_id() {
            let _ = zk.delete(path, st.version).await;
        }
    }
}

/// Register, then set watches; returns the session and a merged event stream.
async fn establish(
    config: &BrokerConfig,
    me: &BrokerInfo,
) -> Result<(ZkClient, mpsc::UnboundedReceiver<WatchedEvent>), ZkStartError> {
    let cs = config.zookeeper_connect.trim().to_string();
    let opts = zk_options(config)?;
    let limit = config.zookeeper_connection_timeout;
    let other = |e: ZkError| ZkStartError::Other(e.to_string());
    // Kafka creates the chroot if missing.
    if let Some(i) = cs.find('/') {
        let (hosts, chroot) = cs.split_at(i);
        if chroot.len() > 1 {
            let z = connect(hosts, &opts, limit).await?;
            ensure_path(&z, chroot).await.map_err(other)?;
            z.close().await;
        }
    }
    let zk = connect(&cs, &opts, limit).await?;
    for p in PERSISTENT_PATHS {
        ensure_path(&zk, p).await.map_err(other)?;
    }
    // /cluster/id
    let (_, cid) = new_base64_uuid();
    let cid_json = json!({"version": "1", "id": cid}).to_string();
    match create_open(
        &zk,
        "/cluster/id",
        cid_json.as_bytes(),
        CreateMode::Persistent,
    )
    .await
    {
        Ok(_) => tracing::info!(cluster_id = %cid, "created /cluster/id"),
        Err(e) if is_code(&e, ErrorCode::NodeExists) => {}
        Err(e) => return Err(other(e)),
    }
    // Registration: a stale ephemeral of our own previous (killed) process may
    // linger until its session expires; a live broker elsewhere is a duplicate.
    let path = format!("/brokers/ids/{}", me.id);
    let data = broker_json(me);
    let deadline = Instant::now() + config.zookeeper_session_timeout + Duration::from_secs(2);
    loop {
        match zk
            .create(&path, &data, &Acl::open_unsafe(), CreateMode::Ephemeral)
            .await
        {
            Ok(_) => break,
            Err(e) if is_code(&e, ErrorCode::NodeExists) => {
                let existing = zk.get_data(&path).await.ok();
                let same_endpoint = existing
                    .as_ref()
                    .and_then(|(d, _)| parse_broker(me.id, d))
                    .is_some_and(|b| b.host == me.host && b.port == me.port);
                if !same_endpoint || Instant::now() >= deadline {
                    return Err(ZkStartError::DuplicateId(path));
                }
                // Our listener is bound, so the holder of our endpoint is a
                // dead predecessor: remove its registration now rather than
                // wait for its session to expire (the controller's probes
                // already took it out of every ISR it could not serve).
                tracing::warn!(path, "stale registration from a previous run; replacing it");
                match zk.delete(&path, -1).await {
                    Ok(()) | Err(ZkError::Code(ErrorCode::NoNode)) => {}
                    Err(e) => return Err(other(e)),
                }
                delete_stale(&zk, &format!("/admin/controlled_shutdown/{}", me.id)).await;
                delete_stale(&zk, &format!("/admin/log_dir_offline/{}", me.id)).await;
            }
            Err(e) => return Err(other(e)),
        }
    }
    tracing::info!(
        path,
        session = format!("0x{:x}", zk.session_id()),
        "registered broker"
    );
    let (tx, rx) = mpsc::unbounded_channel();
    for (p, rec) in [
        ("/brokers", true),
        ("/config", true),
        ("/admin", true),
        ("/controller", false),
    ] {
        let mut w = zk.add_watch(p, rec).await.map_err(other)?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = w.recv().await {
                if tx.send(ev).is_err() {
                    return;
                }
            }
        });
    }
    Ok((zk, rx))
}

impl ZkCluster {
    /// Connect (retrying until zookeeper.connection.timeout.ms), register, load
    /// state into the cache, start the sync task and the controller candidate.
    pub async fn start(
        config: &BrokerConfig,
        me: BrokerInfo,
        cache: Arc<MetadataCache>,
    ) -> Result<ZkCluster, ZkStartError> {
        let (zk, events) = establish(config, &me).await?;
        let shared = Arc::new(Shared {
            me: me.clone(),
            cache: cache.clone(),
            loaded: Arc::new(AtomicBool::new(false)),
            controller_epoch: Arc::new(AtomicI32::new(-1)),
            controller_epoch_version: AtomicI32::new(-1),
            unclean: config.unclean_leader_election,
            rebalance: config.auto_leader_rebalance,
            imbalance_pct: config.leader_imbalance_per_broker_percentage,
            liveness: Arc::new(Liveness::new(me.id, config.broker_failure_detection)),
        });
        full_load(&zk, &shared)
            .await
            .map_err(|e| ZkStartError::Other(e.to_string()))?;
        shared.loaded.store(true, Ordering::SeqCst);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let cluster = ZkCluster {
            client: Arc::new(tokio::sync::watch::Sender::new(zk.clone())),
            me,
            cache,
            loaded: shared.loaded.clone(),
            controller_epoch: shared.controller_epoch.clone(),
            admin_lock: Mutex::new(()),
            stop,
            liveness: shared.liveness.clone(),
        };
        tokio::spawn(sync_task(
            zk,
            cluster.client.clone(),
            events,
            shared,
            config.clone(),
            stop_rx,
        ));
        Ok(cluster)
    }

    fn zk(&self) -> ZkClient {
        self.client.borrow().clone()
    }

    /// The broker's coordinator session, and each new one after an expiry
    /// (the group offsets store watches `/consumers` through it).
    pub fn sessions(&self) -> tokio::sync::watch::Receiver<ZkClient> {
        self.client.subscribe()
    }

    /// True once the first full load of cluster state reached the cache.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
    }

    /// Whether this broker is the controller right now.
    pub fn is_controller(&self) -> bool {
        self.controller_epoch.load(Ordering::SeqCst) >= 0
    }

    pub(crate) async fn create_topic(
        &self,
        t: NewTopic,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let _g = self.admin_lock.lock().await;
        let view = self.cache.view();
        if view.topics.contains_key(&t.name) {
            return Err(AdminError::TopicExists);
        }
        let live: Vec<i32> = view.brokers.keys().copied().collect();
        let start = rand::random::<u32>() as usize % live.len().max(1);
        let a = plan_assignment(&t, &live, start)?;
        if validate_only {
            return Ok(());
        }
        let zk = self.zk();
        let (_, tid) = new_base64_uuid();
        let cfg = json!({"version": 1, "config": t.configs}).to_string();
        let cfg_path = format!("/config/topics/{}", t.name);
        let ops = vec![MultiOp::create(
            &format!("/brokers/topics/{}", t.name),
            &topic_json(&TopicZnode {
                partitions: a.clone(),
                topic_id: tid,
                ..Default::default()
            }),
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )];
        // Config first (so the topic is born with it), tolerating a leftover.
        match create_open(&zk, &cfg_path, cfg.as_bytes(), CreateMode::Persistent).await {
            Ok(_) => {}
            Err(e) if is_code(&e, ErrorCode::NodeExists) => {
                zk.set_data(&cfg_path, cfg.as_bytes(), -1)
                    .await
                    .map_err(zk_admin)?;
            }
            Err(e) => return Err(zk_admin(e)),
        }
        match zk.multi(ops).await {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, ErrorCode::NodeExists) => Err(AdminError::TopicExists),
            Err(e) => Err(zk_admin(e)),
        }
        .map(|_| tracing::info!(topic = %t.name, partitions = a.len(), "created topic znode"))
    }

    pub(crate) async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        let zk = self.zk();
        if zk
            .exists(&format!("/brokers/topics/{name}"))
            .await
            .map_err(zk_admin)?
            .is_none()
        {
            return Err(AdminError::UnknownTopic);
        }
        match create_open(
            &zk,
            &format!("/admin/delete_topics/{name}"),
            b"",
            CreateMode::Persistent,
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, ErrorCode::NodeExists) => Ok(()),
            Err(e) => Err(zk_admin(e)),
        }
    }

    pub(crate) async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let _g = self.admin_lock.lock().await;
        let zk = self.zk();
        let path = format!("/brokers/topics/{name}");
        let (data, stat) = match zk.get_data(&path).await {
            Ok(x) => x,
            Err(e) if is_code(&e, ErrorCode::NoNode) => return Err(AdminError::UnknownTopic),
            Err(e) => return Err(zk_admin(e)),
        };
        let mut tz =
            parse_topic(&data).ok_or_else(|| AdminError::Unavailable("bad topic znode".into()))?;
        let have = tz.partitions.len() as i32;
        if count <= have {
            return Err(AdminError::InvalidPartitions(format!(
                "Topic currently has {have} partitions, {count} would not be an increase."
            )));
        }
        let rf = tz.partitions.values().next().map(|r| r.len()).unwrap_or(1) as i16;
        let live: Vec<i32> = self.cache.view().brokers.keys().copied().collect();
        let extra =
            assign_replicas(&live, count - have, rf, have as usize, have).ok_or_else(|| {
                AdminError::InvalidReplicationFactor(format!(
                    "Replication factor: {rf} larger than available brokers: {}.",
                    live.len()
                ))
            })?;
        if validate_only {
            return Ok(());
        }
        tz.partitions.extend(extra);
        match zk.set_data(&path, &topic_json(&tz), stat.version).await {
            Ok(_) => Ok(()),
            Err(e) => Err(zk_admin(e)),
        }
    }

    /// Applies `edit` to the topic's configs as stored in
    /// `/config/topics/<name>` (not as cached): a conditional setData at the
    /// version read, re-read on BadVersion, so two alters racing each other
    /// both land (the cache may not show the first yet).
    pub(crate) async fn update_topic_configs(
        &self,
        name: &str,
        edit: &ConfigEdit<'_>,
    ) -> Result<(), AdminError> {
        let zk = self.zk();
        if !self.cache.view().topics.contains_key(name) {
            return Err(AdminError::UnknownTopic);
        }
        let path = format!("/config/topics/{name}");
        loop {
            let (mut configs, version) = match zk.get_data(&path).await {
                Ok((data, stat)) => (parse_configs(&data), Some(stat.version)),
                Err(e) if is_code(&e, ErrorCode::NoNode) => (BTreeMap::new(), None),
                Err(e) => return Err(zk_admin(e)),
            };
            edit(&mut configs)?;
            validate_configs(&configs)?;
            let data = json!({"version": 1, "config": configs}).to_string();
            let written = match version {
                Some(v) => zk.set_data(&path, data.as_bytes(), v).await.map(|_| ()),
                None => create_open(&zk, &path, data.as_bytes(), CreateMode::Persistent)
                    .await
                    .map(|_| ()),
            };
            match written {
                Ok(()) => return Ok(()),
                Err(e)
                    if is_code(&e, ErrorCode::BadVersion) || is_code(&e, ErrorCode::NodeExists) => {
                }
                Err(e) => return Err(zk_admin(e)),
            }
        }
    }

    /// Leader's ISR change (docs/architecture.md → Replication): a conditional setData of
    /// the state znode, first at the version from our cache, re-reading on
    /// BadVersion (the controller may have written meanwhile). Returns the
    /// committed ISR and the new version, or None if the znode no longer names
    /// us leader at `epoch` (we were replaced: nothing to write). Each change
    /// also leaves an `/isr_change_notification/isr_change_` node, as Kafka does.
    pub async fn write_isr(
        &self,
        change: &IsrChange<'_>,
    ) -> Result<Option<(Vec<i32>, i32)>, ZkError> {
        let IsrChange {
            topic,
            partition,
            me,
            epoch,
            cached_isr,
            cached_version,
            add,
            remove,
        } = *change;
        let zk = self.zk();
        let path = format!("/brokers/topics/{topic}/partitions/{partition}/state");
        let cached_cepoch = self
            .cache
            .view()
            .topics
            .get(topic)
            .and_then(|t| t.partitions.iter().find(|p| p.index == partition))
            .and_then(|p| p.state.as_ref().map(|s| s.controller_epoch))
            .unwrap_or(0);
        let mut cur = (cached_version >= 0).then(|| {
            (
                PartitionState {
                    leader: me,
                    leader_epoch: epoch,
                    controller_epoch: cached_cepoch,
                    isr: cached_isr.to_vec(),
                },
                cached_version,
            )
        });
        for _ in 0..20 {
            let (st, ver) = match cur.take() {
                Some(x) => x,
                None => {
                    let Some((d, v)) = read_opt(&zk, &path).await? else {
                        return Ok(None);
                    };
                    let Ok(st) = serde_json::from_slice::<PartitionState>(&d) else {
                        return Ok(None);
                    };
                    (st, v)
                }
            };
            if st.leader != me || st.leader_epoch != epoch {
                return Ok(None);
            }
            let mut isr: Vec<i32> = st
                .isr
                .iter()
                .copied()
                .filter(|r| !remove.contains(r))
                .collect();
            for r in add {
                if !isr.contains(r) {
                    isr.push(*r);
                }
            }
            if !isr.contains(&me) {
                isr.insert(0, me);
            }
            if isr == st.isr {
                return Ok(Some((isr, ver)));
            }
            let new = PartitionState {
                isr: isr.clone(),
                ..st
            };
            match zk.set_data(&path, &state_json(&new), ver).await {
                Ok(stat) => {
                    let note = json!({"version": 1, "partitions": [{"topic": topic, "partition": partition}]})
                        .to_string();
                    if let Err(e) = create_open(
                        &zk,
                        "/isr_change_notification/isr_change_",
                        note.as_bytes(),
                        CreateMode::PersistentSequential,
                    )
                    .await
                    {
                        tracing::warn!(error = %e, "cannot write isr_change_notification");
                    }
                    return Ok(Some((isr, stat.version)));
                }
                Err(e) if is_code(&e, ErrorCode::BadVersion) => continue,
                Err(e) if is_code(&e, ErrorCode::NoNode) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Err(ZkError::Code(ErrorCode::BadVersion))
    }

    /// Controlled shutdown, step one: announce it with an ephemeral
    /// `/admin/controlled_shutdown/<id>`. The controller then moves our
    /// leaderships and takes us out of every ISR (level-triggered, so a
    /// controller that changes meanwhile picks it up too).
    pub async fn announce_shutdown(&self) -> Result<(), ZkError> {
        let path = format!("/admin/controlled_shutdown/{}", self.me.id);
        match self
            .zk()
            .create(&path, b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
            .await
        {
            Ok(_) | Err(ZkError::Code(ErrorCode::NodeExists)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Say whether our log dir refuses writes (issue 19; Kafka's brokers
    /// post `/log_dir_event_notification` for the same reason): the
    /// ephemeral `/admin/log_dir_offline/<id>` withdraws us like a
    /// controlled shutdown, so the controller moves our leaderships to
    /// in-sync replicas on healthy brokers; deleting it when the store
    /// resumes lets us catch up, rejoin the ISRs and, through the
    /// preferred-leader rebalance, lead again.
    pub async fn announce_log_dir_offline(&self, offline: bool) -> Result<(), ZkError> {
        let path = format!("/admin/log_dir_offline/{}", self.me.id);
        let zk = self.zk();
        let r = if offline {
            zk.create(&path, b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
                .await
                .map(|_| ())
        } else {
            zk.delete(&path, -1).await
        };
        match r {
            Ok(()) | Err(ZkError::Code(ErrorCode::NodeExists | ErrorCode::NoNode)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// AlterPartitionReassignments, on the controller: record each target
    /// replica list in the topic znode as Kafka 2.4+ does (replicas = target
    /// then the originals, plus adding/removing); `None` cancels. The
    /// controller's duties then carry it out. Per-partition error codes.
    pub async fn reassign(
        &self,
        topic: &str,
        changes: &[(i32, Option<Vec<i32>>)],
    ) -> Result<Vec<(i32, i16, Option<String>)>, AdminError> {
        if !self.is_controller() {
            return Err(AdminError::NotController);
        }
        let _g = self.admin_lock.lock().await;
        let zk = self.zk();
        let path = format!("/brokers/topics/{topic}");
        let live = self.cache.view().brokers.clone();
        for _ in 0..10 {
            let Some((d, ver)) = read_opt(&zk, &path).await.map_err(zk_admin)? else {
                return Err(AdminError::UnknownTopic);
            };
            let mut tz =
                parse_topic(&d).ok_or_else(|| AdminError::Unavailable("bad topic znode".into()))?;
            let mut out = Vec::new();
            for (p, target) in changes {
                let Some(current) = tz.partitions.get(p).cloned() else {
                    out.push((*p, 3, Some("unknown partition".to_string())));
                    continue;
                };
                let adding = tz.adding.get(p).cloned().unwrap_or_default();
                let original: Vec<i32> = current
                    .iter()
                    .copied()
                    .filter(|r| !adding.contains(r))
                    .collect();
                let in_progress = !adding.is_empty() || tz.removing.contains_key(p);
                let Some(target) = target else {
                    if !in_progress {
                        out.push((*p, 85, Some("no reassignment in progress".into())));
                        continue;
                    }
                    tz.partitions.insert(*p, original);
                    tz.adding.remove(p);
                    tz.removing.remove(p);
                    out.push((*p, 0, None));
                    continue;
                };
                let mut dedup = target.clone();
                dedup.sort_unstable();
                dedup.dedup();
                if target.is_empty() || dedup.len() != target.len() {
                    out.push((*p, 39, Some("empty or duplicate replicas".into())));
                    continue;
                }
                if let Some(b) = target.iter().find(|b| !live.contains_key(b)) {
                    out.push((*p, 39, Some(format!("unknown broker {b}"))));
                    continue;
                }
                let add: Vec<i32> = target
                    .iter()
                    .copied()
                    .filter(|r| !original.contains(r))
                    .collect();
                let remove: Vec<i32> = original
                    .iter()
                    .copied()
                    .filter(|r| !target.contains(r))
                    .collect();
                let mut full = target.clone();
                full.extend(remove.iter().copied());
                tz.partitions.insert(*p, full);
                if add.is_empty() && remove.is_empty() {
                    // Same set, new order: only the preferred leader changes.
                    tz.adding.remove(p);
                    tz.removing.remove(p);
                } else {
                    tz.adding.insert(*p, add);
                    tz.removing.insert(*p, remove);
                }
                out.push((*p, 0, None));
            }
            match zk.set_data(&path, &topic_json(&tz), ver).await {
                Ok(_) => {
                    tracing::info!(topic, changes = ?changes, "reassignment recorded");
                    return Ok(out);
                }
                Err(e) if is_code(&e, ErrorCode::BadVersion) => continue,
                Err(e) => return Err(zk_admin(e)),
            }
        }
        Err(AdminError::Timeout)
    }

    /// Deregister: closing the session removes `/brokers/ids/<id>` (and
    /// `/controller` if held) at once.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.liveness.stop();
        self.zk().close().await;
        tracing::info!(id = self.me.id, "deregistered from coordinator");
    }
}

async fn read_opt(zk: &ZkClient, path: &str) -> Result<Option<(bytes::Bytes, i32)>, ZkError> {
    match zk.get_data(path).await {
        Ok((d, st)) => Ok(Some((d, st.version))),
        Err(e) if is_code(&e, ErrorCode::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn children_opt(zk: &ZkClient, path: &str) -> Result<Vec<String>, ZkError> {
    match zk.get_children(path).await {
        Ok(c) => Ok(c),
        Err(e) if is_code(&e, ErrorCode::NoNode) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Registered brokers, and the session holding each registration (a new one
/// means a new incarnation of that broker).
async fn load_brokers(
    zk: &ZkClient,
) -> Result<(BTreeMap<i32, BrokerInfo>, BTreeMap<i32, i64>), ZkError> {
    let mut out = BTreeMap::new();
    let mut sessions = BTreeMap::new();
    for c in children_opt(zk, "/brokers/ids").await? {
        let Ok(id) = c.parse::<i32>() else { continue };
        let (d, st) = match zk.get_data(&format!("/brokers/ids/{c}")).await {
            Ok(x) => x,
            Err(e) if is_code(&e, ErrorCode::NoNode) => continue,
            Err(e) => return Err(e),
        };
        if let Some(b) = parse_broker(id, &d) {
            out.insert(id, b);
            sessions.insert(id, st.ephemeral_owner);
        }
    }
    Ok((out, sessions))
}

async fn load_controller(zk: &ZkClient) -> Result<i32, ZkError> {
    Ok(read_opt(zk, "/controller")
        .await?
        .and_then(|(d, _)| serde_json::from_slice::<Value>(&d).ok())
        .and_then(|v| v.get("brokerid").and_then(|b| b.as_i64()))
        .map(|b| b as i32)
        .unwrap_or(-1))
}

async fn load_topic(zk: &ZkClient, name: &str) -> Result<Option<TopicMeta>, ZkError> {
    let Some((data, _)) = read_opt(zk, &format!("/brokers/topics/{name}")).await? else {
        return Ok(None);
    };
    let Some(tz) = parse_topic(&data) else {
        tracing::warn!(topic = name, "unparseable topic znode ignored");
        return Ok(None);
    };
    let mut partitions = Vec::with_capacity(tz.partitions.len());
    for (p, replicas) in tz.partitions {
        let raw = read_opt(zk, &format!("/brokers/topics/{name}/partitions/{p}/state")).await?;
        let state_version = raw.as_ref().map(|(_, v)| *v).unwrap_or(-1);
        let state = raw.and_then(|(d, _)| serde_json::from_slice::<PartitionState>(&d).ok());
        partitions.push(PartitionMeta {
            index: p,
            replicas,
            state,
            state_version,
            adding: tz.adding.get(&p).cloned().unwrap_or_default(),
            removing: tz.removing.get(&p).cloned().unwrap_or_default(),
        });
    }
    let configs = read_opt(zk, &format!("/config/topics/{name}"))
        .await?
        .map(|(d, _)| parse_configs(&d))
        .unwrap_or_default();
    let deleting = zk
        .exists(&format!("/admin/delete_topics/{name}"))
        .await?
        .is_some();
    Ok(Some(TopicMeta {
        name: name.to_string(),
        topic_id: parse_base64_uuid(&tz.topic_id).unwrap_or_default(),
        partitions,
        configs,
        deleting,
    }))
}

async fn full_load(zk: &ZkClient, sh: &Shared) -> Result<(), ZkError> {
    let cluster_id = read_opt(zk, "/cluster/id")
        .await?
        .and_then(|(d, _)| serde_json::from_slice::<Value>(&d).ok())
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(String::from))
        .unwrap_or_default();
    let (brokers, sessions) = load_brokers(zk).await?;
    sh.liveness.track(&brokers, &sessions);
    let controller = load_controller(zk).await?;
    let withdrawn = load_withdrawn(zk).await?;
    let mut topics = HashMap::new();
    for t in children_opt(zk, "/brokers/topics").await? {
        if let Some(m) = load_topic(zk, &t).await? {
            topics.insert(t, Arc::new(m));
        }
    }
    sh.cache.update(|v| {
        v.cluster_id = cluster_id;
        v.brokers = brokers;
        v.controller_id = controller;
        v.topics = topics;
        v.withdrawn = withdrawn;
    });
    Ok(())
}

/// Brokers withdrawn from leadership: those that announced a controlled
/// shutdown or an offline log dir (ephemeral children of
/// `/admin/controlled_shutdown` and `/admin/log_dir_offline`, gone with the
/// broker's session).
async fn load_withdrawn(zk: &ZkClient) -> Result<BTreeSet<i32>, ZkError> {
    let mut ids = BTreeSet::new();
    for dir in ["/admin/controlled_shutdown", "/admin/log_dir_offline"] {
        ids.extend(
            children_opt(zk, dir)
                .await?
                .iter()
                .filter_map(|c| c.parse::<i32>().ok()),
        );
    }
    Ok(ids)
}

#[derive(Default)]
struct Dirty {
    brokers: bool,
    controller: bool,
    topics: BTreeSet<String>,
    deletes: bool,
    withdrawals: bool,
    rebalance: bool,
    /// This broker's probes changed their verdict on some broker.
    liveness: bool,
}

impl Dirty {
    fn mark(&mut self, ev: &WatchedEvent) {
        let p = ev.path.as_str();
        let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
        match parts.as_slice() {
            ["controller", ..] => self.controller = true,
            ["brokers", "ids", ..] => self.brokers = true,
            ["brokers", "topics", t, ..] | ["config", "topics", t] => {
                self.topics.insert(t.to_string());
            }
            ["admin", "controlled_shutdown" | "log_dir_offline", ..] => self.withdrawals = true,
            ["admin", "delete_topics", t] => {
                self.topics.insert(t.to_string());
                self.deletes = true;
            }
            _ => {}
        }
    }
}

async fn sync_task(
    mut zk: ZkClient,
    shared_client: Arc<tokio::sync::watch::Sender<ZkClient>>,
    mut events: mpsc::UnboundedReceiver<WatchedEvent>,
    sh: Arc<Shared>,
    config: BrokerConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut state = zk.state();
    let mut dead = sh.liveness.subscribe();
    let mut rebalance = tokio::time::interval(config.leader_imbalance_check_interval);
    rebalance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Try to become controller at start, and whenever /controller changes.
    let mut dirty = Dirty {
        controller: true,
        deletes: true,
        ..Default::default()
    };
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(e) = apply(&zk, &sh, std::mem::take(&mut dirty)).await {
            tracing::warn!(error = %e, "metadata refresh failed; retrying");
            dirty.brokers = true;
            dirty.controller = true;
            dirty.deletes = true;
            tokio::time::sleep(Duration::from_millis(200)).await;
            if matches!(e, ZkError::SessionExpired | ZkError::Closed) {
                // fall through to the state check below
            } else {
                continue;
            }
        }
        tokio::select! {
            ev = events.recv() => if let Some(ev) = ev {
                dirty.mark(&ev);
                while let Ok(ev) = events.try_recv() {
                    dirty.mark(&ev);
                }
            },
            r = state.changed() => {
                if r.is_err() { return; }
                let s = *state.borrow();
                if s == SessionState::Expired {
                    tracing::error!("coordinator session expired; re-registering");
                    sh.controller_epoch.store(-1, Ordering::SeqCst);
                    loop {
                        if *stop.borrow() { return; }
                        match establish(&config, &sh.me).await {
                            Ok((z, ev)) => {
                                zk = z;
                                shared_client.send_replace(zk.clone());
                                events = ev;
                                state = zk.state();
                                break;
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "re-registration failed; retrying");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    }
                    if let Err(e) = full_load(&zk, &sh).await {
                        tracing::warn!(error = %e, "reload after expiry failed");
                    }
                    dirty.controller = true;
                    dirty.deletes = true;
                } else if s == SessionState::Connected {
                    // Events may have been missed while disconnected: re-read everything.
                    if let Err(e) = full_load(&zk, &sh).await {
                        tracing::warn!(error = %e, "reload after reconnect failed");
                    }
                    dirty.controller = true;
                    dirty.deletes = true;
                }
            }
            _ = stop.changed() => return,
            _ = dead.changed() => dirty.liveness = true,
            _ = rebalance.tick() => dirty.rebalance = true,
            _ = tokio::time::sleep(Duration::from_secs(30)) => {
                // Periodic safety net for the controller's duties.
                dirty.deletes = true;
            }
        }
    }
}

async fn apply(zk: &ZkClient, sh: &Shared, d: Dirty) -> Result<(), ZkError> {
    if d.brokers {
        let (b, sessions) = load_brokers(zk).await?;
        sh.liveness.track(&b, &sessions);
        sh.cache.update(|v| v.brokers = b);
    }
    if d.withdrawals || d.brokers {
        let s = load_withdrawn(zk).await?;
        sh.cache.update(|v| v.withdrawn = s);
    }
    if d.controller {
        let mut c = load_controller(zk).await?;
        if c < 0 {
            c = try_become_controller(zk, sh).await?;
        } else if c == sh.me.id
            && sh.controller_epoch.load(Ordering::SeqCst) < 0
            && owns_controller_node(zk).await?
        {
            // Our create of /controller went through but its reply was lost
            // (connection loss): the node is ours, so finish the takeover.
            c = take_over_controller(zk, sh).await?;
        } else if c == sh.me.id && sh.controller_epoch.load(Ordering::SeqCst) < 0 {
            // Our dead predecessor's node (killed, session not expired yet).
            delete_stale(zk, "/controller").await;
            c = try_become_controller(zk, sh).await?;
        } else if c != sh.me.id && sh.controller_epoch.load(Ordering::SeqCst) >= 0 {
            tracing::warn!(new_controller = c, "lost controllership");
            sh.controller_epoch.store(-1, Ordering::SeqCst);
        }
        sh.cache.update(|v| v.controller_id = c);
    }
    if (d.liveness || d.controller) && sh.controller_epoch.load(Ordering::SeqCst) < 0 {
        depose_dead_controller(zk, sh).await?;
    }
    for t in &d.topics {
        let m = load_topic(zk, t).await?;
        sh.cache.update(|v| match m {
            Some(m) => {
                v.topics.insert(t.clone(), Arc::new(m));
            }
            None => {
                v.topics.remove(t);
            }
        });
    }
    if sh.controller_epoch.load(Ordering::SeqCst) >= 0 {
        controller_duties(
            zk,
            sh,
            d.deletes || d.brokers || d.withdrawals || !d.topics.is_empty(),
        )
        .await?;
        if d.rebalance && sh.rebalance {
            rebalance_leaders(zk, sh).await?;
        }
    }
    Ok(())
}

/// The controller our probes find dead (process gone, or silent for
/// broker.failure.detection.ms) is deposed by deleting its `/controller`
/// node, without waiting for its session to expire; the brokers then race to
/// take over and the winner's `/controller_epoch` bump fences the old one's
/// writes should it still be alive.
async fn depose_dead_controller(zk: &ZkClient, sh: &Shared) -> Result<(), ZkError> {
    let c = sh.cache.view().controller_id;
    if c < 0 || c == sh.me.id || !sh.liveness.dead().contains(&c) {
        return Ok(());
    }
    let Some(st) = zk.exists("/controller").await? else {
        return Ok(());
    };
    if load_controller(zk).await? != c {
        return Ok(());
    }
    match zk.delete("/controller", st.version).await {
        Ok(()) => {
            tracing::warn!(controller = c, "controller failure detected; deposed it");
            Ok(())
        }
        Err(ZkError::Code(ErrorCode::NoNode)) | Err(ZkError::Code(ErrorCode::BadVersion)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The cluster as the controller plans with it: brokers its probes find
/// dead are left out, as if their sessions had expired.
fn planning_view(sh: &Shared) -> ClusterView {
    let mut view = (*sh.cache.view()).clone();
    for id in sh.liveness.dead() {
        view.brokers.remove(&id);
    }
    view
}

async fn try_become_controller(zk: &ZkClient, sh: &Shared) -> Result<i32, ZkError> {
    let data = json!({
        "version": 2,
        "brokerid": sh.me.id,
        "timestamp": now_ms().to_string(),
        "kraftControllerEpoch": -1
    })
    .to_string();
    match create_open(zk, "/controller", data.as_bytes(), CreateMode::Ephemeral).await {
        Ok(_) => {}
        Err(e) if is_code(&e, ErrorCode::NodeExists) => return load_controller(zk).await,
        Err(e) => return Err(e),
    }
    take_over_controller(zk, sh).await
}

/// Whether `/controller` is this session's ephemeral (not a previous
/// incarnation's, still waiting for its session to expire).
async fn owns_controller_node(zk: &ZkClient) -> Result<bool, ZkError> {
    match zk.exists("/controller").await? {
        Some(st) => Ok(st.ephemeral_owner == zk.session_id()),
        None => Ok(false),
    }
}

/// Having created `/controller`: bump `/controller_epoch`, whose version
/// fences stale controllers, and start acting as the controller.
async fn take_over_controller(zk: &ZkClient, sh: &Shared) -> Result<i32, ZkError> {
    let (epoch, zkv) = loop {
        match read_opt(zk, "/controller_epoch").await? {
            None => {
                match create_open(zk, "/controller_epoch", b"1", CreateMode::Persistent).await {
                    Ok(_) => break (1, 0),
                    Err(e) if is_code(&e, ErrorCode::NodeExists) => continue,
                    Err(e) => return Err(e),
                }
            }
            Some((d, ver)) => {
                let cur: i32 = std::str::from_utf8(&d)
                    .ok()
                    .and_then(|s| s.trim().trim_matches('"').parse().ok())
                    .unwrap_or(0);
                let next = cur + 1;
                match zk
                    .set_data("/controller_epoch", next.to_string().as_bytes(), ver)
                    .await
                {
                    Ok(stat) => break (next, stat.version),
                    Err(e) if is_code(&e, ErrorCode::BadVersion) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    };
    sh.controller_epoch_version.store(zkv, Ordering::SeqCst);
    sh.controller_epoch.store(epoch, Ordering::SeqCst);
    tracing::info!(id = sh.me.id, epoch, "became controller");
    Ok(sh.me.id)
}

/// The controller's reconciliation: elect leaders for partitions without a
/// state znode or whose leader is gone, and carry out topic deletions.
async fn controller_duties(zk: &ZkClient, sh: &Shared, deletes: bool) -> Result<(), ZkError> {
    let cepoch = sh.controller_epoch.load(Ordering::SeqCst);
    if deletes {
        for t in children_opt(zk, "/admin/delete_topics").await? {
            delete_topic_znodes(zk, &t).await?;
            tracing::info!(topic = %t, "controller deleted topic");
            sh.cache.update(|v| {
                v.topics.remove(&t);
            });
        }
    }
    // ISR change notifications are for the controller; our brokers watch the
    // state znodes themselves, so consuming them is just deleting them.
    for n in children_opt(zk, "/isr_change_notification").await? {
        match zk
            .delete(&format!("/isr_change_notification/{n}"), -1)
            .await
        {
            Ok(()) | Err(ZkError::Code(ErrorCode::NoNode)) => {}
            Err(e) => return Err(e),
        }
    }
    let view = planning_view(sh);
    for t in view.topics.values() {
        if t.deleting {
            continue;
        }
        let unclean = t
            .configs
            .get("unclean.leader.election.enable")
            .map(|v| v == "true")
            .unwrap_or(sh.unclean);
        let mut created_parent = false;
        for p in &t.partitions {
            let Some(plan) = plan_partition(p, &view, unclean, cepoch) else {
                continue;
            };
            let base = format!("/brokers/topics/{}/partitions/{}", t.name, p.index);
            match plan {
                Plan::Create(st) => {
                    if !created_parent {
                        ensure_path(zk, &format!("/brokers/topics/{}/partitions", t.name)).await?;
                        created_parent = true;
                    }
                    ensure_path(zk, &base).await?;
                    match create_open(
                        zk,
                        &format!("{base}/state"),
                        &state_json(&st),
                        CreateMode::Persistent,
                    )
                    .await
                    {
                        Ok(_) | Err(ZkError::Code(ErrorCode::NodeExists)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Plan::Set(new, why) => {
                    let path = format!("{base}/state");
                    let Some((d, ver)) = read_opt(zk, &path).await? else {
                        continue;
                    };
                    // Only over what the decision was based on.
                    let current = serde_json::from_slice::<PartitionState>(&d).ok();
                    if current.as_ref() == p.state.as_ref()
                        && fenced_set(zk, sh, &path, &state_json(&new), ver).await?
                    {
                        tracing::info!(topic = %t.name, partition = p.index, leader = new.leader, epoch = new.leader_epoch, isr = ?new.isr, why, "controller changed partition state");
                    }
                }
                Plan::FinishReassignment(target) => {
                    let path = format!("/brokers/topics/{}", t.name);
                    let Some((d, ver)) = read_opt(zk, &path).await? else {
                        continue;
                    };
                    let Some(mut tz) = parse_topic(&d) else {
                        continue;
                    };
                    tz.partitions.insert(p.index, target.clone());
                    tz.adding.remove(&p.index);
                    tz.removing.remove(&p.index);
                    if fenced_set(zk, sh, &path, &topic_json(&tz), ver).await? {
                        tracing::info!(topic = %t.name, partition = p.index, replicas = ?target, "reassignment complete");
                    }
                }
            }
        }
    }
    Ok(())
}

/// auto.leader.rebalance.enable: for each broker whose preferred partitions
/// (it is first in the assignment) are led elsewhere more than
/// leader.imbalance.per.broker.percentage, hand them back where it is alive,
/// in sync and not shutting down.
async fn rebalance_leaders(zk: &ZkClient, sh: &Shared) -> Result<(), ZkError> {
    let view = planning_view(sh);
    let cepoch = sh.controller_epoch.load(Ordering::SeqCst);
    for (topic, p, new) in preferred_moves(&view, sh.imbalance_pct, cepoch) {
        let path = format!("/brokers/topics/{topic}/partitions/{}/state", p.index);
        let Some((d, ver)) = read_opt(zk, &path).await? else {
            continue;
        };
        if serde_json::from_slice::<PartitionState>(&d).ok().as_ref() == p.state.as_ref()
            && fenced_set(zk, sh, &path, &state_json(&new), ver).await?
        {
            tracing::info!(topic = %topic, partition = p.index, leader = new.leader, epoch = new.leader_epoch, "preferred replica election");
        }
    }
    Ok(())
}

/// A state-znode write by the controller: conditional on the znode's version
/// and fenced by `/controller_epoch`'s version in the same multi. False if
/// either moved (a BadVersion on the epoch check means we were deposed).
async fn fenced_set(
    zk: &ZkClient,
    sh: &Shared,
    path: &str,
    data: &[u8],
    ver: i32,
) -> Result<bool, ZkError> {
    let cv = sh.controller_epoch_version.load(Ordering::SeqCst);
    let res = zk
        .multi(vec![
            MultiOp::check("/controller_epoch", cv),
            MultiOp::set_data(path, data, ver),
        ])
        .await?;
    match res.first() {
        Some(MultiResult::Error(ErrorCode::BadVersion))
        | Some(MultiResult::Error(ErrorCode::NoNode)) => {
            tracing::warn!("controller epoch moved on: no longer controller");
            sh.controller_epoch.store(-1, Ordering::SeqCst);
            Ok(false)
        }
        _ => Ok(!res
            .iter()
            .any(|r| matches!(r, MultiResult::Error(c) if *c != ErrorCode::Ok))),
    }
}

async fn delete_topic_znodes(zk: &ZkClient, t: &str) -> Result<(), ZkError> {
    let base = format!("/brokers/topics/{t}");
    for p in children_opt(zk, &format!("{base}/partitions")).await? {
        for leaf in [
            format!("{base}/partitions/{p}/state"),
            format!("{base}/partitions/{p}"),
        ] {
            match zk.delete(&leaf, -1).await {
                Ok(()) | Err(ZkError::Code(ErrorCode::NoNode)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    for n in [
        format!("{base}/partitions"),
        base.clone(),
        format!("/config/topics/{t}"),
        format!("/admin/delete_topics/{t}"),
    ] {
        match zk.delete(&n, -1).await {
            Ok(()) | Err(ZkError::Code(ErrorCode::NoNode)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
