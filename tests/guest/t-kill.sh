# Killing a process mid-stress frees everything it held: after the caches
# are shrunk, the pool's used pages and the open fds are back at baseline.
. ./lib.sh
echo 1 > $D/shrink
base=$(kv $D/pool used_pages)
$RKCTL stress --threads 2 --duration 30 --max-live 512 --quiet >/dev/null 2>&1 &
pid=$!
sleep 3
used=$(kv $D/pool used_pages)
[ "$used" -gt "$base" ] || fail "stress held nothing after 3s (used $used, base $base)"
expect_eq "$(kv $D/info open_fds)" 2 "open fds while stress runs"
kill -9 $pid
wait $pid 2>/dev/null
expect_eq "$(kv $D/info open_fds)" 0 "open fds after kill"
echo 1 > $D/shrink
expect_eq "$(kv $D/pool used_pages)" "$base" "used pages after kill and shrink"
grep -q '^pool: ok' $D/check || fail "check after kill: $(cat $D/check)"
