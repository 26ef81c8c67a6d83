# SPDX-License-Identifier: GPL-2.0
# SQLite's TCL test suite on memmgr (issue 14): a static testfixture from
# Debian's sqlite3 source package, built against Debian's tcl8.6-dev with
# the SQLITE_EXTRA_INIT hook of testfixture_init.c, which installs
# memmgr's page cache and allocator when MEMMGR_SQLITE says so; packed
# with the test files of tcl_tests.txt, Tcl's library and the guest's
# runner, memmgr_sqlite_tcl.sh, into one tarball for `vm.sh --tar`.
#
# Included by selftests/sqlite/Makefile, which sets TOP (the repository),
# OUT ($(TOP)/build/sqlite) and SQLITE_SRC (the source directory that
# selftests/bench/fetch-sqlite.sh prints):
#
#   make testfixture-all     $(OUT)/tcl-suite.tar
#
# SQLite's configure and make run in $(OUT)/testfixture, never in
# SQLITE_SRC.  Needs build/userspace/lib/libmemmgr_sqlite.a and
# libmemmgr.a (make userspace) and Debian's tcl8.6-dev (libtcl8.6.a,
# tclConfig.sh, tclsh8.6 for SQLite's generated sources, zlib1g-dev).

TF_DIR := $(TOP)/selftests/sqlite
TF_BUILD := $(OUT)/testfixture
TF_STAGE := $(OUT)/tcl-suite
TF_TAR := $(OUT)/tcl-suite.tar
TF_TCLCONFIG := /usr/lib/x86_64-linux-gnu/tcl8.6
TF_LIBTCL := /usr/lib/x86_64-linux-gnu/libtcl8.6.a
TF_TCL_LIBRARY := /usr/share/tcltk/tcl8.6
TF_MEMMGR_LIBS := $(TOP)/build/userspace/lib/libmemmgr_sqlite.a \
	$(TOP)/build/userspace/lib/libmemmgr.a
# Where the guest finds the test files and the list (memmgr_sqlite_tcl.sh).
TF_SHARE := usr/share/memmgr-sqlite

# The test files the guest runs, and what they read besides: tester.tcl
# and the other scripts the tests source, and a few databases.
TF_TESTS := $(shell sed 's/\#.*//' $(TF_DIR)/tcl_tests.txt)
TF_DATA := 

# SQLite's make must not see our command line's variables (TOP above all,
# which is its source directory there).
TF_MAKE := env -u MAKEFLAGS -u MFLAGS -u MAKEOVERRIDES -u MAKELEVEL \
	$(MAKE) -C $(TF_BUILD) TOP=$(SQLITE_SRC)

TF_CFLAGS := -O2 -g -Wall -Wextra -Werror

.PHONY: testfixture-all
testfixture-all: $(TF_TAR)

$(TF_BUILD)/Makefile: $(SQLITE_SRC)/configure
	rm -rf $(TF_BUILD)
	mkdir -p $(TF_BUILD)
	cd $(TF_BUILD) && $(SQLITE_SRC)/configure --with-tcl=$(TF_TCLCONFIG) \
		>configure.log 2>&1 || { tail -n 20 configure.log >&2; exit 1; }

$(TF_BUILD)/sqlite3.h: $(TF_BUILD)/Makefile
	$(TF_MAKE) sqlite3.h >$(TF_BUILD)/sqlite3.h.log 2>&1 || \
		{ cat $(TF_BUILD)/sqlite3.h.log >&2; exit 1; }

$(TF_BUILD)/testfixture_init.o: $(TF_DIR)/testfixture_init.c \
		$(TF_BUILD)/sqlite3.h $(TOP)/userspace/memmgr_sqlite.h \
		$(TOP)/userspace/libmemmgr.h
	$(CC) $(TF_CFLAGS) -I$(TF_BUILD) -I$(TOP)/userspace -I$(TOP)/uapi \
		-c -o $@ $<

# SQLite's rule links whatever testfixture its sources make: remove it so
# that it links ours again (about 35 s).  Static (libtool's -all-static):
# the guest has no shared libraries; glibc warns about getpwnam() and
# the like in Tcl, which the tests do not use.
$(TF_BUILD)/testfixture: $(TF_BUILD)/testfixture_init.o $(TF_MEMMGR_LIBS)
	rm -f $@
	$(TF_MAKE) testfixture LTLINK_EXTRAS=-all-static LIBTCL=$(TF_LIBTCL) \
		OPTS=-DSQLITE_EXTRA_INIT=memmgr_sqlite_testfixture_init \
		LIBS="$(TF_BUILD)/testfixture_init.o $(TF_MEMMGR_LIBS) -ldl -lm -pthread" \
		>$(TF_BUILD)/testfixture.log 2>&1 || \
		{ tail -n 30 $(TF_BUILD)/testfixture.log >&2; exit 1; }

# The guest's files: testfixture (the only program named testfixture*:
# backcompat.test would take others for old versions), the tests, Tcl's
# library, the runner and the list.
$(TF_TAR): $(TF_BUILD)/testfixture $(TF_DIR)/memmgr_sqlite_tcl.sh \
		$(TF_DIR)/tcl_tests.txt $(TF_DIR)/testfixture.mk
	rm -rf $(TF_STAGE)
	mkdir -p $(TF_STAGE)/usr/bin $(TF_STAGE)/$(TF_SHARE)/test \
		$(TF_STAGE)/$(dir $(TF_TCL_LIBRARY))
	install -m 0755 -s $(TF_BUILD)/testfixture $(TF_STAGE)/usr/bin/testfixture
	install -m 0755 $(TF_DIR)/memmgr_sqlite_tcl.sh $(TF_STAGE)/usr/bin/
	install -m 0644 $(TF_DIR)/tcl_tests.txt $(TF_STAGE)/$(TF_SHARE)/
	cd $(SQLITE_SRC)/test && cp $(TF_TESTS:%=%.test) *.tcl $(TF_DATA) \
		$(TF_STAGE)/$(TF_SHARE)/test/
	cp -R $(TF_TCL_LIBRARY) $(TF_STAGE)/$(dir $(TF_TCL_LIBRARY))
	tar -cf $@.tmp --owner=0 --group=0 -C $(TF_STAGE) .
	mv $@.tmp $@
