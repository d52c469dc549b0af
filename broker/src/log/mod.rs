//! The partition log on RocksDB (docs/architecture.md → Log).
//!
//! One DB per broker. Column family `log`: key = partition id (u32 BE) + base
//! offset (u64 BE), value = the producer's batch bytes verbatim with only
//! baseOffset and partitionLeaderEpoch patched. Column family `meta`: partition
//! registry, log start offsets, leader-epoch cache.
//!
//! Appends assign offsets under the partition's lock and hand the batch to one
//! writer thread, which drains everything queued into a single RocksDB
//! WriteBatch (group commit); the high watermark advances when that write
//! returns, and waiting fetches are woken. Per-partition state (offsets, batch
//! index, recent batches, producer sequences) lives in memory and is rebuilt
//! from the DB on open.
//!
//! Children, bottom up: `error`, `hw` (roles, follower state, the
//! high-watermark rule), `partition` (in-memory state), `partition_store`
//! (the storage trait) with `rocks` (RocksDB, key layout in `keys`) and
//! `memory` (its in-memory twin for tests), `writer` (group commit), `store`
//! (`LogStore`), `retention` (the periodic retention task), `records`
//! (the records inside a batch) and `cleaner` (log compaction), `checkpoint`
//! (the periodic high-watermark checkpoint), `producer_ids`
//! (producer id allocation), `disk` (the free-space guard and the
//! storage-failure latch, issue 19) and `recovery` (its monitor task), `txn` (transactions: open ones, the last
//! stable offset, the aborted-transaction index).
//! This file only re-exports; children never reference it.

pub mod checkpoint;
pub mod cleaner;
#[cfg(test)]
mod cleaner_tests;
pub mod disk;
pub mod error;
pub mod hw;
pub mod keys;
pub mod memory;
pub mod partition;
pub mod partition_store;
pub mod producer_ids;
pub mod records;
pub mod recovery;
pub mod retention;
pub mod rocks;
pub mod store;
pub mod txn;
#[cfg(test)]
mod txn_tests;
pub mod writer;

pub use disk::{DiskGuard, FreeSpaceLimits};
pub use error::LogError;
pub use hw::{FollowerState, Role};
pub use partition::{Offsets, Partition, Upto};
pub use partition_store::PartitionStore;
pub use store::{Appended, LogStore};
pub use txn::AbortedTxn;
pub use writer::FlushPolicy;
