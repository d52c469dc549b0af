#!/usr/bin/env bash
# The zkbench matrix against any running ZooKeeper-protocol server (the anchor,
# fjord-coord, an ensemble): every mode REPS times, interleaved (all modes in each round),
# then the medians (median.py).
# env: ZKBENCH (default ~/.cache/bench-target/release/zkbench), CONNECT=127.0.0.1:22181,
#      REPS=3, DUR=10 (seconds per mode), SESSIONS=16, INFLIGHT=16, LABEL, OUT (result
#      lines; zkbench's stderr goes to OUT.log), MODES="create set get mixed session-churn"
set -uo pipefail
ZKBENCH=${ZKBENCH:-$HOME/.cache/bench-target/release/zkbench}
CONNECT=${CONNECT:-127.0.0.1:22181}
REPS=${REPS:-3}
DUR=${DUR:-10}
SESSIONS=${SESSIONS:-16}
INFLIGHT=${INFLIGHT:-16}
LABEL=${LABEL:-s${SESSIONS}i${INFLIGHT}}
OUT=${OUT:-/tmp/zkbench-results.txt}
MODES=${MODES:-"create set get mixed session-churn"}
for r in $(seq 1 "$REPS"); do
  for m in $MODES; do
    line=$("$ZKBENCH" --connect "$CONNECT" --mode "$m" --sessions "$SESSIONS" --inflight "$INFLIGHT" \
      --read-ratio 0.9 --duration "$DUR" 2>>"$OUT.log" | tail -1)
    echo "label=$LABEL $line" | tee -a "$OUT"
  done
done
python3 "$(dirname "$0")/median.py" "$OUT"
