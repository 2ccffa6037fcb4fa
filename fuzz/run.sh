#!/usr/bin/env bash
# Builds the libFuzzer harnesses under ASan + UBSan and runs them (docs/DESIGN.md, "Threat model"):
# index_fuzzer over stored packet-index bytes, container_fuzzer over video file bytes.
#   fuzz/run.sh              CI size: replay seeds + corpus + regressions, then fuzz 60 s (30 s each)
#   fuzz/run.sh 3600         a developer's longer run (one hour); FUZZ_JOBS=N runs N workers
#   fuzz/run.sh 0            replay only
#   FUZZ_RUNS=N (CI)         instead of seconds: a fixed number of inputs from seed FUZZ_SEED, N - N/5
#                            for index_fuzzer and N/5 for container_fuzzer (slower per input)
# Seeds are made at run time from the shared test data: the real indexes of fuzz/seed_videos.txt,
# and tiny videos fuzz/make_container_seeds.sh cuts or encodes with the ffmpeg CLI. Committed
# inputs: index bytes (fuzz/corpus: interesting inputs, fuzz/regressions: every crasher found,
# kept after its fix) and the container crashers (fuzz/regressions-container, kept after their
# fix; never other media). New crashers land in build-fuzz/crashes/.
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

container_seeds="$build/container-seeds"
container_work="$build/container-corpus"
container_max=16384  # bytes: a few frames of a tiny video, and each run stays fast
rm -rf "$container_seeds"
mkdir -p "$container_work" fuzz/regressions-container
VIDLAKE_TESTDATA="$testdata" bash fuzz/make_container_seeds.sh "$container_seeds" "$container_max"

common=(-timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=2048 -artifact_prefix="$build/crashes/" -print_final_stats=1)
index=("$build/index_fuzzer" "${common[@]}" -max_len=65536)
container=("$build/container_fuzzer" "${common[@]}" -max_len="$container_max")
count() { find "$@" -type f | wc -l; }
echo "fuzz: replaying $(count "$seeds" fuzz/corpus fuzz/regressions) index and" \
  "$(count "$container_seeds" fuzz/regressions-container) container seed, corpus and regression inputs"
"${index[@]}" -runs=0 "$seeds" fuzz/corpus fuzz/regressions 2>"$build/replay.log" || {
  tail -60 "$build/replay.log" >&2; exit 1; }
"${container[@]}" -runs=0 "$container_seeds" fuzz/regressions-container 2>"$build/replay-container.log" || {
  tail -60 "$build/replay-container.log" >&2; exit 1; }
if [ "$budget" -gt 0 ]; then
  jobs=${FUZZ_JOBS:-1}
  extra=()
  [ "$jobs" -gt 1 ] && extra=(-jobs="$jobs" -workers="$jobs")
  # FUZZ_RUNS=N (CI): a fixed number of inputs from a fixed seed, so a run's length does not
  # depend on the machine's speed (its inputs still can: the container seeds are encoded at run
  # time, and CI's run found an input a local one of the same seed did not); otherwise fuzz for
  # $budget seconds from a random seed. Either way the
  # budget is shared: the container harness gets a fifth of the inputs (an input costs it about
  # ten times as long: a demux and a decode), or half of the time.
  if [ -n "${FUZZ_RUNS:-}" ]; then
    container_runs=$((FUZZ_RUNS / 5))
    index_limit=(-runs="$((FUZZ_RUNS - container_runs))" -seed="${FUZZ_SEED:-1}")
    container_limit=(-runs="$container_runs" -seed="${FUZZ_SEED:-1}")
    what="$((FUZZ_RUNS - container_runs)) + $container_runs inputs (seed ${FUZZ_SEED:-1})"
  else
    index_limit=(-max_total_time="$(((budget + 1) / 2))")
    container_limit=(-max_total_time="$((budget / 2 > 0 ? budget / 2 : 1))")
    what="$(((budget + 1) / 2)) + $((budget / 2 > 0 ? budget / 2 : 1)) s"
  fi
  echo "fuzz: fuzzing index_fuzzer then container_fuzzer for $what (logs: $build/fuzz.log, $build/fuzz-container.log)"
  "${index[@]}" "${index_limit[@]}" "${extra[@]}" "$work" "$seeds" fuzz/corpus fuzz/regressions \
    2>"$build/fuzz.log" || { tail -80 "$build/fuzz.log" >&2; echo "fuzz: crash saved in $build/crashes/" >&2; exit 1; }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "$build/fuzz.log" | tail -3
  "${container[@]}" "${container_limit[@]}" "${extra[@]}" "$container_work" "$container_seeds" \
    fuzz/regressions-container 2>"$build/fuzz-container.log" || {
    tail -80 "$build/fuzz-container.log" >&2; echo "fuzz: crash saved in $build/crashes/" >&2; exit 1; }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "$build/fuzz-container.log" | tail -3
fi
