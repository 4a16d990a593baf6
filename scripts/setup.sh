#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a finished main experiment:
# packages, MNIST (verified by SHA-256), a Release build, then experiments/task1_lazy.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-mnist.sh data/mnist
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
build/runner experiments/task1_lazy.yaml "$@"
