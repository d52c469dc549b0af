//! ListOffsets (earliest, latest — the last stable offset for read_committed
//! —, max timestamp, by timestamp) and
//! OffsetForLeaderEpoch (KIP-101: where an epoch ends on this leader's log).

use kafka_protocol::messages::*;

use super::common::*;
use crate::wire::error as err;

// ---------------------------------------------------------------- ListOffsets

pub(super) fn list_offsets(cx: Ctx<'_>, r: ListOffsetsRequest) -> ListOffsetsResponse {
    let view = cx.view();
    let mut topics = Vec::with_capacity(r.topics.len());
    for t in r.topics {
        let name = t.name.0.to_string();
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let mut pr = list_offsets_response::ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1);
            let epoch = if cx.version >= 4 {
                p.current_leader_epoch
            } else {
                -1
            };
            match leader_log(cx.b, &view, &name, p.partition_index, epoch) {
                Err(c) => pr.error_code = c,
                Ok((le, l)) => {
                    let o = l.offsets();
                    if cx.version >= 4 {
                        pr.leader_epoch = le;
                    }
                    match p.timestamp {
                        -1 if r.isolation_level == 1 => pr.offset = o.last_stable,
                        -1 => pr.offset = o.high_watermark,
                        -2 => pr.offset = o.log_start,
                        -3 => {
                            if let Some((ts, off)) = l.max_timestamp() {
                                pr.timestamp = ts;
                                pr.offset = off;
                            }
                        }
                        ts => match cx.b.log.offset_for_timestamp(&l, ts) {
                            Ok(Some((off, t))) => {
                                pr.offset = off;
                                pr.timestamp = t;
                            }
                            Ok(None) => {}
                            Err(e) => pr.error_code = err::log_error(&e),
                        },
                    }
                }
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

pub(super) fn offset_for_leader_epoch(
    cx: Ctx<'_>,
    r: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let view = cx.view();
    let topics = r
        .topics
        .into_iter()
        .map(|t| {
            let name = t.topic.0.to_string();
            let parts = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut e = offset_for_leader_epoch_response::EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    match leader_log(cx.b, &view, &name, p.partition, p.current_leader_epoch) {
                        Err(c) => e.error_code = c,
                        Ok((_, l)) => {
                            let (ep, end) = l.end_offset_for_epoch(p.leader_epoch);
                            e.leader_epoch = ep;
                            e.end_offset = end;
                        }
                    }
                    e
                })
                .collect();
            offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(parts)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
