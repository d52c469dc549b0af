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
            Some(SaslConfig {
                mechanisms: mechs,
                plain,
            })
        } else {
            None
        };
        let principal_rules = match get("ssl.principal.mapping.rules") {
            Some(r) => MappingRules::parse(&r)
                .map_err(|e| ctx(format!("ssl.principal.mapping.rules: {e}")))?,
            None => MappingRules::default(),
        };
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
