//! The Kafka listeners: length-framed requests over TCP, decoded in read order,
//! answered in request order. Each connection has a reader (frames → handler
//! futures, in order) and a writer (awaits them in order, batches writes;
//! fetched records go to the socket by reference, with vectored writes).
//!
//! A connection goes through its listener's states first (docs/architecture.md
//! → Security): TLS handshake on SSL/SASL_SSL listeners (the client
//! certificate, if any, names the principal), then on SASL_* listeners the
//! SASL exchange, during which only ApiVersions, SaslHandshake and
//! SaslAuthenticate are served (anything else closes the connection, as
//! Kafka does); then requests, each carrying the listener and principal.
//! With `connections.max.reauth.ms` set, an authenticated SASL session has a
//! lifetime (KIP-368, `security::reauth`): a SaslHandshake re-authenticates
//! on the same connection (`SaslConn`), and the first other request after
//! the session expired closes it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use std::collections::VecDeque;
use std::io::IoSlice;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestKind, ResponseKind, SaslAuthenticateResponse,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::api::{self, Pending};
use crate::broker::Broker;
use crate::security::listener::ListenerSecurity;
use crate::security::principal::{subject_dn, user, ANONYMOUS};
use crate::security::reauth::{session_lifetime_ms, AuthSession, Verdict};
use crate::security::sasl::{SaslConfig, SaslSession, Step, MAX_TOKEN};
use crate::wire::codec::{self, Decoded, Request};
use crate::wire::error as err;
use crate::wire::frame;

/// Frames allowed before the first valid request (a stranger's first bytes
/// must not make us allocate socket.request.max.bytes).
const PRE_AUTH_FRAME_CAP: usize = 1 << 20;
/// Requests a connection may have in flight before we stop reading.
const PIPELINE_DEPTH: usize = 256;
/// Queued response bytes that are written even while more responses are ready.
const FLUSH_BYTES: usize = 256 << 10;
/// Chunks per vectored write (Linux's IOV_MAX is 1024).
const MAX_IOVECS: usize = 512;
/// Ciphertext read from a TLS socket at once (rustls itself asks for 4 KiB).
const TLS_READ_BUF: usize = 64 << 10;

/// Counts open connections so shutdown can wait for them.
#[derive(Default)]
pub struct ConnCounter(AtomicUsize);

impl ConnCounter {
    /// Open connections right now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

struct ConnGuard(Arc<ConnCounter>);
impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long a TLS handshake, and the whole SASL exchange, may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const SASL_TIMEOUT: Duration = Duration::from_secs(60);

/// Accept connections on one listener until the broker's shutdown signal.
pub async fn serve(
    b: Arc<Broker>,
    listener: TcpListener,
    sec: Arc<ListenerSecurity>,
    conns: Arc<ConnCounter>,
) {
    let mut stop = b.shutdown_signal();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, peer)) => {
                    let _ = sock.set_nodelay(true);
                    conns.0.fetch_add(1, Ordering::SeqCst);
                    let guard = ConnGuard(conns.clone());
                    let b = b.clone();
                    let sec = sec.clone();
                    tokio::spawn(async move {
                        let _g = guard;
                        if let Err(e) = handle(b, sec, sock, peer).await {
                            tracing::debug!(%peer, error = %e, "connection closed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => {
                tracing::info!("listener stopped accepting");
                return;
            }
        }
    }
}

/// Response bytes waiting for the socket: small pieces copied together,
/// large ones (the records of a fetch) kept as the shared chunks they are,
/// all handed to the kernel with vectored writes.
#[derive(Default)]
struct OutQueue {
    chunks: VecDeque<Bytes>,
    small: BytesMut,
    bytes: usize,
}

impl OutQueue {
    fn push(&mut self, c: Bytes) {
        self.bytes += c.len();
        if c.len() < frame::SHARE_MIN {
            self.small.extend_from_slice(&c);
        } else {
            if !self.small.is_empty() {
                self.chunks.push_back(self.small.split().freeze());
            }
            self.chunks.push_back(c);
        }
    }

    async fn flush<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> std::io::Result<()> {
        if !self.small.is_empty() {
            self.chunks.push_back(self.small.split().freeze());
        }
        while !self.chunks.is_empty() {
            let mut n = {
                let io: Vec<IoSlice<'_>> = self
                    .chunks
                    .iter()
                    .take(MAX_IOVECS)
                    .map(|c| IoSlice::new(c))
                    .collect();
                w.write_vectored(&io).await?
            };
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            while let Some(front) = self.chunks.front_mut() {
                if n < front.len() {
                    front.advance(n);
                    break;
                }
                n -= front.len();
                self.chunks.pop_front();
            }
        }
        self.bytes = 0;
        // A TLS stream may accept the last plaintext while its ciphertext
        // still waits for a full socket: without this the tail of a large
        // fetch sits in rustls until the connection's next response.
        w.flush().await
    }
}

enum Out {
    /// A request's answer to come, with when its frame was read (the
    /// request's total time ends when the answer is ready to write).
    Pending(
        kafka_protocol::messages::ApiKey,
        i16,
        i32,
        Pending,
        std::time::Instant,
    ),
    Raw(Bytes),
}

/// One accepted socket through its listener's states: TLS, SASL, requests.
async fn handle(
    b: Arc<Broker>,
    sec: Arc<ListenerSecurity>,
    sock: TcpStream,
    peer: SocketAddr,
) -> anyhow::Result<()> {
    let Some(tls) = &sec.tls else {
        let (mut rd, mut wr) = sock.into_split();
        let (principal, sasl) = match &sec.sasl {
            Some(cfg) => match authenticate(&b, &sec, cfg, &mut rd, &mut wr, peer).await {
                Some(s) => (
                    s.principal.clone(),
                    Some(SaslConn::new(sec.clone(), s, peer)),
                ),
                None => return Ok(()),
            },
            None => (ANONYMOUS.to_string(), None),
        };
        return connection(
            b,
            rd,
            wr,
            Some(peer),
            sec.name.clone(),
            principal.into(),
            sasl,
        )
        .await;
    };
    // rustls reads at most 4 KiB of ciphertext per `read_tls`: straight on
    // the socket that is a syscall (and a wake-up) per 4 KiB of a produce.
    // The buffer turns those into memory copies, one read per TLS_READ_BUF.
    let sock = tokio::io::BufReader::with_capacity(TLS_READ_BUF, sock);
    let mut stream =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(sock)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::warn!(%peer, listener = %sec.name, error = %e, "TLS handshake failed");
                return Ok(());
            }
            Err(_) => {
                tracing::warn!(%peer, listener = %sec.name, "TLS handshake timed out");
                return Ok(());
            }
        };
    // Let rustls take a whole flush (FLUSH_BYTES) of responses at once: its
    // 64 KiB default splits a large fetch into many encrypt-and-write rounds.
    stream.get_mut().1.set_buffer_limit(Some(FLUSH_BYTES));
    // Kafka's SSL principal: the certificate's DN through the mapping rules.
    let cert_principal = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| subject_dn(c))
        .map(|dn| user(&sec.principal_rules.apply(&dn)));
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (principal, sasl) = match &sec.sasl {
        Some(cfg) => match authenticate(&b, &sec, cfg, &mut rd, &mut wr, peer).await {
            Some(s) => (
                s.principal.clone(),
                Some(SaslConn::new(sec.clone(), s, peer)),
            ),
            None => return Ok(()),
        },
        None => (
            cert_principal.unwrap_or_else(|| ANONYMOUS.to_string()),
            None,
        ),
    };
    tracing::debug!(%peer, listener = %sec.name, %principal, "authenticated");
    connection(
        b,
        rd,
        wr,
        Some(peer),
        sec.name.clone(),
        principal.into(),
        sasl,
    )
    .await
}

/// Read one length-prefixed frame of at most `cap` bytes (None: the peer closed).
async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R, cap: usize) -> Result<Option<Bytes>, String> {
    let mut len_buf = [0u8; 4];
    if rd.read_exact(&mut len_buf).await.is_err() {
        return Ok(None);
    }
    let len = i32::from_be_bytes(len_buf);
    if len < 0 || len as usize > cap {
        let hint = if len_buf[0] == 0x16 && len_buf[1] == 0x03 {
            " (a TLS handshake on a plaintext listener?)"
        } else {
            ""
        };
        return Err(format!("frame of {len} bytes exceeds {cap}{hint}"));
    }
    let mut frame = BytesMut::zeroed(len as usize);
    rd.read_exact(&mut frame)
        .await
        .map_err(|e| format!("truncated frame: {e}"))?;
    Ok(Some(frame.freeze()))
}

async fn write_response<W: AsyncWrite + Unpin>(
    wr: &mut W,
    key: ApiKey,
    version: i16,
    corr: i32,
    body: ResponseKind,
) -> std::io::Result<()> {
    let chunks = frame::encode_response(key, version, corr, &body)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    for c in chunks {
        wr.write_all(&c).await?;
    }
    wr.flush().await
}

async fn write_raw<W: AsyncWrite + Unpin>(wr: &mut W, token: &[u8]) -> std::io::Result<()> {
    wr.write_all(&(token.len() as u32).to_be_bytes()).await?;
    wr.write_all(token).await?;
    wr.flush().await
}

/// The SASL exchange of a SASL_* listener: the session (principal,
/// mechanism, lifetime), or None when the connection is to be closed
/// (refused, broken, or timed out; logged here).
async fn authenticate<R, W>(
    b: &Arc<Broker>,
    sec: &ListenerSecurity,
    cfg: &SaslConfig,
    rd: &mut R,
    wr: &mut W,
    peer: SocketAddr,
) -> Option<AuthSession>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match tokio::time::timeout(SASL_TIMEOUT, sasl_exchange(b, sec, cfg, rd, wr, peer)).await {
        Ok(Ok(Some(p))) => Some(p),
        Ok(Ok(None)) => {
            linger_close(rd, wr).await;
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(%peer, listener = %sec.name, error = %e, "closing connection during SASL authentication");
            None
        }
        Err(_) => {
            tracing::warn!(%peer, listener = %sec.name, "SASL authentication timed out");
            None
        }
    }
}

/// Close after a refusal without losing the refusal: send FIN, then read
/// (and drop) what the client still sends for a moment, so the close is not
/// a reset that would discard our last response in the client's kernel.
async fn linger_close<R, W>(rd: &mut R, wr: &mut W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let _ = wr.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Ok(n) = rd.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn sasl_exchange<R, W>(
    b: &Arc<Broker>,
    sec: &ListenerSecurity,
    cfg: &SaslConfig,
    rd: &mut R,
    wr: &mut W,
    peer: SocketAddr,
) -> Result<Option<AuthSession>, String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let io = |e: std::io::Error| e.to_string();
    let mut session: Option<SaslSession> = None;
    // After SaslHandshake v0 the tokens travel as bare frames (no header).
    let mut raw = false;
    // KIP-368: only a client that spoke SaslAuthenticate v1+ can re-authenticate.
    let mut can_reauth = false;
    let refuse = |reason: &str| {
        tracing::warn!(%peer, listener = %sec.name, reason, "SASL authentication failed");
    };
    loop {
        let Some(frame) = read_frame(rd, MAX_TOKEN + 1024).await? else {
            return Ok(None);
        };
        if raw {
            let Some(s) = session.as_mut() else {
                return Err("raw SASL token without a mechanism".into());
            };
            match s.step(cfg, b.scram.as_ref(), &frame).await {
                Step::Continue(t) => write_raw(wr, &t).await.map_err(io)?,
                Step::Done { token, principal } => {
                    write_raw(wr, &token).await.map_err(io)?;
                    return Ok(Some(AuthSession::new(
                        s.name(),
                        &principal,
                        0,
                        Instant::now(),
                    )));
                }
                Step::Failed { reason, .. } => {
                    refuse(&reason);
                    tokio::time::sleep(sec.auth_failure_delay).await;
                    return Ok(None);
                }
            }
            continue;
        }
        let req = match codec::decode_request(frame) {
            Ok(Decoded::ApiVersionsFallback { correlation_id }) => {
                let r = codec::api_versions_fallback(correlation_id).map_err(|e| e.to_string())?;
                wr.write_all(&r).await.map_err(io)?;
                wr.flush().await.map_err(io)?;
                continue;
            }
            Ok(Decoded::Request(r)) => r,
            Err(e) => return Err(format!("before authentication: {e}")),
        };
        let (key, v, corr) = (req.api_key, req.version, req.header.correlation_id);
        match req.body {
            RequestKind::ApiVersions(_) => {
                let body =
                    ApiVersionsResponse::default().with_api_keys(codec::api_versions_table());
                write_response(wr, key, v, corr, ResponseKind::ApiVersions(body))
                    .await
                    .map_err(io)?;
            }
            RequestKind::SaslHandshake(h) => {
                let mech = h.mechanism.to_ascii_uppercase();
                let mechs: Vec<StrBytes> = cfg
                    .mechanisms
                    .iter()
                    .map(|m| StrBytes::from_string(m.clone()))
                    .collect();
                let mut resp = SaslHandshakeResponse::default().with_mechanisms(mechs);
                let chosen = if session.is_some() {
                    resp.error_code = err::ILLEGAL_SASL_STATE;
                    None
                } else {
                    let s = SaslSession::new(cfg, &mech);
                    if s.is_none() {
                        resp.error_code = err::UNSUPPORTED_SASL_MECHANISM;
                    }
                    s
                };
                write_response(wr, key, v, corr, ResponseKind::SaslHandshake(resp))
                    .await
                    .map_err(io)?;
                match chosen {
                    Some(s) => {
                        session = Some(s);
                        raw = v == 0;
                    }
                    None => {
                        refuse(&format!(
                            "mechanism {mech:?} not enabled (or a second handshake)"
                        ));
                        return Ok(None);
                    }
                }
            }
            RequestKind::SaslAuthenticate(a) => {
                let Some(s) = session.as_mut() else {
                    let resp = SaslAuthenticateResponse::default()
                        .with_error_code(err::ILLEGAL_SASL_STATE)
                        .with_error_message(Some(StrBytes::from_static_str(
                            "SaslAuthenticate before SaslHandshake",
                        )));
                    let _ = write_response(wr, key, v, corr, ResponseKind::SaslAuthenticate(resp))
                        .await;
                    refuse("SaslAuthenticate before SaslHandshake");
                    return Ok(None);
                };
                can_reauth |= v > 0;
                let step = s.step(cfg, b.scram.as_ref(), &a.auth_bytes).await;
                let mut resp = SaslAuthenticateResponse::default();
                let done = match step {
                    Step::Continue(t) => {
                        resp.auth_bytes = t.into();
                        None
                    }
                    Step::Done { token, principal } => {
                        let mech = s.name();
                        let life = session_lifetime_ms(cfg.max_reauth_ms(mech), can_reauth);
                        resp.auth_bytes = token.into();
                        resp.session_lifetime_ms = life as i64;
                        Some(Some(AuthSession::new(
                            mech,
                            &principal,
                            life,
                            Instant::now(),
                        )))
                    }
                    Step::Failed { reason, message } => {
                        refuse(&reason);
                        resp.error_code = err::SASL_AUTHENTICATION_FAILED;
                        resp.error_message = Some(StrBytes::from_string(message));
                        Some(None)
                    }
                };
                write_response(wr, key, v, corr, ResponseKind::SaslAuthenticate(resp))
                    .await
                    .map_err(io)?;
                if let Some(p) = done {
                    if p.is_none() {
                        // KIP-306: the refusal goes out at once, the close
                        // waits (guessing gets slow; clients read the error).
                        tokio::time::sleep(sec.auth_failure_delay).await;
                    }
                    return Ok(p);
                }
            }
            _ => {
                return Err(format!("{key:?} before authentication"));
            }
        }
    }
}

/// What an authenticated SASL connection does with a request (KIP-368).
enum SaslAction {
    /// An ordinary request: dispatch it.
    Dispatch,
    /// A re-authentication step: send this answer.
    Answer(ResponseKind),
    /// A refused re-authentication: send this, close after the failure delay.
    AnswerAndClose(ResponseKind),
    /// The session expired (or the client broke the exchange): close.
    Close,
}

/// The SASL side of an authenticated connection: its session, and the
/// re-authentication in progress, if any.
struct SaslConn {
    sec: Arc<ListenerSecurity>,
    session: AuthSession,
    exchange: Option<SaslSession>,
    peer: SocketAddr,
}

impl SaslConn {
    fn new(sec: Arc<ListenerSecurity>, session: AuthSession, peer: SocketAddr) -> SaslConn {
        SaslConn {
            sec,
            session,
            exchange: None,
            peer,
        }
    }

    /// Kafka's order (SocketServer, SaslServerAuthenticator): during a
    /// re-authentication only SaslAuthenticate is expected; otherwise a
    /// SaslHandshake may begin one, and any other request on an expired
    /// session closes the connection.
    async fn on_request(&mut self, b: &Broker, req: &Request) -> SaslAction {
        let now = Instant::now();
        let (peer, principal) = (self.peer, self.session.principal.clone());
        let Some(cfg) = self.sec.sasl.as_ref() else {
            return SaslAction::Dispatch;
        };
        if let Some(ex) = self.exchange.as_mut() {
            let RequestKind::SaslAuthenticate(a) = &req.body else {
                tracing::warn!(%peer, %principal, api = ?req.api_key, "request during SASL re-authentication; closing");
                return SaslAction::Close;
            };
            let mut resp = SaslAuthenticateResponse::default();
            let refused = match ex.step(cfg, b.scram.as_ref(), &a.auth_bytes).await {
                Step::Continue(t) => {
                    resp.auth_bytes = t.into();
                    return SaslAction::Answer(ResponseKind::SaslAuthenticate(resp));
                }
                Step::Done {
                    token,
                    principal: p,
                } => {
                    self.exchange = None;
                    let life = session_lifetime_ms(
                        cfg.max_reauth_ms(&self.session.mechanism),
                        req.version > 0,
                    );
                    match self.session.complete(&p, life, now) {
                        Ok(()) => {
                            tracing::info!(%peer, %principal, session_lifetime_ms = life, "SASL re-authenticated");
                            resp.auth_bytes = token.into();
                            resp.session_lifetime_ms = life as i64;
                            return SaslAction::Answer(ResponseKind::SaslAuthenticate(resp));
                        }
                        Err(message) => (message.clone(), message),
                    }
                }
                Step::Failed { reason, message } => (
                    reason,
                    message.replace("during authentication", "during re-authentication"),
                ),
            };
            tracing::warn!(%peer, %principal, reason = %refused.0, "SASL re-authentication failed");
            resp.error_code = err::SASL_AUTHENTICATION_FAILED;
            resp.error_message = Some(StrBytes::from_string(refused.1));
            return SaslAction::AnswerAndClose(ResponseKind::SaslAuthenticate(resp));
        }
        let handshake = match &req.body {
            RequestKind::SaslHandshake(h) => Some(h),
            _ => None,
        };
        match self.session.verdict(handshake.is_some(), now) {
            Verdict::Serve => SaslAction::Dispatch,
            Verdict::Expired => {
                tracing::info!(%peer, %principal, api = ?req.api_key, "SASL session expired (connections.max.reauth.ms); closing the connection");
                SaslAction::Close
            }
            Verdict::BeginReauth => {
                let Some(h) = handshake else {
                    return SaslAction::Dispatch;
                };
                let mech = h.mechanism.to_ascii_uppercase();
                let mechs: Vec<StrBytes> = cfg
                    .mechanisms
                    .iter()
                    .map(|m| StrBytes::from_string(m.clone()))
                    .collect();
                let mut resp = SaslHandshakeResponse::default().with_mechanisms(mechs);
                // The tokens of a re-authentication travel in SaslAuthenticate
                // (v1 handshake), with the mechanism of the first one.
                let ex = (req.version > 0 && mech == self.session.mechanism)
                    .then(|| SaslSession::new(cfg, &mech))
                    .flatten();
                let Some(ex) = ex else {
                    tracing::warn!(%peer, %principal, requested = %mech, mechanism = %self.session.mechanism, "SASL re-authentication refused: another mechanism (or a v0 handshake)");
                    resp.error_code = err::UNSUPPORTED_SASL_MECHANISM;
                    return SaslAction::AnswerAndClose(ResponseKind::SaslHandshake(resp));
                };
                self.session.begin(now);
                self.exchange = Some(ex);
                SaslAction::Answer(ResponseKind::SaslHandshake(resp))
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection<R, W>(
    b: Arc<Broker>,
    mut rd: R,
    wr: W,
    peer: Option<SocketAddr>,
    listener: Arc<str>,
    principal: Arc<str>,
    mut sasl: Option<SaslConn>,
) -> anyhow::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Out>(PIPELINE_DEPTH);
    let metrics = b.metrics.clone();
    let slow = (b.config.slow_request_ms > 0)
        .then(|| std::time::Duration::from_millis(b.config.slow_request_ms));
    let writer = tokio::spawn(async move {
        let mut w = wr;
        let mut q = OutQueue::default();
        while let Some(o) = rx.recv().await {
            match o {
                Out::Raw(b) => q.push(b),
                Out::Pending(key, version, corr, fut, read_at) => {
                    let answer = fut.await;
                    let took = read_at.elapsed();
                    metrics.request(key as i16, took);
                    if slow.is_some_and(|s| took >= s) {
                        tracing::info!(
                            api = ?key,
                            version,
                            client = %peer.map_or_else(|| "?".to_string(), |p| p.to_string()),
                            ms = took.as_millis() as u64,
                            "slow request"
                        );
                    }
                    if let Some(body) = answer {
                        match frame::encode_response(key, version, corr, &body) {
                            Ok(chunks) => chunks.into_iter().for_each(|c| q.push(c)),
                            Err(e) => {
                                tracing::error!(?key, version, error = %e, "cannot encode response; closing");
                                return;
                            }
                        }
                    }
                }
            }
            if (rx.is_empty() || q.bytes >= FLUSH_BYTES) && q.flush(&mut w).await.is_err() {
                return;
            }
        }
        let _ = q.flush(&mut w).await;
    });
    let max = b.config.socket_request_max_bytes.max(1024) as usize;
    let mut seen_valid = false;
    let mut stop = b.shutdown_signal();
    let result: anyhow::Result<()> = async {
        loop {
            let mut len_buf = [0u8; 4];
            tokio::select! {
                r = rd.read_exact(&mut len_buf) => {
                    if r.is_err() {
                        return Ok(());
                    }
                }
                _ = stop.changed() => return Ok(()),
            }
            let len = i32::from_be_bytes(len_buf);
            let cap = if seen_valid {
                max
            } else {
                max.min(PRE_AUTH_FRAME_CAP)
            };
            if len < 0 || len as usize > cap {
                if !seen_valid {
                    // A stranger's first bytes: say who, once.
                    let hint = if len_buf[0] == 0x16 && len_buf[1] == 0x03 {
                        " (a TLS handshake on a plaintext listener?)"
                    } else {
                        ""
                    };
                    tracing::warn!(?peer, %listener, "first frame of {len} bytes exceeds {cap}{hint}; closing");
                }
                anyhow::bail!("frame of {len} bytes exceeds cap {cap}");
            }
            let mut frame = BytesMut::zeroed(len as usize);
            rd.read_exact(&mut frame).await?;
            let frame = frame.freeze();
            match codec::decode_request(frame) {
                Ok(Decoded::ApiVersionsFallback { correlation_id }) => {
                    if tx
                        .send(Out::Raw(codec::api_versions_fallback(correlation_id)?))
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                Ok(Decoded::Request(mut req)) => {
                    let read_at = std::time::Instant::now();
                    if let Some(sc) = sasl.as_mut() {
                        let (key, version, corr) =
                            (req.api_key, req.version, req.header.correlation_id);
                        let (body, close) = match sc.on_request(&b, &req).await {
                            SaslAction::Dispatch => (None, false),
                            SaslAction::Answer(r) => (Some(r), false),
                            SaslAction::AnswerAndClose(r) => (Some(r), true),
                            SaslAction::Close => return Ok(()),
                        };
                        if let Some(body) = body {
                            let fut: Pending = Box::pin(async move { Some(body) });
                            if tx
                                .send(Out::Pending(key, version, corr, fut, read_at))
                                .await
                                .is_err()
                            {
                                return Ok(());
                            }
                            if close {
                                tokio::time::sleep(sc.sec.auth_failure_delay).await;
                                return Ok(());
                            }
                            continue;
                        }
                    }
                    req.peer = peer;
                    req.listener = listener.clone();
                    req.principal = principal.clone();
                    seen_valid = true;
                    let key = req.api_key;
                    let version = req.version;
                    let corr = req.header.correlation_id;
                    let fut = api::dispatch(&b, *req);
                    if tx
                        .send(Out::Pending(key, version, corr, fut, read_at))
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                Err(e) => anyhow::bail!("{e}"),
            }
        }
    }
    .await;
    drop(tx);
    // Finish in-flight requests before closing (graceful on shutdown too).
    let _ = writer.await;
    result
}
