#!/usr/bin/env bash
# Coordinator leader failover, Fjord beside Apache ZooKeeper 3.8 (issue 18): a 3-member
# ensemble of each (tickTime=2000, initLimit=10, syncLimit=5), 8 kazoo clients creating
# znodes, kill -9 of the leader N times in a row (restarted and rejoined each time). Per
# kill: the time from the kill to the first acknowledged write sent after it. Prints one
# line per system (median, max, every kill); also checks that nothing acknowledged was
# lost and no session was lost, and that Fjord's median is <= 1 s and max <= 2 s (the
# default test run does the same with 10 Fjord kills and 3 ZooKeeper kills).
#   scripts/bench-failover.sh              10 kills each
#   scripts/bench-failover.sh --kills 20
# env: FJORD_BIN (binaries dir, default $CARGO_TARGET_DIR/release).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KILLS=10
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) KILLS=$2; shift ;;
    -h|--help) sed -n '2,/^set -/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "$(basename "$0"): unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
cd "$FJORD_ROOT/tests/python"
FAILOVER_FJORD_KILLS=$KILLS FAILOVER_ZK_KILLS=$KILLS \
  exec python3 -m pytest -q -p no:logging -p no:cacheprovider ensemble/test_failover.py -k failover_within
