#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# SQLite on memmgr (issue 14), in the VM with memmgr loaded with
# total=32M storage_pct=25 (a storage quota of 8 MiB; 24 MiB of execution
# memory, as three processes' execution allocators hold up to 6 MiB each
# in chunks): SQLite's programs with memmgr's page cache and allocator
# give the same results as stock SQLite, with evictions.
#   1-3  speedtest1 --verify (build/sqlite/speedtest1): its verification
#        hash stock, with MEMMGR_SQLITE=pcache and with pcache,malloc, on a
#        file database larger than the storage quota, with a page cache
#        larger than the quota and smaller than the database, so that
#        memmgr evicts pages: the page cache's evicted counter and the
#        kernel's storage evictions are both above 0
#   4-6  memmgr_sqlite_multi: three processes at once, each with its own
#        file database larger than a third of the quota: stock first, then
#        with pcache,malloc; the same results, evictions in every process
#   7-9  Debian's sqlite3 shell (dynamic, preload.tar) on a script, without
#        and with LD_PRELOAD=libmemmgr_sqlite.so MEMMGR_SQLITE=pcache,malloc:
#        the same output, and the page cache's stats line shows fetches
# TAP, with the kselftest totals.  Figures (hashes, eviction counts,
# times) are on '#' lines.  ST_SIZE, ST_CACHE, MULTI_ROWS and MULTI_PASSES
# in the environment make it smaller, with a smaller quota: make check's
# debug-kernel run is 5, 300, 4000 and 1 with total=16M storage_pct=6.
. "$(dirname "$0")/memmgr_tap.sh"

# speedtest1: about 10 MiB of database, a cache of 2400 pages (9.4 MiB of
# page data).
ST_SIZE=${ST_SIZE:-40}
ST_CACHE=${ST_CACHE:-2400}
# memmgr_sqlite_multi: three databases of 4.5 MiB, each caching all of it.
MULTI_PROCS=3
MULTI_ROWS=${MULTI_ROWS:-24000}
MULTI_PASSES=${MULTI_PASSES:-2}
PRELOAD_LIB=/usr/lib/x86_64-linux-gnu/libmemmgr_sqlite.so
tmp=/tmp/memmgr-sqlite
stats=/sys/module/memmgr/stats

echo "TAP version 13"
echo "1..9"
rm -rf $tmp
mkdir -p $tmp
quota=$(cat $stats/storage_quota)
echo "# total $(cat $stats/total) storage quota $quota evict_policy $(cat /sys/module/memmgr/parameters/evict_policy)"

# The kernel's storage evictions so far.
kernel_evictions() {
	memmgrctl stats --json |
		sed -n 's/.*"storage":{[^}]*"evictions":\([0-9]*\).*/\1/p'
}

# field NAME FILE: the number after NAME on the page cache's stats line.
field() {
	sed -n "s/^memmgr_sqlite:.* $1 \([0-9]*\).*/\1/p" "$2" | head -n 1
}

# speedtest MODE: speedtest1 with MEMMGR_SQLITE=MODE (stock: unset),
# output in $tmp/st-MODE.out; the status.
speedtest() {
	local out=$tmp/st-$1.out rc

	rm -f $tmp/st.db $tmp/st.db-journal
	if [ "$1" = stock ]; then
		speedtest1 --size "$ST_SIZE" --cachesize "$ST_CACHE" --verify \
			$tmp/st.db >"$out" 2>&1
	else
		MEMMGR_SQLITE=$1 speedtest1 --size "$ST_SIZE" \
			--cachesize "$ST_CACHE" --verify $tmp/st.db >"$out" 2>&1
	fi
	rc=$?
	[ $rc = 0 ] || { echo "# speedtest1 ($1) exit $rc:"; tail -n 5 "$out" | sed 's/^/#   /'; }
	return $rc
}

hash_of() {
	sed -n 's/^Verification Hash: //p' "$1"
}

total_time() {
	sed -n 's/^ *TOTAL\.*  *\([0-9.]*s\)$/\1/p' "$1"
}

speedtest stock
r=$?
stock_hash=$(hash_of $tmp/st-stock.out)
db=$(stat -c %s $tmp/st.db 2>/dev/null || echo 0)
echo "# speedtest1 --size $ST_SIZE --cachesize $ST_CACHE --verify, stock: hash '$stock_hash', $(total_time $tmp/st-stock.out), database $db bytes"
[ $r = 0 ] && [ -n "$stock_hash" ] && [ "$db" -gt "$quota" ] &&
	[ $((ST_CACHE * 4096)) -gt "$quota" ] && [ $((ST_CACHE * 4096)) -lt "$db" ]
check $? "speedtest1 stock: a hash, database larger than the storage quota, cache between the two"

for mode in pcache pcache,malloc; do
	k0=$(kernel_evictions)
	speedtest $mode
	r=$?
	k1=$(kernel_evictions)
	out=$tmp/st-$mode.out
	h=$(hash_of "$out")
	ev=$(field evicted "$out")
	echo "# speedtest1 $mode: hash '$h', $(total_time "$out"), $(grep '^memmgr_sqlite:' "$out"), kernel storage evictions $((k1 - k0))"
	[ $r = 0 ] && eq "hash ($mode)" "$h" "$stock_hash" &&
		[ "${ev:-0}" -gt 0 ] && [ $((k1 - k0)) -gt 0 ]
	check $? "speedtest1 MEMMGR_SQLITE=$mode: the stock hash, evicted ${ev:-?} (kernel $((k1 - k0)))"
done
rm -f $tmp/st.db $tmp/st.db-journal

# memmgr_sqlite_multi MODE: its stdout in $tmp/multi-MODE.out, stderr in
# .err; the status.
multi() {
	local rc

	rm -f $tmp/multi-*.db
	if [ "$1" = stock ]; then
		memmgr_sqlite_multi -n $MULTI_PROCS -r "$MULTI_ROWS" \
			-p "$MULTI_PASSES" $tmp >$tmp/multi-$1.out 2>$tmp/multi-$1.err
	else
		MEMMGR_SQLITE=$1 memmgr_sqlite_multi -n $MULTI_PROCS \
			-r "$MULTI_ROWS" -p "$MULTI_PASSES" $tmp \
			>$tmp/multi-$1.out 2>$tmp/multi-$1.err
	fi
	rc=$?
	sed 's/^/# /' $tmp/multi-$1.err
	return $rc
}

t0=$(date +%s)
multi stock
r=$?
lines=$(wc -l <$tmp/multi-stock.out)
echo "# memmgr_sqlite_multi stock: $lines result lines, $(($(date +%s) - t0)) s"
[ $r = 0 ] && [ "$lines" -gt 0 ] &&
	[ "$(grep -c ': rows 1 hash ' $tmp/multi-stock.out)" -gt 0 ]
check $? "$MULTI_PROCS processes, stock: all complete"

t0=$(date +%s)
multi pcache,malloc
r=$?
echo "# memmgr_sqlite_multi pcache,malloc: $(($(date +%s) - t0)) s"
[ $r = 0 ] && cmp $tmp/multi-stock.out $tmp/multi-pcache,malloc.out >&2
check $? "$MULTI_PROCS processes, MEMMGR_SQLITE=pcache,malloc: all complete, the same results as stock"

bad=0
share=$((quota / MULTI_PROCS))
i=0
while [ $i -lt $MULTI_PROCS ]; do
	line=$(grep "^multi $i: db_bytes" $tmp/multi-pcache,malloc.err)
	bytes=$(echo "$line" | sed -n 's/.* db_bytes \([0-9]*\).*/\1/p')
	ev=$(echo "$line" | sed -n 's/.* evicted \([0-9]*\).*/\1/p')
	if [ "${bytes:-0}" -le $share ] || [ "${ev:-0}" -le 0 ]; then
		echo "# process $i: database ${bytes:-?} bytes (share $share), evicted ${ev:-?}"
		bad=1
	fi
	i=$((i + 1))
done
check $bad "$MULTI_PROCS processes: each database larger than its share ($share bytes), evictions in each"

# The shell's script: 30,000 rows (3 MiB, more than its default cache),
# an index, aggregates, updates, deletes, a check.
cat >$tmp/script.sql <<'EOF'
CREATE TABLE t(id INTEGER PRIMARY KEY, g INTEGER, v TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000)
INSERT INTO t(g, v) SELECT (x * 7919) % 101,
	substr(replace(hex(zeroblob(100)), '00', printf('%02d', x % 97)), 1, 20 + (x * 31) % 150)
	FROM c;
CREATE INDEX t_g ON t(g);
SELECT count(*), sum(g), sum(length(v)), min(v), max(v) FROM t;
SELECT g, count(*), sum(id), avg(length(v)) FROM t GROUP BY g ORDER BY g LIMIT 20;
UPDATE t SET v = v || 'x', g = (g + 3) % 101 WHERE id % 5 = 0;
DELETE FROM t WHERE id % 11 = 0;
SELECT g, count(*), total(length(v)) FROM t WHERE g BETWEEN 10 AND 30 GROUP BY g;
SELECT id, g, length(v) FROM t ORDER BY v DESC, id LIMIT 10;
PRAGMA integrity_check;
EOF

sqlite3 $tmp/p-stock.db <$tmp/script.sql >$tmp/p-stock.out 2>$tmp/p-stock.err
r=$?
[ $r = 0 ] || sed 's/^/# /' $tmp/p-stock.err
echo "# sqlite3 stock: $(wc -l <$tmp/p-stock.out) lines of output, last '$(tail -n 1 $tmp/p-stock.out)'"
[ $r = 0 ] && [ ! -s $tmp/p-stock.err ] && [ "$(tail -n 1 $tmp/p-stock.out)" = ok ]
check $? "sqlite3 shell (dynamic) runs the script, stock"

LD_PRELOAD=$PRELOAD_LIB MEMMGR_SQLITE=pcache,malloc MEMMGR_SQLITE_STATS=1 \
	sqlite3 $tmp/p-mm.db <$tmp/script.sql >$tmp/p-mm.out 2>$tmp/p-mm.err
r=$?
sed 's/^/# /' $tmp/p-mm.err
[ $r = 0 ] && cmp $tmp/p-stock.out $tmp/p-mm.out >&2
check $? "sqlite3 shell with LD_PRELOAD=libmemmgr_sqlite.so MEMMGR_SQLITE=pcache,malloc: the same output"

fetches=$(field fetches $tmp/p-mm.err)
[ "${fetches:-0}" -gt 0 ] && [ "$(grep -vc '^memmgr_sqlite: ' $tmp/p-mm.err)" = 0 ]
check $? "sqlite3 shell with LD_PRELOAD: memmgr's page cache served ${fetches:-no} fetches, nothing else on stderr"

rm -rf $tmp
totals
