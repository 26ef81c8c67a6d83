#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: memmgr_bench in a VM on Debian's stock kernel, then its
# results on the host:
#   build/bench/output.txt    everything the guest printed
#   build/bench/table.txt     the table of medians and ratios
#   build/bench/results.json  every figure and sample
#   build/bench/sizes.png     the size sweeps (case 2 and case 6), gnuplot
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

# The guest prints its JSON and plot data between marker lines: keep them
# in output.txt, out of the terminal.
"$top/selftests/vm.sh" --no-load --mem 2048 --timeout 1200 -- \
	memmgr_bench --module /lib/modules/memmgr.ko --params total=1G \
	--accel "$accel" --json /tmp/bench.json "$@" |
	tee "$out/output.txt" |
	sed '/^@@memmgr-bench-[a-z]*-begin$/,/^@@memmgr-bench-[a-z]*-end$/d'
# The table once more, as the last thing on the screen.
block() {
	sed -n "/^@@memmgr-bench-$1-begin\$/,/^@@memmgr-bench-$1-end\$/{//!p}" \
		"$out/output.txt"
}
block table >"$out/table.txt"
block json >"$out/results.json"
block sizes >"$out/sizes.dat"
block small >"$out/small.dat"
for f in table.txt results.json sizes.dat small.dat; do
	[ -s "$out/$f" ] || { echo "bench: no $f in the guest's output" >&2; exit 1; }
done
echo
cat "$out/table.txt"
title=$(sed -n 's/^memmgr_bench.*: \([0-9-]*\)T.*, kernel \([^,]*\),.*/\1, \2/p' \
	"$out/output.txt")
gnuplot -e "datadir='$out'; accel='$accel'; title='$title'" \
	"$top/selftests/bench/plot.gp" >"$out/sizes.png"
echo
echo "bench: $out/results.json, $out/sizes.png"
