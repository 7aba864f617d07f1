# rkctl stress on every allocator with 2 threads on 2 vCPUs: zero
# corruption, no unexpected errno, invariants hold afterwards.
. ./lib.sh
$RKCTL stress --threads 2 --ops $((40000 / SCALE)) --seed 7 --quiet || fail "stress failed"
$RKCTL stress --threads 4 --duration 2 --seed 8 --max-order 10 --quiet || fail "stress with top orders failed"
# The size classes keep a few empty slabs and per-CPU objects: shrink first.
echo 1 > $D/shrink
expect_eq "$(kv $D/pool used_pages)" 0 "pages still used after stress and shrink"
