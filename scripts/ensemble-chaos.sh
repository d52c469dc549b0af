#!/usr/bin/env bash
# Long fault-injection run of the ensemble checker (issue 6): a 3-member fjord-coord
# ensemble (tickTime=2000), kazoo clients doing creates, CASes and sync'd reads while a
# nemesis kills -9, SIGSTOPs/SIGCONTs or restarts a member (the leader included) every
# 4 s. Prints the JSON report; exits 1 on a lost write, a stale read, a non-linearizable
# register history, members that disagree or a kazoo connection thread that died.
#   scripts/ensemble-chaos.sh                  10 minutes
#   scripts/ensemble-chaos.sh --members 5 --duration 120   (any ens_nemesis.py option)
# env: FJORD_BIN (binaries dir), FJORD_KEEP_TMP=1 keeps the members' data and logs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
exec_with_duration 600 "$FJORD_ROOT/tests/python/ensemble/ens_nemesis.py" "$@"
