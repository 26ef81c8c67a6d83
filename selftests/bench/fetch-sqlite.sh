#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Debian's source package of a library, unpacked under build/, for the
# programs of its test suite that the benchmark builds (SQLite's
# test/speedtest1.c for the allocation trace of case 14):
#
#   selftests/bench/fetch-sqlite.sh [PACKAGE]     (default: sqlite3)
#
# prints the unpacked source directory, build/PACKAGE-src/PACKAGE-VERSION,
# on stdout and nothing else there.  apt-get runs with a source list and
# package lists of its own under build/apt-src (a deb-src line for
# bookworm main on the archive the machine's deb entries name), so
# /etc/apt is never touched and no root is needed.  Does nothing when the
# directory is there already.
set -euo pipefail

pkg=${1:-sqlite3}
top=$(cd "$(dirname "$0")/../.." && pwd)
dest=$top/build/$pkg-src
apt=$top/build/apt-src

unpacked() {
	find "$dest" -mindepth 1 -maxdepth 1 -type d -name "$pkg-*" |
		sort -V | tail -n 1
}

if [ -d "$dest" ] && [ -n "$(unpacked)" ]; then
	unpacked
	exit 0
fi

# The archive the deb entries use (deb822 URIs: or one-line deb).
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/*$/\1/p' \
	/etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		2>/dev/null | sed -n \
		's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\{0,1\}\([^[:space:]]*\/debian\)\/*[[:space:]]\+bookworm[[:space:]].*/\2/p' |
		head -n 1)
fi
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$apt/lists/partial" "$apt/cache" "$dest"
echo "deb-src $mirror bookworm main" >"$apt/sources.list"
opts=(-o Dir::Etc::SourceList="$apt/sources.list"
	-o Dir::Etc::SourceParts=/nonexistent
	-o Dir::State::Lists="$apt/lists"
	-o Dir::Cache="$apt/cache"
	-o APT::Sandbox::User="$(id -un)")
echo "fetch-sqlite: $pkg's source from $mirror (bookworm main)" >&2
apt-get -qq "${opts[@]}" update >&2
(cd "$dest" && apt-get -qq "${opts[@]}" source --download-only "$pkg") >&2
dsc=$(ls "$dest"/"$pkg"_*.dsc | sort -V | tail -n 1)
ver=$(sed -n 's/^Version: \(.*\)-[^-]*$/\1/p' "$dsc" | head -n 1)
# dpkg-source (dpkg-dev) applies Debian's patches; else the upstream
# tarball alone, which has everything the benchmark builds.
if command -v dpkg-source >/dev/null; then
	(cd "$dest" && dpkg-source -q -x "$dsc" "$pkg-$ver") >&2
else
	orig=$(ls "$dest"/"$pkg"_"$ver"*.orig.tar.* | head -n 1)
	mkdir -p "$dest/$pkg-$ver"
	tar -xf "$orig" -C "$dest/$pkg-$ver" --strip-components=1
fi
dir=$(unpacked)
[ -n "$dir" ] || { echo "fetch-sqlite: no $pkg source in $dest" >&2; exit 1; }
echo "$dir"
