# Guest side of scripts/capture-trace (not a test): records the kernel's own
# kmem:kmalloc and kmem:kfree tracepoints through tracefs while a workload
# runs, and converts the first OPS events into rkctl replay's format
# (`a ID SIZE`, `f ID`, with kmem2trace.awk: ids in order of allocation, no
# pointer) in /out/kmem-WORKLOAD.trace.
#   sh capture-kmem.sh OPS WORKLOAD...   (workloads: fs exec module)
set -eu
ops=$1; shift
T=/sys/kernel/tracing
[ -d $T/events/kmem/kmalloc ] || { echo "capture: no kmem events under $T (CONFIG_FTRACE, event tracing?)"; exit 1; }
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
        *) echo "capture: unknown workload $1"; exit 1 ;;
    esac
}
for w in "$@"; do
    echo 0 > $T/tracing_on
    echo > $T/trace
    echo 8192 > $T/buffer_size_kb
    echo 1 > $T/events/kmem/kmalloc/enable
    echo 1 > $T/events/kmem/kfree/enable
    echo 1 > $T/tracing_on
    workload "$w"
    echo 0 > $T/tracing_on
    echo 0 > $T/events/kmem/kmalloc/enable
    echo 0 > $T/events/kmem/kfree/enable
    awk -v max="$ops" -v w="$w" -f "$(dirname "$0")/kmem2trace.awk" $T/trace > /out/kmem-$w.trace
    echo "capture: $w: $(grep -c '^a' /out/kmem-$w.trace) allocs, $(grep -c '^f' /out/kmem-$w.trace) frees"
done
