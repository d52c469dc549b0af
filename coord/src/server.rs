//! Sockets: accept, per-IP limits, the handshake, four-letter words, and one
//! reader and one writer task per connection. The reader decodes frames and
//! hands each to the handler under the state lock; the writer sends queued
//! replies in order, each once the log has made its zxid durable.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::acl::Identity;
use crate::config::Config;
use crate::core::{ConnHandle, Core, Out, Outbox};
use crate::fourlw;
use crate::handler::{self, ConnCtx, Flow};
use crate::jute::{Reader, Record};
use crate::proto::ConnectRequest;
use crate::txnlog::{StorageError, TxnLog};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running coordinator's shared parts.
pub struct Server {
    core: Arc<Mutex<Core>>,
    cfg: Arc<Config>,
    durable: watch::Receiver<i64>,
    next_conn: AtomicU64,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Recovers state from disk, binds the client port and serves until `shutdown`.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let cfg = Arc::new(cfg);
    let (log, rec) = TxnLog::open(&cfg.data_dir, &cfg.data_log_dir, cfg.snap_retain_count)?;
    tracing::info!(
        zxid = format!("0x{:x}", rec.tree.last_zxid),
        nodes = rec.tree.node_count(),
        sessions = rec.tree.sessions.len(),
        replayed = rec.txns_replayed,
        "state recovered"
    );
    let durable = log.durable();
    let core = Core::new(cfg.clone(), rec.tree, log);
    let addr = SocketAddr::new(cfg.client_port_address, cfg.client_port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    tracing::info!(%addr, "fjord-coord serving clients");
    let server = Arc::new(Server {
        core: Arc::new(Mutex::new(core)),
        cfg: cfg.clone(),
        durable,
        next_conn: AtomicU64::new(1),
        per_ip: Mutex::new(HashMap::new()),
    });
    spawn_housekeeping(&server);
    let accept = {
        let server = server.clone();
        async move {
            loop {
                match listener.accept().await {
                    Ok((sock, peer)) => server.clone().admit(sock, peer),
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = accept => {}
        _ = shutdown => tracing::info!("shutting down"),
    }
    Ok(())
}

fn spawn_housekeeping(server: &Arc<Server>) {
    let tick = Duration::from_millis((server.cfg.tick_time_ms / 2).clamp(10, 1000));
    let core = server.core.clone();
    tokio::spawn(async move {
        let mut iv = tokio::time::interval(tick);
        loop {
            iv.tick().await;
            core.lock().expire_sessions();
        }
    });
    let core = server.core.clone();
    tokio::spawn(async move {
        let mut iv = tokio::time::interval(Duration::from_secs(2));
        loop {
            iv.tick().await;
            core.lock().reap_special();
        }
    });
}

impl Server {
    fn admit(self: Arc<Self>, sock: TcpStream, peer: SocketAddr) {
        let ip = peer.ip();
        {
            let mut per_ip = self.per_ip.lock();
            let n = per_ip.entry(ip).or_insert(0);
            if self.cfg.max_client_cnxns > 0 && *n >= self.cfg.max_client_cnxns {
                tracing::warn!(%ip, limit = self.cfg.max_client_cnxns, "too many connections from one IP (maxClientCnxns); refusing");
                return;
            }
            *n += 1;
        }
        let _ = sock.set_nodelay(true);
        tokio::spawn(async move {
            if let Err(e) = self.clone().serve(sock, peer).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            let mut per_ip = self.per_ip.lock();
            if let Some(n) = per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&ip);
                }
            }
        });
    }

    async fn serve(self: Arc<Self>, sock: TcpStream, peer: SocketAddr) -> std::io::Result<()> {
        let (mut rd, wr) = sock.into_split();
        let mut first = [0u8; 4];
        rd.read_exact(&mut first).await?;
        if let Some(cmd) = fourlw::command(&first) {
            let text = fourlw::answer(&self.core, cmd, &self.cfg);
            let mut wr = wr;
            wr.write_all(text.as_bytes()).await?;
            return wr.shutdown().await;
        }
        let codec = LengthDelimitedCodec::builder()
            .length_field_length(4)
            .max_frame_length(self.cfg.jute_max_buffer)
            .new_codec();
        let mut frames =
            FramedRead::with_capacity(std::io::Cursor::new(first).chain(rd), codec, 16 * 1024);
        let Some(connect) = frames.next().await.transpose()? else {
            return Ok(());
        };
        let req = ConnectRequest::read(&mut Reader::new(connect.freeze()))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;

        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = Outbox::new();
        let closed = CancellationToken::new();
        let mut ctx = ConnCtx {
            id,
            session: 0,
            identity: Identity::new(&peer.ip().to_string()),
            tx: tx.clone(),
            arrived: None,
        };
        let conn_stats = Arc::new(crate::core::Stats::default());
        conn_stats.packets_received.fetch_add(1, Ordering::Relaxed);
        let stats = {
            let mut core = self.core.lock();
            core.stats.packets_received.fetch_add(1, Ordering::Relaxed);
            let Some((bytes, tag, ok)) = handler::connect(&mut core, &mut ctx, &req) else {
                return Ok(());
            };
            tx.frame(tag, bytes, None);
            if !ok {
                tx.close(tag);
            } else {
                let timeout_ms = core
                    .tree
                    .sessions
                    .get(&ctx.session)
                    .map_or(0, |s| s.timeout_ms);
                let last_zxid = core.tree.last_zxid;
                core.conns.insert(
                    id,
                    ConnHandle {
                        tx: tx.clone(),
                        addr: peer,
                        session: ctx.session,
                        stats: conn_stats.clone(),
                        established_ms: crate::core::now_ms(),
                        timeout_ms,
                        last_op: "NA",
                        last_cxid: 0,
                        last_zxid,
                        identity: ctx.identity.clone(),
                    },
                );
            }
            core.stats.clone()
        };
        tokio::spawn(writer(
            wr,
            rx,
            tx.clone(),
            self.durable.clone(),
            closed.clone(),
            [stats, conn_stats.clone()],
        ));

        let result = loop {
            tokio::select! {
                _ = tx.wait_room() => {}
                _ = closed.cancelled() => break Ok(()),
            }
            let next = tokio::select! {
                f = frames.next() => f,
                _ = closed.cancelled() => break Ok(()),
            };
            let body = match next {
                None => break Ok(()),
                Some(Err(e)) => break Err(e),
                Some(Ok(b)) => b.freeze(),
            };
            conn_stats.packets_received.fetch_add(1, Ordering::Relaxed);
            ctx.arrived = Some(std::time::Instant::now());
            let flow = {
                let mut core = self.core.lock();
                core.stats.packets_received.fetch_add(1, Ordering::Relaxed);
                handler::handle(&mut core, &mut ctx, body)
            };
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Close) => break Ok(()),
                Err(e) => {
                    tracing::info!(%peer, error = %e, "malformed request; closing the connection");
                    break Ok(());
                }
            }
        };
        {
            let mut core = self.core.lock();
            core.conns.remove(&id);
            core.watches.remove_conn(id);
            core.sessions.detach(ctx.session, id);
            let last = core.tree.last_zxid;
            tx.close(last);
        }
        result
    }
}

async fn writer(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
    outbox: Outbox,
    mut durable: watch::Receiver<i64>,
    closed: CancellationToken,
    stats: [Arc<crate::core::Stats>; 2],
) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    'outer: while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut close = false;
        while let Some(item) = next.take() {
            let (tag, bytes, arrived) = match item {
                Out::Frame(t, b, a) => (t, Some(b), a),
                Out::Close(t) => (t, None, None),
            };
            if *durable.borrow() < tag {
                if !buf.is_empty() && wr.write_all(&buf).await.is_err() {
                    break 'outer;
                }
                outbox.written(buf.len());
                buf.clear();
                if durable.wait_for(|d| *d >= tag).await.is_err() {
                    break 'outer;
                }
            }
            match bytes {
                Some(b) => {
                    buf.extend_from_slice(&b);
                    let us = arrived.map(|t| t.elapsed().as_micros() as u64);
                    for s in &stats {
                        s.packets_sent.fetch_add(1, Ordering::Relaxed);
                        if let Some(us) = us {
                            s.record_latency(us);
                        }
                    }
                }
                None => {
                    close = true;
                    break;
                }
            }
            if buf.len() >= 64 * 1024 {
                if wr.write_all(&buf).await.is_err() {
                    break 'outer;
                }
                outbox.written(buf.len());
                buf.clear();
            }
            next = rx.try_recv().ok();
        }
        if !buf.is_empty() {
            if wr.write_all(&buf).await.is_err() {
                break;
            }
            outbox.written(buf.len());
            buf.clear();
        }
        if close {
            break;
        }
    }
    let _ = wr.shutdown().await;
    closed.cancel();
}
