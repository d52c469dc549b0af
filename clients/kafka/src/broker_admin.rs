//! What kafka-log-dirs and `kafka-configs --entity-type brokers` read of
//! one broker: its log directory with the size of every replica it holds
//! (DescribeLogDirs) and its configs (DescribeConfigs on the broker
//! resource). Both go to that broker itself: only it knows its disk and
//! its own settings.

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeLogDirsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::client::{check, Client, ClientError, Node};
use crate::topic_admin::{config_entries, ConfigEntry};

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// DescribeConfigs resource type of a broker.
pub const RESOURCE_BROKER: i8 = 4;

/// One log directory of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDir {
    pub path: String,
    /// Its volume's size and free space (-1: the broker does not say).
    pub total_bytes: i64,
    pub usable_bytes: i64,
    pub replicas: Vec<ReplicaSize>,
}

impl LogDir {
    /// The bytes its replicas hold.
    pub fn size(&self) -> i64 {
        self.replicas.iter().map(|r| r.size).sum()
    }
}

/// One partition replica in a log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSize {
    pub topic: String,
    pub partition: i32,
    pub size: i64,
    pub offset_lag: i64,
}

/// Every log directory of broker `id` with its replicas of `only` (topic,
/// partitions), or of every partition. A directory the broker reports
/// offline comes back as its error.
pub async fn describe_log_dirs(
    client: &mut Client,
    id: i32,
    only: Option<&[(String, Vec<i32>)]>,
) -> Result<Vec<LogDir>> {
    let req = DescribeLogDirsRequest::default().with_topics(only.map(|ts| {
        ts.iter()
            .map(|(t, ps)| {
                DescribableLogDirTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(t.clone())))
                    .with_partitions(ps.clone())
            })
            .collect()
    }));
    let resp = client.call(Node::Id(id), &req, 4).await?;
    check(resp.error_code, None)?;
    let mut out = Vec::with_capacity(resp.results.len());
    for d in resp.results {
        check(d.error_code, None)?;
        let replicas = d
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| ReplicaSize {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    size: p.partition_size,
                    offset_lag: p.offset_lag,
                })
            })
            .collect();
        out.push(LogDir {
            path: d.log_dir.to_string(),
            total_bytes: d.total_bytes,
            usable_bytes: d.usable_bytes,
            replicas,
        });
    }
    Ok(out)
}

/// Every config of broker `id`, as that broker reports it.
pub async fn describe_broker_configs(client: &mut Client, id: i32) -> Result<Vec<ConfigEntry>> {
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_BROKER)
            .with_resource_name(StrBytes::from_string(id.to_string()))
            .with_configuration_keys(None)]);
    let resp = client.call(Node::Id(id), &req, 4).await?;
    let Some(r) = resp.results.first() else {
        return Ok(Vec::new());
    };
    check(r.error_code, r.error_message.as_ref())?;
    Ok(config_entries(&r.configs))
}
