//! `fjord consume <topic>`: kafka-console-consumer without a group: assign
//! partitions, start at earliest/latest/an offset, Fetch from each leader and
//! print records in the DefaultMessageFormatter's shape; "Processed a total
//! of N messages" goes to stderr at the end.
//!
//! `--group G` consumes as a member of a consumer group instead: see
//! [`run_group`].

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use fjord_kafka::client::{
    decode_records, Client, ClientError, ConsumedRecord, KafkaError, Node, TopicInfo,
};
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::formatter::{Flags, Printer};
use crate::kafka::{Bootstrap, TopicArg};
use crate::Output;
use fjord_kafka::member::GroupMember;

/// `fjord consume ...`
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    topic: TopicArg,
    #[command(flatten)]
    bs: Bootstrap,
    /// Start at the earliest offset rather than the latest.
    #[arg(long = "from-beginning")]
    from_beginning: bool,
    /// Exit after this many messages.
    #[arg(long = "max-messages")]
    max_messages: Option<u64>,
    /// Read only this partition.
    #[arg(long)]
    partition: Option<i32>,
    /// Start offset: a number, `earliest` or `latest`.
    #[arg(long)]
    offset: Option<String>,
    /// Exit when no message arrives for this long (ms).
    #[arg(long = "timeout-ms")]
    timeout_ms: Option<u64>,
    /// Consume as a member of this consumer group (partitions assigned by the group, offsets committed).
    #[arg(long)]
    group: Option<String>,
    #[arg(long = "print-key")]
    print_key: bool,
    #[arg(long = "print-offset")]
    print_offset: bool,
    #[arg(long = "print-partition")]
    print_partition: bool,
    #[arg(long = "print-timestamp")]
    print_timestamp: bool,
    #[arg(long = "print-headers")]
    print_headers: bool,
    /// Separator printed between fields (default TAB).
    #[arg(long = "key-separator", default_value = "\t")]
    key_separator: String,
    #[command(flatten)]
    typed: crate::typed::TypedArgs,
    /// Formatter property as in kafka-console-consumer (repeatable): print.key,
    /// print.value, print.timestamp, print.partition, print.offset,
    /// print.headers, key.separator, line.separator, headers.separator,
    /// headers.key.separator, null.literal, key.deserializer,
    /// value.deserializer, headers.deserializer.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    property: Vec<String>,
    /// Most bytes per Fetch response.
    #[arg(long = "fetch-max-bytes", default_value_t = 50 << 20)]
    fetch_max_bytes: i32,
}

/// Where a partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    Earliest,
    Latest,
    At(i64),
}

fn parse_start(a: &ConsumeArgs) -> anyhow::Result<Start> {
    Ok(match a.offset.as_deref() {
        None if a.from_beginning => Start::Earliest,
        None => Start::Latest,
        Some("earliest") => Start::Earliest,
        Some("latest") => Start::Latest,
        Some(s) => match s.parse::<i64>() {
            Ok(o) if o >= 0 => Start::At(o),
            _ => bail!("--offset must be a non-negative number, 'earliest' or 'latest', not '{s}'"),
        },
    })
}

/// Run `fjord consume`.
pub async fn run(args: ConsumeArgs, out: Output) -> anyhow::Result<()> {
    let topic = args.topic.name()?;
    if let Some(g) = args.group.clone() {
        return run_group(&args, &topic, &g, out).await;
    }
    let start = parse_start(&args)?;
    let mut c = Consumer::open(&args.bs, &topic, start, args.fetch_max_bytes).await?;
    let info = &c.info;
    let parts: Vec<i32> = match args.partition {
        Some(p) if info.partitions.iter().any(|x| x.index == p) => vec![p],
        Some(p) => bail!("partition {p} of topic {topic} does not exist"),
        None => info.partitions.iter().map(|p| p.index).collect(),
    };
    c.init_positions(&parts, start).await?;
    let printer = Lines::new(&args, out)?;
    let mut decoder = crate::typed::Decoder::new(&args.typed)?;
    let mut count = 0u64;
    let max = args.max_messages;
    let idle = args.timeout_ms.map(Duration::from_millis);
    let mut last = Instant::now();
    let res: anyhow::Result<()> = async {
        loop {
            if max.is_some_and(|m| count >= m) {
                break;
            }
            let Some(wait) = poll_wait(idle, last) else {
                break;
            };
            let fetched = tokio::select! {
                r = c.poll(wait) => r?,
                _ = tokio::signal::ctrl_c() => break,
            };
            if fetched.is_empty() {
                continue;
            }
            last = Instant::now();
            let mut fetched = fetched;
            decoder.apply(&mut fetched).await;
            printer.print_all(&c.info.name, &fetched, max, &mut count)?;
        }
        Ok(())
    }
    .await;
    eprintln!("Processed a total of {count} messages");
    res
}

/// `fjord consume --group G`: consume as a member of consumer group G, like
/// kafka-console-consumer with `--group`. The group assigns the partitions
/// (range assignor, see [`GroupMember`]); each starts at the group's committed
/// offset, else at the earliest (`--from-beginning`) or latest offset. What
/// was printed is committed every second, before every rejoin and on exit,
/// and the member leaves the group on exit (Ctrl-C, SIGTERM, `--max-messages`,
/// `--timeout-ms`) so its partitions move at once.
async fn run_group(
    args: &ConsumeArgs,
    topic: &str,
    group: &str,
    out: Output,
) -> anyhow::Result<()> {
    if args.partition.is_some() {
        bail!("--partition cannot be used with --group: the group assigns the partitions");
    }
    let start = parse_start(args)?;
    if let Start::At(_) = start {
        bail!("--offset N cannot be used with --group: members start at the group's committed offsets (change them with fjord group reset-offsets)");
    }
    let mut c = Consumer::open(&args.bs, topic, start, args.fetch_max_bytes).await?;
    let cfg = c.client.config().clone();
    let mut member = GroupMember::new(cfg, group, vec![topic.to_string()]);
    let printer = Lines::new(args, out)?;
    let mut decoder = crate::typed::Decoder::new(&args.typed)?;
    let mut count = 0u64;
    let max = args.max_messages;
    let idle = args.timeout_ms.map(Duration::from_millis);
    // Next offset to commit per partition (one past the last record printed).
    let mut printed: BTreeMap<i32, i64> = BTreeMap::new();
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    let mut last_commit = Instant::now();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let res: anyhow::Result<()> = async {
        'generation: loop {
            let assigned = tokio::select! {
                r = member.join(&mut c.client) => r?,
                _ = tokio::signal::ctrl_c() => break 'generation,
                _ = term.recv() => break 'generation,
            };
            let parts: Vec<i32> = assigned.get(topic).cloned().unwrap_or_default();
            let offs = member.committed(&mut c.client, topic, &parts).await?;
            c.info = c.client.topic(topic, false).await?;
            c.positions.clear();
            printed.clear();
            committed.clear();
            let missing: Vec<i32> = parts
                .iter()
                .filter(|p| !offs.contains_key(p))
                .copied()
                .collect();
            for (p, o) in &offs {
                c.positions.insert(*p, *o);
                committed.insert(*p, *o);
            }
            if !missing.is_empty() {
                let found = c.client.list_offsets(&c.info, &missing, c.reset_to).await?;
                for p in missing {
                    let o = found.get(&p).copied().flatten().map_or(0, |(o, _)| o);
                    c.positions.insert(p, o);
                }
            }
            let mut last = Instant::now();
            loop {
                if max.is_some_and(|m| count >= m) {
                    break 'generation;
                }
                let due: BTreeMap<i32, i64> = printed
                    .iter()
                    .filter(|(p, o)| committed.get(p) != Some(o))
                    .map(|(p, o)| (*p, *o))
                    .collect();
                if member.needs_rejoin() {
                    // Hand over what we printed before the partitions move.
                    let _ = member.commit(topic, &due).await;
                    continue 'generation;
                }
                if !due.is_empty() && last_commit.elapsed() >= Duration::from_secs(1) {
                    if member.commit(topic, &due).await? {
                        committed.extend(due);
                    }
                    last_commit = Instant::now();
                }
                let Some(wait) = poll_wait(idle, last) else {
                    break 'generation;
                };
                if c.positions.is_empty() {
                    // An idle member (more members than partitions) just heartbeats.
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = tokio::signal::ctrl_c() => break 'generation,
                        _ = term.recv() => break 'generation,
                    }
                }
                let fetched = tokio::select! {
                    r = c.poll(wait) => r?,
                    _ = tokio::signal::ctrl_c() => break 'generation,
                    _ = term.recv() => break 'generation,
                };
                if fetched.is_empty() {
                    continue;
                }
                last = Instant::now();
                let mut fetched = fetched;
                decoder.apply(&mut fetched).await;
                printed.extend(printer.print_all(&c.info.name, &fetched, max, &mut count)?);
            }
        }
        Ok(())
    }
    .await;
    if member.active() {
        let due: BTreeMap<i32, i64> = printed
            .iter()
            .filter(|(p, o)| committed.get(p) != Some(o))
            .map(|(p, o)| (*p, *o))
            .collect();
        let committed_ok = member.commit(topic, &due).await;
        member.leave().await;
        if res.is_ok() {
            if let Err(e) = committed_ok {
                eprintln!("Processed a total of {count} messages");
                return Err(anyhow::Error::new(e).context("final offset commit"));
            }
        }
    }
    eprintln!("Processed a total of {count} messages");
    res
}

/// How long the next poll may wait: at most 500 ms, and None once
/// `--timeout-ms` (`idle`) has passed since the last message.
fn poll_wait(idle: Option<Duration>, last: Instant) -> Option<Duration> {
    let most = Duration::from_millis(500);
    match idle {
        Some(t) => {
            let left = t.saturating_sub(last.elapsed());
            (!left.is_zero()).then(|| left.min(most))
        }
        None => Some(most),
    }
}

/// Fetch state: the next offset per partition, one Fetch per leader (also
/// `fjord dlq`'s reader).
pub(crate) struct Consumer {
    client: Client,
    pub(crate) info: TopicInfo,
    positions: BTreeMap<i32, i64>,
    /// Where an out-of-range position goes: -2 earliest, -1 latest.
    reset_to: i64,
    fetch_max_bytes: i32,
}

impl Consumer {
    /// Connect and look `topic` up; no partition has a position yet.
    pub(crate) async fn open(
        bs: &Bootstrap,
        topic: &str,
        start: Start,
        fetch_max_bytes: i32,
    ) -> anyhow::Result<Consumer> {
        let mut client = bs.connect().await?;
        let info = client
            .topic(topic, false)
            .await
            .with_context(|| format!("topic {topic}"))?;
        Ok(Consumer {
            client,
            info,
            positions: BTreeMap::new(),
            reset_to: if start == Start::Earliest { -2 } else { -1 },
            fetch_max_bytes: fetch_max_bytes.max(1024),
        })
    }

    pub(crate) async fn init_positions(
        &mut self,
        parts: &[i32],
        start: Start,
    ) -> anyhow::Result<()> {
        match start {
            Start::At(o) => {
                for p in parts {
                    self.positions.insert(*p, o);
                }
            }
            Start::Earliest | Start::Latest => {
                let ts = if start == Start::Earliest { -2 } else { -1 };
                let offs = self.client.list_offsets(&self.info, parts, ts).await?;
                for p in parts {
                    let o = offs.get(p).copied().flatten().map_or(0, |(o, _)| o);
                    self.positions.insert(*p, o);
                }
            }
        }
        Ok(())
    }

    /// The high watermark of each of `parts` now: where a read of "what is
    /// there so far" stops.
    pub(crate) async fn ends(&mut self, parts: &[i32]) -> anyhow::Result<BTreeMap<i32, i64>> {
        let offs = self.client.list_offsets(&self.info, parts, -1).await?;
        Ok(parts
            .iter()
            .map(|p| (*p, offs.get(p).copied().flatten().map_or(0, |(o, _)| o)))
            .collect())
    }

    /// The next offset to read of partition `p`.
    pub(crate) fn position(&self, p: i32) -> i64 {
        self.positions.get(&p).copied().unwrap_or(0)
    }

    async fn refresh(&mut self) -> anyhow::Result<()> {
        self.info = self.client.topic(&self.info.name.clone(), false).await?;
        Ok(())
    }

    /// One round of Fetches (one per leader); records in partition order.
    pub(crate) async fn poll(
        &mut self,
        wait: Duration,
    ) -> anyhow::Result<Vec<(i32, ConsumedRecord)>> {
        let by_leader = self.info.by_leader(self.positions.keys().copied());
        let leaders = by_leader.len().max(1) as u32;
        let mut out = Vec::new();
        let mut stale = false;
        let mut reset = Vec::new();
        for (leader, parts) in by_leader {
            if leader < 0 {
                stale = true;
                continue;
            }
            let topic = FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(self.info.name.clone())))
                .with_partitions(
                    parts
                        .iter()
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(*p)
                                .with_fetch_offset(self.positions.get(p).copied().unwrap_or(0))
                                .with_partition_max_bytes(self.fetch_max_bytes)
                        })
                        .collect(),
                );
            let max_wait = (wait / leaders).as_millis().clamp(1, 30_000) as i32;
            let req = FetchRequest::default()
                .with_max_wait_ms(max_wait)
                .with_min_bytes(1)
                .with_max_bytes(self.fetch_max_bytes)
                .with_topics(vec![topic]);
            let extra = Duration::from_millis(max_wait as u64);
            let conn = self.client.conn(Node::Id(leader)).await?;
            let resp = match conn.call_wait(&req, 12, extra).await {
                Ok(r) => r,
                Err(ClientError::Io { .. } | ClientError::Timeout { .. }) => {
                    self.client.forget(leader);
                    stale = true;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if resp.error_code != 0 {
                stale = true;
                continue;
            }
            for t in resp.responses {
                for pr in t.partitions {
                    let p = pr.partition_index;
                    match pr.error_code.err() {
                        None => {}
                        Some(ResponseError::OffsetOutOfRange) => {
                            reset.push(p);
                            continue;
                        }
                        // The leader moved or is not known yet: refresh metadata.
                        Some(
                            ResponseError::UnknownTopicOrPartition
                            | ResponseError::LeaderNotAvailable
                            | ResponseError::NotLeaderOrFollower
                            | ResponseError::FencedLeaderEpoch
                            | ResponseError::UnknownLeaderEpoch
                            | ResponseError::KafkaStorageError,
                        ) => {
                            stale = true;
                            continue;
                        }
                        Some(_) => {
                            return Err(ClientError::Kafka(KafkaError::new(pr.error_code, None)))
                                .with_context(|| format!("fetch {}-{p}", self.info.name));
                        }
                    }
                    let Some(data) = pr.records else { continue };
                    let from = self.positions.get(&p).copied().unwrap_or(0);
                    let recs = decode_records(&data, from)
                        .with_context(|| format!("records of {}-{p}", self.info.name))?;
                    if let Some(last) = recs.last() {
                        self.positions.insert(p, last.offset + 1);
                    }
                    out.extend(recs.into_iter().map(|r| (p, r)));
                }
            }
        }
        if !reset.is_empty() {
            let offs = self
                .client
                .list_offsets(&self.info, &reset, self.reset_to)
                .await?;
            for p in reset {
                if let Some(Some((o, _))) = offs.get(&p) {
                    self.positions.insert(p, *o);
                }
            }
        }
        if stale {
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.refresh().await?;
        }
        Ok(out)
    }
}

/// Prints batches of fetched records (the line layout is [`Printer`]'s).
struct Lines {
    printer: Printer,
}

impl Lines {
    fn new(a: &ConsumeArgs, out: Output) -> anyhow::Result<Self> {
        let flags = Flags {
            key: a.print_key,
            offset: a.print_offset,
            partition: a.print_partition,
            timestamp: a.print_timestamp,
            headers: a.print_headers,
            key_separator: &a.key_separator,
        };
        Ok(Lines {
            printer: Printer::new(flags, &a.property, out)?,
        })
    }

    /// Print `fetched` to stdout until `count` reaches `max`; returns, per
    /// partition, the offset after the last record printed.
    fn print_all(
        &self,
        topic: &str,
        fetched: &[(i32, ConsumedRecord)],
        max: Option<u64>,
        count: &mut u64,
    ) -> anyhow::Result<BTreeMap<i32, i64>> {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        let mut next = BTreeMap::new();
        for (p, r) in fetched {
            if max.is_some_and(|m| *count >= m) {
                break;
            }
            self.printer.print(&mut lock, topic, *p, r)?;
            next.insert(*p, r.offset + 1);
            *count += 1;
        }
        lock.flush().ok();
        Ok(next)
    }
}
