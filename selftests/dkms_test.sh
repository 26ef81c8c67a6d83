#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# dkms add, build and remove memmgr for the installed Debian headers, in a
# private DKMS tree and source tree so the machine is left as it was.
# Usage: selftests/dkms_test.sh KDIR
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
kdir=$1
krel=$(sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' "$kdir/include/generated/utsrelease.h")
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/dkms.conf")
work=$(mktemp -d "${TMPDIR:-/tmp}/memmgr-dkms.XXXXXX")
trap 'rm -rf "$work"' EXIT

src=$work/src/memmgr-$ver
mkdir -p "$src" "$work/tree"
cp -r "$top/Kbuild" "$top/dkms.conf" "$top/module" "$top/uapi" "$src/"
opts=(--dkmstree "$work/tree" --sourcetree "$work/src")

dkms add -m memmgr -v "$ver" "${opts[@]}"
dkms build -m memmgr -v "$ver" -k "$krel" --kernelsourcedir "$kdir" "${opts[@]}"
ko=$work/tree/memmgr/$ver/$krel/x86_64/module/memmgr.ko
ls "$work/tree/memmgr/$ver/$krel/x86_64/module/"
modinfo "$ko" | grep -E '^(vermagic|parm):'
modinfo -F vermagic "$ko" | grep -q "^$krel "
dkms remove -m memmgr -v "$ver" --all "${opts[@]}"
echo "dkms: built memmgr $ver for $krel and removed it"
