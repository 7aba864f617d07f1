# rkctl talks to the device: info, as text and as JSON.
. ./lib.sh
$RKCTL info || fail "rkctl info failed"
out=$($RKCTL info --json) || fail "rkctl info --json failed"
echo "$out" | grep -q "\"abi_version\": *$(kv $D/info abi_version)" || fail "abi_version differs from debugfs's in: $out"
echo "$out" | grep -q '"page_size": *4096' || fail "no page_size 4096 in: $out"
# The list of caches and heaps (RKALLOC_IOC_LIST): the 13 size classes,
# in text and JSON, and no cache a closed fd made is left behind.
$RKCTL info > /tmp/info.txt || fail "rkctl info failed"
expect_eq "$(grep -c '^cache  *rkmalloc-' /tmp/info.txt)" 13 "size classes listed by rkctl info"
for c in rkmalloc-8 rkmalloc-192 rkmalloc-512 rkmalloc-1k rkmalloc-8k; do
    grep -q "^cache  *$c " /tmp/info.txt || fail "no $c in: $(cat /tmp/info.txt)"
done
expect_eq "$(echo "$out" | grep -c '"name": "rkmalloc-')" 13 "size classes in the JSON list"
echo "$out" | grep -q '"caches_and_heaps"' || fail "no caches_and_heaps in: $out"
# The list agrees with nr_caches.
nr=$(echo "$out" | sed -n 's/.*"nr_caches": *\([0-9]*\).*/\1/p')
expect_eq "$(echo "$out" | grep -c '"kind": "cache"')" "$nr" "caches listed vs nr_caches"
before=$(grep -c '^cache ' /tmp/info.txt)
# Stress makes caches and heaps on its own fds; once they are closed, none
# of them is listed any more.
$RKCTL stress --alloc object,heap --threads 2 --ops 3000 --quiet || fail "stress failed"
$RKCTL info > /tmp/info2.txt || fail "rkctl info after stress failed"
expect_eq "$(grep -c '^cache ' /tmp/info2.txt)" "$before" "caches after stress"
expect_eq "$(grep -c '^heap ' /tmp/info2.txt)" 0 "heaps after stress"
grep -q 'stress' /tmp/info2.txt && fail "a stress cache is left: $(cat /tmp/info2.txt)"
# While stress runs, its caches and heaps are listed (with handle 0: they
# are another fd's).
$RKCTL stress --alloc object,heap --threads 2 --duration 3 --quiet &
pid=$!
seen=0
for i in 1 2 3 4 5 6; do
    sleep 0.4
    $RKCTL info > /tmp/info3.txt || fail "rkctl info during stress failed"
    if [ "$(grep -c '^cache ' /tmp/info3.txt)" -gt "$before" ] && grep -q '^heap  *heap-[0-9]' /tmp/info3.txt; then
        seen=1
        break
    fi
done
wait $pid || fail "stress failed"
expect_eq "$seen" 1 "stress caches and heaps listed while it runs"
grep '^heap ' /tmp/info3.txt | awk '$NF != "-" { exit 1 }' || fail "another fd's heap listed with a handle"
true
# --json works on the other subcommands too.
$RKCTL --json check | grep -q '"invariants_hold": *true' || fail "rkctl --json check"
$RKCTL --json shrink | grep -q '"released_pages"' || fail "rkctl --json shrink"
$RKCTL --json heap create:first-fit alloc:64 free:0 | grep -q '"ok": *true' || fail "rkctl --json heap"
$RKCTL --json stats | grep -q '"total_pages"' || fail "rkctl --json stats"
