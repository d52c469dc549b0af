//! The in-memory `PartitionStore`: the RocksDB store's twin for unit tests
//! (the log and the API handlers run against it in milliseconds, with no
//! files). Same semantics, nothing survives the process.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use parking_lot::Mutex;

use super::error::LogError;
use super::partition_store::{PartitionStore, Registered, Visit};
use super::txn::AbortedTxn;

#[derive(Default)]
struct Mem {
    registry: BTreeMap<(String, i32), u32>,
    starts: HashMap<u32, i64>,
    hws: HashMap<u32, i64>,
    epochs: HashMap<u32, BTreeMap<i32, i64>>,
    batches: HashMap<u32, BTreeMap<i64, Bytes>>,
    aborted: HashMap<u32, BTreeMap<i64, AbortedTxn>>,
}

/// Partition logs kept in memory.
#[derive(Default)]
pub struct MemStore {
    m: Mutex<Mem>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }
}

impl PartitionStore for MemStore {
    fn registered(&self) -> Result<Vec<Registered>, LogError> {
        Ok(self
            .m
            .lock()
            .registry
            .iter()
            .map(|((topic, index), id)| Registered {
                topic: topic.clone(),
                index: *index,
                id: *id,
            })
            .collect())
    }

    fn log_start(&self, id: u32) -> Result<Option<i64>, LogError> {
        Ok(self.m.lock().starts.get(&id).copied())
    }

    fn epochs(&self, id: u32) -> Result<Vec<(i32, i64)>, LogError> {
        Ok(self
            .m
            .lock()
            .epochs
            .get(&id)
            .map(|e| e.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default())
    }

    fn scan(&self, id: u32, from: i64, to: i64, visit: Visit<'_>) -> Result<(), LogError> {
        let found: Vec<Bytes> = self
            .m
            .lock()
            .batches
            .get(&id)
            .map(|b| b.range(from..to).map(|(_, v)| v.clone()).collect())
            .unwrap_or_default();
        for v in found {
            if !visit(&v)? {
                break;
            }
        }
        Ok(())
    }

    fn register(&self, topic: &str, index: i32, id: u32) -> Result<(), LogError> {
        self.m
            .lock()
            .registry
            .insert((topic.to_string(), index), id);
        Ok(())
    }

    fn hw_checkpoint(&self, id: u32) -> Result<Option<i64>, LogError> {
        Ok(self.m.lock().hws.get(&id).copied())
    }

    fn put_hw_checkpoints(&self, hws: &[(u32, i64)]) -> Result<(), LogError> {
        self.m.lock().hws.extend(hws.iter().copied());
        Ok(())
    }

    fn put_epoch(&self, id: u32, epoch: i32, offset: i64) -> Result<(), LogError> {
        self.m
            .lock()
            .epochs
            .entry(id)
            .or_default()
            .insert(epoch, offset);
        Ok(())
    }

    fn remove(&self, topic: &str, index: i32, id: u32) -> Result<(), LogError> {
        let mut m = self.m.lock();
        m.registry.remove(&(topic.to_string(), index));
        m.starts.remove(&id);
        m.hws.remove(&id);
        m.epochs.remove(&id);
        m.batches.remove(&id);
        Ok(())
    }

    fn truncate(&self, id: u32, end: i64, epochs: &[i32]) -> Result<(), LogError> {
        let mut m = self.m.lock();
        if let Some(b) = m.batches.get_mut(&id) {
            b.split_off(&end);
        }
        if let Some(e) = m.epochs.get_mut(&id) {
            for x in epochs {
                e.remove(x);
            }
        }
        Ok(())
    }

    fn reset(&self, id: u32, start: i64) -> Result<(), LogError> {
        let mut m = self.m.lock();
        m.starts.insert(id, start);
        m.batches.remove(&id);
        Ok(())
    }

    fn advance_start(&self, id: u32, start: i64) -> Result<(), LogError> {
        let mut m = self.m.lock();
        m.starts.insert(id, start);
        if let Some(b) = m.batches.get_mut(&id) {
            *b = b.split_off(&start);
        }
        Ok(())
    }

    fn append(&self, batches: &[(u32, i64, &Bytes)], _sync: bool) -> Result<(), String> {
        let mut m = self.m.lock();
        for (id, base, data) in batches {
            m.batches
                .entry(*id)
                .or_default()
                .insert(*base, (*data).clone());
        }
        Ok(())
    }

    fn compact(&self, _id: u32) {}

    fn flush(&self) -> Result<(), LogError> {
        Ok(())
    }

    fn aborted(&self, id: u32) -> Result<Vec<AbortedTxn>, LogError> {
        Ok(self
            .m
            .lock()
            .aborted
            .get(&id)
            .map(|a| a.values().copied().collect())
            .unwrap_or_default())
    }

    fn put_aborted(&self, id: u32, a: &AbortedTxn) -> Result<(), LogError> {
        self.m
            .lock()
            .aborted
            .entry(id)
            .or_default()
            .insert(a.last_offset, *a);
        Ok(())
    }

    fn drop_aborted(&self, id: u32, from: i64, to: i64) -> Result<(), LogError> {
        if let Some(a) = self.m.lock().aborted.get_mut(&id) {
            a.retain(|last, _| !(from..to).contains(last));
        }
        Ok(())
    }
}
