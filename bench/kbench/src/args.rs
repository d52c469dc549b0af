//! kbench's command line: the workload, the topic, how many messages of what size, and
//! the producer settings under test (acks, linger, compression, idempotence).

use clap::{Parser, ValueEnum};

/// What the run measures.
#[derive(Copy, Clone, Debug, PartialEq, ValueEnum)]
pub enum Mode {
    /// Flat-out produce: throughput, and latency from send to delivery report.
    Produce,
    /// Read the topic from offset 0: throughput and the wait for the first message.
    Consume,
    /// Produce at `--rate` while a consumer reads at the end: latency from send to receive.
    E2e,
}

/// `compression.codec`.
#[derive(Copy, Clone, Debug, PartialEq, ValueEnum)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The librdkafka name (`none`, `gzip`, ...).
    pub fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

#[derive(Parser, Debug, Clone)]
#[command(about = "Kafka wire-protocol load generator (librdkafka)")]
pub struct Args {
    /// bootstrap.servers
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    #[arg(long, value_enum)]
    pub mode: Mode,
    #[arg(long, default_value = "kbench")]
    pub topic: String,
    /// Messages to produce/consume (default 1000000; e2e 50000)
    #[arg(long)]
    pub messages: Option<u64>,
    /// Payload bytes (e2e needs >= 16)
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// 0, 1 or all (default 1; all with --idempotence)
    #[arg(long, value_parser = ["0", "1", "all", "-1"])]
    pub acks: Option<String>,
    /// enable.idempotence: producer ids and sequence numbers (needs acks=all)
    #[arg(long)]
    pub idempotence: bool,
    /// produce: transactions (transactional.id, init/begin/commit) of `--txn-records` each
    #[arg(long)]
    pub transactional: bool,
    /// Records per transaction with --transactional
    #[arg(long, default_value_t = 100)]
    pub txn_records: u64,
    /// Producers (threads, one client each; transactional: one transactional.id each)
    /// sharing the records
    #[arg(long, default_value_t = 1)]
    pub producers: u64,
    /// linger.ms (librdkafka default 5)
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// batch.size in bytes (librdkafka default 1000000)
    #[arg(long, default_value_t = 1_000_000)]
    pub batch_size: u64,
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// Partitions when the topic is created
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    #[arg(long, default_value_t = 1)]
    pub replication: i32,
    /// Key each message ("k0000".."k1023", hash-partitioned); default null keys
    #[arg(long)]
    pub keyed: bool,
    /// consume: join this consumer group (subscribe); default: assign all partitions
    #[arg(long)]
    pub group: Option<String>,
    /// e2e: produce rate in messages/s
    #[arg(long, default_value_t = 5000)]
    pub rate: u64,
    /// Give up after this many seconds without progress
    #[arg(long, default_value_t = 30)]
    pub timeout_s: u64,
    /// Extra librdkafka property KEY=VALUE (repeatable)
    #[arg(long = "set", value_parser = parse_kv)]
    pub extra: Vec<(String, String)>,
    /// Also print the result line as one JSON object (the last line of output)
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// How many messages the run moves.
    pub fn messages(&self) -> u64 {
        self.messages.unwrap_or(if self.mode == Mode::E2e {
            50_000
        } else {
            1_000_000
        })
    }

    /// The acks setting in effect.
    pub fn acks(&self) -> &str {
        match &self.acks {
            Some(a) => a,
            None if self.idempotence || self.transactional => "all",
            None => "1",
        }
    }
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s}"))
}
