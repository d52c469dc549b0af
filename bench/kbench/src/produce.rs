//! The produce workload: `n` records as fast as librdkafka takes them; the clock runs
//! from the first send to the end of the flush.

use crate::args::Args;
use crate::outcome::{lock, Outcome};
use crate::producer::{new_producer, send};
use bench_summary::Value;
use rand::RngCore;
use rdkafka::producer::Producer;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

pub fn produce(a: &Args, n: u64) -> Result<Outcome, String> {
    let p = new_producer(a)?;
    // Payloads are windows into 1 MiB of random bytes, so compression has real work.
    let mut rand_buf = vec![0u8; (1 << 20) + a.size];
    rand::thread_rng().fill_bytes(&mut rand_buf);
    let keys: Vec<String> = (0..1024).map(|k| format!("k{k:04}")).collect();
    let t = Instant::now();
    for i in 0..n {
        let off = (i as usize).wrapping_mul(4099) % (1 << 20);
        let key = a.keyed.then(|| keys[i as usize % keys.len()].as_str());
        send(&p, &a.topic, key, &rand_buf[off..off + a.size])?;
        if i % 1024 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    p.flush(Duration::from_secs(a.timeout_s.max(60)))
        .map_err(|e| format!("flush: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    let d = p.context();
    let (ok, failed) = (d.ok.load(Relaxed), d.failed.load(Relaxed));
    if let Some(e) = lock(&d.first_error).as_ref() {
        eprintln!("first delivery error: {e}");
    }
    let hist = lock(&d.hist).clone();
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
    Ok(Outcome {
        msgs: ok,
        bytes: ok * a.size as u64,
        secs,
        hist: Some(hist),
        extra,
        ok: failed == 0 && ok == n,
    })
}
