# Under memory pressure (drop_caches runs every shrinker), the size classes
# give their empty slabs back to the pool, and the pool its free chunks.
. ./lib.sh
$RKCTL stress --threads 2 --ops $((6000 / SCALE)) --alloc malloc --quiet >/dev/null || fail "malloc stress failed"
# Slabs, and objects parked in the caches' depots (the sharedavail
# column): the shrinker flushes the depots and gives back the slabs that
# become empty. Objects in the CPUs' own magazines keep their slabs.
slabs() { awk 'NR > 2 { n += $15 } END { print n + 0 }' $D/slabinfo; }
depot() { awk 'NR > 2 { n += $16 } END { print n + 0 }' $D/slabinfo; }
cat $D/slabinfo
before=$(slabs)
[ "$(depot)" -gt 0 ] || fail "no objects in the depots after a malloc stress (nothing to test)"
shrunk=$(kv $D/pool chunks_shrunk)
echo 2 > /proc/sys/vm/drop_caches
echo 2 > /proc/sys/vm/drop_caches
after=$(slabs)
echo "slabs: $before -> $after"
[ "$after" -lt "$before" ] || fail "the slab shrinker released nothing ($before -> $after slabs)"
expect_eq "$(depot)" 0 "objects left in the depots after the shrinkers ran"
grep -q '^slabs: ok' $D/check || fail "check after the shrinker: $(cat $D/check)"
