//! A small client of the Schema Registry's REST API (Confluent's, which
//! fjord-broker serves): one HTTP/1.1 request per call through `hyper`,
//! JSON in and out, Confluent's error bodies turned into errors.

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Where the registry is: `http://host:port` (a path prefix is kept).
#[derive(Debug, Clone)]
pub struct Registry {
    authority: String,
    prefix: String,
}

impl Registry {
    pub fn new(url: &str) -> anyhow::Result<Registry> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("--schema-registry must be an http:// URL, not {url}"))?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            bail!("--schema-registry {url}: no host");
        }
        Ok(Registry {
            authority: authority.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// One request; the parsed body on 2xx, else an error carrying Confluent's code and message.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call_raw(method, path, body).await?;
        if (200..300).contains(&status) {
            return Ok(v);
        }
        let code = v
            .get("error_code")
            .and_then(Value::as_i64)
            .unwrap_or(status as i64);
        let msg = v.get("message").and_then(Value::as_str).unwrap_or("");
        bail!("schema registry: HTTP {status}, error {code}: {msg}")
    }

    /// One request; (status, body as JSON or as a JSON string).
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .with_context(|| format!("cannot reach the schema registry at {}", self.authority))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("schema registry handshake")?;
        tokio::spawn(conn);
        let data = body.map(|b| b.to_string()).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.prefix, path))
            .header(hyper::header::HOST, &self.authority)
            .header(
                hyper::header::CONTENT_TYPE,
                "application/vnd.schemaregistry.v1+json",
            )
            .header(
                hyper::header::ACCEPT,
                "application/vnd.schemaregistry.v1+json",
            )
            .body(Full::new(Bytes::from(data)))
            .context("building the request")?;
        let resp = sender
            .send_request(req)
            .await
            .context("schema registry request")?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .context("schema registry response")?
            .to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, v))
    }
}

/// A subject name as one path segment.
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
