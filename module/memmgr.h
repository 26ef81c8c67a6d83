/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memmgr: internal structures shared by the module's files.
 *
 * Locking order (outermost first); no path takes them the other way:
 *
 *   memmgr_dev.files_lock   mutex: the list of open files
 *     memmgr_dev.lock       spinlock: accounting, holds, buffer states
 *   kernel_param_lock       (module parameter writes: mode, exec_fair)
 *     memmgr_dev.lock
 *   mmap_lock (core mm: mmap() and page faults; a fault in the window
 *              looks its buffer up in the file's tables, one in the
 *              state area its page of words)
 *     memmgr_file.lock      mutex: one open file's tables
 *       memmgr_dev.lock     spinlock
 *   mmap_lock
 *     memmgr_buf.map_lock   mutex: faults against revocation
 *       i_mmap_rwsem        (inside unmap_mapping_range())
 *   memmgr_buddy.lock       spinlock: taken alone
 *   memmgr_file.spare_lock  spinlock: taken alone
 *
 * Neither memmgr_dev.lock nor memmgr_buddy.lock is held across anything
 * that sleeps: page zeroing and page-table work happen outside them.
 * State words (memmgr_state.c) are not locks: the kernel changes them only
 * under memmgr_dev.lock, by compare-and-swap or single 64-bit stores.
 * The reclaim worker takes memmgr_dev.lock alone, then map_lock and
 * memmgr_buddy.lock as a free does; it is flushed with no memmgr lock held.
 */
#ifndef _MEMMGR_H
#define _MEMMGR_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

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

#define MEMMGR_NR_BUCKETS	64

/**
 * struct memmgr_evictable - unpinned storage buffers, by size
 * @bufs:	per bucket k (buffers of 2^k to 2^(k+1) - 1 pages), its
 *		buffers in no order; a buffer's @evict_idx is its index
 * @nr:		buffers in each bucket
 * @lru:	per bucket, its buffers least recently used first
 * @mask:	bit k set while bucket k is not empty
 * @count:	buffers in all buckets
 * @clock:	ticks of use; a buffer's @stamp is its last
 * @gen:	changes whenever the set or its LRU order does
 * @failed:	the last memmgr_evict_select() that found too little, and
 *		@gen then
 * @examined:	buffers looked at to choose victims, since load
 * @nr_buckets:	buckets with room: those of sizes up to the reserve
 *
 * Protected by memmgr_dev.lock.
 */
struct memmgr_evictable {
	struct memmgr_buffer **bufs[MEMMGR_NR_BUCKETS];
	unsigned long nr[MEMMGR_NR_BUCKETS];
	struct list_head lru[MEMMGR_NR_BUCKETS];
	u64 mask;
	unsigned long count;
	u64 clock;
	u64 gen;
	struct {
		u64 gen;
		u64 need;
		u64 room;
		bool lru;
	} failed;
	u64 examined;
	unsigned int nr_buckets;
};

/**
 * struct memmgr_dev - the one memmgr instance
 * @misc:	/dev/memmgr
 * @lock:	protects @policy, @stats, @waiters, @nr_waiters, @evictable,
 *		@wake_pass, @reclaim, and each buffer's state, pins, stamp and
 *		place in @evictable
 * @policy:	the accounting the rules check
 * @stats:	per pool counters
 * @waiters:	held requests per pool, oldest first
 * @nr_waiters:	requests held right now
 * @wake_pass:	counts memmgr_wake_locked()'s passes over a queue
 * @evictable:	live storage buffers with no pin (memmgr_evict.c)
 * @reclaim:	evicted buffers whose mappings are still to be revoked
 * @reclaim_work: revokes them and gives their pages back
 * @buddy:	the reserve
 * @nr_execids:	active exec ids over all files (see memmgr_fair.c)
 * @files_lock:	protects @files
 * @files:	every open file and in-kernel client, for debugfs
 * @stats_kobj:	/sys/module/memmgr/stats
 * @debugfs:	/sys/kernel/debug/memmgr
 * @nr_state_files: open files with a state area; protected by @lock
 * @figures_page: the page clients map read-only (memmgr_figures.c)
 * @figures:	its contents; written under @lock
 * @figures_users: mappings of it; protected by @lock
 */
struct memmgr_dev {
	struct miscdevice misc;
	spinlock_t lock;		/* see above */
	struct memmgr_policy policy;
	struct memmgr_counters stats[MEMMGR_NR_POOLS];
	struct list_head waiters[MEMMGR_NR_POOLS];
	u32 nr_waiters;
	u64 wake_pass;
	struct memmgr_evictable evictable;
	struct list_head reclaim;
	struct delayed_work reclaim_work;
	struct memmgr_buddy buddy;
	u64 nr_execids;
	struct mutex files_lock;	/* see above */
	struct list_head files;
	struct kobject *stats_kobj;
	struct dentry *debugfs;
	u32 nr_state_files;
	struct page *figures_page;
	struct memmgr_figures *figures;
	u32 figures_users;
};

/**
 * struct memmgr_file - one open file of /dev/memmgr
 * @mm:		the device
 * @filp:	the file; its mapping is where this file's buffers are mapped.
 *		NULL for an in-kernel client, which has no mappings
 * @inode:	the inode whose address space is @filp's f_mapping
 *		(memmgr_inode.c), or NULL for an in-kernel client
 * @node:	in memmgr_dev.files
 * @pid:	the process that opened it (its thread group id); a reference
 * @comm:	its command name
 * @lock:	protects @offsets, @tags, @next_seq, @has_window, @has_state
 *		and @state_pages
 * @offsets:	its buffers by mmap offset (in pages), with the free gaps
 *		between them (memmgr_offset.c); handles and mmap() find
 *		them here
 * @tags:	buffers ordered by (pool, tag, offset)
 * @next_seq:	the sequence number of its next buffer, for handles
 * @has_window:	its window has been mapped (memmgr_window.c), so freed
 *		buffers keep their range until revoked; protected by @lock
 * @has_state:	its state area has been made (memmgr_state.c): its storage
 *		buffers keep their pins in their words; protected by @lock
 * @state_pages: the state area's pages by index; changed under @lock
 * @state_hi:	one past the highest index of a page of words a buffer
 *		needed: faults above get SIGBUS; protected by @lock
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
 * @spare_lock:	protects @spares and @nr_spares
 * @spares:	freed buffers no one refers to any more, kept for the next
 *		allocations (a slab allocation zeroes what buf_init() zeroes
 *		again), chained through free_node
 * @nr_spares:	how many, at most MEMMGR_SPARES; read without the lock to
 *		skip it when there are none
 * @waiters:	its held requests per pool, oldest first; protected by
 *		memmgr_dev.lock
 * @blocked_pass: the memmgr_dev.wake_pass in which one of its held
 *		requests did not fit, so its later ones wait; protected by
 *		memmgr_dev.lock
 */
struct memmgr_file {
	struct memmgr_dev *mm;
	struct file *filp;
	struct inode *inode;
	struct list_head node;
	struct pid *pid;
	char comm[TASK_COMM_LEN];
	struct mutex lock;		/* see above */
	struct rb_root offsets;
	struct rb_root tags;
	u32 next_seq;
	bool has_window;
	bool has_state;
	struct xarray state_pages;
	pgoff_t state_hi;
	u64 used[MEMMGR_NR_POOLS];
	struct list_head evicted;
	u64 nr_evicted;
	wait_queue_head_t poll_wait;
	struct rb_root execids;
	struct memmgr_execid *idle_execid;
	struct memmgr_buffer *spare_buf;
	spinlock_t spare_lock;		/* see above */
	struct list_head spares;
	u32 nr_spares;
	struct list_head waiters[MEMMGR_NR_POOLS];
	u64 blocked_pass;
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
	/* In its file's tables, tag and range reserved, while its request
	 * is decided; no call finds it.
	 */
	MEMMGR_BUF_NEW,
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
 * @pgoff:	first page of its mmap range
 * @seq:	its file's sequence number for it; its handle is @seq in the
 *		high 32 bits and @pgoff + 1 in the low 32
 * @nr_pages:	its size
 * @tag:	page id or exec id
 * @pool:	MEMMGR_POOL_*
 * @state:	enum memmgr_buf_state; protected by memmgr_dev.lock
 * @pins:	pin count of a buffer without @word; protected by
 *		memmgr_dev.lock
 * @word:	its state word (memmgr_state.c): its pin count is there, or
 *		NULL; set before it is published
 * @claimed:	the word before memmgr_state_claim() claimed it; protected
 *		by memmgr_dev.lock
 * @parked:	its word was seen pinned: out of the evictable set until
 *		MEMMGR_IOC_UNPIN drops its last pin; protected by
 *		memmgr_dev.lock
 * @claim:	memmgr_evict_select()'s verdict on it, while it chooses
 * @evict_idx:	index in its bucket of memmgr_dev.evictable, or -1;
 *		protected by memmgr_dev.lock
 * @lru_node:	in its bucket's LRU list while evictable; protected by
 *		memmgr_dev.lock
 * @stamp:	the evictable set's tick of its last use; protected by
 *		memmgr_dev.lock
 * @notice_node: in its file's eviction notices; protected by
 *		memmgr_dev.lock
 * @blocks:	buddy blocks, chained through their head page's lru; owned
 *		by whoever moved the buffer out of LIVE
 * @map_lock:	held by the fault handler while it maps pages, and around
 *		revocation, so no page is mapped after revocation
 * @map_head:	the block where the fault handler's last walk of @blocks
 *		ended, or NULL; protected by @map_lock
 * @map_idx:	the index of @map_head's first page in the buffer;
 *		protected by @map_lock
 * @mapped:	a fault has run on it, so pages may be mapped and written;
 *		set under @map_lock, final once revoked out of LIVE (see
 *		memmgr_buf_revoke())
 * @dying:	being freed: out of the tag tree, found no more, its range
 *		kept until it is revoked; protected by memmgr_file.lock
 * @offset_node: in memmgr_file.offsets; protected by memmgr_file.lock
 * @gap:	free pages of the offset space right before its range;
 *		protected by memmgr_file.lock
 * @subtree_gap: the largest @gap in its @offset_node subtree; protected
 *		by memmgr_file.lock
 * @tag_node:	in memmgr_file.tags; protected by memmgr_file.lock
 * @evict_node:	on memmgr_dev.reclaim, then the reclaim worker's list
 * @evict_inode: the owner's file's inode, referenced for the reclaim
 *		worker, which revokes the buffer's mappings in its address
 *		space; not the file, whose close must not wait for the worker
 * @revoked:	evicted, and the reclaim worker has revoked its mappings
 * @free_node:	on the owner's list of buffers it is freeing
 */
struct memmgr_buffer {
	struct kref ref;
	struct memmgr_file *file;
	u64 pgoff;
	u64 nr_pages;
	u64 tag;
	u32 seq;
	u32 pool;
	u32 state;
	u32 pins;
	u64 *word;
	u64 claimed;
	bool parked;
	u8 claim;
	long evict_idx;
	struct list_head lru_node;
	u64 stamp;
	struct list_head notice_node;
	struct list_head blocks;
	struct mutex map_lock;		/* see above */
	struct page *map_head;
	u64 map_idx;
	bool mapped;
	bool dying;
	struct rb_node offset_node;
	u64 gap;
	u64 subtree_gap;
	struct rb_node tag_node;
	struct list_head evict_node;
	struct inode *evict_inode;
	bool revoked;
	struct list_head free_node;
};

extern const struct file_operations memmgr_fops;
extern struct memmgr_dev *memmgr_instance;
extern bool memmgr_evict_lru;		/* evict_policy=lru */
extern bool memmgr_exec_fair;		/* exec_fair=1 */

/* Requests of a batch that memmgr_buf.c takes each lock once for */
#define MEMMGR_ALLOC_CHUNK	32
/* Freed buffers an open file keeps for its next allocations */
#define MEMMGR_SPARES		64

/* Longest an evicted buffer waits for revocation, in jiffies */
#define MEMMGR_RECLAIM_DELAY	1

/* memmgr_pool.c: grant, hold or decline; eviction choices; wakeups */
int memmgr_request(struct memmgr_file *f, u32 pool, u64 tag, u64 pages,
		   s64 timeout_ms, bool nonblock);
bool memmgr_request_now_locked(struct memmgr_file *f, u32 pool, u64 tag,
			       u64 pages);
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

/* memmgr_state.c: the state area, where clients pin without a call */
enum memmgr_claim {
	MEMMGR_CLAIMED,		/* claimed for eviction */
	MEMMGR_CLAIM_USED,	/* used since the last look: a second chance */
	MEMMGR_CLAIM_PINNED,	/* pinned in its word: to be parked */
	MEMMGR_CLAIM_BUSY,	/* its word kept changing: left alone */
};

int memmgr_state_mmap(struct memmgr_file *f, struct vm_area_struct *vma);
int memmgr_state_attach_locked(struct memmgr_file *f,
			       struct memmgr_buffer *buf);
void memmgr_state_publish_locked(struct memmgr_buffer *buf, bool pinned);
void memmgr_state_set_locked(struct memmgr_buffer *buf, u64 flags);
int memmgr_state_pin_locked(struct memmgr_dev *mm, struct memmgr_buffer *buf,
			    bool pin);
u64 memmgr_state_pinned_locked(struct memmgr_dev *mm);
void memmgr_state_exit(struct memmgr_file *f);

/* memmgr_figures.c: the pools' figures, mapped read-only */
int memmgr_figures_init(struct memmgr_dev *mm);
void memmgr_figures_exit(struct memmgr_dev *mm);
void memmgr_figures_write_locked(struct memmgr_dev *mm);

/*
 * A figure changed: write the page while someone has it mapped.  Touching
 * it costs every request a page more (under TCG, whose TLB is flushed at
 * every system call, 0.15 us a call), so not when no one looks; the first
 * mapping writes it afresh.  Inline: the check alone costs no call.
 */
static inline void memmgr_figures_update_locked(struct memmgr_dev *mm)
{
	lockdep_assert_held(&mm->lock);
	if (mm->figures_users)
		memmgr_figures_write_locked(mm);
}

int memmgr_figures_mmap(struct memmgr_dev *mm, struct vm_area_struct *vma);

/* memmgr_batch.c: ALLOC_MANY and FREE_MANY */
long memmgr_ioctl_alloc_many(struct file *filp, void __user *uarg);
long memmgr_ioctl_free_many(struct file *filp, void __user *uarg);

/* memmgr_evict.c: the evictable set and the choice of victims */
int memmgr_evictable_init(struct memmgr_evictable *e, u64 pages);
void memmgr_evictable_exit(struct memmgr_evictable *e);
void memmgr_evictable_add(struct memmgr_evictable *e,
			  struct memmgr_buffer *buf);
void memmgr_evictable_del(struct memmgr_evictable *e,
			  struct memmgr_buffer *buf);
void memmgr_evictable_touch(struct memmgr_evictable *e,
			    struct memmgr_buffer *buf);
struct memmgr_buffer *memmgr_evict_victim(struct memmgr_evictable *e,
					  bool lru);
bool memmgr_evict_select(struct memmgr_evictable *e, bool lru, u64 need,
			 u64 room, struct list_head *picked,
			 struct list_head *parked);

/* memmgr_offset.c: each file's mmap offsets */
int memmgr_offset_insert(struct memmgr_file *f, struct memmgr_buffer *buf);
void memmgr_offset_erase(struct memmgr_file *f, struct memmgr_buffer *buf);
struct memmgr_buffer *memmgr_offset_find(struct memmgr_file *f, u64 pgoff);

/* memmgr_inode.c: each open file's address space */
int memmgr_inode_init(void);
void memmgr_inode_exit(void);
struct inode *memmgr_inode_new(void);

/* memmgr_fair.c: active exec ids */
struct memmgr_execid *memmgr_execid_get_locked(struct memmgr_file *f, u64 tag);
void memmgr_execid_put_locked(struct memmgr_file *f, struct memmgr_execid *id);
void memmgr_execid_uncharge_locked(struct memmgr_file *f, u64 tag, u64 pages);
int memmgr_execid_refill(struct memmgr_file *f);
void memmgr_execids_exit(struct memmgr_file *f);

/* memmgr_map.c: mmap, faults, revocation */
int memmgr_mmap(struct file *filp, struct vm_area_struct *vma);
vm_fault_t memmgr_buf_fault(struct vm_area_struct *vma, u64 base,
			    struct memmgr_buffer *buf, u64 index);

void memmgr_buf_revoke(struct memmgr_buffer *buf,
		       struct address_space *mapping);

/* memmgr_window.c: one mapping for all of a file's buffers */
int memmgr_window_mmap(struct memmgr_file *f, struct vm_area_struct *vma);

/* memmgr_buf.c: buffer tables and life cycle */
int memmgr_buf_cache_create(void);
void memmgr_buf_cache_destroy(void);
struct memmgr_buffer *memmgr_buf_get(struct memmgr_file *f, u64 pgoff);
void memmgr_buf_put(struct memmgr_buffer *buf);
int memmgr_buf_alloc(struct memmgr_file *f, struct memmgr_alloc *req,
		     bool nonblock);
u32 memmgr_buf_alloc_many(struct memmgr_file *f, struct memmgr_alloc *reqs,
			  struct memmgr_buffer **bufs, u32 n, bool nonblock,
			  int *err);
int memmgr_buf_free(struct memmgr_file *f, u64 handle);
u32 memmgr_buf_free_many(struct memmgr_file *f, const u64 *handles,
			 struct memmgr_buffer **bufs, u32 n, int *err);
int memmgr_buf_pin(struct memmgr_file *f, u64 handle, bool pin);
int memmgr_buf_lookup(struct memmgr_file *f, struct memmgr_lookup *req);
int memmgr_buf_retag(struct memmgr_file *f, u64 handle, u64 tag);
int memmgr_buf_release(struct memmgr_file *f, struct memmgr_release *req);
struct page *memmgr_buf_page(struct memmgr_file *f, u64 handle, u64 index);
void memmgr_file_free_all(struct memmgr_file *f);

/* memmgr_dev.c */
int memmgr_alloc_check(const struct memmgr_alloc *req);

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
