//! Record batch (magic v2) header handling: we never decode data records, only
//! read the fixed 61-byte header, check the CRC-32C, and patch the two fields
//! that lie outside the CRC (baseOffset, partitionLeaderEpoch). Transaction
//! markers (control batches, KIP-98) are built and read here too: their one
//! record says COMMIT or ABORT.

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
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    /// True for control batches (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
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

/// Attribute bits of a transactional batch and of a control batch (KIP-98).
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

/// What a control batch says: its record's key type (0 ABORT, 1 COMMIT) and
/// the transaction coordinator's epoch from its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlMarker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// A transaction marker (KIP-98's control batch): transactional and control
/// attributes, the transaction's producer id and epoch, no sequence, and one
/// record whose key is version 0 + type (0 ABORT, 1 COMMIT) and whose value
/// is version 0 + the coordinator epoch. Base offset 0, to be patched.
pub fn control_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: ControlMarker,
    timestamp: i64,
) -> Bytes {
    // record: attributes, timestampDelta 0, offsetDelta 0, key (4 bytes),
    // value (6 bytes), no headers; varints zigzag-encoded.
    let mut rec = vec![0u8, 0, 0, 8, 0, 0, 0, marker.commit as u8, 12, 0, 0];
    rec.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    rec.push(0);
    let mut b = Vec::with_capacity(HEADER_LEN + rec.len() + 1);
    b.extend_from_slice(&0i64.to_be_bytes());
    let len = (HEADER_LEN - 12 + 1 + rec.len()) as i32;
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&(ATTR_TRANSACTIONAL | ATTR_CONTROL).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&producer_id.to_be_bytes());
    b.extend_from_slice(&producer_epoch.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.push((rec.len() * 2) as u8);
    b.extend_from_slice(&rec);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

/// Read one zigzag varint at `*at` (at most 5 bytes: lengths and deltas).
fn varint(b: &[u8], at: &mut usize) -> Option<i32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= ((byte & 0x7f) as u32) << shift;
        if byte & 0x80 == 0 {
            return Some(((v >> 1) as i32) ^ -((v & 1) as i32));
        }
    }
    None
}

/// The marker a control batch carries, read from its first record (control
/// batches are never compressed); None when `b` is not a well-formed one.
/// A control key type other than ABORT/COMMIT is None too.
pub fn control_marker(b: &[u8], h: &BatchHeader) -> Option<ControlMarker> {
    if !h.is_control() || h.record_count < 1 || h.attributes & 0x07 != 0 {
        return None;
    }
    let body = b.get(HEADER_LEN..h.total_len())?;
    let mut at = 0usize;
    varint(body, &mut at)?; // record length
    at += 1; // attributes
    varint(body, &mut at)?; // timestamp delta (small for a marker)
    varint(body, &mut at)?; // offset delta
    let klen = usize::try_from(varint(body, &mut at)?).ok()?;
    let key = body.get(at..at + klen)?;
    at += klen;
    if klen < 4 || key[..2] != [0, 0] {
        return None;
    }
    let commit = match i16::from_be_bytes([key[2], key[3]]) {
        0 => false,
        1 => true,
        _ => return None,
    };
    let vlen = usize::try_from(varint(body, &mut at)?).ok()?;
    let value = body.get(at..at + vlen)?;
    let coordinator_epoch = match value.get(2..6) {
        Some(e) => i32::from_be_bytes([e[0], e[1], e[2], e[3]]),
        None => -1,
    };
    Some(ControlMarker {
        commit,
        coordinator_epoch,
    })
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
    fn control_batch_round_trips() {
        for (commit, ce) in [(true, 7), (false, 0), (true, i32::MAX)] {
            let m = ControlMarker {
                commit,
                coordinator_epoch: ce,
            };
            let b = control_batch(42, 3, m, 1_000);
            let v = split_batches(&b).unwrap();
            let h = v[0].0;
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.record_count),
                (42, 3, 1)
            );
            assert_eq!((h.base_sequence, h.last_offset_delta), (-1, 0));
            assert_eq!(control_marker(&b, &h), Some(m));
        }
        let data = make_batch(1, 1, 5, 0);
        let h = parse_header(&data).unwrap();
        assert_eq!(control_marker(&data, &h), None);
        // Damaged marker records never panic: every byte value at every
        // record position, and every truncation of the record.
        let good = control_batch(
            42,
            3,
            ControlMarker {
                commit: true,
                coordinator_epoch: 1,
            },
            1,
        );
        let h = parse_header(&good).unwrap();
        for at in HEADER_LEN..good.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut bad = good.to_vec();
                bad[at] = v;
                let _ = control_marker(&bad, &h);
            }
            let _ = control_marker(&good[..at], &h);
        }
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
