//! The log directory's monitor (issue 19): while the free-space guard is
//! tripped it re-measures, so produce resumes without traffic; after a
//! failed write it probes the store and, once a write goes through again
//! (RocksDB clears a no-space error by itself when there is room), runs
//! `LogStore::resume`; when the store still refuses with room on disk (EIO,
//! which RocksDB keeps until reopened) it reopens it first
//! (`LogStore::reopen`). No restart is needed for either.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::disk::Refusal;
use super::store::LogStore;

/// How often the monitor looks.
const EVERY: Duration = Duration::from_millis(500);
/// Reopens at most this often (each replays the WAL).
const REOPEN_EVERY: Duration = Duration::from_secs(3);

/// Run until `stop` turns true.
pub async fn disk_monitor_loop(log: Arc<LogStore>, mut stop: watch::Receiver<bool>) {
    let mut last_reopen: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
        let disk = log.disk().clone();
        if disk.refusal().is_some() {
            // Below the floor, deletions (topic deletion, retention) give
            // their space back at once: flush, then measure again.
            let l = log.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if disk.refusal() == Some(Refusal::LowSpace) {
                    l.reclaim_if_wanted();
                }
                disk.check()
            })
            .await;
        }
        if !log.disk().failed() {
            continue;
        }
        let l = log.clone();
        match tokio::task::spawn_blocking(move || l.probe()).await {
            Ok(Ok(())) => {
                if let Err(e) = log.resume().await {
                    tracing::error!(error = %e, "resuming the log store failed; retrying");
                }
            }
            Ok(Err(e))
                if log.disk().has_room()
                    && last_reopen.is_none_or(|t| t.elapsed() >= REOPEN_EVERY) =>
            {
                last_reopen = Some(std::time::Instant::now());
                // Room, yet refused: RocksDB keeps errors other than
                // no-space (EIO) until reopened. A no-space error it clears
                // itself may also be caught here; reopening is safe then too.
                tracing::warn!(error = %e, "log store refuses writes with room on disk; reopening it");
                if let Err(e) = log.reopen().await {
                    tracing::error!(error = %e, "reopening the log store failed; retrying");
                }
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "log store still refuses writes"),
            Err(_) => {}
        }
    }
}
