#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Install, from Debian's archive, whatever memmgr's build and tests need and
# this machine lacks.  A fast no-op when everything is there.
set -eu

pkgs="linux-headers-amd64 linux-image-amd64 linux-source-6.1 qemu-system-x86
busybox-static cpio sparse flex bison bc libelf-dev libssl-dev perl gcc make
kmod dkms libjemalloc-dev gnuplot-nox xz-utils gcc-multilib libsqlite3-dev
tcl8.6-dev sqlite3 dpkg-dev"

missing=
for p in $pkgs; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "memmgr needs:$missing"
	echo "run as root: apt-get update && $cmd"
	exit 1
fi
echo "deps: installing$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive $cmd
