//! A latency histogram on atomics: fixed bucket bounds in milliseconds (the
//! unit of Kafka's request metrics), one counter per bucket, a sum in
//! microseconds and a count. Recording is a few relaxed atomic adds, so
//! every request can record without a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::text::{format_float, Text};

/// Upper bounds (ms) of the buckets; `+Inf` follows.
pub const BOUNDS_MS: [f64; 14] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// One histogram.
#[derive(Default)]
pub struct Histogram {
    /// Non-cumulative counts per bucket; the last is `+Inf`.
    buckets: [AtomicU64; BOUNDS_MS.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Count one observation.
    pub fn record(&self, d: Duration) {
        let ms = d.as_secs_f64() * 1000.0;
        let i = BOUNDS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(BOUNDS_MS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            d.as_micros().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Write `name_bucket`, `name_sum` (ms) and `name_count` with `labels`
    /// (the family's HELP/TYPE lines are the caller's). Buckets are
    /// cumulative and end at the count, as the format requires.
    pub fn render(&self, t: &mut Text, name: &str, labels: &[(&str, &str)]) {
        let bucket = format!("{name}_bucket");
        let mut cum = 0u64;
        for (i, b) in self.buckets.iter().enumerate() {
            cum += b.load(Ordering::Relaxed);
            let le = format_float(BOUNDS_MS.get(i).copied().unwrap_or(f64::INFINITY));
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            t.int(&bucket, &with_le, cum as i64);
        }
        t.float(
            &format!("{name}_sum"),
            labels,
            self.sum_us.load(Ordering::Relaxed) as f64 / 1000.0,
        );
        // The count is the +Inf bucket, so the two always agree.
        t.int(&format!("{name}_count"), labels, cum as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_at_count() {
        let h = Histogram::default();
        h.record(Duration::from_micros(300));
        h.record(Duration::from_millis(7));
        h.record(Duration::from_secs(20));
        let mut t = Text::default();
        h.render(&mut t, "x", &[("request", "Produce")]);
        let s = t.finish();
        assert!(
            s.contains("x_bucket{request=\"Produce\",le=\"0.5\"} 1\n"),
            "{s}"
        );
        assert!(
            s.contains("x_bucket{request=\"Produce\",le=\"10\"} 2\n"),
            "{s}"
        );
        assert!(
            s.contains("x_bucket{request=\"Produce\",le=\"+Inf\"} 3\n"),
            "{s}"
        );
        assert!(s.contains("x_count{request=\"Produce\"} 3\n"), "{s}");
        assert_eq!(h.count(), 3);
    }
}
