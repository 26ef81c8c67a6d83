#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# SQLite on memmgr's benchmark (issue 14), in the VM (vm.sh --no-load: it
# loads memmgr itself), with build/sqlite/speedtest1:
#
#   bench_sqlite.sh [--reps N] [--size N] [--cache PAGES] [--evict-total SIZE]
#                   [--quick]
#
# (--quick: one rep at --size 5 --cache 200 --evict-total 2M, to see
# every case run end to end.)
# 1. file: speedtest1 --size N (default 40: about 10 s under TCG)
#    --cachesize PAGES (default 1000, 4 MB) on a file database in /tmp
#    (tmpfs; 11 MB at --size 40), memmgr loaded with total=256M (no
#    eviction): stock, MEMMGR_SQLITE=pcache and pcache,malloc, one after
#    the other, N times (--reps, default 3); medians and their ratios to
#    stock (targets: 1.05x with the page cache, 1.10x with the allocator
#    too).
# 2. memdb: the same with --memdb (an in-memory database: its cache is not
#    purgeable, never evicted).
# 3. eviction: memmgr reloaded with total=SIZE storage_pct=25
#    (--evict-total, default 8M: a storage quota of 2 MiB, half the cache,
#    and 6 MiB of execution memory: VACUUM pins more pages than the quota
#    holds, and the rest come from execution memory; with 2 MiB of it,
#    total=4M, VACUUM ran out of memory); MEMMGR_SQLITE=pcache
#    with evict_policy=random and lru (switched at run time), stock with
#    the same cache and stock with a cache of the quota's size, one after
#    the other: medians of time, the page cache's fetches and hit rate
#    (hits / fetches) and evicted count (from the wrapper's stats line),
#    the kernel's storage evictions (memmgrctl stats --json), and SQLite's
#    own pager hit rate (speedtest1 --stats) for all four.
# Times are speedtest1's TOTAL (its tests, not the process's start and
# exit).  Each run's figures are printed as it ends; the tables are
# printed between the lines @@memmgr-bench-sqlite-begin and -end.  Exit
# status 1 when a run failed.
set -eu

reps=3
size=40
cache=1000
evict_total=8M
ko=/lib/modules/memmgr.ko
db=/tmp/bench-sqlite.db
out=/tmp/bench-sqlite
while [ $# -gt 0 ]; do
	case "$1" in
	--reps) reps=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--cache) cache=$2; shift 2 ;;
	--evict-total) evict_total=$2; shift 2 ;;
	--quick) reps=1 size=5 cache=200 evict_total=2M; shift ;;
	*) echo "bench_sqlite: unknown option '$1'" >&2; exit 2 ;;
	esac
done
mkdir -p $out

load() {
	if grep -q '^memmgr ' /proc/modules; then
		rmmod memmgr
	fi
	insmod $ko "$@"
}

# The kernel's storage evictions so far.
kernel_evictions() {
	memmgrctl stats --json |
		sed -n 's/.*"storage":{[^}]*"evictions":\([0-9]*\).*/\1/p'
}

# run NAME MODE ARGS...: speedtest1 with MEMMGR_SQLITE=MODE (stock:
# unset); its output in $out/NAME.out, its TOTAL seconds appended to
# $out/NAME.times.
run() {
	local name=$1 mode=$2 rc=0 t k0

	shift 2
	rm -f $db $db-journal
	k0=$(kernel_evictions)
	if [ "$mode" = stock ]; then
		speedtest1 "$@" >$out/$name.out 2>&1 || rc=$?
	else
		MEMMGR_SQLITE=$mode speedtest1 "$@" >$out/$name.out 2>&1 || rc=$?
	fi
	t=$(sed -n 's/^ *TOTAL\.*  *\([0-9.]*\)s$/\1/p' $out/$name.out)
	if [ $rc != 0 ] || [ -z "$t" ]; then
		echo "bench_sqlite: speedtest1 $* ($mode) failed, exit $rc:" >&2
		tail -n 10 $out/$name.out >&2
		exit 1
	fi
	echo "$t" >>$out/$name.times
	k0=$(($(kernel_evictions) - k0))
	echo $k0 >>$out/$name.kev
	echo "  $name: ${t} s, kernel evictions $k0 $(grep '^memmgr_sqlite:' $out/$name.out || true)"
	[ "$name" = "${name%-evict}" ] || cat $out/$name.out >>$out/$name.all
}

median() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2];
		else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3fx", a / b }'
}

# sum FIELD FILE: a field of the stats lines (or of --stats' lines) added
# up over every run.
sum_stat() {
	sed -n "s/^memmgr_sqlite:.* $1 \([0-9]*\).*/\1/p" "$2" |
		awk '{ s += $1 } END { print s + 0 }'
}

sum_pager() {
	sed -n "s/^-- Page cache $1: *\([0-9]*\).*/\1/p" "$2" |
		awk '{ s += $1 } END { print s + 0 }'
}

rate() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "-" }'
}

dbsize=0
rm -f $out/*
echo "bench_sqlite: $reps reps, speedtest1 --size $size --cachesize $cache, kernel $(uname -r)"
load total=256M
for case in file memdb; do
	args="--size $size --cachesize $cache"
	[ $case = file ] && args="$args $db" || args="$args --memdb"
	echo "$case: speedtest1 $args"
	i=0
	while [ $i -lt "$reps" ]; do
		for mode in stock pcache pcache,malloc; do
			run $case-$mode $mode $args
			[ -f $db ] && dbsize=$(stat -c %s $db)
		done
		i=$((i + 1))
	done
done
rm -f $db $db-journal

evict_params="total=$evict_total storage_pct=25"
load $evict_params evict_policy=random
quota=$(cat /sys/module/memmgr/stats/storage_quota)
qcache=$((quota / 4096))
args="--size $size --stats $db"
echo "eviction: $evict_params (storage quota $quota), speedtest1 --cachesize $cache $args"
i=0
while [ $i -lt "$reps" ]; do
	run stock-evict stock --cachesize $cache $args
	run stockq-evict stock --cachesize $qcache $args
	for policy in random lru; do
		echo $policy >/sys/module/memmgr/parameters/evict_policy
		run $policy-evict pcache --cachesize $cache $args
	done
	i=$((i + 1))
done

echo "@@memmgr-bench-sqlite-begin"
echo "SQLite speedtest1 --size $size --cachesize $cache ($((cache * 4096)) bytes of pages; file database $dbsize bytes), kernel $(uname -r)"
echo "median of $reps runs, seconds (speedtest1's TOTAL), ratio to stock:"
printf "%-8s %9s %9s %9s %14s %9s\n" case stock pcache ratio pcache,malloc ratio
for case in file memdb; do
	s=$(median $out/$case-stock.times)
	p=$(median $out/$case-pcache.times)
	pm=$(median $out/$case-pcache,malloc.times)
	printf "%-8s %9s %9s %9s %14s %9s\n" $case "$s" "$p" "$(ratio "$p" "$s")" \
		"$pm" "$(ratio "$pm" "$s")"
done
echo "targets (file): pcache at most 1.05x, pcache,malloc at most 1.10x"
echo
echo "eviction: $evict_params, storage quota $quota bytes < cache $((cache * 4096)) bytes"
echo "(stock: the same cache; stock-q: a cache of the quota's $qcache pages)"
row() {
	printf "%-16s %7s %7s %9s %8s %8s %8s %7s\n" "$@"
}
row "" time ratio fetches hits evicted kernel pager
s=$(median $out/stock-evict.times)
for r in stock stockq random lru; do
	f=$out/$r-evict.all
	t=$(median $out/$r-evict.times)
	ph=$(sum_pager hits $f)
	pager=$(rate "$ph" "$((ph + $(sum_pager misses $f)))")
	case $r in
	stock)	row "stock" "$t" 1.000x - - - - "$pager" ;;
	stockq)	row "stock-q" "$t" "$(ratio "$t" "$s")" - - - - "$pager" ;;
	*)	fetches=$(sum_stat fetches $f)
		row "pcache $r" "$t" "$(ratio "$t" "$s")" $((fetches / reps)) \
			"$(rate "$(sum_stat hits $f)" "$fetches")" \
			$(($(sum_stat evicted $f) / reps)) \
			$(($(awk '{ s += $1 } END { print s + 0 }' $out/$r-evict.kev) / reps)) \
			"$pager" ;;
	esac
done
echo "fetches: the page cache's, per run; hits: its hit rate; evicted: its"
echo "fetches that found their page evicted, per run; kernel: the buffers"
echo "memmgr evicted, per run; pager: SQLite's own hit rate (--stats), for"
echo "all rows.  Time: median of $reps runs, ratio to stock."
echo "@@memmgr-bench-sqlite-end"
