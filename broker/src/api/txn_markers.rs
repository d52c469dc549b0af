//! WriteTxnMarkers (KIP-98), the partition side of ending a transaction: the
//! transaction coordinator asks each partition leader to append a COMMIT or
//! ABORT marker (a control batch) for a producer. The marker goes through the
//! normal append path (so the producer-state checks and replication apply to
//! it like to any batch) and is answered once the ISR has it (Kafka appends
//! markers with acks=all). Markers of one request are appended first, then
//! awaited together.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::*;

use super::common::*;
use crate::broker::Broker;
use crate::log::{Appended, LogError, Partition};
use crate::wire::clock::now_ms;
use crate::wire::error as err;
use fjord_kafka::batch::{self, ControlMarker};

/// How long a marker may wait for the ISR (Kafka: request.timeout.ms).
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Append one marker on this leader: the partition, what to wait for and
/// the min.insync.replicas it is held to; else the error code to answer.
fn append_marker(
    b: &Broker,
    topic: &str,
    partition: i32,
    pid: i64,
    epoch: i16,
    marker: ControlMarker,
) -> Result<(Arc<Partition>, Appended, usize), i16> {
    let view = b.cache.view();
    let (t, leader_epoch) = match lookup(b, &view, topic, partition, -1) {
        Lookup::Err(c) => return Err(c),
        Lookup::Ok(t, e) => (t, e),
    };
    let isr_len = t
        .partitions
        .iter()
        .find(|p| p.index == partition)
        .map(|p| p.isr().len())
        .unwrap_or(0);
    let min_isr = t
        .configs
        .get("min.insync.replicas")
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(b.config.min_insync_replicas)
        .max(1) as usize;
    if isr_len < min_isr {
        return Err(err::NOT_ENOUGH_REPLICAS);
    }
    let p = local_log(b, topic, partition)?;
    let raw = batch::control_batch(pid, epoch, marker, now_ms());
    let batches = batch::split_batches(&raw).map_err(|e| err::log_error(&LogError::Batch(e)))?;
    let a = b
        .log
        .append(&p, batches, leader_epoch)
        .map_err(|e| err::log_error(&e))?;
    Ok((p, a, min_isr))
}

pub(super) async fn write_txn_markers(
    b: &Arc<Broker>,
    r: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let deadline = tokio::time::Instant::now() + MARKER_TIMEOUT;
    type Wait = (usize, usize, usize, Arc<Partition>, Appended, usize);
    let mut waits: Vec<Wait> = Vec::new();
    let mut markers = Vec::with_capacity(r.markers.len());
    for (mi, m) in r.markers.into_iter().enumerate() {
        let marker = ControlMarker {
            commit: m.transaction_result,
            coordinator_epoch: m.coordinator_epoch,
        };
        let pid = m.producer_id.0;
        let mut topics = Vec::with_capacity(m.topics.len());
        for (ti, t) in m.topics.into_iter().enumerate() {
            let name = t.name.0.to_string();
            let mut parts = Vec::with_capacity(t.partition_indexes.len());
            for (pi, index) in t.partition_indexes.into_iter().enumerate() {
                let code = match append_marker(b, &name, index, pid, m.producer_epoch, marker) {
                    Err(c) => c,
                    Ok((p, a, min_isr)) => {
                        waits.push((mi, ti, pi, p, a, min_isr));
                        err::NONE
                    }
                };
                parts.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(code),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(parts),
            );
        }
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics),
        );
    }
    for (mi, ti, pi, p, a, min_isr) in waits {
        let mut code = match tokio::time::timeout_at(deadline, a.done).await {
            Ok(Ok(Ok(()))) => err::NONE,
            Ok(Ok(Err(_))) | Ok(Err(_)) => err::KAFKA_STORAGE_ERROR,
            Err(_) => err::REQUEST_TIMED_OUT,
        };
        if code == err::NONE {
            code = crate::replica::wait_committed(&p, a.last_offset, min_isr, deadline).await;
        }
        if let Some(r) = markers
            .get_mut(mi)
            .and_then(|m| m.topics.get_mut(ti))
            .and_then(|t| t.partitions.get_mut(pi))
        {
            r.error_code = code;
        }
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}
