# SPDX-License-Identifier: GPL-2.0
# TAP helpers for memmgr's shell kselftests; sourced, not run.
n=0
pass=0
fail=0

# check STATUS DESCRIPTION: one test point, passed when STATUS is 0.
check() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		pass=$((pass + 1))
		echo "ok $n $2"
	else
		fail=$((fail + 1))
		echo "not ok $n $2"
	fi
}

# eq WHAT GOT WANT: compare, saying what differed.
eq() {
	[ "$2" = "$3" ]
	r=$?
	[ $r = 0 ] || echo "# $1: got '$2', want '$3'"
	return $r
}

# totals: the kselftest totals line; the exit status of the script.
totals() {
	echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:0 error:0"
	[ "$fail" -eq 0 ]
}
