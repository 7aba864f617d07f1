# rmmod fails with EBUSY while a file of /dev/rkalloc is open, and succeeds
# after it is closed; the module then loads again.
. ./lib.sh
exec 3<>/dev/rkalloc || fail "cannot open /dev/rkalloc"
expect_eq "$(kv $D/info open_fds)" 1 "open_fds with one fd"
if out=$(rmmod rkalloc 2>&1); then fail "rmmod succeeded with an fd open"; fi
echo "$out" | grep -q "in use" || fail "rmmod error was not EBUSY: $out"
[ -c /dev/rkalloc ] || fail "device vanished after a refused rmmod"
exec 3>&-
rmmod rkalloc || fail "rmmod failed after close"
[ -e /dev/rkalloc ] && fail "/dev/rkalloc still present after rmmod"
[ -d $D ] && fail "debugfs directory still present after rmmod"
insmod /rkalloc/rkalloc.ko >/dev/null || fail "reloading the module failed"
[ -c /dev/rkalloc ] || fail "/dev/rkalloc missing after reload"
