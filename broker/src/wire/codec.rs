//! Kafka wire codec glue over the `kafka-protocol` crate: frame limits, request
//! header/body decoding, the advertised API version table, response framing.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    api_versions_response::ApiVersion,
    write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic},
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
    TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Why a frame could not be turned into a request: the connection closes.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("frame too short")]
    Short,
    #[error("unknown api key {0}")]
    UnknownApi(i16),
    #[error("unsupported version {1} of api {0:?}")]
    UnsupportedVersion(ApiKey, i16),
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// The API versions this broker serves: overlapping what librdkafka 2.0,
/// librdkafka 2.1x and kafka-python send, and within the crate's own range.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    // Reassignment (KIP-455), answered by the controller.
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    // Groups and offsets (broker/src/group): librdkafka 2.0 needs the group
    // APIs from v0, OffsetFetch v1 and OffsetCommit <= v2.
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    // Transactions (broker/src/txn). v4+ of AddPartitionsToTxn, EndTxn and
    // TxnOffsetCommit are KIP-890's; not served.
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    // Transactions (KIP-98), the partition side: v0 as Kafka 2.x/3.x brokers
    // send it (decoded here by hand), v1 (flexible) through the crate.
    (ApiKey::WriteTxnMarkers, 0, 1),
    // Security (broker/src/security): SASL on SASL_* listeners, SCRAM users.
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    // ACLs (broker/src/acl, api/acls.rs); v1+ (pattern types), as Kafka 4.
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
];

/// Version range we advertise for `key`, if any.
pub fn supported(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, lo, hi)| (*lo, *hi))
}

/// The ApiVersions table as sent to clients.
pub fn api_versions_table() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|(k, lo, hi)| {
            ApiVersion::default()
                .with_api_key(*k as i16)
                .with_min_version(*lo)
                .with_max_version(*hi)
        })
        .collect()
}

/// A decoded request ready for the handlers.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
    /// The client's address (set by the connection; group members' host).
    pub peer: Option<std::net::SocketAddr>,
    /// The listener the connection came in on (empty: unknown): Metadata and
    /// FindCoordinator answer with that listener's advertised addresses.
    pub listener: std::sync::Arc<str>,
    /// The authenticated principal (`User:alice`, `User:ANONYMOUS`), for ACLs.
    pub principal: std::sync::Arc<str>,
}

/// What the connection should do with one frame.
#[derive(Debug)]
pub enum Decoded {
    Request(Box<Request>),
    /// An ApiVersions request above our max: answer v0-shaped error 35 (Kafka's rule).
    ApiVersionsFallback {
        correlation_id: i32,
    },
}

/// Decode one frame (without its 4-byte length prefix).
pub fn decode_request(mut frame: Bytes) -> Result<Decoded, CodecError> {
    if frame.len() < 8 {
        return Err(CodecError::Short);
    }
    let key_raw = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(key_raw).map_err(|_| CodecError::UnknownApi(key_raw))?;
    let Some((lo, hi)) = supported(api_key) else {
        return Err(CodecError::UnknownApi(key_raw));
    };
    if api_key == ApiKey::ApiVersions && version > hi {
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        return Ok(Decoded::ApiVersionsFallback { correlation_id });
    }
    if version < lo || version > hi {
        return Err(CodecError::UnsupportedVersion(api_key, version));
    }
    let markers_v0 = api_key == ApiKey::WriteTxnMarkers && version == 0;
    let hv = if markers_v0 {
        1
    } else {
        api_key.request_header_version(version)
    };
    let header = RequestHeader::decode(&mut frame, hv)
        .map_err(|e| CodecError::Malformed(format!("header: {e}")))?;
    let body = if markers_v0 {
        RequestKind::WriteTxnMarkers(decode_markers_v0(&mut frame)?)
    } else {
        RequestKind::decode(api_key, &mut frame, version)
            .map_err(|e| CodecError::Malformed(format!("{api_key:?} v{version}: {e}")))?
    };
    Ok(Decoded::Request(Box::new(Request {
        api_key,
        version,
        header,
        body,
        peer: None,
        listener: std::sync::Arc::from(""),
        principal: std::sync::Arc::from("User:ANONYMOUS"),
    })))
}

/// Encode a full response frame (length prefix, header, body).
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    if let (ApiKey::WriteTxnMarkers, 0, ResponseKind::WriteTxnMarkers(r)) = (api_key, version, body)
    {
        buf.put_i32(correlation_id);
        encode_markers_v0(&mut buf, r)?;
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        return Ok(buf.freeze());
    }
    // ApiVersions responses always use header v0 so old clients can parse them.
    let hv = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, hv)?;
    body.encode(&mut buf, version)?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// The v0-shaped ApiVersions answer with UNSUPPORTED_VERSION (35).
pub fn api_versions_fallback(correlation_id: i32) -> anyhow::Result<Bytes> {
    let body = ApiVersionsResponse::default()
        .with_error_code(kafka_protocol::error::ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_versions_table());
    encode_response(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &ResponseKind::ApiVersions(body),
    )
}

/// WriteTxnMarkers v0, which the kafka-protocol crate no longer knows (Kafka
/// 4 dropped it) but Kafka 0.11 to 3.x brokers send: the same fields as v1
/// in the classic (non-flexible) encoding, with request header v1 and
/// response header v0.
fn v0_short() -> CodecError {
    CodecError::Malformed("WriteTxnMarkers v0: truncated".into())
}

fn v0_need(b: &Bytes, n: usize) -> Result<(), CodecError> {
    if b.remaining() < n {
        return Err(v0_short());
    }
    Ok(())
}

/// An array count; each element takes at least `min` bytes, so a count
/// the frame cannot hold is refused before anything is allocated.
fn v0_count(b: &mut Bytes, min: usize) -> Result<usize, CodecError> {
    v0_need(b, 4)?;
    let n = b.get_i32();
    let n = usize::try_from(n).map_err(|_| CodecError::Malformed("null array".into()))?;
    if n.saturating_mul(min) > b.remaining() {
        return Err(v0_short());
    }
    Ok(n)
}

fn decode_markers_v0(b: &mut Bytes) -> Result<WriteTxnMarkersRequest, CodecError> {
    let mut markers = Vec::new();
    for _ in 0..v0_count(b, 19)? {
        v0_need(b, 11)?;
        let producer_id = b.get_i64();
        let producer_epoch = b.get_i16();
        let transaction_result = b.get_u8() != 0;
        let mut topics = Vec::new();
        for _ in 0..v0_count(b, 6)? {
            v0_need(b, 2)?;
            let len = usize::try_from(b.get_i16())
                .map_err(|_| CodecError::Malformed("null topic name".into()))?;
            v0_need(b, len)?;
            let name = StrBytes::from_utf8(b.split_to(len))
                .map_err(|_| CodecError::Malformed("topic name not UTF-8".into()))?;
            let n = v0_count(b, 4)?;
            let partition_indexes = (0..n).map(|_| b.get_i32()).collect();
            topics.push(
                WritableTxnMarkerTopic::default()
                    .with_name(TopicName(name))
                    .with_partition_indexes(partition_indexes),
            );
        }
        v0_need(b, 4)?;
        let coordinator_epoch = b.get_i32();
        markers.push(
            WritableTxnMarker::default()
                .with_producer_id(producer_id.into())
                .with_producer_epoch(producer_epoch)
                .with_transaction_result(transaction_result)
                .with_topics(topics)
                .with_coordinator_epoch(coordinator_epoch),
        );
    }
    Ok(WriteTxnMarkersRequest::default().with_markers(markers))
}

fn v0_len(n: usize) -> anyhow::Result<i32> {
    Ok(i32::try_from(n)?)
}

fn encode_markers_v0(buf: &mut BytesMut, r: &WriteTxnMarkersResponse) -> anyhow::Result<()> {
    buf.put_i32(v0_len(r.markers.len())?);
    for m in &r.markers {
        buf.put_i64(m.producer_id.0);
        buf.put_i32(v0_len(m.topics.len())?);
        for t in &m.topics {
            buf.put_i16(i16::try_from(t.name.0.len())?);
            buf.put_slice(t.name.0.as_bytes());
            buf.put_i32(v0_len(t.partitions.len())?);
            for p in &t.partitions {
                buf.put_i32(p.partition_index);
                buf.put_i16(p.error_code);
            }
        }
    }
    Ok(())
}

/// Peek the correlation id of a frame (for logging a rejected request).
pub fn peek_correlation(frame: &[u8]) -> Option<i32> {
    let mut b = frame.get(4..8)?;
    Some(b.get_i32())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsRequest;

    fn frame(key: i16, version: i16, corr: i32, body: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(key);
        b.put_i16(version);
        b.put_i32(corr);
        b.put_i16(-1); // null client id
        b.extend_from_slice(body);
        b.freeze()
    }

    #[test]
    fn api_versions_v0_decodes() {
        match decode_request(frame(18, 0, 7, &[])).unwrap() {
            Decoded::Request(r) => {
                assert_eq!(r.header.correlation_id, 7);
                assert!(matches!(r.body, RequestKind::ApiVersions(_)));
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn api_versions_above_max_falls_back() {
        assert!(matches!(
            decode_request(frame(18, 9, 3, &[])).unwrap(),
            Decoded::ApiVersionsFallback { correlation_id: 3 }
        ));
        let r = api_versions_fallback(3).unwrap();
        assert_eq!(&r[8..10], &[0, 35]);
    }

    /// WriteTxnMarkers v0 as a Kafka 3.x broker writes it, byte by byte:
    /// decoded to the same request as v1, answered in v0's shape; truncated
    /// or hostile counts are errors.
    #[test]
    fn write_txn_markers_v0_decodes_and_encodes() {
        use kafka_protocol::messages::write_txn_markers_response::*;
        let mut body = BytesMut::new();
        body.put_i32(1); // markers
        body.put_i64(4242);
        body.put_i16(3);
        body.put_u8(1); // COMMIT
        body.put_i32(1); // topics
        body.put_i16(2);
        body.put_slice(b"tx");
        body.put_i32(2);
        body.put_i32(0);
        body.put_i32(5);
        body.put_i32(9); // coordinator epoch
        let req = match decode_request(frame(27, 0, 11, &body)).unwrap() {
            Decoded::Request(r) => r,
            d => panic!("{d:?}"),
        };
        assert_eq!(req.header.correlation_id, 11);
        let RequestKind::WriteTxnMarkers(m) = req.body else {
            panic!("{:?}", req.body)
        };
        let mk = &m.markers[0];
        assert_eq!(
            (
                mk.producer_id.0,
                mk.producer_epoch,
                mk.transaction_result,
                mk.coordinator_epoch
            ),
            (4242, 3, true, 9)
        );
        assert_eq!(mk.topics[0].name.0.as_str(), "tx");
        assert_eq!(mk.topics[0].partition_indexes, vec![0, 5]);
        for cut in 0..body.len() {
            assert!(
                decode_request(frame(27, 0, 1, &body[..cut])).is_err(),
                "{cut}"
            );
        }
        let mut hostile = BytesMut::new();
        hostile.put_i32(i32::MAX);
        assert!(decode_request(frame(27, 0, 1, &hostile)).is_err());

        let resp = ResponseKind::WriteTxnMarkers(WriteTxnMarkersResponse::default().with_markers(
            vec![WritableTxnMarkerResult::default()
                .with_producer_id(4242.into())
                .with_topics(vec![WritableTxnMarkerTopicResult::default()
                    .with_name(kafka_protocol::messages::TopicName(
                        kafka_protocol::protocol::StrBytes::from_static_str("tx"),
                    ))
                    .with_partitions(vec![WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(5)
                        .with_error_code(6)])])],
        ));
        let out = encode_response(ApiKey::WriteTxnMarkers, 0, 11, &resp).unwrap();
        let mut want = BytesMut::new();
        want.put_i32(0);
        want.put_i32(11);
        want.put_i32(1);
        want.put_i64(4242);
        want.put_i32(1);
        want.put_i16(2);
        want.put_slice(b"tx");
        want.put_i32(1);
        want.put_i32(5);
        want.put_i16(6);
        let n = (want.len() - 4) as i32;
        want[..4].copy_from_slice(&n.to_be_bytes());
        assert_eq!(&out[..], &want[..]);
        // v1 goes through the crate (flexible header and body).
        assert!(encode_response(ApiKey::WriteTxnMarkers, 1, 11, &resp).is_ok());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_request(Bytes::from_static(b"\x00")).is_err());
        assert!(decode_request(frame(999, 0, 1, &[])).is_err());
        assert!(decode_request(frame(3, 99, 1, &[])).is_err());
        // Metadata v1 with a truncated topic array.
        assert!(decode_request(frame(3, 1, 1, &[0, 0, 0, 5, 0])).is_err());
        for n in 0..64u8 {
            let mut b = vec![0u8, 0, 0, 7, 0, 0, 0, 1, 0xff, 0xff];
            b.extend(std::iter::repeat_n(n.wrapping_mul(37), n as usize));
            let _ = decode_request(Bytes::from(b));
        }
        let _ = ApiVersionsRequest::default();
    }
}
