# rkctl top --once: one frame of the pool, the slab caches and the heaps
# and arenas, each figure the one debugfs holds. The state is held still
# for the comparison: a stress (heaps, arenas, its own caches, size
# classes) is stopped with SIGSTOP while it holds memory, then killed.
. ./lib.sh
$RKCTL stress -a heap,arena,object,malloc,pool --threads 1 --duration 600 --max-live 512 --seed 71 --quiet > /dev/null 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null' EXIT
sleep $((2 * (1 + DEBUG_KERNEL)))
# Stop it while it holds a heap and an arena: now and then it has just
# destroyed its heap (it makes a new one at its next heap allocation), so
# let it run a little more then, up to 20 times.
stops=0
while :; do
    kill -STOP $pid
    i=0
    until [ "$(cut -d' ' -f3 /proc/$pid/stat)" = T ]; do
        usleep 100000; i=$((i + 1)); [ $i -lt 50 ] || fail "stress did not stop"
    done
    stops=$((stops + 1))
    heaps=$(col $D/heaps id | wc -l) arenas=$(col $D/arenas id | wc -l)
    [ "$heaps" -gt 0 ] && [ "$arenas" -gt 0 ] && break
    [ $stops -lt 20 ] || fail "in $stops stops the stress held $heaps heaps and $arenas arenas: nothing to compare"
    kill -CONT $pid
    usleep 200000
done
$RKCTL top --once > /tmp/top.txt || fail "rkctl top --once"
$RKCTL top --once --sort name > /tmp/top-name.txt || fail "rkctl top --once --sort name"
cat /tmp/top.txt
grep -q "$(printf '\033')" /tmp/top.txt && fail "--once printed terminal control codes"

# The pool line.
p=$(sed -n 's/^pool: \([0-9]*\) pages (.*), used \([0-9]*\) (.*), free \([0-9]*\) (\([0-9]*\) on per-CPU lists), high water \([0-9]*\),.*/\1 \2 \3 \4 \5/p' /tmp/top.txt)
expect_eq "$p" "$(kv $D/pool total_pages) $(kv $D/pool used_pages) $(kv $D/pool free_pages) $(kv $D/pool pcp_pages) $(kv $D/pool high_water_pages)" \
    "top's pool: pages, used, free, per-CPU, high water"
g=$(sed -n 's/^ *chunks grown \([0-9]*\) shrunk \([0-9]*\),.*/\1 \2/p' /tmp/top.txt)
expect_eq "$g" "$(kv $D/pool chunks_grown) $(kv $D/pool chunks_shrunk)" "top's chunks grown and shrunk"
b=$(sed -n 's/^ *free blocks per order: //p' /tmp/top.txt | sed 's/[0-9]*://g')
expect_eq "$(echo $b)" "$(awk '{ for (i = 5; i <= NF; i++) printf "%s ", $i }' $D/buddyinfo | sed 's/ $//')" "top's free blocks per order against buddyinfo"

# The caches: one line per slabinfo row (OBJS ACTIVE USE OBJSIZE SLABS
# OBJ/SLAB CACHE-SIZE NAME), the same figures.
caches() { sed -n '/^  *OBJS  *ACTIVE/,/^$/p' "$1" | sed '1d;/^$/d'; }
expect_eq "$(caches /tmp/top.txt | wc -l)" "$(col $D/slabinfo name | wc -l)" "cache lines in top"
caches /tmp/top.txt | while read -r objs active use size slabs per csize name; do
    want="$(col $D/slabinfo num_objs "$name") $(col $D/slabinfo active_objs "$name") $(col $D/slabinfo num_slabs "$name") $(col $D/slabinfo objperslab "$name")"
    expect_eq "$objs $active $slabs $per" "$want" "top's objects, active, slabs, objects per slab of $name"
done || exit 1
# Sorted by cache size, largest first; by name with --sort name.
caches /tmp/top.txt | awk '{ s = $7 + 0; if (NR > 1 && s > last) { print "cache size " s " after " last; bad = 1 }; last = s } END { exit bad }' \
    || fail "top's caches are not sorted by cache size"
caches /tmp/top-name.txt | awk '{ print $NF }' > /tmp/names
sort /tmp/names | cmp -s - /tmp/names || fail "top --sort name: not sorted by name: $(cat /tmp/names | tr '\n' ' ')"
ao=$(col $D/slabinfo active_objs | awk '{ n += $1 } END { print n }')
to=$(col $D/slabinfo num_objs | awk '{ n += $1 } END { print n }')
grep -q "Active / Total Objects (% used) *: $ao / $to " /tmp/top.txt || fail "top's object totals are not $ao / $to"

# Heaps and arenas: their count, and each one's figures by id.
grep -q "^heaps: $heaps$" /tmp/top.txt || fail "top does not count $heaps heaps"
grep -q "^arenas: $arenas$" /tmp/top.txt || fail "top does not count $arenas arenas"
for id in $(col $D/heaps id); do
    line=$(sed -n '/^heaps: /,/^$/p' /tmp/top.txt | awk -v id="$id" '$1 == id')
    set -- $line
    # ID POLICY FLAGS REGS SIZE USED FREE LARGEST INT EXT LIVE ALLOCS FREES FAILS STATE
    expect_eq "$2 $4 $5 $6 $7 $8 ${11} ${12} ${13}" \
        "$(col $D/heaps policy $id) $(col $D/heaps regions $id) $(col $D/heaps size $id) $(col $D/heaps used $id) $(col $D/heaps free $id) $(col $D/heaps largest_free $id) $(col $D/heaps live $id) $(col $D/heaps allocs $id) $(col $D/heaps frees $id)" \
        "top's line of heap $id"
done
for id in $(col $D/arenas id); do
    line=$(sed -n '/^arenas: /,/^$/p' /tmp/top.txt | awk -v id="$id" '$1 == id')
    set -- $line
    # ID REGS SIZE USED PADDING FREE LARGEST LIVE ALLOCS INT EXT RESETS RECLAIMED
    expect_eq "$2 $3 $4 $5 $6 $7 $8 $9 ${12} ${13}" \
        "$(col $D/arenas regions $id) $(col $D/arenas size $id) $(col $D/arenas used $id) $(col $D/arenas padding $id) $(col $D/arenas free $id) $(col $D/arenas largest_free $id) $(col $D/arenas live $id) $(col $D/arenas allocs $id) $(col $D/arenas resets $id) $(col $D/arenas reclaimed_bytes $id)" \
        "top's line of arena $id"
done
kill -9 $pid
wait $pid 2>/dev/null
assert_quiet "after top"
