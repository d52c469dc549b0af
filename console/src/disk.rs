//! How much disk the cluster's data takes, over DescribeLogDirs (one request
//! to each live broker, as kafka-log-dirs does): each broker's log
//! directories, and each partition's size as its largest replica (the
//! partition's data counted once, and still known with one broker down).
//! A broker that does not answer is kept with its error; the others count.

use std::collections::{BTreeMap, HashMap};

use fjord_kafka::admin::TopicPartition;
use fjord_kafka::broker_admin::{describe_log_dirs, LogDir};
use fjord_kafka::client::Client;

#[derive(Debug, Default)]
pub struct Disk {
    /// Each asked broker's directories, or why it could not say.
    pub brokers: BTreeMap<i32, Result<Vec<LogDir>, String>>,
    /// Each partition's size: its largest replica.
    pub partitions: HashMap<TopicPartition, i64>,
}

impl Disk {
    /// Each topic's size: its partitions' sizes summed.
    pub fn topics(&self) -> HashMap<String, i64> {
        let mut out: HashMap<String, i64> = HashMap::new();
        for ((t, _), size) in &self.partitions {
            *out.entry(t.clone()).or_default() += size;
        }
        out
    }
}

/// Ask each of `brokers` for its log directories, holding the replicas of
/// `only` (topic, partitions) or of every partition.
pub async fn read(
    c: &mut Client,
    brokers: impl IntoIterator<Item = i32>,
    only: Option<&[(String, Vec<i32>)]>,
) -> Disk {
    let mut d = Disk::default();
    for id in brokers {
        match describe_log_dirs(c, id, only).await {
            Ok(dirs) => {
                for r in dirs.iter().flat_map(|dir| &dir.replicas) {
                    let size = d
                        .partitions
                        .entry((r.topic.clone(), r.partition))
                        .or_default();
                    *size = (*size).max(r.size);
                }
                d.brokers.insert(id, Ok(dirs));
            }
            Err(e) => {
                // The next request to it reconnects.
                c.forget(id);
                d.brokers.insert(id, Err(e.to_string()));
            }
        }
    }
    d
}
