//! Test support for crates that handle record batches: a minimal valid v2
//! batch built byte by byte, independent of the encoder under test. Always
//! compiled (it is small): a test-only feature would give the workspace's
//! libraries a second feature set, and every test build a second compile.

use bytes::Bytes;

use crate::batch::HEADER_LEN;

/// A minimal valid v2 batch of `n` one-byte-value records at timestamp `ts`,
/// from producer `pid` with base sequence `seq` (-1, -1: non-idempotent).
pub fn make_batch(n: i32, ts: i64, pid: i64, seq: i32) -> Bytes {
    make_batch_with(n, ts, pid, 0, seq, false)
}

/// Like [`make_batch`], transactional (attribute bit 4) at producer `epoch`.
pub fn make_txn_batch(n: i32, ts: i64, pid: i64, epoch: i16, seq: i32) -> Bytes {
    make_batch_with(n, ts, pid, epoch, seq, true)
}

fn make_batch_with(n: i32, ts: i64, pid: i64, epoch: i16, seq: i32, txn: bool) -> Bytes {
    let mut recs = Vec::new();
    for i in 0..n {
        // record: length varint, attrs, tsDelta varint, offsetDelta varint, keyLen -1, valueLen 1, 'x', headers 0
        let body = [0u8, 0, (i as u8) << 1, 1, 2, b'x', 0];
        recs.push(body.len() as u8 * 2);
        recs.extend_from_slice(&body);
    }
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    let len = (HEADER_LEN - 12 + recs.len()) as i32;
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&(if txn { 0x10i16 } else { 0 }).to_be_bytes());
    b.extend_from_slice(&(n - 1).to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&pid.to_be_bytes());
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&n.to_be_bytes());
    b.extend_from_slice(&recs);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}
