//! `/topics/{t}/messages`: browse a topic from an offset or a timestamp,
//! one partition or all, showing key, value, headers, timestamp and offset
//! decoded as text, JSON, hex or through the Schema Registry (JSON with the
//! schema id), with an optional substring filter applied
//! while scanning and a bound on how many records are scanned. Every choice
//! is in the query string, so a position is a bookmark.

use fjord_kafka::client::ConsumedRecord;
use hyper::StatusCode;

use crate::app::{App, Reply, Req};
use crate::cluster;
use crate::decode::{show, Format};
use crate::html::{enc, esc, notice, table, utc};
use crate::scan::{self, Filter, Found, Want};
use fjord_http::client::Rest;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;
const DEFAULT_SCAN: u64 = 100_000;

/// A timestamp from the form: epoch milliseconds, or `YYYY-MM-DD[ T]HH:MM[:SS[.mmm]]` in UTC.
/// `/topics/{t}/{what}` (`messages`, `tail` or `tail/poll`) keeping the query's
/// `partition`, `format` and `filter`.
pub fn url(name: &str, r: &Req, what: &str) -> String {
    let q: Vec<String> = ["partition", "format", "filter", "regex"]
        .iter()
        .filter_map(|k| r.q(k).map(|v| format!("{k}={}", enc(v))))
        .collect();
    format!("/topics/{}/{what}?{}", enc(name), q.join("&"))
}

pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let (date, time) = s.split_once(['T', ' '])?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm) = (t.next()??, t.next()??);
    let ss = t.next().flatten().unwrap_or(0);
    let ms: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

pub async fn page(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    let Some(super::shared::Found { mut c, t, .. }) = super::shared::find_topic(app, name).await?
    else {
        return Ok(super::shared::no_such_topic(app, name));
    };
    let t = &t;
    let format = Format::parse(r.q("format").unwrap_or("text"));
    let limit = r
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, MAX_LIMIT);
    let bound = r
        .q("scan")
        .and_then(|l| l.parse::<u64>().ok())
        .unwrap_or(DEFAULT_SCAN)
        .max(1);
    let filter = match Filter::parse(r.q("filter"), r.q("regex").is_some()) {
        Ok(f) => f,
        Err(e) => {
            let body = form(name, t, r, format, limit, bound) + &notice("error", &e);
            return Ok(app.page(StatusCode::BAD_REQUEST, name, &body));
        }
    };
    let partition = r.q("partition").and_then(|p| p.parse::<i32>().ok());
    let offset = r.q("offset").and_then(|o| o.parse::<i64>().ok());
    let ts_text = r.q("timestamp");
    let mut body = format!(
        "<p>{} · <a id=\"live-tail\" href=\"{}\">Live tail</a></p>",
        crate::html::link(&format!("/topics/{}", enc(name)), &format!("Topic {name}")),
        esc(&url(name, r, "tail"))
    );
    body += &form(name, t, r, format, limit, bound);
    let parts: Vec<i32> = match partition {
        Some(p) => vec![p],
        None => t.partitions.iter().map(|p| p.index).collect(),
    };
    // Where each partition starts: an offset, a timestamp's offset, or the earliest.
    let starts: Vec<(i32, Option<i64>)> = if let Some(ts) = ts_text {
        let Some(ms) = parse_time(ts) else {
            body += &notice(
                "error",
                &format!("'{ts}' is not a timestamp (epoch ms or YYYY-MM-DD HH:MM:SS, UTC)"),
            );
            return Ok(app.page(
                StatusCode::BAD_REQUEST,
                &format!("Messages in {name}"),
                &body,
            ));
        };
        let at = cluster::offsets(&mut c, t, ms).await?;
        parts
            .iter()
            .map(|p| (*p, at.get(p).copied().filter(|o| *o >= 0)))
            .collect()
    } else if let Some(o) = offset {
        parts.iter().map(|p| (*p, Some(o))).collect()
    } else {
        let at = cluster::offsets(&mut c, t, -2).await?;
        parts
            .iter()
            .map(|p| (*p, Some(at.get(p).copied().unwrap_or(0))))
            .collect()
    };
    let want = Want {
        limit,
        bound,
        filter,
    };
    let mut found = Found::default();
    for (p, start) in starts {
        let Some(start) = start else { continue }; // nothing at or after the timestamp
        scan::scan_partition(&mut c, t, p, start, &want, &mut found).await?;
    }
    body += &format!(
        "<p id=\"scan-summary\">{} shown, {} scanned.</p>",
        found.records.len(),
        found.scanned
    );
    if found.bound_hit {
        body += &notice(
            "info",
            &format!(
                "Stopped after scanning {} records (the scan bound); continue from {}.",
                found.scanned,
                found
                    .next
                    .iter()
                    .map(|(p, o)| format!("partition {p} at offset {o}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let rows = rows(app, &found.records, format, &mut body).await;
    body += &table("messages", HEAD, &rows);
    Ok(app.page(StatusCode::OK, &format!("Messages in {name}"), &body))
}

/// The columns of a message table (here and in the live tail).
pub(super) const HEAD: &[&str] = &[
    "partition",
    "offset",
    "timestamp",
    "key",
    "value",
    "headers",
];

/// Table rows of `records` shown as `format`; with `schema`, their schemas
/// are fetched from the registry first, and a notice goes into `body` when
/// that cannot be done.
pub(super) async fn rows(
    app: &App,
    records: &[(i32, ConsumedRecord)],
    format: Format,
    body: &mut String,
) -> Vec<Vec<String>> {
    // Schema-framed keys and values: their schemas fetched once, up front.
    let typed = if format == Format::Schema {
        match app.cfg.schema_registry.as_deref() {
            None => {
                *body += &notice(
                    "info",
                    "schema.registry.url is not set: values are shown as text.",
                );
                None
            }
            Some(url) => match Rest::new("the Schema Registry", url, app.cfg.timeout) {
                Ok(sr) => {
                    let framed = records.iter().flat_map(|(_, r)| {
                        [r.key.as_deref(), r.value.as_deref()].into_iter().flatten()
                    });
                    Some(app.schemas.load(&sr, framed).await)
                }
                Err(e) => {
                    *body += &notice("error", &format!("{e}"));
                    None
                }
            },
        }
    } else {
        None
    };
    let shown = |b: Option<&[u8]>| match &typed {
        Some(failed) => app.schemas.show(b, failed),
        None => show(b, format),
    };
    records
        .iter()
        .map(|(p, rec)| {
            let headers = rec
                .headers
                .iter()
                .map(|(k, v)| format!("{}: {}", k, show(v.as_deref(), format)))
                .collect::<Vec<_>>()
                .join("\n");
            vec![
                p.to_string(),
                format!("<span class=\"offset\">{}</span>", rec.offset),
                format!(
                    "{}{}<br><small>{}</small>",
                    esc(&utc(rec.timestamp)),
                    if rec.log_append_time { " (append)" } else { "" },
                    rec.timestamp
                ),
                format!(
                    "<pre class=\"key\">{}</pre>",
                    esc(&shown(rec.key.as_deref()))
                ),
                format!(
                    "<pre class=\"value\">{}</pre>",
                    esc(&shown(rec.value.as_deref()))
                ),
                format!("<pre class=\"headers\">{}</pre>", esc(&headers)),
            ]
        })
        .collect()
}

/// The `<option>`s of a partition picker ("all", then each partition), the
/// request's `partition` selected.
pub(super) fn partition_options(t: &cluster::Topic, r: &Req) -> String {
    let sel = r.q("partition").unwrap_or("");
    let mut opts = format!(
        "<option value=\"\"{}>all</option>",
        if sel.is_empty() { " selected" } else { "" }
    );
    for p in &t.partitions {
        let v = p.index.to_string();
        opts += &format!(
            "<option value=\"{v}\"{}>{v}</option>",
            if sel == v { " selected" } else { "" }
        );
    }
    opts
}

/// The `<option>`s of a value-format picker, `format` selected.
pub(super) fn format_options(format: Format) -> String {
    let mut fmts = String::new();
    for f in [Format::Text, Format::Json, Format::Hex, Format::Schema] {
        fmts += &format!(
            "<option{}>{}</option>",
            if f == format { " selected" } else { "" },
            f.name()
        );
    }
    fmts
}

fn form(
    name: &str,
    t: &cluster::Topic,
    r: &Req,
    format: Format,
    limit: usize,
    bound: u64,
) -> String {
    let (opts, fmts) = (partition_options(t, r), format_options(format));
    format!(
        "<form method=\"get\" action=\"/topics/{}/messages\" id=\"browse\">\
<label>Partition <select name=\"partition\" id=\"partition\">{opts}</select></label> \
<label>From offset <input name=\"offset\" id=\"offset\" size=\"10\" value=\"{}\"></label> \
<label>or timestamp <input name=\"timestamp\" id=\"timestamp\" size=\"24\" placeholder=\"ms or 2024-01-31 12:00:00\" value=\"{}\"></label> \
<label>Show <input name=\"limit\" id=\"limit\" size=\"4\" value=\"{limit}\"></label> \
<label>As <select name=\"format\" id=\"format\">{fmts}</select></label><br>\
<label>Containing <input name=\"filter\" id=\"filter\" value=\"{}\"></label> \
<label><input type=\"checkbox\" name=\"regex\" id=\"regex\" value=\"1\"{}> as a regular expression</label> \
<label>Scan at most <input name=\"scan\" id=\"scan\" size=\"8\" value=\"{bound}\"></label> \
<button id=\"browse-submit\">Show</button></form>",
        esc(&enc(name)),
        esc(r.q("offset").unwrap_or("")),
        esc(r.q("timestamp").unwrap_or("")),
        esc(r.q("filter").unwrap_or("")),
        regex_checked(r),
    )
}

/// ` checked` when the request asked for a regular-expression filter.
pub(super) fn regex_checked(r: &Req) -> &'static str {
    if r.q("regex").is_some() {
        " checked"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_from_the_form() {
        assert_eq!(parse_time("1700000000123"), Some(1_700_000_000_123));
        assert_eq!(
            parse_time("2023-11-14 22:13:20.123"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(parse_time("2000-02-29 00:00"), Some(951_782_400_000));
        assert_eq!(parse_time("2023-13-01 00:00"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}
