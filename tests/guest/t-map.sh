# The binary occupancy map (/sys/kernel/debug/rkalloc/map): its header and
# size agree with the pool, it follows allocations, its free blocks are
# buddyinfo's, and rkctl map draws it.
. ./lib.sh
M=$D/map
[ -r $M ] || fail "no $M"
# A little-endian u32 of the header at byte offset $1.
hdr() { od -An -tu4 -j "$1" -N4 $M | tr -d ' '; }
expect_eq "$(head -c 5 $M)" "RKMAP" "magic"
expect_eq "$(hdr 8)" 1 "version"
expect_eq "$(hdr 12)" 32 "header bytes"
expect_eq "$(hdr 24)" 1024 "pages per chunk"
pages=$(hdr 16) chunks=$(hdr 20)
expect_eq "$pages" $((chunks * 1024)) "page count"
expect_eq "$pages" "$(kv $D/pool max_pages)" "page count vs the pool's max_pages"
expect_eq "$(hdr 28)" "$(kv $D/pool total_pages)" "online pages vs the pool's total_pages"
expect_eq "$(wc -c < $M)" $((32 + pages)) "file size"
# Every page of an online chunk has a byte other than 0xff (offline).
online=$(tail -c "$pages" $M | od -An -v -tx1 | tr -s ' ' '\n' | grep -vc '^ff$\|^$')
expect_eq "$online" "$(kv $D/pool total_pages)" "non-offline page bytes"

# Quiescent: no user holds pool blocks, and the free blocks the map shows
# are exactly buddyinfo's.
$RKCTL map > /tmp/map0.txt || fail "rkctl map failed"
cat /tmp/map0.txt
grep -q '^used pages by owner:.*pool [1-9]' /tmp/map0.txt && fail "pool pages used before any user"
hist=$($RKCTL map | awk '/^ *[0-9]+ +[0-9]+ +[0-9]+$/ { printf "%s ", $3 }')
buddy=$(awk '{ for (i = 5; i <= NF; i++) printf "%s ", $i }' $D/buddyinfo)
expect_eq "$hist" "$buddy" "free blocks per order vs buddyinfo"

# While stress holds pool blocks, the map shows pages of owner "pool" in
# top-order blocks; after it, none.
$RKCTL stress --alloc pool --threads 2 --duration 4 --max-order 10 --quiet &
pid=$!
seen=0
for i in 1 2 3 4 5 6 7 8; do
    sleep 0.4
    if $RKCTL map --json > /tmp/map1.json && grep -q '"pool": [1-9]' /tmp/map1.json; then
        seen=1
        break
    fi
done
wait $pid || fail "stress failed"
expect_eq "$seen" 1 "pool-user pages in the map during stress"
$RKCTL map --json > /tmp/map2.json || fail "rkctl map --json failed"
grep -q '"pool": 0' /tmp/map2.json || fail "pool pages still used after stress: $(cat /tmp/map2.json)"
# After stress the buddy is split up and per-CPU lists hold pages: the
# map's free blocks still are buddyinfo's.
hist=$($RKCTL map | awk '/^ *[0-9]+ +[0-9]+ +[0-9]+$/ { printf "%s ", $3 }')
buddy=$(awk '{ for (i = 5; i <= NF; i++) printf "%s ", $i }' $D/buddyinfo)
expect_eq "$hist" "$buddy" "free blocks per order vs buddyinfo after stress"

# The SVG, by owner and by order, and a saved map read back.
rm -f /tmp/m.svg /tmp/o.svg
$RKCTL map --out /tmp/m.svg --save /tmp/m.bin > /dev/null || fail "rkctl map --out failed"
head -c 4 /tmp/m.svg | grep -q '<svg' || fail "/tmp/m.svg is not an SVG"
[ "$(grep -o '<rect' /tmp/m.svg | wc -l)" -gt 10 ] || fail "/tmp/m.svg has no cells"
grep -q 'slab' /tmp/m.svg || fail "no legend in /tmp/m.svg"
$RKCTL map --by order --out /tmp/o.svg > /dev/null || fail "rkctl map --by order failed"
grep -q 'o10' /tmp/o.svg || fail "no order legend in /tmp/o.svg"
# The PNG, drawn with the font the static binary embeds.
rm -f /tmp/m.png
$RKCTL map --out /tmp/m.png > /dev/null || fail "rkctl map --out /tmp/m.png failed"
expect_eq "$(head -c 4 /tmp/m.png | od -An -tx1 | tr -d ' ')" "89504e47" "PNG signature of /tmp/m.png"
[ "$(wc -c < /tmp/m.png)" -gt 2000 ] || fail "/tmp/m.png is almost empty"
expect_eq "$(wc -c < /tmp/m.bin)" $((32 + pages)) "saved map size"
$RKCTL map --input /tmp/m.bin --json > /tmp/m3.json || fail "rkctl map --input failed"
grep -q "\"chunks\": $chunks" /tmp/m3.json || fail "saved map has not $chunks chunks"
# A corrupt map is refused.
head -c 100 /tmp/m.bin > /tmp/bad.bin
$RKCTL map --input /tmp/bad.bin > /dev/null 2>&1 && fail "a truncated map was accepted"
true
