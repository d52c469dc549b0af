//! Long lists (topics, consumer groups) as pages of them: sorted by the
//! column whose header was clicked (again: the other way), cut into pages of
//! [`PAGE`] rows, with the search, the order and the page kept in every
//! link so each view has a stable URL (`?q=&sort=&desc=1&page=`). A
//! thousand-row table costs a browser hundreds of milliseconds to lay out;
//! a page of a hundred stays fast however large the cluster is.

use std::cmp::Ordering;
use std::fmt::Write;

use crate::app::Req;
use crate::html::{enc, esc, trs};

/// Rows shown per page.
pub const PAGE: usize = 100;

/// What a column sorts by.
pub enum Key {
    Num(f64),
    Text(String),
}

impl Key {
    fn cmp(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Num(a), Key::Num(b)) => a.total_cmp(b),
            (Key::Text(a), Key::Text(b)) => a.cmp(b),
            (Key::Num(_), Key::Text(_)) => Ordering::Less,
            (Key::Text(_), Key::Num(_)) => Ordering::Greater,
        }
    }
}

/// One row: its cells (HTML already) and a sort key per column.
pub struct Row {
    pub cells: Vec<String>,
    pub keys: Vec<Key>,
}

/// How the request asks to see the list.
struct View<'a> {
    base: &'a str,
    q: &'a str,
    sort: Option<&'a str>,
    desc: bool,
}

impl View<'_> {
    fn url(&self, sort: Option<&str>, desc: bool, page: usize) -> String {
        let mut u = format!("{}?", self.base);
        if !self.q.is_empty() {
            let _ = write!(u, "q={}&", enc(self.q));
        }
        if let Some(s) = sort {
            let _ = write!(u, "sort={}&", enc(s));
            if desc {
                u.push_str("desc=1&");
            }
        }
        let _ = write!(u, "page={page}");
        u
    }
}

/// The table `id` of `rows` (already filtered by the search) as `r` asks
/// to see it, with its pager when there is more than one page.
pub fn render(id: &str, base: &str, head: &[&str], mut rows: Vec<Row>, r: &Req) -> String {
    let v = View {
        base,
        q: r.q("q").unwrap_or(""),
        sort: r.q("sort").filter(|s| head.contains(s)),
        desc: r.q("desc") == Some("1"),
    };
    if let Some(i) = v.sort.and_then(|s| head.iter().position(|h| *h == s)) {
        // Stable: equal keys keep the default (name) order.
        rows.sort_by(|a, b| a.keys[i].cmp(&b.keys[i]));
        if v.desc {
            rows.reverse();
        }
    }
    let total = rows.len();
    let pages = total.div_ceil(PAGE).max(1);
    let page = r
        .q("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let shown: Vec<Vec<String>> = rows
        .into_iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .map(|r| r.cells)
        .collect();
    let mut s = format!("<table id=\"{}\"><thead><tr>", esc(id));
    for h in head {
        let on = v.sort == Some(*h);
        let arrow = match (on, v.desc) {
            (true, false) => " ▲",
            (true, true) => " ▼",
            _ => "",
        };
        let _ = write!(
            s,
            "<th><a href=\"{}\">{}</a>{arrow}</th>",
            esc(&v.url(Some(h), on && !v.desc, 1)),
            esc(h)
        );
    }
    s.push_str("</tr></thead><tbody>");
    s.push_str(&trs(&shown));
    s.push_str("</tbody></table>");
    if pages > 1 {
        let first = (page - 1) * PAGE + 1;
        let last = (page * PAGE).min(total);
        let _ = write!(
            s,
            "<p id=\"{id}-pager\">Rows {first}–{last} of <b id=\"{id}-total\">{total}</b> · page {page} of {pages}"
        );
        if page > 1 {
            let _ = write!(
                s,
                " · <a id=\"{id}-prev\" href=\"{}\">‹ previous</a>",
                esc(&v.url(v.sort, v.desc, page - 1))
            );
        }
        if page < pages {
            let _ = write!(
                s,
                " · <a id=\"{id}-next\" href=\"{}\">next ›</a>",
                esc(&v.url(v.sort, v.desc, page + 1))
            );
        }
        s.push_str("</p>");
    }
    s
}

/// A number's sort key; None (shown as `-`) sorts below every number.
pub fn num(v: Option<f64>) -> Key {
    Key::Num(v.unwrap_or(f64::NEG_INFINITY))
}

/// A text's sort key.
pub fn text(s: &str) -> Key {
    Key::Text(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(q: &[(&str, &str)]) -> Req {
        Req {
            method: hyper::Method::GET,
            segs: Vec::new(),
            query: q
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            form: Default::default(),
        }
    }

    fn rows(n: usize) -> Vec<Row> {
        (0..n)
            .map(|i| Row {
                cells: vec![format!("t{i:04}"), (i % 7).to_string()],
                keys: vec![text(&format!("t{i:04}")), num(Some((i % 7) as f64))],
            })
            .collect()
    }

    fn first_cells(html: &str) -> Vec<&str> {
        html.split("<tr><td>")
            .skip(1)
            .map(|r| r.split("</td>").next().unwrap_or(""))
            .collect()
    }

    #[test]
    fn pages_of_a_hundred_in_the_asked_order() {
        let head = ["topic", "lag"];
        let html = render("topics", "/topics", &head, rows(250), &req(&[]));
        let names = first_cells(&html);
        assert_eq!(names.len(), PAGE);
        assert_eq!((names[0], names[99]), ("t0000", "t0099"));
        assert!(html.contains("Rows 1–100 of <b id=\"topics-total\">250</b> · page 1 of 3"));
        assert!(html.contains("href=\"/topics?page=2\">next ›"));
        assert!(!html.contains("previous"));
        // The last page; a page past the end shows the last one.
        for p in ["3", "9"] {
            let html = render("topics", "/topics", &head, rows(250), &req(&[("page", p)]));
            assert_eq!(first_cells(&html).len(), 50);
            assert!(html.contains("Rows 201–250"));
        }
        // By lag, descending: the 6s first, in name order; the search is kept.
        let q = [("sort", "lag"), ("desc", "1"), ("q", "t0")];
        let html = render("topics", "/topics", &head, rows(250), &req(&q));
        assert_eq!(first_cells(&html)[0], "t0244");
        assert!(html.contains("href=\"/topics?q=t0&amp;sort=lag&amp;page=1\">lag</a> ▼"));
        assert!(html.contains("href=\"/topics?q=t0&amp;sort=lag&amp;desc=1&amp;page=2\">next"));
        // An unknown column sorts nothing; a short list has no pager.
        let html = render(
            "topics",
            "/topics",
            &head,
            rows(3),
            &req(&[("sort", "<x>")]),
        );
        assert_eq!(first_cells(&html), vec!["t0000", "t0001", "t0002"]);
        assert!(!html.contains("topics-pager"));
    }
}
