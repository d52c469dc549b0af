//! A small DER reader, enough to walk a PKCS12 file (RFC 7292) to its keys
//! and certificates and to read a certificate's subject name, which is what
//! ZooKeeper's `x509` ACL scheme uses as the id. Every length is checked
//! against what is left before anything is sliced; nothing here allocates
//! more than the input.
//!
//! (The PKCS12 crates build on derive macros that turn on a syn feature the
//! rest of the workspace does not use, which rebuilds RocksDB's bindings;
//! the handful of structures needed here are cheaper to walk by hand.)

/// Malformed DER: what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed DER: {0}")]
pub struct DerError(pub &'static str);

pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
pub const OID: u8 = 0x06;
pub const OCTET_STRING: u8 = 0x04;
pub const INTEGER: u8 = 0x02;
/// `[0]` constructed (EXPLICIT context tag 0).
pub const CTX0: u8 = 0xa0;
/// `[0]` primitive (IMPLICIT OCTET STRING).
pub const CTX0_PRIM: u8 = 0x80;

/// One element: its tag, its content, and the whole encoding.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

/// Reads consecutive elements from a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Der { rest: b }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element (definite lengths only, as DER requires).
    pub fn next_tlv(&mut self) -> Result<Tlv<'a>, DerError> {
        let b = self.rest;
        let (&tag, after) = b.split_first().ok_or(DerError("truncated tag"))?;
        if tag & 0x1f == 0x1f {
            return Err(DerError("multi-byte tags are not used here"));
        }
        let (&l0, mut after) = after.split_first().ok_or(DerError("truncated length"))?;
        let len = if l0 < 0x80 {
            l0 as usize
        } else {
            let n = (l0 & 0x7f) as usize;
            if n == 0 || n > 4 || after.len() < n {
                return Err(DerError("bad length"));
            }
            let mut len = 0usize;
            for &x in &after[..n] {
                len = (len << 8) | x as usize;
            }
            after = &after[n..];
            len
        };
        if after.len() < len {
            return Err(DerError("length beyond the data"));
        }
        let head = b.len() - after.len();
        let t = Tlv {
            tag,
            value: &after[..len],
            raw: &b[..head + len],
        };
        self.rest = &after[len..];
        Ok(t)
    }

    /// The next element, which must carry `tag`.
    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
        let t = self.next_tlv()?;
        if t.tag != tag {
            return Err(DerError(what));
        }
        Ok(t)
    }

    /// The next element if it carries `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        match self.rest.first() {
            Some(&t) if t == tag => self.next_tlv().map(Some),
            _ => Ok(None),
        }
    }
}

/// An OID's content octets in dotted form.
pub fn oid_string(v: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for (i, &b) in v.iter().enumerate() {
        acc = (acc << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (acc / 40).min(2);
                parts.push(first);
                parts.push(acc - first * 40);
            } else {
                parts.push(acc);
            }
            acc = 0;
        } else if i + 1 == v.len() || acc > (u64::MAX >> 8) {
            return "invalid-oid".into();
        }
    }
    parts
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// A certificate's subject as Java's `X500Principal.getName()` writes it
/// (RFC 2253: the last RDN first, comma-separated, Java's keywords, other
/// attributes as `oid=#hex`), e.g. `CN=broker,O=fjord`.
pub fn subject_dn(cert: &[u8]) -> Result<String, DerError> {
    let c = Der::new(cert).expect(SEQUENCE, "certificate")?;
    let tbs = Der::new(c.value).expect(SEQUENCE, "tbsCertificate")?;
    let mut f = Der::new(tbs.value);
    f.optional(CTX0)?; // version
    f.expect(INTEGER, "serialNumber")?;
    f.expect(SEQUENCE, "signature")?;
    f.expect(SEQUENCE, "issuer")?;
    f.expect(SEQUENCE, "validity")?;
    let subject = f.expect(SEQUENCE, "subject")?;
    let mut rdns = Vec::new();
    let mut r = Der::new(subject.value);
    while !r.is_empty() {
        let set = r.expect(SET, "RelativeDistinguishedName")?;
        let mut attrs = Vec::new();
        let mut a = Der::new(set.value);
        while !a.is_empty() {
            let atv = a.expect(SEQUENCE, "AttributeTypeAndValue")?;
            let mut p = Der::new(atv.value);
            let oid = oid_string(p.expect(OID, "attribute type")?.value);
            let value = p.next_tlv()?;
            let key = match oid.as_str() {
                "2.5.4.3" => Some("CN"),
                "2.5.4.6" => Some("C"),
                "2.5.4.7" => Some("L"),
                "2.5.4.8" => Some("ST"),
                "2.5.4.9" => Some("STREET"),
                "2.5.4.10" => Some("O"),
                "2.5.4.11" => Some("OU"),
                "0.9.2342.19200300.100.1.25" => Some("DC"),
                "0.9.2342.19200300.100.1.1" => Some("UID"),
                _ => None,
            };
            // UTF8String, PrintableString, IA5String, T61String as text.
            let text = matches!(value.tag, 0x0c | 0x13 | 0x16 | 0x14)
                .then(|| std::str::from_utf8(value.value).ok())
                .flatten();
            attrs.push(match (key, text) {
                (Some(k), Some(t)) => format!("{k}={}", escape(t)),
                _ => format!(
                    "{oid}=#{}",
                    value
                        .raw
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                ),
            });
        }
        rdns.push(attrs.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

fn escape(v: &str) -> String {
    let n = v.chars().count();
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let edge = (i == 0 && (c == ' ' || c == '#')) || (i + 1 == n && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_refuses() {
        let mut d = Der::new(&[0x30, 0x03, 0x02, 0x01, 0x05, 0x04, 0x00]);
        let s = d.expect(SEQUENCE, "seq").unwrap();
        assert_eq!(s.value, &[0x02, 0x01, 0x05]);
        assert_eq!(d.expect(OCTET_STRING, "os").unwrap().value, &[] as &[u8]);
        assert!(d.is_empty());
        assert!(Der::new(&[0x30, 0x05, 0x01]).next_tlv().is_err());
        assert!(Der::new(&[0x30, 0x85, 1, 1, 1, 1, 1]).next_tlv().is_err());
        assert!(Der::new(&[0x30]).next_tlv().is_err());
        assert_eq!(oid_string(&[0x55, 0x04, 0x03]), "2.5.4.3");
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x03]),
            "1.2.840.113549.1.12.10.1.3"
        );
        assert!(subject_dn(&[0x30, 0x00]).is_err());
    }
}
