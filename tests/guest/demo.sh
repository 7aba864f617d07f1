#!/bin/sh
# The demonstration `make run` shows: the pool, the allocators at work under
# rkctl, a short comparison with the kernel's allocators, the debugfs
# statistics, and a clean unload.
D=/sys/kernel/debug/rkalloc
R=/rkalloc/rkctl
step() { printf '\n==== %s\n' "$*"; }
set -e
step "guest: $(nproc) CPUs online; $(ls -l /dev/rkalloc | cut -c1-10) /dev/rkalloc (root only)"
step "rkctl info"
$R info
step "a fresh pool: $D/buddyinfo (the /proc/buddyinfo format)"
cat $D/buddyinfo
step "rkctl stress: 2 threads, every allocator, 3 seconds, everything filled and verified"
$R stress --threads 2 --duration 3 --quiet
step "what that left: buddyinfo, extfrag index, pool counters"
cat $D/buddyinfo
cat $D/extfrag/extfrag_index
head -14 $D/pool
step "slab caches and size classes: $D/slabinfo"
head -16 $D/slabinfo
step "a best-fit heap, step by step"
$R heap create:best-fit alloc:100 alloc:3000 alloc:40 free:1 show
step "the kernel's allocators against rkalloc's (a short run; make bench does it properly)"
$R bench --quick --repeats 1 --samples 8 --ops 512 --filter "order 0" 2>/dev/null
$R bench --quick --repeats 1 --samples 8 --ops 512 --filter "64 B objects, pair" 2>/dev/null | tail -4
step "invariant check, then give free memory back"
cat $D/check
echo 1 > $D/shrink
grep -E '^(total|free|used)_pages' $D/pool
step "rmmod rkalloc"
rmmod rkalloc
dmesg | grep 'rkalloc' | tail -3
