#!/usr/bin/env bash
# Start a fjord-broker like kafka-server-start.sh: broker-start.sh [-daemon] <server.properties>
# -daemon: run in the background, log to $FJORD_RUN_DIR/broker-<id>.log, PID in broker-<id>.pid
# env: FJORD_BIN (dir with fjord-broker; default ${CARGO_TARGET_DIR:-~/.cache/fjord-target}/release)
#      FJORD_RUN_DIR (default /tmp/fjord/run)
set -euo pipefail
daemon=0
if [ "${1:-}" = "-daemon" ]; then daemon=1; shift; fi
cfg=${1:-}
[ -n "$cfg" ] && [ -f "$cfg" ] || { echo "usage: $0 [-daemon] <server.properties>" >&2; exit 2; }
BIN_DIR=${FJORD_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/fjord-target}/release}
BIN=$BIN_DIR/fjord-broker
[ -x "$BIN" ] || { echo "fjord-broker not found at $BIN (cargo build --release -p fjord-broker)" >&2; exit 1; }
RUN=${FJORD_RUN_DIR:-/tmp/fjord/run}
mkdir -p "$RUN"
id=$(sed -n 's/^[[:space:]]*broker\.id[[:space:]]*[=:][[:space:]]*\([0-9]*\).*/\1/p' "$cfg" | tail -1)
id=${id:-0}
pidf=$RUN/broker-$id.pid
if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
  echo "fjord-broker $id already running (pid $(cat "$pidf"))" >&2; exit 1
fi
if [ $daemon = 1 ]; then
  nohup "$BIN" "$cfg" >"$RUN/broker-$id.log" 2>&1 </dev/null &
  echo $! >"$pidf"
  sleep 0.5
  if ! kill -0 "$(cat "$pidf")" 2>/dev/null; then
    echo "fjord-broker $id exited at start; see $RUN/broker-$id.log:" >&2; tail -5 "$RUN/broker-$id.log" >&2; rm -f "$pidf"; exit 1
  fi
  echo "fjord-broker $id started (pid $(cat "$pidf")), log $RUN/broker-$id.log"
else
  echo $$ >"$pidf"
  exec "$BIN" "$cfg"
fi
