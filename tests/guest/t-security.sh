# Security: who may use the device, what leaves the kernel, sizes that
# overflow, the per-fd cap.
#  - A non-root process is refused /dev/rkalloc (open fails with EACCES,
#    rkctl exits 5) and cannot read rkalloc's debugfs files.
#  - No kernel address in any debugfs text file (read while a stress holds
#    caches, heaps and arenas), in rkctl's ioctl outputs, or in the kernel
#    log lines of rkalloc and its KUnit suites. (rkctl fuzz checks the u64
#    outputs of every ioctl it makes; tracepoint ids are t-trace's.)
#  - Sizes whose rounding or alignment overflows 64 bits are refused with
#    EINVAL and change nothing (the fuzzer throws u64::MAX and 2^63 at
#    every size and count field; these are the edges the rounding meets).
#  - The per-fd cap (fd_cap_kib): an fd cannot hold more (heap and arena),
#    and a stress under a small cap sees ENOMEM and nothing else.
. ./lib.sh

# --- Non-root.
mkdir -p /etc
grep -q '^nobody:' /etc/passwd 2>/dev/null || echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >> /etc/passwd
grep -q '^nogroup:' /etc/group 2>/dev/null || echo 'nogroup:x:65534:' >> /etc/group
as_nobody() { su -s /bin/sh nobody -c "$1" 2>&1; }
expect_eq "$(as_nobody 'id -u')" 65534 "uid under su nobody"
out=$(as_nobody "$RKCTL info; echo rc=\$?")
echo "$out"
echo "$out" | grep -q 'Permission denied' || fail "rkctl as nobody was not refused with EACCES: $out"
echo "$out" | grep -q '^rc=5$' || fail "rkctl as nobody did not exit 5: $out"
out=$(as_nobody 'exec 3<>/dev/rkalloc && echo opened; exec 3<>/dev/rkalloc' )
echo "$out" | grep -q opened && fail "nobody opened /dev/rkalloc"
echo "$out" | grep -q 'Permission denied' || fail "open as nobody: $out"
out=$(as_nobody "cat $D/info" )
echo "$out" | grep -q 'Permission denied' || fail "nobody read $D/info: $out"

# --- No kernel address anywhere.
# A canonical kernel address printed in hex (0xffff8... to 0xffffff...),
# or as a decimal >= 0xffff800000000000 (18446603336221196288: 20 digits
# from 184466...). u64::MAX (~0, the header's "none" sentinel; not a
# canonical address of any object) is allowed in both forms.
addresses() { # FILE...: print lines that hold something like a kernel address
    sed -e 's/ffffffffffffffff//g; s/18446744073709551615//g' "$@" \
        | grep -iE '(^|[^0-9a-f])(0x)?ffff[89a-f][0-9a-f]{11}([^0-9a-f]|$)|(^|[^0-9])1844(6[6-9]|[7-9][0-9])[0-9]{14}([^0-9]|$)'
}
# The scan itself must find an address when there is one.
printf 'ptr ffff888003a1b2c0\n' > /tmp/a1; printf 'x=18446612685319426048 y\n' > /tmp/a2
printf 'id=ffffffffffffffff 18446744073709551615 0xfff88800 1234\n' > /tmp/a3
addresses /tmp/a1 > /dev/null || fail "the address scan misses a hex address"
addresses /tmp/a2 > /dev/null || fail "the address scan misses a decimal address"
addresses /tmp/a3 && fail "the address scan flags the ~0 sentinel or short numbers"
$RKCTL stress --threads 2 --duration 600 --max-live 512 --quiet > /dev/null 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null' EXIT
sleep 2
exited $pid && fail "stress ended early"
[ "$(col $D/heaps id | wc -l)" -gt 0 ] || fail "no heap live during the stress: nothing to scan"
files=""
for f in $(find $D -type f); do
    case $f in */map|*/shrink) continue ;; esac   # map: one state byte per page
    cat "$f" > /tmp/dbgfs.$(echo "$f" | tr / _) 2>/dev/null || fail "cannot read $f"
    files="$files $f"
done
$RKCTL --json info > /tmp/out.info || fail "rkctl info"
$RKCTL --json stats > /tmp/out.stats || fail "rkctl stats"
$RKCTL --json allocators > /tmp/out.allocators || fail "rkctl allocators"
$RKCTL heap create:best-fit:debug alloc:100 alloc:70000 arena:64 show > /tmp/out.heap || fail "rkctl heap"
kill -9 $pid; wait $pid 2>/dev/null
dmesg | grep -i 'rkalloc' > /tmp/out.kmsg
found=$(addresses /tmp/dbgfs.* /tmp/out.*) && fail "kernel addresses leak: $found"
echo "no kernel address in $(echo $files | wc -w) debugfs files, 4 rkctl outputs, $(wc -l < /tmp/out.kmsg) kernel log lines"
rm -f /tmp/dbgfs.* /tmp/out.*
assert_quiet "after the scans"

# --- Sizes at the edge of 64 bits: refused, nothing changed (the heap's
# line shows no allocation and no failure, the arena has nothing).
max=18446744073709551615
out=$($RKCTL heap create:first-fit:$max=EINVAL create:first-fit:18446744073709547521=EINVAL \
    create:first-fit:9223372036854775808=EINVAL create:first-fit \
    alloc:$max=EINVAL alloc:18446744073709551600=EINVAL alloc:9223372036854775808=EINVAL \
    alloc:1048577=EINVAL arena:$max=EINVAL arena:18446744073709547521:4096=EINVAL \
    arena:18446744073709551608:8=EINVAL arena:1048577=EINVAL show) || fail "size edges: $out"
line=$(echo "$out" | sed -n 's/^heaps: \([0-9]\)/\1/p')
expect_eq "$(rowcol $D/heaps live "$line")/$(rowcol $D/heaps allocs "$line")/$(rowcol $D/heaps failures "$line")" 0/0/0 "live/allocs/failures of the heap after refused sizes"
expect_eq "$(echo "$out" | sed -n 's/^arenas: \([0-9]\)/\1/p' | wc -l)" 0 "arenas made by refused allocations"

# --- The per-fd cap.
reload fd_cap_kib=1024
expect_eq "$(kv $D/info fd_cap_bytes)" 1048576 "fd_cap_bytes with fd_cap_kib=1024"
# 1 MiB in one heap block needs a region larger than the cap; half of it
# fits, twice does not (a region per block, 64 KiB already held).
out=$($RKCTL heap create:first-fit alloc:1048576=ENOMEM alloc:500000 alloc:500000=ENOMEM show) || fail "cap: $out"
line=$(echo "$out" | sed -n 's/^heaps: \([0-9]\)/\1/p')
size=$(rowcol $D/heaps size "$line")
[ "$size" -le 1048576 ] || fail "the heap holds $size bytes under a 1 MiB cap"
out=$($RKCTL heap arena:1000000 arena:100000=ENOMEM show) || fail "arena under the cap: $out"
$RKCTL --json stress --threads 2 --ops 3000 --seed 51 --max-order 10 > /tmp/stress.json 2>&1 || { cat /tmp/stress.json; fail "stress under a 1 MiB cap"; }
enomem=$(grep -o '"enomem": [0-9]*' /tmp/stress.json | awk '{ n += $2 } END { print n + 0 }')
[ "$enomem" -gt 0 ] || fail "a stress with order-10 blocks never hit a 1 MiB cap"
echo "the 1 MiB cap held: stress saw $enomem ENOMEM"
assert_quiet "after the cap"
reload
