//! `fjord txn`: what kafka-transactions.sh's `list` and `describe` do —
//! every transaction the brokers coordinate, or one transactional id's
//! producer, state, timeout, start time and partitions. The Kafka calls are
//! `fjord_kafka::transactions`'s.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use fjord_kafka::client::Client;
use fjord_kafka::transactions;

use crate::Output;

/// `fjord txn ...`
#[derive(Debug, Args)]
pub struct TxnArgs {
    /// A broker to bootstrap from.
    #[arg(
        long = "bootstrap-server",
        global = true,
        default_value = "127.0.0.1:9092"
    )]
    bootstrap: String,
    /// Client properties (`security.protocol`, `sasl.*`, `ssl.*`), as Kafka's tools take them.
    #[arg(long = "command-config", global = true)]
    command_config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    cmd: TxnCmd,
}

#[derive(Debug, Subcommand)]
enum TxnCmd {
    /// List every transaction: id, producer id, state, coordinator.
    List,
    /// Describe one transactional id.
    Describe {
        #[arg(long = "transactional-id")]
        transactional_id: String,
    },
}

/// How long the CLI looks for a transaction's coordinator.
const COORDINATOR_PATIENCE: Duration = Duration::from_secs(5);

fn print_table(rows: &[Vec<String>]) {
    let cols = rows.first().map(|r| r.len()).unwrap_or(0);
    let mut w = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<w$}", c, w = w[i]))
            .collect();
        println!("{}", line.join(" ").trim_end());
    }
}

pub async fn run(args: TxnArgs, output: Output) -> Result<()> {
    let bs = args.bootstrap.clone();
    let cfg = crate::kafka::client_config(&bs, args.command_config.as_deref())?;
    let mut client = Client::connect(cfg)
        .await
        .with_context(|| format!("bootstrap {bs}"))?;
    match args.cmd {
        TxnCmd::List => {
            let list = transactions::list_transactions(&mut client).await?;
            match output {
                Output::Json => {
                    let v: Vec<_> = list
                        .iter()
                        .map(|t| {
                            serde_json::json!({
                                "transactional_id": t.transactional_id,
                                "producer_id": t.producer_id,
                                "state": t.state,
                                "coordinator": t.coordinator,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::Value::Array(v));
                }
                Output::Text => {
                    let mut rows = vec![vec![
                        "TransactionalId".to_string(),
                        "Coordinator".into(),
                        "ProducerId".into(),
                        "TransactionState".into(),
                    ]];
                    for t in &list {
                        rows.push(vec![
                            t.transactional_id.clone(),
                            t.coordinator.to_string(),
                            t.producer_id.to_string(),
                            t.state.clone(),
                        ]);
                    }
                    print_table(&rows);
                }
            }
        }
        TxnCmd::Describe { transactional_id } => {
            let d = transactions::describe_transaction(
                &mut client,
                &transactional_id,
                COORDINATOR_PATIENCE,
            )
            .await?;
            match output {
                Output::Json => {
                    let parts: Vec<_> = d
                        .partitions
                        .iter()
                        .map(|(t, p)| serde_json::json!({"topic": t, "partition": p}))
                        .collect();
                    println!(
                        "{}",
                        serde_json::json!({
                            "transactional_id": d.transactional_id,
                            "coordinator": d.coordinator,
                            "state": d.state,
                            "producer_id": d.producer_id,
                            "producer_epoch": d.producer_epoch,
                            "timeout_ms": d.timeout_ms,
                            "start_ms": d.start_ms,
                            "partitions": parts,
                        })
                    );
                }
                Output::Text => {
                    let parts: Vec<String> = d
                        .partitions
                        .iter()
                        .map(|(t, p)| format!("{t}-{p}"))
                        .collect();
                    print_table(&[
                        vec![
                            "CoordinatorId".to_string(),
                            "TransactionalId".into(),
                            "ProducerId".into(),
                            "ProducerEpoch".into(),
                            "TransactionState".into(),
                            "TransactionTimeoutMs".into(),
                            "CurrentTransactionStartTimeMs".into(),
                            "TopicPartitions".into(),
                        ],
                        vec![
                            d.coordinator.to_string(),
                            d.transactional_id.clone(),
                            d.producer_id.to_string(),
                            d.producer_epoch.to_string(),
                            d.state.clone(),
                            d.timeout_ms.to_string(),
                            d.start_ms.to_string(),
                            if parts.is_empty() {
                                "-".into()
                            } else {
                                parts.join(",")
                            },
                        ],
                    ]);
                }
            }
        }
    }
    Ok(())
}
