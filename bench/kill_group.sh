#!/usr/bin/env bash
# bench/kill_group.sh: does a stage die with `pipe repro` when pipe's whole
# process group is killed with SIGKILL? (target: 0 trials with a survivor)
#
# It makes a one-stage project whose command starts two background children
# (`sleep 300 & sleep 300 & wait`), then TRIALS times (default 50):
#   `setsid pipe repro -f` (pipe leads a session and process group of its own),
#   waits until the stage's processes exist (found by the run's PIPE_RUN_ID in
#   /proc/*/environ: the supervisor, `sh` and both `sleep`s), `kill -9 -- -PGID`,
#   and waits up to GRACE seconds (default 5) for every one of them to be gone.
# A trial that leaves one alive counts as leaked; its survivors are killed
# before the next trial. It ends with a Markdown table: trials, leaked, and the
# median and slowest time until the last stage process was gone.
#
# Run (from any directory):
#   bench/kill_group.sh [WORKDIR]
#   Env: PIPE_BIN=path uses that pipe binary instead of `cargo build --release`;
#        TRIALS (default 50); GRACE (default 5) seconds.
# Needs: Linux (/proc), bash, setsid, python3.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
base=${1:-}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
trials=${TRIALS:-50}
grace=${GRACE:-5}
work=$(mktemp -d "${base:-${TMPDIR:-/tmp}}/pipe-kill.XXXXXX")
pipe_binary "$repo" "$work/pipe"
pipe=$work/pipe
proj=$work/project
mkdir -p "$proj"
cat > "$proj/pipeline.yaml" <<'EOF'
stages:
  spawn:
    cmd: sleep 300 & sleep 300 & touch started; wait
    outs: [out.txt]
EOF
cd "$proj"

now_ms() { date +%s%3N; }

leaked=0 times=()
for ((i = 1; i <= trials; i++)); do
    rm -f started
    setsid "$pipe" repro -f > "$work/repro.log" 2>&1 &
    pid=$!
    for ((t = 0; t < 1000; t++)); do
        [[ -e started ]] && break
        sleep 0.01
    done
    [[ -e started ]] || { echo "trial $i: the stage never started" >&2; cat "$work/repro.log" >&2; exit 1; }
    id=$(cat .pipeline-cache/v1/running)
    before=$(stage_processes "$id" | wc -l)
    (( before >= 4 )) || { echo "trial $i: found $before stage processes, expected 4" >&2; exit 1; }
    pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
    [[ $pgid == "$pid" ]] || { echo "trial $i: pipe does not lead its process group" >&2; exit 1; }
    start=$(now_ms)
    kill -9 -- "-$pgid"
    wait "$pid" 2>/dev/null || true
    left=""
    while :; do
        left=$(stage_processes "$id")
        [[ -z $left ]] && break
        (( $(now_ms) - start > grace * 1000 )) && break
        sleep 0.01
    done
    if [[ -n $left ]]; then
        leaked=$((leaked + 1))
        echo "trial $i: alive after ${grace} s: $(echo $left)" >&2
        kill -9 $left 2>/dev/null || true
    else
        times+=($(($(now_ms) - start)))
    fi
done

printf '%s\n' "${times[@]}" | python3 -c '
import sys
trials, leaked, grace = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
t = sorted(int(x) for x in sys.stdin.read().split())
med = f"{t[len(t) // 2]} ms" if t else "-"
top = f"{t[-1]} ms" if t else "-"
print()
print("| trials | a stage process alive after " + grace + " s | median until all gone | slowest |")
print("| --- | --- | --- | --- |")
print(f"| {trials} | {leaked} | {med} | {top} |")
' "$trials" "$leaked" "$grace"
cd / && rm -rf "$work"
