//! Produce: validate each partition (leader, acks, size, min.insync.replicas),
//! append in the connection's read order (so offsets follow request order;
//! transactional batches open or extend their producer's transaction in the
//! partition's `log::txn` state; markers only come from WriteTxnMarkers),
//! then wait for the group commit and, for acks=all, the high watermark.
//! The submit half runs synchronously in `dispatch`; the returned future waits.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::*;

use super::common::*;
use crate::broker::Broker;
use crate::cluster::metadata::TopicMeta;
use crate::cluster::validate_topic_name;
use crate::log::{LogError, Partition};
use crate::wire::error as err;
use fjord_kafka::batch;

pub(super) fn produce_submit(b: &Arc<Broker>, r: ProduceRequest, version: i16) -> Pending {
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
            let code = if !(-1..=1).contains(&acks) {
                err::INVALID_REQUIRED_ACKS
            } else if validate_topic_name(&name).is_err() {
                // Kafka's answer, which librdkafka treats as permanent (no retry
                // until the message timeout).
                err::INVALID_TOPIC_EXCEPTION
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
                        if records.len() > max_message_bytes(b, &t) + 12 {
                            err::MESSAGE_TOO_LARGE
                        } else if acks == -1 && isr_len < min_isr {
                            err::NOT_ENOUGH_REPLICAS
                        } else if let Some(why) = schema_violation(b, &t, &name, &records) {
                            resp.error_message =
                                Some(kafka_protocol::protocol::StrBytes::from_string(why));
                            err::INVALID_RECORD
                        } else {
                            match local_log(b, &name, pd.index) {
                                Err(c) => c,
                                Ok(p) => match batch::split_batches(&records) {
                                    Err(e) => err::log_error(&LogError::Batch(e)),
                                    // Markers come only from WriteTxnMarkers (Kafka: INVALID_RECORD).
                                    Ok(batches) if batches.iter().any(|(h, _)| h.is_control()) => {
                                        err::INVALID_RECORD
                                    }
                                    Ok(batches) if keyless_on_compacted(b, &name, &batches) => {
                                        // Kafka's answer: INVALID_RECORD (CORRUPT_MESSAGE
                                        // before v8), with the message from v8 on.
                                        if version >= 8 {
                                            resp.error_message = Some(s(&format!(
                                                "Compacted topic cannot accept message without key in topic partition {name}-{}.",
                                                pd.index
                                            )));
                                            err::INVALID_RECORD
                                        } else {
                                            err::CORRUPT_MESSAGE
                                        }
                                    }
                                    Ok(batches) => match b.log.append(&p, batches, epoch) {
                                        Err(e) => err::log_error(&e),
                                        Ok(a) => {
                                            resp.base_offset = a.base_offset;
                                            if version >= 5 {
                                                resp.log_start_offset = a.log_start;
                                            }
                                            let all = (acks == -1).then(|| {
                                                (p.clone(), a.last_offset, min_isr.max(1) as usize)
                                            });
                                            waits.push((ti, pi, a.done, all));
                                            b.metrics.produced(
                                                &name,
                                                (a.last_offset - a.base_offset + 1).max(0) as u64,
                                                records.len() as u64,
                                            );
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
                code = crate::replica::wait_committed(&p, last, min_isr, deadline).await;
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

/// True when `topic` is compacted and a record of `batches` has no key (or
/// cannot be read, which a compacted topic cannot accept either).
fn keyless_on_compacted(
    b: &Broker,
    topic: &str,
    batches: &[(batch::BatchHeader, bytes::Bytes)],
) -> bool {
    if !crate::broker::is_compacted(&b.cache, &b.config, topic) {
        return false;
    }
    batches
        .iter()
        .any(|(h, raw)| crate::log::records::has_keyless(raw, h).unwrap_or(true))
}

/// Broker-side schema validation (registry::validation), when the topic asks for it.
fn schema_violation(
    b: &Broker,
    t: &TopicMeta,
    name: &str,
    records: &bytes::Bytes,
) -> Option<String> {
    let (keys, values) = crate::registry::validation::enabled(&t.configs);
    if !keys && !values {
        return None;
    }
    match b.registry.get() {
        Some(reg) => crate::registry::validation::check(reg, name, keys, values, records),
        None => Some(
            "schema validation is on for this topic but this broker runs no schema registry".into(),
        ),
    }
}

/// Topic-level message size limit: max.message.bytes, else the broker's
/// message.max.bytes.
fn max_message_bytes(b: &Broker, topic: &TopicMeta) -> usize {
    topic
        .configs
        .get("max.message.bytes")
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(b.config.message_max_bytes)
        .max(0) as usize
}
