//! A response frame as a list of byte chunks, so the socket writer can hand
//! the records of a Fetch response to the kernel by reference (vectored
//! writes) instead of copying them into one buffer. Fetch (v4..=12, the
//! fields the broker sets) is encoded here by hand, byte for byte what the
//! kafka-protocol crate writes; every other response, and a Fetch with
//! anything else set, goes through `codec::encode_response` as one chunk.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseKind};

use super::codec;

/// Records at least this long travel as their own chunk; shorter ones are
/// cheaper copied in line than given their own iovec.
pub const SHARE_MIN: usize = 2048;

/// Encode a full response frame (length prefix, header, body) as chunks.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> anyhow::Result<Vec<Bytes>> {
    if let ResponseKind::Fetch(f) = body {
        if let Some(chunks) = encode_fetch(version, correlation_id, f) {
            return Ok(chunks);
        }
    }
    Ok(vec![codec::encode_response(
        api_key,
        version,
        correlation_id,
        body,
    )?])
}

/// Fetch `version` with everything but what this encoder knows at its default.
fn plain(f: &FetchResponse, version: i16) -> bool {
    (4..=12).contains(&version)
        && f.node_endpoints.is_empty()
        && f.unknown_tagged_fields.is_empty()
        && (version >= 7 || (f.error_code == 0 && f.session_id == 0))
        && f.responses.iter().all(|t| {
            t.unknown_tagged_fields.is_empty()
                && t.topic_id.is_nil()
                && t.partitions.iter().all(|p| plain_partition(p, version))
        })
}

fn plain_partition(p: &PartitionData, version: i16) -> bool {
    let d = PartitionData::default();
    p.diverging_epoch == d.diverging_epoch
        && p.current_leader == d.current_leader
        && p.snapshot_id == d.snapshot_id
        && p.unknown_tagged_fields.is_empty()
        && p.aborted_transactions
            .as_ref()
            .is_none_or(|a| a.iter().all(|t| t.unknown_tagged_fields.is_empty()))
        && (version >= 11 || p.preferred_read_replica == -1)
        && (version >= 5 || p.log_start_offset == -1)
}

/// Appends frame bytes, sharing large records as chunks of their own.
struct Chunks {
    done: Vec<Bytes>,
    cur: BytesMut,
}

impl Chunks {
    fn share(&mut self, b: &Bytes) {
        if b.len() < SHARE_MIN {
            self.cur.extend_from_slice(b);
        } else {
            self.done.push(self.cur.split().freeze());
            self.done.push(b.clone());
        }
    }
}

fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Array or string length: compact (length + 1, varint) from v12, else `i32`/`i16`.
fn put_len(buf: &mut BytesMut, flexible: bool, n: usize, wide: bool) -> Option<()> {
    if flexible {
        put_uvarint(buf, u32::try_from(n).ok()?.checked_add(1)?);
    } else if wide {
        buf.put_i32(i32::try_from(n).ok()?);
    } else {
        buf.put_i16(i16::try_from(n).ok()?);
    }
    Some(())
}

/// The Fetch frame, or `None` when `f` has a field this encoder leaves to
/// the generic one.
fn encode_fetch(version: i16, correlation_id: i32, f: &FetchResponse) -> Option<Vec<Bytes>> {
    if !plain(f, version) {
        return None;
    }
    let flex = version >= 12;
    let mut c = Chunks {
        done: Vec::new(),
        cur: BytesMut::with_capacity(256),
    };
    let b = &mut c.cur;
    b.put_i32(correlation_id);
    if flex {
        b.put_u8(0); // response header v1: no tagged fields
    }
    b.put_i32(f.throttle_time_ms);
    if version >= 7 {
        b.put_i16(f.error_code);
        b.put_i32(f.session_id);
    }
    put_len(b, flex, f.responses.len(), true)?;
    for t in &f.responses {
        let name = t.topic.0.as_bytes();
        put_len(&mut c.cur, flex, name.len(), false)?;
        c.cur.extend_from_slice(name);
        put_len(&mut c.cur, flex, t.partitions.len(), true)?;
        for p in &t.partitions {
            let b = &mut c.cur;
            b.put_i32(p.partition_index);
            b.put_i16(p.error_code);
            b.put_i64(p.high_watermark);
            b.put_i64(p.last_stable_offset);
            if version >= 5 {
                b.put_i64(p.log_start_offset);
            }
            match &p.aborted_transactions {
                None if flex => b.put_u8(0),
                None => b.put_i32(-1),
                Some(a) => {
                    put_len(b, flex, a.len(), true)?;
                    for t in a {
                        b.put_i64(t.producer_id.0);
                        b.put_i64(t.first_offset);
                        if flex {
                            b.put_u8(0);
                        }
                    }
                }
            }
            if version >= 11 {
                b.put_i32(p.preferred_read_replica.0);
            }
            match &p.records {
                None if flex => b.put_u8(0),
                None => b.put_i32(-1),
                Some(r) => {
                    put_len(b, flex, r.len(), true)?;
                    c.share(r);
                }
            }
            if flex {
                c.cur.put_u8(0); // partition tagged fields
            }
        }
        if flex {
            c.cur.put_u8(0); // topic tagged fields
        }
    }
    if flex {
        c.cur.put_u8(0); // response tagged fields
    }
    let mut chunks = Vec::with_capacity(c.done.len() + 2);
    let total: usize = c.done.iter().map(|x| x.len()).sum::<usize>() + c.cur.len();
    chunks.push(Bytes::copy_from_slice(
        &i32::try_from(total).ok()?.to_be_bytes(),
    ));
    chunks.extend(c.done);
    chunks.push(c.cur.freeze());
    Some(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse};
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn response(version: i16, records: &[Option<Bytes>]) -> FetchResponse {
        let parts = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut p = PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_error_code(if r.is_none() { 6 } else { 0 })
                    .with_high_watermark(1000 + i as i64)
                    .with_last_stable_offset(999)
                    .with_records(r.clone());
                if version >= 5 {
                    p.log_start_offset = 7;
                }
                if version >= 11 {
                    p.preferred_read_replica = BrokerId(-1);
                }
                if i == 1 {
                    p.aborted_transactions = Some(vec![
                        AbortedTransaction::default()
                            .with_producer_id(4242.into())
                            .with_first_offset(17),
                        AbortedTransaction::default()
                            .with_producer_id(7.into())
                            .with_first_offset(900),
                    ]);
                }
                if i == 3 {
                    p.aborted_transactions = None;
                }
                p
            })
            .collect();
        let mut f = FetchResponse::default()
            .with_throttle_time_ms(3)
            .with_responses(vec![
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_static_str("topic-a")))
                    .with_partitions(parts),
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_static_str("b")))
                    .with_partitions(vec![]),
            ]);
        if version >= 7 {
            f.session_id = 0;
        }
        f
    }

    fn joined(chunks: &[Bytes]) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    /// Byte for byte what kafka-protocol writes, at every version we serve,
    /// with small, large, empty and null records.
    #[test]
    fn fetch_frames_match_the_generic_encoder() {
        let big = Bytes::from(vec![7u8; 10_000]);
        let small = Bytes::from_static(b"0123456789");
        let records = [
            Some(big.clone()),
            Some(small),
            Some(Bytes::new()),
            None,
            Some(big.clone()),
        ];
        for version in 4..=12 {
            let f = response(version, &records);
            let kind = ResponseKind::Fetch(f);
            let want = codec::encode_response(ApiKey::Fetch, version, 42, &kind).unwrap();
            let got = encode_response(ApiKey::Fetch, version, 42, &kind).unwrap();
            assert!(got.len() > 1, "v{version}: large records are shared");
            assert!(
                got.iter().any(|c| c.as_ptr() == big.as_ptr()),
                "v{version}: records not copied"
            );
            assert_eq!(joined(&got), &want[..], "v{version}");
        }
    }

    #[test]
    fn anything_else_falls_back_to_the_generic_encoder() {
        let mut f = response(12, &[Some(Bytes::from(vec![1u8; 5000]))]);
        f.responses[0].partitions[0].aborted_transactions =
            Some(vec![AbortedTransaction::default()
                .with_unknown_tagged_field(5, Bytes::from_static(b"x"))]);
        let kind = ResponseKind::Fetch(f);
        let got = encode_response(ApiKey::Fetch, 12, 1, &kind).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0],
            codec::encode_response(ApiKey::Fetch, 12, 1, &kind).unwrap()
        );
    }
}
