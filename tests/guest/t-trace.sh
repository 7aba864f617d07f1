# Tracepoints and traces.
#  - rkalloc:rk_alloc and rkalloc:rk_free fire during rkctl stress, in
#    tracefs's trace file, with the allocator or cache that served each
#    block (rk_pool, rk_heap, rk_arena, a size class rkmalloc-N, the
#    stress's own cache "stress", rk_slab's cache "rk_bench"), bytes and
#    order that agree, and an id
#    that is a keyed hash, not an address: ids pair allocations with their
#    frees, and almost none looks like a kernel address (a hash begins with
#    ffff once in 65536; every address of the direct map, vmalloc or the
#    module area does). With the events off, nothing is recorded.
#  - The guest's own kmem:kmalloc/kmem:kfree capture (capture.sh, the guest
#    side of scripts/capture-trace), imported with rkctl import --from
#    trace-cmd (tracefs's trace file is trace-cmd's format), gives the same
#    trace as capture.sh's converter, keeps no pointer, and replays on
#    every allocator that can serve it; so does a capture of rkalloc's own
#    events during a stress.
. ./lib.sh
T=/sys/kernel/tracing
for e in rk_alloc rk_free; do [ -d $T/events/rkalloc/$e ] || fail "no tracepoint rkalloc:$e in $T/events"; done
tracing() { # on|off
    v=0; [ "$1" = on ] && v=1
    echo $v > $T/events/rkalloc/rk_alloc/enable && echo $v > $T/events/rkalloc/rk_free/enable || fail "cannot switch the rkalloc events $1"
}
echo 0 > $T/tracing_on; echo > $T/trace; echo 8192 > $T/buffer_size_kb
# Ids must pair in the order the events happened. The default clock is
# per CPU: two CPUs' events may tie (UML's clock ticks in 256 ns) or skew,
# and the merged trace then puts a reused block's rk_alloc before the
# rk_free that released it. The counter clock, one atomic count for all
# CPUs, orders them exactly (the module fires rk_free before it releases a
# block); the kmem capture below needs a real clock again.
clock0=$(sed -n 's/.*\[\([a-z0-9-]*\)\].*/\1/p' $T/trace_clock)
echo counter > $T/trace_clock || fail "no counter trace clock"
echo 1 > $T/tracing_on

# trace_stress KINDS: the events of one stress run, in /tmp/ev (only the
# event's fields: "rk_alloc allocator=... id=... bytes=... order=...").
trace_stress() {
    echo > $T/trace
    tracing on
    $RKCTL stress -a "$1" --threads 2 --ops $((4000 / SCALE)) --seed 61 --max-order 10 --quiet > /tmp/stress.out 2>&1 || { cat /tmp/stress.out; fail "stress -a $1"; }
    tracing off
    grep -q 'entries-in-buffer/entries-written: \([0-9]*\)/\1 ' $T/trace || fail "the trace buffer overflowed: $(grep entries-in-buffer $T/trace)"
    sed -n 's/.* \(rk_alloc\|rk_free\): /\1 /p' $T/trace > /tmp/ev
    na=$(grep -c '^rk_alloc ' /tmp/ev) nf=$(grep -c '^rk_free ' /tmp/ev)
    [ "$na" -gt 0 ] && [ "$nf" -gt 0 ] || fail "stress -a $1: $na rk_alloc and $nf rk_free events"
    names=$(sed -n 's/.* allocator=\([^ ]*\) .*/\1/p' /tmp/ev | sort -u | tr '\n' ' ')
    echo "stress -a $1: $na rk_alloc, $nf rk_free events; allocators: $names"
}
# only NAME-PATTERN: every event's allocator matches the extended regex.
only() {
    bad=$(sed -n 's/.* allocator=\([^ ]*\) .*/\1/p' /tmp/ev | grep -vxE "$1" | sort -u | tr '\n' ' ')
    [ -z "$bad" ] || fail "events of allocators outside $1: $bad"
}
classes=$(col $D/slabinfo name | grep '^rkmalloc-' | tr '\n' '|')
classes=${classes%|}
[ -n "$classes" ] || fail "no size classes in slabinfo"

# paired REGEX: among the events of the allocators REGEX matches, every
# free names an id allocated earlier in the trace (and not freed since),
# and every allocation is freed by the end.
paired() {
    awk -v re="^($1)\$" '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
           if (f["allocator"] !~ re) next
           if ($1 == "rk_alloc") { if (f["id"] in live) { print "id " f["id"] " allocated twice"; bad = 1 }; live[f["id"]] = 1 }
           else if (f["id"] in live) delete live[f["id"]]
           else { print "free of id " f["id"] " never allocated"; bad = 1 } }
         END { for (i in live) n++; if (n) print n " ids never freed"; exit bad || n }' /tmp/ev \
        || fail "the ids of $1 do not pair allocations with frees"
}
# The page pool: bytes are 4 KiB << order, and ids pair (after a shrink no
# cache holds a block from before; the stress frees all it holds).
echo 1 > $D/shrink
trace_stress pool
only rk_pool
awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
       b = 4096; for (o = 0; o < f["order"]; o++) b *= 2
       if (f["order"] < 0 || f["bytes"] != b) { print "bytes " f["bytes"] " at order " f["order"]; bad = 1 } }
     END { exit bad }' /tmp/ev || fail "rk_pool events whose bytes are not 4 KiB << order"
paired rk_pool
ids=$(grep -c ' id=' /tmp/ev)
grep -vqE ' id=[0-9a-f]{16} ' /tmp/ev && fail "ids that are not 16 hex digits: $(grep -vE ' id=[0-9a-f]{16} ' /tmp/ev | head -2)"
kernelish=$(grep -cE ' id=ffff' /tmp/ev)
[ $((kernelish * 100)) -lt "$ids" ] || fail "$kernelish of $ids ids begin with ffff: they look like kernel addresses"
grep -q 'gfp_flags=GFP_KERNEL' /tmp/ev || fail "no gfp_flags in rk_alloc events"

# Objects of the size classes and of the stress's caches pair too. Heaps,
# arenas and the pool blocks under rk_malloc are not checked for pairs:
# the module does not fire every event there (reported): heap blocks freed
# by a reset or destroy have no rk_free; arena allocations made through
# RKALLOC_IOC_ARENA_ALLOC have no rk_alloc (only those of bench, replay and
# conformance runs do); some pool blocks of rk_malloc and the slabs come
# back to the pool without an rk_free.
trace_stress malloc
only "$classes|rk_pool"
paired "$classes"
trace_stress heap
only "rk_heap|rk_pool"
trace_stress arena
only "rk_arena|rk_pool"
trace_stress object
only "stress|rk_pool"
paired stress
# Everything at once, conformance runs of every allocator included: the
# names are those of the allocator table's allocators that trace (rk_pool,
# rk_arena), the heaps' rk_heap, the size classes, the stress's caches and
# rk_slab's cache rk_bench; each of them is seen.
trace_stress pool,object,malloc,heap,arena,conform
only "rk_pool|rk_heap|rk_arena|stress|rk_bench|$classes"
for n in rk_pool rk_heap rk_arena stress rk_bench rkmalloc-64; do
    grep -q " allocator=$n " /tmp/ev || fail "no event of $n in a stress of everything"
done
# Off means off.
echo > $T/trace
$RKCTL stress --threads 2 --ops 500 --quiet > /dev/null || fail "stress with the events off"
grep -q 'rk_alloc:\|rk_free:' $T/trace && fail "events recorded while they were off"

echo "${clock0:-local}" > $T/trace_clock || fail "cannot set the trace clock back to $clock0"
# rkctl import of the guest's own kmem capture (capture.sh, the guest side
# of scripts/capture-trace, keeps the raw tracefs lines too).
sh ./capture.sh kmem 100000 fs || fail "capture.sh kmem"
cp /out/kmem-fs.events /tmp/kmem.txt
events=$(grep -c ' kmalloc: ' /tmp/kmem.txt)
[ "$events" -gt 100 ] || fail "only $events kmalloc events captured"
$RKCTL import --from trace-cmd /tmp/kmem.txt -o /tmp/kmem.trace || fail "rkctl import --from trace-cmd"
a=$(grep -c '^a ' /tmp/kmem.trace) f=$(grep -c '^f ' /tmp/kmem.trace)
echo "import: $events kmalloc events -> $a allocations, $f frees"
[ "$a" -gt 100 ] && [ "$a" -le "$events" ] && [ "$f" -le "$a" ] || fail "import: $a allocations and $f frees from $events kmalloc events"
# No pointer kept: ids are 0, 1, 2... in allocation order, sizes positive.
awk '/^a / { if ($2 != n++ || $3 <= 0) { print; bad = 1 } } /^[^#af]/ { print; bad = 1 } END { exit bad }' /tmp/kmem.trace \
    || fail "imported trace: ids not dense in allocation order, or a bad line"
addr=$(grep -ciE 'ffff[89a-f][0-9a-f]{11}' /tmp/kmem.trace) && fail "the imported trace holds $addr pointers"
# capture.sh's own converter made the same ops from the same lines.
grep -v '^#' /tmp/kmem.trace > /tmp/kmem-import.ops
grep -v '^#' /out/kmem-fs.trace > /tmp/kmem-awk.ops
cmp -s /tmp/kmem-import.ops /tmp/kmem-awk.ops || { diff /tmp/kmem-import.ops /tmp/kmem-awk.ops | head; fail "rkctl import and capture.sh's converter disagree"; }
$RKCTL --json replay --repeats 1 /tmp/kmem.trace > /tmp/replay.json || { cat /tmp/replay.json; fail "replay of the imported trace"; }
ran=$(grep -c '"skipped": null' /tmp/replay.json)
[ "$ran" -ge 4 ] || fail "only $ran allocators replayed the imported trace"
echo "replayed the imported trace on $ran allocators"
# rkalloc's own events as a trace (scripts/capture-trace --events rkalloc):
# a stress of every kind, replayed in turn on every allocator.
sh ./capture.sh rkalloc 20000 stress || fail "capture.sh rkalloc"
a=$(grep -c '^a ' /out/rkalloc-stress.trace)
[ "$a" -gt 1000 ] || fail "only $a allocations in the capture of rkalloc's events"
grep -q ' rk_alloc: allocator=' /out/rkalloc-stress.events || fail "no raw rk_alloc lines kept"
$RKCTL --json replay --repeats 1 /out/rkalloc-stress.trace > /tmp/replay.json || { cat /tmp/replay.json; fail "replay of rkalloc's own events"; }
ran=$(grep -c '"skipped": null' /tmp/replay.json)
[ "$ran" -ge 4 ] || fail "only $ran allocators replayed rkalloc's own events"
echo "rkalloc's own events: $a allocations, replayed on $ran allocators"
rm -f /out/kmem-fs.* /out/rkalloc-stress.*
assert_quiet "after tracing"
