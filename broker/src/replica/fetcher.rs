//! The follower side of replication: one task per leader broker fetches
//! every partition followed from it (Kafka Fetch with `replica_id` = our id),
//! after truncating each to the leader's log per KIP-101/279, appends the
//! batches verbatim and adopts the leader's high watermark.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::manager::{Followed, Key, ReplicaManager};
use crate::log::LogError;
use crate::wire::error as err;
use fjord_kafka::batch;
use fjord_kafka::client::{ClientConfig, Conn};

fn fetch_config(rm: &ReplicaManager) -> ClientConfig {
    let mut cfg = crate::config::inter_broker_client(format!("fjord-replica-{}", rm.me));
    // A SIGSTOPped leader must not stall the follower forever.
    cfg.request_timeout = Duration::from_secs(5);
    cfg
}

/// Follower side for every partition led by `leader`: truncate (KIP-101),
/// then fetch from the log end, append verbatim, adopt the leader's HW.
pub(crate) async fn fetcher_loop(
    rm: Arc<ReplicaManager>,
    leader: i32,
    parts: Arc<Mutex<HashMap<Key, Followed>>>,
    wake: Arc<Notify>,
) {
    let mut stop = rm.shutdown.clone();
    let cfg = fetch_config(&rm);
    let mut conn: Option<Conn> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        if *stop.borrow() {
            return;
        }
        let set: Vec<(Key, Followed)> = parts
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if set.is_empty() {
            conn = None;
            tokio::select! {
                _ = wake.notified() => {}
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        if conn.is_none() {
            let addr = rm
                .cache
                .view()
                .brokers
                .get(&leader)
                .map(|i| format!("{}:{}", i.host, i.port));
            let Some(addr) = addr else {
                pause(&mut stop, &wake, Duration::from_millis(200)).await;
                continue;
            };
            match Conn::open(&addr, &cfg).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::debug!(leader, error = %e, "cannot reach leader; retrying");
                    pause(&mut stop, &wake, Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let res = fetch_round(&rm, c, &parts, set).await;
        match res {
            Ok(true) => backoff = Duration::from_millis(50),
            Ok(false) => {
                pause(&mut stop, &wake, backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
            Err(e) => {
                tracing::debug!(leader, error = %e, "replica fetch failed; reconnecting");
                conn = None;
                pause(&mut stop, &wake, Duration::from_millis(100)).await;
            }
        }
    }
}

async fn pause(stop: &mut tokio::sync::watch::Receiver<bool>, wake: &Notify, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = wake.notified() => {}
        _ = stop.changed() => {}
    }
}

/// Errors of one fetch round (the connection is dropped on any of them).
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("{0}")]
    Client(#[from] fjord_kafka::client::ClientError),
    #[error("{0}")]
    Log(#[from] LogError),
}

/// One round: truncations owed, then one Fetch for every partition that is
/// ready. Ok(false) = nothing useful happened (errors from the leader): back off.
async fn fetch_round(
    rm: &Arc<ReplicaManager>,
    c: &mut Conn,
    parts: &Mutex<HashMap<Key, Followed>>,
    set: Vec<(Key, Followed)>,
) -> Result<bool, RoundError> {
    let mut progressed = false;
    let mut ready = Vec::new();
    for (key, f) in set {
        if f.truncated {
            ready.push((key, f));
            continue;
        }
        if truncate_for_epoch(rm, c, &key, &f).await? {
            if let Some(x) = parts.lock().get_mut(&key) {
                if x.epoch == f.epoch {
                    x.truncated = true;
                }
            }
            progressed = true;
            ready.push((key, f));
        }
    }
    if ready.is_empty() {
        return Ok(progressed);
    }
    let mut by_topic: HashMap<String, Vec<fetch_request::FetchPartition>> = HashMap::new();
    for ((topic, idx), f) in &ready {
        let o = f.part.offsets();
        by_topic.entry(topic.clone()).or_default().push(
            fetch_request::FetchPartition::default()
                .with_partition(*idx)
                .with_current_leader_epoch(f.epoch)
                .with_fetch_offset(o.log_end)
                .with_log_start_offset(o.log_start)
                .with_partition_max_bytes(1 << 20),
        );
    }
    let wait = Duration::from_millis(500);
    let req = FetchRequest::default()
        .with_replica_id(rm.me.into())
        .with_max_wait_ms(wait.as_millis() as i32)
        .with_min_bytes(1)
        .with_max_bytes(16 << 20)
        .with_session_epoch(-1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    fetch_request::FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(t)))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let resp: FetchResponse = c.call_wait(&req, 12, wait).await?;
    let lookup: HashMap<Key, Followed> = ready.into_iter().collect();
    for t in resp.responses {
        let topic = t.topic.0.to_string();
        for pd in t.partitions {
            let key = (topic.clone(), pd.partition_index);
            let Some(f) = lookup.get(&key) else { continue };
            // Moved to another leader or epoch while this fetch was out: the
            // answer of a deposed leader must not reach the log.
            if parts.lock().get(&key).is_none_or(|x| x.epoch != f.epoch) {
                continue;
            }
            match pd.error_code {
                err::NONE => {
                    let records = pd.records.unwrap_or_default();
                    if !records.is_empty() {
                        let batches = batch::split_batches(&records).map_err(LogError::Batch)?;
                        match rm.log.append_replica(&f.part, batches) {
                            Ok(Some(done)) => {
                                done.await
                                    .map_err(|_| LogError::Stopped)?
                                    .map_err(LogError::Meta)?;
                            }
                            Ok(None) => {}
                            Err(LogError::NonContiguous { expected, got }) => {
                                tracing::warn!(
                                    topic,
                                    partition = pd.partition_index,
                                    expected,
                                    got,
                                    "gap in replicated batches; re-truncating"
                                );
                                retruncate(parts, &key, f.epoch);
                                continue;
                            }
                            // Demoted/promoted meanwhile: the reconciler moves us.
                            Err(LogError::NotLeader) => continue,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    f.part.set_follower_hw(pd.high_watermark);
                    progressed = true;
                }
                err::OFFSET_OUT_OF_RANGE => {
                    let o = f.part.offsets();
                    if pd.log_start_offset > o.log_end {
                        rm.log.barrier().await?;
                        rm.log.reset_to(&f.part, pd.log_start_offset)?;
                    } else {
                        tracing::warn!(
                            topic,
                            partition = pd.partition_index,
                            log_end = o.log_end,
                            "fetch offset out of range on the leader; re-truncating"
                        );
                        retruncate(parts, &key, f.epoch);
                    }
                }
                code => {
                    tracing::debug!(
                        topic,
                        partition = pd.partition_index,
                        code,
                        "leader refused replica fetch"
                    );
                }
            }
        }
    }
    Ok(progressed)
}

fn retruncate(parts: &Mutex<HashMap<Key, Followed>>, key: &Key, epoch: i32) {
    if let Some(x) = parts.lock().get_mut(key) {
        if x.epoch == epoch {
            x.truncated = false;
        }
    }
}

/// KIP-101/279: ask the leader where our latest epoch ends on its log and cut
/// ours there (never blindly at our HW, which may lag what was committed).
/// Ok(false) = the leader could not answer yet.
async fn truncate_for_epoch(
    rm: &Arc<ReplicaManager>,
    c: &mut Conn,
    key: &Key,
    f: &Followed,
) -> Result<bool, RoundError> {
    // Writes queued while this replica still led must land before cutting.
    rm.log.barrier().await?;
    let own_epoch = f.part.latest_epoch();
    let o = f.part.offsets();
    if own_epoch < 0 {
        if o.log_end > o.high_watermark {
            rm.log.truncate(&f.part, o.high_watermark)?;
        }
        return Ok(true);
    }
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(rm.me.into())
        .with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(TopicName(StrBytes::from_string(key.0.clone())))
                .with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(key.1)
                        .with_current_leader_epoch(f.epoch)
                        .with_leader_epoch(own_epoch),
                ]),
        ]);
    let resp: OffsetForLeaderEpochResponse = c.call(&req, 4).await?;
    let Some(e) = resp
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition == key.1)
    else {
        return Ok(false);
    };
    if e.error_code != err::NONE {
        tracing::debug!(topic = %key.0, partition = key.1, code = e.error_code, "OffsetForLeaderEpoch refused");
        return Ok(false);
    }
    let target = if e.leader_epoch < 0 || e.end_offset < 0 {
        // No common epoch at all: the committed prefix is all we can trust.
        o.high_watermark
    } else if e.leader_epoch == own_epoch {
        e.end_offset.min(o.log_end)
    } else {
        // The leader's largest epoch <= ours is older: cut at the end of that
        // epoch on our side too (KIP-279), whichever is smaller.
        let (_, ours) = f.part.end_offset_for_epoch(e.leader_epoch);
        e.end_offset.min(ours).min(o.log_end)
    };
    if target < o.log_end {
        rm.log.truncate(&f.part, target)?;
    }
    Ok(true)
}
