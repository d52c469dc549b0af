//! The free-space guard (issue 19, docs/architecture.md → Storage faults):
//! below `fjord.minFreeBytes` (or `fjord.minFreePercent` of the filesystem)
//! free in `dataDir` or `dataLogDir`, client writes are refused up front with
//! ZSYSTEMERROR, before the transaction log itself fails, while pings, reads
//! and session upkeep go on. Free space is measured with `statvfs` by the log
//! writer when a quarter of the last headroom has been written (never per
//! request) and by a monitor thread every `CHECK_EVERY`, so the guard also
//! clears without traffic. A log line and the `mntr` key
//! `fjord_disk_below_min_free` mark it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the monitor thread re-measures.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// Free-space guard over the member's data directories.
pub struct DiskGuard {
    dirs: Vec<PathBuf>,
    min_free_bytes: u64,
    min_free_percent: f64,
    low: AtomicBool,
    /// Smallest free bytes over the dirs at the last measurement (-1 unknown).
    free: AtomicI64,
    /// Bytes logged since the last measurement.
    since: AtomicU64,
    /// Times the guard tripped.
    pub trips: AtomicU64,
}

impl DiskGuard {
    /// A guard, measured once; None when both thresholds are 0 (off).
    pub fn new(
        dirs: &[&Path],
        min_free_bytes: u64,
        min_free_percent: f64,
    ) -> Option<Arc<DiskGuard>> {
        if min_free_bytes == 0 && min_free_percent <= 0.0 {
            return None;
        }
        let g = Arc::new(DiskGuard {
            dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
            min_free_bytes,
            min_free_percent,
            low: AtomicBool::new(false),
            free: AtomicI64::new(-1),
            since: AtomicU64::new(0),
            trips: AtomicU64::new(0),
        });
        g.check();
        Some(g)
    }

    /// Start the monitor thread (it holds only a weak reference).
    pub fn spawn_monitor(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("disk-guard".into())
            .spawn(move || {
                while let Some(g) = weak.upgrade() {
                    g.check();
                    drop(g);
                    std::thread::sleep(CHECK_EVERY);
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the free-space monitor");
        }
    }

    /// True while client writes are refused.
    pub fn refusing(&self) -> bool {
        self.low.load(Ordering::Relaxed)
    }

    /// Smallest free space over the dirs at the last measurement (-1: unknown).
    pub fn free_bytes(&self) -> i64 {
        self.free.load(Ordering::Relaxed)
    }

    /// The log writer wrote `bytes`: re-measure once a quarter of the
    /// headroom left at the last measurement has gone.
    pub fn wrote(&self, bytes: u64) {
        let since = self.since.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let free = self.free.load(Ordering::Relaxed).max(0) as u64;
        if since >= free.saturating_sub(self.min_free_bytes) / 4 {
            self.check();
        }
    }

    /// Measure now; trip or clear.
    pub fn check(&self) {
        self.since.store(0, Ordering::Relaxed);
        let mut low = false;
        let mut least = i64::MAX;
        for d in &self.dirs {
            let Some((free, total)) = statvfs(d) else {
                continue;
            };
            let floor = self
                .min_free_bytes
                .max((total as f64 * self.min_free_percent / 100.0) as u64);
            low |= free < floor;
            least = least.min(free as i64);
        }
        if least != i64::MAX {
            self.free.store(least, Ordering::Relaxed);
        }
        if self.low.swap(low, Ordering::AcqRel) != low {
            if low {
                self.trips.fetch_add(1, Ordering::Relaxed);
                tracing::error!(free_bytes = least, min_free_bytes = self.min_free_bytes,
                    min_free_percent = self.min_free_percent,
                    "data dir below its free-space floor: client writes are answered ZSYSTEMERROR until space is freed; reads and sessions go on");
            } else {
                tracing::warn!(
                    free_bytes = least,
                    "data dir free space back above its floor: writes accepted again"
                );
            }
        }
    }
}

/// (available, total) bytes of the filesystem holding `dir`.
fn statvfs(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path; `st` is written by the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_bavail as u64 * frsize, st.f_blocks as u64 * frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_when_zero_and_trips_above_free_space() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DiskGuard::new(&[dir.path()], 0, 0.0).is_none());
        let g = DiskGuard::new(&[dir.path()], u64::MAX, 0.0).unwrap();
        assert!(g.refusing());
        assert!(g.free_bytes() > 0);
        let ok = DiskGuard::new(&[dir.path()], 1, 0.0).unwrap();
        assert!(!ok.refusing());
        assert_eq!(ok.trips.load(Ordering::Relaxed), 0);
    }
}
