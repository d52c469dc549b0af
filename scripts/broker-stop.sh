#!/usr/bin/env bash
# Stop fjord-brokers started by broker-start.sh: SIGTERM (stop accepting, finish in-flight
# requests, flush, deregister), then wait. broker-stop.sh [<server.properties>|<broker id>]
# Without an argument every broker with a PID file in $FJORD_RUN_DIR is stopped.
set -uo pipefail
RUN=${FJORD_RUN_DIR:-/tmp/fjord/run}
TIMEOUT=${FJORD_STOP_TIMEOUT:-30}
arg=${1:-}
if [ -n "$arg" ] && [ -f "$arg" ]; then
  id=$(sed -n 's/^[[:space:]]*broker\.id[[:space:]]*[=:][[:space:]]*\([0-9]*\).*/\1/p' "$arg" | tail -1)
  files=("$RUN/broker-${id:-0}.pid")
elif [ -n "$arg" ]; then
  files=("$RUN/broker-$arg.pid")
else
  shopt -s nullglob; files=("$RUN"/broker-*.pid)
fi
[ ${#files[@]} -gt 0 ] && [ -f "${files[0]}" ] || { echo "no fjord-broker to stop" >&2; exit 1; }
rc=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 $((TIMEOUT * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then echo "pid $pid did not stop in ${TIMEOUT}s" >&2; rc=1; continue; fi
    echo "stopped fjord-broker pid $pid"
  fi
  rm -f "$f"
done
exit $rc
