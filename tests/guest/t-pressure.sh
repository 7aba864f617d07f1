# Memory pressure: a hog fills the guest's RAM with anonymous memory (a dd
# whose buffer is all the free memory but 8 MiB; no swap, so only reclaim
# of caches and the shrinkers can make room, and the OOM killer picks the
# hog first), then rkctl stress runs on every kind (pool orders up to 10)
# while the hog holds it. The kernel's reclaim must call rkalloc's shrinker
# (chunks_shrunk moves: wholly free pool chunks go back), the stress must
# keep working (ENOMEM is allowed and counted; any other error, a
# corruption or a failed check fails it) and everything comes back once
# it ends.
. ./lib.sh
dur=$(param rkpressure_secs 10)
# The test's processes are never the OOM killer's choice; the hog always is.
echo -1000 > /proc/self/oom_score_adj || fail "cannot set oom_score_adj"
assert_quiet "before the pressure"
# Free chunks for the shrinker: grow the pool (at least 32 MiB), then give
# the memory back to it (not to the kernel).
$RKCTL stress -a pool --threads 2 --ops 4000 --max-order 10 --max-live 256 --seed 41 --quiet || fail "stress to grow the pool"
grown=$(kv $D/pool total_pages)
shrunk0=$(kv $D/pool chunks_shrunk)
echo "pool: $grown pages, $(kv $D/pool used_pages) used, chunks shrunk so far $shrunk0"
[ "$grown" -ge 8192 ] || fail "the pool holds only $grown pages after a stress of top-order blocks: too little for the shrinker to show"

# dd_hog BLOCKSIZE COUNT: a dd that holds a buffer of BLOCKSIZE, filled COUNT
# times, and is the OOM killer's first choice.
dd_hog() {
    sh -c "echo 1000 > /proc/self/oom_score_adj; exec dd if=/dev/zero of=/dev/null bs=$1 count=$2 2>/dev/null"
}
# The hog: all free memory but 8 MiB, in one buffer dd fills and then
# fills again and again; when the OOM killer takes it, another starts.
rm -f /tmp/hog.stop /tmp/hog.log
(
    while [ ! -e /tmp/hog.stop ]; do
        kb=$(awk '/^MemFree:/ { print $2 - 8192 }' /proc/meminfo)
        [ "$kb" -gt 65536 ] || kb=65536
        dd_hog "${kb}k" 1000000
        echo "hog: dd of ${kb} kB ended with $?" >> /tmp/hog.log
    done
) &
hog=$!
trap 'touch /tmp/hog.stop; kill -9 $pid $(pidof dd) 2>/dev/null' EXIT
# Until the hog has filled the memory (about 9 s on the default guest).
# The hog sizes itself by MemFree when it starts, but reclaim goes on while
# it fills: the shrinker hands rkalloc's free chunks back (52 MiB and more)
# and MemFree can settle above the mark with the hog full and alive (CI
# once saw 79,560 kB for 120 s). So when MemFree has stopped falling for
# 3 s above the mark, a top-up dd takes what is free but 8 MiB; the OOM
# killer takes hogs only, and a killed hog restarts at the new size.
i=0
prev=0
still=0
while :; do
    f=$(awk '/^MemFree:/ { print $2 }' /proc/meminfo)
    [ "$f" -lt 65536 ] && break
    [ $i -lt 120 ] || fail "the hog did not fill the memory in 120 s: $(grep MemFree /proc/meminfo); $(cat /tmp/hog.log 2>/dev/null)"
    # Falling by less than 1 MiB a second: nothing is filling.
    if [ $i -gt 0 ] && [ $((prev - f)) -lt 1024 ]; then still=$((still + 1)); else still=0; fi
    if [ $still -ge 3 ]; then
        dd_hog "$((f - 8192))k" 1000000 &
        echo "hog: top-up dd of $((f - 8192)) kB after ${i} s" >> /tmp/hog.log
        still=0
    fi
    prev=$f
    sleep 1; i=$((i + 1))
done
shrunk1=$(kv $D/pool chunks_shrunk)
echo "memory full after ${i} s (MemFree $(awk '/^MemFree:/ { print $2 }' /proc/meminfo) kB); the shrinker gave back $((shrunk1 - shrunk0)) chunks meanwhile"
# While memory is full, a second process takes 32 MiB again and again:
# reclaim must find it each time, and rkalloc's free chunks are most of
# what it can take (the kernel defers small shrinker scans, so the hog's
# one fill of memory sometimes ended above the watermarks with no
# shrinker called).
(
    while [ ! -e /tmp/hog.stop ]; do
        dd_hog 32M 2
    done
) &
nibbler=$!
# Stress under full memory: every page it needs comes from reclaim.
$RKCTL --json stress --threads 2 --duration "$dur" --max-order 10 --seed 42 > /tmp/stress.json 2> /tmp/stress.err &
pid=$!
low=""
while ! exited $pid; do
    f=$(awk '/^MemFree:/ { print $2 }' /proc/meminfo)
    if [ -z "$low" ] || [ "$f" -lt "$low" ]; then low=$f; fi
    sleep 1
done
wait $pid
rc=$?
shrunk2=$(kv $D/pool chunks_shrunk)
touch /tmp/hog.stop
kill $(pidof dd) 2>/dev/null
wait $hog $nibbler
cat /tmp/hog.log 2>/dev/null
[ $rc = 0 ] || { cat /tmp/stress.err /tmp/stress.json; fail "stress exited $rc under memory pressure"; }
enomem=$(grep -o '"enomem": [0-9]*' /tmp/stress.json | awk '{ n += $2 } END { print n + 0 }')
refused=$(grep -o '"failures": [0-9]*' /tmp/stress.json | awk '{ n += $2 } END { print n + 0 }')
echo "stress under pressure (MemFree down to $low kB) ran $dur s: $enomem ENOMEM, $refused refusals in conformance runs; the shrinker gave back $((shrunk2 - shrunk1)) chunks during the stress, $((shrunk2 - shrunk0)) in all"
[ "$shrunk2" -gt "$shrunk0" ] || fail "rkalloc's shrinker gave nothing back under memory pressure (chunks_shrunk stayed $shrunk0)"
rkstat pressure_chunks_shrunk $((shrunk2 - shrunk0))
assert_quiet "after the pressure"
