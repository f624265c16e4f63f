#!/usr/bin/env bash
# bench/plots.sh: `pipe plots show` on the demo (target: at most 50 ms) against
# `dvc plots show` on the same data.
#
# It runs the demo pipeline of this repo in a fresh git repository, then makes a
# DVC project (git + `dvc init`) that holds the demo's plot data as DVC plots it
# can draw: the ROC points (`plots/roc.json`, template simple) and the test set's
# (actual, predicted) pairs (`plots/confusion.json`, one record per row, template
# confusion), declared in dvc.yaml's top-level `plots:`. It times with hyperfine
# (--warmup 3): `pipe plots show` on the demo, `pipe plots show` on the DVC project
# (pipe reads its dvc.yaml), `dvc plots show` there, and `pipe plots show --json`.
# It ends with a Markdown table and the size of each page.
#
# Run (from any directory):
#   bench/plots.sh [WORKDIR]
#   Env: PIPE_BIN=path uses that pipe binary instead of `cargo build --release`;
#        RUNS (default 20).
# Needs: cargo, git, python3, dvc (pip install dvc); installs hyperfine (apt-get).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
base=${1:-}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-20}
ensure_tool hyperfine
command -v dvc >/dev/null || { echo "dvc is missing: pip install dvc" >&2; exit 2; }
work=$(mktemp -d "${base:-${TMPDIR:-/tmp}}/pipe-plots.XXXXXX")
results="$work/results"
mkdir -p "$results"
pipe_binary "$repo" "$work/pipe"
pipe=$work/pipe
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

demo="$work/demo"
mkdir -p "$demo"
cp "$repo/pipeline.yaml" "$repo/params.yaml" "$demo/"
cd "$demo"
git init -q -b main
"$pipe" repro >/dev/null 2>&1
git add -A && git commit -q -m demo

peer="$work/dvc"
mkdir -p "$peer/plots"
cd "$peer"
git init -q -b main
dvc init -q && dvc config core.analytics false
python3 - "$demo/plots/score.json" <<'P'
import json, sys
data = json.load(open(sys.argv[1]))
json.dump({"roc": data["roc"]}, open("plots/roc.json", "w"))
rows = [{"actual": str(c["actual"]), "predicted": str(c["predicted"])}
        for c in data["confusion"] for _ in range(c["count"])]
json.dump(rows, open("plots/confusion.json", "w"))
P
cat > dvc.yaml <<'P'
plots:
  - ROC:
      template: simple
      x: fpr
      y:
        plots/roc.json: tpr
  - Confusion:
      template: confusion
      x: actual
      y:
        plots/confusion.json: predicted
P
git add -A && git commit -q -m "plots (dvc peer)"

hyperfine --warmup 3 --runs "$runs" --export-markdown "$results/plots.md" \
    -n "pipe plots show (demo)" "cd '$demo' && '$pipe' plots show -o '$work/pipe-demo'" \
    -n "pipe plots show (DVC project)" "cd '$peer' && '$pipe' plots show -o '$work/pipe-peer'" \
    -n "pipe plots show --json (demo)" "cd '$demo' && '$pipe' plots show --json > /dev/null" \
    -n "dvc plots show (DVC project)" "cd '$peer' && dvc plots show -o '$work/dvc-peer' > /dev/null"

echo
cat "$results/plots.md"
echo
echo "Page sizes:"
wc -c "$work/pipe-demo/index.html" "$work/pipe-peer/index.html" "$work/dvc-peer/index.html"
echo "(dvc's page loads vega, vega-lite and vega-embed from a CDN: blank offline)"
grep -o 'src="https://[^"]*"' "$work/dvc-peer/index.html" | sort -u || true
