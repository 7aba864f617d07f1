# The guest brings up 2 vCPUs, the module's device is root-only, debugfs is
# there.
. ./lib.sh
expect_eq "$(grep -c ^processor /proc/cpuinfo)" 2 "CPUs online"
[ -c /dev/rkalloc ] || fail "/dev/rkalloc missing"
expect_eq "$(stat -c %a /dev/rkalloc)" 600 "mode of /dev/rkalloc"
expect_eq "$(stat -c %u /dev/rkalloc)" 0 "owner of /dev/rkalloc"
expect_eq "$(kv $D/info abi_version)" 1 "abi_version in debugfs info"
expect_eq "$(kv $D/info cpus_online)" 2 "cpus_online in debugfs info"
