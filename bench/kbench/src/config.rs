//! librdkafka client configurations built from the command line.

use crate::args::Args;
use rdkafka::config::ClientConfig;

/// bootstrap.servers and every `--set KEY=VALUE`.
pub fn base(a: &Args) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &a.brokers);
    for (k, v) in &a.extra {
        c.set(k, v);
        if k == "debug" {
            // The crate's default level (from the `log` crate, unset here) drops them.
            c.set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
        }
    }
    c
}

/// The producer settings under test.
pub fn producer(a: &Args) -> ClientConfig {
    let mut c = base(a);
    c.set("acks", a.acks())
        .set("linger.ms", a.linger_ms.to_string())
        .set("batch.size", a.batch_size.to_string())
        .set("compression.codec", a.compression.name());
    if a.idempotence || a.transactional {
        c.set("enable.idempotence", "true");
    }
    c
}

/// A consumer in `group` that starts from the earliest offset; it commits nothing unless
/// it is a real group member (`--group`).
pub fn consumer(a: &Args, group: &str) -> ClientConfig {
    let mut c = base(a);
    c.set("group.id", group)
        .set("auto.offset.reset", "earliest");
    if a.group.is_none() {
        c.set("enable.auto.commit", "false");
    }
    c
}
