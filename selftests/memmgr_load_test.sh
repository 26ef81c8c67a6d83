#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Loading and unloading memmgr.ko, in the VM with the module not loaded
# (vm.sh --no-load): a reserve larger than RAM fails cleanly, bad
# parameters are refused (totals that overflow too), the reserve is taken
# at load and every page comes back at unload, also over 50 load/unload
# cycles; mode, exec_fair and evict_policy written while insmod is still
# reserving memory take effect.  TAP output, with the kselftest totals
# line.
. "$(dirname "$0")/memmgr_tap.sh"
ko=/lib/modules/memmgr.ko
client=/lib/modules/memmgr_client.ko
params=/sys/module/memmgr/parameters
stats=/sys/module/memmgr/stats

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

# Is process $1 running (not gone, not a zombie waiting to be waited for)?
# Builtins only.
running() {
	read -r pstat 2>/dev/null </proc/"$1"/stat || return 1
	case $pstat in *") Z "*) return 1 ;; esac
}

# The sample in-kernel client's one request must fail with $1.
client_fails() {
	want=$1
	shift
	if insmod "$client" "$@" 2>/tmp/client.err; then
		rmmod memmgr_client
		echo "# insmod memmgr_client $*: granted"
		return 1
	fi
	grep -q "$want" /tmp/client.err ||
		{ echo "# insmod memmgr_client $*: $(cat /tmp/client.err)"; false; }
}

# client_holds WHAT BYTES ARGS...: the sample client's one request must be
# granted, and the pool's use then be BYTES (WHAT: storage_used or
# exec_used); it is unloaded again.
client_holds() {
	what=$1
	bytes=$2
	shift 2
	if ! insmod "$client" "$@" 2>/tmp/client.err; then
		echo "# insmod memmgr_client $*: $(cat /tmp/client.err)"
		return 1
	fi
	eq "$what" "$(cat $stats/"$what")" "$bytes"
	r=$?
	rmmod memmgr_client || r=1
	return $r
}

# hold POOL BYTES: memmgr_hold in the background until it says "ready"
# (at most 30 s); its pid is $hold_pid.
hold() {
	memmgr_hold "$@" >/tmp/hold.out 2>&1 &
	hold_pid=$!
	i=0
	while ! grep -q '^ready$' /tmp/hold.out; do
		i=$((i + 1))
		if [ $i -gt 600 ] || ! running $hold_pid; then
			echo "# memmgr_hold $*: $(cat /tmp/hold.out)"
			return 1
		fi
		usleep 50000
	done
}

unhold() {
	kill $hold_pid 2>/dev/null
	wait $hold_pid 2>/dev/null
}

echo "TAP version 13"
echo "1..24"
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

# Totals that overflow 64 bits (16E is 2^64; 18446744073709555712 is
# 2^64 + 4096) are above RAM, not what they wrap to.
for t in 16E 18446744073709555712 99999999999999999999 \
	20000000000000000000K; do
	insmod_fails "Cannot allocate memory" total=$t
	check $? "insmod total=$t (overflows) fails with ENOMEM"
done

for t in 12Q abc ""; do
	insmod_fails "Invalid argument" total=$t
	check $? "insmod total='$t' (not a size) fails with EINVAL"
done

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

# Parameters written while insmod is still reserving memory (about 1 s per
# 512 MiB under emulation; 256M is what this 512 MB VM reserves reliably on
# both kernels) must take effect.  The module's sysfs files appear before
# its init runs, initstate last of them; it reads "coming" until init is
# done, so it says whether the writes were made during the load.  The
# loop reads with builtins only, to write at once.
insmod "$ko" total=256M 2>/tmp/insmod.err &
pid=$!
state=
while ! read -r state 2>/dev/null </sys/module/memmgr/initstate; do
	running $pid || break
done
wrote=0
{ echo unified >$params/mode && echo 1 >$params/exec_fair &&
	echo lru >$params/evict_policy; } || wrote=1
wait $pid
st=$?
[ $st = 0 ] || echo "# insmod total=256M: $(cat /tmp/insmod.err)"
eq "initstate before the writes" "$state" coming &&
	eq "writes of mode, exec_fair, evict_policy" $wrote 0 && [ $st = 0 ]
check $? "insmod total=256M succeeds with mode, exec_fair and evict_policy written during the reserve"

eq mode "$(cat $params/mode)" unified &&
	eq exec_fair "$(cat $params/exec_fair)" Y &&
	eq evict_policy "$(cat $params/evict_policy)" lru
check $? "parameters written during the load read back: unified, Y, lru"

# Unified's rules: storage may borrow free execution memory, up to T.
S=$(cat $stats/storage_quota)
big=$((S + 1048576))
client_holds storage_used $big pool=0 size=$big
check $? "mode=unified took effect: a storage request of S + 1 MiB ($big) is granted"

echo split >$params/mode && client_fails "Argument list too long" pool=0 \
	size=$big
check $? "with mode=split written after the load, the same request gets E2BIG"

# exec_fair: with 2 active exec ids, one may hold at most half of what
# execution can use (T, storage being empty): 160 MiB is over that share,
# and with timeout 0 it is declined.
hold exec 16M &&
	client_fails "Resource temporarily unavailable" pool=1 size=167772160
check $? "exec_fair=1 took effect: 160 MiB of exec next to another exec id's 16 MiB gets EAGAIN"

echo 0 >$params/exec_fair &&
	client_holds exec_used $((167772160 + 16777216)) pool=1 size=167772160
check $? "with exec_fair=0 written after the load, the same request is granted"
unhold

rmmod memmgr && ! loaded
check $? "rmmod after the parameters written during the load"

totals
