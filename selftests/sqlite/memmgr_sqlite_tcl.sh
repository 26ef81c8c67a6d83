#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# SQLite's own TCL test suite on memmgr, in the VM guest:
#
#   memmgr_sqlite_tcl.sh [--stock | --flags F] [--jobs N] [--pressure]
#                        [TEST...]
#
# Runs each test file of tcl_tests.txt (or the TESTs named, without
# .test) with the testfixture of testfixture.mk, which installs memmgr's
# page cache and allocator (MEMMGR_SQLITE=pcache,malloc; --flags: pcache
# or malloc alone; --stock: nothing, stock SQLite), as an unprivileged
# user who has /dev/memmgr through the group memmgr (the documented way,
# userspace/60-memmgr.rules), each file in a scratch directory of its own,
# N files at a time (default 1: with more, one file's cache may find the
# storage quota full of the other's pinned pages, and then spill early,
# which changes the WAL sizes some tests assert).
#
# One TAP test per file: ok when testfixture exits 0 and says "0 errors
# out of M tests", and, with memmgr, when its processes installed memmgr
# and none failed to.  Then, with --pressure and the page cache (make
# check runs it so): a transaction that rolls back to a savepoint in WAL
# mode (walcksum-2.1's) 40 times beside a second process that keeps the
# storage quota full of pinned pages, so that the first one's pages come
# from execution memory (createFlag 2) and its unpinned ones are evicted
# by the other process: every statement must succeed and every database
# pass PRAGMA integrity_check (with pcache,malloc, 1 KiB pages packed
# against SQLite's own 1 KiB buffers once failed 25 of 40:
# memmgr_sqlite.c, fallback_page()).  And that memmgr was used: storage
# allocations and evictions in memmgr's counters (memmgrctl stats) and
# evicted pages fetched again in the page caches'; with the allocator,
# execution allocations.  Prints each file's time and test count, the
# kselftest totals line; exits non-zero when a test failed.
#
# Runs as root, with memmgr loaded (a small storage quota, a few MB, so
# that pages are evicted) and the tarball of testfixture.mk unpacked at /:
# /usr/bin/testfixture, the test files under /usr/share/memmgr-sqlite,
# Tcl's library in /usr/share/tcltk/tcl8.6.
set -eu

share=/usr/share/memmgr-sqlite
testdir=$share/test
user=sqltest
work=/tmp/memmgr-sqlite-tcl
# Longest a file may take: malloc.test takes about 120 s under emulation.
limit=900

mode=memmgr
flags=pcache,malloc
jobs=1
with_pressure=0
while [ $# -gt 0 ]; do
	case "$1" in
	--stock) mode=stock; shift ;;
	--pressure) with_pressure=1; shift ;;
	--flags) flags=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	-*) echo "usage: $0 [--stock | --flags F] [--jobs N] [--pressure] [TEST...]" >&2
		exit 2 ;;
	*) break ;;
	esac
done
if [ $# -gt 0 ]; then
	tests=$*
else
	tests=$(sed 's/#.*//' "$share/tcl_tests.txt")
fi
uses_pcache=0
uses_malloc=0
if [ "$mode" = memmgr ]; then
	case ",$flags," in *,pcache,*) uses_pcache=1 ;; esac
	case ",$flags," in *,malloc,*) uses_malloc=1 ;; esac
fi

# The user and its groups: busybox has no adduser here.
mkdir -p /etc
touch /etc/passwd /etc/group
grep -q '^root:' /etc/passwd ||
	echo 'root:x:0:0:root:/root:/bin/sh' >>/etc/passwd
grep -q '^root:' /etc/group || echo 'root:x:0:' >>/etc/group
grep -q "^$user:" /etc/passwd ||
	echo "$user:x:1000:1000:SQLite tests:/tmp:/bin/sh" >>/etc/passwd
grep -q "^$user:" /etc/group || echo "$user:x:1000:" >>/etc/group
grep -q '^memmgr:' /etc/group || echo "memmgr:x:990:$user" >>/etc/group
if [ "$mode" = memmgr ]; then
	chgrp memmgr /dev/memmgr
	chmod 0660 /dev/memmgr
fi

rm -rf "$work"
mkdir -p "$work/logs" "$work/run"
chmod 0755 "$work"
chown "$user:$user" "$work/logs" "$work/run"

export TCL_LIBRARY=/usr/share/tcltk/tcl8.6
if [ "$mode" = memmgr ]; then
	export MEMMGR_SQLITE="$flags"
else
	unset MEMMGR_SQLITE
fi
# The library's own messages go to stderr, which tests read through pipes.
unset MEMMGR_SQLITE_STATS MEMMGR_SQLITE_VERBOSE

# Seconds since boot, in hundredths.
now() {
	awk '{ printf "%d\n", $1 * 100 }' /proc/uptime
}

# A number from memmgrctl stats --json: pool $1, key $2, file $3.
stat_of() {
	sed -n "s/.*\"$1\":{\([^}]*\)}.*/\1/p" "$3" |
		sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}

# The sum of counter $1 over the lines of the hook's log $2.
sum_of() {
	awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) s += $(i + 1) }
		END { print s + 0 }' "$2"
}

# Runs COMMAND as $user in directory $1, its output in $2, hook log $3.
as_user() {
	dir=$1 out=$2 log=$3
	shift 3
	MEMMGR_SQLITE_TF_LOG=$log su -p -s /bin/sh "$user" -c \
		"cd $dir && exec $*" >"$out" 2>&1 </dev/null
}

# Runs test file $1; its result in $work/$1.result:
# "EXIT ERRORS TESTS HUNDREDTHS".
run_one() {
	t=$1
	dir=$work/run/$t
	mkdir -p "$dir"
	chown "$user:$user" "$dir"
	start=$(now)
	rc=0
	as_user "$dir" "$work/$t.out" "$work/logs/$t.stats" \
		timeout "$limit" testfixture "$testdir/$t.test" || rc=$?
	end=$(now)
	line=$(grep -a '^[0-9]* errors out of [0-9]* tests' "$work/$t.out" |
		tail -n 1)
	read -r errs tcount <<-EOF
	$(echo "$line" | sed -n 's/^\([0-9]*\) errors out of \([0-9]*\).*/\1 \2/p')
	EOF
	echo "$rc ${errs:--} ${tcount:--} $((end - start))" >"$work/$t.result"
	echo "# $t: ${line:-no summary line} (exit $rc, $((end - start)) cs)"
	rm -rf "$dir"
}

# A worker: takes the next file nobody took, until none is left.
worker() {
	for t in $tests; do
		mkdir "$work/claim.$t" 2>/dev/null || continue
		run_one "$t"
	done
}

# Did the processes of file $1 install memmgr, and none fail to?  (Some
# files fetch no page: mallocB.test, memsubsys2.test.)
stats_ok() {
	log=$work/logs/$1.stats
	if ! grep -aq ' installed ' "$log" 2>/dev/null; then
		echo "#   no process of $1 installed memmgr"
		return 1
	fi
	! grep -a 'install failed' "$log" | sed 's/^/#   /' | grep .
}

# The pressure check's two Tcl scripts.  pressure.tcl ARGS: a table of
# ROWS pages, rewritten in transactions that it holds open for a while
# (dirty pages stay pinned), until the file "stop" appears.
write_scripts() {
	cat >"$work/pressure.tcl" <<-'EOF'
	set rows [lindex $argv 0]
	sqlite3 db p.db
	db eval "PRAGMA cache_size = [expr {$rows * 2}]"
	db eval {
	  CREATE TABLE p(x);
	  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c
	    WHERE i < $rows)
	  INSERT INTO p SELECT randomblob(900) FROM c;
	}
	close [open ready w]
	while {![file exists stop]} {
	  db eval {BEGIN; UPDATE p SET x = randomblob(900);}
	  after 100
	  db eval {ROLLBACK}
	}
	db close
	EOF
	# rollback.tcl N: walcksum-2.1's transaction N times, each database
	# checked; prints "BAD of N bad".
	cat >"$work/rollback.tcl" <<-'EOF'
	set n [lindex $argv 0]
	set bad 0
	for {set i 0} {$i < $n} {incr i} {
	  file delete -force test.db test.db-wal test.db-journal
	  sqlite3 db test.db
	  set sql {
	    PRAGMA synchronous = NORMAL;
	    PRAGMA page_size = 1024;
	    PRAGMA journal_mode = WAL;
	    PRAGMA cache_size = 10;
	    CREATE TABLE t1(x PRIMARY KEY);
	    PRAGMA wal_checkpoint;
	    INSERT INTO t1 VALUES(randomblob(800));
	    BEGIN;
	  }
	  for {set j 0} {$j < 4} {incr j} {
	    append sql {INSERT INTO t1 SELECT randomblob(800) FROM t1;}
	  }
	  append sql {SAVEPOINT one;}
	  for {set j 0} {$j < 4} {incr j} {
	    append sql {INSERT INTO t1 SELECT randomblob(800) FROM t1;}
	  }
	  append sql {ROLLBACK TO one;}
	  for {set j 0} {$j < 4} {incr j} {
	    append sql {INSERT INTO t1 SELECT randomblob(800) FROM t1;}
	  }
	  append sql {COMMIT;}
	  if {[catch {db eval $sql} msg]} {
	    set r $msg
	  } elseif {[catch {db eval {
	    PRAGMA integrity_check; SELECT count(*) FROM t1
	  }} r]} {
	  }
	  if {$r ne "ok 256"} {
	    incr bad
	    if {$bad <= 3} { puts "iteration $i: [string range $r 0 120]" }
	  }
	  db close
	}
	puts "$bad of $n bad"
	EOF
}

# The pressure check; prints what it saw, returns non-zero on failure.
pressure_check() {
	quota=$(stat_of storage quota "$work/before.json")
	rows=$((quota * 2 / 4096))
	pdir=$work/run/pressure
	rdir=$work/run/rollback
	mkdir -p "$pdir" "$rdir"
	chown "$user:$user" "$pdir" "$rdir"
	as_user "$pdir" "$work/pressure.out" "$work/logs/pressure.stats" \
		testfixture "$work/pressure.tcl" "$rows" &
	ppid=$!
	i=0
	while [ ! -e "$pdir/ready" ] && [ "$i" -lt 600 ] &&
		kill -0 "$ppid" 2>/dev/null; do
		sleep 1
		i=$((i + 1))
	done
	rc=0
	as_user "$rdir" "$work/rollback.out" "$work/logs/rollback.stats" \
		timeout "$limit" testfixture "$work/rollback.tcl" 40 || rc=$?
	touch "$pdir/stop"
	wait "$ppid" || rc=$?
	sed 's/^/#   /' "$work/rollback.out"
	fb=$(sum_of fallbacks "$work/logs/rollback.stats")
	echo "#   $fb pages from execution memory, storage being full"
	[ "$rc" = 0 ] && grep -q '^0 of 40 bad$' "$work/rollback.out" &&
		[ "$fb" -gt 0 ]
}

[ "$mode" = stock ] || memmgrctl stats --json >"$work/before.json"
echo "# SQLite's TCL tests, ${MEMMGR_SQLITE:-stock SQLite}, $jobs at a time"
begin=$(now)
i=0
while [ "$i" -lt "$jobs" ]; do
	worker &
	i=$((i + 1))
done
wait
total=$(( $(now) - begin ))
pressure=1
if [ "$uses_pcache" = 1 ] && [ "$with_pressure" = 1 ]; then
	write_scripts
	pressure_check >"$work/pressure.why" 2>&1 || pressure=0
fi
[ "$mode" = stock ] || memmgrctl stats --json >"$work/after.json"

echo "TAP version 13"
count=0
for t in $tests; do
	count=$((count + 1))
done
count=$((count + (2 + with_pressure) * uses_pcache + uses_malloc))
echo "1..$count"
n=0
pass=0
fail=0
ntests=0
nfiles=0
evicted=0
for t in $tests; do
	n=$((n + 1))
	read -r rc errs tcount cs <"$work/$t.result"
	ok=1
	[ "$rc" = 0 ] && [ "$errs" = 0 ] || ok=0
	what="$tcount tests, $((cs / 100)).$((cs / 10 % 10)) s"
	if [ "$mode" = memmgr ]; then
		stats_ok "$t" >"$work/$t.why" || ok=0
		if [ -s "$work/logs/$t.stats" ]; then
			e=$(sum_of evicted "$work/logs/$t.stats")
			f=$(sum_of fetches "$work/logs/$t.stats")
			b=$(sum_of fallbacks "$work/logs/$t.stats")
			evicted=$((evicted + e))
			what="$what, $f fetches, $e evicted, $b fallbacks"
		fi
	fi
	if [ "$ok" = 1 ]; then
		pass=$((pass + 1))
		nfiles=$((nfiles + 1))
		ntests=$((ntests + tcount))
		echo "ok $n $t ($what)"
	else
		fail=$((fail + 1))
		echo "not ok $n $t ($what; exit $rc, $errs errors)"
		[ ! -s "$work/$t.why" ] || cat "$work/$t.why"
		grep -a -E '^!|^Error|^Failures on these tests|Unfreed memory|[Ss]egmentation|Abort' \
			"$work/$t.out" | head -n 30 | sed 's/^/#   /'
		tail -n 5 "$work/$t.out" | sed 's/^/#   | /'
	fi
done

# check STATUS DESCRIPTION: one more test point, passed when STATUS > 0.
check() {
	n=$((n + 1))
	if [ "$1" -gt 0 ]; then
		pass=$((pass + 1))
		echo "ok $n $2"
	else
		fail=$((fail + 1))
		echo "not ok $n $2"
	fi
}
b=$work/before.json a=$work/after.json
if [ "$uses_pcache" = 1 ] && [ "$with_pressure" = 1 ]; then
	cat "$work/pressure.why"
	check "$pressure" \
		"a savepoint rolled back in WAL mode beside a process that pins the storage quota"
fi
if [ "$uses_pcache" = 1 ]; then
	sa=$(( $(stat_of storage allocs "$a") - $(stat_of storage allocs "$b") ))
	se=$(( $(stat_of storage evictions "$a") - $(stat_of storage evictions "$b") ))
	check "$sa" "storage memory used: $sa allocations"
	check "$((se < evicted ? se : evicted))" \
		"pages evicted: $se storage evictions, $evicted pages fetched again"
fi
if [ "$uses_malloc" = 1 ]; then
	ea=$(( $(stat_of execution allocs "$a") - $(stat_of execution allocs "$b") ))
	check "$ea" "execution memory used: $ea allocations"
fi
echo "# $ntests SQLite tests passed in $nfiles files, $((total / 100)) s"
echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:0 error:0"
[ "$fail" -eq 0 ]
