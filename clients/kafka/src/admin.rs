//! Consumer-group administration, the calls kafka-consumer-groups makes:
//! find a group's coordinator, list groups, describe one, read, commit and
//! delete its offsets, delete it, and look up partition offsets for lag and
//! resets. Each is one typed kafka-protocol request through [`Conn::call`] or
//! [`Client::call`], at the old non-flexible versions every fjord-broker
//! serves; coordinator refusals come back as [`ClientError::Group`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest,
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::assignor::assigned_partitions;
use crate::client::{Client, ClientError, Conn, KafkaError, Node};

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A (topic, partition) pair.
pub type TopicPartition = (String, i32);

fn sb(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn refused(op: &'static str, group: &str, code: i16, message: Option<String>) -> ClientError {
    ClientError::Group {
        op,
        group: group.to_string(),
        error: KafkaError::new(code, message),
    }
}

/// The `host:port` of `group`'s coordinator, asked of the bootstrap broker.
/// While no coordinator is available (it is loading, or the broker that
/// answered died: the client then reconnects) it asks again, for up to
/// `patience`.
pub async fn find_coordinator(
    client: &mut Client,
    group: &str,
    patience: Duration,
) -> Result<String> {
    let deadline = Instant::now() + patience;
    loop {
        let req = FindCoordinatorRequest::default().with_key(sb(group));
        let last = match client.call(Node::Any, &req, 3).await {
            Ok(r) if r.error_code == 0 => return Ok(format!("{}:{}", r.host, r.port)),
            Ok(r) => match r.error_code.err() {
                Some(
                    ResponseError::CoordinatorLoadInProgress
                    | ResponseError::CoordinatorNotAvailable,
                ) => KafkaError::new(r.error_code, None).to_string(),
                _ => {
                    let msg = r.error_message.map(|m| m.to_string());
                    return Err(refused("FindCoordinator", group, r.error_code, msg));
                }
            },
            Err(e) => {
                // The bootstrap broker may be the one that died: start over.
                if let Ok(c) = Client::connect(client.config().clone()).await {
                    *client = c;
                }
                e.to_string()
            }
        };
        if Instant::now() >= deadline {
            return Err(ClientError::GaveUp {
                group: group.to_string(),
                what: format!("no coordinator ({last})"),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every consumer group any live broker coordinates.
pub async fn list_groups(client: &mut Client) -> Result<BTreeSet<String>> {
    client.metadata(Some(&[]), false).await?;
    let ids: Vec<i32> = client.brokers.keys().copied().collect();
    let mut groups = BTreeSet::new();
    for id in ids {
        let resp = client
            .call(Node::Id(id), &ListGroupsRequest::default(), 0)
            .await?;
        groups.extend(resp.groups.iter().map(|g| g.group_id.0.to_string()));
    }
    Ok(groups)
}

/// One member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub id: String,
    pub client_id: String,
    pub host: String,
    /// Its assigned partitions (empty when it has none or they cannot be read).
    pub assignment: Vec<TopicPartition>,
}

/// A group's state, protocol and members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// `Empty`, `Stable`, `PreparingRebalance`, `CompletingRebalance` or `Dead`.
    pub state: String,
    /// The assignor the members agreed on (empty without members).
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// DescribeGroups for `group`, asked of its coordinator.
pub async fn describe_group(coord: &mut Conn, group: &str) -> Result<GroupDescription> {
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(sb(group))]);
    let resp = coord.call(&req, 0).await?;
    let Some(g) = resp.groups.into_iter().next() else {
        return Err(ClientError::Malformed {
            addr: coord.addr().to_string(),
            msg: "empty DescribeGroups answer".into(),
        });
    };
    if g.error_code != 0 {
        return Err(refused("DescribeGroups", group, g.error_code, None));
    }
    Ok(GroupDescription {
        state: g.group_state.to_string(),
        protocol: g.protocol_data.to_string(),
        members: g
            .members
            .iter()
            .map(|m| MemberDescription {
                id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment: assigned_partitions(&m.member_assignment),
            })
            .collect(),
    })
}

/// Every offset `group` has committed (OffsetFetch for all topics).
pub async fn committed_offsets(
    coord: &mut Conn,
    group: &str,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_topics(None);
    let resp = coord.call(&req, 2).await?;
    if resp.error_code != 0 {
        return Err(refused("OffsetFetch", group, resp.error_code, None));
    }
    let mut out = BTreeMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            if p.committed_offset >= 0 {
                out.insert(
                    (t.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                );
            }
        }
    }
    Ok(out)
}

/// Commit `offsets` for `group` as an administrator (no generation, no
/// member id: the group must be empty); the first partition refused fails it.
pub async fn commit_offsets(
    coord: &mut Conn,
    group: &str,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<()> {
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((t, p), o) in offsets {
        by_topic.entry(t.as_str()).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o),
        );
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(sb(t)))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let resp = coord.call(&req, 2).await?;
    for t in &resp.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                let at = format!("partition {}:{}", t.name.0, p.partition_index);
                return Err(refused("OffsetCommit", group, p.error_code, Some(at)));
            }
        }
    }
    Ok(())
}

/// Delete `group` and its offsets (the coordinator refuses while it has members).
pub async fn delete_group(coord: &mut Conn, group: &str) -> Result<()> {
    let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb(group))]);
    let resp = coord.call(&req, 0).await?;
    for r in &resp.results {
        if r.error_code != 0 {
            return Err(refused("DeleteGroups", &r.group_id.0, r.error_code, None));
        }
    }
    Ok(())
}

/// Delete `group`'s committed offsets of `partitions` (by topic); the result
/// per partition (an error code, 0 for success) in the coordinator's order.
pub async fn delete_offsets(
    coord: &mut Conn,
    group: &str,
    partitions: &BTreeMap<String, Vec<i32>>,
) -> Result<Vec<(TopicPartition, i16)>> {
    let req = OffsetDeleteRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_topics(
            partitions
                .iter()
                .map(|(t, ps)| {
                    OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(sb(t)))
                        .with_partitions(
                            ps.iter()
                                .map(|p| {
                                    OffsetDeleteRequestPartition::default().with_partition_index(*p)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let resp = coord.call(&req, 0).await?;
    if resp.error_code != 0 {
        return Err(refused("OffsetDelete", group, resp.error_code, None));
    }
    Ok(resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| ((t.name.0.to_string(), p.partition_index), p.error_code))
        })
        .collect())
}

/// Partition leaders of the named topics that exist and have partitions
/// (others are left out), without creating any.
pub async fn partition_leaders(
    client: &mut Client,
    topics: &[String],
) -> Result<BTreeMap<String, BTreeMap<i32, i32>>> {
    let resp = client.metadata(Some(topics), false).await?;
    let mut out = BTreeMap::new();
    for t in &resp.topics {
        let Some(name) = &t.name else { continue };
        let parts: BTreeMap<i32, i32> = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        if t.error_code == 0 && !parts.is_empty() {
            out.insert(name.0.to_string(), parts);
        }
    }
    Ok(out)
}

/// The offset at `ts` (-1 latest, -2 earliest, else the first offset at or
/// after a timestamp in ms, -1 when there is none) of each partition in
/// `parts`, asked of its leader. Partitions without a leader or whose leader
/// answers with an error are left out, as the lag and reset tables show
/// them as unknown.
pub async fn offsets_at(
    client: &mut Client,
    parts: &BTreeSet<TopicPartition>,
    ts: i64,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let topics: Vec<String> = parts
        .iter()
        .map(|(t, _)| t.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if topics.is_empty() {
        return Ok(BTreeMap::new());
    }
    let leaders = partition_leaders(client, &topics).await?;
    let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    for (t, p) in parts {
        if let Some(l) = leaders.get(t).and_then(|m| m.get(p)) {
            if client.brokers.contains_key(l) {
                let topics = by_leader.entry(*l).or_default();
                topics.entry(t.as_str()).or_default().push(*p);
            }
        }
    }
    let mut out = BTreeMap::new();
    for (leader, topics) in by_leader {
        let resp = client.list_offsets_at(leader, &topics, ts, 1).await?;
        for t in &resp.topics {
            for p in &t.partitions {
                if p.error_code == 0 {
                    out.insert((t.name.0.to_string(), p.partition_index), p.offset);
                }
            }
        }
    }
    Ok(out)
}
