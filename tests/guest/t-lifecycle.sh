# Lifecycle torture: rklife= rounds (kernel command line; default 50;
# make test runs 50 on the default kernel and 10 on the debug one) of
# insmod, a short stress on every kind and allocator (rklife_ops= ops,
# default 600), rmmod. Each round must load and unload cleanly (device and
# debugfs directory come and go, no "still in use" at teardown), and leave
# MemFree where the first round left it, within 2 MiB.
#
# Why 2 MiB: what the module takes from the page allocator comes in 4 MiB
# chunks (the pool's alloc_pages(MAX_PAGE_ORDER) blocks, its slabs and heap
# regions live inside them), so one lost chunk in any round, or anything
# that adds up to 2 MiB over the rounds (40 KiB a round over 50), fails.
# The kernel's own noise after an rmmod and a drop_caches stays within
# about 0.7 MiB on the default guest (MemFree drifts up a little as boot-time
# memory is freed); on the debug kernel freed slab objects wait in KASAN's
# quarantine (up to 1/32 of RAM), so every cache is shrunk first, which
# empties it. Smaller leaks of slab objects are kmemleak's to find
# (t-zz-unload-leaks, debug kernel).
. ./lib.sh
rounds=$(param rklife 50)
ops=$(param rklife_ops 600)
TOL_KB=2048
# settled_free: free memory (kB) once page cache and slab caches are
# dropped and (debug kernel) KASAN's quarantine is flushed: MemFree plus
# the pages on the kernel's own per-CPU lists (the "count" of every
# pageset in /proc/zoneinfo), which MemFree does not count and which move
# by a few MiB between rounds.
settled_free() {
    sync
    echo 3 > /proc/sys/vm/drop_caches
    if [ "$DEBUG_KERNEL" = 1 ]; then
        for s in /sys/kernel/slab/*/shrink; do echo 1 > "$s" 2>/dev/null; done
    fi
    pcp=$(awk '$1 == "count:" { n += $2 } END { print n * 4 }' /proc/zoneinfo)
    awk -v pcp="$pcp" '/^MemFree:/ { print $2 + pcp }' /proc/meminfo
}
# What the module says when it finds memory in use at teardown.
msgs() { dmesg | grep 'rkalloc: .*\(teardown\|still in use\|leaked\|refused\)'; }
[ -d /sys/module/rkalloc ] && { rmmod rkalloc || fail "rmmod before the rounds"; }
ref="" min="" max=""
i=1
while [ $i -le "$rounds" ]; do
    dmesg -c > /dev/null
    insmod $KO || fail "round $i: insmod $KO"
    [ -c /dev/rkalloc ] || fail "round $i: no /dev/rkalloc after insmod"
    $RKCTL stress --threads 2 --ops "$ops" --seed "$i" --quiet > /tmp/stress.out 2>&1 \
        || { cat /tmp/stress.out; fail "round $i: stress failed"; }
    rmmod rkalloc || fail "round $i: rmmod"
    [ -e /dev/rkalloc ] && fail "round $i: /dev/rkalloc still there after rmmod"
    [ -e $D ] && fail "round $i: $D still there after rmmod"
    bad=$(msgs) && fail "round $i: the module found memory in use: $bad"
    dmesg | grep -q 'rkalloc: unloaded' || fail "round $i: no unload message"
    free=$(settled_free)
    if [ -z "$ref" ]; then
        ref=$free min=$free max=$free
    else
        [ "$free" -lt "$min" ] && min=$free
        [ "$free" -gt "$max" ] && max=$free
        [ $((ref - free)) -le $TOL_KB ] \
            || fail "round $i: free memory $free kB, $((ref - free)) kB below round 1's $ref kB (tolerance $TOL_KB kB)"
    fi
    echo "round $i: free $free kB ($((free - ref)) kB against round 1)"
    i=$((i + 1))
done
echo "$rounds rounds: free memory (MemFree + kernel per-CPU lists) after rmmod from $min to $max kB (round 1: $ref kB; tolerance $TOL_KB kB below it)"
rkstat lifecycle_rounds "$rounds"
insmod $KO || fail "insmod after the rounds"
