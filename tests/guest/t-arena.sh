# The arena through the ioctls: allocations of every alignment keep their
# bytes, the `arenas` file adds up (used + padding + tail + free = size), a
# reset reclaims exactly what was handed out and invalidates every handle,
# the arena grows past its first region, and closing the fd removes it.
. ./lib.sh
header="# id regions size used padding tail free largest_free live allocs failures internal_permille external_permille resets last_reset_bytes last_reset_allocs reclaimed_bytes reclaimed_allocs grown released"
expect_eq "$(head -1 $D/arenas)" "$header" "arenas header"
steps=""
i=0
for a in 1 2 4 8 16 32 64 128 256 512 1024 2048 4096; do
    steps="$steps arena:$((a + 3)):$a"
    i=$((i + 1))
done
out=$($RKCTL heap $steps show arena:1048576 show verify:0 verify:12 verify:13 arena-reset show verify:0=EINVAL verify:13=EINVAL arena:10 show) || fail "$out"
echo "$out"
lines=$(echo "$out" | sed -n 's/^arenas: \([0-9]\)/\1/p')
expect_eq "$(echo "$lines" | wc -l)" 4 "arena lines"
one=$(echo "$lines" | sed -n 1p) two=$(echo "$lines" | sed -n 2p)
three=$(echo "$lines" | sed -n 3p) four=$(echo "$lines" | sed -n 4p)
expect_eq "$(echo "$one" | wc -w)" 20 "columns in an arena line"
f() { rowcol $D/arenas "$1" "$2"; }
expect_eq "$(f regions "$one")" 1 "regions of a fresh arena"
expect_eq "$(f size "$one")" 65536 "first region"
expect_eq "$(f live "$one")" 13 "live allocations"
expect_eq "$(f failures "$one")" 0 "failures (growing is not failing)"
used=0; for a in 1 2 4 8 16 32 64 128 256 512 1024 2048 4096; do used=$((used + a + 3)); done
expect_eq "$(f used "$one")" $used "used bytes"
expect_eq $(( $(f used "$one") + $(f padding "$one") + $(f tail "$one") + $(f free "$one") )) 65536 "used + padding + tail + free"
[ "$(f padding "$one")" -gt 0 ] || fail "aligned allocations left no padding"
# 1 MiB does not fit the rest of the first region: a fresh region, and the
# first one's tail is retired.
expect_eq "$(f regions "$two")" 2 "regions after a large allocation"
[ "$(f tail "$two")" -gt 0 ] || fail "no retired tail: $two"
handed=$(( $(f used "$two") + $(f padding "$two") + $(f tail "$two") ))
echo "$out" | grep -q "^arena-reset: ok reclaimed $handed bytes 14 allocations" || fail "reset did not reclaim $handed bytes and 14 allocations"
# After the reset: nothing live, one reset recorded, the small region given back.
expect_eq "$(f live "$three")" 0 "live after reset"
expect_eq "$(f resets "$three")" 1 "resets"
expect_eq "$(f last_reset_bytes "$three")" "$handed" "last reset's bytes"
expect_eq "$(f last_reset_allocs "$three")" 14 "last reset's allocations"
expect_eq "$(f regions "$three")" 1 "regions kept after reset"
expect_eq "$(f size "$three")" 1048576 "the larger region is kept"
expect_eq "$(f live "$four")" 1 "live after a new allocation"
expect_eq "$(f released "$four")" 1 "regions released"
expect_eq "$(sed 1d $D/arenas | wc -l)" 0 "arena lines after the fd closed"
$RKCTL stress --alloc arena,heap --threads 2 --ops 6000 --seed 3 --quiet || fail "stress on heaps and arenas"
expect_eq "$(kv $D/pool used_pages)" 0 "pool pages used after stress"
grep -q '^heaps: ok' $D/check || fail "check: $(cat $D/check)"
