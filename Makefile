# SPDX-License-Identifier: GPL-2.0
#
# memmgr: everything but the kernel build itself (that is Kbuild).
#
#   make            memmgr.ko for the headers in KDIR, userspace, selftests
#   make deps       install what is missing (Debian packages)
#   make demo       build, boot a VM, show memmgr working
#   make check      every test: host unit tests, lint, kselftests in a VM
#                   on the stock kernel and on the debug kernel
#   make lint       W=1, sparse and checkpatch.pl --strict

TOP := $(CURDIR)
BUILD := $(TOP)/build
KSRC := $(BUILD)/linux-source-6.1
KSFT_DIR := $(KSRC)/tools/testing/selftests
SRC_TARBALL := /usr/src/linux-source-6.1.tar.xz

# The running kernel's headers where they exist, else the newest Debian
# amd64 headers installed.
KDIR ?= $(firstword $(wildcard /lib/modules/$(shell uname -r)/build) \
	$(shell ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1))
KREL = $(shell sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' $(KDIR)/include/generated/utsrelease.h 2>/dev/null)

MODULE_SRCS := Kbuild $(wildcard module/*.c module/*.h) uapi/linux/memmgr.h

HOSTCFLAGS := -O2 -g -Wall -Werror -Iuapi -Imodule -I$(KSFT_DIR) \
	-include selftests/unit/host.h

# check and demo install what is missing first, then build in a fresh make
# that sees what was installed.
.PHONY: all deps module module-debug userspace selftests unit lint check \
	demo clean print-stock-image ksrc install sqlite

all: module userspace selftests

deps:
	@selftests/deps.sh

$(KSRC)/Makefile:
	@test -f $(SRC_TARBALL) || { echo "$(SRC_TARBALL) missing: run 'make deps'"; exit 1; }
	mkdir -p $(BUILD)
	tar -xJf $(SRC_TARBALL) -C $(BUILD)
	touch $@

ksrc: $(KSRC)/Makefile

# Kbuild writes objects next to the sources: each kernel gets its own tree
# of symlinks under build/ so the two builds never mix.
define ko_tree
	mkdir -p $(1)
	cp -asf $(TOP)/Kbuild $(TOP)/module $(TOP)/uapi $(1)/
endef

module:
	@test -d "$(KDIR)" || { echo "no kernel headers found: run 'make deps' or pass KDIR="; exit 1; }
	$(call ko_tree,$(BUILD)/ko-stock)
	$(MAKE) -C $(KDIR) M=$(BUILD)/ko-stock modules

module-debug:
	$(call ko_tree,$(BUILD)/ko-debug)
	$(MAKE) -C $$(selftests/debug-kernel.sh) M=$(BUILD)/ko-debug modules
	$(call test_modules,debug,$$(selftests/debug-kernel.sh))

# The test modules (selftests/modules) for one kernel: $(1) stock or debug,
# $(2) its build tree.  They link against that kernel's memmgr.ko.
define test_modules
	mkdir -p $(BUILD)/ko-selftests-$(1)
	cp -asf $(TOP)/selftests/modules/* $(BUILD)/ko-selftests-$(1)/
	$(MAKE) -C $(2) M=$(BUILD)/ko-selftests-$(1) MEMMGR_TOP=$(TOP) \
		KBUILD_EXTRA_SYMBOLS=$(BUILD)/ko-$(1)/Module.symvers modules
endef

print-stock-image:
	@ls /boot/vmlinuz-$(KREL)

userspace:
	$(MAKE) -C userspace BUILD=$(BUILD) TOP=$(TOP)

selftests: ksrc module userspace
	mkdir -p $(BUILD)/selftests
	$(MAKE) -C selftests OUTPUT=$(BUILD)/selftests KSFT_DIR=$(KSFT_DIR) TOP=$(TOP)
	install -m 0755 selftests/memmgr*_test.sh $(BUILD)/selftests/
	install -m 0755 selftests/memmgr_tap.sh $(BUILD)/selftests/
	$(call test_modules,stock,$(KDIR))

# Host unit tests: the policy arithmetic, compiled without the kernel.
$(BUILD)/unit/policy_test: ksrc selftests/unit/policy_test.c module/memmgr_policy.c module/memmgr_policy.h uapi/linux/memmgr.h
	@mkdir -p $(dir $@)
	$(CC) $(HOSTCFLAGS) -o $@ selftests/unit/policy_test.c module/memmgr_policy.c

unit: $(BUILD)/unit/policy_test
	$(BUILD)/unit/policy_test

lint: ksrc
	@selftests/lint.sh "$(KDIR)"

# SQLite's programs on memmgr (selftests/sqlite): speedtest1, the TCL
# suite's testfixture, the sqlite3 shell for LD_PRELOAD; the first time it
# downloads Debian's sqlite3 source package into build/.
sqlite: userspace
	$(MAKE) -C selftests/sqlite TOP=$(TOP)

check: deps
	$(MAKE) all module-debug sqlite $(BUILD)/unit/policy_test
	@selftests/check.sh "$(KDIR)"

demo: deps
	$(MAKE) all
	selftests/vm.sh --params "total=1G" --mem 1536 --timeout 180 -- memmgr-demo

# make bench: memmgr_bench in a VM on the stock kernel (TCG unless
# MEMMGR_VM_ACCEL=kvm; about 8 minutes).  selftests/bench/run.sh first
# makes the SQLite allocation trace case 14 replays (on the host; the first
# time it downloads Debian's sqlite3 source package into build/), then
# boots selftests/vm.sh --no-load --mem 2048 --timeout 1800 -- memmgr_bench
# --module /lib/modules/memmgr.ko --params total=1G (it times insmod, then
# keeps total=1G loaded), prints the table and writes
# build/bench/results.json, build/bench/malloc.txt and
# build/bench/sizes.png (gnuplot).  BENCH_ARGS go to memmgr_bench
# (--quick, --reps N, --cases LIST).  Not part of check, which runs it
# once with --quick (case 14 then replays a synthetic trace).
.PHONY: bench
bench: deps
	$(MAKE) all
	selftests/bench/run.sh $(BENCH_ARGS)

install: userspace
	$(MAKE) -C userspace BUILD=$(BUILD) TOP=$(TOP) install

clean:
	rm -rf $(BUILD)/ko-stock $(BUILD)/ko-debug $(BUILD)/ko-lint \
		$(BUILD)/selftests $(BUILD)/userspace $(BUILD)/unit
