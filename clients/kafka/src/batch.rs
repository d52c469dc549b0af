//! Record batch (magic v2) header handling: we never decode records, only read
//! the fixed 61-byte header, check the CRC-32C, and patch the two fields that
//! lie outside the CRC (baseOffset, partitionLeaderEpoch).

use bytes::{Bytes, BytesMut};

/// Size of the v2 batch header before the first record.
pub const HEADER_LEN: usize = 61;

/// Why a batch was refused; mapped onto Kafka error codes by the handlers.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("record batch truncated or malformed")]
    Corrupt,
    #[error("record batch CRC mismatch")]
    CrcMismatch,
    #[error("only magic v2 record batches are supported")]
    UnsupportedMagic,
}

/// The header fields the log needs, read without touching the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub leader_epoch: i32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Total bytes of this batch on the wire (offset+length prefix included).
    pub fn total_len(&self) -> usize {
        12 + self.batch_length as usize
    }
    /// True for transactional batches (attribute bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    /// True for control batches (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    /// Sequence number of the last record in the batch.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        // Sequences wrap at i32::MAX as in Kafka.
        let v = self.base_sequence as i64 + self.last_offset_delta as i64;
        (v % (i32::MAX as i64 + 1)) as i32
    }
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// Parse the header at the start of `b`; checks lengths only (no CRC).
pub fn parse_header(b: &[u8]) -> Result<BatchHeader, BatchError> {
    if b.len() < 17 {
        return Err(BatchError::Corrupt);
    }
    if b[16] != 2 {
        return Err(BatchError::UnsupportedMagic);
    }
    if b.len() < HEADER_LEN {
        return Err(BatchError::Corrupt);
    }
    let h = BatchHeader {
        base_offset: be_i64(b, 0),
        batch_length: be_i32(b, 8),
        leader_epoch: be_i32(b, 12),
        attributes: be_i16(b, 21),
        last_offset_delta: be_i32(b, 23),
        base_timestamp: be_i64(b, 27),
        max_timestamp: be_i64(b, 35),
        producer_id: be_i64(b, 43),
        producer_epoch: be_i16(b, 51),
        base_sequence: be_i32(b, 53),
        record_count: be_i32(b, 57),
    };
    if h.batch_length < (HEADER_LEN - 12) as i32
        || h.total_len() > b.len()
        || h.last_offset_delta < 0
        || h.record_count < 0
    {
        return Err(BatchError::Corrupt);
    }
    Ok(h)
}

/// Validate the CRC-32C of one batch (covers attributes to the end).
pub fn check_crc(b: &[u8], h: &BatchHeader) -> Result<(), BatchError> {
    let stored = be_i32(b, 17) as u32;
    let computed = crc32c::crc32c(&b[21..h.total_len()]);
    if stored != computed {
        return Err(BatchError::CrcMismatch);
    }
    Ok(())
}

/// Split a produce request's records into validated batches (headers + byte slices
/// sharing the request buffer).
pub fn split_batches(records: &Bytes) -> Result<Vec<(BatchHeader, Bytes)>, BatchError> {
    let mut out = Vec::with_capacity(1);
    let mut at = 0usize;
    while at < records.len() {
        let rest = &records[at..];
        let h = parse_header(rest)?;
        check_crc(rest, &h)?;
        let end = at + h.total_len();
        out.push((h, records.slice(at..end)));
        at = end;
    }
    if out.is_empty() {
        return Err(BatchError::Corrupt);
    }
    Ok(out)
}

/// Copy of `batch` with baseOffset and partitionLeaderEpoch rewritten: the one
/// copy on the produce path, because the request buffer is shared.
pub fn patched(batch: &[u8], base_offset: i64, leader_epoch: i32) -> Bytes {
    let mut m = BytesMut::with_capacity(batch.len());
    m.extend_from_slice(&base_offset.to_be_bytes());
    m.extend_from_slice(&batch[8..12]);
    m.extend_from_slice(&leader_epoch.to_be_bytes());
    m.extend_from_slice(&batch[16..]);
    m.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::make_batch;

    #[test]
    fn parse_and_crc() {
        let b = make_batch(3, 1000, -1, -1);
        let v = split_batches(&b).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0.last_offset_delta, 2);
        let p = patched(&v[0].1, 42, 7);
        let h = parse_header(&p).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.leader_epoch, 7);
        check_crc(&p, &h).unwrap();
    }

    #[test]
    fn crc_mismatch_and_truncation() {
        let b = make_batch(2, 1000, -1, -1);
        let mut v = b.to_vec();
        let last = v.len() - 1;
        v[last] ^= 1;
        assert_eq!(
            split_batches(&Bytes::from(v)).unwrap_err(),
            BatchError::CrcMismatch
        );
        assert_eq!(
            split_batches(&b.slice(0..b.len() - 1)).unwrap_err(),
            BatchError::Corrupt
        );
        assert_eq!(
            split_batches(&Bytes::new()).unwrap_err(),
            BatchError::Corrupt
        );
    }
}
