# Helpers for the in-guest tests; sourced.
D=/sys/kernel/debug/rkalloc
RKCTL=/rkalloc/rkctl
fail() { echo "FAIL: $*"; exit 1; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }
# The value of "key: value" in a debugfs file.
kv() { sed -n "s/^$2: *//p" "$1" | head -1; }
# The debug kernel (KASAN, DEBUG_PAGEALLOC, lockdep) is many times slower:
# long tests divide their operation counts by SCALE there.
if grep -q debug_pagealloc=on /proc/cmdline; then SCALE=10; DEBUG_KERNEL=1; else SCALE=1; DEBUG_KERNEL=0; fi
