//! TLS on the coordinator, configured with ZooKeeper's keys: the secure
//! client port (`ssl.*`) and the ensemble's peer port (`sslQuorum=true`,
//! `ssl.quorum.*`). Keystores and truststores (PEM or PKCS12) are read by
//! `fjord_zk::tls`; this file turns them into rustls configs and names the
//! x509 identity of a client certificate, as ZooKeeper's
//! X509AuthenticationProvider does (the subject DN in RFC 2253 form, read by
//! `fjord_tls::der`).
//!
//! A TLS connection is then served exactly as a plaintext one: the accept
//! path hands the decrypted stream to the same connection handling.

use std::sync::Arc;

use fjord_zk::tls::{provider, versions, Store};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};

/// `ssl.clientAuth` (ZooKeeper's default is `need`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Want,
    Need,
}

/// One `ssl.*` (or `ssl.quorum.*`) group of keys.
#[derive(Debug, Clone)]
pub struct TlsConf {
    pub keystore: Store,
    pub truststore: Option<Store>,
    pub client_auth: ClientAuth,
    pub protocol: Option<String>,
    pub enabled_protocols: Option<String>,
    pub ciphersuites: Option<String>,
}

impl TlsConf {
    /// Reads `<prefix>.keyStore.location` and friends (`prefix` is `ssl` or
    /// `ssl.quorum`); `get` looks a key up as written or with ZooKeeper's
    /// `zookeeper.` system-property prefix. None when no keystore is named.
    pub fn from_keys(
        get: &dyn Fn(&str) -> Option<String>,
        prefix: &str,
    ) -> Result<Option<TlsConf>, String> {
        let store = |p: &str| Store::from_keys(get, &format!("{prefix}.{p}")).map_err(|e| e.0);
        let Some(keystore) = store("keyStore")? else {
            return Ok(None);
        };
        let client_auth = match get(&format!("{prefix}.clientAuth"))
            .unwrap_or_else(|| "need".into())
            .to_ascii_lowercase()
            .as_str()
        {
            "none" => ClientAuth::None,
            "want" => ClientAuth::Want,
            "need" | "" => ClientAuth::Need,
            o => {
                return Err(format!(
                    "{prefix}.clientAuth={o}: expected none, want or need"
                ))
            }
        };
        let conf = TlsConf {
            keystore,
            truststore: store("trustStore")?,
            client_auth,
            protocol: get(&format!("{prefix}.protocol")),
            enabled_protocols: get(&format!("{prefix}.enabledProtocols")),
            ciphersuites: get(&format!("{prefix}.ciphersuites")),
        };
        if conf.client_auth != ClientAuth::None && conf.truststore.is_none() {
            return Err(format!(
                "{prefix}.clientAuth={:?} needs {prefix}.trustStore.location (or {prefix}.clientAuth=none)",
                conf.client_auth
            ));
        }
        // Fail at start-up, not at the first connection.
        conf.server_config()?;
        Ok(Some(conf))
    }

    /// The acceptor's config.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, String> {
        let provider = provider(self.ciphersuites.as_deref()).map_err(|e| e.0)?;
        let vers = versions(self.enabled_protocols.as_deref(), self.protocol.as_deref())
            .map_err(|e| e.0)?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&vers)
            .map_err(|e| e.to_string())?;
        let builder = match (&self.truststore, self.client_auth) {
            (Some(t), ClientAuth::Want | ClientAuth::Need) => {
                let v = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(t.roots().map_err(|e| e.0)?),
                    provider,
                );
                let v = if self.client_auth == ClientAuth::Want {
                    v.allow_unauthenticated()
                } else {
                    v
                };
                builder.with_client_cert_verifier(v.build().map_err(|e| e.to_string())?)
            }
            _ => builder.with_no_client_auth(),
        };
        let (chain, key) = self.keystore.key_and_chain().map_err(|e| e.0)?;
        builder
            .with_single_cert(chain, key)
            .map(Arc::new)
            .map_err(|e| format!("keystore: {e}"))
    }

    /// The connecting side of the peer port: our keystore as the client
    /// certificate, the truststore as roots.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let provider = provider(self.ciphersuites.as_deref()).map_err(|e| e.0)?;
        let vers = versions(self.enabled_protocols.as_deref(), self.protocol.as_deref())
            .map_err(|e| e.0)?;
        let trust = self
            .truststore
            .as_ref()
            .ok_or("sslQuorum needs ssl.quorum.trustStore.location")?;
        let (chain, key) = self.keystore.key_and_chain().map_err(|e| e.0)?;
        ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&vers)
            .map_err(|e| e.to_string())?
            .with_root_certificates(trust.roots().map_err(|e| e.0)?)
            .with_client_auth_cert(chain, key)
            .map(Arc::new)
            .map_err(|e| format!("keystore: {e}"))
    }
}

/// The subject of a verified client certificate as Java's
/// `X500Principal.getName()` writes it (RFC 2253: the last RDN first,
/// comma-separated, `CN=broker,O=fjord`): ZooKeeper's `x509` ACL id.
pub fn x509_id(cert_der: &[u8]) -> Option<String> {
    fjord_tls::der::subject_dn(cert_der).ok()
}
