//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs: topic
//! overrides (kept by `cluster::Cluster`) and the broker's static config, with
//! Kafka's config sources and synonyms.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::*;

use super::common::*;
use crate::broker::Broker;
use crate::cluster::AdminError;
use crate::wire::error as err;

/// (name, value, source, synonyms as (name, value, source)).
type ConfigEntry = (String, String, i8, Vec<(String, String, i8)>);

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
/// DescribeConfigs v3+ config type of a password.
const CONFIG_TYPE_PASSWORD: i8 = 9;

pub(super) fn describe_configs(cx: Ctx<'_>, r: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let view = cx.view();
    let defaults = crate::config::topic_config_defaults(&cx.b.config);
    let mut results = Vec::new();
    for res in r.resources {
        let name = res.resource_name.to_string();
        let keys: Option<Vec<String>> = res
            .configuration_keys
            .as_ref()
            .map(|k| k.iter().map(|x| x.to_string()).collect());
        let want = |k: &str| keys.as_ref().is_none_or(|ks| ks.iter().any(|x| x == k));
        let mut out = describe_configs_response::DescribeConfigsResult::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        let mut entries: Vec<ConfigEntry> = Vec::new();
        match res.resource_type {
            RESOURCE_TOPIC => match view.topics.get(&name) {
                None => {
                    out.error_code = err::UNKNOWN_TOPIC_OR_PARTITION;
                    out.error_message = Some(s("unknown topic"));
                }
                Some(t) => {
                    for (k, broker_key, def) in &defaults {
                        if !want(k) {
                            continue;
                        }
                        let mut syn = Vec::new();
                        let static_val = broker_key.and_then(|bk| cx.b.config.raw.get(bk).cloned());
                        let (val, src) = match t.configs.get(*k) {
                            Some(v) => {
                                syn.push((k.to_string(), v.clone(), SOURCE_DYNAMIC_TOPIC));
                                (v.clone(), SOURCE_DYNAMIC_TOPIC)
                            }
                            None => match &static_val {
                                Some(v) => (v.clone(), SOURCE_STATIC_BROKER),
                                None => (def.clone(), SOURCE_DEFAULT),
                            },
                        };
                        if let (Some(bk), Some(v)) = (broker_key, &static_val) {
                            syn.push((bk.to_string(), v.clone(), SOURCE_STATIC_BROKER));
                        }
                        if let Some(bk) = broker_key {
                            syn.push((bk.to_string(), def.clone(), SOURCE_DEFAULT));
                        }
                        entries.push((k.to_string(), val, src, syn));
                    }
                    // Overrides Fjord accepts but does not act on (legacy names).
                    for (k, v) in &t.configs {
                        if want(k) && !defaults.iter().any(|(d, _, _)| d == k) {
                            let syn = vec![(k.clone(), v.clone(), SOURCE_DYNAMIC_TOPIC)];
                            entries.push((k.clone(), v.clone(), SOURCE_DYNAMIC_TOPIC, syn));
                        }
                    }
                }
            },
            RESOURCE_BROKER => {
                if name.parse::<i32>().ok().is_some_and(|id| id != cx.b.id()) && !name.is_empty() {
                    out.error_code = err::INVALID_REQUEST;
                    out.error_message = Some(s("not this broker"));
                } else {
                    for (k, v) in &cx.b.config.raw {
                        if want(k) {
                            entries.push((k.clone(), v.clone(), SOURCE_STATIC_BROKER, Vec::new()));
                        }
                    }
                    for (_, bk, def) in &defaults {
                        if let Some(bk) = bk {
                            if !cx.b.config.raw.contains_key(*bk) && want(bk) {
                                entries.push((
                                    bk.to_string(),
                                    def.clone(),
                                    SOURCE_DEFAULT,
                                    Vec::new(),
                                ));
                            }
                        }
                    }
                }
            }
            _ => {
                out.error_code = err::INVALID_REQUEST;
                out.error_message = Some(s("unsupported resource type"));
            }
        }
        for (k, v, src, syn) in entries {
            // A password's value never leaves the broker: null and marked sensitive.
            let sensitive = crate::config::is_password_key(&k);
            let shown = |v: &str| (!sensitive).then(|| s(v));
            let mut c = describe_configs_response::DescribeConfigsResourceResult::default()
                .with_name(s(&k))
                .with_value(shown(&v))
                .with_is_sensitive(sensitive)
                .with_config_source(src);
            if r.include_synonyms {
                c.synonyms = syn
                    .into_iter()
                    .map(|(n, v, src)| {
                        describe_configs_response::DescribeConfigsSynonym::default()
                            .with_name(s(&n))
                            .with_value(shown(&v))
                            .with_source(src)
                    })
                    .collect();
            }
            if cx.version >= 3 {
                c.config_type = if sensitive { CONFIG_TYPE_PASSWORD } else { 0 };
            }
            out.configs.push(c);
        }
        results.push(out);
    }
    DescribeConfigsResponse::default().with_results(results)
}

pub(super) async fn alter_configs(b: &Arc<Broker>, r: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut out = Vec::new();
    for res in r.resources {
        let mut rr = alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        if res.resource_type != RESOURCE_TOPIC {
            rr.error_code = err::INVALID_REQUEST;
            rr.error_message = Some(s("only topic configs can be altered"));
        } else {
            let cfg = valued_configs(res.configs.iter().map(|c| (&c.name, c.value.as_ref())));
            let e = if r.validate_only {
                crate::cluster::validate_configs(&cfg)
            } else {
                // AlterConfigs replaces the whole set.
                let replace = |c: &mut BTreeMap<String, String>| {
                    c.clone_from(&cfg);
                    Ok(())
                };
                b.cluster
                    .update_topic_configs(&res.resource_name, &replace)
                    .await
            };
            if let Err(e) = e {
                (rr.error_code, rr.error_message) = admin_failure(&e, true);
            }
        }
        out.push(rr);
    }
    AlterConfigsResponse::default().with_responses(out)
}

pub(super) async fn incremental_alter_configs(
    b: &Arc<Broker>,
    r: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut out = Vec::new();
    for res in r.resources {
        let mut rr = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        let name = res.resource_name.to_string();
        // The operations, applied to the stored configs by the cluster (a
        // read-modify-write that a concurrent alter cannot undo).
        let edit = |cfg: &mut BTreeMap<String, String>| -> Result<(), AdminError> {
            for c in &res.configs {
                let k = c.name.to_string();
                let v = c.value.as_ref().map(|x| x.to_string()).unwrap_or_default();
                match c.config_operation {
                    0 => {
                        cfg.insert(k, v);
                    }
                    1 => {
                        cfg.remove(&k);
                    }
                    2 => {
                        let e = cfg.entry(k).or_default();
                        if !e.is_empty() {
                            e.push(',');
                        }
                        e.push_str(&v);
                    }
                    3 => {
                        if let Some(e) = cfg.get_mut(&k) {
                            *e = e
                                .split(',')
                                .filter(|x| *x != v)
                                .collect::<Vec<_>>()
                                .join(",");
                        }
                    }
                    _ => return Err(AdminError::InvalidConfig("bad operation".into())),
                }
            }
            Ok(())
        };
        let result = if res.resource_type != RESOURCE_TOPIC {
            Err(AdminError::InvalidConfig(
                "only topic configs can be altered".into(),
            ))
        } else if r.validate_only {
            match b.cache.view().topics.get(&name).map(|t| t.configs.clone()) {
                Some(mut cfg) => {
                    edit(&mut cfg).and_then(|()| crate::cluster::validate_configs(&cfg))
                }
                None => Err(AdminError::UnknownTopic),
            }
        } else {
            b.cluster.update_topic_configs(&name, &edit).await
        };
        if let Err(e) = result {
            rr.error_code = if matches!(e, AdminError::InvalidConfig(_)) {
                err::INVALID_CONFIG
            } else {
                err::admin_error(&e)
            };
            rr.error_message = Some(s(&e.to_string()));
        }
        out.push(rr);
    }
    IncrementalAlterConfigsResponse::default().with_responses(out)
}
