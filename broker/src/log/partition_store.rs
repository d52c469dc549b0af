//! `PartitionStore`: what the log needs from durable storage, as one trait, so
//! the log's logic (offsets, idempotence, HW, truncation, retention) runs the
//! same over RocksDB in the broker (`rocks::RocksStore`) and over memory in
//! unit tests (`memory::MemStore`). Stored per partition id: the batches by
//! base offset, the log start offset, the leader-epoch cache and the HW
//! checkpoint; plus the
//! registry topic/partition → id.

use bytes::Bytes;

use super::error::LogError;
use super::txn::AbortedTxn;

/// A partition found in the registry on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub topic: String,
    pub index: i32,
    pub id: u32,
}

/// A visitor over stored batches: return Ok(false) to stop.
pub type Visit<'a> = &'a mut dyn FnMut(&[u8]) -> Result<bool, LogError>;

/// Durable storage of partition logs.
pub trait PartitionStore: Send + Sync {
    /// Every registered partition.
    fn registered(&self) -> Result<Vec<Registered>, LogError>;
    /// The persisted log start of partition `id`, if one was written.
    fn log_start(&self, id: u32) -> Result<Option<i64>, LogError>;
    /// The leader-epoch cache of `id`: (epoch, first offset), by epoch.
    fn epochs(&self, id: u32) -> Result<Vec<(i32, i64)>, LogError>;
    /// Visit the stored batches of `id` whose base offset is in `from..to`,
    /// in offset order, until `visit` returns false.
    fn scan(&self, id: u32, from: i64, to: i64, visit: Visit<'_>) -> Result<(), LogError>;
    /// Register `topic`/`index` under `id`.
    fn register(&self, topic: &str, index: i32, id: u32) -> Result<(), LogError>;
    /// The high watermark last checkpointed for `id`, if any.
    fn hw_checkpoint(&self, id: u32) -> Result<Option<i64>, LogError>;
    /// Checkpoint high watermarks (partition id, HW) in one fsynced write
    /// (Kafka's replication-offset-checkpoint).
    fn put_hw_checkpoints(&self, hws: &[(u32, i64)]) -> Result<(), LogError>;
    /// Record that `epoch` starts at `offset` in `id`.
    fn put_epoch(&self, id: u32, epoch: i32, offset: i64) -> Result<(), LogError>;
    /// Forget a partition and everything stored for it, atomically.
    fn remove(&self, topic: &str, index: i32, id: u32) -> Result<(), LogError>;
    /// Drop the batches of `id` from base offset `end` on and the given
    /// epochs, atomically (follower truncation).
    fn truncate(&self, id: u32, end: i64, epochs: &[i32]) -> Result<(), LogError>;
    /// Drop every batch of `id` and set its log start (follower reset).
    fn reset(&self, id: u32, start: i64) -> Result<(), LogError>;
    /// Set the log start of `id` and drop the batches before it (retention).
    fn advance_start(&self, id: u32, start: i64) -> Result<(), LogError>;
    /// Write batches (partition id, base offset, bytes) as one atomic write,
    /// fsynced when `sync` (the group commit).
    fn append(&self, batches: &[(u32, i64, &Bytes)], sync: bool) -> Result<(), String>;
    /// The cleaner's swap: replace the batches of `id` at the `puts` base
    /// offsets and drop those at `deletes`, as one atomic write (a crash
    /// leaves every batch either old or new, each whole).
    fn rewrite(&self, id: u32, puts: &[(i64, Bytes)], deletes: &[i64]) -> Result<(), LogError>;
    /// Reclaim the space of dropped ranges of `id` (best effort).
    fn compact(&self, id: u32);
    /// Make everything written durable (shutdown).
    fn flush(&self) -> Result<(), LogError>;
    /// A small synced write: does the store take writes (again)? Used to
    /// resume after a failed write (`disk`).
    fn probe(&self) -> Result<(), LogError> {
        Ok(())
    }
    /// Give back the space of what was deleted now, not at the next flush
    /// (below the free-space floor): flush memtables so the WAL they pin goes.
    fn reclaim(&self) {}
    /// Close and open the store again (a failed write it does not clear by
    /// itself); what was written is read back from disk.
    fn reopen(&self) -> Result<(), LogError> {
        Ok(())
    }
    /// The aborted-transaction index of `id`, by last offset.
    fn aborted(&self, id: u32) -> Result<Vec<AbortedTxn>, LogError>;
    /// Add an entry to the aborted-transaction index of `id`.
    fn put_aborted(&self, id: u32, a: &AbortedTxn) -> Result<(), LogError>;
    /// Drop the entries of `id` whose last offset is in `from..to`.
    fn drop_aborted(&self, id: u32, from: i64, to: i64) -> Result<(), LogError>;
}
