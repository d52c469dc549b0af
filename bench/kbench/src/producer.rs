//! The producer both produce and e2e use: one record at a time, with the send time as
//! each record's delivery opaque, so a delivery report gives the send → ack latency.

use crate::args::Args;
use crate::config;
use crate::outcome::{lock, new_hist};
use hdrhistogram::Histogram;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Delivery-report bookkeeping; each record's opaque is its send time in µs since `t0`.
pub struct Deliveries {
    t0: Instant,
    pub hist: Mutex<Histogram<u64>>,
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub first_error: Mutex<Option<String>>,
}

/// librdkafka's log lines (`--set debug=...`) go to stderr with the time since start, so
/// a run's protocol timeline can be read against its figures.
impl ClientContext for Deliveries {
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, fac: &str, line: &str) {
        eprintln!(
            "{:>10.3}ms {fac} {line}",
            self.t0.elapsed().as_secs_f64() * 1e3
        );
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;
    fn delivery(&self, r: &DeliveryResult<'_>, sent_us: usize) {
        match r {
            Ok(_) => {
                self.ok.fetch_add(1, Relaxed);
                let lat = (self.t0.elapsed().as_micros() as u64).saturating_sub(sent_us as u64);
                lock(&self.hist).saturating_record(lat.max(1));
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Relaxed);
                lock(&self.first_error).get_or_insert_with(|| e.to_string());
            }
        }
    }
}

pub type BenchProducer = BaseProducer<Deliveries>;

/// Creates a producer and connects it (metadata fetched) before any clock starts.
pub fn new_producer(a: &Args) -> Result<BenchProducer, String> {
    new_producer_with(a, config::producer(a))
}

/// The same with a given configuration (the transactional workload adds `transactional.id`).
pub fn new_producer_with(a: &Args, cfg: rdkafka::ClientConfig) -> Result<BenchProducer, String> {
    let ctx = Deliveries {
        t0: Instant::now(),
        hist: Mutex::new(new_hist()),
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
    };
    let p: BenchProducer = cfg.create_with_context(ctx).map_err(|e| e.to_string())?;
    p.client()
        .fetch_metadata(Some(&a.topic), Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    Ok(p)
}

/// Sends one record, polling for delivery reports while librdkafka's queue is full.
pub fn send(
    p: &BenchProducer,
    topic: &str,
    key: Option<&str>,
    payload: &[u8],
) -> Result<(), String> {
    let sent = p.context().t0.elapsed().as_micros() as usize;
    let mut rec = BaseRecord::with_opaque_to(topic, sent).payload(payload);
    if let Some(k) = key {
        rec = rec.key(k);
    }
    loop {
        match p.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                p.poll(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e.to_string()),
        }
    }
}
