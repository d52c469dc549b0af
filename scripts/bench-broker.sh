#!/usr/bin/env bash
# Benchmark one fjord-broker against the Tansu 0.6 anchor (in-memory engine), same run,
# same machine, with bench/kbench: produce 100 B and 1 KiB with acks=1 and
# acks=all, consume from the beginning, e2e at 5,000 msg/s. Prints both side by side.
#   scripts/bench-broker.sh            full: 1,000,000 messages per produce run, 3 rounds
#   scripts/bench-broker.sh --quick    200,000 messages (the old client too), 1 round
# Old clients too: kbench-system (the same source on Debian's librdkafka 2.0.2, what kcat
# uses) produces and consumes 1,000,000 messages against each server (Tansu fails there).
# Exits 1 if any fjord run fails to verify (so the quick run in the test command is a test).
# env: KBENCH (default ~/.cache/bench-target/release/kbench, built from bench/kbench)
#      KBENCH_SYSTEM (default: kbench-system beside KBENCH; missing = that step is skipped)
#      FJORD_BIN, REPS, MSGS, E2E_MSGS, SYSTEM_MSGS, SKIP_TANSU=1, OUT
set -uo pipefail
source "$(dirname "$0")/lib.sh"
require_tool "$KBENCH" kbench
REPS=${REPS:-3}; MSGS=${MSGS:-1000000}; E2E_MSGS=${E2E_MSGS:-50000}; SYSTEM_MSGS=${SYSTEM_MSGS:-1000000}
if [ "${1:-}" = "--quick" ]; then REPS=1; MSGS=200000; E2E_MSGS=20000; SYSTEM_MSGS=200000; fi
OUT=${OUT:-/tmp/bench-broker-$$.txt}
: >"$OUT"
WORK=$(mktemp -d /tmp/fjord-bench-XXXX)
PORT=${FJORD_BENCH_PORT:-29092}
cleanup() { stop_all; [ -z "${SKIP_TANSU:-}" ] && "$ANCHORS/tansu-anchor.sh" stop >/dev/null 2>&1; rm -rf "$WORK"; }
trap cleanup EXIT

start_fjord() {
  stop_all
  rm -rf "$WORK/data"
  cat >"$WORK/broker.properties" <<P
broker.id=1
listeners=PLAINTEXT://127.0.0.1:$PORT
log.dirs=$WORK/data
zookeeper.connect=
num.partitions=1
P
  spawn "$WORK/broker.log" "$FJORD_BIN/fjord-broker" "$WORK/broker.properties"
  wait_port "$PORT" fjord-broker "$WORK/broker.log" "$SPAWNED"
}

run() { # tool brokers label args...
  local tool=$1 brokers=$2 label=$3; shift 3
  local line bin=$KBENCH limit=600
  case $label in system-*) bin=$KBENCH_SYSTEM limit=60 ;; esac
  line=$(timeout $limit "$bin" --brokers "$brokers" "$@" 2>>"$OUT.log" | tail -1)
  echo "label=$tool:$label ${line:-kbench mode=failed}" | tee -a "$OUT"
}

matrix() { # tool brokers round
  local tool=$1 b=$2 t=kb$$-$1-r$3
  run "$tool" "$b" produce-100B-acks1 --mode produce --topic "$t-a1" --messages "$MSGS" --size 100 --acks 1
  run "$tool" "$b" produce-100B-acksall --mode produce --topic "$t-aall" --messages "$MSGS" --size 100 --acks all
  run "$tool" "$b" produce-1KiB-acks1 --mode produce --topic "$t-k1" --messages $((MSGS / 4)) --size 1024 --acks 1
  run "$tool" "$b" produce-1KiB-acksall --mode produce --topic "$t-kall" --messages $((MSGS / 4)) --size 1024 --acks all
  run "$tool" "$b" consume-100B --mode consume --topic "$t-a1" --messages "$MSGS"
  # librdkafka >= 2.1 stops fetching for fetch.queue.backoff.ms (default 1000) whenever its
  # local queue passes queued.min.messages: a broker that answers faster than the client
  # drains pays a 1 s pause per trip. The same read with the pause at 1 ms shows the rate.
  run "$tool" "$b" consume-100B-qbackoff1 --mode consume --topic "$t-a1" --messages "$MSGS" --set fetch.queue.backoff.ms=1
  run "$tool" "$b" consume-1KiB-qbackoff1 --mode consume --topic "$t-k1" --messages $((MSGS / 4)) --set fetch.queue.backoff.ms=1
  run "$tool" "$b" e2e-5000 --mode e2e --topic "$t-e2e" --messages "$E2E_MSGS" --rate 5000 --size 100 --acks 1
  # The producer's own linger.ms (kbench default 5) is part of the figure above; this one
  # shows what the broker adds.
  run "$tool" "$b" e2e-5000-linger0 --mode e2e --topic "$t-e2e0" --messages "$E2E_MSGS" --rate 5000 --size 100 --acks 1 --linger-ms 0
  if [ -x "$KBENCH_SYSTEM" ] && [ "$3" = 1 ]; then
    run "$tool" "$b" system-produce-100B-acksall --mode produce --topic "$t-sys" --messages "$SYSTEM_MSGS" --size 100 --acks all
    run "$tool" "$b" system-consume-100B --mode consume --topic "$t-sys" --messages "$SYSTEM_MSGS"
  fi
}

for r in $(seq 1 "$REPS"); do
  start_fjord
  matrix fjord "127.0.0.1:$PORT" "$r"
  if [ -z "${SKIP_TANSU:-}" ]; then
    "$ANCHORS/tansu-anchor.sh" restart >>"$OUT.log" 2>&1 && sleep 1 && matrix tansu 127.0.0.1:19092 "$r"
  fi
done
echo "--- medians ($REPS round(s)); raw lines in $OUT"
python3 "$ANCHORS/median.py" --by label "$OUT" 2>/dev/null || cat "$OUT"
if grep "^label=fjord:" "$OUT" | grep -qv "verify=ok"; then
  echo "FAILED: a fjord run did not verify:" >&2
  grep "^label=fjord:" "$OUT" | grep -v "verify=ok" >&2
  exit 1
fi
