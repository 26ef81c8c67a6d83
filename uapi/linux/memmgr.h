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
 * @handle:	out: non-zero and opaque; unique among this open file's
 *		buffers, and not given again to the next 2^32 allocations of
 *		the file after its buffer is freed
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
 * whole open file (the window, below); mmap() elsewhere there fails with
 * EINVAL.
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

#endif /* _UAPI_LINUX_MEMMGR_H */
