//! The measured part of a run: workers that each issue one request at a time on a shared
//! session until the clock (or the `--ops` budget) runs out, recording each latency.

use crate::args::{Args, Mode};
use crate::payload::{payload, payload_ok};
use crate::session::{close, connect};
use hdrhistogram::Histogram;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use zookeeper_client::{Acls, Client, CreateMode};

/// What every worker of a run shares.
pub struct Shared {
    pub args: Args,
    /// This run's own subtree: `ROOT/c` (creates), `ROOT/k` (keys), `ROOT/e` (ephemerals).
    pub root: String,
    /// Paths of the pre-created keys.
    pub keys: Vec<String>,
    /// Operations that start before this instant are warmup and not recorded.
    pub measure_start: Instant,
    pub deadline: Instant,
    /// Operations left with `--ops`.
    pub budget: AtomicI64,
    pub errors: AtomicU64,
    /// Reads that returned the wrong bytes or no node.
    pub bad_data: AtomicU64,
    pub first_error: Mutex<Option<String>>,
    /// Paths of the sequential znodes the create workload made.
    pub created: Mutex<Vec<String>>,
}

impl Shared {
    /// Whether a worker may start one more operation.
    fn ticket(&self) -> bool {
        match self.args.ops {
            Some(_) => self.budget.fetch_sub(1, Relaxed) > 0,
            None => Instant::now() < self.deadline,
        }
    }

    fn error(&self, e: String) {
        self.errors.fetch_add(1, Relaxed);
        lock(&self.first_error).get_or_insert(e);
    }
}

/// Locks a mutex; a worker that panicked holding it leaves the data usable for a count.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A latency histogram in µs, 1 µs to 120 s, three significant digits.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("constant histogram bounds are valid")
}

/// One request; `mixed` is resolved to get or set first.
enum Op {
    Create,
    Set(usize),
    Get(usize),
    Exists(usize),
    SessionChurn,
}

fn pick(sh: &Shared, rng: &mut StdRng) -> Op {
    let a = &sh.args;
    let mode = match a.mode {
        Mode::Mixed if rng.gen_bool(a.read_ratio) => Mode::Get,
        Mode::Mixed => Mode::Set,
        m => m,
    };
    let k = if sh.keys.is_empty() {
        0
    } else {
        rng.gen_range(0..sh.keys.len())
    };
    match mode {
        Mode::Create => Op::Create,
        Mode::Set | Mode::Mixed => Op::Set(k),
        Mode::Get => Op::Get(k),
        Mode::Exists => Op::Exists(k),
        Mode::SessionChurn => Op::SessionChurn,
    }
}

async fn one_op(sh: &Shared, c: &Client, op: Op, wid: u64, seq: u64) -> Result<(), String> {
    let size = sh.args.size;
    match op {
        Op::Create => {
            let acl = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
            let prefix = format!("{}/c/n-", sh.root);
            let (_, s) = c
                .create(&prefix, &payload(0, seq, size), &acl)
                .await
                .map_err(|e| e.to_string())?;
            lock(&sh.created).push(format!("{prefix}{s}"));
        }
        Op::Set(k) => {
            c.set_data(&sh.keys[k], &payload(k, seq, size), None)
                .await
                .map_err(|e| e.to_string())?;
        }
        Op::Get(k) => {
            let (data, _) = c.get_data(&sh.keys[k]).await.map_err(|e| e.to_string())?;
            if !payload_ok(&data, k, size) {
                sh.bad_data.fetch_add(1, Relaxed);
            }
        }
        Op::Exists(k) => {
            if c.check_stat(&sh.keys[k])
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                sh.bad_data.fetch_add(1, Relaxed);
            }
        }
        Op::SessionChurn => {
            let s = connect(&sh.args).await?;
            let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
            let path = format!("{}/e/s-{wid}-{seq}", sh.root);
            let r = s
                .create(&path, &payload(0, seq, size), &eph)
                .await
                .map_err(|e| e.to_string());
            close(s).await;
            r?;
        }
    }
    Ok(())
}

/// Runs operations on `client` until the run ends; returns the measured latencies.
pub async fn worker(sh: Arc<Shared>, client: Client, wid: u64) -> Histogram<u64> {
    let mut hist = new_hist();
    let mut rng =
        StdRng::seed_from_u64(wid.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ std::process::id() as u64);
    let mut seq = 0u64;
    while sh.ticket() {
        seq += 1;
        let op = pick(&sh, &mut rng);
        let t = Instant::now();
        match one_op(&sh, &client, op, wid, seq).await {
            Ok(()) if t >= sh.measure_start => {
                hist.saturating_record((t.elapsed().as_micros() as u64).max(1));
            }
            Ok(()) => {}
            Err(e) => sh.error(e),
        }
    }
    hist
}
