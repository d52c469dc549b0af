//! Tests of the log's transaction state through `LogStore` on RocksDB: the
//! aborted index and open transactions survive a restart (and a marker lost
//! in a crash leaves no phantom entry), a follower replicating the leader's
//! batches ends with the leader's state and undoes it on truncation, and
//! retention prunes the index.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use fjord_kafka::batch::{self, ControlMarker};
use fjord_kafka::testing::{make_batch, make_txn_batch};

use super::partition_store::PartitionStore;
use super::rocks::RocksStore;
use super::txn::AbortedTxn;
use super::{FlushPolicy, LogStore, Partition};

fn policy() -> FlushPolicy {
    FlushPolicy {
        interval_messages: i64::MAX,
        interval: None,
    }
}

async fn append(store: &LogStore, p: &Arc<Partition>, b: Bytes) -> i64 {
    let v = batch::split_batches(&b).unwrap();
    let a = store.append(p, v, 0).unwrap();
    a.done.await.unwrap().unwrap();
    a.base_offset
}

fn marker(pid: i64, commit: bool) -> Bytes {
    let m = ControlMarker {
        commit,
        coordinator_epoch: 0,
    };
    batch::control_batch(pid, 0, m, 1)
}

/// 0-1 txn of pid 1, ABORT at 2, 3 txn of pid 2 (open), 4 plain.
async fn scenario(store: &LogStore, p: &Arc<Partition>) {
    assert_eq!(append(store, p, make_txn_batch(2, 1, 1, 0, 0)).await, 0);
    assert_eq!(append(store, p, marker(1, false)).await, 2);
    assert_eq!(append(store, p, make_txn_batch(1, 1, 2, 0, 0)).await, 3);
    assert_eq!(append(store, p, make_batch(1, 1, -1, -1)).await, 4);
}

const ABORT_1: AbortedTxn = AbortedTxn {
    producer_id: 1,
    first_offset: 0,
    last_offset: 2,
};

#[tokio::test]
async fn restart_keeps_the_aborted_index_and_open_transactions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path(), policy()).unwrap();
        let p = store.ensure("t", 0).unwrap();
        p.become_leader(1, 0, &[1]);
        scenario(&store, &p).await;
        assert_eq!(p.offsets().last_stable, 3);
        assert_eq!(p.aborted_ranges(0, 5), vec![ABORT_1]);
        store.shutdown();
    }
    let id;
    {
        let store = LogStore::open(dir.path(), policy()).unwrap();
        let p = store.get("t", 0).unwrap();
        id = p.id;
        p.become_leader(1, 1, &[1]);
        assert_eq!(p.offsets().last_stable, 3);
        assert_eq!(p.open_transaction(2), Some(3));
        assert_eq!(p.aborted_ranges(0, 5), vec![ABORT_1]);
        // Producer 2 commits after the restart: all stable.
        assert_eq!(append(&store, &p, marker(2, true)).await, 5);
        assert_eq!(p.offsets().last_stable, 6);
        store.shutdown();
    }
    // Persisted: the entry is in the meta column family; a phantom entry
    // past the log end (its marker lost in a crash) is dropped on open.
    {
        let db = RocksStore::open(dir.path()).unwrap();
        assert_eq!(db.aborted(id).unwrap(), vec![ABORT_1]);
        let phantom = AbortedTxn {
            producer_id: 7,
            first_offset: 3,
            last_offset: 6,
        };
        db.put_aborted(id, &phantom).unwrap();
    }
    let store = LogStore::open(dir.path(), policy()).unwrap();
    let p = store.get("t", 0).unwrap();
    p.become_leader(1, 2, &[1]);
    assert_eq!(p.aborted_ranges(0, i64::MAX), vec![ABORT_1]);
    assert_eq!(p.offsets().last_stable, 6);
    store.shutdown();
    drop(store);
    let db = RocksStore::open(dir.path()).unwrap();
    assert_eq!(db.aborted(id).unwrap(), vec![ABORT_1]);
}

#[tokio::test]
async fn a_follower_holds_the_leaders_state_and_undoes_it_on_truncation() {
    let leader = LogStore::in_memory(policy()).unwrap();
    let lp = leader.ensure("t", 0).unwrap();
    lp.become_leader(1, 0, &[1]);
    scenario(&leader, &lp).await;
    let follower = LogStore::in_memory(policy()).unwrap();
    let fp = follower.ensure("t", 0).unwrap();
    fp.become_follower(2, 0);
    let mut all = BytesMut::new();
    for b in leader.read_replica(&lp, 0, 1 << 20).unwrap() {
        all.extend_from_slice(&b);
    }
    let batches = batch::split_batches(&all.freeze()).unwrap();
    let done = follower.append_replica(&fp, batches).unwrap().unwrap();
    done.await.unwrap().unwrap();
    fp.set_follower_hw(lp.offsets().high_watermark);
    assert_eq!(fp.offsets(), lp.offsets());
    assert_eq!(fp.aborted_ranges(0, 5), lp.aborted_ranges(0, 5));
    assert_eq!(fp.open_transaction(2), Some(3));
    // Cut back to the marker (a new leader never had it): pid 1's
    // transaction is open again and its abort forgotten.
    fp.set_follower_hw(0);
    follower.barrier().await.unwrap();
    assert_eq!(follower.truncate(&fp, 2).unwrap(), 2);
    assert_eq!(fp.aborted_ranges(0, 5), vec![]);
    assert_eq!(fp.open_transaction(1), Some(0));
    assert_eq!(fp.open_transaction(2), None);
    // Leading now, it takes the new COMMIT of pid 1.
    fp.become_leader(2, 1, &[2]);
    assert_eq!(fp.offsets().last_stable, 0);
    assert_eq!(append(&follower, &fp, marker(1, true)).await, 2);
    assert_eq!(fp.offsets().last_stable, 3);
    assert_eq!(fp.aborted_ranges(0, 5), vec![]);
    // A truncation below markers the HW already passed rebuilds from the log.
    fp.become_follower(2, 2);
    follower.barrier().await.unwrap();
    assert_eq!(follower.truncate(&fp, 2).unwrap(), 2);
    assert_eq!(fp.open_transaction(1), Some(0));
    leader.shutdown();
    follower.shutdown();
}

#[tokio::test]
async fn retention_prunes_the_aborted_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), policy()).unwrap();
    let p = store.ensure("t", 0).unwrap();
    p.become_leader(1, 0, &[1]);
    scenario(&store, &p).await;
    // Keep the last two batches' bytes: the log starts at 3, past the abort.
    let keep = (p.size_bytes() - 77 - 78) as i64;
    assert_eq!(store.apply_retention(&p, 10, -1, keep).unwrap(), Some(3));
    assert_eq!(p.aborted_ranges(0, i64::MAX), vec![]);
    assert_eq!(p.offsets().last_stable, 3, "pid 2 still open at 3");
    let id = p.id;
    store.shutdown();
    drop((store, p));
    let db = RocksStore::open(dir.path()).unwrap();
    assert_eq!(db.aborted(id).unwrap(), vec![]);
}
