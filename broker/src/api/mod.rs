//! The Kafka APIs the broker serves, one file per API group, and the one
//! dispatch `match` that routes a decoded request to its handler. Find an
//! API's code by its file name:
//!
//! | file | APIs |
//! |---|---|
//! | `api_versions.rs` | ApiVersions |
//! | `produce.rs` | Produce |
//! | `fetch.rs` | Fetch (consumers and follower replicas) |
//! | `metadata.rs` | Metadata, DescribeCluster |
//! | `offsets.rs` | ListOffsets, OffsetForLeaderEpoch |
//! | `topics.rs` | CreateTopics, DeleteTopics, CreatePartitions |
//! | `configs.rs` | DescribeConfigs, AlterConfigs, IncrementalAlterConfigs |
//! | `producer_id.rs` | InitProducerId |
//! | `reassign.rs` | AlterPartitionReassignments, ListPartitionReassignments |
//! | `groups.rs` | FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete, OffsetCommit, OffsetFetch |
//!
//! Each handler takes a decoded request and returns a response body built
//! from `Default::default()` with only version-valid fields set. Shared
//! helpers are in `common`; handlers never reference this file.

mod api_versions;
pub mod common;
mod configs;
mod fetch;
mod groups;
mod metadata;
mod offsets;
mod produce;
mod producer_id;
mod reassign;
#[cfg(test)]
mod tests;
mod topics;

use std::sync::Arc;

use kafka_protocol::messages::*;

pub use common::Pending;

use crate::broker::Broker;
use crate::wire::codec::Request;

/// Dispatch one request. Runs in read order; the returned future may wait.
pub fn dispatch(b: &Arc<Broker>, req: Request) -> Pending {
    let v = req.version;
    match req.body {
        RequestKind::ApiVersions(_) => {
            let r = api_versions::api_versions();
            Box::pin(async move { Some(ResponseKind::ApiVersions(r)) })
        }
        RequestKind::Produce(r) => produce::produce_submit(b, r, v),
        RequestKind::Fetch(r) => {
            let b = b.clone();
            Box::pin(async move { Some(ResponseKind::Fetch(fetch::fetch(&b, r, v).await)) })
        }
        RequestKind::Metadata(r) => {
            let b = b.clone();
            Box::pin(
                async move { Some(ResponseKind::Metadata(metadata::metadata(&b, r, v).await)) },
            )
        }
        RequestKind::ListOffsets(r) => {
            let b = b.clone();
            Box::pin(
                async move { Some(ResponseKind::ListOffsets(offsets::list_offsets(&b, r, v))) },
            )
        }
        RequestKind::CreateTopics(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::CreateTopics(
                    topics::create_topics(&b, r, v).await,
                ))
            })
        }
        RequestKind::DeleteTopics(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::DeleteTopics(
                    topics::delete_topics(&b, r, v).await,
                ))
            })
        }
        RequestKind::InitProducerId(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::InitProducerId(producer_id::init_producer_id(
                    &b, r,
                )))
            })
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::OffsetForLeaderEpoch(
                    offsets::offset_for_leader_epoch(&b, r),
                ))
            })
        }
        RequestKind::DescribeConfigs(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::DescribeConfigs(configs::describe_configs(
                    &b, r, v,
                )))
            })
        }
        RequestKind::AlterConfigs(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::AlterConfigs(
                    configs::alter_configs(&b, r).await,
                ))
            })
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::IncrementalAlterConfigs(
                    configs::incremental_alter_configs(&b, r).await,
                ))
            })
        }
        RequestKind::CreatePartitions(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::CreatePartitions(
                    topics::create_partitions(&b, r).await,
                ))
            })
        }
        RequestKind::AlterPartitionReassignments(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::AlterPartitionReassignments(
                    reassign::alter_reassignments(&b, r).await,
                ))
            })
        }
        RequestKind::ListPartitionReassignments(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::ListPartitionReassignments(
                    reassign::list_reassignments(&b, r),
                ))
            })
        }
        RequestKind::DescribeCluster(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::DescribeCluster(metadata::describe_cluster(
                    &b, r, v,
                )))
            })
        }
        body if groups::handles(&body) => groups::dispatch(b, body, v, &req.header, req.peer),
        _ => Box::pin(async { None }),
    }
}
