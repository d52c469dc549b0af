//! Kafka API handlers. Each takes a decoded request and returns a response
//! body built from `Default::default()` with only version-valid fields set.
//!
//! Produce is split in two: `produce_submit` runs synchronously in the
//! connection's read order (so offsets follow request order), and returns a
//! future that waits for the group commit.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;

use crate::batch;
use crate::broker::Broker;
use crate::cluster::{AdminError, Cluster, NewTopic};
use crate::codec::{api_versions_table, Request};
use crate::log::{LogError, Partition};
use crate::metadata::{ClusterView, TopicMeta};

/// Kafka error codes used here.
pub mod err {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const INVALID_REQUEST: i16 = 42;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub const INVALID_CONFIG: i16 = 40;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
}

/// A response in the making; None = send nothing (acks=0).
pub type Pending = Pin<Box<dyn Future<Output = Option<ResponseKind>> + Send>>;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn log_err_code(e: &LogError) -> i16 {
    match e {
        LogError::Batch(batch::BatchError::UnsupportedMagic) => err::UNSUPPORTED_FOR_MESSAGE_FORMAT,
        LogError::Batch(_) => err::CORRUPT_MESSAGE,
        LogError::OutOfOrderSequence => err::OUT_OF_ORDER_SEQUENCE_NUMBER,
        LogError::InvalidProducerEpoch => err::INVALID_PRODUCER_EPOCH,
        LogError::OffsetOutOfRange => err::OFFSET_OUT_OF_RANGE,
        LogError::NotLeader => err::NOT_LEADER_OR_FOLLOWER,
        LogError::Offline
        | LogError::Db(_)
        | LogError::Stopped
        | LogError::Meta(_)
        | LogError::NonContiguous { .. } => err::KAFKA_STORAGE_ERROR,
    }
}

/// Dispatch one request. Runs in read order; the returned future may wait.
pub fn dispatch(b: &Arc<Broker>, req: Request) -> Pending {
    let v = req.version;
    match req.body {
        RequestKind::ApiVersions(_) => {
            let r = ApiVersionsResponse::default().with_api_keys(api_versions_table());
            Box::pin(async move { Some(ResponseKind::ApiVersions(r)) })
        }
        RequestKind::Produce(r) => produce_submit(b, r, v),
        RequestKind::Fetch(r) => {
            let b = b.clone();
            Box::pin(async move { Some(ResponseKind::Fetch(fetch(&b, r, v).await)) })
        }
        RequestKind::Metadata(r) => {
            let b = b.clone();
            Box::pin(async move { Some(ResponseKind::Metadata(metadata(&b, r, v).await)) })
        }
        RequestKind::ListOffsets(r) => {
            let b = b.clone();
            Box::pin(async move { Some(ResponseKind::ListOffsets(list_offsets(&b, r, v))) })
        }
        RequestKind::CreateTopics(r) => {
            let b = b.clone();
            Box::pin(async move { Some(ResponseKind::CreateTopics(create_topics(&b, r, v).await)) })
        }
        RequestKind::DeleteTopics(r) => {
            let b = b.clone();
            Box::pin(async move { Some(ResponseKind::DeleteTopics(delete_topics(&b, r, v).await)) })
        }
        RequestKind::InitProducerId(r) => {
            let b = b.clone();
            Box::pin(async move { Some(ResponseKind::InitProducerId(init_producer_id(&b, r))) })
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch(
                    &b, r,
                )))
            })
        }
        RequestKind::DescribeConfigs(r) => {
            let b = b.clone();
            Box::pin(async move { Some(ResponseKind::DescribeConfigs(describe_configs(&b, r, v))) })
        }
        RequestKind::AlterConfigs(r) => {
            let b = b.clone();
            Box::pin(async move { Some(ResponseKind::AlterConfigs(alter_configs(&b, r).await)) })
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::IncrementalAlterConfigs(
                    incremental_alter_configs(&b, r).await,
                ))
            })
        }
        RequestKind::CreatePartitions(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::CreatePartitions(
                    create_partitions(&b, r).await,
                ))
            })
        }
        RequestKind::AlterPartitionReassignments(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::AlterPartitionReassignments(
                    alter_reassignments(&b, r).await,
                ))
            })
        }
        RequestKind::ListPartitionReassignments(r) => {
            let b = b.clone();
            Box::pin(async move {
                Some(ResponseKind::ListPartitionReassignments(
                    list_reassignments(&b, r),
                ))
            })
        }
        RequestKind::DescribeCluster(r) => {
            let b = b.clone();
            Box::pin(async move { Some(ResponseKind::DescribeCluster(describe_cluster(&b, r, v))) })
        }
        body if crate::group::handles(&body) => {
            crate::group::dispatch(b, body, v, &req.header, req.peer)
        }
        _ => Box::pin(async { None }),
    }
}

/// Where a partition request stands against the cache.
enum Lookup {
    Ok(Arc<TopicMeta>, i32),
    Err(i16),
}

fn lookup(
    b: &Broker,
    view: &ClusterView,
    topic: &str,
    partition: i32,
    current_epoch: i32,
) -> Lookup {
    let Some(t) = view.topics.get(topic) else {
        return Lookup::Err(err::UNKNOWN_TOPIC_OR_PARTITION);
    };
    if t.deleting {
        return Lookup::Err(err::UNKNOWN_TOPIC_OR_PARTITION);
    }
    let Some(p) = t.partitions.iter().find(|p| p.index == partition) else {
        return Lookup::Err(err::UNKNOWN_TOPIC_OR_PARTITION);
    };
    if p.leader() != b.id() {
        return Lookup::Err(if p.leader() < 0 {
            err::LEADER_NOT_AVAILABLE
        } else {
            err::NOT_LEADER_OR_FOLLOWER
        });
    }
    if current_epoch >= 0 {
        if current_epoch < p.leader_epoch() {
            return Lookup::Err(err::FENCED_LEADER_EPOCH);
        }
        if current_epoch > p.leader_epoch() {
            return Lookup::Err(err::UNKNOWN_LEADER_EPOCH);
        }
    }
    Lookup::Ok(t.clone(), p.leader_epoch())
}

fn local_log(b: &Broker, topic: &str, partition: i32) -> Result<Arc<Partition>, i16> {
    match b.log.get(topic, partition) {
        Some(p) => Ok(p),
        None => b.log.ensure(topic, partition).map_err(|e| log_err_code(&e)),
    }
}

// ---------------------------------------------------------------- Produce

fn produce_submit(b: &Arc<Broker>, r: ProduceRequest, version: i16) -> Pending {
    let acks = r.acks;
    let view = b.cache.view();
    let timeout = Duration::from_millis(r.timeout_ms.clamp(0, 300_000) as u64);
    /// (topic index, partition index, write done, acks=all: partition, last
    /// offset, min.insync.replicas).
    type Waiter = (
        usize,
        usize,
        tokio::sync::oneshot::Receiver<Result<(), String>>,
        Option<(Arc<Partition>, i64, usize)>,
    );
    let mut waits: Vec<Waiter> = Vec::new();
    let mut topics: Vec<produce_response::TopicProduceResponse> =
        Vec::with_capacity(r.topic_data.len());
    for (ti, td) in r.topic_data.into_iter().enumerate() {
        let name = td.name.0.to_string();
        let mut parts = Vec::with_capacity(td.partition_data.len());
        for (pi, pd) in td.partition_data.into_iter().enumerate() {
            let mut resp = produce_response::PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1);
            let code = if r.transactional_id.is_some() {
                err::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            } else if !(-1..=1).contains(&acks) {
                err::INVALID_REQUIRED_ACKS
            } else {
                match lookup(b, &view, &name, pd.index, -1) {
                    Lookup::Err(c) => c,
                    Lookup::Ok(t, epoch) => {
                        let records = pd.records.unwrap_or_default();
                        let isr_len = t
                            .partitions
                            .iter()
                            .find(|p| p.index == pd.index)
                            .map(|p| p.isr().len() as i32)
                            .unwrap_or(0);
                        let min_isr = t
                            .configs
                            .get("min.insync.replicas")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(b.config.min_insync_replicas);
                        if records.len() > b.max_message_bytes(&t) + 12 {
                            err::MESSAGE_TOO_LARGE
                        } else if acks == -1 && isr_len < min_isr {
                            err::NOT_ENOUGH_REPLICAS
                        } else {
                            match local_log(b, &name, pd.index) {
                                Err(c) => c,
                                Ok(p) => match batch::split_batches(&records) {
                                    Err(e) => log_err_code(&LogError::Batch(e)),
                                    Ok(batches) => match b.log.append(&p, batches, epoch) {
                                        Err(e) => log_err_code(&e),
                                        Ok(a) => {
                                            resp.base_offset = a.base_offset;
                                            if version >= 5 {
                                                resp.log_start_offset = a.log_start;
                                            }
                                            let all = (acks == -1).then(|| {
                                                (p.clone(), a.last_offset, min_isr.max(1) as usize)
                                            });
                                            waits.push((ti, pi, a.done, all));
                                            metrics::counter!(
                                                "kafka_server_brokertopicmetrics_bytesin_total"
                                            )
                                            .increment(records.len() as u64);
                                            err::NONE
                                        }
                                    },
                                },
                            }
                        }
                    }
                }
            };
            resp.error_code = code;
            if code != err::NONE {
                resp.base_offset = -1;
            }
            parts.push(resp);
        }
        topics.push(
            produce_response::TopicProduceResponse::default()
                .with_name(td.name)
                .with_partition_responses(parts),
        );
    }
    Box::pin(async move {
        let deadline = tokio::time::Instant::now() + timeout.max(Duration::from_millis(1));
        for (ti, pi, rx, all) in waits {
            let res = tokio::time::timeout_at(deadline, rx).await;
            let mut code = match res {
                Ok(Ok(Ok(()))) => err::NONE,
                Ok(Ok(Err(_))) | Ok(Err(_)) => err::KAFKA_STORAGE_ERROR,
                Err(_) => err::REQUEST_TIMED_OUT,
            };
            if let (err::NONE, Some((p, last, min_isr))) = (code, all) {
                code = wait_committed(&p, last, min_isr, deadline).await;
            }
            if code != err::NONE {
                if let Some(p) = topics
                    .get_mut(ti)
                    .and_then(|t| t.partition_responses.get_mut(pi))
                {
                    p.error_code = code;
                    p.base_offset = -1;
                }
            }
        }
        if acks == 0 {
            return None;
        }
        Some(ResponseKind::Produce(
            ProduceResponse::default().with_responses(topics),
        ))
    })
}

/// acks=all: wait until the high watermark covers `last` (every ISR member
/// has it), the deadline passes (REQUEST_TIMED_OUT) or this replica stops
/// leading (NOT_LEADER_OR_FOLLOWER: the producer retries on the new leader,
/// idempotence making the retry safe). Solo partitions return at once.
/// Committed while the ISR had shrunk below min.insync.replicas: the batch is
/// in the log but on fewer copies than asked, NOT_ENOUGH_REPLICAS_AFTER_APPEND.
async fn wait_committed(
    p: &Arc<Partition>,
    last: i64,
    min_isr: usize,
    deadline: tokio::time::Instant,
) -> i16 {
    let committed = || {
        if p.offsets().high_watermark <= last {
            return None;
        }
        if min_isr > 1 && p.isr_view().0.len().max(1) < min_isr {
            return Some(err::NOT_ENOUGH_REPLICAS_AFTER_APPEND);
        }
        Some(err::NONE)
    };
    if let Some(c) = committed() {
        return c;
    }
    let notify = Arc::new(Notify::new());
    loop {
        p.add_waiter(&notify);
        if let Some(c) = committed() {
            return c;
        }
        if p.role().0 != crate::log::Role::Leader {
            return err::NOT_LEADER_OR_FOLLOWER;
        }
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep_until(deadline) => return err::REQUEST_TIMED_OUT,
        }
    }
}

// ---------------------------------------------------------------- Fetch

struct FetchPart {
    topic_idx: usize,
    part: Option<Arc<Partition>>,
    offset: i64,
    max_bytes: usize,
    code: i16,
}

async fn fetch(b: &Arc<Broker>, r: FetchRequest, version: i16) -> FetchResponse {
    let view = b.cache.view();
    let started = Instant::now();
    let max_wait = Duration::from_millis(r.max_wait_ms.clamp(0, 60_000) as u64);
    let min_bytes = r.min_bytes.max(0) as usize;
    let max_total = if r.max_bytes <= 0 {
        usize::MAX
    } else {
        r.max_bytes as usize
    };
    // A follower's fetch (replica_id >= 0) is honoured only from a registered
    // broker, and only for partitions it replicates (checked per partition).
    let replica = r.replica_id.0;
    let from_replica = replica >= 0;
    let registered = from_replica && view.brokers.contains_key(&replica);
    let mut plan: Vec<FetchPart> = Vec::new();
    let mut names = Vec::with_capacity(r.topics.len());
    let mut isr_candidates = Vec::new();
    for (ti, t) in r.topics.iter().enumerate() {
        names.push(t.topic.clone());
        let name = t.topic.0.as_str();
        for p in &t.partitions {
            if from_replica {
                let replicates = view.topics.get(name).is_some_and(|tm| {
                    tm.partitions
                        .iter()
                        .any(|pm| pm.index == p.partition && pm.replicas.contains(&replica))
                });
                if !registered || !replicates {
                    plan.push(FetchPart {
                        topic_idx: ti,
                        part: None,
                        offset: p.fetch_offset,
                        max_bytes: 0,
                        code: err::NOT_LEADER_OR_FOLLOWER,
                    });
                    continue;
                }
            }
            let epoch = if version >= 9 {
                p.current_leader_epoch
            } else {
                -1
            };
            let (part, code) = match lookup(b, &view, name, p.partition, epoch) {
                Lookup::Err(c) => (None, c),
                Lookup::Ok(_, _) => match local_log(b, name, p.partition) {
                    Ok(l) => {
                        let o = l.offsets();
                        let end = if from_replica {
                            l.durable_end()
                        } else {
                            o.high_watermark
                        };
                        if p.fetch_offset < o.log_start || p.fetch_offset > end {
                            (Some(l), err::OFFSET_OUT_OF_RANGE)
                        } else {
                            if from_replica && l.follower_fetched(replica, p.fetch_offset) {
                                isr_candidates.push(l.clone());
                            }
                            (Some(l), err::NONE)
                        }
                    }
                    Err(c) => (None, c),
                },
            };
            plan.push(FetchPart {
                topic_idx: ti,
                part,
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
                code,
            });
        }
    }
    if !isr_candidates.is_empty() {
        b.replicas.nudge_isr();
    }
    // Long poll: answer as soon as min_bytes are available or max_wait passes.
    let has_error = plan.iter().any(|p| p.code != err::NONE);
    if !has_error && min_bytes > 0 && !max_wait.is_zero() {
        let notify = Arc::new(Notify::new());
        let deadline = started + max_wait;
        loop {
            for p in &plan {
                if let Some(l) = &p.part {
                    l.add_waiter(&notify);
                }
            }
            let avail: usize = plan
                .iter()
                .filter_map(|p| {
                    p.part
                        .as_ref()
                        .map(|l| l.available_bytes(p.offset, min_bytes, from_replica))
                })
                .sum();
            if avail >= min_bytes {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let mut stop = b.shutdown_signal();
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(deadline - now) => break,
                _ = stop.changed() => break,
            }
        }
    }
    let mut out: Vec<fetch_response::FetchableTopicResponse> = names
        .into_iter()
        .map(|n| fetch_response::FetchableTopicResponse::default().with_topic(n))
        .collect();
    let mut total = 0usize;
    let mut idx = 0usize;
    for t in &r.topics {
        for p in &t.partitions {
            let fp = &plan[idx];
            idx += 1;
            let mut pd = fetch_response::PartitionData::default()
                .with_partition_index(p.partition)
                .with_records(Some(Bytes::new()));
            let mut code = fp.code;
            if let Some(l) = &fp.part {
                let o = l.offsets();
                pd.high_watermark = o.high_watermark;
                pd.last_stable_offset = o.high_watermark;
                if version >= 5 {
                    pd.log_start_offset = o.log_start;
                }
                if code == err::NONE {
                    let budget = fp.max_bytes.min(max_total.saturating_sub(total));
                    // At least one batch overall, even past max_bytes (KIP-74).
                    let budget = if total == 0 { budget.max(1) } else { budget };
                    if budget > 0 {
                        let read = if from_replica {
                            b.log.read_replica(l, fp.offset, budget)
                        } else {
                            b.log.read(l, fp.offset, budget)
                        };
                        match read {
                            Ok(batches) => {
                                let n: usize = batches.iter().map(|x| x.len()).sum();
                                total += n;
                                pd.records = Some(concat(batches, n));
                                metrics::counter!("kafka_server_brokertopicmetrics_bytesout_total")
                                    .increment(n as u64);
                            }
                            Err(e) => code = log_err_code(&e),
                        }
                    }
                }
            }
            pd.error_code = code;
            if let Some(ot) = out.get_mut(fp.topic_idx) {
                ot.partitions.push(pd);
            }
        }
    }
    FetchResponse::default().with_responses(out)
}

fn concat(batches: Vec<Bytes>, n: usize) -> Bytes {
    if batches.len() == 1 {
        return batches.into_iter().next().unwrap_or_default();
    }
    let mut m = BytesMut::with_capacity(n);
    for x in batches {
        m.extend_from_slice(&x);
    }
    m.freeze()
}

// ---------------------------------------------------------------- Metadata

async fn metadata(b: &Arc<Broker>, r: MetadataRequest, version: i16) -> MetadataResponse {
    let mut view = b.cache.view();
    let requested: Option<Vec<String>> = match &r.topics {
        None => None,
        Some(ts) if ts.is_empty() && version == 0 => None,
        Some(ts) => Some(
            ts.iter()
                .filter_map(|t| {
                    t.name.as_ref().map(|n| n.0.to_string()).or_else(|| {
                        view.topics
                            .values()
                            .find(|m| m.topic_id == t.topic_id)
                            .map(|m| m.name.clone())
                    })
                })
                .collect(),
        ),
    };
    let auto = (version < 4 || r.allow_auto_topic_creation) && b.config.auto_create_topics;
    if let (Some(names), true) = (&requested, auto) {
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !view.topics.contains_key(*n))
            .collect();
        if !missing.is_empty() {
            for n in &missing {
                let t = NewTopic {
                    name: (*n).clone(),
                    partitions: b.config.num_partitions,
                    replication_factor: b.config.default_replication_factor,
                    assignments: None,
                    configs: BTreeMap::new(),
                };
                match b.cluster.create_topic(t, false).await {
                    Ok(()) | Err(AdminError::TopicExists) => {}
                    Err(e) => tracing::info!(topic = %n, error = %e, "auto-create failed"),
                }
            }
            let want: Vec<String> = missing.iter().map(|s| (*s).clone()).collect();
            wait_for(b, Duration::from_secs(2), |v| {
                want.iter().all(|n| {
                    v.topics
                        .get(n)
                        .is_some_and(|t| t.partitions.iter().all(|p| p.leader() >= 0))
                })
            })
            .await;
            view = b.cache.view();
        }
    }
    let brokers = view
        .brokers
        .values()
        .map(|x| {
            metadata_response::MetadataResponseBroker::default()
                .with_node_id(x.id.into())
                .with_host(s(&x.host))
                .with_port(x.port as i32)
        })
        .collect();
    let names: Vec<String> = match requested {
        Some(n) => n,
        None => {
            let mut v: Vec<String> = view.topics.keys().cloned().collect();
            v.sort();
            v
        }
    };
    let mut topics = Vec::with_capacity(names.len());
    for n in names {
        let mut mt =
            metadata_response::MetadataResponseTopic::default().with_name(Some(TopicName(s(&n))));
        match view.topics.get(&n) {
            Some(t) if !t.deleting => {
                if version >= 10 {
                    mt.topic_id = t.topic_id;
                }
                for p in &t.partitions {
                    let leader = p.leader();
                    let live = leader >= 0 && view.brokers.contains_key(&leader);
                    let mut mp = metadata_response::MetadataResponsePartition::default()
                        .with_partition_index(p.index)
                        .with_leader_id(if live { leader } else { -1 }.into())
                        .with_replica_nodes(p.replicas.iter().map(|x| (*x).into()).collect())
                        .with_isr_nodes(p.isr().iter().map(|x| (*x).into()).collect())
                        .with_error_code(if live {
                            err::NONE
                        } else {
                            err::LEADER_NOT_AVAILABLE
                        });
                    if version >= 7 {
                        mp.leader_epoch = p.leader_epoch();
                    }
                    if version >= 5 {
                        mp.offline_replicas = p
                            .replicas
                            .iter()
                            .filter(|x| !view.brokers.contains_key(x))
                            .map(|x| (*x).into())
                            .collect();
                    }
                    mt.partitions.push(mp);
                }
            }
            _ => {
                mt.error_code = if crate::cluster::validate_topic_name(&n).is_err() {
                    err::INVALID_TOPIC_EXCEPTION
                } else {
                    err::UNKNOWN_TOPIC_OR_PARTITION
                }
            }
        }
        topics.push(mt);
    }
    let mut resp = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    if version >= 1 {
        resp.controller_id = view.controller_id.into();
    }
    if version >= 2 {
        resp.cluster_id = Some(s(&view.cluster_id));
    }
    resp
}

/// Wait (bounded) until the cache satisfies `pred`.
async fn wait_for(b: &Broker, limit: Duration, pred: impl Fn(&ClusterView) -> bool) -> bool {
    let mut rx = b.cache.subscribe();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if pred(&b.cache.view()) {
            return true;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            _ => return pred(&b.cache.view()),
        }
    }
}

// ---------------------------------------------------------------- ListOffsets

fn list_offsets(b: &Arc<Broker>, r: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let view = b.cache.view();
    let mut topics = Vec::with_capacity(r.topics.len());
    for t in r.topics {
        let name = t.name.0.to_string();
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let mut pr = list_offsets_response::ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1);
            let epoch = if version >= 4 {
                p.current_leader_epoch
            } else {
                -1
            };
            match lookup(b, &view, &name, p.partition_index, epoch) {
                Lookup::Err(c) => pr.error_code = c,
                Lookup::Ok(_, le) => match local_log(b, &name, p.partition_index) {
                    Err(c) => pr.error_code = c,
                    Ok(l) => {
                        let o = l.offsets();
                        if version >= 4 {
                            pr.leader_epoch = le;
                        }
                        match p.timestamp {
                            -1 => pr.offset = o.high_watermark,
                            -2 => pr.offset = o.log_start,
                            -3 => {
                                if let Some((ts, off)) = l.max_timestamp() {
                                    pr.timestamp = ts;
                                    pr.offset = off;
                                }
                            }
                            ts => match b.log.offset_for_timestamp(&l, ts) {
                                Ok(Some((off, t))) => {
                                    pr.offset = off;
                                    pr.timestamp = t;
                                }
                                Ok(None) => {}
                                Err(e) => pr.error_code = log_err_code(&e),
                            },
                        }
                    }
                },
            }
            parts.push(pr);
        }
        topics.push(
            list_offsets_response::ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(parts),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

// ---------------------------------------------------------------- Admin

async fn create_topics(
    b: &Arc<Broker>,
    r: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(r.topics.len());
    let mut created = Vec::new();
    for t in r.topics {
        let name = t.name.0.to_string();
        let assignments = if t.assignments.is_empty() {
            None
        } else {
            Some(
                t.assignments
                    .iter()
                    .map(|a| {
                        (
                            a.partition_index,
                            a.broker_ids.iter().map(|x| x.0).collect(),
                        )
                    })
                    .collect(),
            )
        };
        let partitions = if t.num_partitions == -1 {
            b.config.num_partitions
        } else {
            t.num_partitions
        };
        let rf = if t.replication_factor == -1 {
            b.config.default_replication_factor
        } else {
            t.replication_factor
        };
        let configs = t
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let nt = NewTopic {
            name: name.clone(),
            partitions,
            replication_factor: rf,
            assignments,
            configs,
        };
        let res = b.cluster.create_topic(nt, r.validate_only).await;
        let mut tr =
            create_topics_response::CreatableTopicResult::default().with_name(t.name.clone());
        match res {
            Ok(()) => {
                if version >= 5 {
                    tr.num_partitions = partitions;
                    tr.replication_factor = rf;
                }
                if !r.validate_only {
                    created.push(name);
                }
            }
            Err(e) => {
                tr.error_code = e.code();
                if version >= 1 {
                    tr.error_message = Some(s(&e.to_string()));
                }
            }
        }
        results.push(tr);
    }
    if !created.is_empty() {
        let limit = Duration::from_millis(r.timeout_ms.clamp(0, 30_000) as u64);
        wait_for(b, limit, |v| {
            created.iter().all(|n| {
                v.topics
                    .get(n)
                    .is_some_and(|t| t.partitions.iter().all(|p| p.leader() >= 0))
            })
        })
        .await;
    }
    if version >= 7 {
        let view = b.cache.view();
        for tr in results.iter_mut() {
            if let Some(t) = view.topics.get(tr.name.0.as_str()) {
                tr.topic_id = t.topic_id;
            }
        }
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn delete_topics(
    b: &Arc<Broker>,
    r: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let view = b.cache.view();
    let mut names: Vec<(Option<String>, uuid::Uuid)> = Vec::new();
    if version >= 6 {
        for t in &r.topics {
            match &t.name {
                Some(n) => names.push((Some(n.0.to_string()), t.topic_id)),
                None => names.push((
                    view.topics
                        .values()
                        .find(|m| m.topic_id == t.topic_id)
                        .map(|m| m.name.clone()),
                    t.topic_id,
                )),
            }
        }
    } else {
        for n in &r.topic_names {
            names.push((Some(n.0.to_string()), uuid::Uuid::nil()));
        }
    }
    let mut results = Vec::new();
    let mut deleted = Vec::new();
    for (name, id) in names {
        let mut tr = delete_topics_response::DeletableTopicResult::default()
            .with_name(name.as_ref().map(|n| TopicName(s(n))));
        if version >= 6 {
            tr.topic_id = id;
        }
        let res = match &name {
            None => Err(AdminError::UnknownTopic),
            Some(_) if !b.config.delete_topic_enable => Err(AdminError::DeletionDisabled),
            Some(n) => b.cluster.delete_topic(n).await,
        };
        match res {
            Ok(()) => deleted.extend(name),
            Err(e) => {
                tr.error_code = e.code();
                if version >= 5 {
                    tr.error_message = Some(s(&e.to_string()));
                }
            }
        }
        results.push(tr);
    }
    if !deleted.is_empty() {
        let limit = Duration::from_millis(r.timeout_ms.clamp(0, 30_000) as u64);
        wait_for(b, limit, |v| {
            deleted.iter().all(|n| !v.topics.contains_key(n))
        })
        .await;
    }
    DeleteTopicsResponse::default().with_responses(results)
}

async fn create_partitions(
    b: &Arc<Broker>,
    r: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::new();
    for t in r.topics {
        let name = t.name.0.to_string();
        let res = b
            .cluster
            .create_partitions(&name, t.count, r.validate_only)
            .await;
        let mut tr =
            create_partitions_response::CreatePartitionsTopicResult::default().with_name(t.name);
        if let Err(e) = res {
            tr.error_code = e.code();
            tr.error_message = Some(s(&e.to_string()));
        } else if !r.validate_only {
            let count = t.count;
            wait_for(b, Duration::from_secs(5), |v| {
                v.topics
                    .get(&name)
                    .is_some_and(|t| t.partitions.len() as i32 >= count)
            })
            .await;
        }
        results.push(tr);
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// AlterPartitionReassignments (kafka-reassign-partitions, `fjord topic alter
/// --replica-assignment`): only the controller records them (NOT_CONTROLLER
/// elsewhere, as Kafka answers); the controller's duties carry them out.
async fn alter_reassignments(
    b: &Arc<Broker>,
    r: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    use alter_partition_reassignments_response::{
        ReassignablePartitionResponse, ReassignableTopicResponse,
    };
    let Cluster::Zk(z) = &b.cluster else {
        return AlterPartitionReassignmentsResponse::default()
            .with_error_code(err::INVALID_REQUEST)
            .with_error_message(Some(s(
                "reassignment needs a coordinator (standalone mode)",
            )));
    };
    let mut out = Vec::new();
    for t in r.topics {
        let changes: Vec<(i32, Option<Vec<i32>>)> = t
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
                )
            })
            .collect();
        let results = match z.reassign(&t.name.0, &changes).await {
            Ok(r) => r,
            Err(AdminError::NotController) => {
                return AlterPartitionReassignmentsResponse::default()
                    .with_error_code(AdminError::NotController.code())
                    .with_error_message(Some(s("not the controller")));
            }
            Err(e) => changes
                .iter()
                .map(|(p, _)| (*p, e.code(), Some(e.to_string())))
                .collect(),
        };
        out.push(
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(
                    results
                        .into_iter()
                        .map(|(p, code, msg)| {
                            ReassignablePartitionResponse::default()
                                .with_partition_index(p)
                                .with_error_code(code)
                                .with_error_message(msg.map(|m| s(&m)))
                        })
                        .collect(),
                ),
        );
    }
    AlterPartitionReassignmentsResponse::default().with_responses(out)
}

/// ListPartitionReassignments: the reassignments in progress, from the cache.
fn list_reassignments(
    b: &Arc<Broker>,
    r: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    use list_partition_reassignments_response::{
        OngoingPartitionReassignment, OngoingTopicReassignment,
    };
    let view = b.cache.view();
    let wanted: Option<HashMap<String, Vec<i32>>> = r.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    let mut names: Vec<&String> = view.topics.keys().collect();
    names.sort();
    for name in names {
        let Some(t) = view.topics.get(name) else {
            continue;
        };
        let only = wanted.as_ref().map(|w| w.get(name));
        if only == Some(None) {
            continue;
        }
        let parts: Vec<OngoingPartitionReassignment> = t
            .partitions
            .iter()
            .filter(|p| !p.adding.is_empty() || !p.removing.is_empty())
            .filter(|p| only.flatten().is_none_or(|ix| ix.contains(&p.index)))
            .map(|p| {
                let ids = |v: &[i32]| v.iter().map(|b| (*b).into()).collect();
                OngoingPartitionReassignment::default()
                    .with_partition_index(p.index)
                    .with_replicas(ids(&p.replicas))
                    .with_adding_replicas(ids(&p.adding))
                    .with_removing_replicas(ids(&p.removing))
            })
            .collect();
        if !parts.is_empty() {
            topics.push(
                OngoingTopicReassignment::default()
                    .with_name(s(&t.name).into())
                    .with_partitions(parts),
            );
        }
    }
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}

fn init_producer_id(b: &Arc<Broker>, r: InitProducerIdRequest) -> InitProducerIdResponse {
    if r.transactional_id.is_some() {
        return InitProducerIdResponse::default()
            .with_error_code(err::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
    }
    // KIP-360: an existing producer may ask to bump its epoch.
    if r.producer_id.0 >= 0 && r.producer_epoch >= 0 && r.producer_epoch < i16::MAX - 1 {
        return InitProducerIdResponse::default()
            .with_producer_id(r.producer_id)
            .with_producer_epoch(r.producer_epoch + 1);
    }
    InitProducerIdResponse::default()
        .with_producer_id(b.allocate_producer_id().into())
        .with_producer_epoch(0)
}

fn offset_for_leader_epoch(
    b: &Arc<Broker>,
    r: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let view = b.cache.view();
    let mut topics = Vec::new();
    for t in r.topics {
        let name = t.topic.0.to_string();
        let mut parts = Vec::new();
        for p in t.partitions {
            let mut e = offset_for_leader_epoch_response::EpochEndOffset::default()
                .with_partition(p.partition)
                .with_leader_epoch(-1)
                .with_end_offset(-1);
            match lookup(b, &view, &name, p.partition, p.current_leader_epoch) {
                Lookup::Err(c) => e.error_code = c,
                Lookup::Ok(..) => match local_log(b, &name, p.partition) {
                    Err(c) => e.error_code = c,
                    Ok(l) => {
                        let (ep, end) = l.end_offset_for_epoch(p.leader_epoch);
                        e.leader_epoch = ep;
                        e.end_offset = end;
                    }
                },
            }
            parts.push(e);
        }
        topics.push(
            offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(parts),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// (name, value, source, synonyms as (name, value, source)).
type ConfigEntry = (String, String, i8, Vec<(String, String, i8)>);

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

fn describe_configs(
    b: &Arc<Broker>,
    r: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let view = b.cache.view();
    let defaults = crate::config::topic_config_defaults(&b.config);
    let mut results = Vec::new();
    for res in r.resources {
        let name = res.resource_name.to_string();
        let keys: Option<Vec<String>> = res
            .configuration_keys
            .as_ref()
            .map(|k| k.iter().map(|x| x.to_string()).collect());
        let want = |k: &str| keys.as_ref().is_none_or(|ks| ks.iter().any(|x| x == k));
        let mut out = describe_configs_response::DescribeConfigsResult::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        let mut entries: Vec<ConfigEntry> = Vec::new();
        match res.resource_type {
            RESOURCE_TOPIC => match view.topics.get(&name) {
                None => {
                    out.error_code = err::UNKNOWN_TOPIC_OR_PARTITION;
                    out.error_message = Some(s("unknown topic"));
                }
                Some(t) => {
                    for (k, broker_key, def) in &defaults {
                        if !want(k) {
                            continue;
                        }
                        let mut syn = Vec::new();
                        let static_val = broker_key.and_then(|bk| b.config.raw.get(bk).cloned());
                        let (val, src) = match t.configs.get(*k) {
                            Some(v) => {
                                syn.push((k.to_string(), v.clone(), SOURCE_DYNAMIC_TOPIC));
                                (v.clone(), SOURCE_DYNAMIC_TOPIC)
                            }
                            None => match &static_val {
                                Some(v) => (v.clone(), SOURCE_STATIC_BROKER),
                                None => (def.clone(), SOURCE_DEFAULT),
                            },
                        };
                        if let (Some(bk), Some(v)) = (broker_key, &static_val) {
                            syn.push((bk.to_string(), v.clone(), SOURCE_STATIC_BROKER));
                        }
                        if let Some(bk) = broker_key {
                            syn.push((bk.to_string(), def.clone(), SOURCE_DEFAULT));
                        }
                        entries.push((k.to_string(), val, src, syn));
                    }
                }
            },
            RESOURCE_BROKER => {
                if name.parse::<i32>().ok().is_some_and(|id| id != b.id()) && !name.is_empty() {
                    out.error_code = err::INVALID_REQUEST;
                    out.error_message = Some(s("not this broker"));
                } else {
                    for (k, v) in &b.config.raw {
                        if want(k) {
                            entries.push((k.clone(), v.clone(), SOURCE_STATIC_BROKER, Vec::new()));
                        }
                    }
                    for (_, bk, def) in &defaults {
                        if let Some(bk) = bk {
                            if !b.config.raw.contains_key(*bk) && want(bk) {
                                entries.push((
                                    bk.to_string(),
                                    def.clone(),
                                    SOURCE_DEFAULT,
                                    Vec::new(),
                                ));
                            }
                        }
                    }
                }
            }
            _ => {
                out.error_code = err::INVALID_REQUEST;
                out.error_message = Some(s("unsupported resource type"));
            }
        }
        for (k, v, src, syn) in entries {
            let mut c = describe_configs_response::DescribeConfigsResourceResult::default()
                .with_name(s(&k))
                .with_value(Some(s(&v)))
                .with_config_source(src);
            if r.include_synonyms {
                c.synonyms = syn
                    .into_iter()
                    .map(|(n, v, src)| {
                        describe_configs_response::DescribeConfigsSynonym::default()
                            .with_name(s(&n))
                            .with_value(Some(s(&v)))
                            .with_source(src)
                    })
                    .collect();
            }
            if version >= 3 {
                c.config_type = 0;
            }
            out.configs.push(c);
        }
        results.push(out);
    }
    DescribeConfigsResponse::default().with_results(results)
}

async fn alter_configs(b: &Arc<Broker>, r: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut out = Vec::new();
    for res in r.resources {
        let mut rr = alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        if res.resource_type != RESOURCE_TOPIC {
            rr.error_code = err::INVALID_REQUEST;
            rr.error_message = Some(s("only topic configs can be altered"));
        } else {
            let cfg: BTreeMap<String, String> = res
                .configs
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| (c.name.to_string(), v.to_string()))
                })
                .collect();
            let e = if r.validate_only {
                cfg.iter()
                    .try_for_each(|(k, v)| crate::config::validate_topic_config(k, v))
                    .map_err(AdminError::InvalidConfig)
            } else {
                b.cluster.set_topic_configs(&res.resource_name, cfg).await
            };
            if let Err(e) = e {
                rr.error_code = e.code();
                rr.error_message = Some(s(&e.to_string()));
            }
        }
        out.push(rr);
    }
    AlterConfigsResponse::default().with_responses(out)
}

async fn incremental_alter_configs(
    b: &Arc<Broker>,
    r: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut out = Vec::new();
    for res in r.resources {
        let mut rr = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        let name = res.resource_name.to_string();
        let current = b.cache.view().topics.get(&name).map(|t| t.configs.clone());
        let result = if res.resource_type != RESOURCE_TOPIC {
            Err(AdminError::InvalidConfig(
                "only topic configs can be altered".into(),
            ))
        } else if let Some(mut cfg) = current {
            let mut bad = None;
            for c in &res.configs {
                let k = c.name.to_string();
                let v = c.value.as_ref().map(|x| x.to_string()).unwrap_or_default();
                match c.config_operation {
                    0 => {
                        cfg.insert(k, v);
                    }
                    1 => {
                        cfg.remove(&k);
                    }
                    2 => {
                        let e = cfg.entry(k).or_default();
                        if !e.is_empty() {
                            e.push(',');
                        }
                        e.push_str(&v);
                    }
                    3 => {
                        if let Some(e) = cfg.get_mut(&k) {
                            *e = e
                                .split(',')
                                .filter(|x| *x != v)
                                .collect::<Vec<_>>()
                                .join(",");
                        }
                    }
                    _ => bad = Some(AdminError::InvalidConfig("bad operation".into())),
                }
            }
            match bad {
                Some(e) => Err(e),
                None if r.validate_only => cfg
                    .iter()
                    .try_for_each(|(k, v)| crate::config::validate_topic_config(k, v))
                    .map_err(AdminError::InvalidConfig),
                None => b.cluster.set_topic_configs(&name, cfg).await,
            }
        } else {
            Err(AdminError::UnknownTopic)
        };
        if let Err(e) = result {
            rr.error_code = if matches!(e, AdminError::InvalidConfig(_)) {
                err::INVALID_CONFIG
            } else {
                e.code()
            };
            rr.error_message = Some(s(&e.to_string()));
        }
        out.push(rr);
    }
    IncrementalAlterConfigsResponse::default().with_responses(out)
}

fn describe_cluster(
    b: &Arc<Broker>,
    _r: DescribeClusterRequest,
    _version: i16,
) -> DescribeClusterResponse {
    let view = b.cache.view();
    DescribeClusterResponse::default()
        .with_cluster_id(s(&view.cluster_id))
        .with_controller_id(view.controller_id.into())
        .with_brokers(
            view.brokers
                .values()
                .map(|x| {
                    describe_cluster_response::DescribeClusterBroker::default()
                        .with_broker_id(x.id.into())
                        .with_host(s(&x.host))
                        .with_port(x.port as i32)
                })
                .collect(),
        )
}

/// Unknown-server-error fallback used when encoding a response fails.
pub const UNKNOWN: i16 = err::UNKNOWN_SERVER_ERROR;
