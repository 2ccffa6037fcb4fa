#!/usr/bin/env bash
# Builds the libFuzzer harness under ASan + UBSan and runs it (docs/DESIGN.md, "Threat model").
#   fuzz/run.sh              CI size: replay corpus + regressions, then fuzz 60 s
#   fuzz/run.sh 3600         a developer's longer run (one hour); FUZZ_JOBS=N runs N workers
#   fuzz/run.sh 0            replay only
# Seeds are the real indexes of fuzz/seed_videos.txt, built at run time from the shared test data;
# committed inputs are index bytes only (fuzz/corpus: interesting inputs, fuzz/regressions: every
# crasher found, kept after its fix). New crashers land in build-fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-60}
testdata=${VIDLAKE_TESTDATA:-../shared/testdata}
build=${FUZZ_BUILD_DIR:-build-fuzz}

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ is missing: apt-get install clang libclang-rt-14-dev (scripts/setup.sh does)" >&2
  exit 1
fi
CC=clang CXX=clang++ cmake -S fuzz -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"${FUZZ_BUILD_JOBS:-2}" >/dev/null

videos=""
while read -r name; do
  case "$name" in ''|'#'*) continue ;; esac
  [ -f "$testdata/video/$name" ] || { echo "fuzz: seed video missing: $testdata/video/$name" >&2; exit 1; }
  videos="$videos${videos:+:}$testdata/video/$name"
done < fuzz/seed_videos.txt
export VIDLAKE_FUZZ_VIDEOS="$videos"
# Leaks are not findings here (FFmpeg's error paths); UB and memory errors are.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

seeds="$build/seeds"
work="$build/corpus"
rm -rf "$seeds"
mkdir -p "$seeds" "$work" "$build/crashes" fuzz/corpus fuzz/regressions
VIDLAKE_FUZZ_MAKE_SEEDS="$seeds" "$build/index_fuzzer"

fuzzer=("$build/index_fuzzer" -timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=2048 -max_len=65536
        -artifact_prefix="$build/crashes/" -print_final_stats=1)
echo "fuzz: replaying $(ls "$seeds" fuzz/corpus fuzz/regressions | grep -vc ':$\|^$') seed, corpus and regression inputs"
"${fuzzer[@]}" -runs=0 "$seeds" fuzz/corpus fuzz/regressions 2>"$build/replay.log" || {
  tail -60 "$build/replay.log" >&2; exit 1; }
if [ "$budget" -gt 0 ]; then
  if [ -n "${FUZZ_RUNS:-}" ]; then what="$FUZZ_RUNS inputs (seed ${FUZZ_SEED:-1})"; else what="$budget s"; fi
  echo "fuzz: fuzzing for $what (log: $build/fuzz.log)"
  jobs=${FUZZ_JOBS:-1}
  extra=()
  [ "$jobs" -gt 1 ] && extra=(-jobs="$jobs" -workers="$jobs")
  # FUZZ_RUNS=N (CI): a fixed number of inputs from a fixed seed, so a run gives the same answer
  # on every machine; otherwise fuzz for $budget seconds from a random seed
  limit=(-max_total_time="$budget")
  [ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}")
  "${fuzzer[@]}" "${limit[@]}" "${extra[@]}" "$work" "$seeds" fuzz/corpus fuzz/regressions \
    2>"$build/fuzz.log" || { tail -80 "$build/fuzz.log" >&2; echo "fuzz: crash saved in $build/crashes/" >&2; exit 1; }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "$build/fuzz.log" | tail -3
fi
