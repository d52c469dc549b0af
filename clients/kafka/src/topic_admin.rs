//! Topic administration, the calls kafka-topics and kafka-configs make:
//! create a topic, add partitions, describe and alter a topic's configs.
//! Shared by the `fjord` CLI and the web console so both send the same
//! requests; a broker's refusal comes back as [`ClientError::Kafka`].

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::{check, Client, ClientError, Node};

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// DescribeConfigs/IncrementalAlterConfigs resource type of a topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// DescribeConfigs config source: set on the topic itself.
pub const SOURCE_TOPIC: i8 = 1;

/// How long the controller may take to carry out a create or an alter.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

fn sb(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// CreateTopics for one topic with `configs` set on it.
pub async fn create_topic(
    client: &mut Client,
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &[(String, String)],
) -> Result<()> {
    let topic = CreatableTopic::default()
        .with_name(TopicName(sb(name)))
        .with_num_partitions(partitions)
        .with_replication_factor(replication)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(sb(k))
                        .with_value(Some(sb(v)))
                })
                .collect(),
        );
    let req = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(ADMIN_TIMEOUT_MS);
    let resp = client.call(Node::Any, &req, 7).await?;
    for t in &resp.topics {
        check(t.error_code, t.error_message.as_ref())?;
    }
    Ok(())
}

/// CreatePartitions: grow `name` to `count` partitions (the broker places them).
pub async fn create_partitions(client: &mut Client, name: &str, count: i32) -> Result<()> {
    let req = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(TopicName(sb(name)))
            .with_count(count)
            .with_assignments(None)])
        .with_timeout_ms(ADMIN_TIMEOUT_MS);
    let resp = client.call(Node::Any, &req, 3).await?;
    for r in &resp.results {
        check(r.error_code, r.error_message.as_ref())?;
    }
    Ok(())
}

/// One config of a topic as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    /// None when the value is unset or sensitive.
    pub value: Option<String>,
    /// Where the value comes from ([`SOURCE_TOPIC`]: set on the topic).
    pub source: i8,
    pub sensitive: bool,
    pub read_only: bool,
}

impl ConfigEntry {
    /// Set on the topic itself (not a broker or built-in default).
    pub fn on_topic(&self) -> bool {
        self.source == SOURCE_TOPIC
    }

    /// The value for display: `[hidden]` for a sensitive one, empty when unset.
    pub fn shown(&self) -> String {
        if self.sensitive {
            "[hidden]".to_string()
        } else {
            self.value.clone().unwrap_or_default()
        }
    }

    /// Where the value comes from, by Kafka's `ConfigSource` names.
    pub fn source_name(&self) -> &'static str {
        match self.source {
            1 => "TOPIC_CONFIG",
            2 => "DYNAMIC_BROKER_CONFIG",
            3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            4 => "STATIC_BROKER_CONFIG",
            5 => "DEFAULT_CONFIG",
            6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
            _ => "UNKNOWN",
        }
    }
}

/// Every config of each topic in `names` (a topic the broker refuses is left out).
pub async fn describe_topic_configs(
    client: &mut Client,
    names: &[String],
) -> Result<BTreeMap<String, Vec<ConfigEntry>>> {
    let mut out = BTreeMap::new();
    if names.is_empty() {
        return Ok(out);
    }
    let req = DescribeConfigsRequest::default().with_resources(
        names
            .iter()
            .map(|n| {
                DescribeConfigsResource::default()
                    .with_resource_type(RESOURCE_TOPIC)
                    .with_resource_name(sb(n))
                    .with_configuration_keys(None)
            })
            .collect(),
    );
    let resp = client.call(Node::Any, &req, 4).await?;
    for r in resp.results {
        if r.error_code != 0 {
            continue;
        }
        out.insert(r.resource_name.to_string(), config_entries(&r.configs));
    }
    Ok(out)
}

/// DescribeConfigs' entries as [`ConfigEntry`]s.
pub(crate) fn config_entries(
    configs: &[kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult],
) -> Vec<ConfigEntry> {
    configs
        .iter()
        .map(|e| ConfigEntry {
            name: e.name.to_string(),
            value: e.value.as_ref().map(|v| v.to_string()),
            source: e.config_source,
            sensitive: e.is_sensitive,
            read_only: e.read_only,
        })
        .collect()
}

/// IncrementalAlterConfigs on one topic: SET each of `set`, DELETE (back
/// to the default) each of `delete`; other configs stay as they are.
pub async fn alter_topic_configs(
    client: &mut Client,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<()> {
    let mut configs: Vec<AlterableConfig> = set
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(sb(k))
                .with_config_operation(0)
                .with_value(Some(sb(v)))
        })
        .collect();
    configs.extend(delete.iter().map(|k| {
        AlterableConfig::default()
            .with_name(sb(k))
            .with_config_operation(1)
            .with_value(None)
    }));
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(sb(name))
            .with_configs(configs),
    ]);
    let resp = client.call(Node::Any, &req, 1).await?;
    for r in &resp.responses {
        check(r.error_code, r.error_message.as_ref())?;
    }
    Ok(())
}
