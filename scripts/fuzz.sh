#!/usr/bin/env bash
# Fuzzes one target for a fixed budget and reports executions, exec/s, coverage and findings.
#   scripts/fuzz.sh [SECONDS=60] [TARGET=spec|idx]
# Builds build-fuzz (clang-14, -DRUNNER_FUZZ=ON: libFuzzer + ASan + UBSan) when needed, seeds a
# corpus in $FUZZ_WORK (default /tmp/runner-fuzz-TARGET; kept between runs, so a later run
# goes on from the coverage an earlier one reached) from experiments/ and the tests' inputs
# (scripts/fuzz-seeds.py), and runs one libFuzzer worker (-workers=1 -jobs=1: one core) with
# fuzz/spec.dict. Findings (crash-*, leak-*, timeout-*, oom-*) land in $FUZZ_WORK/findings;
# each one becomes a regression test: copy it to tests/fixtures/fuzz/ (replayed by test_limits,
# fuzz_regress::every_finding_runs_clean).
# Exit status: 0 when nothing was found, 1 when something was.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
target=${2:-spec}
case "$target" in spec | idx) ;; *) echo "fuzz.sh: TARGET is spec or idx, not '$target'" >&2; exit 2 ;; esac
build=${FUZZ_BUILD:-build-fuzz}
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang-14 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DRUNNER_FUZZ=ON \
    -DRUNNER_TESTS=OFF -DRUNNER_CUDA=OFF >/dev/null
fi
cmake --build "$build" -j"${FUZZ_BUILD_JOBS:-2}" --target "fuzz_$target" >/dev/null
bin=$(realpath "$build/fuzz_$target")
work=${FUZZ_WORK:-/tmp/runner-fuzz-$target}
mkdir -p "$work/corpus" "$work/seeds" "$work/findings"
python3 scripts/fuzz-seeds.py "$target" "$work/seeds" >/dev/null
dict=()
[ "$target" = spec ] && dict=(-dict="$(realpath fuzz/spec.dict)")
count() { ls "$work/findings" | grep -cE "^(crash|leak|timeout|oom)-" || true; }
before=$(count)
# libFuzzer stops at its first finding; the campaign goes on in a new segment (same corpus)
# until the budget is spent, so one run collects every finding and its total executions.
# -jobs=1 runs each segment as one child process logging to fuzz-0.log in the work folder;
# -rss_limit_mb also bounds a single malloc (an "oom" finding); -timeout (wall clock, on a
# loaded 2-core machine) makes a hang one.
start=$(date +%s)
runs=0
segments=0
log="$work/fuzz-0.log"
: >"$work/fuzz.log"
while :; do
  left=$((start + secs - $(date +%s)))
  [ "$left" -gt 0 ] || break
  rm -f "$log"
  (cd "$work" && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" -workers=1 -jobs=1 -max_total_time="$left" -timeout="${FUZZ_TIMEOUT:-30}" \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/findings/" "${dict[@]}" \
      corpus seeds >/dev/null 2>&1) || true
  [ -f "$log" ] || { echo "fuzz.sh: no log from libFuzzer in $work" >&2; exit 2; }
  cat "$log" >>"$work/fuzz.log"
  n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  runs=$((runs + ${n:-0}))
  segments=$((segments + 1))
done
elapsed=$(($(date +%s) - start))
eps=$((runs / (elapsed > 0 ? elapsed : 1)))
cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$work/fuzz.log" | tail -1)
corpus=$(ls "$work/corpus" | wc -l)
after=$(count)
echo "fuzz.sh: target $target, ${elapsed}s in $segments segment(s): $runs executions, $eps exec/s," \
  "${cov:-cov ?}, corpus $corpus inputs, findings $((after - before)) (total $after in" \
  "$work/findings; full log $work/fuzz.log)"
if [ "$after" -gt "$before" ]; then
  ls -t "$work/findings" | grep -E "^(crash|leak|timeout|oom)-" | head -$((after - before)) | sed "s|^|  $work/findings/|"
  grep -E "^==[0-9]+==ERROR|runtime error|^SUMMARY|fuzz_spec:" "$work/fuzz.log" | head -10
  exit 1
fi
