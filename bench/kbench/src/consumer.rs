//! The consumer consume and e2e use, and partition assignment without a group.

use crate::args::Args;
use crate::config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// A consumer in `group` (see `config::consumer`).
pub fn new_consumer(a: &Args, group: &str) -> Result<BaseConsumer, String> {
    config::consumer(a, group)
        .create()
        .map_err(|e| e.to_string())
}

/// Assigns every partition of the topic at `start(partition)`.
pub fn assign_all(
    c: &BaseConsumer,
    a: &Args,
    parts: i32,
    start: impl Fn(i32) -> Offset,
) -> Result<(), String> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts {
        tpl.add_partition_offset(&a.topic, p, start(p))
            .map_err(|e| e.to_string())?;
    }
    c.assign(&tpl).map_err(|e| e.to_string())
}
