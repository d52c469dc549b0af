//! TLS for SSL and SASL_SSL listeners, on rustls with the ring provider:
//! the keystore and truststore read as Kafka's `ssl.*` keys name them
//! (`ssl.keystore.type=PEM` with inline `ssl.keystore.certificate.chain` and
//! `ssl.keystore.key`, or `ssl.keystore.location` naming a PEM file holding
//! the key and the chain; `ssl.truststore.location` / inline
//! `ssl.truststore.certificates`), `ssl.client.auth`, `ssl.enabled.protocols`.
//! The acceptor's config sits behind a lock so that a watcher can swap in
//! new certificates when the files change (`reload_if_changed`).

use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// The TLS settings of one listener, as read from the properties.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub keystore_location: Option<PathBuf>,
    pub keystore_chain_pem: Option<String>,
    pub keystore_key_pem: Option<String>,
    pub truststore_location: Option<PathBuf>,
    pub truststore_pem: Option<String>,
    pub client_auth: ClientAuth,
    pub tls12: bool,
    pub tls13: bool,
    /// `ssl.cipher.suites` (IANA names); None: rustls' safe defaults.
    pub cipher_suites: Option<Vec<String>>,
}

/// Lookup of a setting: the listener's override first, then the broker-wide key.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl TlsSettings {
    /// Read a listener's `ssl.*` settings.
    pub fn from_props(get: Lookup<'_>) -> Result<TlsSettings, String> {
        let ktype = get("ssl.keystore.type").unwrap_or_else(|| "PEM".into());
        if !ktype.eq_ignore_ascii_case("PEM") {
            return Err(format!(
                "ssl.keystore.type={ktype} is not supported; use PEM (convert with `openssl pkcs12 -in ks.p12 -nodes`)"
            ));
        }
        if let Some(t) = get("ssl.truststore.type") {
            if !t.eq_ignore_ascii_case("PEM") {
                return Err(format!("ssl.truststore.type={t} is not supported; use PEM"));
            }
        }
        if get("ssl.key.password").is_some_and(|p| !p.is_empty()) {
            return Err("encrypted private keys (ssl.key.password) are not supported; store the key unencrypted with restricted file permissions".into());
        }
        let client_auth = match get("ssl.client.auth")
            .unwrap_or_else(|| "none".into())
            .to_ascii_lowercase()
            .as_str()
        {
            "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            o => {
                return Err(format!(
                    "ssl.client.auth={o}: expected none, requested or required"
                ))
            }
        };
        let protos = get("ssl.enabled.protocols").unwrap_or_else(|| "TLSv1.2,TLSv1.3".into());
        let (mut tls12, mut tls13) = (false, false);
        for p in protos.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p {
                "TLSv1.2" => tls12 = true,
                "TLSv1.3" => tls13 = true,
                "TLSv1" | "TLSv1.1" => {
                    tracing::warn!(
                        protocol = p,
                        "ssl.enabled.protocols: not offered (insecure)"
                    )
                }
                o => return Err(format!("ssl.enabled.protocols: unknown protocol {o}")),
            }
        }
        if !tls12 && !tls13 {
            return Err("ssl.enabled.protocols names neither TLSv1.2 nor TLSv1.3".into());
        }
        let s = TlsSettings {
            keystore_location: get("ssl.keystore.location").map(PathBuf::from),
            keystore_chain_pem: get("ssl.keystore.certificate.chain"),
            keystore_key_pem: get("ssl.keystore.key"),
            truststore_location: get("ssl.truststore.location").map(PathBuf::from),
            truststore_pem: get("ssl.truststore.certificates"),
            client_auth,
            tls12,
            tls13,
            cipher_suites: get("ssl.cipher.suites")
                .filter(|c| !c.trim().is_empty())
                .map(|c| c.split(',').map(|x| x.trim().to_string()).collect()),
        };
        if s.keystore_location.is_none() && s.keystore_chain_pem.is_none() {
            return Err(
                "a TLS listener needs ssl.keystore.location or ssl.keystore.certificate.chain"
                    .into(),
            );
        }
        if client_auth != ClientAuth::None
            && s.truststore_location.is_none()
            && s.truststore_pem.is_none()
        {
            return Err("ssl.client.auth needs ssl.truststore.location".into());
        }
        Ok(s)
    }

    /// The files whose change triggers a reload, with their modification times.
    fn stamps(&self) -> Vec<(PathBuf, Option<SystemTime>)> {
        [&self.keystore_location, &self.truststore_location]
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p.clone(),
                    std::fs::metadata(p).and_then(|m| m.modified()).ok(),
                )
            })
            .collect()
    }

    /// Read the certificates and key and build the rustls config.
    pub fn build(&self) -> Result<ServerConfig, String> {
        let (chain_pem, key_pem) = match &self.keystore_location {
            Some(p) => {
                let text = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
                (text.clone(), text)
            }
            None => (
                inline_pem(self.keystore_chain_pem.as_deref().unwrap_or_default()).into_bytes(),
                inline_pem(self.keystore_key_pem.as_deref().unwrap_or_default()).into_bytes(),
            ),
        };
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_reader_iter(&mut BufReader::new(&chain_pem[..]))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("keystore certificates: {e}"))?;
        if chain.is_empty() {
            return Err("the keystore holds no certificate".into());
        }
        let key = PrivateKeyDer::from_pem_reader(&mut BufReader::new(&key_pem[..]))
            .map_err(|e| format!("keystore private key: {e}"))?;
        // ring, deliberately (no aws-lc C build); rustls deprecates its
        // default set only for lacking post-quantum key exchange.
        #[allow(deprecated)]
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(names) = &self.cipher_suites {
            provider
                .cipher_suites
                .retain(|c| names.iter().any(|n| n == &format!("{:?}", c.suite())));
            if provider.cipher_suites.is_empty() {
                return Err("ssl.cipher.suites leaves no cipher suite rustls offers".into());
            }
        }
        let provider = Arc::new(provider);
        let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
        if self.tls13 {
            versions.push(&rustls::version::TLS13);
        }
        if self.tls12 {
            versions.push(&rustls::version::TLS12);
        }
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| e.to_string())?;
        let builder = if self.client_auth == ClientAuth::None {
            builder.with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            let trust_pem = match (&self.truststore_location, &self.truststore_pem) {
                (Some(p), _) => std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?,
                (None, Some(t)) => inline_pem(t).into_bytes(),
                (None, None) => Vec::new(),
            };
            for c in CertificateDer::pem_reader_iter(&mut BufReader::new(&trust_pem[..])) {
                let c = c.map_err(|e| format!("truststore: {e}"))?;
                roots.add(c).map_err(|e| format!("truststore: {e}"))?;
            }
            if roots.is_empty() {
                return Err("the truststore holds no certificate".into());
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if self.client_auth == ClientAuth::Requested {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(v.build().map_err(|e| e.to_string())?)
        };
        builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("keystore: {e}"))
    }
}

/// PEM given inline in a properties value: one line (as Kafka accepts it),
/// or with `\n` escapes; rebuilt with the line breaks PEM parsers expect.
pub fn inline_pem(v: &str) -> String {
    let v = v.replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = v.as_str();
    while let Some(b) = rest.find("-----BEGIN ") {
        let after = &rest[b + 11..];
        let Some(e) = after.find("-----") else { break };
        let label = &after[..e];
        let body_start = b + 11 + e + 5;
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[body_start..].find(&end_marker) else {
            break;
        };
        let body = &rest[body_start..body_start + end];
        out.push_str(&format!("-----BEGIN {label}-----\n"));
        for w in body.split_whitespace() {
            out.push_str(w);
            out.push('\n');
        }
        out.push_str(&end_marker);
        out.push('\n');
        rest = &rest[body_start + end + end_marker.len()..];
    }
    out
}

/// A listener's live TLS config: what new connections handshake with.
pub struct TlsState {
    settings: TlsSettings,
    config: RwLock<Arc<ServerConfig>>,
    stamps: parking_lot::Mutex<Vec<(PathBuf, Option<SystemTime>)>>,
}

impl TlsState {
    pub fn new(settings: TlsSettings) -> Result<TlsState, String> {
        let config = settings.build()?;
        let stamps = settings.stamps();
        Ok(TlsState {
            settings,
            config: RwLock::new(Arc::new(config)),
            stamps: parking_lot::Mutex::new(stamps),
        })
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.read().clone())
    }

    /// Rebuild the config if a keystore/truststore file changed (or `force`,
    /// on SIGHUP). A file that does not parse keeps the old config (logged).
    pub fn reload_if_changed(&self, listener: &str, force: bool) {
        let now = self.settings.stamps();
        {
            let mut old = self.stamps.lock();
            if !force && *old == now {
                return;
            }
            *old = now;
        }
        match self.settings.build() {
            Ok(c) => {
                *self.config.write() = Arc::new(c);
                tracing::info!(listener, "TLS certificates reloaded");
            }
            Err(e) => {
                tracing::error!(listener, error = %e, "TLS reload failed; keeping the previous certificates")
            }
        }
    }
}
