#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# memmgr's kernel-side interfaces, in the VM with memmgr loaded with
# total=64M: sysfs figures, debugfs (clients, buddy), tracepoints, the
# in-kernel API through the sample client module, device permissions, and
# rmmod refused while the device is open.  TAP, with the kselftest totals.
. "$(dirname "$0")/memmgr_tap.sh"
stats=/sys/module/memmgr/stats
dbg=/sys/kernel/debug/memmgr
trace=/sys/kernel/tracing
client=/lib/modules/memmgr_client.ko

echo "TAP version 13"
echo "1..14"
total=$(cat /sys/module/memmgr/parameters/total)
pages=$((total / 4096))
S=$((pages * 50 / 100 * 4096))
E=$((total - S))

eq total "$(cat $stats/total)" "$total" &&
	eq storage_quota "$(cat $stats/storage_quota)" "$S" &&
	eq exec_quota "$(cat $stats/exec_quota)" "$E" &&
	eq free "$(cat $stats/free)" "$total" &&
	eq waiters "$(cat $stats/waiters)" 0 &&
	eq storage_used "$(cat $stats/storage_used)" 0
check $? "sysfs: total=$total storage_quota=$S exec_quota=$E, all free"

bad=0
for f in $stats/*; do
	[ "$(stat -c %a "$f")" = 444 ] || { echo "# $f is writable"; bad=1; }
	[ "$(wc -l <"$f")" = 1 ] || { echo "# $f has more than one value"; bad=1; }
done
check $bad "sysfs: $(ls $stats | wc -l) attributes, read-only, one value each"

sum=$(awk 'NR > 1 { s += $2 * $3 } END { print s }' $dbg/buddy)
eq "buddy free bytes" "$sum" "$total"
check $? "debugfs buddy: free blocks add up to total"

allocs=$(cat $stats/exec_allocs)
frees=$(cat $stats/exec_frees)
echo 1 >$trace/events/memmgr/memmgr_alloc/enable
echo 1 >$trace/events/memmgr/memmgr_free/enable
echo >$trace/trace
insmod $client pool=1 size=1048576
check $? "in-kernel API: the sample client takes 1 MiB of execution memory"

eq exec_used "$(cat $stats/exec_used)" 1048576 &&
	eq free "$(cat $stats/free)" $((total - 1048576)) &&
	eq exec_allocs "$(cat $stats/exec_allocs)" $((allocs + 1))
check $? "sysfs: exec_used=1048576 and free=$((total - 1048576)) after it"

grep -q '^[0-9]* insmod 0 1048576$' $dbg/clients
check $? "debugfs clients: the in-kernel client with 0 storage, 1048576 exec bytes"

grep -q 'memmgr_alloc: pool=exec tag=1 bytes=1048576 result=0' $trace/trace
check $? "tracepoint memmgr_alloc reports pool, tag, size and result"

rmmod memmgr_client
eq exec_used "$(cat $stats/exec_used)" 0 &&
	eq exec_frees "$(cat $stats/exec_frees)" $((frees + 1)) &&
	grep -q 'memmgr_free: pool=exec tag=1 bytes=1048576 result=0' $trace/trace
check $? "unloading the client frees its memory (and traces memmgr_free)"
echo 0 >$trace/events/memmgr/enable

# busybox insmod may try a second system call after the first fails: count
# the declines the tracepoint saw, and expect the counter to match.
declined=$(cat $stats/storage_declined)
echo 1 >$trace/events/memmgr/memmgr_decline/enable
echo >$trace/trace
insmod $client pool=0 size=$((S + 4096)) 2>/tmp/err
r=$?
seen=$(grep -c "memmgr_decline: pool=storage tag=1 bytes=$((S + 4096)) result=-7" $trace/trace)
echo 0 >$trace/events/memmgr/enable
[ $r != 0 ] && grep -q "Argument list too long" /tmp/err && [ "$seen" -ge 1 ] &&
	eq storage_declined "$(cat $stats/storage_declined)" $((declined + seen)) &&
	eq storage_used "$(cat $stats/storage_used)" 0
check $? "in-kernel API: storage S + 4096 is declined with E2BIG ($seen decline events)"

eq "/dev/memmgr mode" "$(stat -c '%a %u %g' /dev/memmgr)" "600 0 0"
check $? "/dev/memmgr is 0600 root:root"

setpriv --reuid=1000 --regid=1000 --clear-groups sh -c 'exec 3<>/dev/memmgr' 2>/dev/null
[ $? != 0 ]
check $? "a non-root user cannot open /dev/memmgr"

eq "debugfs modes" "$(stat -c %a $dbg/clients $dbg/buddy | tr '\n' ' ')" "400 400 "
check $? "debugfs files are root-only"

exec 3<>/dev/memmgr
rmmod memmgr 2>/dev/null
r=$?
exec 3>&-
[ $r != 0 ] && grep -q '^memmgr ' /proc/modules
check $? "rmmod is refused while /dev/memmgr is open"

# No kernel address in anything memmgr shows.
cat $stats/* $dbg/* $trace/trace >/tmp/all 2>/dev/null
dmesg | grep memmgr >>/tmp/all
! grep -Eq 'ffff[0-9a-f]{12}' /tmp/all
check $? "no kernel address in sysfs, debugfs, trace or memmgr's log lines"

totals
