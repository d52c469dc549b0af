//! The few S3 calls the sink makes (HEAD bucket, PUT object), signed by rusty-s3
//! (presigned SigV4 URLs) and sent over a hyper HTTP/1.1 connection. Path-style URLs,
//! so any S3-compatible `store.url` works. Errors say whether a retry can help.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use tokio::net::TcpStream;

/// Presigned URLs live this long: long enough for a slow upload.
const SIGN_FOR: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// Connection refused/reset, timeouts, 5xx: try again.
    #[error("S3 unavailable: {0}")]
    Unavailable(String),
    /// 4xx: a retry will not help (no bucket, bad credentials).
    #[error("S3 refused the request: {0}")]
    Refused(String),
    #[error("invalid S3 settings: {0}")]
    Config(String),
}

pub struct S3Client {
    bucket: Bucket,
    creds: Option<Credentials>,
    timeout: Duration,
}

impl S3Client {
    pub fn new(
        endpoint: &str,
        bucket: &str,
        region: &str,
        creds: Option<Credentials>,
    ) -> Result<Self, S3Error> {
        let url: url::Url = endpoint
            .parse()
            .map_err(|e| S3Error::Config(format!("store.url {endpoint}: {e}")))?;
        if url.scheme() != "http" {
            return Err(S3Error::Config(format!(
                "store.url {endpoint}: only http:// endpoints are supported in this version (TLS to S3 is not built yet)"
            )));
        }
        let bucket = Bucket::new(url, UrlStyle::Path, bucket.to_string(), region.to_string())
            .map_err(|e| S3Error::Config(format!("bucket: {e:?}")))?;
        Ok(S3Client {
            bucket,
            creds,
            timeout: Duration::from_secs(60),
        })
    }

    pub async fn head_bucket(&self) -> Result<(), S3Error> {
        let url = self.bucket.head_bucket(self.creds.as_ref()).sign(SIGN_FOR);
        self.send(hyper::Method::HEAD, url, Bytes::new())
            .await
            .map(|_| ())
    }

    pub async fn put_object(&self, key: &str, body: Bytes) -> Result<(), S3Error> {
        let url = self
            .bucket
            .put_object(self.creds.as_ref(), key)
            .sign(SIGN_FOR);
        self.send(hyper::Method::PUT, url, body).await.map(|_| ())
    }

    async fn send(
        &self,
        method: hyper::Method,
        url: url::Url,
        body: Bytes,
    ) -> Result<Bytes, S3Error> {
        let host = url.host_str().unwrap_or("127.0.0.1").to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let fut = async {
            let stream = TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| S3Error::Unavailable(format!("connect {host}:{port}: {e}")))?;
            let _ = stream.set_nodelay(true);
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| S3Error::Unavailable(e.to_string()))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let path = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            };
            let host_header = match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.clone(),
            };
            let req = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, host_header)
                .header(hyper::header::CONTENT_LENGTH, body.len())
                .body(Full::new(body))
                .map_err(|e| S3Error::Config(e.to_string()))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| S3Error::Unavailable(e.to_string()))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| S3Error::Unavailable(e.to_string()))?
                .to_bytes();
            if status.is_success() {
                Ok(bytes)
            } else if status.is_server_error() || status.as_u16() == 429 {
                Err(S3Error::Unavailable(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes)
                )))
            } else {
                Err(S3Error::Refused(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes)
                )))
            }
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(S3Error::Unavailable(format!(
                "no answer from S3 within {:?}",
                self.timeout
            ))),
        }
    }
}
