/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memmgr: internal structures shared by the module's files.
 *
 * Locking order (outermost first); no path takes them the other way:
 *
 *   memmgr_dev.files_lock   mutex: the list of open files
 *     memmgr_dev.lock       spinlock: accounting, holds, buffer states
 *   mmap_lock (core mm: mmap() and page faults)
 *     memmgr_file.lock      mutex: one open file's tables
 *       memmgr_dev.lock     spinlock
 *   mmap_lock
 *     memmgr_buf.map_lock   mutex: faults against revocation
 *       i_mmap_rwsem        (inside unmap_mapping_range())
 *   memmgr_buddy.lock       spinlock: taken alone
 *
 * Neither memmgr_dev.lock nor memmgr_buddy.lock is held across anything
 * that sleeps: page zeroing and page-table work happen outside them.  The
 * reclaim worker takes memmgr_dev.lock alone, then map_lock and
 * memmgr_buddy.lock as a free does; it is flushed with no memmgr lock held.
 */
#ifndef _MEMMGR_H
#define _MEMMGR_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mutex.h>
#include <linux/path.h>
#include <linux/rbtree.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>

#include <linux/memmgr.h>

#include "memmgr_buddy.h"
#include "memmgr_policy.h"

/**
 * struct memmgr_counters - one pool's event counts
 *
 * All fields are protected by memmgr_dev.lock.
 */
struct memmgr_counters {
	u64 peak;		/* pages */
	u64 allocs;
	u64 frees;
	u64 declined;
	u64 held;
	u64 evictions;
	u64 evicted_pages;
};

/**
 * struct memmgr_dev - the one memmgr instance
 * @misc:	/dev/memmgr
 * @lock:	protects @policy, @stats, @waiters, @nr_waiters, @evictable,
 *		@nr_evictable, @next_pgoff, @reclaim, and each buffer's state,
 *		pins and evict_idx
 * @policy:	the accounting the rules check
 * @stats:	per pool counters
 * @waiters:	held requests per pool, oldest first
 * @nr_waiters:	requests held right now
 * @evictable:	live storage buffers with no pin, in no order
 * @nr_evictable: entries used in @evictable
 * @lru:	the same buffers, least recently used first
 * @next_pgoff:	the next free mmap offset, in pages; offsets are never reused
 * @reclaim:	evicted buffers whose mappings are still to be revoked
 * @reclaim_work: revokes them and gives their pages back
 * @buddy:	the reserve
 * @nr_execids:	active exec ids over all files (see memmgr_fair.c)
 * @files_lock:	protects @files
 * @files:	every open file and in-kernel client, for debugfs
 * @stats_kobj:	/sys/module/memmgr/stats
 * @debugfs:	/sys/kernel/debug/memmgr
 */
struct memmgr_dev {
	struct miscdevice misc;
	spinlock_t lock;		/* see above */
	struct memmgr_policy policy;
	struct memmgr_counters stats[MEMMGR_NR_POOLS];
	struct list_head waiters[MEMMGR_NR_POOLS];
	u32 nr_waiters;
	struct memmgr_buffer **evictable;
	unsigned long nr_evictable;
	struct list_head lru;
	u64 next_pgoff;
	struct list_head reclaim;
	struct delayed_work reclaim_work;
	struct memmgr_buddy buddy;
	u64 nr_execids;
	struct mutex files_lock;	/* see above */
	struct list_head files;
	struct kobject *stats_kobj;
	struct dentry *debugfs;
};

/**
 * struct memmgr_file - one open file of /dev/memmgr
 * @mm:		the device
 * @filp:	the file; its mapping is where this file's buffers are mapped.
 *		NULL for an in-kernel client, which has no mappings
 * @node:	in memmgr_dev.files
 * @pid:	the process that opened it (thread group id)
 * @comm:	its command name
 * @lock:	protects @offsets' contents and @tags
 * @offsets:	its buffers by mmap offset (in pages); handles and mmap()
 *		find them here
 * @tags:	buffers ordered by (pool, tag, offset)
 * @used:	pages per pool; protected by memmgr_dev.lock
 * @evicted:	eviction notices: evicted buffers not yet reported, oldest
 *		first; protected by memmgr_dev.lock
 * @nr_evicted:	entries on @evicted; protected by memmgr_dev.lock
 * @poll_wait:	poll() waits here for eviction notices
 * @execids:	its active exec ids, by tag, and @idle_execid if that is
 *		linked; protected by memmgr_dev.lock
 * @idle_execid: its one exec id node that is not active, or NULL: the
 *		last id that went idle, still in @execids, or a fresh
 *		unlinked node; protected by memmgr_dev.lock
 * @spare_buf:	a freed buffer no one refers to any more, kept for the next
 *		allocation, or NULL; taken and put back with xchg()/cmpxchg()
 */
struct memmgr_file {
	struct memmgr_dev *mm;
	struct file *filp;
	struct list_head node;
	pid_t pid;
	char comm[TASK_COMM_LEN];
	struct mutex lock;		/* see above */
	struct rb_root offsets;
	struct rb_root tags;
	u64 used[MEMMGR_NR_POOLS];
	struct list_head evicted;
	u64 nr_evicted;
	wait_queue_head_t poll_wait;
	struct rb_root execids;
	struct memmgr_execid *idle_execid;
	struct memmgr_buffer *spare_buf;
};

/**
 * struct memmgr_execid - an active exec id of one file
 * @node:	in memmgr_file.execids
 * @tag:	the exec id
 * @pages:	execution pages it holds
 * @requests:	its requests being decided or held
 *
 * All fields are protected by memmgr_dev.lock.
 */
struct memmgr_execid {
	struct rb_node node;
	u64 tag;
	u64 pages;
	u32 requests;
};

enum memmgr_buf_state {
	MEMMGR_BUF_NEW,		/* memory being taken, not visible yet */
	MEMMGR_BUF_LIVE,	/* granted, mapped on demand */
	MEMMGR_BUF_EVICTED,	/* storage memory given to another request */
	MEMMGR_BUF_FREED,	/* freed by its owner */
};

/**
 * struct memmgr_buffer - one allocation
 * @ref:	the file's tables, each mapping and the reclaim queue (while
 *		evicted and not yet reclaimed) hold one
 * @file:	the owner; valid while the buffer is in its tables, and under
 *		memmgr_dev.lock while the buffer is LIVE
 * @pgoff:	first page of its mmap range; its handle is @pgoff + 1
 * @nr_pages:	its size
 * @tag:	page id or exec id
 * @pool:	MEMMGR_POOL_*
 * @state:	enum memmgr_buf_state; protected by memmgr_dev.lock
 * @pins:	pin count; protected by memmgr_dev.lock
 * @evict_idx:	index in memmgr_dev.evictable, or -1; protected by
 *		memmgr_dev.lock
 * @lru_node:	in memmgr_dev.lru while evictable; protected by
 *		memmgr_dev.lock
 * @notice_node: in its file's eviction notices; protected by
 *		memmgr_dev.lock
 * @blocks:	buddy blocks, chained through their head page's lru; owned
 *		by whoever moved the buffer out of LIVE
 * @map_lock:	held by the fault handler while it maps pages, and around
 *		revocation, so no page is mapped after revocation
 * @mapped:	a fault has run on it, so pages may be mapped and written;
 *		set under @map_lock, final once revoked out of LIVE (see
 *		memmgr_buf_revoke())
 * @offset_node: in memmgr_file.offsets; protected by memmgr_file.lock
 * @tag_node:	in memmgr_file.tags; protected by memmgr_file.lock
 * @evict_node:	on memmgr_dev.reclaim, then the reclaim worker's list
 * @evict_path: the owner's file's path, held for the reclaim worker to
 *		revoke the buffer's mappings through its inode; not the
 *		file, whose close must not wait for the worker
 * @revoked:	evicted, and the reclaim worker has revoked its mappings
 * @free_node:	on the owner's list of buffers it is freeing
 */
struct memmgr_buffer {
	struct kref ref;
	struct memmgr_file *file;
	u64 pgoff;
	u64 nr_pages;
	u64 tag;
	u32 pool;
	u32 state;
	u32 pins;
	long evict_idx;
	struct list_head lru_node;
	struct list_head notice_node;
	struct list_head blocks;
	struct mutex map_lock;		/* see above */
	bool mapped;
	struct rb_node offset_node;
	struct rb_node tag_node;
	struct list_head evict_node;
	struct path evict_path;
	bool revoked;
	struct list_head free_node;
};

extern const struct file_operations memmgr_fops;
extern struct memmgr_dev *memmgr_instance;
extern bool memmgr_evict_lru;		/* evict_policy=lru */
extern bool memmgr_exec_fair;		/* exec_fair=1 */

/* Longest an evicted buffer waits for revocation, in jiffies */
#define MEMMGR_RECLAIM_DELAY	1

/* memmgr_pool.c: grant, hold or decline; eviction choices; wakeups */
int memmgr_request(struct memmgr_file *f, u32 pool, u64 tag, u64 pages,
		   s64 timeout_ms, bool nonblock);
void memmgr_uncharge_locked(struct memmgr_dev *mm, struct memmgr_buffer *buf);
void memmgr_charge_undo(struct memmgr_file *f, u32 pool, u64 tag, u64 pages);
void memmgr_buf_publish_locked(struct memmgr_dev *mm, struct memmgr_buffer *buf,
			       bool pinned);
void memmgr_evictable_add_locked(struct memmgr_dev *mm,
				 struct memmgr_buffer *buf);
void memmgr_evictable_del_locked(struct memmgr_dev *mm,
				 struct memmgr_buffer *buf);
void memmgr_wake_locked(struct memmgr_dev *mm);
void memmgr_touch_locked(struct memmgr_dev *mm, struct memmgr_buffer *buf);
int memmgr_evicted_pop(struct memmgr_file *f, u64 *tags, u32 count,
		       u64 *pending);
void memmgr_reclaim_work(struct work_struct *work);
void memmgr_reclaim_flush(struct memmgr_dev *mm);
void memmgr_reclaim_kick(struct memmgr_buddy *b);

/* An evicted buffer whose mappings the reclaim worker has revoked. */
static inline bool memmgr_buf_revoked(struct memmgr_buffer *buf)
{
	/* Pairs with memmgr_reclaim_work(): revoked, then said so. */
	return smp_load_acquire(&buf->revoked);
}

/* memmgr_fair.c: active exec ids */
struct memmgr_execid *memmgr_execid_get_locked(struct memmgr_file *f, u64 tag);
void memmgr_execid_put_locked(struct memmgr_file *f, struct memmgr_execid *id);
void memmgr_execid_uncharge_locked(struct memmgr_file *f, u64 tag, u64 pages);
int memmgr_execid_refill(struct memmgr_file *f);
void memmgr_execids_exit(struct memmgr_file *f);

/* memmgr_map.c: mmap, faults, revocation */
int memmgr_mmap(struct file *filp, struct vm_area_struct *vma);
void memmgr_buf_revoke(struct memmgr_buffer *buf,
		       struct address_space *mapping);

/* memmgr_buf.c: buffer tables and life cycle */
int memmgr_buf_cache_create(void);
void memmgr_buf_cache_destroy(void);
struct memmgr_buffer *memmgr_buf_get(struct memmgr_file *f, u64 pgoff);
void memmgr_buf_put(struct memmgr_buffer *buf);
int memmgr_buf_alloc(struct memmgr_file *f, struct memmgr_alloc *req,
		     bool nonblock);
int memmgr_buf_free(struct memmgr_file *f, u64 handle);
int memmgr_buf_pin(struct memmgr_file *f, u64 handle, bool pin);
int memmgr_buf_lookup(struct memmgr_file *f, struct memmgr_lookup *req);
int memmgr_buf_release(struct memmgr_file *f, struct memmgr_release *req);
struct page *memmgr_buf_page(struct memmgr_file *f, u64 handle, u64 index);
void memmgr_file_free_all(struct memmgr_file *f);

/* memmgr_dev.c */
void memmgr_file_init(struct memmgr_dev *mm, struct memmgr_file *f,
		      struct file *filp);
void memmgr_file_exit(struct memmgr_file *f);

/* memmgr_stats.c: MEMMGR_IOC_STATS, sysfs and debugfs */
void memmgr_stats_fill(struct memmgr_file *f, struct memmgr_stats *st);
int memmgr_sysfs_init(struct memmgr_dev *mm);
void memmgr_sysfs_exit(struct memmgr_dev *mm);
void memmgr_debugfs_init(struct memmgr_dev *mm);
void memmgr_debugfs_exit(struct memmgr_dev *mm);

#endif /* _MEMMGR_H */
