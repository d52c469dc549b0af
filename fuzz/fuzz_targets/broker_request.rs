//! Feeds arbitrary bytes to fjord-broker's request decoder as one frame (the
//! bytes after the 4-byte length prefix), then does what the handlers do with
//! a decoded request before touching state: split and CRC-check every Produce
//! partition's record batches, read a transaction marker's record, patch
//! their headers, and re-encode the body.
//! Whatever arrives, nothing may panic or abort.
//!
//! The broker's `wire::codec` and `alloc_guard` modules and fjord-kafka's `batch`
//! are compiled in directly (they depend on nothing else in their crates), so
//! this target needs no RocksDB build. The allocator guard is installed as in fjord-broker: the
//! `kafka-protocol` decoder reserves capacity from wire lengths, and the guard
//! is what keeps a hostile length from aborting the process.
#![no_main]

#[path = "../../broker/src/alloc_guard.rs"]
#[allow(dead_code)]
mod alloc_guard;
#[path = "../../clients/kafka/src/batch.rs"]
#[allow(dead_code)]
mod batch;
#[path = "../../broker/src/wire/codec.rs"]
#[allow(dead_code)]
mod codec;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::RequestKind;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: alloc_guard::GuardedAlloc = alloc_guard::GuardedAlloc;

fuzz_target!(|data: &[u8]| {
    let Ok(codec::Decoded::Request(req)) = codec::decode_request(Bytes::copy_from_slice(data))
    else {
        let _ = codec::peek_correlation(data);
        return;
    };
    if let RequestKind::Produce(p) = &req.body {
        for t in &p.topic_data {
            for pd in &t.partition_data {
                let Some(records) = &pd.records else { continue };
                if let Ok(batches) = batch::split_batches(records) {
                    for (h, b) in batches {
                        // What the log reads of a transaction marker.
                        let _ = batch::control_marker(&b, &h);
                        let patched = batch::patched(&b, 42, 7);
                        assert_eq!(patched.len(), b.len());
                        assert_eq!(batch::parse_header(&patched).map(|x| x.base_offset), Ok(42));
                        assert_eq!(h.total_len(), b.len());
                    }
                }
            }
        }
    }
    // A decoded request must encode back at its own version without panicking.
    let mut buf = BytesMut::new();
    let _ = req.body.encode(&mut buf, req.version);
});
