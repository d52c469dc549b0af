//! Where cluster state lives: in fjord-coord (ZooKeeper layout, `zk` module)
//! or, with no `zookeeper.connect`, in a local file (single-broker standalone
//! mode for development and benchmarks). Both feed the same MetadataCache; the
//! handlers only see this module's admin operations.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::metadata::{
    assign_replicas, BrokerInfo, MetadataCache, PartitionMeta, PartitionState, TopicMeta,
};

/// Admin failures, each mapping onto one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("topic already exists")]
    TopicExists,
    #[error("unknown topic")]
    UnknownTopic,
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("invalid topic name: {0}")]
    InvalidTopic(String),
    #[error("topic deletion disabled")]
    DeletionDisabled,
    #[error("request timed out")]
    Timeout,
    #[error("coordinator unavailable: {0}")]
    Unavailable(String),
    #[error("this broker is not the controller")]
    NotController,
}

impl AdminError {
    /// The Kafka error code for this failure.
    pub fn code(&self) -> i16 {
        match self {
            AdminError::TopicExists => 36,
            AdminError::UnknownTopic => 3,
            AdminError::InvalidPartitions(_) => 37,
            AdminError::InvalidReplicationFactor(_) => 38,
            AdminError::InvalidReplicaAssignment(_) => 39,
            AdminError::InvalidConfig(_) => 40,
            AdminError::InvalidTopic(_) => 17,
            AdminError::DeletionDisabled => 73,
            AdminError::Timeout => 7,
            AdminError::Unavailable(_) => 15,
            AdminError::NotController => 41,
        }
    }
}

/// A topic to create, as CreateTopics (or auto-creation) describes it.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    /// Explicit assignment partition → replicas; overrides the two counts.
    pub assignments: Option<BTreeMap<i32, Vec<i32>>>,
    pub configs: BTreeMap<String, String>,
}

/// Kafka's topic name rule: [a-zA-Z0-9._-], 1..=249 chars, not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), AdminError> {
    if name.is_empty() || name.len() > 249 || name == "." || name == ".." {
        return Err(AdminError::InvalidTopic(name.to_string()));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(AdminError::InvalidTopic(name.to_string()));
    }
    Ok(())
}

/// Resolve a NewTopic into a concrete assignment over `live` brokers.
pub fn plan_assignment(
    t: &NewTopic,
    live: &[i32],
    start: usize,
) -> Result<BTreeMap<i32, Vec<i32>>, AdminError> {
    validate_topic_name(&t.name)?;
    for (k, v) in &t.configs {
        crate::config::validate_topic_config(k, v).map_err(AdminError::InvalidConfig)?;
    }
    if let Some(a) = &t.assignments {
        if a.is_empty() {
            return Err(AdminError::InvalidReplicaAssignment("empty".into()));
        }
        for (i, (p, r)) in a.iter().enumerate() {
            if *p != i as i32 || r.is_empty() {
                return Err(AdminError::InvalidReplicaAssignment(format!(
                    "partition {p}"
                )));
            }
            let mut d = r.clone();
            d.sort_unstable();
            d.dedup();
            if d.len() != r.len() {
                return Err(AdminError::InvalidReplicaAssignment(
                    "duplicate replica".into(),
                ));
            }
            if let Some(b) = r.iter().find(|b| !live.contains(b)) {
                return Err(AdminError::InvalidReplicaAssignment(format!(
                    "unknown broker {b}"
                )));
            }
        }
        return Ok(a.clone());
    }
    if t.partitions < 1 {
        return Err(AdminError::InvalidPartitions("must be at least 1".into()));
    }
    if t.replication_factor < 1 {
        return Err(AdminError::InvalidReplicationFactor(
            "must be at least 1".into(),
        ));
    }
    assign_replicas(live, t.partitions, t.replication_factor, start, 0).ok_or_else(|| {
        AdminError::InvalidReplicationFactor(format!(
            "Replication factor: {} larger than available brokers: {}.",
            t.replication_factor,
            live.len()
        ))
    })
}

/// The cluster-state backend.
pub enum Cluster {
    Standalone(Standalone),
    Zk(crate::zk::ZkCluster),
}

impl Cluster {
    /// Create a topic (validate_only: check and plan but write nothing).
    pub async fn create_topic(&self, t: NewTopic, validate_only: bool) -> Result<(), AdminError> {
        match self {
            Cluster::Standalone(s) => s.create_topic(t, validate_only).await,
            Cluster::Zk(z) => z.create_topic(t, validate_only).await,
        }
    }
    /// Mark a topic for deletion; data goes when the controller acts.
    pub async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        match self {
            Cluster::Standalone(s) => s.delete_topic(name).await,
            Cluster::Zk(z) => z.delete_topic(name).await,
        }
    }
    /// Grow a topic to `count` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        match self {
            Cluster::Standalone(s) => s.create_partitions(name, count, validate_only).await,
            Cluster::Zk(z) => z.create_partitions(name, count, validate_only).await,
        }
    }
    /// Replace a topic's config overrides.
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        for (k, v) in &configs {
            crate::config::validate_topic_config(k, v).map_err(AdminError::InvalidConfig)?;
        }
        match self {
            Cluster::Standalone(s) => s.set_topic_configs(name, configs).await,
            Cluster::Zk(z) => z.set_topic_configs(name, configs).await,
        }
    }
    /// Deregister and stop watching (SIGTERM path).
    pub async fn shutdown(&self) {
        if let Cluster::Zk(z) = self {
            z.shutdown().await;
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct StoredTopic {
    topic_id: String,
    partitions: BTreeMap<i32, Vec<i32>>,
    configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct StoredCluster {
    cluster_id: String,
    topics: BTreeMap<String, StoredTopic>,
}

/// Single-broker mode: topics kept in `<log.dirs>/cluster.json`.
pub struct Standalone {
    path: PathBuf,
    me: BrokerInfo,
    state: tokio::sync::Mutex<StoredCluster>,
    cache: Arc<MetadataCache>,
}

/// A fresh 22-character base64url cluster/topic id, as Kafka prints them.
pub fn new_base64_uuid() -> (uuid::Uuid, String) {
    use base64::Engine;
    let u = uuid::Uuid::new_v4();
    let s = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(u.as_bytes());
    (u, s)
}

/// Parse a base64url uuid as stored in znodes.
pub fn parse_base64_uuid(s: &str) -> Option<uuid::Uuid> {
    use base64::Engine;
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()?;
    uuid::Uuid::from_slice(&b).ok()
}

impl Standalone {
    /// Load (or initialise) the local cluster file and publish it to the cache.
    pub fn open(
        dir: PathBuf,
        me: BrokerInfo,
        cache: Arc<MetadataCache>,
    ) -> Result<Standalone, AdminError> {
        let path = dir.join("cluster.json");
        let stored = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| AdminError::Unavailable(format!("{}: {e}", path.display())))?,
            Err(_) => StoredCluster {
                cluster_id: new_base64_uuid().1,
                topics: BTreeMap::new(),
            },
        };
        let s = Standalone {
            path,
            me,
            state: tokio::sync::Mutex::new(stored.clone()),
            cache,
        };
        s.persist(&stored)?;
        s.publish(&stored);
        Ok(s)
    }

    fn persist(&self, st: &StoredCluster) -> Result<(), AdminError> {
        let tmp = self.path.with_extension("json.tmp");
        let data =
            serde_json::to_vec_pretty(st).map_err(|e| AdminError::Unavailable(e.to_string()))?;
        std::fs::write(&tmp, data)
            .and_then(|_| std::fs::rename(&tmp, &self.path))
            .map_err(|e| AdminError::Unavailable(format!("{}: {e}", self.path.display())))
    }

    fn publish(&self, st: &StoredCluster) {
        let me = self.me.clone();
        let topics = st
            .topics
            .iter()
            .map(|(name, t)| {
                let meta = TopicMeta {
                    name: name.clone(),
                    topic_id: parse_base64_uuid(&t.topic_id).unwrap_or_default(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|(p, r)| PartitionMeta {
                            index: *p,
                            replicas: r.clone(),
                            state: Some(PartitionState {
                                leader: me.id,
                                leader_epoch: 0,
                                controller_epoch: 1,
                                isr: vec![me.id],
                            }),
                            state_version: 0,
                            adding: Vec::new(),
                            removing: Vec::new(),
                        })
                        .collect(),
                    configs: t.configs.clone(),
                    deleting: false,
                };
                (name.clone(), Arc::new(meta))
            })
            .collect();
        let cid = st.cluster_id.clone();
        self.cache.update(|v| {
            v.cluster_id = cid;
            v.controller_id = me.id;
            v.brokers = [(me.id, me.clone())].into_iter().collect();
            v.topics = topics;
        });
    }

    async fn create_topic(&self, t: NewTopic, validate_only: bool) -> Result<(), AdminError> {
        let mut st = self.state.lock().await;
        if st.topics.contains_key(&t.name) {
            return Err(AdminError::TopicExists);
        }
        let a = plan_assignment(&t, &[self.me.id], 0)?;
        if validate_only {
            return Ok(());
        }
        st.topics.insert(
            t.name.clone(),
            StoredTopic {
                topic_id: new_base64_uuid().1,
                partitions: a,
                configs: t.configs,
            },
        );
        self.persist(&st)?;
        self.publish(&st);
        Ok(())
    }

    async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        let mut st = self.state.lock().await;
        if st.topics.remove(name).is_none() {
            return Err(AdminError::UnknownTopic);
        }
        self.persist(&st)?;
        self.publish(&st);
        Ok(())
    }

    async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let mut st = self.state.lock().await;
        let me = self.me.id;
        let t = st.topics.get_mut(name).ok_or(AdminError::UnknownTopic)?;
        let have = t.partitions.len() as i32;
        if count <= have {
            return Err(AdminError::InvalidPartitions(format!(
                "Topic currently has {have} partitions, {count} would not be an increase."
            )));
        }
        if validate_only {
            return Ok(());
        }
        for p in have..count {
            t.partitions.insert(p, vec![me]);
        }
        self.persist(&st)?;
        self.publish(&st);
        Ok(())
    }

    async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        let mut st = self.state.lock().await;
        let t = st.topics.get_mut(name).ok_or(AdminError::UnknownTopic)?;
        t.configs = configs;
        self.persist(&st)?;
        self.publish(&st);
        Ok(())
    }
}
