// SPDX-License-Identifier: GPL-2.0
/*
 * libmemmgr's execution allocator: memmgr_malloc() and its kin, a private
 * copy of jemalloc on chunks of execution memory.
 *
 * The engine is Debian's jemalloc 5.3, linked into libmemmgr from its
 * static library with every public name renamed memmgr_je_* and made
 * local, and every internal one local too (userspace/Makefile): the
 * process's malloc() stays whatever it was, and another jemalloc in the
 * process (the program's own, or LD_PRELOADed) is a separate allocator.
 * DESIGN.md says why jemalloc and not libmemmgr's own slabs.
 *
 * Exec ids are arenas.  The first object of an exec id creates a jemalloc
 * arena whose extent hooks (struct mmx_arena) take chunks from the kernel:
 * each chunk is one execution buffer tagged with the exec id, entered in
 * the handle's tables like any other buffer (buffer_alloc()).  jemalloc
 * asks for chunks in growing sizes (its "retain" growth, from 2 MiB, here
 * capped at MMX_GROW_LIMIT), carves extents from them and never gives
 * part of one back: memory returns to the kernel when the exec id is
 * released, in one MEMMGR_IOC_RELEASE, or with the handle.  The arena's
 * metadata is jemalloc's own (mmap()ed, not charged): only objects are
 * in execution memory, so the kernel's charge of an exec id is its chunks.
 *
 * Thread caches: jemalloc's own thread cache serves every arena its
 * thread uses, so an object freed by one exec id could be handed out to
 * another.  So a thread has, per exec id, an explicit jemalloc tcache
 * (struct mmx_tcache) and in front of it a cache of its own (struct
 * mmx_cache: freed objects up to 1 MiB, by size class), found through
 * MMX_SLOTS thread-local slots, the last used first: an allocation is a
 * slot check, a class look-up and a pop, with no lock and no call into
 * jemalloc, which sees the cached objects as allocated.  A free finds its
 * object's arena and size class by address: every page of every chunk
 * has an entry (read without a lock) naming its arena, whether it begins
 * a chunk, and the class of the objects in the page, noted when the
 * object was taken from jemalloc (mmx_note(): a page never holds objects
 * of two of jemalloc's extents, so of two classes).  The entries are a
 * flat table over the window (one load from the pointer's offset), or,
 * for a handle without a window, a radix tree.
 *
 * Releasing an exec id (mmx_release()) destroys its tcaches and its arena
 * (jemalloc then forgets every object; the hooks leave the kernel alone,
 * @dying), then the caller's MEMMGR_IOC_RELEASE frees the chunks and
 * map_remove_locked() takes their pages' entries out.  Every cache in
 * use is on its handle's list: the release takes the exec id's caches,
 * in every thread, out of use (their handle pointer cleared, under
 * mmx.lock), so each thread finds its own unused at its next call, and
 * its objects gone with their arena; a close does so for all of the
 * handle's.  The fast path compares two fields of one cache, no more.  A
 * thread that exits gives its cached objects back (mmx_thread_exit()),
 * and destroys its tcaches; so does a thread's fifth exec id to its least
 * recently used one.
 *
 * Locking order: mmx_global, then mmx.lock, then jemalloc's own locks (its
 * ctl mutex, its arenas'), then the handle's mutex (the hooks take it to
 * enter chunks in the tables).  So jemalloc is never called with the
 * handle's mutex held.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <jemalloc/jemalloc.h>

#include "libmemmgr_int.h"

/* The private copy's names (see userspace/Makefile). */
void *memmgr_je_mallocx(size_t size, int flags);
void *memmgr_je_rallocx(void *ptr, size_t size, int flags);
void memmgr_je_dallocx(void *ptr, int flags);
size_t memmgr_je_sallocx(const void *ptr, int flags);
size_t memmgr_je_nallocx(size_t size, int flags);
int memmgr_je_mallctl(const char *name, void *oldp, size_t *oldlenp,
		      void *newp, size_t newlen);

/*
 * The private copy's options: its decay would only move extents between
 * its lists (the hooks cannot give part of a chunk back), and its own
 * automatic arenas hold nothing but its metadata.
 */
const char *memmgr_je_malloc_conf =
	"narenas:1,dirty_decay_ms:-1,muzzy_decay_ms:-1";
/*
 * Read after MALLOC_CONF and /etc/malloc.conf, which Debian's build reads
 * too (unprefixed): what the hooks rely on, whatever those say.
 */
const char *memmgr_je_malloc_conf_2_conf_harder =
	"retain:true,dirty_decay_ms:-1,muzzy_decay_ms:-1,junk:false,zero:false,"
	"abort:false,abort_conf:false";

/* jemalloc's arena_config_t (experimental.arenas_create_ext), 5.3. */
struct mmx_arena_config {
	extent_hooks_t *extent_hooks;
	bool metadata_use_hooks;
};

#define MMX_UNUSED	__attribute__((unused))
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
/* Off the fast paths, which then need no registers saved. */
#define MMX_SLOW	__attribute__((noinline, cold))
#define MMX_INLINE	inline __attribute__((always_inline))

/* Chunks grow from jemalloc's first (2 MiB) up to this many bytes. */
#define MMX_GROW_LIMIT	(4 * MEMMGR_CHUNK_MIN)	/* libmemmgr.h says 4 times */

/*
 * The thread caches: objects up to MMX_CACHE_MAX bytes are kept per size
 * class, at most MMX_CACHE_BYTES bytes (but two objects at least, and
 * MMX_CACHE_OBJS at most) per class, and taken from jemalloc half that
 * many at a time.
 */
#define MMX_CACHE_MAX	32768
#define MMX_CACHE_BYTES	16384
#define MMX_CACHE_OBJS	32
#define MMX_NR_SMALL	48		/* room: jemalloc has 41 to 32 KiB */

/*
 * Larger objects, up to MMX_LARGE_MAX, are cached too, two of a class at
 * most and MMX_LARGE_BYTES in all per cache, in classes from MMX_NR_SMALL
 * on: above 32 KiB jemalloc's thread cache does not keep them, and each
 * allocation and free takes the arena's extent path (2-3 µs under TCG).
 */
#define MMX_LARGE_MAX	(1024 * 1024)
#define MMX_LARGE_BYTES	(1024 * 1024)
#define MMX_NR_CLASSES	(MMX_NR_SMALL + 24)	/* jemalloc has 20 */

/* The exec ids a thread uses without a lock, per thread. */
#define MMX_SLOTS	4

/*
 * A page's entry (in the table over the window, or in the radix tree of a
 * handle without one): 0 for a page in no chunk; else the arena's key
 * (jemalloc's index + 1) from MMX_E_KEY_SHIFT up, MMX_E_FIRST on the first
 * page of a chunk, and the cached class + 1 of the objects in the page (0:
 * not cached) in the low byte.
 */
#define MMX_E_CLS	0xffU
#define MMX_E_FIRST	(1U << 8)
#define MMX_E_KEY_SHIFT	9
#define MMX_NR_KEYS	4096		/* jemalloc's arena limit, and 0 */

/*
 * The table over the window starts MMX_TABLE_COLOUR pages (modulo
 * MMX_TABLE_COLOURS) after the window does.  mmap() puts the two, both
 * multiples of 4 GiB long, at the same offset into 2 MiB: the entries of
 * the window's first pages, where the first chunks begin, would be in a
 * page whose number ends in the same bits as theirs, and a direct-mapped
 * TLB (QEMU's software one) would then miss on both, every time.
 */
#define MMX_TABLE_COLOURS	512
#define MMX_TABLE_COLOUR	160

/*
 * The same for a thread's caches, with every thread's: glibc gives each
 * thread a heap of its own aligned to 64 MiB, where the cache (calloc()ed
 * first) began in the heap's first pages, in a page whose number ended
 * in the bits of the window's first, where the first chunk's first slabs
 * are; objects written there and the cache then missed on each other in
 * QEMU's TLB.  So each cache is mapped by itself, at a fixed colour, and
 * holds its own copy of the size class table: the global one's page falls
 * wherever the linker puts it (once on the table's colour: +23 ns a pair).
 */
#define MMX_CACHE_COLOURS	64
#define MMX_CACHE_COLOUR	36

/* The radix tree: page numbers of 36 bits, in three levels of 12. */
#define MMX_BITS	12
#define MMX_FANOUT	(1U << MMX_BITS)
#define MMX_MASK	(MMX_FANOUT - 1)

/* A thread's jemalloc tcache for one arena. */
#define MMX_NO_TCACHE	UINT_MAX		/* none could be had */
struct mmx_tcache {
	struct mmx_tcache *next;	/* in the arena's list */
	const void *owner;		/* the thread: its mmx_caches */
	unsigned int ind;		/* jemalloc's tcache index */
};

/* The jemalloc arena of one exec id: its extent hooks and the tcaches. */
struct mmx_arena {
	extent_hooks_t hooks;		/* first: the hooks get &hooks */
	struct memmgr *mm;
	uint64_t exec_id;
	unsigned int ind;		/* jemalloc's arena index */
	bool dying;			/* being destroyed: hooks do nothing */
	struct mm_hnode node;		/* in mmx.arenas; key: exec id */
	struct mmx_tcache *tcaches;
};

/* The last level of the radix tree: per page, its entry. */
struct mmx_leaf {
	uint32_t entry[MMX_FANOUT];
};

/* A handle's allocator. */
struct mmx {
	pthread_mutex_t lock;		/* @arenas and the arenas' tcaches;
					 * after mmx_global, before jemalloc's
					 */
	struct mm_htab arenas;		/* (lock) */
	struct mmx_cache *caches;	/* (lock) every thread's, in use */
	/* By key: written under lock, read for a live object's arena. */
	struct mmx_arena *by_key[MMX_NR_KEYS];
	struct mmx_leaf **root[MMX_FANOUT];	/* radix tree, without a
						 * table: written under the
						 * handle's mutex, read
						 * atomically
						 */
};

/*
 * A thread's cache for one exec id of one handle: the arena and tcache to
 * call jemalloc with, and objects of small classes of that arena.  Only
 * its thread uses it.  While in use (@mm set) it is in its handle's list,
 * and a release of its exec id or the handle's close, in another thread,
 * takes it out and clears @mm: the thread then finds it unused, and its
 * objects gone with their arena.
 */
struct mmx_cache {
	struct memmgr *mm;		/* or NULL: unused; written under
					 * mmx.lock, read atomically
					 */
	uint64_t exec_id;
	uint32_t key;			/* its arena's, as in page entries */
	int flags;			/* jemalloc's: the arena, the tcache */
	int tcache_flags;		/* jemalloc's: the tcache */
	uint8_t nr[MMX_NR_CLASSES];	/* objects cached, per class */
	uint8_t room[MMX_NR_CLASSES];	/* mmx_class_objs[], copied */
	size_t large_bytes;		/* cached in classes MMX_NR_SMALL on */
	/*
	 * mmx_size_class[], copied: all the fast paths read is here and in
	 * a page entry (see MMX_CACHE_COLOUR).
	 */
	uint8_t size_class[MMX_CACHE_MAX / 8 + 1];
	struct mmx_cache *next;		/* in mmx.caches (mmx.lock) */
	struct mmx_cache **pprev;
	void *objs[MMX_NR_CLASSES][MMX_CACHE_OBJS];
};

static __thread struct mmx_cache *mmx_caches[MMX_SLOTS]
	__attribute__((tls_model("initial-exec")));
/* The kernel declined a chunk during this call into jemalloc. */
static __thread bool mmx_declined __attribute__((tls_model("initial-exec")));
/* The key of the arena whose hook allocates a chunk in this thread. */
static __thread uint32_t mmx_entering
	__attribute__((tls_model("initial-exec")));

/*
 * Taken by a thread that empties a cache of its own, and by a handle's
 * close to take every cache of the handle out of use: so a cache in use
 * has an open handle (mmx_cache_drain()).
 */
static pthread_mutex_t mmx_global = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t mmx_exit_key;	/* its destructor drains */
static bool mmx_exit_key_ok;		/* (without: caches stay) */

/*
 * Size classes cached, from jemalloc at the first open: small ones up to
 * MMX_CACHE_MAX (from 0), large ones up to MMX_LARGE_MAX (from
 * MMX_NR_SMALL).
 */
static pthread_once_t mmx_once = PTHREAD_ONCE_INIT;
static unsigned int mmx_nr_classes;	/* small */
static size_t mmx_cache_max;		/* the largest small class */
static unsigned int mmx_nr_large;
static size_t mmx_large_max;		/* the largest large class */
static uint32_t mmx_class_size[MMX_NR_CLASSES];
static uint8_t mmx_class_objs[MMX_NR_CLASSES];	/* the cache's room */
/* By (size + 7) / 8; above mmx_cache_max, MMX_CLS_NONE (never cached). */
static uint8_t mmx_size_class[MMX_CACHE_MAX / 8 + 1];
#define MMX_CLS_NONE	(MMX_NR_SMALL - 1)

static unsigned int mmx_page_shift(const struct memmgr *mm)
{
	return mm->page_shift;
}

/*
 * @len bytes of private anonymous memory, zeroed, whose first page's
 * number is @colour modulo @colours (a power of two), or NULL.
 */
static void *mmx_map_coloured(size_t len, uintptr_t colour,
			      unsigned int colours, int flags)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t span = len + (colours - 1) * page, head;
	char *p;

	p = mmap(NULL, span, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	head = (colour - (uintptr_t)p / page) % colours * page;
	/* Unmapping the ends of a private mapping never fails. */
	if (head)
		munmap(p, head);
	if (span - head - len)
		munmap(p + head + len, span - head - len);
	return p + head;
}

/* Page entries: the table over the window, or the radix tree. */

/* The leaf of page @pn in the tree, or NULL; no lock. */
static inline struct mmx_leaf *mmx_leaf(const struct mmx *mx, uint64_t pn)
{
	struct mmx_leaf **mid;

	if (pn >> (3 * MMX_BITS))
		return NULL;
	mid = __atomic_load_n(&mx->root[pn >> (2 * MMX_BITS)],
			      __ATOMIC_ACQUIRE);
	if (!mid)
		return NULL;
	return __atomic_load_n(&mid[(pn >> MMX_BITS) & MMX_MASK],
			       __ATOMIC_ACQUIRE);
}

/* Where the entry of @ptr's page is, or NULL (in no chunk); no lock. */
static uint32_t *mmx_slot(const struct memmgr *mm, const void *ptr)
{
	uintptr_t off = (uintptr_t)ptr - mm->mx_base;
	uint64_t pn = (uintptr_t)ptr >> mmx_page_shift(mm);
	struct mmx_leaf *leaf;

	if (mm->mx_table)
		return off < mm->mx_span ?
		       &mm->mx_table[off >> mmx_page_shift(mm)] : NULL;
	if (!mm->mx)
		return NULL;
	leaf = mmx_leaf(mm->mx, pn);
	return leaf ? &leaf->entry[pn & MMX_MASK] : NULL;
}

/* The entry of @ptr's page: 0 when it is in no chunk.  No lock. */
static uint32_t mmx_entry(const struct memmgr *mm, const void *ptr)
{
	uint32_t *slot = mmx_slot(mm, ptr);

	return slot ? __atomic_load_n(slot, __ATOMIC_RELAXED) : 0;
}

/*
 * Note the cached class + 1 (or 0) of the object at @ptr, live from now
 * on.  Pages are never shared by two of jemalloc's extents, so every live
 * object of a page has the class of the last one noted: the note is the
 * object's own until it is freed.  No lock: the page is in a chunk, and
 * only the class changes (two threads that note one page at once note
 * one class).
 */
static void mmx_note(const struct memmgr *mm, const void *ptr,
		     unsigned int cls)
{
	uint32_t *slot = mmx_slot(mm, ptr);
	uint32_t entry = __atomic_load_n(slot, __ATOMIC_RELAXED);

	if ((entry & MMX_E_CLS) != cls)
		__atomic_store_n(slot, (entry & ~MMX_E_CLS) | cls,
				 __ATOMIC_RELAXED);
}

/* The node at *@slot, made if missing; the handle's mutex held. */
static void *mmx_node_locked(void **slot, size_t size)
{
	void *node = *slot;

	if (node)
		return node;
	node = calloc(1, size);
	if (node)
		__atomic_store_n(slot, node, __ATOMIC_RELEASE);
	return node;
}

/* The tree's entry of page @pn, its nodes made if missing; mutex held. */
static uint32_t *mmx_tree_slot_locked(struct mmx *mx, uint64_t pn)
{
	struct mmx_leaf **mid, *leaf;

	mid = mmx_node_locked((void **)&mx->root[pn >> (2 * MMX_BITS)],
			      MMX_FANOUT * sizeof(*mid));
	if (!mid)
		return NULL;
	leaf = mmx_node_locked((void **)&mid[(pn >> MMX_BITS) & MMX_MASK],
			       sizeof(*leaf));
	return leaf ? &leaf->entry[pn & MMX_MASK] : NULL;
}

/*
 * Give every page of @map the entry of a chunk of the arena of @key, or 0
 * (@key 0); the handle's mutex held.
 */
static int mmx_set_locked(struct memmgr *mm, struct mm_map *map,
			  uint32_t key)
{
	unsigned int shift = mmx_page_shift(mm);
	uint64_t pn = (uintptr_t)map->addr >> shift;
	uint64_t end = pn + (map->size >> shift);
	uint32_t entry = key << MMX_E_KEY_SHIFT;
	/* Two chunks in a row are two: the first page says where. */
	uint32_t first = key ? MMX_E_FIRST : 0;
	uint32_t *slot;

	if (!mm->mx_table && (end - 1) >> (3 * MMX_BITS))
		return -ENOMEM;
	for (; pn < end; pn++) {
		if (mm->mx_table)
			slot = mmx_slot(mm, (void *)(uintptr_t)(pn << shift));
		else
			slot = mmx_tree_slot_locked(mm->mx, pn);
		if (!slot)
			return -ENOMEM;
		__atomic_store_n(slot, entry | first, __ATOMIC_RELAXED);
		first = 0;
	}
	return 0;
}

/**
 * mmx_enter_locked() - enter a new chunk's pages
 * @mm:		the handle, its mutex held
 * @map:	the chunk, just entered in the tables by the hook of the
 *		calling thread (mmx_entering)
 *
 * On failure, map_remove_locked() takes out what was entered.
 *
 * Return: 0 or -ENOMEM.
 */
int mmx_enter_locked(struct memmgr *mm, struct mm_map *map)
{
	map->mx_chunk = true;
	return mmx_set_locked(mm, map, mmx_entering);
}

/**
 * mmx_forget_locked() - take a chunk's pages out
 * @mm:		the handle, its mutex held
 * @map:	a chunk of the allocator (map->mx_chunk), being removed from
 *		the tables
 */
void mmx_forget_locked(struct memmgr *mm, struct mm_map *map)
{
	/* Closing: mmx_fini() freed the tree and the table already. */
	if (!mm->mx)
		return;
	/* Setting pages already set needs no node: it cannot fail. */
	mmx_set_locked(mm, map, 0);
	map->mx_chunk = false;
}

/* The extent hooks: jemalloc's side of the kernel. */

static struct mmx_arena *mmx_arena_of(extent_hooks_t *hooks)
{
	return container_of(hooks, struct mmx_arena, hooks);
}

/*
 * A chunk of @size bytes for the arena: a new execution buffer of its
 * exec id, zeroed by the kernel, entered in the tables and its pages' entries
 * in one hold of the handle's mutex.  jemalloc asks only for page-aligned
 * chunks at no particular address; anything else is declined.  When the
 * kernel declines, jemalloc asks at once again, for just the extent it
 * needs: that request does not wait (mmx_declined), so a call waits at
 * most the handle's timeout.
 */
static void *mmx_chunk_alloc(extent_hooks_t *hooks, void *new_addr,
			     size_t size, size_t alignment, bool *zero,
			     bool *commit, unsigned int arena_ind MMX_UNUSED)
{
	struct mmx_arena *a = mmx_arena_of(hooks);
	struct memmgr *mm = a->mm;
	void *addr;

	if (new_addr || a->dying ||
	    alignment > ((size_t)1 << mmx_page_shift(mm)))
		return NULL;
	mmx_entering = a->ind + 1;
	if (buffer_alloc(mm, MEMMGR_POOL_EXEC, a->exec_id, size,
			 mmx_declined ? 0 : get_timeout(mm), MM_ALLOC_MX_CHUNK,
			 &addr)) {
		mmx_declined = true;
		return NULL;
	}
	*zero = true;
	*commit = true;
	return addr;
}

/*
 * Give back a whole chunk, if jemalloc returns one; a part of a chunk it
 * keeps (true: "not deallocated").
 */
static bool mmx_chunk_dalloc(extent_hooks_t *hooks, void *addr, size_t size,
			     bool committed MMX_UNUSED,
			     unsigned int arena_ind MMX_UNUSED)
{
	struct mmx_arena *a = mmx_arena_of(hooks);
	struct memmgr *mm = a->mm;
	struct mm_map *map;
	bool kept = true;

	if (a->dying)
		return true;
	mm_lock(mm);
	map = map_find_locked(mm, addr);
	if (map && map->mx_chunk && map->size == size) {
		mmx_forget_locked(mm, map);
		kept = map_destroy_locked(mm, map) != 0;
	}
	mm_unlock(mm);
	return kept;
}

static void mmx_chunk_destroy(extent_hooks_t *hooks, void *addr,
			      size_t size, bool committed,
			      unsigned int arena_ind)
{
	mmx_chunk_dalloc(hooks, addr, size, committed, arena_ind);
}

/* Chunks are always committed: nothing to do. */
static bool mmx_chunk_commit(extent_hooks_t *hooks MMX_UNUSED,
			     void *addr MMX_UNUSED, size_t size MMX_UNUSED,
			     size_t offset MMX_UNUSED, size_t length MMX_UNUSED,
			     unsigned int arena_ind MMX_UNUSED)
{
	return false;
}

/* An extent may be split anywhere: chunks are tracked by page. */
static bool mmx_chunk_split(extent_hooks_t *hooks MMX_UNUSED,
			    void *addr MMX_UNUSED, size_t size MMX_UNUSED,
			    size_t size_a MMX_UNUSED, size_t size_b MMX_UNUSED,
			    bool committed MMX_UNUSED,
			    unsigned int arena_ind MMX_UNUSED)
{
	return false;
}

/*
 * Two extents merge only within one chunk: chunks are freed whole.  @addr_b
 * follows @addr_a: both are in one chunk unless @addr_b begins one.
 */
static bool mmx_chunk_merge(extent_hooks_t *hooks, void *addr_a,
			    size_t size_a MMX_UNUSED, void *addr_b,
			    size_t size_b MMX_UNUSED, bool committed MMX_UNUSED,
			    unsigned int arena_ind MMX_UNUSED)
{
	struct mmx_arena *a = mmx_arena_of(hooks);
	uint32_t entry_a = mmx_entry(a->mm, addr_a);
	uint32_t entry_b = mmx_entry(a->mm, addr_b);

	return !entry_a || (entry_b & MMX_E_FIRST) ||
	       entry_a >> MMX_E_KEY_SHIFT != entry_b >> MMX_E_KEY_SHIFT;
}

static const extent_hooks_t mmx_hooks = {
	.alloc = mmx_chunk_alloc,
	.dalloc = mmx_chunk_dalloc,
	.destroy = mmx_chunk_destroy,
	.commit = mmx_chunk_commit,
	.split = mmx_chunk_split,
	.merge = mmx_chunk_merge,
};

/* Arenas and tcaches, under mmx.lock. */

static struct mmx_arena *mmx_arena_find(struct mmx *mx, uint64_t exec_id)
{
	struct mm_hnode *n = htab_find(&mx->arenas, exec_id);

	return n ? container_of(n, struct mmx_arena, node) : NULL;
}

static int mmx_arena_ctl(unsigned int ind, const char *what, void *newp,
			 size_t newlen)
{
	char name[64];

	snprintf(name, sizeof(name), "arena.%u.%s", ind, what);
	return memmgr_je_mallctl(name, NULL, NULL, newp, newlen);
}

static struct mmx_arena *mmx_arena_new(struct memmgr *mm, uint64_t exec_id)
{
	struct mmx_arena_config config = { .metadata_use_hooks = false };
	size_t limit = MMX_GROW_LIMIT, len = sizeof(unsigned int);
	struct mmx_arena *a;

	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->hooks = mmx_hooks;
	a->mm = mm;
	a->exec_id = exec_id;
	config.extent_hooks = &a->hooks;
	if (memmgr_je_mallctl("experimental.arenas_create_ext", &a->ind, &len,
			      &config, sizeof(config)))
		goto err_free;
	if (a->ind + 1 >= MMX_NR_KEYS ||
	    mmx_arena_ctl(a->ind, "retain_grow_limit", &limit, sizeof(limit)))
		goto err_destroy;
	htab_add(&mm->mx->arenas, &a->node, exec_id);
	__atomic_store_n(&mm->mx->by_key[a->ind + 1], a, __ATOMIC_RELEASE);
	return a;

err_destroy:
	a->dying = true;
	mmx_arena_ctl(a->ind, "destroy", NULL, 0);
err_free:
	free(a);
	return NULL;
}

static int mmx_tcache_get(struct mmx_arena *a, const void *owner,
			  unsigned int *indp)
{
	size_t len = sizeof(*indp);
	struct mmx_tcache *tc;

	for (tc = a->tcaches; tc; tc = tc->next) {
		if (tc->owner == owner) {
			*indp = tc->ind;
			return 0;
		}
	}
	tc = malloc(sizeof(*tc));
	if (!tc)
		return -ENOMEM;
	/* Out of tcaches (jemalloc has 4096): straight to the arena. */
	if (memmgr_je_mallctl("tcache.create", &tc->ind, &len, NULL, 0)) {
		free(tc);
		*indp = MMX_NO_TCACHE;
		return 0;
	}
	tc->owner = owner;
	tc->next = a->tcaches;
	a->tcaches = tc;
	*indp = tc->ind;
	return 0;
}

/* Forget the arena: its tcaches, then the arena and all its objects. */
static void mmx_arena_destroy(struct mmx *mx, struct mmx_arena *a)
{
	struct mmx_tcache *tc;

	htab_del(&mx->arenas, &a->node);
	__atomic_store_n(&mx->by_key[a->ind + 1], NULL, __ATOMIC_RELAXED);
	a->dying = true;
	while ((tc = a->tcaches)) {
		a->tcaches = tc->next;
		memmgr_je_mallctl("tcache.destroy", NULL, NULL, &tc->ind,
				  sizeof(tc->ind));
		free(tc);
	}
	/* jemalloc keeps pointing at the hooks if it refuses. */
	if (!mmx_arena_ctl(a->ind, "destroy", NULL, 0))
		free(a);
}

/* The thread @owner no longer uses arena @a: its tcache goes. */
static void mmx_tcache_put(struct mmx_arena *a, const void *owner)
{
	struct mmx_tcache **pos, *tc;

	for (pos = &a->tcaches; (tc = *pos); pos = &tc->next) {
		if (tc->owner != owner)
			continue;
		*pos = tc->next;
		memmgr_je_mallctl("tcache.destroy", NULL, NULL, &tc->ind,
				  sizeof(tc->ind));
		free(tc);
		return;
	}
}

/* Size classes. */

static void mmx_thread_exit(void *unused MMX_UNUSED);

/* jemalloc's classes up to MMX_CACHE_MAX, as nallocx() gives them. */
static void mmx_classes_init(void)
{
	unsigned int n = 0, k;
	size_t size, class;

	for (size = 8; size <= MMX_CACHE_MAX; size += 8) {
		class = memmgr_je_nallocx(size, 0);
		if (n && class == mmx_class_size[n - 1])
			continue;
		if (n == MMX_CLS_NONE || class > MMX_CACHE_MAX)
			break;
		mmx_class_size[n] = class;
		k = MMX_CACHE_BYTES / class;
		mmx_class_objs[n++] = k < 2 ? 2 : k > MMX_CACHE_OBJS ?
				      MMX_CACHE_OBJS : k;
	}
	mmx_nr_classes = n;
	mmx_cache_max = mmx_class_size[n - 1];
	for (n = MMX_NR_SMALL, size = mmx_cache_max + 1; n < MMX_NR_CLASSES;
	     n++, size = class + 1) {
		class = memmgr_je_nallocx(size, 0);
		if (class > MMX_LARGE_MAX)
			break;
		mmx_class_size[n] = class;
		mmx_class_objs[n] = 2;
	}
	mmx_nr_large = n - MMX_NR_SMALL;
	mmx_large_max = mmx_nr_large ? mmx_class_size[n - 1] : mmx_cache_max;
	/* Class sizes are multiples of 8: (size + 7) / 8 decides. */
	for (k = 0, n = 0; k <= MMX_CACHE_MAX / 8; k++) {
		while (n < mmx_nr_classes && mmx_class_size[n] < k * 8)
			n++;
		mmx_size_class[k] = n < mmx_nr_classes ? n : MMX_CLS_NONE;
	}
	mmx_exit_key_ok = !pthread_key_create(&mmx_exit_key, mmx_thread_exit);
}

/* Thread caches. */

static inline int mmx_flags(const struct mmx_cache *c)
{
	return c->flags;
}

/* The large class of @size bytes (mmx_cache_max < @size <= mmx_large_max). */
static unsigned int mmx_large_class(size_t size)
{
	unsigned int cls = MMX_NR_SMALL;

	while (mmx_class_size[cls] < size)
		cls++;
	return cls;
}

/* The largest size below class @cls's (none of it is in the class). */
static size_t mmx_class_below(unsigned int cls)
{
	if (!cls)
		return 0;
	return cls == MMX_NR_SMALL ? mmx_cache_max : mmx_class_size[cls - 1];
}

/* Give @nr objects of class @cls, the oldest, back to jemalloc. */
static MMX_SLOW void mmx_cache_flush(struct mmx_cache *c, unsigned int cls,
				     unsigned int nr, int flags)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		memmgr_je_dallocx(c->objs[cls][i], flags);
	if (cls >= MMX_NR_SMALL)
		c->large_bytes -= nr * mmx_class_size[cls];
	c->nr[cls] -= nr;
	memmove(c->objs[cls], c->objs[cls] + nr,
		c->nr[cls] * sizeof(c->objs[cls][0]));
}

static void mmx_cache_flush_all(struct mmx_cache *c, int flags)
{
	unsigned int cls;

	for (cls = 0; cls < MMX_NR_CLASSES; cls++)
		if (c->nr[cls])
			mmx_cache_flush(c, cls, c->nr[cls], flags);
}

static void mmx_cache_clear(struct mmx_cache *c)
{
	memset(c->nr, 0, sizeof(c->nr));
	c->large_bytes = 0;
}

static struct memmgr *mmx_cache_mm(const struct mmx_cache *c)
{
	return __atomic_load_n(&c->mm, __ATOMIC_RELAXED);
}

/* Take a cache out of use: its handle's mmx.lock held. */
static void mmx_cache_unuse(struct mmx_cache *c)
{
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	__atomic_store_n(&c->mm, NULL, __ATOMIC_RELAXED);
}

/*
 * Empty a cache of the calling thread: its objects and the thread's
 * tcache go back to their arena, unless a release or a close took the
 * cache out of use (and its objects with the arena) meanwhile.  A close
 * does so under mmx_global, so the handle is open while the cache is used.
 */
static void mmx_cache_drain(struct mmx_cache *c)
{
	struct memmgr *mm;
	struct mmx *mx;

	pthread_mutex_lock(&mmx_global);
	mm = mmx_cache_mm(c);
	if (mm) {
		mx = mm->mx;
		pthread_mutex_lock(&mx->lock);
		/* In use: its arena is there (a release unuses first). */
		if (mmx_cache_mm(c)) {
			mmx_cache_flush_all(c, MALLOCX_TCACHE_NONE);
			mmx_tcache_put(mmx_arena_find(mx, c->exec_id),
				       mmx_caches);
			mmx_cache_unuse(c);
		}
		pthread_mutex_unlock(&mx->lock);
	}
	pthread_mutex_unlock(&mmx_global);
	mmx_cache_clear(c);
}

/* A cache's pages. */
static size_t mmx_cache_len(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (sizeof(struct mmx_cache) + page - 1) & ~(page - 1);
}

/*
 * A new cache, whose first page is MMX_CACHE_COLOUR pages past a multiple
 * of MMX_CACHE_COLOURS (see there), with its copies of the class tables.
 * NULL without memory.
 */
static struct mmx_cache *mmx_cache_alloc(void)
{
	struct mmx_cache *c;

	c = mmx_map_coloured(mmx_cache_len(), MMX_CACHE_COLOUR,
			     MMX_CACHE_COLOURS, 0);
	if (!c)
		return NULL;
	memcpy(c->room, mmx_class_objs, sizeof(c->room));
	memcpy(c->size_class, mmx_size_class, sizeof(c->size_class));
	return c;
}

static void mmx_cache_free(struct mmx_cache *c)
{
	munmap(c, mmx_cache_len());
}

/* A thread leaves: its cached objects go back. */
static void mmx_thread_exit(void *unused MMX_UNUSED)
{
	unsigned int i;

	for (i = 0; i < MMX_SLOTS; i++) {
		if (!mmx_caches[i])
			continue;
		mmx_cache_drain(mmx_caches[i]);
		mmx_cache_free(mmx_caches[i]);
		mmx_caches[i] = NULL;
	}
}

/*
 * A slot of the calling thread for a new exec id: an unused cache, an
 * empty slot, or the least recently used cache, emptied.
 */
static struct mmx_cache *mmx_slot_pick(void)
{
	struct mmx_cache **slot;
	unsigned int i;

	for (i = 0; i < MMX_SLOTS; i++) {
		slot = &mmx_caches[i];
		if (*slot && !mmx_cache_mm(*slot)) {
			mmx_cache_clear(*slot);
			return *slot;
		}
	}
	/* The least recently used: mmx_cache_find_slow() keeps them so. */
	for (i = 0; i < MMX_SLOTS - 1 && mmx_caches[i]; i++)
		;
	slot = &mmx_caches[i];
	if (*slot) {
		mmx_cache_drain(*slot);
		return *slot;
	}
	*slot = mmx_cache_alloc();
	/* A thread that has a cache drains it when it leaves. */
	if (*slot && mmx_exit_key_ok)
		pthread_setspecific(mmx_exit_key, mmx_caches);
	return *slot;
}

/* Put a cache to use for @exec_id, making its arena and tcache if need be. */
static struct mmx_cache *mmx_cache_fill(struct memmgr *mm, uint64_t exec_id)
{
	struct mmx_cache *c = mmx_slot_pick();
	struct mmx *mx = mm->mx;
	struct mmx_arena *a;
	unsigned int tcache;

	if (!c)
		return NULL;
	pthread_mutex_lock(&mx->lock);
	a = mmx_arena_find(mx, exec_id);
	if (!a)
		a = mmx_arena_new(mm, exec_id);
	if (!a || mmx_tcache_get(a, mmx_caches, &tcache)) {
		pthread_mutex_unlock(&mx->lock);
		return NULL;
	}
	c->exec_id = exec_id;
	c->key = a->ind + 1;
	c->tcache_flags = tcache == MMX_NO_TCACHE ? MALLOCX_TCACHE_NONE :
			  MALLOCX_TCACHE(tcache);
	c->flags = MALLOCX_ARENA(a->ind) | c->tcache_flags;
	c->next = mx->caches;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = &mx->caches;
	mx->caches = c;
	__atomic_store_n(&c->mm, mm, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&mx->lock);
	return c;
}

static inline bool mmx_cache_is(const struct mmx_cache *c,
				const struct memmgr *mm, uint64_t exec_id)
{
	return c && mmx_cache_mm(c) == mm && c->exec_id == exec_id;
}

/* The calling thread's cache for @exec_id of @mm, or NULL (no memory). */
static MMX_SLOW struct mmx_cache *mmx_cache_find_slow(struct memmgr *mm,
						      uint64_t exec_id)
{
	struct mmx_cache *c = NULL;
	unsigned int i;

	for (i = 1; i < MMX_SLOTS; i++) {
		c = mmx_caches[i];
		if (mmx_cache_is(c, mm, exec_id))
			break;
	}
	if (i == MMX_SLOTS)
		c = mmx_cache_fill(mm, exec_id);
	if (!c)
		return NULL;
	/* The slots in the order of their last use, the last first. */
	for (i = 0; mmx_caches[i] != c; i++)
		;
	memmove(&mmx_caches[1], &mmx_caches[0], i * sizeof(mmx_caches[0]));
	mmx_caches[0] = c;
	return c;
}

static inline struct mmx_cache *mmx_cache_find(struct memmgr *mm,
					       uint64_t exec_id)
{
	struct mmx_cache *c = mmx_caches[0];

	/* Most threads use one exec id at a time: its slot is the first. */
	if (mmx_cache_is(c, mm, exec_id))
		return c;
	return mmx_cache_find_slow(mm, exec_id);
}

/*
 * Give the large objects cached back to jemalloc: before anything is taken
 * from it, which may need their space (kept, they took a chunk more at
 * the peak of SQLite's trace).
 */
static void mmx_cache_flush_large(struct mmx_cache *c)
{
	unsigned int cls;

	for (cls = MMX_NR_SMALL; cls < MMX_NR_CLASSES && c->large_bytes; cls++)
		if (c->nr[cls])
			mmx_cache_flush(c, cls, c->nr[cls], mmx_flags(c));
}

/* The cache of class @cls is empty: take half its room from jemalloc. */
static void *mmx_refill(struct memmgr *mm, struct mmx_cache *c,
			unsigned int cls)
{
	unsigned int i, nr = mmx_class_objs[cls] / 2;
	void *ptr;

	mmx_cache_flush_large(c);
	mmx_declined = false;
	for (i = 0; i < nr; i++) {
		ptr = memmgr_je_mallocx(mmx_class_size[cls], mmx_flags(c));
		if (!ptr)
			break;
		mmx_note(mm, ptr, cls + 1);
		c->objs[cls][c->nr[cls]++] = ptr;
	}
	if (!c->nr[cls]) {
		errno = ENOMEM;
		return NULL;
	}
	return c->objs[cls][--c->nr[cls]];
}

/*
 * An object from jemalloc larger than mmx_cache_max: of a large class
 * (noted so: its free caches it), or larger.
 */
static void *mmx_alloc_big(struct memmgr *mm, struct mmx_cache *c,
			   size_t size, int flags)
{
	void *ptr;

	mmx_cache_flush_large(c);
	mmx_declined = false;
	ptr = memmgr_je_mallocx(size, mmx_flags(c) | flags);
	if (!ptr) {
		errno = ENOMEM;
		return NULL;
	}
	mmx_note(mm, ptr, size <= mmx_large_max ? mmx_large_class(size) + 1 :
			  0);
	return ptr;
}

/* An object above mmx_cache_max: from the cache if it has one. */
static void *mmx_alloc_large(struct memmgr *mm, struct mmx_cache *c,
			     size_t size)
{
	unsigned int cls;

	if (size > mmx_large_max)
		return mmx_alloc_big(mm, c, size, 0);
	cls = mmx_large_class(size);
	if (!c->nr[cls])
		return mmx_alloc_big(mm, c, mmx_class_size[cls], 0);
	c->large_bytes -= mmx_class_size[cls];
	return c->objs[cls][--c->nr[cls]];
}

/* memmgr_malloc() when its first slot's cache has nothing at hand. */
static MMX_SLOW void *mmx_malloc_slow(struct memmgr *mm, uint64_t exec_id,
				      size_t size)
{
	struct mmx_cache *c = mmx_cache_find(mm, exec_id);
	unsigned int cls;

	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	if (size > mmx_cache_max)
		return mmx_alloc_large(mm, c, size);
	cls = mmx_size_class[(size + 7) >> 3];
	if (c->nr[cls])
		return c->objs[cls][--c->nr[cls]];
	return mmx_refill(mm, c, cls);
}

/*
 * The fast path: the thread's last used cache, a class from the table, a
 * pop; no call, no lock.  Sizes above mmx_cache_max (up to MMX_CACHE_MAX)
 * have class MMX_CLS_NONE, which never holds an object.
 */
void *memmgr_malloc(struct memmgr *mm, uint64_t exec_id, size_t size)
{
	struct mmx_cache *c = mmx_caches[0];
	unsigned int cls, nr;

	if (likely(size <= MMX_CACHE_MAX && mmx_cache_is(c, mm, exec_id))) {
		cls = c->size_class[(size + 7) >> 3];
		nr = c->nr[cls];
		if (likely(nr)) {
			c->nr[cls] = nr - 1;
			return c->objs[cls][nr - 1];
		}
	}
	return mmx_malloc_slow(mm, exec_id, size);
}

void *memmgr_calloc(struct memmgr *mm, uint64_t exec_id, size_t n,
		    size_t size)
{
	struct mmx_cache *c;
	size_t bytes;
	void *ptr;

	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	/* Cached objects are reused as they are: all of them zeroed. */
	if (bytes <= mmx_cache_max) {
		ptr = memmgr_malloc(mm, exec_id, bytes);
		if (ptr)
			memset(ptr, 0,
			       mmx_class_size[mmx_size_class[(bytes + 7) >> 3]]);
		return ptr;
	}
	c = mmx_cache_find(mm, exec_id);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	return mmx_alloc_big(mm, c, bytes, MALLOCX_ZERO);
}

/* The arena of a page entry's key: the object's, while it lives. */
static struct mmx_arena *mmx_arena_of_entry(const struct memmgr *mm,
					    uint32_t entry)
{
	return __atomic_load_n(&mm->mx->by_key[entry >> MMX_E_KEY_SHIFT],
			       __ATOMIC_ACQUIRE);
}

/* Into the cache @c, class @cls; the oldest half to jemalloc if full. */
static void mmx_cache_put(struct mmx_cache *c, unsigned int cls, void *ptr)
{
	if (c->nr[cls] == c->room[cls])
		mmx_cache_flush(c, cls, c->nr[cls] / 2, mmx_flags(c));
	if (cls >= MMX_NR_SMALL) {
		/* Beyond the cache's bytes for large objects: to jemalloc. */
		if (c->large_bytes + mmx_class_size[cls] > MMX_LARGE_BYTES) {
			memmgr_je_dallocx(ptr, c->tcache_flags);
			return;
		}
		c->large_bytes += mmx_class_size[cls];
	}
	c->objs[cls][c->nr[cls]++] = ptr;
}

/**
 * mmx_free() - free an object of the allocator
 * @mm:		the handle
 * @entry:	its page's entry, from mmx_owns()
 * @ptr:	the object
 *
 * Into the calling thread's cache of the object's exec id, or to jemalloc
 * (an object not cached, or when that cache cannot be had).
 *
 * Return: 0, or -EINVAL when its exec id was released.
 */
int mmx_free(struct memmgr *mm, uint32_t entry, void *ptr)
{
	unsigned int cls = entry & MMX_E_CLS;
	struct mmx_arena *a = mmx_arena_of_entry(mm, entry);
	struct mmx_cache *c;

	if (!a)
		return -EINVAL;
	c = mmx_cache_find(mm, a->exec_id);
	if (c && cls)
		mmx_cache_put(c, cls - 1, ptr);
	else
		memmgr_je_dallocx(ptr, c ? c->tcache_flags :
				  MALLOCX_TCACHE_NONE);
	return 0;
}

/* memmgr_free() of anything its fast path does not take. */
static MMX_SLOW int mmx_free_slow(struct memmgr *mm, void *ptr)
{
	uint32_t entry;

	if (!ptr)
		return 0;
	entry = mmx_entry(mm, ptr);
	if (!entry)
		return buffer_free(mm, ptr);
	return mmx_free(mm, entry, ptr);
}

/*
 * The fast path: the page's entry from the table over the window (one
 * load), a cached class whose arena is that of the thread's last used
 * cache, and room there: a push.  No call, no lock.
 */
int memmgr_free(struct memmgr *mm, void *ptr)
{
	uintptr_t off = (uintptr_t)ptr - mm->mx_base;
	struct mmx_cache *c;
	unsigned int cls, nr;
	uint32_t entry;

	if (likely(off < mm->mx_span)) {
		entry = __atomic_load_n(&mm->mx_table[off >> mm->page_shift],
					__ATOMIC_RELAXED);
		cls = entry & MMX_E_CLS;
		c = mmx_caches[0];
		if (likely(cls && cls <= MMX_NR_SMALL && c &&
			   c->key == entry >> MMX_E_KEY_SHIFT &&
			   mmx_cache_mm(c) == mm)) {
			nr = c->nr[--cls];
			if (likely(nr < c->room[cls])) {
				c->objs[cls][nr] = ptr;
				c->nr[cls] = nr + 1;
				return 0;
			}
		}
	}
	return mmx_free_slow(mm, ptr);
}

/**
 * mmx_owns() - whether a pointer is in a chunk of the allocator
 * @mm:		the handle
 * @ptr:	any pointer
 *
 * Return: its page's entry, for mmx_free(), or 0 when it is in no chunk.
 */
uint32_t mmx_owns(struct memmgr *mm, const void *ptr)
{
	return mmx_entry(mm, ptr);
}

/* The cached class + 1 of an object of @usable bytes, or 0. */
static unsigned int mmx_class_of(size_t usable)
{
	unsigned int cls;

	if (usable > mmx_large_max)
		return 0;
	if (usable > mmx_cache_max)
		cls = mmx_large_class(usable);
	else
		cls = mmx_size_class[(usable + 7) >> 3];
	return mmx_class_size[cls] == usable ? cls + 1 : 0;
}

void *memmgr_realloc(struct memmgr *mm, uint64_t exec_id, void *ptr,
		     size_t size)
{
	struct mmx_arena *a;
	struct mmx_cache *c;
	unsigned int cls;
	uint32_t entry;
	void *moved;

	if (!ptr)
		return memmgr_malloc(mm, exec_id, size);
	entry = mmx_entry(mm, ptr);
	a = entry ? mmx_arena_of_entry(mm, entry) : NULL;
	if (!a) {
		errno = EINVAL;
		return NULL;
	}
	if (!size) {
		mmx_free(mm, entry, ptr);
		return NULL;
	}
	/* Within its class: in place. */
	cls = entry & MMX_E_CLS;
	if (cls && size <= mmx_class_size[cls - 1] &&
	    size > mmx_class_below(cls - 1))
		return ptr;
	c = mmx_cache_find(mm, a->exec_id);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	mmx_declined = false;
	moved = memmgr_je_rallocx(ptr, size, mmx_flags(c));
	if (!moved) {
		errno = ENOMEM;
		return NULL;
	}
	mmx_note(mm, moved, mmx_class_of(memmgr_je_sallocx(moved, 0)));
	return moved;
}

size_t memmgr_usable_size(struct memmgr *mm, const void *ptr)
{
	unsigned int cls;
	uint32_t entry;

	if (!ptr)
		return 0;
	entry = mmx_entry(mm, ptr);
	if (!entry)
		return 0;
	cls = entry & MMX_E_CLS;
	return cls ? mmx_class_size[cls - 1] : memmgr_je_sallocx(ptr, 0);
}

/* Take the caches of @exec_id (or all) out of use: mmx.lock held. */
static void mmx_caches_unuse(struct mmx *mx, uint64_t exec_id, bool all)
{
	struct mmx_cache *c = mx->caches, *next;

	for (; c; c = next) {
		next = c->next;
		if (all || c->exec_id == exec_id)
			mmx_cache_unuse(c);
	}
}

/**
 * mmx_release() - forget every object of an exec id
 * @mm:		the handle, its mutex not held
 * @exec_id:	the exec id
 *
 * Destroys the exec id's arena and tcaches; its chunks stay in the
 * handle's tables, for the caller's MEMMGR_IOC_RELEASE, which frees them,
 * or for mmx_forget_locked() if that fails.  Every thread's cache of the
 * exec id is out of use from now on: its thread finds it so.
 */
void mmx_release(struct memmgr *mm, uint64_t exec_id)
{
	struct mmx *mx = mm->mx;
	struct mmx_arena *a;

	if (!mx)
		return;
	pthread_mutex_lock(&mx->lock);
	a = mmx_arena_find(mx, exec_id);
	if (a) {
		mmx_caches_unuse(mx, exec_id, false);
		mmx_arena_destroy(mx, a);
	}
	pthread_mutex_unlock(&mx->lock);
}

/**
 * mmx_init() - the allocator of a new handle
 * @mm:		the handle
 *
 * Return: 0 or -ENOMEM.
 */
int mmx_init(struct memmgr *mm)
{
	struct mmx *mx;

	pthread_once(&mmx_once, mmx_classes_init);
	mx = calloc(1, sizeof(*mx));
	if (!mx)
		return -ENOMEM;
	if (htab_init(&mx->arenas)) {
		free(mx);
		return -ENOMEM;
	}
	pthread_mutex_init(&mx->lock, NULL);
	mm->mx = mx;
	return 0;
}

/* The bytes of the table over a window: an entry per page. */
static size_t mmx_table_len(const struct memmgr *mm)
{
	return (MEMMGR_OFFSET_LIMIT >> mmx_page_shift(mm)) * sizeof(uint32_t);
}

/**
 * mmx_table_init() - the page table of a handle with a window
 * @mm:		the handle, its allocator and window (if any) set up
 *
 * An entry per page of the window, in address space reserved without
 * being committed (4 GiB with 4 KiB pages: a page of entries is touched
 * per 4 MiB of chunks).  Without a window, or when the reservation fails,
 * the radix tree serves instead.
 */
void mmx_table_init(struct memmgr *mm)
{
#if UINTPTR_MAX > 0xffffffffU
	if (!mm->mx || !mm->window)
		return;
	/* Its first page MMX_TABLE_COLOUR pages after the window's. */
	mm->mx_table = mmx_map_coloured(mmx_table_len(mm),
					((uintptr_t)mm->window >>
					 mmx_page_shift(mm)) + MMX_TABLE_COLOUR,
					MMX_TABLE_COLOURS, MAP_NORESERVE);
	if (!mm->mx_table)
		return;
	mm->mx_base = (uintptr_t)mm->window;
	mm->mx_span = MEMMGR_OFFSET_LIMIT;
#endif
}

static void mmx_free_tree(struct mmx *mx)
{
	unsigned int i, j;

	for (i = 0; i < MMX_FANOUT; i++) {
		struct mmx_leaf **mid = mx->root[i];

		if (!mid)
			continue;
		for (j = 0; j < MMX_FANOUT; j++)
			free(mid[j]);
		free(mid);
	}
}

/**
 * mmx_fini() - destroy every arena of a handle being closed
 * @mm:		the handle, its mutex not held; its chunks are still mapped
 *
 * The chunks stay in the handle's tables, for memmgr_close() to drop.
 * Caches of the handle in other threads are out of use: their threads
 * find them so.
 */
void mmx_fini(struct memmgr *mm)
{
	struct mmx *mx = mm->mx;
	struct mm_hnode *n;
	size_t i;

	if (!mx)
		return;
	/* Under mmx_global: see mmx_cache_drain(). */
	pthread_mutex_lock(&mmx_global);
	pthread_mutex_lock(&mx->lock);
	mmx_caches_unuse(mx, 0, true);
	pthread_mutex_unlock(&mx->lock);
	pthread_mutex_unlock(&mmx_global);
	for (i = 0; i < mx->arenas.nr_slots; i++)
		while ((n = mx->arenas.slots[i]))
			mmx_arena_destroy(mx, container_of(n, struct mmx_arena,
							   node));
	mmx_free_tree(mx);
	if (mm->mx_table) {
		mm->mx_span = 0;
		munmap(mm->mx_table, mmx_table_len(mm));
		mm->mx_table = NULL;
	}
	htab_fini(&mx->arenas);
	pthread_mutex_destroy(&mx->lock);
	free(mx);
	mm->mx = NULL;
}
