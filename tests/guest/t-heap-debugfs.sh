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
# hcol NAME LINE: the value of column NAME in a heaps line.
hcol() { rowcol $D/heaps "$1" "$2"; }
lines=$(echo "$out" | sed -n 's/^heaps: \([0-9]\)/\1/p')
expect_eq "$(echo "$lines" | wc -l)" 2 "heap lines while the heap lived"
first=$(echo "$lines" | sed -n 1p)
second=$(echo "$lines" | sed -n 2p)
expect_eq "$(echo "$first" | wc -w)" 24 "columns in a heap line"
expect_eq "$(hcol policy "$first")" best-fit "policy"
expect_eq "$(hcol flags "$first")" debug "flags"
expect_eq "$(hcol state "$first")" ok "state"
expect_eq "$(hcol regions "$first")" 1 "regions of a 64 KiB heap"
expect_eq "$(hcol size "$first")" 65536 "size of a default heap"
# 100 bytes take a 112-byte payload, 5000 bytes 5008: 20 bytes internal.
expect_eq "$(hcol used "$first")" 5120 "used"
expect_eq "$(hcol requested "$first")" 5100 "requested"
expect_eq "$(hcol internal "$first")" 20 "internal fragmentation"
expect_eq "$(hcol live "$first")" 2 "live blocks"
expect_eq "$(hcol allocs "$first")" 2 "allocs"
used=$(hcol used "$first") meta=$(hcol metadata "$first") free=$(hcol free "$first")
expect_eq $((used + meta + free)) 65536 "used + metadata + free"
# Both blocks were carved from the top: the free space is one block.
expect_eq "$(hcol largest_free "$first")" "$free" "largest free block"
expect_eq "$(hcol external_permille "$first")" 0 "external fragmentation"
expect_eq "$(hcol live "$second")" 1 "live after a free"
expect_eq "$(hcol frees "$second")" 1 "frees after a free"
expect_eq "$(hcol requested "$second")" 5000 "requested after a free"
expect_eq "$(hcol id "$first")" "$(hcol id "$second")" "same heap id"
expect_eq "$(sed 1d $D/heaps | wc -l)" 0 "heap lines after destroy and close"
grep -q '^heaps: ok' $D/check || fail "check: $(cat $D/check)"
