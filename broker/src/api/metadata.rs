//! Metadata (with topic auto-creation) and DescribeCluster: what the cache
//! knows of brokers, topics, partition leaders, ISRs and the controller.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::common::*;
use crate::cluster::metadata::ClusterView;
use crate::cluster::{validate_topic_name, AdminError, NewTopic};
use crate::wire::error as err;

// ---------------------------------------------------------------- Metadata

pub(super) async fn metadata(cx: Ctx<'_>, r: MetadataRequest, listener: &str) -> MetadataResponse {
    let mut view = cx.view();
    let requested: Option<Vec<String>> = match &r.topics {
        None => None,
        Some(ts) if ts.is_empty() && cx.version == 0 => None,
        Some(ts) => Some(
            ts.iter()
                .filter_map(|t| {
                    t.name.as_ref().map(|n| n.0.to_string()).or_else(|| {
                        view.topics
                            .values()
                            .find(|m| m.topic_id == t.topic_id)
                            .map(|m| m.name.clone())
                    })
                })
                .collect(),
        ),
    };
    let auto = (cx.version < 4 || r.allow_auto_topic_creation) && cx.b.config.auto_create_topics;
    if let (Some(names), true) = (&requested, auto) {
        // Invalid names are answered INVALID_TOPIC_EXCEPTION below, never created.
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !view.topics.contains_key(*n) && validate_topic_name(n).is_ok())
            .collect();
        if !missing.is_empty() {
            for n in &missing {
                let t = NewTopic {
                    name: (*n).clone(),
                    partitions: cx.b.config.num_partitions,
                    replication_factor: cx.b.config.default_replication_factor,
                    assignments: None,
                    configs: BTreeMap::new(),
                };
                match cx.b.cluster.create_topic(t, false).await {
                    Ok(()) | Err(AdminError::TopicExists) => {}
                    Err(e) => tracing::info!(topic = %n, error = %e, "auto-create failed"),
                }
            }
            let want: Vec<String> = missing.iter().map(|s| (*s).clone()).collect();
            wait_for(cx.b, Duration::from_secs(2), |v| {
                want.iter().all(|n| {
                    v.topics
                        .get(n)
                        .is_some_and(|t| t.partitions.iter().all(|p| p.leader() >= 0))
                })
            })
            .await;
            view = cx.view();
        }
    }
    let brokers = live_brokers(&view, listener, |id, host, port| {
        metadata_response::MetadataResponseBroker::default()
            .with_node_id(id)
            .with_host(host)
            .with_port(port)
    });
    let names: Vec<String> = match requested {
        Some(n) => n,
        None => {
            let mut v: Vec<String> = view.topics.keys().cloned().collect();
            v.sort();
            v
        }
    };
    let mut topics = Vec::with_capacity(names.len());
    for n in names {
        let mut mt =
            metadata_response::MetadataResponseTopic::default().with_name(Some(TopicName(s(&n))));
        match view.topics.get(&n) {
            Some(t) if !t.deleting => {
                if cx.version >= 10 {
                    mt.topic_id = t.topic_id;
                }
                for p in &t.partitions {
                    let leader = p.leader();
                    let live = leader >= 0 && view.brokers.contains_key(&leader);
                    let mut mp = metadata_response::MetadataResponsePartition::default()
                        .with_partition_index(p.index)
                        .with_leader_id(if live { leader } else { -1 }.into())
                        .with_replica_nodes(p.replicas.iter().map(|x| (*x).into()).collect())
                        .with_isr_nodes(p.isr().iter().map(|x| (*x).into()).collect())
                        .with_error_code(if live {
                            err::NONE
                        } else {
                            err::LEADER_NOT_AVAILABLE
                        });
                    if cx.version >= 7 {
                        mp.leader_epoch = p.leader_epoch();
                    }
                    if cx.version >= 5 {
                        mp.offline_replicas = p
                            .replicas
                            .iter()
                            .filter(|x| !view.brokers.contains_key(x))
                            .map(|x| (*x).into())
                            .collect();
                    }
                    mt.partitions.push(mp);
                }
            }
            _ => {
                mt.error_code = if validate_topic_name(&n).is_err() {
                    err::INVALID_TOPIC_EXCEPTION
                } else {
                    err::UNKNOWN_TOPIC_OR_PARTITION
                }
            }
        }
        topics.push(mt);
    }
    let mut resp = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    if cx.version >= 1 {
        resp.controller_id = view.controller_id.into();
    }
    if cx.version >= 2 {
        resp.cluster_id = Some(s(&view.cluster_id));
    }
    resp
}

/// DescribeCluster: the cluster id, the controller and the live brokers.
pub(super) fn describe_cluster(
    cx: Ctx<'_>,
    _r: DescribeClusterRequest,
    listener: &str,
) -> DescribeClusterResponse {
    let view = cx.view();
    DescribeClusterResponse::default()
        .with_cluster_id(s(&view.cluster_id))
        .with_controller_id(view.controller_id.into())
        .with_brokers(live_brokers(&view, listener, |id, host, port| {
            describe_cluster_response::DescribeClusterBroker::default()
                .with_broker_id(id)
                .with_host(host)
                .with_port(port)
        }))
}

/// The live brokers as (id, host, port) on the client's listener, built
/// into each API's broker type (a broker without that listener is left out).
fn live_brokers<T>(
    view: &ClusterView,
    listener: &str,
    make: impl Fn(BrokerId, StrBytes, i32) -> T,
) -> Vec<T> {
    view.brokers
        .values()
        .filter_map(|x| {
            let (host, port) = x.address_for(listener)?;
            Some(make(x.id.into(), s(host), port as i32))
        })
        .collect()
}
