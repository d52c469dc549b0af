//! `fjord-broker <server.properties>`: parse config, start, run until SIGTERM/SIGINT.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fjord_broker::config::{BrokerConfig, ConfigError};
use fjord_broker::server::{serve, ConnCounter};
use fjord_broker::Broker;
use tokio::signal::unix::{signal, SignalKind};

/// Hostile array lengths must not abort the process (see alloc_guard).
#[global_allocator]
static ALLOC: fjord_broker::alloc_guard::GuardedAlloc = fjord_broker::alloc_guard::GuardedAlloc;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: not as escape codes in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: fjord-broker <server.properties>");
        std::process::exit(2);
    };
    let config = match BrokerConfig::load(&path) {
        Ok(c) => c,
        Err(e @ ConfigError::Invalid { .. }) => {
            eprintln!("fjord-broker: {e}");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("fjord-broker: {e}");
            std::process::exit(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fjord-broker: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(config)) {
        eprintln!("fjord-broker: {e:#}");
        std::process::exit(1);
    }
}

async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    // Every listener's TLS/SASL settings first: a bad key or certificate
    // stops the broker before it registers.
    let secured = match fjord_broker::security::listener::build(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fjord-broker: {e}");
            std::process::exit(2);
        }
    };
    let mut bound = Vec::new();
    for sec in &secured {
        let addr = format!("{}:{}", sec.spec.bind.host, sec.spec.bind.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (listener {})", sec.spec.name))?;
        bound.push((sec.clone(), listener, addr));
    }
    let broker = Broker::start(config).await?;
    let conns = Arc::new(ConnCounter::default());
    let mut servers = Vec::new();
    for (sec, listener, addr) in bound {
        tracing::info!(id = broker.id(), listener = %sec.spec.name, protocol = sec.spec.protocol.name(), %addr, "listening");
        servers.push(tokio::spawn(serve(
            broker.clone(),
            listener,
            sec,
            conns.clone(),
        )));
    }
    fjord_broker::security::listener::spawn_reloader(secured, broker.shutdown_signal());
    tracing::info!(id = broker.id(), "fjord-broker started");
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    // Still serving while leadership moves: clients get NOT_LEADER and follow.
    broker.controlled_shutdown().await;
    broker.begin_shutdown();
    for s in servers {
        let _ = s.await;
    }
    // Let in-flight requests finish (bounded).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while conns.get() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.finish_shutdown().await;
    tracing::info!("fjord-broker stopped");
    Ok(())
}
