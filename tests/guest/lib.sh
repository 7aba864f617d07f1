# Helpers for the in-guest tests; sourced.
D=/sys/kernel/debug/rkalloc
RKCTL=/rkalloc/rkctl
fail() { echo "FAIL: $*"; exit 1; }
# fail_now MESSAGE: fail from inside $(...) too: the message goes to
# stderr and the test's own shell ($$ is the script's PID in a subshell
# too) is killed, so that no caller can take an empty answer for a value.
fail_now() { echo "FAIL: $*" >&2; kill -TERM $$; exit 1; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }
# The value of "key: value" in a debugfs file.
kv() { sed -n "s/^$2: *//p" "$1" | head -1; }

# Columns by name. heaps, arenas and slabinfo name their columns in a header
# line that starts with "#" ("# id policy flags ...", slabinfo's "# name
# <active_objs> <num_objs> ... : tunables <limit> ..."; the <> are dropped,
# and slabinfo's ":", "tunables" and "slabdata" words count as columns, as
# they do in its rows). Every line after the header is a row.
#
#   col FILE COLUMN [ROWKEY]   COLUMN of every row of FILE, or of the row
#                              whose first column is ROWKEY
#   rowcol FILE COLUMN LINE    COLUMN of LINE, a row laid out as FILE's
#                              (e.g. a line rkctl heap show printed)
# A COLUMN FILE's header does not name fails the test.
_col() { # FILE COLUMN SKIP-HEADER ROWKEY HAS-KEY; rows on stdin
    awk -v file="$1" -v c="$2" -v skip="$3" -v k="$4" -v haskey="$5" '
        BEGIN {
            while ((getline l < file) > 0) {
                n++
                if (l ~ /^#/) { hdr = l; at = n; break }
            }
            if (hdr == "") { print "FAIL: " file " has no # header line" > "/dev/stderr"; exit 2 }
            nf = split(substr(hdr, 2), h, " ")
            for (i = 1; i <= nf; i++) { x = h[i]; gsub(/[<>]/, "", x); if (x == c) idx = i }
            if (!idx) { print "FAIL: " file " has no column " c " (header: " hdr ")" > "/dev/stderr"; exit 2 }
            if (!skip) at = 0
        }
        NR <= at { next }
        !haskey || $1 == k { print $idx }
    '
}
col() {
    _col "$1" "$2" 1 "${3-}" "${3+1}" < "$1" || fail_now "col $*"
}
rowcol() {
    printf '%s\n' "$3" | _col "$1" "$2" 0 "" "" || fail_now "rowcol $1 $2"
}

# param NAME DEFAULT: NAME=VALUE from the kernel command line (scripts/vm-run
# --append "NAME=VALUE"), else DEFAULT. make test sizes the long tests so.
param() {
    for w in $(cat /proc/cmdline); do
        case $w in "$1="*) echo "${w#*=}"; return ;; esac
    done
    echo "$2"
}

# The module tests load again after an rmmod: the build without KUnit
# suites (vm-run ships it), so that the suites run once per boot, at the
# first insmod.
KO=/rkalloc/rkalloc-nokunit.ko
[ -e $KO ] || KO=/rkalloc/rkalloc.ko
# reload [PARAM=VALUE...]: unload rkalloc if it is loaded, load $KO.
reload() {
    if [ -d /sys/module/rkalloc ]; then rmmod rkalloc || fail "rmmod before a reload failed"; fi
    insmod $KO "$@" || fail "insmod $KO $* failed"
}

# Time since boot in hundredths of a second.
now_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }
# exited PID: the process is gone or a zombie (its files are closed: a
# dying task releases them before it becomes a zombie).
exited() {
    _s=$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null) || return 0
    [ -z "$_s" ] || [ "$_s" = Z ]
}
# wait_exit PID CENTISECONDS: wait until PID has exited; prints the
# hundredths of a second it took, or fails the test after CENTISECONDS.
wait_exit() {
    _t0=$(now_cs)
    while ! exited "$1"; do
        [ $(($(now_cs) - _t0)) -le "$2" ] || fail_now "process $1 still alive $(($2 / 100)).$(($2 % 100)) s after kill -9 ($(cat /proc/$1/task/*/wchan 2>/dev/null | tr '\0' ' '))"
        usleep 10000
    done
    echo $(($(now_cs) - _t0))
}

# A figure for scripts/test-all's summary (RKSTAT: NAME=VALUE).
rkstat() { echo "RKSTAT: $1=$2"; }

# assert_quiet WHAT: the module is as a fresh load leaves it once every fd
# is closed: no fd open, no heap, no arena, no slab cache but the size
# classes; after a shrink no pool page in use; the invariant checkers clean.
assert_quiet() {
    expect_eq "$(kv $D/info open_fds)" 0 "$1: open fds"
    expect_eq "$(col $D/heaps id | wc -l)" 0 "$1: heaps left"
    expect_eq "$(col $D/arenas id | wc -l)" 0 "$1: arenas left"
    expect_eq "$(col $D/slabinfo name | grep -vc '^rkmalloc-')" 0 "$1: slab caches besides the size classes"
    echo 1 > $D/shrink || fail "$1: write to $D/shrink failed"
    expect_eq "$(kv $D/pool used_pages)" 0 "$1: pool pages in use after a shrink"
    $RKCTL check > /dev/null || fail "$1: invariant check: $(cat $D/check)"
}

# The debug kernel (KASAN, DEBUG_PAGEALLOC, lockdep) is many times slower:
# long tests divide their operation counts by SCALE there.
if grep -q debug_pagealloc=on /proc/cmdline; then SCALE=10; DEBUG_KERNEL=1; else SCALE=1; DEBUG_KERNEL=0; fi
