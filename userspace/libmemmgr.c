// SPDX-License-Identifier: GPL-2.0
/*
 * libmemmgr: memory from memmgr's pools through ioctl() and mmap() on
 * /dev/memmgr, with small execution objects carved from chunks.
 * libmemmgr.h documents the interface.
 *
 * A handle keeps four hash tables, all under its mutex:
 *  - by_addr: every buffer (struct mm_map) by its address, for free;
 *  - by_page: storage buffers by page id, for lookup, pin and release;
 *  - by_exec: one struct mm_exec per exec id that has memory, listing its
 *    mappings (for release) and, per size class, its chunks with a free
 *    slot and its retained (empty) chunks (struct mm_chunk);
 *  - by_chunk: every page of every chunk by page number, so that freeing
 *    a small object finds its chunk in one look-up (after a check of the
 *    chunk the last free went to: frees come in runs).
 * The handle also lists its retained chunks, oldest first, for trimming.
 *
 * Small objects, the hot path: a slot is taken from the top of its chunk's
 * stack of free slots and pushed back on free, zeroed; the exec id is
 * found through the last one used; each costs two turns of an inline
 * futex mutex and a few counters.  A chunk whose last object is freed is
 * retained up to the handle's cap, so a batch that is freed and allocated
 * again asks the kernel nothing.
 *
 * Buffers are where the kernel put them in the handle's window (window +
 * offset), or, without a window, each in a mapping of its own.  Pins are
 * the kernel's state words (libmemmgr.h has the inline half), or ioctls
 * without a state area.
 *
 * A request to the kernel that may wait (MEMMGR_IOC_ALLOC) runs without
 * the mutex.  The tables (and mmap(), without a window) are then done
 * under it, so a release of the same id either finds the new buffer in
 * the tables or has freed it first, and the allocation says -ECANCELED.
 * In that case the buffer's offset may already belong to a buffer
 * allocated since (the kernel reuses a freed buffer's range): its address
 * in the window is then the other buffer's, and without a window mmap()
 * of its offset would succeed on the other buffer.  So when a release ran
 * since the request began (the handle counts them), the allocation asks
 * the kernel whether its handle is still there (LOOKUP by handle): a
 * buffer keeps its range as long as its handle exists.  Every call that
 * frees buffers (FREE, FREE_MANY, RELEASE) is made under the mutex and
 * takes them out of the tables in the same hold, so the tables never hold
 * a buffer the kernel freed when another is entered at its address.
 * Without a window, storage buffers are allocated pinned and unpinned once
 * mapped, so an eviction cannot come between the kernel's grant and
 * mmap(); in the window an evicted buffer's address gets SIGBUS, as its
 * pointer would later, so they are allocated as asked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "libmemmgr.h"

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* Size classes: MEMMGR_SMALL_MIN << 0 up to MEMMGR_SMALL_MIN << 8. */
#define MIN_SHIFT	4
#define NR_CLASSES	9
_Static_assert(1 << MIN_SHIFT == MEMMGR_SMALL_MIN,
	       "MIN_SHIFT must be log2(MEMMGR_SMALL_MIN)");
_Static_assert(MEMMGR_SMALL_MIN << (NR_CLASSES - 1) == MEMMGR_SMALL_MAX,
	       "size classes must end at MEMMGR_SMALL_MAX");
/* A chunk holds at least this many objects (and is at least a page). */
#define CHUNK_MIN_OBJS	16

#define HTAB_MIN_SLOTS	64

/* The figures page: one page of 4 KiB whatever the page size. */
#define FIGURES_LEN	4096
_Static_assert(sizeof(struct memmgr_figures) <= FIGURES_LEN,
	       "struct memmgr_figures must fit its page");

/* A circular doubly linked list, as the kernel's list_head. */
struct mm_list {
	struct mm_list *next, *prev;
};

static void list_init(struct mm_list *head)
{
	head->next = head;
	head->prev = head;
}

static bool list_empty(const struct mm_list *head)
{
	return head->next == head;
}

static void list_add(struct mm_list *node, struct mm_list *head)
{
	node->next = head->next;
	node->prev = head;
	head->next->prev = node;
	head->next = node;
}

static void list_add_tail(struct mm_list *node, struct mm_list *head)
{
	list_add(node, head->prev);
}

/* Unlink @node; a node on no list (linked to itself) stays as it is. */
static void list_del(struct mm_list *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->next = node;
	node->prev = node;
}

/*
 * A hash table of intrusive nodes with 64-bit keys, chained.  It doubles
 * when it holds as many nodes as slots; when memory for that is short,
 * the chains grow longer instead, so adding never fails.
 */
struct mm_hnode {
	struct mm_hnode *next;
	uint64_t key;
};

struct mm_htab {
	struct mm_hnode **slots;
	size_t nr_slots;	/* a power of two */
	size_t count;
};

static size_t htab_slot(size_t nr_slots, uint64_t key)
{
	/* The finalizer of MurmurHash3: addresses and ids spread well. */
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	key *= 0xc4ceb9fe1a85ec53ULL;
	key ^= key >> 33;
	return key & (nr_slots - 1);
}

static int htab_init(struct mm_htab *t)
{
	t->slots = calloc(HTAB_MIN_SLOTS, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	t->nr_slots = HTAB_MIN_SLOTS;
	t->count = 0;
	return 0;
}

static void htab_fini(struct mm_htab *t)
{
	free(t->slots);
	t->slots = NULL;
}

static struct mm_hnode *htab_find(const struct mm_htab *t, uint64_t key)
{
	struct mm_hnode *n;

	for (n = t->slots[htab_slot(t->nr_slots, key)]; n; n = n->next)
		if (n->key == key)
			return n;
	return NULL;
}

static void htab_grow(struct mm_htab *t)
{
	size_t nr = t->nr_slots * 2, i;
	struct mm_hnode **slots, *n, *next;

	slots = calloc(nr, sizeof(*slots));
	if (!slots)
		return;
	for (i = 0; i < t->nr_slots; i++) {
		for (n = t->slots[i]; n; n = next) {
			size_t s = htab_slot(nr, n->key);

			next = n->next;
			n->next = slots[s];
			slots[s] = n;
		}
	}
	free(t->slots);
	t->slots = slots;
	t->nr_slots = nr;
}

/* @key must not be in @t already. */
static void htab_add(struct mm_htab *t, struct mm_hnode *n, uint64_t key)
{
	size_t s;

	if (t->count >= t->nr_slots)
		htab_grow(t);
	s = htab_slot(t->nr_slots, key);
	n->key = key;
	n->next = t->slots[s];
	t->slots[s] = n;
	t->count++;
}

static void htab_del(struct mm_htab *t, struct mm_hnode *n)
{
	struct mm_hnode **link = &t->slots[htab_slot(t->nr_slots, n->key)];

	while (*link != n)
		link = &(*link)->next;
	*link = n->next;
	t->count--;
}

/* The chunks of one exec id and size class. */
struct mm_class {
	struct mm_list partial;		/* chunks with a free slot and a
					 * live object, or just taken
					 */
	struct mm_list empty;		/* retained chunks, newest first */
};

/* The memory of one exec id. */
struct mm_exec {
	struct mm_hnode node;			/* in by_exec; key: exec id */
	struct mm_list maps;			/* its mm_maps, chunks too */
	struct mm_class cls[NR_CLASSES];
};

/* One kernel buffer, mapped whole. */
struct mm_map {
	struct mm_hnode addr_node;	/* in by_addr; key: @addr */
	struct mm_hnode page_node;	/* storage: in by_page; key: page id */
	struct mm_list exec_link;	/* exec: in @exec->maps */
	struct mm_exec *exec;		/* exec: its exec id */
	void *addr;
	uint64_t handle;
	uint64_t size;			/* bytes granted and mapped */
	uint64_t requested;		/* bytes asked for (0 for a chunk) */
	uint32_t pool;
	bool chunk;			/* the map of a struct mm_chunk */
	bool freeing;			/* in a memmgr_free_many() batch */
};

/* One page of a chunk in by_chunk, so that free finds it from a pointer. */
struct mm_chunk_page {
	struct mm_hnode node;		/* key: address >> page shift */
	struct mm_chunk *chunk;
};

/*
 * A buffer of small objects of one size class and exec id, of
 * chunk_size(cls) bytes.  Its free slots are a stack of indices; a slot's
 * size is 0 while it is free.  Freed slots are zeroed at once, so every
 * free slot reads as zeros.
 */
struct mm_chunk {
	struct mm_map map;
	struct mm_list link;		/* in its mm_class: partial while it
					 * has a free slot and a live object,
					 * empty while retained
					 */
	struct mm_list lru;		/* in memmgr.retained while retained */
	unsigned int cls;
	unsigned int shift;		/* log2 of the class size */
	unsigned int nr_objs;
	unsigned int nr_free;		/* entries in @free_slots */
	bool retained;
	uint16_t *sizes;		/* per slot: bytes asked for, or 0 */
	uint16_t *free_slots;		/* stack of free slots, top last */
	struct mm_chunk_page pages[];	/* one per page */
};

struct memmgr {
	struct memmgr_fast fast;	/* first: libmemmgr.h's inlines */
	int fd;
	unsigned int page_shift;
	unsigned char *window;		/* MEMMGR_OFFSET_LIMIT bytes, or NULL */
	size_t state_len;		/* bytes mapped at fast.state */
	const struct memmgr_figures *figures;	/* a page, or NULL */
	bool batch;			/* the kernel has ALLOC_MANY */
	unsigned int chunk_shift[NR_CLASSES];	/* log2 of chunk sizes */
	int lock;			/* everything below: mm_lock() */
	uint64_t releases;		/* written under the lock, read atomically */
	int64_t timeout_ms;		/* of memmgr_acquire_*() */
	struct mm_htab by_addr;
	struct mm_htab by_page;
	struct mm_htab by_exec;
	struct mm_htab by_chunk;	/* chunk pages by page number */
	struct mm_exec *exec_hint;	/* the exec id last allocated from */
	struct mm_chunk *free_hint;	/* the chunk last freed to */
	struct mm_list retained;	/* empty chunks kept, oldest first */
	uint64_t retain_cap;
	uint64_t retained_bytes;
	uint64_t requested[MEMMGR_NR_POOLS];	/* whole buffers only */
	uint64_t charged[MEMMGR_NR_POOLS];
	uint64_t buffers[MEMMGR_NR_POOLS];
	/*
	 * Apart: GCC would update two neighbours with SSE shuffles, which
	 * emulators run slowly.
	 */
	uint64_t small_objects;
	uint64_t small_chunks;
	uint64_t small_requested;
	uint64_t small_charged;
};

/*
 * The handle's mutex: a futex word, 0 unlocked, 1 locked, 2 locked with
 * waiters (the algorithm of glibc's lll_lock, "mutex3" in Drepper's
 * "Futexes Are Tricky").  Inline: it is taken twice per small object,
 * and a pthread_mutex_lock() and _unlock() pair costs three times as much
 * (45 ns against 16 under QEMU's TCG).  Never held while a request waits.
 */
static void futex(int *word, int op, int val)
{
	syscall(SYS_futex, word, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

static void mm_lock_wait(struct memmgr *mm)
{
	while (__atomic_exchange_n(&mm->lock, 2, __ATOMIC_ACQUIRE))
		futex(&mm->lock, FUTEX_WAIT, 2);
}

static void mm_lock(struct memmgr *mm)
{
	int unlocked = 0;

	if (!__atomic_compare_exchange_n(&mm->lock, &unlocked, 1, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		mm_lock_wait(mm);
}

static void mm_unlock(struct memmgr *mm)
{
	if (__atomic_exchange_n(&mm->lock, 0, __ATOMIC_RELEASE) == 2)
		futex(&mm->lock, FUTEX_WAKE, 1);
}

/* The smallest class that holds @size bytes, 1 <= @size <= SMALL_MAX. */
static unsigned int size_class(size_t size)
{
	if (size <= MEMMGR_SMALL_MIN)
		return 0;
	return 64 - __builtin_clzll(size - 1) - MIN_SHIFT;
}

static size_t chunk_size(const struct memmgr *mm, unsigned int cls)
{
	return (size_t)1 << mm->chunk_shift[cls];
}

static struct mm_chunk *to_chunk(struct mm_map *map)
{
	return container_of(map, struct mm_chunk, map);
}

/*
 * Zero a small object: @size is a power of two, at least 16, and @p is
 * aligned to it.  Inline 16-byte stores: glibc's memset() is an indirect
 * call, and from 2 KiB a `rep stosb`, which QEMU's TCG runs a byte at a
 * time (7 us for 4 KiB, against 0.5 us for this loop).
 */
static void zero_object(void *p, size_t size)
{
#ifdef __SSE2__
	const __m128i zero = _mm_setzero_si128();
	__m128i *v = p, *end = (__m128i *)((char *)p + size);

	if (size < 64) {
		_mm_store_si128(v, zero);
		if (size == 32)
			_mm_store_si128(v + 1, zero);
		return;
	}
	for (; v < end; v += 4) {
		/* Hide the loop from GCC, which would make it a memset(). */
		__asm__("" : "+r" (v));
		_mm_store_si128(v, zero);
		_mm_store_si128(v + 1, zero);
		_mm_store_si128(v + 2, zero);
		_mm_store_si128(v + 3, zero);
	}
#else
	memset(p, 0, size);
#endif
}

/* The kernel's side: each returns 0 or a negative errno. */

static int kernel_alloc(struct memmgr *mm, uint32_t pool, uint64_t tag,
			size_t size, int64_t timeout_ms, unsigned int flags,
			struct memmgr_alloc *a)
{
	*a = (struct memmgr_alloc){
		.pool = pool, .flags = flags, .size = size, .tag = tag,
		.timeout_ms = timeout_ms,
	};
	return ioctl(mm->fd, MEMMGR_IOC_ALLOC, a) ? -errno : 0;
}

/*
 * MEMMGR_IOC_ALLOC_MANY of @count entries (single ALLOCs without it):
 * *@done set to the entries granted, the first ones; the error of the next.
 */
static int kernel_alloc_many(struct memmgr *mm, struct memmgr_alloc *ents,
			     size_t count, size_t *done)
{
	struct memmgr_batch b = {
		.entries = (uintptr_t)ents, .count = count,
	};
	int ret;

	if (!mm->batch) {
		for (*done = 0; *done < count; (*done)++)
			if (ioctl(mm->fd, MEMMGR_IOC_ALLOC, &ents[*done]))
				return -errno;
		return 0;
	}
	ret = ioctl(mm->fd, MEMMGR_IOC_ALLOC_MANY, &b) ? -errno : 0;
	*done = b.done < count ? b.done : count;
	return ret;
}

/* MEMMGR_IOC_FREE_MANY of @count handles, as kernel_alloc_many(). */
static int kernel_free_many(struct memmgr *mm, uint64_t *handles,
			    size_t count, size_t *done)
{
	struct memmgr_batch b = {
		.entries = (uintptr_t)handles, .count = count,
	};
	int ret;

	if (!mm->batch) {
		for (*done = 0; *done < count; (*done)++) {
			struct memmgr_buf buf = { .handle = handles[*done] };

			if (ioctl(mm->fd, MEMMGR_IOC_FREE, &buf))
				return -errno;
		}
		return 0;
	}
	ret = ioctl(mm->fd, MEMMGR_IOC_FREE_MANY, &b) ? -errno : 0;
	*done = b.done < count ? b.done : count;
	return ret;
}

static int kernel_buf(struct memmgr *mm, unsigned long cmd, uint64_t handle)
{
	struct memmgr_buf b = { .handle = handle };

	return ioctl(mm->fd, cmd, &b) ? -errno : 0;
}

static int kernel_release(struct memmgr *mm, uint32_t pool, uint64_t tag,
			  uint64_t *freedp)
{
	struct memmgr_release r = { .pool = pool, .tag = tag };

	if (ioctl(mm->fd, MEMMGR_IOC_RELEASE, &r))
		return -errno;
	/* Under the mutex: see map_insert_locked(). */
	__atomic_store_n(&mm->releases, mm->releases + 1, __ATOMIC_RELEASE);
	if (freedp)
		*freedp = r.freed;
	return 0;
}

/*
 * Give back a buffer that could not be entered in the tables, and say why:
 * EINVAL when the buffer is gone, released by its id meanwhile (see
 * map_insert_locked()).
 */
static int kernel_undo(struct memmgr *mm, uint64_t handle, int err)
{
	if (kernel_buf(mm, MEMMGR_IOC_FREE, handle) == -ENOENT &&
	    err == -EINVAL)
		return -ECANCELED;
	return err;
}

/* The tables. */

static struct mm_exec *exec_find_locked(struct memmgr *mm, uint64_t exec_id)
{
	struct mm_hnode *n = htab_find(&mm->by_exec, exec_id);

	return n ? container_of(n, struct mm_exec, node) : NULL;
}

static struct mm_exec *exec_get_locked(struct memmgr *mm, uint64_t exec_id)
{
	struct mm_exec *ex = exec_find_locked(mm, exec_id);
	unsigned int cls;

	if (ex)
		return ex;
	ex = malloc(sizeof(*ex));
	if (!ex)
		return NULL;
	list_init(&ex->maps);
	for (cls = 0; cls < NR_CLASSES; cls++) {
		list_init(&ex->cls[cls].partial);
		list_init(&ex->cls[cls].empty);
	}
	htab_add(&mm->by_exec, &ex->node, exec_id);
	return ex;
}

/* Forget an exec id that has no memory left. */
static void exec_put_locked(struct memmgr *mm, struct mm_exec *ex)
{
	if (!list_empty(&ex->maps))
		return;
	if (mm->exec_hint == ex)
		mm->exec_hint = NULL;
	htab_del(&mm->by_exec, &ex->node);
	free(ex);
}

static struct mm_map *map_find_locked(struct memmgr *mm, const void *addr)
{
	struct mm_hnode *n = htab_find(&mm->by_addr, (uintptr_t)addr);

	return n ? container_of(n, struct mm_map, addr_node) : NULL;
}

static struct mm_map *page_find_locked(struct memmgr *mm, uint64_t page_id)
{
	struct mm_hnode *n = htab_find(&mm->by_page, page_id);

	return n ? container_of(n, struct mm_map, page_node) : NULL;
}

/* The chunk @ptr lies in, or NULL. */
static struct mm_chunk *chunk_find_locked(struct memmgr *mm, const void *ptr)
{
	struct mm_chunk *chunk = mm->free_hint;
	struct mm_hnode *n;

	if (chunk && (uintptr_t)ptr - (uintptr_t)chunk->map.addr <
		     chunk->map.size)
		return chunk;
	n = htab_find(&mm->by_chunk, (uintptr_t)ptr >> mm->page_shift);
	if (!n)
		return NULL;
	chunk = container_of(n, struct mm_chunk_page, node)->chunk;
	mm->free_hint = chunk;
	return chunk;
}

/* Releases so far, read before a request: see map_insert_locked(). */
static uint64_t releases_now(struct memmgr *mm)
{
	return __atomic_load_n(&mm->releases, __ATOMIC_ACQUIRE);
}

/*
 * Is the buffer of @handle still this file's (live or evicted)?  If so, its
 * range of offsets is its own, so are its address in the window and a
 * mapping of its offset made since it was granted: a buffer keeps its
 * range while it is in the kernel's tables.
 */
static bool kernel_has(struct memmgr *mm, uint64_t handle)
{
	struct memmgr_lookup l = {
		.flags = MEMMGR_LOOKUP_HANDLE, .handle = handle,
	};

	return !ioctl(mm->fd, MEMMGR_IOC_LOOKUP, &l) || errno != ENOENT;
}

static void map_drop_locked(struct memmgr *mm, struct mm_map *map);

/*
 * *@addrp: the address of a buffer the kernel granted, in the window or
 * mapped on its own.
 */
static int map_addr_locked(struct memmgr *mm, const struct memmgr_alloc *a,
			   void **addrp)
{
	struct mm_map *stale;

	/* As below: a buffer freed behind the library's back had the tag. */
	if (a->pool == MEMMGR_POOL_STORAGE) {
		stale = page_find_locked(mm, a->tag);
		if (stale)
			map_drop_locked(mm, stale);
	}
	if (!mm->window) {
		*addrp = mmap(NULL, a->granted, PROT_READ | PROT_WRITE,
			      MAP_SHARED, mm->fd, a->offset);
		return *addrp == MAP_FAILED ? -errno : 0;
	}
	/* memmgr_state_word() finds a storage buffer's word so. */
	if (a->pool == MEMMGR_POOL_STORAGE &&
	    (uint32_t)a->handle != (a->offset >> mm->page_shift) + 1)
		return -EPROTO;
	*addrp = mm->window + a->offset;
	/*
	 * The kernel gave a range still in the tables: their buffer was freed
	 * behind the library's back (libmemmgr.h), so forget it.
	 */
	stale = map_find_locked(mm, *addrp);
	if (stale)
		map_drop_locked(mm, stale);
	return 0;
}

/*
 * Enter a buffer the kernel granted (@a) in the tables, mapped, with
 * @requested bytes asked for; @releases is releases_now() from before the
 * request.  On failure @map is untouched and the buffer is still the
 * kernel's: see kernel_undo().
 */
static int map_insert_locked(struct memmgr *mm, struct mm_map *map,
			     const struct memmgr_alloc *a, uint64_t requested,
			     uint64_t releases)
{
	struct mm_exec *ex = NULL;
	void *addr;
	int ret;

	/* Released by its id, and its range maybe someone else's since. */
	if (mm->releases != releases && !kernel_has(mm, a->handle))
		return -EINVAL;
	ret = map_addr_locked(mm, a, &addr);
	if (ret)
		return ret;
	if (a->pool == MEMMGR_POOL_EXEC) {
		ex = exec_get_locked(mm, a->tag);
		if (!ex) {
			ret = -ENOMEM;
			goto err_unmap;
		}
	}
	/* Its word can be read from now on (see memmgr_state_word()). */
	if (mm->fast.state && a->pool == MEMMGR_POOL_STORAGE &&
	    (uint32_t)a->handle > mm->fast.nr_words)
		__atomic_store_n(&mm->fast.nr_words, (uint32_t)a->handle,
				 __ATOMIC_RELAXED);
	map->addr = addr;
	map->handle = a->handle;
	map->size = a->granted;
	map->requested = requested;
	map->pool = a->pool;
	map->exec = ex;
	htab_add(&mm->by_addr, &map->addr_node, (uintptr_t)addr);
	if (ex)
		list_add(&map->exec_link, &ex->maps);
	else
		htab_add(&mm->by_page, &map->page_node, a->tag);
	mm->requested[map->pool] += requested;
	mm->charged[map->pool] += map->size;
	mm->buffers[map->pool]++;
	return 0;

err_unmap:
	if (!mm->window)
		munmap(addr, a->granted);
	return ret;
}

/* The pages of a chunk, as chunk_new() sized its record. */
static unsigned int chunk_pages(const struct memmgr *mm,
				const struct mm_chunk *chunk)
{
	return ((size_t)chunk->nr_objs << chunk->shift) >> mm->page_shift;
}

/* Take a chunk out of its lists, by_chunk and the small-object figures. */
static void chunk_remove_locked(struct memmgr *mm, struct mm_chunk *chunk)
{
	unsigned int i, nr_pages = chunk_pages(mm, chunk);

	list_del(&chunk->link);
	if (chunk->retained) {
		list_del(&chunk->lru);
		mm->retained_bytes -= chunk->map.size;
	}
	for (i = 0; i < nr_pages; i++)
		htab_del(&mm->by_chunk, &chunk->pages[i].node);
	if (mm->free_hint == chunk)
		mm->free_hint = NULL;
	/* Released or closed with live objects: forget them too. */
	for (i = 0; i < chunk->nr_objs; i++)
		mm->small_requested -= chunk->sizes[i];
	mm->small_objects -= chunk->nr_objs - chunk->nr_free;
	mm->small_chunks--;
	mm->small_charged -= chunk->map.size;
}

/*
 * Unmap a buffer (without a window) and take it out of the tables; its exec
 * id's record and the struct itself are the caller's to put and free.
 */
static void map_remove_locked(struct memmgr *mm, struct mm_map *map)
{
	/* Unmapping the whole of a mapping never fails. */
	if (!mm->window)
		munmap(map->addr, map->size);
	htab_del(&mm->by_addr, &map->addr_node);
	if (map->exec)
		list_del(&map->exec_link);
	else
		htab_del(&mm->by_page, &map->page_node);
	if (map->chunk)
		chunk_remove_locked(mm, to_chunk(map));
	mm->requested[map->pool] -= map->requested;
	mm->charged[map->pool] -= map->size;
	mm->buffers[map->pool]--;
}

static void map_free(struct mm_map *map)
{
	if (map->chunk)
		free(to_chunk(map));
	else
		free(map);
}

/* Forget a buffer the kernel no longer has: the mapping and the record. */
static void map_drop_locked(struct memmgr *mm, struct mm_map *map)
{
	struct mm_exec *ex = map->exec;

	map_remove_locked(mm, map);
	map_free(map);
	if (ex)
		exec_put_locked(mm, ex);
}

/* Free a buffer: the kernel's, the mapping and the record. */
static int map_destroy_locked(struct memmgr *mm, struct mm_map *map)
{
	int ret;

	ret = kernel_buf(mm, MEMMGR_IOC_FREE, map->handle);
	/* ENOENT: the kernel has nothing left to give back. */
	if (ret && ret != -ENOENT)
		return ret;
	map_drop_locked(mm, map);
	return 0;
}

/* Retention: empty chunks kept for reuse, within mm->retain_cap bytes. */

/* Give retained chunks back, oldest first, until at most @keep bytes. */
static int trim_locked(struct memmgr *mm, uint64_t keep)
{
	int ret;

	while (mm->retained_bytes > keep) {
		ret = map_destroy_locked(mm, &container_of(mm->retained.next,
							   struct mm_chunk,
							   lru)->map);
		if (ret)
			return ret;
	}
	return 0;
}

/* Give back every retained chunk; the bytes given back. */
static uint64_t trim_all(struct memmgr *mm)
{
	uint64_t before;

	mm_lock(mm);
	before = mm->retained_bytes;
	trim_locked(mm, 0);
	before -= mm->retained_bytes;
	mm_unlock(mm);
	return before;
}

/* @size rounded up to whole pages. */
static uint64_t page_bytes(const struct memmgr *mm, size_t size)
{
	uint64_t mask = ((uint64_t)1 << mm->page_shift) - 1;

	return ((uint64_t)size + mask) & ~mask;
}

/*
 * Would @bytes (whole pages) of @pool be granted at once, by the kernel's
 * figures now?  A guess (other clients move on meanwhile) that decides
 * whether retained chunks go back before a request that may wait.
 */
static bool fits_now(struct memmgr *mm, uint32_t pool, uint64_t bytes)
{
	struct memmgr_stats st;

	if (ioctl(mm->fd, MEMMGR_IOC_STATS, &st) || st.waiters ||
	    bytes > st.free)
		return false;
	return pool != MEMMGR_POOL_STORAGE ||
	       st.pool[pool].used + bytes <= st.pool[pool].quota;
}

/*
 * MEMMGR_IOC_ALLOC, under pressure without this handle's retained chunks:
 * they go back before a request that may wait and would not fit now, and
 * after a request that was declined at once, which is then tried again.
 */
static int kernel_alloc_trim(struct memmgr *mm, uint32_t pool, uint64_t tag,
			     size_t size, int64_t timeout_ms,
			     unsigned int flags, struct memmgr_alloc *a)
{
	int ret;

	if (timeout_ms && !fits_now(mm, pool, page_bytes(mm, size)))
		trim_all(mm);
	ret = kernel_alloc(mm, pool, tag, size, timeout_ms, flags, a);
	if (ret == -EAGAIN && !timeout_ms && trim_all(mm))
		ret = kernel_alloc(mm, pool, tag, size, 0, flags, a);
	return ret;
}

/*
 * MEMMGR_IOC_ALLOC_MANY of storage entries (@bytes in all, whole pages),
 * under pressure as kernel_alloc_trim(): *@done set to the entries granted.
 */
static int kernel_alloc_many_trim(struct memmgr *mm, struct memmgr_alloc *ents,
				  size_t count, uint64_t bytes,
				  int64_t timeout_ms, size_t *done)
{
	size_t more;
	int ret;

	if (timeout_ms && !fits_now(mm, MEMMGR_POOL_STORAGE, bytes))
		trim_all(mm);
	ret = kernel_alloc_many(mm, ents, count, done);
	if (ret == -EAGAIN && !timeout_ms && trim_all(mm)) {
		ret = kernel_alloc_many(mm, ents + *done, count - *done, &more);
		*done += more;
	}
	return ret;
}

/* Whole buffers: storage, and execution above MEMMGR_SMALL_MAX. */

static int buffer_alloc(struct memmgr *mm, uint32_t pool, uint64_t tag,
			size_t size, int64_t timeout_ms, unsigned int flags,
			void **ptrp)
{
	uint64_t releases = releases_now(mm);
	struct memmgr_alloc a;
	struct mm_map *map;
	int ret;

	map = calloc(1, sizeof(*map));
	if (!map)
		return -ENOMEM;
	/* Without a window: pinned until mapped (see the top). */
	ret = kernel_alloc_trim(mm, pool, tag, size, timeout_ms,
				mm->window ? flags : 0, &a);
	if (ret)
		goto err_free_map;

	mm_lock(mm);
	ret = map_insert_locked(mm, map, &a, size, releases);
	if (!ret && !mm->window && (flags & MEMMGR_ALLOC_UNPINNED)) {
		ret = kernel_buf(mm, MEMMGR_IOC_UNPIN, a.handle);
		if (ret)
			map_remove_locked(mm, map);
	}
	mm_unlock(mm);
	if (ret)
		goto err_free_buffer;
	*ptrp = map->addr;
	return 0;

err_free_buffer:
	ret = kernel_undo(mm, a.handle, ret);
err_free_map:
	free(map);
	return ret;
}

/* Small objects. */

/* The record of a chunk of class @cls, every slot free; no buffer yet. */
static struct mm_chunk *chunk_new(struct memmgr *mm, unsigned int cls)
{
	unsigned int shift = MIN_SHIFT + cls;
	size_t size = chunk_size(mm, cls);
	unsigned int nr_objs = size >> shift;
	unsigned int nr_pages = size >> mm->page_shift, i;
	struct mm_chunk *chunk;

	chunk = calloc(1, sizeof(*chunk) +
			  nr_pages * sizeof(struct mm_chunk_page) +
			  2 * nr_objs * sizeof(uint16_t));
	if (!chunk)
		return NULL;
	chunk->map.chunk = true;
	list_init(&chunk->link);
	list_init(&chunk->lru);
	chunk->cls = cls;
	chunk->shift = shift;
	chunk->nr_objs = nr_objs;
	chunk->nr_free = nr_objs;
	chunk->sizes = (uint16_t *)&chunk->pages[nr_pages];
	chunk->free_slots = chunk->sizes + nr_objs;
	/* Slot 0 on top: a new chunk hands out its slots in order. */
	for (i = 0; i < nr_objs; i++)
		chunk->free_slots[i] = nr_objs - 1 - i;
	return chunk;
}

/* Enter a mapped chunk in by_chunk and its class's partial list. */
static void chunk_insert_locked(struct memmgr *mm, struct mm_chunk *chunk)
{
	unsigned int i, nr_pages = chunk_pages(mm, chunk);
	uintptr_t first = (uintptr_t)chunk->map.addr >> mm->page_shift;

	for (i = 0; i < nr_pages; i++) {
		chunk->pages[i].chunk = chunk;
		htab_add(&mm->by_chunk, &chunk->pages[i].node, first + i);
	}
	list_add(&chunk->link, &chunk->map.exec->cls[chunk->cls].partial);
	mm->small_chunks++;
	mm->small_charged += chunk->map.size;
}

/* Take a free slot of @chunk for @size bytes. */
static inline void *chunk_take_locked(struct memmgr *mm,
				      struct mm_chunk *chunk, size_t size)
{
	unsigned int i = chunk->free_slots[--chunk->nr_free];

	chunk->sizes[i] = size;
	if (!chunk->nr_free)
		list_del(&chunk->link);
	mm->small_requested += size;
	mm->small_objects++;
	return (char *)chunk->map.addr + ((size_t)i << chunk->shift);
}

/* Move a retained chunk of @c, the newest, to its partial list. */
static bool chunk_reuse_locked(struct memmgr *mm, struct mm_class *c)
{
	struct mm_chunk *chunk;

	if (list_empty(&c->empty))
		return false;
	chunk = container_of(c->empty.next, struct mm_chunk, link);
	list_del(&chunk->link);
	list_del(&chunk->lru);
	chunk->retained = false;
	mm->retained_bytes -= chunk->map.size;
	list_add(&chunk->link, &c->partial);
	return true;
}

/* A chunk's last object was freed: keep it within the cap, or give it back. */
static void chunk_empty_locked(struct memmgr *mm, struct mm_chunk *chunk)
{
	list_del(&chunk->link);
	if (mm->retained_bytes + chunk->map.size <= mm->retain_cap) {
		list_add(&chunk->link, &chunk->map.exec->cls[chunk->cls].empty);
		list_add_tail(&chunk->lru, &mm->retained);
		chunk->retained = true;
		mm->retained_bytes += chunk->map.size;
		return;
	}
	/* If the kernel refuses, the chunk stays, empty, on no list. */
	map_destroy_locked(mm, &chunk->map);
}

/* A small object from a chunk the exec id has, live or retained, or NULL. */
static void *small_take_locked(struct memmgr *mm, uint64_t exec_id,
			       unsigned int cls, size_t size)
{
	struct mm_exec *ex = mm->exec_hint;
	struct mm_class *c;

	if (!ex || ex->node.key != exec_id) {
		ex = exec_find_locked(mm, exec_id);
		if (!ex)
			return NULL;
		mm->exec_hint = ex;
	}
	c = &ex->cls[cls];
	if (list_empty(&c->partial) && !chunk_reuse_locked(mm, c))
		return NULL;
	return chunk_take_locked(mm, container_of(c->partial.next,
						  struct mm_chunk, link),
				 size);
}

/* A small object from a new chunk: the kernel's. */
static int small_alloc_chunk(struct memmgr *mm, uint64_t exec_id,
			     unsigned int cls, size_t size, int64_t timeout_ms,
			     void **ptrp)
{
	uint64_t releases = releases_now(mm);
	struct mm_chunk *chunk;
	struct memmgr_alloc a;
	int ret;

	chunk = chunk_new(mm, cls);
	if (!chunk)
		return -ENOMEM;
	ret = kernel_alloc_trim(mm, MEMMGR_POOL_EXEC, exec_id,
				chunk_size(mm, cls), timeout_ms, 0, &a);
	if (ret)
		goto err_free_chunk;

	mm_lock(mm);
	ret = map_insert_locked(mm, &chunk->map, &a, 0, releases);
	if (!ret) {
		chunk_insert_locked(mm, chunk);
		*ptrp = chunk_take_locked(mm, chunk, size);
	}
	mm_unlock(mm);
	if (ret)
		goto err_free_buffer;
	return 0;

err_free_buffer:
	ret = kernel_undo(mm, a.handle, ret);
err_free_chunk:
	free(chunk);
	return ret;
}

static int small_alloc(struct memmgr *mm, uint64_t exec_id, size_t size,
		       int64_t timeout_ms, void **ptrp)
{
	unsigned int cls = size_class(size);
	void *ptr;

	mm_lock(mm);
	ptr = small_take_locked(mm, exec_id, cls, size);
	mm_unlock(mm);
	if (!ptr)
		return small_alloc_chunk(mm, exec_id, cls, size, timeout_ms,
					 ptrp);
	*ptrp = ptr;
	return 0;
}

/* Free the small object at @ptr, in @chunk. */
static int small_free_locked(struct memmgr *mm, struct mm_chunk *chunk,
			     void *ptr)
{
	size_t off = (char *)ptr - (char *)chunk->map.addr;
	size_t i = off >> chunk->shift;

	if ((off & (((size_t)1 << chunk->shift) - 1)) || i >= chunk->nr_objs ||
	    !chunk->sizes[i])
		return -EINVAL;
	/* Handed out zeroed: the kernel zeroed the chunk, we zero reuse. */
	zero_object(ptr, (size_t)1 << chunk->shift);
	mm->small_requested -= chunk->sizes[i];
	mm->small_objects--;
	chunk->sizes[i] = 0;
	chunk->free_slots[chunk->nr_free++] = i;
	if (chunk->nr_free == 1)
		list_add(&chunk->link,
			 &chunk->map.exec->cls[chunk->cls].partial);
	if (chunk->nr_free == chunk->nr_objs)
		chunk_empty_locked(mm, chunk);
	return 0;
}

/* The interface. */

static int open_error(int err)
{
	/* No device node, or a node without its driver. */
	if (err == ENOENT || err == ENXIO || err == ENODEV)
		return -ENODEV;
	return -err;
}

/* Chunk sizes: max(page, CHUNK_MIN_OBJS objects), a power of two. */
static void chunk_geometry(struct memmgr *mm)
{
	unsigned int cls, shift;

	for (cls = 0; cls < NR_CLASSES; cls++) {
		shift = MIN_SHIFT + cls + __builtin_ctz(CHUNK_MIN_OBJS);
		mm->chunk_shift[cls] = shift > mm->page_shift ? shift :
								mm->page_shift;
	}
}

static int handle_init(struct memmgr *mm)
{
	struct memmgr_stats st;
	int ret;

	if (ioctl(mm->fd, MEMMGR_IOC_STATS, &st))
		return -errno;
	/* Pointers are rounded to pages: the kernel's must be the CPU's. */
	if (st.page_size != (uint32_t)sysconf(_SC_PAGESIZE) ||
	    (st.page_size & (st.page_size - 1)))
		return -EPROTO;
	mm->page_shift = __builtin_ctz(st.page_size);
	chunk_geometry(mm);
	list_init(&mm->retained);
	mm->retain_cap = MEMMGR_RETAIN_DEFAULT;
	ret = htab_init(&mm->by_addr);
	if (ret)
		return ret;
	ret = htab_init(&mm->by_page);
	if (ret)
		goto err_fini_addr;
	ret = htab_init(&mm->by_exec);
	if (ret)
		goto err_fini_page;
	ret = htab_init(&mm->by_chunk);
	if (ret)
		goto err_fini_exec;
	return 0;

err_fini_exec:
	htab_fini(&mm->by_exec);
err_fini_page:
	htab_fini(&mm->by_page);
err_fini_addr:
	htab_fini(&mm->by_addr);
	return ret;
}

/*
 * Issue 12's interface, before any allocation (the state area must come
 * first): whatever of it the module has, all or nothing of the window and
 * the state area.  A module without it fails ALLOC_MANY with ENOTTY and
 * the mmap()s with EINVAL.
 */
static void fast_init(struct memmgr *mm)
{
	struct memmgr_batch b = { .count = 0 };
	void *p;

	mm->batch = !ioctl(mm->fd, MEMMGR_IOC_ALLOC_MANY, &b);
	/* A 32-bit off_t cannot name the figures' offset. */
	if (sizeof(off_t) >= 8) {
		p = mmap(NULL, FIGURES_LEN, PROT_READ, MAP_SHARED, mm->fd,
			 (off_t)MEMMGR_FIGURES_OFFSET);
		if (p != MAP_FAILED)
			mm->figures = p;
	}
#if UINTPTR_MAX > 0xffffffffU
	/* The window first: a state area alone would serve no one. */
	p = mmap(NULL, MEMMGR_OFFSET_LIMIT, PROT_READ | PROT_WRITE, MAP_SHARED,
		 mm->fd, MEMMGR_WINDOW_OFFSET);
	if (p == MAP_FAILED)
		return;
	/* A word per page of the file's offsets: 8 GiB with 4 KiB pages. */
	mm->state_len = (MEMMGR_OFFSET_LIMIT >> mm->page_shift) * 8;
	mm->fast.state = mmap(NULL, mm->state_len, PROT_READ | PROT_WRITE,
			      MAP_SHARED, mm->fd, MEMMGR_STATE_OFFSET);
	if (mm->fast.state == MAP_FAILED) {
		mm->fast.state = NULL;
		munmap(p, MEMMGR_OFFSET_LIMIT);
		return;
	}
	/* No word is backed yet: storage allocations raise it. */
	mm->fast.nr_words = 0;
	mm->window = p;
#endif
}

static void fast_fini(struct memmgr *mm)
{
	if (mm->figures)
		munmap((void *)mm->figures, FIGURES_LEN);
#if UINTPTR_MAX > 0xffffffffU
	if (mm->window) {
		munmap(mm->window, MEMMGR_OFFSET_LIMIT);
		munmap(mm->fast.state, mm->state_len);
	}
#endif
}

int memmgr_open(struct memmgr **mmp, unsigned int flags)
{
	int oflags = O_RDWR | O_CLOEXEC;
	struct memmgr *mm;
	int ret;

	if (flags & ~(MEMMGR_OPEN_NONBLOCK | MEMMGR_OPEN_NO_FAST))
		return -EINVAL;
	if (flags & MEMMGR_OPEN_NONBLOCK)
		oflags |= O_NONBLOCK;
	mm = calloc(1, sizeof(*mm));
	if (!mm)
		return -ENOMEM;
	mm->fd = open(MEMMGR_DEVICE, oflags);
	if (mm->fd < 0) {
		ret = open_error(errno);
		goto err_free;
	}
	ret = handle_init(mm);
	if (ret)
		goto err_close;
	if (!(flags & MEMMGR_OPEN_NO_FAST))
		fast_init(mm);
	*mmp = mm;
	return 0;

err_close:
	close(mm->fd);
err_free:
	free(mm);
	return ret;
}

void memmgr_close(struct memmgr *mm)
{
	struct mm_hnode *n;
	size_t i;

	if (!mm)
		return;
	/* Mappings hold the file open: unmap all, then the kernel frees. */
	mm_lock(mm);
	for (i = 0; i < mm->by_addr.nr_slots; i++) {
		while ((n = mm->by_addr.slots[i])) {
			struct mm_map *map = container_of(n, struct mm_map,
							  addr_node);
			struct mm_exec *ex = map->exec;

			map_remove_locked(mm, map);
			map_free(map);
			if (ex)
				exec_put_locked(mm, ex);
		}
	}
	mm_unlock(mm);
	fast_fini(mm);
	close(mm->fd);
	htab_fini(&mm->by_chunk);
	htab_fini(&mm->by_exec);
	htab_fini(&mm->by_page);
	htab_fini(&mm->by_addr);
	free(mm);
}

int memmgr_set_timeout(struct memmgr *mm, int64_t timeout_ms)
{
	if (timeout_ms < MEMMGR_WAIT_FOREVER)
		return -EINVAL;
	mm_lock(mm);
	mm->timeout_ms = timeout_ms;
	mm_unlock(mm);
	return 0;
}

static int64_t get_timeout(struct memmgr *mm)
{
	int64_t timeout_ms;

	mm_lock(mm);
	timeout_ms = mm->timeout_ms;
	mm_unlock(mm);
	return timeout_ms;
}

int memmgr_alloc_storage(struct memmgr *mm, uint64_t page_id, size_t size,
			 int64_t timeout_ms, unsigned int flags, void **ptrp)
{
	if (!size || timeout_ms < MEMMGR_WAIT_FOREVER || !ptrp ||
	    (flags & ~MEMMGR_ALLOC_FLAGS))
		return -EINVAL;
	return buffer_alloc(mm, MEMMGR_POOL_STORAGE, page_id, size,
			    timeout_ms, flags, ptrp);
}

int memmgr_alloc_exec(struct memmgr *mm, uint64_t exec_id, size_t size,
		      int64_t timeout_ms, void **ptrp)
{
	if (!size || timeout_ms < MEMMGR_WAIT_FOREVER || !ptrp)
		return -EINVAL;
	if (size <= MEMMGR_SMALL_MAX)
		return small_alloc(mm, exec_id, size, timeout_ms, ptrp);
	return buffer_alloc(mm, MEMMGR_POOL_EXEC, exec_id, size, timeout_ms,
			    0, ptrp);
}

int memmgr_free(struct memmgr *mm, void *ptr)
{
	struct mm_chunk *chunk;
	struct mm_map *map;
	int ret = -EINVAL;

	if (!ptr)
		return 0;
	mm_lock(mm);
	/* A small object first: its chunk is found by page. */
	chunk = chunk_find_locked(mm, ptr);
	if (chunk) {
		ret = small_free_locked(mm, chunk, ptr);
		goto out_unlock;
	}
	map = map_find_locked(mm, ptr);
	if (map)
		ret = map_destroy_locked(mm, map);
out_unlock:
	mm_unlock(mm);
	return ret;
}

/* Batches: MEMMGR_IOC_ALLOC_MANY and MEMMGR_IOC_FREE_MANY. */

/*
 * One call of memmgr_alloc_storage_many(): @count entries, at most
 * MEMMGR_BATCH_MAX, with room for them at @ents and @maps.  *@done is set
 * to the entries done (the first ones); the error of the next is returned.
 */
static int storage_batch(struct memmgr *mm, size_t count,
			 const uint64_t *page_ids, const size_t *sizes,
			 int64_t timeout_ms, unsigned int flags, void **ptrs,
			 uint64_t *handles, struct memmgr_alloc *ents,
			 struct mm_map **maps, size_t *done)
{
	uint64_t releases = releases_now(mm), bytes = 0, b;
	size_t granted = 0, room, i, j;
	int ret = 0, err = 0;

	for (room = 0; room < count; room++) {
		maps[room] = calloc(1, sizeof(*maps[room]));
		if (!maps[room]) {
			/* The entries there is room for, then -ENOMEM. */
			err = -ENOMEM;
			break;
		}
		/* Without a window: pinned until mapped (see the top). */
		ents[room] = (struct memmgr_alloc){
			.pool = MEMMGR_POOL_STORAGE,
			.flags = mm->window ? flags : 0,
			.size = sizes[room], .tag = page_ids[room],
			.timeout_ms = timeout_ms,
		};
		b = page_bytes(mm, sizes[room]);
		bytes = bytes + b < bytes ? UINT64_MAX : bytes + b;
	}
	if (room)
		ret = kernel_alloc_many_trim(mm, ents, room, bytes, timeout_ms,
					     &granted);
	if (!ret)
		ret = err;

	mm_lock(mm);
	for (i = 0; i < granted; i++) {
		err = map_insert_locked(mm, maps[i], &ents[i], sizes[i],
					releases);
		if (!err && !mm->window && (flags & MEMMGR_ALLOC_UNPINNED)) {
			err = kernel_buf(mm, MEMMGR_IOC_UNPIN, ents[i].handle);
			if (err)
				map_remove_locked(mm, maps[i]);
		}
		if (err)
			break;
		ptrs[i] = maps[i]->addr;
		if (handles)
			handles[i] = ents[i].handle;
	}
	mm_unlock(mm);
	if (i < granted) {
		/* The library failed entry i: it and those after go back. */
		ret = kernel_undo(mm, ents[i].handle, err);
		for (j = i + 1; j < granted; j++)
			kernel_buf(mm, MEMMGR_IOC_FREE, ents[j].handle);
		granted = i;
	}
	for (i = granted; i < room; i++)
		free(maps[i]);
	*done = granted;
	return ret;
}

int memmgr_alloc_storage_many(struct memmgr *mm, size_t n,
			      const uint64_t *page_ids, const size_t *sizes,
			      int64_t timeout_ms, unsigned int flags,
			      void **ptrs, uint64_t *handles, size_t *done)
{
	size_t room = n < MEMMGR_BATCH_MAX ? n : MEMMGR_BATCH_MAX, off = 0;
	struct memmgr_alloc *ents = NULL;
	struct mm_map **maps = NULL;
	size_t count, got;
	int ret = 0;

	if (timeout_ms < MEMMGR_WAIT_FOREVER || (flags & ~MEMMGR_ALLOC_FLAGS) ||
	    (n && (!page_ids || !sizes || !ptrs))) {
		ret = -EINVAL;
		goto out;
	}
	if (!n)
		goto out;
	ents = malloc(room * sizeof(*ents));
	maps = malloc(room * sizeof(*maps));
	if (!ents || !maps) {
		ret = -ENOMEM;
		goto out;
	}
	while (off < n && !ret) {
		count = n - off < room ? n - off : room;
		ret = storage_batch(mm, count, page_ids + off, sizes + off,
				    timeout_ms, flags, ptrs + off,
				    handles ? handles + off : NULL, ents, maps,
				    &got);
		off += got;
	}
out:
	free(maps);
	free(ents);
	if (done)
		*done = off;
	return ret;
}

/*
 * The buffers of @ptrs from *@i on, up to the first small object or
 * pointer that is not a buffer of @mm, one already in this run, or @room
 * of them, NULLs skipped: their handles, maps and indices in @ptrs.  *@i
 * moves past them.
 */
static size_t free_gather_locked(struct memmgr *mm, void *const *ptrs,
				 size_t n, size_t *i, size_t room,
				 uint64_t *handles, struct mm_map **maps,
				 size_t *idx)
{
	struct mm_map *map;
	size_t k = 0;

	for (; *i < n && k < room; (*i)++) {
		if (!ptrs[*i])
			continue;
		if (chunk_find_locked(mm, ptrs[*i]))
			break;
		map = map_find_locked(mm, ptrs[*i]);
		if (!map || map->freeing)
			break;
		map->freeing = true;
		maps[k] = map;
		handles[k] = map->handle;
		idx[k++] = *i;
	}
	return k;
}

/*
 * Free @k gathered buffers, the kernel's and the records.  On failure,
 * *@failed is the one that failed: it and those after stay.
 */
static int free_run_locked(struct memmgr *mm, uint64_t *handles,
			   struct mm_map **maps, size_t k, size_t *failed)
{
	size_t off = 0, d, j;
	int ret = 0;

	while (off < k) {
		ret = kernel_free_many(mm, handles + off, k - off, &d);
		for (j = off; j < off + d; j++)
			map_drop_locked(mm, maps[j]);
		off += d;
		/* ENOENT: nothing left to give back, as map_destroy_locked() */
		if (ret != -ENOENT)
			break;
		map_drop_locked(mm, maps[off++]);
		ret = 0;
	}
	for (j = off; j < k; j++)
		maps[j]->freeing = false;
	*failed = off;
	return ret;
}

int memmgr_free_many(struct memmgr *mm, size_t n, void *const *ptrs,
		     size_t *done)
{
	size_t room = n < MEMMGR_BATCH_MAX ? n : MEMMGR_BATCH_MAX, i = 0;
	struct mm_map **maps = NULL;
	uint64_t *handles = NULL;
	struct mm_chunk *chunk;
	size_t *idx = NULL;
	size_t k, failed;
	int ret = 0;

	if (!n)
		goto out;
	if (!ptrs) {
		ret = -EINVAL;
		goto out;
	}
	handles = malloc(room * sizeof(*handles));
	maps = malloc(room * sizeof(*maps));
	idx = malloc(room * sizeof(*idx));
	if (!handles || !maps || !idx) {
		ret = -ENOMEM;
		goto out;
	}
	mm_lock(mm);
	while (i < n) {
		k = free_gather_locked(mm, ptrs, n, &i, room, handles, maps,
				       idx);
		if (k) {
			ret = free_run_locked(mm, handles, maps, k, &failed);
			if (ret) {
				i = idx[failed];
				break;
			}
			continue;
		}
		if (i == n)
			break;
		/* A small object, or not an allocation of @mm. */
		chunk = chunk_find_locked(mm, ptrs[i]);
		ret = chunk ? small_free_locked(mm, chunk, ptrs[i]) : -EINVAL;
		if (ret)
			break;
		i++;
	}
	mm_unlock(mm);
out:
	free(idx);
	free(maps);
	free(handles);
	if (done)
		*done = i;
	return ret;
}

int memmgr_set_retain(struct memmgr *mm, uint64_t bytes)
{
	int ret;

	mm_lock(mm);
	mm->retain_cap = bytes;
	ret = trim_locked(mm, bytes);
	mm_unlock(mm);
	return ret;
}

int memmgr_trim(struct memmgr *mm)
{
	int ret;

	mm_lock(mm);
	ret = trim_locked(mm, 0);
	mm_unlock(mm);
	return ret;
}

int memmgr_pin_ioctl(struct memmgr *mm, uint64_t handle)
{
	return kernel_buf(mm, MEMMGR_IOC_PIN, handle);
}

int memmgr_unpin_ioctl(struct memmgr *mm, uint64_t handle)
{
	return kernel_buf(mm, MEMMGR_IOC_UNPIN, handle);
}

/* The handle of @page_id's buffer, or 0. */
static uint64_t page_handle(struct memmgr *mm, uint64_t page_id)
{
	struct mm_map *map;
	uint64_t handle = 0;

	mm_lock(mm);
	map = page_find_locked(mm, page_id);
	if (map)
		handle = map->handle;
	mm_unlock(mm);
	return handle;
}

/*
 * By handle, out of the mutex: a buffer freed meanwhile has a word of
 * another generation or FREED (or the kernel no longer knows its handle),
 * so the pin says -ENOENT, as it would have after the free.
 */
int memmgr_pin(struct memmgr *mm, uint64_t page_id)
{
	uint64_t handle = page_handle(mm, page_id);

	return handle ? memmgr_pin_handle(mm, handle) : -ENOENT;
}

int memmgr_unpin(struct memmgr *mm, uint64_t page_id)
{
	uint64_t handle = page_handle(mm, page_id);

	return handle ? memmgr_unpin_handle(mm, handle) : -ENOENT;
}

uint64_t memmgr_handle(struct memmgr *mm, const void *ptr)
{
	struct mm_map *map;
	uint64_t handle = 0;

	mm_lock(mm);
	map = map_find_locked(mm, ptr);
	if (map && map->pool == MEMMGR_POOL_STORAGE)
		handle = map->handle;
	mm_unlock(mm);
	return handle;
}

/* Under the mutex, so that an ALLOC of either tag enters it after this. */
int memmgr_retag(struct memmgr *mm, uint64_t page_id, uint64_t new_page_id)
{
	struct memmgr_retag r = { .tag = new_page_id };
	struct mm_map *map, *stale;
	int ret = -ENOENT;

	mm_lock(mm);
	map = page_find_locked(mm, page_id);
	if (!map)
		goto out_unlock;
	r.handle = map->handle;
	ret = ioctl(mm->fd, MEMMGR_IOC_RETAG, &r) ? -errno : 0;
	if (ret || new_page_id == page_id)
		goto out_unlock;
	/* As map_addr_locked(): the kernel knows no other holder of the id. */
	stale = page_find_locked(mm, new_page_id);
	if (stale)
		map_drop_locked(mm, stale);
	htab_del(&mm->by_page, &map->page_node);
	htab_add(&mm->by_page, &map->page_node, new_page_id);
out_unlock:
	mm_unlock(mm);
	return ret;
}

unsigned int memmgr_features(struct memmgr *mm)
{
	unsigned int features = 0;

	if (mm->window)
		features |= MEMMGR_FEATURE_WINDOW | MEMMGR_FEATURE_STATE;
	if (mm->figures)
		features |= MEMMGR_FEATURE_FIGURES;
	if (mm->batch)
		features |= MEMMGR_FEATURE_BATCH;
	return features;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

#define LOAD(field)	__atomic_load_n(&(field), __ATOMIC_RELAXED)

int memmgr_figures(struct memmgr *mm, struct memmgr_figures *out)
{
	const struct memmgr_figures *f = mm->figures;
	struct memmgr_stats st;
	uint32_t seq;
	int p;

	if (!f) {
		if (ioctl(mm->fd, MEMMGR_IOC_STATS, &st))
			return -errno;
		memset(out, 0, sizeof(*out));
		out->page_size = st.page_size;
		out->total = st.total;
		out->free = st.free;
		for (p = 0; p < MEMMGR_NR_POOLS; p++) {
			out->pool[p].quota = st.pool[p].quota;
			out->pool[p].used = st.pool[p].used;
			out->pool[p].evictions = st.pool[p].evictions;
			out->pool[p].evicted_bytes = st.pool[p].evicted_bytes;
		}
		return 0;
	}
	/* The kernel's write_seqcount: odd while it writes. */
	for (;; cpu_relax()) {
		seq = __atomic_load_n(&f->seq, __ATOMIC_ACQUIRE);
		if (seq & 1)
			continue;
		out->page_size = LOAD(f->page_size);
		out->total = LOAD(f->total);
		out->free = LOAD(f->free);
		for (p = 0; p < MEMMGR_NR_POOLS; p++) {
			out->pool[p].quota = LOAD(f->pool[p].quota);
			out->pool[p].used = LOAD(f->pool[p].used);
			out->pool[p].evictions = LOAD(f->pool[p].evictions);
			out->pool[p].evicted_bytes =
				LOAD(f->pool[p].evicted_bytes);
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&f->seq, __ATOMIC_RELAXED) == seq)
			break;
	}
	out->seq = seq;
	return 0;
}

int memmgr_lookup_page(struct memmgr *mm, uint64_t page_id, void **ptrp,
		       size_t *sizep)
{
	struct memmgr_lookup l = { .tag = page_id };
	struct mm_map *map;
	int ret = -ENOENT;

	mm_lock(mm);
	map = page_find_locked(mm, page_id);
	if (!map)
		goto out_unlock;
	/* The kernel knows whether it was evicted. */
	ret = ioctl(mm->fd, MEMMGR_IOC_LOOKUP, &l) ? -errno : 0;
	if (ret && ret != -ESTALE)
		goto out_unlock;
	if (ptrp)
		*ptrp = map->addr;
	if (sizep)
		*sizep = map->size;
out_unlock:
	mm_unlock(mm);
	return ret;
}

int memmgr_release_exec(struct memmgr *mm, uint64_t exec_id,
			uint64_t *freedp)
{
	struct mm_exec *ex;
	int ret;

	mm_lock(mm);
	ret = kernel_release(mm, MEMMGR_POOL_EXEC, exec_id, freedp);
	if (ret)
		goto out_unlock;
	ex = exec_find_locked(mm, exec_id);
	if (!ex)
		goto out_unlock;
	while (!list_empty(&ex->maps)) {
		struct mm_map *map = container_of(ex->maps.next,
						  struct mm_map, exec_link);

		map_remove_locked(mm, map);
		map_free(map);
	}
	exec_put_locked(mm, ex);
out_unlock:
	mm_unlock(mm);
	return ret;
}

int memmgr_release_page(struct memmgr *mm, uint64_t page_id,
			uint64_t *freedp)
{
	struct mm_map *map;
	int ret;

	mm_lock(mm);
	ret = kernel_release(mm, MEMMGR_POOL_STORAGE, page_id, freedp);
	if (ret)
		goto out_unlock;
	map = page_find_locked(mm, page_id);
	if (map) {
		map_remove_locked(mm, map);
		map_free(map);
	}
out_unlock:
	mm_unlock(mm);
	return ret;
}

int memmgr_get_stats(struct memmgr *mm, struct memmgr_lib_stats *st)
{
	int ret = 0;

	memset(st, 0, sizeof(*st));
	mm_lock(mm);
	if (ioctl(mm->fd, MEMMGR_IOC_STATS, &st->kernel)) {
		ret = -errno;
		goto out_unlock;
	}
	memcpy(st->requested, mm->requested, sizeof(st->requested));
	st->requested[MEMMGR_POOL_EXEC] += mm->small_requested;
	memcpy(st->charged, mm->charged, sizeof(st->charged));
	memcpy(st->buffers, mm->buffers, sizeof(st->buffers));
	st->small_objects = mm->small_objects;
	st->small_requested = mm->small_requested;
	st->small_chunks = mm->small_chunks;
	st->small_charged = mm->small_charged;
	st->small_retained = mm->retained_bytes;
out_unlock:
	mm_unlock(mm);
	return ret;
}

int memmgr_evicted(struct memmgr *mm, uint64_t *page_ids, uint32_t count,
		   uint64_t *pending)
{
	struct memmgr_evicted e = {
		.tags = (uintptr_t)page_ids, .count = count,
	};

	if (ioctl(mm->fd, MEMMGR_IOC_EVICTED, &e))
		return -errno;
	if (pending)
		*pending = e.pending;
	return e.count;
}

int memmgr_fd(struct memmgr *mm)
{
	return mm->fd;
}

const char *memmgr_strerror(int err)
{
	const char *desc;

	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "Success";
	case EAGAIN:
		return "Memory is not available now (request declined)";
	case ETIMEDOUT:
		return "Memory did not become available in time";
	case EINTR:
		return "Interrupted by a signal while waiting for memory";
	case E2BIG:
		return "Request larger than its pool could ever grant";
	case EEXIST:
		return "Page id already allocated on this handle";
	case ENOENT:
		return "No such page id on this handle";
	case ESTALE:
		return "Storage buffer was evicted";
	case ECANCELED:
		return "Released by its id while being allocated";
	case ENODEV:
		return "memmgr is not loaded (no " MEMMGR_DEVICE ")";
	case EACCES:
	case EPERM:
		return "Permission denied (see the mode of " MEMMGR_DEVICE ")";
	case EINVAL:
		return "Invalid argument, or not an allocation of this handle";
	case ENOMEM:
		return "Out of memory in this process";
	case ENOSPC:
		return "No free range of mmap offsets on this handle";
	case EOVERFLOW:
		return "Too many pins on one storage buffer";
	case EPROTO:
		return "memmgr and this library disagree (page size, handles)";
	}
	desc = strerrordesc_np(err);
	return desc ? desc : "Unknown error";
}

void *memmgr_acquire_storage_memory(struct memmgr *mm, uint64_t page_id,
				    size_t num_bytes)
{
	void *ptr;
	int ret;

	ret = memmgr_alloc_storage(mm, page_id, num_bytes, get_timeout(mm), 0,
				   &ptr);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	return ptr;
}

void *memmgr_acquire_execution_memory(struct memmgr *mm, uint64_t exec_id,
				      size_t num_bytes)
{
	void *ptr;
	int ret;

	ret = memmgr_alloc_exec(mm, exec_id, num_bytes, get_timeout(mm), &ptr);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	return ptr;
}

int64_t memmgr_release_storage_memory(struct memmgr *mm, uint64_t page_id)
{
	uint64_t freed;
	int ret;

	ret = memmgr_release_page(mm, page_id, &freed);
	return ret ? ret : (int64_t)freed;
}

int64_t memmgr_release_execution_memory(struct memmgr *mm, uint64_t exec_id)
{
	uint64_t freed;
	int ret;

	ret = memmgr_release_exec(mm, exec_id, &freed);
	return ret ? ret : (int64_t)freed;
}
