//! An async ZooKeeper client: brokers keep their registration, controller
//! election and partition state through it, and `fjord znode` drives it.
//!
//! A [`ZkClient`] is a cheap handle to one background task that owns the
//! session. The task pipelines requests (matched by xid), pings every third of
//! the negotiated timeout, and on a lost connection moves round-robin to the
//! next host of the connect string, resuming the session with its id and
//! password and re-registering watches with SetWatches2. Requests in flight at
//! the loss fail with [`ZkError::ConnectionLoss`]; writes are never retried
//! behind the caller's back. Everything read off the network is checked: a
//! frame over the cap or a record that does not decode drops the connection,
//! never the process.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::jute::{JuteError, Reader, Record};
use crate::proto::{
    self, add_watch_mode, event, op, state, xid, Acl, AddWatchRequest, AuthPacket,
    CheckVersionRequest, ConnectRequest, ConnectResponse, Create2Response, CreateRequest,
    CreateResponse, CreateTtlRequest, DeleteRequest, ErrorCode, GetAclResponse,
    GetChildren2Response, GetChildrenResponse, GetDataResponse, MultiOp, MultiResult, PathRequest,
    PathWatchRequest, ReplyHeader, RequestHeader, SetAclRequest, SetDataRequest, SetWatches2, Stat,
    StatResponse, WatcherEvent,
};

/// jute.maxbuffer's default; replies larger than this plus [`FRAME_SLACK`] are refused.
pub const DEFAULT_MAX_FRAME: usize = 1_048_575;
/// Room for reply headers and Stat beside a maximal payload.
pub const FRAME_SLACK: usize = 4096;
/// SetWatches2 frames are split at about this many path bytes (as the Java client does).
const SET_WATCHES_BATCH: usize = 128 * 1024;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// The server refused the request with this code (NoNode, NodeExists, BadVersion, ...).
    #[error("server error {0}")]
    Code(ErrorCode),
    /// The connection dropped before the reply came; the request may or may not have happened.
    #[error("connection to the coordinator lost")]
    ConnectionLoss,
    /// The session is gone (ephemerals deleted, watches lost); make a new client.
    #[error("session expired")]
    SessionExpired,
    /// `close()` was called, or every handle was dropped.
    #[error("client closed")]
    Closed,
    /// No session could be established in time.
    #[error("timed out connecting to the coordinator")]
    Timeout,
    /// A socket-level failure outside any request (e.g. connecting).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server sent something that does not decode.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A path or connect string the client refuses to send (like Java's IllegalArgumentException).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ZkError {
    /// The ZooKeeper error code behind this error, if it has one, for `match`es like
    /// `Some(ErrorCode::NodeExists)`.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ZkError::Code(c) => Some(*c),
            ZkError::ConnectionLoss => Some(ErrorCode::ConnectionLoss),
            ZkError::SessionExpired => Some(ErrorCode::SessionExpired),
            ZkError::Timeout => Some(ErrorCode::OperationTimeout),
            ZkError::InvalidArgument(_) => Some(ErrorCode::BadArguments),
            ZkError::Protocol(_) => Some(ErrorCode::MarshallingError),
            ZkError::Closed | ZkError::Io(_) => None,
        }
    }

    fn from_code(code: i32) -> ZkError {
        match ErrorCode::from_i32(code) {
            ErrorCode::ConnectionLoss => ZkError::ConnectionLoss,
            ErrorCode::SessionExpired => ZkError::SessionExpired,
            c => ZkError::Code(c),
        }
    }
}

impl From<JuteError> for ZkError {
    fn from(e: JuteError) -> Self {
        ZkError::Protocol(e.to_string())
    }
}

impl From<proto::MultiDecodeError> for ZkError {
    fn from(e: proto::MultiDecodeError) -> Self {
        ZkError::Protocol(e.to_string())
    }
}

/// Where the session stands; watch `state()` to react to loss and expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Before the first session is established.
    Connecting,
    /// A live connection carries the session.
    Connected,
    /// The connection dropped; reconnecting (the session may still be alive).
    Disconnected,
    /// The server ended the session: ephemerals are gone; make a new client.
    Expired,
    /// `close()` was called or every handle dropped.
    Closed,
}

/// A watch notification (Watcher.WatchedEvent). `event_type` is one of
/// [`proto::event`], `keeper_state` one of [`proto::state`]; `path` has the chroot
/// stripped and is empty for session events (type NONE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub event_type: i32,
    pub keeper_state: i32,
    pub path: String,
}

impl WatchedEvent {
    fn session(keeper_state: i32) -> Self {
        WatchedEvent {
            event_type: event::NONE,
            keeper_state,
            path: String::new(),
        }
    }
}

/// CreateMode: how a znode lives and whether it gets a sequence suffix.
/// TTL modes carry the TTL in milliseconds (the server must enable extended types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
    Container,
    PersistentWithTtl(i64),
    PersistentSequentialWithTtl(i64),
}

impl CreateMode {
    /// The wire flags value.
    pub fn flags(self) -> i32 {
        use proto::create_mode as m;
        match self {
            CreateMode::Persistent => m::PERSISTENT,
            CreateMode::Ephemeral => m::EPHEMERAL,
            CreateMode::PersistentSequential => m::PERSISTENT_SEQUENTIAL,
            CreateMode::EphemeralSequential => m::EPHEMERAL_SEQUENTIAL,
            CreateMode::Container => m::CONTAINER,
            CreateMode::PersistentWithTtl(_) => m::PERSISTENT_WITH_TTL,
            CreateMode::PersistentSequentialWithTtl(_) => m::PERSISTENT_SEQUENTIAL_WITH_TTL,
        }
    }

    /// The TTL in ms, for TTL modes.
    pub fn ttl(self) -> Option<i64> {
        match self {
            CreateMode::PersistentWithTtl(t) | CreateMode::PersistentSequentialWithTtl(t) => {
                Some(t)
            }
            _ => None,
        }
    }

    /// Whether the server appends a sequence number (paths may then end in '/').
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl(_)
        )
    }

    /// The op that creates this kind of node and answers with a Stat (create2 family).
    fn create2_op(self) -> i32 {
        match self {
            CreateMode::Container => op::CREATE_CONTAINER,
            CreateMode::PersistentWithTtl(_) | CreateMode::PersistentSequentialWithTtl(_) => {
                op::CREATE_TTL
            }
            _ => op::CREATE2,
        }
    }
}

/// Builders for [`MultiOp`]s with the client's types, so callers need not fill wire records.
impl MultiOp {
    /// A create inside a multi; its result carries the Stat (create2 family).
    pub fn create(path: &str, data: &[u8], acl: &[Acl], mode: CreateMode) -> MultiOp {
        MultiOp::Create {
            op: mode.create2_op(),
            req: CreateTtlRequest {
                path: path.to_string(),
                data: Some(Bytes::copy_from_slice(data)),
                acl: acl.to_vec(),
                flags: mode.flags(),
                ttl: mode.ttl().unwrap_or(0),
            },
        }
    }

    /// A delete inside a multi (`version` −1: any).
    pub fn delete(path: &str, version: i32) -> MultiOp {
        MultiOp::Delete(DeleteRequest {
            path: path.to_string(),
            version,
        })
    }

    /// A setData inside a multi (`version` −1: any).
    pub fn set_data(path: &str, data: &[u8], version: i32) -> MultiOp {
        MultiOp::SetData(SetDataRequest {
            path: path.to_string(),
            data: Some(Bytes::copy_from_slice(data)),
            version,
        })
    }

    /// A version check inside a multi: the whole multi fails unless it holds.
    pub fn check(path: &str, version: i32) -> MultiOp {
        MultiOp::Check(CheckVersionRequest {
            path: path.to_string(),
            version,
        })
    }

    fn path_mut(&mut self) -> &mut String {
        match self {
            MultiOp::Create { req, .. } => &mut req.path,
            MultiOp::Delete(r) => &mut r.path,
            MultiOp::SetData(r) => &mut r.path,
            MultiOp::Check(r) => &mut r.path,
            MultiOp::GetChildren(r) | MultiOp::GetData(r) => &mut r.path,
        }
    }

    fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }
}

/// Checks a path the way Java's PathUtils.validatePath does, so a bad path fails
/// locally instead of costing a round trip (or the connection).
pub fn validate_path(path: &str, sequential: bool) -> Result<(), ZkError> {
    let bad = |why: &str| Err(ZkError::InvalidArgument(format!("{why}: {path}")));
    if path.is_empty() {
        return bad("Path length must be > 0");
    }
    if !path.starts_with('/') {
        return Err(ZkError::InvalidArgument(
            "Path must start with / character".into(),
        ));
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') && !sequential {
        return bad("Path must not end with / character");
    }
    let body = if sequential && path.ends_with('/') {
        &path[1..path.len() - 1]
    } else {
        &path[1..]
    };
    if body.is_empty() {
        return Ok(());
    }
    for seg in body.split('/') {
        if seg.is_empty() {
            return bad("empty node name specified");
        }
        if seg == "." || seg == ".." {
            return bad("relative paths not allowed");
        }
    }
    if path.chars().any(|c| {
        c == '\0'
            || ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
    }) {
        return bad("invalid character");
    }
    Ok(())
}

/// A parsed connect string: `host:port[,host:port...][/chroot]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    pub hosts: Vec<(String, u16)>,
    pub chroot: Option<String>,
}

impl ConnectString {
    /// Parses `h:p,h:p/chroot`; a missing port means 2181, `[v6]:p` is accepted.
    pub fn parse(s: &str) -> Result<ConnectString, ZkError> {
        let s = s.trim();
        let (hosts_part, chroot) = match s.find('/') {
            Some(i) => {
                let c = &s[i..];
                validate_path(c, false)?;
                (&s[..i], if c == "/" { None } else { Some(c.to_string()) })
            }
            None => (s, None),
        };
        let mut hosts = Vec::new();
        for h in hosts_part
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
        {
            let bad = || ZkError::InvalidArgument(format!("bad host:port {h:?}"));
            let (host, port) = if let Some(rest) = h.strip_prefix('[') {
                let end = rest.find(']').ok_or_else(bad)?;
                let host = &rest[..end];
                let port = match rest[end + 1..].strip_prefix(':') {
                    Some(p) => p.parse().map_err(|_| bad())?,
                    None if rest.len() == end + 1 => 2181,
                    None => return Err(bad()),
                };
                (host.to_string(), port)
            } else {
                match h.rsplit_once(':') {
                    Some((host, p)) => (host.to_string(), p.parse().map_err(|_| bad())?),
                    None => (h.to_string(), 2181),
                }
            };
            if host.is_empty() {
                return Err(bad());
            }
            hosts.push((host, port));
        }
        if hosts.is_empty() {
            return Err(ZkError::InvalidArgument(format!(
                "no hosts in connect string {s:?}"
            )));
        }
        Ok(ConnectString { hosts, chroot })
    }

    fn prepend(&self, path: &str) -> String {
        match &self.chroot {
            None => path.to_string(),
            Some(c) if path == "/" => c.clone(),
            Some(c) => format!("{c}{path}"),
        }
    }

    fn strip(&self, server_path: &str) -> String {
        strip_chroot(self.chroot.as_deref(), server_path)
    }
}

fn strip_chroot(chroot: Option<&str>, server_path: &str) -> String {
    match chroot {
        None => server_path.to_string(),
        Some(c) if server_path == c => "/".to_string(),
        Some(c) => match server_path.strip_prefix(c) {
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => server_path.to_string(),
        },
    }
}

/// Knobs beyond the connect string; `Default` matches ZooKeeper's defaults.
#[derive(Debug, Clone)]
pub struct ZkOptions {
    /// Requested session timeout (the server clamps it).
    pub session_timeout: Duration,
    /// How long `connect` waits for the first session (default: the session timeout).
    pub connect_timeout: Option<Duration>,
    /// Largest reply frame accepted (jute.maxbuffer); `FRAME_SLACK` is added on top.
    pub max_frame: usize,
    /// Give up, with the socket's error, as soon as every host failed once
    /// before the first session without any accepting the connection (a
    /// one-shot tool facing a refused port); otherwise (or when a member
    /// answered but would not serve yet) hosts are retried until
    /// `connect_timeout`.
    pub fail_fast: bool,
    /// TLS to the coordinator's secure client port (see [`crate::tls`]).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Kafka's `zookeeper.set.acl=true`: znodes created with the open ACL
    /// get [`Acl::secure_for`] instead (the creator's authenticated ids may
    /// do everything, everyone else may read, sensitive paths not even that).
    pub secure_acls: bool,
}

impl Default for ZkOptions {
    fn default() -> Self {
        ZkOptions {
            session_timeout: Duration::from_secs(30),
            connect_timeout: None,
            max_frame: DEFAULT_MAX_FRAME,
            fail_fast: false,
            tls: None,
            secure_acls: false,
        }
    }
}

/// How a one-shot or persistent watch is registered once its request succeeds.
enum WatchReg {
    Data(String, oneshot::Sender<WatchedEvent>),
    Exists(String, oneshot::Sender<WatchedEvent>),
    Child(String, oneshot::Sender<WatchedEvent>),
    Persistent(String, bool, mpsc::UnboundedSender<WatchedEvent>),
}

/// A one-shot watch of `kind` on `path` and the receiver it fires into.
fn one_shot(
    kind: fn(String, oneshot::Sender<WatchedEvent>) -> WatchReg,
    path: &str,
) -> (WatchReg, oneshot::Receiver<WatchedEvent>) {
    let (tx, rx) = oneshot::channel();
    (kind(path.to_string(), tx), rx)
}

type Reply = Result<(ReplyHeader, Bytes), ZkError>;

/// One request travelling to the session task.
struct Call {
    op: i32,
    body: Bytes,
    watch: Option<WatchReg>,
    reply: oneshot::Sender<Reply>,
    queued_at: Instant,
}

enum Cmd {
    Call(Call),
    Auth {
        scheme: String,
        auth: Bytes,
        reply: oneshot::Sender<Result<(), ZkError>>,
    },
    Close(oneshot::Sender<()>),
}

struct Shared {
    tx: mpsc::UnboundedSender<Cmd>,
    state: watch::Receiver<SessionState>,
    session_id: AtomicI64,
    cs: ConnectString,
    secure_acls: bool,
}

/// A handle to one ZooKeeper session; clone it freely (all clones share the
/// session). When the last clone is dropped the session is closed.
#[derive(Clone)]
pub struct ZkClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ZkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkClient")
            .field("session_id", &format_args!("0x{:x}", self.session_id()))
            .field("state", &*self.shared.state.borrow())
            .finish()
    }
}

impl ZkClient {
    /// Opens a session on `connect_string` (`h:p,h:p[/chroot]`) and waits until it is
    /// established (at most `session_timeout`), so an unreachable coordinator is an
    /// error up front rather than a hang later.
    pub async fn connect(
        connect_string: &str,
        session_timeout: Duration,
    ) -> Result<ZkClient, ZkError> {
        Self::connect_with(
            connect_string,
            ZkOptions {
                session_timeout,
                ..ZkOptions::default()
            },
        )
        .await
    }

    /// `connect` with every knob.
    pub async fn connect_with(connect_string: &str, opts: ZkOptions) -> Result<ZkClient, ZkError> {
        let cs = ConnectString::parse(connect_string)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (state_tx, state_rx) = watch::channel(SessionState::Connecting);
        let shared = Arc::new(Shared {
            tx,
            state: state_rx.clone(),
            session_id: AtomicI64::new(0),
            cs: cs.clone(),
            secure_acls: opts.secure_acls,
        });
        let (give_up, mut gave_up) = oneshot::channel();
        let mut hosts = cs.hosts.clone();
        // Spread sessions over an ensemble like the Java client's shuffle.
        if hosts.len() > 1 {
            let k = (rand::random::<u32>() as usize) % hosts.len();
            hosts.rotate_left(k);
        }
        let task = Session {
            hosts,
            next_host: 0,
            cs,
            opts: opts.clone(),
            negotiated: opts.session_timeout,
            session_id: 0,
            passwd: Bytes::from_static(&[0u8; 16]),
            last_zxid: 0,
            cmd_rx: rx,
            state_tx,
            shared_sid: Arc::downgrade(&shared),
            watches: Watches::default(),
            auths: Vec::new(),
            queued: VecDeque::new(),
            next_xid: 1,
            give_up: Some(give_up),
        };
        tokio::spawn(task.run());
        let client = ZkClient { shared };
        let wait = opts.connect_timeout.unwrap_or(opts.session_timeout);
        let mut st = state_rx;
        let mut given_up = false;
        let res = tokio::time::timeout(wait, async {
            loop {
                match *st.borrow_and_update() {
                    SessionState::Connected => return Ok(()),
                    SessionState::Expired => return Err(ZkError::SessionExpired),
                    SessionState::Closed => {
                        return Err(gave_up.try_recv().unwrap_or(ZkError::Closed))
                    }
                    _ => {}
                }
                tokio::select! {
                    r = st.changed() => if r.is_err() {
                        return Err(ZkError::Closed);
                    },
                    e = &mut gave_up, if !given_up => match e {
                        Ok(e) => return Err(e),
                        Err(_) => given_up = true,
                    },
                }
            }
        })
        .await;
        match res {
            Ok(Ok(())) => Ok(client),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                client.close().await;
                Err(ZkError::Timeout)
            }
        }
    }

    /// The session's state, as a watch channel: `changed().await` to follow it.
    pub fn state(&self) -> watch::Receiver<SessionState> {
        self.shared.state.clone()
    }

    /// The session id the server assigned (0 before the first connect).
    pub fn session_id(&self) -> i64 {
        self.shared.session_id.load(Ordering::Relaxed)
    }

    /// Ends the session (closeSession, op −11): the server deletes our ephemerals now
    /// rather than after the timeout. Idempotent.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.shared.tx.send(Cmd::Close(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    fn terminal_error(&self) -> ZkError {
        match *self.shared.state.borrow() {
            SessionState::Expired => ZkError::SessionExpired,
            _ => ZkError::Closed,
        }
    }

    fn path(&self, path: &str, sequential: bool) -> Result<String, ZkError> {
        validate_path(path, sequential)?;
        Ok(self.shared.cs.prepend(path))
    }

    fn strip(&self, server_path: &str) -> String {
        self.shared.cs.strip(server_path)
    }

    /// Sends one request and decodes its reply as `R` (`()` for none); a
    /// non-zero reply code is an error. Every request but multi goes through here.
    async fn request<R: Record>(
        &self,
        op: i32,
        body: impl Record,
        watch: Option<WatchReg>,
    ) -> Result<R, ZkError> {
        let (hdr, rest) = self.call_raw(op, body, watch).await?;
        if hdr.err != 0 {
            return Err(ZkError::from_code(hdr.err));
        }
        Ok(R::read(&mut Reader::new(rest))?)
    }

    /// A read of one node (exists, getData, getChildren[2]) that arms `watch`
    /// if the server accepts it.
    async fn read_node<R: Record>(
        &self,
        op: i32,
        path: &str,
        watch: Option<WatchReg>,
    ) -> Result<R, ZkError> {
        let req = PathWatchRequest {
            path: self.path(path, false)?,
            watch: watch.is_some(),
        };
        self.request(op, req, watch).await
    }

    async fn call_raw(
        &self,
        op: i32,
        body: impl Record,
        watch: Option<WatchReg>,
    ) -> Result<(ReplyHeader, Bytes), ZkError> {
        let mut b = BytesMut::new();
        body.write(&mut b);
        let (tx, rx) = oneshot::channel();
        let call = Call {
            op,
            body: b.freeze(),
            watch,
            reply: tx,
            queued_at: Instant::now(),
        };
        if self.shared.tx.send(Cmd::Call(call)).is_err() {
            return Err(self.terminal_error());
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(self.terminal_error()),
        }
    }

    /// The ACL a create sends: the open ACL becomes [`Acl::secure_for`]
    /// the path when `secure_acls` is on (Kafka's `zookeeper.set.acl`).
    fn acl_for(&self, path: &str, acl: &[Acl]) -> Vec<Acl> {
        if self.shared.secure_acls && acl == Acl::open_unsafe().as_slice() {
            Acl::secure_for(path)
        } else {
            acl.to_vec()
        }
    }

    /// Creates `path` and any missing parent as empty persistent nodes
    /// (open ACL, made secure by `secure_acls`); nodes already there are fine.
    pub async fn ensure_path(&self, path: &str) -> Result<(), ZkError> {
        let mut cur = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            match self
                .create(&cur, b"", &Acl::open_unsafe(), CreateMode::Persistent)
                .await
            {
                Ok(_) => {}
                Err(e) if e.code() == Some(ErrorCode::NodeExists) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Creates a node; returns the actual path (with the sequence suffix, chroot stripped).
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String, ZkError> {
        if mode.create2_op() != op::CREATE2 {
            return Ok(self.create2(path, data, acl, mode).await?.0);
        }
        let req = CreateRequest {
            path: self.path(path, mode.is_sequential())?,
            data: Some(Bytes::copy_from_slice(data)),
            acl: self.acl_for(path, acl),
            flags: mode.flags(),
        };
        let resp: CreateResponse = self.request(op::CREATE, req, None).await?;
        Ok(self.strip(&resp.path))
    }

    /// Creates a node and returns its Stat too.
    pub async fn create2(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat), ZkError> {
        self.create2_opt(path, Some(data), acl, mode).await
    }

    /// `create2` that can store null data (zkCli's `create /p` without data).
    pub async fn create2_opt(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat), ZkError> {
        let acl = &self.acl_for(path, acl)[..];
        let path = self.path(path, mode.is_sequential())?;
        let data = data.map(Bytes::copy_from_slice);
        let op_code = mode.create2_op();
        let resp: Create2Response = match mode.ttl() {
            Some(ttl) => {
                let req = CreateTtlRequest {
                    path,
                    data,
                    acl: acl.to_vec(),
                    flags: mode.flags(),
                    ttl,
                };
                self.request(op_code, req, None).await?
            }
            None => {
                let req = CreateRequest {
                    path,
                    data,
                    acl: acl.to_vec(),
                    flags: mode.flags(),
                };
                self.request(op_code, req, None).await?
            }
        };
        Ok((self.strip(&resp.path), resp.stat))
    }

    /// Deletes a node if its version matches (`-1`: any version).
    pub async fn delete(&self, path: &str, version: i32) -> Result<(), ZkError> {
        let req = DeleteRequest {
            path: self.path(path, false)?,
            version,
        };
        self.request(op::DELETE, req, None).await
    }

    /// The node's Stat, or `None` if it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>, ZkError> {
        self.exists_inner(path, None).await
    }

    /// `exists` plus a one-shot watch: fires on creation, data change or deletion.
    pub async fn exists_w(
        &self,
        path: &str,
    ) -> Result<(Option<Stat>, oneshot::Receiver<WatchedEvent>), ZkError> {
        let (watch, rx) = one_shot(WatchReg::Exists, path);
        Ok((self.exists_inner(path, Some(watch)).await?, rx))
    }

    async fn exists_inner(
        &self,
        path: &str,
        watch: Option<WatchReg>,
    ) -> Result<Option<Stat>, ZkError> {
        match self
            .read_node::<StatResponse>(op::EXISTS, path, watch)
            .await
        {
            Ok(r) => Ok(Some(r.stat)),
            Err(ZkError::Code(ErrorCode::NoNode)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's data (null data reads as empty) and Stat.
    pub async fn get_data(&self, path: &str) -> Result<(Bytes, Stat), ZkError> {
        let (d, st) = self.get_data_opt(path).await?;
        Ok((d.unwrap_or_default(), st))
    }

    /// `get_data` keeping null distinct from empty (zkCli prints `null`).
    pub async fn get_data_opt(&self, path: &str) -> Result<(Option<Bytes>, Stat), ZkError> {
        let r: GetDataResponse = self.read_node(op::GET_DATA, path, None).await?;
        Ok((r.data, r.stat))
    }

    /// `get_data` plus a one-shot watch: fires on data change or deletion.
    pub async fn get_data_w(
        &self,
        path: &str,
    ) -> Result<(Bytes, Stat, oneshot::Receiver<WatchedEvent>), ZkError> {
        let (watch, rx) = one_shot(WatchReg::Data, path);
        let r: GetDataResponse = self.read_node(op::GET_DATA, path, Some(watch)).await?;
        Ok((r.data.unwrap_or_default(), r.stat, rx))
    }

    /// Replaces the data if the version matches (`-1`: any); returns the new Stat.
    pub async fn set_data(&self, path: &str, data: &[u8], version: i32) -> Result<Stat, ZkError> {
        let req = SetDataRequest {
            path: self.path(path, false)?,
            data: Some(Bytes::copy_from_slice(data)),
            version,
        };
        let r: StatResponse = self.request(op::SET_DATA, req, None).await?;
        Ok(r.stat)
    }

    /// The names (not paths) of the node's children, in server order.
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>, ZkError> {
        let r: GetChildrenResponse = self.read_node(op::GET_CHILDREN, path, None).await?;
        Ok(r.children)
    }

    /// `get_children` plus a one-shot watch: fires on child change or deletion.
    pub async fn get_children_w(
        &self,
        path: &str,
    ) -> Result<(Vec<String>, oneshot::Receiver<WatchedEvent>), ZkError> {
        let (watch, rx) = one_shot(WatchReg::Child, path);
        let r: GetChildrenResponse = self.read_node(op::GET_CHILDREN, path, Some(watch)).await?;
        Ok((r.children, rx))
    }

    /// Children plus the parent's Stat.
    pub async fn get_children2(&self, path: &str) -> Result<(Vec<String>, Stat), ZkError> {
        let r: GetChildren2Response = self.read_node(op::GET_CHILDREN2, path, None).await?;
        Ok((r.children, r.stat))
    }

    /// The node's ACL and Stat.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), ZkError> {
        let req = PathRequest {
            path: self.path(path, false)?,
        };
        let r: GetAclResponse = self.request(op::GET_ACL, req, None).await?;
        Ok((r.acl, r.stat))
    }

    /// Replaces the ACL if the ACL version matches (`-1`: any).
    pub async fn set_acl(&self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ZkError> {
        let req = SetAclRequest {
            path: self.path(path, false)?,
            acl: acl.to_vec(),
            version,
        };
        let r: StatResponse = self.request(op::SET_ACL, req, None).await?;
        Ok(r.stat)
    }

    /// Runs the ops atomically (multi) or, if all are reads, as a multiRead. A
    /// failed transaction is `Ok` with per-op results as ZooKeeper gives them:
    /// earlier ops `Error(Ok)`, the culprit its code, later ones `RuntimeInconsistency`.
    pub async fn multi(&self, ops: Vec<MultiOp>) -> Result<Vec<MultiResult>, ZkError> {
        let read = !ops.is_empty() && ops.iter().all(MultiOp::is_read);
        let mut ops = ops;
        for o in &mut ops {
            if let MultiOp::Create { req, .. } = o {
                req.acl = self.acl_for(&req.path, &req.acl);
            }
            let seq = matches!(o, MultiOp::Create { req, .. } if req.flags & 2 != 0);
            let p = o.path_mut();
            *p = self.path(p, seq)?;
        }
        struct Body(Vec<MultiOp>);
        impl Record for Body {
            fn read(_: &mut Reader) -> Result<Self, JuteError> {
                Ok(Body(Vec::new()))
            }
            fn write(&self, w: &mut BytesMut) {
                proto::write_multi(&self.0, w)
            }
        }
        let code = if read { op::MULTI_READ } else { op::MULTI };
        // Not `request`: a failed multi still carries its per-op results.
        let (hdr, rest) = self.call_raw(code, Body(ops), None).await?;
        match proto::read_multi_results(&mut Reader::new(rest)) {
            Ok(mut results) => {
                for res in &mut results {
                    if let MultiResult::Create { path, .. } = res {
                        *path = self.strip(path);
                    }
                }
                Ok(results)
            }
            Err(_) if hdr.err != 0 => Err(ZkError::from_code(hdr.err)),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until the server we talk to has caught up with the leader.
    pub async fn sync(&self, path: &str) -> Result<(), ZkError> {
        let req = PathRequest {
            path: self.path(path, false)?,
        };
        self.request(op::SYNC, req, None).await
    }

    /// A persistent watch (addWatch): every event on `path` (and, if `recursive`,
    /// every descendant, except child-change events) until the receiver is dropped.
    /// Session events (type NONE: Disconnected, SyncConnected, Expired, Closed)
    /// are delivered too.
    pub async fn add_watch(
        &self,
        path: &str,
        recursive: bool,
    ) -> Result<mpsc::UnboundedReceiver<WatchedEvent>, ZkError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let req = AddWatchRequest {
            path: self.path(path, false)?,
            mode: if recursive {
                add_watch_mode::PERSISTENT_RECURSIVE
            } else {
                add_watch_mode::PERSISTENT
            },
        };
        let watch = WatchReg::Persistent(path.to_string(), recursive, tx);
        self.request::<()>(op::ADD_WATCH, req, Some(watch)).await?;
        Ok(rx)
    }

    /// Adds credentials (e.g. `digest`, `user:pass`) to the session; they are
    /// re-sent on every reconnect. Fails with `Code(AuthFailed)` if refused.
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<(), ZkError> {
        let (tx, rx) = oneshot::channel();
        let cmd = Cmd::Auth {
            scheme: scheme.to_string(),
            auth: Bytes::copy_from_slice(auth),
            reply: tx,
        };
        if self.shared.tx.send(cmd).is_err() {
            return Err(self.terminal_error());
        }
        rx.await.unwrap_or_else(|_| Err(self.terminal_error()))
    }
}

/// Registered watches, keyed by client path (chroot stripped), as the Java
/// ZKWatchManager keeps them.
#[derive(Default)]
struct Watches {
    data: HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    exist: HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    child: HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    persistent: HashMap<String, Vec<mpsc::UnboundedSender<WatchedEvent>>>,
    recursive: HashMap<String, Vec<mpsc::UnboundedSender<WatchedEvent>>>,
}

impl Watches {
    fn register(&mut self, reg: WatchReg, err: i32) {
        let ok = err == 0;
        match reg {
            WatchReg::Data(p, tx) if ok => self.data.entry(p).or_default().push(tx),
            WatchReg::Exists(p, tx) if ok => self.data.entry(p).or_default().push(tx),
            WatchReg::Exists(p, tx) if err == ErrorCode::NoNode.code() => {
                self.exist.entry(p).or_default().push(tx)
            }
            WatchReg::Child(p, tx) if ok => self.child.entry(p).or_default().push(tx),
            WatchReg::Persistent(p, false, tx) if ok => {
                self.persistent.entry(p).or_default().push(tx)
            }
            WatchReg::Persistent(p, true, tx) if ok => {
                self.recursive.entry(p).or_default().push(tx)
            }
            _ => {}
        }
    }

    /// Delivers a node event to every watch it triggers; one-shot watches are removed.
    fn dispatch(&mut self, ev: &WatchedEvent) {
        let p = ev.path.as_str();
        let mut once = Vec::new();
        match ev.event_type {
            event::NODE_CREATED | event::NODE_DATA_CHANGED => {
                once.extend(self.data.remove(p).unwrap_or_default());
                once.extend(self.exist.remove(p).unwrap_or_default());
            }
            event::NODE_DELETED => {
                once.extend(self.data.remove(p).unwrap_or_default());
                once.extend(self.exist.remove(p).unwrap_or_default());
                once.extend(self.child.remove(p).unwrap_or_default());
            }
            event::NODE_CHILDREN_CHANGED => {
                once.extend(self.child.remove(p).unwrap_or_default());
            }
            _ => {}
        }
        for tx in once {
            let _ = tx.send(ev.clone());
        }
        send_all(&mut self.persistent, p, ev);
        // Recursive watches promise no child events (the server may still send
        // them for a plain child watch on a descendant): filter like Java does.
        if ev.event_type != event::NODE_CHILDREN_CHANGED {
            for a in ancestors_or_self(p) {
                send_all(&mut self.recursive, a, ev);
            }
        }
    }

    /// Session events go to persistent watches only; one-shot ones stay armed.
    fn session_event(&mut self, keeper_state: i32) {
        let ev = WatchedEvent::session(keeper_state);
        for map in [&mut self.persistent, &mut self.recursive] {
            map.retain(|_, v| {
                v.retain(|tx| tx.send(ev.clone()).is_ok());
                !v.is_empty()
            });
        }
    }

    /// The session ended: every watch hears it once and is dropped.
    fn terminate(&mut self, keeper_state: i32) {
        let ev = WatchedEvent::session(keeper_state);
        for map in [&mut self.data, &mut self.exist, &mut self.child] {
            for (_, v) in map.drain() {
                for tx in v {
                    let _ = tx.send(ev.clone());
                }
            }
        }
        for map in [&mut self.persistent, &mut self.recursive] {
            for (_, v) in map.drain() {
                for tx in v {
                    let _ = tx.send(ev.clone());
                }
            }
        }
    }

    fn prune(&mut self) {
        for map in [&mut self.data, &mut self.exist, &mut self.child] {
            map.retain(|_, v| {
                v.retain(|tx| !tx.is_closed());
                !v.is_empty()
            });
        }
        for map in [&mut self.persistent, &mut self.recursive] {
            map.retain(|_, v| {
                v.retain(|tx| !tx.is_closed());
                !v.is_empty()
            });
        }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }
}

fn send_all(
    map: &mut HashMap<String, Vec<mpsc::UnboundedSender<WatchedEvent>>>,
    p: &str,
    ev: &WatchedEvent,
) {
    if let Some(v) = map.get_mut(p) {
        v.retain(|tx| tx.send(ev.clone()).is_ok());
        if v.is_empty() {
            map.remove(p);
        }
    }
}

/// `/a/b` → `/a/b`, `/a`, `/`.
fn ancestors_or_self(p: &str) -> Vec<&str> {
    let mut out = vec![p];
    let mut cur = p;
    while let Some(i) = cur.rfind('/') {
        if cur == "/" {
            break;
        }
        cur = if i == 0 { "/" } else { &cur[..i] };
        out.push(cur);
    }
    out
}

type ReadHalf = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
type WriteHalf = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// Reads length-prefixed frames, refusing any length over the cap before
/// allocating. Cancel-safe: partial frames stay in `buf`.
struct FrameReader {
    rd: ReadHalf,
    buf: BytesMut,
    max: usize,
}

impl FrameReader {
    async fn next(&mut self) -> Result<Bytes, ZkError> {
        loop {
            if self.buf.len() >= 4 {
                let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                if len < 0 || len as usize > self.max {
                    return Err(ZkError::Protocol(format!(
                        "frame length {len} outside 0..={}",
                        self.max
                    )));
                }
                let len = len as usize;
                if self.buf.len() >= 4 + len {
                    self.buf.advance(4);
                    return Ok(self.buf.split_to(len).freeze());
                }
                self.buf.reserve(4 + len - self.buf.len());
            } else {
                self.buf.reserve(4096);
            }
            let n = self.rd.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(ZkError::ConnectionLoss);
            }
        }
    }
}

/// Writes queued frames, coalescing whatever is waiting into one syscall.
async fn writer(mut wr: WriteHalf, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    let mut buf = BytesMut::new();
    while let Some(first) = rx.recv().await {
        buf.extend_from_slice(&first);
        while buf.len() < 256 * 1024 {
            match rx.try_recv() {
                Ok(b) => buf.extend_from_slice(&b),
                Err(_) => break,
            }
        }
        // The flush pushes out ciphertext a TLS stream may still hold.
        if let Err(e) = async {
            wr.write_all(&buf).await?;
            wr.flush().await
        }
        .await
        {
            debug!("zk client write failed: {e}");
            return;
        }
        buf.clear();
    }
}

fn encode_frame(xid: i32, op_code: i32, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(12 + body.len());
    proto::frame(&mut out, |w| {
        RequestHeader { xid, op: op_code }.write(w);
        w.put_slice(body);
    });
    out.freeze()
}

/// The frame that presents credentials (answered under xid −4).
fn auth_frame(scheme: &str, auth: &Bytes) -> Bytes {
    let mut b = BytesMut::new();
    AuthPacket {
        kind: 0,
        scheme: scheme.to_string(),
        auth: Some(auth.clone()),
    }
    .write(&mut b);
    encode_frame(xid::AUTH, op::AUTH, &b)
}

/// A live connection with an established (or resumed) session.
struct Conn {
    reader: FrameReader,
    out: mpsc::UnboundedSender<Bytes>,
    writer: tokio::task::JoinHandle<()>,
    resp: ConnectResponse,
}

/// Connects to one host and performs the handshake.
async fn handshake(
    host: &(String, u16),
    req: ConnectRequest,
    max_frame: usize,
    limit: Duration,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Conn, ZkError> {
    let fut = async {
        let stream = TcpStream::connect((host.0.as_str(), host.1)).await?;
        let _ = stream.set_nodelay(true);
        let (rd, mut wr): (ReadHalf, WriteHalf) = match tls {
            None => {
                let (rd, wr) = stream.into_split();
                (Box::new(rd), Box::new(wr))
            }
            Some(cfg) => {
                let name = rustls_pki_types::ServerName::try_from(host.0.clone())
                    .map_err(|e| ZkError::Protocol(format!("TLS server name {}: {e}", host.0)))?;
                let s = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name, stream)
                    .await?;
                let (rd, wr) = tokio::io::split(s);
                (Box::new(rd), Box::new(wr))
            }
        };
        let mut out = BytesMut::new();
        proto::frame(&mut out, |w| req.write(w));
        wr.write_all(&out).await?;
        wr.flush().await?;
        let mut reader = FrameReader {
            rd,
            buf: BytesMut::new(),
            max: max_frame + FRAME_SLACK,
        };
        let frame = reader.next().await?;
        let resp = ConnectResponse::read(&mut Reader::new(frame))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(writer(wr, rx));
        Ok::<_, ZkError>(Conn {
            reader,
            out: tx,
            writer,
            resp,
        })
    };
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or(Err(ZkError::Timeout))
}

/// What ended a connected stretch.
enum Ended {
    /// Lost the connection: reconnect.
    Lost(String),
    /// close() completed or every handle dropped.
    Closed(Vec<oneshot::Sender<()>>),
}

struct Pending {
    watch: Option<WatchReg>,
    reply: oneshot::Sender<Reply>,
}

/// The background task owning the session.
struct Session {
    hosts: Vec<(String, u16)>,
    next_host: usize,
    cs: ConnectString,
    opts: ZkOptions,
    negotiated: Duration,
    session_id: i64,
    passwd: Bytes,
    last_zxid: i64,
    cmd_rx: mpsc::UnboundedReceiver<Cmd>,
    state_tx: watch::Sender<SessionState>,
    shared_sid: std::sync::Weak<Shared>,
    watches: Watches,
    auths: Vec<(String, Bytes)>,
    /// Requests (and auths) waiting for a connection.
    queued: VecDeque<Cmd>,
    next_xid: i32,
    /// Where `fail_fast` sends the first round's failure.
    give_up: Option<oneshot::Sender<ZkError>>,
}

impl Session {
    fn set_state(&self, s: SessionState) {
        self.state_tx.send_if_modified(|cur| {
            if *cur != s {
                *cur = s;
                true
            } else {
                false
            }
        });
    }

    fn xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x >= i32::MAX - 1 { 1 } else { x + 1 };
        x
    }

    async fn run(mut self) {
        let mut close_waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut round_failures = 0u32;
        // A host of this round accepted the connection, then ended the
        // handshake (a member that is starting, or cut off from its quorum):
        // worth waiting for even with `fail_fast`.
        let mut round_met_a_server = false;
        'outer: loop {
            // ---- connecting: try hosts round-robin, queueing commands meanwhile.
            let conn = loop {
                let host = self.hosts[self.next_host % self.hosts.len()].clone();
                self.next_host = (self.next_host + 1) % self.hosts.len();
                let req = ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: self.last_zxid,
                    timeout: self.opts.session_timeout.as_millis().min(i32::MAX as u128) as i32,
                    session_id: self.session_id,
                    passwd: self.passwd.clone(),
                    read_only: false,
                };
                let per_host =
                    (self.negotiated / self.hosts.len() as u32).max(Duration::from_millis(1000));
                let tls = self.opts.tls.clone();
                let attempt = handshake(&host, req, self.opts.max_frame, per_host, tls.as_ref());
                tokio::pin!(attempt);
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                let res = loop {
                    tokio::select! {
                        r = &mut attempt => break r,
                        cmd = self.cmd_rx.recv() => match cmd {
                            None => break 'outer,
                            Some(Cmd::Close(tx)) => { close_waiters.push(tx); break 'outer; }
                            Some(c) => self.queued.push_back(c),
                        },
                        _ = tick.tick() => self.expire_queued(),
                    }
                };
                match res {
                    Ok(c) => break c,
                    Err(e) => {
                        debug!("zk connect to {}:{} failed: {e}", host.0, host.1);
                        round_met_a_server |= !matches!(e, ZkError::Io(_));
                        if self.next_host == 0
                            && self.session_id == 0
                            && self.opts.fail_fast
                            && !round_met_a_server
                        {
                            if let Some(give_up) = self.give_up.take() {
                                let _ = give_up.send(e);
                                self.finish(SessionState::Closed, state::CLOSED, ZkError::Closed)
                                    .await;
                                return;
                            }
                        }
                        if self.next_host == 0 {
                            round_met_a_server = false;
                            round_failures += 1;
                            // Short, jittered backoff between full rounds.
                            let ms =
                                (50 * round_failures.min(10) as u64) + rand::random::<u64>() % 100;
                            let sleep = tokio::time::sleep(Duration::from_millis(ms));
                            tokio::pin!(sleep);
                            loop {
                                tokio::select! {
                                    _ = &mut sleep => break,
                                    cmd = self.cmd_rx.recv() => match cmd {
                                        None => break 'outer,
                                        Some(Cmd::Close(tx)) => { close_waiters.push(tx); break 'outer; }
                                        Some(c) => self.queued.push_back(c),
                                    },
                                }
                            }
                        }
                        self.expire_queued();
                    }
                }
            };
            round_failures = 0;
            if conn.resp.timeout <= 0 {
                info!("zk session 0x{:x} expired", self.session_id);
                conn.writer.abort();
                self.finish(
                    SessionState::Expired,
                    state::EXPIRED,
                    ZkError::SessionExpired,
                )
                .await;
                return;
            }
            self.session_id = conn.resp.session_id;
            self.passwd = conn.resp.passwd.clone();
            self.negotiated = Duration::from_millis(conn.resp.timeout as u64);
            if let Some(s) = self.shared_sid.upgrade() {
                s.session_id.store(self.session_id, Ordering::Relaxed);
            }
            info!(
                "zk session 0x{:x} established, timeout {:?}",
                self.session_id, self.negotiated
            );
            match self.connected(conn).await {
                Ended::Lost(why) => {
                    warn!("zk connection lost ({why}); reconnecting");
                    self.set_state(SessionState::Disconnected);
                    self.watches.session_event(state::DISCONNECTED);
                }
                Ended::Closed(w) => {
                    close_waiters.extend(w);
                    break 'outer;
                }
            }
        }
        self.finish(SessionState::Closed, state::CLOSED, ZkError::Closed)
            .await;
        for w in close_waiters {
            let _ = w.send(());
        }
    }

    /// Fails queued requests that waited longer than the session timeout for a connection.
    fn expire_queued(&mut self) {
        let limit = self.opts.session_timeout;
        let now = Instant::now();
        let mut keep = VecDeque::new();
        for c in self.queued.drain(..) {
            match c {
                Cmd::Call(call) if now.duration_since(call.queued_at) > limit => {
                    let _ = call.reply.send(Err(ZkError::ConnectionLoss));
                }
                other => keep.push_back(other),
            }
        }
        self.queued = keep;
    }

    /// Terminal: tell everyone, then answer any later request with `err`.
    async fn finish(&mut self, st: SessionState, keeper_state: i32, err: ZkError) {
        self.set_state(st);
        self.watches.terminate(keeper_state);
        let again = |e: &ZkError| match e {
            ZkError::SessionExpired => ZkError::SessionExpired,
            _ => ZkError::Closed,
        };
        for c in self.queued.drain(..) {
            fail_cmd(c, again(&err));
        }
        self.cmd_rx.close();
        while let Ok(c) = self.cmd_rx.try_recv() {
            fail_cmd(c, again(&err));
        }
    }

    /// Serves one connection until it is lost or the client closes.
    async fn connected(&mut self, conn: Conn) -> Ended {
        let Conn {
            mut reader,
            out,
            mut writer,
            ..
        } = conn;
        let mut pending: HashMap<i32, Pending> = HashMap::new();
        let mut auth_waiters: VecDeque<AuthWaiter> = VecDeque::new();
        let mut closing: Option<(i32, Vec<oneshot::Sender<()>>, Instant)> = None;

        // Re-send credentials first, then watches (the Java client's order).
        for (scheme, auth) in &self.auths {
            let _ = out.send(auth_frame(scheme, auth));
            auth_waiters.push_back(((scheme.clone(), auth.clone()), None));
        }
        self.watches.prune();
        if !self.watches.is_empty() {
            for sw in self.set_watches() {
                let mut b = BytesMut::new();
                sw.write(&mut b);
                let _ = out.send(encode_frame(xid::SET_WATCHES, op::SET_WATCHES2, &b));
            }
        }
        self.set_state(SessionState::Connected);
        self.watches.session_event(state::SYNC_CONNECTED);
        let queued: Vec<Cmd> = self.queued.drain(..).collect();
        for c in queued {
            if let Some(ended) =
                self.send_cmd(c, &out, &mut pending, &mut auth_waiters, &mut closing)
            {
                return ended;
            }
        }

        let ping_every = (self.negotiated / 3).max(Duration::from_millis(100));
        let read_timeout = (self.negotiated * 2 / 3).max(Duration::from_millis(200));
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        let mut last_recv = tokio::time::Instant::now();

        let why = loop {
            let close_deadline = closing
                .as_ref()
                .map(|c| tokio::time::Instant::from_std(c.2))
                .unwrap_or_else(|| last_recv + read_timeout);
            tokio::select! {
                frame = reader.next() => {
                    let frame = match frame {
                        Ok(f) => f,
                        Err(e) => break e.to_string(),
                    };
                    last_recv = tokio::time::Instant::now();
                    match self.on_frame(frame, &mut pending, &mut auth_waiters) {
                        Ok(Some(x)) if closing.as_ref().map(|c| c.0) == Some(x) => {
                            let w = closing.take().map(|c| c.1).unwrap_or_default();
                            fail_pending(pending, ZkError::Closed);
                            writer.abort();
                            return Ended::Closed(w);
                        }
                        Ok(_) => {}
                        Err(e) => break e.to_string(),
                    }
                }
                cmd = self.cmd_rx.recv(), if closing.is_none() => {
                    let c = match cmd {
                        Some(c) => c,
                        None => Cmd::Close(oneshot::channel().0),
                    };
                    if let Some(ended) = self.send_cmd(c, &out, &mut pending, &mut auth_waiters, &mut closing) {
                        writer.abort();
                        return ended;
                    }
                }
                _ = ping.tick() => {
                    let _ = out.send(encode_frame(xid::PING, op::PING, &[]));
                }
                _ = tokio::time::sleep_until(close_deadline) => {
                    if let Some((_, w, _)) = closing.take() {
                        fail_pending(pending, ZkError::Closed);
                        writer.abort();
                        return Ended::Closed(w);
                    }
                    break format!("no reply from server for {read_timeout:?}");
                }
                _ = &mut writer => break "write failed".to_string(),
            }
        };
        writer.abort();
        if let Some((_, w, _)) = closing {
            fail_pending(pending, ZkError::Closed);
            return Ended::Closed(w);
        }
        fail_pending(pending, ZkError::ConnectionLoss);
        for w in auth_waiters.into_iter().filter_map(|a| a.1) {
            let _ = w.send(Err(ZkError::ConnectionLoss));
        }
        Ended::Lost(why)
    }

    /// Sends one command on the live connection; `Some` if it ended the session.
    fn send_cmd(
        &mut self,
        c: Cmd,
        out: &mpsc::UnboundedSender<Bytes>,
        pending: &mut HashMap<i32, Pending>,
        auth_waiters: &mut VecDeque<AuthWaiter>,
        closing: &mut Option<(i32, Vec<oneshot::Sender<()>>, Instant)>,
    ) -> Option<Ended> {
        match c {
            Cmd::Call(call) => {
                let x = self.xid();
                if out.send(encode_frame(x, call.op, &call.body)).is_err() {
                    let _ = call.reply.send(Err(ZkError::ConnectionLoss));
                    return None;
                }
                pending.insert(
                    x,
                    Pending {
                        watch: call.watch,
                        reply: call.reply,
                    },
                );
            }
            Cmd::Auth {
                scheme,
                auth,
                reply,
            } => {
                self.auths.push((scheme.clone(), auth.clone()));
                let _ = out.send(auth_frame(&scheme, &auth));
                auth_waiters.push_back(((scheme, auth), Some(reply)));
            }
            Cmd::Close(tx) => {
                let x = self.xid();
                if out.send(encode_frame(x, op::CLOSE_SESSION, &[])).is_err() {
                    return Some(Ended::Closed(vec![tx]));
                }
                let deadline = Instant::now()
                    + self
                        .negotiated
                        .min(Duration::from_secs(2))
                        .max(Duration::from_millis(200));
                *closing = Some((x, vec![tx], deadline));
            }
        }
        None
    }

    /// Handles one reply/event frame. Returns the xid answered, if any.
    fn on_frame(
        &mut self,
        frame: Bytes,
        pending: &mut HashMap<i32, Pending>,
        auth_waiters: &mut VecDeque<AuthWaiter>,
    ) -> Result<Option<i32>, ZkError> {
        let mut r = Reader::new(frame.clone());
        let hdr = ReplyHeader::read(&mut r)?;
        // ReplyHeader is fixed-size: xid(4) + zxid(8) + err(4).
        let rest = frame.slice(16..);
        match hdr.xid {
            xid::PING => return Ok(None),
            xid::NOTIFICATION => {
                let ev = WatcherEvent::read(&mut r)?;
                let ev = WatchedEvent {
                    event_type: ev.kind,
                    keeper_state: ev.state,
                    path: self.cs.strip(&ev.path),
                };
                debug!("zk event {ev:?}");
                self.watches.dispatch(&ev);
                return Ok(None);
            }
            xid::AUTH => {
                let res = if hdr.err == 0 {
                    Ok(())
                } else {
                    warn!("zk auth failed: {}", ErrorCode::from_i32(hdr.err));
                    Err(ZkError::Code(ErrorCode::from_i32(hdr.err)))
                };
                if let Some((cred, w)) = auth_waiters.pop_front() {
                    if res.is_err() {
                        // Refused credentials are not re-sent on reconnect (the
                        // server closes the connection after refusing them).
                        self.auths.retain(|a| *a != cred);
                    }
                    if let Some(w) = w {
                        let _ = w.send(res);
                    }
                }
                return Ok(None);
            }
            xid::SET_WATCHES => {
                if hdr.err != 0 {
                    warn!("zk setWatches failed: {}", ErrorCode::from_i32(hdr.err));
                }
                return Ok(None);
            }
            _ => {}
        }
        if hdr.zxid > 0 {
            self.last_zxid = hdr.zxid;
        }
        let Some(p) = pending.remove(&hdr.xid) else {
            return Err(ZkError::Protocol(format!(
                "reply for unknown xid {}",
                hdr.xid
            )));
        };
        if let Some(w) = p.watch {
            self.watches.register(w, hdr.err);
        }
        let xid = hdr.xid;
        let _ = p.reply.send(Ok((hdr, rest)));
        Ok(Some(xid))
    }

    /// SetWatches2 records for every armed watch, with server paths, split into
    /// frames of about [`SET_WATCHES_BATCH`] path bytes.
    fn set_watches(&self) -> Vec<SetWatches2> {
        let mut out = Vec::new();
        let mut cur = SetWatches2 {
            relative_zxid: self.last_zxid,
            ..Default::default()
        };
        let mut size = 0usize;
        let lists: [(&FieldOf, Vec<&String>); 5] = [
            (&|s| &mut s.data, self.watches.data.keys().collect()),
            (&|s| &mut s.exist, self.watches.exist.keys().collect()),
            (&|s| &mut s.child, self.watches.child.keys().collect()),
            (
                &|s| &mut s.persistent,
                self.watches.persistent.keys().collect(),
            ),
            (
                &|s| &mut s.persistent_recursive,
                self.watches.recursive.keys().collect(),
            ),
        ];
        for (field, paths) in lists {
            for p in paths {
                let sp = self.cs.prepend(p);
                size += sp.len() + 4;
                field(&mut cur).push(sp);
                if size > SET_WATCHES_BATCH {
                    out.push(std::mem::replace(
                        &mut cur,
                        SetWatches2 {
                            relative_zxid: self.last_zxid,
                            ..Default::default()
                        },
                    ));
                    size = 0;
                }
            }
        }
        if size > 0 {
            out.push(cur);
        }
        out
    }
}

/// An auth packet awaiting its reply (xid −4): the credentials, and the caller if any.
type AuthWaiter = (
    (String, Bytes),
    Option<oneshot::Sender<Result<(), ZkError>>>,
);

/// Picks one path list out of a SetWatches2.
type FieldOf = dyn Fn(&mut SetWatches2) -> &mut Vec<String>;

fn fail_pending(pending: HashMap<i32, Pending>, err: ZkError) {
    for (_, p) in pending {
        let e = match &err {
            ZkError::Closed => ZkError::Closed,
            _ => ZkError::ConnectionLoss,
        };
        let _ = p.reply.send(Err(e));
    }
}

fn fail_cmd(c: Cmd, err: ZkError) {
    match c {
        Cmd::Call(call) => {
            let _ = call.reply.send(Err(err));
        }
        Cmd::Auth { reply, .. } => {
            let _ = reply.send(Err(err));
        }
        Cmd::Close(tx) => {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_strings() {
        let cs = ConnectString::parse("a:1,b:2/chroot/x").unwrap();
        assert_eq!(cs.hosts, vec![("a".into(), 1), ("b".into(), 2)]);
        assert_eq!(cs.chroot.as_deref(), Some("/chroot/x"));
        assert_eq!(cs.prepend("/"), "/chroot/x");
        assert_eq!(cs.prepend("/y"), "/chroot/x/y");
        assert_eq!(cs.strip("/chroot/x"), "/");
        assert_eq!(cs.strip("/chroot/x/y/z"), "/y/z");
        assert_eq!(cs.strip("/chroot/xy"), "/chroot/xy");
        let cs = ConnectString::parse("h,[::1]:3/").unwrap();
        assert_eq!(cs.hosts, vec![("h".into(), 2181), ("::1".into(), 3)]);
        assert_eq!(cs.chroot, None);
        assert!(ConnectString::parse("").is_err());
        assert!(ConnectString::parse("h:x").is_err());
        assert!(ConnectString::parse("h:1/a/").is_err());
    }

    #[test]
    fn paths() {
        assert!(validate_path("/", false).is_ok());
        assert!(validate_path("/a/b", false).is_ok());
        assert!(validate_path("/a/", true).is_ok());
        assert!(validate_path("/a/", false).is_err());
        assert!(validate_path("a", false).is_err());
        assert!(validate_path("/a//b", false).is_err());
        assert!(validate_path("/a/./b", false).is_err());
        assert!(validate_path("/a\0", false).is_err());
    }

    #[test]
    fn ancestors() {
        assert_eq!(ancestors_or_self("/a/b"), vec!["/a/b", "/a", "/"]);
        assert_eq!(ancestors_or_self("/"), vec!["/"]);
    }

    #[test]
    fn watch_dispatch_is_one_shot_and_keyed_by_kind() {
        let mut w = Watches::default();
        let (dtx, mut drx) = oneshot::channel();
        let (ctx, mut crx) = oneshot::channel();
        let (etx, mut erx) = oneshot::channel();
        let (ptx, mut prx) = mpsc::unbounded_channel();
        w.register(WatchReg::Data("/a".into(), dtx), 0);
        w.register(WatchReg::Child("/a".into(), ctx), 0);
        w.register(WatchReg::Exists("/b".into(), etx), ErrorCode::NoNode.code());
        w.register(WatchReg::Persistent("/".into(), true, ptx), 0);
        let ev = |t: i32, p: &str| WatchedEvent {
            event_type: t,
            keeper_state: state::SYNC_CONNECTED,
            path: p.into(),
        };
        w.dispatch(&ev(event::NODE_CHILDREN_CHANGED, "/a"));
        assert_eq!(
            crx.try_recv().unwrap().event_type,
            event::NODE_CHILDREN_CHANGED
        );
        assert!(drx.try_recv().is_err());
        assert!(
            prx.try_recv().is_err(),
            "recursive watches get no child events"
        );
        w.dispatch(&ev(event::NODE_DATA_CHANGED, "/a"));
        assert_eq!(drx.try_recv().unwrap().path, "/a");
        assert_eq!(prx.try_recv().unwrap().event_type, event::NODE_DATA_CHANGED);
        w.dispatch(&ev(event::NODE_CREATED, "/b"));
        assert_eq!(erx.try_recv().unwrap().event_type, event::NODE_CREATED);
        assert_eq!(prx.try_recv().unwrap().path, "/b");
        assert!(w.data.is_empty() && w.child.is_empty() && w.exist.is_empty());
        w.terminate(state::EXPIRED);
        assert_eq!(prx.try_recv().unwrap().keeper_state, state::EXPIRED);
    }

    #[test]
    fn set_watches_batches() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let (_t, rx) = mpsc::unbounded_channel::<Cmd>();
        let (st, _) = watch::channel(SessionState::Connecting);
        let mut s = Session {
            hosts: vec![("h".into(), 1)],
            next_host: 0,
            cs: ConnectString::parse("h:1/r").unwrap(),
            opts: ZkOptions::default(),
            negotiated: Duration::from_secs(1),
            session_id: 0,
            passwd: Bytes::new(),
            last_zxid: 7,
            cmd_rx: rx,
            state_tx: st,
            shared_sid: std::sync::Weak::new(),
            watches: Watches::default(),
            auths: vec![],
            queued: VecDeque::new(),
            next_xid: 1,
            give_up: None,
        };
        s.watches.persistent.insert("/p".into(), vec![tx]);
        for i in 0..20_000 {
            let (o, _) = oneshot::channel();
            s.watches.data.insert(format!("/node-{i:08}"), vec![o]);
        }
        let sws = s.set_watches();
        assert!(sws.len() > 1);
        let total: usize = sws.iter().map(|s| s.data.len()).sum();
        assert_eq!(total, 20_000);
        assert!(sws.iter().all(|s| s.relative_zxid == 7));
        assert!(sws.iter().any(|s| s.persistent == vec!["/r/p".to_string()]));
    }
    /// A fake server's side of one frame from the client (read and dropped).
    async fn skip_frame(s: &mut TcpStream) {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await.unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).await.unwrap();
    }

    /// A fake server's handshake: reads the ConnectRequest, grants `session_id`.
    async fn grant_session(s: &mut TcpStream, session_id: i64) {
        skip_frame(s).await;
        let mut out = BytesMut::new();
        proto::frame(&mut out, |w| {
            ConnectResponse {
                protocol_version: 0,
                timeout: 6000,
                session_id,
                passwd: Bytes::from_static(&[1u8; 16]),
                read_only: false,
            }
            .write(w)
        });
        s.write_all(&out).await.unwrap();
    }

    /// A fake server: answers the handshake, then answers the first request with
    /// `bad` (raw bytes). The client must fail that request with ConnectionLoss,
    /// not panic or allocate the advertised length, and reconnect.
    async fn bad_reply(bad: Vec<u8>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let mut conns = 0;
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                conns += 1;
                grant_session(&mut s, 0x42).await;
                if conns == 1 {
                    skip_frame(&mut s).await;
                    s.write_all(&bad).await.unwrap();
                    // Keep the socket open: the client must hang up by itself.
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        drop(s);
                    });
                } else {
                    return conns;
                }
            }
        });
        let zk = ZkClient::connect(&addr, Duration::from_secs(6))
            .await
            .unwrap();
        assert_eq!(zk.session_id(), 0x42);
        let e = zk.exists("/a").await.unwrap_err();
        assert!(matches!(e, ZkError::ConnectionLoss), "{e:?}");
        // It reconnects (to the same fake) and resumes.
        let conns = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(conns, 2);
    }

    #[tokio::test]
    async fn oversized_frame_from_server_drops_connection() {
        bad_reply(0x7fff_ffffu32.to_be_bytes().to_vec()).await;
    }

    #[tokio::test]
    async fn negative_frame_length_drops_connection() {
        bad_reply((-5i32).to_be_bytes().to_vec()).await;
    }

    #[tokio::test]
    async fn truncated_reply_header_drops_connection() {
        bad_reply(vec![0, 0, 0, 3, 1, 2, 3]).await;
    }

    #[tokio::test]
    async fn reply_with_lying_string_length_fails_cleanly() {
        // A well-framed reply for xid 1 whose body claims a 1 GB vector.
        let mut f = BytesMut::new();
        proto::frame(&mut f, |w| {
            ReplyHeader {
                xid: 1,
                zxid: 5,
                err: 0,
            }
            .write(w);
            w.put_i32(1 << 30);
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let bad = f.to_vec();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            grant_session(&mut s, 7).await;
            skip_frame(&mut s).await;
            s.write_all(&bad).await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let zk = ZkClient::connect(&addr, Duration::from_secs(6))
            .await
            .unwrap();
        let e = zk.get_children("/").await.unwrap_err();
        assert!(matches!(e, ZkError::Protocol(_)), "{e:?}");
    }
}
