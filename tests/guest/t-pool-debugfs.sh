# The pool's debugfs views: buddyinfo in /proc/buddyinfo's exact format,
# key: value lines in pool, extfrag files like the kernel's, and a passing
# invariant check.
. ./lib.sh
line=$(cat $D/buddyinfo)
echo "$line"
echo "$line" | grep -qE '^Node 0, zone  rkalloc( +[0-9]+){11} $' || fail "buddyinfo format: '$line'"
# The counts agree with the pool's figures: buddy free pages are the
# pool's free pages less what the per-CPU lists cache.
sum=$(echo "$line" | awk '{ s = 0; m = 1; for (o = 0; o <= 10; o++) { s += $(5 + o) * m; m *= 2 }; print s }')
expect_eq "$sum" "$(( $(kv $D/pool free_pages) - $(kv $D/pool pcp_pages) ))" "pages in buddyinfo"
total=$(kv $D/pool total_pages)
[ $((total % 1024)) = 0 ] || fail "total_pages $total is not whole 4 MiB chunks"
for k in free_pages pcp_pages high_water_pages chunks_grown chunks_shrunk; do
    [ -n "$(kv $D/pool $k)" ] || fail "pool lacks $k"
done
grep -qE '^Node 0, zone  rkalloc( +-?[0-9]+\.[0-9]{3}){11} $' $D/extfrag/extfrag_index || fail "extfrag_index: $(cat $D/extfrag/extfrag_index)"
grep -qE '^Node 0, zone  rkalloc( [0-9]+\.[0-9]{3}){11} $' $D/extfrag/unusable_index || fail "unusable_index: $(cat $D/extfrag/unusable_index)"
cat $D/check
grep -q '^pool: ok' $D/check || fail "check: $(cat $D/check)"
# Statistics reset: the snapshot comes back, then counting starts afresh.
$RKCTL stress --threads 1 --ops 500 --alloc pool --quiet >/dev/null || fail "stress failed"
$RKCTL stats --json --reset | grep -q '"allocs": [1-9]' || fail "no allocations counted before the reset"
allocs=$($RKCTL stats --json | grep -o '"allocs": [0-9]*' | awk '{ n += $2 } END { print n + 0 }')
expect_eq "$allocs" 0 "allocations counted right after a reset"
expect_eq "$(kv $D/pool chunks_grown)" 0 "chunks_grown after a reset"
