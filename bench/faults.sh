#!/usr/bin/env bash
# bench/faults.sh: does a project stay sound when `pipe repro` is killed with
# SIGKILL at a random moment? (target: every count 0)
#
# It makes a small project of four chained shell stages (gen → split, whose
# output is a directory → slow, which sleeps and has a background child, so
# that kills land mid-run → count), runs it once cleanly and keeps a copy of
# its outputs, then N trials (default 100). Each trial starts
# `setsid pipe repro -f`, or (every other pair of trials) changes a param and
# starts `setsid pipe repro`, and kills it with `kill -9` after a random delay
# within the duration of a clean forced run, alternating between pipe's pid
# and its process group. After the kill it checks:
#   - processes: no process of the killed run's stages (PIPE_RUN_ID in
#     /proc/*/environ) is alive 5 s after the kill (survivors are then killed);
#   - the lock: `pipe status` does not exit 2 (pipeline.lock parses);
#   - the cache: `pipe cache verify` passes (skipped, and said so, when the
#     binary has no such command: objects are BLAKE3, which python3 lacks);
#   - the outputs: with the param set back, `pipe repro` succeeds and every
#     output is byte for byte the clean run's (cmp).
# It ends with a Markdown table: trials, how many were killed mid-run (the
# others had finished), corrupt locks, bad objects, wrong outputs, leftover
# processes. The project of a failed check is kept under WORKDIR for a look.
#
# Run (from any directory):
#   bench/faults.sh [WORKDIR]
#   Env: PIPE_BIN=path uses that pipe binary instead of `cargo build --release`;
#        N (default 100) trials; SEED (default: the shell's pid) for the delays.
# Needs: Linux (/proc), bash, setsid, coreutils, awk.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
base=${1:-}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
trials=${N:-100}
RANDOM=${SEED:-$$}
work=$(mktemp -d "${base:-${TMPDIR:-/tmp}}/pipe-faults.XXXXXX")
pipe_binary "$repo" "$work/pipe"
pipe=$work/pipe
proj=$work/project
ref=$work/reference
mkdir -p "$proj" "$ref"
outputs=(raw.txt parts sorted.txt count.txt)
cat > "$proj/params.yaml" <<'EOF'
rows: 20000
salt: 1
EOF
cat > "$proj/pipeline.yaml" <<'EOF'
stages:
  gen:
    cmd: seq 1 ${rows} | awk '{ print ($1 * 7919 + ${salt}) % 100003 }' > raw.txt
    params: [rows, salt]
    outs: [raw.txt]
  split:
    cmd: split -l 1000 raw.txt parts/part-
    deps: [raw.txt]
    outs: [parts/]
  slow:
    cmd: (sleep 0.5; true) & sleep 0.3; cat parts/* | sort -n > sorted.txt; wait
    deps: [parts]
    outs: [sorted.txt]
  count:
    cmd: wc -l < sorted.txt > count.txt && cksum < sorted.txt >> count.txt
    deps: [sorted.txt]
    outs: [count.txt]
EOF
cd "$proj"

now_ms() { date +%s%3N; }
set_salt() { sed -i "s/^salt: .*/salt: $1/" params.yaml; }

# Whether every output equals the clean run's.
same_outputs() {
    local out f
    for out in "${outputs[@]}"; do
        if [[ -d $ref/$out ]]; then
            [[ -d $out ]] || return 1
            [[ $(cd "$out" && ls -A) == $(cd "$ref/$out" && ls -A) ]] || return 1
            for f in "$ref/$out"/*; do
                cmp -s "$f" "$out/${f##*/}" || return 1
            done
        else
            cmp -s "$ref/$out" "$out" || return 1
        fi
    done
}

"$pipe" repro > "$work/clean.log" 2>&1 || { cat "$work/clean.log" >&2; exit 1; }
for out in "${outputs[@]}"; do cp -rL "$out" "$ref/"; done
start=$(now_ms)
"$pipe" repro -f > /dev/null 2>&1
span=$(($(now_ms) - start))
echo "a clean forced run takes $span ms; kills land within that" >&2

verify=1
if ! "$pipe" cache verify --help > /dev/null 2>&1; then
    verify=0
    echo "this pipe has no \`pipe cache verify\`: the cache object check is skipped" >&2
fi

killed=0 corrupt=0 bad=0 wrong=0 leftover=0 failed=0
for ((i = 1; i <= trials; i++)); do
    problem=""
    args=(repro -f)
    if (( (i / 2) % 2 == 1 )); then
        set_salt $((i + 1))
        args=(repro)
    fi
    target=pid
    (( i % 2 == 0 )) && target=group
    delay=$((RANDOM % span))
    setsid "$pipe" "${args[@]}" > "$work/run.log" 2>&1 &
    pid=$!
    sleep "$((delay / 1000)).$(printf %03d $((delay % 1000)))"
    if [[ $target == pid ]]; then
        kill -9 "$pid" 2>/dev/null || true
    else
        kill -9 -- "-$pid" 2>/dev/null || true
    fi
    status=0
    wait "$pid" 2>/dev/null || status=$?
    (( status == 137 )) && killed=$((killed + 1))

    # Processes: the killed run's id stays in the marker until a run ends.
    id=$(cat .pipeline-cache/v1/running 2>/dev/null || true)
    deadline=$(($(now_ms) + 5000))
    left=$(stage_processes "$id")
    while [[ -n $left ]] && (( $(now_ms) < deadline )); do
        sleep 0.01
        left=$(stage_processes "$id")
    done
    if [[ -n $left ]]; then
        leftover=$((leftover + 1))
        problem+=" leftover processes ($(echo $left));"
        kill -9 $left 2>/dev/null || true
    fi

    rc=0
    "$pipe" status > "$work/status.log" 2>&1 || rc=$?
    if (( rc == 2 )); then
        corrupt=$((corrupt + 1))
        problem+=" corrupt lock: $(head -1 "$work/status.log");"
    fi
    if (( verify )) && ! "$pipe" cache verify > "$work/verify.log" 2>&1; then
        bad=$((bad + 1))
        problem+=" bad objects: $(head -1 "$work/verify.log");"
    fi

    set_salt 1
    if ! "$pipe" repro > "$work/repro.log" 2>&1; then
        wrong=$((wrong + 1))
        problem+=" the next repro failed: $(tail -1 "$work/repro.log");"
    elif ! same_outputs; then
        wrong=$((wrong + 1))
        problem+=" outputs differ from the clean run;"
    fi

    if [[ -n $problem ]]; then
        failed=$((failed + 1))
        echo "trial $i (${args[*]}, kill -9 of the $target after $delay ms):$problem" >&2
        if (( failed == 1 )); then
            cp -r "$proj" "$work/first-failure"
            echo "  (project kept in $work/first-failure)" >&2
        fi
    fi
done

objects=$bad
(( verify )) || objects="skipped"
echo
echo "| trials | killed mid-run | corrupt locks | bad objects | wrong outputs | leftover processes |"
echo "| --- | --- | --- | --- | --- | --- |"
echo "| $trials | $killed | $corrupt | $objects | $wrong | $leftover |"
cd /
if (( failed == 0 )); then
    rm -rf "$work"
else
    rm -rf "$proj" "$ref" "$work/pipe"
    echo "logs and the first failing project: $work" >&2
fi
