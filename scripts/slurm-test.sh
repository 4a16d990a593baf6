#!/usr/bin/env bash
# slurm-test.sh [RUNNER]: the Slurm launcher of `runner sweep`, tested against a real Slurm on
# this machine (not part of scripts/test.sh: it installs packages and starts daemons).
#
# Installs Debian 12's slurmctld, slurmd, slurm-client and munge when they are missing (apt,
# as root), starts munged, slurmctld and slurmd for this host alone with a configuration under
# a temporary folder (SLURM_CONF; node `hostname -s`, proctrack/linuxproc, task/none, no
# accounting, MaxArraySize 3 so that a sweep of 4 cells is split into two arrays), then:
#   1. submits a 4-cell sweep of the MNIST fixture with --launcher slurm --wait (a % throttle
#      of 2, --slurm-opt passed to sbatch) and checks every cell's run.h5 (status completed,
#      metrics read back by `runner table`) and that Slurm recorded each task COMPLETED, 0:0;
#   2. runs the sweep again: nothing is submitted;
#   3. breaks one cell (its done marker removed and the data it reads taken away), runs the
#      sweep again: only that cell is submitted, Slurm records it FAILED with exit code 1 and
#      the sweep reports it with its log; puts the data back, runs again: it is rerun and done;
#   4. submits two cells held, runs the sweep again: they are recognised as queued and not
#      submitted twice; releases them and checks they finish;
# and stops the daemons by their PIDs. About 20-40 s. RUNNER: the runner binary (default
# build/runner). Exit 0 when every check passed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNNER=$(realpath "${1:-$ROOT/build/runner}")
[ -x "$RUNNER" ] || { echo "slurm-test: no runner at $RUNNER (build it first)" >&2; exit 2; }

need=()
for p in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
    command -v "${p%%:*}" >/dev/null 2>&1 || need+=("${p#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "slurm-test: installing ${need[*]}"
    [ "$(id -u)" -eq 0 ] || { echo "slurm-test: installing needs root" >&2; exit 2; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" \
        >/dev/null
fi

T=$(mktemp -d /tmp/rn_slurm_XXXXXX)
PIDS=()
stop() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
fail() {
    echo "slurm-test: FAILED: $*" >&2
    for f in "$T"/slurmctld.log "$T"/slurmd.log; do
        [ -f "$f" ] && { echo "--- tail $f" >&2; tail -5 "$f" >&2; }
    done
    exit 1
}
trap stop EXIT

HOST=$(hostname -s)
CPUS=$(nproc)
# two ports nobody listens on
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
CTLD_PORT=$(port)
SLURMD_PORT=$(port)
mkdir -p "$T/state" "$T/spool" "$T/munge"

# munge with its own key and socket
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$T/munge/munge.key"
chmod 700 "$T/munge"
munged --foreground --force --key-file="$T/munge/munge.key" --socket="$T/munge/munge.sock" \
    --pid-file="$T/munge/munged.pid" --log-file="$T/munge/munged.log" \
    --seed-file="$T/munge/munged.seed" >"$T/munge/munged.out" 2>&1 &
PIDS+=($!)

export SLURM_CONF="$T/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=rntest
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T/munge/munge.sock
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MaxArraySize=3
MinJobAge=600
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
NodeName=$HOST CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

for i in $(seq 50); do [ -S "$T/munge/munge.sock" ] && break; sleep 0.1; done
[ -S "$T/munge/munge.sock" ] || fail "munged did not start"
slurmctld -D -c -f "$SLURM_CONF" >"$T/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" >"$T/slurmd.out" 2>&1 &
PIDS+=($!)
up=""
for i in $(seq 100); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)
    case "$state" in idle*|mixed*|allocated*) up=1; break ;; esac
    sleep 0.2
done
[ -n "$up" ] || fail "the node never came up (sinfo: ${state:-nothing})"
echo "slurm-test: slurmctld and slurmd up on $HOST ($CPUS CPUs) in $T"

# the sweep: 4 cells of the fixture, one epoch each, reading the data through a link that
# step 3 takes away
ln -s "$ROOT/tests/fixtures/mnist" "$T/mnist"
cat >"$T/sweep.yaml" <<EOF
name: slurm_test
out: $T/results
experiment: $ROOT/tests/fixtures/e2e_lazy.yaml
set: {data.dir: $T/mnist, train.epochs: 1, analyses: []}
grid:
  seed: [0, 1, 2, 3]
EOF
DIR="$T/results/slurm_test"
sweep() {
    (cd "$ROOT" && "$RUNNER" sweep "$T/sweep.yaml" --launcher slurm --wait -j 2 --threads 1 \
        --poll-ms 300 --slurm-opt=--partition=debug --slurm-opt --time=10 "$@")
}

# 1. everything
set +e
out=$(sweep 2>&1)
rc=$?
set -e
echo "$out"
[ $rc -eq 0 ] || fail "the sweep exited $rc"
[ "$(grep -c 'submitted job array' <<<"$out")" -eq 2 ] || fail "4 cells were not split into 2 arrays"
[ "$(grep -c 'slurm COMPLETED, exit code 0:0; cell done' <<<"$out")" -eq 4 ] ||
    fail "not every task was recorded COMPLETED 0:0"
grep -q '#SBATCH --array=0-2%2' "$DIR"/slurm/array-*-0.sh || fail "no % throttle in the script"
for d in "$DIR"/cells/*/; do
    [ -f "$d/done" ] || fail "$d has no done marker"
    h5dump -a /status "$d/run.h5" | grep -q '"completed"' || fail "$d/run.h5 is not completed"
done
[ "$(ls -d "$DIR"/cells/*/ | wc -l)" -eq 4 ] || fail "not 4 cell folders"
table=$("$RUNNER" table "$DIR" --metric val/accuracy)
grep -q '| e2e_lazy | 4 of 4 |' <<<"$table" || fail "the table did not read 4 runs: $table"

# 2. again: nothing to do
jobs_before=$(scontrol -o show jobs | grep -c JobId || true)
out=$(sweep 2>&1) || fail "the second sweep failed: $out"
echo "$out"
grep -q 'nothing to submit' <<<"$out" || fail "the second sweep submitted something"
[ "$(scontrol -o show jobs | grep -c JobId || true)" -eq "$jobs_before" ] ||
    fail "the second sweep made jobs"

# 3. break a cell: it is the only one submitted, fails in Slurm, and is reported
broken=$(ls -d "$DIR"/cells/*/ | sed -n 2p)
rm "$broken/done" "$T/mnist"
set +e
out=$(sweep 2>&1)
rc=$?
set -e
echo "$out"
[ $rc -eq 1 ] || fail "a sweep with a broken cell exited $rc"
grep -q 'submitted job array [0-9]*: 1 cell ' <<<"$out" || fail "not exactly one cell submitted"
grep -q 'slurm FAILED, exit code 1:0; cell failed (exit 1)' <<<"$out" ||
    fail "the broken cell was not reported FAILED 1:0"
grep -q "log: ${broken%/}/log.txt" <<<"$out" || fail "the report does not give the cell's log"
grep -q 'mnist' "$broken/log.txt" || fail "the log does not hold the error"
ln -s "$ROOT/tests/fixtures/mnist" "$T/mnist"
out=$(sweep 2>&1) || fail "the repaired sweep failed: $out"
echo "$out"
grep -q 'submitted job array [0-9]*: 1 cell ' <<<"$out" || fail "the failed cell was not rerun"
[ -f "$broken/done" ] || fail "the rerun cell is not done"

# 4. cells still queued from an earlier submission are not submitted twice: two cells
#    submitted held (no --wait), the sweep run again, then released and followed
for d in $(ls -d "$DIR"/cells/*/ | sed -n 3,4p); do rm "$d/done"; done
out=$(cd "$ROOT" && "$RUNNER" sweep "$T/sweep.yaml" --launcher slurm --threads 1 \
    --slurm-opt=--hold 2>&1) || fail "the held submission failed: $out"
echo "$out"
held=$(sed -n 's/.*submitted job array \([0-9]*\): 2 cells .*/\1/p' <<<"$out")
[ -n "$held" ] || fail "the two cells were not submitted as one array"
out=$(sweep 2>&1) || fail "the sweep with queued cells failed: $out"
echo "$out"
grep -q '2 cells still queued or running from an earlier submission' <<<"$out" ||
    fail "the queued cells were not recognised"
grep -q 'nothing to submit' <<<"$out" || fail "queued cells were submitted again"
scontrol release "$held"
for i in $(seq 150); do
    [ -z "$(squeue -h -j "$held" 2>/dev/null)" ] && break
    sleep 0.2
done
[ "$(ls "$DIR"/cells/*/done | wc -l)" -eq 4 ] || fail "the released cells did not finish"

stop
trap - EXIT
rm -rf "$T"
echo "slurm-test: ok"
