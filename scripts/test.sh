#!/usr/bin/env bash
# Every test, from a fresh Debian machine of this kind: installs what the tests need
# (Debian packages, pip packages, cargo-fuzz), builds, then runs
#   1. the Rust unit and integration tests (cargo nextest, or cargo test without it),
#   2. a short fuzz run of each decoder (scripts/fuzz.sh --quick),
#   3. the quick benchmarks (scripts/bench-coord.sh --quick, scripts/bench-broker.sh --quick,
#      scripts/bench-groups.sh --quick, scripts/bench-replication.sh --quick,
#      scripts/bench-compaction.sh --quick (about 20 s), scripts/bench-streams.sh --quick,
#      scripts/bench-transactions.sh --quick (about 10 s), scripts/bench-metrics.sh --quick
#      (about 15 s),
#      scripts/ensemble-bench.sh --quick, scripts/bench-registry.sh --quick,
#      scripts/bench-security.sh --quick, scripts/bench-acl.sh --quick,
#      scripts/bench-connect.sh --quick, scripts/bench-console.sh --quick; full runs: see README),
#   4. the acceptance tests with real clients against real processes (pytest tests/python;
#      in parallel workers, then the `serial` modules alone).
# Env: FJORD_SKIP_FUZZ=1 / FJORD_SKIP_BENCH=1 skip steps 2 / 3; PYTEST_ARGS adds pytest flags.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$FJORD_ROOT"

fjord_install_apt
fjord_install_pip
fjord_build

# The broker's modules import one way only (docs/architecture.md → The broker).
python3 scripts/check-cycles.py broker/src

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --release --workspace --no-fail-fast
else
  cargo test --release --workspace
fi

if [ "${FJORD_SKIP_FUZZ:-0}" != 1 ]; then
  scripts/fuzz.sh --quick
fi

if [ "${FJORD_SKIP_BENCH:-0}" != 1 ]; then
  # The load generators in bench/, built into $BENCH_TARGET (~/.cache/bench-target).
  # kbench links librdkafka built from source: the first build takes minutes.
  # kbench-system is the same source on Debian's librdkafka 2.0.2 (old clients too).
  bench_build zkbench kbench kbench-system
  scripts/bench-coord.sh --quick
  scripts/bench-broker.sh --quick
  scripts/bench-groups.sh --quick
  scripts/bench-replication.sh --quick
  scripts/bench-compaction.sh --quick
  scripts/ensemble-bench.sh --quick
  scripts/bench-streams.sh --quick
  scripts/bench-transactions.sh --quick
  scripts/bench-metrics.sh --quick
  scripts/bench-registry.sh --quick
  scripts/bench-security.sh --quick
  scripts/bench-acl.sh --quick
  scripts/bench-connect.sh --quick
  scripts/bench-console.sh --quick
fi

export FJORD_REQUIRE_BINARIES=1
# Most suites spend their time waiting on processes and timeouts, so they run in
# FJORD_PYTEST_WORKERS (default 2) pytest-xdist workers, a file per worker at a time;
# the modules marked `serial` (they assert on failover or join times) run alone afterwards.
pytest_tier() {  # pytest's exit 5 is "nothing selected" (PYTEST_ARGS="-k ..." may leave a tier empty)
  local s=0
  python3 -m pytest tests/python -q -p no:cacheprovider "$@" ${PYTEST_ARGS:-} || s=$?
  if [ "$s" = 5 ]; then s=0; fi
  return "$s"
}
rc=0
pytest_tier -m "not serial" -n "${FJORD_PYTEST_WORKERS:-2}" --dist loadfile || rc=$?
pytest_tier -m serial || rc=$?
exit $rc
