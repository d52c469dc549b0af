//! DescribeLogDirs: the broker's log directory, its volume's total and
//! usable bytes, and every partition replica it holds with its size, as
//! `kafka-log-dirs.sh --describe`, admin clients and the console read them.
//! A broker keeps one directory (`log.dirs`' first entry); a store that
//! failed (ENOSPC, EIO) shows as KAFKA_STORAGE_ERROR, as Kafka reports an
//! offline directory.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::common::Ctx;
use crate::wire::error as err;

pub(super) fn describe_log_dirs(cx: Ctx<'_>, r: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let b = cx.b;
    // None asks for every partition; a list, for those named (absent ones are left out).
    let wanted: Option<HashSet<(String, i32)>> = r.topics.map(|ts| {
        ts.into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for p in b.log.all() {
        if wanted
            .as_ref()
            .is_some_and(|w| !w.contains(&(p.topic.clone(), p.index)))
        {
            continue;
        }
        let o = p.offsets();
        topics.entry(p.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index)
                .with_partition_size(p.size_bytes() as i64)
                // Kafka's lag of a current (not future) replica: HW above its log end.
                .with_offset_lag((o.high_watermark - o.log_end).max(0))
                .with_is_future_key(false),
        );
    }
    let disk = b.log.disk();
    // The volume's figures exist from v4 (KIP-827); -1 is Kafka's "unknown".
    let (usable, total) = disk
        .space()
        .filter(|_| cx.version >= 4)
        .map_or((-1, -1), |(free, total)| (free as i64, total as i64));
    let mut dir = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(
            b.config.log_dir.to_string_lossy().into_owned(),
        ))
        .with_total_bytes(total)
        .with_usable_bytes(usable);
    if disk.failed() {
        dir.error_code = err::KAFKA_STORAGE_ERROR;
    } else {
        dir.topics = topics
            .into_iter()
            .map(|(name, mut partitions)| {
                partitions.sort_by_key(|p| p.partition_index);
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions)
            })
            .collect();
    }
    DescribeLogDirsResponse::default().with_results(vec![dir])
}
