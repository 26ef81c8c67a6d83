/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * memmgr: a reserve of memory split into a storage and an execution pool,
 * served through ioctl() and mmap() on /dev/memmgr.
 *
 * Every structure has a fixed layout on 32- and 64-bit: fixed-size fields
 * in natural alignment, no implicit padding.  Reserved fields, padding and
 * flag bits not defined here must be zero, else the ioctl fails with
 * EINVAL; fields may only be added in reserved space.
 *
 * Sizes are in bytes and are rounded up to whole pages; "granted" and the
 * statistics report what was charged, in bytes.
 */
#ifndef _UAPI_LINUX_MEMMGR_H
#define _UAPI_LINUX_MEMMGR_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define MEMMGR_POOL_STORAGE	0
#define MEMMGR_POOL_EXEC	1
#define MEMMGR_NR_POOLS		2

/* timeout_ms: hold the request until it is granted. */
#define MEMMGR_WAIT_FOREVER	(-1)

/* Storage only: the buffer is evictable (unpinned) from the start. */
#define MEMMGR_ALLOC_UNPINNED	(1U << 0)
#define MEMMGR_ALLOC_FLAGS	(MEMMGR_ALLOC_UNPINNED)

/**
 * struct memmgr_alloc - MEMMGR_IOC_ALLOC: grant, hold or decline a request
 * @pool:	in: MEMMGR_POOL_STORAGE or MEMMGR_POOL_EXEC
 * @flags:	in: MEMMGR_ALLOC_* bits
 * @size:	in: bytes, > 0; rounded up to whole pages
 * @tag:	in: page id (storage, unique within the open file) or exec id
 * @timeout_ms:	in: 0 declines at once (EAGAIN); > 0 holds the request up
 *		to that many milliseconds (ETIMEDOUT); MEMMGR_WAIT_FOREVER
 *		holds it until it is granted.  A signal ends a hold (EINTR).
 * @handle:	out: non-zero; unique among this open file's buffers, and
 *		not given again to the next 2^32 allocations of the file
 *		after its buffer is freed.  Its low 32 bits are @offset /
 *		page size + 1, its high 32 bits the buffer's generation (as
 *		in its state word, below)
 * @offset:	out: the mmap() offset of this allocation: the lowest range
 *		of this open file's offsets that no buffer of the file
 *		holds, below MEMMGR_OFFSET_LIMIT, so a freed buffer's range
 *		is reused.  A mapping made of a buffer stays that buffer's:
 *		after FREE or eviction it gets SIGBUS, never the buffer that
 *		took the range next.
 * @granted:	out: bytes charged to the pool
 * @reserved:	must be zero
 */
struct memmgr_alloc {
	__u32 pool;
	__u32 flags;
	__u64 size;
	__u64 tag;
	__s64 timeout_ms;
	__u64 handle;
	__u64 offset;
	__u64 granted;
	__u64 reserved[2];
};

/**
 * struct memmgr_buf - MEMMGR_IOC_FREE, MEMMGR_IOC_PIN, MEMMGR_IOC_UNPIN
 * @handle:	an allocation of this open file
 * @flags:	must be zero
 *
 * Pins count: a storage buffer is evictable only while its pin count is
 * zero.  An allocation starts with one pin unless MEMMGR_ALLOC_UNPINNED.
 */
struct memmgr_buf {
	__u64 handle;
	__u64 flags;
};

/* LOOKUP by @handle (in) instead of by @tag (out then), in either pool. */
#define MEMMGR_LOOKUP_HANDLE	(1U << 0)
#define MEMMGR_LOOKUP_FLAGS	(MEMMGR_LOOKUP_HANDLE)

/**
 * struct memmgr_lookup - MEMMGR_IOC_LOOKUP: a storage buffer by page id, or
 * any buffer by handle
 * @tag:	in: the page id; out with MEMMGR_LOOKUP_HANDLE: its tag
 * @flags:	in: MEMMGR_LOOKUP_* bits
 * @handle:	out; in with MEMMGR_LOOKUP_HANDLE
 * @offset:	out: its mmap() offset
 * @size:	out: granted bytes
 * @reserved:	must be zero
 *
 * ENOENT when this file has no such buffer (also while the ALLOC of that
 * tag is still held), ESTALE when it was evicted; the stale entry stays
 * until it is freed.  By handle, it tells a client that mapped a buffer's
 * offset whether the buffer was still there (so the mapping is its own:
 * a buffer keeps its range while it is in the file's tables).
 */
struct memmgr_lookup {
	__u64 tag;
	__u64 flags;
	__u64 handle;
	__u64 offset;
	__u64 size;
	__u64 reserved[3];
};

/**
 * struct memmgr_release - MEMMGR_IOC_RELEASE: free every allocation of
 * this open file with this pool and tag
 * @pool:	in: MEMMGR_POOL_*
 * @flags:	in: must be zero
 * @tag:	in: page id or exec id
 * @freed:	out: bytes returned to the pool
 */
struct memmgr_release {
	__u32 pool;
	__u32 flags;
	__u64 tag;
	__u64 freed;
};

/**
 * struct memmgr_pool_stats - one pool, in bytes and counts
 * @quota:	this pool's share of total
 * @used:	bytes granted now, borrowed included
 * @borrowed:	the part of @used that lies in the other pool's share
 * @peak:	highest @used since load
 * @pinned:	storage: bytes that may not be evicted
 * @allocs:	requests granted
 * @frees:	allocations freed, released or evicted
 * @declined:	requests refused: EAGAIN, ETIMEDOUT, EINTR, E2BIG
 * @held:	requests that had to wait
 * @evictions:	storage buffers evicted
 * @evicted_bytes: bytes of storage buffers evicted
 * @reserved:	zero
 */
struct memmgr_pool_stats {
	__u64 quota;
	__u64 used;
	__u64 borrowed;
	__u64 peak;
	__u64 pinned;
	__u64 allocs;
	__u64 frees;
	__u64 declined;
	__u64 held;
	__u64 evictions;
	__u64 evicted_bytes;
	__u64 reserved[5];
};

/**
 * struct memmgr_stats - MEMMGR_IOC_STATS
 * @total:	bytes reserved at load
 * @free:	bytes neither pool uses
 * @page_size:	the granule of every size
 * @waiters:	requests held right now
 * @client_used: this open file's bytes, per pool
 * @pool:	per pool, indexed by MEMMGR_POOL_*
 * @reserved:	zero
 */
struct memmgr_stats {
	__u64 total;
	__u64 free;
	__u32 page_size;
	__u32 waiters;
	__u64 client_used[MEMMGR_NR_POOLS];
	struct memmgr_pool_stats pool[MEMMGR_NR_POOLS];
	__u64 reserved[8];
};

/**
 * struct memmgr_evicted - MEMMGR_IOC_EVICTED: what this file lost
 * @tags:	in: a user pointer to an array of __u64
 * @count:	in: room in @tags; out: page ids written, oldest first
 * @flags:	in: must be zero
 * @pending:	out: notices still queued after this call
 * @reserved:	must be zero
 *
 * Each storage buffer of this file that was evicted leaves one notice,
 * queued in eviction order; this call moves up to @count of them out.  A
 * notice goes away also when its buffer is freed.  poll() reports POLLPRI
 * while notices are queued.
 */
struct memmgr_evicted {
	__u64 tags;
	__u32 count;
	__u32 flags;
	__u64 pending;
	__u64 reserved[2];
};

/*
 * Every buffer's mmap() range lies below this byte offset (2^42, 4 TiB);
 * each open file has its own offsets.  ALLOC fails with ENOSPC when the
 * file has no free range large enough (its evicted entries keep theirs
 * until freed).  The offsets from here up to 2^44 are for mappings of a
 * whole open file (the window, the state area and the figures, below);
 * mmap() elsewhere there fails with EINVAL.
 * All of them are within the reach of a 32-bit process's mmap2(), whose
 * page offset has 32 bits.
 */
#define MEMMGR_OFFSET_LIMIT	(1ULL << 42)

/*
 * The window: mmap() of this offset (up to MEMMGR_OFFSET_LIMIT bytes, or a
 * part of that range) maps every buffer of the open file at once, each at
 * its own offset: a buffer allocated with offset o is at window + o, with
 * no mmap() of its own.  Where no live buffer is (a hole, a buffer freed
 * or evicted, one whose ALLOC has not returned) an access gets SIGBUS.
 * When a freed buffer's range is taken by a new buffer, the window shows
 * the new one there, as memory that malloc() reuses would.
 */
#define MEMMGR_WINDOW_OFFSET	MEMMGR_OFFSET_LIMIT

/*
 * The state area: mmap() of this offset (up to MEMMGR_STATE_SIZE bytes, or
 * a part from its start) maps one 64-bit state word per page of the open
 * file's offset space: the word of the storage buffer at offset o is word
 * o / page_size.  Pins and unpins made with atomic operations on the word
 * need no system call.  The area must be mapped before the file's first
 * storage ALLOC (EBUSY after); from then on every storage buffer of the
 * file keeps its pin count in its word, and MEMMGR_IOC_PIN/UNPIN act on
 * the word too.  The mapping is not inherited across fork() (a child does
 * not share its parent's pins unless it maps the area itself: the words
 * are the open file's, as its buffers are).
 *
 * A word is the buffer's generation (the high 32 bits of its handle) in
 * bits 63-32 and these in bits 31-0:
 *
 *   PINS	the pin count
 *   USED	set by a pin: used since the kernel last looked (LRU order)
 *   PARKED	the kernel saw the buffer pinned and stopped considering it:
 *		the unpin that drops the last pin must be MEMMGR_IOC_UNPIN
 *   EVICTING	the kernel is deciding whether to evict the buffer: a pin
 *		or unpin must be MEMMGR_IOC_PIN/UNPIN, which wait for it
 *   GONE	the buffer was evicted: a pin fails (ESTALE)
 *   FREED	no live buffer has this word (with GONE): a pin fails (ENOENT)
 *
 * A client pins with a compare-and-swap from a word with its handle's
 * generation, none of EVICTING, GONE, FREED, to the same word with PINS
 * one higher and USED set; it unpins with a compare-and-swap to PINS one
 * lower unless PARKED is set and PINS is 1.  The kernel evicts a buffer
 * only by a compare-and-swap from a word with PINS 0: a pin and an
 * eviction that race are decided by one atomic operation.  The kernel
 * trusts nothing else a word says: a word it does not expect (a wrong
 * generation, a flag out of place) keeps its buffer from being evicted,
 * and the ioctls on it fail with EIO (EAGAIN when the client kept changing
 * the word while the kernel tried to).  The area is backed up to the
 * page of words of the highest offset a storage buffer of the file has
 * had; an access above it gets SIGBUS.  A client needs a lock-free 64-bit
 * compare-and-swap (on i386, cmpxchg8b).
 */
#define MEMMGR_STATE_OFFSET	(3ULL << 42)
#define MEMMGR_STATE_SIZE	((MEMMGR_OFFSET_LIMIT >> 12) * 8)

#define MEMMGR_STATE_PINS	0x00ffffffULL
#define MEMMGR_STATE_USED	(1ULL << 24)
#define MEMMGR_STATE_PARKED	(1ULL << 27)
#define MEMMGR_STATE_EVICTING	(1ULL << 28)
#define MEMMGR_STATE_GONE	(1ULL << 29)
#define MEMMGR_STATE_FREED	(1ULL << 30)
#define MEMMGR_STATE_GEN_SHIFT	32

/**
 * struct memmgr_pool_figures - one pool in struct memmgr_figures
 * @quota:	this pool's share of total, bytes
 * @used:	bytes granted now, borrowed included
 * @evictions:	storage buffers evicted since load
 * @evicted_bytes: their bytes
 */
struct memmgr_pool_figures {
	__u64 quota;
	__u64 used;
	__u64 evictions;
	__u64 evicted_bytes;
};

/**
 * struct memmgr_figures - the pools' figures, mapped read-only
 * @seq:	odd while the kernel writes the figures: read @seq, then the
 *		figures, then @seq again, and read again if it changed or
 *		was odd (a sequence lock)
 * @page_size:	the granule of every size
 * @total:	bytes reserved at load
 * @free:	bytes neither pool uses
 * @pool:	per pool, indexed by MEMMGR_POOL_*
 *
 * mmap() of one page at MEMMGR_FIGURES_OFFSET, without PROT_WRITE (EPERM),
 * shows the device's figures as STATS returns them, with no system call.
 * Each snapshot is consistent in itself; a request that evicts may show
 * its evictions and its own charge as two steps.
 */
struct memmgr_figures {
	__u32 seq;
	__u32 page_size;
	__u64 total;
	__u64 free;
	struct memmgr_pool_figures pool[MEMMGR_NR_POOLS];
};

#define MEMMGR_FIGURES_OFFSET	(7ULL << 41)

/**
 * struct memmgr_batch - MEMMGR_IOC_ALLOC_MANY, MEMMGR_IOC_FREE_MANY
 * @entries:	in: a user pointer to @count struct memmgr_alloc
 *		(ALLOC_MANY) or @count __u64 handles (FREE_MANY)
 * @count:	in: entries, at most MEMMGR_BATCH_MAX
 * @flags:	in: must be zero
 * @done:	out: entries done, each as its single call would have done
 *		it, with its out fields written (ALLOC_MANY); the call
 *		returns 0 when @done is @count, else the error of entry
 *		@done, which had no effect, nor had any after it
 * @reserved:	must be zero
 *
 * Each entry is checked as its single call checks it.  Written back
 * (with @done) also when the call fails, but for EFAULT on @entries.
 */
struct memmgr_batch {
	__u64 entries;
	__u32 count;
	__u32 flags;
	__u32 done;
	__u32 reserved0;
	__u64 reserved[2];
};

#define MEMMGR_BATCH_MAX	1024

/**
 * struct memmgr_retag - MEMMGR_IOC_RETAG: give a storage buffer a new tag
 * @handle:	in: a live storage buffer of this open file
 * @tag:	in: its new page id, which no other storage buffer of the
 *		file may hold (EEXIST)
 * @flags:	in: must be zero
 * @reserved:	must be zero
 *
 * The buffer keeps its handle, offset, pins and contents.  ESTALE when
 * it was evicted.  Tags are the client's: several caches in one open file
 * share one space of 64-bit tags, and libmemmgr's memmgr_tag() puts a
 * cache number in the top 16 bits.
 */
struct memmgr_retag {
	__u64 handle;
	__u64 tag;
	__u64 flags;
	__u64 reserved;
};

/* 0xB8 is free in Documentation/userspace-api/ioctl/ioctl-number.rst. */
#define MEMMGR_IOC_MAGIC	0xB8

#define MEMMGR_IOC_ALLOC	_IOWR(MEMMGR_IOC_MAGIC, 0x00, struct memmgr_alloc)
#define MEMMGR_IOC_FREE		_IOW(MEMMGR_IOC_MAGIC, 0x01, struct memmgr_buf)
#define MEMMGR_IOC_PIN		_IOW(MEMMGR_IOC_MAGIC, 0x02, struct memmgr_buf)
#define MEMMGR_IOC_UNPIN	_IOW(MEMMGR_IOC_MAGIC, 0x03, struct memmgr_buf)
#define MEMMGR_IOC_LOOKUP	_IOWR(MEMMGR_IOC_MAGIC, 0x04, struct memmgr_lookup)
#define MEMMGR_IOC_RELEASE	_IOWR(MEMMGR_IOC_MAGIC, 0x05, struct memmgr_release)
#define MEMMGR_IOC_STATS	_IOR(MEMMGR_IOC_MAGIC, 0x06, struct memmgr_stats)
#define MEMMGR_IOC_EVICTED	_IOWR(MEMMGR_IOC_MAGIC, 0x07, struct memmgr_evicted)
#define MEMMGR_IOC_ALLOC_MANY	_IOWR(MEMMGR_IOC_MAGIC, 0x08, struct memmgr_batch)
#define MEMMGR_IOC_FREE_MANY	_IOWR(MEMMGR_IOC_MAGIC, 0x09, struct memmgr_batch)
#define MEMMGR_IOC_RETAG	_IOW(MEMMGR_IOC_MAGIC, 0x0a, struct memmgr_retag)

#endif /* _UAPI_LINUX_MEMMGR_H */
