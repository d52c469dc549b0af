//! `fjord offsets <topic>`: GetOffsetShell (`topic:partition:offset` lines) —
//! latest (-1), earliest (-2), max-timestamp (-3) or the first offset at or
//! after a timestamp in ms, asked of each partition's leader.

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;

use crate::kafka::Bootstrap;
use crate::Output;

/// `fjord offsets ...`
#[derive(Debug, Args)]
pub struct OffsetsArgs {
    /// Topic (default: every topic).
    topic: Option<String>,
    /// Topic (GetOffsetShell spelling).
    #[arg(long = "topic", short = 't', conflicts_with = "topic")]
    topic_flag: Option<String>,
    #[command(flatten)]
    bs: Bootstrap,
    /// -1 or latest, -2 or earliest, -3 or max-timestamp, or a timestamp in ms.
    #[arg(long, default_value = "-1", allow_hyphen_values = true)]
    time: String,
    /// Comma-separated partition ids (default: all).
    #[arg(long)]
    partitions: Option<String>,
}

fn parse_time(s: &str) -> anyhow::Result<i64> {
    Ok(match s {
        "latest" => -1,
        "earliest" => -2,
        "max-timestamp" => -3,
        _ => match s.parse::<i64>() {
            Ok(t) if t >= -3 => t,
            _ => bail!("--time must be -1/latest, -2/earliest, -3/max-timestamp or a timestamp in ms, not '{s}'"),
        },
    })
}

/// Run `fjord offsets`.
pub async fn run(args: OffsetsArgs, out: Output) -> anyhow::Result<()> {
    let ts = parse_time(&args.time)?;
    let wanted: Option<Vec<i32>> = match &args.partitions {
        None => None,
        Some(s) => Some(
            s.split(',')
                .filter(|x| !x.trim().is_empty())
                .map(|x| {
                    x.trim()
                        .parse::<i32>()
                        .with_context(|| format!("partition '{x}'"))
                })
                .collect::<anyhow::Result<_>>()?,
        ),
    };
    let mut c = args.bs.connect().await?;
    let name = args.topic.clone().or_else(|| args.topic_flag.clone());
    let topics = match &name {
        Some(n) => vec![c
            .topic(n, false)
            .await
            .with_context(|| format!("topic {n}"))?],
        None => c.topics(None, false).await?,
    };
    let mut rows = Vec::new();
    for t in &topics {
        let parts: Vec<i32> = t
            .partitions
            .iter()
            .map(|p| p.index)
            .filter(|p| wanted.as_ref().is_none_or(|w| w.contains(p)))
            .collect();
        if parts.is_empty() {
            continue;
        }
        let offs = c.list_offsets(t, &parts, ts).await?;
        for (p, o) in offs {
            rows.push((t.name.clone(), p, o));
        }
    }
    match out {
        Output::Text => {
            for (t, p, o) in &rows {
                let o = o.map(|(o, _)| o.to_string()).unwrap_or_default();
                println!("{t}:{p}:{o}");
            }
        }
        Output::Json => println!(
            "{}",
            serde_json::Value::Array(
                rows.iter()
                    .map(|(t, p, o)| json!({
                        "topic": t,
                        "partition": p,
                        "offset": o.map(|(o, _)| o),
                        "timestamp": o.map(|(_, ts)| ts),
                    }))
                    .collect()
            )
        ),
    }
    Ok(())
}
