//! One connection to one broker: connect (TLS and SASL per the config's
//! `security`), negotiate API versions through ApiVersions, and the one generic call every request type goes through
//! (frame, send, read the response frame under a size cap, check the
//! correlation id, decode at the negotiated version).

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::{check, ClientError, KafkaError};
use crate::security::sasl::SaslExchange;
use crate::security::{ClientSecurity, SaslCredentials, Stream};

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Connection settings shared by every command.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Comma-separated `host:port` list, tried in order.
    pub bootstrap: String,
    pub client_id: String,
    /// Per-request deadline (a Fetch adds its own max wait on top).
    pub request_timeout: Duration,
    /// Largest response frame accepted; checked before allocating.
    pub max_frame: usize,
    /// TLS and SASL (`security.protocol` and friends); plaintext by default.
    pub security: ClientSecurity,
}

impl ClientConfig {
    /// Defaults for the CLI: 30 s requests, 128 MiB frames.
    pub fn new(bootstrap: &str) -> Self {
        Self {
            bootstrap: bootstrap.to_string(),
            client_id: "fjord-cli".to_string(),
            request_timeout: Duration::from_secs(30),
            max_frame: 128 << 20,
            security: ClientSecurity::default(),
        }
    }
}

/// The host part of `host:port` (`[v6]:port` too), the TLS server name.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// One connection to one broker; requests are sent one at a time.
#[derive(Debug)]
pub struct Conn {
    addr: String,
    stream: Stream,
    next_corr: i32,
    versions: Vec<ApiVersion>,
    client_id: StrBytes,
    timeout: Duration,
    max_frame: usize,
}

impl Conn {
    /// Connect and negotiate versions (ApiVersions v3, falling back to v0).
    pub async fn open(addr: &str, cfg: &ClientConfig) -> Result<Self> {
        let fut = TcpStream::connect(addr);
        let stream = match tokio::time::timeout(cfg.request_timeout, fut).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(ClientError::Connect {
                    addr: addr.to_string(),
                    source: e,
                })
            }
            Err(_) => {
                return Err(ClientError::Timeout {
                    addr: addr.to_string(),
                    what: "connect".into(),
                })
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = match cfg.security.tls_config() {
            None => Stream::Plain(stream),
            Some(tls) => {
                let host = host_of(addr);
                let name =
                    rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
                        ClientError::Tls {
                            addr: addr.to_string(),
                            msg: format!("{host:?} is not a valid server name: {e}"),
                        }
                    })?;
                let fut = tokio_rustls::TlsConnector::from(tls.clone()).connect(name, stream);
                match tokio::time::timeout(cfg.request_timeout, fut).await {
                    Ok(Ok(s)) => Stream::Tls(Box::new(s)),
                    Ok(Err(e)) => {
                        return Err(ClientError::Tls {
                            addr: addr.to_string(),
                            msg: e.to_string(),
                        })
                    }
                    Err(_) => {
                        return Err(ClientError::Timeout {
                            addr: addr.to_string(),
                            what: "TLS handshake".into(),
                        })
                    }
                }
            }
        };
        let mut c = Conn {
            addr: addr.to_string(),
            stream,
            next_corr: 1,
            versions: Vec::new(),
            client_id: StrBytes::from_string(cfg.client_id.clone()),
            timeout: cfg.request_timeout,
            max_frame: cfg.max_frame,
        };
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("fjord"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut resp: ApiVersionsResponse = c.send_at(&req, 3, c.timeout).await?;
        if resp.error_code == ResponseError::UnsupportedVersion.code() {
            resp = c
                .send_at(&ApiVersionsRequest::default(), 0, c.timeout)
                .await?;
        }
        check(resp.error_code, None)?;
        c.versions = resp.api_keys;
        if let Some(creds) = &cfg.security.sasl {
            c.authenticate(creds).await?;
        }
        Ok(c)
    }

    /// SaslHandshake v1 naming `creds`' mechanism, then one SaslAuthenticate
    /// per token of the exchange (ApiVersions already done).
    async fn authenticate(&mut self, creds: &SaslCredentials) -> Result<()> {
        let mech = creds.mechanism.name();
        let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mech.into()));
        let resp = self.call(&hs, 1).await?;
        if resp.error_code == ResponseError::UnsupportedSaslMechanism.code() {
            let offered: Vec<String> = resp.mechanisms.iter().map(|m| m.to_string()).collect();
            return Err(self.auth_err(format!(
                "UNSUPPORTED_SASL_MECHANISM: the broker does not enable {mech} (it offers {})",
                offered.join(", ")
            )));
        }
        if resp.error_code != 0 {
            let name = KafkaError::new(resp.error_code, None).name();
            return Err(self.auth_err(format!("SaslHandshake: {name}")));
        }
        let mut ex = SaslExchange::new(creds);
        let mut server: Option<Bytes> = None;
        while let Some(token) = ex
            .step(server.as_deref())
            .map_err(|e| self.auth_err(format!("{mech}: {e}")))?
        {
            let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
            let resp = self.call(&req, 2).await?;
            if resp.error_code != 0 {
                let name = KafkaError::new(resp.error_code, None).name();
                let msg = resp
                    .error_message
                    .as_deref()
                    .unwrap_or("authentication failed");
                return Err(self.auth_err(format!("{name} with SASL mechanism {mech}: {msg}")));
            }
            server = Some(resp.auth_bytes);
        }
        Ok(())
    }

    fn auth_err(&self, msg: String) -> ClientError {
        ClientError::Auth {
            addr: self.addr.clone(),
            msg,
        }
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The broker's advertised API version ranges.
    pub fn versions(&self) -> &[ApiVersion] {
        &self.versions
    }

    /// The highest version of `R` both sides speak, capped at `max`.
    pub fn pick<R: Request>(&self, max: i16) -> Result<i16> {
        let api = ApiKey::try_from(R::KEY).map_err(|_| ClientError::Encode("api key".into()))?;
        let lo = R::VERSIONS.min;
        let hi = R::VERSIONS.max.min(max);
        let Some(v) = self.versions.iter().find(|v| v.api_key == R::KEY) else {
            return Err(ClientError::Unsupported {
                addr: self.addr.clone(),
                api,
                lo,
                hi,
            });
        };
        let pick = hi.min(v.max_version);
        if pick < lo.max(v.min_version) {
            return Err(ClientError::Unsupported {
                addr: self.addr.clone(),
                api,
                lo,
                hi,
            });
        }
        Ok(pick)
    }

    /// Send `req` at the best version ≤ `max` and wait for the response.
    pub async fn call<R: Request>(&mut self, req: &R, max: i16) -> Result<R::Response> {
        let v = self.pick::<R>(max)?;
        self.send_at(req, v, self.timeout).await
    }

    /// Like [`Conn::call`] with an extra wait (Fetch long polls).
    pub async fn call_wait<R: Request>(
        &mut self,
        req: &R,
        max: i16,
        extra: Duration,
    ) -> Result<R::Response> {
        let v = self.pick::<R>(max)?;
        self.send_at(req, v, self.timeout + extra).await
    }

    /// Send without waiting for a response (Produce with acks=0).
    pub async fn send_only<R: Request>(&mut self, req: &R, max: i16) -> Result<()> {
        let v = self.pick::<R>(max)?;
        let corr = self.next_corr();
        let frame = self.frame(req, v, corr)?;
        self.write(&frame).await
    }

    /// Resolves once the idle connection is closed by the peer (EOF, reset,
    /// or bytes nobody asked for: the stream is no longer usable). A dead
    /// peer's kernel closes its sockets at once, so a watcher learns of it
    /// without sending anything.
    pub async fn closed(&self) {
        self.stream.closed().await
    }

    fn next_corr(&mut self) -> i32 {
        let c = self.next_corr;
        self.next_corr = self.next_corr.wrapping_add(1).max(1);
        c
    }

    fn frame<R: Request>(&self, req: &R, version: i16, corr: i32) -> Result<Bytes> {
        let api = ApiKey::try_from(R::KEY).map_err(|_| ClientError::Encode("api key".into()))?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(corr)
            .with_client_id(Some(self.client_id.clone()));
        let mut buf = BytesMut::with_capacity(128);
        buf.put_i32(0);
        header
            .encode(&mut buf, R::header_version(version))
            .map_err(|e| ClientError::Encode(format!("{api:?} header: {e}")))?;
        req.encode(&mut buf, version)
            .map_err(|e| ClientError::Encode(format!("{api:?} v{version}: {e}")))?;
        let len = i32::try_from(buf.len() - 4)
            .map_err(|_| ClientError::Encode("request too large".into()))?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        Ok(buf.freeze())
    }

    async fn write(&mut self, frame: &[u8]) -> Result<()> {
        // The flush pushes out ciphertext a TLS stream may still hold when
        // the socket was full at the end of write_all.
        let stream = &mut self.stream;
        let sent = async {
            stream.write_all(frame).await?;
            stream.flush().await
        };
        sent.await.map_err(|e| ClientError::Io {
            addr: self.addr.clone(),
            source: e,
        })
    }

    /// Send `req` at exactly `version` and wait up to `timeout` for its response.
    pub(super) async fn send_at<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let api = ApiKey::try_from(R::KEY).map_err(|_| ClientError::Encode("api key".into()))?;
        let corr = self.next_corr();
        let frame = self.frame(req, version, corr)?;
        let addr = self.addr.clone();
        let fut = async {
            self.write(&frame).await?;
            self.read_frame().await
        };
        let mut body = match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(ClientError::Timeout {
                    addr,
                    what: format!("{api:?} response"),
                })
            }
        };
        let malformed = |msg: String| ClientError::Malformed {
            addr: addr.clone(),
            msg,
        };
        // ApiVersions responses always carry header v0 (so old clients can read them).
        let hv = if api == ApiKey::ApiVersions {
            0
        } else {
            R::Response::header_version(version)
        };
        let header = ResponseHeader::decode(&mut body, hv)
            .map_err(|e| malformed(format!("{api:?} header: {e}")))?;
        if header.correlation_id != corr {
            return Err(malformed(format!(
                "correlation id {} where {corr} was expected",
                header.correlation_id
            )));
        }
        // An ApiVersions error 35 answer is v0-shaped whatever we asked.
        let unsupported = ResponseError::UnsupportedVersion.code().to_be_bytes();
        let v = if api == ApiKey::ApiVersions && body.len() >= 2 && body[..2] == unsupported {
            0
        } else {
            version
        };
        R::Response::decode(&mut body, v).map_err(|e| malformed(format!("{api:?} v{v}: {e}")))
    }

    async fn read_frame(&mut self) -> Result<Bytes> {
        let io = |addr: &str, e| ClientError::Io {
            addr: addr.to_string(),
            source: e,
        };
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .await
            .map_err(|e| io(&self.addr, e))?;
        let n = i32::from_be_bytes(len) as i64;
        if n < 4 || n as u64 > self.max_frame as u64 {
            return Err(ClientError::FrameTooLarge {
                addr: self.addr.clone(),
                len: n,
                cap: self.max_frame,
            });
        }
        let mut buf = BytesMut::zeroed(n as usize);
        self.stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| io(&self.addr, e))?;
        Ok(buf.freeze())
    }
}
