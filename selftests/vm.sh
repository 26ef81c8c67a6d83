#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# memmgr's VM runner: the one way to run anything in a kernel.
#
#   selftests/vm.sh [--kernel stock|debug] [--mem MB] [--smp N]
#                   [--params "total=256M ..."] [--no-load] [--timeout S]
#                   [--faults] [--add FILE]... [--tar FILE]... -- COMMAND [ARGS...]
#
# Builds an initramfs (busybox-static, memmgr.ko, the selftests, the
# userspace programs and every --add FILE, all on the guest's PATH, and
# every --tar FILE unpacked at the guest's root), boots
# QEMU, loads memmgr.ko with --params (unless --no-load), runs COMMAND and
# exits with its status.  It exits non-zero, printing the guest's kernel log,
# when the kernel reported a BUG, WARNING, KASAN, lockdep, kmemleak or UBSAN
# finding, an Oops or a call trace, when unloading memmgr failed, or when the
# guest did not finish within the time limit.  A report while the kernel
# boots, before memmgr is loaded, is shown and the guest booted once more.
#
# --faults is for fault-injection runs: allocation-failure stack dumps,
# WARNINGs raised by other kernel code that an injected failure reached, and
# 6.1's known slab-name leak in sysfs_slab_add() are expected there; BUG,
# KASAN, UBSAN, lockdep, any other kmemleak report, an Oops and any WARNING
# in memmgr still fail the run.
#
# Software emulation (TCG) is the default: KVM is opt-in with
# MEMMGR_VM_ACCEL=kvm.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
kernel=stock
mem=1024
smp=2
params=
load=1
timeout=300
faults=0
adds=()
tars=()

usage() {
	sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--params) params=$2; shift 2 ;;
	--add) adds+=("$2"); shift 2 ;;
	--tar) tars+=("$2"); shift 2 ;;
	--no-load) load=0; shift ;;
	--faults) faults=1; shift ;;
	--timeout) timeout=$2; shift 2 ;;
	--) shift; break ;;
	-h|--help) usage ;;
	*) echo "vm.sh: unknown option '$1'" >&2; usage ;;
	esac
done
[ $# -gt 0 ] || usage

case "$kernel" in
stock)
	kimage=$(make -s -C "$top" print-stock-image)
	ko=$top/build/ko-stock/memmgr.ko
	;;
debug)
	kdir=$("$top/selftests/debug-kernel.sh")
	kimage=$kdir/arch/x86/boot/bzImage
	ko=$top/build/ko-debug/memmgr.ko
	;;
*)
	echo "vm.sh: --kernel must be stock or debug" >&2
	exit 2
	;;
esac
[ -r "$kimage" ] || { echo "vm.sh: kernel image $kimage missing: run 'make deps'" >&2; exit 2; }
[ -r "$ko" ] || { echo "vm.sh: $ko missing: run 'make' first" >&2; exit 2; }
busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || { echo "vm.sh: busybox-static missing: run 'make deps'" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/memmgr-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,root,lib/modules,usr/bin}
cp "$busybox" "$root/bin/busybox"
cp "$ko" "$root/lib/modules/memmgr.ko"
for f in "$top"/build/selftests/* "$top"/build/userspace/bin/*; do
	[ -f "$f" ] && [ -x "$f" ] && cp "$f" "$root/usr/bin/"
done
# The other modules built for this kernel: KUnit suites, test modules.
find "$top/build/ko-$kernel" "$top/build/ko-selftests-$kernel" -name '*.ko' \
	! -path "$ko" -exec cp {} "$root/lib/modules/" \; 2>/dev/null
for f in "${adds[@]}"; do
	cp "$f" "$root/usr/bin/"
done
for f in "${tars[@]}"; do
	tar -xf "$f" -C "$root"
done

# The command, quoted for the guest's shell.
cmd=
for a in "$@"; do
	cmd+=" $(printf '%q' "$a")"
done

# What the kernel may report; before the command runs, a boot problem.
pattern='BUG:|WARNING:|KASAN|UBSAN|Oops|Call Trace|unreferenced object|possible recursive locking|circular locking|INFO: trying to register non-static key|kernel panic|Kernel panic'
boot_pattern='BUG:|WARNING:|KASAN|UBSAN|Oops|Call Trace'

cat >"$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/usr/bin:/bin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
[ -w /sys/kernel/debug/kmemleak ] && echo clear >/sys/kernel/debug/kmemleak
exec </dev/ttyS1 >/dev/ttyS1 2>&1
echo "@@memmgr-vm: kernel \$(uname -r)"
# A report while the kernel booted is not memmgr's: say so and stop here.
if dmesg | grep -qE '$boot_pattern'; then
	echo "@@memmgr-vm: boot problem"
	sync
	reboot -f
fi
if [ $load = 1 ]; then
	insmod /lib/modules/memmgr.ko $params || echo "@@memmgr-vm: insmod failed"
fi
cd /tmp
(exec $cmd)
rc=\$?
if grep -q '^memmgr ' /proc/modules; then
	rmmod memmgr || echo "@@memmgr-vm: rmmod failed"
fi
if [ -w /sys/kernel/debug/kmemleak ]; then
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak >/dev/ttyS0
fi
echo "@@memmgr-vm: exit \$rc"
sync
reboot -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

accel=${MEMMGR_VM_ACCEL:-tcg}
console=$work/console.log
out=$work/out.log
boot() {
	set +e
	timeout --foreground "$timeout" qemu-system-x86_64 \
		-machine q35,accel="$accel" -cpu max -m "$mem" -smp "$smp" \
		-kernel "$kimage" -initrd "$work/initrd.gz" \
		-append "console=ttyS0 panic=-1 oops=panic loglevel=7 kasan.fault=report" \
		-display none -monitor none -no-reboot \
		-serial file:"$console" -serial stdio </dev/null |
		tr -d '\r' | tee "$out" | grep -av '^@@memmgr-vm: exit'
	qrc=${PIPESTATUS[0]}
	set -e
}
boot
# The kernel reported a problem while it booted, before memmgr was loaded
# and before the command ran (seen once: a KASAN report from an interrupt
# in early boot on the debug kernel under a loaded host).  Not memmgr's:
# show it and boot once more.  A second one fails the run below.
if grep -aq '^@@memmgr-vm: boot problem' "$out"; then
	echo "vm.sh: the kernel reported a problem while booting, before memmgr was loaded; booting again:" >&2
	grep -aE -A3 "$boot_pattern" "$console" | head -n 20 >&2
	boot
fi

fail=0
if [ "$qrc" -eq 124 ]; then
	echo "vm.sh: the guest did not finish within ${timeout}s" >&2
	fail=1
fi
rc=$(sed -n 's/^@@memmgr-vm: exit \([0-9]*\).*/\1/p' "$out" | tr -d '\r' | tail -n 1)
if [ -z "$rc" ]; then
	echo "vm.sh: the guest ended without reporting an exit status" >&2
	fail=1
	rc=1
fi
if grep -aq '^@@memmgr-vm: \(insmod\|rmmod\) failed' "$out"; then
	fail=1
fi
# In --faults mode, also drop kmemleak reports of the name of a slab cache
# whose sysfs directory could not be made: 6.1's sysfs_slab_add() leaks it
# when an injected failure hits kobject_init_and_add() (a kernel bug, not
# memmgr's: memmgr destroys its cache on that error path).
drop_known_leaks() {
	awk '/^unreferenced object/ { flush(); inblk = 1 }
	     inblk && !/^ / && !/^unreferenced object/ { flush(); inblk = 0 }
	     { if (inblk) { blk = blk $0 "\n"; if (/sysfs_slab_add/) known = 1 }
	       else print }
	     function flush() { if (blk != "" && !known) printf "%s", blk;
				blk = ""; known = 0 }
	     END { flush() }'
}
scan() {
	if [ "$faults" = 1 ]; then
		grep -av 'Call Trace' "$console" | drop_known_leaks |
			grep -av 'WARNING: CPU: .* at kernel/\|WARNING: CPU: .* at mm/\|WARNING: CPU: .* at fs/\|WARNING: CPU: .* at lib/'
	else
		cat "$console"
	fi
}
if scan | grep -aEq "$pattern"; then
	echo "vm.sh: the guest kernel reported a problem; its log follows" >&2
	cat "$console" >&2
	fail=1
fi
if [ "$fail" -ne 0 ] && [ "$rc" -eq 0 ]; then
	rc=1
fi
exit "$rc"
