#!/usr/bin/env bash
# The kbench matrix against any running Kafka-protocol broker, REPS rounds: produce
# MSGS x SIZE B with acks=1 and with acks=all (fresh topics each round), consume the
# acks=1 topic from the beginning (partition assignment, no group), and an e2e run at
# E2E_RATE msgs/s; then the medians (median.py). RESTART_CMD, if set, runs before every
# round (e.g. a fresh in-memory broker).
# env: KBENCH (default ~/.cache/bench-target/release/kbench), BROKERS=127.0.0.1:19092,
#      REPS=3, MSGS=1000000, SIZE=100, PARTS=1, E2E_MSGS=50000, E2E_RATE=5000, OUT (result
#      lines; kbench's stderr goes to OUT.log), RESTART_CMD, EXTRA (more kbench arguments)
set -uo pipefail
KBENCH=${KBENCH:-$HOME/.cache/bench-target/release/kbench}
BROKERS=${BROKERS:-127.0.0.1:19092}
REPS=${REPS:-3}
MSGS=${MSGS:-1000000}
SIZE=${SIZE:-100}
PARTS=${PARTS:-1}
E2E_MSGS=${E2E_MSGS:-50000}
E2E_RATE=${E2E_RATE:-5000}
OUT=${OUT:-/tmp/kbench-results.txt}
EXTRA=${EXTRA:-}
run() { # label, kbench args...
  local label=$1; shift
  local line
  # shellcheck disable=SC2086 # EXTRA is a list of words
  line=$(timeout 600 "$KBENCH" --brokers "$BROKERS" "$@" $EXTRA 2>>"$OUT.log" | tail -1)
  echo "label=$label ${line:-kbench mode=failed}" | tee -a "$OUT"
}
for r in $(seq 1 "$REPS"); do
  if [ -n "${RESTART_CMD:-}" ]; then bash -c "$RESTART_CMD" >>"$OUT.log" 2>&1; sleep 1; fi
  t=kb-$$-r$r
  run produce-acks1 --mode produce --topic "$t-a1" --partitions "$PARTS" --messages "$MSGS" --size "$SIZE" --acks 1
  run produce-acksall --mode produce --topic "$t-aall" --partitions "$PARTS" --messages "$MSGS" --size "$SIZE" --acks all
  run consume --mode consume --topic "$t-a1" --messages "$MSGS"
  run e2e --mode e2e --topic "$t-e2e" --partitions "$PARTS" --messages "$E2E_MSGS" --rate "$E2E_RATE" --size "$SIZE" --acks 1
done
python3 "$(dirname "$0")/median.py" --by tool,label "$OUT"
