//! `/metrics/cluster`: the cluster as kafka_exporter reports it, with its
//! metric names and labels (`topic`, `partition`, `consumergroup`), so
//! dashboards built on kafka_exporter work when Prometheus scrapes one
//! broker's `/metrics/cluster` in its place. Brokers, topics, replicas and
//! ISRs come from the metadata cache; offsets of partitions this broker leads
//! from its own logs, the others from their leaders (`remote`); committed
//! offsets from the offsets cache every broker keeps; member counts from
//! the local groups and the other brokers' coordinators.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::task::JoinSet;

use super::remote::{self, OffsetMap};
use crate::broker::Broker;
use crate::cluster::metadata::PartitionMeta;
use crate::metrics::text::{Kind, Text};

enum Answer {
    Offsets(i32, Result<OffsetMap, fjord_kafka::client::ClientError>),
    Members(
        i32,
        Result<Vec<(String, usize)>, fjord_kafka::client::ClientError>,
    ),
}

/// One partition's row: its metadata and, when known, (earliest, latest).
struct Row<'a> {
    topic: &'a str,
    partition: String,
    meta: &'a PartitionMeta,
    offsets: Option<(i64, i64)>,
}

/// The text of `/metrics/cluster`.
pub async fn render(b: &Arc<Broker>) -> String {
    let view = b.cache.view();
    let me = b.id();

    // Offsets: local for what we lead, else asked of each leader.
    let mut offsets: OffsetMap = HashMap::new();
    let mut ask: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for tm in view.topics.values() {
        for p in &tm.partitions {
            let leader = p.leader();
            if leader == me {
                if let Some(l) = b.log.get(&tm.name, p.index) {
                    let o = l.offsets();
                    offsets.insert((tm.name.clone(), p.index), (o.log_start, o.high_watermark));
                }
            } else if leader >= 0 && view.brokers.contains_key(&leader) {
                ask.entry(leader)
                    .or_default()
                    .push((tm.name.clone(), p.index));
            }
        }
    }
    let mut calls = JoinSet::new();
    for (id, parts) in ask {
        if let Some(info) = view.brokers.get(&id) {
            let addr = format!("{}:{}", info.host, info.port);
            calls.spawn(
                async move { Answer::Offsets(id, remote::offsets(&addr, me, &parts).await) },
            );
        }
    }
    for (id, info) in &view.brokers {
        if *id != me {
            let (id, addr) = (*id, format!("{}:{}", info.host, info.port));
            calls.spawn(async move { Answer::Members(id, remote::group_members(&addr, me).await) });
        }
    }
    let mut members: BTreeMap<String, usize> = b.groups.member_counts().into_iter().collect();
    while let Some(r) = calls.join_next().await {
        match r {
            Ok(Answer::Offsets(_, Ok(m))) => offsets.extend(m),
            Ok(Answer::Members(_, Ok(g))) => members.extend(g),
            Ok(Answer::Offsets(id, Err(e)) | Answer::Members(id, Err(e))) => {
                tracing::debug!(broker = id, error = %e, "cluster metrics: broker did not answer");
            }
            Err(e) => tracing::debug!(error = %e, "cluster metrics: task failed"),
        }
    }

    let mut topics: Vec<_> = view.topics.values().collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut rows: Vec<Row> = Vec::new();
    for tm in &topics {
        let mut parts: Vec<&PartitionMeta> = tm.partitions.iter().collect();
        parts.sort_by_key(|p| p.index);
        for p in parts {
            rows.push(Row {
                topic: &tm.name,
                partition: p.index.to_string(),
                meta: p,
                offsets: offsets.get(&(tm.name.clone(), p.index)).copied(),
            });
        }
    }

    let mut t = Text::with_capacity(rows.len() * 700 + 4096);
    t.family(
        "kafka_brokers",
        Kind::Gauge,
        "Number of Brokers in the Kafka Cluster.",
    );
    t.int("kafka_brokers", &[], view.brokers.len() as i64);
    t.family(
        "kafka_broker_info",
        Kind::Gauge,
        "Information about the Kafka Broker.",
    );
    for (id, info) in &view.brokers {
        let (addr, id) = (format!("{}:{}", info.host, info.port), id.to_string());
        t.int("kafka_broker_info", &[("address", &addr), ("id", &id)], 1);
    }
    t.family(
        "kafka_topic_partitions",
        Kind::Gauge,
        "Number of partitions for this Topic",
    );
    for tm in &topics {
        t.int(
            "kafka_topic_partitions",
            &[("topic", &tm.name)],
            tm.partitions.len() as i64,
        );
    }
    type Value = fn(&Row) -> Option<i64>;
    let families: [(&str, &str, Value); 7] = [
        (
            "kafka_topic_partition_current_offset",
            "Current Offset of a Broker at Topic/Partition",
            |r| r.offsets.map(|o| o.1),
        ),
        (
            "kafka_topic_partition_oldest_offset",
            "Oldest Offset of a Broker at Topic/Partition",
            |r| r.offsets.map(|o| o.0),
        ),
        (
            "kafka_topic_partition_in_sync_replica",
            "Number of In-Sync Replicas for this Topic/Partition",
            |r| Some(r.meta.isr().len() as i64),
        ),
        (
            "kafka_topic_partition_leader",
            "Leader Broker ID of this Topic/Partition",
            |r| Some(r.meta.leader() as i64),
        ),
        (
            "kafka_topic_partition_leader_is_preferred",
            "1 if Topic/Partition is using the Preferred Broker",
            |r| Some((r.meta.replicas.first() == Some(&r.meta.leader())) as i64),
        ),
        (
            "kafka_topic_partition_replicas",
            "Number of Replicas for this Topic/Partition",
            |r| Some(r.meta.replicas.len() as i64),
        ),
        (
            "kafka_topic_partition_under_replicated_partition",
            "1 if Topic/Partition is under Replicated",
            |r| Some((r.meta.isr().len() < r.meta.replicas.len()) as i64),
        ),
    ];
    for (name, help, value) in families {
        t.family(name, Kind::Gauge, help);
        for r in &rows {
            if let Some(v) = value(r) {
                t.int(name, &[("topic", r.topic), ("partition", &r.partition)], v);
            }
        }
    }

    // Consumer groups: committed offsets (every broker caches them all).
    let mut groups: BTreeMap<String, BTreeMap<String, BTreeMap<i32, i64>>> = BTreeMap::new();
    for g in b.groups.offsets.groups() {
        let o = b.groups.offsets.group_offsets(&g);
        let per: BTreeMap<String, BTreeMap<i32, i64>> = o
            .into_iter()
            .map(|(topic, ps)| (topic, ps.into_iter().map(|(p, c)| (p, c.offset)).collect()))
            .collect();
        groups.insert(g, per);
    }
    let lag_of = |topic: &str, p: i32, committed: i64| {
        offsets
            .get(&(topic.to_string(), p))
            .map(|(_, hw)| (hw - committed).max(0))
    };
    let name = "kafka_consumergroup_current_offset";
    t.family(
        name,
        Kind::Gauge,
        "Current Offset of a ConsumerGroup at Topic/Partition",
    );
    for (g, topics) in &groups {
        for (topic, ps) in topics {
            for (p, off) in ps {
                let p = p.to_string();
                t.int(
                    name,
                    &[("consumergroup", g), ("partition", &p), ("topic", topic)],
                    *off,
                );
            }
        }
    }
    let name = "kafka_consumergroup_current_offset_sum";
    t.family(
        name,
        Kind::Gauge,
        "Current Offset of a ConsumerGroup at Topic for all partitions",
    );
    for (g, topics) in &groups {
        for (topic, ps) in topics {
            let sum: i64 = ps.values().filter(|o| **o >= 0).sum();
            t.int(name, &[("consumergroup", g), ("topic", topic)], sum);
        }
    }
    let name = "kafka_consumergroup_lag";
    t.family(
        name,
        Kind::Gauge,
        "Current Approximate Lag of a ConsumerGroup at Topic/Partition",
    );
    for (g, topics) in &groups {
        for (topic, ps) in topics {
            for (p, off) in ps {
                if let Some(lag) = lag_of(topic, *p, *off) {
                    let p = p.to_string();
                    t.int(
                        name,
                        &[("consumergroup", g), ("partition", &p), ("topic", topic)],
                        lag,
                    );
                }
            }
        }
    }
    let name = "kafka_consumergroup_lag_sum";
    t.family(
        name,
        Kind::Gauge,
        "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
    );
    for (g, topics) in &groups {
        for (topic, ps) in topics {
            let sum: i64 = ps.iter().filter_map(|(p, o)| lag_of(topic, *p, *o)).sum();
            t.int(name, &[("consumergroup", g), ("topic", topic)], sum);
        }
    }
    let name = "kafka_consumergroup_members";
    t.family(name, Kind::Gauge, "Amount of members in a consumer group");
    let mut all: BTreeMap<&str, usize> = groups.keys().map(|g| (g.as_str(), 0)).collect();
    for (g, n) in &members {
        all.insert(g, *n);
    }
    for (g, n) in all {
        t.int(name, &[("consumergroup", g)], n as i64);
    }
    t.finish()
}
