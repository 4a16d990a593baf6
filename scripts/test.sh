#!/usr/bin/env bash
# The whole test suite: a build with AddressSanitizer + UndefinedBehaviorSanitizer, every
# Criterion test through ctest, and a check that no sanitizer reported anything (Criterion
# runs tests in worker processes, so a leak report alone would not fail the test).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRUNNER_SANITIZE=ON >/dev/null
cmake --build build-test -j"$(nproc)"
log=build-test/ctest.log
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1
status=0
ctest --test-dir build-test --output-on-failure -V >"$log" 2>&1 || status=$?
grep -E "^ *[0-9]+/[0-9]+ Test|tests passed|tests failed|Synthesis" "$log" || true
if grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$log"; then
  echo "test.sh: a sanitizer reported a problem:"
  grep -E -A12 "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$log" | head -60
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "test.sh: ctest failed (full log: $log)"
  grep -E "FAIL|Failed|\[FAIL\]|assert" "$log" | head -40
  exit "$status"
fi
echo "test.sh: all tests passed, no sanitizer reports"
