//! Where transaction records live, behind [`TxnStore`]: the coordinator
//! (`zk_store`, the znode layout in docs/architecture.md) when the broker has
//! one, else [`MemStore`] — in memory for the handler tests, or persisted to
//! `<log.dirs>/transactions.json` in standalone mode.
//!
//! Every write is conditional on the version the writer loaded, so a
//! coordinator that lost the transactional id to another broker (which wrote
//! since) changes nothing: it gets [`TxnStoreError::Fenced`].

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::state::TxnMeta;
use crate::group::offsets::{Committed, OffsetStore};

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TxnStoreError {
    /// Someone else wrote the record since we read it (or created it first).
    #[error("transaction record changed underneath (another coordinator wrote it)")]
    Fenced,
    #[error("transaction store not ready")]
    NotReady,
    #[error("coordinator: {0}")]
    Zk(#[from] fjord_zk::client::ZkError),
    #[error("local transactions file: {0}")]
    Local(String),
    #[error("committing offsets: {0}")]
    Offsets(#[from] crate::group::offsets::StoreError),
    #[error("unreadable pending offsets of transaction {0}")]
    Unreadable(String),
}

pub type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, TxnStoreError>> + Send + 'a>>;

/// A record and the version a conditional write must name.
#[derive(Debug, Clone)]
pub struct Stored {
    pub meta: TxnMeta,
    pub version: i32,
}

/// One group's offsets committed inside a transaction: topic → partition → offset.
pub type PendingOffsets = BTreeMap<String, BTreeMap<i32, Committed>>;

/// The check TxnOffsetCommit runs against the record, atomically with storing.
pub type OffsetCheck<'a> = &'a (dyn Fn(&TxnMeta) -> i16 + Send + Sync);

/// Durable transaction records (see the module doc).
pub trait TxnStore: Send + Sync {
    /// Every transactional id with a record.
    fn list(&self) -> Fut<'_, Vec<String>>;
    /// One record (None: never initialised).
    fn load<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Stored>>;
    /// Create (`version` None) or replace the record at `version`; returns the new version.
    fn put<'a>(&'a self, id: &'a str, meta: &'a TxnMeta, version: Option<i32>) -> Fut<'a, i32>;
    /// Delete the record (and any pending offsets) iff it is still at
    /// `version` — else [`TxnStoreError::Fenced`], so a write that raced
    /// the expiry (a new InitProducerId) wins. Afterwards the id is as
    /// never seen.
    fn remove<'a>(&'a self, id: &'a str, version: i32) -> Fut<'a, ()>;
    /// Merge `offsets` into `group`'s pending offsets of the transaction iff
    /// `check` passes (returns NONE) on the current record; its code otherwise.
    fn put_offsets<'a>(
        &'a self,
        id: &'a str,
        group: &'a str,
        offsets: PendingOffsets,
        check: OffsetCheck<'a>,
    ) -> Fut<'a, i16>;
    /// The groups with pending offsets in the transaction.
    fn pending<'a>(&'a self, id: &'a str) -> Fut<'a, BTreeMap<String, PendingOffsets>>;
    /// The offsets of `group` that running transactions hold, one map per
    /// transaction: OffsetFetch's require_stable asks the store, because the
    /// group's coordinator may have moved since the TxnOffsetCommit.
    fn pending_for_group<'a>(&'a self, group: &'a str) -> Fut<'a, Vec<PendingOffsets>>;
    /// Write the completed record at `version` and drop its pending offsets;
    /// on `commit` they become the groups' committed offsets in the same step.
    fn finish<'a>(
        &'a self,
        id: &'a str,
        meta: &'a TxnMeta,
        version: i32,
        commit: bool,
    ) -> Fut<'a, i32>;
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Rec {
    meta: Option<TxnMeta>,
    version: i32,
    #[serde(default)]
    pending: BTreeMap<String, PendingOffsets>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LocalFile {
    transactions: BTreeMap<String, Rec>,
}

/// Records in memory, optionally persisted to a local file (standalone).
/// Committed offsets go to the broker's offset store (`offsets`), before the
/// record says Complete, so a crash in between replays the commit.
pub struct MemStore {
    recs: Mutex<BTreeMap<String, Rec>>,
    file: Option<PathBuf>,
    offsets: Option<Arc<OffsetStore>>,
}

impl MemStore {
    /// A store in memory only (tests), committing offsets to `offsets` if given.
    pub fn in_memory(offsets: Option<Arc<OffsetStore>>) -> MemStore {
        MemStore {
            recs: Mutex::new(BTreeMap::new()),
            file: None,
            offsets,
        }
    }

    /// A store persisted to `path` (loaded now if it exists).
    pub fn open(path: PathBuf, offsets: Arc<OffsetStore>) -> Result<MemStore, TxnStoreError> {
        let recs = match std::fs::read(&path) {
            Ok(b) => {
                serde_json::from_slice::<LocalFile>(&b)
                    .map_err(|e| TxnStoreError::Local(format!("{}: {e}", path.display())))?
                    .transactions
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(TxnStoreError::Local(format!("{}: {e}", path.display()))),
        };
        Ok(MemStore {
            recs: Mutex::new(recs),
            file: Some(path),
            offsets: Some(offsets),
        })
    }

    /// Write the whole file (tmp + fsync + rename) while holding the lock, so
    /// the file order is the write order.
    fn persist(&self, recs: &BTreeMap<String, Rec>) -> Result<(), TxnStoreError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let body = serde_json::to_vec(&LocalFile {
            transactions: recs.clone(),
        })
        .map_err(|e| TxnStoreError::Local(e.to_string()))?;
        let tmp = path.with_extension("json.tmp");
        let res = (|| {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        res.map_err(|e| TxnStoreError::Local(format!("{}: {e}", path.display())))
    }

    fn put_sync(
        &self,
        id: &str,
        meta: &TxnMeta,
        version: Option<i32>,
    ) -> Result<i32, TxnStoreError> {
        let mut recs = self.recs.lock();
        let cur = recs.get(id).filter(|r| r.meta.is_some()).map(|r| r.version);
        if cur != version {
            return Err(TxnStoreError::Fenced);
        }
        let mut next = recs.clone();
        let r = next.entry(id.to_string()).or_default();
        r.meta = Some(meta.clone());
        r.version = version.map_or(0, |v| v + 1);
        let v = r.version;
        self.persist(&next)?;
        *recs = next;
        Ok(v)
    }
}

impl MemStore {
    fn remove_sync(&self, id: &str, version: i32) -> Result<(), TxnStoreError> {
        let mut recs = self.recs.lock();
        match recs.get(id) {
            Some(r) if r.meta.is_some() && r.version == version => {}
            _ => return Err(TxnStoreError::Fenced),
        }
        let mut next = recs.clone();
        next.remove(id);
        self.persist(&next)?;
        *recs = next;
        Ok(())
    }
}

impl TxnStore for MemStore {
    fn list(&self) -> Fut<'_, Vec<String>> {
        let ids = self
            .recs
            .lock()
            .iter()
            .filter(|(_, r)| r.meta.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        Box::pin(async move { Ok(ids) })
    }

    fn load<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Stored>> {
        let r = self.recs.lock().get(id).and_then(|r| {
            r.meta.clone().map(|meta| Stored {
                meta,
                version: r.version,
            })
        });
        Box::pin(async move { Ok(r) })
    }

    fn put<'a>(&'a self, id: &'a str, meta: &'a TxnMeta, version: Option<i32>) -> Fut<'a, i32> {
        let r = self.put_sync(id, meta, version);
        Box::pin(async move { r })
    }

    fn remove<'a>(&'a self, id: &'a str, version: i32) -> Fut<'a, ()> {
        let r = self.remove_sync(id, version);
        Box::pin(async move { r })
    }

    fn put_offsets<'a>(
        &'a self,
        id: &'a str,
        group: &'a str,
        offsets: PendingOffsets,
        check: OffsetCheck<'a>,
    ) -> Fut<'a, i16> {
        let r = (|| {
            let mut recs = self.recs.lock();
            let Some(meta) = recs.get(id).and_then(|r| r.meta.as_ref()) else {
                return Ok(super::codes::INVALID_PRODUCER_ID_MAPPING);
            };
            let code = check(meta);
            if code != super::codes::NONE {
                return Ok(code);
            }
            let mut next = recs.clone();
            if let Some(r) = next.get_mut(id) {
                let g = r.pending.entry(group.to_string()).or_default();
                for (t, ps) in offsets {
                    g.entry(t).or_default().extend(ps);
                }
            }
            self.persist(&next)?;
            *recs = next;
            Ok(super::codes::NONE)
        })();
        Box::pin(async move { r })
    }

    fn pending<'a>(&'a self, id: &'a str) -> Fut<'a, BTreeMap<String, PendingOffsets>> {
        let p = self
            .recs
            .lock()
            .get(id)
            .map(|r| r.pending.clone())
            .unwrap_or_default();
        Box::pin(async move { Ok(p) })
    }

    fn pending_for_group<'a>(&'a self, group: &'a str) -> Fut<'a, Vec<PendingOffsets>> {
        let p = self
            .recs
            .lock()
            .values()
            .filter_map(|r| r.pending.get(group).cloned())
            .collect();
        Box::pin(async move { Ok(p) })
    }

    fn finish<'a>(
        &'a self,
        id: &'a str,
        meta: &'a TxnMeta,
        version: i32,
        commit: bool,
    ) -> Fut<'a, i32> {
        Box::pin(async move {
            let pending = {
                let recs = self.recs.lock();
                match recs.get(id) {
                    Some(r) if r.meta.is_some() && r.version == version => r.pending.clone(),
                    _ => return Err(TxnStoreError::Fenced),
                }
            };
            if commit {
                if let Some(store) = &self.offsets {
                    for (group, topics) in pending {
                        let items = topics
                            .into_iter()
                            .flat_map(|(t, ps)| ps.into_iter().map(move |(p, c)| (t.clone(), p, c)))
                            .collect();
                        store.commit(&group, items).await?;
                    }
                }
            }
            let mut recs = self.recs.lock();
            let mut next = recs.clone();
            match next.get_mut(id) {
                Some(r) if r.meta.is_some() && r.version == version => {
                    r.meta = Some(meta.clone());
                    r.version += 1;
                    r.pending.clear();
                }
                _ => return Err(TxnStoreError::Fenced),
            }
            let v = version + 1;
            self.persist(&next)?;
            *recs = next;
            Ok(v)
        })
    }
}
