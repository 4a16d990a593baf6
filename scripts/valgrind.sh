#!/usr/bin/env bash
# A small experiment (tests/fixtures/valgrind.yaml: one epoch of 64 images, checkpoints,
# analyses and figures) under valgrind's memcheck: every error, and every leak (definite,
# indirect, possible), makes the script fail. Built in build-vg without -march=native
# (valgrind does not know AVX-512) and without sanitizers. scripts/valgrind.supp holds the
# few suppressions, each for a third-party library's one-time initialisation, explained there.
#   scripts/valgrind.sh            # exit 0: clean
set -euo pipefail
cd "$(dirname "$0")/.."
build=${VG_BUILD:-build-vg}
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRUNNER_NATIVE=OFF \
    -DRUNNER_TESTS=OFF -DRUNNER_CUDA=OFF >/dev/null
fi
cmake --build "$build" -j"${VG_BUILD_JOBS:-2}" --target runner >/dev/null
out=$(mktemp -d /tmp/runner-vg-XXXXXX)
log=$out/memcheck.log
trap 'rm -rf "$out"' EXIT
# OMP_WAIT_POLICY set: the runner would otherwise execute itself again to set it (main.c),
# and the new image would run outside memcheck (no --trace-children)
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive
status=0
valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible --track-origins=yes \
  --suppressions=scripts/valgrind.supp --log-file="$log" \
  "$build/runner" tests/fixtures/valgrind.yaml data.dir=tests/fixtures/mnist threads=1 \
  --device cpu --quiet --out "$out/results" || status=$?
grep -E "ERROR SUMMARY|(definitely|indirectly|possibly) lost:|still reachable:|suppressed:|total heap usage" "$log" || true
if [ "$status" -eq 99 ]; then
  echo "valgrind.sh: memcheck found problems; the report:"
  grep -vE "^==[0-9]+== *$" "$log" | head -80
  exit 1
elif [ "$status" -ne 0 ]; then
  echo "valgrind.sh: the runner itself failed (exit $status; its message is above)"
  exit 1
fi
echo "valgrind.sh: clean ($(ls "$out/results/plots" | wc -l) figures drawn, run.h5 of" \
  "$(stat -c %s "$out/results/run.h5") bytes, status $(h5dump -a /status "$out/results/run.h5" 2>/dev/null |
    grep -oE '"[a-z]+"' | tail -1))"
