#!/usr/bin/env bash
# scripts/gpu-check.sh OUTDIR - the one prepared command for a GPU machine that has no package
# registry and no build of this project. Run from the repository root of a copy of the
# working tree that carries build-gpu/ as made here by scripts/gpu-bundle.sh (binaries,
# lib.tar.xz, BUILD-INFO.txt); RN_GPU_BUILD names another such folder.
#
# cuDNN, cuBLAS and the CUDA runtime come from the GPU machine: its Python's nvidia wheels
# (every nvidia/*/lib folder, e.g. nvidia/cudnn/lib, nvidia/cu13/lib), then
# /usr/local/cuda/lib64. The bundled libraries come first on LD_LIBRARY_PATH.
#
# Steps, each under `timeout` so the whole script ends within about 8 minutes:
#   nvidia-smi; the library check (ldd: anything not found is named); test_cuda --verbose
#   (the CUDA conformance suite: on a machine without a usable GPU every test is skipped
#   with the reason); the benchmark (bench_train --device cuda against
#   bench/torch_simple_gap_cnn.py --device cuda: simple_gap_cnn, batch 64, 3 epochs each, the
#   fastest epoch after the first, and evaluation throughput); task1_lazy end to end on the
#   GPU (wall time), twice with --deterministic (the summaries must agree), and once on the
#   CPU for the accuracies. gnuplot: the machine's, else the bundle's (gnuplot.tar.xz); without
#   either the figures step fails: said, not fatal.
# Everything goes to stdout and OUTDIR/report.txt. Exit status: test_cuda's (0 when it
# passed or skipped), 2 when the bundle is unusable.
set -u
OUTDIR=${1:?usage: scripts/gpu-check.sh OUTDIR}
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd) || exit 2
cd "$(dirname "$0")/.." || exit 2
BUILD=${RN_GPU_BUILD:-build-gpu} # relative to the repository root, or absolute
T_SMI=${RN_T_SMI:-30}
T_TEST=${RN_T_TEST:-270}
T_BENCH=${RN_T_BENCH:-100}
T_RUN=${RN_T_RUN:-60}
REPORT="$OUTDIR/report.txt"

section() {
  printf '\n==== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"
}

# Prints the folders of shared libraries in the Python nvidia wheels, cuDNN and cuBLAS first.
python_nvidia_libs() {
  timeout 30 python3 - <<'EOF' 2>/dev/null
import os
dirs = []
try:
    import nvidia
    roots = list(getattr(nvidia, "__path__", []))
except Exception:
    roots = []
for name in ("cudnn", "cublas", "cuda_runtime"):
    try:
        mod = __import__("nvidia." + name, fromlist=["x"])
        for base in list(getattr(mod, "__path__", [])) + [os.path.dirname(mod.__file__ or "")]:
            if base and os.path.isdir(os.path.join(base, "lib")):
                dirs.append(os.path.join(base, "lib"))
    except Exception:
        pass
for root in roots:
    try:
        subs = sorted(os.listdir(root))
    except OSError:
        continue
    for sub in subs:
        d = os.path.join(root, sub, "lib")
        if os.path.isdir(d) and any(".so" in f for f in os.listdir(d)):
            dirs.append(d)
print(":".join(dict.fromkeys(os.path.realpath(d) for d in dirs)))
EOF
}

main() {
  local status=0
  section "gpu-check: $(pwd) on $(hostname 2>/dev/null || echo '?')"
  echo "kernel:  $(uname -srm)"
  echo "glibc:   $(ldd --version 2>/dev/null | head -1)"
  if [ ! -d "$BUILD" ]; then
    echo "gpu-check: no $BUILD/ here: build it with scripts/gpu-bundle.sh and carry it"
    return 2
  fi
  [ -f "$BUILD/BUILD-INFO.txt" ] && sed 's/^/  /' "$BUILD/BUILD-INFO.txt"

  section "nvidia-smi"
  if command -v nvidia-smi >/dev/null; then
    timeout -k 5 "$T_SMI" nvidia-smi || echo "(nvidia-smi: exit $?)"
  else
    echo "(no nvidia-smi on PATH)"
  fi

  section "libraries"
  local lib
  if [ -d "$BUILD/lib" ]; then
    lib=$(cd "$BUILD/lib" && pwd)
  elif [ -f "$BUILD/lib.tar.xz" ]; then
    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/rn-gpu-lib.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT # main runs in the pipeline's subshell
    if ! timeout 120 tar -C "$tmp" -xJf "$BUILD/lib.tar.xz"; then
      echo "gpu-check: could not unpack $BUILD/lib.tar.xz"
      return 2
    fi
    lib="$tmp/lib"
  else
    echo "gpu-check: $BUILD has neither lib/ nor lib.tar.xz"
    return 2
  fi
  local py
  py=$(python_nvidia_libs)
  echo "bundled:         $lib ($(ls "$lib" | wc -l) libraries)"
  echo "python nvidia:   ${py:-(none found)}"
  local path="$lib"
  [ -n "$py" ] && path="$path:$py"
  [ -d /usr/local/cuda/lib64 ] && path="$path:/usr/local/cuda/lib64"
  export LD_LIBRARY_PATH="$path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  local b
  for b in test_cuda bench_train runner; do
    [ -x "$BUILD/$b" ] || continue
    echo "-- $b:"
    ldd "$BUILD/$b" | grep -E "not found|libcud|libcublas|libnvrtc|libopenblas|libhdf5|libc\.so" |
      sed 's/ (0x[0-9a-f]*)//; s/^\s*/   /'
  done

  if [ -x "$BUILD/runner" ]; then
    echo "-- runner --version: $(timeout 20 "$BUILD/runner" --version 2>&1 | head -3)"
  fi
  # gnuplot for the figures: the machine's, else the bundled one
  if ! command -v gnuplot >/dev/null && [ -f "$BUILD/gnuplot.tar.xz" ]; then
    local gtmp
    gtmp=$(mktemp -d "${TMPDIR:-/tmp}/rn-gpu-gnuplot.XXXXXX")
    if timeout 120 tar -C "$gtmp" -xJf "$BUILD/gnuplot.tar.xz"; then
      export PATH="$gtmp/gnuplot:$PATH"
    else
      echo "gpu-check: could not unpack $BUILD/gnuplot.tar.xz"
    fi
  fi
  if command -v gnuplot >/dev/null; then
    echo "-- gnuplot: $(command -v gnuplot): $(timeout 20 gnuplot -e 'print GPVAL_VERSION, GPVAL_PATCHLEVEL, (strstrt(GPVAL_TERMINALS, "pngcairo") > 0 ? "pngcairo" : "no pngcairo")' 2>&1 | head -3)"
  else
    echo "-- gnuplot: none (the runs will say the figures failed)"
  fi

  export RN_SOURCE_ROOT="$PWD" # test_cuda's fixtures and model files
  section "test_cuda --verbose"
  if [ -x "$BUILD/test_cuda" ]; then
    local log="$OUTDIR/.test_cuda.log"
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-8} OMP_WAIT_POLICY=passive \
      timeout -k 10 "$T_TEST" "$BUILD/test_cuda" --verbose --jobs 1 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    local skipped
    skipped=$(grep -c '^\[SKIP\] cuda::.*no CUDA device' "$log")
    rm -f "$log"
    case $status in
    0)
      if [ "$skipped" -gt 0 ]; then
        echo "gpu-check: test_cuda SKIPPED its tests: no usable CUDA device (see the [SKIP] lines)"
      else
        echo "gpu-check: test_cuda passed"
      fi
      ;;
    124 | 137) echo "gpu-check: test_cuda TIMED OUT after ${T_TEST}s" ;;
    *) echo "gpu-check: test_cuda FAILED (exit $status)" ;;
    esac
  else
    echo "gpu-check: no $BUILD/test_cuda"
    status=2
  fi

  local mnist="$BUILD/mnist"
  export RUNNER_PLOTS="$PWD/plots"
  section "benchmark: runner (bench_train --device cuda)"
  local rlog="$OUTDIR/.bench_runner.log" tlog="$OUTDIR/.bench_torch.log"
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-8} OMP_WAIT_POLICY=passive timeout -k 10 "$T_BENCH" \
    "$BUILD/bench_train" --device cuda --threads 8 --profile 0 train.epochs=3 "data.dir=$mnist" \
    2>&1 | tee "$rlog"
  section "benchmark: PyTorch (bench/torch_simple_gap_cnn.py --device cuda)"
  timeout -k 10 "$T_BENCH" python3 bench/torch_simple_gap_cnn.py --device cuda --epochs 3 \
    --mnist "$mnist" 2>&1 | tee "$tlog"
  local r t
  r=$(grep '^RESULT' "$rlog" | tail -1)
  t=$(grep '^RESULT' "$tlog" | tail -1)
  if [ -n "$r" ] && [ -n "$t" ]; then
    awk -v r="$r" -v t="$t" 'function get(s, k,   a, i, n) { n = split(s, a, /[ =]/);
        for (i = 1; i < n; i++) if (a[i] == k) return a[i + 1]; return 0 }
      BEGIN { printf "runner / PyTorch on the GPU: train %.0f / %.0f images/s = %.2fx, eval %.0f / %.0f = %.2fx\n",
        get(r, "train_ips"), get(t, "train_ips"), get(r, "train_ips") / get(t, "train_ips"),
        get(r, "eval_ips"), get(t, "eval_ips"), get(r, "eval_ips") / get(t, "eval_ips") }'
  else
    echo "gpu-check: a benchmark side gave no RESULT line"
  fi
  rm -f "$rlog" "$tlog"

  local k
  for k in cuda det1 det2 cpu; do
    local dev=cuda extra=""
    [ $k = cpu ] && dev=cpu
    [ "${k#det}" != "$k" ] && extra=--deterministic
    section "task1_lazy end to end: --device $dev $extra"
    local t0 t1
    t0=$(date +%s.%N)
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-8} OMP_WAIT_POLICY=passive timeout -k 10 "$T_RUN" \
      "$BUILD/runner" experiments/task1_lazy.yaml --device $dev $extra "data.dir=$mnist" \
      --out "$OUTDIR/task1_lazy_$k" >"$OUTDIR/.log_$k" 2>&1
    local rc=$?
    t1=$(date +%s.%N)
    tail -12 "$OUTDIR/.log_$k" | tee "$OUTDIR/.summary_$k"
    echo "wall: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s (exit $rc)"
  done
  local d1 d2
  d1=$(grep 'task1_lazy:.*%' "$OUTDIR/.summary_det1")
  d2=$(grep 'task1_lazy:.*%' "$OUTDIR/.summary_det2")
  if [ -n "$d1" ] && [ "$d1" = "$d2" ]; then
    echo "deterministic: the two --deterministic runs agree: $(grep 'task1_lazy:.*%' "$OUTDIR/.summary_det1")"
  else
    echo "deterministic: the two --deterministic runs DIFFER (or did not finish)"
  fi
  rm -f "$OUTDIR"/.summary_* "$OUTDIR"/.log_*
  # the run files are small; the figures, if gnuplot was there, too
  du -sh "$OUTDIR"/task1_lazy_* 2>/dev/null

  section "done: exit $status"
  return "$status"
}

main 2>&1 | tee "$REPORT"
exit "${PIPESTATUS[0]}"
