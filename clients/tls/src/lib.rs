//! fjord-tls: TLS key material read the way Kafka's and ZooKeeper's settings
//! name it, for every Fjord program that speaks TLS — the broker's listeners,
//! fjord-kafka's client (the CLI, replica fetchers and other inter-broker
//! connections) and, if it wants, the coordinator.
//!
//! A keystore is a certificate chain plus its private key; a truststore the CA
//! certificates to verify peers with. Both come as PEM (a file, or Kafka's
//! inline `ssl.keystore.certificate.chain` / `ssl.keystore.key` /
//! `ssl.truststore.certificates` values) or PKCS12 (`pkcs12.rs` over a small
//! DER reader, `der.rs`, with RustCrypto's `pkcs5` for PBES2: what OpenSSL 3
//! and keytool write; the PKCS12 crates' derive macros widen syn's features,
//! which rebuilds RocksDB's bindings in every build). JKS is refused with a
//! message naming the key (no maintained Rust reader exists; `keytool
//! -importkeystore -deststoretype PKCS12` converts). Errors are strings meant
//! for an operator: they name the setting and the file.

pub mod der;
pub mod pkcs12;

use std::io::BufReader;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate chain (leaf first) with its private key.
#[derive(Debug)]
pub struct KeyMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// The container format of a key- or truststore (`ssl.keystore.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    Pem,
    Pkcs12,
}

impl StoreType {
    /// Parse a `*.type` setting; `key` names it in the error.
    pub fn parse(key: &str, v: &str) -> Result<StoreType, String> {
        match v.trim().to_ascii_uppercase().as_str() {
            "PEM" => Ok(StoreType::Pem),
            "PKCS12" | "P12" | "PFX" => Ok(StoreType::Pkcs12),
            "JKS" => Err(format!(
                "{key}=JKS is not supported: convert with `keytool -importkeystore -srckeystore ks.jks -destkeystore ks.p12 -deststoretype PKCS12` and set {key}=PKCS12"
            )),
            o => Err(format!("{key}={o}: expected PEM or PKCS12")),
        }
    }

    /// PKCS12 for `.p12`/`.pfx` file names, PEM otherwise (when no type is set).
    pub fn guess(path: &Path) -> StoreType {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("p12") || e.eq_ignore_ascii_case("pfx") => {
                StoreType::Pkcs12
            }
            _ => StoreType::Pem,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn pkcs12(path: &Path, password: &str) -> Result<pkcs12::Contents, String> {
    pkcs12::read(&read(path)?, password).map_err(|e| format!("{}: PKCS12: {e}", path.display()))
}

/// Every certificate in PEM text.
pub fn pem_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_reader_iter(&mut BufReader::new(pem))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: {e}"))
}

/// The chain and key of PEM text (they may sit in one file).
pub fn pem_key_material(chain: &[u8], key: &[u8], what: &str) -> Result<KeyMaterial, String> {
    let chain = pem_certs(chain, what)?;
    if chain.is_empty() {
        return Err(format!("{what}: no certificate"));
    }
    let key = PrivateKeyDer::from_pem_reader(&mut BufReader::new(key)).map_err(|e| {
        format!("{what}: private key: {e} (an encrypted PEM key is not supported: use PKCS12 or an unencrypted key with restricted permissions)")
    })?;
    Ok(KeyMaterial { chain, key })
}

/// Load a keystore file: PEM (key and chain in one file) or PKCS12 (the
/// first entry holding a private key, with its chain).
pub fn load_keystore(path: &Path, kind: StoreType, password: &str) -> Result<KeyMaterial, String> {
    match kind {
        StoreType::Pem => {
            let text = read(path)?;
            pem_key_material(&text, &text, &path.display().to_string())
        }
        StoreType::Pkcs12 => {
            let a = pkcs12(path, password)?;
            let key = a
                .keys
                .first()
                .ok_or_else(|| format!("{}: no private key entry", path.display()))?;
            // The key's own certificate first (same localKeyId), then the rest.
            let mut certs: Vec<&pkcs12::Bag> = a.certs.iter().collect();
            if let Some(id) = &key.local_key_id {
                certs.sort_by_key(|c| c.local_key_id.as_ref() != Some(id));
            }
            let chain: Vec<CertificateDer<'static>> = certs
                .iter()
                .map(|c| CertificateDer::from(c.der.clone()))
                .collect();
            if chain.is_empty() {
                return Err(format!(
                    "{}: the private key has no certificate",
                    path.display()
                ));
            }
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.der.clone()));
            Ok(KeyMaterial { chain, key })
        }
    }
}

/// Load a truststore file: every certificate of a PEM file, or every
/// certificate entry (trusted or not) of a PKCS12 file.
pub fn load_truststore(
    path: &Path,
    kind: StoreType,
    password: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = match kind {
        StoreType::Pem => pem_certs(&read(path)?, &path.display().to_string())?,
        StoreType::Pkcs12 => pkcs12(path, password)?
            .certs
            .into_iter()
            .map(|c| CertificateDer::from(c.der))
            .collect(),
    };
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certs)
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

/// Lookup of one setting (a listener's override first, then the global key).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn nonempty(get: Lookup<'_>, k: &str) -> Option<String> {
    get(k).filter(|v| !v.trim().is_empty())
}

/// The keystore Kafka's keys describe, if any: `ssl.keystore.location` with
/// `ssl.keystore.type` (PEM, PKCS12) and `ssl.keystore.password`; inline
/// `ssl.keystore.certificate.chain` + `ssl.keystore.key`; or librdkafka's
/// `ssl.certificate.location` + `ssl.key.location`. `ssl.key.password` must
/// be empty or equal the keystore password (one password opens a PKCS12
/// file here; encrypted PEM keys are refused).
pub fn keystore_from_props(get: Lookup<'_>) -> Result<Option<KeyMaterial>, String> {
    let password = nonempty(get, "ssl.keystore.password").unwrap_or_default();
    if let Some(kp) = nonempty(get, "ssl.key.password") {
        if kp != password {
            return Err("ssl.key.password differs from ssl.keystore.password: a separately encrypted key is not supported (re-export the PKCS12 file with one password, or use an unencrypted PEM key)".into());
        }
    }
    if let Some(loc) = nonempty(get, "ssl.keystore.location") {
        let path = PathBuf::from(loc.trim());
        let kind = match nonempty(get, "ssl.keystore.type") {
            Some(t) => StoreType::parse("ssl.keystore.type", &t)?,
            None => StoreType::guess(&path),
        };
        return load_keystore(&path, kind, &password)
            .map(Some)
            .map_err(|e| format!("ssl.keystore.location: {e}"));
    }
    if let Some(t) = nonempty(get, "ssl.keystore.type") {
        StoreType::parse("ssl.keystore.type", &t)?;
    }
    if let Some(chain) = nonempty(get, "ssl.keystore.certificate.chain") {
        let key = nonempty(get, "ssl.keystore.key")
            .ok_or("ssl.keystore.certificate.chain needs ssl.keystore.key")?;
        return pem_key_material(
            inline_pem(&chain).as_bytes(),
            inline_pem(&key).as_bytes(),
            "ssl.keystore.certificate.chain/ssl.keystore.key",
        )
        .map(Some);
    }
    if let Some(cert) = nonempty(get, "ssl.certificate.location") {
        let key = nonempty(get, "ssl.key.location")
            .ok_or("ssl.certificate.location needs ssl.key.location")?;
        let (c, k) = (read(Path::new(cert.trim()))?, read(Path::new(key.trim()))?);
        return pem_key_material(&c, &k, "ssl.certificate.location/ssl.key.location").map(Some);
    }
    Ok(None)
}

/// The truststore Kafka's keys describe, if any: `ssl.truststore.location`
/// with `ssl.truststore.type` and `ssl.truststore.password`, inline
/// `ssl.truststore.certificates`, or librdkafka's `ssl.ca.location`.
pub fn truststore_from_props(
    get: Lookup<'_>,
) -> Result<Option<Vec<CertificateDer<'static>>>, String> {
    let loc = nonempty(get, "ssl.truststore.location").map(|l| ("ssl.truststore.location", l));
    let loc = loc.or_else(|| nonempty(get, "ssl.ca.location").map(|l| ("ssl.ca.location", l)));
    if let Some((key, loc)) = loc {
        let path = PathBuf::from(loc.trim());
        let kind = match nonempty(get, "ssl.truststore.type") {
            Some(t) if key == "ssl.truststore.location" => {
                StoreType::parse("ssl.truststore.type", &t)?
            }
            _ => StoreType::guess(&path),
        };
        let password = nonempty(get, "ssl.truststore.password").unwrap_or_default();
        return load_truststore(&path, kind, &password)
            .map(Some)
            .map_err(|e| format!("{key}: {e}"));
    }
    if let Some(t) = nonempty(get, "ssl.truststore.type") {
        StoreType::parse("ssl.truststore.type", &t)?;
    }
    if let Some(pem) = nonempty(get, "ssl.truststore.certificates") {
        let certs = pem_certs(inline_pem(&pem).as_bytes(), "ssl.truststore.certificates")?;
        if certs.is_empty() {
            return Err("ssl.truststore.certificates: no certificate".into());
        }
        return Ok(Some(certs));
    }
    Ok(None)
}

/// The files the settings read (what a reloader watches).
pub fn files_of_props(get: Lookup<'_>) -> Vec<PathBuf> {
    [
        "ssl.keystore.location",
        "ssl.truststore.location",
        "ssl.ca.location",
        "ssl.certificate.location",
        "ssl.key.location",
    ]
    .iter()
    .filter_map(|k| nonempty(get, k))
    .map(|v| PathBuf::from(v.trim()))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_types() {
        assert_eq!(StoreType::parse("k", "pkcs12"), Ok(StoreType::Pkcs12));
        assert_eq!(StoreType::parse("k", "PEM"), Ok(StoreType::Pem));
        let e = StoreType::parse("ssl.keystore.type", "JKS").unwrap_err();
        assert!(
            e.contains("ssl.keystore.type=JKS") && e.contains("PKCS12"),
            "{e}"
        );
        assert!(StoreType::parse("k", "BKS").is_err());
        assert_eq!(StoreType::guess(Path::new("/x/a.P12")), StoreType::Pkcs12);
        assert_eq!(StoreType::guess(Path::new("/x/a.pem")), StoreType::Pem);
    }

    #[test]
    fn inline_pem_rebuilds_lines() {
        let one = "-----BEGIN CERTIFICATE----- AAAA BBBB -----END CERTIFICATE-----";
        assert_eq!(
            inline_pem(one),
            "-----BEGIN CERTIFICATE-----\nAAAA\nBBBB\n-----END CERTIFICATE-----\n"
        );
    }

    #[test]
    fn missing_and_mismatched_settings() {
        let none = |_: &str| None;
        assert!(keystore_from_props(&none).unwrap().is_none());
        assert!(truststore_from_props(&none).unwrap().is_none());
        let bad = |k: &str| match k {
            "ssl.keystore.password" => Some("a".to_string()),
            "ssl.key.password" => Some("b".to_string()),
            _ => None,
        };
        assert!(keystore_from_props(&bad).is_err());
        let missing = |k: &str| (k == "ssl.keystore.location").then(|| "/nonexistent.p12".into());
        let e = keystore_from_props(&missing).unwrap_err();
        assert!(e.contains("/nonexistent.p12"), "{e}");
    }
}
