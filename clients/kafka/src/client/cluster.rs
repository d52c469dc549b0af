//! [`Client`]: the cluster as a client sees it — a bootstrap connection,
//! lazily opened connections per broker, the broker list and topics from
//! Metadata, and ListOffsets asked of each partition's leader.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ParseResponseErrorCode;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};

use super::conn::{ClientConfig, Conn};
use super::error::{check, ClientError, KafkaError};

type Result<T, E = ClientError> = std::result::Result<T, E>;

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

impl TopicInfo {
    /// `partitions` grouped by their leader (-1 when none is known), each
    /// group in the order given: one request per leader.
    pub fn by_leader(&self, partitions: impl IntoIterator<Item = i32>) -> BTreeMap<i32, Vec<i32>> {
        let mut out: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in partitions {
            let leader = self
                .partitions
                .iter()
                .find(|x| x.index == p)
                .map_or(-1, |x| x.leader);
            out.entry(leader).or_default().push(p);
        }
        out
    }
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
                let msg = match t.error_code.err() {
                    Some(ResponseError::UnknownTopicOrPartition) => {
                        Some(format!("Topic '{name}' does not exist"))
                    }
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
            ClientError::Kafka(KafkaError::of(
                ResponseError::UnknownTopicOrPartition,
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
                return Err(ClientError::Kafka(KafkaError::of(
                    ResponseError::LeaderNotAvailable,
                    Some(format!("partition {}-{p} has no leader", topic.name)),
                )));
            }
            by_leader.entry(leader).or_default().push(*p);
        }
        let mut out = BTreeMap::new();
        for (leader, ps) in by_leader {
            let asked = BTreeMap::from([(topic.name.as_str(), ps)]);
            let resp = self.list_offsets_at(leader, &asked, ts, 7).await?;
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

    /// ListOffsets at `ts` for `partitions` (by topic), asked of broker
    /// `leader` at a version up to `max_version`; the raw answer.
    pub async fn list_offsets_at(
        &mut self,
        leader: i32,
        partitions: &BTreeMap<&str, Vec<i32>>,
        ts: i64,
        max_version: i16,
    ) -> Result<ListOffsetsResponse> {
        let req = list_offsets_request(partitions, ts);
        self.call(Node::Id(leader), &req, max_version).await
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

/// A consumer's ListOffsets (replica id -1) at `ts` (-2 earliest, -1
/// latest, else a timestamp) for `partitions`, by topic.
pub fn list_offsets_request(partitions: &BTreeMap<&str, Vec<i32>>, ts: i64) -> ListOffsetsRequest {
    let topics = partitions
        .iter()
        .map(|(t, ps)| {
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(t.to_string())))
                .with_partitions(
                    ps.iter()
                        .map(|p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(*p)
                                .with_timestamp(ts)
                        })
                        .collect(),
                )
        })
        .collect();
    ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(topics)
}
