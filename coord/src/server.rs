//! Sockets: accept (the client port, and the secure client port whose TLS
//! handshake happens here before the same handling), per-IP limits, the
//! handshake, four-letter words, and one
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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::acl::Identity;
use crate::config::Config;
use crate::core::{ConnHandle, Core, Out, Outbox};
use crate::diskguard::DiskGuard;
use crate::fourlw;
use crate::handler::{self, ConnCtx, Flow};
use crate::raft::{Ensemble, EnsembleError};
use crate::txnlog::{StorageError, TxnLog};
use fjord_proto::raft as rpb;
use fjord_zk::jute::{Reader, Record};
use fjord_zk::proto::{
    frame, op, xid, ConnectRequest, ConnectResponse, ErrorCode, GetDataResponse, ReconfigRequest,
    RequestHeader,
};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Ensemble(#[from] EnsembleError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A connection's two halves, plaintext or TLS alike.
type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// A running coordinator's shared parts.
pub struct Server {
    core: Arc<Mutex<Core>>,
    cfg: Arc<Config>,
    durable: watch::Receiver<i64>,
    /// Connection ids: replies to replicated requests are routed by
    /// (member, connection id), so ids start at random and are never
    /// reused, not even by a restarted member replaying or catching up
    /// entries its previous run proposed (their replies go nowhere).
    next_conn: AtomicU64,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Ensemble mode (`server.N` lines): writes go through Raft.
    ens: Option<Arc<Ensemble>>,
    /// Standalone: the free-space guard (`diskguard`), if on.
    disk: Option<Arc<DiskGuard>>,
}

/// Ops that change replicated state, so go through Raft in ensemble mode.
/// `sync` too: applied locally only after everything committed before it,
/// which is exactly the catch-up ZooKeeper promises.
fn replicated_op(code: i32) -> bool {
    matches!(
        code,
        op::CREATE
            | op::CREATE2
            | op::CREATE_CONTAINER
            | op::CREATE_TTL
            | op::DELETE
            | op::SET_DATA
            | op::SET_ACL
            | op::MULTI
            | op::SYNC
            | op::CLOSE_SESSION
    )
}

/// Reads that, behind a connection's pending writes, can wait in its queue
/// and run at the apply that releases them. (auth and setWatches change the
/// connection itself, so the reader waits for those instead.)
fn deferrable_op(code: i32) -> bool {
    matches!(
        code,
        op::EXISTS
            | op::GET_DATA
            | op::GET_CHILDREN
            | op::GET_CHILDREN2
            | op::GET_ACL
            | op::CHECK
            | op::MULTI_READ
            | op::PING
            | op::GET_EPHEMERALS
            | op::GET_ALL_CHILDREN_NUMBER
    )
}

fn op_of(body: &[u8]) -> Option<i32> {
    body.get(4..8)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A random first connection id in `1..2^62`: a new run's ids overlap an
/// earlier run's only with negligible odds (0 means "no connection").
fn first_conn_id() -> u64 {
    (rand::random::<u64>() >> 2).max(1)
}

/// Recovers state from disk, binds the client port and serves until `shutdown`.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let cfg = Arc::new(cfg);
    let (core, ens) = match cfg.my_id {
        None => {
            let (log, rec) = TxnLog::open(&cfg.data_dir, &cfg.data_log_dir, cfg.snap_retain_count)?;
            let dirs = [cfg.data_dir.as_path(), cfg.data_log_dir.as_path()];
            if let Some(g) = DiskGuard::new(&dirs, cfg.min_free_bytes, cfg.min_free_percent) {
                g.spawn_monitor();
                log.set_guard(g);
            }
            tracing::info!(
                zxid = format!("0x{:x}", rec.tree.last_zxid),
                nodes = rec.tree.node_count(),
                sessions = rec.tree.sessions.len(),
                replayed = rec.txns_replayed,
                "state recovered"
            );
            (
                Arc::new(Mutex::new(Core::new(cfg.clone(), rec.tree, log))),
                None,
            )
        }
        Some(my_id) => {
            let (applied_tx, applied_rx) = watch::channel(0i64);
            let core = Arc::new(Mutex::new(Core::replicated(
                cfg.clone(),
                (my_id & 0xff) as u8,
                applied_rx,
            )));
            let ens = crate::raft::start(cfg.clone(), core.clone(), applied_tx).await?;
            tracing::info!(
                member = my_id,
                members = cfg.servers.len(),
                "ensemble member started"
            );
            (core, Some(ens))
        }
    };
    let durable = core.lock().durable();
    let disk = core.lock().disk_guard().cloned();
    let listener = if cfg.security.plain_client {
        let addr = SocketAddr::new(cfg.client_port_address, cfg.client_port);
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        tracing::info!(%addr, "fjord-coord serving clients");
        Some(l)
    } else {
        None
    };
    let secure = match (cfg.security.secure_client, &cfg.security.tls) {
        (Some(addr), Some(tls)) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })?;
            let acceptor = tls.server_config().map_err(ServerError::Tls)?;
            tracing::info!(%addr, client_auth = ?tls.client_auth, "fjord-coord serving TLS clients (secureClientPort)");
            Some((l, acceptor))
        }
        _ => None,
    };
    let server = Arc::new(Server {
        core,
        cfg: cfg.clone(),
        durable,
        next_conn: AtomicU64::new(first_conn_id()),
        per_ip: Mutex::new(HashMap::new()),
        ens,
        disk,
    });
    spawn_housekeeping(&server);
    let http_stop = CancellationToken::new();
    let handles = crate::http::Handles {
        core: server.core.clone(),
        cfg: cfg.clone(),
        ens: server.ens.clone(),
    };
    if let Some(addr) = cfg.metrics_provider {
        // Asked for explicitly: a port that cannot be bound stops start-up,
        // as ZooKeeper's provider does.
        let l = crate::http::bind(addr, "Prometheus metrics (/metrics)")
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let route: crate::http::Route = std::sync::Arc::new(crate::http::prom::route);
        tokio::spawn(crate::http::serve(
            l,
            handles.clone(),
            route,
            http_stop.clone(),
        ));
    }
    if let Some(addr) = cfg.admin_server {
        // On by default (ZooKeeper's default), so a taken port only warns:
        // the coordinator itself must not fail over its admin page.
        match crate::http::bind(addr, "AdminServer (/commands)").await {
            Ok(l) => {
                let route: crate::http::Route = std::sync::Arc::new(crate::http::admin::route);
                tokio::spawn(crate::http::serve(l, handles, route, http_stop.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "AdminServer not started (admin.enableServer=false turns it off)")
            }
        }
    }
    // systemd's Type=notify: serving clients now (no-op without NOTIFY_SOCKET).
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let accept = |listener: Option<TcpListener>, tls: Option<Arc<rustls::ServerConfig>>| {
        let server = server.clone();
        async move {
            let Some(listener) = listener else {
                return std::future::pending::<()>().await;
            };
            loop {
                match listener.accept().await {
                    Ok((sock, peer)) => server.clone().admit(sock, peer, tls.clone()),
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    };
    let (secure_listener, acceptor) = secure.unzip();
    let accept =
        futures_util::future::join(accept(listener, None), accept(secure_listener, acceptor));
    tokio::select! {
        _ = accept => {}
        _ = shutdown => tracing::info!("shutting down"),
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    http_stop.cancel();
    if let Some(ens) = &server.ens {
        let _ = ens.raft.shutdown().await;
    }
    Ok(())
}

fn spawn_housekeeping(server: &Arc<Server>) {
    let tick = Duration::from_millis((server.cfg.tick_time_ms / 2).clamp(10, 1000));
    if let Some(ens) = server.ens.clone() {
        // Only the leader judges liveness; expiry and reaping are proposed
        // so every member deletes the same nodes at the same zxid.
        let core = server.core.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(tick);
            let mut n = 0u64;
            loop {
                iv.tick().await;
                n += 1;
                if !ens.owns_expiry() {
                    continue;
                }
                let (expired, reap) = {
                    let mut core = core.lock();
                    let reap = if n.is_multiple_of((2000 / tick.as_millis().max(1) as u64).max(1)) {
                        core.reap_candidates()
                    } else {
                        Vec::new()
                    };
                    (core.take_expired(), reap)
                };
                let now = crate::core::now_ms();
                for id in expired {
                    ens.propose(rpb::Command {
                        origin: ens.my_id,
                        session_id: id,
                        time_ms: now,
                        kind: Some(rpb::command::Kind::Expire(id)),
                        ..Default::default()
                    });
                }
                for path in reap {
                    ens.propose(rpb::Command {
                        origin: ens.my_id,
                        time_ms: now,
                        kind: Some(rpb::command::Kind::Reap(path)),
                        ..Default::default()
                    });
                }
            }
        });
        return;
    }
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
    fn admit(
        self: Arc<Self>,
        sock: TcpStream,
        peer: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) {
        let ip = peer.ip();
        {
            let mut per_ip = self.per_ip.lock();
            if self.cfg.max_cnxns > 0 && per_ip.values().sum::<usize>() >= self.cfg.max_cnxns {
                tracing::warn!(%ip, limit = self.cfg.max_cnxns, "too many connections (maxCnxns); refusing");
                return;
            }
            let n = per_ip.entry(ip).or_insert(0);
            if self.cfg.max_client_cnxns > 0 && *n >= self.cfg.max_client_cnxns {
                tracing::warn!(%ip, limit = self.cfg.max_client_cnxns, "too many connections from one IP (maxClientCnxns); refusing");
                return;
            }
            *n += 1;
        }
        let _ = sock.set_nodelay(true);
        tokio::spawn(async move {
            let res = match tls {
                None => {
                    let (rd, wr) = sock.into_split();
                    self.clone()
                        .serve(Box::new(rd), Box::new(wr), peer, None, false)
                        .await
                }
                Some(cfg) => match Self::tls_accept(sock, peer, cfg).await {
                    Some((rd, wr, x509)) => self.clone().serve(rd, wr, peer, x509, true).await,
                    None => Ok(()),
                },
            };
            if let Err(e) = res {
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

    /// The TLS handshake of a secure-port connection, bounded in time; a
    /// failure (a plaintext client, an untrusted or missing certificate, a
    /// truncated handshake) is logged once with the address and closes it.
    /// Returns the halves and the client certificate's x509 id.
    async fn tls_accept(
        sock: TcpStream,
        peer: SocketAddr,
        cfg: Arc<rustls::ServerConfig>,
    ) -> Option<(ReadHalf, WriteHalf, Option<String>)> {
        let hs = tokio_rustls::TlsAcceptor::from(cfg).accept(sock);
        let stream = match tokio::time::timeout(TLS_HANDSHAKE_LIMIT, hs).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::info!(%peer, error = %e, "TLS handshake failed on the secure client port; closed");
                return None;
            }
            Err(_) => {
                tracing::info!(%peer, "TLS handshake timed out on the secure client port; closed");
                return None;
            }
        };
        let x509 = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| crate::tls::x509_id(c));
        let (rd, wr) = tokio::io::split(stream);
        Some((Box::new(rd), Box::new(wr), x509))
    }

    /// One client connection: a four-letter word, or the handshake, then
    /// requests until either side closes. What happens to a request is the
    /// connection's [`Route`]; the loop around it is the same for all.
    async fn serve(
        self: Arc<Self>,
        mut rd: ReadHalf,
        wr: WriteHalf,
        peer: SocketAddr,
        x509: Option<String>,
        secure: bool,
    ) -> std::io::Result<()> {
        let mut first = [0u8; 4];
        rd.read_exact(&mut first).await?;
        if !secure && first[0] == 0x16 && first[1] == 0x03 {
            // A TLS ClientHello is no ZooKeeper frame: say so once.
            tracing::info!(%peer, "TLS handshake on the plaintext client port (use secureClientPort); closed");
            return Ok(());
        }
        if let Some(cmd) = fourlw::command(&first) {
            let quorum = self.ens.as_ref().map(|e| e.quorum_view());
            let text = fourlw::answer(&self.core, cmd, &self.cfg, quorum.as_ref());
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
        let connect = match frames.next().await {
            None => return Ok(()),
            Some(Ok(c)) => c,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                // Not a ZooKeeper client (a frame over jute.maxbuffer).
                tracing::info!(%peer, error = %e, "malformed handshake; closed");
                return Ok(());
            }
            Some(Err(e)) => return Err(e),
        };
        let req = match ConnectRequest::read(&mut Reader::new(connect.freeze())) {
            Ok(r) => r,
            Err(e) => {
                // E.g. a sasl packet sent before the ConnectRequest.
                tracing::info!(%peer, error = %e, "malformed handshake (no ConnectRequest); closed");
                return Ok(());
            }
        };

        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = Outbox::new();
        let closed = CancellationToken::new();
        let mut identity = Identity::new(&peer.ip().to_string());
        // skipACL: every client passes every check, as the super user does.
        identity.is_super = self.cfg.skip_acl;
        if let Some(id) = &x509 {
            // ZooKeeper's X509AuthenticationProvider: the verified
            // certificate's subject is this connection's x509 id.
            let is_super = self.cfg.security.x509_super_user.as_deref() == Some(id.as_str());
            identity.add_id("x509", id, is_super);
        }
        let mut ctx = ConnCtx {
            id,
            session: 0,
            identity,
            tx: tx.clone(),
            arrived: None,
            sasl: None,
        };
        let conn_stats = Arc::new(crate::core::Stats::default());
        conn_stats.packets_received.fetch_add(1, Ordering::Relaxed);
        let (applied_tx, applied_rx) = watch::channel(0u64);
        let (admission, mut route) = match &self.ens {
            Some(ens) if !ens.serving() => {
                if !(ens.read_only() && req.read_only) {
                    tracing::debug!(%peer, "refusing a client: this member has no quorum");
                    return Ok(());
                }
                (
                    self.handshake_read_only(&mut ctx, &req, peer, &conn_stats),
                    Route::ReadOnly(ens.serving_watch()),
                )
            }
            Some(ens) => {
                let mut raft = RaftConn {
                    ens: ens.clone(),
                    submitted: 0,
                    applied: applied_rx,
                    reconfig: None,
                };
                let admission = if req.session_id == 0 {
                    self.handshake_new_session(
                        &mut ctx,
                        &req,
                        peer,
                        &conn_stats,
                        applied_tx,
                        &mut raft,
                    )
                } else {
                    self.handshake(&mut ctx, &req, peer, &conn_stats, Some(applied_tx))
                };
                (admission, Route::Raft(raft))
            }
            None => (
                self.handshake(&mut ctx, &req, peer, &conn_stats, Some(applied_tx)),
                Route::Local,
            ),
        };
        let stats = match admission {
            Admission::Refused => return Ok(()),
            Admission::Expired => {
                // Only the ConnectResponse (and the close) are left to send.
                let stats = [Arc::new(Default::default()), conn_stats];
                writer(wr, rx, tx, self.durable.clone(), closed, stats).await;
                return Ok(());
            }
            Admission::Admitted(stats) => stats,
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
                _ = quorum_back(&mut route) => {
                    tracing::info!(%peer, "quorum is back; closing a read-only client");
                    break Ok(());
                }
            };
            let body = match next {
                None => break Ok(()),
                Some(Err(e)) => break Err(e),
                Some(Ok(b)) => b.freeze(),
            };
            conn_stats.packets_received.fetch_add(1, Ordering::Relaxed);
            ctx.arrived = Some(crate::core::Arrival {
                at: std::time::Instant::now(),
                update: op_of(&body).is_some_and(replicated_op),
            });
            let routed = match &mut route {
                Route::Local if self.disk.as_ref().is_some_and(|g| g.refusing()) => {
                    self.refuse_low_disk(&ctx, body)
                }
                Route::Local => Routed::Here(body),
                Route::Raft(raft) => self.route_raft(raft, &ctx, body, &closed, peer).await,
                Route::ReadOnly(_) => self.refuse_write(&ctx, body),
            };
            match routed {
                Routed::Here(body) => {
                    if !self.handle_one(&mut ctx, body, peer) {
                        break Ok(());
                    }
                }
                Routed::Done => {}
                Routed::Close => break Ok(()),
            }
        };
        self.detach(id, &ctx, &tx);
        result
    }

    /// The handshake through the handler (standalone, or a session resumed
    /// on an ensemble member): a new or resumed session, or the refusal the
    /// handler wrote (the connection then closes once it is sent).
    fn handshake(
        &self,
        ctx: &mut ConnCtx,
        req: &ConnectRequest,
        peer: SocketAddr,
        conn_stats: &Arc<crate::core::Stats>,
        applied: Option<watch::Sender<u64>>,
    ) -> Admission {
        let mut core = self.core.lock();
        core.count_received();
        let Some((bytes, tag, ok)) = handler::connect(&mut core, ctx, req) else {
            return Admission::Refused;
        };
        ctx.tx.frame(tag, bytes, None);
        if !ok {
            ctx.tx.close(tag);
        } else {
            let timeout_ms = core
                .tree()
                .sessions
                .get(&ctx.session)
                .map_or(0, |s| s.timeout_ms);
            let last_zxid = core.last_zxid();
            core.conns_mut().insert(
                ctx.id,
                conn_handle(ctx, peer, conn_stats, timeout_ms, last_zxid, applied),
            );
        }
        Admission::Admitted(core.stats().clone())
    }

    /// A new session on an ensemble member is a Raft entry; the
    /// ConnectResponse is sent when it is applied here (see raft::sm).
    fn handshake_new_session(
        &self,
        ctx: &mut ConnCtx,
        req: &ConnectRequest,
        peer: SocketAddr,
        conn_stats: &Arc<crate::core::Stats>,
        applied: watch::Sender<u64>,
        raft: &mut RaftConn,
    ) -> Admission {
        let mut core = self.core.lock();
        core.count_received();
        if req.last_zxid_seen > core.last_zxid() {
            tracing::info!(
                client_zxid = req.last_zxid_seen,
                our_zxid = core.last_zxid(),
                "refusing a client that has seen a newer zxid"
            );
            return Admission::Refused;
        }
        let timeout = req.timeout.clamp(
            core.cfg().min_session_timeout_ms,
            core.cfg().max_session_timeout_ms,
        );
        let session = core.sessions_mut().next_id();
        let password: [u8; 16] = rand::random();
        ctx.session = session;
        let last_zxid = core.last_zxid();
        core.conns_mut().insert(
            ctx.id,
            conn_handle(ctx, peer, conn_stats, timeout, last_zxid, Some(applied)),
        );
        let ens = &raft.ens;
        ens.propose(rpb::Command {
            origin: ens.my_id,
            conn: ctx.id,
            session_id: session,
            time_ms: crate::core::now_ms(),
            kind: Some(rpb::command::Kind::NewSession(
                fjord_proto::coord::Session {
                    session_id: session,
                    timeout_ms: timeout,
                    password: bytes::Bytes::copy_from_slice(&password),
                },
            )),
        });
        raft.submitted = 1;
        Admission::Admitted(core.stats().clone())
    }

    /// A read-only client (`readOnly` in its ConnectRequest) while this
    /// member is cut off from the quorum with `readonlymode.enabled`, as
    /// ZooKeeper's ReadOnlyZooKeeperServer: a local session (or the
    /// client's own, resumed), reads from the local tree, writes answered
    /// ZNOTREADONLY. When the quorum is back the connection is closed so
    /// the client reconnects to a read-write member.
    fn handshake_read_only(
        &self,
        ctx: &mut ConnCtx,
        req: &ConnectRequest,
        peer: SocketAddr,
        conn_stats: &Arc<crate::core::Stats>,
    ) -> Admission {
        let mut core = self.core.lock();
        core.count_received();
        let last = core.last_zxid();
        let timeout = req.timeout.clamp(
            core.cfg().min_session_timeout_ms,
            core.cfg().max_session_timeout_ms,
        );
        let session = if req.session_id == 0 {
            let password: [u8; 16] = rand::random();
            Some((
                core.sessions_mut().next_id(),
                bytes::Bytes::copy_from_slice(&password),
                timeout,
            ))
        } else {
            core.tree()
                .sessions
                .get(&req.session_id)
                .filter(|s| s.password == req.passwd)
                .map(|s| (req.session_id, s.password.clone(), s.timeout_ms))
        };
        let resp = match &session {
            Some((sid, passwd, timeout)) => ConnectResponse {
                protocol_version: 0,
                timeout: *timeout,
                session_id: *sid,
                passwd: passwd.clone(),
                read_only: true,
            },
            None => ConnectResponse {
                protocol_version: 0,
                timeout: 0,
                session_id: 0,
                passwd: bytes::Bytes::from_static(&[0; 16]),
                read_only: true,
            },
        };
        let mut b = BytesMut::with_capacity(64);
        frame(&mut b, |w| resp.write(w));
        ctx.tx.frame(last, b.freeze(), None);
        let Some((sid, _, timeout_ms)) = session else {
            // Unknown or expired session: the client sees Expired.
            ctx.tx.close(last);
            return Admission::Expired;
        };
        ctx.session = sid;
        tracing::info!(%peer, session = format!("0x{sid:x}"), "read-only client connected");
        core.conns_mut().insert(
            ctx.id,
            conn_handle(ctx, peer, conn_stats, timeout_ms, last, None),
        );
        Admission::Admitted(core.stats().clone())
    }

    /// Ensemble mode: a write (or sync) is proposed to Raft and answered when
    /// applied here; a read waits behind this connection's own pending
    /// writes; a reconfig runs on its own task and holds back later requests.
    async fn route_raft(
        self: &Arc<Self>,
        raft: &mut RaftConn,
        ctx: &ConnCtx,
        body: bytes::Bytes,
        closed: &CancellationToken,
        peer: SocketAddr,
    ) -> Routed {
        let code = op_of(&body);
        if let Some(task) = raft.reconfig.as_mut() {
            if code == Some(op::PING) && !task.is_finished() {
                // Clients match ping replies by their special xid, so
                // one may pass a reconfig still waiting for a joiner
                // to catch up (else the client would time out).
                let core = self.core.lock();
                core.count_received();
                let last = core.last_zxid();
                ctx.send(last, xid::PING, last, ErrorCode::Ok, |_| {});
                return Routed::Done;
            }
            let ok = tokio::select! {
                r = task => matches!(r, Ok(Ok(()))),
                _ = closed.cancelled() => false,
            };
            raft.reconfig = None;
            if !ok {
                tracing::info!(%peer, "malformed reconfig; closing the connection");
                return Routed::Close;
            }
        }
        let ens = &raft.ens;
        if code.is_some_and(replicated_op) {
            {
                let mut core = self.core.lock();
                core.count_received();
                core.sessions_mut().touch(ctx.session);
                if let (Some(c), Some(a)) = (core.conns_mut().get_mut(&ctx.id), ctx.arrived) {
                    c.writes_in_flight.push_back(a.at);
                }
            }
            ens.propose(rpb::Command {
                origin: ens.my_id,
                conn: ctx.id,
                session_id: ctx.session,
                time_ms: crate::core::now_ms(),
                kind: Some(rpb::command::Kind::Request(rpb::Request {
                    frame: body,
                    ids: ctx
                        .identity
                        .ids
                        .iter()
                        .map(|i| rpb::AuthId {
                            scheme: i.scheme.clone(),
                            id: i.id.clone(),
                        })
                        .collect(),
                    is_super: ctx.identity.is_super,
                })),
            });
            raft.submitted += 1;
            return Routed::Done;
        }
        let submitted = raft.submitted;
        if code.is_some_and(deferrable_op) {
            // Behind this connection's own pending writes: run it when
            // they are applied (raft::sm), in order, without stopping
            // this reader (later writes keep flowing to the leader).
            let mut core = self.core.lock();
            if *raft.applied.borrow() < submitted {
                core.count_received();
                if let Some(c) = core.conns_mut().get_mut(&ctx.id) {
                    c.deferred.push_back((submitted, body, ctx.arrived));
                }
                return Routed::Done;
            }
        }
        if *raft.applied.borrow() < submitted {
            let caught_up = tokio::select! {
                r = raft.applied.wait_for(|n| *n >= submitted) => r.is_ok(),
                _ = closed.cancelled() => false,
            };
            if !caught_up {
                return Routed::Close;
            }
        }
        if code == Some(op::RECONFIG) {
            // Answered once the new membership is committed; later
            // requests of this connection wait for it (but pings).
            let (server, ens) = (self.clone(), ens.clone());
            let (identity, tx) = (ctx.identity.clone(), ctx.tx.clone());
            raft.reconfig = Some(tokio::spawn(async move {
                server.reconfig(&ens, identity, tx, body).await
            }));
            return Routed::Done;
        }
        Routed::Here(body)
    }

    /// Below the free-space floor (`diskguard`): client writes are answered
    /// ZSYSTEMERROR (-1) without being applied: every client version knows
    /// the code, reports it as a failed call (kazoo SystemZookeeperError,
    /// Java SystemErrorException; Curator and kazoo do not retry it) and
    /// keeps the session. Pings, reads, sync and closeSession go through.
    fn refuse_low_disk(&self, ctx: &ConnCtx, body: bytes::Bytes) -> Routed {
        let code = op_of(&body);
        let write = code.is_some_and(|c| {
            (replicated_op(c) && c != op::SYNC && c != op::CLOSE_SESSION) || c == op::RECONFIG
        });
        if !write {
            return Routed::Here(body);
        }
        let xid = body
            .get(..4)
            .map_or(0, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let last = self.core.lock().last_zxid();
        ctx.send(last, xid, last, ErrorCode::SystemError, |_| {});
        Routed::Done
    }

    /// Read-only member: writes are answered ZNOTREADONLY; closeSession
    /// ends the (local) session and the connection.
    fn refuse_write(&self, ctx: &ConnCtx, body: bytes::Bytes) -> Routed {
        let code = op_of(&body);
        if !code.is_some_and(|c| replicated_op(c) || c == op::RECONFIG) {
            return Routed::Here(body);
        }
        let xid = body
            .get(..4)
            .map_or(0, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let core = self.core.lock();
        let last = core.last_zxid();
        if code == Some(op::CLOSE_SESSION) {
            // A local session: nothing to replicate.
            ctx.send(last, xid, last, ErrorCode::Ok, |_| {});
            ctx.tx.close(last);
            return Routed::Close;
        }
        ctx.send(last, xid, last, ErrorCode::NotReadOnly, |_| {});
        Routed::Done
    }
}

impl Server {
    /// `reconfig` in ensemble mode: the checks ZooKeeper makes
    /// (reconfigEnabled, WRITE on /zookeeper/config, which only the super
    /// user has by default), then the leader runs it; the reply is
    /// /zookeeper/config's data and stat once applied here.
    async fn reconfig(
        &self,
        ens: &Arc<Ensemble>,
        identity: Identity,
        tx: Outbox,
        body: bytes::Bytes,
    ) -> Result<(), fjord_zk::jute::JuteError> {
        let ctx = ConnCtx {
            id: 0,
            session: 0,
            identity,
            tx,
            arrived: Some(crate::core::Arrival {
                at: std::time::Instant::now(),
                update: true,
            }),
            sasl: None,
        };
        let mut r = Reader::new(body);
        let h = RequestHeader::read(&mut r)?;
        let req = ReconfigRequest::read(&mut r)?;
        let refused = {
            let core = self.core.lock();
            let allowed = core
                .tree()
                .get(crate::raft::CONFIG_NODE)
                .is_some_and(|n| ctx.identity.allowed(&n.acl, fjord_zk::proto::perms::WRITE));
            if !core.cfg().reconfig_enabled {
                Some(ErrorCode::ReconfigDisabled)
            } else if !allowed {
                Some(ErrorCode::NoAuth)
            } else {
                None
            }
        };
        let result = match refused {
            Some(e) => Err(e),
            None => {
                ens.reconfig(rpb::ReconfigReq {
                    joining: req.joining_servers,
                    leaving: req.leaving_servers,
                    new_members: req.new_members,
                    from_config: req.cur_config_id,
                })
                .await
            }
        };
        if let Ok(index) = result {
            let mut applied = self.durable.clone();
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                applied.wait_for(|z| *z >= crate::raft::zxid_base(index)),
            )
            .await;
        }
        let core = self.core.lock();
        let last = core.last_zxid();
        match result {
            Ok(_) => {
                let (data, stat) = core
                    .tree()
                    .get(crate::raft::CONFIG_NODE)
                    .map(|n| (n.data.clone(), n.stat()))
                    .unwrap_or_default();
                ctx.send(last, h.xid, last, ErrorCode::Ok, |w| {
                    GetDataResponse { data, stat }.write(w)
                });
            }
            Err(e) => ctx.send(last, h.xid, last, e, |_| {}),
        }
        Ok(())
    }
}

impl Server {
    /// One request through the handler under the state lock; false when the
    /// connection must close (closeSession, or a malformed request).
    fn handle_one(&self, ctx: &mut ConnCtx, body: bytes::Bytes, peer: SocketAddr) -> bool {
        let flow = {
            let mut core = self.core.lock();
            core.count_received();
            handler::handle(&mut core, ctx, body)
        };
        match flow {
            Ok(Flow::Continue) => true,
            Ok(Flow::Close) => false,
            Err(e) => {
                tracing::info!(%peer, error = %e, "malformed request; closing the connection");
                false
            }
        }
    }

    /// A connection ended: forget it, its watches and its attachment to the
    /// session (which lives on until it expires or is closed).
    fn detach(&self, id: u64, ctx: &ConnCtx, tx: &Outbox) {
        let mut core = self.core.lock();
        core.conns_mut().remove(&id);
        core.watches_mut().remove_conn(id);
        core.sessions_mut().detach(ctx.session, id);
        let last = core.last_zxid();
        tx.close(last);
    }
}

/// How a connection's requests are served: by the handler here
/// (standalone), through Raft (ensemble member with a quorum), or with
/// writes refused (read-only member cut off from the quorum).
enum Route {
    Local,
    Raft(RaftConn),
    ReadOnly(watch::Receiver<bool>),
}

/// A connection's ensemble bookkeeping.
struct RaftConn {
    ens: Arc<Ensemble>,
    /// Replicated commands this connection sent; its reads wait until
    /// that many were applied here (a client's ops stay in order).
    submitted: u64,
    /// How many of them were applied here.
    applied: watch::Receiver<u64>,
    /// A reconfig this connection is waiting for.
    reconfig: Option<tokio::task::JoinHandle<Result<(), fjord_zk::jute::JuteError>>>,
}

/// What routing made of one request.
enum Routed {
    /// Run it through the handler here.
    Here(bytes::Bytes),
    /// Answered or queued already.
    Done,
    /// Close the connection.
    Close,
}

/// How a handshake ended.
enum Admission {
    /// Nothing was answered: drop the connection.
    Refused,
    /// Only the answer (session expired) and the close are left to send.
    Expired,
    /// Serving requests; the member's counters the writer updates.
    Admitted(Arc<crate::core::Stats>),
}

/// Resolves when a read-only connection must end because the quorum is
/// back; never for any other route.
async fn quorum_back(route: &mut Route) {
    match route {
        Route::ReadOnly(serving) => {
            let _ = serving.wait_for(|s| *s).await;
        }
        _ => std::future::pending().await,
    }
}

/// The registry entry of a connection whose session is settled (`ctx.session`):
/// what `cons`/`stat` show and what the apply path needs to reach it.
fn conn_handle(
    ctx: &ConnCtx,
    peer: SocketAddr,
    stats: &Arc<crate::core::Stats>,
    timeout_ms: i32,
    last_zxid: i64,
    applied: Option<watch::Sender<u64>>,
) -> ConnHandle {
    ConnHandle {
        tx: ctx.tx.clone(),
        addr: peer,
        session: ctx.session,
        stats: stats.clone(),
        established_ms: crate::core::now_ms(),
        timeout_ms,
        last_op: "NA",
        last_cxid: 0,
        last_zxid,
        identity: ctx.identity.clone(),
        applied,
        deferred: Default::default(),
        writes_in_flight: Default::default(),
    }
}

/// Write and flush: a TLS stream may hold the last ciphertext of a write
/// while the socket is full, and only a flush pushes it out before the
/// connection's next response.
async fn send(wr: &mut WriteHalf, buf: &[u8]) -> std::io::Result<()> {
    wr.write_all(buf).await?;
    wr.flush().await
}

async fn writer(
    mut wr: WriteHalf,
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
                if !buf.is_empty() && send(&mut wr, &buf).await.is_err() {
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
                    let us = arrived.map(|a| a.at.elapsed().as_micros() as u64);
                    if let (Some(a), Some(us)) = (arrived, us) {
                        let t = &crate::timings::TIMINGS;
                        let summary = if a.update {
                            &t.updatelatency
                        } else {
                            &t.readlatency
                        };
                        summary.observe(us as f64 / 1000.0);
                    }
                    for s in &stats {
                        s.packets_sent.fetch_add(1, Ordering::Relaxed);
                        // Without the 4-byte length prefix, as ZooKeeper counts it.
                        s.record_response_size(b.len().saturating_sub(4));
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
                if send(&mut wr, &buf).await.is_err() {
                    break 'outer;
                }
                outbox.written(buf.len());
                buf.clear();
            }
            next = rx.try_recv().ok();
        }
        if !buf.is_empty() {
            if send(&mut wr, &buf).await.is_err() {
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
