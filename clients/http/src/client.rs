//! A small JSON-over-HTTP client for Fjord's REST services (the Schema
//! Registry, a Connect worker), shared by the CLI, the console and
//! fjord-connect's converters: one HTTP/1.1 request per call through hyper,
//! bounded by a timeout, the answer parsed as JSON, and Confluent's
//! `{"error_code", "message"}` bodies turned into errors that name the
//! service, so every caller can say exactly what failed.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Why a call gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("{what} at {url}: {msg}")]
    Unreachable {
        what: &'static str,
        url: String,
        msg: String,
    },
    #[error("{what}: HTTP {status}, error {code}: {msg}")]
    Refused {
        what: &'static str,
        status: u16,
        code: i64,
        msg: String,
    },
}

impl RestError {
    /// The HTTP status the service answered (None: it did not answer).
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Unreachable { .. } => None,
            RestError::Refused { status, .. } => Some(*status),
        }
    }
}

/// One service: `http://host:port[/prefix]`.
#[derive(Debug, Clone)]
pub struct Rest {
    what: &'static str,
    url: String,
    authority: String,
    prefix: String,
    timeout: Duration,
}

impl Rest {
    /// `what` names the service in errors ("the Schema Registry").
    pub fn new(what: &'static str, url: &str, timeout: Duration) -> Result<Rest, RestError> {
        let bad = |msg: &str| RestError::Unreachable {
            what,
            url: url.to_string(),
            msg: msg.to_string(),
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are served"))?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(bad("no host in the URL"));
        }
        Ok(Rest {
            what,
            url: url.to_string(),
            authority: authority.to_string(),
            prefix: prefix.to_string(),
            timeout,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn get(&self, path: &str) -> Result<Value, RestError> {
        self.call("GET", path, None).await
    }

    /// One request; the parsed body (Null when empty) on 2xx.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, RestError> {
        let (status, v) = self.call_raw(method, path, body).await?;
        if (200..300).contains(&status) {
            return Ok(v);
        }
        let code = v
            .get("error_code")
            .and_then(Value::as_i64)
            .unwrap_or(status as i64);
        let msg = match v.get("message").and_then(Value::as_str) {
            Some(m) => m.to_string(),
            None => v.as_str().unwrap_or("").chars().take(500).collect(),
        };
        Err(RestError::Refused {
            what: self.what,
            status,
            code,
            msg,
        })
    }

    fn unreachable(&self, msg: String) -> RestError {
        RestError::Unreachable {
            what: self.what,
            url: self.url.clone(),
            msg,
        }
    }

    /// One request, whatever its status: (status, body as JSON, a JSON
    /// string when it is not JSON, Null when empty). For callers that show
    /// the status themselves (the CLI's `fjord connect`).
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), RestError> {
        match tokio::time::timeout(self.timeout, self.raw(method, path, body)).await {
            Ok(r) => r,
            Err(_) => {
                Err(self.unreachable(format!("no answer within {} ms", self.timeout.as_millis())))
            }
        }
    }

    async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), RestError> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| self.unreachable(format!("cannot connect: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(format!("HTTP handshake: {e}")))?;
        tokio::spawn(conn);
        let data = body.map(|b| b.to_string()).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.prefix, path))
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(data)))
            .map_err(|e| self.unreachable(format!("bad request: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.unreachable(format!("request failed: {e}")))?;
        let status = resp.status().as_u16();
        // Bounded, so a broken service cannot fill the console's memory.
        let bytes = http_body_util::Limited::new(resp.into_body(), 16 << 20)
            .collect()
            .await
            .map_err(|e| self.unreachable(format!("reading the answer: {e}")))?
            .to_bytes();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((status, v))
    }
}

/// A path segment (a subject or connector name) percent-encoded.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Duration::from_secs(1);
        let r = Rest::new("x", "http://h:1/sr/", t).unwrap();
        assert_eq!((r.authority.as_str(), r.prefix.as_str()), ("h:1", "/sr"));
        let r = Rest::new("x", "http://h:1", t).unwrap();
        assert_eq!((r.authority.as_str(), r.prefix.as_str()), ("h:1", ""));
        assert!(Rest::new("x", "https://h:1", t).is_err());
        assert!(Rest::new("x", "http:///p", t).is_err());
    }
}
