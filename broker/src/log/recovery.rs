//! The log directory's monitor (issue 19): while the free-space guard is
//! tripped it re-measures, so produce resumes without traffic; after a
//! failed write it probes the store and, once a write goes through again
//! (RocksDB clears a no-space error by itself when there is room), runs
//! `LogStore::resume`. No restart is needed for either.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::store::LogStore;

/// How often the monitor looks.
const EVERY: Duration = Duration::from_millis(500);

/// Run until `stop` turns true.
pub async fn disk_monitor_loop(log: Arc<LogStore>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
        let disk = log.disk().clone();
        if disk.refusal().is_some() {
            let _ = tokio::task::spawn_blocking(move || disk.check()).await;
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
            Ok(Err(e)) => tracing::debug!(error = %e, "log store still refuses writes"),
            Err(_) => {}
        }
    }
}
