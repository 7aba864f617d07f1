# Killing a process mid-stress frees everything it held: the pool's used
# pages and the open fds return to their baseline.
. ./lib.sh
base=$(kv $D/pool used_pages)
$RKCTL stress --threads 2 --duration 30 --max-live 512 --quiet >/dev/null 2>&1 &
pid=$!
sleep 2
used=$(kv $D/pool used_pages)
[ "$used" -gt "$base" ] || fail "stress held nothing after 2s (used $used, base $base)"
kill -9 $pid
wait $pid 2>/dev/null
expect_eq "$(kv $D/info open_fds)" 0 "open fds after kill"
expect_eq "$(kv $D/pool used_pages)" "$base" "used pages after kill"
grep -q '^pool: ok' $D/check || fail "check after kill: $(cat $D/check)"
