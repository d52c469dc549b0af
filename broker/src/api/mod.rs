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
//! | `log_dirs.rs` | DescribeLogDirs |
//! | `producer_id.rs` | InitProducerId |
//! | `reassign.rs` | AlterPartitionReassignments, ListPartitionReassignments |
//! | `transactions.rs` | AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit, DescribeTransactions, ListTransactions (InitProducerId with a transactional id) |
//! | `txn_markers.rs` | WriteTxnMarkers (the partition side of ending a transaction) |
//! | `scram_users.rs` | DescribeUserScramCredentials, AlterUserScramCredentials |
//! | `acls.rs` | CreateAcls, DescribeAcls, DeleteAcls |
//! | `groups.rs` | FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete, OffsetCommit, OffsetFetch |
//!
//! Before any handler runs, `authz` checks the request against the
//! authorizer (when one is configured): one call site, here in `dispatch`.
//!
//! Each handler takes a decoded request and returns a response body built
//! from `Default::default()` with only version-valid fields set. Shared
//! helpers are in `common`; handlers never reference this file.

mod acls;
mod api_versions;
mod authz;
pub mod common;
mod configs;
mod fetch;
mod groups;
mod log_dirs;
mod metadata;
mod offsets;
mod produce;
mod producer_id;
mod reassign;
mod scram_users;
#[cfg(test)]
mod tests;
mod topics;
mod transactions;
mod txn_markers;

use std::sync::Arc;

use kafka_protocol::messages::*;

use common::Ctx;
pub use common::Pending;

use crate::broker::Broker;
use crate::wire::codec::Request;

/// A `Pending` that, when first polled, runs `$call` with `$b` a clone of
/// the broker handle and answers `ResponseKind::$kind` of its result.
macro_rules! later {
    ($broker:expr, $kind:ident, |$b:ident| $call:expr) => {{
        let $b = $broker.clone();
        Box::pin(async move { Some(ResponseKind::$kind($call)) })
    }};
}

/// Dispatch one request: authorize it (`authz`), serve what may be
/// served, and let the authorizer's fix complete the answer. Runs in read
/// order; the returned future may wait.
pub fn dispatch(b: &Arc<Broker>, req: Request) -> Pending {
    match authz::check(b, req) {
        authz::Checked::Answer(r) => Box::pin(async move { r }),
        authz::Checked::Go(req, None) => route(b, req),
        authz::Checked::Go(req, Some(fix)) => {
            let served = route(b, req);
            Box::pin(async move { served.await.map(fix) })
        }
    }
}

/// The handler of each API.
fn route(b: &Arc<Broker>, req: Request) -> Pending {
    let v = req.version;
    match req.body {
        RequestKind::ApiVersions(_) => {
            let r = api_versions::api_versions();
            Box::pin(async move { Some(ResponseKind::ApiVersions(r)) })
        }
        RequestKind::Produce(r) => produce::produce_submit(b, r, v),
        RequestKind::Fetch(r) => later!(b, Fetch, |b| fetch::fetch(&b, r, v).await),
        RequestKind::Metadata(r) => {
            let l = req.listener.clone();
            later!(b, Metadata, |b| metadata::metadata(
                Ctx { b: &b, version: v },
                r,
                &l
            )
            .await)
        }
        RequestKind::ListOffsets(r) => later!(b, ListOffsets, |b| offsets::list_offsets(
            Ctx { b: &b, version: v },
            r
        )),
        RequestKind::CreateTopics(r) => {
            later!(b, CreateTopics, |b| topics::create_topics(&b, r, v).await)
        }
        RequestKind::DeleteTopics(r) => {
            later!(b, DeleteTopics, |b| topics::delete_topics(&b, r, v).await)
        }
        RequestKind::InitProducerId(r) => {
            later!(b, InitProducerId, |b| producer_id::init_producer_id(
                &b, r, v
            )
            .await)
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            later!(b, OffsetForLeaderEpoch, |b| {
                offsets::offset_for_leader_epoch(Ctx { b: &b, version: v }, r)
            })
        }
        RequestKind::DescribeConfigs(r) => {
            later!(b, DescribeConfigs, |b| configs::describe_configs(
                Ctx { b: &b, version: v },
                r
            ))
        }
        RequestKind::DescribeLogDirs(r) => later!(b, DescribeLogDirs, |b| {
            log_dirs::describe_log_dirs(Ctx { b: &b, version: v }, r)
        }),
        RequestKind::AlterConfigs(r) => {
            later!(b, AlterConfigs, |b| configs::alter_configs(&b, r).await)
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            later!(b, IncrementalAlterConfigs, |b| {
                configs::incremental_alter_configs(&b, r).await
            })
        }
        RequestKind::CreatePartitions(r) => {
            later!(b, CreatePartitions, |b| topics::create_partitions(&b, r)
                .await)
        }
        RequestKind::AlterPartitionReassignments(r) => {
            later!(b, AlterPartitionReassignments, |b| {
                reassign::alter_reassignments(&b, r).await
            })
        }
        RequestKind::ListPartitionReassignments(r) => {
            later!(b, ListPartitionReassignments, |b| {
                reassign::list_reassignments(&b, r)
            })
        }
        RequestKind::DescribeCluster(r) => {
            let l = req.listener.clone();
            later!(b, DescribeCluster, |b| metadata::describe_cluster(
                Ctx { b: &b, version: v },
                r,
                &l
            ))
        }
        RequestKind::FindCoordinator(r) => {
            let resp = groups::find_coordinator(Ctx { b, version: v }, r, &req.listener);
            Box::pin(async move { Some(ResponseKind::FindCoordinator(resp)) })
        }
        RequestKind::DescribeUserScramCredentials(r) => {
            later!(b, DescribeUserScramCredentials, |b| {
                scram_users::describe(&b, r).await
            })
        }
        RequestKind::AlterUserScramCredentials(r) => {
            later!(b, AlterUserScramCredentials, |b| {
                scram_users::alter(&b, r).await
            })
        }
        RequestKind::CreateAcls(r) => later!(b, CreateAcls, |b| acls::create_acls(&b, r).await),
        RequestKind::DescribeAcls(r) => later!(b, DescribeAcls, |b| acls::describe_acls(&b, r)),
        RequestKind::DeleteAcls(r) => later!(b, DeleteAcls, |b| acls::delete_acls(&b, r).await),
        // Authentication happens in the connection (server + security)
        // before dispatch; a handshake after it is Kafka's ILLEGAL_SASL_STATE.
        RequestKind::SaslHandshake(_) => Box::pin(async {
            Some(ResponseKind::SaslHandshake(
                SaslHandshakeResponse::default()
                    .with_error_code(crate::wire::error::ILLEGAL_SASL_STATE),
            ))
        }),
        RequestKind::SaslAuthenticate(_) => Box::pin(async {
            Some(ResponseKind::SaslAuthenticate(
                SaslAuthenticateResponse::default()
                    .with_error_code(crate::wire::error::ILLEGAL_SASL_STATE)
                    .with_error_message(Some(common::s("already authenticated"))),
            ))
        }),
        RequestKind::AddPartitionsToTxn(r) => {
            later!(b, AddPartitionsToTxn, |b| transactions::add_partitions(
                &b, r, v
            )
            .await)
        }
        RequestKind::AddOffsetsToTxn(r) => {
            later!(b, AddOffsetsToTxn, |b| transactions::add_offsets(&b, r, v)
                .await)
        }
        RequestKind::EndTxn(r) => later!(b, EndTxn, |b| transactions::end_txn(&b, r, v).await),
        RequestKind::TxnOffsetCommit(r) => {
            later!(b, TxnOffsetCommit, |b| transactions::txn_offset_commit(
                &b, r, v
            )
            .await)
        }
        RequestKind::DescribeTransactions(r) => {
            later!(b, DescribeTransactions, |b| {
                transactions::describe_transactions(&b, r).await
            })
        }
        RequestKind::ListTransactions(r) => {
            later!(b, ListTransactions, |b| transactions::list_transactions(
                &b, r, v
            )
            .await)
        }
        RequestKind::WriteTxnMarkers(r) => {
            later!(b, WriteTxnMarkers, |b| txn_markers::write_txn_markers(
                &b, r
            )
            .await)
        }
        body if groups::handles(&body) => groups::dispatch(b, body, v, &req.header, req.peer),
        _ => Box::pin(async { None }),
    }
}
