#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: every test, in order, then one summary line.
#   1. host unit tests (the policy arithmetic, no kernel)
#   2. the lint gate (W=1, sparse, checkpatch --strict)
#   3. the VM runner's own tests
#   4. the kselftests in a VM on Debian's stock kernel
#   5. the same on the debug kernel (KASAN, lockdep, kmemleak, ...)
# Counts come from each TAP run's '# Totals:' line; a run whose VM reported
# a kernel problem, or that printed no totals, counts as a failure.
# Usage: selftests/check.sh KDIR (the top-level Makefile passes it).
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
kdir=$1
logs=$top/build/check
vm=$top/selftests/vm.sh
mkdir -p "$logs"
pass=0
fail=0
skip=0

# One check that is a single pass or fail.
single() {
	local name=$1
	shift
	if "$@" >"$logs/$name.log" 2>&1; then
		pass=$((pass + 1))
		echo "PASS  $name"
	else
		fail=$((fail + 1))
		echo "FAIL  $name (log: build/check/$name.log)"
		tail -n 30 "$logs/$name.log"
	fi
}

# A TAP run: add up its totals.
tap() {
	local name=$1 rc totals p f s
	shift
	"$@" >"$logs/$name.log" 2>&1
	rc=$?
	totals=$(grep -a '^# Totals:' "$logs/$name.log" | tail -n 1)
	if [ -z "$totals" ]; then
		fail=$((fail + 1))
		echo "FAIL  $name: no test totals (exit $rc, log: build/check/$name.log)"
		tail -n 40 "$logs/$name.log"
		return
	fi
	p=$(sed 's/.*Totals: pass:\([0-9]*\) .*/\1/' <<<"$totals")
	f=$(sed 's/.* fail:\([0-9]*\) .*/\1/' <<<"$totals")
	s=$(sed 's/.* skip:\([0-9]*\) .*/\1/' <<<"$totals")
	pass=$((pass + p))
	fail=$((fail + f))
	skip=$((skip + s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		# The tests passed but the run did not: a kernel report.
		fail=$((fail + 1))
		echo "FAIL  $name: $p passed but the run failed (exit $rc)"
		grep -a -A 40 'vm.sh:' "$logs/$name.log" | head -n 80
		return
	fi
	echo "$([ "$f" -eq 0 ] && echo PASS || echo FAIL)  $name: $p passed, $f failed, $s skipped"
	[ "$f" -eq 0 ] || grep -a -B 3 '^not ok' "$logs/$name.log"
}

expect_status() {
	local want=$1 got
	shift
	"$@"
	got=$?
	echo "exit status $got, expected $want"
	[ "$got" -eq "$want" ]
}

expect_failure() {
	! "$@"
}

tap unit "$top/build/unit/policy_test"
single lint "$top/selftests/lint.sh" "$kdir"

single vm-true expect_status 0 "$vm" -- true
single vm-false expect_status 1 "$vm" -- false
single vm-warn-fails expect_failure "$vm" --no-load -- \
	insmod /lib/modules/memmgr_warn.ko

for kernel in stock debug; do
	tap "$kernel-memmgr_test" "$vm" --kernel "$kernel" \
		--params "total=64M" -- memmgr_test
	tap "$kernel-load_test" "$vm" --kernel "$kernel" --mem 512 \
		--no-load --timeout 600 -- memmgr_load_test.sh
done

summary="$pass passed, $fail failed"
[ "$skip" -eq 0 ] || summary="$summary, $skip skipped"
echo "$summary"
[ "$fail" -eq 0 ]
