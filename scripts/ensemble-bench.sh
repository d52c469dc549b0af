#!/usr/bin/env bash
# Ensemble benchmark: bench/zkbench against a 3-member Apache ZooKeeper 3.8 ensemble
# (Debian package, bench/anchors/zk-anchor.sh per member, fsync on) and a 3-member
# fjord-coord ensemble (Raft, fsync on), in the same run on this machine, one ensemble at
# a time. zkbench gets every member in its connect string, so sessions spread over leader
# and followers. Prints a side-by-side table from zkbench's last line.
#
# usage: scripts/ensemble-bench.sh [--quick] [--duration S] [--no-build] [--only zk|fjord]
#                                  [--modes "create set get mixed"]
#   --quick      3 s per mode
#   --duration   seconds per mode (default 10, env DURATION)
#   --no-build   use the binaries already built
#   --only       run one ensemble only
# env: BENCH_TARGET (zkbench build dir, default ~/.cache/bench-target), ZKBENCH (the binary),
#      CARGO_TARGET_DIR (fjord build dir, default ~/.cache/fjord-target), FJORD_BIN,
#      SESSIONS/INFLIGHT (default 16/16), KEEP_WORK=1 keeps the temp dir.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SESSIONS=${SESSIONS:-16}
INFLIGHT=${INFLIGHT:-16}
MODES="create set get mixed"
coord_bench_args 0 "$@"
coord_bench_build --workspace --bins
FJORD=$FJORD_BIN/fjord-coord
coord_bench_work ensemble-bench

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
    cat > "$d/zoo.cfg" <<CFG
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
CFG
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

if [ "$ONLY" != fjord ]; then
  write_cfgs zk
  echo "== Apache ZooKeeper 3.8, 3 members ($CONNECT), fsync on" >&2
  for i in 1 2 3; do
    d=$WORK/zk/m$i
    ZKA_DIR=$d ZKA_CONF=$d/zoo.cfg ZKA_PORT=${CPORTS[$((i - 1))]} "$ANCHORS/zk-anchor.sh" start >&2 || true
    [ -f "$d/zk.pid" ] && PIDS+=("$(cat "$d/zk.pid")")
  done
  if wait_modes; then zk_run_modes zk "$CONNECT"; fi
  stop_all
fi

if [ "$ONLY" != zk ]; then
  [ -x "$FJORD" ] || { echo "fjord-coord not found at $FJORD" >&2; exit 1; }
  write_cfgs fjord
  echo "== fjord-coord, 3 members ($CONNECT), Raft log fsync on" >&2
  for i in 1 2 3; do
    spawn "$WORK/fjord/m$i/log/server.log" "$FJORD" "$WORK/fjord/m$i/zoo.cfg"
  done
  if wait_modes; then zk_run_modes fjord "$CONNECT"; fi
  stop_all
fi

zk_table 8 "zkbench vs 3-member ensembles: $SESSIONS sessions x $INFLIGHT in flight, 100 B values, ${DURATION}s per mode, read ratio 0.9 in mixed"
