#!/usr/bin/env bash
# Consumer-group join/leave stress, long run: confluent-kafka consumers join and
# leave one group in random order; after every change the group must settle with
# each live member assigned and every partition held exactly once (no lost join).
# The test suite runs the same test for 20 s (tests/python/groups/test_join.py).
#   scripts/group-stress.sh [SECONDS]     default 600
# env: FJORD_BIN, FJORD_GROUP_STRESS_SEED (replay a run's random order)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$FJORD_ROOT/tests/python"
FJORD_GROUP_STRESS_SECS=${1:-600} exec python3 -m pytest -x -q -s -p no:cacheprovider \
  "groups/test_join.py::test_random_joins_and_leaves_each_complete_a_generation"
