//! Makes sure the run's topic exists (created with `--partitions`/`--replication`
//! unless it does) and that every partition has a leader before the run starts.

use crate::args::Args;
use crate::config;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use std::time::{Duration, Instant};

/// Returns the topic's partition count once its metadata shows every partition led.
pub fn ensure_topic(a: &Args, rt: &tokio::runtime::Runtime) -> Result<i32, String> {
    let admin: AdminClient<DefaultClientContext> =
        config::base(a).create().map_err(|e| e.to_string())?;
    let topic = NewTopic::new(
        &a.topic,
        a.partitions,
        TopicReplication::Fixed(a.replication),
    );
    let limit = Duration::from_secs(a.timeout_s);
    let opts = AdminOptions::new()
        .operation_timeout(Some(limit))
        .request_timeout(Some(limit));
    let res = rt
        .block_on(admin.create_topics([&topic], &opts))
        .map_err(|e| e.to_string())?;
    for r in res {
        match r {
            Ok(t) => eprintln!("created topic {t} partitions={}", a.partitions),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => return Err(format!("create topic {t}: {e}")),
        }
    }
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(md) = admin
            .inner()
            .fetch_metadata(Some(&a.topic), Duration::from_secs(5))
        {
            if let Some(t) = md
                .topics()
                .iter()
                .find(|t| t.name() == a.topic && t.error().is_none())
            {
                let parts = t.partitions();
                if !parts.is_empty() && parts.iter().all(|p| p.leader() >= 0 && p.error().is_none())
                {
                    return Ok(parts.len() as i32);
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!("topic {} has no usable metadata", a.topic));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
