#!/usr/bin/env bash
# check-includes.sh [ROOT]: the structure check of the #include "..." graph of runner/, layers/
# and kernels/ (run by ctest as check_includes).
#
# A node is a file without its extension: x.c, x.h, x.cu and x.cuh are one node, so "x.c
# includes y.h and y.c includes x.h" is the cycle x -> y -> x. A quoted include is resolved
# as the compiler does: next to the including file, then ROOT, then ROOT/runner; includes
# that resolve to no file in those folders (system headers, generated ones) are not followed.
#
# Fails (exit 1), printing what it found, when
#   - the graph has a cycle: every include that closes one is reported with the whole loop,
#     one line per include in it (file:line: #include "..."), or
#   - a lower file (runner/ tensor, backend, results, results_data, results_internal, rng, error,
#     schema, paths) includes a file that is not a lower one.
# Lower files may include each other (a cycle among them is still a cycle).
#
# check-includes.sh --self-test: runs the check on scratch trees with a known cycle and a
# known upward include (it must fail, naming them) and on a clean one (it must pass).
set -euo pipefail

LOWER="runner/tensor runner/backend runner/results runner/results_data runner/results_internal"
LOWER+=" runner/rng runner/error runner/schema runner/paths"

check() {
    local root=$1 dirs=() d
    for d in runner layers kernels; do
        [ -d "$root/$d" ] && dirs+=("$d")
    done
    if [ ${#dirs[@]} -eq 0 ]; then
        echo "check-includes: $root has none of runner/, layers/, kernels/" >&2
        return 2
    fi
    (
        cd "$root"
        # input 1: every file of the graph; input 2: its quoted includes as path:line:text
        files=$(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' \
                    -o -name '*.cuh' \) | LC_ALL=C sort)
        printf '%s\n' "$files" >"$tmp/files"
        # shellcheck disable=SC2086
        grep -nH -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' $files >"$tmp/includes" || true
        awk -v lower="$LOWER" -f "$tmp/graph.awk" "$tmp/files" "$tmp/includes"
    )
}

write_awk() {
    cat >"$1" <<'AWK'
# path without its last extension
function node(p) { sub(/\.[^.\/]*$/, "", p); return p }
function dir_of(p) { return p ~ /\// ? substr(p, 1, match(p, /\/[^\/]*$/) - 1) : "" }
# a/b/../c -> a/c, a/./b -> a/b
function normal(p,   n, parts, out, k, i) {
    n = split(p, parts, "/")
    k = 0
    for (i = 1; i <= n; i++) {
        if (parts[i] == "" || parts[i] == ".")
            continue
        if (parts[i] == ".." && k > 0 && out[k] != "..") { k--; continue }
        out[++k] = parts[i]
    }
    p = ""
    for (i = 1; i <= k; i++)
        p = p (i > 1 ? "/" : "") out[i]
    return p
}
function resolve(from, name,   d, c) {
    d = dir_of(from)
    c = normal((d != "" ? d "/" : "") name)
    if (c in exists) return c
    c = normal(name)
    if (c in exists) return c
    c = normal("runner/" name)
    if (c in exists) return c
    return ""
}
# depth-first search from u; a grey node reached again closes a cycle
function visit(u,   i, v) {
    colour[u] = 1
    stack[++depth] = u
    for (i = 1; i <= n_out[u]; i++) {
        v = out_to[u, i]
        if (colour[v] == 1)
            report(u, v)
        else if (colour[v] == 0)
            visit(v)
    }
    depth--
    colour[u] = 2
}
function report(u, v,   i, start, loop) {
    for (start = depth; start > 0 && stack[start] != v; start--)
        ;
    loop = ""
    for (i = start; i <= depth; i++)
        loop = loop stack[i] " -> "
    print "include cycle: " loop v
    for (i = start; i < depth; i++)
        print "  " why[stack[i], stack[i + 1]]
    print "  " why[u, v]
    bad = 1
}
# insertion sort of a[1..n]
function sort(a, n,   i, j, t) {
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
            t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
        }
}
FNR == NR { exists[$0] = 1; next }
{
    # path:line:text (paths here hold no colon)
    file = $0; sub(/:.*/, "", file)
    rest = substr($0, length(file) + 2)
    line = rest; sub(/:.*/, "", line)
    text = substr(rest, length(line) + 2)
    name = text; sub(/^[^"]*"/, "", name); sub(/".*/, "", name)
    target = resolve(file, name)
    if (target == "")
        next
    u = node(file); v = node(target)
    if (u == v)
        next
    if (!((u, v) in why)) {
        why[u, v] = file ":" line ": #include \"" name "\""
        out_to[u, ++n_out[u]] = v
        nodes[u] = 1; nodes[v] = 1
    }
}
END {
    n = split(lower, lw, " ")
    for (i = 1; i <= n; i++)
        is_lower[lw[i]] = 1
    k = 0
    for (e in why) {
        split(e, uv, SUBSEP)
        if ((uv[1] in is_lower) && !(uv[2] in is_lower))
            up[++k] = why[e] ": lower file " uv[1] " includes " uv[2] ", which is not a lower one"
    }
    sort(up, k)
    for (i = 1; i <= k; i++)
        print up[i]
    if (k) {
        print "  (lower files, which include only each other: " lower ")"
        bad = 1
    }
    # a fixed order, so the report is the same on every machine
    m = 0
    for (u in nodes)
        order[++m] = u
    sort(order, m)
    for (i = 1; i <= m; i++)
        if (colour[order[i]] == 0)
            visit(order[i])
    exit bad
}
AWK
}

self_test() {
    local s=$tmp/self out rc
    mkdir -p "$s/clean/runner" "$s/cycle/runner" "$s/cycle/kernels/cuda" "$s/upward/runner"
    # clean: a chain, includes by root and by runner/ paths, a ../ path, a system header
    printf '#include <stdio.h>\n#include "error.h"\n' >"$s/clean/runner/tensor.h"
    printf '#include "tensor.h"\n' >"$s/clean/runner/tensor.c"
    printf '#include "runner/tensor.h"\n#include "rn_git.h"\n' >"$s/clean/runner/layer.h"
    printf '\n' >"$s/clean/runner/error.h"
    mkdir -p "$s/clean/runner/sub"
    printf '#include "../layer.h"\n' >"$s/clean/runner/sub/a.c"
    out=$(check "$s/clean") || { echo "self-test: the clean tree failed:"; echo "$out"; return 1; }
    # cycle: graph.c -> train.h -> optim.h -> graph.h (x.c counts as x.h), and a kernel pair
    printf '#include "train.h"\n' >"$s/cycle/runner/graph.c"
    printf '\n' >"$s/cycle/runner/graph.h"
    printf '#include "optim.h"\n' >"$s/cycle/runner/train.h"
    printf '#include "graph.h"\n' >"$s/cycle/runner/optim.h"
    printf '#include "b.h"\n' >"$s/cycle/kernels/cuda/a.cu"
    printf "\n" >"$s/cycle/kernels/cuda/a.h"
    printf '#include "kernels/cuda/a.h"\n' >"$s/cycle/kernels/cuda/b.h"
    rc=0; out=$(check "$s/cycle") || rc=$?
    if [ $rc -ne 1 ] ||
        ! grep -qxF 'include cycle: runner/graph -> runner/train -> runner/optim -> runner/graph' <<<"$out" ||
        ! grep -qxF '  runner/optim.h:1: #include "graph.h"' <<<"$out" ||
        ! grep -qxF 'include cycle: kernels/cuda/a -> kernels/cuda/b -> kernels/cuda/a' <<<"$out"; then
        echo "self-test: the cycles were not reported (exit $rc):"; echo "$out"; return 1
    fi
    # upward: a lower file includes a higher one, without a cycle
    printf '#include "data.h"\n' >"$s/upward/runner/backend.c"
    printf '\n' >"$s/upward/runner/data.h"
    rc=0; out=$(check "$s/upward") || rc=$?
    if [ $rc -ne 1 ] || ! grep -qF 'runner/backend.c:1: #include "data.h": lower file runner/backend includes runner/data' <<<"$out"; then
        echo "self-test: the upward include was not reported (exit $rc):"; echo "$out"; return 1
    fi
    echo "check-includes: self-test passed"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
write_awk "$tmp/graph.awk"
if [ "${1:-}" = "--self-test" ]; then
    self_test
    exit
fi
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
rc=0
check "$root" || rc=$?
if [ $rc -eq 0 ]; then
    echo "check-includes: no include cycle in runner/, layers/, kernels/; lower files include only lower ones"
fi
exit $rc
