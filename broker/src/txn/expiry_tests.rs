//! Tests of Kafka's transactional-id expiration
//! ([`super::TxnCoordinator::remove_expired`]) through the in-memory store
//! twin: an idle id without a transaction (Empty, CompleteCommit,
//! CompleteAbort) goes, an Ongoing or recently used one stays; a removed id
//! is as never seen (DescribeTransactions TRANSACTIONAL_ID_NOT_FOUND, not
//! listed, InitProducerId gives a new producer id at epoch 0); a write since
//! the coordinator read the record keeps it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::state::{TxnMeta, TxnState};
use super::store::{MemStore, TxnStore};
use super::{codes, TxnCoordinator, TxnSettings};
use crate::cluster::metadata::{BrokerInfo, MetadataCache};
use crate::log::producer_ids::ProducerIds;
use crate::wire::clock::now_ms;

const EXPIRATION: i64 = 60_000;

/// A coordinator of broker 1 (the only live one) over a store in memory;
/// its loops wait an hour, so only the test's passes run.
fn coordinator() -> (Arc<TxnCoordinator>, Arc<MemStore>, watch::Sender<bool>) {
    let cache = Arc::new(MetadataCache::new());
    cache.update(|v| {
        v.brokers.insert(
            1,
            BrokerInfo {
                id: 1,
                host: "127.0.0.1".into(),
                port: 9092,
                rack: None,
                endpoints: Vec::new(),
            },
        );
    });
    let store = Arc::new(MemStore::in_memory(None));
    let (stop, shutdown) = watch::channel(false);
    let hour = Duration::from_secs(3600);
    let c = TxnCoordinator::start(
        TxnSettings {
            me: 1,
            max_timeout_ms: 60_000,
            abort_interval: hour,
            expiration_ms: EXPIRATION,
            expiry_interval: hour,
        },
        cache,
        store.clone(),
        Arc::new(ProducerIds::new(1)),
        shutdown,
    );
    (c, store, stop)
}

fn record(state: TxnState, last_update_ms: i64) -> TxnMeta {
    let mut m = TxnMeta::fresh(42, 30_000, last_update_ms);
    m.producer_epoch = 5;
    m.state = state;
    if state == TxnState::Ongoing {
        m.partitions = [("t".to_string(), [0].into())].into();
        // Just begun: the timeout abort has no claim on it.
        m.start_ms = now_ms();
    }
    m
}

async fn stored_ids(store: &MemStore) -> Vec<String> {
    store.list().await.unwrap_or_default()
}

#[tokio::test]
async fn idle_ids_without_a_transaction_are_removed_and_start_over() {
    let (c, store, _stop) = coordinator();
    let now = now_ms();
    let old = now - EXPIRATION - 1;
    for (id, state, at) in [
        ("committed", TxnState::CompleteCommit, old),
        ("aborted", TxnState::CompleteAbort, old),
        ("empty", TxnState::Empty, old),
        ("ongoing", TxnState::Ongoing, old),
        ("recent", TxnState::CompleteCommit, now - EXPIRATION / 2),
    ] {
        assert!(store.put(id, &record(state, at), None).await.is_ok());
    }
    // In the cache before the sweep, as after a client's request.
    assert!(c.describe("committed").await.is_ok());

    assert_eq!(c.remove_expired(now).await, 3);
    assert_eq!(stored_ids(&store).await, ["ongoing", "recent"]);
    assert!(!c.slots.lock().contains_key("committed"));
    assert_eq!(
        c.describe("committed").await.map(|d| d.id),
        Err(codes::TRANSACTIONAL_ID_NOT_FOUND)
    );
    let listed: Vec<String> = c
        .list()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(listed, ["ongoing", "recent"]);
    // The old producer's next request finds no mapping.
    assert_eq!(
        c.end("committed", 42, 5, true, 3).await,
        codes::INVALID_PRODUCER_ID_MAPPING
    );

    // Starts over: a new producer id at epoch 0.
    let (code, pid, epoch) = c.init_producer_id("committed", 30_000, None, 4).await;
    assert_eq!((code, epoch), (codes::NONE, 0));
    assert_ne!(pid, 42);
    let d = c.describe("committed").await.map(|d| d.meta);
    assert!(matches!(d, Ok(m) if m.state == TxnState::Empty && m.producer_id == pid));
    // Used just now: not expired by a second pass.
    assert_eq!(c.remove_expired(now_ms()).await, 0);
    assert_eq!(stored_ids(&store).await.len(), 3);
}

#[tokio::test]
async fn an_id_used_through_the_coordinator_expires_after_its_last_use() {
    let (c, store, _stop) = coordinator();
    let (code, pid, epoch) = c.init_producer_id("app", 30_000, None, 4).await;
    assert_eq!((code, epoch), (codes::NONE, 0));
    let (_, _, epoch) = c.init_producer_id("app", 30_000, None, 4).await;
    assert_eq!(epoch, 1);
    let used = now_ms();
    assert_eq!(c.remove_expired(used + EXPIRATION / 2).await, 0);
    assert_eq!(c.remove_expired(used + EXPIRATION + 1_000).await, 1);
    assert!(matches!(store.load("app").await, Ok(None)));
    let (code, pid2, epoch2) = c.init_producer_id("app", 30_000, None, 4).await;
    assert_eq!((code, epoch2), (codes::NONE, 0));
    assert!(pid2 > pid, "{pid2} after {pid}");
}

#[tokio::test]
async fn a_write_since_the_coordinator_read_the_record_keeps_it() {
    let (c, store, _stop) = coordinator();
    let old = now_ms() - EXPIRATION - 1;
    assert!(store
        .put("moved", &record(TxnState::CompleteCommit, old), None)
        .await
        .is_ok());
    assert!(c.describe("moved").await.is_ok());
    // Another coordinator's InitProducerId, unseen by this one's cache.
    let fresh = TxnMeta::fresh(77, 30_000, now_ms());
    assert!(matches!(store.put("moved", &fresh, Some(0)).await, Ok(1)));

    assert_eq!(c.remove_expired(now_ms()).await, 0);
    assert!(matches!(store.load("moved").await, Ok(Some(s)) if s.meta == fresh));
    // The cache let go of the stale record and reads the new one.
    let d = c.describe("moved").await.map(|d| d.meta.producer_id);
    assert_eq!(d, Ok(77));
}
