#!/usr/bin/env bash
# Replication cost (issue 5 acceptance): kbench produce of 1 KiB messages with acks=all
# to an RF=3 topic (min.insync.replicas=2) on 3 fjord-brokers, against acks=1 to an RF=1
# topic in the same cluster and run, and prints both and the ratio.
#   scripts/bench-replication.sh            200,000 messages per run, 3 rounds (medians)
#   scripts/bench-replication.sh --quick    50,000 messages, 1 round
# env: KBENCH (default ~/.cache/bench-target/release/kbench, built from bench/kbench),
#      FJORD_BIN, MSGS, REPS
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_tool "$KBENCH" kbench
MSGS=${MSGS:-200000}; REPS=${REPS:-3}
if [ "${1:-}" = "--quick" ]; then MSGS=50000; REPS=1; fi
export KBENCH MSGS REPS
exec python3 - <<'PY'
import os, re, statistics, subprocess, sys
from replication import replharness as h

kb, msgs, reps = os.environ["KBENCH"], int(os.environ["MSGS"]), int(os.environ["REPS"])
c = h.start_cluster(3, {"min.insync.replicas": 2, "log.retention.check.interval.ms": 60000})
res = {"rf1-acks1": [], "rf3-acksall": []}
try:
    for r in range(reps):
        for label, rf, acks in (("rf1-acks1", 1, "1"), ("rf3-acksall", 3, "all")):
            topic = "bench-%s-%d" % (label, r)
            out = subprocess.run([kb, "--brokers", c.bootstrap, "--mode", "produce", "--topic", topic,
                                  "--messages", str(msgs), "--size", "1024", "--acks", acks,
                                  "--replication", str(rf), "--partitions", "1"],
                                 capture_output=True, text=True, timeout=600)
            line = (out.stdout.strip().splitlines() or [""])[-1]
            print("label=%s %s" % (label, line), flush=True)
            m = re.search(r"msgs_per_s=([0-9.]+)", line)
            if out.returncode != 0 or not m or "verify=ok" not in line:
                print("run failed: %s %s" % (out.stdout[-500:], out.stderr[-500:]), file=sys.stderr)
                sys.exit(1)
            res[label].append(float(m.group(1)))
finally:
    c.close()
a, b = statistics.median(res["rf1-acks1"]), statistics.median(res["rf3-acksall"])
print("--- medians of %d round(s), 1 KiB messages, %d per run" % (reps, msgs))
print("RF=1 acks=1   : %10.0f msgs/s  %7.1f MB/s" % (a, a * 1024 / 1e6))
print("RF=3 acks=all : %10.0f msgs/s  %7.1f MB/s" % (b, b * 1024 / 1e6))
print("ratio RF=1 acks=1 / RF=3 acks=all: %.2fx" % (a / b))
PY
