# Shared helpers for rkalloc's scripts; sourced, never run.
# shellcheck shell=bash
CACHE=${RKALLOC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rkalloc}
TOOLS=$CACHE/tools
export PATH="$TOOLS/bin:$PATH"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '[rkalloc] %s\n' "$*" >&2; }
# die WHAT [HOW-TO-FIX]
die() {
    printf '[rkalloc] error: %s\n' "$1" >&2
    [ $# -lt 2 ] || printf '[rkalloc] fix: %s\n' "$2" >&2
    exit 1
}
bindgen_ok() {
    [ -x "$TOOLS/bin/bindgen" ] && "$TOOLS/bin/bindgen" --version 2>/dev/null | grep -q "^bindgen $BINDGEN_VERSION"
}
