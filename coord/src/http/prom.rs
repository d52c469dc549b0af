//! `GET /metrics` as ZooKeeper's PrometheusMetricsProvider serves it
//! (`metricsProvider.className=...PrometheusMetricsProvider`,
//! `metricsProvider.httpHost`/`httpPort`, default 0.0.0.0:7000): every
//! numeric `mntr` value as a gauge under its ZooKeeper name, the timing
//! summaries as Prometheus summaries (quantiles 0.5/0.9/0.99 for
//! `readlatency`/`updatelatency`, 0.5 for `fsynctime`/`election_time`,
//! as ZooKeeper's ADVANCED and BASIC levels), and the process metrics
//! Prometheus' Java client adds (`process_cpu_seconds_total`, ...).
//!
//! Text format 0.0.4, written here: the values are a few dozen gauges and
//! four summaries, and the Rust Prometheus crates have no summary type.

use std::fmt::Write;

use hyper::StatusCode;

use super::listener::{Handles, Reply};
use crate::monitor::Report;
use crate::timings::Detail;

/// The content type Prometheus' text format 0.0.4 is served with.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The route table: `/metrics` only, as ZooKeeper's provider.
pub fn route(h: &Handles, path: &str) -> Reply {
    match path {
        "/metrics" => Reply::new(StatusCode::OK, CONTENT_TYPE, render(&h.report())),
        _ => Reply::not_found(path),
    }
}

/// The exposition text for one report plus this process's metrics.
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(8 * 1024);
    for (name, v) in &report.gauges {
        if let Some(n) = v.number() {
            family(&mut out, name, "gauge");
            let _ = writeln!(out, "{name} {}", num(n));
        }
    }
    for (name, s, detail) in &report.summaries {
        family(&mut out, name, "summary");
        let quantiles: &[f64] = match detail {
            Detail::Advanced => &[0.5, 0.9, 0.99],
            Detail::Basic => &[0.5],
        };
        for q in quantiles {
            let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {}", num(s.quantile(*q)));
        }
        let _ = writeln!(out, "{name}_count {}", s.count);
        let _ = writeln!(out, "{name}_sum {}", num(s.sum));
    }
    process_metrics(&mut out);
    out
}

fn family(out: &mut String, name: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {name}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A sample value as the text format spells it (NaN, +Inf, -Inf).
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// The `process_*` metrics Prometheus' client libraries export, from /proc.
fn process_metrics(out: &mut String) {
    // SAFETY: sysconf only reads a system constant.
    let (tick, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK).max(1) as f64,
            libc::sysconf(libc::_SC_PAGESIZE).max(1) as f64,
        )
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces), from field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> f64 {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime ").map(|v| v.trim().parse::<f64>()))
        })
        .and_then(Result::ok)
        .unwrap_or(0.0);
    let rows = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            (field(14) + field(15)) / tick,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            boot + field(22) / tick,
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            crate::monitor::open_fds() as f64,
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            crate::monitor::fd_limit() as f64,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            field(23),
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            field(24) * page,
        ),
    ];
    for (name, kind, help, v) in rows {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {}", num(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::Value;
    use crate::timings::Summary;

    #[test]
    fn gauges_and_summaries_in_text_format() {
        let s = Summary::default();
        s.observe(2.0);
        s.observe(4.0);
        let report = Report {
            gauges: vec![
                ("version", Value::Text("x".into())),
                ("znode_count", Value::Int(5)),
                ("avg_latency", Value::Float(0.5)),
            ],
            summaries: vec![
                ("readlatency", s.snapshot(), Detail::Advanced),
                ("fsynctime", Summary::default().snapshot(), Detail::Basic),
            ],
        };
        let text = render(&report);
        assert!(!text.contains("version"), "{text}");
        assert!(
            text.contains("# TYPE znode_count gauge\nznode_count 5\n"),
            "{text}"
        );
        assert!(text.contains("avg_latency 0.5\n"), "{text}");
        assert!(text.contains("# TYPE readlatency summary\n"), "{text}");
        assert!(
            text.contains("readlatency{quantile=\"0.99\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("readlatency_count 2\nreadlatency_sum 6\n"),
            "{text}"
        );
        assert!(text.contains("fsynctime{quantile=\"0.5\"} NaN\n"), "{text}");
        assert!(!text.contains("fsynctime{quantile=\"0.9\"}"), "{text}");
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{text}"
        );
    }
}
