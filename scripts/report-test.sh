#!/bin/sh
# report-test.sh - `runner report` as a person sees it (issue 17): makes three short runs of
# the committed MNIST fixture (tests/fixtures/report/, a few seconds on 2 cores), builds their
# report, renders the page in headless Chromium (Debian's `chromium`, installed with apt when
# missing) and checks what a reader would: every image loaded (<body data-images-broken="0">,
# set by the page's own few lines of script), the figures all there, no table cell empty; then
# takes a screenshot. Not part of scripts/test.sh: it needs Chromium.
#
#   scripts/report-test.sh [OUT_DIR]     (default: a new folder under /tmp; kept)
#
# Environment: BUILD (default build: the Release build folder, configured and built when it
# has no runner), THREADS (default 2).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
OUT=${1:-$(mktemp -d /tmp/rn_report_test_XXXXXX)}
fail() { echo "report-test: FAIL: $*" >&2; exit 1; }

if [ ! -x "$BUILD/runner" ]; then
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j "$THREADS" --target runner
fi
if ! command -v chromium >/dev/null 2>&1; then
    echo "report-test: installing Debian's chromium (apt)"
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
command -v chromium >/dev/null 2>&1 || fail "no chromium after apt-get install chromium"

mkdir -p "$OUT"
start=$(date +%s)
OMP_NUM_THREADS=$THREADS "$BUILD/runner" report tests/fixtures/report/report.yaml \
    --results "$OUT/results" --out "$OUT/report" --run-missing --threads "$THREADS" --quiet \
    >"$OUT/report.log" 2>&1 || { cat "$OUT/report.log" >&2; fail "runner report"; }
tail -n 1 "$OUT/report.log"
page="$OUT/report/index.html"
[ -s "$page" ] || fail "no $page"

# Headless Chromium: no sandbox (root in a container), no GPU, the page's load event fired
# within the virtual time budget. --dump-dom prints the DOM after its script ran.
chrome() {
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
        --virtual-time-budget=15000 "$@" "file://$(cd "$(dirname "$page")" && pwd)/index.html" \
        2>>"$OUT/chromium.log"
}
chrome --dump-dom >"$OUT/dom.html" || fail "chromium --dump-dom (see $OUT/chromium.log)"
grep -q '<body data-images-broken="0"' "$OUT/dom.html" ||
    fail "images did not load: $(grep -o '<body[^>]*>' "$OUT/dom.html" || echo 'no body')"
imgs=$(grep -o '<img ' "$OUT/dom.html" | wc -l)
loaded=$(grep -o 'data-images-loaded="[0-9]*"' "$OUT/dom.html" | grep -o '[0-9][0-9]*')
[ "$imgs" -gt 0 ] && [ "$loaded" = "$imgs" ] || fail "$loaded of $imgs images loaded"
grep -q 'class="missing"' "$OUT/dom.html" && fail "a figure is missing: $(grep -o 'Missing:[^<]*' "$OUT/dom.html" | head -n 1)"
cells=$(grep -o '<td[^>]*>' "$OUT/dom.html" | wc -l)
empty=$(grep -Eo '<td[^>]*>[[:space:]]*</td>' "$OUT/dom.html" | wc -l)
[ "$cells" -gt 0 ] || fail "no table on the page"
[ "$empty" -eq 0 ] || fail "$empty of $cells table cells are empty"

chrome --screenshot="$OUT/report.png" --window-size=1280,2200 >/dev/null ||
    fail "chromium --screenshot"
[ -s "$OUT/report.png" ] || fail "no screenshot"
echo "report-test: ok: $imgs images loaded, $cells table cells filled, $(($(date +%s) - start)) s;" \
    "page $page, screenshot $OUT/report.png"
