//! In-process tests of the partition side of transactions: WriteTxnMarkers
//! (v0 and v1) appending COMMIT/ABORT control batches through the append
//! path and answering once the ISR has them, with Kafka's per-partition
//! error codes.

use super::*;
use fjord_kafka::batch::{self, ControlMarker};
use fjord_kafka::testing::make_txn_batch;

fn marker_req(
    pid: i64,
    epoch: i16,
    commit: bool,
    name: &str,
    parts: &[i32],
) -> WriteTxnMarkersRequest {
    WriteTxnMarkersRequest::default().with_markers(vec![
        write_txn_markers_request::WritableTxnMarker::default()
            .with_producer_id(pid.into())
            .with_producer_epoch(epoch)
            .with_transaction_result(commit)
            .with_coordinator_epoch(4)
            .with_topics(vec![
                write_txn_markers_request::WritableTxnMarkerTopic::default()
                    .with_name(topic(name))
                    .with_partition_indexes(parts.to_vec()),
            ]),
    ])
}

/// Per-partition error codes of a WriteTxnMarkers answer.
async fn markers(b: &Arc<Broker>, version: i16, req: WriteTxnMarkersRequest) -> Vec<i16> {
    let r = ask!(b, WriteTxnMarkers, version, req);
    r.markers
        .iter()
        .flat_map(|m| m.topics.iter())
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// The batches of a fetch answer: (header, bytes) each.
fn batches_of(p: &fetch_response::PartitionData) -> Vec<(batch::BatchHeader, Bytes)> {
    let records = p.records.clone().unwrap_or_default();
    if records.is_empty() {
        return Vec::new();
    }
    batch::split_batches(&records).expect("well-formed batches")
}

#[tokio::test]
async fn write_txn_markers_appends_control_batches() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "tx", 2).await, err::NONE);
    let (code, base) = produce(&t.b, "tx", make_txn_batch(3, 1, 77, 2, 0), -1).await;
    assert_eq!((code, base), (err::NONE, 0));
    // COMMIT at v1 on both partitions (partition 1 holds nothing of the
    // producer: an empty transaction there still gets its marker).
    assert_eq!(
        markers(&t.b, 1, marker_req(77, 2, true, "tx", &[0, 1])).await,
        vec![err::NONE, err::NONE]
    );
    let got = batches_of(&fetch(&t.b, "tx", 0).await);
    assert_eq!(got.len(), 2);
    let (h, raw) = &got[1];
    assert_eq!(h.base_offset, 3);
    assert!(h.is_control() && h.is_transactional());
    assert_eq!((h.producer_id, h.producer_epoch), (77, 2));
    assert_eq!(
        batch::control_marker(raw, h),
        Some(ControlMarker {
            commit: true,
            coordinator_epoch: 4
        })
    );
    // ABORT at v0 (what Kafka 2.x/3.x brokers send) after a second transaction.
    assert_eq!(
        produce(&t.b, "tx", make_txn_batch(2, 1, 77, 2, 3), -1).await,
        (err::NONE, 4)
    );
    assert_eq!(
        markers(&t.b, 0, marker_req(77, 2, false, "tx", &[0])).await,
        vec![err::NONE]
    );
    let got = batches_of(&fetch(&t.b, "tx", 4).await);
    let (h, raw) = &got[1];
    assert_eq!(h.base_offset, 6);
    assert_eq!(batch::control_marker(raw, h).map(|m| m.commit), Some(false));
    // A marker from an older epoch is fenced; unknown partitions and topics,
    // and partitions led elsewhere, answer per partition.
    assert_eq!(
        markers(&t.b, 1, marker_req(77, 1, true, "tx", &[0, 7])).await,
        vec![err::INVALID_PRODUCER_EPOCH, err::UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(
        markers(&t.b, 1, marker_req(77, 2, true, "nope", &[0])).await,
        vec![err::UNKNOWN_TOPIC_OR_PARTITION]
    );
    t.b.cache.update(|v| {
        let mut tm = (**v.topics.get("tx").expect("topic")).clone();
        if let Some(st) = tm.partitions[0].state.as_mut() {
            st.leader = 9;
        }
        v.topics.insert("tx".into(), Arc::new(tm));
    });
    assert_eq!(
        markers(&t.b, 1, marker_req(77, 2, true, "tx", &[0])).await,
        vec![err::NOT_LEADER_OR_FOLLOWER]
    );
}

/// A marker is answered only once every ISR member has it (acks=all), and
/// refused before appending when the ISR is below min.insync.replicas.
#[tokio::test]
async fn write_txn_markers_wait_for_the_isr() {
    let t = start().await;
    set_partition(&t.b, "repl", &[0, 1], 0, &[0, 1]);
    let fut = dispatch(
        &t.b,
        Request {
            api_key: ApiKey::WriteTxnMarkers,
            version: 1,
            header: RequestHeader::default(),
            body: RequestKind::WriteTxnMarkers(marker_req(5, 0, true, "repl", &[0])),
            peer: None,
            listener: std::sync::Arc::from(""),
            principal: std::sync::Arc::from("User:ANONYMOUS"),
        },
    );
    let mut fut = tokio::spawn(fut);
    assert!(tokio::time::timeout(Duration::from_millis(150), &mut fut)
        .await
        .is_err());
    // The follower fetches the marker, then says it has it: the HW covers it.
    let r = ask!(&t.b, Fetch, 12, fetch_req("repl", 0, 1));
    assert_eq!(batches_of(&r.responses[0].partitions[0]).len(), 1);
    let _ = ask!(&t.b, Fetch, 12, fetch_req("repl", 1, 1));
    let resp = tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .expect("answered")
        .expect("task");
    let Some(ResponseKind::WriteTxnMarkers(r)) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(r.markers[0].topics[0].partitions[0].error_code, err::NONE);
    t.b.cache.update(|v| {
        let mut tm = (**v.topics.get("repl").expect("topic")).clone();
        tm.configs.insert("min.insync.replicas".into(), "2".into());
        v.topics.insert("repl".into(), Arc::new(tm));
    });
    set_partition(&t.b, "repl", &[0, 1], 0, &[0]);
    assert_eq!(
        markers(&t.b, 1, marker_req(5, 0, false, "repl", &[0])).await,
        vec![err::NOT_ENOUGH_REPLICAS]
    );
}

/// (base offset, is control) of each batch in a fetch answer.
fn shape(p: &fetch_response::PartitionData) -> Vec<(i64, bool)> {
    batches_of(p)
        .iter()
        .map(|(h, _)| (h.base_offset, h.is_control()))
        .collect()
}

async fn fetch_isolated(
    b: &Arc<Broker>,
    name: &str,
    offset: i64,
    isolation: i8,
) -> fetch_response::PartitionData {
    let r = ask!(
        b,
        Fetch,
        12,
        fetch_req(name, offset, -1).with_isolation_level(isolation)
    );
    r.responses[0].partitions[0].clone()
}

async fn latest(b: &Arc<Broker>, name: &str, isolation: i8) -> i64 {
    let r = ask!(
        b,
        ListOffsets,
        7,
        list_offsets_req(name, -1, -1).with_isolation_level(isolation)
    );
    r.topics[0].partitions[0].offset
}

fn aborted(p: &fetch_response::PartitionData) -> Vec<(i64, i64)> {
    p.aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect()
}

/// read_committed reads up to the last stable offset and gets the aborted
/// transactions of what it read; read_uncommitted reads up to the HW; both
/// are told the LSO; ListOffsets latest follows the isolation level.
#[tokio::test]
async fn read_committed_stops_at_the_lso_with_the_aborted_transactions() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "rc", 1).await, err::NONE);
    let tx = |n, pid, seq| make_txn_batch(n, 1, pid, 0, seq);
    assert_eq!(produce(&t.b, "rc", tx(3, 1, 0), -1).await, (err::NONE, 0));
    assert_eq!(
        produce(&t.b, "rc", make_batch(1, 1, -1, -1), -1).await,
        (err::NONE, 3)
    );
    assert_eq!(produce(&t.b, "rc", tx(2, 2, 0), -1).await, (err::NONE, 4));
    assert_eq!(
        markers(&t.b, 1, marker_req(1, 0, false, "rc", &[0])).await,
        vec![err::NONE]
    );
    // Producer 2's transaction (from 4) is open: LSO 4, HW 7.
    let p = fetch_isolated(&t.b, "rc", 0, 1).await;
    assert_eq!((p.high_watermark, p.last_stable_offset), (7, 4));
    assert_eq!(shape(&p), vec![(0, false), (3, false)]);
    assert_eq!(aborted(&p), vec![(1, 0)]);
    let p = fetch_isolated(&t.b, "rc", 0, 0).await;
    assert_eq!((p.high_watermark, p.last_stable_offset), (7, 4));
    assert_eq!(
        shape(&p),
        vec![(0, false), (3, false), (4, false), (6, true)]
    );
    assert_eq!(aborted(&p), vec![]);
    assert!(fetch_isolated(&t.b, "rc", 4, 1)
        .await
        .records
        .unwrap_or_default()
        .is_empty());
    assert_eq!(latest(&t.b, "rc", 1).await, 4);
    assert_eq!(latest(&t.b, "rc", 0).await, 7);
    // COMMIT of producer 2: everything is stable.
    assert_eq!(
        markers(&t.b, 1, marker_req(2, 0, true, "rc", &[0])).await,
        vec![err::NONE]
    );
    let p = fetch_isolated(&t.b, "rc", 4, 1).await;
    assert_eq!(p.last_stable_offset, 8);
    assert_eq!(shape(&p), vec![(4, false), (6, true), (7, true)]);
    // Producer 1's abort (0..=6) overlaps 4..8.
    assert_eq!(aborted(&p), vec![(1, 0)]);
    assert_eq!(aborted(&fetch_isolated(&t.b, "rc", 7, 1).await), vec![]);
    assert_eq!(latest(&t.b, "rc", 1).await, 8);
}

/// Producer epochs fence transactional writes and markers; a producer with
/// an open transaction cannot write outside it; markers never come through
/// Produce; a stale coordinator's marker is refused.
#[tokio::test]
async fn transactional_produce_is_fenced_by_epoch() {
    let t = start().await;
    assert_eq!(create_topic(&t.b, "fence", 1).await, err::NONE);
    let r = ask!(
        &t.b,
        Produce,
        9,
        produce_req("fence", 0, make_txn_batch(2, 1, 9, 1, 0), -1)
            .with_transactional_id(Some(s("app").into()))
    );
    assert_eq!(r.responses[0].partition_responses[0].error_code, err::NONE);
    assert_eq!(
        produce(&t.b, "fence", make_txn_batch(1, 1, 9, 0, 0), -1)
            .await
            .0,
        err::INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        produce(&t.b, "fence", make_batch(1, 1, 9, 2), -1).await.0,
        48 // INVALID_TXN_STATE
    );
    let m = ControlMarker {
        commit: true,
        coordinator_epoch: 4,
    };
    assert_eq!(
        produce(&t.b, "fence", batch::control_batch(9, 1, m, 1), -1)
            .await
            .0,
        err::INVALID_RECORD
    );
    assert_eq!(
        markers(&t.b, 1, marker_req(9, 0, true, "fence", &[0])).await,
        vec![err::INVALID_PRODUCER_EPOCH]
    );
    assert_eq!(
        markers(&t.b, 1, marker_req(9, 1, true, "fence", &[0])).await,
        vec![err::NONE]
    );
    // The coordinator epoch of that marker was 4: an older one is fenced.
    let mut stale = marker_req(9, 1, false, "fence", &[0]);
    stale.markers[0].coordinator_epoch = 3;
    assert_eq!(markers(&t.b, 1, stale).await, vec![52]);
    // The same producer's next transaction, continuing its sequence.
    assert_eq!(
        produce(&t.b, "fence", make_txn_batch(1, 1, 9, 1, 2), -1).await,
        (err::NONE, 3)
    );
    assert_eq!(latest(&t.b, "fence", 1).await, 3);
}
