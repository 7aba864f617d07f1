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
# The per-CPU lists are sized to the pool (pool_max_mb=1024 by default)
# and the CPU ids (nr_cpu_ids, the last possible CPU + 1): each order's
# high mark as pcp.rs says, batches of at most 64, nothing above order 3.
possible=$(cat /sys/devices/system/cpu/possible)
awk -v cpus="$((${possible##*-} + 1))" -v maxp="$(kv $D/pool max_pages)" '/^order[0-9]+:/ {
        o = substr($1, 6) + 0; for (i = 2; i < NF; i += 2) f[$i] = $(i + 1)
        cap = o == 0 ? 2048 : o == 1 ? 256 : o == 2 ? 128 : o == 3 ? 64 : 0
        p = 1; for (k = 0; k < o; k++) p *= 2
        want = int(int(maxp / 32 / cpus) / p); min = o <= 3 ? 64 / p : 0
        if (want > cap) want = cap; if (want < min) want = min
        if (f["pcp_high"] != want || (o <= 3 && (f["pcp_batch"] < 1 || f["pcp_batch"] > 64)) || (o > 3 && f["pcp_batch"] != 0)) {
            print "order " o ": pcp_high " f["pcp_high"] " (want " want "), pcp_batch " f["pcp_batch"]; bad = 1 } }
    END { exit bad }' $D/pool || fail "per-CPU list limits in $D/pool"
echo "per-CPU list limits: $(sed -n 's/^\(order[0-3]\):.* pcp_high \([0-9]*\) pcp_batch \([0-9]*\) .*/\1 \2\/\3/p' $D/pool | tr '\n' ' ')"
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
