//! State stores: a small key-value backend trait with RocksDB and in-memory twins, and the
//! write cache in front of it. Writes stay in the cache until the task commits; then they
//! go to the changelog topic and, once the commit succeeded, into the backend. So the
//! backend only ever holds committed state, and a checkpoint written after it is valid.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::{Error, Result};
use crate::topology::StoreSpec;

/// The storage under a store. Keys and values are bytes.
pub(crate) trait KvBackend: Send {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Applies puts (Some) and deletes (None) atomically.
    fn write(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()>;
    /// Deletes keys in [from, to).
    fn delete_range(&mut self, from: &[u8], to: &[u8]) -> Result<()>;
    fn entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
}

/// The in-memory twin (the test driver's stores).
#[derive(Default)]
pub(crate) struct MemKv(BTreeMap<Vec<u8>, Vec<u8>>);

impl KvBackend for MemKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(key).cloned())
    }
    fn write(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        for (k, v) in batch {
            match v {
                Some(v) => self.0.insert(k.clone(), v.clone()),
                None => self.0.remove(k),
            };
        }
        Ok(())
    }
    fn delete_range(&mut self, from: &[u8], to: &[u8]) -> Result<()> {
        let doomed: Vec<Vec<u8>> = self
            .0
            .range(from.to_vec()..to.to_vec())
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.0.remove(&k);
        }
        Ok(())
    }
    fn entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

/// A RocksDB database per store and task: `<state.dir>/<application.id>/<task>/<store>/`.
pub(crate) struct RocksKv {
    db: rocksdb::DB,
    name: String,
}

impl RocksKv {
    pub(crate) fn open(path: &Path, name: &str) -> Result<Self> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        // The WAL is kept but not fsynced: a killed process loses nothing the checkpoint
        // claims (the OS has the WAL); a lost machine restores from the changelog anyway
        // only if the checkpoint is gone, so state.dir should not outlive its disk.
        let db = rocksdb::DB::open(&opts, path).map_err(|e| store_err(name, e))?;
        Ok(RocksKv {
            db,
            name: name.to_string(),
        })
    }

    pub(crate) fn destroy(path: &Path) -> Result<()> {
        if path.exists() {
            std::fs::remove_dir_all(path).map_err(|e| Error::Io {
                path: path.display().to_string(),
                source: e,
            })?;
        }
        Ok(())
    }
}

fn store_err(name: &str, e: rocksdb::Error) -> Error {
    Error::Store {
        store: name.to_string(),
        source: e,
    }
}

impl KvBackend for RocksKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get(key).map_err(|e| store_err(&self.name, e))
    }
    fn write(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        let mut wb = rocksdb::WriteBatch::default();
        for (k, v) in batch {
            match v {
                Some(v) => wb.put(k, v),
                None => wb.delete(k),
            }
        }
        self.db.write(wb).map_err(|e| store_err(&self.name, e))
    }
    fn delete_range(&mut self, from: &[u8], to: &[u8]) -> Result<()> {
        let mut wb = rocksdb::WriteBatch::default();
        wb.delete_range(from, to);
        self.db.write(wb).map_err(|e| store_err(&self.name, e))
    }
    fn entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self.db.iterator(rocksdb::IteratorMode::Start) {
            let (k, v) = item.map_err(|e| store_err(&self.name, e))?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

/// Window stores prefix entries with 1 and the window start (8 bytes BE, so a range delete
/// drops expired windows), and keep the stream time under the meta prefix 0.
const WINDOW_PREFIX: u8 = 1;
const STREAM_TIME_KEY: &[u8] = b"\x00stream-time";

pub(crate) fn window_key(start: i64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.push(WINDOW_PREFIX);
    k.extend_from_slice(&start.to_be_bytes());
    k.extend_from_slice(key);
    k
}

pub(crate) enum Backend {
    Mem(MemKv),
    Rocks(RocksKv),
}

impl Backend {
    fn kv(&self) -> &dyn KvBackend {
        match self {
            Backend::Mem(m) => m,
            Backend::Rocks(r) => r,
        }
    }
    fn kv_mut(&mut self) -> &mut dyn KvBackend {
        match self {
            Backend::Mem(m) => m,
            Backend::Rocks(r) => r,
        }
    }
}

/// One store of one task: the backend and the uncommitted writes.
pub(crate) struct CachedStore {
    pub spec: StoreSpec,
    backend: Backend,
    dirty: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Taken from `dirty` by `prepare_commit`, applied by `finish_commit`.
    pending: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Window stores: the largest timestamp seen (persisted with the store's entries).
    stream_time: i64,
}

impl CachedStore {
    pub(crate) fn new(spec: StoreSpec, backend: Backend) -> Result<Self> {
        let mut s = CachedStore {
            spec,
            backend,
            dirty: HashMap::new(),
            pending: Vec::new(),
            stream_time: -1,
        };
        s.reload_stream_time()?;
        Ok(s)
    }

    /// After a restore or a rollback, the stream time is what the backend says.
    pub(crate) fn reload_stream_time(&mut self) -> Result<()> {
        self.stream_time = match self.backend.kv().get(STREAM_TIME_KEY)? {
            Some(b) if b.len() == 8 => i64::from_be_bytes(b.try_into().unwrap_or([0; 8])),
            _ => -1,
        };
        Ok(())
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.dirty.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.backend.kv().get(key),
        }
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.dirty.insert(key, value);
    }

    /// Advances the stream time with a record's timestamp; returns the new stream time.
    pub(crate) fn observe(&mut self, ts: i64) -> i64 {
        if ts > self.stream_time {
            self.stream_time = ts;
            self.dirty
                .insert(STREAM_TIME_KEY.to_vec(), Some(ts.to_be_bytes().to_vec()));
        }
        self.stream_time
    }

    /// Moves the uncommitted writes to `pending` and returns them (changelog records).
    pub(crate) fn prepare_commit(&mut self) -> &[(Vec<u8>, Option<Vec<u8>>)] {
        self.pending.extend(self.dirty.drain());
        &self.pending
    }

    /// The commit succeeded: the pending writes become the store's state; expired windows go.
    pub(crate) fn finish_commit(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            self.backend.kv_mut().write(&batch)?;
        }
        if let Some(w) = self.spec.windows {
            let cutoff = self.stream_time - w.retention_ms();
            if cutoff > 0 {
                self.backend
                    .kv_mut()
                    .delete_range(&window_key(0, &[]), &window_key(cutoff, &[]))?;
            }
        }
        Ok(())
    }

    /// The commit failed or was abandoned: forget everything since the last commit.
    pub(crate) fn rollback(&mut self) -> Result<()> {
        self.dirty.clear();
        self.pending.clear();
        self.reload_stream_time()
    }

    /// Applies restored changelog records straight to the backend.
    pub(crate) fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        self.backend.kv_mut().write(batch)
    }

    /// Committed entries (window stores: without the stream-time entry).
    pub(crate) fn entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .backend
            .kv()
            .entries()?
            .into_iter()
            .filter(|(k, _)| k.as_slice() != STREAM_TIME_KEY)
            .collect())
    }
}
