//! The coordinator's security keys, read from zoo.cfg (or, as ZooKeeper
//! reads them, from `-D` system properties in SERVER_JVMFLAGS/JVMFLAGS):
//! `secureClientPort`/`secureClientPortAddress` with `ssl.*` (tls.rs),
//! `sslQuorum` with `ssl.quorum.*`, SASL (`authProvider.N=...SASLAuthenticationProvider`
//! with the JAAS file of `jaasLoginConfig` / `java.security.auth.login.config`,
//! sasl.rs), `requireClientAuthScheme=sasl`, and the super users of the
//! sasl and x509 schemes. `serverCnxnFactory`, `client.secure` and
//! `client.portUnification` are accepted (there is one connection factory).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use crate::sasl::SaslUsers;
use crate::tls::TlsConf;

/// Keys (without the `zookeeper.` prefix) this file reads.
const KEYS: &[&str] = &[
    "secureClientPort",
    "secureClientPortAddress",
    "serverCnxnFactory",
    "client.secure",
    "client.portUnification",
    "sslQuorum",
    "jaasLoginConfig",
    "java.security.auth.login.config",
    "sasl.serverconfig",
    "superUser",
    "X509AuthenticationProvider.superUser",
    "requireClientAuthScheme",
    "sessionRequireClientSASLAuth",
    "ssl.authProvider",
    "ssl.hostnameVerification",
    "ssl.quorum.hostnameVerification",
];

/// Whether `key` (as in zoo.cfg or a `-D` property) is one of ours.
pub fn is_key(key: &str) -> bool {
    let k = key.strip_prefix("zookeeper.").unwrap_or(key);
    KEYS.contains(&k)
        || k.starts_with("authProvider.")
        || [
            "keyStore.",
            "trustStore.",
            "quorum.keyStore.",
            "quorum.trustStore.",
        ]
        .iter()
        .any(|p| k.strip_prefix("ssl.").is_some_and(|r| r.starts_with(p)))
        || matches!(
            k,
            "ssl.clientAuth"
                | "ssl.protocol"
                | "ssl.enabledProtocols"
                | "ssl.ciphersuites"
                | "ssl.quorum.clientAuth"
                | "ssl.quorum.protocol"
                | "ssl.quorum.enabledProtocols"
                | "ssl.quorum.ciphersuites"
        )
}

/// What the security keys configure.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// `secureClientPort`: TLS clients (with `tls`).
    pub secure_client: Option<SocketAddr>,
    /// Whether the plaintext `clientPort` is served (not when only
    /// `secureClientPort` is set, as ZooKeeper).
    pub plain_client: bool,
    pub tls: Option<Arc<TlsConf>>,
    /// `sslQuorum=true`: the peer port speaks TLS with `ssl.quorum.*`.
    pub quorum_tls: Option<Arc<TlsConf>>,
    /// SASL DIGEST-MD5 users (the provider is on).
    pub sasl: Option<Arc<SaslUsers>>,
    /// `zookeeper.superUser`: a `sasl` id that passes every ACL.
    pub sasl_super_user: Option<String>,
    /// `zookeeper.X509AuthenticationProvider.superUser`: an `x509` id that does.
    pub x509_super_user: Option<String>,
    /// `requireClientAuthScheme=sasl`: requests other than auth/sasl/ping
    /// from a connection that has not authenticated are refused and the
    /// connection closed (ZooKeeper 3.7's enforce-auth).
    pub require_sasl: bool,
}

impl Security {
    /// Reads the keys with `get` (a key as written, or with `zookeeper.`
    /// prepended). Errors name the key.
    pub fn parse(get: &dyn Fn(&str) -> Option<String>) -> Result<Security, (String, String)> {
        let bad = |k: &str, why: String| (k.to_string(), why);
        let flag = |k: &str| -> Result<bool, (String, String)> {
            match get(k).map(|v| v.to_ascii_lowercase()) {
                None => Ok(false),
                Some(v) if v == "true" || v == "yes" => Ok(true),
                Some(v) if v == "false" || v == "no" => Ok(false),
                Some(_) => Err(bad(k, "expected true or false".into())),
            }
        };
        let secure_port: Option<u16> = get("secureClientPort")
            .map(|v| {
                v.parse()
                    .map_err(|e| bad("secureClientPort", format!("{e}")))
            })
            .transpose()?;
        let secure_addr: Option<IpAddr> = get("secureClientPortAddress")
            .map(|v| {
                v.parse()
                    .map_err(|e| bad("secureClientPortAddress", format!("{e}")))
            })
            .transpose()?;
        let client_addr: Option<IpAddr> = get("clientPortAddress").and_then(|v| v.parse().ok());
        let any = IpAddr::from([0, 0, 0, 0]);
        let secure_client =
            secure_port.map(|p| SocketAddr::new(secure_addr.or(client_addr).unwrap_or(any), p));
        let tls = TlsConf::from_keys(get, "ssl").map_err(|e| bad("ssl.keyStore.location", e))?;
        if secure_client.is_some() && tls.is_none() {
            return Err(bad(
                "secureClientPort",
                "needs ssl.keyStore.location (and ssl.trustStore.location unless ssl.clientAuth=none)".into(),
            ));
        }
        let quorum_tls = if flag("sslQuorum")? {
            let q = TlsConf::from_keys(get, "ssl.quorum")
                .map_err(|e| bad("ssl.quorum.keyStore.location", e))?
                .ok_or_else(|| {
                    bad(
                        "sslQuorum",
                        "needs ssl.quorum.keyStore.location and ssl.quorum.trustStore.location"
                            .into(),
                    )
                })?;
            if q.truststore.is_none() {
                return Err(bad(
                    "sslQuorum",
                    "needs ssl.quorum.trustStore.location".into(),
                ));
            }
            Some(Arc::new(q))
        } else {
            None
        };
        let mut providers: Vec<(String, String)> = Vec::new();
        for n in ["sasl", "1", "2", "3", "4", "5", "6", "7", "8", "9"] {
            let k = format!("authProvider.{n}");
            if let Some(v) = get(&k) {
                providers.push((k, v));
            }
        }
        let sasl_on = providers.iter().any(|(_, v)| {
            v.trim() == "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
        });
        for (k, v) in &providers {
            let known = [
                "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
                "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
                "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
                "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
            ];
            if !known.contains(&v.trim()) {
                return Err(bad(k, "unknown authentication provider".into()));
            }
        }
        let jaas = get("jaasLoginConfig").or_else(|| get("java.security.auth.login.config"));
        let sasl = if sasl_on {
            let file = jaas.ok_or_else(|| {
                bad(
                    "authProvider.sasl",
                    "SASL needs the JAAS file: jaasLoginConfig=/path/jaas.conf (or -Djava.security.auth.login.config=)".into(),
                )
            })?;
            let section = get("sasl.serverconfig").unwrap_or_else(|| "Server".into());
            let users = SaslUsers::load(&PathBuf::from(file.trim()), &section)
                .map_err(|e| bad("jaasLoginConfig", e.to_string()))?;
            if users.is_empty() {
                return Err(bad(
                    "jaasLoginConfig",
                    format!("the {section} section names no user_<name>=\"<password>\""),
                ));
            }
            Some(Arc::new(users))
        } else {
            None
        };
        let require = get("requireClientAuthScheme");
        let require_sasl = match require.as_deref().map(str::trim) {
            None | Some("") => flag("sessionRequireClientSASLAuth")?,
            Some("sasl") => true,
            Some(o) => {
                return Err(bad(
                    "requireClientAuthScheme",
                    format!("{o}: only sasl is supported"),
                ))
            }
        };
        if require_sasl && sasl.is_none() {
            return Err(bad("requireClientAuthScheme", "needs the SASL provider (authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider)".into()));
        }
        Ok(Security {
            plain_client: secure_client.is_none() || get("clientPort").is_some(),
            secure_client,
            tls: tls.map(Arc::new),
            quorum_tls,
            sasl,
            sasl_super_user: get("superUser"),
            x509_super_user: get("X509AuthenticationProvider.superUser"),
            require_sasl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(kv: &[(&str, &str)]) -> Result<Security, (String, String)> {
        let map: HashMap<String, String> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Security::parse(&|k: &str| {
            map.get(k)
                .or_else(|| map.get(&format!("zookeeper.{k}")))
                .cloned()
        })
    }

    #[test]
    fn sasl_from_the_jaas_file() {
        let dir = tempfile::tempdir().unwrap();
        let jaas = dir.path().join("jaas.conf");
        std::fs::write(
            &jaas,
            "Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_bob=\"b\"; };",
        )
        .unwrap();
        let provider = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
        let jaas = jaas.to_str().unwrap();
        // As zoo.cfg keys, and as -D system properties.
        let s = parse(&[
            ("authProvider.1", provider),
            ("jaasLoginConfig", jaas),
            ("requireClientAuthScheme", "sasl"),
        ])
        .unwrap();
        assert!(s.sasl.is_some() && s.require_sasl && s.plain_client && s.secure_client.is_none());
        let s = parse(&[
            ("zookeeper.authProvider.sasl", provider),
            ("java.security.auth.login.config", jaas),
            ("zookeeper.superUser", "bob"),
        ])
        .unwrap();
        assert!(s.sasl.is_some());
        assert_eq!(s.sasl_super_user.as_deref(), Some("bob"));
        // Mistakes name their key.
        assert_eq!(
            parse(&[("authProvider.1", provider)]).unwrap_err().0,
            "authProvider.sasl"
        );
        assert_eq!(
            parse(&[("authProvider.1", "com.example.Nope")])
                .unwrap_err()
                .0,
            "authProvider.1"
        );
        assert_eq!(
            parse(&[("requireClientAuthScheme", "sasl")]).unwrap_err().0,
            "requireClientAuthScheme"
        );
        assert_eq!(
            parse(&[("secureClientPort", "2281")]).unwrap_err().0,
            "secureClientPort"
        );
        assert!(parse(&[]).unwrap().sasl.is_none());
        assert!(is_key("zookeeper.ssl.keyStore.location") && is_key("ssl.quorum.trustStore.type"));
        assert!(!is_key("tickTime"));
    }
}
