//! `fjord topic create|list|describe|delete|alter`: what kafka-topics.sh does,
//! with its output lines (`Created topic X.`, the describe lines).

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use base64::Engine;
use clap::{Args, Subcommand};
use fjord_kafka::client::{check, Client, ClientError, KafkaError, Node, TopicInfo};
use fjord_kafka::topic_admin;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::kafka::{key_value, Bootstrap};
use crate::Output;

/// `fjord topic ...`
#[derive(Debug, Args)]
pub struct TopicArgs {
    #[command(subcommand)]
    cmd: TopicCmd,
}

#[derive(Debug, Subcommand)]
enum TopicCmd {
    /// Create a topic (prints `Created topic X.`).
    Create {
        #[command(flatten)]
        bs: Bootstrap,
        #[arg(long, short = 't')]
        topic: String,
        /// Partition count (default: the broker's num.partitions).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long = "replication-factor")]
        replication_factor: Option<i16>,
        /// Topic config override key=value (repeatable).
        #[arg(long = "config")]
        config: Vec<String>,
        /// Succeed quietly if the topic already exists.
        #[arg(long = "if-not-exists")]
        if_not_exists: bool,
    },
    /// List topic names.
    List {
        #[command(flatten)]
        bs: Bootstrap,
        #[arg(long = "exclude-internal")]
        exclude_internal: bool,
    },
    /// Describe topics: partitions, leaders, replicas, ISR, configs.
    Describe {
        #[command(flatten)]
        bs: Bootstrap,
        /// Topic(s) to describe (default: all).
        #[arg(long, short = 't')]
        topic: Vec<String>,
        /// Only partitions whose ISR is smaller than their replica set.
        #[arg(long = "under-replicated-partitions")]
        under_replicated: bool,
        /// Only partitions without a live leader.
        #[arg(long = "unavailable-partitions")]
        unavailable: bool,
        #[arg(long = "exclude-internal")]
        exclude_internal: bool,
    },
    /// Delete a topic.
    Delete {
        #[command(flatten)]
        bs: Bootstrap,
        #[arg(long, short = 't', required = true)]
        topic: Vec<String>,
        /// Succeed quietly if the topic does not exist.
        #[arg(long = "if-exists")]
        if_exists: bool,
    },
    /// Add partitions (CreatePartitions) and/or change topic configs.
    Alter {
        #[command(flatten)]
        bs: Bootstrap,
        #[arg(long, short = 't')]
        topic: String,
        /// New (larger) partition count.
        #[arg(long)]
        partitions: Option<i32>,
        /// Set a topic config key=value (repeatable).
        #[arg(long = "config")]
        config: Vec<String>,
        /// Remove a topic config override (repeatable).
        #[arg(long = "delete-config")]
        delete_config: Vec<String>,
        /// Move replicas online, kafka-topics' format: partitions separated
        /// by ',', each a ':'-separated broker list ("1:2,2:3" = partition 0
        /// on 1 and 2, partition 1 on 2 and 3; the first is the preferred leader).
        #[arg(long = "replica-assignment")]
        replica_assignment: Option<String>,
        /// With --replica-assignment: wait until the moves are complete.
        #[arg(long)]
        wait: bool,
    },
}

/// Run one `fjord topic` command.
pub async fn run(args: TopicArgs, out: Output) -> anyhow::Result<()> {
    match args.cmd {
        TopicCmd::Create {
            bs,
            topic,
            partitions,
            replication_factor,
            config,
            if_not_exists,
        } => {
            let mut c = bs.connect().await?;
            let configs = config
                .iter()
                .map(|s| key_value(s))
                .collect::<anyhow::Result<Vec<_>>>()?;
            create(
                &mut c,
                &topic,
                partitions.unwrap_or(-1),
                replication_factor.unwrap_or(-1),
                &configs,
                if_not_exists,
                out,
            )
            .await
        }
        TopicCmd::List {
            bs,
            exclude_internal,
        } => {
            let mut c = bs.connect().await?;
            let topics = c.topics(None, false).await?;
            let names: Vec<&str> = topics
                .iter()
                .filter(|t| !(exclude_internal && t.internal))
                .map(|t| t.name.as_str())
                .collect();
            match out {
                Output::Text => names.iter().for_each(|n| println!("{n}")),
                Output::Json => println!("{}", json!(names)),
            }
            Ok(())
        }
        TopicCmd::Describe {
            bs,
            topic,
            under_replicated,
            unavailable,
            exclude_internal,
        } => {
            let mut c = bs.connect().await?;
            describe(
                &mut c,
                &topic,
                under_replicated,
                unavailable,
                exclude_internal,
                out,
            )
            .await
        }
        TopicCmd::Delete {
            bs,
            topic,
            if_exists,
        } => {
            let mut c = bs.connect().await?;
            delete(&mut c, &topic, if_exists, out).await
        }
        TopicCmd::Alter {
            bs,
            topic,
            partitions,
            config,
            delete_config,
            replica_assignment,
            wait,
        } => {
            if partitions.is_none()
                && config.is_empty()
                && delete_config.is_empty()
                && replica_assignment.is_none()
            {
                bail!("nothing to alter: give --partitions, --config, --delete-config or --replica-assignment");
            }
            let moves = replica_assignment
                .as_deref()
                .map(parse_replica_assignment)
                .transpose()?;
            let mut c = bs.connect().await?;
            alter(&mut c, &topic, partitions, &config, &delete_config, out).await?;
            if let Some(m) = moves {
                reassign(&mut c, &topic, &m, wait, out).await?;
            }
            Ok(())
        }
    }
}

fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn not_found(name: &str) -> anyhow::Error {
    anyhow::anyhow!("Topic '{name}' does not exist as expected")
}

fn unknown_topic(e: &KafkaError) -> bool {
    e.error() == Some(ResponseError::UnknownTopicOrPartition)
}

async fn create(
    c: &mut Client,
    name: &str,
    partitions: i32,
    rf: i16,
    configs: &[(String, String)],
    if_not_exists: bool,
    out: Output,
) -> anyhow::Result<()> {
    match topic_admin::create_topic(c, name, partitions, rf, configs).await {
        Ok(()) => {}
        Err(ClientError::Kafka(e)) if e.error() == Some(ResponseError::TopicAlreadyExists) => {
            if !if_not_exists {
                bail!("Topic '{name}' already exists.")
            }
        }
        Err(e) => return Err(e).context(format!("create topic '{name}'")),
    }
    match out {
        Output::Text => println!("Created topic {name}."),
        Output::Json => println!("{}", json!({ "created": name })),
    }
    Ok(())
}

/// Topic configs set on the topic itself (kafka-topics' `Configs:` field).
async fn topic_configs(
    c: &mut Client,
    names: &[String],
) -> anyhow::Result<BTreeMap<String, Vec<(String, String)>>> {
    let all = topic_admin::describe_topic_configs(c, names).await?;
    Ok(all
        .into_iter()
        .map(|(topic, entries)| {
            let set = entries
                .into_iter()
                .filter(|e| e.on_topic())
                .map(|e| {
                    let v = if e.sensitive {
                        "[hidden]".to_string()
                    } else {
                        e.value.unwrap_or_default()
                    };
                    (e.name, v)
                })
                .collect();
            (topic, set)
        })
        .collect())
}

fn ids(v: &[i32]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Kafka's `Uuid.toString()`: URL-safe base64 without padding.
pub fn topic_id(id: &uuid::Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

async fn describe(
    c: &mut Client,
    names: &[String],
    under_replicated: bool,
    unavailable: bool,
    exclude_internal: bool,
    out: Output,
) -> anyhow::Result<()> {
    let topics: Vec<TopicInfo> = if names.is_empty() {
        c.topics(None, false).await?
    } else {
        let mut v = Vec::new();
        for n in names {
            match c.topic(n, false).await {
                Ok(t) => v.push(t),
                Err(ClientError::Kafka(e)) if unknown_topic(&e) => return Err(not_found(n)),
                Err(e) => return Err(e.into()),
            }
        }
        v
    };
    let topics: Vec<TopicInfo> = topics
        .into_iter()
        .filter(|t| !(exclude_internal && t.internal))
        .collect();
    let filtered = under_replicated || unavailable;
    let live: Vec<i32> = c.brokers.keys().copied().collect();
    let configs = if filtered {
        BTreeMap::new()
    } else {
        let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        topic_configs(c, &names).await?
    };
    // Reassignments in progress, as kafka-topics shows them (best effort).
    let mut moving = BTreeMap::new();
    if !filtered {
        for t in &topics {
            if let Ok(m) = reassignments_in_progress(c, t).await {
                moving.insert(t.name.clone(), m);
            }
        }
    }
    let mut json_out = Vec::new();
    for t in &topics {
        let rf = t.partitions.first().map(|p| p.replicas.len()).unwrap_or(0);
        let cfg = configs.get(&t.name).cloned().unwrap_or_default();
        let parts: Vec<_> = t
            .partitions
            .iter()
            .filter(|p| {
                let unavail = p.leader < 0 || !live.contains(&p.leader);
                (!under_replicated || p.isr.len() < p.replicas.len()) && (!unavailable || unavail)
            })
            .collect();
        match out {
            Output::Text => {
                if !filtered {
                    let cfg_s = cfg
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",");
                    println!(
                        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
                        t.name,
                        topic_id(&t.topic_id),
                        t.partitions.len(),
                        rf,
                        cfg_s
                    );
                }
                for p in &parts {
                    let leader = if p.leader < 0 {
                        "none".to_string()
                    } else {
                        p.leader.to_string()
                    };
                    let mut line = format!(
                        "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                        t.name,
                        p.index,
                        leader,
                        ids(&p.replicas),
                        ids(&p.isr)
                    );
                    if !p.offline.is_empty() {
                        line.push_str(&format!("\tOffline: {}", ids(&p.offline)));
                    }
                    if let Some((_, add, rem)) = moving
                        .get(&t.name)
                        .and_then(|m| m.iter().find(|m| m.0 == p.index))
                    {
                        line.push_str(&format!(
                            "\tAdding Replicas: {}\tRemoving Replicas: {}",
                            ids(add),
                            ids(rem)
                        ));
                    }
                    println!("{line}");
                }
            }
            Output::Json => {
                if filtered && parts.is_empty() {
                    continue;
                }
                json_out.push(json!({
                    "topic": t.name,
                    "topic_id": topic_id(&t.topic_id),
                    "partition_count": t.partitions.len(),
                    "replication_factor": rf,
                    "configs": cfg.iter().cloned().collect::<BTreeMap<_, _>>(),
                    "partitions": parts.iter().map(|p| {
                        let (add, rem) = moving
                            .get(&t.name)
                            .and_then(|m| m.iter().find(|m| m.0 == p.index))
                            .map(|m| (m.1.clone(), m.2.clone()))
                            .unwrap_or_default();
                        json!({
                            "partition": p.index,
                            "leader": p.leader,
                            "replicas": p.replicas,
                            "isr": p.isr,
                            "offline": p.offline,
                            "adding_replicas": add,
                            "removing_replicas": rem,
                        })
                    }).collect::<Vec<_>>(),
                }));
            }
        }
    }
    if out == Output::Json {
        println!("{}", serde_json::Value::Array(json_out));
    }
    Ok(())
}

async fn delete(
    c: &mut Client,
    names: &[String],
    if_exists: bool,
    out: Output,
) -> anyhow::Result<()> {
    let existing: Vec<String> = c
        .topics(None, false)
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    let mut todo = Vec::new();
    for n in names {
        if existing.contains(n) {
            todo.push(n.clone());
        } else if !if_exists {
            return Err(not_found(n));
        }
    }
    if !todo.is_empty() {
        let v = c.conn(Node::Any).await?.pick::<DeleteTopicsRequest>(6)?;
        let mut req = DeleteTopicsRequest::default().with_timeout_ms(30_000);
        if v >= 6 {
            req.topics = todo
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(TopicName(str(n)))))
                .collect();
        } else {
            req.topic_names = todo.iter().map(|n| TopicName(str(n))).collect();
        }
        let resp = c.call(Node::Any, &req, 6).await?;
        for r in &resp.responses {
            let name = r.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            check(r.error_code, r.error_message.as_ref())
                .with_context(|| format!("delete topic '{name}'"))?;
        }
    }
    if out == Output::Json {
        println!("{}", json!({ "deleted": todo }));
    }
    Ok(())
}

async fn alter(
    c: &mut Client,
    name: &str,
    partitions: Option<i32>,
    set: &[String],
    del: &[String],
    out: Output,
) -> anyhow::Result<()> {
    let t = match c.topic(name, false).await {
        Ok(t) => t,
        Err(ClientError::Kafka(e)) if unknown_topic(&e) => return Err(not_found(name)),
        Err(e) => return Err(e.into()),
    };
    if let Some(n) = partitions {
        if n <= t.partitions.len() as i32 {
            bail!(
                "The topic {name} currently has {} partition(s); {n} would not be an increase.",
                t.partitions.len()
            );
        }
        topic_admin::create_partitions(c, name, n)
            .await
            .with_context(|| format!("add partitions to '{name}'"))?;
    }
    if !set.is_empty() || !del.is_empty() {
        alter_topic_configs(c, name, set, del).await?;
    }
    if partitions.is_none() && set.is_empty() && del.is_empty() {
        return Ok(());
    }
    if out == Output::Json {
        println!(
            "{}",
            json!({ "altered": name, "partitions": partitions, "set": set, "deleted_configs": del })
        );
    }
    Ok(())
}

/// Parse kafka-topics' `--replica-assignment` ("1:2,2:3").
pub fn parse_replica_assignment(s: &str) -> anyhow::Result<Vec<Vec<i32>>> {
    s.split(',')
        .map(|part| {
            part.split(':')
                .map(|b| {
                    b.trim()
                        .parse::<i32>()
                        .with_context(|| format!("bad broker id {b:?} in --replica-assignment"))
                })
                .collect::<anyhow::Result<Vec<i32>>>()
        })
        .collect()
}

/// AlterPartitionReassignments to the controller (partition i of `moves` is
/// partition i of the topic), then optionally wait until
/// ListPartitionReassignments shows none left for the topic.
async fn reassign(
    c: &mut Client,
    name: &str,
    moves: &[Vec<i32>],
    wait: bool,
    out: Output,
) -> anyhow::Result<()> {
    use alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    let t = c.topic(name, false).await?;
    if moves.len() > t.partitions.len() {
        bail!(
            "--replica-assignment names {} partitions; '{name}' has {}",
            moves.len(),
            t.partitions.len()
        );
    }
    let req = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(TopicName(str(name)))
            .with_partitions(
                moves
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        ReassignablePartition::default()
                            .with_partition_index(i as i32)
                            .with_replicas(Some(r.iter().map(|b| (*b).into()).collect()))
                    })
                    .collect(),
            )]);
    // Only the controller takes it; it can move while we ask.
    let mut tries = 0;
    let resp = loop {
        c.metadata(None, false).await?;
        let resp = c.call(Node::Id(c.controller_id), &req, 0).await?;
        if resp.error_code == ResponseError::NotController.code() && tries < 10 {
            tries += 1;
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            continue;
        }
        check(resp.error_code, resp.error_message.as_ref())
            .with_context(|| format!("reassign partitions of '{name}'"))?;
        break resp;
    };
    for t in &resp.responses {
        for p in &t.partitions {
            check(p.error_code, p.error_message.as_ref())
                .with_context(|| format!("reassign {name}-{}", p.partition_index))?;
        }
    }
    if out == Output::Text {
        println!(
            "Reassignment of {} partition(s) of {name} started.",
            moves.len()
        );
    }
    if wait {
        wait_reassigned(c, name, moves, out).await?;
    }
    if out == Output::Json {
        println!(
            "{}",
            json!({ "reassigned": name, "replicas": moves, "waited": wait })
        );
    }
    Ok(())
}

/// Poll until the reassignment of `name` to `moves` is complete (300 s at most).
async fn wait_reassigned(
    c: &mut Client,
    name: &str,
    moves: &[Vec<i32>],
    out: Output,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        // Done when no broker lists it in progress and Metadata shows the
        // target (a broker's cache may not have seen the request yet).
        let t = c.topic(name, false).await?;
        let pending = reassignments_in_progress(c, &t).await?;
        let placed = moves.iter().enumerate().all(|(i, r)| {
            t.partitions
                .iter()
                .any(|p| p.index == i as i32 && &p.replicas == r)
        });
        if pending.is_empty() && placed {
            if out == Output::Text {
                println!("Reassignment of {name} complete.");
            }
            return Ok(());
        }
        if started.elapsed() > std::time::Duration::from_secs(300) {
            bail!("reassignment of '{name}' still in progress after 300 s: {pending:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Partitions of `t` with a reassignment in progress: (partition, adding, removing).
async fn reassignments_in_progress(
    c: &mut Client,
    t: &TopicInfo,
) -> anyhow::Result<Vec<(i32, Vec<i32>, Vec<i32>)>> {
    use list_partition_reassignments_request::ListPartitionReassignmentsTopics;
    let req = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(Some(vec![ListPartitionReassignmentsTopics::default()
            .with_name(TopicName(str(&t.name)))
            .with_partition_indexes(
                t.partitions.iter().map(|p| p.index).collect(),
            )]));
    let resp = c.call(Node::Any, &req, 0).await?;
    check(resp.error_code, resp.error_message.as_ref())?;
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
    Ok(resp
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            (
                p.partition_index,
                ids(&p.adding_replicas),
                ids(&p.removing_replicas),
            )
        })
        .collect())
}

/// IncrementalAlterConfigs on one topic: SET for `k=v`, DELETE for names
/// (also what a `fjord config alter` can call).
pub async fn alter_topic_configs(
    c: &mut Client,
    name: &str,
    set: &[String],
    del: &[String],
) -> anyhow::Result<()> {
    let set = set
        .iter()
        .map(|s| key_value(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    topic_admin::alter_topic_configs(c, name, &set, del)
        .await
        .with_context(|| format!("alter configs of '{name}'"))?;
    Ok(())
}
