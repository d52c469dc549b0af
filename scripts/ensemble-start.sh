#!/usr/bin/env bash
# Starts a 3-member fjord-coord ensemble on this machine in the background
# (config/ensemble/coord-{1,2,3}.properties: client ports 2181-2183), writing each
# member's dataDir/myid first, as one does for ZooKeeper. Waits until one member reports
# Mode: leader. Logs in $LOG_DIR/fjord-coord-N.out, PIDs in $PID_DIR/fjord-coord-N.pid.
# usage: scripts/ensemble-start.sh [config dir]     stop: scripts/ensemble-stop.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"
CONF_DIR=${1:-$FJORD_ROOT/config/ensemble}
BIN="$FJORD_BIN/fjord-coord"
[ -x "$BIN" ] || { echo "fjord-coord not built: run scripts/start.sh or cargo build --release" >&2; exit 1; }
LOG_DIR=${LOG_DIR:-$FJORD_ROOT/logs}
PID_DIR=${PID_DIR:-/tmp}
mkdir -p "$LOG_DIR"
ports=()
for cfg in "$CONF_DIR"/coord-*.properties; do
  n=$(basename "$cfg" .properties); n=${n#coord-}
  data=$(sed -n 's/^dataDir=//p' "$cfg")
  mkdir -p "$data"
  echo "$n" > "$data/myid"
  nohup "$BIN" "$cfg" >> "$LOG_DIR/fjord-coord-$n.out" 2>&1 < /dev/null &
  echo $! > "$PID_DIR/fjord-coord-$n.pid"
  ports+=("$(sed -n 's/^clientPort=//p' "$cfg")")
  echo "member $n started, pid $!, client port ${ports[-1]}, log $LOG_DIR/fjord-coord-$n.out"
done
fourlw() { ( exec 3<>"/dev/tcp/127.0.0.1/$1" && printf '%s' "$2" >&3 && timeout 2 cat <&3 ) 2>/dev/null || true; }
for _ in $(seq 1 100); do
  for p in "${ports[@]}"; do
    if fourlw "$p" srvr | grep -q '^Mode: leader'; then
      echo "leader: 127.0.0.1:$p; connect string: $(printf '127.0.0.1:%s,' "${ports[@]}" | sed 's/,$//')"
      exit 0
    fi
  done
  sleep 0.2
done
echo "no leader elected within 20 s; see $LOG_DIR/fjord-coord-*.out" >&2
exit 1
