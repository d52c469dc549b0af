//! What the examples' `main`s share: logging to stderr (`RUST_LOG`, default info), the
//! `-p key=value` properties (Kafka Streams' names or librdkafka's) added to a property map,
//! and a run that stops on SIGTERM/SIGINT and ends with one JSON line of statistics.

use std::collections::BTreeMap;

use anyhow::Context;
use fjord_streams::KafkaStreams;

pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Adds each `key=value` of `args` to `props` (a later one wins).
pub fn add_properties(props: &mut BTreeMap<String, String>, args: &[String]) -> anyhow::Result<()> {
    for p in args {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("property {p}: expected key=value"))?;
        props.insert(k.to_string(), v.to_string());
    }
    Ok(())
}

/// Runs until stopped (a signal, or `exit_when_idle`), then prints
/// `{"event":"stopped","stats":{...}}` on stdout: the one line scripts read.
pub fn run(streams: KafkaStreams) -> anyhow::Result<()> {
    streams.stop_on_signals();
    let stats = streams.run()?;
    println!(
        "{}",
        serde_json::json!({ "event": "stopped", "stats": stats })
    );
    Ok(())
}
