//! Fetch, for consumers (up to the high watermark, or with read_committed up
//! to the last stable offset, with the aborted transactions of the range
//! read) and for follower replicas (`replica_id` >= 0: up to the durable
//! end, recording the follower's LEO for the HW and ISR): per-partition
//! checks, the long poll on `min_bytes`, then reads within the byte budgets
//! (KIP-74: at least one batch).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use tokio::sync::Notify;

use super::common::*;
use crate::broker::Broker;
use crate::log::{Partition, Upto};
use crate::wire::error as err;
use fjord_kafka::batch;

// ---------------------------------------------------------------- Fetch

struct FetchPart {
    topic_idx: usize,
    part: Option<Arc<Partition>>,
    offset: i64,
    max_bytes: usize,
    code: i16,
}

pub(super) async fn fetch(b: &Arc<Broker>, r: FetchRequest, version: i16) -> FetchResponse {
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
    let read_committed = !from_replica && r.isolation_level == 1;
    let upto = if from_replica {
        Upto::LogEnd
    } else if read_committed {
        Upto::LastStable
    } else {
        Upto::HighWatermark
    };
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
            let (part, code) = match leader_log(b, &view, name, p.partition, epoch) {
                Err(c) => (None, c),
                Ok((_, l)) => {
                    let o = l.offsets();
                    // A consumer is out of range only past the log end, as
                    // in Kafka: a leader just elected may keep a HW behind
                    // its predecessor's until its ISR has fetched, and a
                    // consumer already past it must wait, not be told to
                    // reset (librdkafka would read it all again).
                    let end = if from_replica {
                        l.durable_end()
                    } else {
                        o.log_end.max(o.high_watermark)
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
                        .map(|l| l.available_bytes(p.offset, min_bytes, upto))
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
    // KIP-74: `max_bytes` bounds the records of the whole response and each
    // partition's `partition_max_bytes` its own, except that the first batch
    // of the first non-empty partition is always returned, so a consumer
    // makes progress past a batch larger than either limit.
    let mut total = 0usize;
    let mut min_one = true;
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
                let budget = fp.max_bytes.min(max_total.saturating_sub(total));
                if code == err::NONE && (budget > 0 || min_one) {
                    match b.log.read_for_fetch(l, fp.offset, budget, min_one, upto) {
                        Ok(records) => {
                            let n = records.len();
                            if read_committed && n > 0 {
                                let to = records_end(&records).unwrap_or(fp.offset);
                                pd.aborted_transactions = Some(
                                    l.aborted_ranges(fp.offset, to)
                                        .into_iter()
                                        .map(|a| {
                                            fetch_response::AbortedTransaction::default()
                                                .with_producer_id(a.producer_id.into())
                                                .with_first_offset(a.first_offset)
                                        })
                                        .collect(),
                                );
                            }
                            if n > 0 {
                                min_one = false;
                                total += n;
                                if !from_replica {
                                    b.metrics.fetched(&l.topic, n as u64);
                                }
                            }
                            pd.records = Some(records);
                        }
                        Err(e) => code = err::log_error(&e),
                    }
                }
                // Taken after the read: the HW answered covers what was read.
                let o = l.offsets();
                pd.high_watermark = o.high_watermark;
                pd.last_stable_offset = o.last_stable;
                if version >= 5 {
                    pd.log_start_offset = o.log_start;
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

/// The offset after the last batch in `records` (whole batches, as read).
fn records_end(records: &[u8]) -> Option<i64> {
    let mut at = 0usize;
    let mut end = None;
    while at < records.len() {
        let h = batch::parse_header(records.get(at..)?).ok()?;
        end = Some(h.base_offset + h.last_offset_delta as i64 + 1);
        at += h.total_len();
    }
    end
}
