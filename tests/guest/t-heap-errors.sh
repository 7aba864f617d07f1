# Heap and arena bad input through the ioctls: each returns its errno and
# leaves the heap, the arena and the fd's charge as they were.
. ./lib.sh
out=$($RKCTL heap create:9=EINVAL create:first-fit:flags2=EINVAL create:best-fit:99999999999999=EINVAL \
    create:segregated-fit:debug alloc:0=EINVAL alloc:1048577=EINVAL alloc:18446744073709551615=EINVAL \
    alloc:100 show free:0 free:0=EINVAL verify:0=EINVAL alloc:200 reset free:1=EINVAL \
    destroy alloc:5=EINVAL destroy=EINVAL reset=EINVAL \
    arena:0=EINVAL arena:8:3=EINVAL arena:8:8192=EINVAL arena:1048577=EINVAL \
    arena:100:64 free:2=EINVAL verify:2 arena-reset verify:2=EINVAL check) || fail "$out"
echo "$out"
# The failed allocations of the second line counted nothing: the heap's
# first line shows exactly one allocation and no failure.
line=$(echo "$out" | sed -n 's/^heaps: \([0-9]\)/\1/p')
expect_eq "$(rowcol $D/heaps live "$line") $(rowcol $D/heaps allocs "$line") $(rowcol $D/heaps failures "$line")" "1 1 0" "live, allocs, failures after refused requests"
echo "$out" | grep -q "^arena-reset: ok reclaimed 100 bytes 1 allocations" || fail "arena reset did not reclaim the one allocation"
grep -q '^heaps: ok' $D/check || fail "check: $(cat $D/check)"
