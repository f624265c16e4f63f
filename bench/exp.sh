#!/usr/bin/env bash
# bench/exp.sh: `pipe exp show` with 100 experiments recorded (target: under 100 ms).
#
# It builds the demo pipeline of this repo (synth.rows = 2000) in a fresh git repository,
# runs it and commits the baseline, queues 100 experiments (`-S fit.C=0.01,…,1.00`) and
# runs them with `pipe exp run --run-all -j 2` (timed once), then times with hyperfine
# (--warmup 3): `pipe exp show`, `pipe exp show --json`, `pipe exp show --sort-by accuracy`
# and `pipe metrics diff HEAD <an experiment>`. It ends with a Markdown table.
#
# Run (from any directory):
#   bench/exp.sh [WORKDIR]
#   Env: PIPE_BIN=path uses that pipe binary instead of running `cargo build --release`;
#        N (default 100) experiments; RUNS (default 30).
# Needs: cargo, git, python3; installs hyperfine (apt-get) when it is missing.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
base=${1:-}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${N:-100}
runs=${RUNS:-30}
ensure_tool hyperfine
work=$(mktemp -d "${base:-${TMPDIR:-/tmp}}/pipe-exp.XXXXXX")
results="$work/results"
mkdir -p "$results"
pipe_binary "$repo" "$work/pipe"
pipe=$work/pipe
proj="$work/project"
mkdir -p "$proj"
cp "$repo/pipeline.yaml" "$proj/"
sed 's/^  rows: [0-9]*/  rows: 2000/' "$repo/params.yaml" > "$proj/params.yaml"
printf 'data/\nmodel/\nplots/\n' > "$proj/.gitignore"
cd "$proj"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
git init -q -b main
"$pipe" repro >/dev/null 2>&1
git add -A && git commit -q -m baseline

values=$(python3 -c "print(','.join(f'{(i + 1) / $n:.2f}' if $n <= 100 else f'{(i + 1) / $n:.4f}' for i in range($n)))")
"$pipe" exp run --queue -S "fit.C=$values" 2>/dev/null
start=$(date +%s.%N)
"$pipe" exp run --run-all -j 2 2> "$results/run-all.log"
end=$(date +%s.%N)
recorded=$(git for-each-ref refs/exps | wc -l)
echo "recorded $recorded experiments in $(python3 -c "print(f'{$end - $start:.1f}')") s"
one=$(git for-each-ref --format='%(refname:lstrip=-1)' refs/exps | head -1)

hyperfine -N --warmup 3 --runs "$runs" --export-json "$results/exp-show.json" \
    -n "pipe exp show" "$pipe exp show" \
    -n "pipe exp show --json" "$pipe exp show --json" \
    -n "pipe exp show --sort-by accuracy" "$pipe exp show --sort-by accuracy" \
    -n "pipe metrics diff HEAD $one" "$pipe metrics diff HEAD $one"

python3 - "$results/exp-show.json" "$recorded" <<'PY' | tee "$results/table.md"
import json, sys
rows = json.load(open(sys.argv[1]))["results"]
print()
print(f"| command ({sys.argv[2]} experiments) | mean | σ | target |")
print("| --- | --- | --- | --- |")
for r in rows:
    target = "< 100 ms" if r["command"] == "pipe exp show" else ""
    print(f"| `{r['command']}` | {r['mean'] * 1000:.1f} ms | {r['stddev'] * 1000:.1f} ms | {target} |")
PY
echo "results: $results"
rm -rf "$proj" "$work/pipe"
