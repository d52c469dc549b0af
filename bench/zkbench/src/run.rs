//! One whole run: make the run's own subtree and keys, open the sessions, start the
//! workers, then check, clean up and print the result.

use crate::args::{Args, Mode};
use crate::payload::payload;
use crate::session::{close, connect, create_all, delete_all};
use crate::verify;
use crate::workload::{lock, new_hist, worker, Shared};
use bench_summary::Summary;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Runs the benchmark; `Ok(false)` when it ran but a check failed or a request erred.
pub async fn run(args: Args) -> Result<bool, String> {
    let admin = connect(&args).await?;
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let root = format!("/zkbench-{}-{}", std::process::id(), t.as_millis());
    let dirs: Vec<(String, Vec<u8>)> = ["", "/c", "/k", "/e"]
        .iter()
        .map(|d| (format!("{root}{d}"), Vec::new()))
        .collect();
    create_all(&admin, &dirs).await?;
    let keys: Vec<String> = if args.mode.uses_keys() {
        (0..args.keys).map(|k| format!("{root}/k/{k:08}")).collect()
    } else {
        Vec::new()
    };
    let items: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(k, p)| (p.clone(), payload(k, 0, args.size)))
        .collect();
    create_all(&admin, &items).await?;

    // session-churn's workers open a session per operation; the admin session only
    // stands in for theirs.
    let churn = args.mode == Mode::SessionChurn;
    let mut clients = Vec::new();
    for _ in 0..args.sessions {
        clients.push(if churn {
            admin.clone()
        } else {
            connect(&args).await?
        });
    }
    let warmup = if args.ops.is_some() { 0.0 } else { args.warmup };
    let measure_start = Instant::now() + Duration::from_secs_f64(warmup);
    let sh = Arc::new(Shared {
        deadline: measure_start + Duration::from_secs_f64(args.duration),
        budget: AtomicI64::new(args.ops.unwrap_or(0) as i64),
        measure_start,
        root: root.clone(),
        keys,
        errors: AtomicU64::new(0),
        bad_data: AtomicU64::new(0),
        first_error: Mutex::new(None),
        created: Mutex::new(Vec::new()),
        args: args.clone(),
    });
    let per_session = args.per_session();
    let mut tasks = Vec::new();
    for (s, c) in clients.iter().enumerate() {
        for i in 0..per_session {
            let wid = (s * per_session + i) as u64;
            tasks.push(tokio::spawn(worker(sh.clone(), c.clone(), wid)));
        }
    }
    let mut hist = new_hist();
    for t in tasks {
        hist.add(t.await.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let secs = measure_start.elapsed().as_secs_f64();
    if !churn {
        for c in clients {
            close(c).await;
        }
    }

    let created = std::mem::take(&mut *lock(&sh.created));
    let problems = verify::check(
        &args,
        &admin,
        &root,
        sh.keys.first().map(String::as_str),
        sh.bad_data.load(Relaxed),
        created.len(),
    )
    .await?;
    if !args.no_cleanup {
        let mut paths = created;
        paths.extend(sh.keys.iter().cloned());
        paths.extend(dirs.iter().rev().map(|(p, _)| p.clone()));
        let failed = delete_all(&admin, &paths).await;
        if failed > 0 {
            eprintln!("cleanup: {failed} deletes failed");
        }
    }
    close(admin).await;

    let errors = sh.errors.load(Relaxed);
    if let Some(e) = lock(&sh.first_error).as_ref() {
        eprintln!("first error: {e}");
    }
    let ok = problems.is_empty();
    let ops = hist.len();
    let ops_per_s = ops as f64 / secs;
    let q = |p: f64| hist.value_at_quantile(p);
    println!("ops={ops} errors={errors} secs={secs:.3} ops/s={ops_per_s:.1}");
    println!(
        "latency_us p50={} p90={} p99={} p999={} max={}",
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        hist.max()
    );
    println!(
        "verify: {}",
        if ok {
            "ok".to_string()
        } else {
            problems.join("; ")
        }
    );
    Summary::new("zkbench")
        .text("mode", args.mode.name())
        .int("ops", ops)
        .float("secs", secs, 3)
        .float("ops_per_s", ops_per_s, 1)
        .int("p50_us", q(0.5))
        .int("p99_us", q(0.99))
        .int("p999_us", q(0.999))
        .int("max_us", hist.max())
        .int("errors", errors)
        .text("verify", if ok { "ok" } else { "FAIL" })
        .int("sessions", args.sessions)
        .int("inflight", per_session)
        .int("size", args.size)
        .print(args.json);
    Ok(ok && errors == 0)
}
