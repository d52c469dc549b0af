//! A small async Kafka client for the `fjord` CLI (topic, produce, consume,
//! cluster, offsets, config commands): one TCP connection per broker, one
//! request in flight per connection, versions negotiated through ApiVersions.
//!
//! Requests and responses go through the `kafka-protocol` crate; record batches
//! are built with its `RecordBatchEncoder` and read with a bounds-checked parser
//! here (the crate's decoder pre-allocates from unchecked counts and merges
//! duplicate header keys). Nothing read from the network is unwrapped: every
//! malformed frame or batch becomes a [`ClientError`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::compression::{self as cmpr, Decompressor};
use kafka_protocol::error::ParseResponseErrorCode;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a client operation failed; shown to the user as one line.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("no broker reachable at {0}")]
    NoBroker(String),
    #[error("i/o error talking to {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("timed out waiting for {addr} ({what})")]
    Timeout { addr: String, what: String },
    #[error("{addr} sent a {len}-byte frame, above the {cap}-byte cap")]
    FrameTooLarge { addr: String, len: i64, cap: usize },
    #[error("malformed response from {addr}: {msg}")]
    Malformed { addr: String, msg: String },
    #[error("cannot encode request: {0}")]
    Encode(String),
    #[error("{addr} does not support {api:?} (versions {lo} to {hi} needed)")]
    Unsupported {
        addr: String,
        api: ApiKey,
        lo: i16,
        hi: i16,
    },
    #[error("unknown broker id {0}")]
    UnknownNode(i32),
    #[error("{0}")]
    Kafka(KafkaError),
    #[error("malformed record batch: {0}")]
    Batch(String),
}

/// A Kafka error code with the broker's message, worded like the Java client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    pub code: i16,
    pub message: Option<String>,
}

impl KafkaError {
    /// The error for `code` plus an optional broker message.
    pub fn new(code: i16, message: Option<String>) -> Self {
        Self { code, message }
    }
    /// Kafka's upper-snake name for the code (e.g. `TOPIC_ALREADY_EXISTS`).
    pub fn name(&self) -> String {
        match self.code.err() {
            Some(e) => upper_snake(&format!("{e:?}")),
            None => "NONE".to_string(),
        }
    }
}

impl std::fmt::Display for KafkaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let detail = match (&self.message, self.code.err()) {
            (Some(m), _) if !m.is_empty() => m.clone(),
            (_, Some(e)) => e.to_string(),
            _ => String::new(),
        };
        write!(f, "{}: {}", self.name(), detail)
    }
}

fn upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// `Err(Kafka)` for a non-zero error code.
pub fn check(code: i16, message: Option<&StrBytes>) -> Result<(), ClientError> {
    if code == 0 {
        Ok(())
    } else {
        Err(ClientError::Kafka(KafkaError::new(
            code,
            message.map(|m| m.to_string()),
        )))
    }
}

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Connection settings shared by every command.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Comma-separated `host:port` list, tried in order.
    pub bootstrap: String,
    pub client_id: String,
    /// Per-request deadline (a Fetch adds its own max wait on top).
    pub request_timeout: Duration,
    /// Largest response frame accepted; checked before allocating.
    pub max_frame: usize,
}

impl ClientConfig {
    /// Defaults for the CLI: 30 s requests, 128 MiB frames.
    pub fn new(bootstrap: &str) -> Self {
        Self {
            bootstrap: bootstrap.to_string(),
            client_id: "fjord-cli".to_string(),
            request_timeout: Duration::from_secs(30),
            max_frame: 128 << 20,
        }
    }
}

/// One connection to one broker; requests are sent one at a time.
#[derive(Debug)]
pub struct Conn {
    addr: String,
    stream: TcpStream,
    next_corr: i32,
    versions: Vec<ApiVersion>,
    client_id: StrBytes,
    timeout: Duration,
    max_frame: usize,
}

impl Conn {
    /// Connect and negotiate versions (ApiVersions v3, falling back to v0).
    pub async fn open(addr: &str, cfg: &ClientConfig) -> Result<Self> {
        let fut = TcpStream::connect(addr);
        let stream = match tokio::time::timeout(cfg.request_timeout, fut).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(ClientError::Connect {
                    addr: addr.to_string(),
                    source: e,
                })
            }
            Err(_) => {
                return Err(ClientError::Timeout {
                    addr: addr.to_string(),
                    what: "connect".into(),
                })
            }
        };
        let _ = stream.set_nodelay(true);
        let mut c = Conn {
            addr: addr.to_string(),
            stream,
            next_corr: 1,
            versions: Vec::new(),
            client_id: StrBytes::from_string(cfg.client_id.clone()),
            timeout: cfg.request_timeout,
            max_frame: cfg.max_frame,
        };
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("fjord"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut resp: ApiVersionsResponse = c.send_at(&req, 3, c.timeout).await?;
        if resp.error_code == 35 {
            resp = c
                .send_at(&ApiVersionsRequest::default(), 0, c.timeout)
                .await?;
        }
        check(resp.error_code, None)?;
        c.versions = resp.api_keys;
        Ok(c)
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The broker's advertised API version ranges.
    pub fn versions(&self) -> &[ApiVersion] {
        &self.versions
    }

    /// The highest version of `R` both sides speak, capped at `max`.
    pub fn pick<R: Request>(&self, max: i16) -> Result<i16> {
        let api = ApiKey::try_from(R::KEY).map_err(|_| ClientError::Encode("api key".into()))?;
        let lo = R::VERSIONS.min;
        let hi = R::VERSIONS.max.min(max);
        let Some(v) = self.versions.iter().find(|v| v.api_key == R::KEY) else {
            return Err(ClientError::Unsupported {
                addr: self.addr.clone(),
                api,
                lo,
                hi,
            });
        };
        let pick = hi.min(v.max_version);
        if pick < lo.max(v.min_version) {
            return Err(ClientError::Unsupported {
                addr: self.addr.clone(),
                api,
                lo,
                hi,
            });
        }
        Ok(pick)
    }

    /// Send `req` at the best version ≤ `max` and wait for the response.
    pub async fn call<R: Request>(&mut self, req: &R, max: i16) -> Result<R::Response> {
        let v = self.pick::<R>(max)?;
        self.send_at(req, v, self.timeout).await
    }

    /// Like [`Conn::call`] with an extra wait (Fetch long polls).
    pub async fn call_wait<R: Request>(
        &mut self,
        req: &R,
        max: i16,
        extra: Duration,
    ) -> Result<R::Response> {
        let v = self.pick::<R>(max)?;
        self.send_at(req, v, self.timeout + extra).await
    }

    /// Send without waiting for a response (Produce with acks=0).
    pub async fn send_only<R: Request>(&mut self, req: &R, max: i16) -> Result<()> {
        let v = self.pick::<R>(max)?;
        let corr = self.next_corr();
        let frame = self.frame(req, v, corr)?;
        self.write(&frame).await
    }

    fn next_corr(&mut self) -> i32 {
        let c = self.next_corr;
        self.next_corr = self.next_corr.wrapping_add(1).max(1);
        c
    }

    fn frame<R: Request>(&self, req: &R, version: i16, corr: i32) -> Result<Bytes> {
        let api = ApiKey::try_from(R::KEY).map_err(|_| ClientError::Encode("api key".into()))?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(corr)
            .with_client_id(Some(self.client_id.clone()));
        let mut buf = BytesMut::with_capacity(128);
        buf.put_i32(0);
        header
            .encode(&mut buf, R::header_version(version))
            .map_err(|e| ClientError::Encode(format!("{api:?} header: {e}")))?;
        req.encode(&mut buf, version)
            .map_err(|e| ClientError::Encode(format!("{api:?} v{version}: {e}")))?;
        let len = i32::try_from(buf.len() - 4)
            .map_err(|_| ClientError::Encode("request too large".into()))?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        Ok(buf.freeze())
    }

    async fn write(&mut self, frame: &[u8]) -> Result<()> {
        self.stream
            .write_all(frame)
            .await
            .map_err(|e| ClientError::Io {
                addr: self.addr.clone(),
                source: e,
            })
    }

    async fn send_at<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let api = ApiKey::try_from(R::KEY).map_err(|_| ClientError::Encode("api key".into()))?;
        let corr = self.next_corr();
        let frame = self.frame(req, version, corr)?;
        let addr = self.addr.clone();
        let fut = async {
            self.write(&frame).await?;
            self.read_frame().await
        };
        let mut body = match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(ClientError::Timeout {
                    addr,
                    what: format!("{api:?} response"),
                })
            }
        };
        let malformed = |msg: String| ClientError::Malformed {
            addr: addr.clone(),
            msg,
        };
        // ApiVersions responses always carry header v0 (so old clients can read them).
        let hv = if api == ApiKey::ApiVersions {
            0
        } else {
            R::Response::header_version(version)
        };
        let header = ResponseHeader::decode(&mut body, hv)
            .map_err(|e| malformed(format!("{api:?} header: {e}")))?;
        if header.correlation_id != corr {
            return Err(malformed(format!(
                "correlation id {} where {corr} was expected",
                header.correlation_id
            )));
        }
        // An ApiVersions error 35 answer is v0-shaped whatever we asked.
        let v = if api == ApiKey::ApiVersions && body.len() >= 2 && body[..2] == [0, 35] {
            0
        } else {
            version
        };
        R::Response::decode(&mut body, v).map_err(|e| malformed(format!("{api:?} v{v}: {e}")))
    }

    async fn read_frame(&mut self) -> Result<Bytes> {
        let io = |addr: &str, e| ClientError::Io {
            addr: addr.to_string(),
            source: e,
        };
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .await
            .map_err(|e| io(&self.addr, e))?;
        let n = i32::from_be_bytes(len) as i64;
        if n < 4 || n as u64 > self.max_frame as u64 {
            return Err(ClientError::FrameTooLarge {
                addr: self.addr.clone(),
                len: n,
                cap: self.max_frame,
            });
        }
        let mut buf = BytesMut::zeroed(n as usize);
        self.stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| io(&self.addr, e))?;
        Ok(buf.freeze())
    }
}

/// A broker as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port` for connecting.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Where a request goes: the bootstrap connection or a given broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Any,
    Id(i32),
}

/// A client over a bootstrap connection plus lazily opened broker connections.
#[derive(Debug)]
pub struct Client {
    cfg: ClientConfig,
    boot: Conn,
    nodes: HashMap<i32, Conn>,
    /// Brokers from the last Metadata answer.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    pub cluster_id: Option<String>,
    pub controller_id: i32,
}

/// The partitions of one topic as Metadata describes them.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub name: String,
    pub topic_id: uuid::Uuid,
    pub internal: bool,
    pub partitions: Vec<PartitionInfo>,
}

/// One partition: leader (-1 when none), replicas, in-sync replicas.
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub index: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
    pub error_code: i16,
}

impl Client {
    /// Connect to the first reachable bootstrap broker.
    pub async fn connect(cfg: ClientConfig) -> Result<Self> {
        let mut last = None;
        for addr in cfg
            .bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match Conn::open(addr, &cfg).await {
                Ok(boot) => {
                    return Ok(Client {
                        cfg,
                        boot,
                        nodes: HashMap::new(),
                        brokers: BTreeMap::new(),
                        cluster_id: None,
                        controller_id: -1,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::NoBroker(cfg.bootstrap.clone())))
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The connection for `node`, opening it on first use.
    pub async fn conn(&mut self, node: Node) -> Result<&mut Conn> {
        let id = match node {
            Node::Any => return Ok(&mut self.boot),
            Node::Id(id) => id,
        };
        if !self.nodes.contains_key(&id) {
            if self.brokers.is_empty() {
                self.metadata(Some(&[]), false).await?;
            }
            let info = self
                .brokers
                .get(&id)
                .cloned()
                .ok_or(ClientError::UnknownNode(id))?;
            let c = Conn::open(&info.addr(), &self.cfg).await?;
            self.nodes.insert(id, c);
        }
        self.nodes.get_mut(&id).ok_or(ClientError::UnknownNode(id))
    }

    /// Drop a broker connection (after an i/o error) so the next call reconnects.
    pub fn forget(&mut self, id: i32) {
        self.nodes.remove(&id);
    }

    /// Send `req` to `node` at the best version ≤ `max`.
    pub async fn call<R: Request>(&mut self, node: Node, req: &R, max: i16) -> Result<R::Response> {
        self.conn(node).await?.call(req, max).await
    }

    /// Metadata for `topics` (None = all), refreshing the broker list.
    pub async fn metadata(
        &mut self,
        topics: Option<&[String]>,
        auto_create: bool,
    ) -> Result<MetadataResponse> {
        let v = self.boot.pick::<MetadataRequest>(12)?;
        let mut req = MetadataRequest::default();
        req.topics = match topics {
            None if v == 0 => Some(Vec::new()),
            None => None,
            Some(ts) => Some(
                ts.iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
                    })
                    .collect(),
            ),
        };
        if v >= 4 {
            req.allow_auto_topic_creation = auto_create;
        }
        let resp: MetadataResponse = self.boot.send_at(&req, v, self.cfg.request_timeout).await?;
        self.brokers = resp
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    BrokerInfo {
                        id: b.node_id.0,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.as_ref().map(|r| r.to_string()),
                    },
                )
            })
            .collect();
        self.cluster_id = resp.cluster_id.as_ref().map(|c| c.to_string());
        self.controller_id = resp.controller_id.0;
        Ok(resp)
    }

    /// Metadata for the named topics as [`TopicInfo`]s; a topic-level error
    /// (unknown topic, invalid name) is returned as an error.
    pub async fn topics(
        &mut self,
        names: Option<&[String]>,
        auto_create: bool,
    ) -> Result<Vec<TopicInfo>> {
        let resp = self.metadata(names, auto_create).await?;
        let mut out = Vec::with_capacity(resp.topics.len());
        for t in resp.topics {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            if t.error_code != 0 {
                let msg = match t.error_code {
                    3 => Some(format!("Topic '{name}' does not exist")),
                    _ => Some(format!("topic '{name}'")),
                };
                return Err(ClientError::Kafka(KafkaError::new(t.error_code, msg)));
            }
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    index: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|x| x.0).collect(),
                    isr: p.isr_nodes.iter().map(|x| x.0).collect(),
                    offline: p.offline_replicas.iter().map(|x| x.0).collect(),
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.index);
            out.push(TopicInfo {
                name,
                topic_id: t.topic_id,
                internal: t.is_internal,
                partitions,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One topic's metadata (auto-creating it if asked and the broker allows).
    pub async fn topic(&mut self, name: &str, auto_create: bool) -> Result<TopicInfo> {
        let mut v = self.topics(Some(&[name.to_string()]), auto_create).await?;
        v.pop().ok_or_else(|| {
            ClientError::Kafka(KafkaError::new(
                3,
                Some(format!("Topic '{name}' does not exist")),
            ))
        })
    }

    /// Offsets per partition for `ts` (-1 latest, -2 earliest, else a
    /// timestamp in ms), each partition asked of its leader. `None` when the
    /// broker found no offset (a timestamp after the last record).
    pub async fn list_offsets(
        &mut self,
        topic: &TopicInfo,
        partitions: &[i32],
        ts: i64,
    ) -> Result<BTreeMap<i32, Option<(i64, i64)>>> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in partitions {
            let leader = topic
                .partitions
                .iter()
                .find(|x| x.index == *p)
                .map(|x| x.leader)
                .unwrap_or(-1);
            if leader < 0 {
                return Err(ClientError::Kafka(KafkaError::new(
                    5,
                    Some(format!("partition {}-{p} has no leader", topic.name)),
                )));
            }
            by_leader.entry(leader).or_default().push(*p);
        }
        let mut out = BTreeMap::new();
        for (leader, ps) in by_leader {
            let mut req = ListOffsetsRequest::default().with_replica_id((-1).into());
            req.topics = vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.name.clone())))
                .with_partitions(
                    ps.iter()
                        .map(|p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(*p)
                                .with_timestamp(ts)
                        })
                        .collect(),
                )];
            let resp = self.call(Node::Id(leader), &req, 7).await?;
            for t in resp.topics {
                for p in t.partitions {
                    check(p.error_code, None)?;
                    let v = if p.offset < 0 {
                        None
                    } else {
                        Some((p.offset, p.timestamp))
                    };
                    out.insert(p.partition_index, v);
                }
            }
        }
        Ok(out)
    }

    /// API versions of every live broker, by broker (connecting to each).
    pub async fn all_api_versions(&mut self) -> Result<Vec<(BrokerInfo, Vec<ApiVersion>)>> {
        self.metadata(Some(&[]), false).await?;
        let brokers: Vec<BrokerInfo> = self.brokers.values().cloned().collect();
        let mut out = Vec::with_capacity(brokers.len());
        for b in brokers {
            let c = self.conn(Node::Id(b.id)).await?;
            out.push((b, c.versions().to_vec()));
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------- partitioning

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed 0x9747b28c.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The Java default partitioner for a keyed record:
/// `toPositive(murmur2(key)) % numPartitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    (murmur2(key) & 0x7fff_ffff) % partitions
}

// ---------------------------------------------------------------- record batches

/// A record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time in ms.
    pub timestamp: i64,
}

/// Parse a compression name as the Kafka tools spell it.
pub fn parse_compression(s: &str) -> Option<Compression> {
    Some(match s.to_ascii_lowercase().as_str() {
        "none" | "" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => return None,
    })
}

/// One v2 record batch (CRC-32C, varints, optional compression) holding `recs`,
/// without producer id (non-idempotent), offsets 0..n.
pub fn encode_batch(recs: &[ProducerRecord], compression: Compression) -> Result<Bytes> {
    let records: Vec<Record> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // offset - sequence is constant, so the encoder keeps one batch
            // and writes base sequence -1.
            sequence: (i as i32).wrapping_sub(1),
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::with_capacity(64 + recs.len() * 32);
    let opts = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &opts)
        .map_err(|e| ClientError::Encode(format!("record batch: {e}")))?;
    Ok(buf.freeze())
}

/// A record read back from a Fetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub offset: i64,
    pub timestamp: i64,
    /// True when the timestamp is the broker's append time.
    pub log_append_time: bool,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

fn bad(msg: impl Into<String>) -> ClientError {
    ClientError::Batch(msg.into())
}

fn varlong(b: &mut Bytes) -> Result<i64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        if !b.has_remaining() {
            return Err(bad("truncated varint"));
        }
        let byte = b.get_u8();
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    Err(bad("varint too long"))
}

fn varbytes(b: &mut Bytes) -> Result<Option<Bytes>> {
    let n = varlong(b)?;
    if n < 0 {
        return Ok(None);
    }
    let n = usize::try_from(n).map_err(|_| bad("length"))?;
    if n > b.remaining() {
        return Err(bad("field longer than its record"));
    }
    Ok(Some(b.split_to(n)))
}

fn parse_records(
    b: &mut Bytes,
    count: i32,
    base_offset: i64,
    base_ts: i64,
    append_ts: Option<i64>,
    out: &mut Vec<ConsumedRecord>,
) -> Result<()> {
    for _ in 0..count {
        let len = varlong(b)?;
        let len = usize::try_from(len).map_err(|_| bad("negative record length"))?;
        if len > b.remaining() {
            return Err(bad("record longer than its batch"));
        }
        let mut r = b.split_to(len);
        if !r.has_remaining() {
            return Err(bad("empty record"));
        }
        r.advance(1); // attributes (unused in v2)
        let ts_delta = varlong(&mut r)?;
        let off_delta = varlong(&mut r)?;
        let key = varbytes(&mut r)?;
        let value = varbytes(&mut r)?;
        let nh = varlong(&mut r)?;
        if nh < 0 || nh as u64 > r.remaining() as u64 {
            return Err(bad("bad header count"));
        }
        let mut headers = Vec::with_capacity(nh as usize);
        for _ in 0..nh {
            let k = varbytes(&mut r)?.ok_or_else(|| bad("null header key"))?;
            let v = varbytes(&mut r)?;
            headers.push((String::from_utf8_lossy(&k).into_owned(), v));
        }
        out.push(ConsumedRecord {
            offset: base_offset.wrapping_add(off_delta),
            timestamp: append_ts.unwrap_or(base_ts.wrapping_add(ts_delta)),
            log_append_time: append_ts.is_some(),
            key,
            value,
            headers,
        });
    }
    Ok(())
}

/// Decode every complete v2 batch in `data` (a Fetch partition's records),
/// skipping control batches and records before `from`. A trailing partial
/// batch (the broker may cut at max_bytes) is ignored.
pub fn decode_records(data: &Bytes, from: i64) -> Result<Vec<ConsumedRecord>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while data.len() - at >= 17 {
        let rest = &data[at..];
        let blen = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if blen < 0 {
            return Err(bad("negative batch length"));
        }
        let total = 12 + blen as usize;
        if total > rest.len() {
            break;
        }
        let h = crate::batch::parse_header(rest).map_err(|e| bad(e.to_string()))?;
        crate::batch::check_crc(rest, &h).map_err(|e| bad(e.to_string()))?;
        let batch = data.slice(at..at + total);
        at += total;
        if h.is_control() || h.base_offset + (h.last_offset_delta as i64) < from {
            continue;
        }
        let append_ts = (h.attributes & 0x08 != 0).then_some(h.max_timestamp);
        let mut body = batch.slice(crate::batch::HEADER_LEN..);
        let start = out.len();
        let parse = |b: &mut Bytes, out: &mut Vec<ConsumedRecord>| {
            parse_records(
                b,
                h.record_count,
                h.base_offset,
                h.base_timestamp,
                append_ts,
                out,
            )
        };
        match h.attributes & 0x07 {
            0 => parse(&mut body, &mut out)?,
            c => {
                let mut err = None;
                let mut f = |b: &mut Bytes| -> anyhow::Result<()> {
                    if let Err(e) = parse(b, &mut out) {
                        err = Some(e);
                    }
                    Ok(())
                };
                let r = match c {
                    1 => <cmpr::Gzip as Decompressor<Bytes>>::decompress(&mut body, &mut f),
                    2 => <cmpr::Snappy as Decompressor<Bytes>>::decompress(&mut body, &mut f),
                    3 => <cmpr::Lz4 as Decompressor<Bytes>>::decompress(&mut body, &mut f),
                    4 => <cmpr::Zstd as Decompressor<Bytes>>::decompress(&mut body, &mut f),
                    _ => return Err(bad(format!("unknown compression {c}"))),
                };
                r.map_err(|e| bad(format!("decompress: {e}")))?;
                if let Some(e) = err {
                    return Err(e);
                }
            }
        }
        // Drop records before the fetch offset (the batch may start earlier).
        if out[start..].iter().any(|r| r.offset < from) {
            let tail = out.split_off(start);
            out.extend(tail.into_iter().filter(|r| r.offset >= from));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka_utils_test() {
        // apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (k, want) in cases {
            assert_eq!(murmur2(k), *want, "{}", String::from_utf8_lossy(k));
        }
        assert_eq!(
            partition_for_key(b"21", 6),
            (-973932308i32 & 0x7fffffff) % 6
        );
        assert_eq!(partition_for_key(b"x", 0), 0);
    }

    fn recs(n: usize) -> Vec<ProducerRecord> {
        (0..n)
            .map(|i| ProducerRecord {
                key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
                value: if i == 3 {
                    None
                } else {
                    Some(Bytes::from(format!("value-{i}")))
                },
                headers: if i == 1 {
                    vec![
                        ("h".into(), Some(Bytes::from_static(b"v"))),
                        ("n".into(), None),
                    ]
                } else {
                    vec![]
                },
                timestamp: 1_700_000_000_000 + i as i64,
            })
            .collect()
    }

    #[test]
    fn batch_round_trip_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let input = recs(50);
            let b = encode_batch(&input, c).unwrap();
            let h = crate::batch::parse_header(&b).unwrap();
            assert_eq!(h.record_count, 50);
            assert_eq!(h.base_sequence, -1);
            assert_eq!(h.producer_id, -1);
            crate::batch::check_crc(&b, &h).unwrap();
            let out = decode_records(&b, 0).unwrap();
            assert_eq!(out.len(), 50, "{c:?}");
            for (i, (r, o)) in input.iter().zip(&out).enumerate() {
                assert_eq!(o.offset, i as i64);
                assert_eq!(o.key, r.key);
                assert_eq!(o.value, r.value);
                assert_eq!(o.headers, r.headers);
                assert_eq!(o.timestamp, r.timestamp);
            }
            // Records before the fetch offset are dropped; a cut batch is ignored.
            assert_eq!(decode_records(&b, 45).unwrap().len(), 5);
            assert!(decode_records(&b.slice(..b.len() - 1), 0)
                .unwrap()
                .is_empty());
        }
    }

    #[test]
    fn patched_offsets_and_bad_batches() {
        let b = encode_batch(&recs(3), Compression::None).unwrap();
        let p = crate::batch::patched(&b, 100, 4);
        let mut two = BytesMut::new();
        two.extend_from_slice(&b);
        two.extend_from_slice(&p);
        let out = decode_records(&two.freeze(), 0).unwrap();
        let offs: Vec<i64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offs, vec![0, 1, 2, 100, 101, 102]);
        let mut v = b.to_vec();
        let last = v.len() - 2;
        v[last] ^= 0xff;
        assert!(decode_records(&Bytes::from(v), 0).is_err());
        // Garbage never panics.
        for n in 0..200usize {
            let g: Vec<u8> = (0..n).map(|i| (i * 31 + n) as u8).collect();
            let _ = decode_records(&Bytes::from(g), 0);
        }
    }

    #[test]
    fn kafka_error_names() {
        let e = KafkaError::new(36, None);
        assert_eq!(e.name(), "TOPIC_ALREADY_EXISTS");
        let e = KafkaError::new(3, Some("Topic 'x' does not exist".into()));
        assert_eq!(
            e.to_string(),
            "UNKNOWN_TOPIC_OR_PARTITION: Topic 'x' does not exist"
        );
    }
}
