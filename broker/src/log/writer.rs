//! The group-commit writer: one thread drains every queued append into a
//! single atomic `PartitionStore::append`, fsyncs per the flush policy
//! (`log.flush.interval.*`), then advances each partition's durable end (and
//! so the leader's HW) and wakes waiting fetches and acks.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::disk::DiskGuard;
use super::error::LogError;
use super::hw::Role;
use super::partition::{recompute_hw, wake, Partition};
use super::partition_store::PartitionStore;

/// Upper bound of one group-commit write.
pub(crate) const MAX_GROUP_BYTES: usize = 64 << 20;

pub(crate) struct WriteEntry {
    pub(crate) part: Arc<Partition>,
    pub(crate) base: i64,
    pub(crate) last: i64,
    pub(crate) data: Bytes,
    pub(crate) msgs: i64,
}

pub(crate) struct WriteJob {
    pub(crate) entry: Option<WriteEntry>,
    pub(crate) done: Option<oneshot::Sender<Result<(), String>>>,
}

/// Flush policy: fsync after this many messages or this long (Kafka's log.flush.*).
#[derive(Debug, Clone, Copy)]
pub struct FlushPolicy {
    pub interval_messages: i64,
    pub interval: Option<Duration>,
}

/// Queue `entries` for the writer thread; only the last carries a completion,
/// since the writer finishes a partition's jobs in order. None when empty.
pub(crate) fn send_entries(
    tx: &mpsc::Sender<WriteJob>,
    entries: Vec<WriteEntry>,
) -> Result<Option<oneshot::Receiver<Result<(), String>>>, LogError> {
    let n = entries.len();
    let mut result_rx = None;
    for (i, entry) in entries.into_iter().enumerate() {
        let done = (i + 1 == n).then(|| {
            let (dtx, drx) = oneshot::channel();
            result_rx = Some(drx);
            dtx
        });
        tx.send(WriteJob {
            entry: Some(entry),
            done,
        })
        .map_err(|_| LogError::Stopped)?;
    }
    Ok(result_rx)
}

pub(crate) fn writer_loop(
    db: Arc<dyn PartitionStore>,
    rx: mpsc::Receiver<WriteJob>,
    flush: FlushPolicy,
    disk: Arc<DiskGuard>,
) {
    let mut unsynced_msgs: i64 = 0;
    let mut last_sync = Instant::now();
    let mut jobs: Vec<WriteJob> = Vec::with_capacity(1024);
    while let Ok(first) = rx.recv() {
        jobs.push(first);
        let mut bytes = 0usize;
        while bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(j) => {
                    bytes += j.entry.as_ref().map(|e| e.data.len()).unwrap_or(0);
                    jobs.push(j)
                }
                Err(_) => break,
            }
        }
        let mut wb: Vec<(u32, i64, &Bytes)> = Vec::with_capacity(jobs.len());
        let mut msgs = 0i64;
        let mut written = 0u64;
        for j in &jobs {
            if let Some(e) = &j.entry {
                if e.part.deleted.load(Ordering::Relaxed) {
                    continue;
                }
                wb.push((e.part.id, e.base, &e.data));
                msgs += e.msgs;
                written += e.data.len() as u64;
            }
        }
        // After a failed write nothing is written until `LogStore::resume`
        // has cut the logs back: a later batch must not land past a hole.
        let err = if disk.failed() {
            Some("the log store refuses writes after a failed write".to_string())
        } else {
            unsynced_msgs += msgs;
            let sync = unsynced_msgs >= flush.interval_messages
                || flush.interval.is_some_and(|i| last_sync.elapsed() >= i);
            let res = db.append(&wb, sync);
            if sync {
                unsynced_msgs = 0;
                last_sync = Instant::now();
            }
            metrics::counter!("fjord_log_group_commits_total").increment(1);
            match res {
                Ok(()) => {
                    disk.wrote(written);
                    None
                }
                Err(e) => {
                    disk.set_failed(&e);
                    Some(e)
                }
            }
        };
        for j in jobs.drain(..) {
            if let Some(e) = &j.entry {
                let mut s = e.part.state.lock();
                if err.is_some() {
                    // Not durable: `resume` cuts the log back to `durable`.
                } else if e.last + 1 > s.durable {
                    s.durable = e.last + 1;
                    if s.repl.role == Role::Leader {
                        recompute_hw(&mut s);
                    }
                }
                wake(&mut s);
            }
            if let Some(d) = j.done {
                let _ = d.send(match &err {
                    None => Ok(()),
                    Some(e) => Err(e.clone()),
                });
            }
        }
    }
    tracing::debug!("log writer drained and stopped");
}
