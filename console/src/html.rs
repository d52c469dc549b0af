//! HTML building: the one escaping helper ([`esc`]) every piece of text from
//! the cluster or the user goes through, URL encoding for links, and the page
//! frame (navigation, notices). Pages are plain `String`s built by small
//! functions; no template engine.

use std::fmt::Write;

/// Escape text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encode one path segment or query value (then still [`esc`] it
/// when it goes into an attribute).
/// Everything but RFC 3986's unreserved characters becomes `%XX`, so the
/// same text works in a path segment and in a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A link whose target and text are both escaped.
pub fn link(href: &str, text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(href), esc(text))
}

/// What the frame needs to know beyond the page itself.
pub struct Frame {
    pub read_only: bool,
    pub zk: bool,
    pub registry: bool,
    pub connect: bool,
}

/// A whole page: navigation, title and `body` (already HTML).
pub fn page(f: &Frame, title: &str, body: &str) -> String {
    let mut nav = String::new();
    let mut item = |href: &str, name: &str| {
        let _ = write!(nav, "<a href=\"{href}\">{name}</a> ");
    };
    item("/", "Overview");
    item("/brokers", "Brokers");
    item("/topics", "Topics");
    item("/groups", "Consumer groups");
    if f.zk {
        item("/zk", "Coordinator");
    }
    if f.registry {
        item("/schemas", "Schemas");
    }
    if f.connect {
        item("/connect", "Connect");
    }
    let ro = if f.read_only {
        "<span class=\"ro\" id=\"read-only\">read-only</span>"
    } else {
        ""
    };
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t} · Fjord console</title>\
<link rel=\"stylesheet\" href=\"/static/style.css\"><script src=\"/static/console.js\" defer></script></head><body>\
<header><b>Fjord</b> {nav}{ro}</header><main><h1>{t}</h1>\n{body}</main></body></html>\n",
        t = esc(title)
    )
}

/// A notice box: `kind` is `error`, `ok` or `info`; `text` is escaped.
pub fn notice(kind: &str, text: &str) -> String {
    format!("<p class=\"notice {kind}\">{}</p>", esc(text))
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// A table: `head` cells are escaped, `rows` cells are HTML already.
pub fn table(id: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    table_with(id, &[], head, rows)
}

/// A table with more attributes on its element (`data-*` for the script;
/// names are ours, values are escaped).
pub fn table_with(id: &str, attrs: &[(&str, &str)], head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("<table id=\"{}\"", esc(id));
    for (k, v) in attrs {
        let _ = write!(s, " {k}=\"{}\"", esc(v));
    }
    s.push_str("><thead><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    s.push_str(&trs(rows));
    s.push_str("</tbody></table>");
    s
}

/// Table rows alone (cells are HTML already), for a table that grows in place.
pub fn trs(rows: &[Vec<String>]) -> String {
    let mut s = String::new();
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{c}</td>");
        }
        s.push_str("</tr>");
    }
    s
}

/// A byte count as people read it: `512 B`, `1.5 KiB`, `20.0 MiB`
/// (negative: unknown, `-`).
pub fn bytes(n: i64) -> String {
    if n < 0 {
        return "-".into();
    }
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A list of broker ids as `1,2,3`.
pub fn ids(v: &[i32]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm` (UTC).
pub fn utc(ms: i64) -> String {
    if ms < 0 {
        return ms.to_string();
    }
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(bytes(-1), "-");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(20 << 20), "20.0 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn escapes_everything_that_could_open_markup() {
        assert_eq!(
            esc("<script>alert(\"x\")</script>&'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        assert_eq!(esc("plain ünïcode"), "plain ünïcode");
        assert_eq!(
            link("/groups/a<b>?x=\"", "<g>"),
            "<a href=\"/groups/a&lt;b&gt;?x=&quot;\">&lt;g&gt;</a>"
        );
        assert_eq!(enc("a b/<c>&+"), "a%20b%2F%3Cc%3E%26%2B");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14 22:13:20.123");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000");
    }
}
