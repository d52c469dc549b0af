//! The broker's wiring: open the log, reach cluster state, build the group
//! coordinator and the replica manager, each handed the handles it uses, and
//! start the background tasks (reconciling logs and roles with the metadata
//! cache, retention, HW checkpoints, ISR upkeep). `Broker` is the bundle of those handles the
//! API handlers read; it holds no logic of its own beyond startup and the
//! order of shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::cluster::metadata::{BrokerInfo, MetadataCache};
use crate::cluster::Cluster;
use crate::config::BrokerConfig;
use crate::group::Groups;
use crate::log::producer_ids::ProducerIds;
use crate::log::retention::retention_loop;
use crate::log::{FlushPolicy, LogStore};
use crate::replica::ReplicaManager;

/// Startup failures, reported by the binary with a clear message.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("log store: {0}")]
    Log(#[from] crate::log::LogError),
    #[error("{0}")]
    Cluster(#[from] crate::cluster::StartError),
    #[error("schema registry: {0}")]
    Registry(String),
}

/// The handles of one running broker, shared by every connection.
pub struct Broker {
    pub config: BrokerConfig,
    pub log: Arc<LogStore>,
    pub cache: Arc<MetadataCache>,
    /// Cluster state (coordinator or standalone), behind one interface.
    pub cluster: Arc<Cluster>,
    /// Consumer groups and committed offsets (see `group`).
    pub groups: Arc<Groups>,
    /// Replication roles, replica fetchers and ISR upkeep (see `replica`).
    pub replicas: Arc<ReplicaManager>,
    /// InitProducerId's allocator.
    pub producer_ids: ProducerIds,
    /// The Schema Registry, when `schema.registry.listeners` is set (see `registry`).
    pub registry: std::sync::OnceLock<Arc<crate::registry::Registry>>,
    shutdown: watch::Sender<bool>,
}

impl Broker {
    /// Open the log, connect cluster state (coordinator or standalone), start
    /// background tasks. Must run inside a tokio runtime.
    pub async fn start(config: BrokerConfig) -> Result<Arc<Broker>, StartError> {
        let flush = FlushPolicy {
            interval_messages: config.flush_interval_messages,
            interval: config.flush_interval_ms.map(Duration::from_millis),
        };
        let log = LogStore::open(&config.log_dir, flush)?;
        let cache = Arc::new(MetadataCache::new());
        let me = BrokerInfo {
            id: config.broker_id,
            host: config.advertised.host.clone(),
            port: config.advertised.port,
            rack: None,
        };
        let cluster = Arc::new(Cluster::start(&config, me, cache.clone()).await?);
        let broker = Broker::wire(config, log, cache, cluster);
        if let Some(ep) = &broker.config.schema_registry_listen {
            let addr = format!("{}:{}", ep.host, ep.port);
            let reg = crate::registry::start(
                &addr,
                broker.cluster.sessions(),
                &broker.config.log_dir,
                broker.shutdown_signal(),
            )
            .await
            .map_err(|e| StartError::Registry(format!("cannot listen on {addr}: {e}")))?;
            let _ = broker.registry.set(reg);
        }
        Ok(broker)
    }

    /// Assemble a broker from its opened pieces and start its tasks (also
    /// used by the in-process handler tests). Must run inside a tokio runtime.
    pub fn wire(
        config: BrokerConfig,
        log: Arc<LogStore>,
        cache: Arc<MetadataCache>,
        cluster: Arc<Cluster>,
    ) -> Arc<Broker> {
        let (shutdown, _) = watch::channel(false);
        let replicas = Arc::new(ReplicaManager::new(
            config.broker_id,
            log.clone(),
            cache.clone(),
            cluster.clone(),
            config.replica_lag_time_max,
            shutdown.subscribe(),
        ));
        let broker = Arc::new(Broker {
            producer_ids: ProducerIds::new(config.broker_id),
            registry: std::sync::OnceLock::new(),
            groups: Groups::start(
                &config,
                cache.clone(),
                cluster.sessions(),
                shutdown.subscribe(),
            ),
            replicas: replicas.clone(),
            config,
            log: log.clone(),
            cache: cache.clone(),
            cluster,
            shutdown,
        });
        replicas.reconcile();
        tokio::spawn(reconcile_loop(
            replicas.clone(),
            cache.clone(),
            broker.shutdown_signal(),
        ));
        let defaults = (broker.config.retention_ms, broker.config.retention_bytes);
        let limits_cache = cache.clone();
        tokio::spawn(retention_loop(
            log,
            Arc::new(move |topic: &str| retention_for(&limits_cache, defaults, topic)),
            broker.config.retention_check_interval,
            broker.shutdown_signal(),
        ));
        tokio::spawn(crate::log::checkpoint::hw_checkpoint_loop(
            broker.log.clone(),
            broker.config.hw_checkpoint_interval,
            broker.shutdown_signal(),
        ));
        tokio::spawn(crate::replica::isr_loop(replicas));
        broker
    }

    /// This broker's id.
    pub fn id(&self) -> i32 {
        self.config.broker_id
    }

    /// A receiver that turns true when the broker shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Begin shutdown: stop background tasks and listeners.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Controlled shutdown (controlled.shutdown.enable, before the listener
    /// closes): stop following, announce it, then wait until the controller
    /// has handed every partition we lead to another in-sync replica and
    /// taken us out of the other ISRs, so clients and acks=all see no gap.
    /// Gives up after controlled.shutdown.max.retries × retry.backoff.ms.
    pub async fn controlled_shutdown(self: &Arc<Self>) {
        if !self.cluster.replicated() || !self.config.controlled_shutdown {
            return;
        }
        let started = std::time::Instant::now();
        self.replicas.stop_following();
        let rm = self.replicas.clone();
        let _ = tokio::task::spawn_blocking(move || rm.reconcile()).await;
        if let Err(e) = self.cluster.announce_shutdown().await {
            tracing::warn!(error = %e, "cannot announce controlled shutdown; stopping anyway");
            return;
        }
        let deadline = tokio::time::Instant::now() + self.config.controlled_shutdown_timeout;
        let mut rx = self.cache.subscribe();
        loop {
            let pending = self.cache.view().shutdown_pending(self.id());
            if pending == 0 {
                tracing::info!(
                    ms = started.elapsed().as_millis() as u64,
                    "controlled shutdown complete: no partition left to hand over"
                );
                return;
            }
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(pending, "controlled shutdown incomplete; stopping anyway");
                    return;
                }
            }
        }
    }

    /// Flush logs and deregister (after connections drained).
    pub async fn finish_shutdown(&self) {
        self.cluster.shutdown().await;
        let log = self.log.clone();
        let _ = tokio::task::spawn_blocking(move || log.shutdown()).await;
    }
}

/// Effective retention (ms, bytes) for a topic: its override, else the
/// broker default.
fn retention_for(cache: &MetadataCache, defaults: (i64, i64), topic: &str) -> (i64, i64) {
    let view = cache.view();
    let cfg = view.topics.get(topic).map(|t| &t.configs);
    let get = |k: &str| cfg.and_then(|c| c.get(k)).and_then(|v| v.parse().ok());
    (
        get("retention.ms").unwrap_or(defaults.0),
        get("retention.bytes").unwrap_or(defaults.1),
    )
}

/// Re-apply logs and roles on every metadata change.
async fn reconcile_loop(
    rm: Arc<ReplicaManager>,
    cache: Arc<MetadataCache>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rx = cache.subscribe();
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
        let rm = rm.clone();
        let _ = tokio::task::spawn_blocking(move || rm.reconcile()).await;
    }
}
