#!/usr/bin/env bash
# Like zookeeper-server-stop.sh: SIGTERM every fjord-coord this user runs (or the one in
# $PID_DIR/fjord-coord.pid), then wait for it to exit.
set -uo pipefail
PID_DIR=${PID_DIR:-/tmp}
pids=$(cat "$PID_DIR/fjord-coord.pid" 2>/dev/null || true)
[ -n "$pids" ] && kill -0 $pids 2>/dev/null || pids=$(pgrep -u "$(id -u)" -x fjord-coord || true)
if [ -z "$pids" ]; then echo "No fjord-coord server to stop"; exit 1; fi
kill -TERM $pids
for _ in $(seq 1 100); do kill -0 $pids 2>/dev/null || break; sleep 0.1; done
rm -f "$PID_DIR/fjord-coord.pid"
