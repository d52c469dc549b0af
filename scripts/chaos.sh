#!/usr/bin/env bash
# Long fault-injection run of the replication checker (issue 5): 3 fjord-brokers +
# fjord-coord, an idempotent acks=all producer on an RF=3 / min.insync.replicas=2 topic,
# and a nemesis that kills -9, SIGSTOPs/SIGCONTs or restarts a random broker every
# few seconds. Prints the checker's JSON report; exits 1 if anything acknowledged was
# lost, changed, duplicated, reordered or divergent.
#   scripts/chaos.sh                 30 minutes, nemesis every 5 s
#   scripts/chaos.sh --duration 120  any checker.py option passes through
# env: FJORD_BIN (binaries, default ${CARGO_TARGET_DIR:-~/.cache/fjord-target}/release),
#      FJORD_KEEP_TMP=1 keeps the brokers' logs and data.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
args=("$@")
if ! printf '%s\n' "${args[@]:-}" | grep -q -- '--duration'; then
  args+=(--duration 1800)
fi
PYTHONPATH="$here/../tests/python${PYTHONPATH:+:$PYTHONPATH}" exec python3 "$here/../tests/python/replication/checker.py" "${args[@]}"
