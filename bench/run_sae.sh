#!/bin/sh
# bench/run_sae.sh - the study's sparse autoencoder (Task 6: 54,000 x 128 ->
# 512 features, ReLU, L1 1e-3, Adam 1e-3, batch 256, unit-norm decoder
# columns after every step): the runner (bench_sae: rn_sae_train_from)
# against a PyTorch twin of the same recipe (bench/torch_sae.py), same
# thread count, one after the other, on the same data and initial weights
# (bench_sae writes both to a file the PyTorch side reads). Builds Release in
# build-bench/ first.
#
# usage: bench/run_sae.sh [--threads N] [--epochs E] [--features FILE:DATASET]
#        (default 2 threads, 50 epochs, synthetic data with the rough
#        statistics of the lazy model's GAP features; FILE:DATASET: an (n, d)
#        float32 dataset, e.g. the features a run stored)
# Output: each side's own lines, then the seconds, per epoch, and the ratio
# (> 1: the runner is faster). Target: <= 30 s for 50 epochs on the 2-core
# machine (PyTorch ~120 s).
set -eu

threads=2
epochs=50
features=""
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --epochs) epochs=$2; shift 2 ;;
        --features) features=$2; shift 2 ;;
        *) echo "usage: bench/run_sae.sh [--threads N] [--epochs E] [--features FILE:DATASET]" >&2
           exit 2 ;;
    esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=/usr/bin/python3   # Debian's python3-torch; a pyenv python3 on PATH lacks it

echo "== load average before starting: $(cut -d' ' -f1-3 /proc/loadavg)"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DRUNNER_TESTS=OFF >/dev/null
cmake --build build-bench -j"$threads" --target bench_sae >/dev/null

log=$(mktemp -d /tmp/bench_sae.XXXXXX)
trap 'rm -rf "$log"' EXIT INT TERM
export OMP_NUM_THREADS="$threads"

set -- --threads "$threads" --epochs "$epochs" --out "$log/sae.h5"
[ -n "$features" ] && set -- "$@" --features "$features"
echo "== runner (build-bench/bench_sae); load average $(cut -d' ' -f1-3 /proc/loadavg)"
build-bench/bench_sae "$@" | tee "$log/runner.txt"
echo
echo "== PyTorch (bench/torch_sae.py); load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$py" bench/torch_sae.py "$log/sae.h5" --threads "$threads" | tee "$log/torch.txt"
echo

# RESULT side=S key=value ... -> value of one key
get() { sed -n "s/^RESULT side=$2 .*\b$3=\([0-9.e+-]*\).*/\1/p" "$1"; }
rs=$(get "$log/runner.txt" runner seconds)
ts=$(get "$log/torch.txt" torch seconds)
if [ -z "$rs" ] || [ -z "$ts" ]; then
    echo "bench/run_sae.sh: a RESULT line is missing (see the output above)" >&2
    exit 1
fi
echo "== $epochs epochs, $threads threads; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v rs="$rs" -v ts="$ts" -v e="$epochs" 'BEGIN {
    printf "%-8s %10s %12s\n", "", "seconds", "per epoch"
    printf "%-8s %9.2fs %11.3fs\n", "runner", rs, rs / e
    printf "%-8s %9.2fs %11.3fs\n", "PyTorch", ts, ts / e
    printf "ratio PyTorch / runner: %.2fx (target: runner <= 30 s for 50 epochs)\n", ts / rs
}'
