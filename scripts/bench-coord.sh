#!/usr/bin/env bash
# Coordinator benchmark: ../shared/bench/zkbench against Apache ZooKeeper 3.8 (the anchor,
# ../shared/bench/anchors/zk-anchor.sh, fsync on) and against fjord-coord (fsync on), in the
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
# env: BENCH_TARGET (zkbench build dir, default ~/.cache/bench-target),
#      CARGO_TARGET_DIR (fjord build dir, default ~/.cache/fjord-target), FJORD_BIN (dir of
#      fjord-coord), SESSIONS/INFLIGHT (default 16/16), KEEP_WORK=1 keeps the temp dir.
set -euo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SHARED=$(cd "$ROOT/../shared" && pwd)
BENCH_TARGET=${BENCH_TARGET:-$HOME/.cache/bench-target}
FJORD_TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/fjord-target}
FJORD_BIN=${FJORD_BIN:-$FJORD_TARGET/release}
DURATION=${DURATION:-10}
ZNODES=
SESSIONS=${SESSIONS:-16}
INFLIGHT=${INFLIGHT:-16}
MODES="create set get mixed session-churn"
BUILD=1
ONLY=
QUICK=0

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; DURATION=3 ;;
    --duration) DURATION=$2; shift ;;
    --znodes) ZNODES=$2; shift ;;
    --no-build) BUILD=0 ;;
    --only) ONLY=$2; shift ;;
    --modes) MODES=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "bench-coord.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$ZNODES" ]; then
  if [ "$QUICK" = 1 ]; then ZNODES=100000; else ZNODES=1000000; fi
fi

ZKBENCH=$BENCH_TARGET/release/zkbench
FJORD=$FJORD_BIN/fjord-coord
ANCHOR=$SHARED/bench/anchors/zk-anchor.sh

if [ "$BUILD" = 1 ]; then
  echo "== building zkbench ($BENCH_TARGET)" >&2
  (cd "$SHARED/bench/zkbench" && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --release) >&2
  if [ "$ONLY" != zk ]; then
    echo "== building fjord-coord ($FJORD_TARGET)" >&2
    (cd "$ROOT" && CARGO_TARGET_DIR=$FJORD_TARGET cargo build --release -p fjord-coord) >&2
  fi
fi
[ -x "$ZKBENCH" ] || { echo "zkbench not found at $ZKBENCH (run without --no-build)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/bench-coord.XXXXXX)
ZKA_DIR=$WORK/zk
FJORD_PID=
cleanup() {
  ZKA_DIR=$ZKA_DIR "$ANCHOR" stop >/dev/null 2>&1 || true
  if [ -n "$FJORD_PID" ] && kill -0 "$FJORD_PID" 2>/dev/null; then
    kill "$FJORD_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$FJORD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$FJORD_PID" 2>/dev/null || true
  fi
  if [ "${KEEP_WORK:-0}" != 1 ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
fourlw() {  # fourlw PORT CMD
  ( exec 3<>"/dev/tcp/127.0.0.1/$1" && printf '%s' "$2" >&3 && timeout 5 cat <&3 ) 2>/dev/null || true
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
field() {  # field NAME LINE
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"
}

# run_modes LABEL PORT: zkbench every mode, last line to $WORK/LABEL.MODE
run_modes() {
  local label=$1 port=$2 m line
  for m in $MODES; do
    line=$("$ZKBENCH" --connect "127.0.0.1:$port" --mode "$m" --sessions "$SESSIONS" \
      --inflight "$INFLIGHT" --size 100 --read-ratio 0.9 --duration "$DURATION" \
      2>>"$WORK/$label.zkbench.log" | tail -1) || true
    [ -n "$line" ] || line="zkbench mode=$m FAILED (see log)"
    echo "$label: $line" >&2
    echo "$line" > "$WORK/$label.$m"
  done
}

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
  run_modes zk "$ZK_PORT"
  fill zk "$ZK_PORT" "$ZK_PID"
  ZKA_DIR=$ZKA_DIR "$ANCHOR" stop >&2
  rm -rf "$ZKA_DIR/data"
fi

# ---------------------------------------------------------------- fjord-coord
if [ "$ONLY" != zk ]; then
  if [ -x "$FJORD" ]; then
    FJ_PORT=$(free_port)
    mkdir -p "$WORK/fjord/data"
    cat > "$WORK/fjord/coord.cfg" <<EOF
tickTime=2000
dataDir=$WORK/fjord/data
clientPort=$FJ_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
4lw.commands.whitelist=*
forceSync=yes
EOF
    echo "== fjord-coord on 127.0.0.1:$FJ_PORT (fsync on)" >&2
    "$FJORD" "$WORK/fjord/coord.cfg" > "$WORK/fjord/server.log" 2>&1 < /dev/null &
    FJORD_PID=$!
    up=0
    for _ in $(seq 1 100); do
      if [ "$(fourlw "$FJ_PORT" ruok)" = imok ]; then up=1; break; fi
      kill -0 "$FJORD_PID" 2>/dev/null || break
      sleep 0.1
    done
    if [ "$up" = 1 ]; then
      run_modes fjord "$FJ_PORT"
      fill fjord "$FJ_PORT" "$FJORD_PID"
    else
      echo "fjord-coord did not answer ruok; log:" >&2
      tail -20 "$WORK/fjord/server.log" >&2 || true
    fi
    kill "$FJORD_PID" 2>/dev/null || true
    wait "$FJORD_PID" 2>/dev/null || true
    FJORD_PID=
  else
    echo "fjord-coord not found at $FJORD: fjord column left empty" >&2
  fi
fi

# ---------------------------------------------------------------- report
echo
echo "zkbench: $SESSIONS sessions x $INFLIGHT in flight, 100 B values, ${DURATION}s per mode, read ratio 0.9 in mixed"
printf '%-14s %12s %12s %7s %12s %12s  %s\n' mode "zk ops/s" "fjord ops/s" ratio "zk p99 us" "fjord p99 us" notes
for m in $MODES; do
  zl=$(cat "$WORK/zk.$m" 2>/dev/null || true)
  fl=$(cat "$WORK/fjord.$m" 2>/dev/null || true)
  zo=$(field ops_per_s "$zl"); fo=$(field ops_per_s "$fl")
  zp=$(field p99_us "$zl"); fp=$(field p99_us "$fl")
  ratio=-
  if [ -n "$zo" ] && [ -n "$fo" ]; then ratio=$(awk -v a="$fo" -v b="$zo" 'BEGIN{ if (b>0) printf "%.2fx", a/b; else print "-"}'); fi
  notes=""
  for who in zk fjord; do
    l=$(cat "$WORK/$who.$m" 2>/dev/null || true)
    [ -n "$l" ] || continue
    v=$(field verify "$l"); e=$(field errors "$l")
    if [ "$v" != ok ] || [ "${e:-0}" != 0 ]; then notes="$notes $who:verify=${v:-?},errors=${e:-?}"; fi
  done
  printf '%-14s %12s %12s %7s %12s %12s %s\n' "$m" "${zo:--}" "${fo:--}" "$ratio" "${zp:--}" "${fp:--}" "$notes"
done
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
