#!/usr/bin/env bash
# Coordinator benchmark: bench/zkbench against Apache ZooKeeper 3.8 (the anchor,
# bench/anchors/zk-anchor.sh, fsync on) and against fjord-coord (fsync on), in the
# same run on the same machine, one server at a time. Prints a side-by-side table from
# zkbench's last line, then the RSS of each server holding N znodes of 100 bytes.
#
# usage: scripts/bench-coord.sh [--quick] [--duration S] [--znodes N] [--no-build]
#                               [--only zk|fjord] [--modes "create set get mixed session-churn"]
#   --quick      3 s per mode and 100,000 znodes for the RSS figure (unless --znodes)
#   --duration   seconds per mode (default 10, env DURATION)
#   --znodes     znodes of 100 B to hold for the RSS figure (default 1,000,000; 0 = skip)
#   --no-build   use the binaries already built
#   --only       run one server only
# env: BENCH_TARGET (zkbench build dir, default ~/.cache/bench-target), ZKBENCH (the binary),
#      CARGO_TARGET_DIR (fjord build dir, default ~/.cache/fjord-target), FJORD_BIN (dir of
#      fjord-coord), SESSIONS/INFLIGHT (default 16/16), KEEP_WORK=1 keeps the temp dir.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SESSIONS=${SESSIONS:-16}
INFLIGHT=${INFLIGHT:-16}
MODES="create set get mixed session-churn"
ZNODES=
coord_bench_args 1 "$@"
if [ -z "$ZNODES" ]; then
  if [ "$QUICK" = 1 ]; then ZNODES=100000; else ZNODES=1000000; fi
fi
coord_bench_build --workspace --bins
FJORD=$FJORD_BIN/fjord-coord
ANCHOR=$ANCHORS/zk-anchor.sh

coord_bench_work bench-coord
ZKA_DIR=$WORK/zk
on_exit() { ZKA_DIR=$ZKA_DIR "$ANCHOR" stop >/dev/null 2>&1 || true; }

# fill LABEL PORT PID: create ZNODES znodes of 100 B, wait for mntr, record RSS
fill() {
  local label=$1 port=$2 pid=$3 base count line t0
  [ "$ZNODES" -gt 0 ] || return 0
  base=$(fourlw "$port" mntr | awk -F'\t' '$1=="zk_znode_count"{print $2}')
  base=${base:-0}
  t0=$(date +%s)
  line=$("$ZKBENCH" --connect "127.0.0.1:$port" --mode create --sessions "$SESSIONS" \
    --inflight "$INFLIGHT" --size 100 --ops "$ZNODES" --no-cleanup \
    2>>"$WORK/$label.zkbench.log" | tail -1) || true
  echo "$label fill: $line" >&2
  count=0
  for _ in $(seq 1 120); do
    count=$(fourlw "$port" mntr | awk -F'\t' '$1=="zk_znode_count"{print $2}')
    count=${count:-0}
    [ "$count" -ge $((base + ZNODES)) ] && break
    sleep 1
  done
  sleep 2
  echo "$count $(rss_kib "$pid") $(( $(date +%s) - t0 ))" > "$WORK/$label.rss"
}

# ---------------------------------------------------------------- Apache ZooKeeper
if [ "$ONLY" != fjord ]; then
  ZK_PORT=$(free_port)
  echo "== Apache ZooKeeper 3.8 on 127.0.0.1:$ZK_PORT (fsync on)" >&2
  ZKA_DIR=$ZKA_DIR ZKA_PORT=$ZK_PORT "$ANCHOR" start >&2
  ZK_PID=$(cat "$ZKA_DIR/zk.pid")
  zk_run_modes zk "127.0.0.1:$ZK_PORT"
  fill zk "$ZK_PORT" "$ZK_PID"
  ZKA_DIR=$ZKA_DIR "$ANCHOR" stop >&2
  rm -rf "$ZKA_DIR/data"
fi

# ---------------------------------------------------------------- fjord-coord
if [ "$ONLY" != zk ]; then
  if [ -x "$FJORD" ]; then
    FJ_PORT=$(free_port)
    echo "== fjord-coord on 127.0.0.1:$FJ_PORT (fsync on)" >&2
    spawn_coord "$WORK/fjord" "$FJ_PORT" forceSync=yes
    FJORD_PID=$SPAWNED
    if wait_ruok "$FJ_PORT" "$FJORD_PID"; then
      zk_run_modes fjord "127.0.0.1:$FJ_PORT"
      fill fjord "$FJ_PORT" "$FJORD_PID"
    else
      echo "fjord-coord did not answer ruok; log:" >&2
      tail -20 "$WORK/fjord/server.log" >&2 || true
    fi
    stop_all
  else
    echo "fjord-coord not found at $FJORD: fjord column left empty" >&2
  fi
fi

# ---------------------------------------------------------------- report
zk_table 14 "zkbench: $SESSIONS sessions x $INFLIGHT in flight, 100 B values, ${DURATION}s per mode, read ratio 0.9 in mixed"
if [ "$ZNODES" -gt 0 ]; then
  echo
  echo "RSS holding $ZNODES znodes of 100 B (VmRSS after the fill):"
  for who in zk fjord; do
    if [ -f "$WORK/$who.rss" ]; then
      read -r cnt rss secs < "$WORK/$who.rss"
      printf '  %-6s %8d MiB  (zk_znode_count=%s, fill took %ss)\n' "$who" $((rss / 1024)) "$cnt" "$secs"
    else
      printf '  %-6s %8s\n' "$who" "-"
    fi
  done
fi
