//! The log's periodic sweeps. Retention: every
//! `log.retention.check.interval.ms`, drop whole batches past each
//! partition's time or size limit and compact what was freed; the limits per
//! topic come from the caller (topic overrides or broker defaults), so the log
//! needs no view of cluster metadata. Producer expiry: every
//! `producer.id.expiration.check.interval.ms`, forget producers silent for
//! `producer.id.expiration.ms`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::store::LogStore;
use crate::wire::clock::now_ms;

/// (retention.ms, retention.bytes) in effect for a topic.
pub type Limits = Arc<dyn Fn(&str) -> (i64, i64) + Send + Sync>;

/// Run retention until `stop` turns true.
pub async fn retention_loop(
    log: Arc<LogStore>,
    limits: Limits,
    every: Duration,
    stop: watch::Receiver<bool>,
) {
    sweep_every(every, stop, move || {
        let now = now_ms();
        for p in log.all() {
            let (ms, bytes) = limits(&p.topic);
            match log.apply_retention(&p, now, ms, bytes) {
                Ok(Some(_)) => log.compact_partition(&p),
                Ok(None) => {}
                Err(e) => tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "retention failed"),
            }
        }
    })
    .await
}

/// Run producer expiry until `stop` turns true.
pub async fn producer_expiry_loop(
    log: Arc<LogStore>,
    expiration_ms: i64,
    every: Duration,
    stop: watch::Receiver<bool>,
) {
    sweep_every(every, stop, move || {
        let now = now_ms();
        for p in log.all() {
            let n = log.expire_producers(&p, now, expiration_ms);
            if n > 0 {
                tracing::debug!(topic = %p.topic, partition = p.index, producers = n, "expired producer ids");
            }
        }
    })
    .await
}

/// Run `sweep` on the blocking pool (it may write to the disk) every `every`, at
/// least 100 ms apart, until `stop` turns true.
async fn sweep_every<F>(every: Duration, mut stop: watch::Receiver<bool>, sweep: F)
where
    F: Fn() + Send + Sync + 'static,
{
    let every = every.max(Duration::from_millis(100));
    let sweep = Arc::new(sweep);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let sweep = sweep.clone();
        let _ = tokio::task::spawn_blocking(move || sweep()).await;
    }
}
