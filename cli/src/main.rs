//! `fjord`: one command for what kafka-topics, kafka-console-*, kafka-consumer-groups,
//! kafka-configs and zkCli do (README → Running it like ZooKeeper / Kafka).
//!
//! Each command family lives in its own module with a clap `Args` struct and an
//! async `run`; this file only parses and dispatches, so adding `topic`,
//! `produce`, `consume`, `group`, `config`, `cluster` or `offsets` is one module
//! plus one enum variant.

mod acl;
mod cluster;
mod connect;
mod consume;
mod dlq;
mod formatter;
mod group;
mod kafka;
mod log_dirs;
mod offsets;
mod produce;
mod schema;
mod sr_client;
mod topic;
mod txn;
mod typed;
mod user;
mod znode;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// How results are printed: for people (zkCli/Kafka-tool shapes) or for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Parser)]
#[command(name = "fjord", version, about = "Fjord command-line tool")]
struct Cli {
    /// Output format: `text` (like zkCli / Kafka's tools) or `json` (one JSON value per command).
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect and edit the coordinator's znodes (like zkCli.sh).
    Znode(znode::ZnodeArgs),
    /// Consumer groups: list, describe, reset-offsets, delete (like kafka-consumer-groups).
    Group(group::GroupArgs),
    /// Topics: create, list, describe, delete, alter (like kafka-topics).
    Topic(topic::TopicArgs),
    /// Send stdin lines as records (like kafka-console-producer).
    Produce(produce::ProduceArgs),
    /// Print records (like kafka-console-consumer).
    Consume(consume::ConsumeArgs),
    /// Cluster id, brokers, API versions (like kafka-broker-api-versions).
    Cluster(cluster::ClusterArgs),
    /// Partition offsets by time (like GetOffsetShell).
    Offsets(offsets::OffsetsArgs),
    /// Transactions: list, describe (like kafka-transactions).
    Txn(txn::TxnArgs),
    /// The Schema Registry: subjects, versions, register, check, delete, config, mode.
    Schema(schema::SchemaArgs),
    /// SCRAM users: create, delete, list (like kafka-configs --entity-type users).
    User(user::UserArgs),
    /// Kafka Connect workers' REST API: list, status, create, config, pause, resume, stop, restart, delete, offsets.
    Connect(connect::ConnectArgs),
    /// ACLs: add, list, remove (like kafka-acls).
    Acl(acl::AclArgs),
    /// Each broker's log directories with every replica's size (like kafka-log-dirs --describe).
    LogDirs(log_dirs::LogDirsArgs),
    /// Connect's dead-letter topics: inspect (error headers decoded), replay to a topic.
    Dlq(dlq::DlqArgs),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Znode(args) => znode::run(args, cli.output).await,
        Command::User(args) => user::run(args, cli.output).await,
        Command::Acl(args) => acl::run(args, cli.output).await,
        Command::Group(args) => group::run(args, cli.output).await,
        Command::Topic(args) => topic::run(args, cli.output).await,
        Command::Produce(args) => produce::run(args, cli.output).await,
        Command::Consume(args) => consume::run(args, cli.output).await,
        Command::Cluster(args) => cluster::run(args, cli.output).await,
        Command::Offsets(args) => offsets::run(args, cli.output).await,
        Command::Txn(args) => txn::run(args, cli.output).await,
        Command::Schema(args) => schema::run(args, cli.output).await,
        Command::Connect(args) => connect::run(args, cli.output).await,
        Command::Dlq(args) => dlq::run(args, cli.output).await,
        Command::LogDirs(args) => log_dirs::run(args, cli.output).await,
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e, cli.output);
            ExitCode::FAILURE
        }
    }
}

/// One line on stderr: the reason, zkCli-worded where zkCli has words for it.
fn report(e: &anyhow::Error, output: Output) {
    let msg = format!("{e:#}");
    match output {
        Output::Text => eprintln!("{msg}"),
        Output::Json => {
            let mut obj = serde_json::json!({ "error": msg });
            if let Some(code) = e
                .downcast_ref::<znode::CliError>()
                .and_then(|c| c.code.as_ref())
            {
                obj["code"] = serde_json::Value::String(code.clone());
            }
            eprintln!("{obj}");
        }
    }
}
