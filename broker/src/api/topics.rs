//! CreateTopics, DeleteTopics and CreatePartitions: validated and written
//! through `cluster::Cluster`, then answered once the cache shows the result
//! (bounded by the request's timeout).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::*;

use super::common::*;
use crate::broker::Broker;
use crate::cluster::{AdminError, NewTopic};

// ---------------------------------------------------------------- Admin

pub(super) async fn create_topics(
    b: &Arc<Broker>,
    r: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(r.topics.len());
    let mut created = Vec::new();
    for t in r.topics {
        let name = t.name.0.to_string();
        let assignments = if t.assignments.is_empty() {
            None
        } else {
            Some(
                t.assignments
                    .iter()
                    .map(|a| {
                        (
                            a.partition_index,
                            a.broker_ids.iter().map(|x| x.0).collect(),
                        )
                    })
                    .collect(),
            )
        };
        let partitions = if t.num_partitions == -1 {
            b.config.num_partitions
        } else {
            t.num_partitions
        };
        let rf = if t.replication_factor == -1 {
            b.config.default_replication_factor
        } else {
            t.replication_factor
        };
        let configs = valued_configs(t.configs.iter().map(|c| (&c.name, c.value.as_ref())));
        let nt = NewTopic {
            name: name.clone(),
            partitions,
            replication_factor: rf,
            assignments,
            configs,
        };
        let res = b.cluster.create_topic(nt, r.validate_only).await;
        let mut tr =
            create_topics_response::CreatableTopicResult::default().with_name(t.name.clone());
        match res {
            Ok(()) => {
                if version >= 5 {
                    tr.num_partitions = partitions;
                    tr.replication_factor = rf;
                }
                if !r.validate_only {
                    created.push(name);
                }
            }
            Err(e) => (tr.error_code, tr.error_message) = admin_failure(&e, version >= 1),
        }
        results.push(tr);
    }
    if !created.is_empty() {
        let limit = Duration::from_millis(r.timeout_ms.clamp(0, 30_000) as u64);
        wait_for(b, limit, |v| {
            created.iter().all(|n| {
                v.topics
                    .get(n)
                    .is_some_and(|t| t.partitions.iter().all(|p| p.leader() >= 0))
            })
        })
        .await;
    }
    if version >= 7 {
        let view = b.cache.view();
        for tr in results.iter_mut() {
            if let Some(t) = view.topics.get(tr.name.0.as_str()) {
                tr.topic_id = t.topic_id;
            }
        }
    }
    CreateTopicsResponse::default().with_topics(results)
}

pub(super) async fn delete_topics(
    b: &Arc<Broker>,
    r: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let view = b.cache.view();
    let mut names: Vec<(Option<String>, uuid::Uuid)> = Vec::new();
    if version >= 6 {
        for t in &r.topics {
            match &t.name {
                Some(n) => names.push((Some(n.0.to_string()), t.topic_id)),
                None => names.push((
                    view.topics
                        .values()
                        .find(|m| m.topic_id == t.topic_id)
                        .map(|m| m.name.clone()),
                    t.topic_id,
                )),
            }
        }
    } else {
        for n in &r.topic_names {
            names.push((Some(n.0.to_string()), uuid::Uuid::nil()));
        }
    }
    let mut results = Vec::new();
    let mut deleted = Vec::new();
    for (name, id) in names {
        let mut tr = delete_topics_response::DeletableTopicResult::default()
            .with_name(name.as_ref().map(|n| TopicName(s(n))));
        if version >= 6 {
            tr.topic_id = id;
        }
        let res = match &name {
            None => Err(AdminError::UnknownTopic),
            Some(_) if !b.config.delete_topic_enable => Err(AdminError::DeletionDisabled),
            Some(n) => b.cluster.delete_topic(n).await,
        };
        match res {
            Ok(()) => deleted.extend(name),
            Err(e) => (tr.error_code, tr.error_message) = admin_failure(&e, version >= 5),
        }
        results.push(tr);
    }
    if !deleted.is_empty() {
        let limit = Duration::from_millis(r.timeout_ms.clamp(0, 30_000) as u64);
        wait_for(b, limit, |v| {
            deleted.iter().all(|n| !v.topics.contains_key(n))
        })
        .await;
    }
    DeleteTopicsResponse::default().with_responses(results)
}

pub(super) async fn create_partitions(
    b: &Broker,
    r: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::new();
    for t in r.topics {
        let name = t.name.0.to_string();
        let res = b
            .cluster
            .create_partitions(&name, t.count, r.validate_only)
            .await;
        let mut tr =
            create_partitions_response::CreatePartitionsTopicResult::default().with_name(t.name);
        if let Err(e) = res {
            (tr.error_code, tr.error_message) = admin_failure(&e, true);
        } else if !r.validate_only {
            let count = t.count;
            wait_for(b, Duration::from_secs(5), |v| {
                v.topics
                    .get(&name)
                    .is_some_and(|t| t.partitions.len() as i32 >= count)
            })
            .await;
        }
        results.push(tr);
    }
    CreatePartitionsResponse::default().with_results(results)
}
