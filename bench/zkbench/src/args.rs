//! zkbench's command line: which workload, how many sessions and requests in flight,
//! how long, and how large the values are.

use clap::{Parser, ValueEnum};

/// The workload every worker runs.
#[derive(Copy, Clone, Debug, PartialEq, ValueEnum)]
pub enum Mode {
    /// Sequential persistent znodes under one parent.
    Create,
    /// setData on random pre-created keys.
    Set,
    /// getData on random pre-created keys (checks the bytes).
    Get,
    /// exists on random pre-created keys.
    Exists,
    /// get or set, `--read-ratio` of them reads.
    Mixed,
    /// A new session per operation: connect, create an ephemeral, close.
    SessionChurn,
}

impl Mode {
    /// The name as typed on the command line (`session-churn`).
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }

    /// Whether the workload reads or writes the pre-created keys.
    pub fn uses_keys(self) -> bool {
        matches!(self, Mode::Set | Mode::Get | Mode::Exists | Mode::Mixed)
    }
}

#[derive(Parser, Debug, Clone)]
#[command(about = "ZooKeeper wire-protocol load generator")]
pub struct Args {
    /// Server address HOST:PORT (a comma-separated list for an ensemble)
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub connect: String,
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// Concurrent sessions (TCP connections)
    #[arg(long, default_value_t = 16)]
    pub sessions: usize,
    /// Outstanding requests per session (ignored by session-churn)
    #[arg(long, default_value_t = 16)]
    pub inflight: usize,
    /// Measured seconds (after --warmup); ignored when --ops is given
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Total measured operations instead of a duration (no warmup)
    #[arg(long)]
    pub ops: Option<u64>,
    /// Payload bytes for create/set (and pre-created keys)
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Fraction of reads (get) in mixed mode; the rest are set
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Number of pre-created keys for set/get/exists/mixed
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// Unmeasured seconds before the measurement window (duration mode)
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    #[arg(long, default_value_t = 10000)]
    pub session_timeout_ms: u64,
    /// Keep the benchmark's znodes instead of deleting them at the end
    #[arg(long)]
    pub no_cleanup: bool,
    /// Tokio worker threads (default: number of cores)
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also print the result line as one JSON object (the last line of output)
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// Workers per session: one for session-churn (each operation opens its own session).
    pub fn per_session(&self) -> usize {
        if self.mode == Mode::SessionChurn {
            1
        } else {
            self.inflight
        }
    }
}
