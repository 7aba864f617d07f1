# Shared helpers for rkalloc's scripts; sourced, never run.
# shellcheck shell=bash
CACHE=${RKALLOC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rkalloc}
TOOLS=$CACHE/tools
export PATH="$TOOLS/bin:$PATH"
# bindgen-cli, for the kernel build and the module's UAPI view.
BINDGEN_VERSION=0.73.0
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

# The oldest Rust the workspace builds with (Cargo.toml's rust-version).
rust_version() { sed -n 's/^rust-version *= *"\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -1; }
# version_ge A B: A >= B, as versions.
version_ge() { printf '%s\n%s\n' "$2" "$1" | sort -V -C; }

# find_cargo: set CARGO to the command that runs a cargo new enough for the
# workspace, or set CARGO_WHY and return 1 (no cargo) or 2 (too old). Under sudo, PATH is sudo's
# secure_path and the invoking user's rustup cargo is not on it: that cargo
# is used, run as that user (so that target/ and ~/.cargo stay theirs).
find_cargo() {
    local need c have uhome
    need=$(rust_version)
    CARGO=() CARGO_WHY=""
    if c=$(command -v cargo); then
        CARGO=("$c")
    elif [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] \
        && uhome=$(getent passwd "$SUDO_USER" | cut -d: -f6) && [ -x "$uhome/.cargo/bin/cargo" ]; then
        CARGO=(runuser -u "$SUDO_USER" -- env HOME="$uhome" PATH="$uhome/.cargo/bin:/usr/local/bin:/usr/bin:/bin" cargo)
        c="$SUDO_USER's $uhome/.cargo/bin/cargo"
    else
        CARGO_WHY="cargo not found on PATH${SUDO_USER:+ (sudo resets PATH; $SUDO_USER has no ~/.cargo/bin/cargo either)}"
        return 1
    fi
    have=$("${CARGO[@]}" --version 2>/dev/null | awk '{print $2}')
    if ! version_ge "${have:-0}" "$need"; then
        CARGO_WHY="$c is cargo ${have:-(not working)}; this workspace needs $need or newer (Cargo.lock is version 4: Debian 12's own cargo, 1.65, cannot read it)"
        CARGO=()
        return 2
    fi
}
# need_cargo: find_cargo, or stop with what to do.
need_cargo() {
    find_cargo || die "$CARGO_WHY" \
        "scripts/setup-deps installs Debian's cargo-web (cargo $(apt_candidate cargo-web || echo 1.96), for rustc-web) when no cargo is found; or install Rust $(rust_version) or newer with rustup"
}
# apt_candidate PKG: the version apt would install, if any.
apt_candidate() {
    local v
    v=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [ -n "$v" ] && [ "$v" != "(none)" ] && echo "${v%%+*}"
}
