#!/usr/bin/env bash
# What the storage-fault guards cost (issue 19), two ways, same run:
#   scripts/bench-guard.sh [--quick]                 this build with its free-space guards
#                                                    off (the floors at 0) vs on (defaults)
#   BEFORE_BIN=DIR scripts/bench-guard.sh [--quick]  a build from before the guards vs this one
# The first isolates the guards; the second includes every change since BEFORE_BIN.
# BEFORE_BIN holds fjord-broker and fjord-coord built from a commit without the guards
# (e.g. eb27707, the parent of the first issue-19 commit: `git worktree add /tmp/before
# eb27707 && (cd /tmp/before && CARGO_TARGET_DIR=~/.cache/before-target cargo build
# --release --workspace --bins)`); FJORD_BIN (default: this checkout's build) the current.
# Rounds alternate before/after (and which goes first). Per run: a fresh standalone
# fjord-broker, kbench producing 100 B acks=1 and 1 KiB acks=all; a fresh fjord-coord
# (forceSync=yes), zkbench creating 100 B znodes. Prints throughput and the server's CPU
# per million messages / per 100,000 creates (user+system from /proc: what the guard
# would add, and far steadier than throughput on a shared machine), then the medians.
#   full: 1,000,000 messages and 200,000 creates per run, 5 rounds; --quick: 200,000 and
#   50,000, 3 rounds.
# env: BEFORE_BIN (required), FJORD_BIN, KBENCH, ZKBENCH, MSGS, OPS, REPS
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if [ -n "${BEFORE_BIN:-}" ]; then
  [ -x "$BEFORE_BIN/fjord-broker" ] && [ -x "$BEFORE_BIN/fjord-coord" ] || {
    echo "BEFORE_BIN must name a directory with fjord-broker and fjord-coord (see the header)" >&2
    exit 2
  }
  echo "--- before: $BEFORE_BIN, after: $FJORD_BIN"
else
  BEFORE_BIN=$FJORD_BIN GUARD_OFF=1
  echo "--- before: $FJORD_BIN with the free-space guards off, after: the same with them on"
fi
# broker_off / coord_off: the extra config lines of a "before" run.
broker_off=(); coord_off=()
if [ "${GUARD_OFF:-0}" = 1 ]; then
  broker_off=("log.dir.min.free.bytes=0" "log.dir.min.free.percent=0")
  coord_off=("fjord.minFreeBytes=0" "fjord.minFreePercent=0")
fi
require_tool "$KBENCH" kbench
require_tool "$ZKBENCH" zkbench
MSGS=${MSGS:-1000000}; OPS=${OPS:-200000}; REPS=${REPS:-5}
if [ "${1:-}" = "--quick" ]; then MSGS=200000; OPS=50000; REPS=3; fi
WORK=$(mktemp -d /tmp/fjord-bench-guard-XXXX)
OUT=$WORK/lines.txt
trap 'stop_all; rm -rf "$WORK"' EXIT

cpu_ms() { # pid: user+system CPU so far, ms
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) * 1000 / hz }' "/proc/$1/stat"
}

broker_run() { # side bin
  local side=$1 bin=$2 port dir pid c0 line extra
  port=$(free_port); dir=$WORK/broker-$side
  rm -rf "$dir"; mkdir -p "$dir"
  extra=(); [ "$side" = before ] && extra=("${broker_off[@]}")
  printf '%s\n' "broker.id=1" "listeners=PLAINTEXT://127.0.0.1:$port" "log.dirs=$dir/data" \
    "zookeeper.connect=" "num.partitions=1" "${extra[@]}" > "$dir/broker.properties"
  spawn "$dir/broker.log" "$bin/fjord-broker" "$dir/broker.properties"; pid=$SPAWNED
  wait_port "$port" fjord-broker "$dir/broker.log" "$pid" || exit 1
  for spec in "100B-acks1 100 1 $MSGS" "1KiB-acksall 1024 all $((MSGS / 4))"; do
    set -- $spec
    c0=$(cpu_ms "$pid")
    line=$("$KBENCH" --brokers "127.0.0.1:$port" --mode produce --topic "g-$1" --messages "$4" \
      --size "$2" --acks "$3" --partitions 1 --replication 1 2>>"$dir/kbench.log" | tail -1)
    [[ "$line" == *verify=ok* ]] || { echo "broker $side $1 failed: $line" >&2; exit 1; }
    echo "$side broker-$1 $(field msgs_per_s "$line") $(awk -v a="$c0" -v b="$(cpu_ms "$pid")" -v n="$4" \
      'BEGIN { printf "%.0f", (b - a) * 1e6 / n }')" >> "$OUT"
  done
  stop_pid "$pid"
}

coord_run() { # side bin
  local side=$1 bin=$2 port dir pid c0 line extra
  port=$(free_port); dir=$WORK/coord-$side
  rm -rf "$dir"
  extra=(); [ "$side" = before ] && extra=("${coord_off[@]}")
  FJORD_BIN=$bin spawn_coord "$dir" "$port" forceSync=yes "${extra[@]}"; pid=$SPAWNED
  wait_ruok "$port" "$pid" || exit 1
  c0=$(cpu_ms "$pid")
  line=$("$ZKBENCH" --connect "127.0.0.1:$port" --mode create --sessions 16 --inflight 64 \
    --size 100 --ops "$OPS" 2>>"$dir/zkbench.log" | tail -1)
  [ -n "$(field ops_per_s "$line")" ] || { echo "coord $side failed: $line" >&2; exit 1; }
  echo "$side coord-create $(field ops_per_s "$line") $(awk -v a="$c0" -v b="$(cpu_ms "$pid")" -v n="$OPS" \
    'BEGIN { printf "%.0f", (b - a) * 1e5 / n }')" >> "$OUT"
  stop_pid "$pid"
}

for r in $(seq 1 "$REPS"); do
  order="before after"; [ $((r % 2)) = 0 ] && order="after before"
  for side in $order; do
    bin=$FJORD_BIN; [ "$side" = before ] && bin=$BEFORE_BIN
    broker_run "$side" "$bin"
    coord_run "$side" "$bin"
  done
done

echo "--- medians of $REPS rounds ($MSGS msgs of 100 B, $((MSGS / 4)) of 1 KiB, $OPS creates per run)"
echo "    (cpu: the server's CPU ms per million messages, per 100,000 creates)"
python3 - "$OUT" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
for what in ("broker-100B-acks1", "broker-1KiB-acksall", "coord-create"):
    med = {}
    for side in ("before", "after"):
        got = [(float(r[2]), float(r[3])) for r in rows if r[0] == side and r[1] == what]
        med[side] = (statistics.median(t for t, _ in got), statistics.median(c for _, c in got))
        print("%-20s %-6s %10.0f per s   cpu %6.0f ms" % (what, side, *med[side]))
    print("%-20s after/before: throughput %.2f, cpu %.2f" % (
        what, med["after"][0] / med["before"][0], med["after"][1] / med["before"][1]))
PY
