#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The lint gate: the module built from scratch with W=1 and sparse (C=2),
# and checkpatch.pl --strict on every kernel source and the uapi header.
# Any warning fails.  Usage: selftests/lint.sh KDIR
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
kdir=$1
out=$top/build/ko-lint
log=$top/build/lint.log
checkpatch=$top/build/linux-source-6.1/scripts/checkpatch.pl
fail=0

rm -rf "$out"
mkdir -p "$out"
cp -as "$top/Kbuild" "$top/module" "$top/uapi" "$out/"
if ! make -s -C "$kdir" M="$out" W=1 C=2 modules >"$log" 2>&1; then
	echo "lint: build failed"
	fail=1
fi
if grep -E 'warning|error' "$log"; then
	echo "lint: W=1/sparse warnings above"
	fail=1
fi

cd "$top" || exit 1
# Out of tree there is no MAINTAINERS file and no spelling list to look up.
if ! "$checkpatch" --strict --no-tree --quiet --show-types \
	--ignore FILE_PATH_CHANGES \
	-f module/*.c module/*.h selftests/modules/*.c; then
	echo "lint: checkpatch found problems"
	fail=1
fi
# A uapi header cannot use BIT(); the ABI spells its flags (1U << n).
if ! "$checkpatch" --strict --no-tree --quiet --show-types \
	--ignore FILE_PATH_CHANGES,BIT_MACRO -f uapi/linux/memmgr.h; then
	echo "lint: checkpatch found problems in the uapi header"
	fail=1
fi
exit $fail
