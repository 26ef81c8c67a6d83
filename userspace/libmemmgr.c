// SPDX-License-Identifier: GPL-2.0
/*
 * libmemmgr: memory from memmgr's pools through ioctl() and mmap() on
 * /dev/memmgr, with small execution objects carved from one-page chunks.
 * libmemmgr.h documents the interface.
 *
 * A handle keeps three hash tables, all under its mutex:
 *  - by_addr: every mapping (struct mm_map) by its address, for free;
 *  - by_page: storage mappings by page id, for lookup, pin and release;
 *  - by_exec: one struct mm_exec per exec id that has memory, listing its
 *    mappings (for release) and, per size class, its chunks with a free
 *    slot (struct mm_chunk, for small objects).
 *
 * A request to the kernel that may wait (MEMMGR_IOC_ALLOC) runs without
 * the mutex.  mmap() and the tables are then done under it, so a release
 * of the same id either finds the new mapping in the tables or has freed
 * the buffer first, in which case mmap() fails (the kernel maps live
 * buffers only) and the allocation says -ECANCELED.  Storage buffers are
 * allocated pinned and unpinned once mapped, so an eviction cannot come
 * between the kernel's grant and mmap().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libmemmgr.h"

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* Size classes: MEMMGR_SMALL_MIN << 0 up to MEMMGR_SMALL_MIN << 7. */
#define NR_CLASSES	8
_Static_assert(MEMMGR_SMALL_MIN << (NR_CLASSES - 1) == MEMMGR_SMALL_MAX,
	       "size classes must end at MEMMGR_SMALL_MAX");

#define HTAB_MIN_SLOTS	64

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

/* The memory of one exec id. */
struct mm_exec {
	struct mm_hnode node;			/* in by_exec; key: exec id */
	struct mm_list maps;			/* its mm_maps, chunks too */
	struct mm_list partial[NR_CLASSES];	/* chunks with a free slot */
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
	uint64_t requested;		/* bytes asked for (a chunk: by its
					 * live objects)
					 */
	uint32_t pool;
	bool chunk;			/* the map of a struct mm_chunk */
};

/* A one-page buffer of small objects of one size class and exec id. */
struct mm_chunk {
	struct mm_map map;
	struct mm_list partial_link;	/* in exec->partial[] while a slot
					 * is free
					 */
	unsigned int cls;
	unsigned int nr_objs;
	unsigned int nr_free;
	uint16_t *sizes;		/* per slot: bytes asked for */
	uint64_t free_bits[];		/* per slot: set while free */
};

struct memmgr {
	int fd;
	size_t page_size;
	pthread_mutex_t lock;		/* everything below */
	int64_t timeout_ms;		/* of memmgr_acquire_*() */
	struct mm_htab by_addr;
	struct mm_htab by_page;
	struct mm_htab by_exec;
	uint64_t requested[MEMMGR_NR_POOLS];
	uint64_t charged[MEMMGR_NR_POOLS];
	uint64_t buffers[MEMMGR_NR_POOLS];
	uint64_t small_objects;
	uint64_t small_requested;
	uint64_t small_chunks;
};

static size_t class_size(unsigned int cls)
{
	return (size_t)MEMMGR_SMALL_MIN << cls;
}

/* The smallest class that holds @size bytes, 1 <= @size <= SMALL_MAX. */
static unsigned int size_class(size_t size)
{
	unsigned int cls = 0;

	while (class_size(cls) < size)
		cls++;
	return cls;
}

static struct mm_chunk *to_chunk(struct mm_map *map)
{
	return container_of(map, struct mm_chunk, map);
}

/* The kernel's side: each returns 0 or a negative errno. */

static int kernel_alloc(struct memmgr *mm, uint32_t pool, uint64_t tag,
			size_t size, int64_t timeout_ms,
			struct memmgr_alloc *a)
{
	*a = (struct memmgr_alloc){
		.pool = pool, .size = size, .tag = tag,
		.timeout_ms = timeout_ms,
	};
	return ioctl(mm->fd, MEMMGR_IOC_ALLOC, a) ? -errno : 0;
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
	if (freedp)
		*freedp = r.freed;
	return 0;
}

/*
 * Give back a buffer that could not be mapped, and say why.  mmap() fails
 * with EINVAL when the buffer is gone: released by its id meanwhile.
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
	for (cls = 0; cls < NR_CLASSES; cls++)
		list_init(&ex->partial[cls]);
	htab_add(&mm->by_exec, &ex->node, exec_id);
	return ex;
}

/* Forget an exec id that has no memory left. */
static void exec_put_locked(struct memmgr *mm, struct mm_exec *ex)
{
	if (!list_empty(&ex->maps))
		return;
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

/*
 * Map a buffer the kernel granted (@a) and enter it in the tables, with
 * @requested bytes asked for.  On failure @map is untouched and the buffer
 * is still the kernel's: see kernel_undo().
 */
static int map_insert_locked(struct memmgr *mm, struct mm_map *map,
			     const struct memmgr_alloc *a, uint64_t requested)
{
	struct mm_exec *ex = NULL;
	void *addr;
	int ret;

	if (a->pool == MEMMGR_POOL_EXEC) {
		ex = exec_get_locked(mm, a->tag);
		if (!ex)
			return -ENOMEM;
	}
	addr = mmap(NULL, a->granted, PROT_READ | PROT_WRITE, MAP_SHARED,
		    mm->fd, a->offset);
	if (addr == MAP_FAILED) {
		ret = -errno;
		goto err_put_exec;
	}
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

err_put_exec:
	if (ex)
		exec_put_locked(mm, ex);
	return ret;
}

/*
 * Unmap a buffer and take it out of the tables; its exec id's record and
 * the struct itself are the caller's to put and free.
 */
static void map_remove_locked(struct memmgr *mm, struct mm_map *map)
{
	/* Unmapping the whole of a mapping never fails. */
	munmap(map->addr, map->size);
	htab_del(&mm->by_addr, &map->addr_node);
	if (map->exec)
		list_del(&map->exec_link);
	else
		htab_del(&mm->by_page, &map->page_node);
	if (map->chunk) {
		struct mm_chunk *chunk = to_chunk(map);

		if (chunk->nr_free)
			list_del(&chunk->partial_link);
		mm->small_objects -= chunk->nr_objs - chunk->nr_free;
		mm->small_requested -= map->requested;
		mm->small_chunks--;
	}
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

/* Free a buffer: the kernel's, the mapping and the record. */
static int map_destroy_locked(struct memmgr *mm, struct mm_map *map)
{
	struct mm_exec *ex = map->exec;
	int ret;

	ret = kernel_buf(mm, MEMMGR_IOC_FREE, map->handle);
	/* ENOENT: the kernel has nothing left to give back. */
	if (ret && ret != -ENOENT)
		return ret;
	map_remove_locked(mm, map);
	map_free(map);
	if (ex)
		exec_put_locked(mm, ex);
	return 0;
}

/* Whole buffers: storage, and execution above MEMMGR_SMALL_MAX. */

static int buffer_alloc(struct memmgr *mm, uint32_t pool, uint64_t tag,
			size_t size, int64_t timeout_ms, unsigned int flags,
			void **ptrp)
{
	struct memmgr_alloc a;
	struct mm_map *map;
	int ret;

	map = calloc(1, sizeof(*map));
	if (!map)
		return -ENOMEM;
	ret = kernel_alloc(mm, pool, tag, size, timeout_ms, &a);
	if (ret)
		goto err_free_map;

	pthread_mutex_lock(&mm->lock);
	ret = map_insert_locked(mm, map, &a, size);
	if (!ret && (flags & MEMMGR_ALLOC_UNPINNED)) {
		ret = kernel_buf(mm, MEMMGR_IOC_UNPIN, a.handle);
		if (ret)
			map_remove_locked(mm, map);
	}
	pthread_mutex_unlock(&mm->lock);
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

static struct mm_chunk *chunk_new(struct memmgr *mm, unsigned int cls)
{
	unsigned int nr_objs = mm->page_size / class_size(cls);
	size_t words = (nr_objs + 63) / 64;
	struct mm_chunk *chunk;
	unsigned int i;

	chunk = calloc(1, sizeof(*chunk) + words * sizeof(uint64_t) +
			  nr_objs * sizeof(uint16_t));
	if (!chunk)
		return NULL;
	chunk->map.chunk = true;
	chunk->cls = cls;
	chunk->nr_objs = nr_objs;
	chunk->nr_free = nr_objs;
	chunk->sizes = (uint16_t *)&chunk->free_bits[words];
	for (i = 0; i < nr_objs; i++)
		chunk->free_bits[i / 64] |= 1ULL << (i % 64);
	return chunk;
}

/* Take a free slot of @chunk for @size bytes. */
static void *chunk_take_locked(struct memmgr *mm, struct mm_chunk *chunk,
			       size_t size)
{
	unsigned int w = 0, i;

	while (!chunk->free_bits[w])
		w++;
	i = w * 64 + __builtin_ctzll(chunk->free_bits[w]);
	chunk->free_bits[w] &= ~(1ULL << (i % 64));
	chunk->sizes[i] = size;
	if (!--chunk->nr_free)
		list_del(&chunk->partial_link);
	chunk->map.requested += size;
	mm->requested[MEMMGR_POOL_EXEC] += size;
	mm->small_requested += size;
	mm->small_objects++;
	return (char *)chunk->map.addr + i * class_size(chunk->cls);
}

/* A small object from a chunk the exec id has, or NULL. */
static void *small_take_locked(struct memmgr *mm, uint64_t exec_id,
			       unsigned int cls, size_t size)
{
	struct mm_exec *ex = exec_find_locked(mm, exec_id);
	struct mm_list *first;

	if (!ex || list_empty(&ex->partial[cls]))
		return NULL;
	first = ex->partial[cls].next;
	return chunk_take_locked(mm, container_of(first, struct mm_chunk,
						  partial_link), size);
}

static int small_alloc(struct memmgr *mm, uint64_t exec_id, size_t size,
		       int64_t timeout_ms, void **ptrp)
{
	unsigned int cls = size_class(size);
	struct mm_chunk *chunk;
	struct memmgr_alloc a;
	void *ptr;
	int ret;

	pthread_mutex_lock(&mm->lock);
	ptr = small_take_locked(mm, exec_id, cls, size);
	pthread_mutex_unlock(&mm->lock);
	if (ptr)
		goto out;

	chunk = chunk_new(mm, cls);
	if (!chunk)
		return -ENOMEM;
	ret = kernel_alloc(mm, MEMMGR_POOL_EXEC, exec_id, mm->page_size,
			   timeout_ms, &a);
	if (ret)
		goto err_free_chunk;

	pthread_mutex_lock(&mm->lock);
	ret = map_insert_locked(mm, &chunk->map, &a, 0);
	if (!ret) {
		list_add(&chunk->partial_link,
			 &chunk->map.exec->partial[cls]);
		mm->small_chunks++;
		ptr = chunk_take_locked(mm, chunk, size);
	}
	pthread_mutex_unlock(&mm->lock);
	if (ret)
		goto err_free_buffer;
out:
	*ptrp = ptr;
	return 0;

err_free_buffer:
	ret = kernel_undo(mm, a.handle, ret);
err_free_chunk:
	free(chunk);
	return ret;
}

/* Free the small object at @ptr, in @chunk's page. */
static int small_free_locked(struct memmgr *mm, struct mm_chunk *chunk,
			     void *ptr)
{
	size_t csize = class_size(chunk->cls);
	size_t off = (char *)ptr - (char *)chunk->map.addr;
	size_t i = off / csize;
	uint64_t bit = 1ULL << (i % 64);

	if (off % csize || i >= chunk->nr_objs ||
	    (chunk->free_bits[i / 64] & bit))
		return -EINVAL;
	/* Handed out zeroed: the kernel zeroed the page, we zero reuse. */
	memset(ptr, 0, csize);
	chunk->free_bits[i / 64] |= bit;
	chunk->map.requested -= chunk->sizes[i];
	mm->requested[MEMMGR_POOL_EXEC] -= chunk->sizes[i];
	mm->small_requested -= chunk->sizes[i];
	mm->small_objects--;
	chunk->sizes[i] = 0;
	if (!chunk->nr_free++)
		list_add(&chunk->partial_link,
			 &chunk->map.exec->partial[chunk->cls]);
	if (chunk->nr_free < chunk->nr_objs)
		return 0;
	/* The last object: the chunk goes back, or stays if it cannot. */
	map_destroy_locked(mm, &chunk->map);
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

static int handle_init(struct memmgr *mm)
{
	struct memmgr_stats st;
	int ret;

	if (ioctl(mm->fd, MEMMGR_IOC_STATS, &st))
		return -errno;
	/* Pointers are rounded to pages: the kernel's must be the CPU's. */
	if (st.page_size != (uint32_t)sysconf(_SC_PAGESIZE) ||
	    st.page_size < 2 * MEMMGR_SMALL_MAX)
		return -EPROTO;
	mm->page_size = st.page_size;
	ret = htab_init(&mm->by_addr);
	if (ret)
		return ret;
	ret = htab_init(&mm->by_page);
	if (ret)
		goto err_fini_addr;
	ret = htab_init(&mm->by_exec);
	if (ret)
		goto err_fini_page;
	ret = -pthread_mutex_init(&mm->lock, NULL);
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

int memmgr_open(struct memmgr **mmp, unsigned int flags)
{
	int oflags = O_RDWR | O_CLOEXEC;
	struct memmgr *mm;
	int ret;

	if (flags & ~MEMMGR_OPEN_NONBLOCK)
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
	pthread_mutex_lock(&mm->lock);
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
	pthread_mutex_unlock(&mm->lock);
	close(mm->fd);
	pthread_mutex_destroy(&mm->lock);
	htab_fini(&mm->by_exec);
	htab_fini(&mm->by_page);
	htab_fini(&mm->by_addr);
	free(mm);
}

int memmgr_set_timeout(struct memmgr *mm, int64_t timeout_ms)
{
	if (timeout_ms < MEMMGR_WAIT_FOREVER)
		return -EINVAL;
	pthread_mutex_lock(&mm->lock);
	mm->timeout_ms = timeout_ms;
	pthread_mutex_unlock(&mm->lock);
	return 0;
}

static int64_t get_timeout(struct memmgr *mm)
{
	int64_t timeout_ms;

	pthread_mutex_lock(&mm->lock);
	timeout_ms = mm->timeout_ms;
	pthread_mutex_unlock(&mm->lock);
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
	struct mm_map *map;
	int ret = -EINVAL;

	if (!ptr)
		return 0;
	pthread_mutex_lock(&mm->lock);
	map = map_find_locked(mm, ptr);
	if (map && !map->chunk) {
		ret = map_destroy_locked(mm, map);
		goto out_unlock;
	}
	/* A small object: its chunk is the page it lies in. */
	if (!map)
		map = map_find_locked(mm, (void *)((uintptr_t)ptr &
						   ~(uintptr_t)(mm->page_size - 1)));
	if (map && map->chunk)
		ret = small_free_locked(mm, to_chunk(map), ptr);
out_unlock:
	pthread_mutex_unlock(&mm->lock);
	return ret;
}

static int pin_ioctl(struct memmgr *mm, unsigned long cmd, uint64_t page_id)
{
	struct mm_map *map;
	int ret = -ENOENT;

	pthread_mutex_lock(&mm->lock);
	map = page_find_locked(mm, page_id);
	if (map)
		ret = kernel_buf(mm, cmd, map->handle);
	pthread_mutex_unlock(&mm->lock);
	return ret;
}

int memmgr_pin(struct memmgr *mm, uint64_t page_id)
{
	return pin_ioctl(mm, MEMMGR_IOC_PIN, page_id);
}

int memmgr_unpin(struct memmgr *mm, uint64_t page_id)
{
	return pin_ioctl(mm, MEMMGR_IOC_UNPIN, page_id);
}

int memmgr_lookup_page(struct memmgr *mm, uint64_t page_id, void **ptrp,
		       size_t *sizep)
{
	struct memmgr_lookup l = { .tag = page_id };
	struct mm_map *map;
	int ret = -ENOENT;

	pthread_mutex_lock(&mm->lock);
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
	pthread_mutex_unlock(&mm->lock);
	return ret;
}

int memmgr_release_exec(struct memmgr *mm, uint64_t exec_id,
			uint64_t *freedp)
{
	struct mm_exec *ex;
	int ret;

	pthread_mutex_lock(&mm->lock);
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
	pthread_mutex_unlock(&mm->lock);
	return ret;
}

int memmgr_release_page(struct memmgr *mm, uint64_t page_id,
			uint64_t *freedp)
{
	struct mm_map *map;
	int ret;

	pthread_mutex_lock(&mm->lock);
	ret = kernel_release(mm, MEMMGR_POOL_STORAGE, page_id, freedp);
	if (ret)
		goto out_unlock;
	map = page_find_locked(mm, page_id);
	if (map) {
		map_remove_locked(mm, map);
		map_free(map);
	}
out_unlock:
	pthread_mutex_unlock(&mm->lock);
	return ret;
}

int memmgr_get_stats(struct memmgr *mm, struct memmgr_lib_stats *st)
{
	int ret = 0;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&mm->lock);
	if (ioctl(mm->fd, MEMMGR_IOC_STATS, &st->kernel)) {
		ret = -errno;
		goto out_unlock;
	}
	memcpy(st->requested, mm->requested, sizeof(st->requested));
	memcpy(st->charged, mm->charged, sizeof(st->charged));
	memcpy(st->buffers, mm->buffers, sizeof(st->buffers));
	st->small_objects = mm->small_objects;
	st->small_requested = mm->small_requested;
	st->small_chunks = mm->small_chunks;
	st->small_charged = mm->small_chunks * mm->page_size;
out_unlock:
	pthread_mutex_unlock(&mm->lock);
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
		return "memmgr ran out of mmap offsets";
	case EOVERFLOW:
		return "Too many pins on one storage buffer";
	case EPROTO:
		return "memmgr and this library disagree on the page size";
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
