#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Build (once) the debug kernel that memmgr's tests run on: Debian's
# linux-source-6.1, tinyconfig plus selftests/debug.config.  The result is
# cached in build/debug-kernel-<hash>, where <hash> covers the fragment and
# the source tarball, so a machine pays for the build only once.
# Prints the build directory on success.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
tarball=/usr/src/linux-source-6.1.tar.xz
src=$top/build/linux-source-6.1
frag=$top/selftests/debug.config

[ -f "$tarball" ] || { echo "debug-kernel: $tarball missing: run 'make deps'" >&2; exit 1; }
if [ ! -f "$src/Makefile" ]; then
	mkdir -p "$top/build"
	tar -xJf "$tarball" -C "$top/build"
fi

hash=$( (cat "$frag"; ls -l --time-style=+%s "$tarball") | sha256sum | cut -c1-12)
out=$top/build/debug-kernel-$hash

if [ -f "$out/.memmgr-built" ]; then
	echo "$out"
	exit 0
fi

log=$top/build/debug-kernel-$hash.log
echo "debug-kernel: building in $out (log: $log), a few minutes on first use" >&2
rm -rf "$out"
mkdir -p "$out"
{
	make -C "$src" O="$out" tinyconfig
	"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "$frag"
	make -C "$src" O="$out" olddefconfig
} >"$log" 2>&1

# Every option the fragment asks for must have survived olddefconfig.
missing=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=y)
		grep -qx "$line" "$out/.config" || { echo "debug-kernel: $line did not stick" >&2; missing=1; }
		;;
	esac
done <"$frag"
[ "$missing" -eq 0 ] || exit 1

if ! make -C "$src" O="$out" -j"$(nproc)" bzImage modules >>"$log" 2>&1; then
	tail -n 30 "$log" >&2
	exit 1
fi
touch "$out/.memmgr-built"
echo "$out"
