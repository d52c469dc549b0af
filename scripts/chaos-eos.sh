#!/usr/bin/env bash
# Exactly-once consume-transform-produce under faults at full size (issue 14):
# tests/python/transactions/test_eos_copy.py with 200,000 records written at 2,000/s
# while a nemesis kills -9 the confluent-kafka processor and the partitions' leaders in
# turn every 3 s (3 fjord-brokers, RF 3, min.insync.replicas 2). The default test run
# does the same with 20,000 records.
#   scripts/chaos-eos.sh                      200,000 records
#   EOS_RECORDS=1000000 EOS_RATE=5000 scripts/chaos-eos.sh
# env: EOS_RECORDS, EOS_RATE (input records/s), EOS_INTERVAL (s between faults),
#      FJORD_BIN (binaries, default ${CARGO_TARGET_DIR:-~/.cache/fjord-target}/release).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$FJORD_ROOT/tests/python"
export EOS_RECORDS=${EOS_RECORDS:-200000} EOS_RATE=${EOS_RATE:-2000} FJORD_REQUIRE_BINARIES=1
exec python3 -m pytest -q -s -p no:cacheprovider transactions/test_eos_copy.py
