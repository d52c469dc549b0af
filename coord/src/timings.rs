//! The coordinator's timing summaries under ZooKeeper's names
//! (`readlatency`, `updatelatency`, `fsynctime`, `election_time`): the
//! count, sum, min and max since start plus quantiles over the most recent
//! observations, which `mntr` (avg/min/max/cnt/sum/p50..p999), the
//! AdminServer's `monitor` and the Prometheus endpoint (a summary) report.
//!
//! One process-wide set: the places that time things (a connection's
//! writer, the txnlog's syncer thread, the Raft role watcher) are far apart
//! and only ever add a sample, like a metrics registry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use parking_lot::Mutex;

/// Observations kept for quantiles: recent enough to follow a change of
/// load, enough for a stable p99.
const WINDOW: usize = 1024;

/// One summary: totals since start and a ring of the latest samples (ms).
pub struct Summary {
    inner: Mutex<Inner>,
}

struct Inner {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    ring: Vec<f64>,
    next: usize,
}

/// What a summary held at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SummarySnapshot {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// The recent samples, sorted ascending.
    recent: Vec<f64>,
}

impl SummarySnapshot {
    /// The mean since start (0 before any sample, as ZooKeeper's mntr).
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// The `q` quantile (0..=1) of the recent samples; NaN before any,
    /// as Prometheus' Java client reports an empty summary.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.recent.is_empty() {
            return f64::NAN;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.recent.len() - 1) as f64).round() as usize;
        self.recent[rank.min(self.recent.len() - 1)]
    }
}

impl Default for Summary {
    fn default() -> Summary {
        Summary::new()
    }
}

impl Summary {
    /// An empty summary.
    pub fn new() -> Summary {
        Summary {
            inner: Mutex::new(Inner {
                count: 0,
                sum: 0.0,
                min: 0.0,
                max: 0.0,
                ring: Vec::new(),
                next: 0,
            }),
        }
    }

    /// Adds one observation, in milliseconds.
    pub fn observe(&self, ms: f64) {
        let mut s = self.inner.lock();
        if s.count == 0 || ms < s.min {
            s.min = ms;
        }
        if s.count == 0 || ms > s.max {
            s.max = ms;
        }
        s.count += 1;
        s.sum += ms;
        if s.ring.len() < WINDOW {
            s.ring.push(ms);
        } else {
            let i = s.next;
            s.ring[i] = ms;
        }
        s.next = (s.next + 1) % WINDOW;
    }

    /// The totals and the recent samples, sorted.
    pub fn snapshot(&self) -> SummarySnapshot {
        let s = self.inner.lock();
        let mut recent = s.ring.clone();
        recent.sort_by(|a, b| a.total_cmp(b));
        SummarySnapshot {
            count: s.count,
            sum: s.sum,
            min: s.min,
            max: s.max,
            recent,
        }
    }
}

/// ZooKeeper's two kinds of summary: ADVANCED ones report p50/p95/p99/p999
/// in `mntr` and 0.5/0.9/0.99 quantiles in Prometheus, BASIC ones only the
/// median (ServerMetrics' DetailLevel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Basic,
    Advanced,
}

/// The summaries the coordinator keeps.
pub struct Timings {
    /// Reads: arrival to reply sent.
    pub readlatency: Summary,
    /// Writes: arrival to reply sent (after fsync or Raft commit).
    pub updatelatency: Summary,
    /// One fsync of the transaction log (standalone) or Raft log.
    pub fsynctime: Summary,
    /// Ensemble: from losing the leader (or starting) to knowing a new one.
    pub election_time: Summary,
    /// fsyncs slower than ZooKeeper's `fsync.warningthresholdms` (1 s).
    slow_fsyncs: AtomicU64,
}

/// ZooKeeper's default `fsync.warningthresholdms`.
const FSYNC_WARNING_MS: f64 = 1000.0;

impl Timings {
    /// Records one fsync of `ms` milliseconds.
    pub fn fsync(&self, ms: f64) {
        self.fsynctime.observe(ms);
        if ms > FSYNC_WARNING_MS {
            self.slow_fsyncs.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(ms, "fsync took longer than 1000 ms");
        }
    }

    /// fsyncs over the threshold (`fsync_threshold_exceed_count`).
    pub fn slow_fsyncs(&self) -> u64 {
        self.slow_fsyncs.load(Ordering::Relaxed)
    }

    /// Every summary with its ZooKeeper name and detail level, in the
    /// order they are reported.
    pub fn all(&self) -> [(&'static str, &Summary, Detail); 4] {
        [
            ("readlatency", &self.readlatency, Detail::Advanced),
            ("updatelatency", &self.updatelatency, Detail::Advanced),
            ("fsynctime", &self.fsynctime, Detail::Basic),
            ("election_time", &self.election_time, Detail::Basic),
        ]
    }
}

/// The process's summaries.
pub static TIMINGS: LazyLock<Timings> = LazyLock::new(|| Timings {
    readlatency: Summary::new(),
    updatelatency: Summary::new(),
    fsynctime: Summary::new(),
    election_time: Summary::new(),
    slow_fsyncs: AtomicU64::new(0),
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_quantiles() {
        let s = Summary::new();
        assert!(s.snapshot().quantile(0.5).is_nan());
        assert_eq!(s.snapshot().avg(), 0.0);
        for i in 1..=100 {
            s.observe(i as f64);
        }
        let snap = s.snapshot();
        assert_eq!((snap.count, snap.min, snap.max), (100, 1.0, 100.0));
        assert_eq!(snap.avg(), 50.5);
        assert_eq!(snap.quantile(0.5), 51.0);
        assert_eq!(snap.quantile(0.99), 99.0);
        assert_eq!(snap.quantile(1.0), 100.0);
        // The ring keeps the latest WINDOW samples only; totals keep all.
        for _ in 0..WINDOW {
            s.observe(7.0);
        }
        let snap = s.snapshot();
        assert_eq!(snap.count, 100 + WINDOW as u64);
        assert_eq!(snap.quantile(0.0), 7.0);
        assert_eq!(snap.max, 100.0);
    }
}
