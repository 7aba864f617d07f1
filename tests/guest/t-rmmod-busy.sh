# rmmod fails while a file of /dev/rkalloc is open (the file holds a module
# reference: delete_module(2) answers EWOULDBLOCK, "in use", for a module
# whose refcount is not zero), and succeeds after it is closed; the module
# then loads again.
. ./lib.sh
exec 3<>/dev/rkalloc || fail "cannot open /dev/rkalloc"
expect_eq "$(kv $D/info open_fds)" 1 "open_fds with one fd"
expect_eq "$(cat /sys/module/rkalloc/refcnt)" 1 "module refcount with one fd"
if out=$(rmmod rkalloc 2>&1); then fail "rmmod succeeded with an fd open"; fi
echo "$out" | grep -qE "Resource temporarily unavailable|in use|busy" || fail "rmmod failed for another reason: $out"
[ -c /dev/rkalloc ] || fail "device vanished after a refused rmmod"
exec 3>&-
rmmod rkalloc || fail "rmmod failed after close"
[ -e /dev/rkalloc ] && fail "/dev/rkalloc still present after rmmod"
[ -d $D ] && fail "debugfs directory still present after rmmod"
insmod $KO || fail "reloading the module failed"
[ -c /dev/rkalloc ] || fail "/dev/rkalloc missing after reload"
