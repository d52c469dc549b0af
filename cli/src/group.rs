//! `fjord group`: what kafka-consumer-groups does — list, describe (offsets,
//! members, state), reset-offsets, delete, delete-offsets — over the Kafka
//! protocol against any broker (the group's coordinator is found with
//! FindCoordinator). Requests use fixed, old, non-flexible versions every
//! fjord-broker serves, encoded by hand to keep the CLI light.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use clap::{Args, Subcommand};
use fjord_broker::client::{Client, ClientConfig, Conn as KConn, Node};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopicPartition;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

// ---------------------------------------------------------------- wire

struct Conn {
    sock: TcpStream,
    corr: i32,
}

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

fn need(b: &Bytes, n: usize) -> Result<()> {
    if b.remaining() < n {
        bail!("short response from broker");
    }
    Ok(())
}
fn get_i16(b: &mut Bytes) -> Result<i16> {
    need(b, 2)?;
    Ok(b.get_i16())
}
fn get_i32(b: &mut Bytes) -> Result<i32> {
    need(b, 4)?;
    Ok(b.get_i32())
}
fn get_i64(b: &mut Bytes) -> Result<i64> {
    need(b, 8)?;
    Ok(b.get_i64())
}
fn get_str(b: &mut Bytes) -> Result<String> {
    let n = get_i16(b)?;
    if n < 0 {
        return Ok(String::new());
    }
    need(b, n as usize)?;
    let s = b.split_to(n as usize);
    Ok(String::from_utf8_lossy(&s).into_owned())
}
fn get_bytes(b: &mut Bytes) -> Result<Bytes> {
    let n = get_i32(b)?;
    if n < 0 {
        return Ok(Bytes::new());
    }
    need(b, n as usize)?;
    Ok(b.split_to(n as usize))
}
fn get_len(b: &mut Bytes) -> Result<usize> {
    Ok(get_i32(b)?.max(0) as usize)
}

impl Conn {
    async fn open(addr: &str) -> Result<Conn> {
        let sock = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("timed out connecting to {addr}"))?
            .with_context(|| format!("cannot connect to {addr}"))?;
        Ok(Conn { sock, corr: 0 })
    }

    async fn call(&mut self, key: i16, version: i16, body: &[u8]) -> Result<Bytes> {
        self.corr += 1;
        let mut b = BytesMut::with_capacity(body.len() + 32);
        b.put_i32(0);
        b.put_i16(key);
        b.put_i16(version);
        b.put_i32(self.corr);
        put_str(&mut b, "fjord-cli");
        b.put_slice(body);
        let len = (b.len() - 4) as i32;
        b[..4].copy_from_slice(&len.to_be_bytes());
        self.sock.write_all(&b).await?;
        let fut = async {
            let n = self.sock.read_i32().await?;
            if !(4..=256 << 20).contains(&n) {
                bail!("bad response frame of {n} bytes");
            }
            let mut buf = vec![0u8; n as usize];
            self.sock.read_exact(&mut buf).await?;
            Ok::<_, anyhow::Error>(Bytes::from(buf))
        };
        let mut r = tokio::time::timeout(Duration::from_secs(30), fut)
            .await
            .map_err(|_| anyhow!("broker did not answer in time"))??;
        let corr = get_i32(&mut r)?;
        if corr != self.corr {
            bail!("response correlation id {corr} != {}", self.corr);
        }
        Ok(r)
    }
}

fn kafka_error(code: i16) -> &'static str {
    match code {
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        15 => "COORDINATOR_NOT_AVAILABLE",
        16 => "NOT_COORDINATOR",
        24 => "INVALID_GROUP_ID",
        25 => "UNKNOWN_MEMBER_ID",
        27 => "REBALANCE_IN_PROGRESS",
        68 => "NON_EMPTY_GROUP",
        69 => "GROUP_ID_NOT_FOUND",
        86 => "GROUP_SUBSCRIBED_TO_TOPIC",
        _ => "KAFKA_ERROR",
    }
}

#[derive(Debug, Clone)]
struct BrokerAddr {
    id: i32,
    addr: String,
}

/// Metadata v1: brokers and, for `topics` (None = all), partition leaders.
async fn metadata(
    bootstrap: &str,
    topics: Option<&[String]>,
) -> Result<(Vec<BrokerAddr>, BTreeMap<String, BTreeMap<i32, i32>>)> {
    let mut last = anyhow!("no bootstrap server");
    for addr in bootstrap
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let mut c = match Conn::open(addr).await {
            Ok(c) => c,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let mut body = BytesMut::new();
        match topics {
            None => body.put_i32(-1),
            Some(ts) => {
                body.put_i32(ts.len() as i32);
                for t in ts {
                    put_str(&mut body, t);
                }
            }
        }
        let mut r = c.call(3, 1, &body).await?;
        let mut brokers = Vec::new();
        for _ in 0..get_len(&mut r)? {
            let id = get_i32(&mut r)?;
            let host = get_str(&mut r)?;
            let port = get_i32(&mut r)?;
            let _rack = get_str(&mut r)?;
            brokers.push(BrokerAddr {
                id,
                addr: format!("{host}:{port}"),
            });
        }
        let _controller = get_i32(&mut r)?;
        let mut out = BTreeMap::new();
        for _ in 0..get_len(&mut r)? {
            let _err = get_i16(&mut r)?;
            let name = get_str(&mut r)?;
            let _internal = r.get_u8();
            let mut parts = BTreeMap::new();
            for _ in 0..get_len(&mut r)? {
                let _e = get_i16(&mut r)?;
                let p = get_i32(&mut r)?;
                let leader = get_i32(&mut r)?;
                for _ in 0..2 {
                    let n = get_len(&mut r)?;
                    need(&r, n * 4)?;
                    r.advance(n * 4);
                }
                parts.insert(p, leader);
            }
            if !parts.is_empty() {
                out.insert(name, parts);
            }
        }
        return Ok((brokers, out));
    }
    Err(last)
}

async fn find_coordinator(bootstrap: &str, group: &str) -> Result<String> {
    let addr = bootstrap
        .split(',')
        .next()
        .unwrap_or(bootstrap)
        .trim()
        .to_string();
    let mut c = Conn::open(&addr).await?;
    let mut body = BytesMut::new();
    put_str(&mut body, group);
    for _ in 0..20 {
        let mut r = c.call(10, 0, &body).await?;
        let code = get_i16(&mut r)?;
        let _id = get_i32(&mut r)?;
        let host = get_str(&mut r)?;
        let port = get_i32(&mut r)?;
        if code == 0 {
            return Ok(format!("{host}:{port}"));
        }
        if code != 15 {
            bail!("FindCoordinator for group {group}: {}", kafka_error(code));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("no coordinator available for group {group}")
}

struct MemberDesc {
    id: String,
    client_id: String,
    host: String,
    assignment: Vec<(String, i32)>,
}

struct GroupDesc {
    error: i16,
    state: String,
    protocol: String,
    members: Vec<MemberDesc>,
}

fn parse_assignment(mut b: Bytes) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    let parse = |b: &mut Bytes, out: &mut Vec<(String, i32)>| -> Result<()> {
        let _v = get_i16(b)?;
        for _ in 0..get_len(b)? {
            let t = get_str(b)?;
            for _ in 0..get_len(b)? {
                out.push((t.clone(), get_i32(b)?));
            }
        }
        Ok(())
    };
    if !b.is_empty() {
        let _ = parse(&mut b, &mut out);
    }
    out
}

async fn describe(coord: &mut Conn, group: &str) -> Result<GroupDesc> {
    let mut body = BytesMut::new();
    body.put_i32(1);
    put_str(&mut body, group);
    let mut r = coord.call(15, 0, &body).await?;
    let n = get_len(&mut r)?;
    if n == 0 {
        bail!("empty DescribeGroups answer");
    }
    let error = get_i16(&mut r)?;
    let _id = get_str(&mut r)?;
    let state = get_str(&mut r)?;
    let _pt = get_str(&mut r)?;
    let protocol = get_str(&mut r)?;
    let mut members = Vec::new();
    for _ in 0..get_len(&mut r)? {
        let id = get_str(&mut r)?;
        let client_id = get_str(&mut r)?;
        let host = get_str(&mut r)?;
        let _meta = get_bytes(&mut r)?;
        let assignment = parse_assignment(get_bytes(&mut r)?);
        members.push(MemberDesc {
            id,
            client_id,
            host,
            assignment,
        });
    }
    Ok(GroupDesc {
        error,
        state,
        protocol,
        members,
    })
}

/// OffsetFetch v2 with null topics: every committed offset of the group.
async fn fetch_offsets(coord: &mut Conn, group: &str) -> Result<BTreeMap<(String, i32), i64>> {
    let mut body = BytesMut::new();
    put_str(&mut body, group);
    body.put_i32(-1);
    let mut r = coord.call(9, 2, &body).await?;
    let mut out = BTreeMap::new();
    for _ in 0..get_len(&mut r)? {
        let t = get_str(&mut r)?;
        for _ in 0..get_len(&mut r)? {
            let p = get_i32(&mut r)?;
            let o = get_i64(&mut r)?;
            let _m = get_str(&mut r)?;
            let _e = get_i16(&mut r)?;
            if o >= 0 {
                out.insert((t.clone(), p), o);
            }
        }
    }
    let code = get_i16(&mut r)?;
    if code != 0 {
        bail!("OffsetFetch for group {group}: {}", kafka_error(code));
    }
    Ok(out)
}

/// ListOffsets v1 at `ts` (-1 latest, -2 earliest, else first offset at or after ts).
async fn list_offsets(
    bootstrap: &str,
    parts: &BTreeSet<(String, i32)>,
    ts: i64,
) -> Result<BTreeMap<(String, i32), i64>> {
    let topics: Vec<String> = parts
        .iter()
        .map(|(t, _)| t.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if topics.is_empty() {
        return Ok(BTreeMap::new());
    }
    let (brokers, leaders) = metadata(bootstrap, Some(&topics)).await?;
    let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for (t, p) in parts {
        if let Some(l) = leaders.get(t).and_then(|m| m.get(p)) {
            by_leader.entry(*l).or_default().push((t.clone(), *p));
        }
    }
    let mut out = BTreeMap::new();
    for (leader, tps) in by_leader {
        let Some(b) = brokers.iter().find(|b| b.id == leader) else {
            continue;
        };
        let mut c = Conn::open(&b.addr).await?;
        let mut grouped: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in &tps {
            grouped.entry(t.as_str()).or_default().push(*p);
        }
        let mut body = BytesMut::new();
        body.put_i32(-1);
        body.put_i32(grouped.len() as i32);
        for (t, ps) in &grouped {
            put_str(&mut body, t);
            body.put_i32(ps.len() as i32);
            for p in ps {
                body.put_i32(*p);
                body.put_i64(ts);
            }
        }
        let mut r = c.call(2, 1, &body).await?;
        for _ in 0..get_len(&mut r)? {
            let t = get_str(&mut r)?;
            for _ in 0..get_len(&mut r)? {
                let p = get_i32(&mut r)?;
                let e = get_i16(&mut r)?;
                let _ts = get_i64(&mut r)?;
                let o = get_i64(&mut r)?;
                if e == 0 {
                    out.insert((t.clone(), p), o);
                }
            }
        }
    }
    Ok(out)
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

/// Run `fjord group ...`.
pub async fn run(args: GroupArgs, output: Output) -> Result<()> {
    let bs = args.bootstrap.clone();
    match args.cmd {
        GroupCmd::List => {
            let (brokers, _) = metadata(&bs, Some(&[])).await?;
            let mut groups = BTreeSet::new();
            for b in &brokers {
                let mut c = Conn::open(&b.addr).await?;
                let mut r = c.call(16, 0, &[]).await?;
                let _e = get_i16(&mut r)?;
                for _ in 0..get_len(&mut r)? {
                    groups.insert(get_str(&mut r)?);
                    let _pt = get_str(&mut r)?;
                }
            }
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
            let coord_addr = find_coordinator(&bs, &group).await?;
            let mut coord = Conn::open(&coord_addr).await?;
            let d = describe(&mut coord, &group).await?;
            if d.error != 0 {
                bail!("describe group {group}: {}", kafka_error(d.error));
            }
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
            let committed = fetch_offsets(&mut coord, &group).await?;
            let mut owner: BTreeMap<(String, i32), &MemberDesc> = BTreeMap::new();
            for m in &d.members {
                for tp in &m.assignment {
                    owner.insert(tp.clone(), m);
                }
            }
            let all: BTreeSet<(String, i32)> =
                committed.keys().chain(owner.keys()).cloned().collect();
            let ends = list_offsets(&bs, &all, -1).await?;
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
            let coord_addr = find_coordinator(&bs, &group).await?;
            let mut coord = Conn::open(&coord_addr).await?;
            let d = describe(&mut coord, &group).await?;
            if execute && !(d.state == "Empty" || d.state == "Dead") {
                bail!(
                    "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
                    d.state
                );
            }
            let committed = fetch_offsets(&mut coord, &group).await?;
            let parts: BTreeSet<(String, i32)> = if all_topics {
                committed.keys().cloned().collect()
            } else if topic.is_empty() {
                bail!("one of --topic or --all-topics is required");
            } else {
                let names: Vec<String> = topic
                    .iter()
                    .map(|t| t.split(':').next().unwrap_or("").to_string())
                    .collect();
                let (_, leaders) = metadata(&bs, Some(&names)).await?;
                let mut out = BTreeSet::new();
                for spec in &topic {
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
                out
            };
            let earliest = list_offsets(&bs, &parts, -2).await?;
            let latest = list_offsets(&bs, &parts, -1).await?;
            let by_time = match (&to_datetime, &by_duration) {
                (Some(dt), _) => Some(list_offsets(&bs, &parts, parse_datetime(dt)?).await?),
                (None, Some(d)) => {
                    Some(list_offsets(&bs, &parts, now_ms() - parse_duration(d)?).await?)
                }
                _ => None,
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
                let mut grouped: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
                for ((t, p), o) in &plan {
                    grouped.entry(t.as_str()).or_default().push((*p, *o));
                }
                let mut body = BytesMut::new();
                put_str(&mut body, &group);
                body.put_i32(-1);
                put_str(&mut body, "");
                body.put_i64(-1);
                body.put_i32(grouped.len() as i32);
                for (t, ps) in &grouped {
                    put_str(&mut body, t);
                    body.put_i32(ps.len() as i32);
                    for (p, o) in ps {
                        body.put_i32(*p);
                        body.put_i64(*o);
                        put_str(&mut body, "");
                    }
                }
                let mut r = coord.call(8, 2, &body).await?;
                for _ in 0..get_len(&mut r)? {
                    let t = get_str(&mut r)?;
                    for _ in 0..get_len(&mut r)? {
                        let p = get_i32(&mut r)?;
                        let e = get_i16(&mut r)?;
                        if e != 0 {
                            bail!("reset of {t}:{p} failed: {}", kafka_error(e));
                        }
                    }
                }
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
            let coord_addr = find_coordinator(&bs, &group).await?;
            let mut coord = Conn::open(&coord_addr).await?;
            let mut body = BytesMut::new();
            body.put_i32(1);
            put_str(&mut body, &group);
            let mut r = coord.call(42, 0, &body).await?;
            let _throttle = get_i32(&mut r)?;
            for _ in 0..get_len(&mut r)? {
                let g = get_str(&mut r)?;
                let e = get_i16(&mut r)?;
                if e != 0 {
                    bail!("Deletion of group '{g}' failed: {}", kafka_error(e));
                }
            }
            println!("Deletion of requested consumer groups ('{group}') was successful.");
            Ok(())
        }
        GroupCmd::DeleteOffsets { group, topic } => {
            if topic.is_empty() {
                bail!("--topic is required");
            }
            let coord_addr = find_coordinator(&bs, &group).await?;
            let mut coord = Conn::open(&coord_addr).await?;
            let committed = fetch_offsets(&mut coord, &group).await?;
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
            let mut body = BytesMut::new();
            put_str(&mut body, &group);
            body.put_i32(grouped.len() as i32);
            for (t, ps) in &grouped {
                put_str(&mut body, t);
                body.put_i32(ps.len() as i32);
                for p in ps {
                    body.put_i32(*p);
                }
            }
            let mut r = coord.call(47, 0, &body).await?;
            let top = get_i16(&mut r)?;
            if top != 0 {
                bail!(
                    "Offset deletion for group '{group}' failed: {}",
                    kafka_error(top)
                );
            }
            let _throttle = get_i32(&mut r)?;
            let mut rows = vec![vec!["TOPIC".into(), "PARTITION".into(), "STATUS".into()]];
            for _ in 0..get_len(&mut r)? {
                let t = get_str(&mut r)?;
                for _ in 0..get_len(&mut r)? {
                    let p = get_i32(&mut r)?;
                    let e = get_i16(&mut r)?;
                    rows.push(vec![
                        t.clone(),
                        p.to_string(),
                        if e == 0 {
                            "Successful".into()
                        } else {
                            format!("Error: {}", kafka_error(e))
                        },
                    ]);
                }
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

// ---------------------------------------------------------------- group member

/// What the heartbeat task last learnt about our membership.
const HB_OK: u8 = 0;
/// The group is rebalancing (or our generation is stale): rejoin with our id.
const HB_REJOIN: u8 = 1;
/// The coordinator forgot us: rejoin with a fresh member id.
const HB_RESET: u8 = 2;
/// The coordinator moved or died: find it again, then rejoin.
const HB_RELOCATE: u8 = 3;

fn sb(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Kafka's error codes a member reacts to.
fn member_action(code: i16) -> Option<u8> {
    match code {
        0 => None,
        22 | 27 => Some(HB_REJOIN),
        25 => Some(HB_RESET),
        // COORDINATOR_LOAD_IN_PROGRESS, _NOT_AVAILABLE, NOT_COORDINATOR, and
        // anything unexpected: ask for the coordinator again.
        _ => Some(HB_RELOCATE),
    }
}

/// One member of a consumer group, as `fjord consume --group` runs it: the
/// classic protocol (JoinGroup, SyncGroup, Heartbeat, OffsetFetch,
/// OffsetCommit, LeaveGroup) with the client-side "range" assignor, so it can
/// share a group with Java, librdkafka and kafka-python consumers.
///
/// Heartbeats run in their own task on their own connection, because a
/// member's Fetch long polls must not delay them past `session.timeout.ms`;
/// the task only raises a flag, and the consuming loop acts on it between
/// polls (commit what it printed, then rejoin), as the Java consumer does in
/// `poll()`.
pub struct GroupMember {
    cfg: ClientConfig,
    group: String,
    topics: Vec<String>,
    member_id: String,
    generation: i32,
    protocol: String,
    coord: Option<String>,
    conn: Option<KConn>,
    flag: Arc<AtomicU8>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    heartbeat_interval: Duration,
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

impl GroupMember {
    /// A member of `group` subscribing to `topics` (not joined yet).
    pub fn new(cfg: ClientConfig, group: &str, topics: Vec<String>) -> GroupMember {
        GroupMember {
            cfg,
            group: group.to_string(),
            topics,
            member_id: String::new(),
            generation: -1,
            protocol: "range".into(),
            coord: None,
            conn: None,
            flag: Arc::new(AtomicU8::new(HB_OK)),
            heartbeat: None,
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            heartbeat_interval: Duration::from_millis(1000),
        }
    }

    /// Whether the member must rejoin before consuming on (rebalance, fencing,
    /// coordinator loss): the consuming loop commits what it has, then calls
    /// [`GroupMember::join`] again.
    pub fn needs_rejoin(&self) -> bool {
        self.flag.load(Ordering::SeqCst) != HB_OK
    }

    /// Whether the member holds a generation (so commits and a leave make sense).
    pub fn active(&self) -> bool {
        self.generation >= 0 && !self.member_id.is_empty()
    }

    fn stop_heartbeat(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }

    fn relocate(&mut self) {
        self.conn = None;
        self.coord = None;
    }

    /// Find the group's coordinator (retrying while none is available) and connect to it.
    async fn coordinator(&mut self, client: &mut Client) -> Result<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let req = FindCoordinatorRequest::default().with_key(sb(&self.group));
            let res = client.call(Node::Any, &req, 3).await;
            let err = match res {
                Ok(r) if r.error_code == 0 => {
                    let addr = format!("{}:{}", r.host, r.port);
                    match KConn::open(&addr, &self.cfg).await {
                        Ok(c) => {
                            self.conn = Some(c);
                            self.coord = Some(addr);
                            return Ok(());
                        }
                        Err(e) => anyhow!(e),
                    }
                }
                Ok(r) if matches!(r.error_code, 14 | 15) => {
                    anyhow!("coordinator not available ({})", kafka_error(r.error_code))
                }
                Ok(r) => bail!(
                    "FindCoordinator for group {}: {}",
                    self.group,
                    kafka_error(r.error_code)
                ),
                Err(e) => {
                    // The bootstrap broker may be the one that died: start over.
                    if let Ok(c) = Client::connect(self.cfg.clone()).await {
                        *client = c;
                    }
                    anyhow!(e)
                }
            };
            if std::time::Instant::now() > deadline {
                return Err(err.context(format!("no coordinator for group {}", self.group)));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn subscription(&self) -> Result<Bytes> {
        let sub = ConsumerProtocolSubscription::default()
            .with_topics(self.topics.iter().map(|t| sb(t)).collect());
        let mut b = BytesMut::new();
        b.put_i16(0);
        sub.encode(&mut b, 0)
            .map_err(|e| anyhow!("encoding the subscription: {e}"))?;
        Ok(b.freeze())
    }

    /// Join (or rejoin) the group and return the partitions assigned to this
    /// member, by topic. As leader, runs the range assignor for every member.
    pub async fn join(&mut self, client: &mut Client) -> Result<BTreeMap<String, Vec<i32>>> {
        self.stop_heartbeat();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            if std::time::Instant::now() > deadline {
                bail!("could not join group {} in time", self.group);
            }
            match self.flag.swap(HB_OK, Ordering::SeqCst) {
                HB_RESET => self.member_id.clear(),
                HB_RELOCATE => self.relocate(),
                _ => {}
            }
            self.coordinator(client).await?;
            let meta = self.subscription()?;
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let v = conn.pick::<JoinGroupRequest>(7)?;
            let mut req = JoinGroupRequest::default()
                .with_group_id(GroupId(sb(&self.group)))
                .with_session_timeout_ms(self.session_timeout_ms)
                .with_member_id(sb(&self.member_id))
                .with_protocol_type(sb("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(sb(&self.protocol))
                    .with_metadata(meta)]);
            if v >= 1 {
                req.rebalance_timeout_ms = self.rebalance_timeout_ms;
            }
            let wait = Duration::from_millis(self.rebalance_timeout_ms as u64);
            let resp = match conn.call_wait(&req, 7, wait).await {
                Ok(r) => r,
                Err(_) => {
                    self.relocate();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            match resp.error_code {
                0 => {}
                79 => {
                    // MEMBER_ID_REQUIRED (KIP-394): join again with the id handed out.
                    self.member_id = resp.member_id.to_string();
                    continue;
                }
                code => match member_action(code) {
                    Some(HB_RESET) => {
                        self.member_id.clear();
                        continue;
                    }
                    Some(HB_REJOIN) => continue,
                    _ if (14..=16).contains(&code) => {
                        self.relocate();
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    _ => bail!("JoinGroup {}: {}", self.group, kafka_error(code)),
                },
            }
            self.member_id = resp.member_id.to_string();
            self.generation = resp.generation_id;
            let assignments = if resp.leader == resp.member_id {
                let members: Vec<(String, Bytes)> = resp
                    .members
                    .iter()
                    .map(|m| (m.member_id.to_string(), m.metadata.clone()))
                    .collect();
                self.assign(client, &members).await?
            } else {
                Vec::new()
            };
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let sv = conn.pick::<SyncGroupRequest>(5)?;
            let mut sreq = SyncGroupRequest::default()
                .with_group_id(GroupId(sb(&self.group)))
                .with_generation_id(self.generation)
                .with_member_id(sb(&self.member_id))
                .with_assignments(
                    assignments
                        .into_iter()
                        .map(|(m, a)| {
                            SyncGroupRequestAssignment::default()
                                .with_member_id(sb(&m))
                                .with_assignment(a)
                        })
                        .collect(),
                );
            if sv >= 5 {
                sreq.protocol_type = Some(sb("consumer"));
                sreq.protocol_name = resp.protocol_name.clone();
            }
            let sresp = match conn.call_wait(&sreq, 5, wait).await {
                Ok(r) => r,
                Err(_) => {
                    self.relocate();
                    continue;
                }
            };
            if let Some(a) = member_action(sresp.error_code) {
                match a {
                    HB_RESET => self.member_id.clear(),
                    HB_RELOCATE => self.relocate(),
                    _ => {}
                }
                continue;
            }
            let mine = decode_assignment(&sresp.assignment)?;
            self.start_heartbeat().await;
            return Ok(mine);
        }
    }

    async fn start_heartbeat(&mut self) {
        self.stop_heartbeat();
        let Some(addr) = self.coord.clone() else {
            self.flag.store(HB_RELOCATE, Ordering::SeqCst);
            return;
        };
        let cfg = self.cfg.clone();
        let flag = self.flag.clone();
        let group = self.group.clone();
        let member = self.member_id.clone();
        let generation = self.generation;
        let every = self.heartbeat_interval;
        self.heartbeat = Some(tokio::spawn(async move {
            let mut conn = match KConn::open(&addr, &cfg).await {
                Ok(c) => c,
                Err(_) => {
                    flag.store(HB_RELOCATE, Ordering::SeqCst);
                    return;
                }
            };
            loop {
                tokio::time::sleep(every).await;
                let req = HeartbeatRequest::default()
                    .with_group_id(GroupId(sb(&group)))
                    .with_generation_id(generation)
                    .with_member_id(sb(&member));
                let code = match conn.call(&req, 3).await {
                    Ok(r) => r.error_code,
                    Err(_) => 16,
                };
                if let Some(a) = member_action(code) {
                    flag.store(a, Ordering::SeqCst);
                    return;
                }
            }
        }));
    }

    /// The range assignor (Kafka's RangeAssignor): per topic, members that
    /// subscribe to it in member-id order each get a contiguous range, the
    /// first `partitions % members` one partition more.
    async fn assign(
        &mut self,
        client: &mut Client,
        members: &[(String, Bytes)],
    ) -> Result<Vec<(String, Bytes)>> {
        let subs: Vec<(String, Vec<String>)> = members
            .iter()
            .map(|(id, meta)| (id.clone(), decode_subscription(meta)))
            .collect();
        let topics: Vec<String> = subs
            .iter()
            .flat_map(|(_, t)| t.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut parts: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        if !topics.is_empty() {
            for t in client.topics(Some(&topics), false).await? {
                parts.insert(
                    t.name.clone(),
                    t.partitions.iter().map(|p| p.index).collect(),
                );
            }
        }
        range_assign(&subs, &parts)
            .into_iter()
            .map(|(m, a)| Ok((m, encode_assignment(&a)?)))
            .collect()
    }

    /// Committed offsets of `parts` (absent: nothing committed).
    pub async fn committed(
        &mut self,
        client: &mut Client,
        topic: &str,
        parts: &[i32],
    ) -> Result<BTreeMap<i32, i64>> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            self.coordinator(client).await?;
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let req = OffsetFetchRequest::default()
                .with_group_id(GroupId(sb(&self.group)))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(sb(topic)))
                    .with_partition_indexes(parts.to_vec())]));
            let resp = match conn.call(&req, 7).await {
                Ok(r) => r,
                Err(_) => {
                    self.relocate();
                    continue;
                }
            };
            let mut code = resp.error_code;
            let mut out = BTreeMap::new();
            for t in &resp.topics {
                for p in &t.partitions {
                    if p.error_code != 0 {
                        code = p.error_code;
                    } else if p.committed_offset >= 0 {
                        out.insert(p.partition_index, p.committed_offset);
                    }
                }
            }
            match code {
                0 => return Ok(out),
                14..=16 if std::time::Instant::now() < deadline => {
                    if code != 14 {
                        self.relocate();
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                _ => bail!(
                    "OffsetFetch for group {}: {}",
                    self.group,
                    kafka_error(code)
                ),
            }
        }
    }

    /// Commit `offsets` (partition → next offset to read) at our generation.
    /// Ok(false): the group refused (a rebalance fenced us); the caller rejoins.
    pub async fn commit(&mut self, topic: &str, offsets: &BTreeMap<i32, i64>) -> Result<bool> {
        if offsets.is_empty() || !self.active() {
            return Ok(true);
        }
        let Some(conn) = self.conn.as_mut() else {
            self.flag.store(HB_RELOCATE, Ordering::SeqCst);
            return Ok(false);
        };
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(sb(&self.group)))
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(sb(&self.member_id))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(sb(topic)))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|(p, o)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(*o)
                        })
                        .collect(),
                )]);
        let resp = match conn.call(&req, 7).await {
            Ok(r) => r,
            Err(_) => {
                self.relocate();
                self.flag.store(HB_RELOCATE, Ordering::SeqCst);
                return Ok(false);
            }
        };
        for t in &resp.topics {
            for p in &t.partitions {
                if let Some(a) = member_action(p.error_code) {
                    if p.error_code == 3 {
                        bail!("commit {topic}-{}: {}", p.partition_index, kafka_error(3));
                    }
                    self.flag.store(a, Ordering::SeqCst);
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Leave the group (LeaveGroup) so that the others take over at once,
    /// rather than after our session times out.
    pub async fn leave(&mut self) {
        self.stop_heartbeat();
        if !self.active() {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let Ok(v) = conn.pick::<LeaveGroupRequest>(4) else {
            return;
        };
        let mut req = LeaveGroupRequest::default().with_group_id(GroupId(sb(&self.group)));
        if v >= 3 {
            req.members = vec![MemberIdentity::default().with_member_id(sb(&self.member_id))];
        } else {
            req.member_id = sb(&self.member_id);
        }
        let _ = conn.call(&req, 4).await;
        self.generation = -1;
    }
}

/// Topics in a member's subscription metadata (empty if unreadable: a
/// member we cannot understand gets nothing rather than failing the group).
fn decode_subscription(meta: &Bytes) -> Vec<String> {
    let mut b = meta.clone();
    if b.len() < 2 {
        return Vec::new();
    }
    let v = b.get_i16();
    ConsumerProtocolSubscription::decode(&mut b, v.clamp(0, 3))
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

/// A SyncGroup assignment: partitions by topic (empty bytes: nothing assigned).
fn decode_assignment(a: &Bytes) -> Result<BTreeMap<String, Vec<i32>>> {
    let mut b = a.clone();
    let mut out = BTreeMap::new();
    if b.len() < 2 {
        return Ok(out);
    }
    let v = b.get_i16();
    let asg = ConsumerProtocolAssignment::decode(&mut b, v.clamp(0, 3))
        .map_err(|e| anyhow!("malformed assignment from the group leader: {e}"))?;
    for tp in asg.assigned_partitions {
        out.entry(tp.topic.0.to_string())
            .or_insert_with(Vec::new)
            .extend(tp.partitions);
    }
    Ok(out)
}

fn encode_assignment(a: &BTreeMap<String, Vec<i32>>) -> Result<Bytes> {
    let asg = ConsumerProtocolAssignment::default().with_assigned_partitions(
        a.iter()
            .map(|(t, ps)| {
                AssignedTopicPartition::default()
                    .with_topic(TopicName(sb(t)))
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    let mut b = BytesMut::new();
    b.put_i16(0);
    asg.encode(&mut b, 0)
        .map_err(|e| anyhow!("encoding an assignment: {e}"))?;
    Ok(b.freeze())
}

/// Kafka's RangeAssignor over (member, subscribed topics) and partitions per
/// topic; every member appears in the result, idle ones with nothing.
fn range_assign(
    subs: &[(String, Vec<String>)],
    parts: &BTreeMap<String, Vec<i32>>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subs
        .iter()
        .map(|(m, _)| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, ps) in parts {
        let mut members: Vec<&String> = subs
            .iter()
            .filter(|(_, ts)| ts.contains(topic))
            .map(|(m, _)| m)
            .collect();
        members.sort();
        if members.is_empty() {
            continue;
        }
        let mut ps = ps.clone();
        ps.sort_unstable();
        let per = ps.len() / members.len();
        let extra = ps.len() % members.len();
        let mut at = 0;
        for (i, m) in members.iter().enumerate() {
            let n = per + usize::from(i < extra);
            if n > 0 {
                if let Some(e) = out.get_mut(*m) {
                    e.insert(topic.clone(), ps[at..at + n].to_vec());
                }
            }
            at += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignor_matches_kafka() {
        let t = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let subs = vec![
            ("c".to_string(), t(&["a"])),
            ("a".to_string(), t(&["a", "b"])),
            ("b".to_string(), t(&["a"])),
        ];
        let parts = BTreeMap::from([
            ("a".to_string(), vec![0, 1, 2, 3, 4, 5, 6]),
            ("b".to_string(), vec![0, 1]),
        ]);
        let r = range_assign(&subs, &parts);
        assert_eq!(r["a"]["a"], vec![0, 1, 2]);
        assert_eq!(r["b"]["a"], vec![3, 4]);
        assert_eq!(r["c"]["a"], vec![5, 6]);
        assert_eq!(r["a"]["b"], vec![0, 1]);
        assert!(!r["b"].contains_key("b"));
        // More members than partitions: the last ones sit idle.
        let subs: Vec<_> = (0..8).map(|i| (format!("m{i}"), t(&["a"]))).collect();
        let parts = BTreeMap::from([("a".to_string(), (0..6).collect::<Vec<i32>>())]);
        let r = range_assign(&subs, &parts);
        assert_eq!(r.values().filter(|a| a.is_empty()).count(), 2);
        // Round trip through the wire encoding.
        let enc = encode_assignment(&r["m0"]).unwrap();
        assert_eq!(decode_assignment(&enc).unwrap()["a"], vec![0]);
        assert!(decode_assignment(&Bytes::new()).unwrap().is_empty());
        assert!(decode_assignment(&Bytes::from_static(b"\x00\x00\xff")).is_err());
        assert!(decode_subscription(&Bytes::from_static(b"\x00")).is_empty());
    }

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
