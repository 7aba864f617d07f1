# The invariant checkers tell the truth under load: while rkctl stress runs
# every kind and every allocator's conformance on 2 threads, a third
# process runs the checkers over and over (RKALLOC_IOC_CHECK through rkctl
# check, and the debugfs check file, in turn). Not one may report damage:
# the stress's memory is intact (it verifies every byte), so any report is
# false. (A KUnit test plants real damage under load and sees it found.)
. ./lib.sh
dur=$(param rkcheck_secs $((20 * (1 + DEBUG_KERNEL))))
# At least 100 checks: against the old 3% rate of false reports, 100
# clean checks happen by chance 5% of the time.
min=$(param rkcheck_min 100)
checks=0 bad=0 rounds=0
# Stress runs of $dur s follow each other until $min checks ran under load
# (a slow debug kernel on a busy host makes fewer a second), at most 10.
while [ $checks -lt "$min" ] && [ $rounds -lt 10 ]; do
    rounds=$((rounds + 1))
    $RKCTL stress --threads 2 --duration "$dur" --seed $((20 + rounds)) --max-live 1024 --quiet > /tmp/stress.out 2>&1 &
    pid=$!
    trap 'kill -9 $pid 2>/dev/null' EXIT
    # Three of four checks read the debugfs file with the shell's own read
    # (no process to start: more checks a second); every fourth is the ioctl.
    while ! exited $pid; do
        if [ $((checks % 4)) = 0 ]; then
            out=$($RKCTL check 2>&1) || { bad=$((bad + 1)); echo "rkctl check during stress: $out"; }
        else
            while read -r l; do
                case $l in *': ok '*) ;; *) bad=$((bad + 1)); echo "debugfs check during stress: $l" ;; esac
            done < $D/check
        fi
        checks=$((checks + 1))
    done
    wait $pid
    rc=$?
    cat /tmp/stress.out
    [ $rc = 0 ] || fail "stress exited $rc while the checkers ran"
done
dur=$((dur * rounds))
[ $bad = 0 ] && echo "$checks checks during ${dur} s of stress, none reported damage"
[ $bad = 0 ] || { dmesg | grep rkalloc | tail -20; fail "$bad of $checks checks reported damage under load (the stress found none)"; }
[ $checks -ge "$min" ] || fail "only $checks checks ran during the stress (want at least $min)"
rkstat checks_under_load $checks
assert_quiet "after stress and checks"
