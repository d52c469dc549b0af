//! `/zk?path=/x`: the coordinator's znode tree over the ZooKeeper protocol
//! (fjord-zk's client): children as links, the data as text, JSON or hex,
//! the Stat and the ACL; at the root, the ensemble's members (`srvr`) and the
//! leader's figures and sessions count (`mntr`).
//! Read-only. A session is opened per page and closed after it; an
//! unreachable coordinator gives a notice within the timeout.

use fjord_zk::client::{ZkClient, ZkOptions};
use hyper::StatusCode;

use crate::app::{App, Reply, Req};
use crate::decode::{show, Format};
use crate::html::{enc, esc, link, notice, table, utc};

fn child(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

pub async fn page(app: &App, r: &Req) -> anyhow::Result<Reply> {
    let Some(connect) = app.cfg.zookeeper.as_deref() else {
        let body = notice(
            "info",
            "zookeeper.connect is not set: the coordinator pages are off.",
        );
        return Ok(app.page(StatusCode::OK, "Coordinator", &body));
    };
    let path = r.q("path").unwrap_or("/").to_string();
    let format = Format::parse(r.q("format").unwrap_or("text"));
    let opts = ZkOptions {
        session_timeout: app.cfg.timeout.max(std::time::Duration::from_secs(4)),
        connect_timeout: Some(app.cfg.timeout),
        fail_fast: true,
        ..ZkOptions::default()
    };
    let zk = match ZkClient::connect_with(connect, opts).await {
        Ok(z) => z,
        Err(e) => {
            let body = notice(
                "error",
                &format!("cannot reach the coordinator at {connect}: {e}"),
            );
            return Ok(app.page(StatusCode::BAD_GATEWAY, "Coordinator", &body));
        }
    };
    let res = read(&zk, &path).await;
    zk.close().await;
    let (mut kids, data, stat, acl) = match res {
        Ok(x) => x,
        Err(e) => {
            let body = notice("error", &format!("{path}: {e}"));
            return Ok(app.page(StatusCode::NOT_FOUND, &format!("Znode {path}"), &body));
        }
    };
    kids.sort();
    let mut body = String::new();
    if path == "/" {
        body += &ensemble_table(connect, app.cfg.timeout).await;
        body += &figures(connect, app.cfg.timeout).await;
    }
    // Breadcrumbs: every ancestor as a link.
    let mut crumbs = vec![link("/zk?path=%2F", "/")];
    let mut at = String::new();
    for part in path.split('/').filter(|s| !s.is_empty()) {
        at = format!("{at}/{part}");
        crumbs.push(link(&format!("/zk?path={}", enc(&at)), part));
    }
    body += &format!("<p id=\"crumbs\">{}</p>", crumbs.join(" / "));
    body += "<h2>Children</h2><ul id=\"children\">";
    for k in &kids {
        let p = child(&path, k);
        body += &format!("<li>{}</li>", link(&format!("/zk?path={}", enc(&p)), k));
    }
    body += "</ul><h2>Data</h2>";
    body += &format!(
        "<p>As {} · {} · {}</p>",
        link(&format!("/zk?path={}&format=text", enc(&path)), "text"),
        link(&format!("/zk?path={}&format=json", enc(&path)), "JSON"),
        link(&format!("/zk?path={}&format=hex", enc(&path)), "hex"),
    );
    body += &format!(
        "<pre id=\"znode-data\">{}</pre>",
        esc(&show(data.as_deref(), format))
    );
    let st = &stat;
    let hexid = |z: i64| format!("0x{z:x}");
    let rows = vec![
        vec!["cZxid".into(), hexid(st.czxid)],
        vec!["ctime".into(), esc(&utc(st.ctime))],
        vec!["mZxid".into(), hexid(st.mzxid)],
        vec!["mtime".into(), esc(&utc(st.mtime))],
        vec!["pZxid".into(), hexid(st.pzxid)],
        vec!["cversion".into(), st.cversion.to_string()],
        vec!["dataVersion".into(), st.version.to_string()],
        vec!["aclVersion".into(), st.aversion.to_string()],
        vec!["ephemeralOwner".into(), hexid(st.ephemeral_owner)],
        vec!["dataLength".into(), st.data_length.to_string()],
        vec!["numChildren".into(), st.num_children.to_string()],
    ];
    body += "<h2>Stat</h2>";
    body += &table("stat", &["field", "value"], &rows);
    let acl_rows: Vec<Vec<String>> = acl
        .iter()
        .map(|a| vec![esc(&a.0), esc(&a.1), esc(&a.2)])
        .collect();
    body += "<h2>ACL</h2>";
    body += &table("acl", &["scheme", "id", "permissions"], &acl_rows);
    Ok(app.page(StatusCode::OK, &format!("Znode {path}"), &body))
}

/// The members of the coordinator ensemble as a table (`srvr` of each).
pub async fn ensemble_table(connect: &str, timeout: std::time::Duration) -> String {
    let members = crate::ensemble::members(connect, timeout).await;
    let lead = match crate::ensemble::leader(&members) {
        Some(m) => format!(
            "<p>Leader <b id=\"ensemble-leader\">{}</b> ({}) · zxid {}</p>",
            esc(&m.addr),
            esc(&m.mode),
            esc(&m.zxid)
        ),
        None => notice(
            "error",
            "No member says it leads: an election is running or a quorum is lost.",
        ),
    };
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| match &m.error {
            None => vec![
                esc(&m.addr),
                format!("<span class=\"up\">{}</span>", esc(&m.mode)),
                esc(&m.zxid),
                esc(&m.znodes),
                esc(&m.connections),
                esc(&m.version),
            ],
            Some(e) => vec![
                esc(&m.addr),
                format!("<span class=\"down\">down</span> {}", esc(e)),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
        })
        .collect();
    lead + &table(
        "ensemble",
        &["member", "mode", "zxid", "znodes", "connections", "version"],
        &rows,
    )
}

/// `mntr` of the leader (or the first member): sessions first, then all figures.
async fn figures(connect: &str, timeout: std::time::Duration) -> String {
    let members = crate::ensemble::members(connect, timeout).await;
    let Some(m) = crate::ensemble::leader(&members).or(members.iter().find(|m| m.error.is_none()))
    else {
        return String::new();
    };
    let mut out = format!("<h2>Figures of {} (mntr)</h2>", esc(&m.addr));
    match crate::ensemble::mntr(&m.addr, timeout).await {
        Ok(rows) => {
            if let Some((_, n)) = rows.iter().find(|(k, _)| k == "global_sessions") {
                out += &format!("<p>Sessions <b id=\"sessions\">{}</b></p>", esc(n));
            }
            let rows: Vec<Vec<String>> = rows.iter().map(|(k, v)| vec![esc(k), esc(v)]).collect();
            out += &table("mntr", &["figure", "value"], &rows);
        }
        Err(e) => out += &notice("info", &format!("mntr gave no figures: {e}")),
    }
    out
}

type Read = (
    Vec<String>,
    Option<bytes::Bytes>,
    fjord_zk::proto::Stat,
    Vec<(String, String, String)>,
);

async fn read(zk: &ZkClient, path: &str) -> Result<Read, fjord_zk::client::ZkError> {
    let (data, stat) = zk.get_data_opt(path).await?;
    let kids = zk.get_children(path).await?;
    let (acl, _) = zk.get_acl(path).await?;
    let acl = acl
        .iter()
        .map(|a| (a.id.scheme.clone(), a.id.id.clone(), perms(a.perms)))
        .collect();
    Ok((kids, data, stat, acl))
}

/// ZooKeeper's permission bits as zkCli prints them (`cdrwa`).
fn perms(p: i32) -> String {
    [(4, 'c'), (8, 'd'), (1, 'r'), (2, 'w'), (16, 'a')]
        .iter()
        .filter(|(bit, _)| p & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_perms() {
        assert_eq!(child("/", "a"), "/a");
        assert_eq!(child("/a", "b"), "/a/b");
        assert_eq!(perms(31), "cdrwa");
        assert_eq!(perms(1), "r");
    }
}
