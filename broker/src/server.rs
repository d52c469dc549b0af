//! The Kafka listener: length-framed requests over TCP, decoded in read order,
//! answered in request order. Each connection has a reader (frames → handler
//! futures, in order) and a writer (awaits them in order, batches writes).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::api::{self, Pending};
use crate::broker::Broker;
use crate::wire::codec::{self, Decoded};

/// Frames allowed before the first valid request (a stranger's first bytes
/// must not make us allocate socket.request.max.bytes).
const PRE_AUTH_FRAME_CAP: usize = 1 << 20;
/// Requests a connection may have in flight before we stop reading.
const PIPELINE_DEPTH: usize = 256;

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

/// Accept connections until the broker's shutdown signal.
pub async fn serve(b: Arc<Broker>, listener: TcpListener, conns: Arc<ConnCounter>) {
    let mut stop = b.shutdown_signal();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, peer)) => {
                    let _ = sock.set_nodelay(true);
                    conns.0.fetch_add(1, Ordering::SeqCst);
                    let guard = ConnGuard(conns.clone());
                    let b = b.clone();
                    tokio::spawn(async move {
                        let _g = guard;
                        if let Err(e) = connection(b, sock).await {
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

enum Out {
    Pending(kafka_protocol::messages::ApiKey, i16, i32, Pending),
    Raw(Bytes),
}

async fn connection(b: Arc<Broker>, sock: TcpStream) -> anyhow::Result<()> {
    let peer = sock.peer_addr().ok();
    let (mut rd, wr) = sock.into_split();
    let (tx, mut rx) = mpsc::channel::<Out>(PIPELINE_DEPTH);
    let writer = tokio::spawn(async move {
        let mut w = BufWriter::with_capacity(64 * 1024, wr);
        while let Some(o) = rx.recv().await {
            let bytes = match o {
                Out::Raw(b) => Some(b),
                Out::Pending(key, version, corr, fut) => match fut.await {
                    None => None,
                    Some(body) => match codec::encode_response(key, version, corr, &body) {
                        Ok(b) => Some(b),
                        Err(e) => {
                            tracing::error!(?key, version, error = %e, "cannot encode response; closing");
                            return;
                        }
                    },
                },
            };
            if let Some(bytes) = bytes {
                if w.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            if rx.is_empty() && w.flush().await.is_err() {
                return;
            }
        }
        let _ = w.flush().await;
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
                    req.peer = peer;
                    seen_valid = true;
                    let key = req.api_key;
                    let version = req.version;
                    let corr = req.header.correlation_id;
                    let fut = api::dispatch(&b, *req);
                    if tx
                        .send(Out::Pending(key, version, corr, fut))
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
