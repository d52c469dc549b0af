//! payment-enrich: payments joined with the customers table in event-time order (a
//! fjord-streams example). Prints one JSON line of run statistics on exit.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use fjord_streams::{KafkaStreams, StreamsConfig};
use payment_alerts::cli;

#[derive(Parser)]
#[command(
    about = "Payments enriched with the customer's tier at their time (fjord-streams example)"
)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[arg(long, default_value = "payment-enrich")]
    application_id: String,
    #[arg(long, default_value = "/tmp/fjord-streams")]
    state_dir: String,
    #[arg(long, default_value = "payments")]
    payments: String,
    #[arg(long, default_value = "customers")]
    customers: String,
    #[arg(long, default_value = "payments-enriched")]
    output: String,
    /// Stop after this long without records (batch runs, tests).
    #[arg(long)]
    exit_when_idle_ms: Option<u64>,
    /// More properties, Kafka Streams' names or librdkafka's: -p key=value (repeatable),
    /// e.g. -p max.task.idle.ms=-1 -p processing.guarantee=exactly_once_v2.
    #[arg(short = 'p', long = "property")]
    properties: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    cli::init_logging();
    let a = Args::parse();
    let mut props = BTreeMap::from([
        ("application.id".to_string(), a.application_id.clone()),
        ("bootstrap.servers".to_string(), a.bootstrap.clone()),
        ("state.dir".to_string(), a.state_dir.clone()),
    ]);
    cli::add_properties(&mut props, &a.properties)?;
    let mut cfg = StreamsConfig::from_properties(&props)?;
    cfg.exit_when_idle = a.exit_when_idle_ms.map(Duration::from_millis);
    let topology = payment_enrich::topology(&a.payments, &a.customers, &a.output)?;
    let streams = KafkaStreams::new(topology, cfg);
    cli::run(streams)
}
