# The pool's debugfs views: buddyinfo in /proc/buddyinfo's exact format,
# key: value lines in pool, extfrag files like the kernel's, and a passing
# invariant check.
. ./lib.sh
line=$(cat $D/buddyinfo)
echo "$line"
echo "$line" | grep -qE '^Node 0, zone  rkalloc( +[0-9]+){11} $' || fail "buddyinfo format: '$line'"
# A fresh 64 MiB pool is 16 free order-10 blocks.
expect_eq "$(echo "$line" | awk '{print $15}')" 16 "order-10 blocks in a fresh pool"
expect_eq "$(kv $D/pool total_pages)" 16384 "total_pages"
for k in free_pages pcp_pages high_water_pages chunks_grown chunks_shrunk; do
    [ -n "$(kv $D/pool $k)" ] || fail "pool lacks $k"
done
grep -qE '^Node 0, zone  rkalloc( +-?[0-9]+\.[0-9]{3}){11} $' $D/extfrag/extfrag_index || fail "extfrag_index: $(cat $D/extfrag/extfrag_index)"
grep -qE '^Node 0, zone  rkalloc( [0-9]+\.[0-9]{3}){11} $' $D/extfrag/unusable_index || fail "unusable_index: $(cat $D/extfrag/unusable_index)"
cat $D/check
grep -q '^pool: ok' $D/check || fail "check: $(cat $D/check)"
