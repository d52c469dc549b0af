//! A member that cannot persist leaves the ensemble and rejoins (issue 19,
//! docs/architecture.md → Storage faults).
//!
//! Its Raft log write or fsync failed (openraft then stops its core with a
//! storage error: it can no longer vote, lead or apply), or its data dir fell
//! below the free-space floor (`diskguard`), where the next append would
//! fail. A failed fsync must never be retried (the kernel may have dropped
//! the dirty pages), and a member without a Raft core must not go on holding
//! client sessions as if it were one. So it restarts itself: it execs its own
//! binary again (same pid and arguments, so a service manager, pid files and
//! the tests see one process) and recovers from what its log holds. Before it
//! joins, a starting member waits until its data dirs are above the floor and
//! take a write and an fsync. Meanwhile the others lead and vote, and its
//! clients reconnect to them with their sessions; back, it catches up from
//! the leader as any restarted member does.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::Fatal;

use super::types::Raft;
use crate::config::Config;
use crate::diskguard::DiskGuard;

/// How often a waiting member probes its disk, and the watch re-checks.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// Blocks (politely) until every data dir is above the free-space floor and
/// takes a small write and an fsync; returns the guard (None when it is off)
/// for [`spawn_watch`].
pub async fn wait_until_writable(cfg: &Config) -> Option<Arc<DiskGuard>> {
    let dirs = [cfg.data_dir.as_path(), cfg.data_log_dir.as_path()];
    let guard = DiskGuard::new(&dirs, cfg.min_free_bytes, cfg.min_free_percent);
    let mut told = false;
    loop {
        if let Some(g) = &guard {
            g.check();
        }
        let low = guard.as_ref().is_some_and(|g| g.refusing());
        let probe = dirs.iter().try_for_each(|d| probe(d));
        match (low, probe) {
            (false, Ok(())) => break,
            (low, probe) if !told => {
                told = true;
                tracing::error!(
                    below_free_space_floor = low,
                    probe = ?probe.err().map(|e| e.to_string()),
                    "data dir cannot take writes: not joining the ensemble until it can"
                );
            }
            _ => {}
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
    if told {
        tracing::warn!("data dir takes writes again: joining the ensemble");
    }
    if let Some(g) = &guard {
        g.spawn_monitor();
    }
    guard
}

/// A write and an fsync of a small file in `dir`, then its removal.
fn probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(".fjord-write-probe");
    let result = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(&[0u8; 4096])?;
        f.sync_data()
    });
    let _ = std::fs::remove_file(&path);
    result
}

/// Watches for the two ways a member loses the ability to persist and
/// restarts it on either; a normal shutdown (openraft's `Stopped`) ends it.
pub fn spawn_watch(raft: Raft, guard: Option<Arc<DiskGuard>>) {
    tokio::spawn(async move {
        let mut metrics = raft.metrics();
        loop {
            let fatal = match &metrics.borrow().running_state {
                Ok(()) => None,
                Err(Fatal::Stopped) => return,
                Err(e) => Some(e.to_string()),
            };
            if let Some(e) = fatal {
                restart(&format!("its Raft log could not be written or synced: {e}"));
            }
            if guard.as_ref().is_some_and(|g| g.refusing()) {
                restart("its data dir fell below the free-space floor");
            }
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(PROBE_EVERY) => {}
            }
        }
    });
}

/// Execs this binary again with the same arguments and environment; if that
/// is impossible, exits 1 for the service manager to restart it.
fn restart(why: &str) -> ! {
    use std::os::unix::process::CommandExt;
    tracing::error!(
        why,
        "this member cannot persist: leaving the ensemble and restarting from its log"
    );
    let err = match std::env::current_exe() {
        Ok(exe) => std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .exec(),
        Err(e) => e,
    };
    tracing::error!(error = %err, "cannot re-exec the member: exiting for the service manager to restart it");
    std::process::exit(1)
}
