#!/usr/bin/env bash
# bench/serve.sh: `pipe serve` against the mlseries services as that project
# runs them (../shared/bench/serve_peer.py: FastAPI + uvicorn +
# scikit-learn, one process per service), side by side in one run.
#
# Both serve the same kind of model (bag of words -> TF-IDF -> logistic
# regression, C=1e5) fitted on the real data: pipe's with the built-in
# stages on ../shared/data/reviews.tsv, the peer's with `serve_peer.py
# train` on ../shared/data/train-split.tsv (the same phrases). Each is loaded
# with wrk (2 threads, CONNS connections, DURATION, the same POST body) on:
#   POST /prediction_job/   pipe serve            vs peer `ml`
#   POST /review_sentiment/ pipe serve            vs peer `server` -> `ml` over HTTP
#   POST /review_sentiment/ pipe serve --upstream -> pipe serve (two processes, as the peer)
#   POST /prediction_job/   pipe serve with --executor blocking (spawn_blocking + a semaphore)
# and reports throughput, p50/p99 latency, the ratios, and peak resident
# memory (VmHWM) of each service after its load.
#
# Run (from any directory):
#   bench/serve.sh [--quick] [WORKDIR]
#     --quick  3 s per load instead of 10.
#   Env: PIPE_BIN=path uses that pipe binary instead of `cargo build --release`;
#        CONNS (default 32); SERVE_PEER_VENV: the peer's virtual environment
#        (default ~/.cache/pipe-bench/serve-peer-venv, created when missing).
# Needs: cargo, python3 (with venv); installs what is missing: wrk (apt-get),
# fastapi uvicorn scikit-learn pandas joblib requests (pip, in the venv).
# The machine should be otherwise idle: both sides are measured in one run,
# so compare the ratios; repeat if other work was running.
set -euo pipefail

duration=10s base=""
for arg in "$@"; do
    case $arg in
        --quick) duration=3s ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "serve.sh: unknown option $arg" >&2; exit 2 ;;
        *) base=$arg ;;
    esac
done

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared="$repo/../shared"
data="$shared/data"
conns=${CONNS:-32}
if [[ ! -f $data/reviews.tsv || ! -f $data/train-split.tsv ]]; then
    echo "serve.sh: $data/reviews.tsv or train-split.tsv is absent: nothing to measure" >&2
    exit 0
fi
ensure_tool wrk
ensure_tool curl
venv=${SERVE_PEER_VENV:-$HOME/.cache/pipe-bench/serve-peer-venv}
if ! "$venv/bin/python" -c "import fastapi, uvicorn, sklearn, pandas, joblib, requests" 2>/dev/null; then
    echo "creating the peer's virtual environment in $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q fastapi uvicorn scikit-learn pandas joblib requests
fi
py="$venv/bin/python"

work=$(mktemp -d "${base:-${TMPDIR:-/tmp}}/pipe-serve.XXXXXX")
results="$work/results"
mkdir -p "$results"
pipe_binary "$repo" "$work/pipe"
pipe=$work/pipe

pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== models"
mkdir -p "$work/project/data"
cp "$data/reviews.tsv" "$work/project/data/reviews.tsv"
cat > "$work/project/params.yaml" <<'EOF'
split: {text_column: Phrase, label_column: Sentiment, classes: {0: 0, 4: 1}, test_size: 0.2, seed: 42}
vectorize: {}
fit: {C: 100000.0, max_iter: 1000}
EOF
cat > "$work/project/pipeline.yaml" <<'EOF'
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
EOF
"$pipe" -C "$work/project" repro >/dev/null 2>&1
"$py" "$shared/bench/serve_peer.py" train "$data/train-split.tsv" "$work/model.joblib" >/dev/null

# Starts a service in the background; its pid goes to $last.
start() { # LOG CMD…
    local log=$1
    shift
    "$@" > "$log" 2>&1 &
    last=$!
    pids+=("$last")
}

# Waits until PORT answers a POST of the body to PATH with STATUS.
wait_ready() { # PORT PATH STATUS
    local i code
    for i in $(seq 1 300); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "127.0.0.1:$1$2" \
            -H 'content-type: application/json' -d "$body") || true
        [[ $code == "$3" ]] && return 0
        sleep 0.1
    done
    echo "serve.sh: 127.0.0.1:$1$2 did not answer $3" >&2
    exit 1
}

body='{"text": "very pleasant. highly recommend"}'
cat > "$work/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
EOF

# NAME PORT PATH: wrk on it, output saved as NAME.wrk.
load() { # NAME PORT PATH
    echo "-- $1"
    wrk -t2 -c"$conns" -d"$duration" --latency -s "$work/post.lua" "http://127.0.0.1:$2$3" \
        > "$results/$1.wrk"
    grep -E "Requests/sec|Non-2xx|Socket errors" "$results/$1.wrk" || true
}

hwm() { # PID…: the sum of their peak resident memory, in MB
    local kb=0 pid v
    for pid in "$@"; do
        v=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
        kb=$((kb + v))
    done
    echo $((kb / 1024))
}

echo "== services"
start "$results/pipe.log" "$pipe" serve --model "$work/project/model/model.json" \
    --addr 127.0.0.1:18100 --quiet
pipe_pid=$last
start "$results/pipe-blocking.log" "$pipe" serve --model "$work/project/model/model.json" \
    --addr 127.0.0.1:18101 --quiet --executor blocking
blocking_pid=$last
start "$results/pipe-front.log" "$pipe" serve --upstream http://127.0.0.1:18100 \
    --addr 127.0.0.1:18102 --quiet
front_pid=$last
start "$results/peer-ml.log" "$py" "$shared/bench/serve_peer.py" ml --model "$work/model.joblib" --port 18110
peer_ml_pid=$last
start "$results/peer-server.log" "$py" "$shared/bench/serve_peer.py" server \
    --ml http://127.0.0.1:18110 --port 18111
peer_server_pid=$last
wait_ready 18100 /prediction_job/ 201
wait_ready 18101 /prediction_job/ 201
wait_ready 18102 /review_sentiment/ 200
wait_ready 18110 /prediction_job/ 201
wait_ready 18111 /review_sentiment/ 200
for port in 18100 18110; do
    echo "127.0.0.1:$port/prediction_job/ answers $(curl -s -XPOST "127.0.0.1:$port/prediction_job/" \
        -H 'content-type: application/json' -d "$body")"
done

echo "== load: wrk -t2 -c$conns -d$duration, POST $body"
load peer-ml 18110 /prediction_job/
peer_ml_mb=$(hwm "$peer_ml_pid")
load pipe-ml 18100 /prediction_job/
load peer-server 18111 /review_sentiment/
peer_server_mb=$(hwm "$peer_server_pid" "$peer_ml_pid")
load pipe-server 18100 /review_sentiment/
pipe_mb=$(hwm "$pipe_pid")
load pipe-front 18102 /review_sentiment/
front_mb=$(hwm "$front_pid" "$pipe_pid")
load pipe-blocking 18101 /prediction_job/
blocking_mb=$(hwm "$blocking_pid")

python3 - "$results" "$pipe_mb" "$peer_ml_mb" "$peer_server_mb" "$front_mb" "$blocking_mb" <<'EOF'
import re, sys
r = sys.argv[1]
pipe_mb, peer_ml_mb, peer_server_mb, front_mb, blocking_mb = sys.argv[2:]
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit]
def read(name):
    t = open(f"{r}/{name}.wrk").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    errors = re.search(r"Socket errors: (.*)", t)
    return rps, p50, p99, int(bad.group(1)) if bad else 0, errors.group(1) if errors else ""
rows = [
    ("`POST /prediction_job/`", "pipe-ml", "peer-ml", pipe_mb, peer_ml_mb),
    ("`POST /review_sentiment/` (pipe in-process; peer server → ml)", "pipe-server", "peer-server", pipe_mb, peer_server_mb),
    ("`POST /review_sentiment/` (pipe `--upstream` → pipe; peer server → ml)", "pipe-front", "peer-server", front_mb, peer_server_mb),
    ("`POST /prediction_job/`, pipe `--executor blocking`", "pipe-blocking", "peer-ml", blocking_mb, peer_ml_mb),
]
print()
print("| endpoint | pipe req/s | peer req/s | ratio | pipe p50 / p99 | peer p50 / p99 | peak RSS pipe / peer |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for title, p, q, pm, qm in rows:
    a, b = read(p), read(q)
    for name, x in ((p, a), (q, b)):
        if x[3] or x[4]:
            print(f"warning: {name}: {x[3]} non-2xx answers, socket errors: {x[4]}", file=sys.stderr)
    print(f"| {title} | {a[0]:,.0f} | {b[0]:,.0f} | {a[0]/b[0]:.0f}× | {a[1]:.2f} / {a[2]:.2f} ms "
          f"| {b[1]:.0f} / {b[2]:.0f} ms | {pm} / {qm} MB |")
EOF
echo
echo "results: $results"
rm -rf "$work/project" "$work/pipe" "$work/model.joblib"
