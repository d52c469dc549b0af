//! The consumer protocol's payloads and the partition assignor a group leader
//! runs: a member's subscription (topics) and assignment (partitions by topic)
//! in their versioned wire form (kafka-protocol's `ConsumerProtocol*` types
//! behind an i16 version), and Kafka's RangeAssignor over them.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Partitions by topic, as an assignment carries them.
pub type Assignment = BTreeMap<String, Vec<i32>>;

/// Why a consumer-protocol payload could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum AssignorError {
    #[error("cannot encode the {what}: {msg}")]
    Encode { what: &'static str, msg: String },
    #[error("malformed assignment from the group leader: {0}")]
    Malformed(String),
}

fn sb(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A subscription to `topics` (consumer protocol v0), as JoinGroup carries it.
pub fn encode_subscription(topics: &[String]) -> Result<Bytes, AssignorError> {
    let sub =
        ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| sb(t)).collect());
    encode_v0(&sub, "subscription")
}

/// `msg` as consumer protocol v0: the version, then the body.
fn encode_v0(msg: &impl Encodable, what: &'static str) -> Result<Bytes, AssignorError> {
    let mut b = BytesMut::new();
    b.put_i16(0);
    msg.encode(&mut b, 0).map_err(|e| AssignorError::Encode {
        what,
        msg: e.to_string(),
    })?;
    Ok(b.freeze())
}

/// Topics in a member's subscription metadata (empty if unreadable: a
/// member we cannot understand gets nothing rather than failing the group).
pub fn decode_subscription(meta: &Bytes) -> Vec<String> {
    let mut b = meta.clone();
    if b.len() < 2 {
        return Vec::new();
    }
    let v = b.get_i16();
    ConsumerProtocolSubscription::decode(&mut b, v.clamp(0, 3))
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

/// A SyncGroup assignment: partitions by topic (empty bytes: nothing assigned).
pub fn decode_assignment(a: &Bytes) -> Result<Assignment, AssignorError> {
    let mut b = a.clone();
    let mut out = BTreeMap::new();
    if b.len() < 2 {
        return Ok(out);
    }
    let v = b.get_i16();
    let asg = ConsumerProtocolAssignment::decode(&mut b, v.clamp(0, 3))
        .map_err(|e| AssignorError::Malformed(e.to_string()))?;
    for tp in asg.assigned_partitions {
        out.entry(tp.topic.0.to_string())
            .or_insert_with(Vec::new)
            .extend(tp.partitions);
    }
    Ok(out)
}

/// An assignment (consumer protocol v0), as the leader sends it in SyncGroup.
pub fn encode_assignment(a: &Assignment) -> Result<Bytes, AssignorError> {
    let asg = ConsumerProtocolAssignment::default().with_assigned_partitions(
        a.iter()
            .map(|(t, ps)| {
                TopicPartition::default()
                    .with_topic(TopicName(sb(t)))
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    encode_v0(&asg, "assignment")
}

/// The (topic, partition) pairs of an assignment payload, in payload order;
/// empty when the payload is empty or unreadable (DescribeGroups shows what
/// it can).
pub fn assigned_partitions(a: &Bytes) -> Vec<(String, i32)> {
    let mut b = a.clone();
    if b.len() < 2 {
        return Vec::new();
    }
    let v = b.get_i16();
    match ConsumerProtocolAssignment::decode(&mut b, v.clamp(0, 3)) {
        Ok(asg) => asg
            .assigned_partitions
            .iter()
            .flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.0.to_string(), *p)))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Kafka's RangeAssignor over (member, subscribed topics) and partitions per
/// topic: per topic, the members subscribing to it in member-id order each
/// get a contiguous range, the first `partitions % members` one partition
/// more. Every member appears in the result, idle ones with nothing.
pub fn range_assign(
    subs: &[(String, Vec<String>)],
    parts: &BTreeMap<String, Vec<i32>>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = subs
        .iter()
        .map(|(m, _)| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, ps) in parts {
        let mut members: Vec<&String> = subs
            .iter()
            .filter(|(_, ts)| ts.contains(topic))
            .map(|(m, _)| m)
            .collect();
        members.sort();
        if members.is_empty() {
            continue;
        }
        let mut ps = ps.clone();
        ps.sort_unstable();
        let per = ps.len() / members.len();
        let extra = ps.len() % members.len();
        let mut at = 0;
        for (i, m) in members.iter().enumerate() {
            let n = per + usize::from(i < extra);
            if n > 0 {
                if let Some(e) = out.get_mut(*m) {
                    e.insert(topic.clone(), ps[at..at + n].to_vec());
                }
            }
            at += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignor_matches_kafka() {
        let t = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let subs = vec![
            ("c".to_string(), t(&["a"])),
            ("a".to_string(), t(&["a", "b"])),
            ("b".to_string(), t(&["a"])),
        ];
        let parts = BTreeMap::from([
            ("a".to_string(), vec![0, 1, 2, 3, 4, 5, 6]),
            ("b".to_string(), vec![0, 1]),
        ]);
        let r = range_assign(&subs, &parts);
        assert_eq!(r["a"]["a"], vec![0, 1, 2]);
        assert_eq!(r["b"]["a"], vec![3, 4]);
        assert_eq!(r["c"]["a"], vec![5, 6]);
        assert_eq!(r["a"]["b"], vec![0, 1]);
        assert!(!r["b"].contains_key("b"));
        // More members than partitions: the last ones sit idle.
        let subs: Vec<_> = (0..8).map(|i| (format!("m{i}"), t(&["a"]))).collect();
        let parts = BTreeMap::from([("a".to_string(), (0..6).collect::<Vec<i32>>())]);
        let r = range_assign(&subs, &parts);
        assert_eq!(r.values().filter(|a| a.is_empty()).count(), 2);
        // Round trip through the wire encoding.
        let enc = encode_assignment(&r["m0"]).unwrap();
        assert_eq!(decode_assignment(&enc).unwrap()["a"], vec![0]);
        assert_eq!(assigned_partitions(&enc), vec![("a".to_string(), 0)]);
        assert!(decode_assignment(&Bytes::new()).unwrap().is_empty());
        assert!(decode_assignment(&Bytes::from_static(b"\x00\x00\xff")).is_err());
        assert!(assigned_partitions(&Bytes::from_static(b"\x00\x00\xff")).is_empty());
        assert!(decode_subscription(&Bytes::from_static(b"\x00")).is_empty());
        let sub = encode_subscription(&t(&["x", "y"])).unwrap();
        assert_eq!(decode_subscription(&sub), t(&["x", "y"]));
    }
}
