# Last: the module unloads cleanly (no memory still in use at teardown)
# and, on the debug kernel, kmemleak finds nothing it leaked. kmemleak must
# still be running: a kmemleak that turned itself off (its metadata
# allocations failed, e.g. under failslab) answers a scan with EPERM and
# lists nothing, which must not pass as "no leaks".
. ./lib.sh
# Only what the unload itself logs (earlier tests, the fuzzer above all,
# make the module log refused destroys and objects an fd left behind).
dmesg -c > /dev/null
rmmod rkalloc || fail "rmmod failed at the end of the run"
dmesg | grep -q 'rkalloc: unloaded' || fail "no unload message"
bad=$(dmesg | grep 'rkalloc: .*\(teardown\|still in use\|leaked\|refused\)') && fail "teardown found memory in use: $bad"
if [ -e /sys/kernel/debug/kmemleak ]; then
    # kmemleak ignores objects younger than 5 s and wants two scans.
    sleep 6
    echo scan > /sys/kernel/debug/kmemleak || fail "kmemleak refused a scan (turned off?): $(dmesg | grep kmemleak | tail -3)"
    echo scan > /sys/kernel/debug/kmemleak || fail "kmemleak refused the second scan"
    n=$(grep -c 'unreferenced object' /sys/kernel/debug/kmemleak)
    rkstat kmemleak_leaks "$n"
    if [ "$n" != 0 ]; then
        head -60 /sys/kernel/debug/kmemleak
        fail "kmemleak reports $n unreferenced objects after rmmod"
    fi
    echo "kmemleak: no leaks"
fi
