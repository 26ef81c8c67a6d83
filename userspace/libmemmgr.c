// SPDX-License-Identifier: GPL-2.0
/*
 * libmemmgr: memory from memmgr's pools through ioctl() and mmap() on
 * /dev/memmgr, with small execution objects carved from chunks.
 * libmemmgr.h documents the interface; libmemmgr_int.h, the handle, its
 * tables and its mutex, and which file does what.
 *
 * This file: the handle and the kernel's side, the tables of buffers, whole
 * buffers, trimming, freeing (memmgr_free() and memmgr_free_many() for
 * both pools), statistics, features and errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libmemmgr.h"
#include "libmemmgr_int.h"

/* The figures page: one page of 4 KiB whatever the page size. */
#define FIGURES_LEN	4096
_Static_assert(sizeof(struct memmgr_figures) <= FIGURES_LEN,
	       "struct memmgr_figures must fit its page");

static struct mm_chunk *to_chunk(struct mm_map *map)
{
	return container_of(map, struct mm_chunk, map);
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

int kernel_buf(struct memmgr *mm, unsigned long cmd, uint64_t handle)
{
	struct memmgr_buf b = { .handle = handle };

	return ioctl(mm->fd, cmd, &b) ? -errno : 0;
}

int kernel_release(struct memmgr *mm, uint32_t pool, uint64_t tag,
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
int kernel_undo(struct memmgr *mm, uint64_t handle, int err)
{
	if (kernel_buf(mm, MEMMGR_IOC_FREE, handle) == -ENOENT &&
	    err == -EINVAL)
		return -ECANCELED;
	return err;
}

/* The tables. */

struct mm_exec *exec_find_locked(struct memmgr *mm, uint64_t exec_id)
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
void exec_put_locked(struct memmgr *mm, struct mm_exec *ex)
{
	if (!list_empty(&ex->maps))
		return;
	if (mm->exec_hint == ex)
		mm->exec_hint = NULL;
	htab_del(&mm->by_exec, &ex->node);
	free(ex);
}

struct mm_map *map_find_locked(struct memmgr *mm, const void *addr)
{
	struct mm_hnode *n = htab_find(&mm->by_addr, (uintptr_t)addr);

	return n ? container_of(n, struct mm_map, addr_node) : NULL;
}

struct mm_map *page_find_locked(struct memmgr *mm, uint64_t page_id)
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
uint64_t releases_now(struct memmgr *mm)
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
int map_insert_locked(struct memmgr *mm, struct mm_map *map,
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
	map->tag = a->tag;
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

/*
 * Unmap a buffer (without a window) and take it out of the tables; its exec
 * id's record and the struct itself are the caller's to put and free.
 */
void map_remove_locked(struct memmgr *mm, struct mm_map *map)
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
	if (map->mx_chunk)
		mmx_forget_locked(mm, map);
	mm->requested[map->pool] -= map->requested;
	mm->charged[map->pool] -= map->size;
	mm->buffers[map->pool]--;
}

void map_free(struct mm_map *map)
{
	if (map->chunk)
		free(to_chunk(map));
	else
		free(map);
}

/* Forget a buffer the kernel no longer has: the mapping and the record. */
void map_drop_locked(struct memmgr *mm, struct mm_map *map)
{
	struct mm_exec *ex = map->exec;

	map_remove_locked(mm, map);
	map_free(map);
	if (ex)
		exec_put_locked(mm, ex);
}

/* Free a buffer: the kernel's, the mapping and the record. */
int map_destroy_locked(struct memmgr *mm, struct mm_map *map)
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
int trim_locked(struct memmgr *mm, uint64_t keep)
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
uint64_t page_bytes(const struct memmgr *mm, size_t size)
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
int kernel_alloc_trim(struct memmgr *mm, uint32_t pool, uint64_t tag,
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
int kernel_alloc_many_trim(struct memmgr *mm, struct memmgr_alloc *ents,
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

int buffer_alloc(struct memmgr *mm, uint32_t pool, uint64_t tag,
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
	/* Without a window: pinned until mapped (libmemmgr_int.h). */
	ret = kernel_alloc_trim(mm, pool, tag, size, timeout_ms,
				mm->window ? flags & MEMMGR_ALLOC_FLAGS : 0, &a);
	if (ret)
		goto err_free_map;

	mm_lock(mm);
	ret = map_insert_locked(mm, map, &a, size, releases);
	/* A chunk of the execution allocator: its pages in the same hold. */
	if (!ret && (flags & MM_ALLOC_MX_CHUNK)) {
		ret = mmx_enter_locked(mm, map);
		if (ret)
			map_remove_locked(mm, map);
	}
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

/* The interface. */

static int open_error(int err)
{
	/* No device node, or a node without its driver. */
	if (err == ENOENT || err == ENXIO || err == ENODEV)
		return -ENODEV;
	return -err;
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

static void handle_fini(struct memmgr *mm)
{
	htab_fini(&mm->by_chunk);
	htab_fini(&mm->by_exec);
	htab_fini(&mm->by_page);
	htab_fini(&mm->by_addr);
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
	ret = mmx_init(mm);
	if (ret)
		goto err_fini;
	if (!(flags & MEMMGR_OPEN_NO_FAST))
		fast_init(mm);
	mmx_table_init(mm);
	*mmp = mm;
	return 0;

err_fini:
	handle_fini(mm);
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
	mmx_fini(mm);
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
	handle_fini(mm);
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

int64_t get_timeout(struct memmgr *mm)
{
	int64_t timeout_ms;

	mm_lock(mm);
	timeout_ms = mm->timeout_ms;
	mm_unlock(mm);
	return timeout_ms;
}

/**
 * buffer_free() - memmgr_free() of all but the execution allocator's
 * objects (libmemmgr_malloc.c has memmgr_free(), to inline its fast path)
 * @mm:		the handle
 * @ptr:	not NULL
 *
 * Return: 0 or a negative errno, as memmgr_free()'s.
 */
int buffer_free(struct memmgr *mm, void *ptr)
{
	struct mm_chunk *chunk;
	struct mm_map *map;
	int ret = -EINVAL;

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

/* Batches: MEMMGR_IOC_FREE_MANY. */

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
		if (!map || map->freeing || map->mx_chunk)
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
	uint32_t entry;
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
		/* An object of the execution allocator, without the mutex. */
		entry = mmx_owns(mm, ptrs[i]);
		if (entry) {
			mm_unlock(mm);
			ret = mmx_free(mm, entry, ptrs[i]);
			if (ret)
				goto out;
			i++;
			mm_lock(mm);
			continue;
		}
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
