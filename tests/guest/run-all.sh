#!/bin/sh
# Runs every tests/guest/t-*.sh in the guest (or those named as arguments,
# in that order) and prints one "RKTEST: PASS|FAIL name (seconds)" line per
# test, then a summary.
cd "$(dirname "$0")"
pass=0 fail=0
tests="$*"
[ -n "$tests" ] || tests=$(ls t-*.sh)
now() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }
for t in $tests; do
    echo "--- $t"
    t0=$(now)
    if sh "./$t"; then r=PASS; pass=$((pass + 1)); else r=FAIL; fail=$((fail + 1)); fi
    cs=$(($(now) - t0))
    echo "RKTEST: $r ${t%.sh} ($((cs / 100)).$((cs % 100 / 10)) s)"
done
echo "guest: $pass passed, $fail failed"
[ $fail = 0 ]
