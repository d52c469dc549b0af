//! ZooKeeper's AdminServer (`admin.enableServer`, `admin.serverAddress`,
//! `admin.serverPort`, default 0.0.0.0:8080): `GET /commands` lists the
//! commands, `GET /commands/<name>` (or an alias such as `mntr`) answers
//! JSON shaped as ZooKeeper 3.8's, every answer carrying `command` (the
//! primary name) and `error` (null, or why). Unknown names answer 200 with
//! `error: "Unknown command: <name>"`, as ZooKeeper does.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use hyper::StatusCode;
use serde_json::{json, Map, Value};

use super::listener::{Handles, Reply};
use crate::monitor::{self, VERSION};

/// (primary name, aliases), sorted as ZooKeeper lists them.
pub const COMMANDS: &[(&str, &[&str])] = &[
    ("configuration", &["conf", "config"]),
    ("connections", &["cons"]),
    ("dump", &[]),
    ("environment", &["env", "envi"]),
    ("is_read_only", &["isro"]),
    ("leader", &["lead"]),
    ("monitor", &["mntr"]),
    ("ruok", &[]),
    ("server_stats", &["srvr"]),
    ("stats", &["stat"]),
    ("voting_view", &[]),
    ("watch_summary", &["wchs"]),
];

/// The primary name of a command or alias.
pub fn primary(name: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .find(|(p, aliases)| *p == name || aliases.contains(&name))
        .map(|(p, _)| *p)
}

/// The route table: `/commands` and `/commands/<name>`.
pub fn route(h: &Handles, path: &str) -> Reply {
    let path = path.trim_end_matches('/');
    if path == "/commands" {
        return Reply::new(StatusCode::OK, "text/html; charset=utf-8", index());
    }
    let Some(name) = path.strip_prefix("/commands/") else {
        return Reply::not_found(path);
    };
    let body = match primary(name) {
        Some(cmd) => {
            let mut m = run(h, cmd);
            m.entry("command").or_insert_with(|| json!(cmd));
            m.entry("error").or_insert(Value::Null);
            m
        }
        None => {
            let mut m = Map::new();
            m.insert("command".into(), json!(name));
            m.insert("error".into(), json!(format!("Unknown command: {name}")));
            m
        }
    };
    let text = serde_json::to_string_pretty(&Value::Object(body)).unwrap_or_default();
    Reply::new(StatusCode::OK, "application/json", text + "\n")
}

/// ZooKeeper's links page.
fn index() -> String {
    let mut s = String::new();
    for (name, _) in COMMANDS {
        s.push_str(&format!("<a href=\"/commands/{name}\">{name}</a>\n<br/>\n"));
    }
    s
}

/// One command's fields (without `command`/`error`, added by `route`,
/// except where ZooKeeper sets `error` itself).
fn run(h: &Handles, cmd: &str) -> Map<String, Value> {
    let mut m = Map::new();
    match cmd {
        "ruok" => {}
        "server_stats" | "stats" => {
            let report = h.report();
            let core = h.core.lock();
            let stats = core.stats();
            let (last, min, max) = stats.response_sizes();
            let sizes = json!({
                "last_buffer_size": last, "min_buffer_size": min, "max_buffer_size": max,
            });
            let g = |k: &str| report.gauge(k).map_or(Value::Null, to_json);
            m.insert("version".into(), json!(VERSION));
            m.insert("read_only".into(), json!(core.read_only()));
            m.insert(
                "server_stats".into(),
                json!({
                    "packets_sent": stats.packets_sent.load(Ordering::Relaxed),
                    "packets_received": stats.packets_received.load(Ordering::Relaxed),
                    "fsync_threshold_exceed_count": crate::timings::TIMINGS.slow_fsyncs(),
                    "client_response_stats": sizes.clone(),
                    "data_dir_size": dir_size(&h.cfg.data_dir),
                    "log_dir_size": dir_size(&h.cfg.data_log_dir),
                    "provider_null": false,
                    "server_state": monitor::mode(&core),
                    "last_processed_zxid": core.last_zxid(),
                    "outstanding_requests": g("outstanding_requests"),
                    "avg_latency": g("avg_latency"),
                    "max_latency": g("max_latency"),
                    "min_latency": g("min_latency"),
                    "num_alive_client_connections": core.conns().len(),
                    // Fjord has no TLS client port and does not count
                    // failed auths: both stay 0.
                    "auth_failed_count": 0,
                    "non_mtlsremote_conn_count": 0,
                    "non_mtlslocal_conn_count": 0,
                    "uptime": core.uptime().as_millis() as u64,
                }),
            );
            m.insert("client_response".into(), sizes);
            if h.ens.as_ref().is_some_and(|e| e.is_leader()) {
                // ZooKeeper's leader reports proposal sizes; Fjord does not
                // measure them: -1 is ZooKeeper's "none recorded".
                m.insert(
                    "proposal_stats".into(),
                    json!({"last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1}),
                );
            }
            m.insert("node_count".into(), json!(core.tree().node_count()));
            if cmd == "stats" {
                let conns: Vec<Value> = core
                    .conns()
                    .values()
                    .map(|c| {
                        json!({
                            "remote_socket_address": c.addr.to_string(),
                            "interest_ops": 1,
                            "outstanding_requests": c.deferred.len(),
                            "packets_received": c.stats.packets_received.load(Ordering::Relaxed),
                            "packets_sent": c.stats.packets_sent.load(Ordering::Relaxed),
                        })
                    })
                    .collect();
                m.insert("connections".into(), Value::Array(conns));
                m.insert("secure_connections".into(), json!([]));
            }
        }
        "monitor" => {
            for (k, v) in h.report().rows() {
                m.insert(k, to_json(&v));
            }
        }
        "configuration" => {
            let c = &h.cfg;
            m.insert("client_port".into(), json!(c.client_port));
            m.insert("data_dir".into(), json!(c.data_dir.display().to_string()));
            m.insert(
                "data_log_dir".into(),
                json!(c.data_log_dir.display().to_string()),
            );
            m.insert("tick_time".into(), json!(c.tick_time_ms));
            m.insert("max_client_cnxns".into(), json!(c.max_client_cnxns));
            m.insert(
                "min_session_timeout".into(),
                json!(c.min_session_timeout_ms),
            );
            m.insert(
                "max_session_timeout".into(),
                json!(c.max_session_timeout_ms),
            );
            m.insert("server_id".into(), json!(c.my_id.unwrap_or(0)));
            m.insert("client_port_listen_backlog".into(), json!(-1));
        }
        "connections" => {
            let core = h.core.lock();
            let conns: Vec<Value> = core
                .conns()
                .values()
                .map(|c| {
                    let (min, avg, max) = c.stats.latency_ms();
                    let (llat, lresp) = c.stats.last_response();
                    json!({
                        "remote_socket_address": c.addr.to_string(),
                        "interest_ops": 1,
                        "outstanding_requests": c.deferred.len(),
                        "packets_received": c.stats.packets_received.load(Ordering::Relaxed),
                        "packets_sent": c.stats.packets_sent.load(Ordering::Relaxed),
                        "session_id": c.session,
                        "last_operation": c.last_op,
                        "established": c.established_ms,
                        "session_timeout": c.timeout_ms,
                        "last_cxid": c.last_cxid,
                        "last_zxid": c.last_zxid,
                        "last_response_time": lresp,
                        "last_latency": number(llat),
                        "min_latency": number(min),
                        "avg_latency": number(avg),
                        "max_latency": number(max),
                    })
                })
                .collect();
            m.insert("connections".into(), Value::Array(conns));
            m.insert("secure_connections".into(), json!([]));
        }
        "environment" => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            m.insert("zookeeper.version".into(), json!(VERSION));
            m.insert("host.name".into(), json!(host.trim()));
            m.insert("os.name".into(), json!("Linux"));
            m.insert(
                "os.arch".into(),
                json!(match std::env::consts::ARCH {
                    "x86_64" => "amd64",
                    a => a,
                }),
            );
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            m.insert("os.version".into(), json!(release.trim()));
            m.insert(
                "user.name".into(),
                json!(std::env::var("USER").unwrap_or_default()),
            );
            m.insert(
                "user.home".into(),
                json!(std::env::var("HOME").unwrap_or_default()),
            );
            m.insert(
                "user.dir".into(),
                json!(std::env::current_dir()
                    .unwrap_or_default()
                    .display()
                    .to_string()),
            );
        }
        "watch_summary" => {
            let core = h.core.lock();
            let (watches, paths) = core.watches().counts();
            m.insert(
                "num_connections".into(),
                json!(core.watches().watching_conns()),
            );
            m.insert("num_paths".into(), json!(paths));
            m.insert("num_total_watches".into(), json!(watches));
        }
        "is_read_only" => {
            m.insert("read_only".into(), json!(h.core.lock().read_only()));
        }
        "dump" => {
            let core = h.core.lock();
            let tick = h.cfg.tick_time_ms.max(1);
            let now = Instant::now();
            let up = core.uptime().as_millis() as u64;
            let mut by_expiry: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
            let mut ephemerals = Map::new();
            for (id, deadline) in core.sessions().deadlines() {
                // ZooKeeper's expiry buckets: ms on the server's clock,
                // rounded up to a tick.
                let at = up + deadline.saturating_duration_since(now).as_millis() as u64;
                by_expiry
                    .entry(at.div_ceil(tick) * tick)
                    .or_default()
                    .push(id);
                let paths: Vec<&String> = core.tree().ephemerals_of(id).collect();
                if !paths.is_empty() {
                    ephemerals.insert(id.to_string(), json!(paths));
                }
            }
            let expiry: Map<String, Value> = by_expiry
                .into_iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            m.insert("expiry_time_to_session_ids".into(), Value::Object(expiry));
            m.insert(
                "session_id_to_ephemeral_paths".into(),
                Value::Object(ephemerals),
            );
        }
        "leader" => match &h.ens {
            None => {
                m.insert("error".into(), json!("server is not initialized"));
            }
            Some(ens) => {
                let q = ens.quorum_view();
                let leader_ip = q
                    .leader
                    .and_then(|l| q.members.iter().find(|m| m.0 == l))
                    .map(|m| m.1.split(':').next().unwrap_or_default().to_string())
                    .unwrap_or_default();
                m.insert("is_leader".into(), json!(q.leader == Some(q.my_id)));
                m.insert("leader_id".into(), json!(q.leader.map_or(-1, |l| l as i64)));
                m.insert("leader_ip".into(), json!(leader_ip));
            }
        },
        "voting_view" => {
            let mut view = Map::new();
            if let Some(ens) = &h.ens {
                for (id, spec, voter) in ens.quorum_view().members {
                    let (addr, client) = spec.split_once(';').unwrap_or((&spec, ""));
                    let parts: Vec<&str> = addr.split(':').collect();
                    let host = parts.first().copied().unwrap_or_default();
                    let port = |i: usize| parts.get(i).copied().unwrap_or_default();
                    view.insert(
                        id.to_string(),
                        json!({
                            "server_addresses": [format!("{host}:{}", port(1))],
                            "election_addresses": [format!("{host}:{}", port(2))],
                            "client_address": client,
                            "learner_type": if voter { "participant" } else { "observer" },
                        }),
                    );
                }
            }
            m.insert("current_config".into(), Value::Object(view));
        }
        _ => {}
    }
    m
}

/// A reported value as JSON, keeping integers integers.
fn to_json(v: &monitor::Value) -> Value {
    match v {
        monitor::Value::Int(i) => json!(i),
        monitor::Value::Float(f) => number(*f),
        monitor::Value::Text(s) => json!(s),
    }
}

/// A JSON number from an f64 (null for NaN/inf, which JSON lacks).
fn number(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Bytes in a directory's files (ZooKeeper's `data_dir_size`), one level
/// of subdirectories deep (the logs and snapshots live there).
fn dir_size(dir: &std::path::Path) -> u64 {
    fn walk(dir: &std::path::Path, depth: u32) -> u64 {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return 0;
        };
        rd.flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() && depth > 0 => walk(&e.path(), depth - 1),
                Ok(m) if m.is_file() => m.len(),
                _ => 0,
            })
            .sum()
    }
    walk(dir, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_to_primary_names() {
        assert_eq!(primary("mntr"), Some("monitor"));
        assert_eq!(primary("srvr"), Some("server_stats"));
        assert_eq!(primary("stat"), Some("stats"));
        assert_eq!(primary("conf"), Some("configuration"));
        assert_eq!(primary("ruok"), Some("ruok"));
        assert_eq!(primary("nosuch"), None);
        assert!(index().contains("<a href=\"/commands/monitor\">monitor</a>"));
    }
}
