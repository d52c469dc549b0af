//! Peer links between ensemble members, the sending side (`peer_server` is
//! the receiving one, and shares this file's framing and batched writer):
//! `PeerRequest`/`PeerResponse` prost messages, 4-byte length-prefixed
//! (tokio-util framed TCP), on each member's `server.N` peer port.
//!
//! One outgoing connection per peer carries every request to it, tagged with
//! an id so responses may come back in any order; requests leave in the order
//! they were made, which keeps forwarded client writes in their clients'
//! order. A broken connection fails its in-flight calls and is re-dialed on
//! the next call.
//!
//! With `sslQuorum=true` both ends speak TLS (`ssl.quorum.*`, mutual: each
//! member presents its keystore and trusts the quorum truststore); the
//! frames inside are the same.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fjord_proto::raft as pb;
use futures_util::{SinkExt, StreamExt};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use parking_lot::Mutex;
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use super::sm::meta_to_pb;
use super::types::{
    entry_to_pb, opt_log_id_from_pb, opt_log_id_to_pb, vote_from_pb, vote_to_pb, NodeId, TypeConfig,
};
use crate::config::ServerLine;

pub(super) type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
pub(super) type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// A peer connection's halves: plain, or after the TLS handshake.
pub(super) fn split<S: AsyncRead + AsyncWrite + Send + 'static>(s: S) -> (ReadHalf, WriteHalf) {
    let (r, w) = tokio::io::split(s);
    (Box::new(r), Box::new(w))
}

/// Largest peer frame (an AppendEntries batch or a snapshot chunk).
const MAX_FRAME: usize = 256 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("member {0} unreachable: {1}")]
    Unreachable(NodeId, String),
    #[error("member {0}: connection lost")]
    Lost(NodeId),
    #[error("member {0}: timed out")]
    Timeout(NodeId),
    #[error("member {0} failed the request: {1}")]
    Remote(NodeId, String),
    #[error("member {0}: unexpected response")]
    Unexpected(NodeId),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<pb::PeerResponse>>>>;

struct Link {
    tx: mpsc::UnboundedSender<pb::PeerRequest>,
    pending: Pending,
    /// Cancelled when the connection ends, before `pending` is failed: a
    /// request registered after that would never be answered.
    done: tokio_util::sync::CancellationToken,
}

/// Outgoing links to every other member.
pub struct Peers {
    my_id: NodeId,
    /// Peer addresses: the `server.N` lines, then whatever the Raft
    /// membership says (members added by `reconfig` are only there).
    addrs: Mutex<HashMap<NodeId, String>>,
    links: Mutex<HashMap<NodeId, Arc<Link>>>,
    next_id: AtomicU64,
    /// `sslQuorum`: dial peers over TLS with this config.
    tls: Option<Arc<rustls::ClientConfig>>,
}

pub(super) fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// Sends the messages queued on `rx`, framed, each together with everything
/// queued behind it in one flush, until the queue closes, a write fails or
/// `stop` is cancelled. Both directions of a peer link use it.
pub(super) async fn write_batched<M: Message>(
    wr: WriteHalf,
    mut rx: mpsc::UnboundedReceiver<M>,
    stop: &tokio_util::sync::CancellationToken,
) {
    let mut out = FramedWrite::new(wr, codec());
    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = stop.cancelled() => None,
        };
        let Some(msg) = msg else { return };
        if out.feed(Bytes::from(msg.encode_to_vec())).await.is_err() {
            return;
        }
        while let Ok(msg) = rx.try_recv() {
            if out.feed(Bytes::from(msg.encode_to_vec())).await.is_err() {
                return;
            }
        }
        if SinkExt::<Bytes>::flush(&mut out).await.is_err() {
            return;
        }
    }
}

impl Peers {
    pub fn new(
        my_id: NodeId,
        servers: &[ServerLine],
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Peers {
        Peers {
            my_id,
            addrs: Mutex::new(
                servers
                    .iter()
                    .map(|s| (s.id, format!("{}:{}", s.host, s.peer_port)))
                    .collect(),
            ),
            links: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            tls,
        }
    }

    /// Records a member's address from a membership node (`spec`, see
    /// [`crate::config::ServerLine::spec`]); a changed address drops the
    /// old link so the next call dials the new one.
    pub fn learn(&self, id: NodeId, spec: &str) {
        if id == self.my_id {
            return;
        }
        let addr = crate::config::peer_addr(spec);
        let old = self.addrs.lock().insert(id, addr.clone());
        if old.is_some_and(|o| o != addr) {
            tracing::info!(member = id, %addr, "member moved to a new peer address");
            self.links.lock().remove(&id);
        }
    }

    /// The members this one knows an address for (from its `server.N`
    /// lines and the membership it has seen).
    pub fn known(&self) -> Vec<NodeId> {
        self.addrs.lock().keys().copied().collect()
    }

    /// The peer address of member `target`.
    fn addr_of(&self, target: NodeId) -> Result<String, PeerError> {
        self.addrs
            .lock()
            .get(&target)
            .cloned()
            .ok_or_else(|| PeerError::Unreachable(target, "not a member".into()))
    }

    async fn link(&self, target: NodeId) -> Result<Arc<Link>, PeerError> {
        if let Some(l) = self.links.lock().get(&target) {
            if !l.tx.is_closed() && !l.done.is_cancelled() {
                return Ok(l.clone());
            }
        }
        let addr = self.addr_of(target)?;
        let sock = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(PeerError::Unreachable(target, e.to_string())),
            Err(_) => return Err(PeerError::Unreachable(target, "connect timed out".into())),
        };
        let _ = sock.set_nodelay(true);
        let (rd, wr) = match &self.tls {
            None => {
                let (r, w) = sock.into_split();
                (Box::new(r) as ReadHalf, Box::new(w) as WriteHalf)
            }
            Some(cfg) => {
                let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
                let name = rustls_pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| PeerError::Unreachable(target, format!("TLS name {host}: {e}")))?;
                let hs = tokio_rustls::TlsConnector::from(cfg.clone()).connect(name, sock);
                match tokio::time::timeout(CONNECT_TIMEOUT * 4, hs).await {
                    Ok(Ok(s)) => split(s),
                    Ok(Err(e)) => return Err(PeerError::Unreachable(target, format!("TLS: {e}"))),
                    Err(_) => {
                        return Err(PeerError::Unreachable(
                            target,
                            "TLS handshake timed out".into(),
                        ))
                    }
                }
            }
        };
        let (tx, rx) = mpsc::unbounded_channel::<pb::PeerRequest>();
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let done = tokio_util::sync::CancellationToken::new();
        let link = Arc::new(Link {
            tx,
            pending: pending.clone(),
            done: done.clone(),
        });
        {
            let done = done.clone();
            tokio::spawn(async move {
                write_batched(wr, rx, &done).await;
                done.cancel();
            });
        }
        {
            let pending = pending.clone();
            tokio::spawn(async move {
                let mut input = FramedRead::new(rd, codec());
                loop {
                    let next = tokio::select! {
                        f = input.next() => f,
                        _ = done.cancelled() => None,
                    };
                    let Some(Ok(frame)) = next else { break };
                    let Ok(resp) = pb::PeerResponse::decode(frame.freeze()) else {
                        break;
                    };
                    if let Some(tx) = pending.lock().remove(&resp.id) {
                        let _ = tx.send(resp);
                    }
                }
                done.cancel();
                // Fail every call still waiting on this connection.
                pending.lock().clear();
            });
        }
        self.links.lock().insert(target, link.clone());
        Ok(link)
    }

    /// Queues a request to `target` (dialing if needed); the returned
    /// [`Waiting`] resolves with its response. Requests queued one after the
    /// other reach the peer in that order.
    pub async fn send(
        &self,
        target: NodeId,
        body: pb::peer_request::Body,
    ) -> Result<Waiting, PeerError> {
        let link = self.link(target).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        link.pending.lock().insert(id, tx);
        // The connection may have ended between `link()` and the insert; its
        // reader failed what was pending then, and would not see this one.
        if link.done.is_cancelled() {
            link.pending.lock().remove(&id);
            return Err(PeerError::Lost(target));
        }
        let req = pb::PeerRequest {
            id,
            from: self.my_id,
            body: Some(body),
        };
        if link.tx.send(req).is_err() {
            link.pending.lock().remove(&id);
            return Err(PeerError::Lost(target));
        }
        Ok(Waiting {
            link,
            id,
            rx,
            target,
        })
    }

    /// One request/response exchange with `target`.
    pub async fn call(
        &self,
        target: NodeId,
        body: pb::peer_request::Body,
        timeout: Option<Duration>,
    ) -> Result<pb::peer_response::Body, PeerError> {
        self.send(target, body).await?.wait(timeout).await
    }

    /// Forwards client writes to the leader. Returns once they are queued
    /// on the link (so successive calls keep their order); the future then
    /// resolves with one error string per command (empty = committed).
    pub async fn forward(
        &self,
        leader: NodeId,
        commands: Vec<pb::Command>,
    ) -> Result<impl std::future::Future<Output = Result<Vec<String>, PeerError>>, PeerError> {
        let n = commands.len();
        let w = self
            .send(
                leader,
                pb::peer_request::Body::Forward(pb::ForwardReq { commands }),
            )
            .await?;
        Ok(async move {
            match w.wait(None).await? {
                pb::peer_response::Body::Forward(r) if r.errors.len() == n => Ok(r.errors),
                _ => Err(PeerError::Unexpected(leader)),
            }
        })
    }

    /// Asks the leader to run a client's `reconfig`; returns (ZooKeeper
    /// error code, log index of the membership in force).
    pub async fn reconfig(
        &self,
        leader: NodeId,
        req: pb::ReconfigReq,
        timeout: Duration,
    ) -> Result<(i32, u64), PeerError> {
        match self
            .call(leader, pb::peer_request::Body::Reconfig(req), Some(timeout))
            .await?
        {
            pb::peer_response::Body::Reconfig(r) => Ok((r.err, r.index)),
            _ => Err(PeerError::Unexpected(leader)),
        }
    }

    /// Whether `target` already belongs to an initialized ensemble.
    pub async fn initialized(&self, target: NodeId) -> Result<bool, PeerError> {
        match self
            .call(
                target,
                pb::peer_request::Body::Status(pb::Empty {}),
                Some(Duration::from_millis(500)),
            )
            .await?
        {
            pb::peer_response::Body::Status(s) => Ok(s.initialized),
            _ => Err(PeerError::Unexpected(target)),
        }
    }

    /// Whether `target`'s process is alive, as far as its kernel says: its
    /// peer port takes a connection and keeps it open for `timeout`. A
    /// refused connection, or one reset at once (the listener of a process
    /// being torn down can still accept), means its process is gone; no
    /// answer at all (a partition, a paused host) is no evidence.
    pub async fn probe(&self, target: NodeId, timeout: Duration) -> Result<(), PeerError> {
        use tokio::io::AsyncReadExt;
        let addr = self.addr_of(target)?;
        let mut sock = match tokio::time::timeout(timeout, TcpStream::connect(&addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(PeerError::Unreachable(target, e.to_string())),
            Err(_) => return Ok(()),
        };
        let mut byte = [0u8; 1];
        match tokio::time::timeout(timeout, sock.read(&mut byte)).await {
            Err(_) | Ok(Ok(1..)) => Ok(()),
            Ok(Ok(0)) => Err(PeerError::Unreachable(target, "closed at once".into())),
            Ok(Err(e)) => Err(PeerError::Unreachable(target, e.to_string())),
        }
    }

    /// Dials `target` unless a link is already up: fails (nothing sent)
    /// when it cannot be reached.
    pub async fn connect(&self, target: NodeId) -> Result<(), PeerError> {
        self.link(target).await.map(|_| ())
    }

    /// Asks `target` whether it would vote for this member (see `elect`).
    pub async fn pre_vote(
        &self,
        target: NodeId,
        req: pb::PreVoteReq,
        timeout: Duration,
    ) -> Result<pb::PreVoteResp, PeerError> {
        match self
            .call(target, pb::peer_request::Body::PreVote(req), Some(timeout))
            .await?
        {
            pb::peer_response::Body::PreVote(r) => Ok(r),
            _ => Err(PeerError::Unexpected(target)),
        }
    }

    /// Tells the leader which sessions are alive here.
    pub async fn touch(&self, leader: NodeId, sessions: Vec<i64>) -> Result<(), PeerError> {
        self.call(
            leader,
            pb::peer_request::Body::Touch(pb::TouchReq { sessions }),
            Some(Duration::from_secs(5)),
        )
        .await
        .map(|_| ())
    }
}

/// A request on its way; resolves with the peer's response.
pub struct Waiting {
    link: Arc<Link>,
    id: u64,
    rx: oneshot::Receiver<pb::PeerResponse>,
    target: NodeId,
}

impl Waiting {
    pub async fn wait(
        self,
        timeout: Option<Duration>,
    ) -> Result<pb::peer_response::Body, PeerError> {
        let target = self.target;
        let resp = match timeout {
            Some(t) => match tokio::time::timeout(t, self.rx).await {
                Ok(r) => r,
                Err(_) => {
                    self.link.pending.lock().remove(&self.id);
                    return Err(PeerError::Timeout(target));
                }
            },
            None => self.rx.await,
        };
        match resp {
            Ok(pb::PeerResponse {
                body: Some(pb::peer_response::Body::Error(e)),
                ..
            }) => Err(PeerError::Remote(target, e)),
            Ok(pb::PeerResponse { body: Some(b), .. }) => Ok(b),
            Ok(_) => Err(PeerError::Unexpected(target)),
            Err(_) => Err(PeerError::Lost(target)),
        }
    }
}

/// openraft's per-target client.
pub struct Network {
    peers: Arc<Peers>,
    target: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for Arc<Peers> {
    type Network = Network;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Network {
        self.learn(target, &node.addr);
        Network {
            peers: self.clone(),
            target,
        }
    }
}

fn rpc_err<E: std::error::Error>(e: PeerError) -> RPCError<NodeId, BasicNode, E> {
    match e {
        PeerError::Unreachable(..) => RPCError::Unreachable(Unreachable::new(&e)),
        _ => RPCError::Network(NetworkError::new(&e)),
    }
}

impl Network {
    /// One exchange with the target within openraft's deadline.
    async fn rpc<E: std::error::Error>(
        &self,
        body: pb::peer_request::Body,
        option: &RPCOption,
    ) -> Result<pb::peer_response::Body, RPCError<NodeId, BasicNode, E>> {
        self.peers
            .call(self.target, body, Some(option.hard_ttl()))
            .await
            .map_err(rpc_err)
    }

    /// The target answered with the wrong kind of response.
    fn unexpected<E: std::error::Error>(&self) -> RPCError<NodeId, BasicNode, E> {
        rpc_err(PeerError::Unexpected(self.target))
    }
}

impl RaftNetwork<TypeConfig> for Network {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let body = pb::peer_request::Body::Append(pb::AppendReq {
            vote: Some(vote_to_pb(&rpc.vote)),
            prev: opt_log_id_to_pb(&rpc.prev_log_id),
            entries: rpc.entries.iter().map(entry_to_pb).collect(),
            commit: opt_log_id_to_pb(&rpc.leader_commit),
        });
        let resp = self.rpc(body, &option).await?;
        use pb::append_resp::R;
        match resp {
            pb::peer_response::Body::Append(a) => Ok(match a.r {
                Some(R::Success(_)) => AppendEntriesResponse::Success,
                Some(R::Partial(p)) => {
                    AppendEntriesResponse::PartialSuccess(opt_log_id_from_pb(&p.matched))
                }
                Some(R::Conflict(_)) => AppendEntriesResponse::Conflict,
                Some(R::HigherVote(v)) => AppendEntriesResponse::HigherVote(vote_from_pb(&Some(v))),
                None => return Err(self.unexpected()),
            }),
            _ => Err(self.unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let body = pb::peer_request::Body::Snapshot(pb::SnapshotReq {
            vote: Some(vote_to_pb(&rpc.vote)),
            meta: Some(meta_to_pb(&rpc.meta)),
            offset: rpc.offset,
            data: Bytes::from(rpc.data),
            done: rpc.done,
        });
        let resp = self.rpc(body, &option).await?;
        match resp {
            pb::peer_response::Body::Snapshot(s) => Ok(InstallSnapshotResponse {
                vote: vote_from_pb(&s.vote),
            }),
            _ => Err(self.unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let body = pb::peer_request::Body::Vote(pb::VoteReq {
            vote: Some(vote_to_pb(&rpc.vote)),
            last: opt_log_id_to_pb(&rpc.last_log_id),
        });
        let resp = self.rpc(body, &option).await?;
        match resp {
            pb::peer_response::Body::Vote(v) => Ok(VoteResponse {
                vote: vote_from_pb(&v.vote),
                vote_granted: v.granted,
                last_log_id: opt_log_id_from_pb(&v.last),
            }),
            _ => Err(self.unexpected()),
        }
    }
}
