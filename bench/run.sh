#!/bin/sh
# bench/run.sh - the runner against PyTorch on the study's main job
# (SimpleGAPCNN, one epoch of Colored MNIST at batch 64, then evaluation at
# batch 256), same thread count, one after the other so they do not share
# the cores. Builds Release in build-bench/ first.
#
# usage: bench/run.sh [THREADS]        (default 2)
# Output: each side's own table, then a side-by-side summary with the
# runner/PyTorch ratios (> 1 means the runner is faster) and peak memory.
set -eu

threads=${1:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=/usr/bin/python3   # Debian's python3-torch; a pyenv python3 on PATH lacks it

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DRUNNER_TESTS=OFF >/dev/null
cmake --build build-bench -j"$threads" --target bench_train >/dev/null

log=$(mktemp -d /tmp/bench_run.XXXXXX)
trap 'rm -rf "$log"' EXIT INT TERM
export OMP_NUM_THREADS="$threads"

# The machine may be shared: the load average before each side says how much.
echo "== runner (build-bench/bench_train --threads $threads); load average $(cut -d' ' -f1-3 /proc/loadavg)"
build-bench/bench_train --threads "$threads" | tee "$log/runner.txt"
echo
# glibc returns PyTorch's large activation buffers to the kernel after every
# batch (they are above the mmap threshold) and page-faults them back in on
# the next one; that cost ~25% of PyTorch's evaluation here. Raising the
# thresholds gives PyTorch its best case (and the reference timings of
# SPEC.md); BENCH_TORCH_PLAIN_MALLOC=1 measures it as installed.
if [ "${BENCH_TORCH_PLAIN_MALLOC:-0}" = 1 ]; then
    malloc_env=""
    malloc_note="glibc malloc defaults"
else
    malloc_env="MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824"
    malloc_note="MALLOC_MMAP/TRIM_THRESHOLD_=1 GiB"
fi
echo "== PyTorch (bench/torch_simple_gap_cnn.py --threads $threads; $malloc_note); load average $(cut -d' ' -f1-3 /proc/loadavg)"
env $malloc_env "$py" bench/torch_simple_gap_cnn.py --threads "$threads" | tee "$log/torch.txt"
echo

# RESULT key=value ... -> value of one key
get() { sed -n "s/^RESULT .*\b$2=\([0-9.]*\).*/\1/p" "$1"; }
r_train=$(get "$log/runner.txt" train_ips)
r_eval=$(get "$log/runner.txt" eval_ips)
r_rss=$(get "$log/runner.txt" peak_rss_mib)
t_train=$(get "$log/torch.txt" train_ips)
t_eval=$(get "$log/torch.txt" eval_ips)
t_rss=$(get "$log/torch.txt" peak_rss_mib)
mflop_train=$(get "$log/runner.txt" train_mflop_per_image)
mflop_eval=$(get "$log/runner.txt" eval_mflop_per_image)
if [ -z "$r_train" ] || [ -z "$t_train" ]; then
    echo "bench/run.sh: a RESULT line is missing (see the output above)" >&2
    exit 1
fi

echo "== SimpleGAPCNN, $threads threads: runner vs PyTorch $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
awk -v rt="$r_train" -v re="$r_eval" -v rr="$r_rss" -v tt="$t_train" -v te="$t_eval" \
    -v tr="$t_rss" -v ft="$mflop_train" -v fe="$mflop_eval" 'BEGIN {
    printf "%-30s %12s %12s %16s\n", "", "runner", "PyTorch", "runner/PyTorch"
    printf "%-30s %12.0f %12.0f %15.2fx\n", "train images/s (batch 64)", rt, tt, rt / tt
    printf "%-30s %12.1f %12.1f\n", "  GFLOP/s (" ft " MFLOP/img)", rt * ft / 1e3, tt * ft / 1e3
    printf "%-30s %12.1f %12.1f\n", "  epoch seconds (54,000 img)", 54000 / rt, 54000 / tt
    printf "%-30s %12.0f %12.0f %15.2fx\n", "eval images/s (batch 256)", re, te, re / te
    printf "%-30s %12.1f %12.1f\n", "  GFLOP/s (" fe " MFLOP/img)", re * fe / 1e3, te * fe / 1e3
    printf "%-30s %12.0f %12.0f\n", "peak RSS MiB", rr, tr
}'
echo "(PyTorch: $malloc_note; it holds the whole data set as float32, the runner keeps uint8"
echo " and converts per batch. Ratios > 1: the runner is faster.)"
