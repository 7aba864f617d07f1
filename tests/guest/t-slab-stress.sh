# Slab caches (some with red zones, poison and debug checks) and rk_malloc
# under 4 threads on 2 vCPUs: batches in and out, caches destroyed and
# made anew, every object filled and verified; no corruption, no
# violation, the invariants hold and everything goes back.
. ./lib.sh
$RKCTL stress --alloc object,malloc --threads 4 --duration 3 --seed 12 --max-live 1024 --quiet || fail "stress failed"
$RKCTL stress --alloc object --threads 2 --ops $((30000 / SCALE)) --seed 13 --max-live 4096 --quiet || fail "object stress failed"
$RKCTL check >/dev/null || fail "invariant check failed"
bad=$(grep -v ' violations=0 ' $D/slabstats) && fail "violations reported: $bad"
# The fds' caches went away with them: only the size classes are left.
expect_eq "$(tail -n +3 $D/slabinfo | grep -vc '^rkmalloc-')" 0 "caches left after the fds closed"
echo 1 > $D/shrink
expect_eq "$(kv $D/pool used_pages)" 0 "pool pages used after shrink"
