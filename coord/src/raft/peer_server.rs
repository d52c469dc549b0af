//! The receiving side of the peer links (`net` is the sending side): binds
//! this member's peer port and serves other members' requests — openraft's
//! AppendEntries, votes and snapshot chunks, forwarded client writes,
//! session touches, reconfigs, status and pre-vote questions. An
//! AppendEntries taken here is what tells the elector a leader is alive,
//! and the end of a leader's connection may mean its process died.

use std::sync::Arc;
use std::time::Duration;

use fjord_proto::raft as pb;
use futures_util::StreamExt;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use super::elect::LinkId;
use super::ensemble::Ensemble;
use super::net::{codec, split, write_batched, ReadHalf, WriteHalf};
use super::sm::meta_from_pb;
use super::types::{
    entry_from_pb, opt_log_id_from_pb, opt_log_id_to_pb, vote_from_pb, vote_to_pb, EnsembleError,
    NodeId,
};
use crate::config::ServerLine;
use crate::core::Core;

/// Binds this member's peer port and serves other members' requests.
pub async fn serve(
    me: &ServerLine,
    ens: Arc<Ensemble>,
    core: Arc<parking_lot::Mutex<Core>>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(), EnsembleError> {
    let addr = format!("{}:{}", me.host, me.peer_port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| EnsembleError::Bind {
            addr: addr.clone(),
            source,
        })?;
    tracing::info!(%addr, member = me.id, "listening for ensemble peers");
    tokio::spawn(async move {
        let mut next_link: LinkId = 0;
        loop {
            match listener.accept().await {
                Ok((sock, peer)) => {
                    let _ = sock.set_nodelay(true);
                    next_link += 1;
                    let link = next_link;
                    let ens = ens.clone();
                    let core = core.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let halves = match tls {
                            None => {
                                let (r, w) = sock.into_split();
                                (Box::new(r) as ReadHalf, Box::new(w) as WriteHalf)
                            }
                            Some(cfg) => {
                                let hs = tokio_rustls::TlsAcceptor::from(cfg).accept(sock);
                                match tokio::time::timeout(Duration::from_secs(10), hs).await {
                                    Ok(Ok(s)) => split(s),
                                    Ok(Err(e)) => {
                                        tracing::info!(%peer, error = %e, "peer TLS handshake failed (sslQuorum); closed");
                                        return;
                                    }
                                    Err(_) => {
                                        tracing::debug!(%peer, "peer TLS handshake timed out (a liveness probe?)");
                                        return;
                                    }
                                }
                            }
                        };
                        let mut leader = None;
                        if let Err(e) = serve_conn(halves, link, &ens, core, &mut leader).await {
                            tracing::debug!(%peer, error = %e, "peer connection ended");
                        }
                        if let Some(from) = leader {
                            ens.elector.link_closed(from, link);
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    Ok(())
}

fn error_body(e: impl std::fmt::Display) -> pb::peer_response::Body {
    pb::peer_response::Body::Error(e.to_string())
}

/// Serves one peer connection (`link`) until it ends; `appends_from` is
/// set to the member that sent AppendEntries on it (a leader), whose
/// connection ending may mean its process died (see `elect`).
async fn serve_conn(
    (rd, wr): (ReadHalf, WriteHalf),
    link: LinkId,
    ens: &Arc<Ensemble>,
    core: Arc<parking_lot::Mutex<Core>>,
    appends_from: &mut Option<NodeId>,
) -> std::io::Result<()> {
    let (tx, rx) = mpsc::unbounded_channel::<pb::PeerResponse>();
    tokio::spawn(async move {
        write_batched(wr, rx, &tokio_util::sync::CancellationToken::new()).await;
    });
    let mut input = FramedRead::new(rd, codec());
    while let Some(frame) = input.next().await {
        let req = pb::PeerRequest::decode(frame?.freeze())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let id = req.id;
        let reply = {
            let tx = tx.clone();
            move |body: pb::peer_response::Body| {
                let _ = tx.send(pb::PeerResponse {
                    id,
                    body: Some(body),
                });
            }
        };
        let raft = ens.raft.clone();
        match req.body {
            Some(pb::peer_request::Body::Append(a)) => {
                *appends_from = Some(req.from);
                let (ens, from) = (ens.clone(), req.from);
                let rpc = AppendEntriesRequest {
                    vote: vote_from_pb(&a.vote),
                    prev_log_id: opt_log_id_from_pb(&a.prev),
                    entries: a.entries.iter().map(entry_from_pb).collect(),
                    leader_commit: opt_log_id_from_pb(&a.commit),
                };
                tokio::spawn(async move {
                    use pb::append_resp::R;
                    let resp = raft.append_entries(rpc).await;
                    if matches!(&resp, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_)))
                    {
                        ens.elector.heard_from_leader(from, link);
                    }
                    reply(match resp {
                        Ok(r) => pb::peer_response::Body::Append(pb::AppendResp {
                            r: Some(match r {
                                AppendEntriesResponse::Success => R::Success(true),
                                AppendEntriesResponse::PartialSuccess(m) => {
                                    R::Partial(pb::PartialSuccess {
                                        matched: opt_log_id_to_pb(&m),
                                    })
                                }
                                AppendEntriesResponse::Conflict => R::Conflict(true),
                                AppendEntriesResponse::HigherVote(v) => {
                                    R::HigherVote(vote_to_pb(&v))
                                }
                            }),
                        }),
                        Err(e) => error_body(e),
                    })
                });
            }
            Some(pb::peer_request::Body::Vote(v)) => {
                let rpc = VoteRequest {
                    vote: vote_from_pb(&v.vote),
                    last_log_id: opt_log_id_from_pb(&v.last),
                };
                let ens = ens.clone();
                tokio::spawn(async move {
                    let resp = raft.vote(rpc).await;
                    if matches!(&resp, Ok(r) if r.vote_granted) {
                        ens.elector.granted_vote();
                    }
                    reply(match resp {
                        Ok(r) => pb::peer_response::Body::Vote(pb::VoteResp {
                            vote: Some(vote_to_pb(&r.vote)),
                            granted: r.vote_granted,
                            last: opt_log_id_to_pb(&r.last_log_id),
                        }),
                        Err(e) => error_body(e),
                    })
                });
            }
            Some(pb::peer_request::Body::Snapshot(s)) => {
                let rpc = InstallSnapshotRequest {
                    vote: vote_from_pb(&s.vote),
                    meta: meta_from_pb(&s.meta.unwrap_or_default()),
                    offset: s.offset,
                    data: s.data.to_vec(),
                    done: s.done,
                };
                let (ens, from, vote) = (ens.clone(), req.from, rpc.vote);
                tokio::spawn(async move {
                    let resp = raft.install_snapshot(rpc).await;
                    // A chunk taken under the leader's vote is contact too: a
                    // long snapshot must not read as a silent leader.
                    if matches!(&resp, Ok(r) if r.vote == vote) {
                        ens.elector.heard_from_leader(from, link);
                    }
                    reply(match resp {
                        Ok(r) => pb::peer_response::Body::Snapshot(pb::SnapshotResp {
                            vote: Some(vote_to_pb(&r.vote)),
                        }),
                        Err(e) => error_body(e),
                    })
                });
            }
            Some(pb::peer_request::Body::Forward(f)) => {
                // Submitted here, in arrival order, as one entry; awaited elsewhere.
                let n = f.commands.len();
                let rx = raft
                    .client_write_ff(pb::CommandBatch {
                        commands: f.commands,
                    })
                    .await
                    .ok();
                tokio::spawn(async move {
                    let error = match rx {
                        None => "raft stopped".to_string(),
                        Some(rx) => match rx.await {
                            Ok(Ok(_)) => String::new(),
                            Ok(Err(e)) => e.to_string(),
                            Err(_) => "raft stopped".to_string(),
                        },
                    };
                    reply(pb::peer_response::Body::Forward(pb::ForwardResp {
                        errors: vec![error; n],
                    }))
                });
            }
            Some(pb::peer_request::Body::Touch(t)) => {
                {
                    let mut core = core.lock();
                    for s in t.sessions {
                        core.sessions_mut().touch(s);
                    }
                }
                reply(pb::peer_response::Body::Touch(pb::Empty {}));
            }
            Some(pb::peer_request::Body::Reconfig(r)) => {
                let ens = ens.clone();
                tokio::spawn(async move {
                    let (err, index) = match ens.execute_reconfig(&r).await {
                        Ok(index) => (0, index),
                        Err(e) => (e.code(), 0),
                    };
                    reply(pb::peer_response::Body::Reconfig(pb::ReconfigResp {
                        err,
                        index,
                    }))
                });
            }
            Some(pb::peer_request::Body::Status(_)) => {
                tokio::spawn(async move {
                    let initialized = raft.is_initialized().await.unwrap_or(false);
                    reply(pb::peer_response::Body::Status(pb::StatusResp {
                        initialized,
                    }))
                });
            }
            Some(pb::peer_request::Body::PreVote(p)) => {
                reply(pb::peer_response::Body::PreVote(
                    ens.elector.pre_vote(req.from, &p),
                ));
            }
            None => reply(error_body("empty request")),
        }
    }
    Ok(())
}
