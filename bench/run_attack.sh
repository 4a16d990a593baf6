#!/bin/sh
# bench/run_attack.sh - the study's epsilon sweep (Task 5: targeted L-inf PGD,
# 15 epsilons x 200 iterations, step eps/10, target 3, on task5_pgd.yaml's
# "7 yellow test") for the lazy model and the M4 model: the runner
# (bench_attack: all epsilons in one rn_attack_pgd call, and one call per
# epsilon) against PyTorch (bench/torch_attack.py: one attack per epsilon as
# the study ran it, and all epsilons as one batch), same thread count, one
# after the other, on the same image and weights (bench_attack writes both to
# a file the PyTorch side reads). Builds Release in build-bench/ first.
#
# usage: bench/run_attack.sh [--threads N] [--steps K] [--lazy-run PATH] [--m4-run PATH]
#        (default 2 threads, 200 iterations, results/task1_lazy/latest and
#        results/task4_m4/latest; a missing run file: a seeded random init,
#        said in the output)
# Output: each side's own table, then per model the seconds and the ratios
# (> 1: the runner is faster); targets: >= 3x the study's way, > 1x batched.
set -eu

threads=2
steps=200
lazy_run=""
m4_run=""
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --lazy-run) lazy_run=$2; shift 2 ;;
        --m4-run) m4_run=$2; shift 2 ;;
        *) echo "usage: bench/run_attack.sh [--threads N] [--steps K] [--lazy-run PATH] [--m4-run PATH]" >&2
           exit 2 ;;
    esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=/usr/bin/python3   # Debian's python3-torch; a pyenv python3 on PATH lacks it

echo "== load average before starting: $(cut -d' ' -f1-3 /proc/loadavg)"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DRUNNER_TESTS=OFF >/dev/null
cmake --build build-bench -j"$threads" --target bench_attack >/dev/null

log=$(mktemp -d /tmp/bench_attack.XXXXXX)
trap 'rm -rf "$log"' EXIT INT TERM
export OMP_NUM_THREADS="$threads"

set -- --threads "$threads" --steps "$steps" --out "$log/attack.h5"
[ -n "$lazy_run" ] && set -- "$@" --lazy-run "$lazy_run"
[ -n "$m4_run" ] && set -- "$@" --m4-run "$m4_run"
echo "== runner (build-bench/bench_attack); load average $(cut -d' ' -f1-3 /proc/loadavg)"
build-bench/bench_attack "$@" | tee "$log/runner.txt"
echo
# As bench/run.sh: glibc's default thresholds make PyTorch map and unmap its
# activation buffers on every pass; raised, PyTorch gets its best case.
echo "== PyTorch (bench/torch_attack.py; MALLOC_MMAP/TRIM_THRESHOLD_=1 GiB); load average $(cut -d' ' -f1-3 /proc/loadavg)"
MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 \
    "$py" bench/torch_attack.py "$log/attack.h5" --threads "$threads" | tee "$log/torch.txt"
echo

# RESULT model=M key=value ... -> value of one key for model M
get() { sed -n "s/^RESULT model=$2 .*\b$3=\([0-9.e+-]*\).*/\1/p" "$1"; }
echo "== the study's sweep (15 epsilons x $steps iterations), $threads threads; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-6s %10s %10s %10s %10s %10s | %14s %14s %12s\n" "model" "runner" "runner" "PyTorch" \
    "PyTorch" "PyTorch" "PyTorch study" "PyTorch batch" "max |dP(3)|"
printf "%-6s %10s %10s %10s %10s %10s | %14s %14s %12s\n" "" "batched" "per eps" "study" \
    "batched" "no dW" "/ runner" "/ runner" "vs runner"
status=0
for m in lazy m4; do
    rb=$(get "$log/runner.txt" $m batched_s)
    re=$(get "$log/runner.txt" $m per_eps_s)
    ts=$(get "$log/torch.txt" $m study_s)
    tb=$(get "$log/torch.txt" $m batched_s)
    tx=$(get "$log/torch.txt" $m batched_xonly_s)
    ds=$(get "$log/torch.txt" $m dp_study)
    db=$(get "$log/torch.txt" $m dp_batched)
    w=$(sed -n "s/^RESULT model=$m .*weights=\([a-z]*\).*/\1/p" "$log/runner.txt")
    if [ -z "$rb" ] || [ -z "$ts" ]; then
        echo "bench/run_attack.sh: a RESULT line for $m is missing (see the output above)" >&2
        status=1
        continue
    fi
    awk -v m="$m" -v rb="$rb" -v re="$re" -v ts="$ts" -v tb="$tb" -v tx="$tx" -v ds="$ds" \
        -v db="$db" -v w="$w" 'BEGIN {
        d = ds > db ? ds : db
        printf "%-6s %9.2fs %9.2fs %9.2fs %9.2fs %9.2fs | %13.2fx %13.2fx %12.1e%s\n", m, rb, re,
            ts, tb, tx, ts / rb, tb / rb, d, w == "random" ? "  (random init)" : ""
    }'
done
echo "(seconds for the whole sweep; ratios > 1: the runner's batched sweep is faster."
echo " Targets: >= 3x the study's way (one attack per epsilon), > 1x PyTorch batched."
echo " 'no dW': torch.autograd.grad on the input only, PyTorch's best case. max |dP(3)|: the"
echo " largest difference of the final target probability over the epsilons, study and batched.)"
exit $status
