// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests of libmemmgr_sqlite (issue 14), run in a VM against the
 * loaded module: memmgr_sqlite_install()'s errors, then the page cache's
 * methods called one by one as SQLite calls them (taken back with
 * SQLITE_CONFIG_GETPCACHE2), with exact expectations: fetch, unpin and
 * fetch again, a page evicted by memmgr (a miss, its extra bytes reset),
 * createFlag 1 and 2 with storage full of another handle's pinned
 * buffers (NULL and a spill signal, then execution memory), xRekey,
 * xTruncate, xCachesize, non-purgeable caches, two caches with the same
 * keys, xDestroy giving every buffer back; and the allocator
 * (SQLITE_CONFIG_MALLOC) on execution memory.
 *
 * The harness runs each test in a child of its own, so each installs
 * into a fresh SQLite.  The tests need an idle device with total=64M
 * (32 MiB of storage): the figures of the device are the tests' own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "libmemmgr.h"
#include "memmgr_sqlite.h"

#include "kselftest_harness.h"

#define PAGE		4096
#define EXTRA		64
#define KiB		1024UL

static sqlite3_pcache_methods2 methods;

/* Installs @flags and takes the page cache's methods back. */
static int install(unsigned int flags)
{
	int ret = memmgr_sqlite_install(flags);

	if (ret)
		return ret;
	if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &methods))
		return -EIO;
	return sqlite3_initialize() ? -EIO : 0;
}

static struct memmgr_figures figures(void)
{
	struct memmgr_figures f = { 0 };
	struct memmgr *h;

	if (!memmgr_open(&h, 0)) {
		memmgr_figures(h, &f);
		memmgr_close(h);
	}
	return f;
}

static uint64_t storage_used(void)
{
	return figures().pool[MEMMGR_POOL_STORAGE].used;
}

/*
 * Fills storage with pinned buffers of a handle of its own, 64 KiB then
 * 4 KiB ones, until the kernel declines: every unpinned buffer is
 * evicted.  Return: the handle (its close frees them), or NULL.
 */
static struct memmgr *fill_storage(void)
{
	uint64_t id = 1;
	struct memmgr *h;
	void *p;

	if (memmgr_open(&h, 0))
		return NULL;
	while (!memmgr_alloc_storage(h, id, 64 * KiB, 0, 0, &p))
		id++;
	while (!memmgr_alloc_storage(h, id, 4 * KiB, 0, 0, &p))
		id++;
	return h;
}

static struct memmgr_sqlite_stats stats(void)
{
	struct memmgr_sqlite_stats st;

	memmgr_sqlite_get_stats(&st);
	return st;
}

static int all_bytes(const void *p, int c, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != c)
			return 0;
	return 1;
}

/* Fetches @key with @create and fills the page with @c, the extra ~@c. */
static sqlite3_pcache_page *fetch_fill(sqlite3_pcache *pc, unsigned int key,
				       int create, int c)
{
	sqlite3_pcache_page *pg = methods.xFetch(pc, key, create);

	if (pg) {
		memset(pg->pBuf, c, PAGE);
		memset(pg->pExtra, ~c & 0xff, EXTRA);
	}
	return pg;
}

TEST(install_errors)
{
	ASSERT_EQ(-EINVAL, memmgr_sqlite_install(0));
	ASSERT_EQ(-EINVAL, memmgr_sqlite_install(4));
	ASSERT_EQ(-EINVAL, memmgr_sqlite_install(MEMMGR_SQLITE_PCACHE | 8));
	ASSERT_EQ(SQLITE_OK, sqlite3_initialize());
	ASSERT_EQ(-EBUSY, memmgr_sqlite_install(MEMMGR_SQLITE_PCACHE));
	ASSERT_EQ(-EBUSY, memmgr_sqlite_install(MEMMGR_SQLITE_MALLOC));
	ASSERT_EQ(SQLITE_OK, sqlite3_shutdown());
	ASSERT_EQ(0, memmgr_sqlite_install(MEMMGR_SQLITE_PCACHE));
	/* Again, and the other part: both allowed before initialize. */
	ASSERT_EQ(0, memmgr_sqlite_install(MEMMGR_SQLITE_PCACHE |
					   MEMMGR_SQLITE_MALLOC));
	ASSERT_EQ(SQLITE_OK, sqlite3_initialize());
}

/* MEMMGR_SQLITE's words, as the LD_PRELOAD constructor reads them. */
TEST(parse_words)
{
	const int both = MEMMGR_SQLITE_PCACHE | MEMMGR_SQLITE_MALLOC;

	ASSERT_EQ(0, memmgr_sqlite_parse(NULL));
	ASSERT_EQ(0, memmgr_sqlite_parse(""));
	ASSERT_EQ(0, memmgr_sqlite_parse(",,"));
	ASSERT_EQ(MEMMGR_SQLITE_PCACHE, memmgr_sqlite_parse("pcache"));
	ASSERT_EQ(MEMMGR_SQLITE_MALLOC, memmgr_sqlite_parse("malloc"));
	ASSERT_EQ(both, memmgr_sqlite_parse("pcache,malloc"));
	ASSERT_EQ(both, memmgr_sqlite_parse(",malloc,,pcache,"));
	ASSERT_EQ(MEMMGR_SQLITE_PCACHE, memmgr_sqlite_parse("pcache,pcache"));
	ASSERT_EQ(-EINVAL, memmgr_sqlite_parse("pcache,x"));
	ASSERT_EQ(-EINVAL, memmgr_sqlite_parse("pcachemalloc"));
	ASSERT_EQ(-EINVAL, memmgr_sqlite_parse("pcach"));
	ASSERT_EQ(-EINVAL, memmgr_sqlite_parse("PCACHE"));
	ASSERT_EQ(-EINVAL, memmgr_sqlite_parse("pcache malloc"));
}

TEST(fetch_unpin_fetch)
{
	sqlite3_pcache_page *pg, *again;
	struct memmgr_sqlite_stats st;
	sqlite3_pcache *pc;

	ASSERT_EQ(0, install(MEMMGR_SQLITE_PCACHE));
	pc = methods.xCreate(PAGE, EXTRA, 1);
	ASSERT_NE(NULL, pc);
	methods.xCachesize(pc, 100);
	pg = methods.xFetch(pc, 1, 1);
	ASSERT_NE(NULL, pg);
	ASSERT_TRUE(all_bytes(pg->pExtra, 0, EXTRA));
	ASSERT_EQ(0, (uintptr_t)pg->pBuf % PAGE);
	memset(pg->pBuf, 0xa1, PAGE);
	memset(pg->pExtra, 0x5a, EXTRA);
	methods.xUnpin(pc, pg, 0);
	ASSERT_EQ(1, methods.xPagecount(pc));
	/* Unpinned, not evicted: the same page, contents and extra kept. */
	again = methods.xFetch(pc, 1, 0);
	ASSERT_EQ(pg, again);
	ASSERT_TRUE(all_bytes(pg->pBuf, 0xa1, PAGE));
	ASSERT_TRUE(all_bytes(pg->pExtra, 0x5a, EXTRA));
	/* A pinned page fetched again is the same page. */
	ASSERT_EQ(pg, methods.xFetch(pc, 1, 0));
	ASSERT_EQ(NULL, methods.xFetch(pc, 2, 0));
	st = stats();
	ASSERT_EQ(4, st.fetches);
	ASSERT_EQ(2, st.hits);
	ASSERT_EQ(2, st.misses);
	ASSERT_EQ(0, st.evicted);
	ASSERT_EQ(1, st.pages);
	methods.xDestroy(pc);
	ASSERT_EQ(0, stats().pages);
	ASSERT_EQ(0, storage_used());
}

/*
 * An unpinned page evicted by memmgr is a miss; with storage full of
 * pins, createFlag 1 fails (and xPagecount asks SQLite to spill) and
 * createFlag 2 takes execution memory.
 */
TEST(evicted_then_full)
{
	sqlite3_pcache_page *pg, *fb;
	struct memmgr_sqlite_stats st;
	sqlite3_pcache *pc;
	struct memmgr *filler;

	ASSERT_EQ(0, install(MEMMGR_SQLITE_PCACHE));
	pc = methods.xCreate(PAGE, EXTRA, 1);
	ASSERT_NE(NULL, pc);
	methods.xCachesize(pc, 100);
	pg = fetch_fill(pc, 1, 1, 0x11);
	ASSERT_NE(NULL, pg);
	methods.xUnpin(pc, pg, 0);
	filler = fill_storage();
	ASSERT_NE(NULL, filler);
	ASSERT_EQ(NULL, methods.xFetch(pc, 1, 0));
	st = stats();
	ASSERT_EQ(1, st.evicted);
	ASSERT_EQ(0, methods.xPagecount(pc));
	/* Storage is all pinned, the cache has no unpinned page. */
	ASSERT_EQ(NULL, methods.xFetch(pc, 1, 1));
	ASSERT_EQ(INT_MAX, methods.xPagecount(pc));
	fb = fetch_fill(pc, 1, 2, 0x22);
	ASSERT_NE(NULL, fb);
	ASSERT_TRUE(all_bytes(fb->pBuf, 0x22, PAGE));
	ASSERT_EQ(1, methods.xPagecount(pc));
	ASSERT_EQ(1, stats().fallbacks);
	/* In execution memory: never evicted, kept when unpinned. */
	methods.xUnpin(pc, fb, 0);
	ASSERT_EQ(fb, methods.xFetch(pc, 1, 0));
	ASSERT_TRUE(all_bytes(fb->pBuf, 0x22, PAGE));
	methods.xUnpin(pc, fb, 0);
	memmgr_close(filler);
	/* Storage again: a new page, its extra bytes zero. */
	pg = methods.xFetch(pc, 2, 1);
	ASSERT_NE(NULL, pg);
	ASSERT_TRUE(all_bytes(pg->pExtra, 0, EXTRA));
	ASSERT_TRUE(all_bytes(pg->pBuf, 0, PAGE));
	ASSERT_EQ(2, methods.xPagecount(pc));
	methods.xDestroy(pc);
	ASSERT_EQ(0, storage_used());
}

TEST(rekey_moves)
{
	sqlite3_pcache_page *p5, *p6;
	sqlite3_pcache *pc;

	ASSERT_EQ(0, install(MEMMGR_SQLITE_PCACHE));
	pc = methods.xCreate(PAGE, EXTRA, 1);
	ASSERT_NE(NULL, pc);
	methods.xCachesize(pc, 100);
	p5 = fetch_fill(pc, 5, 1, 5);
	p6 = fetch_fill(pc, 6, 1, 6);
	ASSERT_NE(NULL, p5);
	ASSERT_NE(NULL, p6);
	methods.xUnpin(pc, p6, 0);
	methods.xRekey(pc, p5, 5, 9);
	ASSERT_EQ(NULL, methods.xFetch(pc, 5, 0));
	ASSERT_EQ(p5, methods.xFetch(pc, 9, 0));
	ASSERT_TRUE(all_bytes(p5->pBuf, 5, PAGE));
	/* Onto a key the cache holds: that page is discarded. */
	methods.xRekey(pc, p5, 9, 6);
	ASSERT_EQ(1, methods.xPagecount(pc));
	ASSERT_EQ(p5, methods.xFetch(pc, 6, 0));
	ASSERT_TRUE(all_bytes(p5->pBuf, 5, PAGE));
	ASSERT_EQ(NULL, methods.xFetch(pc, 9, 0));
	methods.xDestroy(pc);
	ASSERT_EQ(0, storage_used());
}

TEST(truncate_keys)
{
	sqlite3_pcache_page *pg[11];
	sqlite3_pcache *pc;
	unsigned int k;

	ASSERT_EQ(0, install(MEMMGR_SQLITE_PCACHE));
	pc = methods.xCreate(PAGE, EXTRA, 1);
	ASSERT_NE(NULL, pc);
	methods.xCachesize(pc, 100);
	for (k = 1; k <= 10; k++) {
		pg[k] = fetch_fill(pc, k, 1, k);
		ASSERT_NE(NULL, pg[k]);
		if (k % 2)
			methods.xUnpin(pc, pg[k], 0);
	}
	/* Pinned or not, keys 6 and above go. */
	methods.xTruncate(pc, 6);
	ASSERT_EQ(5, methods.xPagecount(pc));
	for (k = 6; k <= 10; k++)
		ASSERT_EQ(NULL, methods.xFetch(pc, k, 0));
	for (k = 1; k <= 5; k++) {
		ASSERT_EQ(pg[k], methods.xFetch(pc, k, 0));
		ASSERT_TRUE(all_bytes(pg[k]->pBuf, k, PAGE));
	}
	methods.xTruncate(pc, 0);
	ASSERT_EQ(0, methods.xPagecount(pc));
	methods.xDestroy(pc);
	ASSERT_EQ(0, storage_used());
}

/* A full cache reuses its least recently unpinned page. */
TEST(cachesize_recycles)
{
	sqlite3_pcache_page *pg[6];
	sqlite3_pcache *pc;
	unsigned int k;

	ASSERT_EQ(0, install(MEMMGR_SQLITE_PCACHE));
	pc = methods.xCreate(PAGE, EXTRA, 1);
	ASSERT_NE(NULL, pc);
	methods.xCachesize(pc, 4);
	for (k = 1; k <= 4; k++) {
		pg[k] = fetch_fill(pc, k, 1, k);
		ASSERT_NE(NULL, pg[k]);
		ASSERT_EQ(k, methods.xPagecount(pc));
		methods.xUnpin(pc, pg[k], 0);
		ASSERT_EQ(k, methods.xPagecount(pc));
	}
	ASSERT_EQ(4, methods.xPagecount(pc));
	/* 1 is the least recently unpinned: refetching 2 moves it up. */
	ASSERT_EQ(pg[2], methods.xFetch(pc, 2, 0));
	methods.xUnpin(pc, pg[2], 0);
	pg[5] = methods.xFetch(pc, 5, 1);
	ASSERT_NE(NULL, pg[5]);
	ASSERT_EQ(4, methods.xPagecount(pc));
	ASSERT_TRUE(all_bytes(pg[5]->pExtra, 0, EXTRA));
	ASSERT_EQ(NULL, methods.xFetch(pc, 1, 0));
	ASSERT_EQ(pg[2], methods.xFetch(pc, 2, 0));
	ASSERT_TRUE(all_bytes(pg[2]->pBuf, 2, PAGE));
	/* Shrinking the cache drops unpinned pages, oldest first. */
	methods.xUnpin(pc, pg[5], 0);
	methods.xCachesize(pc, 2);
	ASSERT_EQ(2, methods.xPagecount(pc));
	ASSERT_EQ(pg[2], methods.xFetch(pc, 2, 0));
	ASSERT_EQ(NULL, methods.xFetch(pc, 3, 0));
	ASSERT_EQ(NULL, methods.xFetch(pc, 4, 0));
	/* xShrink: every unpinned page goes; the pinned one stays. */
	methods.xShrink(pc);
	ASSERT_EQ(1, methods.xPagecount(pc));
	ASSERT_EQ(pg[2], methods.xFetch(pc, 2, 0));
	methods.xDestroy(pc);
	ASSERT_EQ(0, storage_used());
}

/* As pcache1: createFlag 1 fails once 90% of the cache is pinned. */
TEST(ninety_percent_pinned)
{
	sqlite3_pcache *pc;
	unsigned int k;

	ASSERT_EQ(0, install(MEMMGR_SQLITE_PCACHE));
	pc = methods.xCreate(PAGE, EXTRA, 1);
	ASSERT_NE(NULL, pc);
	methods.xCachesize(pc, 10);
	for (k = 1; k <= 9; k++)
		ASSERT_NE(NULL, methods.xFetch(pc, k, 1));
	ASSERT_EQ(NULL, methods.xFetch(pc, 10, 1));
	ASSERT_EQ(9, methods.xPagecount(pc));
	ASSERT_NE(NULL, methods.xFetch(pc, 10, 2));
	ASSERT_EQ(10, methods.xPagecount(pc));
	methods.xDestroy(pc);
	ASSERT_EQ(0, storage_used());
}

/* An in-memory database's cache: its pages are never evicted. */
TEST(non_purgeable_kept)
{
	sqlite3_pcache_page *pg[4];
	struct memmgr *filler;
	sqlite3_pcache *pc;
	unsigned int k;

	ASSERT_EQ(0, install(MEMMGR_SQLITE_PCACHE));
	pc = methods.xCreate(PAGE, EXTRA, 0);
	ASSERT_NE(NULL, pc);
	for (k = 1; k <= 3; k++) {
		pg[k] = fetch_fill(pc, k, 2, k);
		ASSERT_NE(NULL, pg[k]);
		methods.xUnpin(pc, pg[k], 0);
	}
	filler = fill_storage();
	ASSERT_NE(NULL, filler);
	for (k = 1; k <= 3; k++) {
		ASSERT_EQ(pg[k], methods.xFetch(pc, k, 0));
		ASSERT_TRUE(all_bytes(pg[k]->pBuf, k, PAGE));
		ASSERT_TRUE(all_bytes(pg[k]->pExtra, ~k & 0xff, EXTRA));
	}
	ASSERT_EQ(0, stats().evicted);
	memmgr_close(filler);
	methods.xDestroy(pc);
	ASSERT_EQ(0, storage_used());
}

/* Two caches, the same keys: their own pages each. */
TEST(caches_apart)
{
	sqlite3_pcache *a, *b;
	unsigned int k;

	ASSERT_EQ(0, install(MEMMGR_SQLITE_PCACHE));
	a = methods.xCreate(PAGE, EXTRA, 1);
	b = methods.xCreate(PAGE, EXTRA, 1);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	methods.xCachesize(a, 50);
	methods.xCachesize(b, 50);
	for (k = 1; k <= 20; k++) {
		methods.xUnpin(a, fetch_fill(a, k, 1, 0x40 + k), 0);
		methods.xUnpin(b, fetch_fill(b, k, 1, 0x80 + k), 0);
	}
	for (k = 1; k <= 20; k++) {
		ASSERT_TRUE(all_bytes(methods.xFetch(a, k, 0)->pBuf,
				      0x40 + k, PAGE));
		ASSERT_TRUE(all_bytes(methods.xFetch(b, k, 0)->pBuf,
				      0x80 + k, PAGE));
	}
	ASSERT_EQ(40, stats().pages);
	methods.xDestroy(a);
	ASSERT_EQ(20, stats().pages);
	methods.xDestroy(b);
	ASSERT_EQ(0, storage_used());
}

/*
 * A page from execution memory is never packed right before an object of
 * SQLite's: SQLite's btree takes a cell that contains the end of its
 * page's buffer for corruption, and one of its cell buffers (BtShared's
 * pTmpSpace) is a page-sized sqlite3_malloc() whose first byte is a
 * cell's.  Before the fix, a 1 KiB page taken right after a 1 KiB object
 * ended where that object began (one exec id, one size class, caches last
 * in first out), and SQLite failed sound inserts with "database disk
 * image is malformed" (memmgr_sqlite_tcl.sh's pressure check).  Now such
 * pages are memory of the page cache's exec id, apart from SQLite's.
 */
#define SMALL_PAGE	1024
#define ROUNDS		16

TEST(fallback_not_packed)
{
	sqlite3_pcache_page *fb[ROUNDS];
	void *obj[ROUNDS];
	sqlite3_pcache *pc;
	struct memmgr *filler;
	int i, j;

	ASSERT_EQ(0, install(MEMMGR_SQLITE_PCACHE | MEMMGR_SQLITE_MALLOC));
	pc = methods.xCreate(SMALL_PAGE, EXTRA, 1);
	ASSERT_NE(NULL, pc);
	methods.xCachesize(pc, 100);
	filler = fill_storage();
	ASSERT_NE(NULL, filler);
	for (i = 0; i < ROUNDS; i++) {
		obj[i] = sqlite3_malloc(SMALL_PAGE);
		ASSERT_NE(NULL, obj[i]);
		fb[i] = methods.xFetch(pc, i + 1, 2);
		ASSERT_NE(NULL, fb[i]);
		memset(fb[i]->pBuf, i, SMALL_PAGE);
		memset(obj[i], 0xff - i, SMALL_PAGE);
	}
	ASSERT_EQ(ROUNDS, stats().fallbacks);
	for (i = 0; i < ROUNDS; i++) {
		for (j = 0; j < ROUNDS; j++)
			if ((char *)fb[i]->pBuf + SMALL_PAGE == obj[j])
				break;
		ASSERT_EQ(ROUNDS, j)
			TH_LOG("page %d ends where object %d begins", i, j);
		ASSERT_TRUE(all_bytes(fb[i]->pBuf, i, SMALL_PAGE));
		ASSERT_TRUE(all_bytes(obj[i], 0xff - i, SMALL_PAGE));
	}
	for (i = 0; i < ROUNDS; i++) {
		methods.xUnpin(pc, fb[i], 1);
		sqlite3_free(obj[i]);
	}
	methods.xDestroy(pc);
	memmgr_close(filler);
	ASSERT_EQ(0, storage_used());
}

/* SQLite's allocations in execution memory, and SQL on both. */
TEST(malloc_and_sql)
{
	uint64_t before = figures().pool[MEMMGR_POOL_EXEC].used;
	sqlite3_stmt *st;
	unsigned char *p;
	sqlite3 *db;
	int i;

	ASSERT_EQ(0, before);
	ASSERT_EQ(0, install(MEMMGR_SQLITE_PCACHE | MEMMGR_SQLITE_MALLOC));
	p = sqlite3_malloc(100);
	ASSERT_NE(NULL, p);
	ASSERT_GE(sqlite3_msize(p), 100);
	ASSERT_LT(0, figures().pool[MEMMGR_POOL_EXEC].used);
	for (i = 0; i < 100; i++)
		p[i] = i;
	p = sqlite3_realloc(p, 100000);
	ASSERT_NE(NULL, p);
	ASSERT_GE(sqlite3_msize(p), 100000);
	for (i = 0; i < 100; i++)
		ASSERT_EQ(i, p[i]);
	sqlite3_free(p);

	ASSERT_EQ(SQLITE_OK, sqlite3_open("/tmp/memmgr_sqlite_pcache_test.db",
					  &db));
	ASSERT_EQ(SQLITE_OK, sqlite3_exec(db,
		"PRAGMA cache_size=50; DROP TABLE IF EXISTS t;"
		"CREATE TABLE t(a INTEGER PRIMARY KEY, b BLOB);"
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n"
		" WHERE i<2000) INSERT INTO t SELECT i, zeroblob(1000) FROM n;",
		NULL, NULL, NULL));
	ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(db,
		"SELECT count(*), sum(a), sum(length(b)) FROM t", -1, &st,
		NULL));
	ASSERT_EQ(SQLITE_ROW, sqlite3_step(st));
	ASSERT_EQ(2000, sqlite3_column_int64(st, 0));
	ASSERT_EQ(2001000, sqlite3_column_int64(st, 1));
	ASSERT_EQ(2000000, sqlite3_column_int64(st, 2));
	ASSERT_EQ(SQLITE_OK, sqlite3_finalize(st));
	/* 2000 rows of 1 KB over a cache of 50 pages: misses, recycling. */
	ASSERT_LT(300, stats().misses);
	ASSERT_GE(50, stats().pages);
	ASSERT_LT(0, storage_used());
	ASSERT_EQ(SQLITE_OK, sqlite3_close(db));
	unlink("/tmp/memmgr_sqlite_pcache_test.db");
	ASSERT_EQ(0, storage_used());
}

TEST_HARNESS_MAIN
