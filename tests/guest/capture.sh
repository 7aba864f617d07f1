# Guest side of scripts/capture-trace (not a test): records allocation
# events through tracefs while a workload runs and converts the first OPS
# of them into rkctl replay's format (`a ID SIZE`, `f ID`, with
# events2trace.awk: ids in order of allocation, no pointer or id of the
# kernel's) in /out/EVENTS-WORKLOAD.trace; the raw tracefs lines they come
# from go to /out/EVENTS-WORKLOAD.events (rkalloc's keep the allocator,
# page order and gfp flags of each event, which the replay format drops).
#   sh capture.sh EVENTS OPS WORKLOAD...
# EVENTS: kmem     the kernel's kmem:kmalloc and kmem:kfree
#         rkalloc  rkalloc's own rkalloc:rk_alloc and rkalloc:rk_free
# WORKLOAD: fs (find / and reading /proc, /sys and rkalloc's debugfs),
#   exec (short processes and pipes), module (rmmod and insmod of rkalloc),
#   stress (rkctl stress of every kind and allocator, 2 threads),
#   replay (rkctl replay of the shipped synthetic traces on every allocator)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ev=$1 ops=$2; shift 2
T=/sys/kernel/tracing
case $ev in
    kmem) events="kmem/kmalloc kmem/kfree" ;;
    rkalloc) events="rkalloc/rk_alloc rkalloc/rk_free" ;;
    *) echo "capture: unknown events $ev (kmem or rkalloc)"; exit 1 ;;
esac
for e in $events; do
    [ -d $T/events/$e ] || { echo "capture: no event $e under $T (CONFIG_FTRACE, event tracing, rkalloc loaded?)"; exit 1; }
done
workload() {
    case $1 in
        fs) find / -xdev >/dev/null 2>&1 || true
            for f in /proc/[0-9]*/status /proc/[0-9]*/maps /proc/meminfo /proc/slabinfo /sys/kernel/debug/rkalloc/*; do
                cat "$f" >/dev/null 2>&1 || true
            done
            ls -lR /sys/class /sys/devices/system >/dev/null 2>&1 || true ;;
        exec) i=0
            while [ $i -lt 100 ]; do
                ls -l /proc/self/ | sort | wc -l >/dev/null; sh -c 'echo $$' >/dev/null
                i=$((i + 1))
            done ;;
        module) rmmod rkalloc && insmod /rkalloc/rkalloc.ko >/dev/null ;;
        stress) /rkalloc/rkctl stress --threads 2 --ops 4000 --seed 1 --quiet >/dev/null ;;
        replay) for t in "$here"/traces/synth-*.trace; do
                /rkalloc/rkctl replay --repeats 1 "$t" >/dev/null
            done ;;
        *) echo "capture: unknown workload $1"; exit 1 ;;
    esac
}
mkdir -p /out
for w in "$@"; do
    echo 0 > $T/tracing_on
    echo > $T/trace
    echo 8192 > $T/buffer_size_kb
    for e in $events; do echo 1 > $T/events/$e/enable; done
    echo 1 > $T/tracing_on
    workload "$w"
    echo 0 > $T/tracing_on
    for e in $events; do echo 0 > $T/events/$e/enable; done
    grep -q 'entries-in-buffer/entries-written: \([0-9]*\)/\1 ' $T/trace \
        || echo "capture: $w: the trace buffer overflowed ($(grep entries-in-buffer $T/trace)): the trace has gaps"
    awk -v max="$ops" -v w="$w" -v ev="$ev" -v raw=/out/$ev-$w.events -f "$here/events2trace.awk" $T/trace > /out/$ev-$w.trace
    echo "capture: $ev $w: $(grep -c '^a' /out/$ev-$w.trace) allocs, $(grep -c '^f' /out/$ev-$w.trace) frees"
done
