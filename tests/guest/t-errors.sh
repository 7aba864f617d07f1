# Every documented error path returns its errno and changes nothing.
. ./lib.sh
$RKCTL errors || fail "an error path deviates"
grep -q '^pool: ok' $D/check || fail "check after errors: $(cat $D/check)"
