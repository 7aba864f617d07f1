# Last: the module unloads cleanly and, on the debug kernel, kmemleak finds
# nothing it leaked.
. ./lib.sh
rmmod rkalloc || fail "rmmod failed at the end of the run"
dmesg | grep -q 'rkalloc: unloaded' || fail "no unload message"
if [ -e /sys/kernel/debug/kmemleak ]; then
    # kmemleak ignores objects younger than 5 s and wants two scans.
    sleep 6
    echo scan > /sys/kernel/debug/kmemleak
    echo scan > /sys/kernel/debug/kmemleak
    n=$(grep -c 'unreferenced object' /sys/kernel/debug/kmemleak)
    if [ "$n" != 0 ]; then
        head -60 /sys/kernel/debug/kmemleak
        fail "kmemleak reports $n unreferenced objects after rmmod"
    fi
    echo "kmemleak: no leaks"
fi
