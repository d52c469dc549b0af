//! zkbench: Fjord's ZooKeeper wire-protocol load generator.
//!
//! Each of `--sessions` sessions carries `--inflight` workers, so up to
//! sessions × inflight requests are outstanding, pipelined per connection. Every
//! operation's latency goes into an HdrHistogram; a few light checks afterwards compare
//! what the server holds with what succeeded. The last line of output is the result,
//! `zkbench mode=... ops_per_s=... p50_us=... p99_us=... p999_us=... verify=ok ...`
//! (then the same as JSON with `--json`). Exit 1 when a check failed or a request erred,
//! 2 when the run could not be made.
//!
//! Files: `args` (command line), `session` (connect, close, bulk setup), `payload`
//! (bytes written and checked), `workload` (the measured workers), `verify` (the checks),
//! `run` (one run, start to result line).

mod args;
mod payload;
mod run;
mod session;
mod verify;
mod workload;

use clap::Parser;

fn main() {
    let args = args::Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n);
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zkbench: fatal: tokio runtime: {e}");
            std::process::exit(2);
        }
    };
    let window = match args.ops {
        Some(n) => format!("ops={n}"),
        None => format!("duration={}s warmup={}s", args.duration, args.warmup),
    };
    eprintln!(
        "zkbench: mode={} connect={} sessions={} inflight={} size={} {window}",
        args.mode.name(),
        args.connect,
        args.sessions,
        args.inflight,
        args.size
    );
    match rt.block_on(run::run(args)) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("zkbench: fatal: {e}");
            std::process::exit(2);
        }
    }
}
