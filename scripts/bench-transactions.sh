#!/usr/bin/env bash
# Transactions' cost (issue 14): kbench produce of 1 KiB records with acks=all,
# transactional (100 records per transaction: begin, 100 sends, commit) against the same
# without transactions (enable.idempotence), same cluster, same run; prints msgs/s, MB/s,
# the ratio (goal >= 0.7) and the p99 of commit_transaction. Each transactional run ends
# with one aborted transaction and a read_committed count that must equal the records
# committed (kbench's verify=ok), so a broken run fails the script.
#   scripts/bench-transactions.sh          1 broker RF 1, then 3 brokers RF 3
#                                          (min.insync.replicas 2); 100,000 records a run,
#                                          3 rounds (medians)
#   scripts/bench-transactions.sh --quick  1 broker RF 1 only, 20,000 records, 1 round
# All runs use linger.ms=0 (LINGER_MS): kbench waits for a transaction's delivery reports
# before commit_transaction (the rdkafka crate's flush polls in 100 ms slices), and with
# librdkafka's default linger.ms=5 each transaction's last batch then waited out the
# linger, which an application never does (librdkafka's commit_transaction flushes at
# once); the non-transactional run is the same with linger 0 or 5.
# Transactional runs: one producer (the issue's figure) and TXN_PRODUCERS (default 4)
# concurrent transactional producers sharing the records, since one producer waits for
# each commit before it begins the next transaction; each against the idempotent run of
# the same shape (1 producer, or TXN_PRODUCERS producers sharing the records).
# env: KBENCH (default ~/.cache/bench-target/release/kbench, built from bench/kbench),
#      FJORD_BIN, MSGS, REPS, TXN_PRODUCERS, CLUSTERS (e.g. "1" or "1 3"), LINGER_MS (0)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# The default kbench is rebuilt when stale (a second once librdkafka is built), so a
# change of its transactional loop never runs with an old binary.
if [ "$KBENCH" = "$BENCH_TARGET/release/kbench" ]; then bench_build kbench; fi
require_tool "$KBENCH" kbench
MSGS=${MSGS:-100000}; REPS=${REPS:-3}; CLUSTERS=${CLUSTERS:-1 3}; TXN_PRODUCERS=${TXN_PRODUCERS:-4}
LINGER_MS=${LINGER_MS:-0}
if [ "${1:-}" = "--quick" ]; then MSGS=20000; REPS=1; CLUSTERS=1; fi
export KBENCH MSGS REPS CLUSTERS TXN_PRODUCERS LINGER_MS
exec python3 - <<'PY'
import os, re, statistics, subprocess, sys
from replication import replharness as h

kb, msgs, reps = os.environ["KBENCH"], int(os.environ["MSGS"]), int(os.environ["REPS"])
np = int(os.environ["TXN_PRODUCERS"])
# Each transactional run is set against the idempotent run of the same shape (one producer,
# or np producers sharing the records): "the same without transactions".
RUNS = (("idempotent", ["--idempotence"], None),
        ("txn-1p", ["--transactional", "--txn-records", "100"], "idempotent"),
        ("idempotent-%dp" % np, ["--idempotence", "--producers", str(np)], None),
        ("txn-%dp" % np, ["--transactional", "--txn-records", "100", "--producers", str(np)],
         "idempotent-%dp" % np))

def field(name, line):
    m = re.search(r" %s=([^ ]+)" % name, line)
    return m.group(1) if m else None

failed = False
for n in map(int, os.environ["CLUSTERS"].split()):
    rf = 3 if n >= 3 else 1
    c = h.start_cluster(n, {"min.insync.replicas": 2 if rf == 3 else 1,
                            "log.retention.check.interval.ms": 60000})
    res = {label: [] for label, _, _ in RUNS}
    try:
        for r in range(reps):
            for label, extra, _ in RUNS:
                topic = "bench-txn-%d-%s-%d" % (n, label, r)
                out = subprocess.run([kb, "--brokers", c.bootstrap, "--mode", "produce",
                                      "--topic", topic, "--messages", str(msgs), "--size", "1024",
                                      "--acks", "all", "--replication", str(rf),
                                      "--partitions", "1",
                                      "--linger-ms", os.environ["LINGER_MS"]] + extra,
                                     capture_output=True, text=True, timeout=600)
                line = (out.stdout.strip().splitlines() or [""])[-1]
                print("label=brokers%d-rf%d:%s %s" % (n, rf, label, line), flush=True)
                if out.returncode != 0 or "verify=ok" not in line:
                    print("run failed: %s %s" % (out.stdout[-500:], out.stderr[-1500:]),
                          file=sys.stderr)
                    failed = True
                    continue
                res[label].append((float(field("msgs_per_s", line)),
                                   float(field("commit_p99_ms", line) or "nan")))
    finally:
        c.close()
    if failed:
        sys.exit(1)
    med = {k: (statistics.median(x for x, _ in v), statistics.median(p for _, p in v))
           for k, v in res.items()}
    print("--- %d broker(s), RF %d, acks=all, 1 KiB, linger.ms=%s, %d records a run, medians of %d round(s)"
          % (n, rf, os.environ["LINGER_MS"], msgs, reps))
    for label, _, base in RUNS:
        rate, p99 = med[label]
        tail = "" if base is None else \
            "  ratio=%.2f (to %s)  commit_p99_ms=%.1f" % (rate / med[base][0], base, p99)
        print("result brokers=%d rf=%d %-12s %9.0f msgs/s %7.1f MB/s%s"
              % (n, rf, label, rate, rate * 1024 / 1e6, tail), flush=True)
PY
