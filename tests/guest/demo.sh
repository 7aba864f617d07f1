#!/bin/sh
# The demonstration `make run` shows: what rkalloc holds, what it does, and
# its statistics, read from debugfs; then the module is unloaded.
D=/sys/kernel/debug/rkalloc
step() { printf '\n==== %s\n' "$*"; }
set -e
step "CPUs online: $(nproc); /dev/rkalloc: $(ls -l /dev/rkalloc)"
step "rkctl info"
/rkalloc/rkctl info
for f in $(ls $D); do
    [ -f "$D/$f" ] || continue
    case $f in map|*.bin) continue ;; esac
    step "$D/$f"
    cat "$D/$f"
done
step "rmmod rkalloc"
rmmod rkalloc
echo "unloaded; dmesg tail:"
dmesg | grep rkalloc | tail -5
