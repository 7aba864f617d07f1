# Every policy, with and without check values, through the ioctls: create,
# alloc (growing past the first region), fill and verify, free, reset
# (stale handles are EINVAL), alloc again, destroy; and each policy picks
# the block it should on one crafted layout.
. ./lib.sh
base=$(kv $D/pool used_pages)
for p in first-fit next-fit best-fit segregated-fit; do
    for dbg in "" ":debug"; do
        out=$($RKCTL heap create:$p$dbg alloc:1 alloc:16 alloc:17 alloc:4000 alloc:200000 alloc:1048576 \
            verify:0 verify:3 verify:4 verify:5 free:1 free:3 alloc:33 verify:2 verify:6 show \
            reset free:0=EINVAL verify:5=EINVAL alloc:100 verify:7 free:7 check \
            destroy alloc:1=EINVAL reset=EINVAL free:2=EINVAL check) || fail "$p$dbg: $out"
        line=$(echo "$out" | sed -n 's/^heaps: \([0-9]\)/\1/p')
        echo "$line"
        # 64 KiB, then regions for 200000 bytes and for 1 MiB.
        [ "$(rowcol $D/heaps regions "$line")" -ge 3 ] || fail "$p$dbg did not grow: $line"
        expect_eq "$(rowcol $D/heaps live "$line")" 5 "$p$dbg live blocks"
        # Requests served by growing are not failures.
        expect_eq "$(rowcol $D/heaps failures "$line")" 0 "$p$dbg failures"
        expect_eq "$(sed 1d $D/heaps | wc -l)" 0 "$p$dbg heap lines after close"
    done
done
expect_eq "$(kv $D/pool used_pages)" "$base" "pool pages after every heap is gone"
# The crafted layout: in a one-page heap, free blocks with payloads of 64,
# 512, 128 and 256 bytes in address order (blocks are carved from the top,
# so they are made in reverse, between 16-byte spacers), the rest in use.
# A 100-byte request takes the 512-byte block under first and next fit
# (leaving 384), the 128-byte one under best and segregated fit (leaving
# the 512-byte block whole).
layout="alloc:256 alloc:16 alloc:128 alloc:16 alloc:512 alloc:16 alloc:64 alloc:16"
rest=$(rowcol $D/heaps largest_free "$($RKCTL heap create:first-fit:4096 $layout show | sed -n 's/^heaps: \([0-9]\)/\1/p')")
[ "$rest" -gt 0 ] || fail "no room left in the crafted heap"
for pw in first-fit:384 next-fit:384 best-fit:512 segregated-fit:512; do
    p=${pw%:*} want=${pw#*:}
    out=$($RKCTL heap create:$p:4096 $layout alloc:$rest free:0 free:2 free:4 free:6 alloc:100 show) || fail "$p: $out"
    line=$(echo "$out" | sed -n 's/^heaps: \([0-9]\)/\1/p')
    expect_eq "$(rowcol $D/heaps free "$line")" 832 "$p free bytes"
    expect_eq "$(rowcol $D/heaps largest_free "$line")" "$want" "$p largest free block after the pick"
done
grep -q '^heaps: ok' $D/check || fail "check: $(cat $D/check)"
