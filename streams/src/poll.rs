//! The stream thread's consumer poll, one level below the `rdkafka` crate. The crate turns a
//! partition EOF into `PartitionEOF(partition)` and drops the topic, and timestamp order
//! across a task's topics ([`crate::merge`]) needs to know which topic reached its end.
//! [`Record`] owns librdkafka's message, so a record waiting in a merge lane costs no copy;
//! every `Record` must be dropped before the consumer is.

use std::ffi::CStr;
use std::ptr::NonNull;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka_sys as rdsys;
use rdsys::rd_kafka_resp_err_t as Err;

/// What one poll returned.
pub(crate) enum Polled {
    Record(Record),
    /// The fetcher reached the end of `topic` [`partition`] (enable.partition.eof).
    Eof {
        topic: String,
        partition: i32,
    },
    Error(String),
}

/// One consumed record, owning librdkafka's message.
pub(crate) struct Record(NonNull<rdsys::rd_kafka_message_t>);

impl Drop for Record {
    fn drop(&mut self) {
        // SAFETY: the message came from rd_kafka_consumer_poll and is destroyed once, here.
        unsafe { rdsys::rd_kafka_message_destroy(self.0.as_ptr()) }
    }
}

/// SAFETY (for the accessors): the pointer is valid until drop; librdkafka does not change a
/// message once handed out.
impl Record {
    fn msg(&self) -> &rdsys::rd_kafka_message_t {
        unsafe { self.0.as_ref() }
    }

    pub(crate) fn topic(&self) -> &str {
        topic_of(self.msg())
    }

    pub(crate) fn partition(&self) -> i32 {
        self.msg().partition
    }

    pub(crate) fn offset(&self) -> i64 {
        self.msg().offset
    }

    /// The record's timestamp (create or log-append time), 0 when it has none.
    pub(crate) fn timestamp(&self) -> i64 {
        let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        let ts = unsafe { rdsys::rd_kafka_message_timestamp(self.0.as_ptr(), &mut kind) };
        ts.max(0)
    }

    pub(crate) fn key(&self) -> Option<&[u8]> {
        let m = self.msg();
        slice(m.key as *const u8, m.key_len)
    }

    pub(crate) fn payload(&self) -> Option<&[u8]> {
        let m = self.msg();
        slice(m.payload as *const u8, m.len)
    }
}

fn slice<'a>(p: *const u8, len: usize) -> Option<&'a [u8]> {
    // SAFETY: librdkafka's key/payload pointers are valid for len bytes while the message lives.
    (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p, len) })
}

fn topic_of(m: &rdsys::rd_kafka_message_t) -> &str {
    if m.rkt.is_null() {
        return "";
    }
    // SAFETY: a message's topic handle outlives it; the name is NUL-terminated.
    unsafe { CStr::from_ptr(rdsys::rd_kafka_topic_name(m.rkt)) }
        .to_str()
        .unwrap_or("")
}

/// What `BaseConsumer::poll` does (serve the main queue, then the consumer queue), keeping
/// the EOF's topic.
pub(crate) fn poll<C: ConsumerContext>(c: &BaseConsumer<C>, timeout: Duration) -> Option<Polled> {
    let rk = c.client().native_ptr();
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: the consumer outlives this call; a returned message is owned by `Record`.
    unsafe { rdsys::rd_kafka_poll(rk, 0) };
    let m = NonNull::new(unsafe { rdsys::rd_kafka_consumer_poll(rk, ms) })?;
    let rec = Record(m);
    let err = rec.msg().err;
    Some(match err {
        Err::RD_KAFKA_RESP_ERR_NO_ERROR => Polled::Record(rec),
        Err::RD_KAFKA_RESP_ERR__PARTITION_EOF => Polled::Eof {
            topic: rec.topic().to_string(),
            partition: rec.partition(),
        },
        e => Polled::Error(format!("{} ({})", RDKafkaErrorCode::from(e), rec.topic())),
    })
}
