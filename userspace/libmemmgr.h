/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libmemmgr: memory from memmgr's storage and execution pools, ready to use.
 *
 * A handle (struct memmgr) is one open file of /dev/memmgr.  The library
 * asks the kernel for memory (MEMMGR_IOC_ALLOC) and hands back a pointer;
 * it keeps every pointer in a hash table, so freeing by pointer and
 * looking up by page id are O(1).  Memory stays allocated until it is freed
 * or released, or its handle is closed: memmgr_close() unmaps everything
 * and closes the file, and the kernel frees what is left.
 *
 * Mappings: memmgr_open() maps the open file's window (MEMMGR_WINDOW_OFFSET:
 * every buffer of the file at once, each at its own offset), its state area
 * (MEMMGR_STATE_OFFSET: one word per storage buffer, for pins without a
 * system call) and the device's figures (MEMMGR_FIGURES_OFFSET), before
 * any allocation.  Every buffer, storage or execution, is then at window +
 * its offset: no mmap() or munmap() per buffer, and no limit of
 * vm.max_map_count on how many a handle holds.  This takes 4 TiB of the
 * process's address space (and 8 GiB for the state area, with 4 KiB
 * pages) per handle, nothing of its memory; a handle for which this cannot
 * be had, on a module older than these mappings (mmap() fails), in a
 * 32-bit process, or opened with MEMMGR_OPEN_NO_FAST, maps each buffer on
 * its own and pins with MEMMGR_IOC_PIN/UNPIN instead, as before; the
 * interface is the same (memmgr_features() tells which).
 *
 * Storage memory is tagged with a page id, unique within a handle: one
 * buffer per page id.  It starts pinned (not evictable) unless allocated
 * with MEMMGR_ALLOC_UNPINNED.  When the kernel evicts an unpinned buffer,
 * its mapping is revoked: an access gets SIGBUS, memmgr_lookup_page() says
 * -ESTALE, and the entry stays until it is freed or released.
 *
 * Execution memory is tagged with an exec id; any number of allocations may
 * share one.  Requests of at most MEMMGR_SMALL_MAX bytes are small objects:
 * the library rounds them up to a size class (16, 32, 64, ..., 4096 bytes,
 * the powers of two) and carves them out of chunks, each chunk belonging to
 * one exec id and one class.  A chunk is a power of two of bytes, the
 * larger of a page and 16 objects: with 4 KiB pages, one page for the
 * classes of 16 to 256 bytes, 8 KiB for 512, 16 KiB for 1024, 32 KiB for
 * 2048 and 64 KiB for 4096 bytes.  An object is aligned to its class.
 *
 * Retention: a chunk whose last object is freed is not given back to the
 * kernel at once but kept, empty, for the next small objects of its exec id
 * and class, as long as the handle's empty chunks (its retained bytes) stay
 * within a cap: MEMMGR_RETAIN_DEFAULT bytes, set with memmgr_set_retain();
 * beyond it, the chunk goes back at once, and with a cap of 0 every chunk
 * goes back as soon as it is empty.  Retained chunks go back when their
 * exec id is released, on memmgr_trim(), when the cap is lowered below
 * them, at memmgr_close(), and when this handle's memory runs short: before
 * a request to the kernel that may wait (a timeout other than 0) and would
 * not be granted at once by the kernel's figures of the moment, and after
 * one the kernel declined at once (timeout 0), which is then made again,
 * once.  Only this handle's own retained chunks are given back so; another
 * handle's are not.  The kernel charges every chunk held, retained ones
 * included: memmgr_get_stats() reports what was asked for, what the kernel
 * charged and how much of that is retained.
 *
 * Memory always reads as zeros when it is handed out, small objects
 * included (a small object's whole class size).
 *
 * Errors: every function returning an integer returns 0 (or a count of
 * bytes) on success and a negative errno value on failure;
 * memmgr_strerror() describes it.
 * The functions named after the original design (memmgr_acquire_*) return
 * a pointer, or NULL with errno set (to a positive value), as malloc() does.
 *
 * Thread safety: every function may be called from any number of threads
 * at once on one handle, except memmgr_close(), which must be the last call
 * on its handle (no other call in flight or after).  A mutex per handle
 * protects the library's tables; it is never held while a request waits
 * for memory, so a thread may free memory that another thread's request on
 * the same handle is waiting for.  Pins by handle take no lock at all.  A
 * pointer must not be freed by one thread while another uses it.
 * Releasing an id while another thread allocates with the same id releases
 * that allocation or not; if it does, the allocation fails with
 * -ECANCELED.  After fork(), only the parent may use its handles: the
 * child shares their open file and window, but not the state area (the
 * kernel does not copy it: a pin in the child faults), and the child's
 * copy of the tables would go stale.  Memory must be freed through the
 * library: a buffer freed behind its back (MEMMGR_IOC_FREE on memmgr_fd())
 * stays in its tables until freed again or its address is handed out
 * again.
 *
 * Memory ordering of storage buffers: a successful pin (memmgr_pin(),
 * memmgr_pin_handle()) is an acquire and an unpin (memmgr_unpin(),
 * memmgr_unpin_handle()) a release, on the buffer's state word (the
 * ioctls that stand in for them are full barriers).  So what a thread
 * wrote to a buffer before it unpinned it is what any thread reads after
 * a later pin of it, and from a pin until the matching unpin the kernel
 * cannot evict the buffer: its memory stays where the pointer is, with
 * its contents.  An allocation without MEMMGR_ALLOC_UNPINNED counts as the
 * first pin.  A pin is not a lock: two threads holding pins may both
 * write, and order their writes themselves.  Memory accessed without a
 * pin may be evicted at any time (an access then gets SIGBUS).
 *
 * Stale pointers and handles: the window shows, at each offset, the buffer
 * that holds it now.  A freed or released buffer's pointer gets SIGBUS
 * until the kernel gives its range to a new buffer of the handle (the
 * lowest free range that fits: often at the next allocation of its size),
 * and from then on reads and writes the new buffer's memory, as a pointer
 * into memory that malloc() reused would: never use a pointer after
 * freeing it.  An evicted buffer keeps its range until it is freed: its
 * pointer gets SIGBUS.  (Without the window, a freed buffer's pointer is
 * unmapped: SIGSEGV, or whatever is mapped there later.)  A handle is never
 * given again to the handle's next 2^32 allocations, so a pin by a stale
 * handle fails (-ENOENT, or -ESTALE while its evicted buffer is not freed
 * yet) and never pins the buffer that took its range.
 *
 * Sizes of memory are size_t; figures from the kernel are uint64_t bytes.
 */
#ifndef LIBMEMMGR_H
#define LIBMEMMGR_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/memmgr.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The device a handle opens. */
#define MEMMGR_DEVICE		"/dev/memmgr"

/* memmgr_open() flags: open the device O_NONBLOCK; requests never wait. */
#define MEMMGR_OPEN_NONBLOCK	(1U << 0)
/*
 * Do without the window, the state area, the figures page and the batched
 * calls, as with a module that has none of them: each buffer mapped on its
 * own, pins by ioctl, figures by MEMMGR_IOC_STATS, a batch as single calls.
 */
#define MEMMGR_OPEN_NO_FAST	(1U << 1)

/* memmgr_features(): what a handle got from the kernel at memmgr_open(). */
#define MEMMGR_FEATURE_WINDOW	(1U << 0)	/* buffers in one window */
#define MEMMGR_FEATURE_STATE	(1U << 1)	/* pins without system calls */
#define MEMMGR_FEATURE_FIGURES	(1U << 2)	/* figures without them */
#define MEMMGR_FEATURE_BATCH	(1U << 3)	/* one call per batch */

/*
 * Small objects: execution requests of 1 to MEMMGR_SMALL_MAX bytes are
 * carved from chunks, in power-of-two size classes from MEMMGR_SMALL_MIN to
 * MEMMGR_SMALL_MAX bytes.
 */
#define MEMMGR_SMALL_MIN	16
#define MEMMGR_SMALL_MAX	4096

/* Bytes of empty chunks a handle keeps by default (memmgr_set_retain()). */
#define MEMMGR_RETAIN_DEFAULT	(4ULL << 20)

struct memmgr;

/**
 * struct memmgr_fast - the start of every struct memmgr, for the inline
 * functions below; not for direct use (its layout may change with the
 * library's soname)
 * @state:	the handle's state area, or NULL (pins by ioctl)
 * @nr_words:	words of @state that may be read: one past the highest
 *		storage buffer's word (the kernel backs the state area up
 *		to the highest word a buffer needed; beyond it, SIGBUS)
 */
struct memmgr_fast {
	uint64_t *state;
	uint64_t nr_words;
};

/**
 * struct memmgr_lib_stats - the kernel's figures and the library's own
 * @kernel:		MEMMGR_IOC_STATS from this handle's open file: the
 *			whole device, and this file's use in client_used[]
 * @requested:		per pool (MEMMGR_POOL_*): bytes asked for by the
 *			live allocations of this handle, small objects
 *			included (each by the bytes asked for, not its class);
 *			the execution allocator's chunks count whole (its
 *			objects are not counted one by one)
 * @charged:		per pool: bytes the kernel charges for this handle's
 *			buffers, whole pages and whole chunks, retained
 *			chunks included (evicted storage buffers count until
 *			freed; @kernel.client_used does not)
 * @buffers:		per pool: kernel allocations held, chunks included
 *			(retained ones too, and the execution allocator's)
 * @small_objects:	live small objects
 * @small_requested:	bytes asked for by the live small objects
 * @small_chunks:	chunks held for small objects, retained ones
 *			included
 * @small_charged:	bytes of those chunks (the kernel charges them all)
 * @small_retained:	bytes of the empty chunks kept for reuse, a part of
 *			@small_charged, at most the cap of memmgr_set_retain()
 */
struct memmgr_lib_stats {
	struct memmgr_stats kernel;
	uint64_t requested[MEMMGR_NR_POOLS];
	uint64_t charged[MEMMGR_NR_POOLS];
	uint64_t buffers[MEMMGR_NR_POOLS];
	uint64_t small_objects;
	uint64_t small_requested;
	uint64_t small_chunks;
	uint64_t small_charged;
	uint64_t small_retained;
};

/**
 * memmgr_open() - open a handle on /dev/memmgr
 * @mmp:	set to the new handle on success
 * @flags:	0, or MEMMGR_OPEN_NONBLOCK and MEMMGR_OPEN_NO_FAST ORed
 *
 * Maps the window, the state area and the figures page when the module
 * has them (see the top of this file); if one of them cannot be had, the
 * handle does without, silently.
 *
 * Context: thread-safe; handles are independent of each other.
 *
 * Return: 0; -EINVAL for an unknown flag; -ENODEV when memmgr is not
 * loaded (/dev/memmgr is missing or has no driver); -EACCES or -EPERM when
 * the caller may not open it (it is root-only); -ENOMEM; or another errno
 * of open(2).
 */
int memmgr_open(struct memmgr **mmp, unsigned int flags);

/**
 * memmgr_features() - what the handle got at memmgr_open()
 * @mm:	the handle
 *
 * Return: MEMMGR_FEATURE_* bits: all of them with a module that has issue
 * 12's interface (WINDOW and STATE come together), none with
 * MEMMGR_OPEN_NO_FAST or an older module.
 */
unsigned int memmgr_features(struct memmgr *mm);

/**
 * memmgr_close() - unmap everything and close the handle
 * @mm:	the handle, or NULL (nothing happens)
 *
 * Every pointer of the handle becomes invalid and the kernel frees all its
 * memory, retained chunks included.
 *
 * Context: not thread-safe: this must be the last call on @mm, with no
 * other call in flight.
 */
void memmgr_close(struct memmgr *mm);

/**
 * memmgr_set_timeout() - the timeout of the memmgr_acquire_*() functions
 * @mm:		the handle
 * @timeout_ms:	0 (decline at once, the default), a positive number of
 *		milliseconds, or MEMMGR_WAIT_FOREVER
 *
 * Context: thread-safe.
 *
 * Return: 0 or -EINVAL (below MEMMGR_WAIT_FOREVER).
 */
int memmgr_set_timeout(struct memmgr *mm, int64_t timeout_ms);

/**
 * memmgr_alloc_storage() - storage memory for a page id, mapped
 * @mm:		the handle
 * @page_id:	the page id; the handle must not hold it already
 * @size:	bytes, > 0; the kernel charges whole pages
 * @timeout_ms:	0, milliseconds or MEMMGR_WAIT_FOREVER: how long the request
 *		may wait for memory (never on a MEMMGR_OPEN_NONBLOCK handle)
 * @flags:	0 (pinned) or MEMMGR_ALLOC_UNPINNED (evictable at once)
 * @ptrp:	set to the memory, zeroed and page-aligned, on success
 *
 * Context: thread-safe; may sleep while the request waits, without
 * holding the handle's mutex.
 *
 * Return: 0; -EINVAL (size 0, unknown flag, timeout below -1); -EEXIST
 * (the handle holds @page_id, live or evicted); -EAGAIN (no memory now, or
 * the handle is non-blocking); -ETIMEDOUT; -EINTR (a signal ended the
 * wait); -E2BIG (more than the storage quota); -ECANCELED (@page_id was
 * released meanwhile); -ENOMEM (the process is out of memory or mappings);
 * -ENOSPC.
 */
int memmgr_alloc_storage(struct memmgr *mm, uint64_t page_id, size_t size,
			 int64_t timeout_ms, unsigned int flags, void **ptrp);

/**
 * memmgr_alloc_storage_many() - storage memory for @n page ids, in batches
 * @mm:		the handle
 * @n:		entries; 0 does nothing
 * @page_ids:	per entry: its page id, as memmgr_alloc_storage()'s
 * @sizes:	per entry: bytes, > 0
 * @timeout_ms:	per entry, as memmgr_alloc_storage()'s: each entry may
 *		wait this long for its memory
 * @flags:	for every entry: 0 (pinned) or MEMMGR_ALLOC_UNPINNED
 * @ptrs:	out, per entry done: its memory, zeroed and page-aligned
 * @handles:	out, per entry done, unless NULL: its handle (see
 *		memmgr_handle())
 * @done:	out, unless NULL: the entries done, the first ones
 *
 * memmgr_alloc_storage() for each entry in order, with one system call per
 * MEMMGR_BATCH_MAX entries (MEMMGR_IOC_ALLOC_MANY; single calls on an
 * older module).  It stops at the first entry that fails: the entries
 * before it are allocated (their @ptrs and @handles set), it and those
 * after are not, and their @ptrs and @handles are left as they were.  The
 * kernel makes no partial batch either: but if the library itself fails
 * an entry the kernel granted (-ECANCELED, -ENOMEM), the kernel gives the
 * ones after it back at once (its counters show them, and evictions made
 * for them stay made).
 *
 * Context: thread-safe; may sleep while an entry waits, without holding
 * the handle's mutex.
 *
 * Return: 0 when all @n were allocated (*@done is @n), else the error of
 * entry *@done, as memmgr_alloc_storage() would return it; -EINVAL with
 * nothing done for an unknown flag, a timeout below -1 or a NULL array.
 */
int memmgr_alloc_storage_many(struct memmgr *mm, size_t n,
			      const uint64_t *page_ids, const size_t *sizes,
			      int64_t timeout_ms, unsigned int flags,
			      void **ptrs, uint64_t *handles, size_t *done);

/**
 * memmgr_alloc_exec() - execution memory for an exec id, mapped
 * @mm:		the handle
 * @exec_id:	the exec id; any number of allocations may share it
 * @size:	bytes, > 0; up to MEMMGR_SMALL_MAX bytes make a small object
 *		aligned to its size class, else whole pages, page-aligned
 * @timeout_ms:	as for memmgr_alloc_storage(); a small object that fits in
 *		a chunk the exec id has (a retained one too) never waits
 * @ptrp:	set to the memory, zeroed, on success
 *
 * A request to the kernel (a new chunk, or whole pages) gives the handle's
 * retained chunks back first if it may wait, or after a decline if it may
 * not (then it is made again once).
 *
 * Context: thread-safe; may sleep while the request waits, without
 * holding the handle's mutex.
 *
 * Return: 0; -EINVAL (size 0, timeout below -1); -EAGAIN; -ETIMEDOUT;
 * -EINTR; -E2BIG (more than the whole reserve); -ECANCELED (@exec_id was
 * released meanwhile); -ENOMEM; -ENOSPC.
 */
int memmgr_alloc_exec(struct memmgr *mm, uint64_t exec_id, size_t size,
		      int64_t timeout_ms, void **ptrp);

/*
 * The execution allocator: memmgr_malloc(), memmgr_calloc(),
 * memmgr_realloc(), memmgr_usable_size() and memmgr_free(), malloc()'s
 * contract on execution memory.  Objects of every size (1 byte to
 * MEMMGR_MALLOC_MAX and beyond, as far as the pool goes) come from chunks
 * of execution memory charged to their exec id: a private copy of jemalloc
 * (one arena per exec id) carves them, and asks the kernel for a chunk
 * (one buffer of MEMMGR_CHUNK_MIN bytes at first, then larger ones up to
 * 4 times that, or the object's size if larger) only when the exec id's
 * chunks are full (under pressure, when the kernel declines a chunk, it
 * asks at once for just the pages the object needs, without waiting).
 * Each thread keeps a cache per exec id (of the four it used last) of
 * freed objects up to 1 MiB (at most 16 KiB, or two objects, of each size
 * class up to 32 KiB; above, two of a class and 1 MiB in all), and
 * jemalloc's cache behind it.  So an object costs no
 * system call, and two threads share no lock on the fast path.
 *
 * Objects are aligned as malloc() aligns them (16 bytes; 8 for objects of
 * at most 8 bytes; 64 from MEMMGR_LARGE_MIN bytes up: such an object has
 * pages of its own and starts at a varying offset into its first, as
 * jemalloc places them against cache conflicts) and not zeroed, except
 * by memmgr_calloc(): memory fresh from the kernel reads as zeros, reused
 * memory holds what it held.
 *
 * Retention: a freed object's memory is kept for the next objects of its
 * exec id; its chunks go back to the kernel when the exec id is released
 * (memmgr_release_exec(): every object of the exec id at once, in one
 * system call) and at memmgr_close().  What an exec id holds is bounded by
 * its peak use, plus what the threads that use it cache, plus the unused
 * end of its last chunk.  A thread's caches go back to their exec ids when
 * the thread exits, or when it uses a fifth exec id (the cache of the one
 * it used least recently).
 *
 * A chunk request waits up to the handle's timeout (memmgr_set_timeout()),
 * 0 by default: declined at once; meanwhile the exec id's other threads
 * that need a chunk wait too (jemalloc grows an arena under a lock).  A
 * decline or a timeout is NULL with errno ENOMEM, and nothing is charged.
 *
 * Releasing an exec id while another thread allocates or frees objects of
 * the same exec id is a use after free, as free() of an object in use is;
 * other exec ids are unaffected.  An object's pointer is passed to
 * memmgr_free() and memmgr_realloc() as returned (not a pointer inside
 * it), once, as to free().
 */

/* jemalloc's first chunk of an exec id; later ones grow to 4 times this. */
#define MEMMGR_CHUNK_MIN	(2ULL << 20)

/* Objects of at least this many bytes have pages of their own. */
#define MEMMGR_LARGE_MIN	16384

/* The largest size the tests and the benchmark cover; larger works too. */
#define MEMMGR_MALLOC_MAX	(8ULL << 20)

/**
 * memmgr_malloc() - an object of execution memory, as malloc() gives one
 * @mm:		the handle
 * @exec_id:	the exec id whose memory it is
 * @size:	bytes; 0 gives a unique object that memmgr_free() takes
 *
 * Context: thread-safe; may sleep while a chunk request waits.
 *
 * Return: the object, not zeroed; or NULL with errno ENOMEM (the kernel
 * declined a chunk, the timeout passed, or @size is too large).
 */
void *memmgr_malloc(struct memmgr *mm, uint64_t exec_id, size_t size);

/**
 * memmgr_calloc() - memmgr_malloc() of @n times @size bytes, zeroed
 * @mm:		the handle
 * @exec_id:	the exec id whose memory it is
 * @n:		elements
 * @size:	bytes per element
 *
 * Context: thread-safe; may sleep while a chunk request waits.
 *
 * Return: the object, zeroed; or NULL with errno ENOMEM (also when
 * @n * @size overflows).
 */
void *memmgr_calloc(struct memmgr *mm, uint64_t exec_id, size_t n,
		    size_t size);

/**
 * memmgr_realloc() - grow or shrink an object, in place when it can
 * @mm:		the handle
 * @exec_id:	the exec id of a new object when @ptr is NULL; otherwise
 *		ignored (an object stays with its exec id)
 * @ptr:	an object of memmgr_malloc(), memmgr_calloc() or
 *		memmgr_realloc(), or NULL (then as memmgr_malloc())
 * @size:	bytes; 0 frees @ptr and returns NULL (errno unchanged)
 *
 * The first min(old size, @size) bytes are kept; bytes beyond them are
 * not zeroed.  On failure @ptr is untouched.
 *
 * Context: thread-safe; may sleep while a chunk request waits.
 *
 * Return: the object (@ptr or a new one); or NULL with errno ENOMEM (as
 * memmgr_malloc()), or EINVAL when @ptr is not an object of this
 * allocator (memmgr_alloc_exec()'s and storage buffers are not).
 */
void *memmgr_realloc(struct memmgr *mm, uint64_t exec_id, void *ptr,
		     size_t size);

/**
 * memmgr_usable_size() - the bytes an object may use
 * @mm:		the handle
 * @ptr:	an object of memmgr_malloc(), memmgr_calloc() or
 *		memmgr_realloc()
 *
 * Context: thread-safe.
 *
 * Return: at least the size asked for (its size class); 0 for NULL and
 * for a pointer that is not an object of this allocator.
 */
size_t memmgr_usable_size(struct memmgr *mm, const void *ptr);

/**
 * memmgr_free() - free memory of either pool by its pointer
 * @mm:		the handle
 * @ptr:	a pointer an allocation of @mm returned, or NULL (nothing
 *		happens); an evicted storage buffer may be freed too
 *
 * Freeing the last small object of a chunk keeps the chunk for reuse if
 * the handle's retained bytes stay within its cap (memmgr_set_retain()),
 * else gives it back to the kernel.  An object of memmgr_malloc() goes to
 * its exec id's cache in the calling thread (see the execution allocator
 * above).
 *
 * Context: thread-safe.
 *
 * Return: 0, or -EINVAL when @ptr is not a live allocation of @mm (never
 * allocated, freed already, released, or inside an allocation).  For the
 * objects of memmgr_malloc() these are not detected, as free() does not
 * detect them: @ptr must be one, live, as returned.
 */
int memmgr_free(struct memmgr *mm, void *ptr);

/**
 * memmgr_free_many() - memmgr_free() of @n pointers, in batches
 * @mm:		the handle
 * @n:		entries; 0 does nothing
 * @ptrs:	what memmgr_free() takes, per entry: NULL is skipped
 * @done:	out, unless NULL: the entries done, the first ones
 *
 * The entries are freed in order, the buffers among them with one system
 * call per MEMMGR_BATCH_MAX of them (MEMMGR_IOC_FREE_MANY; single calls on
 * an older module), small objects in the library.  It stops at the first
 * entry that fails: those before it are freed, it and those after are
 * not (a pointer twice in @ptrs fails the second time, as memmgr_free()
 * would).
 *
 * Context: thread-safe.
 *
 * Return: 0 when all @n were freed (*@done is @n), else the error of entry
 * *@done, as memmgr_free() would return it (-EINVAL).
 */
int memmgr_free_many(struct memmgr *mm, size_t n, void *const *ptrs,
		     size_t *done);

/**
 * memmgr_pin() - add a pin to a storage buffer (pins count)
 * @mm:		the handle
 * @page_id:	its page id
 *
 * memmgr_pin_handle() of the page id's handle, found in the library's
 * table: no system call with a state area.
 *
 * Context: thread-safe.
 *
 * Return: 0; -ENOENT (no such page id); -ESTALE (evicted); -EOVERFLOW;
 * -EIO (its state word was overwritten).
 */
int memmgr_pin(struct memmgr *mm, uint64_t page_id);

/**
 * memmgr_unpin() - drop a pin; with none left the buffer is evictable
 * @mm:		the handle
 * @page_id:	its page id
 *
 * Context: thread-safe.
 *
 * Return: 0; -ENOENT (no such page id); -ESTALE (evicted); -EINVAL (the
 * buffer has no pin); -EIO.
 */
int memmgr_unpin(struct memmgr *mm, uint64_t page_id);

/**
 * memmgr_handle() - the handle of a storage buffer, for memmgr_pin_handle()
 * @mm:		the handle
 * @ptr:	the pointer its allocation returned (live or evicted)
 *
 * Context: thread-safe.
 *
 * Return: the kernel's handle of the buffer (non-zero; the one
 * MEMMGR_IOC_LOOKUP reports), or 0 when @ptr is not a storage buffer of @mm.
 */
uint64_t memmgr_handle(struct memmgr *mm, const void *ptr);

/**
 * memmgr_retag() - give a storage buffer a new page id, without a copy
 * @mm:		the handle
 * @page_id:	its page id
 * @new_page_id: its new one, which the handle must not hold (a page id
 *		equal to @page_id does nothing)
 *
 * The buffer keeps its pointer, handle, pins and contents; @page_id is free
 * for a new buffer at once, and an eviction notice of the buffer reports
 * @new_page_id.
 *
 * Context: thread-safe.
 *
 * Return: 0; -ENOENT (no such page id); -EEXIST (@new_page_id is held,
 * live or evicted, or being allocated); -ESTALE (evicted); -ENOTTY (a
 * module without MEMMGR_IOC_RETAG).
 */
int memmgr_retag(struct memmgr *mm, uint64_t page_id, uint64_t new_page_id);

/**
 * memmgr_tag() - a page id in cache @cache's part of a handle's page ids
 * @cache:	a number the caller gives each of its caches
 * @key:	the cache's own key; its low 48 bits are kept
 *
 * Page ids are one 64-bit space per handle.  Several caches sharing a
 * handle each take their own part of it: the cache number in bits 63-48,
 * its key in bits 47-0.  memmgr_tag(1, 5) and memmgr_tag(2, 5) are two
 * page ids; a key of more than 48 bits loses its top bits.
 *
 * Return: ((uint64_t)@cache << 48) | (@key & 0xffffffffffff).
 */
static inline uint64_t memmgr_tag(uint16_t cache, uint64_t key)
{
	return (uint64_t)cache << 48 | (key & 0xffffffffffffULL);
}

/**
 * memmgr_pin_ioctl() - memmgr_pin_handle() by MEMMGR_IOC_PIN
 * @mm:		the handle
 * @handle:	a storage buffer's handle
 *
 * The system call that memmgr_pin_handle() falls back to; it waits for an
 * eviction deciding on the buffer.  Callable directly.
 *
 * Context: thread-safe.
 * Return: as memmgr_pin_handle().
 */
int memmgr_pin_ioctl(struct memmgr *mm, uint64_t handle);

/**
 * memmgr_unpin_ioctl() - memmgr_unpin_handle() by MEMMGR_IOC_UNPIN
 * @mm:		the handle
 * @handle:	a storage buffer's handle
 *
 * Context: thread-safe.
 * Return: as memmgr_unpin_handle().
 */
int memmgr_unpin_ioctl(struct memmgr *mm, uint64_t handle);

/*
 * The state word of @handle's buffer (see uapi/linux/memmgr.h), or NULL:
 * no state area, or a handle whose word is not mapped (not a buffer's).
 * Not for direct use.  The kernel numbers a storage buffer's word by its
 * first page in the file's offsets, which is its handle's low 32 bits
 * less one (memmgr_alloc_storage() checks each buffer's).
 */
static inline uint64_t *memmgr_state_word(struct memmgr *mm, uint64_t handle)
{
	const struct memmgr_fast *fast = (const struct memmgr_fast *)(void *)mm;
	uint64_t i = (uint64_t)(uint32_t)handle - 1;

	if (!fast->state ||
	    i >= __atomic_load_n(&fast->nr_words, __ATOMIC_RELAXED))
		return NULL;
	return &fast->state[i];
}

/*
 * What a state word says of the buffer of generation @gen, for the inline
 * pin and unpin: 0 live, 1 the kernel is deciding (ask it by ioctl), or
 * -ENOENT (another buffer's word, or freed), -ESTALE (evicted).  Internal.
 */
static inline int memmgr_state_check(uint64_t word, uint64_t gen)
{
	if (word >> MEMMGR_STATE_GEN_SHIFT != gen ||
	    (word & MEMMGR_STATE_FREED))
		return -ENOENT;
	if (word & MEMMGR_STATE_GONE)
		return -ESTALE;
	return (word & MEMMGR_STATE_EVICTING) ? 1 : 0;
}

/**
 * memmgr_pin_handle() - memmgr_pin() by handle, without a system call
 * @mm:		the handle
 * @handle:	a storage buffer's handle (memmgr_handle(),
 *		memmgr_alloc_storage_many())
 *
 * A compare-and-swap on the buffer's state word, an acquire (see the top
 * of this file), with no lock and no system call; MEMMGR_IOC_PIN when the
 * kernel is deciding whether to evict the buffer (it waits for that) or
 * the handle has no state area.
 *
 * Context: thread-safe, lock-free.
 *
 * Return: 0; -ENOENT (no buffer has @handle now: freed, released, never
 * a storage buffer's); -ESTALE (evicted); -EOVERFLOW (MEMMGR_STATE_PINS
 * pins already); -EIO (its state word was overwritten).
 */
static inline int memmgr_pin_handle(struct memmgr *mm, uint64_t handle)
{
	uint64_t *word = memmgr_state_word(mm, handle);
	uint64_t gen = handle >> MEMMGR_STATE_GEN_SHIFT, old;
	int ret;

	if (!word)
		return memmgr_pin_ioctl(mm, handle);
	old = __atomic_load_n(word, __ATOMIC_RELAXED);
	do {
		ret = memmgr_state_check(old, gen);
		if (ret == 1)
			return memmgr_pin_ioctl(mm, handle);
		if (ret)
			return ret;
		if ((old & MEMMGR_STATE_PINS) == MEMMGR_STATE_PINS)
			return -EOVERFLOW;
	} while (!__atomic_compare_exchange_n(word, &old,
					      (old + 1) | MEMMGR_STATE_USED,
					      1, __ATOMIC_ACQUIRE,
					      __ATOMIC_RELAXED));
	return 0;
}

/**
 * memmgr_unpin_handle() - memmgr_unpin() by handle, without a system call
 * @mm:		the handle
 * @handle:	a storage buffer's handle
 *
 * A compare-and-swap on the buffer's state word, a release; MEMMGR_IOC_UNPIN
 * when the kernel is deciding on the buffer, when it parked the buffer
 * (it saw it pinned while it looked for memory: the last unpin must tell
 * it) and this is the last pin, or when the handle has no state area.
 *
 * Context: thread-safe, lock-free but for that system call.
 *
 * Return: 0; -ENOENT; -ESTALE; -EINVAL (the buffer has no pin); -EIO.
 */
static inline int memmgr_unpin_handle(struct memmgr *mm, uint64_t handle)
{
	uint64_t *word = memmgr_state_word(mm, handle);
	uint64_t gen = handle >> MEMMGR_STATE_GEN_SHIFT, old, pins;
	int ret;

	if (!word)
		return memmgr_unpin_ioctl(mm, handle);
	old = __atomic_load_n(word, __ATOMIC_RELAXED);
	do {
		ret = memmgr_state_check(old, gen);
		if (ret == 1)
			return memmgr_unpin_ioctl(mm, handle);
		if (ret)
			return ret;
		pins = old & MEMMGR_STATE_PINS;
		if (!pins)
			return -EINVAL;
		if (pins == 1 && (old & MEMMGR_STATE_PARKED))
			return memmgr_unpin_ioctl(mm, handle);
	} while (!__atomic_compare_exchange_n(word, &old, old - 1, 1,
					      __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
	return 0;
}

/**
 * memmgr_lookup_page() - the storage buffer of a page id
 * @mm:		the handle
 * @page_id:	its page id
 * @ptrp:	set to its pointer, unless NULL
 * @sizep:	set to its size in bytes (whole pages, all usable), unless
 *		NULL
 *
 * Context: thread-safe.
 *
 * Return: 0; -ENOENT (no such page id); -ESTALE when it was evicted: then
 * *@ptrp and *@sizep are set too, and the pointer may be passed to
 * memmgr_free() but not accessed (SIGBUS).
 */
int memmgr_lookup_page(struct memmgr *mm, uint64_t page_id, void **ptrp,
		       size_t *sizep);

/**
 * memmgr_release_exec() - free all the execution memory of an exec id
 * @mm:		the handle
 * @exec_id:	the exec id
 * @freedp:	set to the bytes the kernel took back (whole pages, the
 *		chunks of small objects included, retained ones too),
 *		unless NULL
 *
 * Every pointer of @exec_id becomes invalid, small objects included, and
 * its retained chunks go back to the kernel.
 *
 * Context: thread-safe.
 *
 * Return: 0 (also when @exec_id has nothing: *@freedp is 0), or the
 * negative errno of MEMMGR_IOC_RELEASE (then nothing was released).
 */
int memmgr_release_exec(struct memmgr *mm, uint64_t exec_id,
			uint64_t *freedp);

/**
 * memmgr_release_page() - free the storage memory of a page id
 * @mm:		the handle
 * @page_id:	the page id, live or evicted
 * @freedp:	set to the bytes the kernel took back (0 if evicted or
 *		absent), unless NULL
 *
 * Context: thread-safe.
 *
 * Return: 0 (also when @page_id has nothing), or the negative errno of
 * MEMMGR_IOC_RELEASE (then nothing was released).
 */
int memmgr_release_page(struct memmgr *mm, uint64_t page_id,
			uint64_t *freedp);

/**
 * memmgr_set_retain() - how many bytes of empty chunks the handle may keep
 * @mm:		the handle
 * @bytes:	the cap: 0 gives every chunk back as soon as it is empty;
 *		the default is MEMMGR_RETAIN_DEFAULT
 *
 * A cap below the bytes retained now gives the oldest retained chunks back
 * at once, until the rest fit.  A chunk larger than the cap is never kept.
 *
 * Context: thread-safe.
 *
 * Return: 0, or the negative errno of MEMMGR_IOC_FREE (the cap is set;
 * the chunk the kernel refused and those after it stay).
 */
int memmgr_set_retain(struct memmgr *mm, uint64_t bytes);

/**
 * memmgr_trim() - give every retained (empty) chunk back to the kernel
 * @mm:		the handle
 *
 * The cap stays: chunks emptied later are retained again.
 *
 * Context: thread-safe.
 *
 * Return: 0, or the negative errno of MEMMGR_IOC_FREE (the chunk the
 * kernel refused and those after it stay).
 */
int memmgr_trim(struct memmgr *mm);

/**
 * memmgr_get_stats() - the kernel's statistics and the library's
 * @mm:		the handle
 * @st:		filled in on success
 *
 * Context: thread-safe.
 *
 * Return: 0, or the negative errno of MEMMGR_IOC_STATS.
 */
int memmgr_get_stats(struct memmgr *mm, struct memmgr_lib_stats *st);

/**
 * memmgr_figures() - the device's figures, without a system call
 * @mm:		the handle
 * @out:	filled in on success: a consistent copy (@out->seq even), or
 *		from MEMMGR_IOC_STATS (@out->seq 0) without the figures page
 *
 * What MEMMGR_IOC_STATS says of the device (total, free, page size, and per
 * pool the quota, bytes used, evictions and evicted bytes), read from the
 * figures page: a cache can size itself, or spill, before its pool is full.
 *
 * Context: thread-safe; no system call with the figures page.
 *
 * Return: 0, or the negative errno of MEMMGR_IOC_STATS.
 */
int memmgr_figures(struct memmgr *mm, struct memmgr_figures *out);

/**
 * memmgr_evicted() - eviction notices: which page ids this handle lost
 * @mm:		the handle
 * @page_ids:	out: up to @count page ids, in eviction order
 * @count:	room in @page_ids (the kernel moves at most 512 per call)
 * @pending:	out, if not NULL: notices still queued
 *
 * Each notice is taken once.  The evicted entries stay (memmgr_lookup_page()
 * says -ESTALE) until freed or released; freeing one drops its notice.
 *
 * Context: thread-safe.
 * Return: the number of page ids written, or a negative errno.
 */
int memmgr_evicted(struct memmgr *mm, uint64_t *page_ids, uint32_t count,
		   uint64_t *pending);

/**
 * memmgr_fd() - the handle's file descriptor, for poll(): POLLPRI means
 * eviction notices are waiting for memmgr_evicted()
 * @mm:	the handle
 *
 * Return: the descriptor; it belongs to the handle, do not close it.
 */
int memmgr_fd(struct memmgr *mm);

/**
 * memmgr_strerror() - what an error of this library means
 * @err:	a negative errno value (a positive one is read the same)
 *
 * Return: a static string, never NULL; thread-safe.
 */
const char *memmgr_strerror(int err);

/*
 * The original design's interface, in C.  The original named a page id or
 * an exec id when acquiring, but only a byte count when releasing; memmgr
 * frees whole allocations by id, so the release functions take the id.
 */

/**
 * memmgr_acquire_storage_memory() - acquireStorageMemory(pageId, numBytes)
 * @mm:		the handle
 * @page_id:	the page id
 * @num_bytes:	bytes, > 0
 *
 * memmgr_alloc_storage(), pinned, with the handle's timeout (see
 * memmgr_set_timeout()).
 *
 * Context: thread-safe; may sleep while the request waits, without
 * holding the handle's mutex.
 *
 * Return: the memory, or NULL with errno set to one of the errors of
 * memmgr_alloc_storage() (as a positive value).
 */
void *memmgr_acquire_storage_memory(struct memmgr *mm, uint64_t page_id,
				    size_t num_bytes);

/**
 * memmgr_acquire_execution_memory() - acquireExecutionMemory(execId,
 * numBytes)
 * @mm:		the handle
 * @exec_id:	the exec id
 * @num_bytes:	bytes, > 0
 *
 * memmgr_alloc_exec() with the handle's timeout.
 *
 * Context: thread-safe; may sleep while the request waits, without
 * holding the handle's mutex.
 *
 * Return: the memory, or NULL with errno set to one of the errors of
 * memmgr_alloc_exec() (as a positive value).
 */
void *memmgr_acquire_execution_memory(struct memmgr *mm, uint64_t exec_id,
				      size_t num_bytes);

/**
 * memmgr_release_storage_memory() - releaseStorageMemory(), by page id
 * @mm:		the handle
 * @page_id:	the page id
 *
 * Context: thread-safe.
 *
 * Return: the bytes the kernel took back (see memmgr_release_page()), or
 * a negative errno.
 */
int64_t memmgr_release_storage_memory(struct memmgr *mm, uint64_t page_id);

/**
 * memmgr_release_execution_memory() - releaseExecutionMemory(), by exec id
 * @mm:		the handle
 * @exec_id:	the exec id
 *
 * Context: thread-safe.
 *
 * Return: the bytes the kernel took back (see memmgr_release_exec(): its
 * retained chunks included), or a negative errno.
 */
int64_t memmgr_release_execution_memory(struct memmgr *mm, uint64_t exec_id);

#ifdef __cplusplus
}
#endif

#endif /* LIBMEMMGR_H */
