#!/usr/bin/env bash
# bench/remote.sh: pipe push/pull against dvc push/pull, to the same
# S3-compatible server on loopback, in one run.
#
# Workloads:
#   1. the 20,000 × 100 KB directory of ../shared/bench/make_files.py (2 GB),
#      an output of a pipe stage and `dvc add`ed on the DVC side:
#      first push (each run to a prefix of its own), a no-op push (nothing
#      new), and a pull into an empty cache and workspace: the median of
#      RUNS runs (3) of each, the no-op pushes with hyperfine;
#   2. peak memory of the first `pipe push` of 20,000 files against 2,000
#      (flat?);
#   3. the demo sentiment pipeline (this repository's pipeline.yaml):
#      push and pull of its outputs.
# The server is moto (`pip install 'moto[server]'`), which both clients
# work with; both sides use the same one, each in its own bucket. (s3s-fs,
# a Rust server, much faster, answers DVC's HEAD of a "directory" key with a
# 500, so DVC cannot pull from it; with SERVER=s3s-fs the table says so for
# DVC's pull and gives the rest.) It ends with a Markdown table:
# workload | pipe | dvc | ratio.
#
# Run (from any directory):
#   bench/remote.sh [--quick] [WORKDIR]
#     WORKDIR  where to put the projects (needs ~7 GB; the script makes a
#              fresh directory in it and removes it at the end, keeping
#              RESULTS/table.md)
#     --quick  2,000 files instead of 20,000.
#   Env: PIPE_BIN=path uses that pipe binary instead of `cargo build --release`;
#        RUNS (default 3) runs of each push and pull;
#        JOBS (default: pipe's default) for `pipe push -j`.
# Needs: python3, git; installs what is missing: hyperfine (apt-get),
# dvc and dvc-s3 (pip), moto (pip) when s3s-fs is absent.
set -euo pipefail

quick=0 base=""
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "remote.sh: unknown option $arg" >&2; exit 2 ;;
        *) base=$arg ;;
    esac
done
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
repo=$(cd "$here/.." && pwd)
shared=$(cd "$repo/../shared" && pwd)
count=$((quick ? 2000 : 20000))
work=$(mktemp -d "${base:-${TMPDIR:-/tmp}}/pipe-remote.XXXXXX")
results=$work/RESULTS
mkdir -p "$results"
say() { printf '\n== %s\n' "$*" >&2; }

ensure_tool hyperfine
python3 -c 'import dvc_s3' 2>/dev/null || { say "installing dvc, dvc-s3"; python3 -m pip install -q dvc dvc-s3; }
pipe_binary "$repo" "$work/pipe"
pipe=$work/pipe

# ------------------------------------------------------------ the server
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
if [[ ${SERVER:-moto} == s3s-fs ]]; then
    server=s3s-fs
    mkdir -p "$work/s3"
    s3s-fs --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret "$work/s3" >"$results/server.log" 2>&1 &
else
    server=moto
    command -v moto_server >/dev/null || python3 -m pip install -q 'moto[server]'
    moto_server -H 127.0.0.1 -p "$port" >"$results/server.log" 2>&1 &
fi
server_pid=$!
cleanup() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -rf "$work/s3" "$work/p" "$work/d" "$work/files"; }
trap cleanup EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
endpoint=http://127.0.0.1:$port
mkbucket() { python3 - "$endpoint" "$1" <<'PY'
import sys, boto3
boto3.client("s3", endpoint_url=sys.argv[1]).create_bucket(Bucket=sys.argv[2])
PY
}
python3 -c 'import boto3' 2>/dev/null || python3 -m pip install -q boto3
mkbucket pipe-bench; mkbucket dvc-bench
say "server: $server at $endpoint"

# ------------------------------------------------------------ the data
say "making $count files of 100 KB"
python3 "$shared/bench/make_files.py" "$work/files" --count "$count"

# Before each timed transfer, both sides alike: the dirty pages of what ran
# before are written out (sync), and before a pull the page cache is emptied
# when this user may (root), so that neither side pays for the other's
# writes (on this 2-core VM, copying 20,000 freshly written files took 5 s
# against 1 s settled).
settle() { # [drop]
    sync
    if [[ ${1:-} == drop ]]; then echo 1 2>/dev/null >/proc/sys/vm/drop_caches || true; fi
}

runs=${RUNS:-3}
median() { python3 -c "import statistics,sys; v=sorted(map(float,sys.argv[1:])); print(f'{statistics.median(v):.2f} s ({v[0]:.2f}–{v[-1]:.2f})')" "$@"; }
value() { echo "${1%% s*}"; } # the median of a median() line

secs() { # COMMAND…: wall seconds of one run, to stdout
    local t0 t1
    t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N)
    python3 -c "print(f'{$t1 - $t0:.2f}')"
}

# pipe side: a stage whose output is the directory.
mkdir -p "$work/p" && cd "$work/p"
git init -q .
cp -r "$work/files" files.src
cat > pipeline.yaml <<'Y'
stages:
  files:
    cmd: mv files.src files
    outs: [files/]
Y
"$pipe" repro >/dev/null
"$pipe" remote add -d s3 s3://pipe-bench/p >/dev/null
"$pipe" remote modify s3 endpoint_url "$endpoint" >/dev/null
"$pipe" remote modify s3 allow_http true >/dev/null
jobs=()
[[ -n ${JOBS:-} ]] && jobs=(-j "$JOBS")
say "pipe push ($runs runs, each to a prefix of its own, forgetting what the remote holds)"
times=()
for i in $(seq "$runs"); do
    "$pipe" remote modify s3 url "s3://pipe-bench/p$i" >/dev/null 2>&1
    rm -rf .pipeline-cache/v1/remotes
    settle
    times+=("$(secs /usr/bin/time -v -o "$results/pipe-mem.txt" "$pipe" push "${jobs[@]}")")
done
pipe_push=$(median "${times[@]}")
pipe_mem=$(awk -F: '/Maximum resident/ {printf "%.0f", $2/1024}' "$results/pipe-mem.txt")
say "pipe no-op push"
hyperfine -N --warmup 1 -r 10 --export-json "$results/pipe-noop.json" "$pipe push" >/dev/null
pipe_noop=$(python3 -c "import json;print(f\"{json.load(open('$results/pipe-noop.json'))['results'][0]['mean']*1000:.1f}\")")
say "pipe pull (empty cache and workspace, $runs runs)"
times=()
for _ in $(seq "$runs"); do
    rm -rf .pipeline-cache files
    settle drop
    times+=("$(secs "$pipe" pull "${jobs[@]}")")
    [[ $(find files -type f | wc -l) == "$count" ]] || { echo "pipe pull is incomplete" >&2; exit 1; }
done
pipe_pull=$(median "${times[@]}")
# The same first push with a tenth of the files (to a prefix of its own),
# to see that memory does not grow with them.
say "pipe push memory"
mkdir -p "$work/small" && cd "$work/small" && git init -q .
python3 "$shared/bench/make_files.py" files.src --count $((count / 10)) >/dev/null
cp "$work/p/pipeline.yaml" . && sed 's|s3://pipe-bench/p[0-9]*|s3://pipe-bench/small|' "$work/p/pipe.toml" >pipe.toml
"$pipe" repro >/dev/null
/usr/bin/time -v -o "$results/pipe-mem-small.txt" "$pipe" push >/dev/null 2>&1 || true
pipe_mem_small=$(awk -F: '/Maximum resident/ {printf "%.0f", $2/1024}' "$results/pipe-mem-small.txt")
cd "$work" && rm -rf "$work/small"

# DVC side: the same files, dvc add.
mkdir -p "$work/d" && cd "$work/d"
git init -q . && dvc init -q && dvc config core.analytics false
cp -r "$work/files" files
dvc add -q files
dvc remote add -q -d s3 s3://dvc-bench/d
dvc remote modify -q s3 endpointurl "$endpoint"
say "dvc push ($runs runs, each to a prefix of its own)"
times=()
for i in $(seq "$runs"); do
    dvc remote modify -q s3 url "s3://dvc-bench/d$i"
    settle
    times+=("$(secs dvc push)")
done
dvc_push=$(median "${times[@]}")
say "dvc no-op push"
hyperfine -N --warmup 1 -r 5 --export-json "$results/dvc-noop.json" "dvc push" >/dev/null
dvc_noop=$(python3 -c "import json;print(f\"{json.load(open('$results/dvc-noop.json'))['results'][0]['mean']*1000:.1f}\")")
say "dvc pull (empty cache and workspace, $runs runs)"
times=()
for _ in $(seq "$runs"); do
    rm -rf .dvc/cache files
    settle drop
    times+=("$(secs dvc pull)")
    if [[ $(find files -type f 2>/dev/null | wc -l) != "$count" ]]; then
        # s3s-fs answers DVC's HEAD of a "directory" key with a 500.
        [[ $server == s3s-fs ]] || { echo "dvc pull is incomplete" >&2; exit 1; }
        times=()
        break
    fi
done
dvc_pull=""
[[ ${#times[@]} -gt 0 ]] && dvc_pull=$(median "${times[@]}")

# ------------------------------------------------------------ the sentiment pipeline
say "the demo pipeline"
mkdir -p "$work/demo" && cd "$work/demo" && git init -q .
cp "$repo/pipeline.yaml" "$repo/params.yaml" .
"$pipe" repro >/dev/null
cp "$work/p/pipe.toml" . && sed -i 's|s3://pipe-bench/p[0-9]*|s3://pipe-bench/demo|' pipe.toml
demo_push=$(secs "$pipe" push --run-cache)
rm -rf .pipeline-cache data model metrics.json plots
demo_pull=$(secs "$pipe" pull)
cd "$work" && rm -rf "$work/demo"

ratio() { python3 -c "print(f'{$2 / $1:.1f}×')"; }
{
    echo "server: $server on loopback; $count files of 100 KB; $(nproc) cores; push and pull: median of $runs runs (min–max)"
    echo
    echo "| workload | pipe | dvc | ratio |"
    echo "| --- | --- | --- | --- |"
    echo "| push, $count files (first) | ${pipe_push} | ${dvc_push} | $(ratio "$(value "$pipe_push")" "$(value "$dvc_push")") faster |"
    echo "| push, nothing new | ${pipe_noop} ms | ${dvc_noop} ms | $(ratio "$pipe_noop" "$dvc_noop") faster |"
    if [[ -n $dvc_pull ]]; then
        echo "| pull into an empty cache, $count files | ${pipe_pull} | ${dvc_pull} | $(ratio "$(value "$pipe_pull")" "$(value "$dvc_pull")") faster |"
    else
        echo "| pull into an empty cache, $count files | ${pipe_pull} | fails on $server | |"
    fi
    echo "| peak memory of the first push, $count files / $((count / 10)) files | ${pipe_mem} MB / ${pipe_mem_small} MB | | |"
    echo "| demo pipeline: push --run-cache / pull | ${demo_push} s / ${demo_pull} s | | |"
} | tee "$results/table.md"
cp -r "$results" "${base:-${TMPDIR:-/tmp}}/pipe-remote-results.$(date +%s)"
