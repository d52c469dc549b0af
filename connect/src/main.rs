//! `fjord-connect standalone worker.properties connector.properties...`: read and check
//! every file first (a bad one → exit 2 naming the key and the file; nothing starts),
//! then wire the offset store, the herder, the connectors and the REST listener, and
//! run until SIGTERM/SIGINT, when tasks stop gracefully and offsets are flushed.

mod config;
mod connectors;
mod converters;
mod date_pattern;
mod errors;
mod herder;
mod logical;
mod rest;
mod storage;
mod transforms;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use config::{ConfigError, ConfigMap, WorkerConfig};
use herder::Herder;
use storage::{FileOffsets, MemoryOffsets, OffsetStore};

const USAGE: &str =
    "usage: fjord-connect standalone <worker.properties> [connector.properties ...]";

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
    let (worker_file, connector_files) = match args.split_first() {
        Some((mode, rest)) if mode == "standalone" && !rest.is_empty() => (
            PathBuf::from(&rest[0]),
            rest[1..].iter().map(PathBuf::from).collect::<Vec<_>>(),
        ),
        Some((mode, _)) if mode == "distributed" => {
            eprintln!("fjord-connect: distributed mode is not built yet; run `fjord-connect standalone ...`");
            return ExitCode::from(2);
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (worker_cfg, connector_cfgs) = match load_all(&worker_file, &connector_files) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("fjord-connect: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let offsets: Arc<dyn OffsetStore> = match &worker_cfg.offset_storage_file {
        Some(f) => match FileOffsets::open(PathBuf::from(f)) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                eprintln!("fjord-connect: {e}");
                return ExitCode::from(2);
            }
        },
        None => Arc::new(MemoryOffsets::default()),
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
    match rt.block_on(run(worker_cfg, connector_cfgs, offsets)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fjord-connect: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Every file parsed and checked before anything starts.
fn load_all(
    worker_file: &std::path::Path,
    connector_files: &[PathBuf],
) -> Result<(WorkerConfig, Vec<(String, ConfigMap)>), ConfigError> {
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
    Ok((worker, out))
}

async fn run(
    worker: WorkerConfig,
    connector_cfgs: Vec<(String, ConfigMap)>,
    offsets: Arc<dyn OffsetStore>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&worker.rest_addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (listeners): {e}", worker.rest_addr))?;
    let worker = Arc::new(worker);
    let herder = Arc::new(Herder::new(worker.clone(), offsets.clone()));
    for (name, cfg) in connector_cfgs {
        herder
            .put(&name, cfg, false)
            .await
            .map_err(|e| anyhow::anyhow!("connector {name}: {e}"))?;
        tracing::info!(connector = %name, "connector started");
    }
    // Source offsets flush on their own timer too (tasks flush after each interval
    // they run; this covers a task that is idle).
    let flusher = {
        let offsets = offsets.clone();
        let every = worker.offset_flush_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = offsets.flush() {
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
    tracing::info!(listeners = %worker.rest_addr, group_id = ?worker.group_id, "fjord-connect standalone worker started (group.id is used by distributed mode only)");
    shutdown_signal().await;
    tracing::info!("stopping: tasks first, then the REST listener");
    herder.shutdown().await;
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
