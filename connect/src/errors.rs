//! Connect's error handling for poison records (`errors.*` keys): tolerate or fail,
//! log, and send the original record to a dead-letter queue with Kafka's
//! `__connect.errors.*` headers. Connection failures are not poison: connectors
//! retry them within `errors.retry.timeout` and never dead-letter them.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::config::{self, ConfigError, ConfigMap};

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorPolicy {
    pub tolerate_all: bool,
    pub log: bool,
    pub log_messages: bool,
    pub dlq_topic: Option<String>,
    pub dlq_replication: i32,
    pub context_headers: bool,
    /// ms; -1 retries forever, 0 (Kafka's default) leaves retries to the connector's own
    /// setting (the S3 sink's `s3.part.retries`).
    pub retry_timeout_ms: i64,
    pub retry_delay_max_ms: i64,
}

impl ErrorPolicy {
    pub fn from_config(m: &ConfigMap) -> Result<Self, ConfigError> {
        let tolerate_all =
            config::one_of(m, "errors.tolerance", "none", &["none", "all"])? == "all";
        let retry_timeout_ms = config::int_at_least(m, "errors.retry.timeout", 0, -1)?;
        let retry_delay_max_ms = config::int_at_least(m, "errors.retry.delay.max.ms", 60_000, 1)?;
        let dlq_replication =
            config::int_at_least(m, "errors.deadletterqueue.topic.replication.factor", 3, -1)?
                .min(i32::MAX as i64) as i32;
        if dlq_replication == 0 {
            return Err(ConfigError::new(
                "errors.deadletterqueue.topic.replication.factor",
                "Invalid value 0: Replication factor must be positive or -1 to use the broker's default",
            ));
        }
        Ok(ErrorPolicy {
            tolerate_all,
            log: config::boolean(m, "errors.log.enable", false)?,
            log_messages: config::boolean(m, "errors.log.include.messages", false)?,
            dlq_topic: m
                .get("errors.deadletterqueue.topic.name")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            dlq_replication,
            context_headers: config::boolean(
                m,
                "errors.deadletterqueue.context.headers.enable",
                false,
            )?,
            retry_timeout_ms,
            retry_delay_max_ms,
        })
    }
}

/// Where in the pipeline a record failed (Kafka's `Stage` names).
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    KeyConverter,
    ValueConverter,
    /// A single message transform (`transforms=`).
    Transformation,
    /// The sink connector's write of the record (a row the database refused).
    TaskPut,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::KeyConverter => "KEY_CONVERTER",
            Stage::ValueConverter => "VALUE_CONVERTER",
            Stage::Transformation => "TRANSFORMATION",
            Stage::TaskPut => "TASK_PUT",
        }
    }
}

/// The consumed record as it came from Kafka, for the DLQ and the log.
pub struct RawRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// One failure: what failed and why.
pub struct Failure<'a> {
    pub stage: Stage,
    /// The class that failed (`...JsonConverter`).
    pub class_name: &'a str,
    pub exception_class: &'a str,
    pub message: &'a str,
}

impl Failure<'_> {
    /// A Java-shaped trace: what `/status` shows and the DLQ's stacktrace header holds.
    pub fn trace(&self, r: &RawRecord<'_>) -> String {
        format!(
            "org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler\n\tat fjord-connect worker ({} stage, {})\nCaused by: {}: {}\n\tat {} (record {}-{}@{})",
            self.stage.as_str(),
            self.class_name,
            self.exception_class,
            self.message,
            self.class_name,
            r.topic,
            r.partition,
            r.offset
        )
    }
}

pub struct Reporter {
    policy: ErrorPolicy,
    connector: String,
    task: i32,
    producer: Option<FutureProducer>,
}

impl Reporter {
    /// Build the reporter; with a DLQ topic, make sure it exists (created with the
    /// configured replication factor, as Kafka's worker does).
    pub async fn new(
        policy: ErrorPolicy,
        connector: &str,
        task: i32,
        bootstrap: &str,
    ) -> Result<Self, String> {
        let producer = match &policy.dlq_topic {
            None => None,
            Some(topic) => {
                let mut cc = rdkafka::ClientConfig::new();
                cc.set("bootstrap.servers", bootstrap);
                let admin: AdminClient<DefaultClientContext> =
                    cc.create().map_err(|e| e.to_string())?;
                let nt = NewTopic::new(topic, 1, TopicReplication::Fixed(policy.dlq_replication));
                match admin.create_topics([&nt], &AdminOptions::new()).await {
                    Ok(results) => {
                        for r in results {
                            if let Err((t, code)) = r {
                                if code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                                    tracing::warn!(topic = %t, error = %code, "could not create the dead-letter queue topic");
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not create the dead-letter queue topic")
                    }
                }
                let p: FutureProducer = rdkafka::ClientConfig::new()
                    .set("bootstrap.servers", bootstrap)
                    .set("enable.idempotence", "true")
                    .set("linger.ms", "5")
                    .create()
                    .map_err(|e| e.to_string())?;
                Some(p)
            }
        };
        Ok(Reporter {
            policy,
            connector: connector.to_string(),
            task,
            producer,
        })
    }

    /// Report one poison record. `Err(trace)` means the task must fail (tolerance
    /// `none`, or the DLQ write failed); `Ok` means skip the record and go on.
    pub async fn report(&self, f: &Failure<'_>, r: &RawRecord<'_>) -> Result<(), String> {
        if !self.policy.tolerate_all {
            return Err(f.trace(r));
        }
        if self.policy.log {
            if self.policy.log_messages {
                tracing::error!(connector = %self.connector, task = self.task, stage = f.stage.as_str(), topic = r.topic, partition = r.partition, offset = r.offset,
                    key = ?r.key.map(String::from_utf8_lossy), value = ?r.value.map(String::from_utf8_lossy), error = f.message, "error encountered in task; record skipped");
            } else {
                tracing::error!(connector = %self.connector, task = self.task, stage = f.stage.as_str(), topic = r.topic, partition = r.partition, offset = r.offset,
                    error = f.message, "error encountered in task; record skipped");
            }
        }
        let (Some(topic), Some(p)) = (&self.policy.dlq_topic, &self.producer) else {
            return Ok(());
        };
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        if self.policy.context_headers {
            let ctx = [
                ("__connect.errors.topic", r.topic.to_string()),
                ("__connect.errors.partition", r.partition.to_string()),
                ("__connect.errors.offset", r.offset.to_string()),
                ("__connect.errors.connector.name", self.connector.clone()),
                ("__connect.errors.task.id", self.task.to_string()),
                ("__connect.errors.stage", f.stage.as_str().to_string()),
                ("__connect.errors.class.name", f.class_name.to_string()),
                (
                    "__connect.errors.exception.class.name",
                    f.exception_class.to_string(),
                ),
                ("__connect.errors.exception.message", f.message.to_string()),
                ("__connect.errors.exception.stacktrace", f.trace(r)),
            ];
            for (k, v) in &ctx {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
        }
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
        if let Some(k) = r.key {
            rec = rec.key(k);
        }
        if let Some(v) = r.value {
            rec = rec.payload(v);
        }
        match p.send(rec, Duration::from_secs(30)).await {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(format!(
                "org.apache.kafka.connect.errors.ConnectException: could not write to the dead letter queue topic {topic}: {e}"
            )),
        }
    }
}

impl<'a> RawRecord<'a> {
    /// What a consumed message carried.
    pub fn of<M: Message>(m: &'a M) -> RawRecord<'a> {
        RawRecord {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key(),
            value: m.payload(),
            headers: headers_of(m.headers()),
        }
    }
}

/// Copy a Kafka message's headers (kept on the DLQ record).
pub fn headers_of<H: Headers>(h: Option<&H>) -> Vec<(String, Option<Vec<u8>>)> {
    let Some(h) = h else { return Vec::new() };
    (0..h.count())
        .filter_map(|i| h.try_get(i))
        .map(|hd| (hd.key.to_string(), hd.value.map(|v| v.to_vec())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_properties;

    #[test]
    fn policy_keys() {
        let p = ErrorPolicy::from_config(&parse_properties(
            "errors.tolerance=all\nerrors.deadletterqueue.topic.name=dlq\nerrors.deadletterqueue.topic.replication.factor=1\nerrors.deadletterqueue.context.headers.enable=true\nerrors.retry.timeout=-1\n",
        ))
        .unwrap();
        assert!(p.tolerate_all && p.context_headers);
        assert_eq!(p.dlq_topic.as_deref(), Some("dlq"));
        assert_eq!(p.dlq_replication, 1);
        assert_eq!(p.retry_timeout_ms, -1);
        let d = ErrorPolicy::from_config(&ConfigMap::new()).unwrap();
        assert!(!d.tolerate_all && d.dlq_topic.is_none() && d.dlq_replication == 3);
        assert_eq!(
            ErrorPolicy::from_config(&parse_properties(
                "errors.deadletterqueue.topic.replication.factor=0\n"
            ))
            .unwrap_err()
            .key,
            "errors.deadletterqueue.topic.replication.factor"
        );
    }
}
