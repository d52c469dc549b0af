//! PKCS12 keystores and truststores (RFC 7292) as OpenSSL 3 and keytool
//! (JDK 12+) write them: the authenticated safe's contents are plain or
//! PBES2-encrypted (PBKDF2 with HMAC-SHA256/SHA1, AES-CBC; decrypted by
//! RustCrypto's `pkcs5`), keys are PKCS8 (plain or in a PBES2
//! `pkcs8ShroudedKeyBag`), certificates X.509 cert bags. The legacy PBES1
//! schemes (`openssl pkcs12 -legacy`, old Java: 3DES/RC2 with the PKCS12
//! KDF) are refused with a hint. Integrity rests on the decryption (a wrong
//! password fails it); the file's MAC is not checked.

use crate::der::{Der, DerError, CTX0, CTX0_PRIM, OCTET_STRING, OID, SEQUENCE, SET};

const ID_DATA: &str = "1.2.840.113549.1.7.1";
const ID_ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
const KEY_BAG: &str = "1.2.840.113549.1.12.10.1.1";
const SHROUDED_KEY_BAG: &str = "1.2.840.113549.1.12.10.1.2";
const CERT_BAG: &str = "1.2.840.113549.1.12.10.1.3";
const X509_CERT: &str = "1.2.840.113549.1.9.22.1";
const LOCAL_KEY_ID: &str = "1.2.840.113549.1.9.21";

/// Why a PKCS12 file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs12Error {
    #[error(transparent)]
    Der(#[from] DerError),
    #[error("cannot decrypt (wrong password?)")]
    Decrypt,
    #[error("encryption scheme {0} is not supported: re-export with PBES2 (OpenSSL 3's and keytool's default; e.g. `openssl pkcs12 -export ...` without -legacy)")]
    Scheme(String),
}

/// One bag: its DER payload and its localKeyId (pairing a key with its certificate).
#[derive(Debug, Clone)]
pub struct Bag {
    pub der: Vec<u8>,
    pub local_key_id: Option<Vec<u8>>,
}

/// The private keys (PKCS8 DER) and certificates (X.509 DER) of a PFX.
#[derive(Debug, Default)]
pub struct Contents {
    pub keys: Vec<Bag>,
    pub certs: Vec<Bag>,
}

/// Reads a PFX with `password`.
pub fn read(pfx: &[u8], password: &str) -> Result<Contents, Pkcs12Error> {
    let outer = Der::new(pfx).expect(SEQUENCE, "PFX")?;
    let mut f = Der::new(outer.value);
    f.expect(crate::der::INTEGER, "PFX version")?;
    let auth_safe = data_content(f.expect(SEQUENCE, "authSafe")?.value)?;
    let mut out = Contents::default();
    let list = Der::new(&auth_safe).expect(SEQUENCE, "AuthenticatedSafe")?;
    let mut items = Der::new(list.value);
    while !items.is_empty() {
        let ci = items.expect(SEQUENCE, "ContentInfo")?;
        let mut c = Der::new(ci.value);
        let kind = crate::der::oid_string(c.expect(OID, "contentType")?.value);
        let safe = match kind.as_str() {
            ID_DATA => data_content(ci.value)?,
            ID_ENCRYPTED_DATA => {
                let content = c.expect(CTX0, "encryptedData content")?;
                let ed = Der::new(content.value).expect(SEQUENCE, "EncryptedData")?;
                let mut e = Der::new(ed.value);
                e.expect(crate::der::INTEGER, "EncryptedData version")?;
                let eci = e.expect(SEQUENCE, "EncryptedContentInfo")?;
                let mut x = Der::new(eci.value);
                x.expect(OID, "contentType")?;
                let alg = x.expect(SEQUENCE, "contentEncryptionAlgorithm")?;
                let ct = x.next_tlv()?;
                let ciphertext = match ct.tag {
                    CTX0_PRIM => ct.value.to_vec(),
                    CTX0 => octets(ct.value)?,
                    _ => return Err(DerError("encryptedContent").into()),
                };
                decrypt(alg.raw, password, &ciphertext)?
            }
            _ => continue,
        };
        safe_contents(&safe, password, &mut out)?;
    }
    Ok(out)
}

/// The octets of an id-data ContentInfo (`[0] EXPLICIT OCTET STRING`).
fn data_content(ci_value: &[u8]) -> Result<Vec<u8>, Pkcs12Error> {
    let mut c = Der::new(ci_value);
    let kind = crate::der::oid_string(c.expect(OID, "contentType")?.value);
    if kind != ID_DATA {
        return Err(DerError("authSafe is not id-data (public-key integrity mode?)").into());
    }
    let content = c.expect(CTX0, "content")?;
    let os = Der::new(content.value).next_tlv()?;
    match os.tag {
        OCTET_STRING => Ok(os.value.to_vec()),
        0x24 => octets(os.value),
        _ => Err(DerError("id-data content").into()),
    }
}

/// A constructed OCTET STRING's pieces, joined.
fn octets(v: &[u8]) -> Result<Vec<u8>, Pkcs12Error> {
    let mut out = Vec::new();
    let mut d = Der::new(v);
    while !d.is_empty() {
        out.extend_from_slice(d.expect(OCTET_STRING, "OCTET STRING piece")?.value);
    }
    Ok(out)
}

fn decrypt(alg: &[u8], password: &str, ciphertext: &[u8]) -> Result<Vec<u8>, Pkcs12Error> {
    let scheme = pkcs5::EncryptionScheme::try_from(alg).map_err(|_| {
        let oid = Der::new(alg)
            .expect(SEQUENCE, "AlgorithmIdentifier")
            .and_then(|s| Der::new(s.value).expect(OID, "algorithm"))
            .map(|o| crate::der::oid_string(o.value))
            .unwrap_or_else(|_| "?".into());
        Pkcs12Error::Scheme(oid)
    })?;
    if scheme.pbes2().is_none() {
        return Err(Pkcs12Error::Scheme("PBES1".into()));
    }
    scheme
        .decrypt(password.as_bytes(), ciphertext)
        .map_err(|_| Pkcs12Error::Decrypt)
}

fn safe_contents(der: &[u8], password: &str, out: &mut Contents) -> Result<(), Pkcs12Error> {
    let seq = Der::new(der).expect(SEQUENCE, "SafeContents")?;
    let mut bags = Der::new(seq.value);
    while !bags.is_empty() {
        let bag = bags.expect(SEQUENCE, "SafeBag")?;
        let mut b = Der::new(bag.value);
        let id = crate::der::oid_string(b.expect(OID, "bagId")?.value);
        let value = b.expect(CTX0, "bagValue")?;
        let local_key_id = match b.optional(SET)? {
            Some(attrs) => local_key_id(attrs.value)?,
            None => None,
        };
        match id.as_str() {
            KEY_BAG => out.keys.push(Bag {
                der: Der::new(value.value)
                    .expect(SEQUENCE, "PrivateKeyInfo")?
                    .raw
                    .to_vec(),
                local_key_id,
            }),
            SHROUDED_KEY_BAG => {
                let epki = Der::new(value.value).expect(SEQUENCE, "EncryptedPrivateKeyInfo")?;
                let mut e = Der::new(epki.value);
                let alg = e.expect(SEQUENCE, "encryptionAlgorithm")?;
                let data = e.expect(OCTET_STRING, "encryptedData")?;
                out.keys.push(Bag {
                    der: decrypt(alg.raw, password, data.value)?,
                    local_key_id,
                });
            }
            CERT_BAG => {
                let cb = Der::new(value.value).expect(SEQUENCE, "CertBag")?;
                let mut c = Der::new(cb.value);
                let kind = crate::der::oid_string(c.expect(OID, "certId")?.value);
                let v = c.expect(CTX0, "certValue")?;
                if kind == X509_CERT {
                    out.certs.push(Bag {
                        der: Der::new(v.value)
                            .expect(OCTET_STRING, "x509Certificate")?
                            .value
                            .to_vec(),
                        local_key_id,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The localKeyId among a bag's attributes.
fn local_key_id(attrs: &[u8]) -> Result<Option<Vec<u8>>, Pkcs12Error> {
    let mut a = Der::new(attrs);
    while !a.is_empty() {
        let attr = a.expect(SEQUENCE, "Attribute")?;
        let mut p = Der::new(attr.value);
        let oid = crate::der::oid_string(p.expect(OID, "attrId")?.value);
        let values = p.expect(SET, "attrValues")?;
        if oid == LOCAL_KEY_ID {
            let v = Der::new(values.value).expect(OCTET_STRING, "localKeyId")?;
            return Ok(Some(v.value.to_vec()));
        }
    }
    Ok(None)
}
