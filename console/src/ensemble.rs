//! The coordinator ensemble as ZooKeeper's `srvr` four-letter word shows it
//! (the one command every ensemble allows by default): each member of the
//! connect string asked on its client port for its mode (leader, follower,
//! standalone), zxid, znode count and connections. A member that does not
//! answer within the timeout is shown as down. `mntr` (off by default in
//! ZooKeeper's whitelist) gives the leader's figures when it is allowed.

use std::time::Duration;

use fjord_zk::client::ConnectString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One member's answer (or why there is none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub addr: String,
    /// `leader`, `follower`, `standalone`, ... ; empty when it did not answer.
    pub mode: String,
    pub zxid: String,
    pub znodes: String,
    pub connections: String,
    pub version: String,
    pub error: Option<String>,
}

/// Parse a `srvr` answer (`Key: value` lines).
pub fn parse_srvr(addr: &str, text: &str) -> Member {
    let mut m = Member {
        addr: addr.to_string(),
        ..Member::default()
    };
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "Mode" => m.mode = v,
            "Zxid" => m.zxid = v,
            "Node count" => m.znodes = v,
            "Connections" => m.connections = v,
            "Zookeeper version" => m.version = v.split(',').next().unwrap_or("").to_string(),
            _ => {}
        }
    }
    if m.mode.is_empty() {
        m.error = Some(format!("unexpected answer: {}", text.trim()));
    }
    m
}

/// Ask `addr` one four-letter word; the whole answer (up to 64 KiB).
async fn four(addr: &str, cmd: &[u8; 4]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(cmd).await?;
    let mut buf = Vec::new();
    (&mut s).take(64 * 1024).read_to_end(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Every member of `connect` (a ZooKeeper connect string), asked at once so
/// a dead member costs one timeout, not one per member.
pub async fn members(connect: &str, timeout: Duration) -> Vec<Member> {
    let hosts = match ConnectString::parse(connect) {
        Ok(cs) => cs.hosts,
        Err(e) => {
            return vec![Member {
                addr: connect.to_string(),
                error: Some(e.to_string()),
                ..Member::default()
            }]
        }
    };
    let asks: Vec<_> = hosts
        .into_iter()
        .map(|(h, p)| tokio::spawn(ask(format!("{h}:{p}"), timeout)))
        .collect();
    let mut out = Vec::with_capacity(asks.len());
    for a in asks {
        if let Ok(m) = a.await {
            out.push(m);
        }
    }
    out
}

async fn ask(addr: String, timeout: Duration) -> Member {
    match tokio::time::timeout(timeout, four(&addr, b"srvr")).await {
        Ok(Ok(text)) => parse_srvr(&addr, &text),
        Ok(Err(e)) => Member {
            error: Some(e.to_string()),
            addr,
            ..Member::default()
        },
        Err(_) => Member {
            error: Some(format!("no answer within {} ms", timeout.as_millis())),
            addr,
            ..Member::default()
        },
    }
}

/// `mntr`'s figures of one member (`zk_` taken off the names), or why there
/// are none (not reachable, or not in its `4lw.commands.whitelist`).
pub async fn mntr(addr: &str, timeout: Duration) -> Result<Vec<(String, String)>, String> {
    let text = match tokio::time::timeout(timeout, four(addr, b"mntr")).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err(format!("no answer within {} ms", timeout.as_millis())),
    };
    let rows = parse_mntr(&text);
    if rows.is_empty() {
        return Err(text.trim().to_string());
    }
    Ok(rows)
}

pub fn parse_mntr(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            Some((
                k.trim_start_matches("zk_").to_string(),
                v.trim().to_string(),
            ))
        })
        .collect()
}

/// The member that says it leads (`leader`, or `standalone` for a single
/// server); none while an election runs.
pub fn leader(members: &[Member]) -> Option<&Member> {
    let mut leads = members
        .iter()
        .filter(|m| m.mode == "leader" || m.mode == "standalone");
    match (leads.next(), leads.next()) {
        (Some(m), None) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srvr_answers() {
        let m = parse_srvr(
            "h:1",
            "Zookeeper version: 3.8.4-fjord, built on x\nLatency min/avg/max: 0/0.1/3\nReceived: 10\nSent: 9\nConnections: 2\nOutstanding: 0\nZxid: 0x1a\nMode: leader\nNode count: 42\n",
        );
        assert_eq!(m.mode, "leader");
        assert_eq!(m.zxid, "0x1a");
        assert_eq!(m.znodes, "42");
        assert_eq!(m.connections, "2");
        assert_eq!(m.version, "3.8.4-fjord");
        assert!(m.error.is_none());
        let f = parse_srvr("h:2", "Mode: follower\nZxid: 0x1a\n");
        assert_eq!(leader(&[f.clone(), m.clone()]), Some(&m));
        assert_eq!(leader(std::slice::from_ref(&f)), None);
        assert_eq!(leader(&[m.clone(), m.clone()]), None);
        assert_eq!(
            parse_mntr("zk_version\t3.8\nzk_global_sessions\t4\n"),
            vec![
                ("version".to_string(), "3.8".to_string()),
                ("global_sessions".to_string(), "4".to_string())
            ]
        );
        assert!(parse_mntr("mntr is not executed because it is not in the whitelist.").is_empty());
        let bad = parse_srvr(
            "h:1",
            "srvr is not executed because it is not in the whitelist.",
        );
        assert!(bad.error.is_some());
    }
}
