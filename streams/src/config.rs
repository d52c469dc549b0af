//! StreamsConfig: Kafka Streams' property names (`application.id`, `bootstrap.servers`,
//! `processing.guarantee`, `state.dir`, `commit.interval.ms`, `replication.factor`,
//! `errors.dead.letter.queue.topic.name` as KIP-1034, `max.task.idle.ms`,
//! `buffered.records.per.partition`), plus librdkafka properties passed through.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::merge::TaskIdle;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guarantee {
    /// Outputs flushed, then offsets committed, every commit interval: a crash may repeat outputs.
    AtLeastOnce,
    /// One transactional producer per instance commits outputs, changelog records and the
    /// consumed offsets (KIP-447's `send_offsets_to_transaction`) together.
    ExactlyOnceV2,
}

impl std::str::FromStr for Guarantee {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "at_least_once" => Ok(Guarantee::AtLeastOnce),
            "exactly_once_v2" | "exactly_once_beta" => Ok(Guarantee::ExactlyOnceV2),
            other => Err(Error::Config(format!(
                "processing.guarantee={other}: expected at_least_once or exactly_once_v2"
            ))),
        }
    }
}

#[derive(Clone, Debug)]
pub struct StreamsConfig {
    pub application_id: String,
    pub bootstrap_servers: String,
    pub guarantee: Guarantee,
    pub state_dir: PathBuf,
    /// Default 30 s at_least_once, 100 ms exactly_once_v2 (Kafka's defaults).
    pub commit_interval: Duration,
    /// Replication factor of the internal topics (changelogs, repartition topics).
    pub replication_factor: i32,
    pub dead_letter_topic: Option<String>,
    /// Stop (after a final commit) once no record arrived for this long after the last one:
    /// for batch-like runs and benchmarks.
    pub exit_when_idle: Option<Duration>,
    /// `max.task.idle.ms`: how long a task reading several topics waits for one that has
    /// nothing buffered before it goes on without it (timestamp order, KIP-695).
    pub max_task_idle: TaskIdle,
    /// `buffered.records.per.partition` (1000): a partition waiting in timestamp order is
    /// paused once it holds this many records.
    pub buffered_records_per_partition: usize,
    /// Extra librdkafka properties for every client (e.g. `debug`).
    pub client: BTreeMap<String, String>,
}

impl StreamsConfig {
    pub fn new(application_id: &str, bootstrap_servers: &str) -> Self {
        StreamsConfig {
            application_id: application_id.to_string(),
            bootstrap_servers: bootstrap_servers.to_string(),
            guarantee: Guarantee::AtLeastOnce,
            state_dir: std::env::temp_dir().join("fjord-streams"),
            commit_interval: Duration::from_secs(30),
            replication_factor: 1,
            dead_letter_topic: None,
            exit_when_idle: None,
            max_task_idle: TaskIdle::UntilCaughtUp,
            buffered_records_per_partition: 1000,
            client: BTreeMap::new(),
        }
    }

    /// From Kafka-style properties; unknown keys go to the clients.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Self> {
        let get = |k: &str| props.get(k).cloned();
        let app = get("application.id")
            .ok_or_else(|| Error::Config("application.id is required".into()))?;
        let boot = get("bootstrap.servers")
            .ok_or_else(|| Error::Config("bootstrap.servers is required".into()))?;
        let mut c = StreamsConfig::new(&app, &boot);
        if let Some(g) = get("processing.guarantee") {
            c.guarantee = g.parse()?;
        }
        c.commit_interval = match get("commit.interval.ms") {
            Some(v) => Duration::from_millis(num(&v, "commit.interval.ms")?),
            None if c.guarantee == Guarantee::ExactlyOnceV2 => Duration::from_millis(100),
            None => Duration::from_secs(30),
        };
        if let Some(d) = get("state.dir") {
            c.state_dir = PathBuf::from(d);
        }
        if let Some(r) = get("replication.factor") {
            c.replication_factor = num(&r, "replication.factor")? as i32;
        }
        c.dead_letter_topic = get("errors.dead.letter.queue.topic.name");
        if let Some(v) = get("max.task.idle.ms") {
            c.max_task_idle = match v.trim().parse::<i64>() {
                Ok(-1) => TaskIdle::Never,
                Ok(0) => TaskIdle::UntilCaughtUp,
                Ok(ms) if ms > 0 => TaskIdle::For(Duration::from_millis(ms as u64)),
                _ => {
                    return Err(Error::Config(format!(
                        "max.task.idle.ms={v}: expected -1, 0 or a positive number of ms"
                    )))
                }
            };
        }
        if let Some(v) = get("buffered.records.per.partition") {
            c.buffered_records_per_partition = match num(&v, "buffered.records.per.partition")? {
                0 => {
                    return Err(Error::Config(
                        "buffered.records.per.partition=0: must be at least 1".into(),
                    ))
                }
                n => n as usize,
            };
        }
        for (k, v) in props {
            if !matches!(
                k.as_str(),
                "application.id"
                    | "bootstrap.servers"
                    | "processing.guarantee"
                    | "commit.interval.ms"
                    | "state.dir"
                    | "replication.factor"
                    | "errors.dead.letter.queue.topic.name"
                    | "max.task.idle.ms"
                    | "buffered.records.per.partition"
            ) {
                c.client.insert(k.clone(), v.clone());
            }
        }
        Ok(c)
    }
}

fn num(v: &str, key: &str) -> Result<u64> {
    v.parse()
        .map_err(|_| Error::Config(format!("{key}={v}: not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut p = BTreeMap::from([
            ("application.id".to_string(), "a".to_string()),
            ("bootstrap.servers".to_string(), "b:9092".to_string()),
        ]);
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        p
    }

    #[test]
    fn max_task_idle_and_buffered_records_as_kafka_streams_reads_them() {
        let c = StreamsConfig::from_properties(&props(&[])).unwrap();
        assert_eq!(c.max_task_idle, TaskIdle::UntilCaughtUp);
        assert_eq!(c.buffered_records_per_partition, 1000);
        let idle = |v| {
            StreamsConfig::from_properties(&props(&[("max.task.idle.ms", v)]))
                .map(|c| c.max_task_idle)
        };
        assert_eq!(idle("-1").unwrap(), TaskIdle::Never);
        assert_eq!(
            idle("250").unwrap(),
            TaskIdle::For(Duration::from_millis(250))
        );
        for bad in ["-2", "soon", ""] {
            let e = idle(bad).unwrap_err().to_string();
            assert!(e.contains("max.task.idle.ms"), "{e}");
        }
        let e = StreamsConfig::from_properties(&props(&[("buffered.records.per.partition", "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("buffered.records.per.partition"), "{e}");
        // Neither reaches librdkafka, which would refuse them.
        let c = StreamsConfig::from_properties(&props(&[("max.task.idle.ms", "0")])).unwrap();
        assert!(!c.client.contains_key("max.task.idle.ms"));
    }
}
