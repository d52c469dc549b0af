//! The cluster as the console sees it, over the Kafka protocol only
//! (fjord-kafka's client): one Metadata snapshot per page (brokers, controller,
//! topics with their partitions, tolerant of per-topic errors), topic
//! deletion and partition offsets (creation, configs and new partitions are
//! fjord-kafka's `topic_admin`, shared with the CLI). Brokers that were seen once but are
//! missing now, or that replicas name but Metadata does not list, are shown
//! as down.

use std::collections::{BTreeMap, BTreeSet};

use fjord_kafka::client::{check, BrokerInfo, Client, ClientConfig, Node};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{DeleteTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

pub type Result<T> = anyhow::Result<T>;

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// One partition as Metadata describes it.
#[derive(Debug, Clone)]
pub struct Partition {
    pub index: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl Partition {
    /// Fewer in-sync replicas than replicas.
    pub fn under_replicated(&self) -> bool {
        self.isr.len() < self.replicas.len()
    }
    /// No leader: nobody can read or write it.
    pub fn offline(&self) -> bool {
        self.leader < 0
    }
}

/// One topic; `error_code` is the topic-level error (0 when fine).
#[derive(Debug, Clone)]
pub struct Topic {
    pub name: String,
    pub internal: bool,
    pub error_code: i16,
    pub partitions: Vec<Partition>,
}

impl Topic {
    pub fn replication(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// What one Metadata answer says about the cluster.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub cluster_id: Option<String>,
    pub controller: i32,
    /// Brokers Metadata lists (alive).
    pub live: BTreeMap<i32, BrokerInfo>,
    /// Broker ids known but not alive: seen before, or named as replicas.
    pub down: BTreeSet<i32>,
    pub topics: Vec<Topic>,
}

impl Snapshot {
    pub fn partitions(&self) -> impl Iterator<Item = (&Topic, &Partition)> {
        self.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
    }
    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name == name)
    }
}

/// A connected client with the console's timeout on every request.
pub async fn connect(bootstrap: &str, timeout: std::time::Duration) -> Result<Client> {
    let mut cfg = ClientConfig::new(bootstrap);
    cfg.client_id = "fjord-console".into();
    cfg.request_timeout = timeout;
    Client::connect(cfg)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the brokers at {bootstrap}: {e}"))
}

/// Metadata for every topic (or `only`), with `seen` (every broker ever
/// listed, kept by the caller) updated and used to tell which are down.
pub async fn snapshot(
    client: &mut Client,
    only: Option<&[String]>,
    seen: &Seen,
) -> Result<Snapshot> {
    let resp = client.metadata(only, false).await?;
    let live = client.brokers.clone();
    let mut topics: Vec<Topic> = resp
        .topics
        .iter()
        .map(|t| {
            let mut partitions: Vec<Partition> = t
                .partitions
                .iter()
                .map(|p| Partition {
                    index: p.partition_index,
                    leader: p.leader_id.0,
                    replicas: p.replica_nodes.iter().map(|x| x.0).collect(),
                    isr: p.isr_nodes.iter().map(|x| x.0).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.index);
            Topic {
                name: t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                internal: t.is_internal,
                error_code: t.error_code,
                partitions,
            }
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut known = seen.update(&live);
    for t in &topics {
        for p in &t.partitions {
            known.extend(p.replicas.iter().copied());
        }
    }
    let down = known
        .into_iter()
        .filter(|id| !live.contains_key(id))
        .collect();
    Ok(Snapshot {
        cluster_id: client.cluster_id.clone(),
        controller: client.controller_id,
        live,
        down,
        topics,
    })
}

/// The set of broker ids the console has ever seen alive (so a dead broker
/// that leads nothing and is no replica still shows as down).
#[derive(Debug, Default)]
pub struct Seen(std::sync::Mutex<BTreeSet<i32>>);

impl Seen {
    /// Add `live` and return every id seen so far.
    pub fn update(&self, live: &BTreeMap<i32, BrokerInfo>) -> BTreeSet<i32> {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.extend(live.keys().copied());
        s.clone()
    }
}

/// DeleteTopics for one topic.
pub async fn delete_topic(client: &mut Client, name: &str) -> Result<()> {
    let v = client
        .conn(Node::Any)
        .await?
        .pick::<DeleteTopicsRequest>(6)?;
    let mut req = DeleteTopicsRequest::default().with_timeout_ms(15_000);
    if v >= 6 {
        req.topics = vec![DeleteTopicState::default().with_name(Some(TopicName(sb(name))))];
    } else {
        req.topic_names = vec![TopicName(sb(name))];
    }
    let resp = client.call(Node::Any, &req, 6).await?;
    for r in &resp.responses {
        check(r.error_code, r.error_message.as_ref())?;
    }
    Ok(())
}

/// Earliest and latest offsets of each partition of `topic` (asked of each
/// leader; partitions without a leader or whose leader fails are left out).
pub async fn offsets(client: &mut Client, topic: &Topic, ts: i64) -> Result<BTreeMap<i32, i64>> {
    let parts: BTreeSet<(String, i32)> = topic
        .partitions
        .iter()
        .map(|p| (topic.name.clone(), p.index))
        .collect();
    let got = fjord_kafka::admin::offsets_at(client, &parts, ts).await?;
    Ok(got.into_iter().map(|((_, p), o)| (p, o)).collect())
}

/// Topic configs from a form's textarea: `key=value` lines.
pub fn parse_configs(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.push((k.trim().to_string(), v.trim().to_string()))
            }
            _ => return Err(format!("expected key=value, got '{line}'")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_from_the_form() {
        assert_eq!(
            parse_configs("retention.ms=1000\n\n cleanup.policy = compact \n").unwrap(),
            vec![
                ("retention.ms".to_string(), "1000".to_string()),
                ("cleanup.policy".to_string(), "compact".to_string())
            ]
        );
        assert!(parse_configs("nokey").is_err());
        assert!(parse_configs("=v").is_err());
    }

    #[test]
    fn partition_health() {
        let p = Partition {
            index: 0,
            leader: -1,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
        };
        assert!(p.under_replicated());
        assert!(p.offline());
    }
}
