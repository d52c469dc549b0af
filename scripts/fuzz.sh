#!/usr/bin/env bash
# cargo fuzz over Fjord's decoders: scripts/fuzz.sh [--quick] [seconds per target]
# --quick: 10 s per target (the default test run). Installs cargo-fuzz if missing. The
# machine has stable Rust only, so the nightly flags cargo-fuzz passes are allowed with
# RUSTC_BOOTSTRAP=1. Crashes land in fuzz/artifacts/<target>/ and fail this script.
set -euo pipefail
source "$(dirname "$0")/env.sh"
SECS=300
if [ "${1:-}" = "--quick" ]; then SECS=10; shift; fi
[ -n "${1:-}" ] && SECS=$1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cd "$FJORD_ROOT/fuzz"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$HOME/.cache/fjord-fuzz-target}
for t in $(cargo fuzz list); do
  mkdir -p "corpus/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  echo "== fuzzing $t for ${SECS}s"
  log=$(mktemp)
  status=0
  cargo fuzz run "$t" "corpus/$t" "${seeds[@]}" -- -max_total_time="$SECS" -rss_limit_mb=4096 \
    -max_len=65536 > "$log" 2>&1 || status=$?
  grep -E "^#[0-9]+\s+(INITED|DONE)|^Done|SUMMARY|panicked" "$log" || true
  if [ $status -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz target $t failed (exit $status); inputs in fuzz/artifacts/$t" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
done
echo "fuzz: no crashes"
