# Free pool memory goes back to the kernel on request (debugfs and ioctl)
# and under memory pressure (the shrinker, driven by drop_caches); the pool
# grows again on demand.
. ./lib.sh
$RKCTL stress --threads 1 --ops 2000 --quiet >/dev/null || fail "warm-up stress failed"
echo 1 > $D/shrink || fail "write to shrink failed"
expect_eq "$(kv $D/pool total_pages)" 0 "total_pages after shrink"
expect_eq "$(kv $D/pool pcp_pages)" 0 "pcp_pages after shrink"
$RKCTL stress --threads 1 --ops 2000 --alloc pool --quiet >/dev/null || fail "stress after shrink failed"
[ "$(kv $D/pool total_pages)" -gt 0 ] || fail "pool did not grow again"
out=$($RKCTL shrink) || fail "rkctl shrink failed"
echo "$out" | grep -qE 'released [1-9][0-9]* pages' || fail "rkctl shrink: $out"
# Memory pressure: grow the pool, free everything, then drop_caches runs
# every shrinker; ours gives the wholly free chunks back.
$RKCTL stress --threads 1 --ops 500 --alloc pool --quiet >/dev/null || fail "stress failed"
before=$(kv $D/pool chunks_shrunk)
echo 2 > /proc/sys/vm/drop_caches
after=$(kv $D/pool chunks_shrunk)
[ "$after" -gt "$before" ] || fail "the shrinker released nothing ($before -> $after)"
grep -q '^pool: ok' $D/check || fail "check after shrink: $(cat $D/check)"
