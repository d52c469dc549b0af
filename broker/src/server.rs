//! The Kafka listener: length-framed requests over TCP, decoded in read order,
//! answered in request order. Each connection has a reader (frames → handler
//! futures, in order) and a writer (awaits them in order, batches writes;
//! fetched records go to the socket by reference, with vectored writes).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::api::{self, Pending};
use crate::broker::Broker;
use crate::wire::codec::{self, Decoded};
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

    async fn flush(&mut self, w: &mut OwnedWriteHalf) -> std::io::Result<()> {
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
        Ok(())
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

async fn connection(b: Arc<Broker>, sock: TcpStream) -> anyhow::Result<()> {
    let peer = sock.peer_addr().ok();
    let (mut rd, wr) = sock.into_split();
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
                    req.peer = peer;
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
