//! `fjord group`: what kafka-consumer-groups does — list, describe (offsets,
//! members, state), reset-offsets, delete, delete-offsets — against any
//! broker (the group's coordinator is found with FindCoordinator). The Kafka
//! calls are `fjord_kafka::admin`'s; this file holds the flags, the plans
//! (which partitions, which offsets) and the tables.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use fjord_kafka::admin::{self, MemberDescription, TopicPartition};
use fjord_kafka::client::{Client, ClientConfig, Conn, KafkaError};

use crate::Output;

/// `fjord group ...`
#[derive(Debug, Args)]
pub struct GroupArgs {
    /// A broker to bootstrap from.
    #[arg(
        long = "bootstrap-server",
        global = true,
        default_value = "127.0.0.1:9092"
    )]
    bootstrap: String,
    /// Client properties (`security.protocol`, `sasl.*`, `ssl.*`), as Kafka's tools take them.
    #[arg(long = "command-config", global = true)]
    command_config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    cmd: GroupCmd,
}

#[derive(Debug, Subcommand)]
enum GroupCmd {
    /// List every consumer group in the cluster.
    List,
    /// Describe a group: offsets and lag (default), members or state.
    Describe {
        #[arg(long)]
        group: String,
        #[arg(long)]
        members: bool,
        #[arg(long)]
        state: bool,
        #[arg(long)]
        offsets: bool,
    },
    /// Reset a group's committed offsets (dry run unless --execute).
    ResetOffsets {
        #[arg(long)]
        group: String,
        /// `topic` or `topic:0,1,2`; repeatable.
        #[arg(long)]
        topic: Vec<String>,
        #[arg(long)]
        all_topics: bool,
        #[arg(long)]
        to_earliest: bool,
        #[arg(long)]
        to_latest: bool,
        #[arg(long)]
        to_offset: Option<i64>,
        #[arg(long, allow_hyphen_values = true)]
        shift_by: Option<i64>,
        /// `YYYY-MM-DDTHH:mm:SS.sss` (UTC) or epoch milliseconds.
        #[arg(long)]
        to_datetime: Option<String>,
        /// ISO-8601 duration back from now, e.g. `PT1H`, `P1DT2H30M`.
        #[arg(long)]
        by_duration: Option<String>,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        execute: bool,
    },
    /// Delete a group and its committed offsets (only when it has no members).
    Delete {
        #[arg(long)]
        group: String,
    },
    /// Delete a group's committed offsets for topics (or `topic:0,1`).
    DeleteOffsets {
        #[arg(long)]
        group: String,
        #[arg(long)]
        topic: Vec<String>,
    },
}

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

fn print_table(rows: &[Vec<String>]) {
    let cols = rows.first().map(|r| r.len()).unwrap_or(0);
    let mut w = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<w$}", c, w = w[i]))
            .collect();
        println!("{}", line.join(" ").trim_end());
    }
}

/// How long the CLI looks for a group's coordinator.
const COORDINATOR_PATIENCE: Duration = Duration::from_secs(5);

/// A client on the bootstrap broker, and a connection to `group`'s coordinator
/// with its address.
async fn coordinator(cfg: &ClientConfig, group: &str) -> Result<(Client, Conn, String)> {
    let bs = &cfg.bootstrap;
    let mut client = Client::connect(cfg.clone())
        .await
        .with_context(|| format!("bootstrap {bs}"))?;
    let addr = admin::find_coordinator(&mut client, group, COORDINATOR_PATIENCE).await?;
    let conn = Conn::open(&addr, cfg).await?;
    Ok((client, conn, addr))
}

/// The partitions `--topic` names (`topic` or `topic:0,1,2`), each topic
/// checked to exist.
async fn named_partitions(
    client: &mut Client,
    specs: &[String],
) -> Result<BTreeSet<TopicPartition>> {
    let names: Vec<String> = specs
        .iter()
        .map(|t| t.split(':').next().unwrap_or("").to_string())
        .collect();
    let leaders = admin::partition_leaders(client, &names).await?;
    let mut out = BTreeSet::new();
    for spec in specs {
        let (t, ps) = match spec.split_once(':') {
            Some((t, ps)) => (t.to_string(), Some(ps)),
            None => (spec.clone(), None),
        };
        let known = leaders
            .get(&t)
            .ok_or_else(|| anyhow!("topic {t} does not exist"))?;
        match ps {
            None => out.extend(known.keys().map(|p| (t.clone(), *p))),
            Some(ps) => {
                for p in ps.split(',') {
                    out.insert((
                        t.clone(),
                        p.trim()
                            .parse()
                            .with_context(|| format!("bad partition {p}"))?,
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Run `fjord group ...`.
pub async fn run(args: GroupArgs, output: Output) -> Result<()> {
    let bs = args.bootstrap.clone();
    let cfg = crate::kafka::client_config(&bs, args.command_config.as_deref())?;
    match args.cmd {
        GroupCmd::List => {
            let mut client = Client::connect(cfg.clone())
                .await
                .with_context(|| format!("bootstrap {bs}"))?;
            let groups = admin::list_groups(&mut client).await?;
            match output {
                Output::Json => println!("{}", serde_json::json!(groups)),
                Output::Text => groups.iter().for_each(|g| println!("{g}")),
            }
            Ok(())
        }
        GroupCmd::Describe {
            group,
            members,
            state,
            offsets: _,
        } => {
            let (mut client, mut coord, coord_addr) = coordinator(&cfg, &group).await?;
            let d = admin::describe_group(&mut coord, &group).await?;
            if d.state == "Dead" {
                bail!("Consumer group '{group}' does not exist.");
            }
            if state {
                let rows = vec![
                    vec![
                        "GROUP".into(),
                        "COORDINATOR".into(),
                        "ASSIGNMENT-STRATEGY".into(),
                        "STATE".into(),
                        "#MEMBERS".into(),
                    ],
                    vec![
                        group.clone(),
                        coord_addr.clone(),
                        dash(Some(&d.protocol).filter(|p| !p.is_empty())),
                        d.state.clone(),
                        d.members.len().to_string(),
                    ],
                ];
                return emit(rows, output);
            }
            if members {
                let mut rows = vec![vec![
                    "GROUP".into(),
                    "CONSUMER-ID".into(),
                    "HOST".into(),
                    "CLIENT-ID".into(),
                    "#PARTITIONS".into(),
                ]];
                for m in &d.members {
                    rows.push(vec![
                        group.clone(),
                        m.id.clone(),
                        m.host.clone(),
                        m.client_id.clone(),
                        m.assignment.len().to_string(),
                    ]);
                }
                if d.members.is_empty() && output == Output::Text {
                    eprintln!("Consumer group '{group}' has no active members.");
                }
                return emit(rows, output);
            }
            let committed = admin::committed_offsets(&mut coord, &group).await?;
            let mut owner: BTreeMap<TopicPartition, &MemberDescription> = BTreeMap::new();
            for m in &d.members {
                for tp in &m.assignment {
                    owner.insert(tp.clone(), m);
                }
            }
            let all: BTreeSet<TopicPartition> =
                committed.keys().chain(owner.keys()).cloned().collect();
            let ends = admin::offsets_at(&mut client, &all, -1).await?;
            let mut rows = vec![[
                "GROUP",
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "CONSUMER-ID",
                "HOST",
                "CLIENT-ID",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()];
            for tp in &all {
                let cur = committed.get(tp).copied();
                let end = ends.get(tp).copied();
                let lag = match (cur, end) {
                    (Some(c), Some(e)) => Some((e - c).max(0)),
                    _ => None,
                };
                let m = owner.get(tp);
                rows.push(vec![
                    group.clone(),
                    tp.0.clone(),
                    tp.1.to_string(),
                    dash(cur),
                    dash(end),
                    dash(lag),
                    dash(m.map(|m| m.id.clone())),
                    dash(m.map(|m| m.host.clone())),
                    dash(m.map(|m| m.client_id.clone())),
                ]);
            }
            if d.members.is_empty() && output == Output::Text {
                eprintln!("Consumer group '{group}' has no active members.");
            }
            emit(rows, output)
        }
        GroupCmd::ResetOffsets {
            group,
            topic,
            all_topics,
            to_earliest,
            to_latest,
            to_offset,
            shift_by,
            to_datetime,
            by_duration,
            dry_run: _,
            execute,
        } => {
            let (mut client, mut coord, _) = coordinator(&cfg, &group).await?;
            let d = admin::describe_group(&mut coord, &group).await?;
            if execute && !(d.state == "Empty" || d.state == "Dead") {
                bail!(
                    "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
                    d.state
                );
            }
            let committed = admin::committed_offsets(&mut coord, &group).await?;
            let parts: BTreeSet<TopicPartition> = if all_topics {
                committed.keys().cloned().collect()
            } else if topic.is_empty() {
                bail!("one of --topic or --all-topics is required");
            } else {
                named_partitions(&mut client, &topic).await?
            };
            let earliest = admin::offsets_at(&mut client, &parts, -2).await?;
            let latest = admin::offsets_at(&mut client, &parts, -1).await?;
            let at = match (&to_datetime, &by_duration) {
                (Some(dt), _) => Some(parse_datetime(dt)?),
                (None, Some(d)) => Some(now_ms() - parse_duration(d)?),
                _ => None,
            };
            let by_time = match at {
                Some(ts) => Some(admin::offsets_at(&mut client, &parts, ts).await?),
                None => None,
            };
            let mut plan = BTreeMap::new();
            for tp in &parts {
                let lo = earliest.get(tp).copied().unwrap_or(0);
                let hi = latest.get(tp).copied().unwrap_or(lo);
                let target = if to_earliest {
                    lo
                } else if to_latest {
                    hi
                } else if let Some(o) = to_offset {
                    o
                } else if let Some(s) = shift_by {
                    committed.get(tp).copied().unwrap_or(lo) + s
                } else if let Some(m) = &by_time {
                    m.get(tp).copied().filter(|o| *o >= 0).unwrap_or(hi)
                } else {
                    bail!("one of --to-earliest, --to-latest, --to-offset, --shift-by, --to-datetime, --by-duration is required");
                };
                plan.insert(tp.clone(), target.clamp(lo, hi));
            }
            if execute {
                admin::commit_offsets(&mut coord, &group, &plan).await?;
            }
            let mut rows = vec![vec![
                "GROUP".into(),
                "TOPIC".into(),
                "PARTITION".into(),
                "NEW-OFFSET".into(),
            ]];
            for ((t, p), o) in &plan {
                rows.push(vec![group.clone(), t.clone(), p.to_string(), o.to_string()]);
            }
            emit(rows, output)
        }
        GroupCmd::Delete { group } => {
            let (_, mut coord, _) = coordinator(&cfg, &group).await?;
            admin::delete_group(&mut coord, &group).await?;
            println!("Deletion of requested consumer groups ('{group}') was successful.");
            Ok(())
        }
        GroupCmd::DeleteOffsets { group, topic } => {
            if topic.is_empty() {
                bail!("--topic is required");
            }
            let (_, mut coord, _) = coordinator(&cfg, &group).await?;
            let committed = admin::committed_offsets(&mut coord, &group).await?;
            let mut grouped: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for spec in &topic {
                match spec.split_once(':') {
                    Some((t, ps)) => {
                        for p in ps.split(',') {
                            grouped
                                .entry(t.to_string())
                                .or_default()
                                .push(p.trim().parse()?);
                        }
                    }
                    None => {
                        let e = grouped.entry(spec.clone()).or_default();
                        e.extend(committed.keys().filter(|(t, _)| t == spec).map(|(_, p)| *p));
                    }
                }
            }
            let results = admin::delete_offsets(&mut coord, &group, &grouped).await?;
            let mut rows = vec![vec!["TOPIC".into(), "PARTITION".into(), "STATUS".into()]];
            for ((t, p), e) in results {
                rows.push(vec![
                    t,
                    p.to_string(),
                    if e == 0 {
                        "Successful".into()
                    } else {
                        format!("Error: {}", KafkaError::new(e, None).name())
                    },
                ]);
            }
            emit(rows, output)
        }
    }
}

fn emit(rows: Vec<Vec<String>>, output: Output) -> Result<()> {
    match output {
        Output::Text => {
            println!();
            print_table(&rows);
        }
        Output::Json => {
            let head = rows.first().cloned().unwrap_or_default();
            let objs: Vec<serde_json::Value> = rows[1..]
                .iter()
                .map(|r| {
                    serde_json::Value::Object(
                        head.iter()
                            .zip(r)
                            .map(|(k, v)| (k.to_lowercase(), serde_json::Value::String(v.clone())))
                            .collect(),
                    )
                })
                .collect();
            println!("{}", serde_json::Value::Array(objs));
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:mm:SS[.sss]` in UTC (a trailing `Z` allowed), or epoch ms.
fn parse_datetime(s: &str) -> Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let s = s.trim_end_matches('Z');
    let (date, time) = s
        .split_once('T')
        .ok_or_else(|| anyhow!("bad datetime {s}: want YYYY-MM-DDTHH:mm:SS.sss"))?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow!("bad date {date}"))?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow!("bad time {time}"))?;
    if d.len() != 3 || t.len() < 2 {
        bail!("bad datetime {s}");
    }
    let ms: i64 = format!("{:0<3}", &frac[..frac.len().min(3)])
        .parse()
        .unwrap_or(0);
    let secs = days_from_civil(d[0], d[1], d[2]) * 86_400
        + t[0] * 3600
        + t[1] * 60
        + t.get(2).copied().unwrap_or(0);
    Ok(secs * 1000 + ms)
}

/// ISO-8601 duration (`PnDTnHnMnS`) in milliseconds.
fn parse_duration(s: &str) -> Result<i64> {
    let body = s
        .strip_prefix('P')
        .ok_or_else(|| anyhow!("bad duration {s}: want e.g. PT1H"))?;
    let mut ms = 0i64;
    let mut num = String::new();
    let mut in_time = false;
    for c in body.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' | '.' => num.push(c),
            u => {
                let v: f64 = num.parse().map_err(|_| anyhow!("bad duration {s}"))?;
                num.clear();
                let unit = match (u, in_time) {
                    ('D', false) => 86_400_000.0,
                    ('H', true) => 3_600_000.0,
                    ('M', true) => 60_000.0,
                    ('S', true) => 1000.0,
                    _ => bail!("bad duration {s}"),
                };
                ms += (v * unit) as i64;
            }
        }
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_and_durations() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000").unwrap(), 0);
        assert_eq!(
            parse_datetime("2020-02-29T12:34:56.789").unwrap(),
            1_582_979_696_789
        );
        assert_eq!(parse_duration("PT1H").unwrap(), 3_600_000);
        assert_eq!(parse_duration("P1DT2M").unwrap(), 86_400_000 + 120_000);
    }
}
