#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: memmgr_bench in a VM on Debian's stock kernel, then its
# results on the host:
#   build/bench/output.txt    everything the guest printed
#   build/bench/table.txt     the table of medians and ratios
#   build/bench/results.json  every figure and sample
#   build/bench/malloc.txt    case 12's matrix (every size, loop shape,
#                             allocator, 1 and 2 threads)
#   build/bench/sizes.png     the size sweeps (cases 2, 6 and 12), gnuplot
#   build/bench/sqlite.txt    SQLite's speedtest1 stock and on memmgr
#                             (selftests/sqlite/bench_sqlite.sh, a second
#                             VM; its output in sqlite-output.txt)
#
# First, on the host, the allocation trace that case 14 replays
# (selftests/bench/Makefile: SQLite's speedtest1 through malloc_trace;
# the first time, fetch-sqlite.sh downloads Debian's sqlite3 source
# package into build/).  It reaches the guest as an --add file.
#
# The module is loaded by memmgr_bench itself (vm.sh --no-load): case 7
# times insmod and rmmod before the other cases.  Extra arguments go to
# memmgr_bench (--quick, --reps N).  MEMMGR_VM_ACCEL names the accelerator
# as for vm.sh (default tcg).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/bench
accel=${MEMMGR_VM_ACCEL:-tcg}
mkdir -p "$out"
make -s -C "$top/selftests/bench" TOP="$top"
trace=$out/sqlite-speedtest1.trace

# The guest prints its JSON and plot data between marker lines: keep them
# in output.txt, out of the terminal.
"$top/selftests/vm.sh" --no-load --mem 2048 --timeout 1800 --add "$trace" -- \
	memmgr_bench --module /lib/modules/memmgr.ko --params total=1G \
	--accel "$accel" --json /tmp/bench.json \
	--trace "/usr/bin/$(basename "$trace")" "$@" |
	tee "$out/output.txt" |
	sed '/^@@memmgr-bench-[a-z]*-begin$/,/^@@memmgr-bench-[a-z]*-end$/d'
# SQLite on memmgr (selftests/sqlite/bench_sqlite.sh): speedtest1 stock
# and with memmgr's page cache and allocator, in a VM of its own (the
# script loads memmgr itself, with each case's module parameters);
# --quick makes it quick too.
make -s -C "$top/selftests/sqlite" TOP="$top" bench
sqlite_args=()
for a in "$@"; do
	if [ "$a" = --quick ]; then
		sqlite_args=(--quick)
	fi
done
"$top/selftests/vm.sh" --no-load --timeout 1800 \
	--add "$top/build/sqlite/speedtest1" \
	--add "$top/build/sqlite/bench_sqlite.sh" -- \
	bench_sqlite.sh "${sqlite_args[@]}" |
	tee "$out/sqlite-output.txt" |
	sed '/^@@memmgr-bench-[a-z]*-begin$/,/^@@memmgr-bench-[a-z]*-end$/d'
# The tables once more, as the last thing on the screen.
block() {
	sed -n "/^@@memmgr-bench-$1-begin\$/,/^@@memmgr-bench-$1-end\$/{//!p}" \
		"${2:-$out/output.txt}"
}
block sqlite "$out/sqlite-output.txt" >"$out/sqlite.txt"
[ -s "$out/sqlite.txt" ] || { echo "bench: no sqlite table in the guest's output" >&2; exit 1; }
block table >"$out/table.txt"
block json >"$out/results.json"
block sizes >"$out/sizes.dat"
block small >"$out/small.dat"
block malloc >"$out/malloc.txt"
for f in table.txt results.json sizes.dat small.dat malloc.txt; do
	[ -s "$out/$f" ] || { echo "bench: no $f in the guest's output" >&2; exit 1; }
done
echo
grep -q '^[0-9]' "$out/malloc.txt" && cat "$out/malloc.txt" && echo
cat "$out/table.txt"
echo
cat "$out/sqlite.txt"
title=$(sed -n 's/^memmgr_bench.*: \([0-9-]*\)T.*, kernel \([^,]*\),.*/\1, \2/p' \
	"$out/output.txt")
malloc=0
grep -q '^[0-9]' "$out/malloc.txt" && malloc=1
gnuplot -e "datadir='$out'; accel='$accel'; title='$title'; malloc=$malloc" \
	"$top/selftests/bench/plot.gp" >"$out/sizes.png"
echo
echo "bench: $out/results.json, $out/sizes.png"
