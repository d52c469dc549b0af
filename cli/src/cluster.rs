//! `fjord cluster describe|api-versions`: the cluster id, controller and
//! brokers, and kafka-broker-api-versions' per-broker version table.

use clap::{Args, Subcommand};
use fjord_kafka::client::{BrokerInfo, Node};
use kafka_protocol::messages::{ApiKey, DescribeClusterRequest};
use serde_json::json;

use crate::kafka::Bootstrap;
use crate::Output;

/// `fjord cluster ...`
#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    cmd: ClusterCmd,
}

#[derive(Debug, Subcommand)]
enum ClusterCmd {
    /// Cluster id, controller and live brokers.
    Describe {
        #[command(flatten)]
        bs: Bootstrap,
    },
    /// Every broker's API version ranges (like kafka-broker-api-versions).
    ApiVersions {
        #[command(flatten)]
        bs: Bootstrap,
    },
}

/// Kafka's `Node.toString()` shape: `host:port (id: 1 rack: null)`.
fn node(b: &BrokerInfo) -> String {
    format!(
        "{}:{} (id: {} rack: {})",
        b.host,
        b.port,
        b.id,
        b.rack.as_deref().unwrap_or("null")
    )
}

/// Run one `fjord cluster` command.
pub async fn run(args: ClusterArgs, out: Output) -> anyhow::Result<()> {
    match args.cmd {
        ClusterCmd::Describe { bs } => {
            let mut c = bs.connect().await?;
            c.metadata(Some(&[]), false).await?;
            let mut cluster_id = c.cluster_id.clone();
            let mut controller = c.controller_id;
            let mut brokers: Vec<BrokerInfo> = c.brokers.values().cloned().collect();
            // DescribeCluster, where served, is the authoritative answer.
            let conn = c.conn(Node::Any).await?;
            if conn.pick::<DescribeClusterRequest>(1).is_ok() {
                let r = conn.call(&DescribeClusterRequest::default(), 1).await?;
                if r.error_code == 0 {
                    cluster_id = Some(r.cluster_id.to_string());
                    controller = r.controller_id.0;
                    brokers = r
                        .brokers
                        .iter()
                        .map(|b| BrokerInfo {
                            id: b.broker_id.0,
                            host: b.host.to_string(),
                            port: b.port,
                            rack: b.rack.as_ref().map(|r| r.to_string()),
                        })
                        .collect();
                    brokers.sort_by_key(|b| b.id);
                }
            }
            match out {
                Output::Text => {
                    println!("Cluster ID: {}", cluster_id.as_deref().unwrap_or("null"));
                    match brokers.iter().find(|b| b.id == controller) {
                        Some(b) => println!("Controller: {}", node(b)),
                        None => println!("Controller: {controller}"),
                    }
                    println!("Brokers:");
                    for b in &brokers {
                        println!("\t{}", node(b));
                    }
                }
                Output::Json => println!(
                    "{}",
                    json!({
                        "cluster_id": cluster_id,
                        "controller_id": controller,
                        "brokers": brokers.iter().map(|b| json!({
                            "id": b.id, "host": b.host, "port": b.port, "rack": b.rack,
                        })).collect::<Vec<_>>(),
                    })
                ),
            }
            Ok(())
        }
        ClusterCmd::ApiVersions { bs } => {
            let mut c = bs.connect().await?;
            let all = c.all_api_versions().await?;
            let mut json_out = Vec::new();
            for (b, mut versions) in all {
                versions.sort_by_key(|v| v.api_key);
                let mut lines = Vec::new();
                let mut apis = Vec::new();
                for v in &versions {
                    let (name, usable) = match ApiKey::try_from(v.api_key) {
                        Ok(k) => {
                            let ours = k.valid_versions();
                            let usable = if v.min_version > ours.max {
                                "[unusable: node too new]".to_string()
                            } else if v.max_version < ours.min {
                                "[unusable: node too old]".to_string()
                            } else {
                                format!("[usable: {}]", v.max_version.min(ours.max))
                            };
                            (format!("{k:?}"), usable)
                        }
                        Err(_) => ("UNKNOWN".to_string(), "[unusable: unknown api]".into()),
                    };
                    let range = if v.min_version == v.max_version {
                        v.min_version.to_string()
                    } else {
                        format!("{} to {}", v.min_version, v.max_version)
                    };
                    lines.push(format!("\t{name}({}): {range} {usable}", v.api_key));
                    apis.push(json!({
                        "api_key": v.api_key, "name": name,
                        "min_version": v.min_version, "max_version": v.max_version,
                    }));
                }
                match out {
                    Output::Text => {
                        println!("{} -> (\n{}\n)", node(&b), lines.join(",\n"));
                    }
                    Output::Json => json_out.push(json!({
                        "broker": { "id": b.id, "host": b.host, "port": b.port, "rack": b.rack },
                        "api_versions": apis,
                    })),
                }
            }
            if out == Output::Json {
                println!("{}", serde_json::Value::Array(json_out));
            }
            Ok(())
        }
    }
}
