// SPDX-License-Identifier: GPL-2.0
/*
 * speedtest1 on memmgr: SQLite's test/speedtest1.c (its main() compiled
 * as speedtest1_main()), run after memmgr_sqlite_install() with what the
 * environment variable MEMMGR_SQLITE names: "pcache", "malloc" or
 * "pcache,malloc"; unset or empty, stock SQLite.  An install that fails
 * ends the program with status 1, a value it does not know with status 2.
 * When something was installed, the page cache's counters follow
 * speedtest1's output, as one line on stdout:
 *
 *   memmgr_sqlite: fetches N hits N misses N evicted N fallbacks N pages N
 *
 * Arguments are speedtest1's (--size, --cachesize, --verify, ...).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memmgr_sqlite.h"

int speedtest1_main(int argc, char **argv);

static void print_stats(void)
{
	struct memmgr_sqlite_stats st;

	memmgr_sqlite_get_stats(&st);
	printf("memmgr_sqlite: fetches %llu hits %llu misses %llu evicted %llu fallbacks %llu pages %llu\n",
	       (unsigned long long)st.fetches, (unsigned long long)st.hits,
	       (unsigned long long)st.misses, (unsigned long long)st.evicted,
	       (unsigned long long)st.fallbacks,
	       (unsigned long long)st.pages);
}

int main(int argc, char **argv)
{
	const char *env = getenv("MEMMGR_SQLITE");
	int flags, rc;

	if (!env || !*env)
		return speedtest1_main(argc, argv);
	flags = memmgr_sqlite_parse(env);
	if (flags <= 0) {
		fprintf(stderr, "speedtest1: MEMMGR_SQLITE=%s: want pcache, malloc or pcache,malloc\n",
			env);
		return 2;
	}
	rc = memmgr_sqlite_install(flags);
	if (rc) {
		fprintf(stderr, "speedtest1: memmgr_sqlite_install(%s): %s\n",
			env, strerror(-rc));
		return 1;
	}
	rc = speedtest1_main(argc, argv);
	print_stats();
	return rc;
}
