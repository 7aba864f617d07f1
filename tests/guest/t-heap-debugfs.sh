# The debugfs `heaps` file: a header naming the columns, one line per live
# heap whose figures add up (used + metadata + free = size; internal =
# used - requested), operation counts that follow what the fd did, and no
# line left once the heap is gone.
. ./lib.sh
header="# id policy flags regions size used free largest_free requested internal internal_permille external_permille metadata live allocs frees failures search_steps insert_steps grown released resets corruptions state"
expect_eq "$(head -1 $D/heaps)" "$header" "heaps header"
expect_eq "$(sed 1d $D/heaps | wc -l)" 0 "heap lines with no heap"
out=$($RKCTL heap create:best-fit:debug alloc:100 alloc:5000 show free:0 show destroy show) || fail "rkctl heap: $out"
echo "$out"
# col NAME LINE: the value of column NAME in a heaps line.
col() { echo "$2" | awk -v h="$header" -v n="$1" 'BEGIN { split(h, f, " ") } { for (i = 2; i <= length(f); i++) if (f[i] == n) print $(i - 1) }'; }
lines=$(echo "$out" | sed -n 's/^heaps: \([0-9]\)/\1/p')
expect_eq "$(echo "$lines" | wc -l)" 2 "heap lines while the heap lived"
first=$(echo "$lines" | sed -n 1p)
second=$(echo "$lines" | sed -n 2p)
expect_eq "$(echo "$first" | wc -w)" 24 "columns in a heap line"
expect_eq "$(col policy "$first")" best-fit "policy"
expect_eq "$(col flags "$first")" debug "flags"
expect_eq "$(col state "$first")" ok "state"
expect_eq "$(col regions "$first")" 1 "regions of a 64 KiB heap"
expect_eq "$(col size "$first")" 65536 "size of a default heap"
# 100 bytes take a 112-byte payload, 5000 bytes 5008: 20 bytes internal.
expect_eq "$(col used "$first")" 5120 "used"
expect_eq "$(col requested "$first")" 5100 "requested"
expect_eq "$(col internal "$first")" 20 "internal fragmentation"
expect_eq "$(col live "$first")" 2 "live blocks"
expect_eq "$(col allocs "$first")" 2 "allocs"
used=$(col used "$first") meta=$(col metadata "$first") free=$(col free "$first")
expect_eq $((used + meta + free)) 65536 "used + metadata + free"
# Both blocks were carved from the top: the free space is one block.
expect_eq "$(col largest_free "$first")" "$free" "largest free block"
expect_eq "$(col external_permille "$first")" 0 "external fragmentation"
expect_eq "$(col live "$second")" 1 "live after a free"
expect_eq "$(col frees "$second")" 1 "frees after a free"
expect_eq "$(col requested "$second")" 5000 "requested after a free"
expect_eq "$(col id "$first")" "$(col id "$second")" "same heap id"
expect_eq "$(sed 1d $D/heaps | wc -l)" 0 "heap lines after destroy and close"
grep -q '^heaps: ok' $D/check || fail "check: $(cat $D/check)"
