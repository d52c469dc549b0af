//! payment-alerts: the seeds' example on fjord-streams. Reads JSON payments, writes one
//! alert per customer and UTC day when the 11th payment of that day arrives; malformed
//! payments go to a dead-letter topic. Prints one JSON line of run statistics on exit.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use fjord_streams::{KafkaStreams, StreamsConfig};
use payment_alerts::cli;
use payment_alerts::{topology, Format, Options, RegistryFormat};

#[derive(Parser)]
#[command(about = "Alerts on a customer's 11th payment of a UTC day (fjord-streams example)")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[arg(long, default_value = "payment-alerts")]
    application_id: String,
    /// at_least_once | exactly_once_v2
    #[arg(long, default_value = "at_least_once")]
    processing_guarantee: String,
    #[arg(long, default_value = "/tmp/fjord-streams")]
    state_dir: String,
    /// Grace period of the daily windows, in ms (late payments within it still count).
    #[arg(long, default_value_t = 3_600_000)]
    grace_ms: u64,
    #[arg(long, default_value = "payments")]
    input: String,
    /// json, or avro, json_schema or protobuf (Confluent's wire format through
    /// --schema-registry-url; subjects `<input>-value` and `<output>-value`).
    #[arg(long, default_value = "json")]
    value_format: String,
    /// The Schema Registry, for the registry formats.
    #[arg(long)]
    schema_registry_url: Option<String>,
    #[arg(long, default_value = "payment-alerts")]
    output: String,
    #[arg(long, default_value = "payments-dlq")]
    dlq: String,
    #[arg(long, default_value_t = 11)]
    threshold: i64,
    /// Default: 30000 at_least_once, 100 exactly_once_v2.
    #[arg(long)]
    commit_interval_ms: Option<u64>,
    /// Stop after this long without records (batch runs, benchmarks).
    #[arg(long)]
    exit_when_idle_ms: Option<u64>,
    #[arg(long, default_value_t = 1)]
    replication_factor: i32,
    /// More properties, Kafka Streams' names or librdkafka's: -p key=value (repeatable).
    #[arg(short = 'p', long = "property")]
    properties: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    cli::init_logging();
    let a = Args::parse();
    let mut props = BTreeMap::new();
    props.insert("application.id".to_string(), a.application_id.clone());
    props.insert("bootstrap.servers".to_string(), a.bootstrap.clone());
    props.insert(
        "processing.guarantee".to_string(),
        a.processing_guarantee.clone(),
    );
    props.insert("state.dir".to_string(), a.state_dir.clone());
    props.insert(
        "replication.factor".to_string(),
        a.replication_factor.to_string(),
    );
    props.insert(
        "errors.dead.letter.queue.topic.name".to_string(),
        a.dlq.clone(),
    );
    if let Some(c) = a.commit_interval_ms {
        props.insert("commit.interval.ms".to_string(), c.to_string());
    }
    cli::add_properties(&mut props, &a.properties)?;
    let mut cfg = StreamsConfig::from_properties(&props)?;
    cfg.exit_when_idle = a.exit_when_idle_ms.map(Duration::from_millis);
    let kind = match a.value_format.as_str() {
        "json" => None,
        "avro" => Some(RegistryFormat::Avro),
        "json_schema" => Some(RegistryFormat::JsonSchema),
        "protobuf" => Some(RegistryFormat::Protobuf),
        other => {
            anyhow::bail!("--value-format {other}: expected json, avro, json_schema or protobuf")
        }
    };
    let format = match (kind, &a.schema_registry_url) {
        (None, _) => Format::Json,
        (Some(kind), Some(url)) => Format::Registry {
            kind,
            registry_url: url.clone(),
        },
        (Some(_), None) => anyhow::bail!(
            "--value-format {} needs --schema-registry-url",
            a.value_format
        ),
    };
    let opts = Options {
        format,
        input: a.input.clone(),
        output: a.output.clone(),
        threshold: a.threshold,
        grace: Duration::from_millis(a.grace_ms),
    };
    let streams = KafkaStreams::new(topology(&opts)?, cfg);
    cli::run(streams)
}
