//! In-process tests of the API handlers: a whole broker (in-memory partition
//! store, standalone cluster state, local offsets file in a temp dir) driven
//! through the one `dispatch`, in milliseconds. They cover every API in the
//! ApiVersions table, produce/fetch round trips, idempotent sequences,
//! acks=all waiting for the ISR and the high watermark, ListOffsets by
//! timestamp, OffsetForLeaderEpoch, and the error codes clients and the
//! pytest suites rely on. The pytest suites stay the end-to-end layer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::dispatch;
use crate::broker::Broker;
use crate::cluster::metadata::{
    BrokerInfo, MetadataCache, PartitionMeta, PartitionState, TopicMeta,
};
use crate::cluster::Cluster;
use crate::config::BrokerConfig;
use crate::log::{FlushPolicy, LogStore};
use crate::wire::codec::{self, Request, SUPPORTED};
use crate::wire::error as err;
use fjord_kafka::testing::make_batch;

/// A running in-process broker and the directory its files live in.
struct TestBroker {
    b: Arc<Broker>,
    _dir: tempfile::TempDir,
}

async fn start_with(edit: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = BrokerConfig {
        log_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    config
        .raw
        .insert("group.initial.rebalance.delay.ms".into(), "0".into());
    edit(&mut config);
    let log = LogStore::in_memory(FlushPolicy {
        interval_messages: i64::MAX,
        interval: None,
    })
    .expect("log");
    let cache = Arc::new(MetadataCache::new());
    let me = BrokerInfo {
        id: config.broker_id,
        host: "127.0.0.1".into(),
        port: 9092,
        rack: None,
        endpoints: Vec::new(),
    };
    let cluster = Arc::new(
        Cluster::start(&config, me, cache.clone())
            .await
            .expect("standalone cluster"),
    );
    TestBroker {
        b: Broker::wire(config, log, cache, cluster).expect("broker wired"),
        _dir: dir,
    }
}

async fn start() -> TestBroker {
    start_with(|_| {}).await
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic(v: &str) -> TopicName {
    TopicName(s(v))
}

/// Send one request through the dispatch, as a connection would.
async fn call(
    b: &Arc<Broker>,
    key: ApiKey,
    version: i16,
    body: RequestKind,
) -> Option<ResponseKind> {
    let req = Request {
        api_key: key,
        version,
        header: RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_client_id(Some(s("test"))),
        body,
        peer: None,
        listener: std::sync::Arc::from(""),
        principal: std::sync::Arc::from("User:ANONYMOUS"),
    };
    let resp = tokio::time::timeout(Duration::from_secs(5), dispatch(b, req))
        .await
        .expect("handler answered in time");
    if let Some(r) = &resp {
        // Every answer must encode at the version asked.
        codec::encode_response(key, version, 1, r).expect("response encodes");
    }
    resp
}

macro_rules! ask {
    ($b:expr, $variant:ident, $version:expr, $req:expr) => {
        match call($b, ApiKey::$variant, $version, RequestKind::$variant($req)).await {
            Some(ResponseKind::$variant(r)) => r,
            other => panic!(
                "expected a {} response, got {other:?}",
                stringify!($variant)
            ),
        }
    };
}

// Transaction coordinator tests (they use the helpers above).
mod txn_coord;

async fn create_topic(b: &Arc<Broker>, name: &str, partitions: i32) -> i16 {
    let r = ask!(
        b,
        CreateTopics,
        7,
        CreateTopicsRequest::default()
            .with_timeout_ms(1000)
            .with_topics(vec![create_topics_request::CreatableTopic::default()
                .with_name(topic(name))
                .with_num_partitions(partitions)
                .with_replication_factor(1)])
    );
    r.topics[0].error_code
}

fn produce_req(name: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(2000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic(name))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records)),
            ])])
}

/// (error code, base offset) of a one-partition produce.
async fn produce(b: &Arc<Broker>, name: &str, records: Bytes, acks: i16) -> (i16, i64) {
    let r = ask!(b, Produce, 9, produce_req(name, 0, records, acks));
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn fetch_req(name: &str, offset: i64, replica: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(replica.into())
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(topic(name))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

async fn fetch(b: &Arc<Broker>, name: &str, offset: i64) -> fetch_response::PartitionData {
    let r = ask!(b, Fetch, 12, fetch_req(name, offset, -1));
    r.responses[0].partitions[0].clone()
}

fn list_offsets_req(name: &str, ts: i64, epoch: i32) -> ListOffsetsRequest {
    ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(topic(name))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_current_leader_epoch(epoch)
                    .with_timestamp(ts),
            ])])
}

async fn list_offset(b: &Arc<Broker>, name: &str, ts: i64) -> (i16, i64, i64) {
    let r = ask!(b, ListOffsets, 7, list_offsets_req(name, ts, -1));
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

async fn epoch_end(b: &Arc<Broker>, name: &str, current: i32, epoch: i32) -> (i16, i32, i64) {
    let r = ask!(
        b,
        OffsetForLeaderEpoch,
        4,
        OffsetForLeaderEpochRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(topic(name))
                    .with_partitions(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_current_leader_epoch(current)
                            .with_leader_epoch(epoch)
                    ])
            ])
    );
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

/// Put a topic into the cache as a controller would: partition 0 with the
/// given replicas, leader 0 at `epoch`, `isr`; other replicas as live brokers.
fn set_partition(b: &Broker, name: &str, replicas: &[i32], epoch: i32, isr: &[i32]) {
    let replicas = replicas.to_vec();
    let isr = isr.to_vec();
    let name = name.to_string();
    b.cache.update(move |v| {
        for r in &replicas {
            v.brokers.entry(*r).or_insert_with(|| BrokerInfo {
                id: *r,
                host: "127.0.0.1".into(),
                port: 9100 + *r as u16,
                rack: None,
                endpoints: Vec::new(),
            });
        }
        let configs = v
            .topics
            .get(&name)
            .map(|t| t.configs.clone())
            .unwrap_or_default();
        v.topics.insert(
            name.clone(),
            Arc::new(TopicMeta {
                name: name.clone(),
                topic_id: uuid::Uuid::new_v4(),
                partitions: vec![PartitionMeta {
                    index: 0,
                    replicas: replicas.clone(),
                    state: Some(PartitionState {
                        leader: 0,
                        leader_epoch: epoch,
                        controller_epoch: 1,
                        isr: isr.clone(),
                    }),
                    state_version: epoch,
                    adding: vec![],
                    removing: vec![],
                }],
                configs,
                deleting: false,
            }),
        );
    });
    b.replicas.reconcile();
}

/// A minimal valid request of every API the broker serves.
fn minimal_request(key: ApiKey) -> RequestKind {
    match key {
        ApiKey::Produce => RequestKind::Produce(produce_req("t", 0, make_batch(1, 1, -1, -1), 1)),
        ApiKey::Fetch => RequestKind::Fetch(fetch_req("t", 0, -1)),
        ApiKey::ListOffsets => RequestKind::ListOffsets(list_offsets_req("t", -1, -1)),
        ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(CreateTopicsRequest::default()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(DeleteTopicsRequest::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        ),
        ApiKey::OffsetForLeaderEpoch => {
            RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default())
        }
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(DescribeConfigsRequest::default()),
        ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default()),
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(AlterConfigsRequest::default()),
        ApiKey::CreatePartitions => {
            RequestKind::CreatePartitions(CreatePartitionsRequest::default())
        }
        ApiKey::IncrementalAlterConfigs => {
            RequestKind::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default())
        }
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::AlterPartitionReassignments => {
            RequestKind::AlterPartitionReassignments(AlterPartitionReassignmentsRequest::default())
        }
        ApiKey::ListPartitionReassignments => {
            RequestKind::ListPartitionReassignments(ListPartitionReassignmentsRequest::default())
        }
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(
            FindCoordinatorRequest::default()
                .with_key(s("g"))
                .with_coordinator_keys(vec![s("g")]),
        ),
        ApiKey::JoinGroup => RequestKind::JoinGroup(join_req("g", "", 4)),
        ApiKey::SyncGroup => RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(s("g").into())
                .with_member_id(s("nobody")),
        ),
        ApiKey::Heartbeat => RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(s("g").into())
                .with_member_id(s("nobody")),
        ),
        ApiKey::LeaveGroup => {
            RequestKind::LeaveGroup(LeaveGroupRequest::default().with_group_id(s("g").into()))
        }
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(
            DescribeGroupsRequest::default().with_groups(vec![s("g").into()]),
        ),
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![s("g").into()]),
        ),
        ApiKey::OffsetDelete => {
            RequestKind::OffsetDelete(OffsetDeleteRequest::default().with_group_id(s("g").into()))
        }
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(commit_req("g", "t", 0, 1)),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(fetch_offsets_req("g", "t")),
        ApiKey::AddPartitionsToTxn => {
            RequestKind::AddPartitionsToTxn(AddPartitionsToTxnRequest::default())
        }
        ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(AddOffsetsToTxnRequest::default()),
        ApiKey::EndTxn => RequestKind::EndTxn(EndTxnRequest::default()),
        ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(TxnOffsetCommitRequest::default()),
        ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(
            DescribeTransactionsRequest::default().with_transactional_ids(vec![s("x").into()]),
        ),
        ApiKey::ListTransactions => {
            RequestKind::ListTransactions(ListTransactionsRequest::default())
        }
        ApiKey::WriteTxnMarkers => RequestKind::WriteTxnMarkers(WriteTxnMarkersRequest::default()),
        ApiKey::SaslHandshake => {
            RequestKind::SaslHandshake(SaslHandshakeRequest::default().with_mechanism(s("PLAIN")))
        }
        ApiKey::SaslAuthenticate => {
            RequestKind::SaslAuthenticate(SaslAuthenticateRequest::default())
        }
        ApiKey::DescribeUserScramCredentials => {
            RequestKind::DescribeUserScramCredentials(DescribeUserScramCredentialsRequest::default())
        }
        ApiKey::AlterUserScramCredentials => {
            RequestKind::AlterUserScramCredentials(AlterUserScramCredentialsRequest::default())
        }
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(DescribeAclsRequest::default()),
        ApiKey::CreateAcls => RequestKind::CreateAcls(CreateAclsRequest::default()),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(DeleteAclsRequest::default()),
        other => panic!("no minimal request for {other:?}: add one"),
    }
}

fn join_req(group: &str, member: &str, session_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(s(group).into())
        .with_member_id(s(member))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))
        .with_metadata(Bytes::from_static(b"meta"))])
}

fn commit_req(group: &str, name: &str, partition: i32, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(s(group).into())
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic(name))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset)
                        .with_committed_metadata(Some(s(""))),
                ]),
        ])
}

fn fetch_offsets_req(group: &str, name: &str) -> OffsetFetchRequest {
    OffsetFetchRequest::default()
        .with_group_id(s(group).into())
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(topic(name))
                .with_partition_indexes(vec![0]),
        ]))
}

#[tokio::test]
async fn every_api_in_the_versions_table_answers_at_its_oldest_and_newest_version() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "t", 1).await, err::NONE);
    for (key, lo, hi) in SUPPORTED {
        for v in [*lo, *hi] {
            let resp = call(&t.b, *key, v, minimal_request(*key))
                .await
                .unwrap_or_else(|| panic!("{key:?} v{v}: no answer"));
            let shown = format!("{resp:?}");
            assert!(
                shown.starts_with(&format!("{key:?}(")),
                "{key:?} v{v} answered {shown}"
            );
        }
    }
}

#[tokio::test]
async fn api_versions_lists_the_table() {
    let t = start().await;
    let r = ask!(&t.b, ApiVersions, 3, ApiVersionsRequest::default());
    assert_eq!(r.error_code, err::NONE);
    assert_eq!(r.api_keys.len(), SUPPORTED.len());
    assert!(r
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16 && k.max_version == 9));
}

#[tokio::test]
async fn produce_then_fetch_round_trips_the_batches() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "rt", 1).await, err::NONE);
    assert_eq!(
        produce(&t.b, "rt", make_batch(3, 1000, -1, -1), 1).await,
        (err::NONE, 0)
    );
    assert_eq!(
        produce(&t.b, "rt", make_batch(2, 2000, -1, -1), -1).await,
        (err::NONE, 3)
    );
    // acks=0 answers nothing at all.
    assert!(call(
        &t.b,
        ApiKey::Produce,
        9,
        RequestKind::Produce(produce_req("rt", 0, make_batch(1, 3000, -1, -1), 0))
    )
    .await
    .is_none());
    let p = fetch(&t.b, "rt", 0).await;
    assert_eq!(p.error_code, err::NONE);
    assert_eq!(p.high_watermark, 6);
    let records = p.records.expect("records");
    let batches = fjord_kafka::batch::split_batches(&records).expect("batches");
    let bases: Vec<i64> = batches.iter().map(|(h, _)| h.base_offset).collect();
    assert_eq!(bases, vec![0, 3, 5]);
    // From the middle of a batch: the whole batch containing it.
    let p = fetch(&t.b, "rt", 4).await;
    let batches = fjord_kafka::batch::split_batches(&p.records.expect("records")).expect("batches");
    assert_eq!(batches[0].0.base_offset, 3);
    // At the end: nothing; past it: OFFSET_OUT_OF_RANGE.
    assert_eq!(fetch(&t.b, "rt", 6).await.records.map(|r| r.len()), Some(0));
    assert_eq!(
        fetch(&t.b, "rt", 7).await.error_code,
        err::OFFSET_OUT_OF_RANGE
    );
}

#[tokio::test]
async fn describe_log_dirs_gives_each_replicas_size() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "sz", 1).await, err::NONE);
    let batch = make_batch(3, 1000, -1, -1);
    let len = batch.len() as i64;
    assert_eq!(produce(&t.b, "sz", batch, 1).await, (err::NONE, 0));
    let ask = |only: Option<Vec<i32>>| {
        RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(only.map(
            |ps| {
                vec![describe_log_dirs_request::DescribableLogDirTopic::default()
                    .with_topic(topic("sz"))
                    .with_partitions(ps)]
            },
        )))
    };
    let sizes = |r: Option<ResponseKind>| -> (String, Vec<(i32, i64)>, i64) {
        let Some(ResponseKind::DescribeLogDirs(r)) = r else {
            panic!("not a DescribeLogDirs answer: {r:?}")
        };
        assert_eq!(r.error_code, err::NONE);
        let [d] = &r.results[..] else {
            panic!("one directory: {r:?}")
        };
        assert_eq!(d.error_code, err::NONE);
        let parts = d
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == "sz")
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.partition_size))
            })
            .collect();
        (d.log_dir.to_string(), parts, d.total_bytes)
    };
    let (dir, parts, total) = sizes(call(&t.b, ApiKey::DescribeLogDirs, 4, ask(None)).await);
    assert_eq!(dir, t.b.config.log_dir.to_string_lossy());
    assert_eq!(parts, vec![(0, len)]);
    assert!(total > 0);
    // Only what was asked; v1 has no volume figures.
    let (_, parts, total) =
        sizes(call(&t.b, ApiKey::DescribeLogDirs, 1, ask(Some(vec![0, 7]))).await);
    assert_eq!(parts, vec![(0, len)]);
    assert_eq!(total, -1);
    let (_, parts, _) = sizes(call(&t.b, ApiKey::DescribeLogDirs, 4, ask(Some(vec![7]))).await);
    assert_eq!(parts, vec![]);
}

/// A consumer standing past a newly elected leader's HW (it read up to the
/// old leader's) is answered empty, not OFFSET_OUT_OF_RANGE: librdkafka
/// would reset to `auto.offset.reset` and read the partition again.
#[tokio::test]
async fn fetch_past_a_lagging_hw_but_within_the_log_is_empty_not_out_of_range() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "lag", 1).await, err::NONE);
    assert_eq!(
        produce(&t.b, "lag", make_batch(5, 1000, -1, -1), -1).await,
        (err::NONE, 0)
    );
    let p = t.b.log.get("lag", 0).expect("partition");
    let me = t.b.config.broker_id;
    p.become_follower(me, 7);
    p.set_follower_hw(3);
    p.become_leader(me, 8, &[me, me + 1]);
    let r = fetch(&t.b, "lag", 5).await;
    assert_eq!(r.error_code, err::NONE);
    assert_eq!(r.high_watermark, 3);
    assert_eq!(r.records.map(|r| r.len()), Some(0));
    assert_eq!(
        fetch(&t.b, "lag", 6).await.error_code,
        err::OFFSET_OUT_OF_RANGE
    );
}

#[tokio::test]
async fn idempotent_producer_duplicates_and_gaps() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "idem", 1).await, err::NONE);
    let r = ask!(
        &t.b,
        InitProducerId,
        4,
        InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1)
    );
    assert_eq!(r.error_code, err::NONE);
    let pid = r.producer_id.0;
    assert!(pid > 0 && r.producer_epoch == 0);
    assert_eq!(
        produce(&t.b, "idem", make_batch(2, 1, pid, 0), -1).await,
        (err::NONE, 0)
    );
    assert_eq!(
        produce(&t.b, "idem", make_batch(2, 1, pid, 2), -1).await,
        (err::NONE, 2)
    );
    // A retry of the last batch: acknowledged again at its original offset.
    assert_eq!(
        produce(&t.b, "idem", make_batch(2, 1, pid, 2), -1).await,
        (err::NONE, 2)
    );
    // A gap in the sequence.
    assert_eq!(
        produce(&t.b, "idem", make_batch(1, 1, pid, 9), -1).await,
        (err::OUT_OF_ORDER_SEQUENCE_NUMBER, -1)
    );
    assert_eq!(list_offset(&t.b, "idem", -1).await.1, 4);
    // KIP-360: an existing producer bumps its epoch.
    let r = ask!(
        &t.b,
        InitProducerId,
        4,
        InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_producer_id(pid.into())
            .with_producer_epoch(0)
    );
    assert_eq!((r.producer_id.0, r.producer_epoch), (pid, 1));
    // A transactional id goes to the transaction coordinator (a timeout of
    // 0 is refused there; see tests/txn_coord.rs).
    let r = ask!(
        &t.b,
        InitProducerId,
        4,
        InitProducerIdRequest::default().with_transactional_id(Some(s("tx").into()))
    );
    assert_eq!(r.error_code, crate::txn::codes::INVALID_TRANSACTION_TIMEOUT);
}

#[tokio::test]
async fn acks_all_waits_for_the_isr_and_the_high_watermark() {
    let t = start().await;
    set_partition(&t.b, "repl", &[0, 1], 0, &[0, 1]);
    let fut = dispatch(
        &t.b,
        Request {
            api_key: ApiKey::Produce,
            version: 9,
            header: RequestHeader::default(),
            body: RequestKind::Produce(produce_req("repl", 0, make_batch(2, 1, -1, -1), -1)),
            peer: None,
            listener: std::sync::Arc::from(""),
            principal: std::sync::Arc::from("User:ANONYMOUS"),
        },
    );
    let mut fut = tokio::spawn(fut);
    // Written locally, but the follower has not fetched it: no answer yet.
    assert!(tokio::time::timeout(Duration::from_millis(150), &mut fut)
        .await
        .is_err());
    assert_eq!(fetch(&t.b, "repl", 0).await.high_watermark, 0);
    // The follower fetches from 0 (it has nothing yet): still waiting.
    let r = ask!(&t.b, Fetch, 12, fetch_req("repl", 0, 1));
    assert_eq!(r.responses[0].partitions[0].error_code, err::NONE);
    assert!(tokio::time::timeout(Duration::from_millis(50), &mut fut)
        .await
        .is_err());
    // The follower's next fetch from 2 says it has both records: HW moves.
    let _ = ask!(&t.b, Fetch, 12, fetch_req("repl", 2, 1));
    let resp = tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .expect("acks=all answered")
        .expect("task");
    let Some(ResponseKind::Produce(r)) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(r.responses[0].partition_responses[0].error_code, err::NONE);
    assert_eq!(fetch(&t.b, "repl", 0).await.high_watermark, 2);
    // A fetch from a broker that is not a replica is refused.
    let r = ask!(&t.b, Fetch, 12, fetch_req("repl", 0, 7));
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        err::NOT_LEADER_OR_FOLLOWER
    );
}

#[tokio::test]
async fn acks_all_times_out_and_checks_min_insync_replicas() {
    let t = start().await;
    set_partition(&t.b, "slow", &[0, 1], 0, &[0, 1]);
    let r = ask!(
        &t.b,
        Produce,
        9,
        produce_req("slow", 0, make_batch(1, 1, -1, -1), -1).with_timeout_ms(100)
    );
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        err::REQUEST_TIMED_OUT
    );
    // min.insync.replicas=2 with the ISR shrunk to the leader alone.
    let r = ask!(
        &t.b,
        IncrementalAlterConfigs,
        1,
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t2"))
        ])
    );
    assert_eq!(r.responses[0].error_code, err::UNKNOWN_TOPIC_OR_PARTITION);
    t.b.cache.update(|v| {
        let mut tm = (**v.topics.get("slow").expect("topic")).clone();
        tm.configs.insert("min.insync.replicas".into(), "2".into());
        v.topics.insert("slow".into(), Arc::new(tm));
    });
    set_partition(&t.b, "slow", &[0, 1], 0, &[0]);
    assert_eq!(
        produce(&t.b, "slow", make_batch(1, 1, -1, -1), -1).await,
        (err::NOT_ENOUGH_REPLICAS, -1)
    );
    // acks=1 does not care.
    assert_eq!(
        produce(&t.b, "slow", make_batch(1, 1, -1, -1), 1).await.0,
        err::NONE
    );
}

#[tokio::test]
async fn list_offsets_by_timestamp() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "ts", 1).await, err::NONE);
    produce(&t.b, "ts", make_batch(3, 1000, -1, -1), 1).await;
    produce(&t.b, "ts", make_batch(2, 2000, -1, -1), 1).await;
    produce(&t.b, "ts", make_batch(1, 1500, -1, -1), 1).await;
    assert_eq!(list_offset(&t.b, "ts", -2).await, (err::NONE, 0, -1));
    assert_eq!(list_offset(&t.b, "ts", -1).await, (err::NONE, 6, -1));
    assert_eq!(list_offset(&t.b, "ts", -3).await, (err::NONE, 4, 2000));
    assert_eq!(list_offset(&t.b, "ts", 500).await, (err::NONE, 0, 1000));
    assert_eq!(list_offset(&t.b, "ts", 1001).await, (err::NONE, 3, 2000));
    assert_eq!(list_offset(&t.b, "ts", 2001).await, (err::NONE, -1, -1));
    assert_eq!(
        list_offset(&t.b, "nope", -1).await.0,
        err::UNKNOWN_TOPIC_OR_PARTITION
    );
}

#[tokio::test]
async fn offset_for_leader_epoch_gives_the_truncation_point() {
    let t = start().await;
    set_partition(&t.b, "ep", &[0], 1, &[0]);
    produce(&t.b, "ep", make_batch(3, 1, -1, -1), 1).await;
    set_partition(&t.b, "ep", &[0], 3, &[0]);
    produce(&t.b, "ep", make_batch(2, 1, -1, -1), 1).await;
    // A follower on epoch 1 (or 2, which this leader never had) truncates to
    // where epoch 3 starts; the current epoch ends at the log end.
    assert_eq!(epoch_end(&t.b, "ep", 3, 1).await, (err::NONE, 1, 3));
    assert_eq!(epoch_end(&t.b, "ep", 3, 2).await, (err::NONE, 1, 3));
    assert_eq!(epoch_end(&t.b, "ep", 3, 3).await, (err::NONE, 3, 5));
    assert_eq!(epoch_end(&t.b, "ep", -1, 0).await, (err::NONE, -1, -1));
    // The caller's view of the leader epoch is checked.
    assert_eq!(
        epoch_end(&t.b, "ep", 2, 1).await.0,
        err::FENCED_LEADER_EPOCH
    );
    assert_eq!(
        epoch_end(&t.b, "ep", 4, 1).await.0,
        err::UNKNOWN_LEADER_EPOCH
    );
    let r = ask!(&t.b, ListOffsets, 7, list_offsets_req("ep", -1, 2));
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        err::FENCED_LEADER_EPOCH
    );
    let r = ask!(&t.b, ListOffsets, 7, list_offsets_req("ep", -1, 3));
    assert_eq!(
        (
            r.topics[0].partitions[0].offset,
            r.topics[0].partitions[0].leader_epoch
        ),
        (5, 3)
    );
}

#[tokio::test]
async fn produce_rejects_bad_requests_with_kafkas_codes() {
    let t = start_with(|c| c.message_max_bytes = 200).await;
    assert_eq!(create_topic(&t.b, "bad", 1).await, err::NONE);
    assert_eq!(
        produce(&t.b, "missing", make_batch(1, 1, -1, -1), 1).await,
        (err::UNKNOWN_TOPIC_OR_PARTITION, -1)
    );
    let long = "x".repeat(250);
    for name in ["foo$#!", long.as_str(), ".", ".."] {
        assert_eq!(
            produce(&t.b, name, make_batch(1, 1, -1, -1), 1).await,
            (err::INVALID_TOPIC_EXCEPTION, -1),
            "{name}"
        );
    }
    let r = ask!(
        &t.b,
        Produce,
        9,
        produce_req("bad", 5, make_batch(1, 1, -1, -1), 1)
    );
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        err::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        produce(&t.b, "bad", make_batch(1, 1, -1, -1), 5).await.0,
        err::INVALID_REQUIRED_ACKS
    );
    // A transaction marker is the broker's to write (WriteTxnMarkers).
    let m = fjord_kafka::batch::ControlMarker {
        commit: true,
        coordinator_epoch: 0,
    };
    let tx = produce_req("bad", 0, fjord_kafka::batch::control_batch(5, 0, m, 1), 1)
        .with_transactional_id(Some(s("tx").into()));
    let r = ask!(&t.b, Produce, 9, tx);
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        err::INVALID_RECORD
    );
    assert_eq!(
        produce(&t.b, "bad", make_batch(40, 1, -1, -1), 1).await.0,
        err::MESSAGE_TOO_LARGE
    );
    let mut corrupt = make_batch(1, 1, -1, -1).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce(&t.b, "bad", Bytes::from(corrupt), 1).await.0,
        err::CORRUPT_MESSAGE
    );
    let mut magic1 = make_batch(1, 1, -1, -1).to_vec();
    magic1[16] = 1;
    assert_eq!(
        produce(&t.b, "bad", Bytes::from(magic1), 1).await.0,
        err::UNSUPPORTED_FOR_MESSAGE_FORMAT
    );
    // Not the leader: a partition led by another broker.
    t.b.cache.update(|v| {
        let mut tm = (**v.topics.get("bad").expect("topic")).clone();
        if let Some(st) = tm.partitions[0].state.as_mut() {
            st.leader = 9;
        }
        v.topics.insert("bad".into(), Arc::new(tm));
    });
    assert_eq!(
        produce(&t.b, "bad", make_batch(1, 1, -1, -1), 1).await.0,
        err::NOT_LEADER_OR_FOLLOWER
    );
    assert_eq!(
        fetch(&t.b, "bad", 0).await.error_code,
        err::NOT_LEADER_OR_FOLLOWER
    );
}

/// Keyless records on a compacted topic: INVALID_RECORD with Kafka's message
/// from Produce v8, CORRUPT_MESSAGE before; keyed ones are accepted; the
/// topic's compaction configs show in DescribeConfigs.
#[tokio::test]
async fn keyless_records_refused_on_compacted_topics() {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let t = start().await;
    let r = ask!(
        &t.b,
        CreateTopics,
        7,
        CreateTopicsRequest::default()
            .with_timeout_ms(1000)
            .with_topics(vec![create_topics_request::CreatableTopic::default()
                .with_name(topic("cmp"))
                .with_num_partitions(1)
                .with_replication_factor(1)
                .with_configs(vec![
                    create_topics_request::CreatableTopicConfig::default()
                        .with_name(s("cleanup.policy"))
                        .with_value(Some(s("compact"))),
                ])])
    );
    assert_eq!(r.topics[0].error_code, err::NONE);
    let keyless = make_batch(2, 1, -1, -1);
    let r = ask!(&t.b, Produce, 9, produce_req("cmp", 0, keyless.clone(), 1));
    let p = &r.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (err::INVALID_RECORD, -1));
    assert_eq!(
        p.error_message.as_deref(),
        Some("Compacted topic cannot accept message without key in topic partition cmp-0.")
    );
    let r = ask!(&t.b, Produce, 7, produce_req("cmp", 0, keyless, 1));
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        err::CORRUPT_MESSAGE
    );
    let rec = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut keyed = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut keyed,
        [&rec],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::Gzip,
        },
    )
    .expect("encode");
    assert_eq!(
        produce(&t.b, "cmp", keyed.freeze(), 1).await,
        (err::NONE, 0)
    );
    let r = ask!(
        &t.b,
        DescribeConfigs,
        4,
        DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("cmp"))
                .with_configuration_keys(Some(vec![
                    s("cleanup.policy"),
                    s("delete.retention.ms"),
                    s("min.compaction.lag.ms"),
                ])),
        ])
    );
    let got: Vec<(String, String)> = r.results[0]
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_deref().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        got.contains(&("cleanup.policy".into(), "compact".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("delete.retention.ms".into(), "86400000".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("min.compaction.lag.ms".into(), "0".into())),
        "{got:?}"
    );
}

#[tokio::test]
async fn metadata_lists_and_auto_creates_topics() {
    let t = start().await;
    let r = ask!(
        &t.b,
        Metadata,
        12,
        MetadataRequest::default()
            .with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(topic("auto"))),
                metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(topic("bad name!"))),
            ]))
            .with_allow_auto_topic_creation(true)
    );
    assert_eq!(r.brokers.len(), 1);
    assert_eq!(r.controller_id.0, 0);
    assert_eq!(r.topics[0].error_code, err::NONE);
    assert_eq!(r.topics[0].partitions.len(), 1);
    assert_eq!(r.topics[0].partitions[0].leader_id.0, 0);
    assert_eq!(r.topics[1].error_code, err::INVALID_TOPIC_EXCEPTION);
    let r = ask!(
        &t.b,
        Metadata,
        12,
        MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(topic("other")))]))
            .with_allow_auto_topic_creation(false)
    );
    assert_eq!(r.topics[0].error_code, err::UNKNOWN_TOPIC_OR_PARTITION);
    let r = ask!(&t.b, DescribeCluster, 1, DescribeClusterRequest::default());
    assert_eq!((r.controller_id.0, r.brokers.len()), (0, 1));
    assert_eq!(r.cluster_id.len(), 22);
}

#[tokio::test]
async fn topic_admin_error_codes() {
    let t = start_with(|c| c.delete_topic_enable = true).await;
    assert_eq!(create_topic(&t.b, "adm", 2).await, err::NONE);
    assert_eq!(
        create_topic(&t.b, "adm", 2).await,
        err::TOPIC_ALREADY_EXISTS
    );
    assert_eq!(
        create_topic(&t.b, "bad/name", 1).await,
        err::INVALID_TOPIC_EXCEPTION
    );
    assert_eq!(create_topic(&t.b, "zero", 0).await, err::INVALID_PARTITIONS);
    let r = ask!(
        &t.b,
        CreateTopics,
        7,
        CreateTopicsRequest::default().with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(topic("rf3"))
                .with_num_partitions(1)
                .with_replication_factor(3),
            create_topics_request::CreatableTopic::default()
                .with_name(topic("cfg"))
                .with_num_partitions(1)
                .with_replication_factor(1)
                .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("soon")))]),
        ])
    );
    assert_eq!(r.topics[0].error_code, err::INVALID_REPLICATION_FACTOR);
    assert_eq!(r.topics[1].error_code, err::INVALID_CONFIG);
    // CreatePartitions: grow, never shrink.
    let grow = |n: i32| {
        CreatePartitionsRequest::default()
            .with_timeout_ms(1000)
            .with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(topic("adm"))
                    .with_count(n),
            ])
    };
    let r = ask!(&t.b, CreatePartitions, 3, grow(3));
    assert_eq!(r.results[0].error_code, err::NONE);
    let r = ask!(&t.b, CreatePartitions, 3, grow(2));
    assert_eq!(r.results[0].error_code, err::INVALID_PARTITIONS);
    // DeleteTopics: unknown, then a real one.
    let del = |n: &str| {
        DeleteTopicsRequest::default()
            .with_timeout_ms(1000)
            .with_topic_names(vec![topic(n)])
    };
    let r = ask!(&t.b, DeleteTopics, 5, del("missing"));
    assert_eq!(r.responses[0].error_code, err::UNKNOWN_TOPIC_OR_PARTITION);
    let r = ask!(&t.b, DeleteTopics, 5, del("adm"));
    assert_eq!(r.responses[0].error_code, err::NONE);
    assert!(!t.b.cache.view().topics.contains_key("adm"));

    let t = start_with(|c| c.delete_topic_enable = false).await;
    assert_eq!(create_topic(&t.b, "kept", 1).await, err::NONE);
    let r = ask!(&t.b, DeleteTopics, 5, del("kept"));
    assert_eq!(r.responses[0].error_code, err::TOPIC_DELETION_DISABLED);
}

#[tokio::test]
async fn configs_describe_and_alter() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "c", 1).await, err::NONE);
    let describe = |name: &str, kind: i8| {
        DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(s(name))
                .with_configuration_keys(Some(vec![s("retention.ms")])),
        ])
    };
    let r = ask!(&t.b, DescribeConfigs, 4, describe("c", 2));
    assert_eq!(r.results[0].error_code, err::NONE);
    assert_eq!(
        r.results[0].configs[0]
            .value
            .as_ref()
            .map(|v| v.to_string()),
        Some("604800000".into())
    );
    let r = ask!(&t.b, DescribeConfigs, 4, describe("missing", 2));
    assert_eq!(r.results[0].error_code, err::UNKNOWN_TOPIC_OR_PARTITION);
    let r = ask!(&t.b, DescribeConfigs, 4, describe("c", 9));
    assert_eq!(r.results[0].error_code, err::INVALID_REQUEST);
    let alter = |v: &str| {
        AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("c"))
                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s(v)))]),
        ])
    };
    let r = ask!(&t.b, AlterConfigs, 2, alter("1000"));
    assert_eq!(r.responses[0].error_code, err::NONE);
    let r = ask!(&t.b, AlterConfigs, 2, alter("x"));
    assert_eq!(r.responses[0].error_code, err::INVALID_CONFIG);
    let r = ask!(&t.b, DescribeConfigs, 4, describe("c", 2));
    assert_eq!(
        r.results[0].configs[0]
            .value
            .as_ref()
            .map(|v| v.to_string()),
        Some("1000".into())
    );
    let incr = |op: i8, v: &str| {
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("c"))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_config_operation(op)
                        .with_value(Some(s(v))),
                ]),
        ])
    };
    let r = ask!(&t.b, IncrementalAlterConfigs, 1, incr(0, "-5x"));
    assert_eq!(r.responses[0].error_code, err::INVALID_CONFIG);
    let r = ask!(&t.b, IncrementalAlterConfigs, 1, incr(1, ""));
    assert_eq!(r.responses[0].error_code, err::NONE);
    assert!(t.b.cache.view().topics["c"].configs.is_empty());
}

#[tokio::test]
async fn reassignment_needs_a_coordinator() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "ra", 1).await, err::NONE);
    let r = ask!(
        &t.b,
        AlterPartitionReassignments,
        0,
        AlterPartitionReassignmentsRequest::default().with_topics(vec![
            alter_partition_reassignments_request::ReassignableTopic::default()
                .with_name(topic("ra"))
                .with_partitions(vec![
                    alter_partition_reassignments_request::ReassignablePartition::default()
                        .with_partition_index(0)
                        .with_replicas(Some(vec![0.into()]))
                ])
        ])
    );
    assert_eq!(r.error_code, err::INVALID_REQUEST);
    let r = ask!(
        &t.b,
        ListPartitionReassignments,
        0,
        ListPartitionReassignmentsRequest::default()
    );
    assert!(r.topics.is_empty());
}

#[tokio::test]
async fn group_join_sync_heartbeat_commit_fetch_leave() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "gt", 1).await, err::NONE);
    let r = ask!(
        &t.b,
        FindCoordinator,
        4,
        FindCoordinatorRequest::default().with_coordinator_keys(vec![s("grp")])
    );
    assert_eq!(
        (r.coordinators[0].error_code, r.coordinators[0].node_id.0),
        (err::NONE, 0)
    );
    let r = ask!(
        &t.b,
        FindCoordinator,
        4,
        FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![s("tx")])
    );
    // Transactional ids are placed like groups (tests/txn_coord.rs).
    assert_eq!(r.coordinators[0].error_code, err::NONE);
    // Session timeouts outside the broker's bounds are refused.
    let r = ask!(&t.b, JoinGroup, 5, join_req("grp", "", 10));
    assert_eq!(r.error_code, err::INVALID_SESSION_TIMEOUT);
    // v4+: the first join only hands out a member id.
    let r = ask!(&t.b, JoinGroup, 5, join_req("grp", "", 10_000));
    assert_eq!(r.error_code, err::MEMBER_ID_REQUIRED);
    let member = r.member_id.to_string();
    let r = ask!(&t.b, JoinGroup, 5, join_req("grp", &member, 10_000));
    assert_eq!(r.error_code, err::NONE);
    assert_eq!(r.leader.to_string(), member);
    let generation = r.generation_id;
    let r = ask!(
        &t.b,
        SyncGroup,
        5,
        SyncGroupRequest::default()
            .with_group_id(s("grp").into())
            .with_member_id(s(&member))
            .with_generation_id(generation)
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_assignments(vec![
                sync_group_request::SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(Bytes::from_static(b"mine"))
            ])
    );
    assert_eq!(
        (r.error_code, r.assignment.as_ref()),
        (err::NONE, &b"mine"[..])
    );
    let hb = |m: &str, g: i32| {
        HeartbeatRequest::default()
            .with_group_id(s("grp").into())
            .with_member_id(s(m))
            .with_generation_id(g)
    };
    assert_eq!(
        ask!(&t.b, Heartbeat, 4, hb(&member, generation)).error_code,
        err::NONE
    );
    assert_eq!(
        ask!(&t.b, Heartbeat, 4, hb("stranger", generation)).error_code,
        err::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        ask!(&t.b, Heartbeat, 4, hb(&member, generation + 5)).error_code,
        err::ILLEGAL_GENERATION
    );
    // Commits: a member's, then a stale generation, then an unknown topic.
    let mut c = commit_req("grp", "gt", 0, 42);
    c.generation_id_or_member_epoch = generation;
    c.member_id = s(&member);
    let r = ask!(&t.b, OffsetCommit, 8, c.clone());
    assert_eq!(r.topics[0].partitions[0].error_code, err::NONE);
    c.generation_id_or_member_epoch = generation + 1;
    let r = ask!(&t.b, OffsetCommit, 8, c);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        err::ILLEGAL_GENERATION
    );
    let mut c = commit_req("grp", "nope", 0, 1);
    c.generation_id_or_member_epoch = generation;
    c.member_id = s(&member);
    let r = ask!(&t.b, OffsetCommit, 8, c);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        err::UNKNOWN_TOPIC_OR_PARTITION
    );
    let r = ask!(&t.b, OffsetFetch, 7, fetch_offsets_req("grp", "gt"));
    assert_eq!(r.topics[0].partitions[0].committed_offset, 42);
    let r = ask!(
        &t.b,
        DescribeGroups,
        5,
        DescribeGroupsRequest::default().with_groups(vec![s("grp").into()])
    );
    assert_eq!(r.groups[0].group_state.to_string(), "Stable");
    assert_eq!(r.groups[0].members.len(), 1);
    let r = ask!(&t.b, ListGroups, 4, ListGroupsRequest::default());
    assert_eq!(r.groups.len(), 1);
    // A live group cannot lose offsets of topics it consumes, nor be deleted.
    let r = ask!(
        &t.b,
        OffsetDelete,
        0,
        OffsetDeleteRequest::default()
            .with_group_id(s("grp").into())
            .with_topics(vec![
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(topic("gt"))
                    .with_partitions(vec![
                        offset_delete_request::OffsetDeleteRequestPartition::default()
                            .with_partition_index(0)
                    ])
            ])
    );
    assert_eq!(r.error_code, err::NONE);
    let r = ask!(
        &t.b,
        DeleteGroups,
        2,
        DeleteGroupsRequest::default().with_groups_names(vec![s("grp").into()])
    );
    assert_eq!(r.results[0].error_code, err::NON_EMPTY_GROUP);
    let r = ask!(
        &t.b,
        LeaveGroup,
        5,
        LeaveGroupRequest::default()
            .with_group_id(s("grp").into())
            .with_members(vec![
                leave_group_request::MemberIdentity::default().with_member_id(s(&member))
            ])
    );
    assert_eq!(
        (r.error_code, r.members[0].error_code),
        (err::NONE, err::NONE)
    );
    let r = ask!(
        &t.b,
        DeleteGroups,
        2,
        DeleteGroupsRequest::default().with_groups_names(vec![s("grp").into(), s("ghost").into()])
    );
    assert_eq!(r.results[0].error_code, err::NONE);
    assert_eq!(r.results[1].error_code, err::GROUP_ID_NOT_FOUND);
    let r = ask!(&t.b, OffsetFetch, 7, fetch_offsets_req("grp", "gt"));
    assert_eq!(r.topics[0].partitions[0].committed_offset, -1);
}

/// A consumer fetch of `name`'s partitions from the given offsets.
fn fetch_parts_req(name: &str, offsets: &[i64], max_bytes: i32, part_max: i32) -> FetchRequest {
    let parts = offsets
        .iter()
        .enumerate()
        .map(|(i, o)| {
            fetch_request::FetchPartition::default()
                .with_partition(i as i32)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(*o)
                .with_partition_max_bytes(part_max)
        })
        .collect();
    fetch_req(name, 0, -1)
        .with_max_bytes(max_bytes)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(topic(name))
            .with_partitions(parts)])
}

/// Batches per partition in a fetch response.
fn batch_counts(r: &FetchResponse) -> Vec<usize> {
    r.responses[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, err::NONE);
            let records = p.records.clone().unwrap_or_default();
            if records.is_empty() {
                return 0;
            }
            fjord_kafka::batch::split_batches(&records)
                .expect("whole batches")
                .len()
        })
        .collect()
}

#[tokio::test]
async fn fetch_honours_max_bytes_and_partition_max_bytes_with_one_batch_always() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "lim", 3).await, err::NONE);
    let one = make_batch(5, 1000, -1, -1);
    let size = one.len() as i32;
    for part in 0..3 {
        for _ in 0..2 {
            let r = ask!(&t.b, Produce, 9, produce_req("lim", part, one.clone(), -1));
            assert_eq!(r.responses[0].partition_responses[0].error_code, err::NONE);
        }
    }
    let fetch = |offsets: [i64; 3], max: i32, part_max: i32| {
        let b = t.b.clone();
        async move {
            ask!(
                &b,
                Fetch,
                12,
                fetch_parts_req("lim", &offsets, max, part_max)
            )
        }
    };
    // Room for everything: two batches from each partition.
    assert_eq!(
        batch_counts(&fetch([0; 3], 1 << 20, 1 << 20).await),
        [2, 2, 2]
    );
    // Limits below one batch: still the first batch of the first partition, nothing else.
    assert_eq!(batch_counts(&fetch([0; 3], 1, 1).await), [1, 0, 0]);
    assert_eq!(batch_counts(&fetch([0; 3], 1 << 20, 1).await), [1, 0, 0]);
    // The first non-empty partition is the one that always makes progress.
    assert_eq!(batch_counts(&fetch([10, 0, 0], 1, 1).await), [0, 1, 0]);
    // max_bytes over the whole response: 2.5 batches hold two, and no
    // partition adds a batch past the rest of the budget.
    assert_eq!(
        batch_counts(&fetch([0; 3], size * 5 / 2, 1 << 20).await),
        [2, 0, 0]
    );
    assert_eq!(
        batch_counts(&fetch([0; 3], size * 7 / 2, 1 << 20).await),
        [2, 1, 0]
    );
    // partition_max_bytes per partition: one batch and a half hold one each.
    assert_eq!(
        batch_counts(&fetch([0; 3], 1 << 20, size * 3 / 2).await),
        [1, 1, 1]
    );
}

/// Transactions, the partition side (WriteTxnMarkers, transactional produce,
/// LSO, read_committed): in `tests/txn.rs`, with the helpers above.
mod txn;

/// AlterUserScramCredentials / DescribeUserScramCredentials (KIP-554) on
/// the standalone store: Kafka's per-user error codes, and a stored
/// credential that the SCRAM exchange accepts.
#[tokio::test]
async fn scram_user_apis() {
    use alter_user_scram_credentials_request::{ScramCredentialDeletion, ScramCredentialUpsertion};
    use describe_user_scram_credentials_request::UserName;
    let t = start().await;
    let salt = b"0123456789abcdef".to_vec();
    let salted = crate::security::scram::ScramMechanism::Sha256.salted_password(b"pw", &salt, 4096);
    let up = |name: &str, mech: i8, iterations: i32| {
        ScramCredentialUpsertion::default()
            .with_name(s(name))
            .with_mechanism(mech)
            .with_iterations(iterations)
            .with_salt(salt.clone().into())
            .with_salted_password(salted.clone().into())
    };
    let r = ask!(
        &t.b,
        AlterUserScramCredentials,
        0,
        AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            up("alice", 1, 4096),
            up("bob", 1, 100),
            up("carol", 9, 4096),
        ])
    );
    let codes: Vec<(String, i16)> = r
        .results
        .iter()
        .map(|x| (x.user.to_string(), x.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("alice".into(), err::NONE),
            ("bob".into(), err::UNACCEPTABLE_CREDENTIAL),
            ("carol".into(), err::UNSUPPORTED_SASL_MECHANISM)
        ]
    );
    let r = ask!(
        &t.b,
        DescribeUserScramCredentials,
        0,
        DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
            UserName::default().with_name(s("alice")),
            UserName::default().with_name(s("nobody")),
        ]))
    );
    assert_eq!(r.results[0].error_code, err::NONE);
    assert_eq!(r.results[0].credential_infos[0].mechanism, 1);
    assert_eq!(r.results[0].credential_infos[0].iterations, 4096);
    assert_eq!(r.results[1].error_code, err::RESOURCE_NOT_FOUND);
    // The stored credential is the one the password derives.
    let stored = t.b.scram.get("alice").await.unwrap();
    let want = crate::security::scram::ScramCredential::new(
        crate::security::scram::ScramMechanism::Sha256,
        b"pw",
        Some(&salt),
        4096,
    );
    assert_eq!(
        stored.get(&crate::security::scram::ScramMechanism::Sha256),
        Some(&want)
    );
    let del = |name: &str| {
        AlterUserScramCredentialsRequest::default().with_deletions(vec![
            ScramCredentialDeletion::default()
                .with_name(s(name))
                .with_mechanism(1),
        ])
    };
    let r = ask!(&t.b, AlterUserScramCredentials, 0, del("alice"));
    assert_eq!(r.results[0].error_code, err::NONE);
    let r = ask!(&t.b, AlterUserScramCredentials, 0, del("alice"));
    assert_eq!(r.results[0].error_code, err::RESOURCE_NOT_FOUND);
}

/// Send one request as `principal` (the authorizer's view of a connection).
async fn call_as(
    b: &Arc<Broker>,
    principal: &str,
    key: ApiKey,
    version: i16,
    body: RequestKind,
) -> ResponseKind {
    let req = Request {
        api_key: key,
        version,
        header: RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_client_id(Some(s("test"))),
        body,
        peer: Some("127.0.0.1:40000".parse().unwrap()),
        listener: std::sync::Arc::from(""),
        principal: std::sync::Arc::from(principal),
    };
    let resp = tokio::time::timeout(Duration::from_secs(5), dispatch(b, req))
        .await
        .expect("answered in time")
        .expect("an answer");
    codec::encode_response(key, version, 1, &resp).expect("response encodes");
    resp
}

/// ACLs through the dispatch (standalone: the in-memory ACL store): the
/// ACL APIs, Metadata hiding and refusing, a group refusal, and removal.
#[tokio::test]
async fn acls_authorize_requests_through_the_dispatch() {
    use create_acls_request::AclCreation;
    let t = start_with(|c| {
        c.raw.insert(
            "authorizer.class.name".into(),
            "kafka.security.authorizer.AclAuthorizer".into(),
        );
        // The test's own helpers (create_topic) speak as User:ANONYMOUS.
        c.raw
            .insert("super.users".into(), "User:admin;User:ANONYMOUS".into());
    })
    .await;
    assert_eq!(create_topic(&t.b, "t", 1).await, err::NONE);
    assert_eq!(create_topic(&t.b, "u", 1).await, err::NONE);
    let create = CreateAclsRequest::default().with_creations(vec![AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(s("t"))
        .with_resource_pattern_type(3)
        .with_principal(s("User:alice"))
        .with_host(s("*"))
        .with_operation(4)
        .with_permission_type(3)]);
    // alice may not create ACLs; the super user may.
    let ResponseKind::CreateAcls(r) = call_as(
        &t.b,
        "User:alice",
        ApiKey::CreateAcls,
        3,
        RequestKind::CreateAcls(create.clone()),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.results[0].error_code, err::CLUSTER_AUTHORIZATION_FAILED);
    let ResponseKind::CreateAcls(r) = call_as(
        &t.b,
        "User:admin",
        ApiKey::CreateAcls,
        3,
        RequestKind::CreateAcls(create),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.results[0].error_code, err::NONE);
    // Metadata: all topics shows alice only `t` (WRITE implies DESCRIBE);
    // asking for `u` by name is TOPIC_AUTHORIZATION_FAILED.
    let meta = |topics: Option<Vec<&str>>| {
        RequestKind::Metadata(MetadataRequest::default().with_topics(topics.map(|ts| {
            ts.into_iter()
                .map(|n| {
                    metadata_request::MetadataRequestTopic::default().with_name(Some(topic(n)))
                })
                .collect()
        })))
    };
    let ResponseKind::Metadata(m) =
        call_as(&t.b, "User:alice", ApiKey::Metadata, 9, meta(None)).await
    else {
        panic!()
    };
    let names: Vec<String> = m
        .topics
        .iter()
        .filter_map(|x| x.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    assert_eq!(names, vec!["t".to_string()]);
    let ResponseKind::Metadata(m) = call_as(
        &t.b,
        "User:alice",
        ApiKey::Metadata,
        9,
        meta(Some(vec!["t", "u"])),
    )
    .await
    else {
        panic!()
    };
    let codes: Vec<i16> = m.topics.iter().map(|x| x.error_code).collect();
    assert_eq!(codes, vec![err::NONE, err::TOPIC_AUTHORIZATION_FAILED]);
    // A group without ACL: refused (allow.everyone.if.no.acl.found is false).
    let ResponseKind::JoinGroup(j) = call_as(
        &t.b,
        "User:alice",
        ApiKey::JoinGroup,
        5,
        RequestKind::JoinGroup(join_req("g", "", 10_000)),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(j.error_code, err::GROUP_AUTHORIZATION_FAILED);
    // DescribeAcls (DESCRIBE on the cluster), then DeleteAcls; alice loses `t`.
    let ResponseKind::DescribeAcls(d) = call_as(
        &t.b,
        "User:admin",
        ApiKey::DescribeAcls,
        3,
        RequestKind::DescribeAcls(
            DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        ),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(d.resources.len(), 1);
    assert_eq!(d.resources[0].acls[0].principal.as_str(), "User:alice");
    let ResponseKind::DeleteAcls(r) = call_as(
        &t.b,
        "User:admin",
        ApiKey::DeleteAcls,
        3,
        RequestKind::DeleteAcls(DeleteAclsRequest::default().with_filters(vec![
            delete_acls_request::DeleteAclsFilter::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some(s("t")))
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_pattern_type_filter(3)
                .with_operation(1)
                .with_permission_type(1),
        ])),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.filter_results[0].matching_acls.len(), 1);
    let ResponseKind::Metadata(m) = call_as(
        &t.b,
        "User:alice",
        ApiKey::Metadata,
        9,
        meta(Some(vec!["t"])),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(m.topics[0].error_code, err::TOPIC_AUTHORIZATION_FAILED);
}

/// With no authorizer, the ACL APIs answer SECURITY_DISABLED (as Kafka).
#[tokio::test]
async fn acl_apis_without_an_authorizer_are_security_disabled() {
    let t = start().await;
    let r = ask!(&t.b, DescribeAcls, 1, DescribeAclsRequest::default());
    assert_eq!(r.error_code, err::SECURITY_DISABLED);
}
