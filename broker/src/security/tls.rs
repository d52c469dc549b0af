//! TLS for SSL and SASL_SSL listeners, on rustls with the ring provider:
//! the keystore and truststore read by fjord-tls as Kafka's `ssl.*` keys name
//! them (`ssl.keystore.type=PEM|PKCS12` with `ssl.keystore.location` and
//! `ssl.keystore.password`, or inline `ssl.keystore.certificate.chain` and
//! `ssl.keystore.key`; `ssl.truststore.location` with its type and password,
//! or inline `ssl.truststore.certificates`), `ssl.client.auth`,
//! `ssl.enabled.protocols`.
//! The acceptor's config sits behind a lock so that a watcher can swap in
//! new certificates when the files change (`reload_if_changed`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

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
    /// The `ssl.*` keys fjord-tls reads the keystore and truststore from
    /// (the listener's overrides already applied), kept to rebuild on reload.
    pub store_props: BTreeMap<String, String>,
    pub client_auth: ClientAuth,
    pub tls12: bool,
    pub tls13: bool,
    /// `ssl.cipher.suites` (IANA names); None: rustls' safe defaults.
    pub cipher_suites: Option<Vec<String>>,
}

/// Lookup of a setting: the listener's override first, then the broker-wide key.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The keys of the keystore and truststore (fjord_tls reads them).
const STORE_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
];

impl TlsSettings {
    /// Read a listener's `ssl.*` settings.
    pub fn from_props(get: Lookup<'_>) -> Result<TlsSettings, String> {
        let store_props: BTreeMap<String, String> = STORE_KEYS
            .iter()
            .filter_map(|k| Some((k.to_string(), get(k)?)))
            .collect();
        if let Some(t) = store_props.get("ssl.keystore.type") {
            fjord_tls::StoreType::parse("ssl.keystore.type", t)?;
        }
        if let Some(t) = store_props.get("ssl.truststore.type") {
            fjord_tls::StoreType::parse("ssl.truststore.type", t)?;
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
            store_props,
            client_auth,
            tls12,
            tls13,
            cipher_suites: get("ssl.cipher.suites")
                .filter(|c| !c.trim().is_empty())
                .map(|c| c.split(',').map(|x| x.trim().to_string()).collect()),
        };
        let has = |k: &str| s.store_props.get(k).is_some_and(|v| !v.trim().is_empty());
        if !has("ssl.keystore.location") && !has("ssl.keystore.certificate.chain") {
            return Err(
                "a TLS listener needs ssl.keystore.location or ssl.keystore.certificate.chain"
                    .into(),
            );
        }
        if client_auth != ClientAuth::None
            && !has("ssl.truststore.location")
            && !has("ssl.truststore.certificates")
        {
            return Err("ssl.client.auth needs ssl.truststore.location".into());
        }
        Ok(s)
    }

    fn get(&self, k: &str) -> Option<String> {
        self.store_props.get(k).cloned()
    }

    /// The files whose change triggers a reload, with their modification times.
    fn stamps(&self) -> Vec<(PathBuf, Option<SystemTime>)> {
        fjord_tls::files_of_props(&|k| self.get(k))
            .into_iter()
            .map(|p| {
                let t = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
                (p, t)
            })
            .collect()
    }

    /// Read the certificates and key and build the rustls config.
    pub fn build(&self) -> Result<ServerConfig, String> {
        let get = |k: &str| self.get(k);
        let km = fjord_tls::keystore_from_props(&get)?.ok_or(
            "a TLS listener needs ssl.keystore.location or ssl.keystore.certificate.chain",
        )?;
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
            // The operator's order is the preference (as JSSE's server order).
            provider.cipher_suites.sort_by_key(|c| {
                let name = format!("{:?}", c.suite());
                names.iter().position(|n| *n == name)
            });
        } else {
            prefer_aes128(&mut provider.cipher_suites);
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
            for c in fjord_tls::truststore_from_props(&get)?.unwrap_or_default() {
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
        let mut config = builder
            .with_single_cert(km.chain, km.key)
            .map_err(|e| format!("keystore: {e}"))?;
        // Our order decides: OpenSSL clients (librdkafka, Python) list
        // AES-256-GCM first, which costs both ends more per byte for no
        // practical gain over AES-128-GCM.
        config.ignore_client_order = true;
        Ok(config)
    }
}

/// Within each protocol version, AES-128-GCM before AES-256-GCM before
/// ChaCha20 (ring runs AES-GCM on AES-NI/VAES; ChaCha20 is the fallback for
/// machines without them, and clients without AES offer it first anyway).
fn prefer_aes128(suites: &mut [rustls::SupportedCipherSuite]) {
    let rank = |c: &rustls::SupportedCipherSuite| {
        let name = format!("{:?}", c.suite());
        let tls13 = matches!(c, rustls::SupportedCipherSuite::Tls13(_));
        let cipher = if name.contains("AES_128_GCM") {
            0
        } else if name.contains("AES_256_GCM") {
            1
        } else {
            2
        };
        (!tls13, cipher)
    };
    suites.sort_by_key(rank);
}

pub use fjord_tls::inline_pem;

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
