#!/bin/sh
# Runs every tests/guest/t-*.sh in the guest (or those named as arguments)
# and prints one "RKTEST: PASS|FAIL name" line per test, then a summary.
cd "$(dirname "$0")"
pass=0 fail=0
tests="$*"
[ -n "$tests" ] || tests=$(ls t-*.sh)
for t in $tests; do
    echo "--- $t"
    if sh "./$t"; then
        echo "RKTEST: PASS ${t%.sh}"; pass=$((pass + 1))
    else
        echo "RKTEST: FAIL ${t%.sh}"; fail=$((fail + 1))
    fi
done
echo "guest: $pass passed, $fail failed"
[ $fail = 0 ]
