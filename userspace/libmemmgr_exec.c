// SPDX-License-Identifier: GPL-2.0
/*
 * libmemmgr's execution memory: small objects carved from chunks, larger
 * objects as whole buffers, retention of empty chunks, release by exec id.
 * libmemmgr_int.h describes the handle and its tables.
 *
 * Small objects, the hot path: a slot is taken from the top of its chunk's
 * stack of free slots and pushed back on free, zeroed; the exec id is
 * found through the last one used; each costs two turns of an inline
 * futex mutex and a few counters.  A chunk whose last object is freed is
 * retained up to the handle's cap, so a batch that is freed and allocated
 * again asks the kernel nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "libmemmgr.h"
#include "libmemmgr_int.h"

/* A chunk holds at least this many objects (and is at least a page). */
#define CHUNK_MIN_OBJS	16

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

/* Small objects. */

/* The pages of a chunk, as chunk_new() sized its record. */
static unsigned int chunk_pages(const struct memmgr *mm,
				const struct mm_chunk *chunk)
{
	return ((size_t)chunk->nr_objs << chunk->shift) >> mm->page_shift;
}

/* Take a chunk out of its lists, by_chunk and the small-object figures. */
void chunk_remove_locked(struct memmgr *mm, struct mm_chunk *chunk)
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
int small_free_locked(struct memmgr *mm, struct mm_chunk *chunk,
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

/* Chunk sizes: max(page, CHUNK_MIN_OBJS objects), a power of two. */
void chunk_geometry(struct memmgr *mm)
{
	unsigned int cls, shift;

	for (cls = 0; cls < NR_CLASSES; cls++) {
		shift = MIN_SHIFT + cls + __builtin_ctz(CHUNK_MIN_OBJS);
		mm->chunk_shift[cls] = shift > mm->page_shift ? shift :
								mm->page_shift;
	}
}

/* The interface. */

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

/*
 * The release failed after jemalloc forgot the exec id's chunks: they stay
 * as plain buffers of the exec id, for the next release or the close.
 */
static void forget_chunks_locked(struct memmgr *mm, uint64_t exec_id)
{
	struct mm_exec *ex = exec_find_locked(mm, exec_id);
	struct mm_list *pos;

	if (!ex)
		return;
	for (pos = ex->maps.next; pos != &ex->maps; pos = pos->next) {
		struct mm_map *map = container_of(pos, struct mm_map,
						  exec_link);

		if (map->mx_chunk)
			mmx_forget_locked(mm, map);
	}
}

int memmgr_release_exec(struct memmgr *mm, uint64_t exec_id,
			uint64_t *freedp)
{
	struct mm_exec *ex;
	int ret;

	/* jemalloc forgets the exec id's objects first, then the kernel. */
	mmx_release(mm, exec_id);
	mm_lock(mm);
	ret = kernel_release(mm, MEMMGR_POOL_EXEC, exec_id, freedp);
	if (ret) {
		forget_chunks_locked(mm, exec_id);
		goto out_unlock;
	}
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

int64_t memmgr_release_execution_memory(struct memmgr *mm, uint64_t exec_id)
{
	uint64_t freed;
	int ret;

	ret = memmgr_release_exec(mm, exec_id, &freed);
	return ret ? ret : (int64_t)freed;
}
