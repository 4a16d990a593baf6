#!/bin/sh
# bench/run.sh - the runner against PyTorch on the study's main job
# (SimpleGAPCNN, one epoch of Colored MNIST at batch 64, then evaluation at
# batch 256), then on the CIFAR ResNet-18 of task1_resnet18 (batch 64 on
# 28x28, the first BENCH_RESNET_TRAIN images, default 3200, and evaluation
# over the first BENCH_RESNET_TEST test images, default 1024), same thread
# count, one after the other so they do not share the cores. Builds Release
# in build-bench/ first (with oneDNN when found; RN_CPU_CONV=ref in the
# environment measures the im2col + OpenBLAS reference instead).
#
# usage: bench/run.sh [THREADS]        (default 2; BENCH_RESNET=0 skips ResNet-18)
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
# The runner sets OMP_WAIT_POLICY=passive itself (runner/main.c): bench_train is measured so
# too, unless the caller chose a policy. PyTorch runs as installed.
runner_wait=${OMP_WAIT_POLICY:-passive}
OMP_WAIT_POLICY=$runner_wait build-bench/bench_train --threads "$threads" | tee "$log/runner.txt"
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
# one side-by-side table: summary TITLE RUNNER_FILE TORCH_FILE
summary() {
    r_train=$(get "$2" train_ips)
    r_eval=$(get "$2" eval_ips)
    r_rss=$(get "$2" peak_rss_mib)
    t_train=$(get "$3" train_ips)
    t_eval=$(get "$3" eval_ips)
    t_rss=$(get "$3" peak_rss_mib)
    mflop_train=$(get "$2" train_mflop_per_image)
    mflop_eval=$(get "$2" eval_mflop_per_image)
    if [ -z "$r_train" ] || [ -z "$t_train" ]; then
        echo "bench/run.sh: a RESULT line is missing (see the output above)" >&2
        exit 1
    fi
    echo "== $1, $threads threads: runner vs PyTorch $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
    awk -v rt="$r_train" -v re="$r_eval" -v rr="$r_rss" -v tt="$t_train" -v te="$t_eval" \
        -v tr="$t_rss" -v ft="$mflop_train" -v fe="$mflop_eval" 'BEGIN {
        printf "%-30s %12s %12s %16s\n", "", "runner", "PyTorch", "runner/PyTorch"
        printf "%-30s %12.1f %12.1f %15.2fx\n", "train images/s (batch 64)", rt, tt, rt / tt
        printf "%-30s %12.1f %12.1f\n", "  GFLOP/s (" ft " MFLOP/img)", rt * ft / 1e3, tt * ft / 1e3
        printf "%-30s %12.1f %12.1f %15.2fx\n", "eval images/s (batch 256)", re, te, re / te
        printf "%-30s %12.1f %12.1f\n", "  GFLOP/s (" fe " MFLOP/img)", re * fe / 1e3, te * fe / 1e3
        printf "%-30s %12.0f %12.0f %15.2fx\n", "peak RSS MiB", rr, tr, rr / tr
    }'
}

if [ "${BENCH_RESNET:-1}" != 0 ]; then
    rtrain=${BENCH_RESNET_TRAIN:-3200}
    rtest=${BENCH_RESNET_TEST:-1024}
    echo "== runner ResNet-18 (bench_train --spec experiments/task1_resnet18.yaml, $rtrain train / $rtest test images); load average $(cut -d' ' -f1-3 /proc/loadavg)"
    OMP_WAIT_POLICY=$runner_wait build-bench/bench_train --threads "$threads" --spec experiments/task1_resnet18.yaml \
        --repeats 3 --profile 6 "data.train_limit=$rtrain" "data.test_limit=$rtest" |
        tee "$log/runner_resnet.txt"
    echo
    echo "== PyTorch ResNet-18 (bench/torch_resnet18.py; $malloc_note); load average $(cut -d' ' -f1-3 /proc/loadavg)"
    env $malloc_env "$py" bench/torch_resnet18.py --threads "$threads" --train-limit "$rtrain" \
        --test-limit "$rtest" --repeats 3 | tee "$log/torch_resnet.txt"
    echo
fi

summary "SimpleGAPCNN" "$log/runner.txt" "$log/torch.txt"
echo "(PyTorch: $malloc_note; it holds the whole data set as float32, the runner keeps uint8"
echo " and converts per batch. Ratios > 1: the runner is faster.)"
if [ "${BENCH_RESNET:-1}" != 0 ]; then
    echo
    summary "CIFAR ResNet-18 on 28x28 (task1_resnet18)" "$log/runner_resnet.txt" "$log/torch_resnet.txt"
    echo "(The runner's training time includes its first steps, where oneDNN makes its primitives;"
    echo " PyTorch's leaves out 3 warm-up steps.)"
fi
