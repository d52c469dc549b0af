//! The records inside a v2 batch, as far as compaction needs them: each
//! record's offset delta, key and whether its value is null (a tombstone),
//! with its raw bytes; and the rebuilding of a batch from a subset of its
//! records. Survivors are copied byte for byte (their offset and timestamp
//! deltas are relative to the header's base offset and base timestamp, which
//! stay), so a rebuilt batch keeps base offset, last offset delta, producer
//! id/epoch/base sequence and timestamps; only batchLength, recordCount and
//! the CRC change (plus the compressed body, recompressed with the same codec).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{self as codec, Compressor, Decompressor};
use thiserror::Error;

use fjord_kafka::batch::{BatchHeader, HEADER_LEN};

/// Why a batch's records could not be read or rebuilt.
#[derive(Debug, Error)]
pub enum RecordsError {
    #[error("record truncated or malformed")]
    Corrupt,
    #[error("unknown compression codec {0}")]
    Codec(i16),
    #[error("compression: {0}")]
    Compression(String),
}

/// One record of a batch.
#[derive(Debug, Clone)]
pub struct Rec {
    pub offset_delta: i32,
    /// None: no key.
    pub key: Option<Bytes>,
    /// True when the value is null (a tombstone).
    pub tombstone: bool,
    /// The record's bytes, length prefix included.
    pub raw: Bytes,
}

fn varint(b: &mut Bytes) -> Result<i64, RecordsError> {
    let mut v: u64 = 0;
    for shift in (0..70).step_by(7) {
        if !b.has_remaining() {
            return Err(RecordsError::Corrupt);
        }
        let byte = b.get_u8();
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    Err(RecordsError::Corrupt)
}

/// The batch's records section, decompressed.
fn body(batch: &[u8], h: &BatchHeader) -> Result<Bytes, RecordsError> {
    let raw = Bytes::copy_from_slice(
        batch
            .get(HEADER_LEN..h.total_len())
            .ok_or(RecordsError::Corrupt)?,
    );
    let mut b = raw.clone();
    let take = |x: &mut Bytes| -> anyhow::Result<Bytes> { Ok(x.copy_to_bytes(x.remaining())) };
    let out = match h.attributes & 0x7 {
        0 => return Ok(raw),
        1 => codec::Gzip::decompress(&mut b, take),
        2 => codec::Snappy::decompress(&mut b, take),
        3 => codec::Lz4::decompress(&mut b, take),
        4 => codec::Zstd::decompress(&mut b, take),
        c => return Err(RecordsError::Codec(c)),
    };
    out.map_err(|e| RecordsError::Compression(e.to_string()))
}

/// Every record of `batch` (`h` its parsed header), in order.
pub fn records(batch: &[u8], h: &BatchHeader) -> Result<Vec<Rec>, RecordsError> {
    let all = body(batch, h)?;
    let mut out = Vec::with_capacity(h.record_count.max(0) as usize);
    let mut at = all.clone();
    for _ in 0..h.record_count {
        let start = all.len() - at.remaining();
        let len = varint(&mut at)?;
        let prefix = all.len() - at.remaining() - start;
        if len < 0 || len as usize > at.remaining() {
            return Err(RecordsError::Corrupt);
        }
        let mut r = at.split_to(len as usize);
        if !r.has_remaining() {
            return Err(RecordsError::Corrupt);
        }
        r.advance(1); // attributes
        varint(&mut r)?; // timestamp delta
        let offset_delta = varint(&mut r)? as i32;
        let key_len = varint(&mut r)?;
        let key = if key_len < 0 {
            None
        } else {
            if key_len as usize > r.remaining() {
                return Err(RecordsError::Corrupt);
            }
            Some(r.split_to(key_len as usize))
        };
        let tombstone = varint(&mut r)? < 0;
        out.push(Rec {
            offset_delta,
            key,
            tombstone,
            raw: all.slice(start..start + prefix + len as usize),
        });
    }
    Ok(out)
}

/// True when some record of `batch` has no key (refused on compacted topics).
pub fn has_keyless(batch: &[u8], h: &BatchHeader) -> Result<bool, RecordsError> {
    if h.is_control() {
        return Ok(false);
    }
    Ok(records(batch, h)?.iter().any(|r| r.key.is_none()))
}

/// `batch` rebuilt with only `keep` (a subset of its records, in order): same
/// header fields, recompressed with the same codec, CRC recomputed. With no
/// record left the result is an empty batch (Kafka keeps those to remember a
/// producer's last sequence).
pub fn rebuild(batch: &[u8], h: &BatchHeader, keep: &[Rec]) -> Result<Bytes, RecordsError> {
    let mut plain = BytesMut::with_capacity(keep.iter().map(|r| r.raw.len()).sum());
    for r in keep {
        plain.put_slice(&r.raw);
    }
    let mut body = BytesMut::new();
    let put = |w: &mut BytesMut| -> anyhow::Result<()> {
        w.put_slice(&plain);
        Ok(())
    };
    let res = match h.attributes & 0x7 {
        _ if keep.is_empty() => Ok(()),
        0 => {
            body.put_slice(&plain);
            Ok(())
        }
        1 => codec::Gzip::compress(&mut body, put),
        2 => codec::Snappy::compress(&mut body, put),
        3 => codec::Lz4::compress(&mut body, put),
        4 => codec::Zstd::compress(&mut body, put),
        c => return Err(RecordsError::Codec(c)),
    };
    res.map_err(|e| RecordsError::Compression(e.to_string()))?;
    let mut out = BytesMut::with_capacity(HEADER_LEN + body.len());
    out.put_slice(batch.get(..HEADER_LEN).ok_or(RecordsError::Corrupt)?);
    out.put_slice(&body);
    let batch_length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[57..61].copy_from_slice(&(keep.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_kafka::batch::{check_crc, parse_header};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    /// A batch of `(key, value)` records at offsets 100.. made by
    /// kafka-protocol's encoder (an implementation independent of ours).
    pub(crate) fn encoded(kv: &[(Option<&str>, Option<&str>)], compression: Compression) -> Bytes {
        let recs: Vec<Record> = kv
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: 100 + i as i64,
                sequence: i as i32,
                timestamp: 1_000 + i as i64,
                key: k.map(|k| Bytes::copy_from_slice(k.as_bytes())),
                value: v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &recs,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf.freeze()
    }

    #[test]
    fn keep_a_subset_with_offsets_and_crc() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = encoded(
                &[
                    (Some("a"), Some("1")),
                    (Some("b"), None),
                    (Some("a"), Some("2")),
                    (None, Some("x")),
                ],
                c,
            );
            let h = parse_header(&b).unwrap();
            let rs = records(&b, &h).unwrap();
            assert_eq!(rs.len(), 4);
            assert_eq!(rs[1].key.as_deref(), Some(&b"b"[..]));
            assert!(rs[1].tombstone && !rs[0].tombstone);
            assert!(has_keyless(&b, &h).unwrap());
            let keep = vec![rs[1].clone(), rs[2].clone()];
            let nb = rebuild(&b, &h, &keep).unwrap();
            let nh = parse_header(&nb).unwrap();
            check_crc(&nb, &nh).unwrap();
            assert_eq!(nh.base_offset, h.base_offset);
            assert_eq!(nh.last_offset_delta, 3);
            assert_eq!(nh.record_count, 2);
            assert_eq!(nh.producer_id, 7);
            assert_eq!(nh.base_sequence, h.base_sequence);
            let set = RecordBatchDecoder::decode(&mut nb.clone()).unwrap();
            let got: Vec<(i64, i64, Option<Bytes>)> = set
                .records
                .iter()
                .map(|r| (r.offset, r.timestamp, r.value.clone()))
                .collect();
            assert_eq!(
                got,
                vec![
                    (101, 1_001, None),
                    (102, 1_002, Some(Bytes::from_static(b"2")))
                ],
                "{c:?}"
            );
            // Nothing left: an empty batch that still spans the same offsets.
            let empty = rebuild(&b, &h, &[]).unwrap();
            let eh = parse_header(&empty).unwrap();
            check_crc(&empty, &eh).unwrap();
            assert_eq!((eh.record_count, eh.last_offset_delta), (0, 3));
            assert_eq!(empty.len(), HEADER_LEN);
        }
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let b = encoded(&[(Some("k"), Some("v"))], Compression::None);
        let h = parse_header(&b).unwrap();
        let mut cut = BytesMut::from(&b[..]);
        cut[57..61].copy_from_slice(&5i32.to_be_bytes());
        assert!(records(&cut, &h).is_ok());
        let mut h5 = h;
        h5.record_count = 5;
        assert!(matches!(records(&cut, &h5), Err(RecordsError::Corrupt)));
    }
}
