//! What a workload measured, and the result line made from it.

use crate::args::{Args, Mode};
use bench_summary::{Summary, Value};
use hdrhistogram::Histogram;
use std::sync::{Mutex, MutexGuard};

/// One workload's result.
pub struct Outcome {
    pub msgs: u64,
    pub bytes: u64,
    /// The measured window (first send to flush end; first to last message for consume).
    pub secs: f64,
    /// Per-message latency in µs (produce: send → ack; e2e: send → receive).
    pub hist: Option<Histogram<u64>>,
    /// The workload's own fields, after `partitions=`.
    pub extra: Vec<(&'static str, Value)>,
    pub ok: bool,
}

impl Outcome {
    /// Prints the human line and the result line (`kbench mode=... verify=ok`).
    pub fn print(&self, a: &Args, partitions: i32) {
        let rate = self.msgs as f64 / self.secs;
        let mb = self.bytes as f64 / 1e6 / self.secs;
        let mut lat = Vec::new();
        if let Some(h) = &self.hist {
            let ms = |us: u64| Value::Float(us as f64 / 1e3, 3);
            lat.push(("p50_ms", ms(h.value_at_quantile(0.5))));
            lat.push(("p99_ms", ms(h.value_at_quantile(0.99))));
            lat.push(("p999_ms", ms(h.value_at_quantile(0.999))));
            lat.push(("max_ms", ms(h.max())));
        }
        let lat_text: String = lat.iter().map(|(k, v)| format!(" {k}={v}")).collect();
        println!(
            "{} msgs in {:.3} s: {rate:.0} msgs/s, {mb:.2} MB/s{lat_text}",
            self.msgs, self.secs
        );
        Summary::new("kbench")
            .text("mode", mode_name(a.mode))
            .int("msgs", self.msgs)
            .float("secs", self.secs, 3)
            .float("msgs_per_s", rate, 1)
            .float("mb_per_s", mb, 3)
            .extend(lat)
            .int("size", a.size)
            .int("partitions", partitions)
            .extend(self.extra.iter().cloned())
            .text("verify", if self.ok { "ok" } else { "FAIL" })
            .print(a.json);
    }
}

/// `produce`, `consume`, `e2e`.
pub fn mode_name(m: Mode) -> String {
    format!("{m:?}").to_lowercase()
}

/// A latency histogram in µs, 1 µs to 600 s, three significant digits.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

/// Locks a mutex; one poisoned by a panic elsewhere still holds usable counts.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
