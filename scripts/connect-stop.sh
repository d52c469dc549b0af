#!/usr/bin/env bash
# Like Kafka's stop scripts: SIGTERM the fjord-connect in $PID_DIR/fjord-connect.pid (or every
# one this user runs), then wait for it to exit (tasks stop gracefully, offsets are flushed).
set -uo pipefail
PID_DIR=${PID_DIR:-/tmp}
pids=$(cat "$PID_DIR/fjord-connect.pid" 2>/dev/null || true)
[ -n "$pids" ] && kill -0 $pids 2>/dev/null || pids=$(pgrep -u "$(id -u)" -x fjord-connect || true)
if [ -z "$pids" ]; then echo "No fjord-connect worker to stop"; exit 1; fi
kill -TERM $pids
for _ in $(seq 1 300); do kill -0 $pids 2>/dev/null || break; sleep 0.1; done
rm -f "$PID_DIR/fjord-connect.pid"
