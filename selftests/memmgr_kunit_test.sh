#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run memmgr's KUnit suites (memmgr_kunit.ko, built where the kernel has
# KUnit: the debug kernel) and turn their KTAP lines in the kernel log into
# the kselftest totals line: each test case counts once.
ko=/lib/modules/memmgr_kunit.ko
want_cases=17

if [ ! -f $ko ]; then
	echo "not ok 1 memmgr_kunit.ko is missing: this kernel has no KUnit"
	echo "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0"
	exit 1
fi
dmesg -c >/dev/null
insmod $ko || echo "# insmod memmgr_kunit.ko failed"
rmmod memmgr_kunit
dmesg | sed 's/^\[[^]]*\] //' >/tmp/kunit.log
grep -E '^ *(KTAP|# Subtest|ok|not ok|[0-9]+\.\.)' /tmp/kunit.log

# Test cases are the lines indented by exactly four spaces.
skip=$(grep -Ec '^    ok [0-9]+ .*# SKIP' /tmp/kunit.log)
pass=$(($(grep -Ec '^    ok [0-9]+ ' /tmp/kunit.log) - skip))
fail=$(grep -Ec '^    not ok [0-9]+ ' /tmp/kunit.log)
if [ $((pass + fail + skip)) != $want_cases ]; then
	echo "# expected $want_cases KUnit cases, saw $((pass + fail + skip))"
	fail=$((fail + 1))
fi
echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:$skip error:0"
[ "$fail" -eq 0 ]
