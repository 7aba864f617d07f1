# The guest brings up the CPUs vm-run asked for (rkalloc_cpus=, 2 by
# default), the module's device is root-only, debugfs is there.
. ./lib.sh
cpus=$(param rkalloc_cpus 2)
expect_eq "$(grep -c ^processor /proc/cpuinfo)" "$cpus" "CPUs online"
[ -c /dev/rkalloc ] || fail "/dev/rkalloc missing"
expect_eq "$(stat -c %a /dev/rkalloc)" 600 "mode of /dev/rkalloc"
expect_eq "$(stat -c %u /dev/rkalloc)" 0 "owner of /dev/rkalloc"
# The module and rkctl each take the ABI version from the one header.
abi=$($RKCTL info --json | sed -n 's/.*"abi_version": *\([0-9]*\).*/\1/p')
[ -n "$abi" ] || fail "rkctl info --json has no abi_version"
expect_eq "$(kv $D/info abi_version)" "$abi" "abi_version in debugfs info (rkctl's is $abi)"
expect_eq "$(kv $D/info cpus_online)" "$cpus" "cpus_online in debugfs info"
# The benchmark's SLUB peer runs at its best: per-CPU sheaves (no
# SLUB_TINY, no debug flags) and init_on_alloc off.
cap=$(cat /sys/kernel/slab/rkalloc_peer_64/sheaf_capacity 2>/dev/null) || fail "no /sys/kernel/slab/rkalloc_peer_64"
if [ "$DEBUG_KERNEL" = 0 ]; then
    [ "$cap" -gt 0 ] || fail "rkalloc_peer_64 has no sheaves (sheaf_capacity $cap)"
    grep -q 'init_on_alloc=0' /proc/cmdline || fail "the guest did not boot with init_on_alloc=0"
fi
# The bench reports the timing mode vm-run booted the guest in.
case " $(cat /proc/cmdline) " in
*" rkalloc_accel=tcg "*) want=tcg-wallclock ;;
*" rkalloc_accel=kvm "*) want=kvm-wallclock ;;
*" rkalloc_accel=icount "*) want=icount ;;
*" rkalloc_accel=uml "*) want=uml-native ;;
*) fail "no rkalloc_accel= on the kernel command line: $(cat /proc/cmdline)" ;;
esac
$RKCTL bench --filter "malloc 8 B" --repeats 1 --samples 2 --ops 64 --out /tmp/mode.json > /dev/null || fail "rkctl bench failed"
grep -q "\"mode\": \"$want\"" /tmp/mode.json || fail "bench report mode: $(grep '"mode"' /tmp/mode.json), want $want"
