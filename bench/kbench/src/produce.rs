//! The produce workload: `n` records as fast as librdkafka takes them; the clock runs
//! from the first send to the end of the flush. With `--producers K` (K > 1) K threads,
//! a producer each, share the records (so a transactional run with K producers has a
//! baseline of the same shape) and the clock runs to the last one's flush.

use crate::args::Args;
use crate::outcome::{lock, Outcome};
use crate::producer::{new_producer, send};
use bench_summary::Value;
use rand::RngCore;
use rdkafka::producer::Producer;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

pub fn produce(a: &Args, n: u64) -> Result<Outcome, String> {
    let k = a.producers.max(1);
    let producers = (0..k)
        .map(|_| new_producer(a))
        .collect::<Result<Vec<_>, _>>()?;
    if a.idempotence {
        for p in &producers {
            warm_up(a, p)?;
        }
    }
    // Payloads are windows into 1 MiB of random bytes, so compression has real work.
    let mut rand_buf = vec![0u8; (1 << 20) + a.size];
    rand::thread_rng().fill_bytes(&mut rand_buf);
    let keys: Vec<String> = (0..1024).map(|k| format!("k{k:04}")).collect();
    let t = Instant::now();
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = producers
            .iter()
            .enumerate()
            .map(|(j, p)| {
                let (buf, keys) = (&rand_buf, &keys);
                // Producer j sends records j, j + k, j + 2k, ...
                s.spawn(move || -> Result<(), String> {
                    for i in (j as u64..n).step_by(k as usize) {
                        let off = (i as usize).wrapping_mul(4099) % (1 << 20);
                        let key = a.keyed.then(|| keys[i as usize % keys.len()].as_str());
                        send(p, &a.topic, key, &buf[off..off + a.size])?;
                        if i % 1024 < k {
                            p.poll(Duration::ZERO);
                        }
                    }
                    p.flush(Duration::from_secs(a.timeout_s.max(60)))
                        .map_err(|e| format!("flush: {e}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("producer thread panicked".into()))
            })
            .collect()
    });
    let secs = t.elapsed().as_secs_f64();
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    let (mut ok, mut failed) = (0, 0);
    let mut hist = crate::outcome::new_hist();
    for p in &producers {
        let d = p.context();
        ok += d.ok.load(Relaxed);
        failed += d.failed.load(Relaxed);
        if let Some(e) = lock(&d.first_error).as_ref() {
            eprintln!("first delivery error: {e}");
        }
        hist.add(&*lock(&d.hist)).map_err(|e| e.to_string())?;
    }
    let mut extra = vec![
        ("failed", Value::Int(failed as i64)),
        ("acks", Value::Text(a.acks().to_string())),
        ("linger_ms", Value::Int(a.linger_ms as i64)),
        ("compression", Value::Text(a.compression.name())),
    ];
    if a.idempotence {
        // Only when asked for, so that the line of a plain run stays as the scripts know it.
        extra.push(("idempotence", Value::Bool(true)));
    }
    if k > 1 {
        extra.push(("producers", Value::Int(k as i64)));
    }
    Ok(Outcome {
        msgs: ok,
        bytes: ok * a.size as u64,
        secs,
        hist: Some(hist),
        extra,
        ok: failed == 0 && ok == n,
    })
}

/// An idempotent producer sends nothing until it has a producer id, which librdkafka asks
/// for in the background: measured, the first records of a run waited ~0.5 s for it (p99
/// 555 ms on 20,000 records). One record sent and delivered before the clock takes that
/// out of the figure, as init_transactions does for a transactional run; it is then
/// forgotten (not counted). The clock still ends with the `rdkafka` crate's flush, which
/// polls in 100 ms slices: a baseline measured here is, if anything, low.
fn warm_up(a: &Args, p: &crate::producer::BenchProducer) -> Result<(), String> {
    send(p, &a.topic, None, &vec![0u8; a.size])?;
    p.flush(Duration::from_secs(a.timeout_s.max(60)))
        .map_err(|e| format!("warm-up flush: {e}"))?;
    let d = p.context();
    if d.failed.load(Relaxed) > 0 {
        return Err(lock(&d.first_error).clone().unwrap_or_default());
    }
    d.ok.store(0, Relaxed);
    lock(&d.hist).reset();
    Ok(())
}
