#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: every test, in order, then one summary line.
#   1. host unit tests (the policy arithmetic, no kernel)
#   2. the lint gate (W=1, sparse, checkpatch --strict), and a DKMS build
#   3. the VM runner's own tests
#   4. the kselftests in a VM on Debian's stock kernel
#   5. the same on the debug kernel (KASAN, lockdep, kmemleak, ...), plus
#      the KUnit suites, fault injection and the stress run
#   6. SQLite on memmgr: speedtest1, several processes, LD_PRELOAD, and
#      SQLite's own TCL test suite (stock kernel)
# Counts come from each TAP run's '# Totals:' line; a run whose VM reported
# a kernel problem, or that printed no totals, counts as a failure.
# Usage: selftests/check.sh KDIR (the top-level Makefile passes it).
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
kdir=$1
logs=$top/build/check
vm=$top/selftests/vm.sh
mkdir -p "$logs"
pass=0
fail=0
skip=0

# One check that is a single pass or fail.
single() {
	local name=$1
	shift
	if "$@" >"$logs/$name.log" 2>&1; then
		pass=$((pass + 1))
		echo "PASS  $name"
	else
		fail=$((fail + 1))
		echo "FAIL  $name (log: build/check/$name.log)"
		tail -n 30 "$logs/$name.log"
	fi
}

# A TAP run of $2 programs: add up their totals.
tap() {
	local name=$1 want=$2 rc totals p f s
	shift 2
	"$@" >"$logs/$name.log" 2>&1
	rc=$?
	# One run may hold several programs: add up every totals line.
	totals=$(grep -a '^# Totals:' "$logs/$name.log")
	if [ "$(wc -l <<<"$totals")" -lt "$want" ] || [ -z "$totals" ]; then
		fail=$((fail + 1))
		echo "FAIL  $name: $(grep -c . <<<"$totals") of $want programs reported totals (exit $rc, log: build/check/$name.log)"
		tail -n 40 "$logs/$name.log"
		return
	fi
	p=$(sed 's/.*Totals: pass:\([0-9]*\) .*/\1/' <<<"$totals" | paste -sd+ | bc)
	f=$(sed 's/.* fail:\([0-9]*\) .*/\1/' <<<"$totals" | paste -sd+ | bc)
	s=$(sed 's/.* skip:\([0-9]*\) .*/\1/' <<<"$totals" | paste -sd+ | bc)
	pass=$((pass + p))
	fail=$((fail + f))
	skip=$((skip + s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		# The tests passed but the run did not: a kernel report.
		fail=$((fail + 1))
		echo "FAIL  $name: $p passed but the run failed (exit $rc)"
		grep -a -A 40 'vm.sh:' "$logs/$name.log" | head -n 80
		return
	fi
	echo "$([ "$f" -eq 0 ] && echo PASS || echo FAIL)  $name: $p passed, $f failed, $s skipped"
	[ "$f" -eq 0 ] || grep -a -B 3 '^not ok' "$logs/$name.log"
}

expect_status() {
	local want=$1 got
	shift
	"$@"
	got=$?
	echo "exit status $got, expected $want"
	[ "$got" -eq "$want" ]
}

expect_failure() {
	! "$@"
}

# Run several programs in one guest, each in turn; fail if any failed.
all_of() {
	local cmd="r=0;"

	for t in "$@"; do
		cmd+=" $t || r=1;"
	done
	echo "$cmd exit \$r"
}

# The programs that run with memmgr loaded (total=64M), on both kernels.
# memmgrctl_test.sh reloads the module: it runs last.
loaded_tests=(memmgr_test memmgr_badinput_test memmgr_evict_test
	memmgr_mode_test memmgr_fair_test memmgr_iface_test.sh libmemmgr_test
	memmgr_offset_test memmgr_compat32_test memmgr_queue_test memmgr_window_test
	memmgr_state_test memmgr_batch_test memmgr_malloc_test
	memmgr_sqlite_pcache_test memmgrctl_test.sh)

tap unit 1 "$top/build/unit/policy_test"
single lint "$top/selftests/lint.sh" "$kdir"
single dkms "$top/selftests/dkms_test.sh" "$kdir"

single vm-true expect_status 0 "$vm" -- true
single vm-false expect_status 1 "$vm" -- false
single vm-warn-fails expect_failure "$vm" --no-load -- \
	insmod /lib/modules/memmgr_warn.ko

for kernel in stock debug; do
	tap "$kernel-loaded" ${#loaded_tests[@]} "$vm" --kernel "$kernel" \
		--params "total=64M" --timeout 900 -- \
		sh -c "$(all_of "${loaded_tests[@]}")"
	tap "$kernel-load_test" 1 "$vm" --kernel "$kernel" --mem 512 \
		--no-load --timeout 900 -- memmgr_load_test.sh
done
# The window with more buffers than a process could mmap() one by one.
tap stock-window-large 1 "$vm" --params "total=512M" --timeout 600 -- \
	memmgr_window_test
# The stress run: 20 s on the stock kernel, 60 s on the debug kernel.
tap stock-stress 1 "$vm" --params "total=64M" --timeout 600 -- \
	memmgr_stress --seconds 20
tap debug-stress 1 "$vm" --kernel debug --params "total=64M" --timeout 900 -- \
	memmgr_stress --seconds 60
tap debug-kunit 1 "$vm" --kernel debug --no-load -- memmgr_kunit_test.sh
# SQLite on memmgr (issue 14): speedtest1 --verify with eviction, three
# processes at once, the sqlite3 shell under LD_PRELOAD (about 50 s).
tap stock-sqlite 1 "$vm" --params "total=32M storage_pct=25" --timeout 600 \
	--add "$top/build/sqlite/speedtest1" \
	--add "$top/build/sqlite/memmgr_sqlite_multi" \
	--add "$top/build/sqlite/memmgr_sqlite_test.sh" \
	--tar "$top/build/sqlite/preload.tar" -- memmgr_sqlite_test.sh
# The same, short, on the debug kernel: a 1.3 MB database over a 1 MB
# storage quota, three processes of 0.75 MB each (about 3 minutes).
tap debug-sqlite 1 "$vm" --kernel debug --params "total=16M storage_pct=6" \
	--timeout 900 \
	--add "$top/build/sqlite/speedtest1" \
	--add "$top/build/sqlite/memmgr_sqlite_multi" \
	--add "$top/build/sqlite/memmgr_sqlite_test.sh" \
	--tar "$top/build/sqlite/preload.tar" -- \
	sh -c "ST_SIZE=5 ST_CACHE=300 MULTI_ROWS=4000 MULTI_PASSES=1 memmgr_sqlite_test.sh"
# SQLite's own TCL test suite (selftests/sqlite/tcl_tests.txt) with
# memmgr's page cache and allocator, as an unprivileged user, with a
# storage quota of 2.5 MiB, then inserts beside a process that keeps the
# quota full of pinned pages (about 8 minutes).
tap stock-sqlite-tcl 1 "$vm" --params "total=256M storage_pct=1" \
	--timeout 1500 --tar "$top/build/sqlite/tcl-suite.tar" -- \
	memmgr_sqlite_tcl.sh --pressure
# The benchmark's quick mode: every case runs end to end; no figure judged.
single stock-bench-quick "$vm" --no-load --timeout 300 -- \
	memmgr_bench --quick --module /lib/modules/memmgr.ko --params total=256M
tap debug-faults 1 "$vm" --kernel debug --no-load --faults --timeout 900 -- \
	memmgr_fault_test.sh

summary="$pass passed, $fail failed"
[ "$skip" -eq 0 ] || summary="$summary, $skip skipped"
echo "$summary"
[ "$fail" -eq 0 ]
