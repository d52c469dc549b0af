//! StreamsConfig: Kafka Streams' property names (`application.id`, `bootstrap.servers`,
//! `processing.guarantee`, `state.dir`, `commit.interval.ms`, `replication.factor`,
//! `errors.dead.letter.queue.topic.name` as KIP-1034), plus librdkafka properties passed through.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

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
