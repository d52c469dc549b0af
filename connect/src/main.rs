//! `fjord-connect standalone worker.properties connector.properties...` and
//! `fjord-connect distributed worker.properties`, as Kafka's two scripts: read and
//! check every file first (a bad one → exit 2 naming the key and the file; nothing
//! starts), then wire the stores, the herder and the REST listener, and run until
//! SIGTERM/SIGINT, when tasks stop gracefully and offsets are flushed. Standalone
//! keeps offsets in `offset.storage.file.filename`; distributed keeps configs,
//! statuses and offsets in the coordinator (see `distributed`).

mod acks;
mod assignment;
mod config;
mod config_store;
mod connectors;
mod converters;
mod date_pattern;
mod distributed;
mod errors;
mod herder;
mod logical;
mod rest;
mod sink_context;
mod storage;
mod transforms;
mod worker;
mod worker_config;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use config::{ConfigError, ConfigMap};
use config_store::{ConfigStore, MemoryConfigs};
use herder::Herder;
use storage::{FileOffsets, OffsetStore};
use worker_config::WorkerConfig;

const USAGE: &str = "usage: fjord-connect standalone <worker.properties> [connector.properties ...]\n       fjord-connect distributed <worker.properties>";

/// What the command line asked for, every file read and checked.
enum Mode {
    Standalone(Vec<(String, ConfigMap)>, Arc<dyn OffsetStore>),
    Distributed(String),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let loaded = match args.split_first() {
        Some((mode, rest)) if mode == "standalone" && !rest.is_empty() => {
            let connector_files: Vec<PathBuf> = rest[1..].iter().map(PathBuf::from).collect();
            load_standalone(&PathBuf::from(&rest[0]), &connector_files)
        }
        Some((mode, [file])) if mode == "distributed" => load_distributed(&PathBuf::from(file)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (worker_cfg, mode) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("fjord-connect: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fjord-connect: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(worker_cfg, mode)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fjord-connect: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Every file parsed and checked before anything starts.
fn load_standalone(
    worker_file: &std::path::Path,
    connector_files: &[PathBuf],
) -> Result<(WorkerConfig, Mode), ConfigError> {
    let wm = config::load_properties(worker_file)?;
    let worker = WorkerConfig::from_map(wm).map_err(|e| e.in_file(worker_file))?;
    if worker.offset_storage_file.is_none() {
        return Err(ConfigError::new(
            "offset.storage.file.filename",
            "Missing required configuration with no default value (standalone mode)",
        )
        .in_file(worker_file));
    }
    let mut out: Vec<(String, ConfigMap)> = Vec::new();
    for f in connector_files {
        let m = config::load_properties(f)?;
        if let Some(e) = connectors::validate(&m).into_iter().next() {
            return Err(e.in_file(f));
        }
        let name = m.get("name").cloned().unwrap_or_default();
        if out.iter().any(|(n, _)| *n == name) {
            return Err(
                ConfigError::new("name", format!("Connector {name} already exists")).in_file(f),
            );
        }
        out.push((name, m));
    }
    let file = worker.offset_storage_file.clone().unwrap_or_default();
    let offsets = FileOffsets::open(PathBuf::from(file)).map_err(|e| {
        ConfigError::new("offset.storage.file.filename", e.to_string()).in_file(worker_file)
    })?;
    Ok((worker, Mode::Standalone(out, Arc::new(offsets))))
}

/// Kafka's distributed worker file as it is: `group.id` is required; the storage
/// topics' keys are accepted and not used (the coordinator holds that state).
fn load_distributed(worker_file: &std::path::Path) -> Result<(WorkerConfig, Mode), ConfigError> {
    let wm = config::load_properties(worker_file)?;
    let worker = WorkerConfig::from_map(wm).map_err(|e| e.in_file(worker_file))?;
    let group = match &worker.group_id {
        Some(g) if !g.trim().is_empty() => g.clone(),
        _ => {
            return Err(ConfigError::new(
                "group.id",
                "Missing required configuration \"group.id\" which has no default value. (distributed mode)",
            )
            .in_file(worker_file))
        }
    };
    for k in [
        "config.storage.topic",
        "offset.storage.topic",
        "status.storage.topic",
    ] {
        if let Some(v) = worker.all.get(k) {
            tracing::info!(key = k, value = %v, "not used: distributed mode keeps this state in the coordinator, under /connect/<group.id>/");
        }
    }
    Ok((worker, Mode::Distributed(group)))
}

async fn run(worker: WorkerConfig, mode: Mode) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&worker.rest_addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (listeners): {e}", worker.rest_addr))?;
    let worker = Arc::new(worker);
    let (herder, cluster, offsets) = match mode {
        Mode::Standalone(connector_cfgs, offsets) => {
            let store: Arc<dyn ConfigStore> = Arc::new(MemoryConfigs::default());
            let herder = Arc::new(Herder::new(worker.clone(), store, offsets.clone(), None));
            for (name, cfg) in connector_cfgs {
                herder
                    .put(&name, cfg, false)
                    .await
                    .map_err(|e| anyhow::anyhow!("connector {name}: {e}"))?;
                tracing::info!(connector = %name, "connector started");
            }
            (herder, None, offsets)
        }
        Mode::Distributed(group) => {
            let zk = distributed::coordinator_of(&worker.bootstrap_servers)
                .await
                .map_err(|e| {
                    anyhow::anyhow!("cannot find the coordinator through bootstrap.servers: {e}")
                })?;
            let me = worker.rest_addr.clone();
            let url = format!("http://{me}/");
            let cluster = distributed::Cluster::join(&zk, &group, me, url, worker.session_timeout)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let store: Arc<dyn ConfigStore> = Arc::new(distributed::ZkConfigs {
                cluster: cluster.clone(),
            });
            let offsets: Arc<dyn OffsetStore> =
                Arc::new(distributed::ZkOffsets::new(cluster.clone()));
            let herder = Arc::new(Herder::new(
                worker.clone(),
                store,
                offsets.clone(),
                Some(cluster.clone()),
            ));
            // The cluster pokes; the herder looks at the records again.
            let poke = Arc::new(tokio::sync::Notify::new());
            tokio::spawn(cluster.clone().watch(poke.clone()));
            let h = herder.clone();
            tokio::spawn(async move {
                loop {
                    poke.notified().await;
                    h.reconcile().await;
                }
            });
            tracing::info!(group_id = %group, coordinator = %zk, "joined the group: configs, statuses and offsets under /connect/{group}/");
            (herder, Some(cluster), offsets)
        }
    };
    // Source offsets flush on their own timer too (tasks flush after each interval
    // they run; this covers a task that is idle).
    let flusher = {
        let offsets = offsets.clone();
        let every = worker.offset_flush_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = offsets.flush().await {
                    tracing::error!(error = %e, "offset flush failed");
                }
            }
        })
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let h = herder.clone();
    let server = tokio::spawn(fjord_http::serve(listener, "rest", stop_rx, move |req| {
        rest::handle(h.clone(), req)
    }));
    tracing::info!(listeners = %worker.rest_addr, distributed = cluster.is_some(), "fjord-connect worker started");
    shutdown_signal().await;
    tracing::info!("stopping: tasks first, then the REST listener");
    herder.shutdown().await;
    if let Some(c) = &cluster {
        c.leave().await;
    }
    flusher.abort();
    let _ = stop_tx.send(true);
    let _ = server.await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
