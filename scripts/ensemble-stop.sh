#!/usr/bin/env bash
# Stops the members scripts/ensemble-start.sh started (SIGTERM by PID file, then waits).
set -uo pipefail
PID_DIR=${PID_DIR:-/tmp}
found=0
for f in "$PID_DIR"/fjord-coord-*.pid; do
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"; found=1
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"
done
[ $found = 1 ] || { echo "No fjord-coord ensemble member to stop"; exit 1; }
