//! The RocksDB key layout of the log (docs/architecture.md → RocksDB keys):
//! column family `log` keyed by partition id (u32 BE) + base offset (u64 BE);
//! column family `meta` holding the partition registry (`P` topic NUL index),
//! log start offsets (`S` id), the leader-epoch cache (`E` id epoch) and the
//! aborted-transaction index (`A` id last-offset).

pub(crate) const CF_LOG: &str = "log";
pub(crate) const CF_META: &str = "meta";

pub(crate) fn log_key(id: u32, offset: i64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&id.to_be_bytes());
    k[4..].copy_from_slice(&(offset as u64).to_be_bytes());
    k
}

pub(crate) fn part_key(topic: &str, index: i32) -> Vec<u8> {
    let mut k = Vec::with_capacity(topic.len() + 6);
    k.push(b'P');
    k.extend_from_slice(topic.as_bytes());
    k.push(0);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

pub(crate) fn start_key(id: u32) -> [u8; 5] {
    let mut k = [b'S'; 5];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

pub(crate) fn epoch_key(id: u32, epoch: i32) -> [u8; 9] {
    let mut k = [b'E'; 9];
    k[1..5].copy_from_slice(&id.to_be_bytes());
    k[5..].copy_from_slice(&epoch.to_be_bytes());
    k
}

/// Aborted-transaction index entry of partition `id` whose ABORT marker is
/// at `last_offset`: `A` + id (u32 BE) + last offset (u64 BE); the value is
/// producer id (i64 BE) + first offset (i64 BE).
pub(crate) fn aborted_key(id: u32, last_offset: i64) -> [u8; 13] {
    let mut k = [b'A'; 13];
    k[1..5].copy_from_slice(&id.to_be_bytes());
    k[5..].copy_from_slice(&(last_offset.max(0) as u64).to_be_bytes());
    k
}

pub(crate) fn be_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}
pub(crate) fn be_i64(b: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}
