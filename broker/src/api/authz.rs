//! Authorizing requests as Kafka's KafkaApis does, in one place, before the
//! handlers run (they stay unaware of ACLs). For each API: what it needs
//! (WRITE on a topic to produce, READ on the group to join, ...), and what
//! a refusal answers (Kafka's error codes). A request is either answered at
//! once (a whole-request refusal), or served trimmed to what the caller may
//! touch, with a `Fix` that adds the refused items to the handler's answer
//! (or hides what the caller may not see: Metadata, ListGroups, OffsetFetch).
//! With no authorizer configured every request passes untouched.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::fetch_response::FetchableTopicResponse;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::acl::model::CLUSTER_NAME;
use crate::acl::{Acls, Caller, Operation as Op, ResourceType as Rt};
use crate::broker::Broker;
use crate::wire::codec::Request;
use crate::wire::error as err;

/// Adds refused items to (or hides unauthorized ones from) an answer.
pub(super) type Fix = Box<dyn FnOnce(ResponseKind) -> ResponseKind + Send>;

pub(super) enum Checked {
    /// Serve this request; apply the fix (if any) to its answer.
    Go(Request, Option<Fix>),
    /// Answer this without serving (None: send nothing, acks=0).
    Answer(Option<ResponseKind>),
}

/// One request's caller against the authorizer.
struct Guard {
    acls: Arc<Acls>,
    who: Caller,
}

impl Guard {
    fn ok(&self, op: Op, t: Rt, name: &str) -> bool {
        self.acls.authorizer.authorize(&self.who, op, t, name)
    }
    fn topic(&self, op: Op, name: &str) -> bool {
        self.ok(op, Rt::Topic, name)
    }
    fn group(&self, op: Op, name: &str) -> bool {
        self.ok(op, Rt::Group, name)
    }
    fn cluster(&self, op: Op) -> bool {
        self.ok(op, Rt::Cluster, CLUSTER_NAME)
    }
    fn txn(&self, op: Op, id: &str) -> bool {
        self.ok(op, Rt::TransactionalId, id)
    }
}

fn fix<F: FnOnce(ResponseKind) -> ResponseKind + Send + 'static>(f: F) -> Option<Fix> {
    Some(Box::new(f))
}

/// Split `items` into those `keep` accepts and the rest.
fn split<T>(items: &mut Vec<T>, mut keep: impl FnMut(&T) -> bool) -> Vec<T> {
    let all = std::mem::take(items);
    let (kept, refused): (Vec<T>, Vec<T>) = all.into_iter().partition(|t| keep(t));
    *items = kept;
    refused
}

/// Check one request; see the module comment.
pub(super) fn check(b: &Arc<Broker>, mut req: Request) -> Checked {
    let Some(acls) = b.acls.clone() else {
        return Checked::Go(req, None);
    };
    let host = req
        .peer
        .map(|p| p.ip().to_canonical().to_string())
        .unwrap_or_default();
    let g = Guard {
        acls,
        who: Caller {
            principal: req.principal.clone(),
            host,
        },
    };
    let v = req.version;
    let answer = |r: ResponseKind| Checked::Answer(Some(r));
    let f: Option<Fix> = match &mut req.body {
        RequestKind::ApiVersions(_)
        | RequestKind::SaslHandshake(_)
        | RequestKind::SaslAuthenticate(_)
        | RequestKind::DescribeCluster(_) => None,
        RequestKind::Produce(r) => {
            let denied_all = r
                .transactional_id
                .as_ref()
                .is_some_and(|t| !g.txn(Op::Write, t.0.as_str()));
            let refused = split(&mut r.topic_data, |t| {
                !denied_all && g.topic(Op::Write, t.name.0.as_str())
            });
            if refused.is_empty() {
                None
            } else if r.acks == 0 {
                if r.topic_data.is_empty() {
                    return Checked::Answer(None);
                }
                None
            } else {
                let code = if denied_all {
                    err::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                } else {
                    err::TOPIC_AUTHORIZATION_FAILED
                };
                fix(move |resp| match resp {
                    ResponseKind::Produce(mut p) => {
                        p.responses.extend(refused.into_iter().map(|t| {
                            TopicProduceResponse::default()
                                .with_name(t.name)
                                .with_partition_responses(
                                    t.partition_data
                                        .iter()
                                        .map(|pd| {
                                            PartitionProduceResponse::default()
                                                .with_index(pd.index)
                                                .with_error_code(code)
                                                .with_base_offset(-1)
                                                .with_log_append_time_ms(-1)
                                                .with_log_start_offset(-1)
                                        })
                                        .collect(),
                                )
                        }));
                        ResponseKind::Produce(p)
                    }
                    other => other,
                })
            }
        }
        RequestKind::Fetch(r) => {
            // A follower needs CLUSTER_ACTION; refused, every partition
            // answers TOPIC_AUTHORIZATION_FAILED (as KafkaApis does).
            let follower = r.replica_id.0 >= 0;
            let cluster_ok = follower && g.cluster(Op::ClusterAction);
            let refused = split(&mut r.topics, |t| {
                if follower {
                    cluster_ok
                } else {
                    g.topic(Op::Read, t.topic.0.as_str())
                }
            });
            (!refused.is_empty()).then(|| -> Fix {
                Box::new(move |resp| match resp {
                    ResponseKind::Fetch(mut f) => {
                        f.responses.extend(refused.into_iter().map(|t| {
                            FetchableTopicResponse::default()
                                .with_topic(t.topic)
                                .with_topic_id(t.topic_id)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            fetch_response::PartitionData::default()
                                                .with_partition_index(p.partition)
                                                .with_error_code(err::TOPIC_AUTHORIZATION_FAILED)
                                                .with_high_watermark(-1)
                                                .with_last_stable_offset(-1)
                                                .with_log_start_offset(-1)
                                                .with_records(Some(Default::default()))
                                        })
                                        .collect(),
                                )
                        }));
                        ResponseKind::Fetch(f)
                    }
                    other => other,
                })
            })
        }
        RequestKind::Metadata(r) => {
            let all =
                r.topics.is_none() || (v == 0 && r.topics.as_ref().is_some_and(Vec::is_empty));
            if all {
                let g2 = Guard {
                    acls: g.acls.clone(),
                    who: g.who.clone(),
                };
                fix(move |resp| match resp {
                    ResponseKind::Metadata(mut m) => {
                        m.topics.retain(|t| {
                            t.name
                                .as_ref()
                                .is_none_or(|n| g2.topic(Op::Describe, n.0.as_str()))
                        });
                        ResponseKind::Metadata(m)
                    }
                    other => other,
                })
            } else {
                let view = b.cache.view();
                let auto = r.allow_auto_topic_creation && b.config.auto_create_topics;
                let may_create_any = auto && g.cluster(Op::Create);
                let topics = r.topics.get_or_insert_with(Vec::new);
                let refused = split(topics, |t| {
                    let Some(n) = &t.name else { return true };
                    let n = n.0.as_str();
                    if !g.topic(Op::Describe, n) {
                        return false;
                    }
                    // Auto-creation needs CREATE on the cluster or the topic.
                    !auto || view.topics.contains_key(n) || may_create_any || g.topic(Op::Create, n)
                });
                (!refused.is_empty()).then(|| -> Fix {
                    Box::new(move |resp| match resp {
                        ResponseKind::Metadata(mut m) => {
                            m.topics.extend(refused.into_iter().map(|t| {
                                MetadataResponseTopic::default()
                                    .with_name(t.name)
                                    .with_error_code(err::TOPIC_AUTHORIZATION_FAILED)
                            }));
                            ResponseKind::Metadata(m)
                        }
                        other => other,
                    })
                })
            }
        }
        RequestKind::ListOffsets(r) => {
            let refused = split(&mut r.topics, |t| g.topic(Op::Describe, t.name.0.as_str()));
            (!refused.is_empty()).then(|| -> Fix {
                Box::new(move |resp| match resp {
                    ResponseKind::ListOffsets(mut l) => {
                        l.topics.extend(refused.into_iter().map(|t| {
                            ListOffsetsTopicResponse::default()
                                .with_name(t.name)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            ListOffsetsPartitionResponse::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(err::TOPIC_AUTHORIZATION_FAILED)
                                                .with_timestamp(-1)
                                                .with_offset(-1)
                                        })
                                        .collect(),
                                )
                        }));
                        ResponseKind::ListOffsets(l)
                    }
                    other => other,
                })
            })
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            let follower = r.replica_id.0 >= 0;
            let cluster_ok = follower && g.cluster(Op::ClusterAction);
            let code = if follower {
                err::CLUSTER_AUTHORIZATION_FAILED
            } else {
                err::TOPIC_AUTHORIZATION_FAILED
            };
            let refused = split(&mut r.topics, |t| {
                if follower {
                    cluster_ok
                } else {
                    g.topic(Op::Describe, t.topic.0.as_str())
                }
            });
            (!refused.is_empty()).then(|| -> Fix {
                Box::new(move |resp| match resp {
                    ResponseKind::OffsetForLeaderEpoch(mut o) => {
                        o.topics.extend(refused.into_iter().map(|t| {
                            OffsetForLeaderTopicResult::default()
                                .with_topic(t.topic)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            EpochEndOffset::default()
                                                .with_partition(p.partition)
                                                .with_error_code(code)
                                                .with_leader_epoch(-1)
                                                .with_end_offset(-1)
                                        })
                                        .collect(),
                                )
                        }));
                        ResponseKind::OffsetForLeaderEpoch(o)
                    }
                    other => other,
                })
            })
        }
        RequestKind::CreateTopics(r) => {
            let any = g.cluster(Op::Create);
            let refused = split(&mut r.topics, |t| {
                any || g.topic(Op::Create, t.name.0.as_str())
            });
            topic_results(refused.into_iter().map(|t| t.name).collect(), |names| {
                Box::new(move |resp| match resp {
                    ResponseKind::CreateTopics(mut c) => {
                        c.topics.extend(names.into_iter().map(|n| {
                            CreatableTopicResult::default()
                                .with_name(n)
                                .with_error_code(err::TOPIC_AUTHORIZATION_FAILED)
                                .with_num_partitions(-1)
                                .with_replication_factor(-1)
                        }));
                        ResponseKind::CreateTopics(c)
                    }
                    other => other,
                })
            })
        }
        RequestKind::DeleteTopics(r) => {
            let mut names: Vec<TopicName> =
                split(&mut r.topic_names, |n| g.topic(Op::Delete, n.0.as_str()));
            names.extend(
                split(&mut r.topics, |t| {
                    t.name
                        .as_ref()
                        .is_none_or(|n| g.topic(Op::Delete, n.0.as_str()))
                })
                .into_iter()
                .filter_map(|t| t.name),
            );
            topic_results(names, |names| {
                Box::new(move |resp| match resp {
                    ResponseKind::DeleteTopics(mut d) => {
                        d.responses.extend(names.into_iter().map(|n| {
                            DeletableTopicResult::default()
                                .with_name(Some(n))
                                .with_error_code(err::TOPIC_AUTHORIZATION_FAILED)
                        }));
                        ResponseKind::DeleteTopics(d)
                    }
                    other => other,
                })
            })
        }
        RequestKind::CreatePartitions(r) => {
            let refused = split(&mut r.topics, |t| g.topic(Op::Alter, t.name.0.as_str()));
            topic_results(refused.into_iter().map(|t| t.name).collect(), |names| {
                Box::new(move |resp| match resp {
                    ResponseKind::CreatePartitions(mut c) => {
                        c.results.extend(names.into_iter().map(|n| {
                            CreatePartitionsTopicResult::default()
                                .with_name(n)
                                .with_error_code(err::TOPIC_AUTHORIZATION_FAILED)
                        }));
                        ResponseKind::CreatePartitions(c)
                    }
                    other => other,
                })
            })
        }
        RequestKind::DescribeConfigs(r) => {
            let refused = split(&mut r.resources, |res| {
                config_ok(
                    &g,
                    Op::DescribeConfigs,
                    res.resource_type,
                    &res.resource_name,
                )
            });
            (!refused.is_empty()).then(|| -> Fix {
                Box::new(move |resp| match resp {
                    ResponseKind::DescribeConfigs(mut d) => {
                        d.results.extend(refused.into_iter().map(|res| {
                            DescribeConfigsResult::default()
                                .with_error_code(config_denial(res.resource_type))
                                .with_resource_type(res.resource_type)
                                .with_resource_name(res.resource_name)
                        }));
                        ResponseKind::DescribeConfigs(d)
                    }
                    other => other,
                })
            })
        }
        RequestKind::AlterConfigs(r) => {
            let refused = split(&mut r.resources, |res| {
                config_ok(&g, Op::AlterConfigs, res.resource_type, &res.resource_name)
            });
            (!refused.is_empty()).then(|| -> Fix {
                Box::new(move |resp| match resp {
                    ResponseKind::AlterConfigs(mut a) => {
                        a.responses.extend(refused.into_iter().map(|res| {
                            alter_configs_response::AlterConfigsResourceResponse::default()
                                .with_error_code(config_denial(res.resource_type))
                                .with_resource_type(res.resource_type)
                                .with_resource_name(res.resource_name)
                        }));
                        ResponseKind::AlterConfigs(a)
                    }
                    other => other,
                })
            })
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            let refused = split(&mut r.resources, |res| {
                config_ok(&g, Op::AlterConfigs, res.resource_type, &res.resource_name)
            });
            (!refused.is_empty()).then(|| -> Fix {
                Box::new(move |resp| match resp {
                    ResponseKind::IncrementalAlterConfigs(mut a) => {
                        a.responses.extend(refused.into_iter().map(|res| {
                            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                                .with_error_code(config_denial(res.resource_type))
                                .with_resource_type(res.resource_type)
                                .with_resource_name(res.resource_name)
                        }));
                        ResponseKind::IncrementalAlterConfigs(a)
                    }
                    other => other,
                })
            })
        }
        RequestKind::AlterPartitionReassignments(_) => {
            if !g.cluster(Op::Alter) {
                return answer(ResponseKind::AlterPartitionReassignments(
                    AlterPartitionReassignmentsResponse::default()
                        .with_error_code(err::CLUSTER_AUTHORIZATION_FAILED),
                ));
            }
            None
        }
        RequestKind::ListPartitionReassignments(_) => {
            if !g.cluster(Op::Describe) {
                return answer(ResponseKind::ListPartitionReassignments(
                    ListPartitionReassignmentsResponse::default()
                        .with_error_code(err::CLUSTER_AUTHORIZATION_FAILED),
                ));
            }
            None
        }
        RequestKind::InitProducerId(r) => {
            let code = match &r.transactional_id {
                Some(t) if !g.txn(Op::Write, t.0.as_str()) => {
                    Some(err::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
                }
                Some(_) => None,
                // Idempotence: IDEMPOTENT_WRITE on the cluster, or WRITE on
                // some topic (KIP-679).
                None if !g.cluster(Op::IdempotentWrite)
                    && !g
                        .acls
                        .authorizer
                        .authorize_by_type(&g.who, Op::Write, Rt::Topic) =>
                {
                    Some(err::CLUSTER_AUTHORIZATION_FAILED)
                }
                None => None,
            };
            if let Some(code) = code {
                return answer(ResponseKind::InitProducerId(
                    InitProducerIdResponse::default()
                        .with_error_code(code)
                        .with_producer_id((-1).into())
                        .with_producer_epoch(-1),
                ));
            }
            None
        }
        RequestKind::AddPartitionsToTxn(r) => {
            let txn_ok = g.txn(Op::Write, r.v3_and_below_transactional_id.0.as_str());
            let bad: HashSet<TopicName> = r
                .v3_and_below_topics
                .iter()
                .filter(|t| !g.topic(Op::Write, t.name.0.as_str()))
                .map(|t| t.name.clone())
                .collect();
            if !txn_ok || !bad.is_empty() {
                let results = r
                    .v3_and_below_topics
                    .iter()
                    .map(|t| {
                        let code = if !txn_ok {
                            err::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                        } else if bad.contains(&t.name) {
                            err::TOPIC_AUTHORIZATION_FAILED
                        } else {
                            err::OPERATION_NOT_ATTEMPTED
                        };
                        AddPartitionsToTxnTopicResult::default()
                            .with_name(t.name.clone())
                            .with_results_by_partition(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        AddPartitionsToTxnPartitionResult::default()
                                            .with_partition_index(*p)
                                            .with_partition_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                return answer(ResponseKind::AddPartitionsToTxn(
                    AddPartitionsToTxnResponse::default()
                        .with_results_by_topic_v3_and_below(results),
                ));
            }
            None
        }
        RequestKind::AddOffsetsToTxn(r) => {
            let code = if !g.txn(Op::Write, r.transactional_id.0.as_str()) {
                err::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            } else if !g.group(Op::Read, r.group_id.0.as_str()) {
                err::GROUP_AUTHORIZATION_FAILED
            } else {
                err::NONE
            };
            if code != err::NONE {
                return answer(ResponseKind::AddOffsetsToTxn(
                    AddOffsetsToTxnResponse::default().with_error_code(code),
                ));
            }
            None
        }
        RequestKind::EndTxn(r) => {
            if !g.txn(Op::Write, r.transactional_id.0.as_str()) {
                return answer(ResponseKind::EndTxn(
                    EndTxnResponse::default()
                        .with_error_code(err::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
                        .with_producer_id((-1).into())
                        .with_producer_epoch(-1),
                ));
            }
            None
        }
        RequestKind::TxnOffsetCommit(r) => {
            let whole = if !g.txn(Op::Write, r.transactional_id.0.as_str()) {
                Some(err::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
            } else if !g.group(Op::Read, r.group_id.0.as_str()) {
                Some(err::GROUP_AUTHORIZATION_FAILED)
            } else {
                None
            };
            let refused = split(&mut r.topics, |t| {
                whole.is_none() && g.topic(Op::Read, t.name.0.as_str())
            });
            let code = whole.unwrap_or(err::TOPIC_AUTHORIZATION_FAILED);
            let results: Vec<TxnOffsetCommitResponseTopic> = refused
                .into_iter()
                .map(|t| {
                    TxnOffsetCommitResponseTopic::default()
                        .with_name(t.name)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    TxnOffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect();
            if whole.is_some() {
                return answer(ResponseKind::TxnOffsetCommit(
                    TxnOffsetCommitResponse::default().with_topics(results),
                ));
            }
            (!results.is_empty()).then(|| -> Fix {
                Box::new(move |resp| match resp {
                    ResponseKind::TxnOffsetCommit(mut t) => {
                        t.topics.extend(results);
                        ResponseKind::TxnOffsetCommit(t)
                    }
                    other => other,
                })
            })
        }
        RequestKind::DescribeTransactions(r) => {
            let refused = split(&mut r.transactional_ids, |id| {
                g.txn(Op::Describe, id.0.as_str())
            });
            (!refused.is_empty()).then(|| -> Fix {
                Box::new(move |resp| match resp {
                    ResponseKind::DescribeTransactions(mut d) => {
                        d.transaction_states.extend(refused.into_iter().map(|id| {
                            describe_transactions_response::TransactionState::default()
                                .with_transactional_id(id)
                                .with_error_code(err::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
                        }));
                        ResponseKind::DescribeTransactions(d)
                    }
                    other => other,
                })
            })
        }
        RequestKind::ListTransactions(_) => {
            let g2 = Guard {
                acls: g.acls.clone(),
                who: g.who.clone(),
            };
            fix(move |resp| match resp {
                ResponseKind::ListTransactions(mut l) => {
                    l.transaction_states
                        .retain(|t| g2.txn(Op::Describe, t.transactional_id.0.as_str()));
                    ResponseKind::ListTransactions(l)
                }
                other => other,
            })
        }
        RequestKind::WriteTxnMarkers(r) => {
            if !g.cluster(Op::ClusterAction) {
                let markers = r
                    .markers
                    .iter()
                    .map(|m| {
                        WritableTxnMarkerResult::default()
                            .with_producer_id(m.producer_id)
                            .with_topics(
                                m.topics
                                    .iter()
                                    .map(|t| {
                                        WritableTxnMarkerTopicResult::default()
                                            .with_name(t.name.clone())
                                            .with_partitions(
                                                t.partition_indexes
                                                    .iter()
                                                    .map(|p| {
                                                        WritableTxnMarkerPartitionResult::default()
                                                            .with_partition_index(*p)
                                                            .with_error_code(
                                                                err::CLUSTER_AUTHORIZATION_FAILED,
                                                            )
                                                    })
                                                    .collect(),
                                            )
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                return answer(ResponseKind::WriteTxnMarkers(
                    WriteTxnMarkersResponse::default().with_markers(markers),
                ));
            }
            None
        }
        RequestKind::DescribeUserScramCredentials(_) => {
            if !g.cluster(Op::Describe) {
                return answer(ResponseKind::DescribeUserScramCredentials(
                    DescribeUserScramCredentialsResponse::default()
                        .with_error_code(err::CLUSTER_AUTHORIZATION_FAILED),
                ));
            }
            None
        }
        RequestKind::AlterUserScramCredentials(r) => {
            if !g.cluster(Op::Alter) {
                let users: Vec<StrBytes> = r
                    .deletions
                    .iter()
                    .map(|d| d.name.clone())
                    .chain(r.upsertions.iter().map(|u| u.name.clone()))
                    .collect();
                return answer(ResponseKind::AlterUserScramCredentials(
                    AlterUserScramCredentialsResponse::default().with_results(
                        users
                            .into_iter()
                            .map(|u| {
                                AlterUserScramCredentialsResult::default()
                                    .with_user(u)
                                    .with_error_code(err::CLUSTER_AUTHORIZATION_FAILED)
                            })
                            .collect(),
                    ),
                ));
            }
            None
        }
        RequestKind::DescribeLogDirs(_) => {
            if !g.cluster(Op::Describe) {
                // As Kafka: no directories, and from v3 the error itself.
                let mut d = DescribeLogDirsResponse::default();
                if v >= 3 {
                    d.error_code = err::CLUSTER_AUTHORIZATION_FAILED;
                }
                return answer(ResponseKind::DescribeLogDirs(d));
            }
            None
        }
        RequestKind::DescribeAcls(_) => {
            if !g.cluster(Op::Describe) {
                return answer(ResponseKind::DescribeAcls(
                    DescribeAclsResponse::default()
                        .with_error_code(err::CLUSTER_AUTHORIZATION_FAILED)
                        .with_error_message(Some(StrBytes::from_static_str(
                            "Cluster authorization failed.",
                        ))),
                ));
            }
            None
        }
        RequestKind::CreateAcls(r) => {
            if !g.cluster(Op::Alter) {
                let n = r.creations.len();
                return answer(ResponseKind::CreateAcls(
                    CreateAclsResponse::default().with_results(
                        (0..n)
                            .map(|_| {
                                AclCreationResult::default()
                                    .with_error_code(err::CLUSTER_AUTHORIZATION_FAILED)
                            })
                            .collect(),
                    ),
                ));
            }
            None
        }
        RequestKind::DeleteAcls(r) => {
            if !g.cluster(Op::Alter) {
                let n = r.filters.len();
                return answer(ResponseKind::DeleteAcls(
                    DeleteAclsResponse::default().with_filter_results(
                        (0..n)
                            .map(|_| {
                                DeleteAclsFilterResult::default()
                                    .with_error_code(err::CLUSTER_AUTHORIZATION_FAILED)
                            })
                            .collect(),
                    ),
                ));
            }
            None
        }
        // ---- consumer groups
        RequestKind::FindCoordinator(r) => {
            let (op_t, code) = match r.key_type {
                1 => (
                    Rt::TransactionalId,
                    err::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                ),
                _ => (Rt::Group, err::GROUP_AUTHORIZATION_FAILED),
            };
            if v >= 4 {
                let refused = split(&mut r.coordinator_keys, |k| {
                    g.ok(Op::Describe, op_t, k.as_str())
                });
                (!refused.is_empty()).then(|| -> Fix {
                    Box::new(move |resp| match resp {
                        ResponseKind::FindCoordinator(mut f) => {
                            f.coordinators.extend(refused.into_iter().map(|k| {
                                Coordinator::default()
                                    .with_key(k)
                                    .with_error_code(code)
                                    .with_node_id((-1).into())
                                    .with_port(-1)
                            }));
                            ResponseKind::FindCoordinator(f)
                        }
                        other => other,
                    })
                })
            } else if !g.ok(Op::Describe, op_t, r.key.as_str()) {
                return answer(ResponseKind::FindCoordinator(
                    FindCoordinatorResponse::default()
                        .with_error_code(code)
                        .with_node_id((-1).into())
                        .with_port(-1),
                ));
            } else {
                None
            }
        }
        RequestKind::JoinGroup(r) => {
            if !g.group(Op::Read, r.group_id.0.as_str()) {
                return answer(ResponseKind::JoinGroup(
                    JoinGroupResponse::default().with_error_code(err::GROUP_AUTHORIZATION_FAILED),
                ));
            }
            None
        }
        RequestKind::SyncGroup(r) => {
            if !g.group(Op::Read, r.group_id.0.as_str()) {
                return answer(ResponseKind::SyncGroup(
                    SyncGroupResponse::default().with_error_code(err::GROUP_AUTHORIZATION_FAILED),
                ));
            }
            None
        }
        RequestKind::Heartbeat(r) => {
            if !g.group(Op::Read, r.group_id.0.as_str()) {
                return answer(ResponseKind::Heartbeat(
                    HeartbeatResponse::default().with_error_code(err::GROUP_AUTHORIZATION_FAILED),
                ));
            }
            None
        }
        RequestKind::LeaveGroup(r) => {
            if !g.group(Op::Read, r.group_id.0.as_str()) {
                return answer(ResponseKind::LeaveGroup(
                    LeaveGroupResponse::default().with_error_code(err::GROUP_AUTHORIZATION_FAILED),
                ));
            }
            None
        }
        RequestKind::OffsetCommit(r) => {
            let group_ok = g.group(Op::Read, r.group_id.0.as_str());
            let refused = split(&mut r.topics, |t| {
                group_ok && g.topic(Op::Read, t.name.0.as_str())
            });
            let code = if group_ok {
                err::TOPIC_AUTHORIZATION_FAILED
            } else {
                err::GROUP_AUTHORIZATION_FAILED
            };
            let results: Vec<OffsetCommitResponseTopic> = refused
                .into_iter()
                .map(|t| {
                    OffsetCommitResponseTopic::default()
                        .with_name(t.name)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect();
            if !group_ok {
                return answer(ResponseKind::OffsetCommit(
                    OffsetCommitResponse::default().with_topics(results),
                ));
            }
            (!results.is_empty()).then(|| -> Fix {
                Box::new(move |resp| match resp {
                    ResponseKind::OffsetCommit(mut o) => {
                        o.topics.extend(results);
                        ResponseKind::OffsetCommit(o)
                    }
                    other => other,
                })
            })
        }
        RequestKind::OffsetFetch(r) => {
            if v < 8 {
                if !g.group(Op::Describe, r.group_id.0.as_str()) {
                    let mut resp = OffsetFetchResponse::default();
                    if v >= 2 {
                        resp.error_code = err::GROUP_AUTHORIZATION_FAILED;
                    } else {
                        resp.topics = r
                            .topics
                            .iter()
                            .flatten()
                            .map(|t| {
                                OffsetFetchResponseTopic::default()
                                    .with_name(t.name.clone())
                                    .with_partitions(
                                        t.partition_indexes
                                            .iter()
                                            .map(|p| {
                                                OffsetFetchResponsePartition::default()
                                                    .with_partition_index(*p)
                                                    .with_committed_offset(-1)
                                                    .with_error_code(
                                                        err::GROUP_AUTHORIZATION_FAILED,
                                                    )
                                            })
                                            .collect(),
                                    )
                            })
                            .collect();
                    }
                    return answer(ResponseKind::OffsetFetch(resp));
                }
            } else {
                let refused = split(&mut r.groups, |gr| {
                    g.group(Op::Describe, gr.group_id.0.as_str())
                });
                if !refused.is_empty() {
                    let ids: Vec<GroupId> = refused.into_iter().map(|gr| gr.group_id).collect();
                    let g2 = Guard {
                        acls: g.acls.clone(),
                        who: g.who.clone(),
                    };
                    return Checked::Go(
                        req,
                        fix(move |resp| {
                            let resp = mask_offsets(&g2, resp);
                            match resp {
                                ResponseKind::OffsetFetch(mut o) => {
                                    o.groups.extend(ids.into_iter().map(|id| {
                                        OffsetFetchResponseGroup::default()
                                            .with_group_id(id)
                                            .with_error_code(err::GROUP_AUTHORIZATION_FAILED)
                                    }));
                                    ResponseKind::OffsetFetch(o)
                                }
                                other => other,
                            }
                        }),
                    );
                }
            }
            let g2 = Guard {
                acls: g.acls.clone(),
                who: g.who.clone(),
            };
            fix(move |resp| mask_offsets(&g2, resp))
        }
        RequestKind::DescribeGroups(r) => {
            let refused = split(&mut r.groups, |id| g.group(Op::Describe, id.0.as_str()));
            (!refused.is_empty()).then(|| -> Fix {
                Box::new(move |resp| match resp {
                    ResponseKind::DescribeGroups(mut d) => {
                        d.groups.extend(refused.into_iter().map(|id| {
                            DescribedGroup::default()
                                .with_group_id(id)
                                .with_error_code(err::GROUP_AUTHORIZATION_FAILED)
                        }));
                        ResponseKind::DescribeGroups(d)
                    }
                    other => other,
                })
            })
        }
        RequestKind::ListGroups(_) => {
            if g.cluster(Op::Describe) {
                None
            } else {
                let g2 = Guard {
                    acls: g.acls.clone(),
                    who: g.who.clone(),
                };
                fix(move |resp| match resp {
                    ResponseKind::ListGroups(mut l) => {
                        l.groups
                            .retain(|gr| g2.group(Op::Describe, gr.group_id.0.as_str()));
                        ResponseKind::ListGroups(l)
                    }
                    other => other,
                })
            }
        }
        RequestKind::DeleteGroups(r) => {
            let refused = split(&mut r.groups_names, |id| g.group(Op::Delete, id.0.as_str()));
            (!refused.is_empty()).then(|| -> Fix {
                Box::new(move |resp| match resp {
                    ResponseKind::DeleteGroups(mut d) => {
                        d.results.extend(refused.into_iter().map(|id| {
                            DeletableGroupResult::default()
                                .with_group_id(id)
                                .with_error_code(err::GROUP_AUTHORIZATION_FAILED)
                        }));
                        ResponseKind::DeleteGroups(d)
                    }
                    other => other,
                })
            })
        }
        RequestKind::OffsetDelete(r) => {
            if !g.group(Op::Delete, r.group_id.0.as_str()) {
                return answer(ResponseKind::OffsetDelete(
                    OffsetDeleteResponse::default()
                        .with_error_code(err::GROUP_AUTHORIZATION_FAILED),
                ));
            }
            let refused = split(&mut r.topics, |t| g.topic(Op::Read, t.name.0.as_str()));
            (!refused.is_empty()).then(|| -> Fix {
                Box::new(move |resp| match resp {
                    ResponseKind::OffsetDelete(mut o) => {
                        o.topics.extend(refused.into_iter().map(|t| {
                            OffsetDeleteResponseTopic::default()
                                .with_name(t.name)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            OffsetDeleteResponsePartition::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(err::TOPIC_AUTHORIZATION_FAILED)
                                        })
                                        .collect(),
                                )
                        }));
                        ResponseKind::OffsetDelete(o)
                    }
                    other => other,
                })
            })
        }
        // Anything else the broker serves needs the cluster's ALTER
        // (no such API today; a safe default for new ones).
        _ => {
            if !g.cluster(Op::Alter) {
                tracing::debug!(api = ?req.api_key, principal = %g.who.principal, "no ACL rule for this API; refused");
                return Checked::Answer(None);
            }
            None
        }
    };
    Checked::Go(req, f)
}

/// A fix adding TOPIC_AUTHORIZATION_FAILED results for `names`, if any.
fn topic_results(names: Vec<TopicName>, make: impl FnOnce(Vec<TopicName>) -> Fix) -> Option<Fix> {
    (!names.is_empty()).then(|| make(names))
}

/// Config resources: topics (2) need `op` on the topic, brokers (4) and
/// broker loggers (8) on the cluster.
fn config_ok(g: &Guard, op: Op, resource_type: i8, name: &StrBytes) -> bool {
    match resource_type {
        2 => g.topic(op, name.as_str()),
        _ => g.cluster(op),
    }
}

fn config_denial(resource_type: i8) -> i16 {
    if resource_type == 2 {
        err::TOPIC_AUTHORIZATION_FAILED
    } else {
        err::CLUSTER_AUTHORIZATION_FAILED
    }
}

/// OffsetFetch: committed offsets of topics the caller may not describe are
/// answered TOPIC_AUTHORIZATION_FAILED (and never shown).
fn mask_offsets(g: &Guard, resp: ResponseKind) -> ResponseKind {
    match resp {
        ResponseKind::OffsetFetch(mut o) => {
            for t in &mut o.topics {
                if !g.topic(Op::Describe, t.name.0.as_str()) {
                    for p in &mut t.partitions {
                        p.committed_offset = -1;
                        p.metadata = None;
                        p.error_code = err::TOPIC_AUTHORIZATION_FAILED;
                    }
                }
            }
            for gr in &mut o.groups {
                for t in &mut gr.topics {
                    if !g.topic(Op::Describe, t.name.0.as_str()) {
                        for p in &mut t.partitions {
                            p.committed_offset = -1;
                            p.metadata = None;
                            p.error_code = err::TOPIC_AUTHORIZATION_FAILED;
                        }
                    }
                }
            }
            ResponseKind::OffsetFetch(o)
        }
        other => other,
    }
}
