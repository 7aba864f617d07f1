# slabinfo is /proc/slabinfo version 2.1 to the byte: the kernel's own two
# header lines, then one line per cache in cache_show()'s columns, with a
# line for every size class; each class packs at least as many objects
# per page as SLUB's kmalloc cache of that size.
. ./lib.sh
info=$D/slabinfo
cat $info
expect_eq "$(sed -n 1p $info)" "slabinfo - version: 2.1" "first header line"
expect_eq "$(sed -n 2p $info)" "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>" "second header line"
if [ -r /proc/slabinfo ]; then
    expect_eq "$(sed -n 1,2p $info)" "$(sed -n 1,2p /proc/slabinfo)" "header lines against /proc/slabinfo"
fi
# Reprint every line with cache_show()'s format; it must come out the same.
tail -n +3 $info | while read -r name a n sz per pages c1 t1 lim bat sh c2 t2 act num avail; do
    [ "$c1$t1$c2$t2" = ":tunables:slabdata" ] || fail "columns of '$name'"
    want=$(printf '%-17s %6s %6s %6s %4s %4s : tunables %4s %4s %4s : slabdata %6s %6s %6s' \
        "$name" "$a" "$n" "$sz" "$per" "$pages" "$lim" "$bat" "$sh" "$act" "$num" "$avail")
    got=$(grep "^$name " $info | head -1)
    expect_eq "$got" "$want" "slabinfo line of $name"
done || exit 1
expect_eq "$(tail -n +3 $info | wc -l)" "$(kv $D/info nr_caches)" "one line per cache"
for c in 8 16 32 64 96 128 192 256 512 1k 2k 4k 8k; do
    size=$(col $info objsize rkmalloc-$c) per=$(col $info objperslab rkmalloc-$c) pages=$(col $info pagesperslab rkmalloc-$c)
    [ -n "$size" ] || fail "no slabinfo line for rkmalloc-$c"
    case $c in *k) want=$(( ${c%k} * 1024 )) ;; *) want=$c ;; esac
    expect_eq "$size" "$want" "objsize of rkmalloc-$c"
    [ -r /proc/slabinfo ] || continue
    sper=$(col /proc/slabinfo objperslab kmalloc-$c) spages=$(col /proc/slabinfo pagesperslab kmalloc-$c)
    [ -n "$sper" ] || continue
    # objects per page: ours/pages >= slub/slub_pages, cross-multiplied.
    [ $((per * spages)) -ge $((sper * pages)) ] || fail "rkmalloc-$c packs $per objects in $pages pages, SLUB's kmalloc-$c $sper in $spages"
    echo "rkmalloc-$c: $per objects in $pages pages; SLUB's kmalloc-$c: $sper in $spages"
done
# Drive the caches, then every counter must add up and nothing may be
# flagged; a shrink empties the size classes completely.
$RKCTL stress --alloc object,malloc --threads 2 --ops $((20000 / SCALE)) --seed 11 --quiet || fail "object/malloc stress failed"
cat $D/slabstats
grep -q violations= $D/slabstats || fail "slabstats lacks violations"
bad=$(grep -v ' violations=0 ' $D/slabstats) && fail "violations reported: $bad"
sum() { sed -n "s/^rkmalloc-[0-9k]* .* $1=\([0-9]*\) .*/\1/p" $D/slabstats | awk '{s += $1} END {print s + 0}'; }
[ "$(sum fast_allocs)" -gt 0 ] || fail "no fast-path allocation in the size classes"
[ "$(sum fast_frees)" -gt 0 ] || fail "no fast-path free in the size classes"
[ "$(sum slabs_allocated)" -gt 0 ] || fail "the size classes allocated no slab"
echo 1 > $D/shrink
expect_eq "$(sum slabs)" 0 "slabs of the size classes after shrink"
expect_eq "$(sum active_objs)" 0 "objects in use after shrink"
expect_eq "$(sum slabs_allocated)" "$(sum slabs_freed)" "slabs allocated and freed"
expect_eq "$(kv $D/pool used_pages)" 0 "pool pages used after shrink"
grep -q '^slabs: ok' $D/check || fail "check: $(cat $D/check)"
