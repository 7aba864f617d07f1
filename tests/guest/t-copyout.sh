# A call whose result cannot be copied back (its argument, or the handle
# array, on a read-only page) answers EFAULT and changes nothing: for every
# command that allocates, frees or resets, rkctl copyout compares the fd's
# bytes, caches, heaps, the pool's pages, the slab caches' live objects,
# every handle's contents and the heap's and arena's live allocations
# before and after, then makes the same call on a writable page (it must
# succeed) and frees everything.
. ./lib.sh
out=$($RKCTL copyout 2>&1)
rc=$?
echo "$out"
[ $rc = 0 ] || fail "rkctl copyout exited $rc"
echo "$out" | grep -v '^PASS ' && fail "rkctl copyout printed a line that is not a PASS"
n=$(echo "$out" | grep -c '^PASS ')
# One line per command that allocates, frees or resets (20 cases today:
# POOL_ALLOC, FREE of each kind, MALLOC, OBJ_ALLOC, OBJ_FREE, CACHE_*,
# HEAP_*, ARENA_*, POOL_STATS with its reset): fewer means cases vanished.
[ "$n" -ge 20 ] || fail "only $n copy-out cases ran"
for c in POOL_ALLOC FREE MALLOC OBJ_ALLOC OBJ_FREE CACHE_CREATE CACHE_DESTROY HEAP_CREATE HEAP_ALLOC HEAP_RESET HEAP_DESTROY ARENA_ALLOC ARENA_RESET; do
    echo "$out" | grep -q "^PASS $c[ :]" || fail "no copy-out case for $c"
done
assert_quiet "after rkctl copyout"
