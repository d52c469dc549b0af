//! `fjord log-dirs --describe`: kafka-log-dirs.sh. Each broker's log
//! directories with every replica's size and offset lag (DescribeLogDirs,
//! sent to each broker), printed as kafka-log-dirs prints them: two lines
//! saying which brokers were asked and answered, then its JSON document.
//! `--broker-ids` is kafka-log-dirs' `--broker-list` (that spelling is
//! already `--bootstrap-server`'s alias here, as in the console tools).

use std::collections::BTreeSet;

use anyhow::Context;
use clap::Args;
use fjord_kafka::broker_admin::describe_log_dirs;
use serde_json::json;

use crate::kafka::Bootstrap;
use crate::Output;

/// `fjord log-dirs ...`
#[derive(Debug, Args)]
pub struct LogDirsArgs {
    /// Describe the log directories (kafka-log-dirs' one action; accepted for habit).
    #[arg(long)]
    describe: bool,
    #[command(flatten)]
    bs: Bootstrap,
    /// Broker ids to ask, comma-separated (default: every live broker).
    #[arg(long = "broker-ids")]
    broker_ids: Option<String>,
    /// Topics to show, comma-separated (default: all).
    #[arg(long = "topic-list")]
    topic_list: Option<String>,
}

fn list(s: &Option<String>) -> Vec<String> {
    s.iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

pub async fn run(args: LogDirsArgs, out: Output) -> anyhow::Result<()> {
    let mut c = args.bs.connect().await?;
    c.metadata(Some(&[]), false).await?;
    let ids: Vec<i32> = match &args.broker_ids {
        None => c.brokers.keys().copied().collect(),
        Some(_) => list(&args.broker_ids)
            .iter()
            .map(|x| {
                x.parse::<i32>()
                    .with_context(|| format!("--broker-ids: '{x}'"))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let topics: BTreeSet<String> = list(&args.topic_list).into_iter().collect();
    let mut brokers = Vec::new();
    for id in &ids {
        let dirs = describe_log_dirs(&mut c, *id, None)
            .await
            .with_context(|| format!("broker {id}"))?;
        let dirs: Vec<_> = dirs
            .iter()
            .map(|d| {
                let partitions: Vec<_> = d
                    .replicas
                    .iter()
                    .filter(|r| topics.is_empty() || topics.contains(&r.topic))
                    .map(|r| {
                        json!({
                            "partition": format!("{}-{}", r.topic, r.partition),
                            "size": r.size,
                            "offsetLag": r.offset_lag,
                            "isFuture": false,
                        })
                    })
                    .collect();
                json!({"logDir": d.path, "error": null, "partitions": partitions})
            })
            .collect();
        brokers.push(json!({"broker": id, "logDirs": dirs}));
    }
    let doc = json!({"version": 1, "brokers": brokers});
    if out == Output::Text {
        let asked = ids
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        println!("Querying brokers for log directories information");
        println!("Received log directory information from brokers {asked}");
    }
    println!("{doc}");
    Ok(())
}
