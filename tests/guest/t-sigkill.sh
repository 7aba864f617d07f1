# kill -9 stops rkalloc's long commands and every kind of stress within 2
# seconds, and everything the process held is given back:
#  - a bench of vmalloc (16 KiB pairs, ops 2^24, samples 1024: hours of
#    work), a replay of a trace of 8 MiB vmalloc allocations, and a
#    conformance run of vmalloc with 2^24 steps, each killed while it is
#    inside its ioctl (its threads burn system time, not user time);
#  - rkctl stress on every kind (pool, object, malloc, heap, arena) and a
#    conformance stress of every allocator of the module's table, each
#    killed in the middle of its run.
# After each: the process is gone within 2 s (it was killed inside the
# kernel: the ioctl saw the fatal signal), no fd is open, no heap, arena or
# cache is left, a shrink leaves no pool page in use and the checkers are
# clean. At the end rmmod works.
. ./lib.sh
pid=""
trap '[ -z "$pid" ] || kill -9 $pid 2>/dev/null' EXIT
# ticks PID: user and system clock ticks of all of PID's threads.
ticks() { cat /proc/$1/task/*/stat 2>/dev/null | awk '{ u += $14; s += $15 } END { print u + 0, s + 0 }'; }
# in_kernel PID WHAT: wait (up to 30 s) until PID spends half a second
# almost only in system time: inside the ioctl, not parsing its input.
in_kernel() {
    i=0
    while [ $i -lt 60 ]; do
        exited "$1" && fail "$2 exited before it could be killed: $(cat /tmp/victim.out)"
        set -- "$1" "$2" $(ticks "$1")
        usleep 500000
        set -- "$1" "$2" "$3" "$4" $(ticks "$1")
        du=$(($5 - $3)) ds=$(($6 - $4))
        if [ $ds -ge 20 ] && [ $du -le 5 ]; then
            echo "$2: in the kernel (0.5 s: $ds system ticks, $du user)"
            return
        fi
        i=$((i + 1))
    done
    fail "$2 never settled inside its ioctl (last 0.5 s: $ds system ticks, $du user)"
}
# kill_now PID WHAT: kill -9, then it must be gone within 2 s and have
# given everything back.
kill_now() {
    kill -9 "$1" || fail "kill -9 $2"
    cs=$(wait_exit "$1" 200) || exit 1
    wait "$1" 2>/dev/null
    echo "$2: gone $((cs / 100)).$(printf %02d $((cs % 100))) s after kill -9"
    assert_quiet "after killing $2"
}

assert_quiet "before the kills"

# Long ioctls.
$RKCTL bench --alloc vmalloc --filter "malloc 16384 B" --ops 16777216 --samples 1024 --repeats 1 > /tmp/victim.out 2>&1 &
pid=$!
in_kernel $pid "bench (vmalloc, 16 KiB, ops 2^24, samples 1024)"
kill_now $pid "bench"

# 8 MiB a block: one vmalloc and vfree of it takes about 0.25 s on the
# debug kernel (64 MiB took 1.8 s, all of the time allowed), so the time
# to die measures the replay's own check of the signal.
awk 'BEGIN { for (i = 0; i < 100000; i++) { print "a " i " 8388608"; print "f " i } }' > /tmp/long.trace
$RKCTL replay --alloc vmalloc --repeats 1 /tmp/long.trace > /tmp/victim.out 2>&1 &
pid=$!
in_kernel $pid "replay (100000 vmalloc allocations of 8 MiB)"
kill_now $pid "replay"
rm -f /tmp/long.trace

$RKCTL stress -a conform:vmalloc --conform-ops 16777216 --threads 1 --duration 600 --quiet > /tmp/victim.out 2>&1 &
pid=$!
in_kernel $pid "conformance run (vmalloc, 2^24 steps)"
kill_now $pid "conformance run"

# Stress on every kind and every allocator's conformance: killed in the
# middle (after a second on the default kernel, more on the debug one).
kinds="pool object malloc heap arena"
allocs=$(col $D/allocators name)
expect_eq "$(echo "$allocs" | wc -l)" "$(kv $D/info nr_allocators)" "allocators in $D/allocators"
pause=1000000
[ "$DEBUG_KERNEL" = 0 ] || pause=2000000
n=0
for a in $kinds $(for x in $allocs; do echo conform:$x; done); do
    $RKCTL stress -a "$a" --threads 2 --duration 600 --conform-ops 100000 --max-live 1024 --quiet > /tmp/victim.out 2>&1 &
    pid=$!
    usleep $pause
    exited $pid && fail "stress -a $a ended before the kill: $(cat /tmp/victim.out)"
    kill_now $pid "stress -a $a"
    n=$((n + 1))
done
echo "killed $n stress runs ($(echo $kinds | wc -w) kinds, $(echo "$allocs" | wc -l) conformance runs)"

# Nothing holds the module any more.
rmmod rkalloc || fail "rmmod after the kills"
reload
