/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libmemmgr's insides, shared by its files:
 *  - libmemmgr.c: the handle (open, close, the window, the state area, the
 *    figures, the timeout), the kernel's side (the ioctl()s), the tables,
 *    whole buffers and trimming, memmgr_free() and memmgr_free_many() (both
 *    pools), statistics, features and errors;
 *  - libmemmgr_storage.c: storage buffers, one by one and in batches, pins,
 *    page ids and handles, their release and eviction notices;
 *  - libmemmgr_exec.c: execution memory: small objects carved from chunks,
 *    larger buffers, retention, release by exec id;
 *  - libmemmgr_malloc.c: the execution allocator (memmgr_malloc() and its
 *    kin): jemalloc on chunks of execution memory, with its own lock.
 * A function used by more than one file is declared here, MM_HIDDEN, so
 * that libmemmgr.so does not export it.
 *
 * One lock: the handle's mutex (mm_lock()).  It protects every field of
 * struct memmgr from @lock on: the tables below, the hints, the retained
 * chunks, the timeout and the counters.  The fields before it are set at
 * open and only read since, but for fast.nr_words and @releases, written
 * under the mutex and read without it, atomically.  The execution
 * allocator's lock (struct mmx) comes before it, and jemalloc's own locks
 * between the two: the mutex is never held across a call into jemalloc.
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
 * Buffers are where the kernel put them in the handle's window (window +
 * offset), or, without a window, each in a mapping of its own.
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
#ifndef LIBMEMMGR_INT_H
#define LIBMEMMGR_INT_H

#include <errno.h>
#include <linux/futex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libmemmgr.h"

/* Not exported by libmemmgr.so: for the library's files only. */
#define MM_HIDDEN	__attribute__((visibility("hidden")))

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* Size classes: MEMMGR_SMALL_MIN << 0 up to MEMMGR_SMALL_MIN << 8. */
#define MIN_SHIFT	4
#define NR_CLASSES	9
_Static_assert(1 << MIN_SHIFT == MEMMGR_SMALL_MIN,
	       "MIN_SHIFT must be log2(MEMMGR_SMALL_MIN)");
_Static_assert(MEMMGR_SMALL_MIN << (NR_CLASSES - 1) == MEMMGR_SMALL_MAX,
	       "size classes must end at MEMMGR_SMALL_MAX");

#define HTAB_MIN_SLOTS	64

/* A circular doubly linked list, as the kernel's list_head. */
struct mm_list {
	struct mm_list *next, *prev;
};

static inline void list_init(struct mm_list *head)
{
	head->next = head;
	head->prev = head;
}

static inline bool list_empty(const struct mm_list *head)
{
	return head->next == head;
}

static inline void list_add(struct mm_list *node, struct mm_list *head)
{
	node->next = head->next;
	node->prev = head;
	head->next->prev = node;
	head->next = node;
}

static inline void list_add_tail(struct mm_list *node, struct mm_list *head)
{
	list_add(node, head->prev);
}

/* Unlink @node; a node on no list (linked to itself) stays as it is. */
static inline void list_del(struct mm_list *node)
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

static inline size_t htab_slot(size_t nr_slots, uint64_t key)
{
	/* The finalizer of MurmurHash3: addresses and ids spread well. */
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	key *= 0xc4ceb9fe1a85ec53ULL;
	key ^= key >> 33;
	return key & (nr_slots - 1);
}

static inline int htab_init(struct mm_htab *t)
{
	t->slots = calloc(HTAB_MIN_SLOTS, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	t->nr_slots = HTAB_MIN_SLOTS;
	t->count = 0;
	return 0;
}

static inline void htab_fini(struct mm_htab *t)
{
	free(t->slots);
	t->slots = NULL;
}

static inline struct mm_hnode *htab_find(const struct mm_htab *t, uint64_t key)
{
	struct mm_hnode *n;

	for (n = t->slots[htab_slot(t->nr_slots, key)]; n; n = n->next)
		if (n->key == key)
			return n;
	return NULL;
}

static inline void htab_grow(struct mm_htab *t)
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
static inline void htab_add(struct mm_htab *t, struct mm_hnode *n, uint64_t key)
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

static inline void htab_del(struct mm_htab *t, struct mm_hnode *n)
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
	uint64_t tag;			/* its page id or exec id */
	uint64_t size;			/* bytes granted and mapped */
	uint64_t requested;		/* bytes asked for (0 for a chunk) */
	uint32_t pool;
	bool chunk;			/* the map of a struct mm_chunk */
	bool freeing;			/* in a memmgr_free_many() batch */
	bool mx_chunk;			/* a chunk of the execution allocator */
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
	struct mmx *mx;			/* the execution allocator, or NULL */
	/*
	 * The allocator's page table over the window (libmemmgr_malloc.c):
	 * the entry of the page at @mx_base + (i << @page_shift) is
	 * @mx_table[i], for offsets below @mx_span (0: no table).  Set at
	 * open, read without a lock.
	 */
	uint32_t *mx_table;
	uintptr_t mx_base;
	uintptr_t mx_span;
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
static inline void futex(int *word, int op, int val)
{
	syscall(SYS_futex, word, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

static inline void mm_lock_wait(struct memmgr *mm)
{
	while (__atomic_exchange_n(&mm->lock, 2, __ATOMIC_ACQUIRE))
		futex(&mm->lock, FUTEX_WAIT, 2);
}

static inline void mm_lock(struct memmgr *mm)
{
	int unlocked = 0;

	if (!__atomic_compare_exchange_n(&mm->lock, &unlocked, 1, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		mm_lock_wait(mm);
}

static inline void mm_unlock(struct memmgr *mm)
{
	if (__atomic_exchange_n(&mm->lock, 0, __ATOMIC_RELEASE) == 2)
		futex(&mm->lock, FUTEX_WAKE, 1);
}

/* libmemmgr.c: the kernel's side, each returning 0 or a negative errno. */
MM_HIDDEN int kernel_buf(struct memmgr *mm, unsigned long cmd,
			 uint64_t handle);
MM_HIDDEN int kernel_release(struct memmgr *mm, uint32_t pool, uint64_t tag,
			     uint64_t *freedp);
MM_HIDDEN int kernel_undo(struct memmgr *mm, uint64_t handle, int err);
MM_HIDDEN int kernel_alloc_trim(struct memmgr *mm, uint32_t pool,
				uint64_t tag, size_t size, int64_t timeout_ms,
				unsigned int flags, struct memmgr_alloc *a);
MM_HIDDEN int kernel_alloc_many_trim(struct memmgr *mm,
				     struct memmgr_alloc *ents, size_t count,
				     uint64_t bytes, int64_t timeout_ms,
				     size_t *done);

/* libmemmgr.c: the tables. */
MM_HIDDEN struct mm_exec *exec_find_locked(struct memmgr *mm,
					   uint64_t exec_id);
MM_HIDDEN void exec_put_locked(struct memmgr *mm, struct mm_exec *ex);
MM_HIDDEN struct mm_map *map_find_locked(struct memmgr *mm, const void *addr);
MM_HIDDEN struct mm_map *page_find_locked(struct memmgr *mm,
					  uint64_t page_id);
MM_HIDDEN uint64_t releases_now(struct memmgr *mm);
MM_HIDDEN int map_insert_locked(struct memmgr *mm, struct mm_map *map,
				const struct memmgr_alloc *a,
				uint64_t requested, uint64_t releases);
MM_HIDDEN void map_remove_locked(struct memmgr *mm, struct mm_map *map);
MM_HIDDEN void map_free(struct mm_map *map);
MM_HIDDEN void map_drop_locked(struct memmgr *mm, struct mm_map *map);
MM_HIDDEN int map_destroy_locked(struct memmgr *mm, struct mm_map *map);

/* libmemmgr.c: retention, whole buffers, the handle. */
MM_HIDDEN int trim_locked(struct memmgr *mm, uint64_t keep);
MM_HIDDEN uint64_t page_bytes(const struct memmgr *mm, size_t size);
/* buffer_alloc(): a chunk of the execution allocator (not the kernel's). */
#define MM_ALLOC_MX_CHUNK	(1U << 31)
MM_HIDDEN int buffer_alloc(struct memmgr *mm, uint32_t pool, uint64_t tag,
			   size_t size, int64_t timeout_ms, unsigned int flags,
			   void **ptrp);
MM_HIDDEN int64_t get_timeout(struct memmgr *mm);
MM_HIDDEN int buffer_free(struct memmgr *mm, void *ptr);

/* libmemmgr_exec.c: small objects. */
MM_HIDDEN void chunk_geometry(struct memmgr *mm);
MM_HIDDEN void chunk_remove_locked(struct memmgr *mm, struct mm_chunk *chunk);
MM_HIDDEN int small_free_locked(struct memmgr *mm, struct mm_chunk *chunk,
				void *ptr);

/* libmemmgr_malloc.c: the execution allocator. */
MM_HIDDEN int mmx_init(struct memmgr *mm);
MM_HIDDEN void mmx_fini(struct memmgr *mm);
MM_HIDDEN void mmx_table_init(struct memmgr *mm);
MM_HIDDEN uint32_t mmx_owns(struct memmgr *mm, const void *ptr);
MM_HIDDEN int mmx_free(struct memmgr *mm, uint32_t entry, void *ptr);
MM_HIDDEN void mmx_release(struct memmgr *mm, uint64_t exec_id);
MM_HIDDEN int mmx_enter_locked(struct memmgr *mm, struct mm_map *map);
MM_HIDDEN void mmx_forget_locked(struct memmgr *mm, struct mm_map *map);

#endif /* LIBMEMMGR_INT_H */
