#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Loading and unloading memmgr.ko, in the VM with the module not loaded
# (vm.sh --no-load): a reserve larger than RAM fails cleanly, bad
# parameters are refused, the reserve is taken at load and every page comes
# back at unload, also over 50 load/unload cycles.  TAP output, with the
# kselftest totals line.
. "$(dirname "$0")/memmgr_tap.sh"
ko=/lib/modules/memmgr.ko

memfree_kb() {
	awk '/^MemFree:/ { print $2 }' /proc/meminfo
}

loaded() {
	grep -q '^memmgr ' /proc/modules
}

# insmod must fail with $1 (an strerror text) and leave nothing loaded.
insmod_fails() {
	want=$1
	shift
	if insmod "$ko" "$@" 2>/tmp/insmod.err; then
		rmmod memmgr
		return 1
	fi
	grep -q "$want" /tmp/insmod.err && ! loaded
}

abs() {
	[ "$1" -lt 0 ] && echo $((-$1)) || echo "$1"
}

echo "TAP version 13"
echo "1..10"
ram_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
# Slack for what the kernel itself allocates meanwhile (page tables, slabs).
tol_kb=8192

base=$(memfree_kb)
insmod_fails "Cannot allocate memory" total=$((ram_kb * 2))K
check $? "insmod total=2xRAM fails with ENOMEM"

insmod_fails "Cannot allocate memory" total=$((ram_kb / 100 * 95))K
check $? "insmod total=95% of RAM cannot be had: ENOMEM"
d=$(abs $(($(memfree_kb) - base)))
[ "$d" -le "$tol_kb" ]
check $? "a failed insmod keeps nothing (MemFree moved ${d} kB)"

insmod_fails "Invalid argument" storage_pct=101
check $? "insmod storage_pct=101 fails with EINVAL"

insmod_fails "Invalid argument" total=100
check $? "insmod total=100 (under a page) fails with EINVAL"

base=$(memfree_kb)
insmod "$ko" total=256M storage_pct=25
loaded_kb=$(memfree_kb)
d=$(abs $((base - loaded_kb - 262144)))
[ "$d" -le "$tol_kb" ]
check $? "insmod total=256M takes 262144 kB (off by ${d} kB)"

[ "$(cat /sys/module/memmgr/parameters/total)" = 268435456 ] &&
	[ "$(cat /sys/module/memmgr/parameters/storage_pct)" = 25 ]
check $? "parameters read back: total=268435456 storage_pct=25"

# Use some memory in between: memmgr_test fills both pools, and its
# close_with_eviction_pending leaves an eviction for the reclaim worker.
# (6.1's kselftest harness runs every test: it has no filter option.)
memmgr_test >/dev/null 2>&1
rmmod memmgr
d=$(abs $(($(memfree_kb) - base)))
[ "$d" -le "$tol_kb" ] && ! loaded
check $? "rmmod gives every page back (MemFree within ${d} kB of before)"

# Load and unload cycles, with memory taken and given back in between by
# the sample in-kernel client (8 MiB of execution memory).
cycles=50
base=$(memfree_kb)
bad=0
i=0
while [ $i -lt $cycles ]; do
	insmod "$ko" total=16M &&
		insmod /lib/modules/memmgr_client.ko pool=1 size=8388608 &&
		[ "$(cat /sys/module/memmgr/stats/exec_used)" = 8388608 ] &&
		rmmod memmgr_client && rmmod memmgr || bad=$((bad + 1))
	i=$((i + 1))
done
check $bad "$cycles insmod/rmmod cycles with 8 MiB allocated and freed each time"
d=$(abs $(($(memfree_kb) - base)))
[ "$d" -le "$tol_kb" ] && ! loaded
check $? "after $cycles cycles MemFree is back within ${d} kB of its baseline"

totals
