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
use crate::proto::{
    frame, op, ConnectRequest, ConnectResponse, ErrorCode, GetDataResponse, ReconfigRequest,
    RequestHeader,
};
use crate::raft::{Ensemble, EnsembleError};
use crate::txnlog::{StorageError, TxnLog};
use fjord_proto::raft as rpb;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Ensemble(#[from] EnsembleError),
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
    /// Ensemble mode (`server.N` lines): writes go through Raft.
    ens: Option<Arc<Ensemble>>,
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

/// Recovers state from disk, binds the client port and serves until `shutdown`.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let cfg = Arc::new(cfg);
    let (core, ens) = match cfg.my_id {
        None => {
            let (log, rec) = TxnLog::open(&cfg.data_dir, &cfg.data_log_dir, cfg.snap_retain_count)?;
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
            let ens = Ensemble::start(cfg.clone(), core.clone(), applied_tx).await?;
            tracing::info!(
                member = my_id,
                members = cfg.servers.len(),
                "ensemble member started"
            );
            (core, Some(ens))
        }
    };
    let durable = core.lock().durable();
    let addr = SocketAddr::new(cfg.client_port_address, cfg.client_port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    tracing::info!(%addr, "fjord-coord serving clients");
    let server = Arc::new(Server {
        core,
        cfg: cfg.clone(),
        durable,
        next_conn: AtomicU64::new(1),
        per_ip: Mutex::new(HashMap::new()),
        ens,
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
                if !ens.is_leader() {
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
        let (applied_tx, mut applied_rx) = watch::channel(0u64);
        let mut applied_tx = Some(applied_tx);
        // Replicated commands this connection sent; its reads wait until
        // that many were applied here (a client's ops stay in order).
        let mut submitted = 0u64;
        let stats = if let (Some(ens), 0) = (&self.ens, req.session_id) {
            // Ensemble: a new session is a Raft entry; the ConnectResponse
            // is sent when it is applied here (see raft::sm).
            if !ens.serving() {
                if ens.read_only() && req.read_only {
                    return self
                        .clone()
                        .serve_read_only(ens.clone(), frames, wr, req, peer)
                        .await;
                }
                tracing::debug!(%peer, "refusing a client: this member has no quorum");
                return Ok(());
            }
            let mut core = self.core.lock();
            core.stats.packets_received.fetch_add(1, Ordering::Relaxed);
            if req.last_zxid_seen > core.tree.last_zxid {
                tracing::info!(
                    client_zxid = req.last_zxid_seen,
                    our_zxid = core.tree.last_zxid,
                    "refusing a client that has seen a newer zxid"
                );
                return Ok(());
            }
            let timeout = req.timeout.clamp(
                core.cfg.min_session_timeout_ms,
                core.cfg.max_session_timeout_ms,
            );
            let session = core.sessions.next_id();
            let password: [u8; 16] = rand::random();
            ctx.session = session;
            let last_zxid = core.tree.last_zxid;
            core.conns.insert(
                id,
                conn_handle(
                    &ctx,
                    peer,
                    &conn_stats,
                    timeout,
                    last_zxid,
                    applied_tx.take(),
                ),
            );
            ens.propose(rpb::Command {
                origin: ens.my_id,
                conn: id,
                session_id: session,
                time_ms: crate::core::now_ms(),
                kind: Some(rpb::command::Kind::NewSession(rpb::NewSession {
                    session_id: session,
                    timeout_ms: timeout,
                    password: bytes::Bytes::copy_from_slice(&password),
                })),
            });
            submitted = 1;
            core.stats.clone()
        } else {
            if let Some(ens) = self.ens.as_ref().filter(|e| !e.serving()) {
                if ens.read_only() && req.read_only {
                    return self
                        .clone()
                        .serve_read_only(ens.clone(), frames, wr, req, peer)
                        .await;
                }
                tracing::debug!(%peer, "refusing a client: this member has no quorum");
                return Ok(());
            }
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
                    conn_handle(
                        &ctx,
                        peer,
                        &conn_stats,
                        timeout_ms,
                        last_zxid,
                        applied_tx.take(),
                    ),
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

        // A reconfig this connection is waiting for (ensemble mode).
        let mut reconfig: Option<tokio::task::JoinHandle<Result<(), crate::jute::JuteError>>> =
            None;
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
            if let Some(ens) = &self.ens {
                if let Some(task) = reconfig.as_mut() {
                    if op_of(&body) == Some(op::PING) && !task.is_finished() {
                        // Clients match ping replies by their special xid, so
                        // one may pass a reconfig still waiting for a joiner
                        // to catch up (else the client would time out).
                        let core = self.core.lock();
                        core.stats.packets_received.fetch_add(1, Ordering::Relaxed);
                        let last = core.tree.last_zxid;
                        ctx.send(last, crate::proto::xid::PING, last, ErrorCode::Ok, |_| {});
                        continue;
                    }
                    let ok = tokio::select! {
                        r = task => matches!(r, Ok(Ok(()))),
                        _ = closed.cancelled() => false,
                    };
                    reconfig = None;
                    if !ok {
                        tracing::info!(%peer, "malformed reconfig; closing the connection");
                        break Ok(());
                    }
                }
                if op_of(&body).is_some_and(replicated_op) {
                    {
                        let mut core = self.core.lock();
                        core.stats.packets_received.fetch_add(1, Ordering::Relaxed);
                        core.sessions.touch(ctx.session);
                    }
                    ens.propose(rpb::Command {
                        origin: ens.my_id,
                        conn: id,
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
                    submitted += 1;
                    continue;
                }
                if op_of(&body).is_some_and(deferrable_op) {
                    // Behind this connection's own pending writes: run it when
                    // they are applied (raft::sm), in order, without stopping
                    // this reader (later writes keep flowing to the leader).
                    let mut core = self.core.lock();
                    if *applied_rx.borrow() < submitted {
                        core.stats.packets_received.fetch_add(1, Ordering::Relaxed);
                        if let Some(c) = core.conns.get_mut(&id) {
                            c.deferred.push_back((submitted, body, ctx.arrived));
                        }
                        continue;
                    }
                }
                if *applied_rx.borrow() < submitted {
                    let caught_up = tokio::select! {
                        r = applied_rx.wait_for(|n| *n >= submitted) => r.is_ok(),
                        _ = closed.cancelled() => false,
                    };
                    if !caught_up {
                        break Ok(());
                    }
                }
                if op_of(&body) == Some(op::RECONFIG) {
                    // Answered once the new membership is committed; later
                    // requests of this connection wait for it (but pings).
                    let (server, ens) = (self.clone(), ens.clone());
                    let (identity, tx) = (ctx.identity.clone(), ctx.tx.clone());
                    reconfig = Some(tokio::spawn(async move {
                        server.reconfig(&ens, identity, tx, body).await
                    }));
                    continue;
                }
            }
            if !self.handle_one(&mut ctx, body, peer) {
                break Ok(());
            }
        };
        self.detach(id, &ctx, &tx);
        result
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
    ) -> Result<(), crate::jute::JuteError> {
        let ctx = ConnCtx {
            id: 0,
            session: 0,
            identity,
            tx,
            arrived: Some(std::time::Instant::now()),
        };
        let mut r = Reader::new(body);
        let h = RequestHeader::read(&mut r)?;
        let req = ReconfigRequest::read(&mut r)?;
        let refused = {
            let core = self.core.lock();
            let allowed = core
                .tree
                .get(crate::raft::CONFIG_NODE)
                .is_some_and(|n| ctx.identity.allowed(&n.acl, crate::proto::perms::WRITE));
            if !core.cfg.reconfig_enabled {
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
        let last = core.tree.last_zxid;
        match result {
            Ok(_) => {
                let (data, stat) = core
                    .tree
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

    /// A read-only client (`readOnly` in its ConnectRequest) while this
    /// member is cut off from the quorum with `readonlymode.enabled`, as
    /// ZooKeeper's ReadOnlyZooKeeperServer: a local session (or the
    /// client's own, resumed), reads from the local tree, writes answered
    /// ZNOTREADONLY. When the quorum is back the connection is closed so
    /// the client reconnects to a read-write member.
    async fn serve_read_only<R>(
        self: Arc<Self>,
        ens: Arc<Ensemble>,
        mut frames: FramedRead<R, LengthDelimitedCodec>,
        wr: OwnedWriteHalf,
        req: ConnectRequest,
        peer: SocketAddr,
    ) -> std::io::Result<()>
    where
        R: tokio::io::AsyncRead + Unpin,
    {
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
        let stats = 'admit: {
            let mut core = self.core.lock();
            core.stats.packets_received.fetch_add(1, Ordering::Relaxed);
            let last = core.tree.last_zxid;
            let timeout = req.timeout.clamp(
                core.cfg.min_session_timeout_ms,
                core.cfg.max_session_timeout_ms,
            );
            let session = if req.session_id == 0 {
                let password: [u8; 16] = rand::random();
                Some((
                    core.sessions.next_id(),
                    bytes::Bytes::copy_from_slice(&password),
                    timeout,
                ))
            } else {
                core.tree
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
            tx.frame(last, b.freeze(), None);
            let Some((sid, _, timeout_ms)) = session else {
                // Unknown or expired session: the client sees Expired.
                tx.close(last);
                break 'admit None;
            };
            ctx.session = sid;
            tracing::info!(%peer, session = format!("0x{sid:x}"), "read-only client connected");
            core.conns.insert(
                id,
                conn_handle(&ctx, peer, &conn_stats, timeout_ms, last, None),
            );
            Some(core.stats.clone())
        };
        let Some(stats) = stats else {
            writer(
                wr,
                rx,
                tx,
                self.durable.clone(),
                closed,
                [Arc::new(Default::default()), conn_stats],
            )
            .await;
            return Ok(());
        };
        tokio::spawn(writer(
            wr,
            rx,
            tx.clone(),
            self.durable.clone(),
            closed.clone(),
            [stats, conn_stats.clone()],
        ));
        let mut serving = ens.serving_watch();
        let result = loop {
            tokio::select! {
                _ = tx.wait_room() => {}
                _ = closed.cancelled() => break Ok(()),
            }
            let next = tokio::select! {
                f = frames.next() => f,
                _ = closed.cancelled() => break Ok(()),
                _ = async { let _ = serving.wait_for(|s| *s).await; } => {
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
            ctx.arrived = Some(std::time::Instant::now());
            let code = op_of(&body);
            if code.is_some_and(|c| replicated_op(c) || c == op::RECONFIG) {
                let xid = body
                    .get(..4)
                    .map_or(0, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                let core = self.core.lock();
                let last = core.tree.last_zxid;
                if code == Some(op::CLOSE_SESSION) {
                    // A local session: nothing to replicate.
                    ctx.send(last, xid, last, ErrorCode::Ok, |_| {});
                    tx.close(last);
                    break Ok(());
                }
                ctx.send(last, xid, last, ErrorCode::NotReadOnly, |_| {});
                continue;
            }
            if !self.handle_one(&mut ctx, body, peer) {
                break Ok(());
            }
        };
        self.detach(id, &ctx, &tx);
        result
    }
}

impl Server {
    /// One request through the handler under the state lock; false when the
    /// connection must close (closeSession, or a malformed request).
    fn handle_one(&self, ctx: &mut ConnCtx, body: bytes::Bytes, peer: SocketAddr) -> bool {
        let flow = {
            let mut core = self.core.lock();
            core.stats.packets_received.fetch_add(1, Ordering::Relaxed);
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
        core.conns.remove(&id);
        core.watches.remove_conn(id);
        core.sessions.detach(ctx.session, id);
        let last = core.tree.last_zxid;
        tx.close(last);
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
