//! `fjord-console console.properties`: the web console on :9021. Wiring only:
//! read and check the file (a bad key exits 2 naming it), bind the listener,
//! serve pages through fjord-http's accept loop until SIGTERM/SIGINT.
//!
//! Modules: `config` (the keys), `app` (what every page receives: the shared
//! handles, the parsed request, the reply), `server` (request parsing, CSRF,
//! read-only, timeouts), `pages/` (one file per page), `cluster` (Metadata, topics,
//! offsets over the Kafka protocol), `disk` (log-dir and partition sizes),
//! `scan` (reading messages), `groups` (lag and resets), `ensemble` (the
//! coordinator's `srvr`), `decode` (text/JSON/hex), `html` (escaping, the
//! frame), `listing` (long lists sorted and paged), `rest` (the registry's
//! and Connect's REST APIs), `diff` (schema versions side by side), `typed`
//! (registry-framed Avro/Protobuf/JSON Schema values decoded), `sampler`
//! (the history behind the charts, sampled in a task started here),
//! `chart` (SVG line charts).

mod app;
mod chart;
mod cluster;
mod config;
mod decode;
mod diff;
mod disk;
mod ensemble;
mod groups;
mod html;
mod listing;
mod pages;
mod sampler;
mod scan;
mod server;
mod typed;

use std::process::ExitCode;
use std::sync::Arc;

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
    let [file] = args.as_slice() else {
        eprintln!("usage: fjord-console <console.properties>");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fjord-console: cannot read {file}: {e}");
            return ExitCode::from(2);
        }
    };
    let (cfg, unknown) = match config::ConsoleConfig::from_map(&config::parse_properties(&text)) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("fjord-console: invalid configuration in {file}: {e}");
            return ExitCode::from(2);
        }
    };
    for k in unknown {
        tracing::warn!(key = %k, file = %file, "unknown configuration key ignored");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fjord-console: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fjord-console: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cfg: config::ConsoleConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (listeners): {e}", cfg.listen))?;
    tracing::info!(
        url = %format!("http://{}", cfg.listen),
        bootstrap = %cfg.bootstrap,
        read_only = cfg.read_only,
        "fjord-console started"
    );
    let app = Arc::new(app::App::new(cfg));
    let sampling = tokio::spawn(sampler::run(
        app.cfg.clone(),
        app.seen.clone(),
        app.history.clone(),
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let a = app.clone();
    let serving = tokio::spawn(fjord_http::serve(
        listener,
        "console",
        stop_rx,
        move |req| server::handle(a.clone(), req),
    ));
    shutdown_signal().await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    let _ = serving.await;
    sampling.abort();
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
