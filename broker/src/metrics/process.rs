//! The `process_*` metrics every Prometheus client library exports, read
//! from `/proc/self` at scrape time (Linux only; absent elsewhere): CPU
//! seconds, resident and virtual memory, open and maximum file descriptors,
//! start time.

use super::text::{Kind, Text};

/// Append the process metrics that can be read; silently skip the rest.
pub fn render(t: &mut Text) {
    let ticks = clock_ticks();
    let page = page_size();
    if let Some(stat) = read_stat() {
        if ticks > 0.0 {
            t.family(
                "process_cpu_seconds_total",
                Kind::Counter,
                "Total user and system CPU time spent in seconds.",
            );
            t.float(
                "process_cpu_seconds_total",
                &[],
                (stat.utime + stat.stime) as f64 / ticks,
            );
        }
        t.family(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
        );
        t.int("process_resident_memory_bytes", &[], stat.rss_pages * page);
        t.family(
            "process_virtual_memory_bytes",
            Kind::Gauge,
            "Virtual memory size in bytes.",
        );
        t.int("process_virtual_memory_bytes", &[], stat.vsize);
        if let (Some(btime), true) = (boot_time(), ticks > 0.0) {
            t.family(
                "process_start_time_seconds",
                Kind::Gauge,
                "Start time of the process since unix epoch in seconds.",
            );
            t.float(
                "process_start_time_seconds",
                &[],
                btime as f64 + stat.starttime as f64 / ticks,
            );
        }
    }
    if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
        t.family(
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
        );
        // The directory handle itself is one of them: not counted.
        t.int("process_open_fds", &[], d.count().saturating_sub(1) as i64);
    }
    if let Some(max) = max_fds() {
        t.family(
            "process_max_fds",
            Kind::Gauge,
            "Maximum number of open file descriptors.",
        );
        t.int("process_max_fds", &[], max);
    }
}

struct Stat {
    utime: u64,
    stime: u64,
    starttime: u64,
    vsize: i64,
    rss_pages: i64,
}

/// `/proc/self/stat`: fields after the command name (which may hold spaces
/// and parentheses, so split after its last `)`).
fn read_stat() -> Option<Stat> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field n is f[n - 3].
    let get = |n: usize| f.get(n - 3).and_then(|v| v.parse::<i64>().ok());
    Some(Stat {
        utime: get(14)?.max(0) as u64,
        stime: get(15)?.max(0) as u64,
        starttime: get(22)?.max(0) as u64,
        vsize: get(23)?,
        rss_pages: get(24)?,
    })
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        0.0
    }
}

fn page_size() -> i64 {
    // SAFETY: sysconf only reads a configuration value.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as i64
    } else {
        4096
    }
}

fn boot_time() -> Option<i64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn max_fds() -> Option<i64> {
    let s = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = s.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let mut t = Text::default();
        render(&mut t);
        let s = t.finish();
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
        ] {
            assert!(s.contains(&format!("\n{name}")), "{name} missing in {s}");
        }
    }
}
