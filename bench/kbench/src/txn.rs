//! The transactional produce workload (`--mode produce --transactional`): `--producers`
//! threads, each with its own `transactional.id`, run init_transactions once, then
//! begin → `--txn-records` sends → commit until their share of `n` records is sent. The
//! clock runs from the first begin to the last commit; besides the per-record latency
//! (send → delivery report) it reports the commit_transaction call's latency, which is
//! what a transaction adds (the flush, AddPartitionsToTxn, EndTxn and the markers).
//!
//! Verification: after the clock stops, producer 0 sends one more transaction and aborts
//! it, then a read_committed consumer reads the topic from offset 0: it must see exactly
//! the committed records, none of the aborted ones.

use crate::args::Args;
use crate::config;
use crate::consumer::assign_all;
use crate::outcome::{lock, new_hist, Outcome};
use crate::producer::{new_producer_with, send, BenchProducer};
use bench_summary::Value;
use hdrhistogram::Histogram;
use rand::RngCore;
use rdkafka::consumer::Consumer as _;
use rdkafka::producer::Producer;
use rdkafka::Offset;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// What one producer thread did.
struct Share {
    committed: u64,
    aborted: u64,
    failed: u64,
    txns: u64,
    hist: Histogram<u64>,
    commit_hist: Histogram<u64>,
    error: Option<String>,
}

pub fn produce_txn(a: &Args, n: u64) -> Result<Outcome, String> {
    let producers = a.producers.max(1);
    let k = a.txn_records.max(1);
    // Payloads are windows into 1 MiB of random bytes, as in `produce`.
    let mut rand_buf = vec![0u8; (1 << 20) + a.size];
    rand::thread_rng().fill_bytes(&mut rand_buf);
    let rand_buf = Arc::new(rand_buf);
    let start = Arc::new(Barrier::new(producers as usize + 1));
    let done = Arc::new(Barrier::new(producers as usize + 1));
    let mut handles = Vec::new();
    for i in 0..producers {
        // Every producer gets its share of the records, in transactions of up to `k`.
        let mine = n / producers + u64::from(i < n % producers);
        let (a, buf, start, done) = (a.clone(), rand_buf.clone(), start.clone(), done.clone());
        handles.push(std::thread::spawn(move || {
            run_producer(&a, i, mine, k, &buf, &start, &done)
        }));
    }
    start.wait();
    let t = Instant::now();
    done.wait();
    let secs = t.elapsed().as_secs_f64();
    let mut total = Share {
        committed: 0,
        aborted: 0,
        failed: 0,
        txns: 0,
        hist: new_hist(),
        commit_hist: new_hist(),
        error: None,
    };
    for h in handles {
        let s = h.join().map_err(|_| "producer thread panicked")?;
        total.committed += s.committed;
        total.aborted += s.aborted;
        total.failed += s.failed;
        total.txns += s.txns;
        total.hist.add(&s.hist).map_err(|e| e.to_string())?;
        total
            .commit_hist
            .add(&s.commit_hist)
            .map_err(|e| e.to_string())?;
        if total.error.is_none() {
            total.error = s.error;
        }
    }
    if let Some(e) = &total.error {
        eprintln!("kbench: transactional producer error: {e}");
    }
    let read = count_committed(a, total.committed)?;
    let ms = |us: u64| Value::Float(us as f64 / 1e3, 3);
    let ch = &total.commit_hist;
    let ok = total.error.is_none()
        && total.failed == 0
        && total.committed == n
        && read == total.committed;
    Ok(Outcome {
        msgs: total.committed,
        bytes: total.committed * a.size as u64,
        secs,
        hist: Some(total.hist),
        extra: vec![
            ("failed", Value::Int(total.failed as i64)),
            ("acks", Value::Text(a.acks().to_string())),
            ("linger_ms", Value::Int(a.linger_ms as i64)),
            ("compression", Value::Text(a.compression.name())),
            ("transactional", Value::Bool(true)),
            ("producers", Value::Int(producers as i64)),
            ("txn_records", Value::Int(k as i64)),
            ("txns", Value::Int(total.txns as i64)),
            ("txns_per_s", Value::Float(total.txns as f64 / secs, 1)),
            ("commit_p50_ms", ms(ch.value_at_quantile(0.5))),
            ("commit_p99_ms", ms(ch.value_at_quantile(0.99))),
            ("commit_max_ms", ms(ch.max())),
            ("aborted_sent", Value::Int(total.aborted as i64)),
            ("read_committed", Value::Int(read as i64)),
        ],
        ok,
    })
}

/// One producer thread: init, then `mine` records in transactions of up to `k`, then
/// (producer 0) one aborted transaction.
fn run_producer(
    a: &Args,
    i: u64,
    mine: u64,
    k: u64,
    buf: &[u8],
    start: &Barrier,
    done: &Barrier,
) -> Share {
    let mut s = Share {
        committed: 0,
        aborted: 0,
        failed: 0,
        txns: 0,
        hist: new_hist(),
        commit_hist: new_hist(),
        error: None,
    };
    let limit = Duration::from_secs(a.timeout_s.max(60));
    let mut cfg = config::producer(a);
    cfg.set(
        "transactional.id",
        format!("kbench-{}-{}-{i}", a.topic, std::process::id()),
    );
    let p = match new_producer_with(a, cfg).and_then(|p| {
        p.init_transactions(limit)
            .map_err(|e| format!("init_transactions: {e}"))
            .map(|_| p)
    }) {
        Ok(p) => Some(p),
        Err(e) => {
            s.error = Some(e);
            None
        }
    };
    start.wait();
    if let Some(p) = &p {
        let mut seq = i * mine; // where this producer's payload windows start
        while s.committed < mine {
            let this = k.min(mine - s.committed);
            match one_txn(p, a, this, &mut seq, buf, limit, &mut s.commit_hist) {
                Ok(()) => {
                    s.committed += this;
                    s.txns += 1;
                }
                Err(e) => {
                    s.error = Some(e);
                    break;
                }
            }
        }
    }
    done.wait();
    if let Some(p) = p {
        p.poll(Duration::ZERO);
        let d = p.context();
        s.failed = d.failed.load(Relaxed);
        if let Some(e) = lock(&d.first_error).as_ref() {
            s.error.get_or_insert_with(|| format!("delivery: {e}"));
        }
        s.hist = lock(&d.hist).clone();
        if i == 0 && s.error.is_none() {
            let r = p
                .begin_transaction()
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    for seq in 0..k {
                        let off = (seq as usize).wrapping_mul(4099) % (1 << 20);
                        send(&p, &a.topic, None, &buf[off..off + a.size])?;
                    }
                    p.flush(limit).map_err(|e| e.to_string())?;
                    p.abort_transaction(limit).map_err(|e| e.to_string())
                });
            match r {
                Ok(()) => s.aborted = k,
                Err(e) => s.error = Some(format!("abort: {e}")),
            }
        }
    }
    s
}

/// begin, `k` sends, commit; the commit call's latency goes into `commit_hist`.
fn one_txn(
    p: &BenchProducer,
    a: &Args,
    k: u64,
    seq: &mut u64,
    buf: &[u8],
    limit: Duration,
    commit_hist: &mut Histogram<u64>,
) -> Result<(), String> {
    p.begin_transaction()
        .map_err(|e| format!("begin_transaction: {e}"))?;
    for _ in 0..k {
        let off = (*seq as usize).wrapping_mul(4099) % (1 << 20);
        *seq += 1;
        send(p, &a.topic, None, &buf[off..off + a.size])?;
    }
    let t = Instant::now();
    drain(p, limit)?;
    p.commit_transaction(limit)
        .map_err(|e| format!("commit_transaction: {e}"))?;
    commit_hist.saturating_record((t.elapsed().as_micros() as u64).max(1));
    p.poll(Duration::ZERO);
    Ok(())
}

/// Waits for every delivery report: a non-blocking poll, then a 100 µs sleep. The
/// `rdkafka` crate's `flush` (which its `commit_transaction` calls first) polls in 100 ms
/// slices that run to their end even once the reports are in, so without this every
/// commit would take at least 100 ms on the client's side alone. Nor does this poll with
/// a timeout: the crate's `poll` loops until its deadline and hands librdkafka the
/// remaining time rounded down to whole milliseconds, so the last sub-millisecond of
/// every timed poll is a busy loop — measured as over half of kbench's CPU time in a
/// transactional run, a core taken from the broker on a small machine.
fn drain(p: &BenchProducer, limit: Duration) -> Result<(), String> {
    let t = Instant::now();
    loop {
        p.poll(Duration::ZERO);
        if p.in_flight_count() == 0 {
            return Ok(());
        }
        if t.elapsed() > limit {
            return Err("delivery reports did not come".into());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Reads the topic from offset 0 with isolation.level=read_committed until `want` records
/// came and nothing more arrives for a second (or `--timeout-s` passes); returns the count.
fn count_committed(a: &Args, want: u64) -> Result<u64, String> {
    let group = format!("kbench-verify-{}", std::process::id());
    // The same settings as `consume`, plus the isolation level.
    let mut cfg = config::consumer(a, &group);
    cfg.set("isolation.level", "read_committed");
    let c: rdkafka::consumer::BaseConsumer = cfg.create().map_err(|e| e.to_string())?;
    let md = c
        .fetch_metadata(Some(&a.topic), Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let parts = md
        .topics()
        .first()
        .map_or(1, |t| t.partitions().len() as i32);
    assign_all(&c, a, parts, |_| Offset::Beginning)?;
    let (mut got, t0) = (0u64, Instant::now());
    let mut last = Instant::now();
    let quiet = Duration::from_secs(1);
    while t0.elapsed() < Duration::from_secs(a.timeout_s) {
        if got >= want && last.elapsed() >= quiet {
            break;
        }
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => {
                got += 1;
                last = Instant::now();
            }
            Some(Err(e)) => eprintln!("verify consume error: {e}"),
            None => {}
        }
    }
    Ok(got)
}
