//! A source task's delivery reports, counted per batch: the producer's context
//! (librdkafka calls it on its polling thread for every record) counts the records
//! of each batch that are acknowledged, and the task waits for a whole batch. One
//! future per record (rdkafka's `FutureProducer`: a channel, a box and a wake-up
//! each) was a tenth of the worker's CPU in the S3 benchmark.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use rdkafka::client::ClientContext;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use tokio::sync::Notify;

/// A source batch's sequence number: every record of it carries it to its report.
pub type BatchId = usize;

/// The producer context of a source task.
#[derive(Default)]
pub struct Acks {
    state: Mutex<State>,
    /// Woken when a batch completes or a record fails (one waiter: the task).
    changed: Notify,
}

#[derive(Default)]
struct State {
    /// Batches not complete yet: records acknowledged, and how many were sent once
    /// the whole batch is handed over (reports may come before that).
    open: HashMap<BatchId, (usize, Option<usize>)>,
    /// The first record the producer gave up on: the task fails with it.
    failed: Option<String>,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = BatchId;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: BatchId) {
        let failure = result.as_ref().err().map(|(e, _)| {
            format!("org.apache.kafka.connect.errors.ConnectException: Unrecoverable exception from producer send callback: {e}")
        });
        self.record_done(batch, failure);
    }
}

impl Acks {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One record of `batch` is acknowledged, or (`failure`) the producer gave up on it.
    fn record_done(&self, batch: BatchId, failure: Option<String>) {
        let mut s = self.lock();
        if let Some(f) = failure {
            s.failed.get_or_insert(f);
            drop(s);
            self.changed.notify_one();
            return;
        }
        let complete = match s.open.get_mut(&batch) {
            Some((acked, sent)) => {
                *acked += 1;
                *sent == Some(*acked)
            }
            None => false,
        };
        if complete {
            s.open.remove(&batch);
            drop(s);
            self.changed.notify_one();
        }
    }

    /// Before the first record of `batch` is sent.
    pub fn open(&self, batch: BatchId) {
        self.lock().open.insert(batch, (0, None));
    }

    /// After the last record of `batch` is sent: `sent` records in all.
    pub fn seal(&self, batch: BatchId, sent: usize) {
        let mut s = self.lock();
        let complete = match s.open.get_mut(&batch) {
            Some((acked, total)) => {
                *total = Some(sent);
                *acked == sent
            }
            None => false,
        };
        if complete {
            s.open.remove(&batch);
        }
    }

    /// Wait until every record of the sealed `batch` is acknowledged, or fail with
    /// the first record the producer gave up on (of any batch).
    pub async fn wait(&self, batch: BatchId) -> Result<(), String> {
        loop {
            {
                let s = self.lock();
                if let Some(e) = &s.failed {
                    return Err(e.clone());
                }
                if !s.open.contains_key(&batch) {
                    return Ok(());
                }
            }
            self.changed.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// `wait` with a short deadline: `Err` if the batch is not done by then.
    async fn done(a: &Acks, b: BatchId) -> Result<Result<(), String>, tokio::time::error::Elapsed> {
        tokio::time::timeout(Duration::from_millis(50), a.wait(b)).await
    }

    #[tokio::test]
    async fn a_batch_is_done_when_sealed_and_all_acknowledged() {
        let a = Acks::default();
        a.open(0);
        a.seal(0, 0);
        assert_eq!(done(&a, 0).await, Ok(Ok(())), "an empty batch is done");
        a.open(1);
        a.open(2);
        // Reports before the seal count; another batch's do not.
        a.record_done(1, None);
        a.record_done(2, None);
        a.record_done(1, None);
        a.seal(1, 3);
        assert!(
            done(&a, 1).await.is_err(),
            "one record is not acknowledged yet"
        );
        a.record_done(1, None);
        assert_eq!(done(&a, 1).await, Ok(Ok(())));
        a.seal(2, 1);
        assert_eq!(
            done(&a, 2).await,
            Ok(Ok(())),
            "acknowledged before its seal"
        );
        a.open(3);
        a.record_done(3, Some("boom".into()));
        a.seal(3, 1);
        assert_eq!(done(&a, 3).await, Ok(Err("boom".to_string())));
    }
}
