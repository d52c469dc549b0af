#!/usr/bin/env bash
# Like connect-standalone.sh: connect-start.sh [-daemon] worker.properties connector.properties...
# (connect-distributed.sh runs this with FJORD_CONNECT_MODE=distributed.)
# Foreground by default; -daemon detaches, logs to $LOG_DIR/fjord-connect.out, and writes
# the PID to $PID_DIR/fjord-connect.pid so connect-stop.sh can find it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
DAEMON=0
MODE=${FJORD_CONNECT_MODE:-standalone}
if [ "${1:-}" = "-daemon" ]; then DAEMON=1; shift; fi
if [ $# -lt 1 ]; then echo "USAGE: $0 [-daemon] config/connect-$MODE.properties [connector.properties ...]" >&2; exit 1; fi
BIN="$FJORD_BIN/fjord-connect"
[ -x "$BIN" ] || BIN=$(command -v fjord-connect || true)
[ -n "$BIN" ] || { echo "fjord-connect not built: run cargo build --release" >&2; exit 1; }
LOG_DIR=${LOG_DIR:-$FJORD_ROOT/logs}
PID_DIR=${PID_DIR:-/tmp}
if [ $DAEMON -eq 1 ]; then
  mkdir -p "$LOG_DIR"
  nohup "$BIN" "$MODE" "$@" >> "$LOG_DIR/fjord-connect.out" 2>&1 < /dev/null &
  echo $! > "$PID_DIR/fjord-connect.pid"
  echo "fjord-connect started, pid $!, log $LOG_DIR/fjord-connect.out"
else
  exec "$BIN" "$MODE" "$@"
fi
