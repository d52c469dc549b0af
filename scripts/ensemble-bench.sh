#!/usr/bin/env bash
# Ensemble benchmark: ../shared/bench/zkbench against a 3-member Apache ZooKeeper 3.8
# ensemble (Debian package, QuorumPeerMain, fsync on) and a 3-member fjord-coord ensemble
# (Raft, fsync on), in the same run on this machine, one ensemble at a time. zkbench gets
# every member in its connect string, so sessions spread over leader and followers.
# Prints a side-by-side table from zkbench's last line.
#
# usage: scripts/ensemble-bench.sh [--quick] [--duration S] [--no-build] [--only zk|fjord]
#                                  [--modes "create set get mixed"]
#   --quick      3 s per mode
#   --duration   seconds per mode (default 10, env DURATION)
#   --no-build   use the binaries already built
#   --only       run one ensemble only
# env: BENCH_TARGET (zkbench build dir, default ~/.cache/bench-target),
#      CARGO_TARGET_DIR (fjord build dir, default ~/.cache/fjord-target), FJORD_BIN,
#      SESSIONS/INFLIGHT (default 16/16), KEEP_WORK=1 keeps the temp dir.
set -euo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SHARED=$(cd "$ROOT/../shared" && pwd)
BENCH_TARGET=${BENCH_TARGET:-$HOME/.cache/bench-target}
FJORD_TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/fjord-target}
FJORD_BIN=${FJORD_BIN:-$FJORD_TARGET/release}
DURATION=${DURATION:-10}
SESSIONS=${SESSIONS:-16}
INFLIGHT=${INFLIGHT:-16}
MODES="create set get mixed"
BUILD=1
ONLY=

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DURATION=3 ;;
    --duration) DURATION=$2; shift ;;
    --no-build) BUILD=0 ;;
    --only) ONLY=$2; shift ;;
    --modes) MODES=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "ensemble-bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

ZKBENCH=$BENCH_TARGET/release/zkbench
FJORD=$FJORD_BIN/fjord-coord
if [ "$BUILD" = 1 ]; then
  echo "== building zkbench ($BENCH_TARGET)" >&2
  (cd "$SHARED/bench/zkbench" && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --release) >&2
  if [ "$ONLY" != zk ]; then
    echo "== building fjord ($FJORD_TARGET)" >&2
    (cd "$ROOT" && CARGO_TARGET_DIR=$FJORD_TARGET cargo build --release --workspace --bins) >&2
  fi
fi
[ -x "$ZKBENCH" ] || { echo "zkbench not found at $ZKBENCH (run without --no-build)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/ensemble-bench.XXXXXX)
PIDS=()
stop_all() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] || continue
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  PIDS=()
}
cleanup() {
  stop_all
  if [ "${KEEP_WORK:-0}" != 1 ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
fourlw() {  # fourlw PORT CMD
  ( exec 3<>"/dev/tcp/127.0.0.1/$1" && printf '%s' "$2" >&3 && timeout 5 cat <&3 ) 2>/dev/null || true
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# write_cfgs KIND: three member configs under $WORK/KIND/mN, sets CONNECT and CPORTS
write_cfgs() {
  local kind=$1 i servers="" connect=""
  CPORTS=()
  for i in 1 2 3; do
    CPORTS+=("$(free_port)")
    servers="${servers}server.$i=127.0.0.1:$(free_port):$(free_port)"$'\n'
  done
  for i in 1 2 3; do
    local d=$WORK/$kind/m$i
    mkdir -p "$d/data" "$d/log"
    echo "$i" > "$d/data/myid"
    cat > "$d/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$d/data
clientPort=${CPORTS[$((i - 1))]}
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
${servers}
EOF
    connect="${connect:+$connect,}127.0.0.1:${CPORTS[$((i - 1))]}"
  done
  CONNECT=$connect
}

# wait_modes: until one member says leader and two say follower
wait_modes() {
  local modes p
  for _ in $(seq 1 300); do
    modes=""
    for p in "${CPORTS[@]}"; do
      modes="$modes $(fourlw "$p" srvr | sed -n 's/^Mode: //p')"
    done
    if [ "$(tr ' ' '\n' <<<"$modes" | grep -c '^leader$')" = 1 ] &&
       [ "$(tr ' ' '\n' <<<"$modes" | grep -c '^follower$')" = 2 ]; then
      echo "   modes:$modes" >&2; return 0
    fi
    sleep 0.2
  done
  echo "ensemble did not elect a leader (modes:$modes)" >&2
  return 1
}

run_modes() {
  local label=$1 m line
  for m in $MODES; do
    line=$("$ZKBENCH" --connect "$CONNECT" --mode "$m" --sessions "$SESSIONS" \
      --inflight "$INFLIGHT" --size 100 --read-ratio 0.9 --duration "$DURATION" \
      2>>"$WORK/$label.zkbench.log" | tail -1) || true
    [ -n "$line" ] || line="zkbench mode=$m FAILED (see log)"
    echo "$label: $line" >&2
    echo "$line" > "$WORK/$label.$m"
  done
}

if [ "$ONLY" != fjord ]; then
  write_cfgs zk
  echo "== Apache ZooKeeper 3.8, 3 members ($CONNECT), fsync on" >&2
  for i in 1 2 3; do
    d=$WORK/zk/m$i
    cp /etc/zookeeper/conf_example/log4j.properties "$d/"
    CP="$d:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
    java -Xmx1000m -Dzookeeper.log.dir="$d/log" -Dzookeeper.root.logger=INFO,ROLLINGFILE \
      -cp "$CP" org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" \
      > "$d/log/stdout.log" 2>&1 < /dev/null &
    PIDS+=($!)
  done
  if wait_modes; then run_modes zk; fi
  stop_all
fi

if [ "$ONLY" != zk ]; then
  [ -x "$FJORD" ] || { echo "fjord-coord not found at $FJORD" >&2; exit 1; }
  write_cfgs fjord
  echo "== fjord-coord, 3 members ($CONNECT), Raft log fsync on" >&2
  for i in 1 2 3; do
    "$FJORD" "$WORK/fjord/m$i/zoo.cfg" > "$WORK/fjord/m$i/log/server.log" 2>&1 < /dev/null &
    PIDS+=($!)
  done
  if wait_modes; then run_modes fjord; fi
  stop_all
fi

echo
echo "zkbench vs 3-member ensembles: $SESSIONS sessions x $INFLIGHT in flight, 100 B values, ${DURATION}s per mode, read ratio 0.9 in mixed"
printf '%-8s %12s %12s %7s %12s %12s  %s\n' mode "zk ops/s" "fjord ops/s" ratio "zk p99 us" "fjord p99 us" notes
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
  printf '%-8s %12s %12s %7s %12s %12s %s\n' "$m" "${zo:--}" "${fo:--}" "$ratio" "${zp:--}" "${fp:--}" "$notes"
done
