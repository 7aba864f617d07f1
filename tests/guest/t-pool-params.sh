# Module parameters: the initial pool size (rounded up to whole 4 MiB
# chunks, so 6 MiB gives 2 chunks) and the cap on growth.
. ./lib.sh
reload pool_mb=6 pool_max_mb=8
line=$(cat $D/buddyinfo)
expect_eq "$(echo "$line" | awk '{print $15}')" 2 "order-10 blocks in a fresh 6 MiB pool"
expect_eq "$(kv $D/pool total_pages)" 2048 "total_pages of a 6 MiB pool"
expect_eq "$(kv $D/pool max_pages)" 2048 "max_pages with pool_max_mb=8"
# At the cap, a top-order allocation beyond it fails with ENOMEM, cleanly.
$RKCTL stress --threads 1 --ops 300 --alloc pool --max-order 10 --quiet || fail "stress at the cap failed"
expect_eq "$(kv $D/pool total_pages)" 2048 "the pool grew past its cap"
grep -q '^pool: ok' $D/check || fail "check: $(cat $D/check)"
reload
expect_eq "$(kv $D/pool total_pages)" 16384 "total_pages of a default (64 MiB) pool"
