# Sourced by the benchmark and chaos scripts: where the load generators are, how to
# build them, and the blocks those scripts share (ports, four-letter words, processes,
# the coordinator benchmarks' runs and tables). Not meant to be run on its own.
# Everything else (FJORD_ROOT, FJORD_BIN, the Debian packages) comes from env.sh.

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# The Python programs (checkers, harness users) import the test harness package fjordtest.
export PYTHONPATH="$FJORD_ROOT/tests/python${PYTHONPATH:+:$PYTHONPATH}"

# ------------------------------------------------------------------ load generators
# bench/ holds the project's own load generators (zkbench, kbench, kbench-system) and the
# anchors (Apache ZooKeeper, Tansu). They build outside the server workspace, into their
# own target dir: kbench compiles librdkafka from source, which takes minutes the first time.
BENCH_DIR=$FJORD_ROOT/bench
ANCHORS=$BENCH_DIR/anchors
BENCH_TARGET=${BENCH_TARGET:-$HOME/.cache/bench-target}
ZKBENCH=${ZKBENCH:-$BENCH_TARGET/release/zkbench}
KBENCH=${KBENCH:-$BENCH_TARGET/release/kbench}
KBENCH_SYSTEM=${KBENCH_SYSTEM:-$(dirname "$KBENCH")/kbench-system}

# bench_build TOOL...: cargo build --release of bench/TOOL (zkbench, kbench, kbench-system)
bench_build() {
  local tool
  for tool in "$@"; do
    (cd "$BENCH_DIR/$tool" && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --release -q)
  done
}

# require_tool PATH TOOL: exits 1 with the build command unless PATH is executable
require_tool() {
  [ -x "$1" ] && return 0
  echo "$2 not found at $1; build it with:" >&2
  echo "  (cd $BENCH_DIR/$2 && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --release)" >&2
  exit 1
}

# ------------------------------------------------------------------ small helpers
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# fourlw PORT CMD: a ZooKeeper four-letter word through bash's /dev/tcp (no nc needed)
fourlw() {
  ( exec 3<>"/dev/tcp/127.0.0.1/$1" && printf '%s' "$2" >&3 && timeout 5 cat <&3 ) 2>/dev/null || true
}

# rss_kib PID: resident memory of a process
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# field NAME LINE: the value of NAME=... in a result line (empty if absent)
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# ------------------------------------------------------------------ processes
# spawn LOG CMD...: runs CMD in the background (output to LOG, no stdin), remembers it for
# stop_all; its pid is in SPAWNED.
PIDS=()
SPAWNED=
spawn() {
  local log=$1; shift
  "$@" >>"$log" 2>&1 </dev/null &
  SPAWNED=$!
  PIDS+=("$SPAWNED")
}

# spawn_coord DIR PORT [LINE...]: writes DIR/coord.cfg (standalone fjord-coord on
# 127.0.0.1:PORT, data in DIR/data, plus LINEs) and spawns it, logging to DIR/server.log
spawn_coord() {
  local dir=$1 port=$2; shift 2
  mkdir -p "$dir/data"
  printf '%s\n' "tickTime=2000" "dataDir=$dir/data" "clientPort=$port" \
    "clientPortAddress=127.0.0.1" "maxClientCnxns=0" "4lw.commands.whitelist=*" "admin.enableServer=false" "$@" \
    > "$dir/coord.cfg"
  spawn "$dir/server.log" "$FJORD_BIN/fjord-coord" "$dir/coord.cfg"
}

# stop_pid PID: SIGTERM, up to 5 s to exit, then SIGKILL
stop_pid() {
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# stop_all: stops every spawned process still running, the last started first (a broker
# before the coordinator it registered with)
stop_all() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
  PIDS=()
}

# wait_port PORT WHAT LOG PID: until PID listens on PORT (not some other process); exits 1
# with the end of LOG if PID dies or 10 s pass
wait_port() {
  for _ in $(seq 100); do
    kill -0 "$4" 2>/dev/null || break
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$2 did not start; log:" >&2; tail -20 "$3" >&2; exit 1
}

# wait_ruok PORT PID: until the server on PORT answers ruok (10 s at most, while PID lives)
wait_ruok() {
  for _ in $(seq 1 100); do
    [ "$(fourlw "$1" ruok)" = imok ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# exec_with_duration SECS PROGRAM ARGS...: execs a Python program, adding --duration SECS
# unless ARGS give one (the chaos scripts)
exec_with_duration() {
  local secs=$1 prog=$2; shift 2
  local args=("$@")
  if ! printf '%s\n' "${args[@]:-}" | grep -q -- '--duration'; then
    args+=(--duration "$secs")
  fi
  exec python3 "$prog" "${args[@]}"
}

# ------------------------------------------------------------------ coordinator benchmarks
# bench-coord.sh and ensemble-bench.sh: zkbench runs every mode against Apache ZooKeeper,
# then against fjord-coord, and the two are printed side by side.

# coord_bench_args ZNODES_OK "$@": the options both scripts take. Sets DURATION, QUICK,
# BUILD, ONLY, MODES (defaults: env DURATION or 10, MODES as set by the caller) and, when
# ZNODES_OK=1, ZNODES (--znodes). --help prints the script's opening comment.
coord_bench_args() {
  local znodes_ok=$1; shift
  DURATION=${DURATION:-10}
  QUICK=0
  BUILD=1
  ONLY=
  while [ $# -gt 0 ]; do
    case "$1" in
      --quick) QUICK=1; DURATION=3 ;;
      --duration) DURATION=$2; shift ;;
      --no-build) BUILD=0 ;;
      --only) ONLY=$2; shift ;;
      --modes) MODES=$2; shift ;;
      --znodes) [ "$znodes_ok" = 1 ] || { echo "$(basename "$0"): unknown argument $1" >&2; exit 2; }
                ZNODES=$2; shift ;;
      -h|--help) sed -n '2,/^set -/p' "$0" | sed '$d'; exit 0 ;;
      *) echo "$(basename "$0"): unknown argument $1" >&2; exit 2 ;;
    esac
    shift
  done
}

# coord_bench_build CARGO_ARGS...: builds zkbench, and (unless --only zk) the fjord
# binaries with CARGO_ARGS; does nothing with --no-build. Then requires zkbench.
coord_bench_build() {
  if [ "$BUILD" = 1 ]; then
    echo "== building zkbench ($BENCH_TARGET)" >&2
    (cd "$BENCH_DIR/zkbench" && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --release) >&2
    if [ "$ONLY" != zk ]; then
      echo "== building fjord ($CARGO_TARGET_DIR)" >&2
      (cd "$FJORD_ROOT" && cargo build --release "$@") >&2
    fi
  fi
  [ -x "$ZKBENCH" ] || { echo "zkbench not found at $ZKBENCH (run without --no-build)" >&2; exit 1; }
}

# coord_bench_work NAME: a fresh WORK dir, removed on exit (KEEP_WORK=1 keeps it) after
# every spawned process is stopped and the caller's own `on_exit` (if defined) has run
coord_bench_work() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  trap coord_bench_cleanup EXIT INT TERM
}
coord_bench_cleanup() {
  if declare -F on_exit >/dev/null; then on_exit; fi
  stop_all
  if [ "${KEEP_WORK:-0}" != 1 ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}

# zk_run_modes LABEL CONNECT: zkbench every mode in MODES; each result line goes to
# $WORK/LABEL.MODE, zkbench's stderr to $WORK/LABEL.zkbench.log
zk_run_modes() {
  local label=$1 connect=$2 m line
  for m in $MODES; do
    line=$("$ZKBENCH" --connect "$connect" --mode "$m" --sessions "$SESSIONS" \
      --inflight "$INFLIGHT" --size 100 --read-ratio 0.9 --duration "$DURATION" \
      2>>"$WORK/$label.zkbench.log" | tail -1) || true
    [ -n "$line" ] || line="zkbench mode=$m FAILED (see log)"
    echo "$label: $line" >&2
    echo "$line" > "$WORK/$label.$m"
  done
}

# zk_table WIDTH TITLE: TITLE, then a row per mode (ops/s, ratio fjord/zk, p99 of each,
# and a note where a run did not verify or had errors), the mode column WIDTH wide
zk_table() {
  local w=$1 m zl fl zo fo zp fp ratio notes who l v e
  echo
  echo "$2"
  printf "%-${w}s %12s %12s %7s %12s %12s  %s\n" mode "zk ops/s" "fjord ops/s" ratio "zk p99 us" "fjord p99 us" notes
  for m in $MODES; do
    zl=$(cat "$WORK/zk.$m" 2>/dev/null || true)
    fl=$(cat "$WORK/fjord.$m" 2>/dev/null || true)
    zo=$(field ops_per_s "$zl"); fo=$(field ops_per_s "$fl")
    zp=$(field p99_us "$zl"); fp=$(field p99_us "$fl")
    ratio=-
    if [ -n "$zo" ] && [ -n "$fo" ]; then
      ratio=$(awk -v a="$fo" -v b="$zo" 'BEGIN{ if (b>0) printf "%.2fx", a/b; else print "-"}')
    fi
    notes=""
    for who in zk fjord; do
      l=$(cat "$WORK/$who.$m" 2>/dev/null || true)
      [ -n "$l" ] || continue
      v=$(field verify "$l"); e=$(field errors "$l")
      if [ "$v" != ok ] || [ "${e:-0}" != 0 ]; then notes="$notes $who:verify=${v:-?},errors=${e:-?}"; fi
    done
    printf "%-${w}s %12s %12s %7s %12s %12s %s\n" "$m" "${zo:--}" "${fo:--}" "$ratio" "${zp:--}" "${fp:--}" "$notes"
  done
}
