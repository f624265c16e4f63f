#!/usr/bin/env bash
# bench/slurm.sh: what running stages as Slurm jobs costs, on a one-node cluster on loopback.
#
# What it measures:
#   1. overhead per stage: a chain of STAGES (default 10) tiny stages (`echo`), each
#      depending on the one before, run with `pipe repro -f` locally and with
#      `pipe repro -f --executor slurm` (hyperfine, RUNS runs each); per stage, the cluster
#      adds (slurm - local) / STAGES: submit (sbatch) → start → end → seen by pipe's poll →
#      outputs hashed and cached. The chain makes each stage wait for the one before, so
#      nothing overlaps. Slurm's own floor for the same chain, without pipe: `sbatch` and
#      `scontrol show job` every 0.1 s until the job has ended, job after job;
#      The same chain again with `[executor] files = "remote"` (the jobs get their
#      inputs from, and leave their outputs on, a moto server on loopback);
#   2. a sweep: `pipe exp run -S train.lr=1,…,16 -j 2` of a one-stage pipeline whose stage
#      works for WORK seconds (default 1, `sleep`), locally and with `--executor slurm`
#      (timed once each, as a user runs it).
# It ends with a Markdown table.
#
# The cluster: slurmctld and slurmd of this machine (`apt-get install slurmctld slurmd
# slurm-client`, as root), configured in WORKDIR as the tests do (tests/it/services.rs):
# CPUs=2, no accounting, free ports; stopped when the script ends. Or set SLURM_CONF to
# the slurm.conf of a cluster already running (then the jobs go there).
#
# Run (from any directory):
#   bench/slurm.sh [WORKDIR]
#   Env: PIPE_BIN=path uses that pipe binary instead of running `cargo build --release`;
#        STAGES (default 10), RUNS (default 5), WORK (default 1), N (default 16).
# Needs: cargo, git, python3, curl, slurmctld/slurmd/sbatch; installs hyperfine (apt-get)
# and moto (pip).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
base=${1:-}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stages=${STAGES:-10}
runs=${RUNS:-5}
work_s=${WORK:-1}
n=${N:-16}
ensure_tool hyperfine
work=$(mktemp -d "${base:-${TMPDIR:-/tmp}}/pipe-slurm.XXXXXX")
results="$work/results"
mkdir -p "$results"
pipe_binary "$repo" "$work/pipe"
pipe=$work/pipe
say() { printf '\n== %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------- the cluster
daemons=()
stop() { for pid in "${daemons[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap stop EXIT
if [[ -z ${SLURM_CONF:-} ]]; then
    say "starting a one-node Slurm cluster in $work/slurm"
    host=$(hostname -s)
    s=$work/slurm
    mkdir -p "$s/state" "$s/spool"
    cat > "$s/slurm.conf" <<CONF
ClusterName=pipebench
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MailProg=/bin/true
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
StateSaveLocation=$s/state
SlurmdSpoolDir=$s/spool
SlurmctldPidFile=$s/slurmctld.pid
SlurmdPidFile=$s/slurmd.pid
SlurmctldLogFile=$s/slurmctld.log
SlurmdLogFile=$s/slurmd.log
ReturnToService=2
KillWait=1
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF=$s/slurm.conf
    slurmctld -D -i 2> "$s/slurmctld.stderr" & daemons+=($!)
    slurmd -D 2> "$s/slurmd.stderr" & daemons+=($!)
    for _ in $(seq 300); do
        [[ $(sinfo -h -o %T 2>/dev/null) == idle ]] && break
        sleep 0.1
    done
    [[ $(sinfo -h -o %T) == idle ]] || { echo "slurm did not come up; see $s" >&2; exit 1; }
fi

# ---------------------------------------------------------------- 1. overhead per stage
say "1. a chain of $stages stages, locally and as Slurm jobs"
chain=$work/chain
mkdir -p "$chain"
{
    echo "stages:"
    for i in $(seq 1 "$stages"); do
        echo "  s$i:"
        if [[ $i == 1 ]]; then
            echo "    cmd: echo 1 > out1.txt"
        else
            echo "    cmd: cat out$((i - 1)).txt > out$i.txt; echo $i >> out$i.txt"
            echo "    deps: [out$((i - 1)).txt]"
        fi
        echo "    outs: [out$i.txt]"
    done
} > "$chain/pipeline.yaml"
(cd "$chain" && "$pipe" repro >/dev/null 2>&1)
# The same chain with `files = "remote"`: each job downloads its inputs from a moto
# server on loopback into a scratch directory and uploads its outputs.
command -v moto_server >/dev/null || python3 -m pip install -q 'moto[server]'
moto_port=$(free_port)
moto_server -H 127.0.0.1 -p "$moto_port" >"$results/moto.log" 2>&1 & daemons+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$moto_port") 2>/dev/null && break; sleep 0.1; done
curl -s -X PUT "http://127.0.0.1:$moto_port/chain" >/dev/null
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
cp -r "$chain" "$work/chain-remote"
cat > "$work/chain-remote/pipe.toml" <<TOML
[remote.moto]
url = "s3://chain/p"
endpoint_url = "http://127.0.0.1:$moto_port"
allow_http = true

[executor]
files = "remote"
TOML
(cd "$chain" && hyperfine --runs "$runs" --warmup 1 \
    --export-json "$results/chain.json" \
    -n local "$pipe repro -f -j 1" \
    -n slurm "$pipe repro -f -j 1 --executor slurm" \
    -n staged "cd $work/chain-remote && $pipe repro -f -j 1 --executor slurm")

# Slurm's own floor for the same chain: sbatch, then scontrol every 0.1 s until the job
# has ended, one job after the other (no pipe).
printf '#!/bin/sh\necho 1\n' > "$work/bare.sh"
bare_start=$(date +%s.%N)
for _ in $(seq 1 "$stages"); do
    id=$(sbatch --parsable --output=/dev/null "$work/bare.sh")
    until scontrol show job -o "$id" | grep -qE 'JobState=(COMPLETED|FAILED|CANCELLED)'; do sleep 0.1; done
done
bare_end=$(date +%s.%N)
bare=$(python3 -c "print(f'{$bare_end - $bare_start:.2f}')")
echo "bare sbatch + scontrol chain of $stages jobs: $bare s"

# ---------------------------------------------------------------- 2. a sweep
say "2. $n experiments, -j 2, each a stage of ${work_s}s"
sweep=$work/sweep
mkdir -p "$sweep"
cat > "$sweep/pipeline.yaml" <<YAML
stages:
  train:
    cmd: >-
      sleep $work_s; echo "{\"lr\": \${train.lr}}" > metrics.json
    params: [train.lr]
    metrics:
      - metrics.json:
          cache: false
YAML
printf 'train:\n  lr: 0\n' > "$sweep/params.yaml"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
values=$(seq -s, 1 "$n")
sweep_time() { # NAME ARGS…
    local name=$1 start end
    shift
    rm -rf "$sweep/.git" "$sweep/.pipeline-cache" "$sweep/pipeline.lock" "$sweep/metrics.json"
    (cd "$sweep" && git init -q -b main && "$pipe" repro >/dev/null 2>&1 && git add -A && git commit -q -m baseline)
    start=$(date +%s.%N)
    (cd "$sweep" && "$pipe" exp run -S "train.lr=$values" -n "$name" -j 2 "$@" > "$results/sweep-$name.log" 2>&1)
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.2f}')"
}
local_sweep=$(sweep_time local)
slurm_sweep=$(sweep_time slurm --executor slurm)

# ---------------------------------------------------------------- table
say "results (in $results)"
python3 - "$results/chain.json" "$stages" "$n" "$work_s" "$local_sweep" "$slurm_sweep" "$bare" <<'PY' | tee "$results/table.md"
import json, sys
chain, stages, n, work, local_sweep, slurm_sweep, bare = sys.argv[1:]
r = {x["command"]: x for x in json.load(open(chain))["results"]}
loc, sl = r["local"]["mean"], r["slurm"]["mean"]
stages = int(stages)
print("| workload | local | slurm | per stage / ratio |")
print("|---|---|---|---|")
print(f"| chain of {stages} stages, `repro -f -j 1` | {loc:.2f} s | {sl:.2f} s | +{(sl - loc) / stages * 1000:.0f} ms per stage |")
st = r["staged"]["mean"]
print(f"| the same chain, `files = \"remote\"` (moto on loopback) | | {st:.2f} s | +{(st - sl) / stages * 1000:.0f} ms per stage over the shared filesystem |")
print(f"| the same chain as bare `sbatch` + `scontrol` (0.1 s polls), no pipe | | {float(bare):.2f} s | {float(bare) / stages * 1000:.0f} ms per job |")
print(f"| {n} experiments × {work} s stage, `exp run -j 2` | {float(local_sweep):.2f} s | {float(slurm_sweep):.2f} s | ×{float(slurm_sweep) / float(local_sweep):.2f} |")
PY
