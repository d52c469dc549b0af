#!/usr/bin/env bash
# The web console: console-start.sh [-daemon] config/console.properties
# Foreground by default; -daemon detaches, logs to $LOG_DIR/fjord-console.out, and writes
# the PID to $PID_DIR/fjord-console.pid so console-stop.sh can find it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
DAEMON=0
if [ "${1:-}" = "-daemon" ]; then DAEMON=1; shift; fi
if [ $# -ne 1 ]; then echo "USAGE: $0 [-daemon] config/console.properties" >&2; exit 1; fi
BIN="$FJORD_BIN/fjord-console"
[ -x "$BIN" ] || BIN=$(command -v fjord-console || true)
[ -n "$BIN" ] || { echo "fjord-console not built: run cargo build --release" >&2; exit 1; }
LOG_DIR=${LOG_DIR:-$FJORD_ROOT/logs}
PID_DIR=${PID_DIR:-/tmp}
URL=$(sed -n 's/^[[:space:]]*listeners[[:space:]]*[=:][[:space:]]*//p' "$1" | tail -1)
if [ $DAEMON -eq 1 ]; then
  mkdir -p "$LOG_DIR"
  nohup "$BIN" "$1" >> "$LOG_DIR/fjord-console.out" 2>&1 < /dev/null &
  echo $! > "$PID_DIR/fjord-console.pid"
  echo "fjord-console started, pid $!, ${URL:-http://127.0.0.1:9021}, log $LOG_DIR/fjord-console.out"
else
  echo "fjord-console on ${URL:-http://127.0.0.1:9021}" >&2
  exec "$BIN" "$1"
fi
