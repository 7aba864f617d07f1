# Fault injection (Documentation/fault-injection/), debug kernel only.
#  1. rkalloc's own fail points (/sys/kernel/debug/rkalloc/fail/: pool_grow,
#     pcp_refill, slab_refill, heap_grow, arena_grow) at 10%;
#  2. the kernel's failslab and fail_page_alloc at 10%, ignore-gfp-wait N
#     (sleeping allocations fail too);
# each time task-filtered to rkctl stress --make-it-fail (every worker
# thread marks itself after it opened its fd), while another process keeps
# shrinking the pool so that it has to grow again and again. Every injected
# failure must reach the caller as ENOMEM or be absorbed: stress exits 0
# (any other errno, a corruption or a failed final check fails it), the
# module comes back to a fresh load's state once the stress's fds are
# closed, the checkers stay clean, and kmemleak is still running for the
# scan at the end of the run (t-zz-unload-leaks).
# Each point must have failed at least once, or the test proved nothing.
# Faults are counted with the fault_attr's own `times` budget (a large
# finite budget behaves as -1 until it runs out, and counts down).
# On the default kernel (no CONFIG_FAULT_INJECTION, as Debian's) the test
# checks that the feature is absent: no fail/ directory, no failslab.
. ./lib.sh
DBG=/sys/kernel/debug
if [ "$DEBUG_KERNEL" = 0 ]; then
    [ -e $D/fail ] && fail "$D/fail exists on a kernel without fault injection"
    [ -e $DBG/failslab ] && fail "failslab exists on the default kernel"
    [ -e $DBG/fail_page_alloc ] && fail "fail_page_alloc exists on the default kernel"
    [ -e /proc/self/make-it-fail ] && fail "/proc/self/make-it-fail exists on the default kernel"
    echo "no fault injection on this kernel (CONFIG_FAULT_INJECTION off): $D has $(ls $D | tr '\n' ' ')"
    exit 0
fi
BUDGET=1000000000
ops=$(param rkfault_ops 20000)
points="pool_grow pcp_refill slab_refill heap_grow arena_grow"
# arm DIR: only marked tasks, quiet, every call a candidate, counted, and
# last 10%. The task filter goes first: with the probability set before it,
# every task fails (the shell's next write got ENOMEM, then init's fork, and
# the guest panicked).
arm() {
    echo Y > $1/task-filter && echo 0 > $1/verbose && echo 1 > $1/interval \
        && echo $BUDGET > $1/times && echo 10 > $1/probability || fail "cannot arm $1"
}
disarm() { echo 0 > $1/probability || fail "cannot disarm $1"; }
injected() { echo $((BUDGET - $(cat $1/times))); }
# faulty_stress NAME SEED KINDS: stress with make-it-fail while the pool is
# shrunk every 0.2 s; adds the ENOMEM the callers saw to $enomem_all.
faulty_stress() {
    rm -f /tmp/stress.done
    ( while [ ! -e /tmp/stress.done ]; do echo 1 > $D/shrink; usleep 200000; done ) &
    shrinker=$!
    $RKCTL --json stress --threads 2 --ops "$ops" --seed "$2" -a "$3" --max-order 10 --make-it-fail > /tmp/stress.json 2> /tmp/stress.err
    rc=$?
    touch /tmp/stress.done
    wait $shrinker
    [ $rc = 0 ] || { cat /tmp/stress.err /tmp/stress.json; fail "$1: stress -a $3 --seed $2 exited $rc under fault injection"; }
    grep -q '"corruptions": 0' /tmp/stress.json || fail "$1: $(grep corruptions /tmp/stress.json)"
    grep -q '"unexpected_errors": 0' /tmp/stress.json || fail "$1: $(grep unexpected_errors /tmp/stress.json)"
    grep -q '"check_ok": true' /tmp/stress.json || fail "$1: final check: $(grep check /tmp/stress.json)"
    enomem=$(grep -o '"enomem": [0-9]*' /tmp/stress.json | awk '{ n += $2 } END { print n + 0 }')
    refused=$(grep -o '"failures": [0-9]*' /tmp/stress.json | awk '{ n += $2 } END { print n + 0 }')
    echo "$1, seed $2: stress of $ops ops passed: $enomem ENOMEM returned to rkctl, $refused allocations refused inside conformance runs"
    enomem_all=$((enomem_all + enomem + refused))
}
# inject NAME FIRST-SEED KINDS DIR...: arm the fail points DIR..., run
# faulty_stress with new seeds until every point has failed at least once
# (at most 6 runs; a point that never fails was never tested), disarm, and
# check the module is back to a fresh load's state after every run.
inject() {
    name=$1 seed=$2 kinds=$3
    shift 3
    for f in "$@"; do arm $f; done
    run=0
    while :; do
        faulty_stress "$name" $seed "$kinds"
        assert_quiet "after $name, seed $seed"
        missing=""
        for f in "$@"; do [ "$(injected $f)" -gt 0 ] || missing="$missing ${f#$DBG/}"; done
        run=$((run + 1)) seed=$((seed + 1))
        [ -n "$missing" ] || break
        [ $run -lt 6 ] || fail "$name: no fault injected at$missing in $run runs of $ops ops: that path was never taken"
        echo "$name: no fault at$missing yet; another run"
    done
    line=""
    for f in "$@"; do
        disarm $f
        n=$(injected $f)
        line="$line ${f#$DBG/} $n"
        faults=$((faults + n))
    done
    echo "$name: injected$line in $run runs"
}
faults=0 enomem_all=0

# 1. rkalloc's fail points, under every kind of stress and every
# allocator's conformance run.
for p in $points; do [ -d $D/fail/$p ] || fail "no $D/fail/$p"; done
assert_quiet "before fault injection"
set --
for p in $points; do set -- "$@" $D/fail/$p; done
inject "rkalloc fail points" 31 pool,object,malloc,heap,arena,conform "$@"

# 2. The kernel's failslab and fail_page_alloc: sleeping allocations fail
# too, under every kind of stress. The commands that release memory
# (OBJ_FREE, HEAP_RESET, HEAP_DESTROY, ARENA_RESET) reserve
# their handle-table removals and may answer ENOMEM, as the header says;
# such a call changes nothing, and rkctl stress makes it again.
for a in failslab fail_page_alloc; do
    echo N > $DBG/$a/ignore-gfp-wait || fail "ignore-gfp-wait of $a"
done
echo N > $DBG/fail_page_alloc/ignore-gfp-highmem || fail "ignore-gfp-highmem of fail_page_alloc"
inject "failslab and fail_page_alloc" 41 pool,object,malloc,heap,arena,conform $DBG/failslab $DBG/fail_page_alloc

# kmemleak must still be running (its own metadata comes from a slab cache
# failslab may hit; when that and its reserve pool fail it turns itself
# off, and a later scan would find nothing for the wrong reason).
echo scan > $DBG/kmemleak || fail "kmemleak is off after fault injection: $(dmesg | grep kmemleak | tail -3)"
echo "$faults faults injected and survived; $enomem_all failures reached rkctl as ENOMEM (or as refusals counted by conformance runs)"
rkstat faults_injected $faults
rkstat fault_enomem $enomem_all
