#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# memmgrctl in the VM, against the loaded module.  Its figures are checked
# against the module's parameters and against memory that memmgr_hold
# processes take; the --json object is parsed; --watch redraws and stops on
# SIGINT; clients parses the debugfs file (a fixture bind-mounted over
# debugfs, and the kernel's own file, with a client whose name needs
# escaping, and pids as a reader in another pid namespace sees them);
# errors give the documented exit status and message.  At the end memmgr
# is unloaded (for the "not loaded" message) and loaded again with the
# same parameters.  TAP output, with the kselftest totals line.
#
# Needs a reserve of at least 16 MiB with storage_pct=50 (vm.sh --params
# "total=64M"), an otherwise idle device, and root.
. "$(dirname "$0")/memmgr_tap.sh"
tmp=$(mktemp -d /tmp/memmgrctl_test.XXXXXX)
holders=
nholds=0
ns_job=
bound=
unloaded=
made_etc=

params=/sys/module/memmgr/parameters
clients_file=/sys/kernel/debug/memmgr/clients
ko=/lib/modules/memmgr.ko
not_loaded="memmgrctl: memmgr is not loaded: run 'modprobe memmgr' or 'insmod memmgr.ko'"
pg=4096		# x86-64
MiB=1048576

# expect WANT GOT DESCRIPTION: the strings are equal.
expect() {
	if [ "$1" = "$2" ]; then
		check 0 "$3"
	else
		check 1 "$3"
		echo "#   want: '$1'"
		echo "#   got:  '$2'"
	fi
}

# A case whose precondition is missing in the guest fails: the VM runner
# provides all of them (memmgr's clients file, debugfs, a user nobody).
cannot_run() {
	n=$((n + 1))
	fail=$((fail + 1))
	echo "not ok $n $1: cannot run: $2"
}

# run ARGS...: memmgrctl with its stdout, stderr and status in $out, $err,
# $rc.
run() {
	memmgrctl "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

# hold POOL BYTES [ID]: start memmgr_hold and wait for it to say "ready";
# its pid is $hold_pid.
hold() {
	nholds=$((nholds + 1))
	f=$tmp/hold.$nholds
	memmgr_hold "$@" >"$f" 2>&1 &
	hold_pid=$!
	holders="$holders $hold_pid"
	i=0
	while ! grep -q '^ready$' "$f"; do
		i=$((i + 1))
		if [ $i -gt 200 ] || ! kill -0 $hold_pid 2>/dev/null; then
			echo "# memmgr_hold $*: $(cat "$f")"
			return 1
		fi
		usleep 50000
	done
}

unhold() {
	for p in $holders; do
		kill $p 2>/dev/null
		wait $p 2>/dev/null
	done
	holders=
}

# jget JSON KEY: a top-level number; jget JSON POOL.KEY: a pool's number.
jget() {
	case $2 in
	*.*)
		printf '%s\n' "$1" |
			sed -n "s/.*\"${2%%.*}\":{\([^}]*\)}.*/\1/p" |
			sed -n "s/.*\"${2#*.}\":\([0-9]*\).*/\1/p"
		;;
	*)
		printf '%s\n' "$1" | sed 's/"[a-z]*":{[^}]*}//g' |
			sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
		;;
	esac
}

# Sizes as memmgrctl prints them without --bytes (as free -h does).
human() {
	awk -v b="$1" 'BEGIN {
		split("B Ki Mi Gi Ti Pi Ei", unit, " ")
		v = b
		u = 1
		while (v >= 1023.5 && u < 7) {
			v /= 1024
			u++
		}
		if (u == 1)
			printf "%dB\n", b
		else if (v < 9.95)
			printf "%.1f%s\n", v, unit[u]
		else
			printf "%.0f%s\n", v, unit[u]
	}'
}

# row OUTPUT NAME: the five figures of NAME's row in the stats table.
row() {
	printf '%s\n' "$1" |
		awk -v name="$2" '$1 == name && NF == 6 {
			print $2, $3, $4, $5, $6
		}'
}

# bar OUTPUT NAME: what is between the brackets of NAME's bar.
bar() {
	printf '%s\n' "$1" | sed -n "s/^$2 *\[\(.*\)\].*/\1/p"
}

# rep CHAR N: CHAR N times.
rep() {
	awk -v c="$1" -v n="$2" 'BEGIN { while (n-- > 0) printf "%s", c }'
}

# The number of bar characters up to BYTES of WHOLE, as memmgrctl rounds.
cols() {
	echo $((($1 * 50 + $2 / 2) / $2))
}

# One line, every key in its place, every value an integer.
json_schema() {
	p='\{"quota":[0-9]+,"used":[0-9]+,"borrowed":[0-9]+,"pinned":[0-9]+,"free":[0-9]+,"peak":[0-9]+,"allocs":[0-9]+,"frees":[0-9]+,"declined":[0-9]+,"held":[0-9]+,"evictions":[0-9]+,"evicted_bytes":[0-9]+\}'
	[ "$(printf '%s\n' "$1" | wc -l)" = 1 ] &&
		printf '%s\n' "$1" | grep -Eq "^\{\"total\":[0-9]+,\"free\":[0-9]+,\"page_size\":[0-9]+,\"waiters\":[0-9]+,\"storage\":$p,\"execution\":$p\}\$"
}

squash() {
	awk '{ $1 = $1; print }'
}

# The pid namespace case's reader: tell it to stop and wait for it.
ns_stop() {
	if [ -n "$ns_job" ]; then
		touch "$tmp/ns.done"
		wait $ns_job
		ns_job=
	fi
}

cleanup() {
	ns_stop
	unhold
	[ -z "$bound" ] || umount /sys/kernel/debug
	bound=
	if [ -n "$unloaded" ]; then
		insmod $ko total="$T" storage_pct="$pct"
		unloaded=
	fi
	if [ -n "$made_etc" ]; then
		rm -rf /etc
		made_etc=
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "TAP version 13"

T=$(cat $params/total)
pct=$(cat $params/storage_pct)
S=$((T / pg * pct / 100 * pg))
E=$((T - S))
echo "# total=$T storage_pct=$pct: storage quota $S, execution quota $E"

# --- stats on an idle device -------------------------------------------

run stats --json
js=$out
[ $rc = 0 ] && [ -z "$err" ] && json_schema "$js"
check $? "stats --json: one object with every key, integers only"
expect "$T $T $pg 0" "$(jget "$js" total) $(jget "$js" free) $(jget "$js" page_size) $(jget "$js" waiters)" \
	"stats --json: total, free, page_size, waiters"
expect "$S 0 0 0 $S" "$(jget "$js" storage.quota) $(jget "$js" storage.used) $(jget "$js" storage.borrowed) $(jget "$js" storage.pinned) $(jget "$js" storage.free)" \
	"stats --json: storage quota, used, borrowed, pinned, free"
expect "$E 0 0 0 $E" "$(jget "$js" execution.quota) $(jget "$js" execution.used) $(jget "$js" execution.borrowed) $(jget "$js" execution.pinned) $(jget "$js" execution.free)" \
	"stats --json: execution quota, used, borrowed, pinned, free"

run stats --bytes
[ $rc = 0 ] && [ -z "$err" ]
check $? "stats --bytes exits 0, silent on stderr"
expect "$S 0 0 0 $S" "$(row "$out" storage)" "stats --bytes: storage row"
expect "$E 0 0 - $E" "$(row "$out" execution)" "stats --bytes: execution row"
expect "$T 0 - - $T" "$(row "$out" total)" "stats --bytes: total row"

run stats
hS=$(human $S)
hE=$(human $E)
hT=$(human $T)
expect "memmgr: $hT reserved, $hT free, 0 requests held now" \
	"$(printf '%s\n' "$out" | head -n 1)" "stats: the summary line"
expect "$hS 0B 0B 0B $hS" "$(row "$out" storage)" "stats: storage row in sizes such as $hS"
expect "$hE 0B 0B - $hE" "$(row "$out" execution)" "stats: execution row"
expect "$(rep . 50) $(rep . 50)" "$(bar "$out" storage) $(bar "$out" execution)" \
	"stats: both bars empty"

# --- with memory taken by other processes -----------------------------

if hold exec $MiB 1 && ex_pid=$hold_pid &&
	hold storage $((3 * MiB)) 7 && st_pid=$hold_pid &&
	hold exec 100 2 && small_pid=$hold_pid; then
	check 0 "memmgr_hold: 1 MiB and 100 bytes of execution, 3 MiB of storage"
else
	check 1 "memmgr_hold: 1 MiB and 100 bytes of execution, 3 MiB of storage"
fi
eu=$((MiB + pg))	# 100 bytes are one chunk: one page
su=$((3 * MiB))
run stats --json
js=$out
json_schema "$js"
check $? "stats --json in use: the same schema"
expect "$eu 0 $((E - eu))" "$(jget "$js" execution.used) $(jget "$js" execution.borrowed) $(jget "$js" execution.free)" \
	"stats --json: execution used, borrowed, free follow the allocations"
expect "$su $su $((S - su))" "$(jget "$js" storage.used) $(jget "$js" storage.pinned) $(jget "$js" storage.free)" \
	"stats --json: storage used, pinned, free follow the allocations"
expect "$((T - su - eu))" "$(jget "$js" free)" "stats --json: free"

# Execution takes its whole quota more: it borrows from storage.
if hold exec $E 3; then
	check 0 "memmgr_hold: all of execution's quota more"
else
	check 1 "memmgr_hold: all of execution's quota more"
fi
eu=$((eu + E))
lent=$((eu - E))
run stats --json
js=$out
expect "$eu $lent 0" "$(jget "$js" execution.used) $(jget "$js" execution.borrowed) $(jget "$js" execution.free)" \
	"stats --json: execution borrows what it uses above its quota"
expect "$((S - su - lent)) $((S - su - lent))" "$(jget "$js" storage.free) $(jget "$js" free)" \
	"stats --json: storage's free part shrinks by what it lent"
run stats --bytes
expect "$S $su 0 $su $((S - su - lent))" "$(row "$out" storage)" \
	"stats --bytes: storage row with memory lent"
expect "$E $eu $lent - 0" "$(row "$out" execution)" \
	"stats --bytes: execution row while borrowing"
expect "$T $((su + eu)) - - $((S - su - lent))" "$(row "$out" total)" \
	"stats --bytes: total row adds up"
run stats
pinned_cols=$(cols $su $S)
lent_cols=$(($(cols $((su + lent)) $S) - pinned_cols))
expect "$(rep '#' $pinned_cols)$(rep = $lent_cols)$(rep . $((50 - pinned_cols - lent_cols)))" \
	"$(bar "$out" storage)" "stats: storage bar: pinned (#), lent (=), free (.)"
expect "$(rep '#' 50)" "$(bar "$out" execution)" "stats: execution bar full"
expect "$hE $(human $eu) $(human $lent) - 0B" "$(row "$out" execution)" \
	"stats: execution row in sizes"

# One more client, of a page of storage, named with a space, a newline, a
# backslash and a byte outside ASCII (12 bytes: the kernel keeps 15).  The
# kernel's file has the name as one word, those bytes as \ooo; memmgrctl's
# table shows it so, its JSON gives back the name itself.
nm=$(printf 'mm hold\nx\\y\351')
nm_esc='mm\040hold\012x\134y\351'
nm_json='mm hold\u000ax\\y\u00e9'
if [ -r $clients_file ]; then
	if hold -n "$nm" storage $pg 9; then
		nm_pid=$hold_pid
		check 0 "memmgr_hold -n: a page of storage under a name with a space and a newline"
	else
		nm_pid=none
		check 1 "memmgr_hold -n: a page of storage under a name with a space and a newline"
	fi
	grep -Fqx "$nm_pid $nm_esc $pg 0" $clients_file
	r=$?
	check $r "debugfs clients: the name on one line, its space, newline, backslash and byte 0351 in octal"
	[ $r = 0 ] || sed 's/^/# /' $clients_file
	run clients --bytes
	got=$(printf '%s\n' "$out" | squash | grep -E "^($ex_pid|$st_pid|$small_pid|$nm_pid) " | sort -n)
	want=$(printf '%s\n' "$ex_pid memmgr_hold 0 $MiB" \
		"$st_pid memmgr_hold $su 0" "$small_pid memmgr_hold 0 $pg" \
		"$nm_pid $nm_esc $pg 0" | sort -n)
	[ $rc = 0 ] && [ "$got" = "$want" ]
	check $? "clients --bytes: each memmgr_hold with its bytes, the escaped name as the kernel has it (kernel file)"
	[ $rc = 0 ] || echo "# $err"
	expect "total $((su + pg)) $eu" "$(printf '%s\n' "$out" | squash | grep '^total ')" \
		"clients --bytes: the total row adds up (kernel file)"
	run clients --json
	printf '%s\n' "$out" |
		grep -Fq "{\"pid\":$st_pid,\"comm\":\"memmgr_hold\",\"storage_bytes\":$su,\"exec_bytes\":0}"
	check $? "clients --json: the storage holder's object (kernel file)"
	printf '%s\n' "$out" |
		grep -Fq "{\"pid\":$nm_pid,\"comm\":\"$nm_json\",\"storage_bytes\":$pg,\"exec_bytes\":0}"
	check $? "clients --json: the named client's object, its name unescaped (kernel file)"
else
	cannot_run "memmgr_hold -n: a named client" "$clients_file is absent"
	cannot_run "debugfs clients: a name escaped" "$clients_file is absent"
	cannot_run "clients: the kernel's own file" "$clients_file is absent"
	cannot_run "clients --bytes: total row (kernel file)" "$clients_file is absent"
	cannot_run "clients --json (kernel file)" "$clients_file is absent"
	cannot_run "clients --json: a named client (kernel file)" "$clients_file is absent"
fi

unhold
run stats --json
expect "0 0 $T" "$(jget "$out" storage.used) $(jget "$out" execution.used) $(jget "$out" free)" \
	"stats --json: everything back once the holders are killed"

# --- clients: pids as the reader's pid namespace numbers them -----------

# A client outside holds 2 pages of storage; a reader in a new pid
# namespace starts a client there with 1 page and lists the clients: it
# sees its own client by the pid it has in that namespace and the one
# outside as pid 0 (it has no pid there).  Read from outside, the client
# inside has its pid outside (from its NSpid line).
if [ ! -e /proc/self/ns/pid ]; then
	echo "# this kernel has no pid namespaces (CONFIG_PID_NS): clients in another pid namespace cannot be tried"
elif [ -r $clients_file ]; then
	hold storage $((2 * pg)) 21
	r=$?
	out_pid=$hold_pid
	check $r "memmgr_hold: 2 pages of storage outside the new pid namespace"
	# shellcheck disable=SC2016 # expanded by the shell in the namespace
	unshare -p -f sh -c '
		t=$1
		memmgr_hold storage $2 22 >"$t/ns.hold" 2>&1 &
		p=$!
		i=0
		while ! grep -q "^ready$" "$t/ns.hold" && [ $i -lt 200 ] &&
			kill -0 $p 2>/dev/null; do
			i=$((i + 1))
			usleep 50000
		done
		memmgrctl clients --bytes >"$t/ns.out" 2>"$t/ns.err"
		echo $? >"$t/ns.rc"
		echo $p >"$t/ns.pid"
		i=0
		while [ ! -e "$t/ns.done" ] && [ $i -lt 1200 ]; do
			i=$((i + 1))
			usleep 50000
		done
		kill $p
		wait $p
	' sh "$tmp" $pg >"$tmp/ns.log" 2>&1 &
	ns_job=$!
	i=0
	while [ ! -s "$tmp/ns.pid" ] && [ $i -lt 400 ] && kill -0 $ns_job 2>/dev/null; do
		i=$((i + 1))
		usleep 50000
	done
	in_pid=$(cat "$tmp/ns.pid" 2>/dev/null)
	[ -n "$in_pid" ]
	check $? "unshare -p -f: a reader and a client (pid $in_pid) in a new pid namespace"
	[ -n "$in_pid" ] || sed 's/^/# /' "$tmp/ns.log" "$tmp/ns.hold" 2>/dev/null
	# The inner client's pid outside: its NSpid line is "outer inner".
	in_outer=none
	for f in /proc/[0-9]*/status; do
		if grep -Eq "^NSpid:[[:space:]]+[0-9]+[[:space:]]+$in_pid\$" "$f" 2>/dev/null &&
			grep -q '^Name:[[:space:]]*memmgr_hold$' "$f" 2>/dev/null; then
			in_outer=${f#/proc/}
			in_outer=${in_outer%/status}
		fi
	done
	got=$(squash <"$tmp/ns.out" | grep ' memmgr_hold ' | sort)
	want=$(printf '%s\n' "0 memmgr_hold $((2 * pg)) 0" \
		"$in_pid memmgr_hold $pg 0" | sort)
	[ "$(cat "$tmp/ns.rc")" = 0 ] && [ "$got" = "$want" ]
	r=$?
	check $r "clients in the new pid namespace: its own client as pid $in_pid, the one outside as pid 0"
	[ $r = 0 ] || sed 's/^/# /' "$tmp/ns.out" "$tmp/ns.err"
	run clients --bytes
	got=$(printf '%s\n' "$out" | squash | grep ' memmgr_hold ' | sort)
	want=$(printf '%s\n' "$out_pid memmgr_hold $((2 * pg)) 0" \
		"$in_outer memmgr_hold $pg 0" | sort)
	[ $rc = 0 ] && [ "$in_outer" != "$in_pid" ] && [ "$got" = "$want" ]
	r=$?
	check $r "clients outside: the client in the new namespace as pid $in_outer, the other as pid $out_pid"
	[ $r = 0 ] || printf '%s\n' "$out" "$err" | sed 's/^/# /'
	ns_stop
	unhold
else
	cannot_run "memmgr_hold: 2 pages of storage outside a new pid namespace" "$clients_file is absent"
	cannot_run "unshare -p -f: a reader and a client in a new pid namespace" "$clients_file is absent"
	cannot_run "clients in a new pid namespace" "$clients_file is absent"
	cannot_run "clients outside: a client in a new pid namespace" "$clients_file is absent"
fi

# --- clients: the parser, on a fixture bind-mounted over debugfs --------

fixture() {
	mkdir -p "$tmp/dbg/memmgr"
	printf '%s' "$1" >"$tmp/dbg/memmgr/clients"
}

# Names as the kernel escapes them (\ooo for space, backslash and bytes
# outside printable ASCII), an empty name, and pid 0 (a client outside the
# reader's pid namespace).
fixture 'pid comm storage_bytes exec_bytes
123 memmgr_test 4096 8192
4567 a"b\134c 0 1610612736
0 tab\011\040sp\351 4096 0
89  0 4096
'
if mount -o bind "$tmp/dbg" /sys/kernel/debug; then
	bound=1
	check 0 "fixture bind-mounted on /sys/kernel/debug"
else
	check 1 "fixture bind-mounted on /sys/kernel/debug"
fi
run clients --bytes
expect "0" "$rc" "clients --bytes on the fixture exits 0"
expect 'PID COMM STORAGE EXEC
123 memmgr_test 4096 8192
4567 a"b\134c 0 1610612736
0 tab\011\040sp\351 4096 0
89 0 4096
total 8192 1610625024' "$(printf '%s\n' "$out" | squash)" \
	"clients --bytes: a row per line, names escaped as in the file, and the total"
# The COMM column is as wide as the widest name escaped (17 here).
expect "$(printf '%8s %-17s %10s %10s' 89 '' 0 4096)" \
	"$(printf '%s\n' "$out" | sed -n 5p)" \
	"clients --bytes: the row of the empty name, columns in place"
run clients
expect 'PID COMM STORAGE EXEC
123 memmgr_test 4.0Ki 8.0Ki
4567 a"b\134c 0B 1.5Gi
0 tab\011\040sp\351 4.0Ki 0B
89 0B 4.0Ki
total 8.0Ki 1.5Gi' "$(printf '%s\n' "$out" | squash)" "clients: sizes"
run clients --json
expect '[{"pid":123,"comm":"memmgr_test","storage_bytes":4096,"exec_bytes":8192},{"pid":4567,"comm":"a\"b\\c","storage_bytes":0,"exec_bytes":1610612736},{"pid":0,"comm":"tab\u0009 sp\u00e9","storage_bytes":4096,"exec_bytes":0},{"pid":89,"comm":"","storage_bytes":0,"exec_bytes":4096}]' \
	"$out" "clients --json: an array, names unescaped, then in JSON's escapes"

fixture 'pid comm storage_bytes exec_bytes
'
run clients -b
expect "0 PID COMM STORAGE EXEC
total 0 0" "$rc $(printf '%s\n' "$out" | squash)" "clients: no clients"

fixture 'pid comm storage_bytes exec_bytes
12 x 1
'
run clients
expect "1 memmgrctl: $clients_file:2: unexpected line '12 x 1'" "$rc $err" \
	"clients: a short line is an error"
fixture 'pid comm storage_bytes exec_bytes
12 x 1 -5
'
run clients
expect "1 memmgrctl: $clients_file:2: unexpected line '12 x 1 -5'" "$rc $err" \
	"clients: a negative figure is an error"
# bad_name COMM WHAT: a name the kernel would not write is an error.
bad_name() {
	fixture "pid comm storage_bytes exec_bytes
12 $1 1 2
"
	run clients
	expect "1 memmgrctl: $clients_file:2: unexpected line '12 $1 1 2'" \
		"$rc $err" "clients: a name with $2 is an error"
}
bad_name 'a b' "a bare space (5 fields)"
bad_name 'a\9bc' "a backslash and no octal digits"
bad_name 'a\12' "a backslash and 2 octal digits"
bad_name 'a\000' "an escaped NUL"
bad_name 'a\400' "an escape above 0377"
bad_name "$(printf 'a\tb')" "a tab not escaped"
fixture 'pid comm exec_bytes
'
run clients
expect "1 memmgrctl: $clients_file:1: unexpected line 'pid comm exec_bytes'" \
	"$rc $err" "clients: another header is an error"
fixture ''
run clients
expect "1 memmgrctl: $clients_file: empty, expected 'pid comm storage_bytes exec_bytes'" \
	"$rc $err" "clients: an empty file is an error"
rm "$tmp/dbg/memmgr/clients"
run clients
expect "1 memmgrctl: debugfs is not mounted on /sys/kernel/debug: run 'mount -t debugfs none /sys/kernel/debug'" \
	"$rc $err" "clients: no file and no debugfs there"
umount /sys/kernel/debug
check $? "fixture unmounted"
bound=

if grep -q ' /sys/kernel/debug debugfs ' /proc/mounts; then
	umount /sys/kernel/debug
	run clients
	mount -t debugfs debugfs /sys/kernel/debug
	expect "1 memmgrctl: debugfs is not mounted on /sys/kernel/debug: run 'mount -t debugfs none /sys/kernel/debug'" \
		"$rc $err" "clients: debugfs unmounted"
else
	cannot_run "clients: debugfs unmounted" "debugfs was not mounted"
fi

# --- --watch ------------------------------------------------------------

memmgrctl stats --watch 0.2 >"$tmp/watch" 2>&1 &
w=$!
sleep 1
kill -INT $w
wait $w
rc=$?
esc=$(printf '\033')
frames=$(grep -c "^${esc}\[H${esc}\[2JEvery 0.2s: memmgrctl stats" "$tmp/watch")
[ $rc = 0 ] && [ "$frames" -ge 2 ] && ! kill -0 $w 2>/dev/null
check $? "stats --watch 0.2: $frames frames on a cleared screen, exit 0 on SIGINT"
expect "$frames" "$(grep -c '^storage  *[0-9.]*[KMGT]i' "$tmp/watch")" \
	"stats --watch: each frame has the storage row"

memmgrctl stats --json --watch 0.2 >"$tmp/watch" 2>&1 &
w=$!
sleep 1
kill -TERM $w
wait $w
rc=$?
bad=0
lines=0
while read -r line; do
	lines=$((lines + 1))
	json_schema "$line" || bad=$((bad + 1))
done <"$tmp/watch"
[ $rc = 0 ] && [ $lines -ge 2 ] && [ $bad = 0 ]
check $? "stats --json --watch: $lines objects, one per line, exit 0 on SIGTERM"

# --- usage --------------------------------------------------------------

run
[ $rc = 2 ] && [ -z "$out" ] && printf '%s\n' "$err" | grep -q '^Usage: memmgrctl COMMAND'
check $? "no command: exit 2, usage on stderr"
run bogus
[ $rc = 2 ] && [ -z "$out" ] && [ "$(printf '%s\n' "$err" | head -n 1)" = "memmgrctl: unknown command 'bogus'" ]
check $? "an unknown command: exit 2 and says which"
for args in "stats --watch 0" "stats --watch x" "stats --watch" "stats --nope" \
	"stats -q" "stats extra" "clients --watch 1" "help extra"; do
	# shellcheck disable=SC2086
	run $args
	[ $rc = 2 ] && [ -z "$out" ] && printf '%s\n' "$err" | grep -q '^Usage:'
	check $? "memmgrctl $args: exit 2, usage on stderr"
done
for args in --help -h help "stats --help"; do
	# shellcheck disable=SC2086
	run $args
	[ $rc = 0 ] && [ -z "$err" ] && printf '%s\n' "$out" | grep -q '^Usage: memmgrctl COMMAND' &&
		printf '%s\n' "$out" | grep -q 'evicted_bytes'
	check $? "memmgrctl $args: exit 0, usage with the JSON keys on stdout"
done

# --- permission denied: as nobody ---------------------------------------

# A busybox guest has no /etc: make one with a nobody user, for su.
if [ ! -e /etc ]; then
	mkdir /etc
	made_etc=1
	echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >/etc/passwd
	echo 'nogroup:x:65534:' >/etc/group
fi
if grep -q '^nobody:' /etc/passwd 2>/dev/null; then
	su -s /bin/sh nobody -c 'memmgrctl stats' >"$tmp/out" 2>"$tmp/err"
	expect "1 memmgrctl: /dev/memmgr: permission denied (run as root or as a member of its group)" \
		"$? $(cat "$tmp/err")" "stats as nobody: permission denied, exit 1"
	su -s /bin/sh nobody -c 'memmgrctl clients' >"$tmp/out" 2>"$tmp/err"
	expect "1 memmgrctl: $clients_file: permission denied (debugfs is root-only: run as root)" \
		"$? $(cat "$tmp/err")" "clients as nobody: permission denied, exit 1"
else
	cannot_run "stats as nobody" "no user nobody in /etc/passwd"
	cannot_run "clients as nobody" "no user nobody in /etc/passwd"
fi

# --- memmgr not loaded --------------------------------------------------

if rmmod memmgr; then
	unloaded=1
	check 0 "rmmod memmgr"
else
	check 1 "rmmod memmgr"
fi
run stats
expect "1 $not_loaded" "$rc $err" "stats without memmgr: exit 1, says how to load it"
expect "" "$out" "stats without memmgr: nothing on stdout"
run clients
expect "1 $not_loaded" "$rc $err" "clients without memmgr: exit 1, says how to load it"
insmod $ko total="$T" storage_pct="$pct"
check $? "insmod memmgr.ko total=$T storage_pct=$pct again"
unloaded=
run stats --json
expect "0 $T" "$rc $(jget "$out" total)" "stats after reloading"

cleanup
trap - EXIT
echo "1..$n"
totals
