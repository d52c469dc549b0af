//! `fjord dlq inspect <topic>` and `fjord dlq replay <dlq-topic> --to <topic>`:
//! the dead-letter topics Kafka Connect fills (`errors.deadletterqueue.*`,
//! fjord-connect's and Kafka's alike). `inspect` reads what the topic holds
//! now and shows each record with its `__connect.errors.*` headers decoded:
//! where it came from, the connector and task, the stage that refused it and
//! the exception. `replay` sends them (all, or one stage's) to a topic once
//! the cause is fixed: original key, value and headers, the error headers
//! removed; it says how many it sent.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Args, Subcommand};
use fjord_kafka::client::{ConsumedRecord, ProducerRecord};
use serde_json::{json, Value};

use crate::consume::{Consumer, Start};
use crate::kafka::{text, Bootstrap};
use crate::produce::Producer;
use crate::Output;

/// The prefix of the headers Connect adds to a dead-lettered record.
const ERROR_HEADER: &str = "__connect.errors.";
/// Records sent per Produce round by `replay`.
const REPLAY_BATCH: usize = 500;
/// How long a read of the topic may take before it gives up.
const READ_PATIENCE: Duration = Duration::from_secs(60);

/// `fjord dlq ...`
#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    cmd: DlqCmd,
}

#[derive(Debug, Subcommand)]
enum DlqCmd {
    /// List the dead-lettered records with their error headers decoded.
    Inspect {
        /// The dead-letter topic.
        topic: String,
        #[command(flatten)]
        from: From,
        #[command(flatten)]
        bs: Bootstrap,
    },
    /// Send the dead-lettered records to a topic again, error headers removed.
    Replay {
        /// The dead-letter topic.
        topic: String,
        /// The topic to send them to (usually the one they came from).
        #[arg(long)]
        to: String,
        /// Only the records refused at this stage (Connect's names: KEY_CONVERTER,
        /// VALUE_CONVERTER, HEADER_CONVERTER, TRANSFORMATION, TASK_PUT, ...).
        #[arg(long = "where-stage")]
        where_stage: Option<String>,
        #[command(flatten)]
        from: From,
        #[command(flatten)]
        bs: Bootstrap,
    },
}

/// Where reading starts.
#[derive(Debug, Args)]
struct From {
    /// Start at this offset in every partition (default: the earliest).
    #[arg(long = "from-offset")]
    from_offset: Option<i64>,
}

impl From {
    fn start(&self) -> anyhow::Result<Start> {
        match self.from_offset {
            None => Ok(Start::Earliest),
            Some(o) if o >= 0 => Ok(Start::At(o)),
            Some(o) => bail!("--from-offset must be a non-negative number, not {o}"),
        }
    }
}

/// One dead-lettered record: where it is, and what Connect said about it.
struct Dead {
    partition: i32,
    rec: ConsumedRecord,
    /// The `__connect.errors.*` headers by their short name (`topic`, `stage`, ...).
    error: BTreeMap<String, String>,
}

impl Dead {
    fn of(partition: i32, rec: ConsumedRecord) -> Dead {
        let error = rec
            .headers
            .iter()
            .filter_map(|(k, v)| {
                let short = k.strip_prefix(ERROR_HEADER)?;
                Some((
                    short.to_string(),
                    v.as_deref().map(text).unwrap_or_default(),
                ))
            })
            .collect();
        Dead {
            partition,
            rec,
            error,
        }
    }

    fn err(&self, k: &str) -> &str {
        self.error.get(k).map_or("?", String::as_str)
    }

    /// The record as it was before it was dead-lettered.
    fn original(&self) -> ProducerRecord {
        ProducerRecord {
            key: self.rec.key.clone(),
            value: self.rec.value.clone(),
            headers: self
                .rec
                .headers
                .iter()
                .filter(|(k, _)| !k.starts_with(ERROR_HEADER))
                .cloned()
                .collect(),
            timestamp: self.rec.timestamp,
        }
    }

    fn json(&self) -> Value {
        let opt = |b: &Option<bytes::Bytes>| b.as_deref().map(text);
        json!({
            "partition": self.partition,
            "offset": self.rec.offset,
            "timestamp": self.rec.timestamp,
            "key": opt(&self.rec.key),
            "value": opt(&self.rec.value),
            "headers": self.original().headers.iter()
                .map(|(k, v)| (k.clone(), json!(opt(v))))
                .collect::<serde_json::Map<_, _>>(),
            "error": self.error,
        })
    }

    fn print(&self, topic: &str) {
        let opt = |b: &Option<bytes::Bytes>| b.as_deref().map_or("null".to_string(), text);
        println!(
            "{topic}[{}]@{}  from {}[{}]@{}  connector={} task={} stage={} class={}",
            self.partition,
            self.rec.offset,
            self.err("topic"),
            self.err("partition"),
            self.err("offset"),
            self.err("connector.name"),
            self.err("task.id"),
            self.err("stage"),
            self.err("class.name"),
        );
        println!(
            "  error: {}: {}",
            self.err("exception.class.name"),
            self.err("exception.message")
        );
        println!("  key: {}", opt(&self.rec.key));
        println!("  value: {}", opt(&self.rec.value));
    }
}

/// Every record of `topic` from `start` up to its end as of now, in
/// partition then offset order.
async fn read_all(bs: &Bootstrap, topic: &str, start: Start) -> anyhow::Result<Vec<Dead>> {
    let mut c = Consumer::open(bs, topic, start, 50 << 20).await?;
    let parts: Vec<i32> = c.info.partitions.iter().map(|p| p.index).collect();
    c.init_positions(&parts, start).await?;
    let ends = c.ends(&parts).await?;
    let mut out: Vec<Dead> = Vec::new();
    let deadline = Instant::now() + READ_PATIENCE;
    while ends.iter().any(|(p, end)| c.position(*p) < *end) {
        if Instant::now() > deadline {
            bail!("{topic}: could not read up to its end within {READ_PATIENCE:?}");
        }
        for (p, r) in c.poll(Duration::from_millis(200)).await? {
            if ends.get(&p).is_some_and(|end| r.offset < *end) {
                out.push(Dead::of(p, r));
            }
        }
    }
    out.sort_by_key(|d| (d.partition, d.rec.offset));
    Ok(out)
}

pub async fn run(args: DlqArgs, out: Output) -> anyhow::Result<()> {
    match args.cmd {
        DlqCmd::Inspect { topic, from, bs } => {
            let dead = read_all(&bs, &topic, from.start()?).await?;
            match out {
                Output::Json => println!("{}", Value::Array(dead.iter().map(Dead::json).collect())),
                Output::Text => {
                    for d in &dead {
                        d.print(&topic);
                    }
                    eprintln!("{} dead-lettered record(s) in {topic}", dead.len());
                }
            }
        }
        DlqCmd::Replay {
            topic,
            to,
            where_stage,
            from,
            bs,
        } => {
            let dead = read_all(&bs, &topic, from.start()?).await?;
            let chosen: Vec<&Dead> = dead
                .iter()
                .filter(|d| {
                    where_stage
                        .as_deref()
                        .is_none_or(|s| d.err("stage").eq_ignore_ascii_case(s))
                })
                .collect();
            let mut prod = Producer::open(&bs, &to, 5).await?;
            for batch in chosen.chunks(REPLAY_BATCH) {
                prod.send(batch.iter().map(|d| d.original()).collect())
                    .await?;
            }
            let skipped = dead.len() - chosen.len();
            match out {
                Output::Json => println!(
                    "{}",
                    json!({"from": topic, "to": to, "replayed": chosen.len(), "skipped": skipped})
                ),
                Output::Text => println!(
                    "Replayed {} record(s) from {topic} to {to} ({skipped} skipped by --where-stage)",
                    chosen.len()
                ),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn error_headers_are_decoded_then_dropped_from_the_original() {
        let h = |k: &str, v: &str| (k.to_string(), Some(Bytes::from(v.to_string())));
        let d = Dead::of(
            2,
            ConsumedRecord {
                offset: 7,
                timestamp: 1000,
                log_append_time: false,
                key: Some(Bytes::from_static(b"k1")),
                value: Some(Bytes::from_static(b"{bad")),
                headers: vec![
                    h("origin", "h1"),
                    h("__connect.errors.topic", "orders"),
                    h("__connect.errors.stage", "VALUE_CONVERTER"),
                    ("trace".to_string(), None),
                ],
            },
        );
        assert_eq!(d.err("topic"), "orders");
        assert_eq!(d.err("stage"), "VALUE_CONVERTER");
        assert_eq!(d.err("task.id"), "?");
        let o = d.original();
        assert_eq!(o.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(o.value.as_deref(), Some(&b"{bad"[..]));
        assert_eq!(o.timestamp, 1000);
        assert_eq!(
            o.headers,
            vec![h("origin", "h1"), ("trace".to_string(), None)]
        );
        let j = d.json();
        assert_eq!(j["error"]["stage"], "VALUE_CONVERTER");
        assert_eq!(j["headers"]["origin"], "h1");
        assert!(j["headers"].get("__connect.errors.topic").is_none());
    }
}
