#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang, over the Release build's libloom_*.a) and runs each one for
# SECONDS. Fails on the first crash, leak, time-out, out-of-memory or sanitizer report, and prints the
# reproducer's path. `make test` runs it for a few seconds per target, `make fuzz` for 10 minutes each.
#   scripts/fuzz.sh 15                  # every target, 15 s each
#   scripts/fuzz.sh 600 fuzz_csv        # one target
# Environment: BUILD (the Release folder, default build), FUZZ_BUILD (default build-fuzz), FUZZ_JOBS (1).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-15}"
shift || true
BUILD="${BUILD:-build}"
FUZZ_BUILD="${FUZZ_BUILD:-build-fuzz}"
CXX_FUZZ="${CXX_FUZZ:-clang++-14}"

if ! ls "$BUILD"/libloom_*.a >/dev/null 2>&1; then
  echo "fuzz.sh: $BUILD/libloom_*.a are missing; run make build first" >&2
  exit 2
fi
t0=$(date +%s)
cmake -S . -B "$FUZZ_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER="$CXX_FUZZ" -DLOOM_FUZZ=ON \
      -DLOOM_FUZZ_BASE_DIR="$PWD/$BUILD" >/dev/null
cmake --build "$FUZZ_BUILD" -j "${JOBS:-$(nproc)}"
echo "fuzz.sh: build took $(( $(date +%s) - t0 )) s"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do
    n=$(basename "$f" .cpp)
    [ "$n" = fuzz_common ] || targets+=("$n")
  done
fi

seeds="$FUZZ_BUILD/seeds"
rm -rf "$seeds" && "$FUZZ_BUILD/fuzz/make_seeds" "$seeds"
mkdir -p "$FUZZ_BUILD/artifacts"
# Leaks are checked at exit of every input (libFuzzer's -detect_leaks); UBSan stops at the first report.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
own_scratch=""
if [ -z "${FUZZ_SCRATCH:-}" ]; then FUZZ_SCRATCH=$(mktemp -d); own_scratch=1; fi
export FUZZ_SCRATCH
failed=()
for t in "${targets[@]}"; do
  corpus="$FUZZ_BUILD/corpus/$t"
  mkdir -p "$corpus" "$seeds/$t"
  dirs=("$corpus" "$seeds/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  log="$FUZZ_BUILD/artifacts/$t.log"
  echo "== $t: ${SECONDS_PER_TARGET} s (log $log)"
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb/-malloc_limit_mb: an input that makes loom
  # allocate 2 GiB is unbounded allocation (the readers must check sizes before allocating).
  if "$FUZZ_BUILD/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
       -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$FUZZ_BUILD/artifacts/$t-" \
       "${dirs[@]}" >"$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$log" | tr '\n' ' '
    echo "corpus: $(ls "$corpus" | wc -l) files"
  else
    echo "fuzz.sh: $t FAILED; the end of its log:" >&2
    tail -40 "$log" >&2
    failed+=("$t")
  fi
done
[ -n "$own_scratch" ] && rm -rf "$FUZZ_SCRATCH"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: failing targets: ${failed[*]} (reproducers: $FUZZ_BUILD/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran ${SECONDS_PER_TARGET} s each without a finding"
