#!/usr/bin/env bash
# bench/engine.sh: how fast pipe's engine is against its peers (DVC, and `cat` for raw reading).
#
# What it measures, in one run, with hyperfine (--warmup 3, JSON in RESULTS/):
#   1. no-op `pipe repro` on the demo pipeline (pipeline.yaml + params.yaml of this repo)
#      vs no-op `dvc repro` on the DVC peer project from ../shared/bench/dvc_peer.sh
#      (the DVC part is skipped, with a message, when ../shared/data is absent);
#   2. warm `pipe status` vs warm `dvc status` on a stage that depends on a directory of
#      20,000 files of 100 KB (../shared/bench/make_files.py), after one `repro` in each;
#   3. the first hash of that directory: `pipe status` with its stat cache deleted before
#      every run, vs `cat files/*/* > /dev/null` (page cache warm in both cases);
#      plus the first `pipe repro` and the first `dvc repro` on it (one run each, `time`).
# It ends with a Markdown table: workload | pipe | peer | ratio.
#
# Run (from any directory):
#   bench/engine.sh [--quick] [--keep] [WORKDIR]
#     WORKDIR  where to put the projects (needs ~2.2 GB; ~0.3 GB with --quick). The script makes
#              a fresh sub-directory in it (default: a mktemp dir under $TMPDIR or /tmp) and
#              deletes only what it made there, keeping RESULTS/ (hyperfine JSON, logs, table.md).
#     --quick  2,000 files instead of 20,000, for a fast check of the script itself.
#     --keep   keep the projects and data too (for poking at them afterwards).
#   Env: PIPE_BIN=path uses that pipe binary instead of running `cargo build --release`;
#        RUNS (default 10) and FAST_RUNS (default 30, for pipe's millisecond commands).
# Needs: cargo, python3, git; installs what is missing: hyperfine (apt-get), dvc and the DVC
# peer's scikit-learn stack (pip).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

quick=0 keep=0 base=""
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        --keep) keep=1 ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "engine.sh: unknown option $arg" >&2; usage >&2; exit 2 ;;
        *) [[ -z $base ]] || { echo "engine.sh: one WORKDIR only" >&2; exit 2; }; base=$arg ;;
    esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
repo=$(cd "$here/.." && pwd)
shared=$(cd "$repo/../shared" 2>/dev/null && pwd || echo "$repo/../shared")
count=$((quick ? 2000 : 20000))
file_size=100000
runs=${RUNS:-10}
fast_runs=${FAST_RUNS:-30}
q() { printf '%q' "$1"; }
say() { printf '\n== %s\n' "$*"; }

# ---------------------------------------------------------------- tools
ensure_tool hyperfine
if ! command -v dvc >/dev/null; then
    say "installing dvc"
    python3 -m pip install -q dvc
fi
if [[ -f $shared/data/reviews.tsv ]] && ! python3 -c 'import sklearn, pandas, pyarrow, yaml, joblib' 2>/dev/null; then
    say "installing the DVC peer's Python stack"
    python3 -m pip install -q scikit-learn pandas pyarrow pyyaml numpy
fi
for tool in python3 git; do
    command -v $tool >/dev/null || { echo "engine.sh: $tool is required" >&2; exit 1; }
done
# A pyenv shim adds a bash script + `pyenv exec` to every call; time DVC's own entry point.
dvc_bin=$(command -v dvc)
if [[ $dvc_bin == */shims/* ]] && command -v pyenv >/dev/null; then
    dvc_bin=$(pyenv which dvc)
fi
export DVC_NO_ANALYTICS=1
# dvc_peer.sh commits; give git an identity if the user has none (env only, config untouched).
if [[ -z $(git config user.email || true) ]]; then
    export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost
    export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
fi

# ---------------------------------------------------------------- work dir
if [[ -n $base ]]; then
    mkdir -p "$base"
    work=$(mktemp -d "$(cd "$base" && pwd)/engine-bench.XXXXXX")
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/engine-bench.XXXXXX")
fi
results=$work/results
mkdir -p "$results" "$work/bin"
made=("$work/bin" "$work/dvc-site-cache")   # what the exit trap deletes (results/ stays)
# DVC keeps per-repo state in a site cache (default /var/tmp/dvc); keep ours in the work dir.
export DVC_SITE_CACHE_DIR=$work/dvc-site-cache
cleanup() {
    local rc=$?
    if ((keep)); then
        echo "kept everything in $work"
    else
        rm -rf "${made[@]}"
        echo "deleted the bench projects; results kept in $results (rm -rf $(q "$work") when done)"
    fi
    exit $rc
}
trap cleanup EXIT

need_kb=$((count * file_size / 1024 * 11 / 10 + 300 * 1024))   # one copy (the DVC copy is hard-linked) + slack
avail_kb=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
if ((avail_kb < need_kb)); then
    echo "engine.sh: $work has $((avail_kb / 1024)) MB free, needs about $((need_kb / 1024)) MB;" \
        "pass a WORKDIR on a bigger disk (or --quick)" >&2
    exit 1
fi

# ---------------------------------------------------------------- pipe binary
say "pipe binary"
pipe_binary "$repo" "$work/bin/pipe"
pipe=$work/bin/pipe
pipe_q=$(q "$pipe")

hf() {   # hf NAME RUNS [hyperfine args...]
    local name=$1 n=$2
    shift 2
    hyperfine --warmup 3 --runs "$n" --export-json "$results/$name.json" "$@"
}
timed() {   # timed NAME LOG cmd...: one run, wall seconds into RESULTS/NAME.time
    local name=$1 log=$2 TIMEFORMAT=%R
    shift 2
    { time "$@" >"$log" 2>&1; } 2>"$results/$name.time"
    echo "$name: $(cat "$results/$name.time") s (one run; log in $log)"
}

{
    echo "date:       $(date -u +%FT%TZ)"
    echo "machine:    $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/Mem:/ { print $2 }') GB RAM"
    echo "pipe:       $("$pipe" --version) at $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- src stages Cargo.toml Cargo.lock 2>/dev/null || echo ' + uncommitted changes')"
    echo "dvc:        $("$dvc_bin" --version) ($dvc_bin)"
    echo "hyperfine:  $(hyperfine --version)"
    echo "files:      $count x $file_size bytes"
    echo "work dir:   $work"
} | tee "$results/env.txt"

# ---------------------------------------------------------------- 1. no-op repro, demo pipeline
say "1. no-op repro on the demo pipeline"
demo=$work/demo
made+=("$demo")
mkdir -p "$demo"
cp "$repo/pipeline.yaml" "$repo/params.yaml" "$demo/"
"$pipe" -C "$demo" repro >"$results/demo-pipe-first-repro.log" 2>&1
(cd "$demo" && hf noop_repro_pipe "$fast_runs" -N "$pipe_q repro")

have_data=0
if [[ -f $shared/data/reviews.tsv ]]; then
    have_data=1
    dvc_demo=$work/dvc-demo
    made+=("$dvc_demo")
    bash "$shared/bench/dvc_peer.sh" "$dvc_demo" "$shared/data/reviews.tsv" >"$results/dvc-peer-setup.log" 2>&1
    (cd "$dvc_demo" && "$dvc_bin" repro) \
        >"$results/dvc-demo-first-repro.log" 2>&1
    (cd "$dvc_demo" && hf noop_repro_dvc "$runs" -N "$(q "$dvc_bin") repro")
else
    echo "skipping the DVC half of 1.: $shared/data is absent (no reviews.tsv for dvc_peer.sh)"
fi

# ---------------------------------------------------------------- 2./3. the many-files stage
say "2. a stage depending on $count x 100 KB files"
fp=$work/files-pipe fd=$work/files-dvc
made+=("$fp" "$fd")
mkdir -p "$fp" "$fd"
python3 "$shared/bench/make_files.py" "$fp/files" --count "$count" --size "$file_size"
# The DVC project gets the same files as hard links (same bytes, same page cache, half the
# disk). Done before either tool hashes anything: linking changes ctime, which pipe's stat cache checks.
cp -al "$fp/files" "$fd/files" 2>/dev/null || cp -a "$fp/files" "$fd/files"
cat >"$fp/pipeline.yaml" <<'YAML'
stages:
  count_files:
    cmd: ls files | wc -l > count.txt
    deps: [files]
    outs: [count.txt]
YAML
cat >"$fd/dvc.yaml" <<'YAML'
stages:
  count_files:
    cmd: ls files | wc -l > count.txt
    deps: [files]
    outs: [count.txt]
YAML
(
    cd "$fd"
    git init -q .
    "$dvc_bin" init -q
    "$dvc_bin" config core.analytics false
    git add dvc.yaml .dvc .dvcignore >/dev/null && git commit -qm "many-files stage (dvc peer)"
)
# Both stat caches (pipe's, like git's index, and DVC's) distrust files modified within ~2 s
# of hashing; let the new files age so the first repro records them.
sleep 3
sync
cat "$fp"/files/*/* >/dev/null   # page cache warm for everything below
echo "page cache: warm (files just written and read once with cat; $(free -g | awk '/Mem:/ { print $2 }') GB RAM)"
timed first_repro_pipe "$results/files-pipe-first-repro.log" "$pipe" -C "$fp" repro
timed first_repro_dvc "$results/files-dvc-first-repro.log" bash -c "cd $(q "$fd") && $(q "$dvc_bin") repro"
[[ $(tr -d ' ' <"$fp/count.txt") == "$((count / 1000))" ]] || { echo "pipe's count.txt is wrong" >&2; exit 1; }
[[ $(tr -d ' ' <"$fd/count.txt") == "$((count / 1000))" ]] || { echo "dvc's count.txt is wrong" >&2; exit 1; }

(cd "$fp" && hf warm_status_pipe "$fast_runs" -N "$pipe_q status")
(cd "$fd" && hf warm_status_dvc "$runs" -N "$(q "$dvc_bin") status")

say "3. first hash of the directory (pipe's stat cache deleted before every run) vs cat; page cache warm in both"
(cd "$fp" && hf first_hash_pipe "$runs" -N \
    --prepare "rm -f $(q "$fp/.pipeline-cache/v1/stat-cache")" "$pipe_q status")
[[ -f $fp/.pipeline-cache/v1/stat-cache ]] || echo "note: pipe status did not write $fp/.pipeline-cache/v1/stat-cache"
hf cat_files "$runs" "cat $(q "$fp")/files/*/* > /dev/null"

# ---------------------------------------------------------------- table
say "results ($count files; page cache warm in every row; JSON and logs in $results)"
python3 - "$results" "$count" "$have_data" <<'PY' | tee "$results/table.md"
import json, os, sys
res, count, have_data = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"

def hf(name):
    p = os.path.join(res, name + ".json")
    if not os.path.exists(p):
        return None
    r = json.load(open(p))["results"][0]
    return r["mean"], r["stddev"] or 0.0

def once(name):
    p = os.path.join(res, name + ".time")
    return (float(open(p).read().split()[-1]), None) if os.path.exists(p) else None

def fmt(m):
    if m is None:
        return "skipped"
    mean, sd = m
    unit, k = ("ms", 1e3) if mean < 1 else ("s", 1)
    digits = 1 if unit == "ms" else 2
    return f"{mean * k:.{digits}f} {unit}" + ("" if sd is None else f" ± {sd * k:.{digits}f}") + ("" if sd is not None else " (1 run)")

def ratio(a, b):
    return "n/a" if a is None or b is None else f"{a[0] / b[0]:.2f}×"

n = f"{count:,} × 100 KB"
rows = [
    ("no-op `repro`, demo pipeline (peer: `dvc repro` on dvc_peer.sh)", hf("noop_repro_pipe"), hf("noop_repro_dvc"), "dvc/pipe"),
    (f"warm `status`, stage on {n} dir (peer: `dvc status`)", hf("warm_status_pipe"), hf("warm_status_dvc"), "dvc/pipe"),
    (f"first hash of {n} (`pipe status`, no stat cache; peer: `cat` of the files)", hf("first_hash_pipe"), hf("cat_files"), "pipe/cat"),
    (f"first `repro`, stage on {n} dir (peer: `dvc repro`)", once("first_repro_pipe"), once("first_repro_dvc"), "dvc/pipe"),
]
print("| workload | pipe | peer | ratio |")
print("| --- | --- | --- | --- |")
for w, p, peer, kind in rows:
    r = ratio(peer, p) if kind == "dvc/pipe" else ratio(p, peer)
    print(f"| {w} | {fmt(p)} | {fmt(peer)} | {r} ({kind}) |")
print()
print("Ratios: dvc/pipe = how many times faster pipe is than DVC (higher is better);")
print("pipe/cat = pipe's first hash relative to just reading the same bytes with cat (lower is better).")
print("Page cache warm in every row. Means ± standard deviation from hyperfine (--warmup 3); first `repro` rows are one run each.")
if not have_data:
    print("The DVC no-op repro was skipped: ../shared/data is absent.")
print()
def value(m, k=1e3):
    return None if m is None else m[0] * k
fh, cat = hf("first_hash_pipe"), hf("cat_files")
targets = [
    ("no-op repro < 10 ms", value(hf("noop_repro_pipe")), 10, "ms"),
    ("warm status < 50 ms", value(hf("warm_status_pipe")), 50, "ms"),
    ("first hash < 1.5× cat", None if not (fh and cat) else fh[0] / cat[0], 1.5, "×"),
]
for name, v, limit, unit in targets:
    if v is None:
        print(f"- target {name}: n/a")
    else:
        verdict = "met" if v < limit else f"MISSED by {v / limit:.1f}×"
        print(f"- target {name}: {v:.{2 if unit == '×' else 1}f}{' ' if unit == 'ms' else ''}{unit}, {verdict}")
if count != 20000:
    print(f"- (--quick: {count:,} files, not the 20,000 the targets are stated for)")
PY
