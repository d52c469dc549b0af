//! Four-letter words on the client port (ruok, srvr, stat, mntr, ...), shaped
//! like ZooKeeper's answers so monitoring scripts and zkServer.sh status parse them.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use crate::config::Config;
use crate::core::Core;

/// The words we answer.
pub const COMMANDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "envi", "wchs", "isro",
];

use crate::monitor::mode;
/// Version string reported to tools.
pub use crate::monitor::VERSION;
use crate::raft::QuorumView;

/// Recognises a four-letter word in a connection's first four bytes.
pub fn command(first: &[u8; 4]) -> Option<&'static str> {
    let s = std::str::from_utf8(first).ok()?;
    COMMANDS.iter().copied().find(|c| *c == s)
}

/// The text to send back for `cmd`.
/// `quorum`: the ensemble view in ensemble mode (for `mntr`).
pub fn answer(core: &Mutex<Core>, cmd: &str, cfg: &Config, quorum: Option<&QuorumView>) -> String {
    if !cfg.four_letter_allowed(cmd) {
        return format!("{cmd} is not executed because it is not in the whitelist.\n");
    }
    let core = core.lock();
    let mut out = String::new();
    let received = core.stats().packets_received.load(Ordering::Relaxed);
    let sent = core.stats().packets_sent.load(Ordering::Relaxed);
    let (watches, watched_paths) = core.watches().counts();
    let (lat_min, lat_avg, lat_max) = core.stats().latency_ms();
    match cmd {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str(if core.read_only() { "ro" } else { "rw" }),
        "srvr" | "stat" => {
            let _ = writeln!(out, "Zookeeper version: {VERSION}");
            if cmd == "stat" {
                out.push_str("Clients:\n");
                for c in core.conns().values() {
                    let _ = writeln!(
                        out,
                        " /{}[1](queued=0,recved={},sent={})",
                        c.addr,
                        c.stats.packets_received.load(Ordering::Relaxed),
                        c.stats.packets_sent.load(Ordering::Relaxed)
                    );
                }
                out.push('\n');
            }
            let _ = writeln!(out, "Latency min/avg/max: {lat_min}/{lat_avg:.4}/{lat_max}");
            let _ = writeln!(out, "Received: {received}");
            let _ = writeln!(out, "Sent: {sent}");
            let _ = writeln!(out, "Connections: {}", core.conns().len());
            let _ = writeln!(out, "Outstanding: 0");
            let _ = writeln!(out, "Zxid: 0x{:x}", core.last_zxid());
            // zkServer.sh status parses this line.
            let _ = writeln!(out, "Mode: {}", mode(&core));
            let _ = writeln!(out, "Node count: {}", core.tree().node_count());
        }
        "mntr" => {
            for (k, v) in crate::monitor::collect(&core, quorum).rows() {
                let _ = writeln!(out, "zk_{k}\t{}", v.text());
            }
            let _ = writeln!(out, "zk_last_zxid\t0x{:x}", core.last_zxid());
        }
        "conf" => {
            let _ = writeln!(out, "clientPort={}", cfg.client_port);
            let _ = writeln!(out, "clientPortAddress={}", cfg.client_port_address);
            if let Some(s) = cfg.security.secure_client {
                let _ = writeln!(out, "secureClientPort={}", s.port());
                let _ = writeln!(out, "secureClientPortAddress={}", s.ip());
            }
            let _ = writeln!(out, "dataDir={}", cfg.data_dir.display());
            let _ = writeln!(out, "dataLogDir={}", cfg.data_log_dir.display());
            let _ = writeln!(out, "tickTime={}", cfg.tick_time_ms);
            let _ = writeln!(out, "maxClientCnxns={}", cfg.max_client_cnxns);
            let _ = writeln!(out, "minSessionTimeout={}", cfg.min_session_timeout_ms);
            let _ = writeln!(out, "maxSessionTimeout={}", cfg.max_session_timeout_ms);
            let _ = writeln!(out, "serverId={}", cfg.my_id.unwrap_or(0));
            for s in &cfg.servers {
                let _ = writeln!(
                    out,
                    "server.{}={}:{}:{}:participant",
                    s.id, s.host, s.peer_port, s.election_port
                );
            }
        }
        "cons" => {
            for c in core.conns().values() {
                let (min, avg, max) = c.stats.latency_ms();
                let (llat, lresp) = c.stats.last_response();
                let _ = writeln!(
                    out,
                    " /{}[1](queued=0,recved={},sent={},sid=0x{:x},lop={},est={},to={},lcxid=0x{:x},lzxid=0x{:x},lresp={},llat={},minlat={},avglat={:.4},maxlat={})",
                    c.addr,
                    c.stats.packets_received.load(Ordering::Relaxed),
                    c.stats.packets_sent.load(Ordering::Relaxed),
                    c.session,
                    c.last_op,
                    c.established_ms,
                    c.timeout_ms,
                    c.last_cxid,
                    c.last_zxid,
                    lresp,
                    llat,
                    min,
                    avg,
                    max
                );
            }
            out.push('\n');
        }
        "envi" => {
            out.push_str("Environment:\n");
            let _ = writeln!(out, "zookeeper.version={VERSION}");
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            let _ = writeln!(out, "host.name={}", host.trim());
            let _ = writeln!(out, "os.name={}", std::env::consts::OS);
            let _ = writeln!(out, "os.arch={}", std::env::consts::ARCH);
            let _ = writeln!(
                out,
                "user.dir={}",
                std::env::current_dir().unwrap_or_default().display()
            );
        }
        "wchs" => {
            let _ = writeln!(
                out,
                "{} connections watching {} paths\nTotal watches:{}",
                core.watches().watching_conns(),
                watched_paths,
                watches
            );
        }
        _ => {}
    }
    out
}
