//! ACL checks with ZooKeeper's schemes: world, digest, ip, auth, sasl
//! (DIGEST-MD5, sasl.rs), x509 (a verified client certificate, tls.rs),
//! plus the super users (superDigest, `zookeeper.superUser`,
//! `X509AuthenticationProvider.superUser`) who pass every check.

use base64::Engine;
use sha1::{Digest, Sha1};

use fjord_zk::proto::{perms, Acl, ErrorCode, Id};

/// `user:password` → `user:base64(sha1(user:password))`, the digest id stored in ACLs.
pub fn digest_id(user_pass: &str) -> String {
    let user = user_pass.split(':').next().unwrap_or_default();
    let hash = Sha1::digest(user_pass.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Who a connection is: its IP plus every id added with `addauth`.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub ids: Vec<Id>,
    pub is_super: bool,
}

impl Identity {
    /// A fresh connection from `ip`.
    pub fn new(ip: &str) -> Self {
        Identity {
            ids: vec![Id {
                scheme: "ip".into(),
                id: ip.into(),
            }],
            is_super: false,
        }
    }

    /// Handles an auth packet. Only `digest` is a known scheme; anything else
    /// is AuthFailed, as ZooKeeper answers for unknown providers.
    pub fn add_auth(
        &mut self,
        scheme: &str,
        auth: &[u8],
        super_digest: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if scheme != "digest" {
            return Err(ErrorCode::AuthFailed);
        }
        let text = std::str::from_utf8(auth).map_err(|_| ErrorCode::AuthFailed)?;
        let id = digest_id(text);
        if super_digest == Some(id.as_str()) {
            self.is_super = true;
        }
        let id = Id {
            scheme: "digest".into(),
            id,
        };
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
        Ok(())
    }

    /// Adds an id a provider established (`sasl:bob` after a DIGEST-MD5
    /// exchange, `x509:CN=...` from a client certificate); `is_super` when
    /// it is that scheme's configured super user.
    pub fn add_id(&mut self, scheme: &str, id: &str, is_super: bool) {
        let id = Id {
            scheme: scheme.into(),
            id: id.into(),
        };
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
        self.is_super |= is_super;
    }

    /// Whether a `scheme` id was established on this connection.
    pub fn has_scheme(&self, scheme: &str) -> bool {
        self.ids.iter().any(|i| i.scheme == scheme)
    }

    /// True if some entry of `acl` grants any bit of `perm` to this identity.
    pub fn allowed(&self, acl: &[Acl], perm: i32) -> bool {
        if self.is_super {
            return true;
        }
        acl.iter().any(|a| {
            a.perms & perm != 0
                && match a.id.scheme.as_str() {
                    "world" => a.id.id == "anyone",
                    "ip" => self
                        .ids
                        .iter()
                        .any(|i| i.scheme == "ip" && ip_matches(&a.id.id, &i.id)),
                    scheme => self
                        .ids
                        .iter()
                        .any(|i| i.scheme == scheme && i.id == a.id.id),
                }
        })
    }

    /// Checks an ACL given in create/setACL and expands `auth` entries into
    /// this connection's authenticated ids, as ZooKeeper's fixupACL does;
    /// an entry repeated in the request is kept once (ZooKeeper 3.5+,
    /// ZOOKEEPER-1877).
    pub fn fixup(&self, acl: &[Acl]) -> Result<Vec<Acl>, ErrorCode> {
        if acl.is_empty() {
            return Err(ErrorCode::InvalidAcl);
        }
        let mut out = Vec::with_capacity(acl.len());
        for (i, a) in acl.iter().enumerate() {
            if acl[..i].contains(a) {
                continue;
            }
            if a.perms & !perms::ALL != 0 {
                return Err(ErrorCode::InvalidAcl);
            }
            match a.id.scheme.as_str() {
                "world" if a.id.id == "anyone" => out.push(a.clone()),
                "auth" => {
                    let mut any = false;
                    for i in self.ids.iter().filter(|i| i.scheme != "ip") {
                        any = true;
                        let e = Acl {
                            perms: a.perms,
                            id: i.clone(),
                        };
                        if !out.contains(&e) {
                            out.push(e);
                        }
                    }
                    if !any {
                        return Err(ErrorCode::InvalidAcl);
                    }
                }
                "digest" if a.id.id.contains(':') => out.push(a.clone()),
                "ip" if valid_ip_acl(&a.id.id) => out.push(a.clone()),
                "super" => out.push(a.clone()),
                "sasl" | "x509" if !a.id.id.is_empty() => out.push(a.clone()),
                _ => return Err(ErrorCode::InvalidAcl),
            }
        }
        Ok(out)
    }
}

fn valid_ip_acl(spec: &str) -> bool {
    let (addr, bits) = spec.split_once('/').unwrap_or((spec, ""));
    addr.parse::<std::net::IpAddr>().is_ok() && (bits.is_empty() || bits.parse::<u8>().is_ok())
}

/// `spec` is `a.b.c.d` or `a.b.c.d/bits`.
fn ip_matches(spec: &str, client: &str) -> bool {
    let (addr, bits) = spec.split_once('/').unwrap_or((spec, ""));
    let (Ok(a), Ok(c)) = (
        addr.parse::<std::net::IpAddr>(),
        client.parse::<std::net::IpAddr>(),
    ) else {
        return false;
    };
    let (a, c, max) = match (a, c) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(c)) => {
            (u32::from(a) as u128, u32::from(c) as u128, 32u32)
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(c)) => (u128::from(a), u128::from(c), 128),
        _ => return false,
    };
    let bits = if bits.is_empty() {
        max
    } else {
        match bits.parse::<u32>() {
            Ok(b) if b <= max => b,
            _ => return false,
        }
    };
    if bits == 0 {
        return true;
    }
    let shift = max - bits;
    (a >> shift) == (c >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeeper() {
        // DigestAuthenticationProvider.generateDigest("super:test")
        assert_eq!(
            digest_id("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }

    #[test]
    fn ip_ranges() {
        assert!(ip_matches("127.0.0.0/8", "127.0.0.1"));
        assert!(!ip_matches("10.0.0.1", "127.0.0.1"));
    }

    #[test]
    fn auth_scheme_needs_an_authenticated_id() {
        let mut who = Identity::new("127.0.0.1");
        let acl = vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "auth".into(),
                id: String::new(),
            },
        }];
        assert_eq!(who.fixup(&acl), Err(ErrorCode::InvalidAcl));
        who.add_auth("digest", b"u:p", None).unwrap();
        let fixed = who.fixup(&acl).unwrap();
        assert_eq!(fixed[0].id.scheme, "digest");
        assert!(who.allowed(&fixed, perms::READ));
        assert!(!Identity::new("127.0.0.1").allowed(&fixed, perms::READ));
    }
}
