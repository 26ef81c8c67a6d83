// SPDX-License-Identifier: GPL-2.0
/*
 * SQLite's testfixture on memmgr: the SQLITE_EXTRA_INIT hook that installs
 * memmgr's page cache and allocator (memmgr_sqlite_install()) in a
 * testfixture built with -DSQLITE_EXTRA_INIT=memmgr_sqlite_testfixture_init
 * (selftests/sqlite/testfixture.mk).
 *
 * The environment variable MEMMGR_SQLITE says what to install: "pcache",
 * "malloc" or "pcache,malloc"; unset or empty, nothing (stock SQLite).
 *
 * SQLite calls the hook at the end of every sqlite3_initialize() that
 * initialized it, where sqlite3_config() refuses to work (SQLITE_MISUSE).
 * So the first call shuts SQLite down, installs and initializes again (the
 * nested call returns at once).  That first call happens while testfixture
 * starts (Sqlitetest_func_Init() initializes SQLite), before any test
 * script runs, and so before tester.tcl wraps test_malloc.c's fault
 * simulator around the allocator it finds with SQLITE_CONFIG_GETMALLOC:
 * memmgr's, which is what malloc*.test then make fail.
 *
 * The later calls, after each sqlite3_shutdown(), install nothing again:
 * sqlite3_shutdown() keeps the configured page cache and allocator, and
 * installing again would replace the fault simulator by the bare
 * allocator (malloc*.test would inject no failure at all) and undo what a
 * test configured on purpose (sqlite3_config_alt_pcache, which puts the
 * page cache it found back when it is done).
 *
 * A failure must not let the tests pass on stock SQLite: when installing
 * fails, the hook leaves SQLite shut down and returns SQLITE_ERROR, so
 * sqlite3_initialize() and with it every sqlite3_open() fails, and the
 * next sqlite3_initialize() tries again.
 *
 * The hook never writes to stdout or stderr (tests read child
 * testfixtures' output through pipes).  When MEMMGR_SQLITE_TF_LOG names a
 * file, each process appends one line to it: at exit, what the page cache
 * did (memmgr_sqlite_get_stats()), or at once, why installing failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqlite3.h"

#include "libmemmgr.h"
#include "memmgr_sqlite.h"

int memmgr_sqlite_testfixture_init(const char *unused);

/* Installed in this process. */
static bool installed;

/* Appends @line to the file MEMMGR_SQLITE_TF_LOG names, if any. */
static void log_line(const char *line)
{
	const char *path = getenv("MEMMGR_SQLITE_TF_LOG");
	ssize_t n;
	int fd;

	if (!path || !*path)
		return;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		return;
	/* One write(): lines of several processes do not mix. */
	n = write(fd, line, strlen(line));
	(void)n;
	close(fd);
}

static void log_stats(void)
{
	struct memmgr_sqlite_stats st;
	char line[256];

	memmgr_sqlite_get_stats(&st);
	snprintf(line, sizeof(line),
		 "memmgr_sqlite_tf: pid %d installed %s fetches %llu hits %llu misses %llu evicted %llu fallbacks %llu pages %llu\n",
		 (int)getpid(), getenv("MEMMGR_SQLITE"),
		 (unsigned long long)st.fetches, (unsigned long long)st.hits,
		 (unsigned long long)st.misses,
		 (unsigned long long)st.evicted,
		 (unsigned long long)st.fallbacks,
		 (unsigned long long)st.pages);
	log_line(line);
}

static void log_failure(int err)
{
	char line[256];

	snprintf(line, sizeof(line),
		 "memmgr_sqlite_tf: pid %d MEMMGR_SQLITE=%s: install failed: %s\n",
		 (int)getpid(), getenv("MEMMGR_SQLITE"),
		 memmgr_strerror(err));
	log_line(line);
}

/* Shuts SQLite down, installs, initializes again. */
static int install(int flags)
{
	int ret;

	sqlite3_shutdown();
	ret = flags < 0 ? flags : memmgr_sqlite_install(flags);
	if (ret) {
		log_failure(ret);
		return SQLITE_ERROR;
	}
	installed = true;
	atexit(log_stats);
	return sqlite3_initialize();
}

int memmgr_sqlite_testfixture_init(const char *unused)
{
	static bool busy;
	int flags, rc;

	(void)unused;
	if (installed || busy)
		return SQLITE_OK;
	flags = memmgr_sqlite_parse(getenv("MEMMGR_SQLITE"));
	if (!flags)
		return SQLITE_OK;
	busy = true;
	rc = install(flags);
	busy = false;
	return rc;
}
