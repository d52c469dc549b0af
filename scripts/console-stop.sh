#!/usr/bin/env bash
# SIGTERM the fjord-console in $PID_DIR/fjord-console.pid (or every one this user runs),
# then wait for it to exit.
set -uo pipefail
PID_DIR=${PID_DIR:-/tmp}
pids=$(cat "$PID_DIR/fjord-console.pid" 2>/dev/null || true)
[ -n "$pids" ] && kill -0 $pids 2>/dev/null || pids=$(pgrep -u "$(id -u)" -x fjord-console || true)
if [ -z "$pids" ]; then echo "No fjord-console to stop"; exit 1; fi
kill -TERM $pids
for _ in $(seq 1 100); do kill -0 $pids 2>/dev/null || break; sleep 0.1; done
rm -f "$PID_DIR/fjord-console.pid"
