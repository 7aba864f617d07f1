# rkctl talks to the device: info, as text and as JSON.
. ./lib.sh
$RKCTL info || fail "rkctl info failed"
out=$($RKCTL info --json) || fail "rkctl info --json failed"
echo "$out" | grep -q '"abi_version": *1' || fail "no abi_version 1 in: $out"
echo "$out" | grep -q '"page_size": *4096' || fail "no page_size 4096 in: $out"
