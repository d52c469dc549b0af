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
    let path = std::env::args_os().nth(1).map(PathBuf::from);
    fjord_broker::logging::init(fjord_broker::logging::format_for(path.as_deref()));
    let Some(path) = path else {
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
    let result = rt.block_on(run(config));
    // Drop every task (and with them the open RocksDB) before exiting:
    // `process::exit` with its background threads still running aborts.
    rt.shutdown_timeout(std::time::Duration::from_secs(10));
    if let Err(e) = result {
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
    match fjord_broker::security::listener::inter_broker_client(&config) {
        Ok(s) => fjord_broker::config::set_inter_broker_client(s),
        Err(e) => {
            eprintln!("fjord-broker: {e}");
            std::process::exit(2);
        }
    }
    // Every port bound before the logs open: a taken port fails the start
    // before there is anything to shut down.
    let mut bound = Vec::new();
    for sec in &secured {
        let addr = format!("{}:{}", sec.spec.bind.host, sec.spec.bind.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (listener {})", sec.spec.name))?;
        bound.push((sec.clone(), listener, addr));
    }
    let metrics_listener = match &config.metrics_listen {
        Some(ep) => {
            let maddr = format!("{}:{}", ep.host, ep.port);
            Some(
                tokio::net::TcpListener::bind(&maddr)
                    .await
                    .with_context(|| format!("cannot listen on {maddr} (metrics.listeners)"))?,
            )
        }
        None => None,
    };
    let broker = Broker::start(config).await?;
    if let Some(l) = metrics_listener {
        fjord_broker::ops::start(l, broker.clone());
    }
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
    // systemd's Type=notify: listening and registered (a no-op without NOTIFY_SOCKET).
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
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
