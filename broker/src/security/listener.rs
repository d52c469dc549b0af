//! What each listener demands of a connection, built once from
//! `server.properties`: its TLS state (SSL, SASL_SSL), its SASL mechanisms
//! and PLAIN users (SASL_PLAINTEXT, SASL_SSL), the principal mapping for
//! client certificates, and the delay before answering a failed
//! authentication. Per-listener keys (`listener.name.<name>.<key>`, the name
//! in lower case) override the broker-wide ones, as in Kafka.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::plain::PlainUsers;
use super::principal::MappingRules;
use super::sasl::SaslConfig;
use super::tls::{TlsSettings, TlsState};
use crate::config::{BrokerConfig, ListenerSpec};
use fjord_kafka::security::ClientSecurity;

/// One listener's security, shared by its connections.
pub struct ListenerSecurity {
    pub spec: ListenerSpec,
    /// The listener name as an `Arc<str>`, handed to every request.
    pub name: Arc<str>,
    pub tls: Option<Arc<TlsState>>,
    pub sasl: Option<SaslConfig>,
    pub principal_rules: MappingRules,
    /// connection.failed.authentication.delay.ms
    pub auth_failure_delay: Duration,
}

/// Kafka's lookup: `listener.name.<l>.<key>`, then `<key>`.
fn lookup<'a>(
    raw: &'a BTreeMap<String, String>,
    listener: &str,
) -> impl Fn(&str) -> Option<String> + 'a {
    let prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
    move |k: &str| {
        raw.get(&format!("{prefix}{k}"))
            .or_else(|| raw.get(k))
            .map(|v| v.trim().to_string())
    }
}

/// Build every listener's security; an error names the listener and the problem.
pub fn build(config: &BrokerConfig) -> Result<Vec<Arc<ListenerSecurity>>, String> {
    let raw = &config.raw;
    let delay = match raw.get("connection.failed.authentication.delay.ms") {
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("connection.failed.authentication.delay.ms: bad number {v:?}"))?,
        None => 100,
    };
    let mut specs = config.listeners.clone();
    if specs.is_empty() {
        specs.push(ListenerSpec {
            name: "PLAINTEXT".into(),
            protocol: crate::config::SecurityProtocol::Plaintext,
            bind: config.listen.clone(),
            advertised: config.advertised.clone(),
        });
    }
    let mut out = Vec::new();
    for spec in specs {
        let get = lookup(raw, &spec.name);
        let ctx = |e: String| format!("listener {}: {e}", spec.name);
        let tls = if spec.protocol.tls() {
            let s = TlsSettings::from_props(&get).map_err(ctx)?;
            Some(Arc::new(TlsState::new(s).map_err(ctx)?))
        } else {
            None
        };
        let sasl = if spec.protocol.sasl() {
            let mechs: Vec<String> = get("sasl.enabled.mechanisms")
                .unwrap_or_else(|| "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512".into())
                .split(',')
                .map(|m| m.trim().to_ascii_uppercase())
                .filter(|m| !m.is_empty())
                .collect();
            for m in &mechs {
                if !matches!(m.as_str(), "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512") {
                    return Err(ctx(format!(
                        "sasl.enabled.mechanisms: {m} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
                    )));
                }
            }
            let plain = match get("plain.sasl.jaas.config").or_else(|| get("sasl.jaas.config")) {
                Some(j) => Some(
                    PlainUsers::from_jaas(&j)
                        .ok_or_else(|| ctx("plain.sasl.jaas.config does not parse".into()))?,
                ),
                None => None,
            };
            if mechs.iter().any(|m| m == "PLAIN") && plain.as_ref().is_none_or(|p| p.is_empty()) {
                tracing::warn!(listener = %spec.name, "PLAIN is enabled but no user_<name> entries are configured");
            }
            // KIP-368: listener.name.<l>.<mechanism>.connections.max.reauth.ms,
            // then listener.name.<l>.connections.max.reauth.ms, then the
            // broker-wide key; 0 (the default) or less: sessions never expire.
            let mut max_reauth_ms = BTreeMap::new();
            for m in &mechs {
                let key = format!("{}.connections.max.reauth.ms", m.to_ascii_lowercase());
                let v = raw
                    .get(&format!(
                        "listener.name.{}.{key}",
                        spec.name.to_ascii_lowercase()
                    ))
                    .map(|v| v.trim().to_string())
                    .or_else(|| get("connections.max.reauth.ms"));
                let ms = match v {
                    Some(v) => v
                        .parse::<i64>()
                        .map_err(|_| ctx(format!("connections.max.reauth.ms: bad number {v:?}")))?,
                    None => 0,
                };
                max_reauth_ms.insert(m.clone(), ms.max(0) as u64);
            }
            Some(SaslConfig {
                mechanisms: mechs,
                plain,
                max_reauth_ms,
            })
        } else {
            None
        };
        let principal_rules = match get("ssl.principal.mapping.rules") {
            Some(r) => MappingRules::parse(&r)
                .map_err(|e| ctx(format!("ssl.principal.mapping.rules: {e}")))?,
            None => MappingRules::default(),
        };
        // Fjord's own clients (replica fetchers, controller requests) do not
        // re-authenticate: an expired session closes their connection and
        // they reconnect. Say so once, with the way out.
        if spec.name == config.inter_broker_listener
            && sasl
                .as_ref()
                .is_some_and(|s| s.max_reauth_ms.values().any(|ms| *ms > 0))
        {
            tracing::warn!(
                listener = %spec.name,
                "connections.max.reauth.ms is set on the inter-broker listener: brokers do not re-authenticate, so their connections are closed and reopened at each expiry; set listener.name.{}.connections.max.reauth.ms=0 to avoid it",
                spec.name.to_ascii_lowercase()
            );
        }
        out.push(Arc::new(ListenerSecurity {
            name: Arc::from(spec.name.as_str()),
            spec,
            tls,
            sasl,
            principal_rules,
            auth_failure_delay: Duration::from_millis(delay),
        }));
    }
    Ok(out)
}

/// How this broker connects to the others, Kafka's way: the inter-broker
/// listener's protocol; its truststore (and keystore, for listeners that
/// want client certificates) and `ssl.endpoint.identification.algorithm`;
/// for SASL, `sasl.mechanism.inter.broker.protocol` and the `username` /
/// `password` of that mechanism's JAAS entry on the listener
/// (`listener.name.<l>.<mechanism>.sasl.jaas.config`, then `sasl.jaas.config`).
pub fn inter_broker_client(config: &BrokerConfig) -> Result<ClientSecurity, String> {
    let raw = &config.raw;
    let Some(spec) = config
        .listeners
        .iter()
        .find(|l| l.name == config.inter_broker_listener)
    else {
        return Ok(ClientSecurity::plaintext());
    };
    let get = lookup(raw, &spec.name);
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    m.insert("security.protocol".into(), spec.protocol.name().into());
    for k in [
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
        "ssl.endpoint.identification.algorithm",
    ] {
        if let Some(v) = get(k) {
            m.insert(k.into(), v);
        }
    }
    if spec.protocol.sasl() {
        let mech = raw
            .get("sasl.mechanism.inter.broker.protocol")
            .map(|v| v.trim().to_ascii_uppercase())
            .ok_or_else(|| {
                format!(
                    "inter-broker listener {} is {}: set sasl.mechanism.inter.broker.protocol (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)",
                    spec.name,
                    spec.protocol.name()
                )
            })?;
        let jaas = get(&format!("{}.sasl.jaas.config", mech.to_ascii_lowercase()))
            .or_else(|| get("sasl.jaas.config"))
            .ok_or_else(|| {
                format!(
                    "inter-broker SASL needs listener.name.{}.{}.sasl.jaas.config with username and password",
                    spec.name.to_ascii_lowercase(),
                    mech.to_ascii_lowercase()
                )
            })?;
        m.insert("sasl.mechanism".into(), mech);
        m.insert("sasl.jaas.config".into(), jaas);
    }
    ClientSecurity::from_map(&m).map_err(|e| format!("inter-broker listener {}: {e}", spec.name))
}

/// Poll the TLS files every few seconds and reload what changed (and all of
/// them on SIGHUP); ends with the broker.
pub fn spawn_reloader(
    listeners: Vec<Arc<ListenerSecurity>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let tls: Vec<(String, Arc<TlsState>)> = listeners
        .iter()
        .filter_map(|l| Some((l.spec.name.clone(), l.tls.clone()?)))
        .collect();
    if tls.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            let force = tokio::select! {
                _ = tick.tick() => false,
                Some(_) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
                _ = shutdown.changed() => return,
            };
            for (name, t) in &tls {
                t.reload_if_changed(name, force);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl_of(props: &str) -> Result<SaslConfig, String> {
        let text =
            format!("listeners=PLAINTEXT://127.0.0.1:1,SASL_PLAINTEXT://127.0.0.1:2\n{props}");
        let c = BrokerConfig::parse(&text, "t").map_err(|e| e.to_string())?;
        let all = build(&c)?;
        let l = all.iter().find(|l| &*l.name == "SASL_PLAINTEXT").unwrap();
        Ok(l.sasl.clone().unwrap())
    }

    /// KIP-368's lookup: per listener and mechanism, per listener, broker-wide.
    #[test]
    fn max_reauth_ms_lookup_order() {
        let s = sasl_of("").unwrap();
        assert_eq!(s.max_reauth_ms("SCRAM-SHA-512"), 0);
        let s = sasl_of(
            "connections.max.reauth.ms=3000\n\
             listener.name.sasl_plaintext.scram-sha-512.connections.max.reauth.ms=500\n",
        )
        .unwrap();
        assert_eq!(s.max_reauth_ms("PLAIN"), 3000);
        assert_eq!(s.max_reauth_ms("SCRAM-SHA-256"), 3000);
        assert_eq!(s.max_reauth_ms("SCRAM-SHA-512"), 500);
        let s = sasl_of(
            "connections.max.reauth.ms=3000\n\
             listener.name.sasl_plaintext.connections.max.reauth.ms=0\n",
        )
        .unwrap();
        assert_eq!(s.max_reauth_ms("PLAIN"), 0);
        assert_eq!(
            sasl_of("connections.max.reauth.ms=-5\n")
                .unwrap()
                .max_reauth_ms("PLAIN"),
            0
        );
        assert!(sasl_of("connections.max.reauth.ms=soon\n").is_err());
    }
}
