//! Standalone cluster state (no `zookeeper.connect`): a single broker that
//! keeps its topics in `<log.dirs>/cluster.json` and publishes them to the
//! metadata cache as if a controller had elected it leader of everything.
//! For development and benchmarks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::admin::{
    new_base64_uuid, parse_base64_uuid, plan_assignment, validate_configs, AdminError, ConfigEdit,
    NewTopic,
};
use super::metadata::{BrokerInfo, MetadataCache, PartitionMeta, PartitionState, TopicMeta};

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

    /// Write `st` to disk, then show it in the metadata cache.
    fn commit(&self, st: &StoredCluster) -> Result<(), AdminError> {
        self.persist(st)?;
        self.publish(st);
        Ok(())
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

    pub(crate) async fn create_topic(
        &self,
        t: NewTopic,
        validate_only: bool,
    ) -> Result<(), AdminError> {
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
        self.commit(&st)
    }

    pub(crate) async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        let mut st = self.state.lock().await;
        if st.topics.remove(name).is_none() {
            return Err(AdminError::UnknownTopic);
        }
        self.commit(&st)
    }

    pub(crate) async fn create_partitions(
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
        self.commit(&st)
    }

    pub(crate) async fn update_topic_configs(
        &self,
        name: &str,
        edit: &ConfigEdit<'_>,
    ) -> Result<(), AdminError> {
        let mut st = self.state.lock().await;
        let t = st.topics.get_mut(name).ok_or(AdminError::UnknownTopic)?;
        let mut configs = t.configs.clone();
        edit(&mut configs)?;
        validate_configs(&configs)?;
        t.configs = configs;
        self.commit(&st)
    }
}
