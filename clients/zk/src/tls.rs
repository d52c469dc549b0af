//! Keystores and truststores as ZooKeeper (and Kafka's `zookeeper.ssl.*`)
//! name them — a PEM file or a PKCS12 file with its password — loaded into
//! rustls' types, and the client side of a TLS connection to the
//! coordinator. Shared: the coordinator's secure client port and peer port,
//! the broker's and the CLI's ZooKeeper clients all read stores through
//! here.
//!
//! The files are read by fjord-tls (PEM, and PKCS12 as OpenSSL 3 and
//! current keytool write it). JKS is refused with a hint to convert it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A store that cannot be used, naming the file and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

fn err(s: impl Into<String>) -> TlsError {
    TlsError(s.into())
}

/// `*.type`: PEM or PKCS12. Unset: from the file's extension, as
/// ZooKeeper's X509Util guesses it (`.p12`/`.pfx` PKCS12, else PEM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    Pem,
    Pkcs12,
}

impl StoreType {
    pub fn parse(t: Option<&str>, location: &Path) -> Result<StoreType, TlsError> {
        match t.map(|t| t.trim().to_ascii_uppercase()).as_deref() {
            None | Some("") => {
                let ext = location
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                match ext.as_str() {
                    "p12" | "pfx" => Ok(StoreType::Pkcs12),
                    "jks" => Err(err(format!("{}: JKS stores are not supported; convert with `keytool -importkeystore -deststoretype PKCS12`", location.display()))),
                    _ => Ok(StoreType::Pem),
                }
            }
            Some("PEM") => Ok(StoreType::Pem),
            Some("PKCS12") => Ok(StoreType::Pkcs12),
            Some(o) => Err(err(format!(
                "store type {o} is not supported; use PEM or PKCS12 (JKS: convert with `keytool -importkeystore -deststoretype PKCS12`)"
            ))),
        }
    }
}

/// One key- or truststore: where, its password, its type.
#[derive(Clone)]
pub struct Store {
    pub location: PathBuf,
    pub password: Option<String>,
    pub kind: StoreType,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .field("kind", &self.kind)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Store {
    /// The store named by `<prefix>Location`/`Password`/`Type` keys
    /// (looked up case-insensitively by `get`, so ZooKeeper's
    /// `keyStore.location` and Kafka's `keystore.location` both work).
    pub fn from_keys(
        get: &dyn Fn(&str) -> Option<String>,
        prefix: &str,
    ) -> Result<Option<Store>, TlsError> {
        let Some(loc) = get(&format!("{prefix}.location")).filter(|l| !l.trim().is_empty()) else {
            return Ok(None);
        };
        let location = PathBuf::from(loc.trim());
        let kind = StoreType::parse(get(&format!("{prefix}.type")).as_deref(), &location)?;
        Ok(Some(Store {
            location,
            password: get(&format!("{prefix}.password")),
            kind,
        }))
    }

    fn tls_kind(&self) -> fjord_tls::StoreType {
        match self.kind {
            StoreType::Pem => fjord_tls::StoreType::Pem,
            StoreType::Pkcs12 => fjord_tls::StoreType::Pkcs12,
        }
    }

    /// The certificate chain and private key of a keystore.
    pub fn key_and_chain(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let password = self.password.as_deref().unwrap_or("");
        let m = fjord_tls::load_keystore(&self.location, self.tls_kind(), password).map_err(err)?;
        Ok((m.chain, m.key))
    }

    /// Every certificate of a truststore (PKCS12: trusted entries and
    /// plain certificate bags alike).
    pub fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let password = self.password.as_deref().unwrap_or("");
        fjord_tls::load_truststore(&self.location, self.tls_kind(), password).map_err(err)
    }

    /// The truststore as rustls roots.
    pub fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for c in self.certificates()? {
            roots
                .add(c)
                .map_err(|e| err(format!("{}: {e}", self.location.display())))?;
        }
        Ok(roots)
    }
}

/// rustls' ring provider (no aws-lc C build), cut to the IANA cipher suite
/// names given (ZooKeeper's `ssl.ciphersuites`, Kafka's `ssl.cipher.suites`).
pub fn provider(
    cipher_suites: Option<&str>,
) -> Result<Arc<rustls::crypto::CryptoProvider>, TlsError> {
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = cipher_suites.filter(|c| !c.trim().is_empty()) {
        let names: Vec<&str> = names.split(',').map(str::trim).collect();
        provider
            .cipher_suites
            .retain(|c| names.iter().any(|n| *n == format!("{:?}", c.suite())));
        if provider.cipher_suites.is_empty() {
            return Err(err("the cipher suites named leave none that rustls offers"));
        }
    }
    Ok(Arc::new(provider))
}

/// The protocol versions of `ssl.enabledProtocols` (comma list) or, when
/// unset, of `ssl.protocol` (`TLSv1.2` alone, else 1.2 and 1.3 as Java's
/// `TLSv1.3`/`TLS` contexts offer).
pub fn versions(
    enabled: Option<&str>,
    protocol: Option<&str>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    let list = match (enabled.filter(|e| !e.trim().is_empty()), protocol) {
        (Some(e), _) => e.to_string(),
        (None, Some(p)) if p.trim() == "TLSv1.2" => "TLSv1.2".into(),
        _ => "TLSv1.2,TLSv1.3".into(),
    };
    let mut v: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match p {
            "TLSv1.3" => v.insert(0, &rustls::version::TLS13),
            "TLSv1.2" => v.push(&rustls::version::TLS12),
            "TLSv1" | "TLSv1.1" => {
                tracing::warn!(protocol = p, "TLS protocol not offered (insecure)")
            }
            o => return Err(err(format!("unknown TLS protocol {o}"))),
        }
    }
    if v.is_empty() {
        return Err(err(
            "the enabled protocols name neither TLSv1.2 nor TLSv1.3",
        ));
    }
    Ok(v)
}

/// A ZooKeeper client's TLS settings: ZooKeeper's client keys
/// (`zookeeper.client.secure`, `zookeeper.ssl.keyStore.*`,
/// `zookeeper.ssl.trustStore.*`) or Kafka's broker keys
/// (`zookeeper.ssl.client.enable`, `zookeeper.ssl.keystore.*`,
/// `zookeeper.ssl.truststore.*`, `zookeeper.ssl.enabled.protocols`,
/// `zookeeper.ssl.cipher.suites`); keys are matched case-insensitively.
/// `zookeeper.clientCnxnSocket` is accepted and needs nothing here.
/// None when TLS is off.
pub fn client_config_from(
    props: &[(String, String)],
) -> Result<Option<Arc<ClientConfig>>, TlsError> {
    let get = |k: &str| -> Option<String> {
        props
            .iter()
            .rev()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.trim().to_string())
    };
    let on = get("zookeeper.ssl.client.enable")
        .or_else(|| get("zookeeper.client.secure"))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !on {
        return Ok(None);
    }
    let trust = Store::from_keys(&get, "zookeeper.ssl.truststore")?
        .ok_or_else(|| err("TLS to the coordinator needs zookeeper.ssl.truststore.location"))?;
    let key = Store::from_keys(&get, "zookeeper.ssl.keystore")?;
    let enabled =
        get("zookeeper.ssl.enabled.protocols").or_else(|| get("zookeeper.ssl.enabledProtocols"));
    let suites = get("zookeeper.ssl.cipher.suites").or_else(|| get("zookeeper.ssl.ciphersuites"));
    let provider = provider(suites.as_deref())?;
    let vers = versions(enabled.as_deref(), get("zookeeper.ssl.protocol").as_deref())?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&vers)
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(trust.roots()?);
    let cfg = match key {
        Some(k) => {
            let (chain, key) = k.key_and_chain()?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| err(format!("keystore: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(cfg)))
}
