//! `fjord produce <topic>`: kafka-console-producer. Lines from stdin
//! (interactive or piped) become records; many lines share one Produce
//! request, so a piped file goes out in ~1 MiB requests. Keys (with
//! `--key-separator` / `--parse-key`) pick partitions as Java's default
//! partitioner does: `toPositive(murmur2(key)) % numPartitions`; keyless
//! records stick to one partition per request, rotating between requests.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use clap::Args;
use fjord_kafka::client::{
    encode_batch, parse_compression, partition_for_key, Client, ClientError, KafkaError, Node,
    ProducerRecord, TopicInfo,
};
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use serde_json::json;
use tokio::sync::mpsc;

use crate::kafka::{key_value, Bootstrap, TopicArg};
use crate::Output;

/// `fjord produce ...`
#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    topic: TopicArg,
    #[command(flatten)]
    bs: Bootstrap,
    /// Split each line at the first SEP into key and value (implies --parse-key).
    #[arg(long = "key-separator", short = 'K')]
    key_separator: Option<String>,
    /// Parse keys (separator: --key-separator, default TAB).
    #[arg(long = "parse-key")]
    parse_key: bool,
    /// Send everything to this partition instead of partitioning.
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// Acknowledgements: 0, 1, or all (-1).
    #[arg(long, visible_alias = "request-required-acks", default_value = "all")]
    acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, visible_alias = "compression-codec", default_value = "none")]
    compression: String,
    /// Line reader properties as in kafka-console-producer (repeatable):
    /// parse.key, key.separator, parse.headers, headers.delimiter,
    /// headers.separator, headers.key.separator, null.marker, ignore.error.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    property: Vec<String>,
    /// Most payload bytes per Produce request.
    #[arg(long = "batch-size", default_value_t = 900 * 1024)]
    batch_size: usize,
    /// Retries of a batch on leader changes and timeouts.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    #[command(flatten)]
    typed: crate::typed::TypedArgs,
}

/// How a line becomes a record.
#[derive(Debug, Clone)]
struct LineFormat {
    key_sep: Option<Vec<u8>>,
    headers: Option<HeaderFormat>,
    null_marker: Option<Vec<u8>>,
    /// A line without a separator it should have is sent anyway (no key, no
    /// headers, a header without value) instead of failing: `ignore.error`.
    ignore_error: bool,
}

/// kafka-console-producer's LineMessageReader properties.
const PROPERTIES: [&str; 8] = [
    "parse.key",
    "key.separator",
    "parse.headers",
    "headers.delimiter",
    "headers.separator",
    "headers.key.separator",
    "null.marker",
    "ignore.error",
];

#[derive(Debug, Clone)]
struct HeaderFormat {
    delimiter: Vec<u8>,
    separator: Vec<u8>,
    key_separator: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_at<'a>(hay: &'a [u8], needle: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    find(hay, needle).map(|i| (&hay[..i], &hay[i + needle.len()..]))
}

impl LineFormat {
    fn from_args(a: &ProduceArgs) -> anyhow::Result<Self> {
        let mut props = BTreeMap::new();
        for p in &a.property {
            let (k, v) = key_value(p).context("--property")?;
            if !PROPERTIES.contains(&k.as_str()) {
                bail!(
                    "unknown --property {k}; kafka-console-producer's line reader properties are: {}",
                    PROPERTIES.join(", ")
                );
            }
            props.insert(k, v);
        }
        let truthy = |k: &str| {
            props
                .get(k)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        };
        let parse_key = a.parse_key || a.key_separator.is_some() || truthy("parse.key");
        let sep = a
            .key_separator
            .clone()
            .or_else(|| props.get("key.separator").cloned())
            .unwrap_or_else(|| "\t".to_string());
        if parse_key && sep.is_empty() {
            bail!("the key separator cannot be empty");
        }
        let headers = truthy("parse.headers").then(|| HeaderFormat {
            delimiter: props
                .get("headers.delimiter")
                .map_or(b"\t".to_vec(), |s| s.as_bytes().to_vec()),
            separator: props
                .get("headers.separator")
                .map_or(b",".to_vec(), |s| s.as_bytes().to_vec()),
            key_separator: props
                .get("headers.key.separator")
                .map_or(b":".to_vec(), |s| s.as_bytes().to_vec()),
        });
        let null_marker = props.get("null.marker").map(|s| s.as_bytes().to_vec());
        // The reader's own consistency checks (LineMessageReader.configure).
        let get = |k: &str, d: &str| props.get(k).cloned().unwrap_or_else(|| d.to_string());
        let (hd, hs, hk) = (
            get("headers.delimiter", "\t"),
            get("headers.separator", ","),
            get("headers.key.separator", ":"),
        );
        for (a, an, b, bn) in [
            (&hd, "headers.delimiter", &hs, "headers.separator"),
            (&hd, "headers.delimiter", &hk, "headers.key.separator"),
            (&hs, "headers.separator", &hk, "headers.key.separator"),
        ] {
            if a == b {
                bail!("{an} and {bn} may not be equal");
            }
        }
        if let Some(m) = props.get("null.marker") {
            for (v, n) in [
                (&sep, "key.separator"),
                (&hs, "headers.separator"),
                (&hd, "headers.delimiter"),
                (&hk, "headers.key.separator"),
            ] {
                if m == v {
                    bail!("null.marker and {n} may not be equal");
                }
            }
        }
        Ok(LineFormat {
            key_sep: parse_key.then(|| sep.into_bytes()),
            headers,
            null_marker,
            ignore_error: truthy("ignore.error"),
        })
    }

    fn nullable(&self, b: &[u8]) -> Option<Bytes> {
        match &self.null_marker {
            Some(m) if m.as_slice() == b => None,
            _ => Some(Bytes::copy_from_slice(b)),
        }
    }

    /// One line → record, or the console producer's complaint.
    fn record(&self, line: &[u8], lineno: u64, ts: i64) -> anyhow::Result<ProducerRecord> {
        let shown = || String::from_utf8_lossy(line).into_owned();
        let mut rest = line;
        let mut headers = Vec::new();
        if let Some(h) = &self.headers {
            match split_at(rest, &h.delimiter) {
                Some((hs, r)) => {
                    rest = r;
                    if self.null_marker.as_deref() != Some(hs) {
                        headers = self.headers(h, hs, lineno)?;
                    }
                }
                None if self.ignore_error => {}
                None => bail!(
                    "No headers delimiter found on line number {lineno}: '{}'",
                    shown()
                ),
            }
        }
        let (key, value) = match &self.key_sep {
            Some(sep) => match split_at(rest, sep) {
                Some((k, v)) => (self.nullable(k), self.nullable(v)),
                None if self.ignore_error => (None, self.nullable(rest)),
                None => bail!(
                    "No key separator found on line number {lineno}: '{}'",
                    shown()
                ),
            },
            None => (None, self.nullable(rest)),
        };
        Ok(ProducerRecord {
            key,
            value,
            headers,
            timestamp: ts,
        })
    }
}

impl LineFormat {
    /// `k:v,k2:v2` → headers (a header key may not be the null marker).
    fn headers(
        &self,
        h: &HeaderFormat,
        hs: &[u8],
        lineno: u64,
    ) -> anyhow::Result<Vec<(String, Option<Bytes>)>> {
        let mut out = Vec::new();
        for one in split_all(hs, &h.separator) {
            if one.is_empty() {
                continue;
            }
            let (k, v) = match split_at(one, &h.key_separator) {
                Some((k, v)) => (k, self.nullable(v)),
                None if self.ignore_error => (one, None),
                None => bail!(
                    "No header key separator found in pair '{}' on line number {lineno}",
                    String::from_utf8_lossy(one)
                ),
            };
            if self.null_marker.as_deref() == Some(k) {
                bail!("Header keys should not be equal to the null marker as they can't be null (line number {lineno})");
            }
            out.push((String::from_utf8_lossy(k).into_owned(), v));
        }
        Ok(out)
    }
}

fn split_all<'a>(hay: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = hay;
    while let Some((a, b)) = split_at(rest, sep) {
        out.push(a);
        rest = b;
    }
    out.push(rest);
    out
}

fn parse_acks(s: &str) -> anyhow::Result<i16> {
    Ok(match s {
        "all" | "-1" => -1,
        "0" => 0,
        "1" => 1,
        _ => bail!("--acks must be 0, 1 or all, not '{s}'"),
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Read stdin on a plain thread: lines go out in chunks, a chunk closing as
/// soon as no more input is buffered (so interactive lines are sent at once).
fn spawn_reader(tx: mpsc::Sender<anyhow::Result<Vec<Vec<u8>>>>, chunk_bytes: usize) {
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut r = std::io::BufReader::with_capacity(1 << 20, stdin.lock());
        let mut chunk: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0usize;
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    bytes += line.len() + 16;
                    chunk.push(line);
                    if bytes >= chunk_bytes || r.buffer().is_empty() {
                        if tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_err() {
                            return;
                        }
                        bytes = 0;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(anyhow!("reading stdin: {e}")));
                    return;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(Ok(chunk));
        }
    });
}

/// Error codes worth a metadata refresh and a retry.
fn retriable(code: i16) -> bool {
    matches!(
        code.err(),
        Some(
            ResponseError::UnknownTopicOrPartition
                | ResponseError::LeaderNotAvailable
                | ResponseError::NotLeaderOrFollower
                | ResponseError::RequestTimedOut
                | ResponseError::NotEnoughReplicas
                | ResponseError::NotEnoughReplicasAfterAppend
                | ResponseError::KafkaStorageError
        )
    )
}

/// Sends records to one topic's partition leaders (also `fjord dlq replay`'s).
pub(crate) struct Producer {
    client: Client,
    pub(crate) topic: TopicInfo,
    acks: i16,
    compression: Compression,
    fixed_partition: Option<i32>,
    sticky: usize,
    retries: u32,
    timeout_ms: i32,
    sent: u64,
    per_partition: BTreeMap<i32, u64>,
}

impl Producer {
    /// A producer of the existing `topic` with acks=all, uncompressed,
    /// partitioning as Java clients do (key hash, else sticky).
    pub(crate) async fn open(
        bs: &Bootstrap,
        topic: &str,
        retries: u32,
    ) -> anyhow::Result<Producer> {
        let mut client = bs.connect().await?;
        let topic = client
            .topic(topic, false)
            .await
            .with_context(|| format!("topic {topic}"))?;
        Ok(Producer {
            client,
            sticky: rand_start(topic.partitions.len()),
            topic,
            acks: -1,
            compression: Compression::None,
            fixed_partition: None,
            retries,
            timeout_ms: bs.request_timeout_ms.min(i32::MAX as u64) as i32,
            sent: 0,
            per_partition: BTreeMap::new(),
        })
    }

    fn partition_for(&self, rec: &ProducerRecord, sticky: i32) -> i32 {
        if let Some(p) = self.fixed_partition {
            return p;
        }
        let n = self.topic.partitions.len() as i32;
        match &rec.key {
            Some(k) => partition_for_key(k, n),
            None => sticky,
        }
    }

    async fn refresh(&mut self) -> anyhow::Result<()> {
        self.topic = self.client.topic(&self.topic.name.clone(), true).await?;
        Ok(())
    }

    /// Send one round of records: grouped by partition, one request per leader.
    pub(crate) async fn send(&mut self, recs: Vec<ProducerRecord>) -> anyhow::Result<()> {
        let n = self.topic.partitions.len();
        if n == 0 {
            bail!("topic {} has no partitions", self.topic.name);
        }
        self.sticky = (self.sticky + 1) % n;
        let sticky = self.topic.partitions[self.sticky].index;
        let mut by_part: BTreeMap<i32, Vec<ProducerRecord>> = BTreeMap::new();
        for r in recs {
            let p = self.partition_for(&r, sticky);
            by_part.entry(p).or_default().push(r);
        }
        let mut batches: BTreeMap<i32, (Bytes, u64)> = BTreeMap::new();
        for (p, rs) in by_part {
            if !self.topic.partitions.iter().any(|x| x.index == p) {
                bail!("partition {p} of topic {} does not exist", self.topic.name);
            }
            let b = encode_batch(&rs, self.compression)?;
            batches.insert(p, (b, rs.len() as u64));
        }
        let mut attempt = 0;
        while !batches.is_empty() {
            let by_leader = self.topic.by_leader(batches.keys().copied());
            let mut failed: Vec<(i32, KafkaError)> = Vec::new();
            for (leader, parts) in by_leader {
                if leader < 0 {
                    for p in parts {
                        failed.push((p, KafkaError::of(ResponseError::LeaderNotAvailable, None)));
                    }
                    continue;
                }
                let data = parts
                    .iter()
                    .filter_map(|p| {
                        batches.get(p).map(|(b, _)| {
                            PartitionProduceData::default()
                                .with_index(*p)
                                .with_records(Some(b.clone()))
                        })
                    })
                    .collect();
                let req = ProduceRequest::default()
                    .with_acks(self.acks)
                    .with_timeout_ms(self.timeout_ms)
                    .with_topic_data(vec![TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(self.topic.name.clone())))
                        .with_partition_data(data)]);
                if self.acks == 0 {
                    let conn = self.client.conn(Node::Id(leader)).await?;
                    conn.send_only(&req, 9).await?;
                    for p in parts {
                        if let Some((_, cnt)) = batches.remove(&p) {
                            self.done(p, cnt);
                        }
                    }
                    continue;
                }
                let resp = match self.client.call(Node::Id(leader), &req, 9).await {
                    Ok(r) => r,
                    Err(e @ (ClientError::Io { .. } | ClientError::Timeout { .. })) => {
                        self.client.forget(leader);
                        for p in parts {
                            failed.push((
                                p,
                                KafkaError::of(ResponseError::RequestTimedOut, Some(e.to_string())),
                            ));
                        }
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                for t in resp.responses {
                    for pr in t.partition_responses {
                        if pr.error_code == 0 {
                            if let Some((_, cnt)) = batches.remove(&pr.index) {
                                self.done(pr.index, cnt);
                            }
                        } else {
                            failed.push((
                                pr.index,
                                KafkaError::new(
                                    pr.error_code,
                                    pr.error_message.as_ref().map(|m| m.to_string()),
                                ),
                            ));
                        }
                    }
                }
            }
            if batches.is_empty() {
                break;
            }
            let (p, e) = failed.first().cloned().unwrap_or((
                *batches.keys().next().unwrap_or(&-1),
                KafkaError::of(
                    ResponseError::UnknownServerError,
                    Some("no response for partition".into()),
                ),
            ));
            attempt += 1;
            if !failed.iter().all(|(_, e)| retriable(e.code)) || attempt > self.retries {
                bail!(
                    "Error when sending message to topic {} partition {p}: {e}",
                    self.topic.name
                );
            }
            tokio::time::sleep(Duration::from_millis(100 * attempt as u64)).await;
            self.refresh().await?;
        }
        Ok(())
    }

    fn done(&mut self, p: i32, n: u64) {
        self.sent += n;
        *self.per_partition.entry(p).or_default() += n;
    }
}

/// Run `fjord produce`.
pub async fn run(args: ProduceArgs, out: Output) -> anyhow::Result<()> {
    let topic_name = args.topic.name()?;
    let fmt = LineFormat::from_args(&args)?;
    let acks = parse_acks(&args.acks)?;
    let compression = parse_compression(&args.compression).ok_or_else(|| {
        anyhow!(
            "unknown compression '{}' (none, gzip, snappy, lz4, zstd)",
            args.compression
        )
    })?;
    let mut client = args.bs.connect().await?;
    let topic = client
        .topic(&topic_name, true)
        .await
        .with_context(|| format!("topic {topic_name}"))?;
    if let Some(p) = args.partition {
        if !topic.partitions.iter().any(|x| x.index == p) {
            bail!("partition {p} of topic {topic_name} does not exist");
        }
    }
    let encoder = crate::typed::Encoder::new(&args.typed, &topic_name).await?;
    let mut prod = Producer {
        client,
        sticky: rand_start(topic.partitions.len()),
        topic,
        acks,
        compression,
        fixed_partition: args.partition,
        retries: args.retries,
        timeout_ms: args.bs.request_timeout_ms.min(i32::MAX as u64) as i32,
        sent: 0,
        per_partition: BTreeMap::new(),
    };
    let (tx, mut rx) = mpsc::channel(8);
    spawn_reader(tx, args.batch_size.max(1));
    let mut lineno = 0u64;
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        let ts = now_ms();
        let mut recs = Vec::with_capacity(chunk.len());
        for line in &chunk {
            lineno += 1;
            let mut rec = fmt.record(line, lineno, ts)?;
            if encoder.active() {
                encoder.apply(&mut rec, lineno)?;
            }
            recs.push(rec);
        }
        prod.send(recs).await?;
    }
    if out == Output::Json {
        println!(
            "{}",
            json!({
                "topic": prod.topic.name,
                "messages": prod.sent,
                "partitions": prod.per_partition.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            })
        );
    }
    Ok(())
}

/// A starting point for the sticky rotation that differs between runs.
fn rand_start(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as usize)
        .unwrap_or(0);
    (nanos ^ std::process::id() as usize) % n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(key: Option<&str>, headers: bool) -> LineFormat {
        LineFormat {
            key_sep: key.map(|k| k.as_bytes().to_vec()),
            headers: headers.then(|| HeaderFormat {
                delimiter: b"\t".to_vec(),
                separator: b",".to_vec(),
                key_separator: b":".to_vec(),
            }),
            null_marker: None,
            ignore_error: false,
        }
    }

    #[test]
    fn lines_to_records() {
        let r = fmt(Some(":"), false).record(b"k:v:w", 1, 5).unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v:w"[..]));
        let e = fmt(Some(":"), false).record(b"novalue", 7, 5).unwrap_err();
        assert_eq!(
            e.to_string(),
            "No key separator found on line number 7: 'novalue'"
        );
        let r = fmt(None, false).record(b"plain", 1, 5).unwrap();
        assert_eq!((r.key, r.value.as_deref()), (None, Some(&b"plain"[..])));
        let e = fmt(Some("|"), true)
            .record(b"a:1,b\tk|v", 3, 5)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "No header key separator found in pair 'b' on line number 3"
        );
        let mut lenient = fmt(Some("|"), true);
        lenient.ignore_error = true;
        let r = lenient.record(b"nodelimiter", 1, 5).unwrap();
        assert_eq!(
            (r.key, r.value.as_deref()),
            (None, Some(&b"nodelimiter"[..]))
        );
        assert!(r.headers.is_empty());
        let r = lenient.record(b"a:1,b\tk|v", 1, 5).unwrap();
        assert_eq!(
            r.headers,
            vec![
                ("a".to_string(), Some(Bytes::from_static(b"1"))),
                ("b".to_string(), None)
            ]
        );
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
    }
}
