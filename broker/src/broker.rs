//! The broker's wiring: open the log, reach cluster state, build the group
//! coordinator and the replica manager, each handed the handles it uses, and
//! start the background tasks (reconciling logs and roles with the metadata
//! cache, retention, the log cleaner, HW checkpoints, ISR upkeep). `Broker` is the bundle of those handles the
//! API handlers read; it holds no logic of its own beyond startup and the
//! order of shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::cluster::metadata::{BrokerInfo, MetadataCache};
use crate::cluster::Cluster;
use crate::config::BrokerConfig;
use crate::group::Groups;
use crate::log::cleaner::{cleaner_loop, AbortedIndex, Cleaner, CompactionConfig};
use crate::log::producer_ids::ProducerIds;
use crate::log::retention::{producer_expiry_loop, retention_loop};
use crate::log::{FlushPolicy, LogStore};
use crate::metrics::counters::{BrokerMetrics, BrokerState};
use crate::replica::ReplicaManager;
use crate::security::credentials::{FileStore, ScramStore, ZkScramStore};
use crate::txn::store::{MemStore, TxnStore};
use crate::txn::zk_store::ZkStore;
use crate::txn::{TxnCoordinator, TxnSettings};

/// Startup failures, reported by the binary with a clear message.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("log store: {0}")]
    Log(#[from] crate::log::LogError),
    #[error("{0}")]
    Cluster(#[from] crate::cluster::StartError),
    #[error("schema registry: {0}")]
    Registry(String),
    /// An unreadable transactions file: starting empty would forget
    /// prepared transactions and fence nobody, so the broker stops.
    #[error(transparent)]
    Transactions(#[from] crate::txn::store::TxnStoreError),
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
    /// InitProducerId's allocator (shared with the transaction coordinator).
    pub producer_ids: Arc<ProducerIds>,
    /// The transaction coordinator (see `txn`).
    pub txns: Arc<TxnCoordinator>,
    /// The Schema Registry, when `schema.registry.listeners` is set (see `registry`).
    pub registry: std::sync::OnceLock<Arc<crate::registry::Registry>>,
    /// What the request path counts (idle unless `metrics.listeners` is set);
    /// read by the HTTP endpoints in `ops`.
    pub metrics: Arc<BrokerMetrics>,
    /// SCRAM credentials (`/config/users/<user>`; a file standalone).
    pub scram: Arc<dyn ScramStore>,
    /// The authorizer and its ACL store, when `authorizer.class.name` is set
    /// (see `acl`); None: every request is allowed.
    pub acls: Option<Arc<crate::acl::Acls>>,
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
        let log = LogStore::open_guarded(&config.log_dir, flush, config.free_space)?;
        let cache = Arc::new(MetadataCache::new());
        let me = BrokerInfo {
            id: config.broker_id,
            host: config.advertised.host.clone(),
            port: config.advertised.port,
            rack: None,
            endpoints: config
                .listeners
                .iter()
                .map(|l| crate::cluster::metadata::ListenerEndpoint {
                    name: l.name.clone(),
                    protocol: l.protocol.name().to_string(),
                    host: l.advertised.host.clone(),
                    port: l.advertised.port,
                })
                .collect(),
        };
        let cluster = Arc::new(Cluster::start(&config, me, cache.clone()).await?);
        let broker = Broker::wire(config, log, cache, cluster)?;
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
    ) -> Result<Arc<Broker>, StartError> {
        let (shutdown, _) = watch::channel(false);
        let metrics = Arc::new(BrokerMetrics::new(config.metrics_listen.is_some()));
        let replicas = Arc::new(ReplicaManager::new(
            config.broker_id,
            log.clone(),
            cache.clone(),
            cluster.clone(),
            config.replica_lag_time_max,
            shutdown.subscribe(),
            metrics.clone(),
        ));
        let producer_ids = Arc::new(ProducerIds::new(config.broker_id));
        let groups = Groups::start(
            &config,
            cache.clone(),
            cluster.sessions(),
            shutdown.subscribe(),
        );
        let scram: Arc<dyn ScramStore> = match cluster.sessions() {
            Some(sessions) => Arc::new(ZkScramStore::new(sessions)),
            None => match FileStore::open(config.log_dir.join("scram-users.json")) {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    tracing::error!(error = %e, "SCRAM users file unreadable; SCRAM logins will fail until it is fixed");
                    Arc::new(FileStore::in_memory())
                }
            },
        };
        let txn_store: Arc<dyn TxnStore> = match cluster.sessions() {
            Some(sessions) => Arc::new(ZkStore::new(sessions)),
            None => {
                let path = config.log_dir.join("transactions.json");
                Arc::new(MemStore::open(path, groups.offsets.clone())?)
            }
        };
        let txns = TxnCoordinator::start(
            TxnSettings {
                me: config.broker_id,
                max_timeout_ms: config.transaction_max_timeout_ms,
                abort_interval: config.transaction_abort_interval,
                expiration_ms: config.transactional_id_expiration_ms,
                expiry_interval: config.transaction_remove_expired_interval,
            },
            cache.clone(),
            txn_store,
            producer_ids.clone(),
            shutdown.subscribe(),
        );
        // Validated with the rest of the file (config.rs); None when off.
        let acls = crate::acl::AclSettings::from_raw(&config.raw)
            .ok()
            .flatten()
            .map(|s| crate::acl::Acls::start(s, cluster.sessions(), shutdown.subscribe()));
        let broker = Arc::new(Broker {
            acls,
            producer_ids,
            txns,
            groups,
            registry: std::sync::OnceLock::new(),
            metrics,
            scram,
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
        let policy_default = broker.config.cleaner.cleanup_policy.clone();
        tokio::spawn(retention_loop(
            log.clone(),
            Arc::new(move |topic: &str| {
                retention_for(&limits_cache, defaults, &policy_default, topic)
            }),
            broker.config.retention_check_interval,
            broker.shutdown_signal(),
        ));
        tokio::spawn(producer_expiry_loop(
            log.clone(),
            broker.config.producer_id_expiration_ms,
            broker.config.producer_id_expiration_check_interval,
            broker.shutdown_signal(),
        ));
        if broker.config.cleaner.enable {
            let cleaner = Arc::new(Cleaner::new(
                log,
                Arc::new(AbortedIndex),
                broker.config.cleaner.dedupe_buffer_size as usize,
            ));
            let (config_cache, cfg) = (cache.clone(), broker.config.clone());
            tokio::spawn(cleaner_loop(
                cleaner,
                Arc::new(move |topic: &str| compaction_for(&config_cache, &cfg, topic)),
                broker.config.cleaner.threads,
                broker.config.cleaner.backoff,
                broker.shutdown_signal(),
            ));
        }
        tokio::spawn(crate::log::checkpoint::hw_checkpoint_loop(
            broker.log.clone(),
            broker.config.hw_checkpoint_interval,
            broker.shutdown_signal(),
        ));
        tokio::spawn(crate::replica::isr_loop(replicas));
        tokio::spawn(crate::log::recovery::disk_monitor_loop(
            broker.log.clone(),
            broker.shutdown_signal(),
        ));
        tokio::spawn(broker.clone().log_dir_announcer());
        broker.metrics.set_state(BrokerState::Running);
        Ok(broker)
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
        self.metrics.set_state(BrokerState::ShuttingDown);
        let _ = self.shutdown.send(true);
    }

    /// While the log dir refuses writes (free-space guard or a failed
    /// write), withdraw from leadership so that replicas on healthy brokers
    /// take over (`Cluster::announce_log_dir_offline`); come back when it
    /// resumes. Re-asserted every few seconds while offline: the announcement
    /// is ephemeral and a new session would have lost it.
    async fn log_dir_announcer(self: Arc<Self>) {
        if !self.cluster.replicated() {
            return;
        }
        let mut stop = self.shutdown_signal();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut announced = false;
        let mut ticks = 0u32;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            ticks = ticks.wrapping_add(1);
            let offline = self.log.disk().refusal().is_some();
            if offline == announced && !(offline && ticks.is_multiple_of(10)) {
                continue;
            }
            match self.cluster.announce_log_dir_offline(offline).await {
                Ok(()) if offline != announced => {
                    if offline {
                        tracing::warn!("log dir refuses writes: withdrawing from leadership");
                    } else {
                        tracing::info!("log dir takes writes again: rejoining as a replica");
                    }
                    announced = offline;
                }
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, offline, "cannot announce the log dir's state; retrying")
                }
            }
        }
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
        self.metrics
            .set_state(BrokerState::PendingControlledShutdown);
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
/// broker default; none at all when its cleanup.policy lacks `delete`.
fn retention_for(
    cache: &MetadataCache,
    defaults: (i64, i64),
    policy_default: &str,
    topic: &str,
) -> (i64, i64) {
    let view = cache.view();
    let cfg = view.topics.get(topic).map(|t| &t.configs);
    let policy = cfg
        .and_then(|c| c.get("cleanup.policy"))
        .map_or(policy_default, String::as_str);
    if crate::config::cleanup_policy(policy).is_some_and(|(_, delete)| !delete) {
        return (-1, -1);
    }
    let get = |k: &str| cfg.and_then(|c| c.get(k)).and_then(|v| v.parse().ok());
    (
        get("retention.ms").unwrap_or(defaults.0),
        get("retention.bytes").unwrap_or(defaults.1),
    )
}

/// A topic's compaction settings (overrides, else broker defaults), or None
/// when its cleanup.policy does not include `compact`.
pub(crate) fn compaction_for(
    cache: &MetadataCache,
    c: &BrokerConfig,
    topic: &str,
) -> Option<CompactionConfig> {
    let view = cache.view();
    let cfg = view.topics.get(topic).map(|t| &t.configs)?;
    let policy = cfg
        .get("cleanup.policy")
        .map_or(c.cleaner.cleanup_policy.as_str(), String::as_str);
    if !crate::config::cleanup_policy(policy).is_some_and(|(compact, _)| compact) {
        return None;
    }
    let int = |k: &str, d: i64| cfg.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    Some(CompactionConfig {
        min_cleanable_ratio: cfg
            .get("min.cleanable.dirty.ratio")
            .and_then(|v| v.parse().ok())
            .unwrap_or(c.cleaner.min_cleanable_ratio),
        min_compaction_lag_ms: int("min.compaction.lag.ms", c.cleaner.min_compaction_lag_ms),
        max_compaction_lag_ms: int("max.compaction.lag.ms", c.cleaner.max_compaction_lag_ms),
        delete_retention_ms: int("delete.retention.ms", c.cleaner.delete_retention_ms),
        segment_ms: int("segment.ms", c.cleaner.segment_ms),
        segment_bytes: int("segment.bytes", c.segment_bytes),
    })
}

/// True when `topic`'s cleanup.policy includes `compact` (keyless records refused).
pub(crate) fn is_compacted(cache: &MetadataCache, c: &BrokerConfig, topic: &str) -> bool {
    compaction_for(cache, c, topic).is_some()
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
