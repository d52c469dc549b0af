//! kbench: Fjord's Kafka wire-protocol load generator, on librdkafka (through `rdkafka`).
//!
//! Three workloads: `produce` (throughput, and latency from send to delivery report),
//! `consume` (throughput from offset 0, by assignment or in a group) and `e2e` (latency
//! from send to receive at a fixed rate). The last line of output is the result,
//! `kbench mode=... msgs_per_s=... mb_per_s=... p50_ms=... p99_ms=... verify=ok ...`
//! (then the same as JSON with `--json`). Exit 1 when the run did not verify, 2 when it
//! could not be made.
//!
//! The same source builds twice: `bench/kbench` links librdkafka 2.12 built from
//! source, `bench/kbench-system` links Debian's librdkafka 2.0.2 (what kcat uses), so old
//! clients are tested too. Files: `args`, `config` (client settings), `topic` (create and
//! wait for leaders), `producer`/`consumer` (the clients), `produce`/`consume`/`e2e` (the
//! workloads), `txn` (transactional produce), `outcome` (the result line).

mod args;
mod config;
mod consume;
mod consumer;
mod e2e;
mod outcome;
mod produce;
mod producer;
mod topic;
mod txn;

use args::Mode;
use clap::Parser;

fn main() {
    let a = args::Args::parse();
    let n = a.messages();
    let (_, ver) = rdkafka::util::get_rdkafka_version();
    eprintln!(
        "kbench: librdkafka {ver} mode={:?} brokers={} topic={} messages={n} size={}",
        a.mode, a.brokers, a.topic, a.size
    );
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
        .and_then(|rt| topic::ensure_topic(&a, &rt))
        .and_then(|parts| {
            let o = match a.mode {
                Mode::Produce if a.transactional => txn::produce_txn(&a, n),
                Mode::Produce => produce::produce(&a, n),
                Mode::Consume => consume::consume(&a, n, parts),
                Mode::E2e => e2e::e2e(&a, n, parts),
            };
            o.map(|o| (o, parts))
        });
    match result {
        Ok((o, parts)) => {
            o.print(&a, parts);
            std::process::exit(if o.ok { 0 } else { 1 });
        }
        Err(e) => {
            eprintln!("kbench: fatal: {e}");
            std::process::exit(2);
        }
    }
}
