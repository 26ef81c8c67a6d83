// SPDX-License-Identifier: GPL-2.0
/*
 * libmemmgr's storage buffers: allocation, one by one and in batches
 * (MEMMGR_IOC_ALLOC_MANY), pins, page ids and handles, release and
 * eviction notices.  libmemmgr_int.h describes the handle and its tables.
 *
 * Pins are the kernel's state words (libmemmgr.h has the inline half), or
 * ioctls without a state area.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "libmemmgr.h"
#include "libmemmgr_int.h"

int memmgr_alloc_storage(struct memmgr *mm, uint64_t page_id, size_t size,
			 int64_t timeout_ms, unsigned int flags, void **ptrp)
{
	if (!size || timeout_ms < MEMMGR_WAIT_FOREVER || !ptrp ||
	    (flags & ~MEMMGR_ALLOC_FLAGS))
		return -EINVAL;
	return buffer_alloc(mm, MEMMGR_POOL_STORAGE, page_id, size,
			    timeout_ms, flags, ptrp);
}

/* Batches: MEMMGR_IOC_ALLOC_MANY. */

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
		/* Without a window: pinned until mapped (libmemmgr_int.h). */
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

int64_t memmgr_release_storage_memory(struct memmgr *mm, uint64_t page_id)
{
	uint64_t freed;
	int ret;

	ret = memmgr_release_page(mm, page_id, &freed);
	return ret ? ret : (int64_t)freed;
}
