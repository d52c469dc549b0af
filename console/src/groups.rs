//! Consumer groups over the Kafka protocol (fjord-kafka's `admin` calls, as
//! kafka-consumer-groups makes them): the list with state, members and total
//! lag; one group's committed offset, end offset and lag per partition; and
//! offset resets, planned first (the preview) and committed only while the
//! group is empty, as Kafka requires.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use fjord_kafka::admin::{self, GroupDescription, TopicPartition};
use fjord_kafka::client::{Client, Conn, Node};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::Result;

/// One line of the group list.
#[derive(Debug, Clone)]
pub struct GroupRow {
    pub name: String,
    pub state: String,
    pub members: usize,
    pub topics: BTreeSet<String>,
    /// Sum of lag over partitions with a known end offset.
    pub lag: i64,
    /// Its committed offsets (the sampler's consume rate is how they advance).
    pub committed: BTreeMap<TopicPartition, i64>,
}

/// One partition of a group page.
#[derive(Debug, Clone)]
pub struct OffsetRow {
    pub tp: TopicPartition,
    pub committed: Option<i64>,
    pub end: Option<i64>,
}

impl OffsetRow {
    pub fn lag(&self) -> Option<i64> {
        Some((self.end? - self.committed?).max(0))
    }
}

/// A group's page: description and offsets.
#[derive(Debug, Clone)]
pub struct GroupDetail {
    pub description: GroupDescription,
    pub offsets: Vec<OffsetRow>,
}

/// Connections to group coordinators, opened once per page.
#[derive(Default)]
pub struct Coordinators {
    by_addr: HashMap<String, Conn>,
}

impl Coordinators {
    /// The connection to `group`'s coordinator.
    pub async fn of(&mut self, client: &mut Client, group: &str) -> Result<&mut Conn> {
        let patience = client.config().request_timeout.min(Duration::from_secs(3));
        let addr = admin::find_coordinator(client, group, patience).await?;
        if !self.by_addr.contains_key(&addr) {
            let c = Conn::open(&addr, client.config()).await?;
            self.by_addr.insert(addr.clone(), c);
        }
        self.by_addr
            .get_mut(&addr)
            .ok_or_else(|| anyhow::anyhow!("no connection to {addr}"))
    }
}

/// Every group with its state, members and lag. The broker whose
/// ListGroups names a group is its coordinator, so each broker is asked once
/// to describe all of its groups (one DescribeGroups), then for each group's
/// offsets on the same connection; end offsets are one ListOffsets per leader.
pub async fn list(client: &mut Client) -> Result<Vec<GroupRow>> {
    client.metadata(Some(&[]), false).await?;
    let ids: Vec<i32> = client.brokers.keys().copied().collect();
    let mut found = Vec::new();
    for id in ids {
        let conn = client.conn(Node::Id(id)).await?;
        let listed = conn.call(&ListGroupsRequest::default(), 0).await?;
        fjord_kafka::client::check(listed.error_code, None)?;
        let names: Vec<String> = listed
            .groups
            .iter()
            .map(|g| g.group_id.0.to_string())
            .collect();
        if names.is_empty() {
            continue;
        }
        let req = DescribeGroupsRequest::default().with_groups(
            names
                .iter()
                .map(|n| GroupId(StrBytes::from_string(n.clone())))
                .collect(),
        );
        let described = conn.call(&req, 0).await?;
        let ok: Vec<String> = described
            .groups
            .iter()
            .filter(|g| g.error_code == 0)
            .map(|g| g.group_id.0.to_string())
            .collect();
        let mut committed = committed_of_groups(conn, &ok).await?;
        for g in described.groups {
            let name = g.group_id.0.to_string();
            let offsets = committed.remove(&name).unwrap_or_default();
            found.push((name, g.group_state.to_string(), g.members.len(), offsets));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let all: BTreeSet<TopicPartition> = found
        .iter()
        .flat_map(|(_, _, _, c)| c.keys().cloned())
        .collect();
    let ends = admin::offsets_at(client, &all, -1).await?;
    Ok(found
        .into_iter()
        .map(|(name, state, members, committed)| GroupRow {
            state,
            members,
            topics: committed.keys().map(|(t, _)| t.clone()).collect(),
            lag: committed
                .iter()
                .filter_map(|(tp, c)| ends.get(tp).map(|e| (e - c).max(0)))
                .sum(),
            committed,
            name,
        })
        .collect())
}

/// Groups asked for their committed offsets in one request (OffsetFetch
/// v8, KIP-709) of at most this many.
const GROUPS_PER_FETCH: usize = 500;

/// The committed offsets of each of `groups` (all coordinated by `conn`):
/// OffsetFetch v8 with many groups a request when the broker serves it,
/// else one request per group. A group the coordinator refuses is left out.
async fn committed_of_groups(
    conn: &mut Conn,
    groups: &[String],
) -> Result<BTreeMap<String, BTreeMap<TopicPartition, i64>>> {
    let mut out = BTreeMap::new();
    if conn.pick::<OffsetFetchRequest>(8).ok() != Some(8) {
        for g in groups {
            if let Ok(c) = admin::committed_offsets(conn, g).await {
                out.insert(g.clone(), c);
            }
        }
        return Ok(out);
    }
    for chunk in groups.chunks(GROUPS_PER_FETCH) {
        let req = OffsetFetchRequest::default().with_groups(
            chunk
                .iter()
                .map(|g| {
                    OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(StrBytes::from_string(g.clone())))
                        .with_topics(None)
                })
                .collect(),
        );
        let resp = conn.call(&req, 8).await?;
        for g in resp.groups {
            if g.error_code != 0 {
                continue;
            }
            let mut offsets = BTreeMap::new();
            for t in &g.topics {
                for p in &t.partitions {
                    if p.error_code == 0 && p.committed_offset >= 0 {
                        offsets.insert(
                            (t.name.0.to_string(), p.partition_index),
                            p.committed_offset,
                        );
                    }
                }
            }
            out.insert(g.group_id.0.to_string(), offsets);
        }
    }
    Ok(out)
}

/// One group: description and, per partition it has offsets for or is
/// assigned, the committed and end offsets.
pub async fn detail(client: &mut Client, group: &str) -> Result<GroupDetail> {
    let mut coords = Coordinators::default();
    let conn = coords.of(client, group).await?;
    let description = admin::describe_group(conn, group).await?;
    let committed = admin::committed_offsets(conn, group).await?;
    let mut parts: BTreeSet<TopicPartition> = committed.keys().cloned().collect();
    for m in &description.members {
        parts.extend(m.assignment.iter().cloned());
    }
    // Every partition of the topics it reads, so a partition it never
    // committed shows its whole backlog as unknown rather than missing.
    let topics: Vec<String> = parts
        .iter()
        .map(|(t, _)| t.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for (t, ps) in admin::partition_leaders(client, &topics).await? {
        parts.extend(ps.keys().map(|p| (t.clone(), *p)));
    }
    let ends = admin::offsets_at(client, &parts, -1).await?;
    let offsets = parts
        .into_iter()
        .map(|tp| OffsetRow {
            committed: committed.get(&tp).copied(),
            end: ends.get(&tp).copied(),
            tp,
        })
        .collect();
    Ok(GroupDetail {
        description,
        offsets,
    })
}

/// Where a reset moves each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    Earliest,
    Latest,
    Offset(i64),
    /// The first offset at or after a timestamp (ms); the end when none.
    Timestamp(i64),
    /// The committed offset moved by N (negative: back), clamped to the
    /// partition; partitions without a committed offset are not moved.
    Shift(i64),
}

impl Reset {
    /// From the form's `strategy` and `value` fields.
    pub fn parse(strategy: &str, value: &str) -> std::result::Result<Reset, String> {
        let num = || {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("'{value}' is not a number"))
        };
        match strategy {
            "earliest" => Ok(Reset::Earliest),
            "latest" => Ok(Reset::Latest),
            "offset" => num().and_then(|o| {
                if o < 0 {
                    Err("an offset is 0 or more".to_string())
                } else {
                    Ok(Reset::Offset(o))
                }
            }),
            "timestamp" => num().map(Reset::Timestamp),
            "shift" => num().map(Reset::Shift),
            other => Err(format!("unknown reset strategy '{other}'")),
        }
    }
}

/// One partition of a reset plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub tp: TopicPartition,
    pub current: Option<i64>,
    pub new: i64,
}

/// The plan: every partition of `topics` (each topic the group has offsets
/// for when empty) and where `reset` puts it, clamped to the partition's
/// earliest..latest as kafka-consumer-groups does.
pub async fn plan(
    client: &mut Client,
    group: &str,
    topics: &[String],
    reset: Reset,
) -> Result<(String, Vec<Move>)> {
    let mut coords = Coordinators::default();
    let conn = coords.of(client, group).await?;
    let state = admin::describe_group(conn, group).await?.state;
    let committed = admin::committed_offsets(conn, group).await?;
    let topics: Vec<String> = if topics.is_empty() {
        committed
            .keys()
            .map(|(t, _)| t.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    } else {
        topics.to_vec()
    };
    let leaders = admin::partition_leaders(client, &topics).await?;
    let parts: BTreeSet<TopicPartition> = leaders
        .iter()
        .flat_map(|(t, ps)| ps.keys().map(move |p| (t.clone(), *p)))
        .collect();
    let earliest = admin::offsets_at(client, &parts, -2).await?;
    let latest = admin::offsets_at(client, &parts, -1).await?;
    let at_ts = match reset {
        Reset::Timestamp(ts) => Some(admin::offsets_at(client, &parts, ts).await?),
        _ => None,
    };
    let mut moves = Vec::new();
    for tp in parts {
        let (Some(lo), Some(hi)) = (earliest.get(&tp).copied(), latest.get(&tp).copied()) else {
            anyhow::bail!("partition {}-{} has no reachable leader", tp.0, tp.1);
        };
        let new = match reset {
            Reset::Earliest => lo,
            Reset::Latest => hi,
            Reset::Offset(o) => o.clamp(lo, hi),
            // Like kafka-consumer-groups, a shift needs a committed offset to
            // move; a partition without one is left alone.
            Reset::Shift(n) => match committed.get(&tp) {
                Some(c) => c.saturating_add(n).clamp(lo, hi),
                None => continue,
            },
            Reset::Timestamp(_) => match at_ts.as_ref().and_then(|m| m.get(&tp)) {
                Some(o) if *o >= 0 => *o,
                _ => hi,
            },
        };
        moves.push(Move {
            current: committed.get(&tp).copied(),
            new,
            tp,
        });
    }
    Ok((state, moves))
}

/// Commit `moves` for `group`, after checking again that it is empty.
pub async fn execute(client: &mut Client, group: &str, moves: &[Move]) -> Result<()> {
    let mut coords = Coordinators::default();
    let conn = coords.of(client, group).await?;
    let state = admin::describe_group(conn, group).await?.state;
    if !resettable(&state) {
        anyhow::bail!(
            "group {group} is {state}: offsets can be reset only while it has no members (stop its consumers first)"
        );
    }
    let offsets: BTreeMap<TopicPartition, i64> =
        moves.iter().map(|m| (m.tp.clone(), m.new)).collect();
    admin::commit_offsets(conn, group, &offsets).await?;
    Ok(())
}

/// Delete `group` and its offsets (its coordinator refuses while it has members).
pub async fn delete(client: &mut Client, group: &str) -> Result<()> {
    let mut coords = Coordinators::default();
    let conn = coords.of(client, group).await?;
    admin::delete_group(conn, group).await?;
    Ok(())
}

/// Kafka resets offsets only for a group without members.
pub fn resettable(state: &str) -> bool {
    matches!(state, "Empty" | "Dead")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_strategies_from_the_form() {
        assert_eq!(Reset::parse("earliest", ""), Ok(Reset::Earliest));
        assert_eq!(Reset::parse("latest", "x"), Ok(Reset::Latest));
        assert_eq!(Reset::parse("offset", " 42 "), Ok(Reset::Offset(42)));
        assert!(Reset::parse("offset", "-1").is_err());
        assert!(Reset::parse("offset", "abc").is_err());
        assert_eq!(
            Reset::parse("timestamp", "1700000000000"),
            Ok(Reset::Timestamp(1_700_000_000_000))
        );
        assert_eq!(Reset::parse("shift", "-5"), Ok(Reset::Shift(-5)));
        assert!(Reset::parse("rewind", "1").is_err());
        assert!(resettable("Empty") && resettable("Dead") && !resettable("Stable"));
        let r = OffsetRow {
            tp: ("t".into(), 0),
            committed: Some(5),
            end: Some(12),
        };
        assert_eq!(r.lag(), Some(7));
    }
}
