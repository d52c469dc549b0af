//! The end-to-end workload: a consumer waits at the end of every partition while the
//! producer sends at `--rate`; each payload starts with its send time (µs since the
//! epoch) and sequence number, so the consumer measures send → receive and spots
//! duplicates and losses.

use crate::args::Args;
use crate::consumer::{assign_all, new_consumer};
use crate::outcome::{new_hist, Outcome};
use crate::producer::{new_producer, send};
use bench_summary::Value;
use rand::RngCore;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::Offset;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bytes at the start of every e2e payload: send time, then sequence number.
const HEADER: usize = 16;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

/// The little-endian u64 at `at` in `p`, if `p` is long enough.
fn le_u64(p: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(p.get(at..at + 8)?.try_into().ok()?))
}

pub fn e2e(a: &Args, n: u64, parts: i32) -> Result<Outcome, String> {
    if a.size < HEADER {
        return Err(format!("e2e needs --size >= {HEADER}"));
    }
    // Start each partition at its current end so old messages are not counted.
    let c = new_consumer(a, &format!("kbench-e2e-{}", std::process::id()))?;
    let mut ends = HashMap::new();
    for p in 0..parts {
        let (_, hi) = c
            .fetch_watermarks(&a.topic, p, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        ends.insert(p, hi);
    }
    assign_all(&c, a, parts, |p| Offset::Offset(ends[&p]))?;
    let timeout = Duration::from_secs(a.timeout_s);
    let reader = std::thread::spawn(move || {
        let mut hist = new_hist();
        let mut seen = vec![false; n as usize];
        let (mut got, mut dup, mut last) = (0u64, 0u64, Instant::now());
        while got < n && last.elapsed() < timeout {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                let now = now_us();
                last = Instant::now();
                let p = m.payload().unwrap_or_default();
                let (Some(ts), Some(seq)) = (le_u64(p, 0), le_u64(p, 8)) else {
                    continue;
                };
                let seq = seq as usize;
                if seq < seen.len() && !std::mem::replace(&mut seen[seq], true) {
                    got += 1;
                    hist.saturating_record(now.saturating_sub(ts).max(1));
                } else {
                    dup += 1;
                }
            }
        }
        (hist, got, dup)
    });
    std::thread::sleep(Duration::from_millis(1000)); // let the consumer start fetching
    let p = new_producer(a)?;
    let mut buf = vec![0u8; a.size];
    rand::thread_rng().fill_bytes(&mut buf);
    let t = Instant::now();
    let mut i = 0u64;
    while i < n {
        let due = ((t.elapsed().as_secs_f64() * a.rate as f64) as u64 + 1).min(n);
        while i < due {
            buf[..8].copy_from_slice(&now_us().to_le_bytes());
            buf[8..HEADER].copy_from_slice(&i.to_le_bytes());
            let key = a.keyed.then(|| format!("k{:04}", i % 1024));
            send(&p, &a.topic, key.as_deref(), &buf)?;
            i += 1;
        }
        p.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_micros(500));
    }
    p.flush(Duration::from_secs(a.timeout_s.max(60)))
        .map_err(|e| format!("flush: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    let (hist, got, dup) = reader.join().map_err(|_| "consumer thread panicked")?;
    Ok(Outcome {
        msgs: got,
        bytes: got * a.size as u64,
        secs,
        hist: Some(hist),
        extra: vec![
            ("rate", Value::Int(a.rate as i64)),
            ("duplicates", Value::Int(dup as i64)),
            ("acks", Value::Text(a.acks().to_string())),
            ("linger_ms", Value::Int(a.linger_ms as i64)),
        ],
        ok: got == n && dup == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::le_u64;

    #[test]
    fn header_fields_need_the_bytes() {
        let mut p = 7u64.to_le_bytes().to_vec();
        p.extend(9u64.to_le_bytes());
        assert_eq!((le_u64(&p, 0), le_u64(&p, 8)), (Some(7), Some(9)));
        assert_eq!(le_u64(&p[..15], 8), None);
    }
}
