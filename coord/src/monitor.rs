//! The values ZooKeeper's `mntr` reports, gathered once under the state lock
//! and shared by the three places that show them: the `mntr` four-letter
//! word, the AdminServer's `monitor` command and the Prometheus endpoint.
//! Names are ZooKeeper 3.8's (`znode_count`, `avg_latency`,
//! `readlatency`, ...), so dashboards and exporters built for ZooKeeper
//! read Fjord unchanged.

use std::sync::atomic::Ordering;

use crate::core::Core;
use crate::raft::QuorumView;
use crate::timings::{Detail, SummarySnapshot, TIMINGS};

/// Version string reported to tools.
pub const VERSION: &str = "3.8.0-fjord-0.1.0, built on 2026-11-22";

/// One reported value, typed as ZooKeeper's (mntr prints them as text;
/// the AdminServer as JSON numbers or strings; Prometheus skips text).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    /// As `mntr` prints it.
    pub fn text(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format!("{f:.4}"),
            Value::Text(s) => s.clone(),
        }
    }

    /// As a Prometheus sample value; `None` for text.
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Text(_) => None,
        }
    }
}

/// Everything `mntr` reports, at one moment.
pub struct Report {
    /// Gauges in ZooKeeper's mntr order, `version` and `server_state` first.
    pub gauges: Vec<(&'static str, Value)>,
    /// The timing summaries (see `timings`).
    pub summaries: Vec<(&'static str, SummarySnapshot, Detail)>,
}

/// Gathers the report; `quorum` is the ensemble view in ensemble mode.
pub fn collect(core: &Core, quorum: Option<&QuorumView>) -> Report {
    let stats = core.stats();
    let (watches, _) = core.watches().counts();
    let (lat_min, lat_avg, lat_max) = stats.latency_ms();
    let int = |n: usize| Value::Int(n as i64);
    let mut gauges = vec![
        ("version", Value::Text(VERSION.to_string())),
        ("server_state", Value::Text(mode(core).to_string())),
        ("ephemerals_count", int(core.tree().ephemeral_count())),
        ("num_alive_connections", int(core.conns().len())),
        ("avg_latency", Value::Float(lat_avg)),
        ("outstanding_requests", int(outstanding(core))),
        ("znode_count", int(core.tree().node_count())),
        ("global_sessions", int(core.sessions().len())),
        (
            "packets_sent",
            Value::Int(stats.packets_sent.load(Ordering::Relaxed) as i64),
        ),
        (
            "packets_received",
            Value::Int(stats.packets_received.load(Ordering::Relaxed) as i64),
        ),
        ("watch_count", int(watches)),
        ("min_latency", Value::Float(lat_min)),
        ("max_file_descriptor_count", Value::Int(fd_limit() as i64)),
        (
            "approximate_data_size",
            int(core.tree().approximate_data_size()),
        ),
        ("open_file_descriptor_count", int(open_fds())),
        // Fjord has no local sessions: every session is global.
        ("local_sessions", Value::Int(0)),
        ("uptime", Value::Int(core.uptime().as_millis() as i64)),
        ("max_latency", Value::Float(lat_max)),
    ];
    let (last_size, min_size, max_size) = stats.response_sizes();
    gauges.push(("last_client_response_size", Value::Int(last_size)));
    gauges.push(("min_client_response_size", Value::Int(min_size)));
    gauges.push(("max_client_response_size", Value::Int(max_size)));
    // Fjord's free-space guard (issue 19), when on.
    if let Some(g) = core.disk_guard() {
        gauges.push(("fjord_disk_below_min_free", Value::Int(g.refusing() as i64)));
        gauges.push(("fjord_disk_free_bytes", Value::Int(g.free_bytes())));
        gauges.push((
            "fjord_disk_min_free_trips",
            Value::Int(g.trips.load(Ordering::Relaxed) as i64),
        ));
    }
    // Ensemble mode only, as ZooKeeper; the follower counts on the leader.
    if let Some(q) = quorum {
        let voters = q.members.iter().filter(|m| m.2).count();
        gauges.push(("quorum_size", int(voters)));
        let peer_state = match mode(core) {
            "leader" => "leading - broadcast",
            "follower" => "following - broadcast",
            "observer" => "observing - broadcast",
            _ => "looking - election",
        };
        gauges.push(("peer_state", Value::Text(peer_state.into())));
        if q.leader == Some(q.my_id) {
            gauges.push(("learners", int(q.members.len().saturating_sub(1))));
            gauges.push(("synced_followers", int(q.synced_followers)));
            // Fjord's learners are observers; none votes without being a voter.
            gauges.push(("synced_non_voting_followers", Value::Int(0)));
            gauges.push(("synced_observers", int(q.synced_observers)));
        }
    }
    let summaries = TIMINGS
        .all()
        .into_iter()
        .map(|(name, s, d)| (name, s.snapshot(), d))
        .collect();
    Report { gauges, summaries }
}

impl Report {
    /// The rows `mntr` and `monitor` show: gauges, then each summary as
    /// ZooKeeper spells it (`avg_X`, `min_X`, `max_X`, `cnt_X`, `sum_X`,
    /// and for advanced ones `p50_X`, `p95_X`, `p99_X`, `p999_X`).
    pub fn rows(&self) -> Vec<(String, Value)> {
        let mut rows: Vec<(String, Value)> = self
            .gauges
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for (name, s, detail) in &self.summaries {
            rows.push((format!("avg_{name}"), Value::Float(s.avg())));
            rows.push((format!("min_{name}"), Value::Float(s.min)));
            rows.push((format!("max_{name}"), Value::Float(s.max)));
            rows.push((format!("cnt_{name}"), Value::Int(s.count as i64)));
            rows.push((format!("sum_{name}"), Value::Float(s.sum)));
            if *detail == Detail::Advanced {
                for (p, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)] {
                    let v = s.quantile(q);
                    rows.push((
                        format!("{p}_{name}"),
                        Value::Float(if v.is_nan() { 0.0 } else { v }),
                    ));
                }
            }
        }
        rows
    }

    /// One gauge's value by name (tests, the AdminServer's srvr).
    pub fn gauge(&self, name: &str) -> Option<&Value> {
        self.gauges.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// Requests received and not yet answered: reads waiting behind their
/// connection's own writes (ensemble mode). Writes waiting for fsync are
/// already answered from the state's point of view.
fn outstanding(core: &Core) -> usize {
    core.conns().values().map(|c| c.deferred.len()).sum()
}

/// This process's open file descriptors.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// This process's soft limit on open files.
pub fn fd_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        r.rlim_cur
    } else {
        0
    }
}

/// The `Mode:` ZooKeeper reports: read-only while cut off and serving
/// read-only clients, else the Raft role (standalone without an ensemble).
pub fn mode(core: &Core) -> &'static str {
    if core.read_only() {
        "read-only"
    } else {
        core.role().unwrap_or("standalone")
    }
}
