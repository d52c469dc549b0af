//! `/metrics`: this broker's metrics under the names the Prometheus JMX
//! exporter's standard Kafka rules give Kafka's MBeans (so existing Kafka
//! dashboards and alerts query them unchanged), then the process metrics.
//! Counters come from `metrics::counters`; gauges are computed at scrape
//! time from the metadata cache and the local logs, as Kafka's gauges are.

use std::sync::atomic::Ordering;

use kafka_protocol::messages::ApiKey;

use crate::broker::Broker;
use crate::metrics::counters::TopicCounters;
use crate::metrics::process;
use crate::metrics::text::{Kind, Text};

const TOPIC_FAMILIES: [(&str, &str); 3] = [
    (
        "kafka_server_brokertopicmetrics_messagesin_total",
        "Messages appended by produce requests (all topics without a topic label).",
    ),
    (
        "kafka_server_brokertopicmetrics_bytesin_total",
        "Record bytes appended by produce requests (all topics without a topic label).",
    ),
    (
        "kafka_server_brokertopicmetrics_bytesout_total",
        "Record bytes sent to consumers, replication excluded (all topics without a topic label).",
    ),
];

fn topic_value(c: &TopicCounters, family: usize) -> i64 {
    let v = match family {
        0 => &c.messages_in,
        1 => &c.bytes_in,
        _ => &c.bytes_out,
    };
    v.load(Ordering::Relaxed) as i64
}

/// The text of `/metrics`.
pub fn render(b: &Broker) -> String {
    let view = b.cache.view();
    let me = b.id();
    let m = &b.metrics;
    let mut t = Text::with_capacity(16 << 10);

    // Per-topic counters, dropping topics that no longer exist.
    let topics: Vec<_> = m
        .topics()
        .into_iter()
        .filter(|(name, _)| {
            let known = view.topics.contains_key(name);
            if !known {
                m.forget_topic(name);
            }
            known
        })
        .collect();
    for (i, (name, help)) in TOPIC_FAMILIES.iter().enumerate() {
        t.family(name, Kind::Counter, help);
        t.int(name, &[], topic_value(&m.all, i));
        for (topic, c) in &topics {
            t.int(name, &[("topic", topic)], topic_value(c, i));
        }
    }

    // Replica manager gauges, from the cache: what this broker hosts/leads.
    let (mut hosted, mut leading, mut under, mut offline) = (0i64, 0i64, 0i64, 0i64);
    for tm in view.topics.values() {
        for p in &tm.partitions {
            if p.replicas.contains(&me) {
                hosted += 1;
            }
            let leader = p.leader();
            if leader == me {
                leading += 1;
                if p.isr().len() < p.replicas.len() {
                    under += 1;
                }
            }
            if leader < 0 || !view.brokers.contains_key(&leader) {
                offline += 1;
            }
        }
    }
    // A standalone broker is its own (and the only) controller.
    let controller = !b.cluster.replicated() || view.controller_id == me;
    let gauges: [(&str, &str, i64); 5] = [
        (
            "kafka_server_replicamanager_underreplicatedpartitions",
            "Partitions led by this broker whose ISR is smaller than their replica set.",
            under,
        ),
        (
            "kafka_server_replicamanager_partitioncount",
            "Partitions with a replica on this broker.",
            hosted,
        ),
        (
            "kafka_server_replicamanager_leadercount",
            "Partitions led by this broker.",
            leading,
        ),
        (
            "kafka_controller_kafkacontroller_activecontrollercount",
            "1 on the broker that is the active controller, else 0.",
            controller as i64,
        ),
        (
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            "Partitions without a live leader (reported by the active controller only).",
            if controller { offline } else { 0 },
        ),
    ];
    for (name, help, v) in gauges {
        t.family(name, Kind::Gauge, help);
        t.int(name, &[], v);
    }
    // The log directory (issue 19, `log::disk`): Kafka's offline-dir gauge
    // (1 while a failed write is not resumed), the guard, free space.
    let disk = b.log.disk();
    for (name, kind, help, v) in [
        (
            "kafka_log_logmanager_offlinelogdirectorycount",
            Kind::Gauge,
            "Log directories refusing writes after a failed write (0 or 1).",
            disk.failed() as i64,
        ),
        (
            "fjord_log_dir_below_min_free",
            Kind::Gauge,
            "1 while the log dir's free space is below log.dir.min.free.bytes/percent (produce refused).",
            (disk.refusal() == Some(crate::log::disk::Refusal::LowSpace)) as i64,
        ),
        (
            "fjord_log_dir_free_bytes",
            Kind::Gauge,
            "Free bytes in the log dir's filesystem at the last measurement (-1: not measured).",
            disk.free_bytes(),
        ),
        (
            "fjord_log_dir_min_free_trips_total",
            Kind::Counter,
            "Times the free-space guard tripped.",
            disk.trips.load(Ordering::Relaxed) as i64,
        ),
        (
            "fjord_log_dir_write_failures_total",
            Kind::Counter,
            "Times a write to the log store failed (ENOSPC, EIO) and writes were stopped until it resumed.",
            disk.failures.load(Ordering::Relaxed) as i64,
        ),
    ] {
        t.family(name, kind, help);
        t.int(name, &[], v);
    }
    for (name, help, v) in [
        (
            "kafka_server_replicamanager_isrshrinks_total",
            "ISR shrinks written by this broker as leader.",
            &m.isr_shrinks,
        ),
        (
            "kafka_server_replicamanager_isrexpands_total",
            "ISR expansions written by this broker as leader.",
            &m.isr_expands,
        ),
    ] {
        t.family(name, Kind::Counter, help);
        t.int(name, &[], v.load(Ordering::Relaxed) as i64);
    }

    // Requests per API: count and total time (read to response ready).
    let apis: Vec<(String, &crate::metrics::counters::ApiStats)> =
        m.apis().map(|(k, s)| (api_name(k), s)).collect();
    let name = "kafka_network_requestmetrics_requests_total";
    t.family(name, Kind::Counter, "Requests answered, by API.");
    for (api, s) in &apis {
        t.int(
            name,
            &[("request", api)],
            s.requests.load(Ordering::Relaxed) as i64,
        );
    }
    let name = "kafka_network_requestmetrics_totaltimems";
    t.family(
        name,
        Kind::Histogram,
        "Request total time in milliseconds (frame read to response ready), by API.",
    );
    for (api, s) in &apis {
        s.total_time.render(&mut t, name, &[("request", api)]);
    }

    // Log size per local partition.
    let name = "kafka_log_log_size";
    t.family(
        name,
        Kind::Gauge,
        "Bytes of the partition's log on this broker.",
    );
    let mut parts = b.log.all();
    parts.sort_by(|a, b| (&a.topic, a.index).cmp(&(&b.topic, b.index)));
    for p in parts {
        let idx = p.index.to_string();
        t.int(
            name,
            &[("topic", &p.topic), ("partition", &idx)],
            p.size_bytes() as i64,
        );
    }

    let name = "kafka_server_kafkaserver_brokerstate";
    t.family(
        name,
        Kind::Gauge,
        "Broker state as Kafka numbers it (3 running, 6 pending controlled shutdown, 7 shutting down).",
    );
    t.int(name, &[], m.state() as i64);

    process::render(&mut t);
    t.finish()
}

/// The `request` label: Kafka's request name for the API key.
fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(k) => format!("{k:?}"),
        Err(_) => format!("ApiKey{key}"),
    }
}
