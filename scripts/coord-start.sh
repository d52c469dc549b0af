#!/usr/bin/env bash
# Like zookeeper-server-start.sh: coord-start.sh [-daemon] <zoo.cfg-style file>
# Foreground by default; -daemon detaches, logs to $LOG_DIR/fjord-coord.out, and writes
# the PID to $PID_DIR/fjord-coord.pid so coord-stop.sh can find it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
DAEMON=0
if [ "${1:-}" = "-daemon" ]; then DAEMON=1; shift; fi
if [ $# -lt 1 ]; then echo "USAGE: $0 [-daemon] config/coord.properties" >&2; exit 1; fi
BIN="$FJORD_BIN/fjord-coord"
[ -x "$BIN" ] || BIN=$(command -v fjord-coord || true)
[ -n "$BIN" ] || { echo "fjord-coord not built: run scripts/start.sh or cargo build --release" >&2; exit 1; }
LOG_DIR=${LOG_DIR:-$FJORD_ROOT/logs}
PID_DIR=${PID_DIR:-/tmp}
if [ $DAEMON -eq 1 ]; then
  mkdir -p "$LOG_DIR"
  nohup "$BIN" "$@" >> "$LOG_DIR/fjord-coord.out" 2>&1 < /dev/null &
  echo $! > "$PID_DIR/fjord-coord.pid"
  echo "fjord-coord started, pid $!, log $LOG_DIR/fjord-coord.out"
else
  exec "$BIN" "$@"
fi
