# bench/lib.sh: what the benchmark scripts share. Source it:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Runs a command as root (directly, or through sudo).
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

# Installs PACKAGE (default: COMMAND) with apt-get when COMMAND is missing.
ensure_tool() { # COMMAND [PACKAGE]
    command -v "$1" >/dev/null && return
    echo "installing ${2:-$1}" >&2
    as_root apt-get update -qq && as_root apt-get install -y -qq "${2:-$1}"
}

# Puts the pipe binary to time at DEST: a copy of $PIPE_BIN if set, else
# of a fresh `cargo build --release` of REPO. A copy, so that a rebuild
# during a long run cannot swap the binary under it.
pipe_binary() { # REPO DEST
    if [[ -z ${PIPE_BIN:-} ]]; then
        (cd "$1" && cargo build --release -q --bin pipe)
    fi
    cp "${PIPE_BIN:-$1/target/release/pipe}" "$2"
    "$2" --version >/dev/null
}

# The pids of the live (not zombie) processes whose environment holds
# PIPE_RUN_ID=RUN_ID: the stage processes of that `pipe repro` run (Linux).
stage_processes() { # RUN_ID
    local f pid
    [[ -n $1 ]] || return 0
    for f in $(grep -lxzF "PIPE_RUN_ID=$1" /proc/[0-9]*/environ 2>/dev/null); do
        pid=${f#/proc/}
        pid=${pid%/environ}
        process_alive "$pid" && echo "$pid"
    done
    return 0
}

# Whether process PID exists and is not a zombie.
process_alive() { # PID
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}
