//! The sink task consumer's librdkafka context: what happens when the group assigns
//! or revokes its partitions, and where librdkafka's log lines go.
//!
//! On assignment the task looks up the group's committed offsets itself and starts
//! a partition the group never committed at its earliest offset (the sink's
//! `auto.offset.reset=earliest`). librdkafka (2.0.2) would find that out on its own,
//! but it treats "no committed offset" as an error and waits 100 ms before it asks
//! for the earliest offset: every new sink connector started a tenth of a second
//! late. Partitions with a committed offset start there, as librdkafka would have
//! them; if a lookup fails, librdkafka's own path runs unchanged.

use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rdkafka::client::{ClientContext, NativeClient};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

/// How long an assignment may wait for each lookup (it runs inside the task's poll;
/// librdkafka's own lookup follows if it does not answer in time).
const COMMITTED_TIMEOUT_MS: i32 = 2000;

/// Notes partition revocation, so the sink drops buffers of partitions it lost.
pub struct SinkContext {
    pub revoked: Arc<AtomicBool>,
}

impl ClientContext for SinkContext {
    /// librdkafka's own lines (its errors, and what `consumer.debug=` asks for) go to
    /// the worker's log, not to the `log` crate nobody listens to.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, line: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{line}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{line}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", fac, "{line}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{line}"),
        }
    }
}

impl ConsumerContext for SinkContext {
    /// As rdkafka's default (assign on assignment, unassign otherwise), with the
    /// start positions set first and revocations noted.
    fn rebalance(&self, client: &NativeClient, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = is_cooperative(client);
        // SAFETY (all three calls): `client` is the live consumer handle librdkafka
        // passed to this callback and `tpl` its partition list, both valid for the
        // call; librdkafka copies the list.
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                start_positions(client, tpl);
                unsafe {
                    if cooperative {
                        rdkafka_sys::rd_kafka_incremental_assign(client.ptr(), tpl.ptr());
                    } else {
                        rdkafka_sys::rd_kafka_assign(client.ptr(), tpl.ptr());
                    }
                }
            }
            _ => {
                if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    tracing::warn!(error = ?err, "sink consumer rebalance error");
                }
                self.revoked.store(true, Ordering::SeqCst);
                unsafe {
                    if cooperative {
                        rdkafka_sys::rd_kafka_incremental_unassign(client.ptr(), tpl.ptr());
                    } else {
                        rdkafka_sys::rd_kafka_assign(client.ptr(), std::ptr::null());
                    }
                }
            }
        }
    }
}

/// Whether the group runs the cooperative protocol (`cooperative-sticky`), whose
/// assignments are increments.
fn is_cooperative(client: &NativeClient) -> bool {
    // SAFETY: a live handle; librdkafka returns a static string or NULL.
    let p = unsafe { rdkafka_sys::rd_kafka_rebalance_protocol(client.ptr()) };
    !p.is_null() && unsafe { CStr::from_ptr(p) }.to_bytes() == b"COOPERATIVE"
}

/// Each assigned partition's start: its committed offset, or its earliest offset when
/// the group never committed one. Left to librdkafka when a lookup fails.
fn start_positions(client: &NativeClient, tpl: &mut TopicPartitionList) {
    let committed = tpl.clone();
    // SAFETY: a live handle and a list this function owns; the call blocks until
    // the group coordinator answers or the timeout passes.
    let err = unsafe {
        rdkafka_sys::rd_kafka_committed(client.ptr(), committed.ptr(), COMMITTED_TIMEOUT_MS)
    };
    if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
        tracing::debug!(error = ?err, "committed offsets not known; librdkafka looks them up");
        return;
    }
    for e in committed.elements() {
        let start = match (e.error(), e.offset()) {
            (Ok(()), Offset::Offset(o)) if o >= 0 => o,
            (Ok(()), Offset::Invalid) => match log_start(client, e.topic(), e.partition()) {
                Some(o) => o,
                None => continue,
            },
            _ => continue,
        };
        let _ = tpl.set_partition_offset(e.topic(), e.partition(), Offset::Offset(start));
    }
}

/// The partition's earliest offset. A number, not `Offset::Beginning`: librdkafka
/// looks a logical offset up as soon as the partition is assigned, and when it does
/// not know the leader yet it waits 500 ms before it tries again.
fn log_start(client: &NativeClient, topic: &str, partition: i32) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: a live handle, a NUL-terminated topic name and two out-parameters
    // that outlive the (blocking) call.
    let err = unsafe {
        rdkafka_sys::rd_kafka_query_watermark_offsets(
            client.ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
            COMMITTED_TIMEOUT_MS,
        )
    };
    (err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR && low >= 0).then_some(low)
}
