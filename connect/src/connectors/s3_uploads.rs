//! The S3 sink's uploads in flight: up to [`MAX_IN_FLIGHT`] PUTs at once (objects of
//! any partitions, several of one partition too), each retried on its own, and per
//! partition the offset up to which every object is in S3: only that may be committed,
//! so an object that finishes before an earlier one of its partition waits for it.
//! Why: one PUT at a time left the consumer idle during every upload and the S3
//! endpoint idle between them (see "S3 sink throughput" in docs/operations.md).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::{AbortHandle, JoinError, JoinSet};

use super::records::TaskError;
use super::s3_client::{S3Client, S3Error};

/// PUTs of one task at once. Four keep moto's threads and a real endpoint's
/// connections busy while the task fills the next objects; more only holds more
/// objects in memory (each up to `flush.size` records).
pub const MAX_IN_FLIGHT: usize = 4;

type Tp = (String, i32);

/// How an S3 call is retried while the endpoint is unavailable: until `timeout_ms`
/// (`errors.retry.timeout`; -1 forever, 0: `part_retries` times instead), with a
/// doubling backoff from `backoff_ms` capped at `delay_max_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub backoff_ms: i64,
    pub part_retries: i64,
    pub timeout_ms: i64,
    pub delay_max_ms: i64,
}

/// Run `call` under `retry`; a refusal (4xx) or running out of retries is fatal.
pub async fn with_retries<F, Fut>(retry: Retry, what: &str, call: F) -> Result<(), TaskError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), S3Error>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(retry.backoff_ms.max(1) as u64);
    let cap = Duration::from_millis(retry.delay_max_ms.max(1) as u64);
    let mut attempt = 0i64;
    loop {
        match call().await {
            Ok(()) => return Ok(()),
            Err(S3Error::Unavailable(m)) => {
                attempt += 1;
                let more = match retry.timeout_ms {
                    -1 => true,
                    0 => attempt <= retry.part_retries,
                    t => started.elapsed() < Duration::from_millis(t as u64),
                };
                if !more {
                    return Err(TaskError::Fatal(format!(
                        "org.apache.kafka.connect.errors.ConnectException: {what} failed after {attempt} attempts in {:?}: {m}",
                        started.elapsed()
                    )));
                }
                tracing::warn!(attempt, error = %m, "{what} failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(cap);
            }
            Err(e) => {
                return Err(TaskError::Fatal(format!(
                    "org.apache.kafka.connect.errors.ConnectException: {what}: {e}"
                )))
            }
        }
    }
}

/// One object on its way: the offset after its last record, and whether it is in S3.
struct Pending {
    id: u64,
    end: i64,
    done: bool,
    abort: AbortHandle,
}

pub struct Uploads {
    client: Arc<S3Client>,
    retry: Retry,
    set: JoinSet<(u64, Result<(), TaskError>)>,
    /// Upload id → its partition; an id missing here was discarded (its result is ignored).
    owner: HashMap<u64, Tp>,
    /// Per partition, its uploads in offset order.
    pending: BTreeMap<Tp, VecDeque<Pending>>,
    /// Per partition: every record before this offset is in S3.
    written: BTreeMap<Tp, i64>,
    next_id: u64,
}

impl Uploads {
    pub fn new(client: Arc<S3Client>, retry: Retry) -> Self {
        Uploads {
            client,
            retry,
            set: JoinSet::new(),
            owner: HashMap::new(),
            pending: BTreeMap::new(),
            written: BTreeMap::new(),
            next_id: 0,
        }
    }

    /// Start the PUT of `body` as `key`, holding `tp`'s records up to `end`; when
    /// [`MAX_IN_FLIGHT`] are under way, first wait for one. Returns whether the
    /// committable offsets moved meanwhile.
    pub async fn start(
        &mut self,
        tp: Tp,
        key: String,
        body: Bytes,
        end: i64,
    ) -> Result<bool, TaskError> {
        let mut moved = false;
        while self.set.len() >= MAX_IN_FLIGHT {
            moved |= self.wait_one().await?;
        }
        let id = self.next_id;
        self.next_id += 1;
        let client = self.client.clone();
        let retry = self.retry;
        let abort = self.set.spawn(async move {
            let r = with_retries(retry, "PUT object", || {
                client.put_object(&key, body.clone())
            })
            .await;
            if r.is_ok() {
                tracing::debug!(object = %key, "uploaded");
            }
            (id, r)
        });
        self.owner.insert(id, tp.clone());
        self.pending.entry(tp).or_default().push_back(Pending {
            id,
            end,
            done: false,
            abort,
        });
        Ok(moved)
    }

    /// Take in the uploads that have finished, without waiting.
    pub fn reap(&mut self) -> Result<bool, TaskError> {
        let mut moved = false;
        while let Some(r) = self.set.try_join_next() {
            moved |= self.finish(r)?;
        }
        Ok(moved)
    }

    /// Wait for every upload under way (a graceful stop).
    pub async fn drain(&mut self) -> Result<bool, TaskError> {
        let mut moved = false;
        while !self.set.is_empty() {
            moved |= self.wait_one().await?;
        }
        Ok(moved)
    }

    async fn wait_one(&mut self) -> Result<bool, TaskError> {
        match self.set.join_next().await {
            Some(r) => self.finish(r),
            None => Ok(false),
        }
    }

    fn finish(
        &mut self,
        r: Result<(u64, Result<(), TaskError>), JoinError>,
    ) -> Result<bool, TaskError> {
        let (id, result) = match r {
            Ok(x) => x,
            Err(e) if e.is_cancelled() => return Ok(false),
            Err(e) => {
                return Err(TaskError::Fatal(format!(
                    "org.apache.kafka.connect.errors.ConnectException: upload task ended: {e}"
                )))
            }
        };
        let Some(tp) = self.owner.remove(&id) else {
            return Ok(false);
        };
        result?;
        let Some(q) = self.pending.get_mut(&tp) else {
            return Ok(false);
        };
        if let Some(p) = q.iter_mut().find(|p| p.id == id) {
            p.done = true;
        }
        let mut moved = false;
        while q.front().is_some_and(|p| p.done) {
            if let Some(p) = q.pop_front() {
                self.written.insert(tp.clone(), p.end);
                moved = true;
            }
        }
        if q.is_empty() {
            self.pending.remove(&tp);
        }
        Ok(moved)
    }

    /// The end of everything handed over for `tp` (written or under way).
    pub fn end_of(&self, tp: &Tp) -> Option<i64> {
        self.pending
            .get(tp)
            .and_then(|q| q.back().map(|p| p.end))
            .or_else(|| self.written.get(tp).copied())
    }

    /// Forget `tp`'s uploads (its records are being delivered again): those under way
    /// are aborted, and nothing of it is committable until new ones finish.
    pub fn discard(&mut self, tp: &Tp) {
        if let Some(q) = self.pending.remove(tp) {
            for p in q {
                p.abort.abort();
                self.owner.remove(&p.id);
            }
        }
        self.written.remove(tp);
    }

    /// Forget everything (stop, rebalance); uploads under way are aborted.
    pub fn clear(&mut self) {
        self.set.abort_all();
        self.owner.clear();
        self.pending.clear();
        self.written.clear();
    }

    /// Offsets safe to commit: per partition, the end of what is in S3.
    pub fn committable(&self) -> BTreeMap<Tp, i64> {
        self.written.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A local HTTP endpoint that answers every PUT with 200, those of keys holding
    /// "slow" only once `release` gives a permit.
    async fn endpoint(release: Arc<tokio::sync::Semaphore>) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let release = release.clone();
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    if String::from_utf8_lossy(&req).contains("slow") {
                        if let Ok(p) = release.acquire().await {
                            p.forget();
                        }
                    }
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await;
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_partition_commits_only_up_to_its_first_unfinished_object() {
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let client =
            S3Client::new(&endpoint(release.clone()).await, "b", "us-east-1", None).unwrap();
        let retry = Retry {
            backoff_ms: 10,
            part_retries: 0,
            timeout_ms: 0,
            delay_max_ms: 10,
        };
        let mut u = Uploads::new(Arc::new(client), retry);
        let tp = ("t".to_string(), 0);
        let other = ("t".to_string(), 1);
        u.start(tp.clone(), "slow-0".into(), Bytes::from_static(b"a"), 10)
            .await
            .unwrap();
        u.start(tp.clone(), "fast-10".into(), Bytes::from_static(b"b"), 20)
            .await
            .unwrap();
        u.start(other.clone(), "fast-p1".into(), Bytes::from_static(b"c"), 5)
            .await
            .unwrap();
        assert_eq!(u.end_of(&tp), Some(20));
        // The fast ones finish: partition 1 is committable, partition 0 is not (its
        // first object is held back by the endpoint).
        while !u.committable().contains_key(&other) {
            assert!(
                u.set.len() > 1,
                "partition 1's object finished but is not committable"
            );
            u.wait_one().await.unwrap();
        }
        u.reap().unwrap();
        assert!(!u.committable().contains_key(&tp));
        assert_eq!(u.set.len(), 1, "only the slow object is still under way");
        release.add_permits(1);
        u.drain().await.unwrap();
        assert_eq!(u.committable().get(&tp), Some(&20));
        // A discarded partition has nothing committable until new uploads finish.
        u.discard(&tp);
        assert!(!u.committable().contains_key(&tp));
        assert_eq!(u.end_of(&tp), None);
    }
}
