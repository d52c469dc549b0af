//! In-process tests of the transaction coordinator's APIs on a standalone
//! broker: InitProducerId fencing and epochs, the timeout bound, Kafka's
//! error codes for out-of-order requests, transactional offsets visible
//! only after a commit (and require_stable meanwhile), the timeout abort,
//! Describe/ListTransactions, FindCoordinator for transactions. Marker
//! delivery needs real partition leaders: the pytest suite covers it.

use super::*;
use crate::txn::codes;

fn init_req(id: &str, timeout_ms: i32) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(Some(s(id).into()))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1)
}

async fn init(b: &Arc<Broker>, id: &str, version: i16) -> (i16, i64, i16) {
    let r = ask!(b, InitProducerId, version, init_req(id, 60_000));
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

fn add_offsets_req(id: &str, pid: i64, epoch: i16, group: &str) -> AddOffsetsToTxnRequest {
    AddOffsetsToTxnRequest::default()
        .with_transactional_id(s(id).into())
        .with_producer_id(pid.into())
        .with_producer_epoch(epoch)
        .with_group_id(s(group).into())
}

fn end_req(id: &str, pid: i64, epoch: i16, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(s(id).into())
        .with_producer_id(pid.into())
        .with_producer_epoch(epoch)
        .with_committed(commit)
}

fn add_parts_req(
    id: &str,
    pid: i64,
    epoch: i16,
    name: &str,
    parts: Vec<i32>,
) -> AddPartitionsToTxnRequest {
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(s(id).into())
        .with_v3_and_below_producer_id(pid.into())
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(topic(name))
                .with_partitions(parts),
        ])
}

fn txn_commit_req(
    id: &str,
    pid: i64,
    epoch: i16,
    group: &str,
    name: &str,
    offset: i64,
) -> TxnOffsetCommitRequest {
    TxnOffsetCommitRequest::default()
        .with_transactional_id(s(id).into())
        .with_group_id(s(group).into())
        .with_producer_id(pid.into())
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_member_id(s(""))
        .with_topics(vec![
            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(topic(name))
                .with_partitions(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(-1)
                        .with_committed_metadata(Some(s("m"))),
                ]),
        ])
}

fn txn_commit_codes(r: &TxnOffsetCommitResponse) -> Vec<i16> {
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

async fn committed(b: &Arc<Broker>, group: &str, name: &str, stable: bool) -> (i16, i64) {
    let r = ask!(
        b,
        OffsetFetch,
        7,
        fetch_offsets_req(group, name).with_require_stable(stable)
    );
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

#[tokio::test]
async fn init_producer_id_bumps_the_epoch_and_fences_older_producers() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "t", 1).await, err::NONE);
    let (c, pid, e0) = init(&t.b, "tx", 4).await;
    assert_eq!((c, e0), (err::NONE, 0));
    assert!(pid >= 0);
    let (c, pid2, e1) = init(&t.b, "tx", 4).await;
    assert_eq!((c, pid2, e1), (err::NONE, pid, 1));
    // The first instance (epoch 0) is fenced: PRODUCER_FENCED from v2 of
    // EndTxn/AddOffsets, INVALID_PRODUCER_EPOCH before.
    let r = ask!(&t.b, AddOffsetsToTxn, 3, add_offsets_req("tx", pid, 0, "g"));
    assert_eq!(r.error_code, codes::PRODUCER_FENCED);
    let r = ask!(&t.b, AddOffsetsToTxn, 1, add_offsets_req("tx", pid, 0, "g"));
    assert_eq!(r.error_code, err::INVALID_PRODUCER_EPOCH);
    let r = ask!(
        &t.b,
        AddPartitionsToTxn,
        3,
        add_parts_req("tx", pid, 0, "t", vec![0])
    );
    assert_eq!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        codes::PRODUCER_FENCED
    );
    // KIP-360: the old instance asking for a bump with its stale epoch is fenced too.
    let r = ask!(
        &t.b,
        InitProducerId,
        4,
        init_req("tx", 60_000)
            .with_producer_id(pid.into())
            .with_producer_epoch(0)
    );
    assert_eq!(r.error_code, codes::PRODUCER_FENCED);
    let r = ask!(
        &t.b,
        InitProducerId,
        3,
        init_req("tx", 60_000)
            .with_producer_id(pid.into())
            .with_producer_epoch(0)
    );
    assert_eq!(r.error_code, err::INVALID_PRODUCER_EPOCH);
    // ... while the current one may bump its own epoch.
    let r = ask!(
        &t.b,
        InitProducerId,
        4,
        init_req("tx", 60_000)
            .with_producer_id(pid.into())
            .with_producer_epoch(1)
    );
    assert_eq!((r.error_code, r.producer_epoch), (err::NONE, 2));
    // Another id gets another producer id.
    let (_, other, _) = init(&t.b, "tx2", 4).await;
    assert_ne!(other, pid);
}

#[tokio::test]
async fn init_producer_id_checks_the_timeout_and_the_id() {
    let t = start_with(|c| c.transaction_max_timeout_ms = 1000).await;
    let r = ask!(&t.b, InitProducerId, 4, init_req("tx", 1001));
    assert_eq!(r.error_code, codes::INVALID_TRANSACTION_TIMEOUT);
    let r = ask!(&t.b, InitProducerId, 4, init_req("tx", 0));
    assert_eq!(r.error_code, codes::INVALID_TRANSACTION_TIMEOUT);
    let r = ask!(&t.b, InitProducerId, 4, init_req("tx", 1000));
    assert_eq!(r.error_code, err::NONE);
    let r = ask!(&t.b, InitProducerId, 4, init_req("", 1000));
    assert_eq!(r.error_code, err::INVALID_REQUEST);
    // A KIP-360 request naming only half a producer is malformed.
    let r = ask!(
        &t.b,
        InitProducerId,
        4,
        init_req("tx", 1000).with_producer_id(5.into())
    );
    assert_eq!(r.error_code, err::INVALID_REQUEST);
    // The idempotent (non-transactional) path is unchanged.
    let r = ask!(
        &t.b,
        InitProducerId,
        4,
        InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1)
    );
    assert_eq!((r.error_code, r.producer_epoch), (err::NONE, 0));
}

#[tokio::test]
async fn out_of_order_requests_get_kafkas_codes() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "t", 2).await, err::NONE);
    // Nothing initialised yet.
    let r = ask!(&t.b, EndTxn, 3, end_req("tx", 1, 0, true));
    assert_eq!(r.error_code, codes::INVALID_PRODUCER_ID_MAPPING);
    let (_, pid, epoch) = init(&t.b, "tx", 4).await;
    // EndTxn with no transaction.
    let r = ask!(&t.b, EndTxn, 3, end_req("tx", pid, epoch, true));
    assert_eq!(r.error_code, codes::INVALID_TXN_STATE);
    let r = ask!(&t.b, EndTxn, 3, end_req("tx", pid, epoch, false));
    assert_eq!(r.error_code, codes::INVALID_TXN_STATE);
    // A wrong producer id.
    let r = ask!(
        &t.b,
        AddOffsetsToTxn,
        3,
        add_offsets_req("tx", pid + 1, epoch, "g")
    );
    assert_eq!(r.error_code, codes::INVALID_PRODUCER_ID_MAPPING);
    // An unknown partition fails alone; the rest are not attempted.
    let r = ask!(
        &t.b,
        AddPartitionsToTxn,
        3,
        add_parts_req("tx", pid, epoch, "t", vec![0, 7])
    );
    let codes_seen: Vec<i16> = r.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect();
    assert_eq!(
        codes_seen,
        vec![
            codes::OPERATION_NOT_ATTEMPTED,
            err::UNKNOWN_TOPIC_OR_PARTITION
        ]
    );
    // TxnOffsetCommit before AddOffsetsToTxn: the transaction does not hold the group.
    let r = ask!(
        &t.b,
        TxnOffsetCommit,
        3,
        txn_commit_req("tx", pid, epoch, "g", "t", 5)
    );
    assert_eq!(txn_commit_codes(&r), vec![codes::INVALID_TXN_STATE]);
    // TxnOffsetCommit naming a member of a group that does not exist.
    let r = ask!(
        &t.b,
        TxnOffsetCommit,
        3,
        txn_commit_req("tx", pid, epoch, "nogroup", "t", 5)
            .with_member_id(s("m-1"))
            .with_generation_id(3)
    );
    assert_eq!(txn_commit_codes(&r), vec![err::UNKNOWN_MEMBER_ID]);
    let r = ask!(
        &t.b,
        TxnOffsetCommit,
        3,
        txn_commit_req("tx", pid, epoch, "nogroup", "t", 5).with_generation_id(3)
    );
    assert_eq!(txn_commit_codes(&r), vec![err::ILLEGAL_GENERATION]);
    // After a fence, AddPartitions is refused.
    let (_, _, e1) = init(&t.b, "tx", 4).await;
    assert_eq!(e1, epoch + 1);
    let r = ask!(
        &t.b,
        AddPartitionsToTxn,
        1,
        add_parts_req("tx", pid, epoch, "t", vec![0])
    );
    assert_eq!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        err::INVALID_PRODUCER_EPOCH
    );
    // Empty transactional ids are malformed.
    let r = ask!(&t.b, EndTxn, 3, end_req("", pid, epoch, true));
    assert_eq!(r.error_code, err::INVALID_REQUEST);
}

#[tokio::test]
async fn transactional_offsets_appear_only_on_commit() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "t", 1).await, err::NONE);
    let (_, pid, epoch) = init(&t.b, "tx", 4).await;
    // Commit: pending (unstable) until EndTxn, then committed.
    let r = ask!(
        &t.b,
        AddOffsetsToTxn,
        3,
        add_offsets_req("tx", pid, epoch, "g")
    );
    assert_eq!(r.error_code, err::NONE);
    let r = ask!(
        &t.b,
        TxnOffsetCommit,
        3,
        txn_commit_req("tx", pid, epoch, "g", "t", 42)
    );
    assert_eq!(txn_commit_codes(&r), vec![err::NONE]);
    assert_eq!(committed(&t.b, "g", "t", false).await, (err::NONE, -1));
    assert_eq!(
        committed(&t.b, "g", "t", true).await,
        (codes::UNSTABLE_OFFSET_COMMIT, -1)
    );
    let r = ask!(&t.b, EndTxn, 3, end_req("tx", pid, epoch, true));
    assert_eq!(r.error_code, err::NONE);
    assert_eq!(committed(&t.b, "g", "t", true).await, (err::NONE, 42));
    // A retried EndTxn(commit) is fine; an abort of the committed one is not.
    let r = ask!(&t.b, EndTxn, 3, end_req("tx", pid, epoch, true));
    assert_eq!(r.error_code, err::NONE);
    let r = ask!(&t.b, EndTxn, 3, end_req("tx", pid, epoch, false));
    assert_eq!(r.error_code, codes::INVALID_TXN_STATE);
    // Abort: the pending offset is dropped.
    let r = ask!(
        &t.b,
        AddOffsetsToTxn,
        3,
        add_offsets_req("tx", pid, epoch, "g")
    );
    assert_eq!(r.error_code, err::NONE);
    let r = ask!(
        &t.b,
        TxnOffsetCommit,
        3,
        txn_commit_req("tx", pid, epoch, "g", "t", 99)
    );
    assert_eq!(txn_commit_codes(&r), vec![err::NONE]);
    let r = ask!(&t.b, EndTxn, 3, end_req("tx", pid, epoch, false));
    assert_eq!(r.error_code, err::NONE);
    assert_eq!(committed(&t.b, "g", "t", true).await, (err::NONE, 42));
    // After the end, TxnOffsetCommit is out of order.
    let r = ask!(
        &t.b,
        TxnOffsetCommit,
        3,
        txn_commit_req("tx", pid, epoch, "g", "t", 100)
    );
    assert_eq!(txn_commit_codes(&r), vec![codes::INVALID_TXN_STATE]);
    assert_eq!(committed(&t.b, "g", "t", false).await, (err::NONE, 42));
}

#[tokio::test]
async fn a_timed_out_transaction_is_aborted_and_its_producer_fenced() {
    let t = start_with(|c| c.transaction_abort_interval = Duration::from_millis(50)).await;
    let r = ask!(&t.b, InitProducerId, 4, init_req("tx", 200));
    let (pid, epoch) = (r.producer_id.0, r.producer_epoch);
    let r = ask!(
        &t.b,
        AddOffsetsToTxn,
        3,
        add_offsets_req("tx", pid, epoch, "g")
    );
    assert_eq!(r.error_code, err::NONE);
    let d = ask!(
        &t.b,
        DescribeTransactions,
        0,
        DescribeTransactionsRequest::default().with_transactional_ids(vec![s("tx").into()])
    );
    assert_eq!(
        d.transaction_states[0].transaction_state.as_str(),
        "Ongoing"
    );
    assert!(d.transaction_states[0].transaction_start_time_ms > 0);
    let mut state = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let d = ask!(
            &t.b,
            DescribeTransactions,
            0,
            DescribeTransactionsRequest::default().with_transactional_ids(vec![s("tx").into()])
        );
        state = d.transaction_states[0].transaction_state.to_string();
        if state == "CompleteAbort" {
            assert_eq!(d.transaction_states[0].producer_epoch, epoch + 1);
            break;
        }
    }
    assert_eq!(state, "CompleteAbort");
    let r = ask!(&t.b, EndTxn, 3, end_req("tx", pid, epoch, true));
    assert_eq!(r.error_code, codes::PRODUCER_FENCED);
    let r = ask!(&t.b, EndTxn, 1, end_req("tx", pid, epoch, true));
    assert_eq!(r.error_code, err::INVALID_PRODUCER_EPOCH);
}

#[tokio::test]
async fn describe_list_and_find_coordinator_for_transactions() {
    let t = start().await;
    let (_, pid, _) = init(&t.b, "a", 4).await;
    init(&t.b, "b", 4).await;
    let d = ask!(
        &t.b,
        DescribeTransactions,
        0,
        DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![s("a").into(), s("zz").into()])
    );
    assert_eq!(d.transaction_states[0].error_code, err::NONE);
    assert_eq!(d.transaction_states[0].producer_id.0, pid);
    assert_eq!(d.transaction_states[0].transaction_state.as_str(), "Empty");
    assert_eq!(d.transaction_states[0].transaction_timeout_ms, 60_000);
    assert_eq!(
        d.transaction_states[1].error_code,
        codes::TRANSACTIONAL_ID_NOT_FOUND
    );
    let l = ask!(
        &t.b,
        ListTransactions,
        1,
        ListTransactionsRequest::default()
    );
    let mut ids: Vec<String> = l
        .transaction_states
        .iter()
        .map(|x| x.transactional_id.to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["a", "b"]);
    let l = ask!(
        &t.b,
        ListTransactions,
        1,
        ListTransactionsRequest::default()
            .with_state_filters(vec![s("Ongoing"), s("Bogus")])
            .with_duration_filter(-1)
    );
    assert!(l.transaction_states.is_empty());
    assert_eq!(l.unknown_state_filters, vec![s("Bogus")]);
    let l = ask!(
        &t.b,
        ListTransactions,
        1,
        ListTransactionsRequest::default()
            .with_producer_id_filters(vec![pid.into()])
            .with_duration_filter(-1)
    );
    assert_eq!(l.transaction_states.len(), 1);
    for v in [1, 3] {
        let r = ask!(
            &t.b,
            FindCoordinator,
            v,
            FindCoordinatorRequest::default()
                .with_key(s("a"))
                .with_key_type(1)
        );
        assert_eq!((r.error_code, r.node_id.0), (err::NONE, 0));
    }
    let r = ask!(
        &t.b,
        FindCoordinator,
        4,
        FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![s("a"), s("")])
    );
    assert_eq!(r.coordinators[0].error_code, err::NONE);
    assert_eq!(r.coordinators[1].error_code, err::INVALID_REQUEST);
    let r = ask!(
        &t.b,
        FindCoordinator,
        3,
        FindCoordinatorRequest::default()
            .with_key(s("a"))
            .with_key_type(2)
    );
    assert_eq!(r.error_code, err::INVALID_REQUEST);
}
