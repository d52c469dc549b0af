#!/usr/bin/env bash
# Security benchmark (issue 16): produce/consume MB/s of 1 KiB records over
# PLAINTEXT vs SSL vs SASL_SSL (SCRAM-SHA-512) in one run, with the CPU per GiB
# of broker and client, and new authenticated connections per second.
# scripts/bench-security.sh [--quick]
# --quick: 256 MiB per listener and round, 3 rounds, 3 s of connections
# (else 512 MiB, 5 rounds, 10 s); listeners alternate, medians; each topic is
# deleted after its round.
# Client: kbench-system (librdkafka + OpenSSL, bench/) when built, else
# confluent-kafka (KBENCH_SYSTEM= forces confluent-kafka).
set -euo pipefail
wanted=${KBENCH_SYSTEM-default}  # set and empty: confluent-kafka
source "$(dirname "$0")/lib.sh"
if [ -n "$wanted" ]; then
  [ -x "$KBENCH_SYSTEM" ] || bench_build kbench-system || true
  [ -x "$KBENCH_SYSTEM" ] || KBENCH_SYSTEM=
else
  KBENCH_SYSTEM=
fi
export KBENCH_SYSTEM
exec python3 "$FJORD_ROOT/bench/security/bench_security.py" "$@"
