//! Tests of the log cleaner on the in-memory twin and on RocksDB: survivors
//! keep their offsets, tombstones stay until `delete.retention.ms` after
//! their first cleaning, emptied batches go (a producer's last one stays
//! empty), transactional batches are untouched, followers copy a compacted
//! log with its gaps, a store that fails mid-clean reopens readable, and
//! COMMIT/ABORT markers go only once their transaction has nothing left and
//! `delete.retention.ms` has passed, with the aborted-index entry, while
//! read_committed reads the same records to the same end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::cleaner::{AbortedIndex, Cleaner, CompactionConfig, NoTxnIndex};
use super::error::LogError;
use super::partition::{Partition, Upto};
use super::partition_store::{PartitionStore, Registered, Visit};
use super::rocks::RocksStore;
use super::store::LogStore;
use super::txn::AbortedTxn;
use super::writer::FlushPolicy;
use fjord_kafka::batch;

const NOW: i64 = 10_000_000;

fn policy() -> FlushPolicy {
    FlushPolicy {
        interval_messages: i64::MAX,
        interval: None,
    }
}

fn cfg() -> CompactionConfig {
    CompactionConfig {
        min_cleanable_ratio: 0.0,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        delete_retention_ms: 1_000,
        segment_ms: 1,
        segment_bytes: 1,
    }
}

/// A batch of (key, value) records (value None: tombstone) at `ts`, encoded by
/// kafka-protocol (independent of the cleaner's record code).
fn kv(recs: &[(&str, Option<&str>)], ts: i64, pid: i64, seq: i32, txn: bool) -> Bytes {
    let rs: Vec<Record> = recs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: txn,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Consecutive sequences keep the encoder from splitting the batch
            // (ignored by the broker when there is no producer id).
            sequence: seq + i as i32,
            timestamp: ts,
            key: Some(Bytes::copy_from_slice(k.as_bytes())),
            value: v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &rs,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

async fn put(store: &LogStore, p: &Arc<Partition>, b: Bytes) -> i64 {
    let a = store
        .append(p, batch::split_batches(&b).unwrap(), 0)
        .unwrap();
    a.done.await.unwrap().unwrap();
    a.base_offset
}

/// Every record readable from `from`: (offset, key, value), CRCs checked.
fn dump(store: &LogStore, p: &Partition, from: i64) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    for b in store.read_replica(p, from, usize::MAX).unwrap() {
        let h = batch::parse_header(&b).unwrap();
        batch::check_crc(&b, &h).unwrap();
        let set = RecordBatchDecoder::decode(&mut b.clone()).unwrap();
        for r in set.records {
            let s = |x: Option<Bytes>| x.map(|v| String::from_utf8_lossy(&v).into_owned());
            out.push((r.offset, s(r.key).unwrap_or_default(), s(r.value)));
        }
    }
    out
}

fn leader(store: &LogStore) -> Arc<Partition> {
    let p = store.ensure("t", 0).unwrap();
    p.become_leader(1, 0, &[1]);
    p
}

/// a1 b1 | a2 c1 | b-tombstone | a3 | d1 (the active tail): after cleaning,
/// b's tombstone, a3, c1 and d1 stay at their offsets; the batch of a1 b1 goes.
async fn survivors_keep_offsets(store: Arc<LogStore>) {
    let p = leader(&store);
    put(
        &store,
        &p,
        kv(&[("a", Some("1")), ("b", Some("1"))], 100, -1, 0, false),
    )
    .await;
    put(
        &store,
        &p,
        kv(&[("a", Some("2")), ("c", Some("1"))], 100, -1, 0, false),
    )
    .await;
    put(&store, &p, kv(&[("b", None)], 100, -1, 0, false)).await;
    put(&store, &p, kv(&[("a", Some("3"))], 100, -1, 0, false)).await;
    put(&store, &p, kv(&[("d", Some("1"))], 100, -1, 0, false)).await;
    let before = p.size_bytes();
    let c = Cleaner::new(store.clone(), Arc::new(NoTxnIndex), 1 << 20);
    let st = c.clean(&p, &cfg(), NOW).unwrap().unwrap();
    assert_eq!((st.start, st.limit), (0, 7));
    assert_eq!(st.records_removed, 3);
    assert_eq!(st.batches_deleted, 1);
    let want = vec![
        (3, "c".to_string(), Some("1".to_string())),
        (4, "b".to_string(), None),
        (5, "a".to_string(), Some("3".to_string())),
        (6, "d".to_string(), Some("1".to_string())),
    ];
    assert_eq!(dump(&store, &p, 0), want);
    assert!(p.size_bytes() < before);
    assert_eq!(p.offsets().log_end, 7);
    // A fetch inside the removed range gets the next batch.
    let got = store.read(&p, 1, 1 << 20).unwrap();
    assert_eq!(batch::parse_header(&got[0]).unwrap().base_offset, 2);
    // Nothing dirty: no second pass.
    assert!(c.clean(&p, &cfg(), NOW + 1).unwrap().is_none());
    // After delete.retention.ms the tombstone goes, and its batch with it.
    let st = c.clean(&p, &cfg(), NOW + 1_001).unwrap().unwrap();
    assert_eq!((st.records_removed, st.batches_deleted), (1, 1));
    assert_eq!(
        dump(&store, &p, 0),
        vec![want[0].clone(), want[2].clone(), want[3].clone()]
    );
    // Appends go on at the log end.
    assert_eq!(
        put(&store, &p, kv(&[("e", Some("1"))], 100, -1, 0, false)).await,
        7
    );
    store.shutdown();
}

#[tokio::test]
async fn survivors_keep_offsets_in_memory() {
    survivors_keep_offsets(LogStore::in_memory(policy()).unwrap()).await;
}

#[tokio::test]
async fn survivors_keep_offsets_on_rocksdb_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    survivors_keep_offsets(LogStore::open(dir.path(), policy()).unwrap()).await;
    let store = LogStore::open(dir.path(), policy()).unwrap();
    let p = store.get("t", 0).unwrap();
    p.become_leader(1, 1, &[1]);
    assert_eq!(p.offsets().log_end, 8);
    let keys: Vec<(i64, String)> = dump(&store, &p, 0)
        .into_iter()
        .map(|r| (r.0, r.1))
        .collect();
    assert_eq!(
        keys,
        vec![
            (3, "c".into()),
            (5, "a".into()),
            (6, "d".into()),
            (7, "e".into())
        ]
    );
    store.shutdown();
}

/// The active tail, min.compaction.lag.ms and the HW bound what is cleaned.
#[tokio::test]
async fn limits_active_tail_lag_and_hw() {
    let store = LogStore::in_memory(policy()).unwrap();
    let p = leader(&store);
    for i in 0..4 {
        put(
            &store,
            &p,
            kv(&[("k", Some("v"))], NOW - 10_000 + i * 1_000, -1, 0, false),
        )
        .await;
    }
    let c = Cleaner::new(store.clone(), Arc::new(NoTxnIndex), 1 << 20);
    // Seen at NOW - 5 s with segment.ms = 3.5 s: the batches stamped
    // NOW - 8 s and NOW - 7 s are the active tail; the two older ones are not.
    let mut k = cfg();
    k.segment_ms = 3_500;
    k.segment_bytes = i64::MAX;
    let st = c.clean(&p, &k, NOW - 5_000).unwrap().unwrap();
    assert_eq!(st.limit, 2);
    assert_eq!(st.batches_deleted, 1);
    // min.compaction.lag.ms keeps younger batches dirty.
    let mut k = cfg();
    k.min_compaction_lag_ms = 8_500;
    assert!(
        c.clean(&p, &k, NOW).unwrap().is_none(),
        "only offset 1 is old enough, already clean"
    );
    // A follower-like HW below the end bounds it too.
    p.become_follower(1, 1);
    p.set_follower_hw(3);
    let st = c.clean(&p, &cfg(), NOW).unwrap().unwrap();
    assert_eq!(st.limit, 3);
    assert_eq!(
        dump(&store, &p, 0).iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![2, 3]
    );
    store.shutdown();
}

/// Transactional records neither supersede nor are superseded; a producer's
/// last batch stays (empty) so its sequence survives a restart.
#[tokio::test]
async fn transactional_untouched_and_producer_last_batch_kept() {
    let store = LogStore::in_memory(policy()).unwrap();
    let p = leader(&store);
    put(&store, &p, kv(&[("a", Some("1"))], 100, -1, 0, false)).await; // 0
    put(&store, &p, kv(&[("a", Some("t"))], 100, 9, 0, true)).await; // 1
                                                                     // Committed, so the LSO (the clean limit) moves past it.
    let commit = batch::ControlMarker {
        commit: true,
        coordinator_epoch: 0,
    };
    put(&store, &p, batch::control_batch(9, 0, commit, 100)).await; // 2
    put(&store, &p, kv(&[("b", Some("p"))], 100, 7, 0, false)).await; // 3: producer 7's last
    put(
        &store,
        &p,
        kv(&[("a", Some("2")), ("b", Some("2"))], 100, -1, 0, false),
    )
    .await; // 4-5
    put(&store, &p, kv(&[("z", Some("1"))], 100, -1, 0, false)).await; // 6 (tail)
    let c = Cleaner::new(store.clone(), Arc::new(NoTxnIndex), 1 << 20);
    c.clean(&p, &cfg(), NOW).unwrap().unwrap();
    let got: Vec<i64> = dump(&store, &p, 0).iter().map(|r| r.0).collect();
    assert_eq!(got, vec![1, 2, 4, 5, 6]);
    let batches = store.read_replica(&p, 0, usize::MAX).unwrap();
    let hs: Vec<_> = batches
        .iter()
        .map(|b| batch::parse_header(b).unwrap())
        .collect();
    assert_eq!(hs[2].base_offset, 3);
    assert_eq!(
        (hs[2].record_count, hs[2].producer_id, hs[2].base_sequence),
        (0, 7, 0)
    );
    store.shutdown();
}

/// A producer silent for `producer.id.expiration.ms` is forgotten, and the
/// next pass drops the last batch that was kept (empty) for it; a producer
/// with a transaction open in the partition is kept whatever its age.
#[tokio::test]
async fn expired_producer_loses_its_kept_last_batch() {
    let store = LogStore::in_memory(policy()).unwrap();
    let p = leader(&store);
    put(&store, &p, kv(&[("b", Some("p"))], 100, 7, 0, false)).await; // 0: producer 7's last
    put(&store, &p, kv(&[("b", Some("2"))], 100, -1, 0, false)).await; // 1
    put(&store, &p, kv(&[("z", Some("1"))], 100, -1, 0, false)).await; // 2 (tail)
    let c = Cleaner::new(store.clone(), Arc::new(NoTxnIndex), 1 << 20);
    let bases = |store: &LogStore| -> Vec<(i64, i32)> {
        store
            .read_replica(&p, 0, usize::MAX)
            .unwrap()
            .iter()
            .map(|b| batch::parse_header(b).unwrap())
            .map(|h| (h.base_offset, h.record_count))
            .collect()
    };
    c.clean(&p, &cfg(), NOW).unwrap().unwrap();
    assert_eq!(bases(&store), vec![(0, 0), (1, 1), (2, 1)]);
    // Silent for 999 ms of a 1,000 ms expiration: kept.
    assert_eq!(store.expire_producers(&p, 100 + 999, 1_000), 0);
    assert_eq!(store.expire_producers(&p, 100 + 1_000, 1_000), 1);
    put(&store, &p, kv(&[("z", Some("2"))], 200, -1, 0, false)).await; // 3
    put(&store, &p, kv(&[("y", Some("1"))], 200, -1, 0, false)).await; // 4 (tail)
    c.clean(&p, &cfg(), NOW).unwrap().unwrap();
    assert_eq!(bases(&store), vec![(1, 1), (3, 1), (4, 1)]);
    // An open transaction keeps its producer, however old.
    put(&store, &p, kv(&[("t", Some("1"))], 100, 9, 0, true)).await; // 5, never ended
    assert_eq!(store.expire_producers(&p, NOW, 1), 0);
    store.shutdown();
}

/// An open transaction holds the clean limit (the LSO) below it: nothing
/// at or after its first offset is cleaned, whatever supersedes it.
#[tokio::test]
async fn open_transaction_bounds_cleaning() {
    let store = LogStore::in_memory(policy()).unwrap();
    let p = leader(&store);
    put(&store, &p, kv(&[("a", Some("1"))], 100, -1, 0, false)).await; // 0
    put(&store, &p, kv(&[("c", Some("t"))], 100, 9, 0, true)).await; // 1: open
    put(&store, &p, kv(&[("b", Some("1"))], 100, -1, 0, false)).await; // 2
    put(&store, &p, kv(&[("b", Some("2"))], 100, -1, 0, false)).await; // 3
    put(&store, &p, kv(&[("a", Some("2"))], 100, -1, 0, false)).await; // 4
    put(&store, &p, kv(&[("z", Some("1"))], 100, -1, 0, false)).await; // 5 (tail)
    assert_eq!(p.offsets().last_stable, 1);
    let c = Cleaner::new(store.clone(), Arc::new(NoTxnIndex), 1 << 20);
    let _ = c.clean(&p, &cfg(), NOW).unwrap();
    let got: Vec<i64> = dump(&store, &p, 0).iter().map(|r| r.0).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
    store.shutdown();
}

/// A follower fetching a compacted leader's log from 0 takes the gaps.
#[tokio::test]
async fn follower_copies_compacted_log() {
    let store = LogStore::in_memory(policy()).unwrap();
    let p = leader(&store);
    for i in 0..6 {
        put(
            &store,
            &p,
            kv(&[("k", Some(i.to_string().as_str()))], 100, -1, 0, false),
        )
        .await;
    }
    Cleaner::new(store.clone(), Arc::new(NoTxnIndex), 1 << 20)
        .clean(&p, &cfg(), NOW)
        .unwrap()
        .unwrap();
    let fstore = LogStore::in_memory(policy()).unwrap();
    let f = fstore.ensure("t", 0).unwrap();
    f.become_follower(2, 0);
    let mut next = 0;
    loop {
        let got = store
            .read_for_fetch(&p, next, 1 << 20, true, Upto::LogEnd)
            .unwrap();
        if got.is_empty() {
            break;
        }
        let bs = batch::split_batches(&got).unwrap();
        next = bs
            .last()
            .map(|(h, _)| h.base_offset + h.last_offset_delta as i64 + 1)
            .unwrap();
        fstore
            .append_replica(&f, bs)
            .unwrap()
            .unwrap()
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(f.offsets().log_end, 6);
    assert_eq!(dump(&fstore, &f, 0), dump(&store, &p, 0));
    assert_eq!(dump(&fstore, &f, 0).len(), 1);
    store.shutdown();
    fstore.shutdown();
}

/// RocksDB under a store whose rewrites fail after the first: the pass
/// stops half done (as a kill -9 would leave it); reopened, every batch is
/// whole, offsets only rise and the latest value of each key is there.
struct FailAfter {
    inner: RocksStore,
    rewrites_left: AtomicUsize,
}

impl PartitionStore for FailAfter {
    fn registered(&self) -> Result<Vec<Registered>, LogError> {
        self.inner.registered()
    }
    fn log_start(&self, id: u32) -> Result<Option<i64>, LogError> {
        self.inner.log_start(id)
    }
    fn epochs(&self, id: u32) -> Result<Vec<(i32, i64)>, LogError> {
        self.inner.epochs(id)
    }
    fn scan(&self, id: u32, from: i64, to: i64, visit: Visit<'_>) -> Result<(), LogError> {
        self.inner.scan(id, from, to, visit)
    }
    fn register(&self, topic: &str, index: i32, id: u32) -> Result<(), LogError> {
        self.inner.register(topic, index, id)
    }
    fn hw_checkpoint(&self, id: u32) -> Result<Option<i64>, LogError> {
        self.inner.hw_checkpoint(id)
    }
    fn put_hw_checkpoints(&self, hws: &[(u32, i64)]) -> Result<(), LogError> {
        self.inner.put_hw_checkpoints(hws)
    }
    fn put_epoch(&self, id: u32, epoch: i32, offset: i64) -> Result<(), LogError> {
        self.inner.put_epoch(id, epoch, offset)
    }
    fn remove(&self, topic: &str, index: i32, id: u32) -> Result<(), LogError> {
        self.inner.remove(topic, index, id)
    }
    fn truncate(&self, id: u32, end: i64, epochs: &[i32]) -> Result<(), LogError> {
        self.inner.truncate(id, end, epochs)
    }
    fn reset(&self, id: u32, start: i64) -> Result<(), LogError> {
        self.inner.reset(id, start)
    }
    fn advance_start(&self, id: u32, start: i64) -> Result<(), LogError> {
        self.inner.advance_start(id, start)
    }
    fn append(&self, batches: &[(u32, i64, &Bytes)], sync: bool) -> Result<(), String> {
        self.inner.append(batches, sync)
    }
    fn rewrite(&self, id: u32, puts: &[(i64, Bytes)], deletes: &[i64]) -> Result<(), LogError> {
        if self.rewrites_left.fetch_sub(1, Ordering::SeqCst) == 0 {
            return Err(LogError::Meta("injected crash".into()));
        }
        self.inner.rewrite(id, puts, deletes)
    }
    fn compact(&self, id: u32) {
        self.inner.compact(id)
    }
    fn flush(&self) -> Result<(), LogError> {
        self.inner.flush()
    }
    fn aborted(&self, id: u32) -> Result<Vec<AbortedTxn>, LogError> {
        self.inner.aborted(id)
    }
    fn put_aborted(&self, id: u32, a: &AbortedTxn) -> Result<(), LogError> {
        self.inner.put_aborted(id, a)
    }
    fn drop_aborted(&self, id: u32, from: i64, to: i64) -> Result<(), LogError> {
        self.inner.drop_aborted(id, from, to)
    }
}

#[tokio::test]
async fn crash_mid_clean_leaves_a_readable_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut latest = std::collections::BTreeMap::new();
    {
        let db = Arc::new(FailAfter {
            inner: RocksStore::open(dir.path()).unwrap(),
            rewrites_left: AtomicUsize::new(1),
        });
        let store = LogStore::with_store(db, policy()).unwrap();
        let p = leader(&store);
        for i in 0..400 {
            let k = format!("k{}", i % 10);
            let v = format!("v{i}");
            latest.insert(k.clone(), (i as i64, v.clone()));
            put(&store, &p, kv(&[(&k, Some(&v))], 100, -1, 0, false)).await;
        }
        store.checkpoint_hw(&mut Default::default());
        let c = Cleaner::new(store.clone(), Arc::new(NoTxnIndex), 1 << 20);
        assert!(c.clean(&p, &cfg(), NOW).is_err(), "the second swap fails");
        // Partly cleaned and still consistent in memory.
        let mid = dump(&store, &p, 0);
        assert!(mid.len() < 400 && mid.len() > 10, "{}", mid.len());
        // The pass is abandoned half way, as a kill -9 would leave it; only
        // the writer thread is stopped so the directory can be reopened.
        drop(c);
        store.shutdown();
    }
    let store = LogStore::open(dir.path(), policy()).unwrap();
    let p = store.get("t", 0).unwrap();
    p.become_leader(1, 1, &[1]);
    assert_eq!(p.offsets().log_end, 400);
    let all = dump(&store, &p, 0);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    for (k, (o, v)) in &latest {
        assert!(all.contains(&(*o, k.clone(), Some(v.clone()))), "{k} lost");
    }
    // A fresh cleaner finishes the job after the restart.
    let c = Cleaner::new(store.clone(), Arc::new(NoTxnIndex), 1 << 20);
    c.clean(&p, &cfg(), NOW).unwrap().unwrap();
    let all = dump(&store, &p, 0);
    assert_eq!(all.len(), 10);
    for (k, (o, v)) in &latest {
        assert!(all.contains(&(*o, k.clone(), Some(v.clone()))), "{k} lost");
    }
    store.shutdown();
}

fn marker(pid: i64, commit: bool) -> Bytes {
    let m = batch::ControlMarker {
        commit,
        coordinator_epoch: 0,
    };
    batch::control_batch(pid, 0, m, 100)
}

/// With the partition's aborted index: records of aborted transactions go
/// (keys or not), committed transactional records supersede and are
/// superseded like plain ones, markers stay (until their horizon) and the
/// aborted index with them.
#[tokio::test]
async fn aborted_records_dropped_committed_compacted_markers_kept() {
    let store = LogStore::in_memory(policy()).unwrap();
    let p = leader(&store);
    put(&store, &p, kv(&[("a", Some("1"))], 100, -1, 0, false)).await; // 0
    put(&store, &p, kv(&[("a", Some("t"))], 100, 9, 0, true)).await; // 1: committed
    put(&store, &p, marker(9, true)).await; // 2: COMMIT
    put(&store, &p, kv(&[("b", Some("x"))], 100, 8, 0, true)).await; // 3: aborted
    put(&store, &p, kv(&[("b", Some("1"))], 100, -1, 0, false)).await; // 4
    put(&store, &p, kv(&[("c", Some("y"))], 100, 8, 1, true)).await; // 5: aborted
    put(&store, &p, marker(8, false)).await; // 6: ABORT
    put(&store, &p, kv(&[("d", Some("u"))], 100, 9, 1, true)).await; // 7: committed
    put(&store, &p, marker(9, true)).await; // 8: COMMIT
    put(&store, &p, kv(&[("z", Some("1"))], 100, -1, 0, false)).await; // 9 (tail)
    assert_eq!(p.offsets().last_stable, 10);
    let idx = AbortedIndex;
    use super::cleaner::TxnView;
    assert_eq!(idx.aborted(&p, 8, 3), Some(true));
    assert_eq!(idx.aborted(&p, 9, 1), Some(false));
    assert_eq!(idx.aborted(&p, 9, 3), Some(false));
    let c = Cleaner::new(store.clone(), Arc::new(AbortedIndex), 1 << 20);
    let st = c.clean(&p, &cfg(), NOW).unwrap().unwrap();
    assert_eq!(st.records_removed, 3);
    let got: Vec<i64> = dump(&store, &p, 0).iter().map(|r| r.0).collect();
    assert_eq!(got, vec![1, 2, 4, 6, 7, 8, 9]);
    // The aborted transaction is still indexed for read_committed fetches.
    assert_eq!(
        p.aborted_ranges(0, 10),
        vec![AbortedTxn {
            producer_id: 8,
            first_offset: 3,
            last_offset: 6
        }]
    );
    // A later plain record supersedes a committed transactional one.
    put(&store, &p, kv(&[("a", Some("2"))], 100, -1, 0, false)).await; // 10
    put(&store, &p, kv(&[("z", Some("2"))], 100, -1, 0, false)).await; // 11 (tail)
    c.clean(&p, &cfg(), NOW + 1).unwrap().unwrap();
    let got: Vec<i64> = dump(&store, &p, 0).iter().map(|r| r.0).collect();
    assert_eq!(got, vec![2, 4, 6, 7, 8, 10, 11]);
    // Batches of both producers stay in offset order, transactional flags kept.
    for b in store.read_replica(&p, 0, usize::MAX).unwrap() {
        let h = batch::parse_header(&b).unwrap();
        batch::check_crc(&b, &h).unwrap();
        if [1, 3, 5, 7].contains(&h.base_offset) {
            assert!(h.is_transactional(), "{}", h.base_offset);
        }
    }
    store.shutdown();
}

/// An open transaction: the index answers nothing at or past the LSO, and
/// nothing from the transaction's first offset on is cleaned.
#[tokio::test]
async fn open_transaction_bounds_cleaning_with_aborted_index() {
    let store = LogStore::in_memory(policy()).unwrap();
    let p = leader(&store);
    put(&store, &p, kv(&[("a", Some("1"))], 100, -1, 0, false)).await; // 0
    put(&store, &p, kv(&[("a", Some("t"))], 100, 9, 0, true)).await; // 1: open
    put(&store, &p, kv(&[("a", Some("2"))], 100, -1, 0, false)).await; // 2
    put(&store, &p, kv(&[("a", Some("3"))], 100, -1, 0, false)).await; // 3
    put(&store, &p, kv(&[("z", Some("1"))], 100, -1, 0, false)).await; // 4 (tail)
    assert_eq!(p.offsets().last_stable, 1);
    use super::cleaner::TxnView;
    assert_eq!(AbortedIndex.aborted(&p, 9, 1), None);
    let c = Cleaner::new(store.clone(), Arc::new(AbortedIndex), 1 << 20);
    let _ = c.clean(&p, &cfg(), NOW).unwrap();
    let got: Vec<i64> = dump(&store, &p, 0).iter().map(|r| r.0).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    // Aborted: the transaction's record goes, a supersedes up to 3.
    put(&store, &p, marker(9, false)).await; // 5
    put(&store, &p, kv(&[("z", Some("2"))], 100, -1, 0, false)).await; // 6 (tail)
    c.clean(&p, &cfg(), NOW + 1).unwrap().unwrap();
    let got: Vec<i64> = dump(&store, &p, 0).iter().map(|r| r.0).collect();
    assert_eq!(got, vec![3, 5, 6]);
    store.shutdown();
}

/// What a read_committed consumer reads from offset 0, by Kafka's consumer
/// rule: the fetch's aborted list puts a producer's transactional batches
/// in a skip set from the first offset of its aborted transaction until an
/// ABORT marker of that producer; control batches are never delivered.
/// Returns the records and the offset the consumer reaches.
fn committed_view(store: &LogStore, p: &Partition) -> (Vec<(i64, String, Option<String>)>, i64) {
    let mut pending = p.aborted_ranges(0, p.offsets().last_stable);
    pending.sort_by_key(|a| a.first_offset);
    let mut pending = pending.into_iter().peekable();
    let mut skip = std::collections::HashSet::new();
    let (mut out, mut pos) = (Vec::new(), 0);
    loop {
        let got = store
            .read_for_fetch(p, pos, 1 << 20, true, Upto::LastStable)
            .unwrap();
        if got.is_empty() {
            return (out, pos);
        }
        for (h, b) in batch::split_batches(&got).unwrap() {
            let last = h.base_offset + h.last_offset_delta as i64;
            pos = last + 1;
            while let Some(a) = pending.next_if(|a| a.first_offset <= last) {
                skip.insert(a.producer_id);
            }
            if h.is_control() {
                if batch::control_marker(&b, &h).is_some_and(|m| !m.commit) {
                    skip.remove(&h.producer_id);
                }
                continue;
            }
            if h.is_transactional() && skip.contains(&h.producer_id) {
                continue;
            }
            let set = RecordBatchDecoder::decode(&mut b.clone()).unwrap();
            for r in set.records {
                let s = |x: Option<Bytes>| x.map(|v| String::from_utf8_lossy(&v).into_owned());
                out.push((r.offset, s(r.key).unwrap_or_default(), s(r.value)));
            }
        }
    }
}

/// Base offsets of the control batches (markers) in the log.
fn marker_offsets(store: &LogStore, p: &Partition) -> Vec<i64> {
    store
        .read_replica(p, 0, usize::MAX)
        .unwrap()
        .iter()
        .map(|b| batch::parse_header(b).unwrap())
        .filter(|h| h.is_control())
        .map(|h| h.base_offset)
        .collect()
}

/// Markers go as in Kafka's cleaner: kept while a batch of their
/// transaction is in the log, then kept `delete.retention.ms` more, then
/// removed, an ABORT marker with its aborted-index entry (also on disk: a
/// reopened log neither restores the entry nor reopens the transaction).
/// Survivors keep their offsets and read_committed reads the same records
/// to the same end throughout.
async fn markers_removed_after_their_data_and_horizon(store: Arc<LogStore>) -> Arc<Partition> {
    let p = leader(&store);
    put(&store, &p, kv(&[("a", Some("1"))], 100, -1, 0, false)).await; // 0
    put(&store, &p, kv(&[("b", Some("x"))], 100, 8, 0, true)).await; // 1: aborted
    put(&store, &p, marker(8, false)).await; // 2: ABORT
    put(&store, &p, kv(&[("a", Some("t"))], 100, 9, 0, true)).await; // 3: committed
    put(&store, &p, marker(9, true)).await; // 4: COMMIT
    put(&store, &p, kv(&[("a", Some("2"))], 100, -1, 0, false)).await; // 5
    put(&store, &p, kv(&[("d", Some("y"))], 100, 8, 1, true)).await; // 6: committed, latest d
    put(&store, &p, marker(8, true)).await; // 7: COMMIT
    put(&store, &p, kv(&[("c", Some("u"))], 100, 9, 1, true)).await; // 8: committed
    put(&store, &p, marker(9, true)).await; // 9: COMMIT
    put(&store, &p, kv(&[("z", Some("1"))], 100, -1, 0, false)).await; // 10 (tail)
    let lso = p.offsets().last_stable;
    assert_eq!(lso, 11);
    let view = committed_view(&store, &p);
    let s = |o: i64, k: &str, v: &str| (o, k.to_string(), Some(v.to_string()));
    let latest = vec![
        s(5, "a", "2"),
        s(6, "d", "y"),
        s(8, "c", "u"),
        s(10, "z", "1"),
    ];
    assert_eq!(view.1, 11);
    let c = Cleaner::new(store.clone(), Arc::new(AbortedIndex), 1 << 20);
    // Pass 1 removes the aborted record and the superseded committed one;
    // their markers stay: the pass itself read their transactions' batches.
    let st = c.clean(&p, &cfg(), NOW).unwrap().unwrap();
    assert_eq!((st.records_removed, st.markers_removed), (3, 0));
    assert_eq!(marker_offsets(&store, &p), vec![2, 4, 7, 9]);
    let markers = marker_offsets(&store, &p);
    let data: Vec<_> = dump(&store, &p, 0)
        .into_iter()
        .filter(|r| !markers.contains(&r.0))
        .collect();
    assert_eq!(data, latest);
    assert_eq!(p.aborted_ranges(0, 11).len(), 1);
    assert_eq!(committed_view(&store, &p), (latest.clone(), 11));
    // Within delete.retention.ms of that, nothing more goes.
    assert!(c.clean(&p, &cfg(), NOW + 999).unwrap().is_none());
    assert_eq!(marker_offsets(&store, &p), vec![2, 4, 7, 9]);
    // After it: the two markers whose transactions have nothing left go,
    // the ABORT's index entry with it; 7 and 9 end transactions whose
    // records are still there.
    let st = c.clean(&p, &cfg(), NOW + 1_000).unwrap().unwrap();
    assert_eq!((st.markers_removed, st.batches_deleted), (2, 2));
    assert_eq!(st.records_removed, 0);
    assert_eq!(marker_offsets(&store, &p), vec![7, 9]);
    assert_eq!(p.aborted_ranges(0, 11), vec![]);
    assert_eq!(p.offsets().last_stable, lso);
    assert_eq!(committed_view(&store, &p), (latest.clone(), 11));
    // Markers whose transaction still has records stay for good.
    assert!(c.clean(&p, &cfg(), NOW + 100_000).unwrap().is_none());
    assert_eq!(marker_offsets(&store, &p), vec![7, 9]);
    // c supersedes producer 9's last data batch: emptied, it stays (the
    // producer's sequence), so its marker stays too (a replay would reopen
    // the transaction at the empty batch without it).
    put(&store, &p, kv(&[("c", Some("2"))], 100, -1, 0, false)).await; // 11
    put(&store, &p, kv(&[("z", Some("2"))], 100, -1, 0, false)).await; // 12 (tail)
    c.clean(&p, &cfg(), NOW + 100_001).unwrap().unwrap();
    assert!(c.clean(&p, &cfg(), NOW + 200_000).unwrap().is_none());
    assert_eq!(marker_offsets(&store, &p), vec![7, 9]);
    let (recs, end) = committed_view(&store, &p);
    assert_eq!(end, 13);
    let offsets: Vec<i64> = recs.iter().map(|r| r.0).collect();
    assert_eq!(offsets, vec![5, 6, 11, 12]);
    // Producer 9 writes again: the empty batch goes, and its marker after
    // the horizon.
    put(&store, &p, kv(&[("e", Some("v"))], 100, 9, 2, true)).await; // 13
    put(&store, &p, marker(9, true)).await; // 14: COMMIT
    put(&store, &p, kv(&[("z", Some("3"))], 100, -1, 0, false)).await; // 15 (tail)
    let st = c.clean(&p, &cfg(), NOW + 200_001).unwrap().unwrap();
    assert_eq!((st.batches_deleted, st.markers_removed), (2, 0));
    assert_eq!(marker_offsets(&store, &p), vec![7, 9, 14]);
    let st = c.clean(&p, &cfg(), NOW + 201_001).unwrap().unwrap();
    assert_eq!(st.markers_removed, 1);
    assert_eq!(marker_offsets(&store, &p), vec![7, 14]);
    let (recs, end) = committed_view(&store, &p);
    assert_eq!(end, 16);
    let offsets: Vec<i64> = recs.iter().map(|r| r.0).collect();
    assert_eq!(offsets, vec![5, 6, 11, 13, 15]);
    assert_eq!(p.offsets().last_stable, 16);
    p
}

#[tokio::test]
async fn markers_removed_after_their_data_and_horizon_in_memory() {
    let store = LogStore::in_memory(policy()).unwrap();
    markers_removed_after_their_data_and_horizon(store.clone()).await;
    store.shutdown();
}

#[tokio::test]
async fn markers_removed_after_their_data_and_horizon_on_rocksdb_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path(), policy()).unwrap();
        markers_removed_after_their_data_and_horizon(store.clone()).await;
        store.checkpoint_hw(&mut Default::default());
        store.shutdown();
    }
    let store = LogStore::open(dir.path(), policy()).unwrap();
    let p = store.get("t", 0).unwrap();
    p.become_leader(1, 1, &[1]);
    // The dropped entry is not restored from disk, and no transaction is
    // open again: read_committed reads to the end.
    assert_eq!(p.aborted_ranges(0, i64::MAX), vec![]);
    assert_eq!(p.offsets().last_stable, 16);
    let (recs, end) = committed_view(&store, &p);
    assert_eq!(end, 16);
    assert_eq!(recs.len(), 5);
    assert_eq!(marker_offsets(&store, &p), vec![7, 14]);
    store.shutdown();
}

/// A committed transaction whose records were all superseded loses its
/// marker after the horizon (the producer wrote again since); the marker
/// that alone holds a producer's bumped epoch, and the log's last batch,
/// stay; with no aborted index (NoTxnIndex) no transaction's records go, so
/// no marker goes.
#[tokio::test]
async fn superseded_commit_loses_its_marker_epoch_and_last_markers_stay() {
    let store = LogStore::in_memory(policy()).unwrap();
    let p = leader(&store);
    put(&store, &p, kv(&[("a", Some("t"))], 100, 9, 0, true)).await; // 0: committed
    put(&store, &p, marker(9, true)).await; // 1: COMMIT
    put(&store, &p, kv(&[("b", Some("t"))], 100, 7, 0, true)).await; // 2: pid 7, epoch 0
    let bumped = batch::ControlMarker {
        commit: false,
        coordinator_epoch: 0,
    };
    put(&store, &p, batch::control_batch(7, 1, bumped, 100)).await; // 3: ABORT, epoch 1
    put(&store, &p, kv(&[("a", Some("2"))], 100, -1, 0, false)).await; // 4
    put(&store, &p, kv(&[("c", Some("t"))], 100, 9, 1, true)).await; // 5: pid 9 again
    put(&store, &p, marker(9, true)).await; // 6: COMMIT (the log's last batch)
    assert_eq!(p.offsets().last_stable, 7);
    let k = cfg();
    let untouched = Cleaner::new(store.clone(), Arc::new(NoTxnIndex), 1 << 20);
    untouched.clean(&p, &k, NOW).unwrap();
    untouched.clean(&p, &k, NOW + 10_000).unwrap();
    assert_eq!(marker_offsets(&store, &p), vec![1, 3, 6]);
    let c = Cleaner::new(store.clone(), Arc::new(AbortedIndex), 1 << 20);
    c.clean(&p, &k, NOW).unwrap().unwrap();
    assert_eq!(marker_offsets(&store, &p), vec![1, 3, 6]);
    // What read_committed reads once the records are cleaned, markers kept.
    let before = committed_view(&store, &p);
    assert_eq!(before.0.iter().map(|r| r.0).collect::<Vec<_>>(), vec![4, 5]);
    let st = c.clean(&p, &k, NOW + 1_000).unwrap().unwrap();
    assert_eq!(st.markers_removed, 1);
    // 1 goes; 3 holds producer 7's epoch 1 (its data at epoch 0 is gone),
    // 6 is the log's last batch.
    assert_eq!(marker_offsets(&store, &p), vec![3, 6]);
    assert!(c.clean(&p, &k, NOW + 100_000).unwrap().is_none());
    assert_eq!(marker_offsets(&store, &p), vec![3, 6]);
    assert_eq!(committed_view(&store, &p), before);
    assert_eq!(before.1, 7);
    // The bumped epoch still fences the producer's older epoch.
    let stale = kv(&[("q", Some("1"))], 100, 7, 1, true);
    assert!(matches!(
        store.append(&p, batch::split_batches(&stale).unwrap(), 0),
        Err(LogError::InvalidProducerEpoch)
    ));
    store.shutdown();
}
