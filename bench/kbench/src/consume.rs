//! The consume workload: `n` records from offset 0, by assignment or as a member of
//! `--group`; checks that each partition's offsets come without gaps. The clock runs from
//! the first message to the last; the wait for the first one is reported apart.

use crate::args::Args;
use crate::consumer::{assign_all, new_consumer};
use crate::outcome::Outcome;
use bench_summary::Value;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::Offset;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub fn consume(a: &Args, n: u64, parts: i32) -> Result<Outcome, String> {
    let group = a
        .group
        .clone()
        .unwrap_or_else(|| format!("kbench-{}", std::process::id()));
    let c = new_consumer(a, &group)?;
    match &a.group {
        Some(_) => c.subscribe(&[&a.topic]).map_err(|e| e.to_string())?,
        None => assign_all(&c, a, parts, |_| Offset::Beginning)?,
    }
    let t0 = Instant::now();
    let (mut msgs, mut bytes, mut gaps) = (0u64, 0u64, 0u64);
    let mut next: HashMap<i32, i64> = HashMap::new();
    let (mut first, mut last) = (None, Instant::now());
    while msgs < n && last.max(t0).elapsed() < Duration::from_secs(a.timeout_s) {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                msgs += 1;
                bytes += m.payload_len() as u64;
                if let Some(want) = next.insert(m.partition(), m.offset() + 1) {
                    gaps += (m.offset() != want) as u64;
                }
            }
            Some(Err(e)) => eprintln!("consume error: {e}"),
            None => {}
        }
    }
    let first = first.ok_or("no message consumed")?;
    let startup_ms = first.duration_since(t0).as_secs_f64() * 1e3;
    Ok(Outcome {
        msgs,
        bytes,
        secs: last.duration_since(first).as_secs_f64(),
        hist: None,
        extra: vec![
            ("startup_ms", Value::Float(startup_ms, 1)),
            ("offset_gaps", Value::Int(gaps as i64)),
            ("group", Value::Bool(a.group.is_some())),
        ],
        ok: msgs == n && gaps == 0,
    })
}
