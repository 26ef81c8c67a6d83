#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Fault injection on the debug kernel (vm.sh --kernel debug --no-load):
# failslab and fail_page_alloc fail the n-th allocation site of insmod and
# of the ALLOC/mmap/fault/FREE paths, for every n until the operation runs
# out of sites.  Each run must fail cleanly or succeed; the VM runner's
# final kmemleak scan must find nothing. Run with vm.sh --faults.
ko=/lib/modules/memmgr.ko
dbg=/sys/kernel/debug

for f in failslab fail_page_alloc; do
	echo N >$dbg/$f/ignore-gfp-wait
	echo 0 >$dbg/$f/verbose
done
echo N >$dbg/fail_page_alloc/ignore-gfp-highmem
echo 0 >$dbg/fail_page_alloc/min-order

memmgr_failnth insmod $ko total=8M >/tmp/insmod.tap
r1=$?
insmod $ko total=8M
memmgr_failnth alloc >/tmp/alloc.tap
r2=$?
grep -v '^# Totals' /tmp/insmod.tap
grep -v '^# Totals\|^TAP' /tmp/alloc.tap | sed 's/^ok 1/ok 2/; s/^not ok 1/not ok 2/'
pass=$(( (r1 == 0) + (r2 == 0) ))
echo "# Totals: pass:$pass fail:$((2 - pass)) xfail:0 xpass:0 skip:0 error:0"
[ "$pass" = 2 ]
