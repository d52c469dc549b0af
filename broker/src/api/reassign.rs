//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455):
//! the controller records targets; the list comes from the cache.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::*;

use super::common::*;
use crate::broker::Broker;
use crate::cluster::AdminError;
use crate::wire::error as err;

/// AlterPartitionReassignments (kafka-reassign-partitions, `fjord topic alter
/// --replica-assignment`): only the controller records them (NOT_CONTROLLER
/// elsewhere, as Kafka answers); the controller's duties carry them out.
pub(super) async fn alter_reassignments(
    b: &Arc<Broker>,
    r: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    use alter_partition_reassignments_response::{
        ReassignablePartitionResponse, ReassignableTopicResponse,
    };
    let mut out = Vec::new();
    for t in r.topics {
        let changes: Vec<(i32, Option<Vec<i32>>)> = t
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
                )
            })
            .collect();
        let results = match b.cluster.reassign(&t.name.0, &changes).await {
            Ok(r) => r,
            Err(AdminError::NotController) => {
                return AlterPartitionReassignmentsResponse::default()
                    .with_error_code(err::NOT_CONTROLLER)
                    .with_error_message(Some(s("not the controller")));
            }
            Err(e @ AdminError::NeedsCoordinator) => {
                return AlterPartitionReassignmentsResponse::default()
                    .with_error_code(err::admin_error(&e))
                    .with_error_message(Some(s(&e.to_string())));
            }
            Err(e) => changes
                .iter()
                .map(|(p, _)| (*p, err::admin_error(&e), Some(e.to_string())))
                .collect(),
        };
        out.push(
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(
                    results
                        .into_iter()
                        .map(|(p, code, msg)| {
                            ReassignablePartitionResponse::default()
                                .with_partition_index(p)
                                .with_error_code(code)
                                .with_error_message(msg.map(|m| s(&m)))
                        })
                        .collect(),
                ),
        );
    }
    AlterPartitionReassignmentsResponse::default().with_responses(out)
}

/// ListPartitionReassignments: the reassignments in progress, from the cache.
pub(super) fn list_reassignments(
    b: &Arc<Broker>,
    r: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    use list_partition_reassignments_response::{
        OngoingPartitionReassignment, OngoingTopicReassignment,
    };
    let view = b.cache.view();
    let wanted: Option<HashMap<String, Vec<i32>>> = r.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    let mut names: Vec<&String> = view.topics.keys().collect();
    names.sort();
    for name in names {
        let Some(t) = view.topics.get(name) else {
            continue;
        };
        let only = wanted.as_ref().map(|w| w.get(name));
        if only == Some(None) {
            continue;
        }
        let parts: Vec<OngoingPartitionReassignment> = t
            .partitions
            .iter()
            .filter(|p| !p.adding.is_empty() || !p.removing.is_empty())
            .filter(|p| only.flatten().is_none_or(|ix| ix.contains(&p.index)))
            .map(|p| {
                let ids = |v: &[i32]| v.iter().map(|b| (*b).into()).collect();
                OngoingPartitionReassignment::default()
                    .with_partition_index(p.index)
                    .with_replicas(ids(&p.replicas))
                    .with_adding_replicas(ids(&p.adding))
                    .with_removing_replicas(ids(&p.removing))
            })
            .collect();
        if !parts.is_empty() {
            topics.push(
                OngoingTopicReassignment::default()
                    .with_name(s(&t.name).into())
                    .with_partitions(parts),
            );
        }
    }
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}
