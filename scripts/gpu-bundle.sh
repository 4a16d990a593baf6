#!/usr/bin/env bash
# scripts/gpu-bundle.sh [OUT [TREE]] - builds the CUDA binaries here and packs what a GPU
# machine without a package registry needs to run them, for scripts/gpu-check.sh there.
#
#   TREE (default build-gpu-tree): a full CMake build, Release, RUNNER_CUDA=ON, and
#        RUNNER_NATIVE=OFF (the GPU machine's CPU may lack this one's instruction sets).
#   OUT  (default build-gpu): only what travels:
#        test_cuda, runner, bench_train;
#        mnist/       the MNIST IDX files gzipped (data/mnist, or MNIST_DIR), ~11 MB;
#        lib.tar.xz   every shared library those binaries load (ldd's closure) except the
#                     C/C++ runtime (glibc's libraries: libc, libm, libpthread, libdl,
#                     librt, libresolv, ld-linux...; libstdc++, libgcc_s) and
#                     CUDA/cuDNN/cuBLAS, which the GPU machine has (driver, Python's nvidia
#                     packages); compressed because OpenBLAS alone is ~35 MB and the device
#                     tool carries at most 64 MiB in all;
#        gnuplot.tar.xz gnuplot with its libraries and fonts, for the figures (when this
#                     machine has gnuplot), ~14 MB;
#        BUILD-INFO.txt what was built, from which commit, with which toolchain and glibc.
# Run from anywhere; relative OUT/TREE are taken from the repository root. Both are under
# the ignored /build*/, so `carry: ["build-gpu"]` sends OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build-gpu}
TREE=${2:-build-gpu-tree}
JOBS=${JOBS:-1}
case "$OUT" in
"" | . | ./ | / | .. | ../) echo "gpu-bundle.sh: OUT '$OUT' would delete too much" && exit 1 ;;
esac

targets=(test_cuda runner bench_train)
MNIST_DIR=${MNIST_DIR:-data/mnist}

mkdir -p "$TREE"
cmake -S . -B "$TREE" -DCMAKE_BUILD_TYPE=Release -DRUNNER_CUDA=ON -DRUNNER_NATIVE=OFF \
  -DRUNNER_SANITIZE=OFF >"$TREE/gpu-bundle-cmake.log" 2>&1 || {
  cat "$TREE/gpu-bundle-cmake.log"
  echo "gpu-bundle.sh: cmake failed"
  exit 1
}
cmake --build "$TREE" -j"$JOBS" --target "${targets[@]}"

rm -rf "${OUT:?}"
mkdir -p "$OUT/lib"
for t in "${targets[@]}"; do
  cp "$TREE/$t" "$OUT/$t"
done

# Left to the GPU machine: the C/C++ runtime (every part of glibc: its pieces share private
# symbols and must come from one build) and the CUDA libraries (driver, toolkit or Python
# wheels there must match the driver, so shipping ours would not help).
skip='^(linux-vdso|libc\.so|libm\.so|libmvec\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so|libnsl\.so|libutil\.so|libanl\.so|libnss_|libthread_db|ld-linux|libstdc\+\+\.so|libgcc_s\.so|libcuda\.so|libcudart\.so|libcublas\.so|libcublasLt\.so|libcudnn|libnvrtc|libnvJitLink|libnvidia-)'
missing=0
for t in "${targets[@]}"; do
  while read -r name arrow path _; do
    [ "$arrow" = "=>" ] || continue
    if [[ "$name" =~ $skip ]]; then
      continue
    fi
    if [ "$path" = "not" ]; then
      echo "gpu-bundle.sh: $t needs $name, which is not found here"
      missing=1
      continue
    fi
    [ -e "$OUT/lib/$name" ] || cp -L "$path" "$OUT/lib/$name"
  done < <(ldd "$OUT/$t")
done
[ "$missing" = 0 ] || exit 1

# Check: with the bundle first on the library path, every library but the skipped ones
# resolves into it.
lib=$(cd "$OUT/lib" && pwd)
for t in "${targets[@]}"; do
  outside=$(LD_LIBRARY_PATH="$lib" ldd "$OUT/$t" | awk '$2 == "=>" {print $1, $3}' |
    grep -vE "$skip" | grep -v " $lib/" || true)
  if [ -n "$outside" ]; then
    echo "gpu-bundle.sh: $t still resolves libraries outside the bundle:"
    echo "$outside"
    exit 1
  fi
done

{
  echo "built:     $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm)"
  echo "commit:    $(git describe --always --dirty 2>/dev/null || echo unknown)"
  echo "targets:   ${targets[*]}"
  echo "cmake:     Release, RUNNER_CUDA=ON, RUNNER_NATIVE=OFF"
  echo "cc:        $(cc --version | head -1)"
  echo "nvcc:      $(grep -m1 CMAKE_CUDA_COMPILER_VERSION "$TREE/CMakeCache.txt" 2>/dev/null ||
    /usr/local/cuda/bin/nvcc --version | tail -1)"
  echo "cuDNN:     $(awk '/define CUDNN_MAJOR|define CUDNN_MINOR|define CUDNN_PATCHLEVEL/ {printf "%s ", $3}' \
    /usr/local/cuda/include/cudnn_version.h 2>/dev/null)(headers)"
  echo "glibc:     $(ldd --version | head -1)"
  echo "needs from the GPU machine:"
  for t in "${targets[@]}"; do
    ldd "$OUT/$t" | awk '$2 == "=>" {print $1}' | grep -E "$skip" | grep -v linux-vdso
  done | sort -u | sed 's/^/  /'
  echo "bundled libraries:"
  (cd "$OUT/lib" && ls -1) | sed 's/^/  /'
} >"$OUT/BUILD-INFO.txt"

# MNIST for the end-to-end run and the benchmarks, gzipped (the loaders read .gz)
mkdir -p "$OUT/mnist"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  if [ -f "$MNIST_DIR/$f" ]; then
    gzip -9 -c "$MNIST_DIR/$f" >"$OUT/mnist/$f.gz"
  elif [ -f "$MNIST_DIR/$f.gz" ]; then
    cp "$MNIST_DIR/$f.gz" "$OUT/mnist/"
  else
    echo "gpu-bundle.sh: no $MNIST_DIR/$f: run scripts/fetch-mnist.sh first" && exit 1
  fi
done

# gnuplot for the figures, when this machine has it (the GPU machine may not): the binary, the
# libraries it loads but glibc and the C++ runtime, DejaVu Sans and a fontconfig file naming
# them, behind a wrapper that sets the library path and FONTCONFIG_FILE; gnuplot.tar.xz,
# ~14 MB. gpu-check.sh puts it on PATH only where there is no gnuplot.
if command -v gnuplot >/dev/null; then
  g="$OUT/gnuplot"
  mkdir -p "$g/lib" "$g/fonts"
  cp -L "$(command -v gnuplot)" "$g/gnuplot.bin"
  while read -r name arrow path _; do
    [ "$arrow" = "=>" ] && [ "${path#/}" != "$path" ] || continue
    [[ "$name" =~ $skip ]] || cp -L "$path" "$g/lib/$name"
  done < <(ldd "$g/gnuplot.bin")
  for f in DejaVuSans.ttf DejaVuSans-Bold.ttf; do
    [ -f "/usr/share/fonts/truetype/dejavu/$f" ] && cp "/usr/share/fonts/truetype/dejavu/$f" "$g/fonts/"
  done
  cat >"$g/fonts.conf" <<'EOF'
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <dir prefix="relative">fonts</dir>
  <cachedir>/tmp/rn-gnuplot-fontconfig</cachedir>
</fontconfig>
EOF
  cat >"$g/gnuplot" <<'EOF'
#!/bin/sh
# gnuplot from scripts/gpu-bundle.sh: its own libraries and fonts, then the caller's.
d=$(dirname "$(readlink -f "$0")")
LD_LIBRARY_PATH="$d/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
FONTCONFIG_FILE="$d/fonts.conf"
export LD_LIBRARY_PATH FONTCONFIG_FILE
exec "$d/gnuplot.bin" "$@"
EOF
  chmod +x "$g/gnuplot"
  tar -C "$OUT" -cJf "$OUT/gnuplot.tar.xz" gnuplot
  rm -rf "${g:?}"
else
  echo "gpu-bundle.sh: no gnuplot here: the GPU check will draw no figures unless that machine has one"
fi

tar -C "$OUT" -cJf "$OUT/lib.tar.xz" lib
rm -rf "${OUT:?}/lib"
size=$(du -sb "$OUT" | cut -f1)
echo "gpu-bundle.sh: $OUT holds $(du -sh "$OUT" | cut -f1) ($(ls "$OUT" | tr '\n' ' '))"
if [ "$size" -gt $((56 * 1024 * 1024)) ]; then
  echo "gpu-bundle.sh: warning: over 56 MiB; with the working tree it may exceed the 64 MiB carry"
fi
