# rkctl fuzz, 2 threads: at least rkfuzz= calls (kernel command line; by
# default 100000, 20000 on the debug kernel) in runs of at most
# rkfuzz_chunk= calls (default 100000), each with its own seed, from
# rkfuzz_seed= on (default 1). A run passes only if every call returned 0 or
# an errno the header lists for its command, no output held a kernel
# address, the kernel log stayed free of reports, CHECK stayed clean and
# the pool, slab caches, heaps and arenas came back to their baseline once
# the fuzzer's fds closed (rkctl fuzz --help). Each run's seed is printed;
# a failed run prints its failures and how to replay it.
. ./lib.sh
if [ "$DEBUG_KERNEL" = 1 ]; then want=$(param rkfuzz 20000); else want=$(param rkfuzz 100000); fi
chunk=$(param rkfuzz_chunk 100000)
seed=$(param rkfuzz_seed 1)
case "$want$chunk$seed" in *[!0-9]*) fail "rkfuzz=$want rkfuzz_chunk=$chunk rkfuzz_seed=$seed: not numbers" ;; esac
[ "$chunk" -gt 0 ] || fail "rkfuzz_chunk=0"
done_calls=0 runs=0 seeds=""
while [ "$done_calls" -lt "$want" ]; do
    n=$((want - done_calls))
    [ "$n" -le "$chunk" ] || n=$chunk
    [ "$n" -ge 100 ] || n=100
    t0=$(now_cs)
    $RKCTL fuzz --threads 2 --calls "$n" --seed "$seed" > /tmp/fuzz.txt 2>&1
    rc=$?
    t=$(($(now_cs) - t0))
    if [ $rc != 0 ]; then
        cat /tmp/fuzz.txt
        fail "rkctl fuzz --threads 2 --calls $n --seed $seed exited $rc (replay: rkctl fuzz --threads 1 --calls $n --seed $seed)"
    fi
    grep -q '^verdict: PASS' /tmp/fuzz.txt || { cat /tmp/fuzz.txt; fail "fuzz seed $seed: no PASS verdict"; }
    grep -q '^kernel log: followed, 0 reports' /tmp/fuzz.txt || { cat /tmp/fuzz.txt; fail "fuzz seed $seed did not follow the kernel log, or saw a report"; }
    calls=$(sed -n 's/^fuzz: seed [0-9]*, 2 threads, [0-9]* fds: \([0-9]*\) calls in .*/\1/p' /tmp/fuzz.txt)
    [ -n "$calls" ] && [ "$calls" -gt 0 ] || { cat /tmp/fuzz.txt; fail "fuzz seed $seed: no call count in its summary"; }
    grep '^fuzz: seed' /tmp/fuzz.txt
    echo "fuzz seed $seed: $calls calls in $((t / 100)).$((t % 100 / 10)) s of guest time"
    rkstat fuzz_calls "$calls"
    done_calls=$((done_calls + calls)) runs=$((runs + 1)) seeds="$seeds $seed"
    seed=$((seed + 1))
done
echo "fuzz: $done_calls calls in $runs runs, seeds$seeds"
rkstat fuzz_seeds "$(echo $seeds | tr ' ' ,)"
assert_quiet "after fuzzing"
