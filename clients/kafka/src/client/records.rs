//! Records in v2 record batches: built for Produce with kafka-protocol's
//! `RecordBatchEncoder`, and read from Fetch responses with a bounds-checked
//! parser here (the crate's decoder pre-allocates from unchecked counts and
//! merges duplicate header keys). A malformed batch is a
//! [`ClientError::Batch`], never a panic.

use bytes::{Buf, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::compression::{self as cmpr, Decompressor};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::error::ClientError;

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time in ms.
    pub timestamp: i64,
}

/// Parse a compression name as the Kafka tools spell it.
pub fn parse_compression(s: &str) -> Option<Compression> {
    Some(match s.to_ascii_lowercase().as_str() {
        "none" | "" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => return None,
    })
}

/// One v2 record batch (CRC-32C, varints, optional compression) holding `recs`,
/// without producer id (non-idempotent), offsets 0..n.
pub fn encode_batch(recs: &[ProducerRecord], compression: Compression) -> Result<Bytes> {
    let records: Vec<Record> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // offset - sequence is constant, so the encoder keeps one batch
            // and writes base sequence -1.
            sequence: (i as i32).wrapping_sub(1),
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::with_capacity(64 + recs.len() * 32);
    let opts = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &opts)
        .map_err(|e| ClientError::Encode(format!("record batch: {e}")))?;
    Ok(buf.freeze())
}

/// A record read back from a Fetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub offset: i64,
    pub timestamp: i64,
    /// True when the timestamp is the broker's append time.
    pub log_append_time: bool,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

fn bad(msg: impl Into<String>) -> ClientError {
    ClientError::Batch(msg.into())
}

fn varlong(b: &mut Bytes) -> Result<i64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        if !b.has_remaining() {
            return Err(bad("truncated varint"));
        }
        let byte = b.get_u8();
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    Err(bad("varint too long"))
}

fn varbytes(b: &mut Bytes) -> Result<Option<Bytes>> {
    let n = varlong(b)?;
    if n < 0 {
        return Ok(None);
    }
    let n = usize::try_from(n).map_err(|_| bad("length"))?;
    if n > b.remaining() {
        return Err(bad("field longer than its record"));
    }
    Ok(Some(b.split_to(n)))
}

fn parse_records(
    b: &mut Bytes,
    count: i32,
    base_offset: i64,
    base_ts: i64,
    append_ts: Option<i64>,
    out: &mut Vec<ConsumedRecord>,
) -> Result<()> {
    for _ in 0..count {
        let len = varlong(b)?;
        let len = usize::try_from(len).map_err(|_| bad("negative record length"))?;
        if len > b.remaining() {
            return Err(bad("record longer than its batch"));
        }
        let mut r = b.split_to(len);
        if !r.has_remaining() {
            return Err(bad("empty record"));
        }
        r.advance(1); // attributes (unused in v2)
        let ts_delta = varlong(&mut r)?;
        let off_delta = varlong(&mut r)?;
        let key = varbytes(&mut r)?;
        let value = varbytes(&mut r)?;
        let nh = varlong(&mut r)?;
        if nh < 0 || nh as u64 > r.remaining() as u64 {
            return Err(bad("bad header count"));
        }
        let mut headers = Vec::with_capacity(nh as usize);
        for _ in 0..nh {
            let k = varbytes(&mut r)?.ok_or_else(|| bad("null header key"))?;
            let v = varbytes(&mut r)?;
            headers.push((String::from_utf8_lossy(&k).into_owned(), v));
        }
        out.push(ConsumedRecord {
            offset: base_offset.wrapping_add(off_delta),
            timestamp: append_ts.unwrap_or(base_ts.wrapping_add(ts_delta)),
            log_append_time: append_ts.is_some(),
            key,
            value,
            headers,
        });
    }
    Ok(())
}

/// Decode every complete v2 batch in `data` (a Fetch partition's records),
/// skipping control batches and records before `from`. A trailing partial
/// batch (the broker may cut at max_bytes) is ignored.
pub fn decode_records(data: &Bytes, from: i64) -> Result<Vec<ConsumedRecord>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while data.len() - at >= 17 {
        let rest = &data[at..];
        let blen = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if blen < 0 {
            return Err(bad("negative batch length"));
        }
        let total = 12 + blen as usize;
        if total > rest.len() {
            break;
        }
        let h = crate::batch::parse_header(rest).map_err(|e| bad(e.to_string()))?;
        crate::batch::check_crc(rest, &h).map_err(|e| bad(e.to_string()))?;
        let batch = data.slice(at..at + total);
        at += total;
        if h.is_control() || h.base_offset + (h.last_offset_delta as i64) < from {
            continue;
        }
        let append_ts = (h.attributes & 0x08 != 0).then_some(h.max_timestamp);
        let mut body = batch.slice(crate::batch::HEADER_LEN..);
        let start = out.len();
        let parse = |b: &mut Bytes, out: &mut Vec<ConsumedRecord>| {
            parse_records(
                b,
                h.record_count,
                h.base_offset,
                h.base_timestamp,
                append_ts,
                out,
            )
        };
        match h.attributes & 0x07 {
            0 => parse(&mut body, &mut out)?,
            c => {
                let mut err = None;
                let mut f = |b: &mut Bytes| -> anyhow::Result<()> {
                    if let Err(e) = parse(b, &mut out) {
                        err = Some(e);
                    }
                    Ok(())
                };
                let r = match c {
                    1 => <cmpr::Gzip as Decompressor<Bytes>>::decompress(&mut body, &mut f),
                    2 => <cmpr::Snappy as Decompressor<Bytes>>::decompress(&mut body, &mut f),
                    3 => <cmpr::Lz4 as Decompressor<Bytes>>::decompress(&mut body, &mut f),
                    4 => <cmpr::Zstd as Decompressor<Bytes>>::decompress(&mut body, &mut f),
                    _ => return Err(bad(format!("unknown compression {c}"))),
                };
                r.map_err(|e| bad(format!("decompress: {e}")))?;
                if let Some(e) = err {
                    return Err(e);
                }
            }
        }
        // Drop records before the fetch offset (the batch may start earlier).
        if out[start..].iter().any(|r| r.offset < from) {
            let tail = out.split_off(start);
            out.extend(tail.into_iter().filter(|r| r.offset >= from));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(n: usize) -> Vec<ProducerRecord> {
        (0..n)
            .map(|i| ProducerRecord {
                key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
                value: if i == 3 {
                    None
                } else {
                    Some(Bytes::from(format!("value-{i}")))
                },
                headers: if i == 1 {
                    vec![
                        ("h".into(), Some(Bytes::from_static(b"v"))),
                        ("n".into(), None),
                    ]
                } else {
                    vec![]
                },
                timestamp: 1_700_000_000_000 + i as i64,
            })
            .collect()
    }

    #[test]
    fn batch_round_trip_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let input = recs(50);
            let b = encode_batch(&input, c).unwrap();
            let h = crate::batch::parse_header(&b).unwrap();
            assert_eq!(h.record_count, 50);
            assert_eq!(h.base_sequence, -1);
            assert_eq!(h.producer_id, -1);
            crate::batch::check_crc(&b, &h).unwrap();
            let out = decode_records(&b, 0).unwrap();
            assert_eq!(out.len(), 50, "{c:?}");
            for (i, (r, o)) in input.iter().zip(&out).enumerate() {
                assert_eq!(o.offset, i as i64);
                assert_eq!(o.key, r.key);
                assert_eq!(o.value, r.value);
                assert_eq!(o.headers, r.headers);
                assert_eq!(o.timestamp, r.timestamp);
            }
            // Records before the fetch offset are dropped; a cut batch is ignored.
            assert_eq!(decode_records(&b, 45).unwrap().len(), 5);
            assert!(decode_records(&b.slice(..b.len() - 1), 0)
                .unwrap()
                .is_empty());
        }
    }

    #[test]
    fn patched_offsets_and_bad_batches() {
        let b = encode_batch(&recs(3), Compression::None).unwrap();
        let p = crate::batch::patched(&b, 100, 4);
        let mut two = BytesMut::new();
        two.extend_from_slice(&b);
        two.extend_from_slice(&p);
        let out = decode_records(&two.freeze(), 0).unwrap();
        let offs: Vec<i64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offs, vec![0, 1, 2, 100, 101, 102]);
        let mut v = b.to_vec();
        let last = v.len() - 2;
        v[last] ^= 0xff;
        assert!(decode_records(&Bytes::from(v), 0).is_err());
        // Garbage never panics.
        for n in 0..200usize {
            let g: Vec<u8> = (0..n).map(|i| (i * 31 + n) as u8).collect();
            let _ = decode_records(&Bytes::from(g), 0);
        }
    }
}
