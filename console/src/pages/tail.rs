//! `/topics/{t}/tail`, the live tail: a message table that starts at the
//! log end of each partition (or of one, `?partition=`) and grows as
//! messages arrive, without a reload. static/console.js polls
//! `/topics/{t}/tail/poll?next=P:O,...` every second; the poll answers JSON
//! with the new rows (rendered and escaped here, as on the messages page)
//! and where the next poll starts. `format` and `filter` are the messages
//! page's; every choice is in the query string, so a tail is a bookmark.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde_json::json;

use crate::app::{App, Reply, Req};
use crate::cluster::{self, Topic};
use crate::decode::Format;
use crate::html::{enc, esc, link, table_with, trs};
use crate::scan::{self, Filter, Found, Want};

/// How often the page polls.
const POLL_MS: u64 = 1000;
/// At most this many rows per poll (the rest come with the next one).
const ROWS_PER_POLL: usize = 500;
/// At most this many records read per poll when a filter skips most.
const SCAN_PER_POLL: u64 = 100_000;
/// A position still to be resolved to the log end (its leader was unknown).
const AT_END: i64 = -1;

/// `P:O,P:O` from a poll; malformed pairs are ignored.
fn parse_next(s: &str) -> BTreeMap<i32, i64> {
    s.split(',')
        .filter_map(|pair| {
            let (p, o) = pair.split_once(':')?;
            Some((p.trim().parse().ok()?, o.trim().parse().ok()?))
        })
        .collect()
}

fn show_next(m: &BTreeMap<i32, i64>) -> String {
    m.iter()
        .map(|(p, o)| format!("{p}:{o}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The partitions followed: the one asked for, or all.
fn followed(t: &Topic, r: &Req) -> Vec<i32> {
    match r.q("partition").and_then(|p| p.parse::<i32>().ok()) {
        Some(p) => vec![p],
        None => t.partitions.iter().map(|p| p.index).collect(),
    }
}

pub async fn page(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    let Some(super::shared::Found { mut c, t, .. }) = super::shared::find_topic(app, name).await?
    else {
        return Ok(super::shared::no_such_topic(app, name));
    };
    let t = &t;
    let ends = cluster::offsets(&mut c, t, -1).await?;
    let next: BTreeMap<i32, i64> = followed(t, r)
        .into_iter()
        .map(|p| (p, ends.get(&p).copied().unwrap_or(AT_END)))
        .collect();
    let format = Format::parse(r.q("format").unwrap_or("text"));
    let opts = super::messages::partition_options(t, r);
    let fmts = super::messages::format_options(format);
    let mut body = format!(
        "<p>{} · {}</p>",
        link(&format!("/topics/{}", enc(name)), &format!("Topic {name}")),
        link(
            &super::messages::url(name, r, "messages"),
            "Browse messages"
        )
    );
    body += &format!(
        "<form method=\"get\" action=\"/topics/{}/tail\" id=\"tail-form\">\
<label>Partition <select name=\"partition\" id=\"partition\">{opts}</select></label> \
<label>As <select name=\"format\" id=\"format\">{fmts}</select></label> \
<label>Containing <input name=\"filter\" id=\"filter\" value=\"{}\"></label> \
<label><input type=\"checkbox\" name=\"regex\" id=\"regex\" value=\"1\"{}> as a regular expression</label> \
<button id=\"tail-submit\">Follow</button></form>",
        esc(&enc(name)),
        esc(r.q("filter").unwrap_or("")),
        super::messages::regex_checked(r),
    );
    body += "<p><span id=\"tail-status\">Following from the log end: new messages appear below as they arrive.</span> \
<button type=\"button\" id=\"tail-pause\">Pause</button></p>";
    // The table carries what the script needs: where to poll, from where, how often.
    body += &table_with(
        "tail",
        &[
            ("data-poll", &super::messages::url(name, r, "tail/poll")),
            ("data-next", &show_next(&next)),
            ("data-every", &POLL_MS.to_string()),
        ],
        super::messages::HEAD,
        &[],
    );
    body += "<noscript><p class=\"notice info\">The live tail needs JavaScript; the messages page works without it.</p></noscript>";
    Ok(app.page(StatusCode::OK, &format!("Live tail of {name}"), &body))
}

/// One poll: the rows after `next` and the positions after them.
pub async fn poll(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    let Some(super::shared::Found { mut c, t, .. }) = super::shared::find_topic(app, name).await?
    else {
        let j = json!({ "error": super::shared::missing(name) });
        return Ok(Reply::Json(j.to_string()));
    };
    let t = &t;
    let asked = parse_next(r.q("next").unwrap_or(""));
    let mut next = BTreeMap::new();
    let mut ends = None;
    for p in followed(t, r) {
        // A partition added since the page opened is followed from its start.
        let mut at = asked.get(&p).copied().unwrap_or(0);
        if at == AT_END {
            if ends.is_none() {
                ends = Some(cluster::offsets(&mut c, t, -1).await?);
            }
            at = ends
                .as_ref()
                .and_then(|e| e.get(&p).copied())
                .unwrap_or(AT_END);
        }
        next.insert(p, at);
    }
    let filter = match Filter::parse(r.q("filter"), r.q("regex").is_some()) {
        Ok(f) => f,
        Err(e) => return Ok(Reply::Json(json!({"error": e}).to_string())),
    };
    let want = Want {
        limit: ROWS_PER_POLL,
        bound: SCAN_PER_POLL,
        filter,
    };
    let mut found = Found::default();
    let mut trouble = Vec::new();
    for (&p, &at) in &next {
        if at == AT_END {
            continue;
        }
        // A partition without a leader keeps its place; the others go on.
        if let Err(e) = scan::scan_partition(&mut c, t, p, at, &want, &mut found).await {
            trouble.push(format!("partition {p}: {e:#}"));
        }
    }
    next.extend(found.next.iter().copied());
    let format = Format::parse(r.q("format").unwrap_or("text"));
    let mut notes = String::new();
    let rows = super::messages::rows(app, &found.records, format, &mut notes).await;
    let j = json!({
        "next": show_next(&next),
        "count": rows.len(),
        "rows": trs(&rows),
        "note": trouble.join("; "),
    });
    Ok(Reply::Json(j.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        let m = parse_next("0:12, 2:5,x:1,3:,4:-1");
        assert_eq!(m, BTreeMap::from([(0, 12), (2, 5), (4, -1)]));
        assert_eq!(show_next(&m), "0:12,2:5,4:-1");
        assert!(parse_next("").is_empty());
    }
}
