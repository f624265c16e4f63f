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
