//! `/zk?path=/x`: the coordinator's znode tree over the ZooKeeper protocol
//! (fjord-zk's client): children as links, the data as text, JSON or hex,
//! the Stat and the ACL. Read-only. A session is opened per page and closed
//! after it; an unreachable coordinator gives a notice within the timeout.

use fjord_zk::client::{ZkClient, ZkOptions};
use hyper::StatusCode;

use crate::decode::{show, Format};
use crate::html::{enc, esc, link, notice, table, utc};
use crate::server::{App, Reply, Req};

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
