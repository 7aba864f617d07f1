# Under memory pressure (drop_caches runs every shrinker), the size classes
# give their empty slabs back to the pool, and the pool its free chunks.
. ./lib.sh
# Slabs, and objects parked in the caches' depots (the sharedavail
# column): the shrinker flushes the depots and gives back the slabs that
# become empty. Objects in the CPUs' own magazines keep their slabs.
sum() { col $D/slabinfo "$1" | awk '{ n += $1 } END { print n + 0 }'; }
slabs() { sum num_slabs; }
depot() { sum sharedavail; }
# Park objects in the depots: frees from several threads fill magazines
# that the CPUs trade in; a few rounds make it near certain.
for round in 1 2 3 4 5; do
    $RKCTL stress --threads 3 --ops 6000 --seed $round --alloc malloc --quiet >/dev/null || fail "malloc stress failed"
    [ "$(depot)" -gt 0 ] && break
done
cat $D/slabinfo
before=$(slabs)
[ "$(depot)" -gt 0 ] || fail "no objects in the depots after five malloc stress runs (nothing to test)"
shrunk=$(kv $D/pool chunks_shrunk)
echo 2 > /proc/sys/vm/drop_caches
echo 2 > /proc/sys/vm/drop_caches
after=$(slabs)
echo "slabs: $before -> $after"
# The shrinker flushed the depots, and no empty slab stayed behind (how many
# slabs that frees depends on where the CPUs' magazines pin objects).
expect_eq "$(depot)" 0 "objects left in the depots after the shrinkers ran"
expect_eq "$(($(sum num_slabs) - $(sum active_slabs)))" 0 "empty slabs left after the shrinkers ran"
[ "$after" -le "$before" ] || fail "slabs grew under the shrinker ($before -> $after)"
grep -q '^slabs: ok' $D/check || fail "check after the shrinker: $(cat $D/check)"
