//! The HTTP side: one handler for fjord-http's accept loop that parses the
//! request, refuses what must be refused before any page runs (a POST in
//! read-only mode: 403; a POST without the page's CSRF token: 403; a body
//! over 1 MiB: 413), routes to a page, and bounds every page by the
//! console's timeout so a dead or slow cluster gives a page that says so.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::app::{App, Reply, Req};
use crate::html::esc;
use crate::pages;

const MAX_BODY: usize = 1 << 20;
const STYLE: &str = include_str!("../static/style.css");
/// The one script: the live tail's polling (pages work without it).
const SCRIPT: &str = include_str!("../static/console.js");

fn pairs(s: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(s)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Answer one request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = pairs(req.uri().query().unwrap_or("").as_bytes());
    let started = std::time::Instant::now();
    let reply = answer(&app, req, method.clone(), &path, query).await;
    let resp = render(reply);
    tracing::debug!(%method, %path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    resp
}

async fn answer(
    app: &App,
    req: Request<Incoming>,
    method: Method,
    path: &str,
    query: BTreeMap<String, String>,
) -> Reply {
    match path {
        "/static/style.css" => return Reply::Css,
        "/static/console.js" => return Reply::Script,
        _ => {}
    }
    let form = if method == Method::POST {
        if app.cfg.read_only {
            return app.error(
                StatusCode::FORBIDDEN,
                "Refused",
                "this console is read-only (console.read.only=true)",
            );
        }
        let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return app.error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Refused",
                    &format!("cannot read the form: {e}"),
                )
            }
        };
        let form = pairs(&body);
        let token = form.get("csrf").map(String::as_str).unwrap_or("");
        if !same(token.as_bytes(), app.csrf.as_bytes()) {
            return app.error(
                StatusCode::FORBIDDEN,
                "Refused",
                "missing or wrong CSRF token: reload the page and submit its form again",
            );
        }
        form
    } else if method == Method::GET || method == Method::HEAD {
        BTreeMap::new()
    } else {
        return app.error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Refused",
            &format!("method {method} is not served"),
        );
    };
    let segs = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent)
        .collect();
    let r = Req {
        method,
        segs,
        query,
        form,
    };
    // Each page's cluster calls carry the timeout too; this bounds the whole page.
    let limit = app.cfg.timeout * 2;
    match tokio::time::timeout(limit, pages::route(app, &r)).await {
        Ok(reply) => reply,
        Err(_) => app.error(
            StatusCode::GATEWAY_TIMEOUT,
            "The cluster did not answer",
            &format!(
                "no answer within {} ms from the brokers at {} (console.request.timeout.ms)",
                limit.as_millis(),
                app.cfg.bootstrap
            ),
        ),
    }
}

/// Percent-decode a path segment (`+` stays `+`).
fn percent(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = h.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Constant-time comparison of the CSRF token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn render(reply: Reply) -> Response<Full<Bytes>> {
    let b = Response::builder()
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .header("x-frame-options", "DENY")
        // No inline script runs even if escaping were ever missed.
        .header(
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'",
        );
    let r = match reply {
        Reply::Css => b
            .header("content-type", "text/css; charset=utf-8")
            .body(Full::new(Bytes::from_static(STYLE.as_bytes()))),
        Reply::Script => b
            .header("content-type", "text/javascript; charset=utf-8")
            .body(Full::new(Bytes::from_static(SCRIPT.as_bytes()))),
        Reply::Json(body) => b
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body))),
        Reply::Html(status, body) => b
            .status(status)
            .header("content-type", "text/html; charset=utf-8")
            .body(Full::new(Bytes::from(body))),
        Reply::Redirect(to) => b
            .status(StatusCode::SEE_OTHER)
            .header("location", to.clone())
            .header("content-type", "text/html; charset=utf-8")
            .body(Full::new(Bytes::from(format!(
                "<a href=\"{}\">continue</a>",
                esc(&to)
            )))),
    };
    r.unwrap_or_else(|_| Response::new(Full::new(Bytes::from_static(b"internal error"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_and_tokens() {
        assert_eq!(percent("a%3Cb%3E"), "a<b>");
        assert_eq!(percent("a+b%2"), "a+b%2");
        assert_eq!(percent("%"), "%");
        assert_eq!(percent("%e2%82%ac"), "€");
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"", b"abd"));
    }
}
