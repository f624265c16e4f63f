#!/usr/bin/env bash
# bench/large.sh: pipe on a pipeline of many stages, written out one by one in pipeline.yaml.
#
# Stage i runs `echo i > out/i.txt`, depends on out/(i-1).txt (the previous stage's output) and
# writes out/i.txt: one long chain. For N stages and for N/2 (to see how the time grows), with
# hyperfine (--warmup 2, JSON in RESULTS/):
#   1. `pipe status`, `pipe dag` and `pipe dag --outs` on the pipeline, nothing run yet;
#   2. a no-op `pipe repro` (every stage up to date) and `pipe status` then. The outputs and the
#      pipeline.lock a run would leave are written by this script (b3sum gives the hashes), and
#      `pipe status` must then say "Everything is up to date." before anything is timed: a real
#      first `pipe repro` of 20,000 stages takes most of an hour, as it rewrites the whole lock
#      after each stage.
# It ends with a Markdown table (stages | command | N/2 | N | ratio) and the target: status and
# dag under 0.5 s at 20,000 stages. A ratio near 2 means linear growth; 4 would be quadratic.
#
# Run (from any directory):
#   bench/large.sh [--quick] [--keep] [N] [WORKDIR]
#     N        stages (default 20000; --quick: 2000)
#     WORKDIR  where to put the projects (a fresh sub-directory is made in it; default: a mktemp
#              dir under $TMPDIR or /tmp). Only RESULTS/ is kept, unless --keep.
#   Env: PIPE_BIN=path uses that pipe binary instead of running `cargo build --release`;
#        RUNS (default 10).
# Needs: cargo, awk; installs what is missing: hyperfine, b3sum (apt-get).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

quick=0 keep=0 count="" base=""
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        --keep) keep=1 ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "large.sh: unknown option $arg" >&2; usage >&2; exit 2 ;;
        *)
            if [[ -z $count && $arg =~ ^[0-9]+$ ]]; then count=$arg
            elif [[ -z $base ]]; then base=$arg
            else echo "large.sh: too many arguments" >&2; exit 2
            fi ;;
    esac
done
count=${count:-$((quick ? 2000 : 20000))}
((count >= 2)) || { echo "large.sh: N must be at least 2" >&2; exit 2; }
half=$((count / 2))
runs=${RUNS:-10}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
repo=$(cd "$here/.." && pwd)
q() { printf '%q' "$1"; }
say() { printf '\n== %s\n' "$*"; }

ensure_tool hyperfine
ensure_tool b3sum

if [[ -n $base ]]; then
    mkdir -p "$base"
    work=$(mktemp -d "$(cd "$base" && pwd)/large-bench.XXXXXX")
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/large-bench.XXXXXX")
fi
results=$work/results
mkdir -p "$results" "$work/bin"
made=("$work/bin")
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

say "pipe binary"
pipe_binary "$repo" "$work/bin/pipe"
pipe=$work/bin/pipe
pipe_q=$(q "$pipe")
{
    echo "date:       $(date -u +%FT%TZ)"
    echo "machine:    $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "pipe:       $("$pipe" --version) at $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "hyperfine:  $(hyperfine --version)"
    echo "stages:     $half and $count"
} | tee "$results/env.txt"

# The pipeline of N stages in DIR.
make_pipeline() { # DIR N
    mkdir -p "$1"
    awk -v n="$2" 'BEGIN {
        print "stages:"
        for (i = 0; i < n; i++) {
            printf "  s%d:\n    cmd: echo %d > out/%d.txt\n", i, i, i
            if (i > 0) printf "    deps: [out/%d.txt]\n", i - 1
            printf "    outs: [out/%d.txt]\n", i
        }
    }' >"$1/pipeline.yaml"
}

# What `pipe repro` would leave in DIR: the outputs and pipeline.lock.
make_results() { # DIR N
    local dir=$1 n=$2
    mkdir -p "$dir/out"
    (cd "$dir/out" && awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) { f = i ".txt"; print i > f; close(f) } }')
    (cd "$dir" && find out -name '*.txt' -print0 | xargs -0 b3sum) | awk -v n="$n" '
        { split($2, parts, /[\/.]/); hash[parts[2]] = $1 }
        END {
            print "schema: 1"
            print "stages:"
            for (i = 0; i < n; i++) {
                printf "  s%d:\n    cmd:\n    - echo %d > out/%d.txt\n", i, i, i
                if (i > 0) printf "    deps:\n    - path: out/%d.txt\n      blake3: %s\n      size: %d\n", i - 1, hash[i - 1], length(i - 1) + 1
                printf "    outs:\n    - path: out/%d.txt\n      blake3: %s\n      size: %d\n", i, hash[i], length(i) + 1
            }
        }' >"$dir/pipeline.lock"
    # The stat cache trusts only files older than a few seconds.
    touch -d '-1 hour' "$dir"/out/*.txt 2>/dev/null || find "$dir/out" -name '*.txt' -exec touch -d '-1 hour' {} +
}

hf() { # NAME [hyperfine args...]
    local name=$1
    shift
    hyperfine --warmup 2 --runs "$runs" --export-json "$results/$name.json" "$@"
}

for n in "$half" "$count"; do
    say "$n stages: nothing run yet"
    fresh=$work/fresh-$n
    made+=("$fresh")
    make_pipeline "$fresh" "$n"
    "$pipe" -C "$fresh" dag >/dev/null   # the pipeline loads
    (cd "$fresh" && hf "status_fresh_$n" -N "$pipe_q status")
    (cd "$fresh" && hf "dag_$n" -N "$pipe_q dag")
    (cd "$fresh" && hf "dag_outs_$n" -N "$pipe_q dag --outs")

    say "$n stages: everything up to date"
    done_=$work/done-$n
    made+=("$done_")
    make_pipeline "$done_" "$n"
    make_results "$done_" "$n"
    verdict=$("$pipe" -C "$done_" status)   # also fills the stat cache
    [[ $verdict == "Everything is up to date." ]] || {
        echo "large.sh: the generated lock is not what pipe expects:" >&2
        head -5 <<<"$verdict" >&2
        exit 1
    }
    (cd "$done_" && hf "status_done_$n" -N "$pipe_q status")
    (cd "$done_" && hf "noop_repro_$n" -N "$pipe_q repro")
done

say "results (JSON in $results)"
python3 - "$results" "$half" "$count" <<'PY' | tee "$results/table.md"
import json, os, sys
res, half, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def mean(name):
    p = os.path.join(res, name + ".json")
    r = json.load(open(p))["results"][0]
    return r["mean"], r["stddev"] or 0.0

def fmt(m):
    return f"{m[0] * 1e3:.0f} ms ± {m[1] * 1e3:.0f}"

rows = [
    ("`pipe status`, nothing run", "status_fresh"),
    ("`pipe dag`", "dag"),
    ("`pipe dag --outs`", "dag_outs"),
    ("`pipe status`, all up to date", "status_done"),
    ("no-op `pipe repro`", "noop_repro"),
]
print(f"| command | {half:,} stages | {count:,} stages | ratio |")
print("| --- | --- | --- | --- |")
for label, key in rows:
    a, b = mean(f"{key}_{half}"), mean(f"{key}_{count}")
    print(f"| {label} | {fmt(a)} | {fmt(b)} | {b[0] / a[0]:.2f}× |")
print()
print("Ratio: time for twice the stages; 2× is linear growth, 4× quadratic.")
if count == 20000:
    for label, key in rows[:2]:
        v = mean(f"{key}_{count}")[0]
        print(f"- target {label} < 0.5 s at 20,000 stages: {v:.3f} s, {'met' if v < 0.5 else 'MISSED'}")
PY
