#!/usr/bin/env bash
# The consume path alone, as issue 18 measures it: one partition, 1,000,000 records of
# 100 B and of 1 KiB produced with acks=1, then read from the beginning by kbench's
# librdkafka consumer with fetch.queue.backoff.ms=1; fjord-broker (and optionally an older
# build of it) against the Tansu 0.6 anchor (in-memory), rounds alternating, medians.
# Beside each fjord consume line: the broker's CPU time (user+system, from /proc) per
# million records consumed.
#   scripts/bench-consume.sh [--quick]      full: 3 rounds of 1,000,000; quick: 1 of 200,000
# env: FJORD_BIN (the build measured), BEFORE_BIN (an older build's directory, measured too
#      when set), SKIP_TANSU=1, REPS, MSGS, OUT
set -uo pipefail
source "$(dirname "$0")/lib.sh"
require_tool "$KBENCH" kbench
REPS=${REPS:-3}; MSGS=${MSGS:-1000000}
if [ "${1:-}" = "--quick" ]; then REPS=1; MSGS=200000; fi
OUT=${OUT:-/tmp/bench-consume-$$.txt}
: >"$OUT"
WORK=$(mktemp -d /tmp/fjord-bench-XXXX)
PORT=$(free_port)
cleanup() { stop_all; [ -z "${SKIP_TANSU:-}" ] && "$ANCHORS/tansu-anchor.sh" stop >/dev/null 2>&1; rm -rf "$WORK"; }
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# one NAME BROKERS PID ROUND: produce both sizes, consume both; PID (empty for Tansu) is
# the broker whose CPU time is measured
one() {
  local name=$1 b=$2 pid=$3 t=kc$$-$1-r$4 size c0 c1 line
  for size in 100 1024; do
    timeout 600 "$KBENCH" --brokers "$b" --mode produce --topic "$t-$size" --messages "$MSGS" \
      --size "$size" --acks 1 >/dev/null 2>>"$OUT.log"
    c0=$([ -n "$pid" ] && cpu_ticks "$pid" || echo 0)
    line=$(timeout 600 "$KBENCH" --brokers "$b" --mode consume --topic "$t-$size" \
      --messages "$MSGS" --set fetch.queue.backoff.ms=1 2>>"$OUT.log" | tail -1)
    c1=$([ -n "$pid" ] && cpu_ticks "$pid" || echo 0)
    # /proc ticks are 10 ms; Tansu's own CPU is not measured
    line="label=$name:consume-${size}B ${line:-kbench mode=failed}"
    [ -n "$pid" ] && line="$line broker_cpu_ms_per_M=$(( (c1 - c0) * 10 * 1000000 / MSGS ))"
    echo "$line" | tee -a "$OUT"
  done
}

fjord() { # NAME BIN_DIR ROUND
  stop_all
  rm -rf "$WORK/data"
  printf '%s\n' "broker.id=1" "listeners=PLAINTEXT://127.0.0.1:$PORT" "log.dirs=$WORK/data" \
    "zookeeper.connect=" "num.partitions=1" >"$WORK/broker.properties"
  spawn "$WORK/broker.log" "$2/fjord-broker" "$WORK/broker.properties"
  local pid=$SPAWNED
  wait_port "$PORT" fjord-broker "$WORK/broker.log" "$pid"
  one "$1" "127.0.0.1:$PORT" "$pid" "$3"
  stop_all
}

for r in $(seq 1 "$REPS"); do
  [ -n "${BEFORE_BIN:-}" ] && fjord before "$BEFORE_BIN" "$r"
  fjord fjord "$FJORD_BIN" "$r"
  if [ -z "${SKIP_TANSU:-}" ]; then
    "$ANCHORS/tansu-anchor.sh" restart >>"$OUT.log" 2>&1 && sleep 1 && one tansu 127.0.0.1:19092 "" "$r"
  fi
done
echo "--- medians ($REPS round(s)); raw lines in $OUT"
python3 "$ANCHORS/median.py" --by label "$OUT" 2>/dev/null || cat "$OUT"
if grep "^label=fjord:" "$OUT" | grep -qv "verify=ok"; then
  echo "FAILED: a fjord run did not verify" >&2
  exit 1
fi
