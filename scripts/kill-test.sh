#!/usr/bin/env bash
# Kills a small experiment at N random moments (default 50) and checks that each resumes to the
# uninterrupted run, bitwise (README "Reliability").
#
#   scripts/kill-test.sh [N] [--runner PATH]
#
# The experiment is tests/fixtures/resume.yaml (dropout, colour augmentation, Adam with a
# scheduled lr, a checkpoint every 5 steps and after every epoch) on the committed MNIST fixture,
# 20 epochs (160 steps, about as long as the start-up and the figures), 1 thread. One straight
# run first; then N runs, each stopped at a random moment by SIGINT, SIGTERM or SIGKILL in turn,
# and continued with `runner resume` until it completes.
# Checked for each:
#   SIGINT/SIGTERM: exit 130/143 and status "interrupted" (or 0 when the run had finished);
#   SIGKILL: run.h5 still opens (h5py) or is recoverable from checkpoint.h5, its status
#            "running" is stale (nobody holds run.lock), and it resumes;
#   every dataset of the resumed run.h5 equals the straight run's bitwise (scripts/h5-compare.py;
#   timings aside).
# Prints one line per kill and a summary; exits 1 on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
n=50
runner=build/runner
while [ $# -gt 0 ]; do
  case "$1" in
    --runner) runner="$2"; shift 2 ;;
    -h|--help) sed -n 2,17p "$0"; exit 0 ;;
    *) n="$1"; shift ;;
  esac
done
py=/usr/bin/python3
work=$(mktemp -d /tmp/rn_kill_XXXXXX)
trap 'rm -rf "$work"' EXIT
spec=tests/fixtures/resume.yaml
args=(data.dir=tests/fixtures/mnist threads=1 train.epochs=20 device=cpu --quiet)
export OMP_NUM_THREADS=1

# Start-up (loading the CUDA libraries, the data) takes a second or two before run.h5 exists; a
# kill then only means starting over. So each kill waits for run.h5 to appear, then lands at a
# random moment in [0, 90% of the rest of the faster of two straight runs): training,
# checkpoints, evaluation and the figures.
since_h5() { # runs the runner in the background; prints ms from start to run.h5, and to exit
  local out=$1 t0 t1=0 t2
  t0=$(date +%s%N)
  "$runner" "$spec" "${args[@]}" --out "$out" 2>>"$work/straight.log" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    [ "$t1" -eq 0 ] && [ -e "$out/run.h5" ] && t1=$(date +%s%N)
    sleep 0.01
  done
  wait "$pid"
  t2=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 )) $(( (t2 - t1) / 1000000 ))
}
read -r up1 rest1 < <(since_h5 "$work/straight")
read -r up2 rest2 < <(since_h5 "$work/straight2")
ms=$(( rest1 < rest2 ? rest1 : rest2 ))
"$py" scripts/h5-compare.py "$work/straight/run.h5" "$work/straight2/run.h5" >/dev/null ||
  { echo "kill-test: two straight runs differ"; exit 1; }
echo "straight runs (two, identical): start-up ${up1}/${up2} ms, then ${rest1}/${rest2} ms;" \
     "$n kills at random moments in [0, $((ms * 9 / 10))) ms after run.h5 appears"
ms=$((ms * 9 / 10))

# job control: a background job of a script would otherwise start with SIGINT ignored, and a
# SIGINT sent while the runner is still loading (before it installs its handler) would be lost
set -m
signals=(INT TERM KILL)
fail=0; same=0; opened=0; killed9=0; recovered=0; finished=0; early=0; unreadable=0
for i in $(seq 1 "$n"); do
  sig=${signals[$(( (i - 1) % 3 ))]}
  dir="$work/r$i"
  delay=$(( RANDOM * 32768 + RANDOM ))
  delay=$(( delay % ms ))
  "$runner" "$spec" "${args[@]}" --out "$dir" 2>"$dir.log" &
  pid=$!
  while [ ! -e "$dir/run.h5" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.005; done
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  kill -s "$sig" "$pid" 2>/dev/null || true
  rc=0; wait "$pid" 2>/dev/null || rc=$?
  note=""
  case "$sig:$rc" in
    INT:130|TERM:143|KILL:137|*:0) ;;
    *) note="unexpected exit $rc"; fail=1 ;;
  esac
  [ "$rc" -eq 0 ] && finished=$((finished + 1))
  if [ "$rc" -eq 130 ] || [ "$rc" -eq 143 ]; then
    # a signal before the runner set its handler kills it outright: no run.h5
    st=$("$py" -c "import h5py,sys; print(h5py.File(sys.argv[1],'r').attrs['status'])" \
         "$dir/run.h5" 2>/dev/null || echo none)
    if [ "$st" != interrupted ] && [ "$st" != none ]; then
      note="$note status $st after SIG$sig"; fail=1
    fi
  fi
  if [ "$sig" = KILL ] && [ "$rc" -eq 137 ]; then
    killed9=$((killed9 + 1))
    if [ ! -e "$dir/run.h5" ]; then
      early=$((early + 1)); note="$note killed before run.h5 was made"
    elif "$py" -c "import h5py,sys; h5py.File(sys.argv[1],'r')" "$dir/run.h5" 2>/dev/null; then
      opened=$((opened + 1))
    elif [ -e "$dir/checkpoint.h5" ]; then
      recovered=$((recovered + 1)); note="$note run.h5 unreadable, rebuilt from checkpoint.h5"
    else
      unreadable=$((unreadable + 1)); note="$note run.h5 unreadable and no checkpoint: started over"
    fi
    if [ -e "$dir/run.lock" ] && ! flock -n "$dir/run.lock" true; then
      note="$note run.lock still held after kill -9"; fail=1
    fi
  fi
  # resume until it completes (a resume is not interrupted here; twice is plenty)
  for attempt in 1 2; do
    if [ ! -e "$dir/run.h5" ] && [ ! -e "$dir/checkpoint.h5" ]; then
      # killed before it made anything: run it again from the start
      "$runner" "$spec" "${args[@]}" --out "$dir" 2>>"$dir.log" && break
    else
      "$runner" resume "$dir" --quiet 2>>"$dir.log" && break
    fi
  done
  if out=$("$py" scripts/h5-compare.py "$work/straight/run.h5" "$dir/run.h5" 2>&1); then
    same=$((same + 1)); verdict="identical"
  else
    verdict="DIFFERS: $(echo "$out" | head -3 | tr '\n' ' ')"; fail=1
  fi
  printf '%3d SIG%-4s %5d ms after run.h5: exit %3d; resumed: %s%s\n' "$i" "$sig" "$delay" "$rc" \
    "$verdict" "${note:+ ($note)}"
done
echo "kill-test: $same/$n resumed runs identical to the straight run; $finished finished before" \
     "the signal; kill -9: $killed9 (run.h5 opened after $opened, not made yet $early, rebuilt" \
     "from the checkpoint $recovered, unreadable without a checkpoint $unreadable)"
exit $fail
