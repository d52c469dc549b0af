#!/usr/bin/env bash
# ACL benchmark (issue 16): produce MB/s of 1 KiB records through a broker
# without an authorizer against one with AclAuthorizer and 10,000 ACLs (same
# cluster, rounds alternating, medians), then the authorizer's per-decision
# cost (fjord-acl-bench). scripts/bench-acl.sh [--quick]
# --quick: 1,000 ACLs, 32 MiB per round and 500,000 timed decisions (else 10,000 ACLs,
# 128 MiB, 2,000,000); 3 rounds.
set -euo pipefail
source "$(dirname "$0")/env.sh"
export FJORD_BIN=${FJORD_BIN:-$CARGO_TARGET_DIR/release}
exec python3 "$FJORD_ROOT/bench/security/bench_acl.py" "$@"
