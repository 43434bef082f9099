#!/usr/bin/env bash
# A real Slurm run of `cargo xtask sweep --slurm`, on a private single-node cluster.
#
# 1. Installs Slurm and MUNGE from Debian's packages if they are missing (slurm-wlm, munge;
#    needs root), builds the `organics` binary and fetches MNIST.
# 2. Starts munged, slurmctld and slurmd with a configuration of their own under
#    target/slurm-check (one node, this machine's CPUs; nothing under /etc/slurm is changed).
# 3. `cargo xtask sweep --slurm --profile quick --only mnist-organics-50 --seeds 0,1`: a
#    two-task array of short runs (8 epochs of the one-layer static model, 1 CPU each).
# 4. Once task 0 has written a checkpoint and is still training, requeues it
#    (`scontrol requeue JOB_0`): Slurm signals the task, organics checkpoints after its step
#    and exits, and the requeued task resumes from that checkpoint.
# 5. Waits for the array to finish and checks that task 0 was restarted, both tasks finished,
#    and task 0's metrics.jsonl holds every training step exactly once and in order (a task
#    that started over would repeat steps; one that lost steps would skip some); then
#    `cargo xtask collect`.
#
# Usage (from anywhere in the workspace): bash scripts/slurm_check.sh
# Exit status 0 when every check holds. The daemons it started are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/target/slurm-check
sweep=target/slurm-check/sweep
row=mnist-organics-50

say() { printf '== %s\n' "$*"; }
fail() { printf 'slurm-check: FAILED: %s\n' "$*" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
fi

say "building organics and fetching MNIST"
cargo build --release -q -p organics-train
./target/release/organics data fetch >/dev/null

say "a single-node cluster under $work"
rm -rf "$work"
mkdir -p "$work/state" "$work/spool"
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
cat >"$work/slurm.conf" <<EOF
ClusterName=organics-check
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
SlurmUser=root
SlurmdUser=root
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmdSpoolDir=$work/spool
StateSaveLocation=$work/state
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=check Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$work/slurm.conf

mkdir -p /run/munge
chown munge:munge /run/munge 2>/dev/null || true
if ! pgrep -x munged >/dev/null; then
  munged --force 2>/dev/null
fi
munge -n | unmunge >/dev/null || fail "munge does not work"

job=""
stop() {
  [ -n "$job" ] && scancel "$job" 2>/dev/null || true
  for d in slurmctld slurmd; do
    [ -f "$work/$d.pid" ] && kill "$(cat "$work/$d.pid")" 2>/dev/null || true
  done
}
trap stop EXIT
slurmctld -c
slurmd
for _ in $(seq 60); do
  sinfo -h -o %t 2>/dev/null | grep -q idle && break
  sleep 1
done
sinfo -h -o %t | grep -q idle || fail "the node did not come up (see $work/slurmd.log)"

say "cargo xtask sweep --slurm --profile quick --only $row --seeds 0,1"
cargo xtask sweep --slurm --profile quick --only "$row" --seeds 0,1 --cpus 1 --hours 1 --dir "$sweep"
job=$(sbatch --parsable "$sweep/job.sbatch")
say "submitted job array $job"

run0=$sweep/runs/$row-seed0
state0=$run0/checkpoints/last/state.json
for _ in $(seq 600); do
  if [ -f "$state0" ] && grep -q '"finished": false' "$state0"; then
    break
  fi
  sleep 1
done
[ -f "$state0" ] || fail "task 0 wrote no checkpoint in 10 minutes"
say "task 0 has a checkpoint ($(grep -o '"global_step": [0-9]*' "$state0")); scontrol requeue ${job}_0"
scontrol requeue "${job}_0"

for _ in $(seq 1800); do
  [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break
  sleep 2
done
[ -z "$(squeue -h -j "$job")" ] || fail "the array did not finish in an hour"

say "checks"
grep -q '"finished": true' "$state0" || fail "task 0 did not finish"
grep -q '"finished": true' "$sweep/runs/$row-seed1/checkpoints/last/state.json" || fail "task 1 did not finish"
restarts=$(scontrol show job "${job}_0" | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
[ "${restarts:-0}" -ge 1 ] || fail "task 0 was not restarted (Restarts=${restarts:-?})"
echo "task 0: requeued and restarted $restarts time(s)"
python3 - "$run0/metrics.jsonl" <<'EOF'
import json, sys
steps = [r["global_step"] for r in map(json.loads, open(sys.argv[1])) if r.get("type") == "step"]
assert steps == list(range(1, len(steps) + 1)), f"steps not 1..N once each: {len(steps)} rows"
print(f"task 0: {len(steps)} training steps, each logged once and in order")
EOF

say "cargo xtask collect --dir $sweep"
cargo xtask collect --dir "$sweep"
say "slurm-check passed"
