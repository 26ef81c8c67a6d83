// SPDX-License-Identifier: GPL-2.0
/*
 * libmemmgr_sqlite: SQLite's page cache (sqlite3_pcache_methods2) on
 * storage buffers and its allocator (sqlite3_mem_methods) on the execution
 * allocator.  DESIGN.md, "SQLite on memmgr", has the reasoning.
 *
 * A page is a header of ours (struct mpage, in SQLite's heap: it holds
 * SQLite's szExtra bytes, which must survive while the page is cached)
 * and a storage buffer for its szPage bytes.  A buffer is pinned while
 * SQLite holds the page and unpinned when SQLite unpins it: from then on
 * memmgr may evict it.  A fetch of an unpinned page pins its buffer again
 * (a compare-and-swap on its state word, no system call); when that says
 * the buffer was evicted, the page is a miss, SQLite's header is reset and
 * SQLite reads the page again.
 *
 * Page ids: the kernel never sees SQLite's page numbers.  Each buffer gets
 * a page id of its own from one counter per process when it is allocated
 * and keeps it while the cache reuses the buffer for other pages, so page
 * ids never collide between caches, and xRekey and xTruncate are moves in
 * the cache's own hash table.
 *
 * Locking: SQLite serializes the calls on one cache (sqlite3_pcache) and
 * so nothing of a cache is locked here; cache_lock protects the list of
 * caches and the counters of destroyed ones; the libmemmgr handle is
 * thread-safe on its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "libmemmgr.h"
#include "memmgr_sqlite.h"

/* Buffers allocated at once when a cache grows (one system call). */
#define SPARE_BATCH	8
/* Unused buffers a cache keeps, unpinned, for its next pages. */
#define SPARE_MAX	16
/* Buffers freed at once (one system call). */
#define DEAD_BATCH	32
/* Rounds of allocating a batch whose buffers were all evicted at once. */
#define FILL_TRIES	4

/**
 * struct mpage - a cached page
 * @base:	what SQLite sees: pBuf (the page's bytes) and pExtra (its
 *		szExtra bytes, after this header)
 * @hnext:	next in the cache's hash chain, or in its spare list
 * @lru_prev:	the LRU list of unpinned pages of purgeable caches,
 * @lru_next:	most recently unpinned first; NULL while not on it
 * @handle:	the storage buffer's handle; 0 for a page in execution
 *		memory (storage was full of pinned pages), never evictable
 * @key:	SQLite's page number
 * @pinned:	SQLite holds the page; its buffer is pinned
 */
struct mpage {
	sqlite3_pcache_page base;
	struct mpage *hnext;
	struct mpage *lru_prev;
	struct mpage *lru_next;
	uint64_t handle;
	unsigned int key;
	bool pinned;
};

/**
 * struct mcache_counts - what a cache did, for memmgr_sqlite_get_stats()
 * @fetches:	as struct memmgr_sqlite_stats
 * @hits:	...
 * @misses:	...
 * @evicted:	...
 * @fallbacks:	...
 *
 * Written by the cache's (serialized) calls with relaxed atomic stores,
 * read by memmgr_sqlite_get_stats() from any thread.
 */
struct mcache_counts {
	uint64_t fetches;
	uint64_t hits;
	uint64_t misses;
	uint64_t evicted;
	uint64_t fallbacks;
};

/**
 * struct mcache - one sqlite3_pcache
 * @sz_page:	bytes of a page
 * @sz_extra:	SQLite's bytes per page, after the header
 * @purgeable:	pages may be evicted (a file database's cache); a
 *		non-purgeable cache keeps every buffer pinned
 * @buf_size:	bytes of a page's storage buffer (whole memmgr pages)
 * @nmax:	the cache's size in pages, from xCachesize
 * @nkeep:	pages the cache holds before it reuses its own: @nmax, at
 *		most what the storage quota holds
 * @npage:	pages in the hash table
 * @nunpinned:	of those, on the LRU list
 * @nhash:	slots in @hash, a power of two
 * @hash:	pages by key
 * @lru:	anchor of the LRU list (@lru.lru_next the most recent)
 * @spare:	unused pages (headers with unpinned buffers), by @hnext
 * @nspare:	on @spare
 * @dead:	pointers of buffers to free (evicted, or not wanted), freed
 *		in batches
 * @ndead:	in @dead
 * @pressure:	a fetch with createFlag 1 found no storage memory and no
 *		unpinned page: the xPagecount that SQLite makes next, to
 *		decide whether to spill a dirty page, says the cache is
 *		over any spill size (see mc_pagecount())
 * @counts:	what the cache did
 * @prev:	the list of caches, under cache_lock
 * @next:	(caches is its head)
 *
 * Everything but @counts, @npage (read by memmgr_sqlite_get_stats()) and
 * the list belongs to the cache's calls, which SQLite serializes.
 */
struct mcache {
	int sz_page;
	int sz_extra;
	bool purgeable;
	size_t buf_size;
	unsigned int nmax;
	unsigned int nkeep;
	unsigned int npage;
	unsigned int nunpinned;
	unsigned int nhash;
	struct mpage **hash;
	struct mpage lru;
	struct mpage *spare;
	unsigned int nspare;
	void *dead[DEAD_BATCH];
	unsigned int ndead;
	bool pressure;
	struct mcache_counts counts;
	struct mcache *prev, *next;
};

/* The process's handle: opened once, by the first install, kept. */
static struct memmgr *mm;
/* Bytes of the storage quota, from the figures at open. */
static uint64_t storage_quota;
/* Next page id; one per buffer, never reused by this process. */
static uint64_t next_page_id = 1;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
/* Live caches (cache_lock). */
static struct mcache *caches;
/* Counters of destroyed caches (cache_lock). */
static struct mcache_counts gone;

static void count(uint64_t *c)
{
	__atomic_store_n(c, *c + 1, __ATOMIC_RELAXED);
}

/* Buffers: storage first, execution memory when storage is full. */

static void dead_flush(struct mcache *c)
{
	if (c->ndead)
		memmgr_free_many(mm, c->ndead, c->dead, NULL);
	c->ndead = 0;
}

/* A storage buffer to free, with the next batch. */
static void dead_add(struct mcache *c, void *buf)
{
	c->dead[c->ndead++] = buf;
	if (c->ndead == DEAD_BATCH)
		dead_flush(c);
}

/*
 * The cache's own memory (page headers, hash tables, and the pages of
 * fallback_page(), which says why apart from SQLite's) is execution
 * memory of MEMMGR_SQLITE_PCACHE_EXEC_ID, allocated directly, not through
 * sqlite3_malloc(): SQLite's test harness injects failures into the
 * allocator SQLite is configured with and counts as harmless only the
 * failures that its own pcache1 marks so (sqlite3BeginBenignMalloc(), not
 * an API); a failure here would make SQLite spill and retry, succeed, and
 * look like a failure that went unreported.  The cache structure itself
 * comes from sqlite3_malloc(), as pcache1's does: its failure is an error
 * SQLite reports.
 */
static void *rec_alloc(size_t size)
{
	return memmgr_malloc(mm, MEMMGR_SQLITE_PCACHE_EXEC_ID, size);
}

static void rec_free(void *p)
{
	if (p)
		memmgr_free(mm, p);
}

/* Frees @p's header; its buffer must be dealt with already. */
static void header_free(struct mpage *p)
{
	rec_free(p);
}

static struct mpage *header_alloc(struct mcache *c)
{
	struct mpage *p = rec_alloc(sizeof(*p) + c->sz_extra);

	if (p) {
		memset(p, 0, sizeof(*p));
		p->base.pExtra = p + 1;
	}
	return p;
}

/*
 * Pins @p's unpinned storage buffer: 0, or -ESTALE when memmgr evicted
 * it (or any other failure: the buffer is lost to the cache all the same).
 */
static int buf_pin(struct mcache *c, struct mpage *p)
{
	if (!memmgr_pin_handle(mm, p->handle))
		return 0;
	dead_add(c, p->base.pBuf);
	p->base.pBuf = NULL;
	p->handle = 0;
	return -ESTALE;
}

/*
 * Allocates up to SPARE_BATCH unpinned storage buffers, in one system
 * call, onto the spare list, with headers.  Return: 0 when at least one
 * was had, else a negative errno.
 */
static int spare_fill(struct mcache *c, unsigned int n)
{
	struct mpage *pages[SPARE_BATCH];
	uint64_t ids[SPARE_BATCH], handles[SPARE_BATCH];
	size_t sizes[SPARE_BATCH], done = 0, i, nhead;
	void *ptrs[SPARE_BATCH];
	uint64_t first;
	int ret;

	n = n < 1 ? 1 : n > SPARE_BATCH ? SPARE_BATCH : n;
	for (nhead = 0; nhead < n; nhead++) {
		pages[nhead] = header_alloc(c);
		if (!pages[nhead])
			break;
	}
	if (!nhead)
		return -ENOMEM;
	first = __atomic_fetch_add(&next_page_id, nhead, __ATOMIC_RELAXED);
	for (i = 0; i < nhead; i++) {
		ids[i] = first + i;
		sizes[i] = c->buf_size;
	}
	ret = memmgr_alloc_storage_many(mm, nhead, ids, sizes, 0,
					MEMMGR_ALLOC_UNPINNED, ptrs, handles,
					&done);
	for (i = 0; i < done; i++) {
		pages[i]->base.pBuf = ptrs[i];
		pages[i]->handle = handles[i];
		pages[i]->hnext = c->spare;
		c->spare = pages[i];
		c->nspare++;
	}
	for (; i < nhead; i++)
		header_free(pages[i]);
	return done ? 0 : ret;
}

/*
 * Buffers of @size that storage has room for without evicting, by the
 * figures page (no system call): a batch larger than that would evict
 * buffers, maybe this cache's own pages, for spares it may not use.
 */
static unsigned int storage_room(size_t size)
{
	struct memmgr_figures f;
	uint64_t quota, used;

	if (memmgr_figures(mm, &f))
		return 0;
	quota = f.pool[MEMMGR_POOL_STORAGE].quota;
	used = f.pool[MEMMGR_POOL_STORAGE].used;
	return used >= quota ? 0 : (quota - used) / size > SPARE_BATCH ?
	       SPARE_BATCH : (unsigned int)((quota - used) / size);
}

static unsigned int min_room(struct mcache *c, unsigned int want)
{
	unsigned int room;

	if (want <= 1)
		return 1;
	room = storage_room(c->buf_size);
	return room < want ? (room ? room : 1) : want;
}

/*
 * A page with a pinned storage buffer from the spare list, which is
 * filled when empty with up to @want buffers, as many as storage has room
 * for, at least one.  NULL when storage memory cannot be had now.
 */
static struct mpage *spare_take(struct mcache *c, unsigned int want)
{
	unsigned int fills = 0;
	struct mpage *p;

	for (;;) {
		if (!c->spare && (fills++ == FILL_TRIES ||
				  spare_fill(c, min_room(c, want))))
			return NULL;
		p = c->spare;
		c->spare = p->hnext;
		c->nspare--;
		if (!buf_pin(c, p))
			return p;
		/* Evicted while spare: another buffer. */
		header_free(p);
	}
}

/* Gives back @p's buffer (an unpinned one to the spare list) and header. */
static void page_drop(struct mcache *c, struct mpage *p)
{
	if (!p->handle) {
		rec_free(p->base.pBuf);
		header_free(p);
		return;
	}
	if (c->purgeable && c->nspare < SPARE_MAX) {
		if (p->pinned)
			memmgr_unpin_handle(mm, p->handle);
		p->hnext = c->spare;
		c->spare = p;
		c->nspare++;
		return;
	}
	dead_add(c, p->base.pBuf);
	header_free(p);
}

/*
 * A page in execution memory, never evicted: storage is full of pins.
 *
 * Such pages, and the cache's records, are memory of an exec id of their
 * own (MEMMGR_SQLITE_PCACHE_EXEC_ID), never of SQLite's: SQLite's btree
 * takes a cell whose bytes contain the end of its source page's buffer
 * for corruption (balance_nonroot(): SQLITE_WITHIN(pSrcEnd, pCell, ...)),
 * and a cell may lie in a page-sized sqlite3_malloc() buffer of its own
 * (BtShared's pTmpSpace), counted from that buffer's first byte.  The
 * allocator packs objects of one size class and exec id side by side,
 * last freed first reused: a 1 KiB page taken right after SQLite's 1 KiB
 * pTmpSpace ended where it began, and sound inserts failed with
 * "database disk image is malformed".  pcache1 never packs them so: its
 * page's extra bytes follow the page.  A page's neighbours are now pages
 * and records, which hold no cells.
 */
static struct mpage *fallback_page(struct mcache *c)
{
	struct mpage *p = header_alloc(c);

	if (!p)
		return NULL;
	p->base.pBuf = rec_alloc(c->sz_page);
	if (!p->base.pBuf) {
		header_free(p);
		return NULL;
	}
	count(&c->counts.fallbacks);
	return p;
}

/* The hash table and the LRU list. */

static struct mpage **hash_slot(struct mcache *c, unsigned int key)
{
	return &c->hash[key & (c->nhash - 1)];
}

static struct mpage *hash_find(struct mcache *c, unsigned int key)
{
	struct mpage *p = *hash_slot(c, key);

	while (p && p->key != key)
		p = p->hnext;
	return p;
}

static void hash_del(struct mcache *c, struct mpage *p)
{
	struct mpage **pp = hash_slot(c, p->key);

	while (*pp != p)
		pp = &(*pp)->hnext;
	*pp = p->hnext;
	__atomic_store_n(&c->npage, c->npage - 1, __ATOMIC_RELAXED);
}

static void hash_add(struct mcache *c, struct mpage *p)
{
	struct mpage **slot = hash_slot(c, p->key);

	p->hnext = *slot;
	*slot = p;
	__atomic_store_n(&c->npage, c->npage + 1, __ATOMIC_RELAXED);
}

/* Doubles the table; on failure the chains just grow longer. */
static void hash_grow(struct mcache *c)
{
	unsigned int n = c->nhash * 2, i;
	struct mpage **t = rec_alloc(n * sizeof(*t)), *p, *next;

	if (!t)
		return;
	memset(t, 0, n * sizeof(*t));
	for (i = 0; i < c->nhash; i++) {
		for (p = c->hash[i]; p; p = next) {
			next = p->hnext;
			p->hnext = t[p->key & (n - 1)];
			t[p->key & (n - 1)] = p;
		}
	}
	rec_free(c->hash);
	c->hash = t;
	c->nhash = n;
}

static void lru_del(struct mcache *c, struct mpage *p)
{
	p->lru_prev->lru_next = p->lru_next;
	p->lru_next->lru_prev = p->lru_prev;
	p->lru_next = p->lru_prev = NULL;
	c->nunpinned--;
}

static void lru_add(struct mcache *c, struct mpage *p)
{
	p->lru_next = c->lru.lru_next;
	p->lru_prev = &c->lru;
	c->lru.lru_next->lru_prev = p;
	c->lru.lru_next = p;
	c->nunpinned++;
}

/* Removes @p from the cache and gives its memory back. */
static void page_discard(struct mcache *c, struct mpage *p)
{
	hash_del(c, p);
	if (p->lru_next)
		lru_del(c, p);
	page_drop(c, p);
}

/* Discards unpinned pages, least recently used first, down to @keep. */
static void lru_trim(struct mcache *c, unsigned int keep)
{
	while (c->npage > keep && c->nunpinned)
		page_discard(c, c->lru.lru_prev);
}

/* pcache2 methods. */

static int mc_init(void *arg)
{
	(void)arg;
	return mm ? SQLITE_OK : SQLITE_ERROR;
}

static void mc_shutdown(void *arg)
{
	(void)arg;
}

static unsigned int quota_pages(size_t buf_size)
{
	uint64_t n = storage_quota / buf_size;

	return n > 0xffffffffU ? 0xffffffffU : n ? (unsigned int)n : 1;
}

static sqlite3_pcache *mc_create(int sz_page, int sz_extra, int purgeable)
{
	long pagesize = sysconf(_SC_PAGESIZE);
	struct mcache *c = sqlite3_malloc64(sizeof(*c));

	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->sz_page = sz_page;
	c->sz_extra = (sz_extra + 7) & ~7;
	c->purgeable = purgeable;
	c->buf_size = ((size_t)sz_page + pagesize - 1) & ~(size_t)(pagesize - 1);
	c->nmax = c->nkeep = quota_pages(c->buf_size);
	c->nhash = 64;
	c->lru.lru_next = c->lru.lru_prev = &c->lru;
	c->hash = rec_alloc(c->nhash * sizeof(*c->hash));
	if (!c->hash) {
		sqlite3_free(c);
		return NULL;
	}
	memset(c->hash, 0, c->nhash * sizeof(*c->hash));
	pthread_mutex_lock(&cache_lock);
	c->next = caches;
	if (caches)
		caches->prev = c;
	caches = c;
	pthread_mutex_unlock(&cache_lock);
	return (sqlite3_pcache *)c;
}

static void mc_cachesize(sqlite3_pcache *pc, int n)
{
	struct mcache *c = (struct mcache *)pc;
	unsigned int q = quota_pages(c->buf_size);

	if (!c->purgeable)
		return;
	c->nmax = n < 0 ? 0 : (unsigned int)n;
	c->nkeep = c->nmax < q ? c->nmax : q;
	lru_trim(c, c->nkeep);
}

/*
 * SQLite spills a dirty page, to make room for a page it failed to get
 * with createFlag 1, only when the cache's page count is above its spill
 * size (sqlite3PcacheFetchStress()), which it derives from cache_size:
 * with a storage quota below cache_size, storage fills with dirty pages
 * first and SQLite would never spill.  So right after such a failure the
 * count says "over"; the next fetch clears that.
 */
static int mc_pagecount(sqlite3_pcache *pc)
{
	struct mcache *c = (struct mcache *)pc;

	return c->pressure ? INT_MAX : (int)c->npage;
}

/*
 * A page found unpinned: pin its buffer.  false when memmgr evicted it:
 * the page is gone from the cache.
 */
static bool page_repin(struct mcache *c, struct mpage *p)
{
	if (c->purgeable)
		lru_del(c, p);
	if (p->handle && c->purgeable && buf_pin(c, p)) {
		count(&c->counts.evicted);
		hash_del(c, p);
		header_free(p);
		return false;
	}
	p->pinned = true;
	return true;
}

/*
 * A page for a key not in the cache: when the cache is full, its least
 * recently used unpinned page makes room; else a buffer from the spare
 * list or new ones; when storage cannot be had, the least recently used
 * page all the same; with @create 2, execution memory as the last resort.
 */
static struct mpage *page_new(struct mcache *c, int create)
{
	unsigned int want = SPARE_BATCH;
	struct mpage *p;

	if (c->purgeable) {
		if (c->nunpinned && c->npage >= c->nkeep)
			page_discard(c, c->lru.lru_prev);
		want = c->nkeep > c->npage ? c->nkeep - c->npage : 1;
	}
	p = spare_take(c, want);
	if (!p && c->purgeable && c->nunpinned) {
		page_discard(c, c->lru.lru_prev);
		p = spare_take(c, 1);
	}
	if (!p && create == 2)
		p = fallback_page(c);
	return p;
}

static sqlite3_pcache_page *mc_fetch(sqlite3_pcache *pc, unsigned int key,
				     int create)
{
	struct mcache *c = (struct mcache *)pc;
	struct mpage *p = hash_find(c, key);

	c->pressure = false;
	count(&c->counts.fetches);
	if (p && (p->pinned || page_repin(c, p))) {
		count(&c->counts.hits);
		return &p->base;
	}
	count(&c->counts.misses);
	if (!create)
		return NULL;
	/* As pcache1: make SQLite spill before it pins 90% of the cache. */
	if (create == 1 &&
	    c->npage - c->nunpinned >= (uint64_t)c->nmax * 9 / 10)
		return NULL;
	p = page_new(c, create);
	if (!p) {
		c->pressure = create == 1;
		return NULL;
	}
	p->key = key;
	p->pinned = true;
	p->lru_next = p->lru_prev = NULL;
	memset(p->base.pExtra, 0, c->sz_extra);
	if (c->npage >= c->nhash)
		hash_grow(c);
	hash_add(c, p);
	return &p->base;
}

static void mc_unpin(sqlite3_pcache *pc, sqlite3_pcache_page *pg,
		     int discard)
{
	struct mcache *c = (struct mcache *)pc;
	struct mpage *p = (struct mpage *)pg;

	if (discard || (c->purgeable && c->npage > c->nkeep)) {
		page_discard(c, p);
		return;
	}
	p->pinned = false;
	if (!c->purgeable)
		return;
	if (p->handle)
		memmgr_unpin_handle(mm, p->handle);
	lru_add(c, p);
}

static void mc_rekey(sqlite3_pcache *pc, sqlite3_pcache_page *pg,
		     unsigned int old_key, unsigned int new_key)
{
	struct mcache *c = (struct mcache *)pc;
	struct mpage *p = (struct mpage *)pg, *q = hash_find(c, new_key);

	(void)old_key;
	if (q)
		page_discard(c, q);
	hash_del(c, p);
	p->key = new_key;
	hash_add(c, p);
}

/* Discards every page whose key is @limit or above, pinned or not. */
static void mc_truncate(sqlite3_pcache *pc, unsigned int limit)
{
	struct mcache *c = (struct mcache *)pc;
	struct mpage *p, *next;
	unsigned int i;

	for (i = 0; i < c->nhash; i++) {
		for (p = c->hash[i]; p; p = next) {
			next = p->hnext;
			if (p->key >= limit)
				page_discard(c, p);
		}
	}
}

/* Frees the spare buffers, the evicted ones and their headers. */
static void spare_free(struct mcache *c)
{
	struct mpage *p;

	while ((p = c->spare)) {
		c->spare = p->hnext;
		dead_add(c, p->base.pBuf);
		header_free(p);
	}
	c->nspare = 0;
	dead_flush(c);
}

static void counts_add(struct mcache_counts *to,
		       const struct mcache_counts *from)
{
	to->fetches += __atomic_load_n(&from->fetches, __ATOMIC_RELAXED);
	to->hits += __atomic_load_n(&from->hits, __ATOMIC_RELAXED);
	to->misses += __atomic_load_n(&from->misses, __ATOMIC_RELAXED);
	to->evicted += __atomic_load_n(&from->evicted, __ATOMIC_RELAXED);
	to->fallbacks += __atomic_load_n(&from->fallbacks, __ATOMIC_RELAXED);
}

/* Frees every page of @c, pinned or not, and its spare buffers. */
static void cache_empty(struct mcache *c)
{
	struct mpage *p, *next;
	unsigned int i;

	for (i = 0; i < c->nhash; i++) {
		for (p = c->hash[i]; p; p = next) {
			next = p->hnext;
			if (p->handle)
				dead_add(c, p->base.pBuf);
			else
				rec_free(p->base.pBuf);
			header_free(p);
		}
		c->hash[i] = NULL;
	}
	c->npage = 0;
	c->nunpinned = 0;
	c->lru.lru_next = c->lru.lru_prev = &c->lru;
	spare_free(c);
}

static void mc_destroy(sqlite3_pcache *pc)
{
	struct mcache *c = (struct mcache *)pc;

	cache_empty(c);
	pthread_mutex_lock(&cache_lock);
	counts_add(&gone, &c->counts);
	if (c->prev)
		c->prev->next = c->next;
	else
		caches = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&cache_lock);
	rec_free(c->hash);
	sqlite3_free(c);
}

/* Gives back every unpinned page and every spare buffer. */
static void mc_shrink(sqlite3_pcache *pc)
{
	struct mcache *c = (struct mcache *)pc;

	if (!c->purgeable)
		return;
	lru_trim(c, 0);
	spare_free(c);
}

static const sqlite3_pcache_methods2 pcache_methods = {
	.iVersion = 1,
	.xInit = mc_init,
	.xShutdown = mc_shutdown,
	.xCreate = mc_create,
	.xCachesize = mc_cachesize,
	.xPagecount = mc_pagecount,
	.xFetch = mc_fetch,
	.xUnpin = mc_unpin,
	.xRekey = mc_rekey,
	.xTruncate = mc_truncate,
	.xDestroy = mc_destroy,
	.xShrink = mc_shrink,
};

/* mem_methods: the execution allocator, one exec id per process. */

static void *mem_malloc(int n)
{
	return memmgr_malloc(mm, MEMMGR_SQLITE_EXEC_ID, n);
}

static void mem_free(void *ptr)
{
	memmgr_free(mm, ptr);
}

static void *mem_realloc(void *ptr, int n)
{
	return memmgr_realloc(mm, MEMMGR_SQLITE_EXEC_ID, ptr, n);
}

static int mem_size(void *ptr)
{
	return (int)memmgr_usable_size(mm, ptr);
}

static int mem_roundup(int n)
{
	return (n + 7) & ~7;
}

static int mem_init(void *arg)
{
	(void)arg;
	return mm ? SQLITE_OK : SQLITE_ERROR;
}

static void mem_shutdown(void *arg)
{
	(void)arg;
}

static const sqlite3_mem_methods mem_methods = {
	.xMalloc = mem_malloc,
	.xFree = mem_free,
	.xRealloc = mem_realloc,
	.xSize = mem_size,
	.xRoundup = mem_roundup,
	.xInit = mem_init,
	.xShutdown = mem_shutdown,
};

/* Installation. */

static int handle_open(void)
{
	struct memmgr_figures fig;
	struct memmgr *h;
	int ret = 0;

	pthread_mutex_lock(&cache_lock);
	if (mm)
		goto out_unlock;
	ret = memmgr_open(&h, 0);
	if (ret)
		goto out_unlock;
	ret = memmgr_figures(h, &fig);
	if (ret) {
		memmgr_close(h);
		goto out_unlock;
	}
	storage_quota = fig.pool[MEMMGR_POOL_STORAGE].quota;
	mm = h;
out_unlock:
	pthread_mutex_unlock(&cache_lock);
	return ret;
}

static int sqlite_errno(int rc)
{
	switch (rc) {
	case SQLITE_OK:
		return 0;
	case SQLITE_MISUSE:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

int memmgr_sqlite_install(unsigned int flags)
{
	int ret;

	if (!flags || (flags & ~(MEMMGR_SQLITE_PCACHE | MEMMGR_SQLITE_MALLOC)))
		return -EINVAL;
	ret = handle_open();
	if (ret)
		return ret;
	if (flags & MEMMGR_SQLITE_MALLOC) {
		ret = sqlite_errno(sqlite3_config(SQLITE_CONFIG_MALLOC,
						  &mem_methods));
		if (ret)
			return ret;
	}
	if (flags & MEMMGR_SQLITE_PCACHE)
		ret = sqlite_errno(sqlite3_config(SQLITE_CONFIG_PCACHE2,
						  &pcache_methods));
	return ret;
}

void memmgr_sqlite_get_stats(struct memmgr_sqlite_stats *st)
{
	struct mcache_counts sum;
	struct mcache *c;
	uint64_t pages = 0;

	pthread_mutex_lock(&cache_lock);
	sum = gone;
	for (c = caches; c; c = c->next) {
		counts_add(&sum, &c->counts);
		pages += __atomic_load_n(&c->npage, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&cache_lock);
	*st = (struct memmgr_sqlite_stats){
		.fetches = sum.fetches, .hits = sum.hits,
		.misses = sum.misses, .evicted = sum.evicted,
		.fallbacks = sum.fallbacks, .pages = pages,
	};
}

int memmgr_sqlite_parse(const char *s)
{
	int flags = 0;
	size_t n;

	if (!s)
		return 0;
	while (*s) {
		n = strcspn(s, ",");
		if (n == 6 && !strncmp(s, "pcache", n))
			flags |= MEMMGR_SQLITE_PCACHE;
		else if (n == 6 && !strncmp(s, "malloc", n))
			flags |= MEMMGR_SQLITE_MALLOC;
		else if (n)
			return -EINVAL;
		s += n + (s[n] == ',');
	}
	return flags;
}

#ifdef MEMMGR_SQLITE_SHARED
/*
 * LD_PRELOAD: MEMMGR_SQLITE="pcache", "malloc" or "pcache,malloc" installs
 * what it names when the shared object is loaded, before the program's
 * main(); MEMMGR_SQLITE_STATS prints the page cache's counters at exit.
 * Silent on failure unless MEMMGR_SQLITE_VERBOSE is set.
 */

static void preload_stats(void)
{
	struct memmgr_sqlite_stats st;

	memmgr_sqlite_get_stats(&st);
	fprintf(stderr,
		"memmgr_sqlite: fetches %llu hits %llu misses %llu evicted %llu fallbacks %llu pages %llu\n",
		(unsigned long long)st.fetches, (unsigned long long)st.hits,
		(unsigned long long)st.misses, (unsigned long long)st.evicted,
		(unsigned long long)st.fallbacks, (unsigned long long)st.pages);
}

__attribute__((constructor)) static void preload_install(void)
{
	const char *env = getenv("MEMMGR_SQLITE");
	int flags, ret;

	if (!env)
		return;
	flags = memmgr_sqlite_parse(env);
	ret = flags > 0 ? memmgr_sqlite_install(flags) : -EINVAL;
	if (ret && getenv("MEMMGR_SQLITE_VERBOSE"))
		fprintf(stderr, "memmgr_sqlite: MEMMGR_SQLITE=%s: %s\n", env,
			memmgr_strerror(ret));
	if (!ret && getenv("MEMMGR_SQLITE_STATS"))
		atexit(preload_stats);
}
#endif /* MEMMGR_SQLITE_SHARED */
