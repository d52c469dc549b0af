//! The rustls client config of a TLS connection (ring provider, TLS 1.2 and
//! 1.3): the CA certificates from the truststore settings (or the system's
//! bundle when none is set, as Java's and OpenSSL's defaults do), an
//! optional client certificate for mutual TLS, and the two ways Kafka
//! clients relax verification — `ssl.endpoint.identification.algorithm=`
//! (empty: the chain is checked, the host name is not) and librdkafka's
//! `enable.ssl.certificate.verification=false` (nothing is checked).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::settings::Lookup;

/// Debian's bundle of system CA certificates (ca-certificates).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

fn provider() -> Arc<CryptoProvider> {
    // ring, as the broker's listeners (no aws-lc C build).
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Build the client config from Kafka/librdkafka `ssl.*` settings.
pub fn client_config(get: Lookup<'_>) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let check_name = match get("ssl.endpoint.identification.algorithm") {
        None => true,
        Some(v) if v.trim().eq_ignore_ascii_case("https") => true,
        Some(v) if v.trim().is_empty() || v.trim().eq_ignore_ascii_case("none") => false,
        Some(o) => {
            return Err(format!(
                "ssl.endpoint.identification.algorithm={o}: expected https or empty"
            ))
        }
    };
    let check_chain = !get("enable.ssl.certificate.verification")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
    let certs = match fjord_tls::truststore_from_props(get)? {
        Some(c) => c,
        None if Path::new(SYSTEM_ROOTS).exists() => {
            fjord_tls::load_truststore(Path::new(SYSTEM_ROOTS), fjord_tls::StoreType::Pem, "")?
        }
        None if !check_chain => Vec::new(),
        None => {
            return Err(
                "TLS needs the CA certificates: set ssl.ca.location or ssl.truststore.location"
                    .into(),
            )
        }
    };
    let mut roots = RootCertStore::empty();
    let (_, ignored) = roots.add_parsable_certificates(certs);
    if roots.is_empty() && check_chain {
        return Err(format!(
            "the truststore holds no usable CA certificate ({ignored} unparsable)"
        ));
    }
    let verifier: Arc<dyn ServerCertVerifier> = if check_chain {
        let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("truststore: {e}"))?;
        if check_name {
            v
        } else {
            Arc::new(Relaxed {
                inner: Some(v),
                provider: provider.clone(),
            })
        }
    } else {
        Arc::new(Relaxed {
            inner: None,
            provider: provider.clone(),
        })
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match fjord_tls::keystore_from_props(get)? {
        Some(km) => builder
            .with_client_auth_cert(km.chain, km.key)
            .map_err(|e| format!("client keystore: {e}")),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The web-PKI verifier without the host-name check, or without any
/// certificate check (`inner` None); handshake signatures are always verified.
#[derive(Debug)]
struct Relaxed {
    /// None: no certificate check at all.
    inner: Option<Arc<dyn ServerCertVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
