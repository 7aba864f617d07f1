# rkctl replay: shipped traces (captured from the kernel's kmem events and
# synthetic) replay in the kernel on every allocator that can serve them,
# with sane figures; a malformed trace is refused with a clear error, both by
# rkctl's parser and by the ioctl's own checks.
. ./lib.sh
T=./traces
ls $T/*.trace >/dev/null || fail "no traces in tests/guest/traces"
# Slab caches keep empty slabs until shrunk: compare shrunk pools.
$RKCTL shrink >/dev/null || fail "shrink"
base=$(kv $D/pool used_pages)
check_report() { # FILE.json: every allocator that ran has sane figures
    j=$1
    # One row per allocator: ran rows have "skipped": null.
    ran=$(grep -c '"skipped": null' "$j")
    [ "$ran" -ge 4 ] || fail "only $ran allocators served $(basename "$j")"
    awk '
        /"allocator":/ { gsub(/[",]/, "", $2); a = $2 }
        /"skipped":/ { s = ($2 != "null,") }
        /"total_ns":/ { gsub(/,/, "", $2); t = $2 }
        /"ops_per_sec":/ { gsub(/,/, "", $2); o = $2 }
        /"peak_live_bytes":/ { gsub(/,/, "", $2); l = $2 }
        /"peak_footprint_bytes":/ { gsub(/,/, "", $2); f = $2 }
        /"failures":/ { gsub(/,/, "", $2);
            if (!s) {
                if (o + 0 <= 0 || t + 0 <= 0) { print "no speed for " a; bad = 1 }
                if (l + 0 <= 0) { print "no live bytes for " a; bad = 1 }
                if (f + 0 < l + 0) { print a ": footprint " f " below live " l; bad = 1 }
                if ($2 + 0 != 0) { print a ": " $2 " failures"; bad = 1 }
            }
        }
        END { exit bad }' "$j" || fail "insane figures in $(basename "$j")"
}
for t in $T/*.trace; do
    $RKCTL --json replay --repeats 1 "$t" > /tmp/r.json || fail "replay of $t: $(cat /tmp/r.json)"
    check_report /tmp/r.json
    # The peak of live bytes is the trace's, whatever the allocator.
    peaks=$(sed -n 's/.*"peak_live_bytes": \([0-9]*\).*/\1/p' /tmp/r.json | sort -u | wc -l)
    expect_eq "$peaks" 1 "one peak of live bytes for $t"
done
# The heaps report their own fragmentation; the kernel's allocators do not.
$RKCTL --json replay --repeats 1 --alloc heap_first,kmalloc $T/synth-phased.trace > /tmp/r.json || fail "replay"
expect_eq "$(grep -c '"external_permille": null' /tmp/r.json)" 1 "external fragmentation only for the heap"
# The table form names every allocator asked for.
out=$($RKCTL replay --repeats 1 --alloc heap_best,rk_malloc,kmem_cache $T/synth-uniform.trace) || fail "$out"
echo "$out"
for a in heap_best rk_malloc kmem_cache; do echo "$out" | grep -q "^ *$a " || fail "no row for $a"; done
# A trace with sizes above what slab caches take: they are skipped, noted.
printf 'a 1 100000\na 2 10\nf 1\n' > /tmp/big.trace
out=$($RKCTL replay --repeats 1 --alloc kmem_cache,rk_slab,heap_first /tmp/big.trace) || fail "$out"
echo "$out" | grep -q "kmem_cache cannot serve" || fail "kmem_cache not skipped: $out"
echo "$out" | grep -q "^ *heap_first  *[0-9]" || fail "heap_first did not run: $out"
# Malformed traces: a free of an unknown id, named with its line.
printf 'a 1 64\nf 1\nf 7\n' > /tmp/bad.trace
if out=$($RKCTL replay /tmp/bad.trace 2>&1); then fail "a free of an unknown id was accepted"; fi
echo "$out" | grep -q "line 3: free of id 7, which is not live" || fail "unclear error: $out"
printf 'a 1 64\nz 1\n' > /tmp/bad.trace
if out=$($RKCTL replay /tmp/bad.trace 2>&1); then fail "an unknown op was accepted"; fi
echo "$out" | grep -q "line 2: unknown op" || fail "unclear error: $out"
# Nothing leaked and every invariant holds.
$RKCTL shrink >/dev/null || fail "shrink"
expect_eq "$(kv $D/pool used_pages)" "$base" "pool pages used after the replays"
grep -q '^heaps: ok' $D/check || fail "check: $(cat $D/check)"
