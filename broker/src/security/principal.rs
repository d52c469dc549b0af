//! Who a connection is: Kafka's `KafkaPrincipal` (`User:alice`,
//! `User:ANONYMOUS`), and for mutual TLS the certificate's subject turned
//! into Kafka's principal name: the distinguished name in RFC 2253 form
//! (`CN=alice,OU=eng,O=acme`, as Java's `X500Principal.getName()` prints it)
//! passed through `ssl.principal.mapping.rules` (`DEFAULT`,
//! `RULE:pattern/replacement/[LU]`). The DER walk reads only the subject of
//! an already-verified certificate and returns None on anything unexpected.

use regex::Regex;

/// The principal of a connection that did not authenticate.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// `User:<name>`.
pub fn user(name: &str) -> String {
    format!("User:{name}")
}

/// One DER TLV: (tag, contents, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut l = 0usize;
        for i in 0..n {
            l = (l << 8) | *b.get(2 + i)? as usize;
        }
        (l, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    Some((tag, b.get(hdr..end)?, b.get(end..)?))
}

/// Short names Java prints for attribute OIDs (others as dotted OIDs).
fn attr_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x55, 0x04, 0x09] => "STREET".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID".into(),
        _ => {
            // Dotted form.
            let mut parts = Vec::new();
            if let Some(&f) = oid.first() {
                parts.push((f / 40) as u64);
                parts.push((f % 40) as u64);
            }
            let mut v = 0u64;
            for &c in oid.iter().skip(1) {
                v = (v << 7) | (c & 0x7f) as u64;
                if c & 0x80 == 0 {
                    parts.push(v);
                    v = 0;
                }
            }
            parts
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(".")
        }
    }
}

/// RFC 2253 escaping of an attribute value.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == v.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The subject of a DER certificate as an RFC 2253 string (last RDN first).
pub fn subject_dn(cert_der: &[u8]) -> Option<String> {
    let (_, cert, _) = tlv(cert_der)?; // Certificate SEQUENCE
    let (_, tbs, _) = tlv(cert)?; // TBSCertificate SEQUENCE
    let mut rest = tbs;
    // [0] version (optional)
    let (tag, _, r) = tlv(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    let (_, _, r) = tlv(rest)?; // serialNumber
    let (_, _, r) = tlv(r)?; // signature AlgorithmIdentifier
    let (_, _, r) = tlv(r)?; // issuer
    let (_, _, r) = tlv(r)?; // validity
    let (tag, mut name, _) = tlv(r)?; // subject
    if tag != 0x30 {
        return None;
    }
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (tag, mut set, r) = tlv(name)?;
        if tag != 0x31 {
            return None;
        }
        name = r;
        let mut atvs = Vec::new();
        while !set.is_empty() {
            let (_, atv, r) = tlv(set)?;
            set = r;
            let (otag, oid, r) = tlv(atv)?;
            if otag != 0x06 {
                return None;
            }
            let (vtag, val, _) = tlv(r)?;
            let text = match vtag {
                // UTF8String, PrintableString, IA5String, T61String
                0x0c | 0x13 | 0x16 | 0x14 => String::from_utf8_lossy(val).into_owned(),
                // BMPString
                0x1e => {
                    let u: Vec<u16> = val
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                        .collect();
                    String::from_utf16_lossy(&u)
                }
                _ => val.iter().map(|b| format!("{b:02x}")).collect(),
            };
            atvs.push(format!("{}={}", attr_name(oid), escape(&text)));
        }
        rdns.push(atvs.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// One rule of `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
enum Rule {
    Default,
    Pattern {
        re: Regex,
        replacement: String,
        case: Option<char>,
    },
}

/// `ssl.principal.mapping.rules`: the first rule that matches names the user.
#[derive(Debug, Clone)]
pub struct MappingRules(Vec<Rule>);

impl Default for MappingRules {
    fn default() -> Self {
        MappingRules(vec![Rule::Default])
    }
}

impl MappingRules {
    /// Parse Kafka's syntax: comma-separated `DEFAULT` and
    /// `RULE:pattern/replacement/[LU]` (a pattern may contain commas).
    pub fn parse(s: &str) -> Result<MappingRules, String> {
        let mut rules = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            rest = rest.trim_start_matches([',', ' ', '\n', '\t']);
            if rest.is_empty() {
                break;
            }
            if let Some(r) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = r;
                continue;
            }
            let r = rest
                .strip_prefix("RULE:")
                .ok_or_else(|| format!("expected DEFAULT or RULE: at {rest:?}"))?;
            // pattern/replacement/flags — split on the unescaped slashes.
            let mut fields = Vec::new();
            let mut cur = String::new();
            let mut chars = r.char_indices();
            let mut end = r.len();
            while let Some((i, c)) = chars.next() {
                if c == '\\' {
                    if let Some((_, n)) = chars.next() {
                        if n != '/' {
                            cur.push('\\');
                        }
                        cur.push(n);
                    }
                    continue;
                }
                if c == '/' && fields.len() < 2 {
                    fields.push(std::mem::take(&mut cur));
                    continue;
                }
                if fields.len() == 2 && (c == ',' || c.is_whitespace()) {
                    end = i;
                    break;
                }
                cur.push(c);
            }
            if fields.len() != 2 {
                return Err(format!("bad rule {r:?}"));
            }
            let flags = cur;
            let case = match flags.as_str() {
                "" => None,
                "L" => Some('L'),
                "U" => Some('U'),
                f => return Err(format!("bad rule flags {f:?}")),
            };
            let re = Regex::new(&fields[0]).map_err(|e| e.to_string())?;
            rules.push(Rule::Pattern {
                re,
                replacement: fields[1].clone(),
                case,
            });
            rest = &r[end..];
        }
        if rules.is_empty() {
            rules.push(Rule::Default);
        }
        Ok(MappingRules(rules))
    }

    /// The user name for a distinguished name (the DN itself if no rule matches).
    pub fn apply(&self, dn: &str) -> String {
        for rule in &self.0 {
            match rule {
                Rule::Default => return dn.to_string(),
                Rule::Pattern {
                    re,
                    replacement,
                    case,
                } => {
                    if let Some(caps) = re.captures(dn) {
                        let mut out = String::new();
                        caps.expand(replacement, &mut out);
                        return match case {
                            Some('L') => out.to_lowercase(),
                            Some('U') => out.to_uppercase(),
                            _ => out,
                        };
                    }
                }
            }
        }
        dn.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let r = MappingRules::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?)$/$1/L,DEFAULT",
        )
        .unwrap();
        assert_eq!(r.apply("CN=svc,OU=ServiceUsers,O=x"), "svc");
        assert_eq!(r.apply("CN=Alice"), "alice");
        assert_eq!(r.apply("O=x,CN=y"), "O=x,CN=y");
        assert_eq!(MappingRules::default().apply("CN=a,O=b"), "CN=a,O=b");
        assert!(MappingRules::parse("RULE:^(/x").is_err());
        assert!(MappingRules::parse("WHAT").is_err());
    }

    #[test]
    fn der_garbage_is_none() {
        assert_eq!(subject_dn(&[]), None);
        assert_eq!(subject_dn(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(subject_dn(&[0x30, 0x03, 0x30, 0x01]), None);
    }
}
