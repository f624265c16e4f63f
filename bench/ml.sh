#!/usr/bin/env bash
# bench/ml.sh: the built-in ML stages (split → vectorize → fit → score) against
# their peers, in one run on this machine.
#
#   (a) the real data (../shared/data/reviews.tsv) through the whole pipeline:
#       `pipe repro -f` vs `dvc repro -f` of ../shared/bench/dvc_peer.sh
#       (DVC + scikit-learn scripts), timed with hyperfine;
#   (b) a 1,000,000-row corpus from ../shared/bench/make_reviews.py: wall time
#       (hyperfine, mean of BRUNS runs each, default 5: one run of the peer
#       varies by ±20 % here) and peak memory (/usr/bin/time -v) of
#       `pipe repro -f` vs ../shared/bench/sklearn_pipeline.py (C=100000),
#       and both accuracies.
#
# Run (from any directory):
#   bench/ml.sh [--quick] [WORKDIR]
#     --quick  100,000 rows instead of 1,000,000 for (b), fewer hyperfine runs.
#   Env: PIPE_BIN=path uses that pipe binary instead of `cargo build --release`.
# Needs: cargo, python3; installs what is missing: hyperfine, time (apt-get),
# dvc scikit-learn pandas pyarrow numpy (pip). Skips (a) and (b) with a
# message when ../shared/data is absent.
set -euo pipefail

quick=0 base=""
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "ml.sh: unknown option $arg" >&2; exit 2 ;;
        *) base=$arg ;;
    esac
done

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared="$repo/../shared"
data="$shared/data"
if [[ ! -f $data/reviews.tsv ]]; then
    echo "ml.sh: $data/reviews.tsv is absent: nothing to measure" >&2
    exit 0
fi
ensure_tool hyperfine
ensure_tool /usr/bin/time time
python3 -c "import dvc, sklearn, pandas, pyarrow, numpy" 2>/dev/null ||
    pip install -q dvc scikit-learn pandas pyarrow pyyaml numpy

work=$(mktemp -d "${base:-${TMPDIR:-/tmp}}/pipe-ml.XXXXXX")
results="$work/results"
mkdir -p "$results"
pipe_binary "$repo" "$work/pipe"
pipe=$work/pipe
runs=5
bruns=${BRUNS:-5}
rows=1000000
if [[ $quick == 1 ]]; then runs=2 bruns=2 rows=100000; fi

# A pipe project running the four built-in stages on REVIEWS with C.
make_project() { # DIR REVIEWS C
    mkdir -p "$1/data"
    cp "$2" "$1/data/reviews.tsv"
    cat > "$1/params.yaml" <<EOF
split: {text_column: Phrase, label_column: Sentiment, classes: {0: 0, 4: 1}, test_size: 0.2, seed: 42}
vectorize: {}
fit: {C: $3, max_iter: 1000}
EOF
    cat > "$1/pipeline.yaml" <<'EOF'
stages:
  split:
    uses: split
    with: {input: data/reviews.tsv, train: data/train.parquet, test: data/test.parquet}
    params: [split]
  vectorize:
    uses: vectorize
    with: {train: data/train.parquet, test: data/test.parquet, vectorizer: model/vectorizer.json,
           train_features: data/train.features, test_features: data/test.features}
    params: [vectorize]
  fit:
    uses: fit
    with: {features: data/train.features, vectorizer: model/vectorizer.json, model: model/model.json}
    params: [fit]
  score:
    uses: score
    with: {model: model/model.json, features: data/test.features, metrics: metrics.json, plots: plots/score.json}
EOF
}

echo "== (a) real data, whole pipeline: pipe repro -f vs dvc repro -f"
make_project "$work/pipe-real" "$data/reviews.tsv" 100000.0
"$pipe" -C "$work/pipe-real" repro >/dev/null 2>&1
export DVC_SITE_CACHE_DIR="$work/dvc-site"
"$shared/bench/dvc_peer.sh" "$work/dvc-real" "$data/reviews.tsv" >/dev/null
(cd "$work/dvc-real" && dvc repro -q >/dev/null)
hyperfine -N --warmup 1 --runs "$runs" --export-json "$results/real.json" \
    -n "pipe repro -f" "$pipe -C $work/pipe-real repro -f" \
    -n "dvc repro -f" "bash -c 'cd $work/dvc-real && dvc repro -f -q'"

echo "== (b) $rows-row corpus: pipe vs scikit-learn, wall time and peak memory"
python3 "$shared/bench/make_reviews.py" "$rows" "$work/big.tsv"
make_project "$work/pipe-big" "$work/big.tsv" 100000.0
"$pipe" -C "$work/pipe-big" repro >/dev/null 2>&1   # warm the page cache and check it runs
/usr/bin/time -v "$pipe" -C "$work/pipe-big" repro -f -j 1 > /dev/null 2> "$results/pipe-big.time"
/usr/bin/time -v python3 "$shared/bench/sklearn_pipeline.py" "$work/big.tsv" --C 100000 \
    > "$results/sklearn-big.json" 2> "$results/sklearn-big.time"
hyperfine -N --warmup 1 --runs "$bruns" --export-json "$results/big.json" \
    -n "pipe repro -f" "$pipe -C $work/pipe-big repro -f -j 1" \
    -n "sklearn_pipeline.py" "python3 $shared/bench/sklearn_pipeline.py $work/big.tsv --C 100000"
cp "$work/pipe-big/metrics.json" "$results/pipe-big-metrics.json"

python3 - "$results" <<'EOF'
import json, re, sys
r = sys.argv[1]
real = {x["command"]: x for x in json.load(open(f"{r}/real.json"))["results"]}
def peak(path):
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(path).read()).group(1)) / 1024
p, d = real["pipe repro -f"]["mean"], real["dvc repro -f"]["mean"]
big = {x["command"]: x for x in json.load(open(f"{r}/big.json"))["results"]}
pw, sw = big["pipe repro -f"]["mean"], big["sklearn_pipeline.py"]["mean"]
pws, sws = big["pipe repro -f"]["stddev"] or 0, big["sklearn_pipeline.py"]["stddev"] or 0
pm, sm = peak(f"{r}/pipe-big.time"), peak(f"{r}/sklearn-big.time")
pa = json.load(open(f"{r}/pipe-big-metrics.json"))["accuracy"]
sa = json.loads(open(f"{r}/sklearn-big.json").read().strip().splitlines()[-1])["accuracy"]
print()
print("| workload | pipe | peer | ratio |")
print("| --- | --- | --- | --- |")
print(f"| (a) real data, full pipeline (peer: `dvc repro -f`, DVC + scikit-learn) | {p:.2f} s | {d:.2f} s | {d/p:.1f}× faster |")
print(f"| (b) large corpus, wall time, mean of {len(big['pipe repro -f']['times'])} runs (peer: `sklearn_pipeline.py`) | {pw:.2f} s ± {pws:.2f} | {sw:.2f} s ± {sws:.2f} | {sw/pw:.1f}× faster |")
print(f"| (b) large corpus, peak memory | {pm:.0f} MB | {sm:.0f} MB | {pm/sm:.2f}× of the peer |")
print(f"| (b) large corpus, accuracy | {pa:.4f} | {sa:.4f} | Δ {abs(pa-sa):.4f} |")
EOF
echo
echo "results: $results"
rm -rf "$work/pipe-real" "$work/dvc-real" "$work/pipe-big" "$work/big.tsv" "$work/dvc-site" "$work/pipe"
