//! Record files: the framing and the writer queue shared by the standalone
//! transaction log and its snapshots (`txnlog`) and the Raft log (`raft::log`).
//!
//! A record is `[u32 len][u32 crc32c][payload]`, big-endian. Reading stops
//! at the first record that is cut short, has length zero or fails its CRC:
//! that is the torn tail a kill -9 leaves, and everything before it is good.
//! Appenders hand encoded records to one writer thread through a [`Queue`];
//! the writer takes everything queued at once, so one write and one fsync
//! cover every record that arrived while the previous ones were on disk.

use parking_lot::{Condvar, Mutex};
use prost::Message;

/// Bytes before each payload: its length and its CRC.
const HEADER: usize = 8;

/// Appends one framed record holding `payload`.
pub fn put(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    buf.extend_from_slice(payload);
}

/// Appends one framed record holding `msg` encoded.
pub fn put_message(buf: &mut Vec<u8>, msg: &impl Message) {
    put(buf, &msg.encode_to_vec());
}

/// The valid records at the start of `bytes`, in order.
pub fn records(bytes: &[u8]) -> Records<'_> {
    Records { bytes, pos: 0 }
}

/// Iterator over the payloads of [`records`]; [`Records::offset`] says where
/// the valid part (so far) ends.
pub struct Records<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Records<'_> {
    /// Bytes taken by the records returned so far.
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let hdr = self.bytes.get(self.pos..self.pos + HEADER)?;
        let len = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let crc = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        if len == 0 {
            return None;
        }
        let start = self.pos + HEADER;
        let payload = self.bytes.get(start..start + len)?;
        if crc32c::crc32c(payload) != crc {
            return None;
        }
        self.pos = start + len;
        Some(payload)
    }
}

/// Where reading stopped at `end` (the end of the valid records), is it
/// damage in the middle rather than a torn tail? Yes when a valid record
/// starts anywhere after `end`: a torn write leaves nothing valid behind it.
/// Checked first where the record at `end` says the next one starts (a
/// flipped payload byte), then at every later byte (a flipped length field
/// points nowhere useful); garbage passes as a record only if a length fits
/// and a CRC32C matches, so a torn tail is not mistaken for damage. Returns
/// the offset of the damaged record.
pub fn damaged_at(bytes: &[u8], end: usize) -> Option<usize> {
    // A preallocated log's unused tail (`txnlog`): nothing can follow.
    if bytes
        .get(end..)
        .is_some_and(|rest| rest.iter().all(|b| *b == 0))
    {
        return None;
    }
    let valid_at = |pos: usize| Records { bytes, pos }.next().is_some();
    let hdr = bytes.get(end..end.checked_add(HEADER)?)?;
    let len = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
    let next = end.checked_add(HEADER)?.checked_add(len)?;
    if len > 0 && next <= bytes.len() && valid_at(next) {
        return Some(end);
    }
    (end + 1..bytes.len().saturating_sub(HEADER))
        .any(valid_at)
        .then_some(end)
}

/// Work for a writer thread: producers add items, the writer takes all of
/// them at once.
pub struct Queue<T> {
    items: Mutex<Vec<T>>,
    wake: Condvar,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            items: Mutex::new(Vec::new()),
            wake: Condvar::new(),
        }
    }
}

impl<T> Queue<T> {
    /// Adds one item and wakes the writer.
    pub fn push(&self, item: T) {
        self.update(|q| q.push(item));
    }

    /// Changes the queued items in place (e.g. to extend the last one) and
    /// wakes the writer.
    pub fn update(&self, f: impl FnOnce(&mut Vec<T>)) {
        f(&mut self.items.lock());
        self.wake.notify_one();
    }

    /// Waits until something is queued and takes all of it.
    pub fn take_all(&self) -> Vec<T> {
        let mut q = self.items.lock();
        while q.is_empty() {
            self.wake.wait(&mut q);
        }
        std::mem::take(&mut *q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_stops_at_a_torn_or_corrupt_tail() {
        let mut buf = Vec::new();
        put(&mut buf, b"one");
        put(&mut buf, b"two");
        let good = buf.len();
        let all: Vec<&[u8]> = records(&buf).collect();
        assert_eq!(all, vec![&b"one"[..], &b"two"[..]]);
        // A record cut short.
        buf.extend_from_slice(&[0, 0, 0, 50, 1, 2, 3]);
        let mut r = records(&buf);
        assert_eq!(r.by_ref().count(), 2);
        assert_eq!(r.offset(), good);
        // A bad CRC, and a zero length, end the file too.
        let mut bad = Vec::new();
        put(&mut bad, b"x");
        bad[5] ^= 1;
        assert_eq!(records(&bad).count(), 0);
        assert_eq!(records(&[0u8; 16]).count(), 0);
    }

    #[test]
    fn damage_in_the_middle_is_told_from_a_torn_tail() {
        let mut buf = Vec::new();
        for p in [&b"one"[..], b"two", b"three"] {
            put(&mut buf, p);
        }
        let second = 8 + 3;
        // A flipped payload byte in the middle record: valid records follow.
        let mut mid = buf.clone();
        mid[second + 8] ^= 0x40;
        let mut r = records(&mid);
        assert_eq!(r.by_ref().count(), 1);
        assert_eq!(damaged_at(&mid, r.offset()), Some(second));
        // The same flip in the last record, or a record cut short: a torn tail.
        let mut last = buf.clone();
        let n = last.len();
        last[n - 1] ^= 0x40;
        let mut r = records(&last);
        assert_eq!(r.by_ref().count(), 2);
        assert_eq!(damaged_at(&last, r.offset()), None);
        let cut = &buf[..buf.len() - 2];
        let mut r = records(cut);
        assert_eq!(r.by_ref().count(), 2);
        assert_eq!(damaged_at(cut, r.offset()), None);
        assert_eq!(damaged_at(&buf, buf.len()), None);
        // A flipped length field in the middle record, longer or shorter:
        // its payload no longer ends where the next record starts.
        for flip in [0x10u8, 0x01] {
            let mut len = buf.clone();
            len[second + 3] ^= flip;
            let mut r = records(&len);
            assert_eq!(r.by_ref().count(), 1);
            assert_eq!(damaged_at(&len, r.offset()), Some(second), "flip {flip:#x}");
        }
        // A torn tail of zeros or garbage after the good records.
        let mut tail = buf.clone();
        tail.extend_from_slice(&[0u8; 64]);
        assert_eq!(damaged_at(&tail, buf.len()), None);
        let mut junk = buf.clone();
        junk.extend((0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        assert_eq!(damaged_at(&junk, buf.len()), None);
    }
}
