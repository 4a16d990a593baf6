#!/bin/sh
# bench/run_program.sh - Task 4 Method 3's training step against a plain
# one, the runner (bench_program: features computed once per batch, and
# recomputed as a baseline) and PyTorch (bench/torch_m3_step.py: the study's
# recipe, which recomputes the backbone for each adversary step, and a
# detached variant), same thread count, one after the other. Builds Release
# in build-bench/ first.
#
# usage: bench/run_program.sh [THREADS] [STEPS] [ROUNDS]     (default 2 30 3)
set -eu

threads=${1:-2}
steps=${2:-30}
rounds=${3:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=/usr/bin/python3   # Debian's python3-torch; a pyenv python3 on PATH lacks it

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DRUNNER_TESTS=OFF >/dev/null
cmake --build build-bench -j"$threads" --target bench_program >/dev/null

log=$(mktemp -d /tmp/bench_program.XXXXXX)
trap 'rm -rf "$log"' EXIT INT TERM
export OMP_NUM_THREADS="$threads"

echo "== runner (build-bench/bench_program); load average $(cut -d' ' -f1-3 /proc/loadavg)"
build-bench/bench_program --threads "$threads" --steps "$steps" --rounds "$rounds" | tee "$log/runner.txt"
echo
echo "== PyTorch (bench/torch_m3_step.py); load average $(cut -d' ' -f1-3 /proc/loadavg)"
MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 \
    "$py" bench/torch_m3_step.py --threads "$threads" --steps "$steps" --rounds "$rounds" | tee "$log/torch.txt"
echo

get() { sed -n "s/^RESULT .*\b$2=\([0-9.]*\).*/\1/p" "$1"; }
rp=$(get "$log/runner.txt" plain_ms)
rm3=$(get "$log/runner.txt" m3_ms)
rre=$(get "$log/runner.txt" m3_recompute_ms)
tp=$(get "$log/torch.txt" plain_ms)
tm3=$(get "$log/torch.txt" m3_ms)
tde=$(get "$log/torch.txt" m3_detached_ms)
awk -v rp="$rp" -v rm3="$rm3" -v rre="$rre" -v tp="$tp" -v tm3="$tm3" -v tde="$tde" 'BEGIN {
    printf "%-44s %10s %10s\n", "ms per step (batch 64)", "runner", "PyTorch"
    printf "%-44s %10.2f %10.2f\n", "plain", rp, tp
    printf "%-44s %10.2f %10.2f\n", "M3 (runner: features once; PyTorch: recomputed)", rm3, tm3
    printf "%-44s %10.2f %10.2f\n", "M3 (runner: recomputed; PyTorch: detached)", rre, tde
    printf "M3 epoch / plain epoch: runner %.2fx, PyTorch %.2fx (SPEC.md reference: 6.5x)\n", rm3 / rp, tm3 / tp
    printf "runner M3 vs PyTorch M3 (the study recipe): %.2fx faster (target >= 4x)\n", tm3 / rm3
    printf "runner M3 vs PyTorch M3 detached: %.2fx faster\n", tde / rm3
    printf "features once vs recomputed, runner: %.2fx faster\n", rre / rm3
}'
