/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libmemmgr_sqlite: SQLite's page cache on memmgr's storage memory and its
 * allocator on memmgr's execution memory.
 *
 * memmgr_sqlite_install() gives SQLite, before sqlite3_initialize(), a
 * page cache (SQLITE_CONFIG_PCACHE2) whose pages live in storage buffers,
 * and an allocator (SQLITE_CONFIG_MALLOC) on the execution allocator
 * (memmgr_malloc()).  Unpinned pages of purgeable caches are evictable:
 * when memmgr evicts one, its next fetch is a cache miss and SQLite reads
 * the page again.  One libmemmgr handle serves the whole process.
 *
 * Without a rebuild: libmemmgr_sqlite.so installs itself when it is loaded
 * (LD_PRELOAD) and the environment variable MEMMGR_SQLITE names what to
 * install: "pcache", "malloc", or both separated by a comma.  It says
 * nothing on failure (SQLite then runs as it would without it), unless
 * MEMMGR_SQLITE_VERBOSE is set: then one line to stderr.  With
 * MEMMGR_SQLITE_STATS set, it prints the page cache's counters (struct
 * memmgr_sqlite_stats) to stderr at exit, one line:
 * "memmgr_sqlite: fetches N hits N misses N evicted N fallbacks N pages N".
 *
 * The page cache: one storage buffer per page (whole memmgr pages), pinned
 * while SQLite holds the page; a cache holds at most its cache_size and
 * at most what the storage quota holds, and reuses its least recently
 * used page beyond that.  Caches of in-memory and temporary databases
 * (non-purgeable) keep their buffers pinned.  When storage is full of
 * pinned pages, a page SQLite must have comes from execution memory.
 * DESIGN.md, "SQLite on memmgr", has the details.
 */
#ifndef MEMMGR_SQLITE_H
#define MEMMGR_SQLITE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* memmgr_sqlite_install() flags. */
#define MEMMGR_SQLITE_PCACHE	(1U << 0)	/* the page cache */
#define MEMMGR_SQLITE_MALLOC	(1U << 1)	/* the allocator */

/* The exec id of SQLite's allocations (all of a process's). */
#define MEMMGR_SQLITE_EXEC_ID	0x53514c69746500ULL
/*
 * The exec id of the page cache's own memory: its records, and pages from
 * execution memory (apart from SQLite's objects: DESIGN.md says why).
 */
#define MEMMGR_SQLITE_PCACHE_EXEC_ID	0x53514c69746501ULL

/**
 * memmgr_sqlite_install() - SQLite's page cache and allocator on memmgr
 * @flags:	MEMMGR_SQLITE_PCACHE and/or MEMMGR_SQLITE_MALLOC, not 0
 *
 * Opens the process's libmemmgr handle (once) and configures SQLite.
 * Call it before sqlite3_initialize(), or after sqlite3_shutdown(); a
 * second call installs what the first did not.
 *
 * Context: not thread-safe with SQLite's other calls (sqlite3_config()
 * is not).
 *
 * Return: 0; -EINVAL (no flag, or an unknown one); -EBUSY (SQLite is
 * initialized: SQLITE_MISUSE); -ENODEV, -EACCES, -ENOMEM and the other
 * errors of memmgr_open(); -EIO for another SQLite error.
 */
int memmgr_sqlite_install(unsigned int flags);

/**
 * memmgr_sqlite_parse() - the flags a MEMMGR_SQLITE string names
 * @s:		"pcache", "malloc", or both separated by a comma (empty
 *		words are skipped); or NULL
 *
 * What the LD_PRELOAD constructor reads, for programs that take the same
 * setting.
 *
 * Return: the flags for memmgr_sqlite_install(); 0 when @s is NULL or
 * names nothing; -EINVAL when it has another word.
 */
int memmgr_sqlite_parse(const char *s);

/**
 * struct memmgr_sqlite_stats - what the page cache did, since install
 * @fetches:	xFetch calls
 * @hits:	fetches that found their page, its memory still there
 * @misses:	fetches of a page that was not in the cache
 * @evicted:	fetches that found their page evicted by memmgr (a miss
 *		too: SQLite reads it again)
 * @fallbacks:	pages that had to come from execution memory (storage
 *		full of pinned pages, createFlag 2)
 * @pages:	pages held now, in every cache
 */
struct memmgr_sqlite_stats {
	uint64_t fetches;
	uint64_t hits;
	uint64_t misses;
	uint64_t evicted;
	uint64_t fallbacks;
	uint64_t pages;
};

/**
 * memmgr_sqlite_get_stats() - the page cache's counters
 * @st:	filled in
 *
 * Context: thread-safe; the counters are read one by one.
 */
void memmgr_sqlite_get_stats(struct memmgr_sqlite_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* MEMMGR_SQLITE_H */
