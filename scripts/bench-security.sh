#!/usr/bin/env bash
# Security benchmark (issue 16): produce/consume MB/s of 1 KiB records over
# PLAINTEXT vs SSL vs SASL_SSL (SCRAM-SHA-512) in one run, and new
# authenticated connections per second. scripts/bench-security.sh [--quick]
# --quick: 64 MiB per listener and round, 3 s of connections (else 256 MiB, 10 s); 3 rounds, medians.
# Uses confluent-kafka (librdkafka), the client most deployments measure with.
set -euo pipefail
source "$(dirname "$0")/env.sh"
export FJORD_BIN=${FJORD_BIN:-$CARGO_TARGET_DIR/release}
exec python3 "$FJORD_ROOT/bench/security/bench_security.py" "$@"
