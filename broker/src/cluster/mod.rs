//! Where cluster state lives, behind one interface: `Cluster` is the only
//! type in the broker that knows whether the state is in fjord-coord
//! (`zk`, Kafka's ZooKeeper layout, with the controller) or in a local file
//! (`standalone`, single broker). Both feed the same `metadata::MetadataCache`;
//! the rest of the broker reads the cache and calls `Cluster`'s methods.
//!
//! Children: `metadata` (the cache), `admin` (errors, NewTopic, pure
//! planning), `controller` (the controller's pure decisions), `liveness`
//! (probes finding dead brokers before their sessions expire), `standalone`,
//! `zk`. Children never reference this file, only their siblings.

pub mod admin;
pub mod controller;
pub mod liveness;
pub mod metadata;
pub mod standalone;
pub mod zk;

use std::sync::Arc;

pub(crate) use admin::validate_configs;
pub use admin::{validate_topic_name, AdminError, ConfigEdit, IsrChange, NewTopic};
use metadata::{BrokerInfo, MetadataCache};
use standalone::Standalone;
use zk::{ZkCluster, ZkStartError};

use crate::config::BrokerConfig;

/// Why cluster state could not be reached at startup.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cluster state: {0}")]
    Standalone(#[from] AdminError),
    #[error("{0}")]
    Zk(#[from] ZkStartError),
}

/// The cluster-state backend.
pub enum Cluster {
    Standalone(Standalone),
    Zk(ZkCluster),
}

impl Cluster {
    /// Connect to the coordinator named by `zookeeper.connect` (register, load
    /// state, run the controller candidate) or, when it is empty, open the
    /// standalone file. Either way `cache` is filled before this returns.
    pub async fn start(
        config: &BrokerConfig,
        me: BrokerInfo,
        cache: Arc<MetadataCache>,
    ) -> Result<Cluster, StartError> {
        if config.zookeeper_connect.trim().is_empty() {
            tracing::warn!("zookeeper.connect is empty: standalone single-broker mode");
            Ok(Cluster::Standalone(Standalone::open(
                config.log_dir.clone(),
                me,
                cache,
            )?))
        } else {
            Ok(Cluster::Zk(ZkCluster::start(config, me, cache).await?))
        }
    }

    /// Whether other brokers may exist: replication, ISR upkeep and controlled
    /// shutdown only run then (standalone = one broker, always the leader).
    pub fn replicated(&self) -> bool {
        matches!(self, Cluster::Zk(_))
    }

    /// True once the first full load of cluster state reached the cache
    /// (before that, the reconciler must not delete logs it does not see).
    pub fn loaded(&self) -> bool {
        match self {
            Cluster::Standalone(_) => true,
            Cluster::Zk(z) => z.loaded(),
        }
    }

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
    /// Changes a topic's configs: `edit` runs on the stored configs (not
    /// the cached ones), the result is validated and written atomically.
    pub async fn update_topic_configs(
        &self,
        name: &str,
        edit: &ConfigEdit<'_>,
    ) -> Result<(), AdminError> {
        match self {
            Cluster::Standalone(s) => s.update_topic_configs(name, edit).await,
            Cluster::Zk(z) => z.update_topic_configs(name, edit).await,
        }
    }

    /// A leader's ISR change, written conditionally on the state znode's
    /// version (see `zk::ZkCluster::write_isr`). Standalone has no followers:
    /// nothing to write.
    pub async fn write_isr(
        &self,
        change: &IsrChange<'_>,
    ) -> Result<Option<(Vec<i32>, i32)>, AdminError> {
        match self {
            Cluster::Standalone(_) => Ok(None),
            Cluster::Zk(z) => z
                .write_isr(change)
                .await
                .map_err(|e| AdminError::Unavailable(e.to_string())),
        }
    }

    /// Tell the controller this broker is going away (controlled shutdown).
    pub async fn announce_shutdown(&self) -> Result<(), AdminError> {
        match self {
            Cluster::Standalone(_) => Ok(()),
            Cluster::Zk(z) => z
                .announce_shutdown()
                .await
                .map_err(|e| AdminError::Unavailable(e.to_string())),
        }
    }

    /// Say whether this broker's log dir refuses writes (`zk` says what the
    /// controller does with it). Standalone has no one to hand over to.
    pub async fn announce_log_dir_offline(&self, offline: bool) -> Result<(), AdminError> {
        match self {
            Cluster::Standalone(_) => Ok(()),
            Cluster::Zk(z) => z
                .announce_log_dir_offline(offline)
                .await
                .map_err(|e| AdminError::Unavailable(e.to_string())),
        }
    }

    /// Record partition reassignments (controller only): per partition
    /// (index, error code, message). Standalone cannot move replicas.
    pub async fn reassign(
        &self,
        topic: &str,
        changes: &[(i32, Option<Vec<i32>>)],
    ) -> Result<Vec<(i32, i16, Option<String>)>, AdminError> {
        match self {
            Cluster::Standalone(_) => Err(AdminError::NeedsCoordinator),
            Cluster::Zk(z) => z.reassign(topic, changes).await,
        }
    }

    /// The coordinator session (None standalone): the one session of this
    /// broker, shared with the offsets store; a new value after an expiry.
    pub fn sessions(&self) -> Option<tokio::sync::watch::Receiver<fjord_zk::client::ZkClient>> {
        match self {
            Cluster::Standalone(_) => None,
            Cluster::Zk(z) => Some(z.sessions()),
        }
    }

    /// Deregister and stop watching (SIGTERM path).
    pub async fn shutdown(&self) {
        if let Cluster::Zk(z) = self {
            z.shutdown().await;
        }
    }
}

/// The broker's coordinator session once usable: the current one, or after
/// an expiry the next one the cluster state establishes. None on shutdown.
/// (The watch-fed caches of committed offsets and of the Schema Registry
/// both resubscribe through it.)
pub async fn next_session(
    sessions: &mut tokio::sync::watch::Receiver<fjord_zk::client::ZkClient>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<fjord_zk::client::ZkClient> {
    use fjord_zk::client::SessionState;
    loop {
        if *shutdown.borrow() {
            return None;
        }
        let zk = sessions.borrow_and_update().clone();
        let state = *zk.state().borrow();
        if !matches!(state, SessionState::Expired | SessionState::Closed) {
            return Some(zk);
        }
        tokio::select! {
            r = sessions.changed() => if r.is_err() { return None },
            _ = shutdown.changed() => return None,
        }
    }
}
