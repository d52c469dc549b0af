//! The transaction APIs (KIP-98): AddPartitionsToTxn, AddOffsetsToTxn,
//! EndTxn and DescribeTransactions / ListTransactions on the transaction
//! coordinator, TxnOffsetCommit on the group coordinator, and the
//! transactional half of InitProducerId. Request shapes per version here;
//! the state machine is `txn::TxnCoordinator`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::messages::*;

use super::common::s;
use crate::broker::Broker;
use crate::group::offsets::Committed;
use crate::txn::codes;
use crate::txn::state::TxnState;
use crate::wire::clock::now_ms;
use crate::wire::error as err;

/// InitProducerId with a transactional id (KIP-98; KIP-360 when the request
/// names its current producer id and epoch, v3+).
pub(super) async fn init_transactional(
    b: &Arc<Broker>,
    r: &InitProducerIdRequest,
    id: &str,
    version: i16,
) -> InitProducerIdResponse {
    let expected = match (version >= 3, r.producer_id.0, r.producer_epoch) {
        (false, _, _) | (true, -1, -1) => Ok(None),
        (true, -1, _) | (true, _, -1) => Err(codes::INVALID_REQUEST),
        (true, p, e) => Ok(Some((p, e))),
    };
    let (code, pid, epoch) = match expected {
        Err(c) => (c, -1, -1),
        Ok(exp) => {
            b.txns
                .init_producer_id(id, r.transaction_timeout_ms, exp, version)
                .await
        }
    };
    InitProducerIdResponse::default()
        .with_error_code(code)
        .with_producer_id(pid.into())
        .with_producer_epoch(epoch)
}

pub(super) async fn add_partitions(
    b: &Arc<Broker>,
    r: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let view = b.cache.view();
    let mut parts: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    let mut unknown = false;
    let known = |t: &str, p: i32| {
        view.topics
            .get(t)
            .is_some_and(|m| !m.deleting && m.partitions.iter().any(|x| x.index == p))
    };
    let mut per: Vec<(String, Vec<(i32, bool)>)> = Vec::new();
    for t in &r.v3_and_below_topics {
        let name = t.name.0.to_string();
        let mut row = Vec::new();
        for p in &t.partitions {
            let ok = known(&name, *p);
            unknown |= !ok;
            if ok {
                parts.entry(name.clone()).or_default().insert(*p);
            }
            row.push((*p, ok));
        }
        per.push((name, row));
    }
    let code = if unknown {
        None
    } else {
        Some(
            b.txns
                .add(
                    r.v3_and_below_transactional_id.as_str(),
                    r.v3_and_below_producer_id.0,
                    r.v3_and_below_producer_epoch,
                    &parts,
                    None,
                    version,
                )
                .await,
        )
    };
    let results = per
        .into_iter()
        .map(|(t, row)| {
            add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(s(&t)))
                .with_results_by_partition(
                    row.into_iter()
                        .map(|(p, ok)| {
                            let c = match code {
                                Some(c) => c,
                                None if ok => codes::OPERATION_NOT_ATTEMPTED,
                                None => codes::UNKNOWN_TOPIC_OR_PARTITION,
                            };
                            add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(c)
                        })
                        .collect(),
                )
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

pub(super) async fn add_offsets(
    b: &Arc<Broker>,
    r: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let code = if r.group_id.is_empty() {
        err::INVALID_GROUP_ID
    } else {
        b.txns
            .add(
                r.transactional_id.as_str(),
                r.producer_id.0,
                r.producer_epoch,
                &BTreeMap::new(),
                Some(r.group_id.as_str()),
                version,
            )
            .await
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

pub(super) async fn end_txn(b: &Arc<Broker>, r: EndTxnRequest, version: i16) -> EndTxnResponse {
    let code = b
        .txns
        .end(
            r.transactional_id.as_str(),
            r.producer_id.0,
            r.producer_epoch,
            r.committed,
            version,
        )
        .await;
    EndTxnResponse::default().with_error_code(code)
}

/// TxnOffsetCommit on the group coordinator: Kafka's group checks
/// (doTxnCommitOffsets), then the offsets stored as pending in the
/// transaction; they become committed offsets when it commits.
pub(super) async fn txn_offset_commit(
    b: &Arc<Broker>,
    r: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let group = r.group_id.0.to_string();
    let g = &b.groups;
    let mut code = g.coordinator_check(&group);
    let (member, inst, generation) = if version >= 3 {
        (
            r.member_id.to_string(),
            r.group_instance_id.as_ref().map(|x| x.to_string()),
            r.generation_id,
        )
    } else {
        (String::new(), None, -1)
    };
    if code == err::NONE {
        code = match g.get(&group) {
            Some(h) => {
                let grp = h.g.lock();
                if grp.state == crate::group::state::State::Dead {
                    err::COORDINATOR_NOT_AVAILABLE
                } else if grp.is_fenced(&member, inst.as_deref()) {
                    err::FENCED_INSTANCE_ID
                } else if !member.is_empty() && !grp.has(&member) {
                    err::UNKNOWN_MEMBER_ID
                } else if generation >= 0 && generation != grp.generation {
                    err::ILLEGAL_GENERATION
                } else {
                    err::NONE
                }
            }
            None if !member.is_empty() => err::UNKNOWN_MEMBER_ID,
            None if generation >= 0 => err::ILLEGAL_GENERATION,
            None => err::NONE,
        };
    }
    let view = b.cache.view();
    let now = now_ms();
    let mut offsets: BTreeMap<String, BTreeMap<i32, Committed>> = BTreeMap::new();
    let mut codes_by: Vec<(TopicName, Vec<(i32, i16)>)> = Vec::new();
    for t in &r.topics {
        let tn = t.name.0.to_string();
        let meta = view.topics.get(&tn);
        let mut row = Vec::new();
        for p in &t.partitions {
            let c = if code != err::NONE {
                code
            } else if !meta.is_some_and(|m| {
                !m.deleting && m.partitions.iter().any(|x| x.index == p.partition_index)
            }) {
                err::UNKNOWN_TOPIC_OR_PARTITION
            } else if p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > g.metadata_max)
            {
                err::OFFSET_METADATA_TOO_LARGE
            } else {
                offsets.entry(tn.clone()).or_default().insert(
                    p.partition_index,
                    Committed {
                        offset: p.committed_offset,
                        leader_epoch: if version >= 2 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: p
                            .committed_metadata
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_default(),
                        timestamp: now,
                    },
                );
                err::NONE
            };
            row.push((p.partition_index, c));
        }
        codes_by.push((t.name.clone(), row));
    }
    if !offsets.is_empty() {
        let c = b
            .txns
            .txn_offset_commit(
                r.transactional_id.as_str(),
                &group,
                r.producer_id.0,
                r.producer_epoch,
                offsets,
                version,
            )
            .await;
        if c != err::NONE {
            for (_, row) in codes_by.iter_mut() {
                for (_, pc) in row.iter_mut() {
                    if *pc == err::NONE {
                        *pc = c;
                    }
                }
            }
        }
    }
    let topics = codes_by
        .into_iter()
        .map(|(name, row)| {
            txn_offset_commit_response::TxnOffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(
                    row.into_iter()
                        .map(|(p, c)| {
                            txn_offset_commit_response::TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(c)
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

fn topic_data(
    parts: &BTreeMap<String, BTreeSet<i32>>,
) -> Vec<describe_transactions_response::TopicData> {
    parts
        .iter()
        .map(|(t, ps)| {
            describe_transactions_response::TopicData::default()
                .with_topic(TopicName(s(t)))
                .with_partitions(ps.iter().copied().collect())
        })
        .collect()
}

pub(super) async fn describe_transactions(
    b: &Arc<Broker>,
    r: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut states = Vec::with_capacity(r.transactional_ids.len());
    for id in r.transactional_ids {
        let st = describe_transactions_response::TransactionState::default()
            .with_transactional_id(id.clone())
            .with_transaction_state(s(""))
            .with_producer_id((-1).into())
            .with_producer_epoch(-1)
            .with_transaction_start_time_ms(-1);
        let st = match b.txns.describe(id.as_str()).await {
            Ok(d) => {
                let m = d.meta;
                st.with_transaction_state(s(m.state.name()))
                    .with_transaction_timeout_ms(m.timeout_ms)
                    .with_transaction_start_time_ms(
                        if m.state == TxnState::Ongoing || m.state.is_prepare() {
                            m.start_ms
                        } else {
                            -1
                        },
                    )
                    .with_producer_id(m.producer_id.into())
                    .with_producer_epoch(m.producer_epoch)
                    .with_topics(topic_data(&m.partitions))
            }
            Err(c) => st.with_error_code(c),
        };
        states.push(st);
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

pub(super) async fn list_transactions(
    b: &Arc<Broker>,
    r: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    let mut unknown = Vec::new();
    let mut wanted = BTreeSet::new();
    for f in &r.state_filters {
        match TxnState::parse(f.as_str()) {
            Some(st) => {
                wanted.insert(st.name());
            }
            None => unknown.push(f.clone()),
        }
    }
    let pids: BTreeSet<i64> = r.producer_id_filters.iter().map(|p| p.0).collect();
    let min_duration = if version >= 1 { r.duration_filter } else { -1 };
    let now = now_ms();
    let (code, list) = match b.txns.list().await {
        Ok(l) => (err::NONE, l),
        Err(c) => (c, Vec::new()),
    };
    let states = list
        .into_iter()
        .filter(|d| r.state_filters.is_empty() || wanted.contains(&d.meta.state.name()))
        .filter(|d| pids.is_empty() || pids.contains(&d.meta.producer_id))
        .filter(|d| {
            min_duration < 0
                || (d.meta.start_ms >= 0
                    && d.meta.state == TxnState::Ongoing
                    && now - d.meta.start_ms >= min_duration)
        })
        .map(|d| {
            list_transactions_response::TransactionState::default()
                .with_transactional_id(TransactionalId(s(&d.id)))
                .with_producer_id(d.meta.producer_id.into())
                .with_transaction_state(s(d.meta.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_error_code(code)
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}

/// What OffsetFetch's `require_stable` found for each group asked: the
/// partitions a running transaction holds an offset for (None: unknown, so
/// all of them).
pub(super) type Unstable = BTreeMap<String, Option<BTreeSet<(String, i32)>>>;

/// OffsetFetch's `require_stable` (v7+), before the answer is built: for
/// every group asked, the partitions with pending transactional offsets,
/// read from the coordinator (the TxnOffsetCommit may have gone to a broker
/// that coordinated the group before), then the group's offsets re-read so
/// that every other partition answers its committed offset.
pub(super) async fn unstable_offsets(
    b: &Arc<Broker>,
    r: &OffsetFetchRequest,
    version: i16,
) -> Unstable {
    // (group, the partitions asked for: None for all of them)
    type Asked = Vec<(String, Option<Vec<(String, i32)>>)>;
    let asked: Asked = if version >= 8 {
        r.groups
            .iter()
            .map(|g| {
                let parts = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
                        .collect()
                });
                (g.group_id.to_string(), parts)
            })
            .collect()
    } else {
        let parts = r.topics.as_ref().map(|ts| {
            ts.iter()
                .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
                .collect()
        });
        vec![(r.group_id.to_string(), parts)]
    };
    let mut out = Unstable::new();
    for (group, parts) in asked {
        let pending = b.txns.unstable(&group).await;
        if let Err(e) = b.groups.offsets.refresh(&group, parts.as_deref()).await {
            tracing::warn!(group, error = %e, "cannot re-read committed offsets");
            out.insert(group, None);
            continue;
        }
        out.insert(group, pending);
    }
    out
}

/// Marks the partitions `unstable` names UNSTABLE_OFFSET_COMMIT (and no
/// offset), so the client retries until the transaction ends. `group`: the
/// v7 request's group (v8 names its own).
pub(super) fn mark_unstable(resp: &mut OffsetFetchResponse, group: &str, unstable: &Unstable) {
    let hit = |g: &str, t: &str, p: i32| match unstable.get(g) {
        Some(Some(set)) => set.contains(&(t.to_string(), p)),
        Some(None) => true,
        None => false,
    };
    for t in resp.topics.iter_mut() {
        for p in t.partitions.iter_mut() {
            if p.error_code == err::NONE && hit(group, t.name.as_str(), p.partition_index) {
                p.error_code = codes::UNSTABLE_OFFSET_COMMIT;
                p.committed_offset = -1;
            }
        }
    }
    for g in resp.groups.iter_mut() {
        for t in g.topics.iter_mut() {
            for p in t.partitions.iter_mut() {
                if p.error_code == err::NONE
                    && hit(g.group_id.as_str(), t.name.as_str(), p.partition_index)
                {
                    p.error_code = codes::UNSTABLE_OFFSET_COMMIT;
                    p.committed_offset = -1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let mut buf = bytes::BytesMut::new();
        for v in 0..=3 {
            AddPartitionsToTxnResponse::default()
                .encode(&mut buf, v)
                .unwrap();
            AddOffsetsToTxnResponse::default()
                .encode(&mut buf, v)
                .unwrap();
            EndTxnResponse::default().encode(&mut buf, v).unwrap();
            TxnOffsetCommitResponse::default()
                .encode(&mut buf, v)
                .unwrap();
        }
        DescribeTransactionsResponse::default()
            .encode(&mut buf, 0)
            .unwrap();
        for v in 0..=1 {
            ListTransactionsResponse::default()
                .encode(&mut buf, v)
                .unwrap();
        }
        let _ = codes::NONE;
    }
}
