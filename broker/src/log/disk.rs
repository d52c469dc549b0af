//! The log directory's health (issue 19, docs/architecture.md → Storage
//! faults): the free-space guard and the storage-failure latch, which both
//! make appends answer `KAFKA_STORAGE_ERROR` at once instead of failing (or
//! hanging) inside RocksDB.
//!
//! * The guard refuses new appends while the filesystem has less free space
//!   than `log.dir.min.free.bytes` (or `log.dir.min.free.percent` of its
//!   size), before the filesystem itself fails: RocksDB keeps room for its
//!   memtable flushes, and deletes (retention, topic deletion, the cleaner)
//!   still go through and free space. It measures with `statvfs` from the
//!   group-commit writer, at most every `CHECK_EVERY` or when a quarter of the
//!   headroom last seen has been written, never per record; and from the
//!   monitor task while tripped, so it clears without traffic.
//! * The latch is set by the writer when a write to the store fails (ENOSPC,
//!   EIO): from then on every queued and new write is refused, until the
//!   monitor finds the store writable again and `LogStore::resume` has cut
//!   every partition back to what is durable.
//!
//! Appends read two atomics; a log line and a metric mark each transition.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How often the writer re-measures free space at the latest while writing.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The thresholds (`log.dir.min.free.*`); zero turns each off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FreeSpaceLimits {
    pub min_free_bytes: u64,
    pub min_free_percent: f64,
}

impl FreeSpaceLimits {
    /// No guard (unit tests, the in-memory store).
    pub const OFF: FreeSpaceLimits = FreeSpaceLimits {
        min_free_bytes: 0,
        min_free_percent: 0.0,
    };

    fn on(&self) -> bool {
        self.min_free_bytes > 0 || self.min_free_percent > 0.0
    }

    /// The free bytes below which writes are refused, on a filesystem of `total` bytes.
    pub fn floor(&self, total: u64) -> u64 {
        let pct = (total as f64 * self.min_free_percent / 100.0) as u64;
        self.min_free_bytes.max(pct)
    }
}

/// Why appends are refused, if they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Free space below the guard's floor.
    LowSpace,
    /// A write to the store failed and it has not resumed yet.
    Failed,
}

/// The health of one log directory, shared by the log, its writer and the monitor.
pub struct DiskGuard {
    dir: PathBuf,
    limits: FreeSpaceLimits,
    low: AtomicBool,
    failed: AtomicBool,
    /// Free bytes at the last measurement (-1 before the first).
    free: AtomicI64,
    /// Bytes written since the last measurement, and when that was.
    since: AtomicU64,
    last: Mutex<Instant>,
    /// Transitions, for `/metrics`.
    pub trips: AtomicU64,
    pub failures: AtomicU64,
}

impl DiskGuard {
    pub fn new(dir: &Path, limits: FreeSpaceLimits) -> DiskGuard {
        let g = DiskGuard {
            dir: dir.to_path_buf(),
            limits,
            low: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            free: AtomicI64::new(-1),
            since: AtomicU64::new(0),
            last: Mutex::new(Instant::now()),
            trips: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        };
        g.check();
        g
    }

    /// Why appends are refused now, if they are (two relaxed loads).
    pub fn refusal(&self) -> Option<Refusal> {
        if self.failed.load(Ordering::Relaxed) {
            Some(Refusal::Failed)
        } else if self.low.load(Ordering::Relaxed) {
            Some(Refusal::LowSpace)
        } else {
            None
        }
    }

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Free bytes at the last measurement (-1: unknown).
    pub fn free_bytes(&self) -> i64 {
        self.free.load(Ordering::Relaxed)
    }

    /// The writer wrote `bytes`: re-measure when due (time, or a quarter of
    /// the headroom left at the last measurement).
    pub fn wrote(&self, bytes: u64) {
        if !self.limits.on() {
            return;
        }
        let since = self.since.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let free = self.free.load(Ordering::Relaxed).max(0) as u64;
        let headroom = free.saturating_sub(self.limits.min_free_bytes);
        if since >= headroom / 4 || self.last.lock().elapsed() >= CHECK_EVERY {
            self.check();
        }
    }

    /// Measure free space now and trip or clear the guard.
    pub fn check(&self) {
        if !self.limits.on() {
            return;
        }
        *self.last.lock() = Instant::now();
        self.since.store(0, Ordering::Relaxed);
        let Some((free, total)) = statvfs(&self.dir) else {
            return;
        };
        self.free.store(free as i64, Ordering::Relaxed);
        let floor = self.limits.floor(total);
        let low = free < floor;
        if self.low.swap(low, Ordering::AcqRel) != low {
            if low {
                self.trips.fetch_add(1, Ordering::Relaxed);
                tracing::error!(dir = %self.dir.display(), free_bytes = free, min_free_bytes = floor,
                    "log dir below its free-space floor: produce is refused with KAFKA_STORAGE_ERROR until space is freed");
            } else {
                tracing::warn!(dir = %self.dir.display(), free_bytes = free, min_free_bytes = floor,
                    "log dir free space back above its floor: produce accepted again");
            }
        }
    }

    /// The volume's free and total bytes now (None: statvfs failed).
    pub fn space(&self) -> Option<(u64, u64)> {
        statvfs(&self.dir)
    }

    /// Is there room to try the store again: free space above the floor
    /// (and above 1 MiB with the guard off)?
    pub fn has_room(&self) -> bool {
        statvfs(&self.dir)
            .is_some_and(|(free, total)| free >= self.limits.floor(total).max(1 << 20))
    }

    /// A write to the store failed: refuse every write until `resumed`.
    pub fn set_failed(&self, error: &str) {
        if !self.failed.swap(true, Ordering::AcqRel) {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(dir = %self.dir.display(), error,
                "log store write failed: produce refused with KAFKA_STORAGE_ERROR, fetches still served; resuming when the store takes writes again");
        }
    }

    /// The store takes writes again and the partitions are back at their durable ends.
    pub fn resumed(&self) {
        if self.failed.swap(false, Ordering::AcqRel) {
            tracing::warn!(dir = %self.dir.display(), "log store resumed: produce accepted again");
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
    fn floor_is_the_larger_threshold() {
        let l = FreeSpaceLimits {
            min_free_bytes: 100,
            min_free_percent: 1.0,
        };
        assert_eq!(l.floor(1000), 100);
        assert_eq!(l.floor(1_000_000), 10_000);
        assert_eq!(FreeSpaceLimits::OFF.floor(1 << 40), 0);
    }

    #[test]
    fn trips_when_the_floor_is_above_free_space_and_latches_failures() {
        let dir = tempfile::tempdir().unwrap();
        let g = DiskGuard::new(
            dir.path(),
            FreeSpaceLimits {
                min_free_bytes: u64::MAX,
                min_free_percent: 0.0,
            },
        );
        assert_eq!(g.refusal(), Some(Refusal::LowSpace));
        assert!(g.free_bytes() > 0);
        let ok = DiskGuard::new(dir.path(), FreeSpaceLimits::OFF);
        assert_eq!(ok.refusal(), None);
        ok.set_failed("EIO");
        assert_eq!(ok.refusal(), Some(Refusal::Failed));
        ok.resumed();
        assert_eq!(ok.refusal(), None);
    }
}
