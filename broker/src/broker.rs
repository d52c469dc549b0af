//! The broker's shared state and its background tasks (reconciling local logs
//! with the metadata cache, retention). Built by the binary, shared by every
//! connection.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::cluster::{Cluster, Standalone};
use crate::config::BrokerConfig;
use crate::log::{FlushPolicy, LogStore};
use crate::metadata::{BrokerInfo, MetadataCache};

/// Startup failures, reported by the binary with a clear message.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("log store: {0}")]
    Log(#[from] crate::log::LogError),
    #[error("cluster state: {0}")]
    Cluster(#[from] crate::cluster::AdminError),
    #[error("{0}")]
    Zk(#[from] crate::zk::ZkStartError),
}

/// Everything a request handler needs.
pub struct Broker {
    pub config: BrokerConfig,
    pub log: Arc<LogStore>,
    pub cache: Arc<MetadataCache>,
    pub cluster: Cluster,
    /// Consumer groups and committed offsets (see `group`).
    pub groups: Arc<crate::group::Groups>,
    /// Replication roles, replica fetchers and ISR upkeep (see `replica`).
    pub replicas: crate::replica::ReplicaManager,
    next_pid: AtomicI64,
    shutdown: watch::Sender<bool>,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
        let cluster = if config.zookeeper_connect.trim().is_empty() {
            tracing::warn!("zookeeper.connect is empty: standalone single-broker mode");
            Cluster::Standalone(Standalone::open(config.log_dir.clone(), me, cache.clone())?)
        } else {
            Cluster::Zk(crate::zk::ZkCluster::start(&config, me, cache.clone()).await?)
        };
        let (shutdown, _) = watch::channel(false);
        let broker = Arc::new(Broker {
            next_pid: AtomicI64::new(0),
            groups: crate::group::Groups::start(&config, cache.clone(), shutdown.subscribe()),
            replicas: crate::replica::ReplicaManager::new(),
            config,
            log,
            cache,
            cluster,
            shutdown,
        });
        broker.reconcile();
        tokio::spawn(reconcile_loop(broker.clone()));
        tokio::spawn(retention_loop(broker.clone()));
        tokio::spawn(crate::replica::isr_loop(broker.clone()));
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
        let _ = self.shutdown.send(true);
    }

    /// Controlled shutdown (controlled.shutdown.enable, before the listener
    /// closes): stop following, announce it, then wait until the controller
    /// has handed every partition we lead to another in-sync replica and
    /// taken us out of the other ISRs, so clients and acks=all see no gap.
    /// Gives up after controlled.shutdown.max.retries × retry.backoff.ms.
    pub async fn controlled_shutdown(self: &Arc<Self>) {
        let Cluster::Zk(z) = &self.cluster else {
            return;
        };
        if !self.config.controlled_shutdown {
            return;
        }
        let started = std::time::Instant::now();
        self.replicas.stop_following();
        let b = self.clone();
        let _ = tokio::task::spawn_blocking(move || b.reconcile()).await;
        if let Err(e) = z.announce_shutdown().await {
            tracing::warn!(error = %e, "cannot announce controlled shutdown; stopping anyway");
            return;
        }
        let deadline = tokio::time::Instant::now() + self.config.controlled_shutdown_timeout;
        let mut rx = self.cache.subscribe();
        loop {
            let pending = self.shutdown_pending();
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

    /// Partitions the controller still owes a controlled shutdown: led by us
    /// with another live, in-sync, not-stopping replica to take over, or led
    /// elsewhere with us still in the ISR.
    fn shutdown_pending(&self) -> usize {
        let view = self.cache.view();
        let me = self.id();
        let other_ok =
            |r: &i32| *r != me && view.brokers.contains_key(r) && !view.shutting_down.contains(r);
        view.topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|p| p.state.as_ref())
            .filter(|s| {
                if s.leader == me {
                    s.isr.iter().any(other_ok)
                } else {
                    s.isr.contains(&me) && other_ok(&s.leader)
                }
            })
            .count()
    }

    /// Flush logs and deregister (after connections drained).
    pub async fn finish_shutdown(&self) {
        self.cluster.shutdown().await;
        let log = self.log.clone();
        let _ = tokio::task::spawn_blocking(move || log.shutdown()).await;
    }

    /// A producer id unique across brokers (low 10 bits = broker id) and restarts
    /// (time-based high bits).
    pub fn allocate_producer_id(&self) -> i64 {
        let fresh = (now_ms() << 10) | (self.config.broker_id as i64 & 0x3ff);
        let mut cur = self.next_pid.load(Ordering::SeqCst);
        loop {
            let next = fresh.max(cur + 1024);
            match self
                .next_pid
                .compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(v) => cur = v,
            }
        }
    }

    /// Make local logs match the cache: create logs for partitions this broker
    /// replicates, delete logs of topics that are gone, then apply leader and
    /// follower roles from the state znodes.
    pub fn reconcile(self: &Arc<Self>) {
        let view = self.cache.view();
        let me = self.id();
        for t in view.topics.values() {
            if t.deleting {
                continue;
            }
            for p in &t.partitions {
                if (p.leader() == me || p.replicas.contains(&me))
                    && self.log.get(&t.name, p.index).is_none()
                {
                    if let Err(e) = self.log.ensure(&t.name, p.index) {
                        tracing::error!(topic = %t.name, partition = p.index, error = %e, "cannot create partition log");
                    }
                }
            }
        }
        if !self.cluster_loaded() {
            return;
        }
        for p in self.log.all() {
            let keep = view.topics.get(&p.topic).is_some_and(|t| {
                !t.deleting
                    && t.partitions.iter().any(|m| {
                        m.index == p.index && (m.replicas.contains(&me) || m.leader() == me)
                    })
            });
            if !keep {
                if let Err(e) = self.log.remove(&p.topic, p.index) {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "cannot delete partition log");
                }
            }
        }
        crate::replica::reconcile_roles(self);
    }

    fn cluster_loaded(&self) -> bool {
        match &self.cluster {
            Cluster::Standalone(_) => true,
            Cluster::Zk(z) => z.loaded(),
        }
    }

    /// Effective retention (ms, bytes) for a topic: override or broker default.
    pub fn retention_for(&self, topic: &str) -> (i64, i64) {
        let view = self.cache.view();
        let cfg = view
            .topics
            .get(topic)
            .map(|t| t.configs.clone())
            .unwrap_or_default();
        let ms = cfg
            .get("retention.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.config.retention_ms);
        let bytes = cfg
            .get("retention.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.config.retention_bytes);
        (ms, bytes)
    }

    /// Topic-level message size limit.
    pub fn max_message_bytes(&self, topic: &crate::metadata::TopicMeta) -> usize {
        topic
            .configs
            .get("max.message.bytes")
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(self.config.message_max_bytes)
            .max(0) as usize
    }
}

async fn reconcile_loop(b: Arc<Broker>) {
    let mut rx = b.cache.subscribe();
    let mut stop = b.shutdown_signal();
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
        let b2 = b.clone();
        let _ = tokio::task::spawn_blocking(move || b2.reconcile()).await;
    }
}

async fn retention_loop(b: Arc<Broker>) {
    let mut stop = b.shutdown_signal();
    let every = b
        .config
        .retention_check_interval
        .max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let b2 = b.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            for p in b2.log.all() {
                let (ms, bytes) = b2.retention_for(&p.topic);
                match b2.log.apply_retention(&p, now, ms, bytes) {
                    Ok(Some(_)) => b2.log.compact_partition(&p),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "retention failed"),
                }
            }
        })
        .await;
    }
}
