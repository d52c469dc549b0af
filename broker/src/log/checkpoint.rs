//! The high-watermark checkpoint task (Kafka's replication-offset-checkpoint):
//! every `replica.high.watermark.checkpoint.interval.ms` the HW of every
//! partition that moved is written with one fsynced write, so a restarted
//! replica starts from a HW it knew committed, never from its log end
//! (records above it may be truncated away later and must not be read).
//! `LogStore::shutdown` writes a last one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::store::LogStore;

/// Checkpoint high watermarks every `every` until `stop` turns true.
pub async fn hw_checkpoint_loop(
    log: Arc<LogStore>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut last = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let log = log.clone();
        let Ok(l) = tokio::task::spawn_blocking(move || {
            log.checkpoint_hw(&mut last);
            last
        })
        .await
        else {
            return;
        };
        last = l;
    }
}
