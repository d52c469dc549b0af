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
#      scripts/bench-connect.sh --quick, scripts/bench-jdbc.sh --quick, scripts/bench-console.sh --quick; full runs: see README),
#   4. the acceptance tests with real clients against real processes (pytest tests/python;
#      in parallel workers, then the `serial` modules alone).
# Env: FJORD_SKIP_FUZZ=1 / FJORD_SKIP_BENCH=1 skip steps 2 / 3; PYTEST_ARGS adds pytest flags.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$FJORD_ROOT"

# step CMD...: runs CMD and prints how long it took (the run's budget is ~25 min).
step() {
  local t0=$SECONDS s=0
  "$@" || s=$?
  echo "== step took $((SECONDS - t0)) s (exit $s): $*" >&2
  return "$s"
}

step fjord_install_apt
step fjord_install_pip
step fjord_build

# Every crate's modules import one way only (docs/architecture.md).
for crate_src in */src clients/*/src examples/*/src; do
  python3 scripts/check-cycles.py "$crate_src"
done

if cargo nextest --version >/dev/null 2>&1; then
  step cargo nextest run --release --workspace --no-fail-fast
else
  cargo test --release --workspace
fi

if [ "${FJORD_SKIP_FUZZ:-0}" != 1 ]; then
  step scripts/fuzz.sh --quick
fi

if [ "${FJORD_SKIP_BENCH:-0}" != 1 ]; then
  # The load generators in bench/, built into $BENCH_TARGET (~/.cache/bench-target).
  # kbench links librdkafka built from source: the first build takes minutes.
  # kbench-system is the same source on Debian's librdkafka 2.0.2 (old clients too).
  step bench_build zkbench kbench kbench-system
  step scripts/bench-coord.sh --quick
  step scripts/bench-broker.sh --quick
  step scripts/bench-groups.sh --quick
  step scripts/bench-replication.sh --quick
  step scripts/bench-compaction.sh --quick
  step scripts/ensemble-bench.sh --quick
  step scripts/bench-streams.sh --quick
  step scripts/bench-transactions.sh --quick
  step scripts/bench-metrics.sh --quick
  step scripts/bench-registry.sh --quick
  step scripts/bench-security.sh --quick
  step scripts/bench-acl.sh --quick
  step scripts/bench-connect.sh --quick
  step scripts/bench-jdbc.sh --quick
  step scripts/bench-console.sh --quick
fi

export FJORD_REQUIRE_BINARIES=1
# Most suites spend their time waiting on processes and timeouts, so they run in
# FJORD_PYTEST_WORKERS (default 2) pytest-xdist workers, a file per worker at a time;
# the modules marked `serial` (they assert on failover or join times) run alone afterwards.
pytest_tier() {  # pytest's exit 5 is "nothing selected" (PYTEST_ARGS="-k ..." may leave a tier empty)
  local s=0
  # --durations: the slowest tests, for keeping the run inside its time budget.
  python3 -m pytest tests/python -q -p no:cacheprovider --durations=15 "$@" ${PYTEST_ARGS:-} || s=$?
  if [ "$s" = 5 ]; then s=0; fi
  return "$s"
}
rc=0
step pytest_tier -m "not serial" -n "${FJORD_PYTEST_WORKERS:-2}" --dist loadfile || rc=$?
step pytest_tier -m serial || rc=$?
exit $rc
