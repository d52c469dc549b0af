//! Helpers every API handler shares: the `Pending` response future, the
//! request context `Ctx`, where a partition request stands against the cache
//! (`lookup`), the local log of a partition, and waiting (bounded) for the
//! cache to show a change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::*;

use crate::broker::Broker;
use crate::cluster::metadata::{ClusterView, TopicMeta};
use crate::cluster::AdminError;
use crate::log::Partition;
use crate::wire::error as err;
use kafka_protocol::protocol::StrBytes;
use std::future::Future;
use std::pin::Pin;

pub type Pending = Pin<Box<dyn Future<Output = Option<ResponseKind>> + Send>>;

/// What a handler needs besides its request: the broker it reached and the
/// API version the request speaks. The cluster view is taken on demand.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub b: &'a Arc<Broker>,
    pub version: i16,
}

impl Ctx<'_> {
    /// The cluster view as the cache holds it now.
    pub fn view(&self) -> Arc<ClusterView> {
        self.b.cache.view()
    }
}

/// Kafka's error code for a failed admin change, and its message where the
/// response version carries one.
pub(crate) fn admin_failure(e: &AdminError, with_message: bool) -> (i16, Option<StrBytes>) {
    (err::admin_error(e), with_message.then(|| s(&e.to_string())))
}

/// A request's configs that carry a value, by name (null values dropped).
pub(crate) fn valued_configs<'a>(
    configs: impl Iterator<Item = (&'a StrBytes, Option<&'a StrBytes>)>,
) -> BTreeMap<String, String> {
    configs
        .filter_map(|(name, value)| value.map(|v| (name.to_string(), v.to_string())))
        .collect()
}

pub(crate) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Where a partition request stands against the cache.
pub(crate) enum Lookup {
    Ok(Arc<TopicMeta>, i32),
    Err(i16),
}

pub(crate) fn lookup(
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

pub(crate) fn local_log(b: &Broker, topic: &str, partition: i32) -> Result<Arc<Partition>, i16> {
    match b.log.get(topic, partition) {
        Some(p) => Ok(p),
        None => b
            .log
            .ensure(topic, partition)
            .map_err(|e| err::log_error(&e)),
    }
}

/// The local log of a partition this broker leads at the caller's epoch
/// (`lookup`, then `local_log`), with the current leader epoch; else the
/// error code to answer.
pub(crate) fn leader_log(
    b: &Broker,
    view: &ClusterView,
    topic: &str,
    partition: i32,
    current_epoch: i32,
) -> Result<(i32, Arc<Partition>), i16> {
    match lookup(b, view, topic, partition, current_epoch) {
        Lookup::Err(c) => Err(c),
        Lookup::Ok(_, epoch) => Ok((epoch, local_log(b, topic, partition)?)),
    }
}

/// Wait (bounded) until the cache satisfies `pred`.
pub(crate) async fn wait_for(
    b: &Broker,
    limit: Duration,
    pred: impl Fn(&ClusterView) -> bool,
) -> bool {
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
