// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's request path: grant, hold or decline each request by the rules
 * of memmgr_policy.c, choose eviction victims at random, and wake held
 * requests, oldest first, whenever memory comes back.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/jiffies.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>

#include "memmgr.h"

/**
 * struct memmgr_waiter - a held request, on its task's stack
 * @node:	in memmgr_dev.waiters[@pool]
 * @task:	the task holding
 * @file:	the file it asks for
 * @pages:	its size
 * @pool:	MEMMGR_POOL_*
 * @result:	1 while held, then 0 (granted) or a negative errno, set under
 *		memmgr_dev.lock by whoever takes it off the queue
 * @victims:	where a grant puts the buffers evicted for it
 */
struct memmgr_waiter {
	struct list_head node;
	struct task_struct *task;
	struct memmgr_file *file;
	u64 pages;
	u32 pool;
	int result;
	struct list_head *victims;
};

void memmgr_evictable_add_locked(struct memmgr_dev *mm,
				 struct memmgr_buffer *buf)
{
	lockdep_assert_held(&mm->lock);
	buf->evict_idx = mm->nr_evictable;
	mm->evictable[mm->nr_evictable++] = buf;
	mm->policy.evictable += buf->nr_pages;
}

void memmgr_evictable_del_locked(struct memmgr_dev *mm,
				 struct memmgr_buffer *buf)
{
	struct memmgr_buffer *last;

	lockdep_assert_held(&mm->lock);
	last = mm->evictable[--mm->nr_evictable];
	mm->evictable[buf->evict_idx] = last;
	last->evict_idx = buf->evict_idx;
	buf->evict_idx = -1;
	mm->policy.evictable -= buf->nr_pages;
}

/* Take a LIVE buffer's pages out of the accounting. */
static void uncharge_buf_locked(struct memmgr_dev *mm, struct memmgr_buffer *buf,
				enum memmgr_buf_state state)
{
	lockdep_assert_held(&mm->lock);
	if (buf->evict_idx >= 0)
		memmgr_evictable_del_locked(mm, buf);
	buf->state = state;
	memmgr_policy_uncharge(&mm->policy, buf->pool, buf->nr_pages);
	buf->file->used[buf->pool] -= buf->nr_pages;
	mm->stats[buf->pool].frees++;
}

/*
 * Evict unpinned storage buffers, chosen at random, until at least @need
 * pages are back.  The policy checked that enough are evictable.  Each
 * victim goes on @victims with a reference and, if its file is still open,
 * a reference to the file, for memmgr_victims_reclaim().
 */
static void evict_locked(struct memmgr_dev *mm, u64 need,
			 struct list_head *victims)
{
	while (need && !WARN_ON_ONCE(!mm->nr_evictable)) {
		u32 idx = get_random_u32_below(mm->nr_evictable);
		struct memmgr_buffer *buf = mm->evictable[idx];
		struct file *filp = buf->file->filp;

		uncharge_buf_locked(mm, buf, MEMMGR_BUF_EVICTED);
		mm->stats[MEMMGR_POOL_STORAGE].evictions++;
		mm->stats[MEMMGR_POOL_STORAGE].evicted_pages += buf->nr_pages;
		kref_get(&buf->ref);
		buf->evict_filp = get_file_rcu(filp) ? filp : NULL;
		list_add_tail(&buf->evict_node, victims);
		need = need > buf->nr_pages ? need - buf->nr_pages : 0;
	}
}

static void grant_locked(struct memmgr_dev *mm, struct memmgr_file *f,
			 u32 pool, u64 pages, enum memmgr_verdict v, u64 evict,
			 struct list_head *victims)
{
	struct memmgr_counters *st = &mm->stats[pool];

	lockdep_assert_held(&mm->lock);
	if (v == MEMMGR_EVICT)
		evict_locked(mm, evict, victims);
	memmgr_policy_charge(&mm->policy, pool, pages);
	f->used[pool] += pages;
	st->allocs++;
	if (mm->policy.used[pool] > st->peak)
		st->peak = mm->policy.used[pool];
}

/**
 * memmgr_wake_locked() - grant the held requests that now fit
 * @mm: the device
 *
 * Each pool's queue is served strictly in arrival order: a request that
 * does not fit keeps every later one of its pool waiting, so a large
 * request is not starved by small ones.
 */
void memmgr_wake_locked(struct memmgr_dev *mm)
{
	unsigned int pool;

	lockdep_assert_held(&mm->lock);
	for (pool = 0; pool < MEMMGR_NR_POOLS; pool++) {
		while (!list_empty(&mm->waiters[pool])) {
			struct memmgr_waiter *w;
			enum memmgr_verdict v;
			u64 evict = 0;

			w = list_first_entry(&mm->waiters[pool],
					     struct memmgr_waiter, node);
			v = memmgr_policy_check(&mm->policy, pool, w->pages,
						&evict);
			if (v == MEMMGR_WAIT)
				break;
			list_del(&w->node);
			mm->nr_waiters--;
			if (v == MEMMGR_TOO_BIG) {
				mm->stats[pool].declined++;
				w->result = -E2BIG;
			} else {
				grant_locked(mm, w->file, pool, w->pages, v,
					     evict, w->victims);
				w->result = 0;
			}
			wake_up_process(w->task);
		}
	}
}

static long timeout_jiffies(s64 timeout_ms)
{
	if (timeout_ms == MEMMGR_WAIT_FOREVER)
		return MAX_SCHEDULE_TIMEOUT;
	return msecs_to_jiffies(min_t(s64, timeout_ms, UINT_MAX));
}

/* Sleep until @w is taken off its queue, a signal or the timeout. */
static int wait_for_grant(struct memmgr_waiter *w, s64 timeout_ms)
{
	long left = timeout_jiffies(timeout_ms);
	int ret = 0;

	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (READ_ONCE(w->result) <= 0)
			break;
		if (signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		if (!left) {
			ret = -ETIMEDOUT;
			break;
		}
		left = schedule_timeout(left);
	}
	__set_current_state(TASK_RUNNING);
	return ret;
}

/**
 * memmgr_request() - charge a request to its pool, holding it if need be
 * @f:		the file asking
 * @pool:	MEMMGR_POOL_*
 * @pages:	its size, > 0
 * @timeout_ms:	0, a positive number of milliseconds, or
 *		MEMMGR_WAIT_FOREVER
 * @nonblock:	the file is O_NONBLOCK: never hold
 * @victims:	out: storage buffers evicted to make room, for the caller
 *		to pass to memmgr_victims_reclaim() before it takes pages
 *
 * Context: process context, may sleep.  Takes memmgr_dev.lock.
 * Return: 0 when charged, -E2BIG, -EAGAIN, -ETIMEDOUT or -EINTR.
 */
int memmgr_request(struct memmgr_file *f, u32 pool, u64 pages,
		   s64 timeout_ms, bool nonblock, struct list_head *victims)
{
	struct memmgr_dev *mm = f->mm;
	struct memmgr_waiter w = {
		.task = current, .file = f, .pages = pages, .pool = pool,
		.result = 1, .victims = victims,
	};
	enum memmgr_verdict v;
	u64 evict = 0;
	int ret;

	spin_lock(&mm->lock);
	v = memmgr_policy_check(&mm->policy, pool, pages, &evict);
	if (v == MEMMGR_TOO_BIG) {
		ret = -E2BIG;
		goto out_decline;
	}
	if (v != MEMMGR_WAIT && list_empty(&mm->waiters[pool])) {
		grant_locked(mm, f, pool, pages, v, evict, victims);
		if (v == MEMMGR_EVICT)
			memmgr_wake_locked(mm);
		spin_unlock(&mm->lock);
		return 0;
	}
	if (!timeout_ms || nonblock) {
		ret = -EAGAIN;
		goto out_decline;
	}
	list_add_tail(&w.node, &mm->waiters[pool]);
	mm->nr_waiters++;
	mm->stats[pool].held++;
	spin_unlock(&mm->lock);

	ret = wait_for_grant(&w, timeout_ms);

	spin_lock(&mm->lock);
	if (w.result <= 0) {
		/* Taken off the queue: granted, or declined and counted. */
		spin_unlock(&mm->lock);
		return w.result;
	}
	list_del(&w.node);
	mm->nr_waiters--;
	/* Whoever queued behind us may fit now. */
	memmgr_wake_locked(mm);
out_decline:
	mm->stats[pool].declined++;
	spin_unlock(&mm->lock);
	return ret;
}

/**
 * memmgr_victims_reclaim() - revoke evicted buffers and take their pages
 * @mm:		the device
 * @victims:	as memmgr_request() filled it; left empty
 *
 * Every mapping of a victim is revoked before its pages go back to the
 * buddy, so a late access gets SIGBUS and never another buffer's data.
 */
void memmgr_victims_reclaim(struct memmgr_dev *mm, struct list_head *victims)
{
	struct memmgr_buffer *buf, *next;

	list_for_each_entry_safe(buf, next, victims, evict_node) {
		list_del(&buf->evict_node);
		if (buf->evict_filp) {
			memmgr_buf_revoke(buf, buf->evict_filp);
			fput(buf->evict_filp);
			buf->evict_filp = NULL;
		}
		memmgr_buddy_free(&mm->buddy, &buf->blocks);
		memmgr_buf_put(buf);
	}
}

/**
 * memmgr_uncharge_locked() - its owner frees a LIVE buffer
 * @mm:		the device
 * @buf:	the buffer; the caller then owns its pages
 */
void memmgr_uncharge_locked(struct memmgr_dev *mm, struct memmgr_buffer *buf)
{
	uncharge_buf_locked(mm, buf, MEMMGR_BUF_FREED);
	memmgr_wake_locked(mm);
}

/**
 * memmgr_charge_undo() - give back a charge whose buffer was never made
 * @f:		the file charged
 * @pool:	MEMMGR_POOL_*
 * @pages:	what memmgr_request() charged
 */
void memmgr_charge_undo(struct memmgr_file *f, u32 pool, u64 pages)
{
	struct memmgr_dev *mm = f->mm;

	spin_lock(&mm->lock);
	memmgr_policy_uncharge(&mm->policy, pool, pages);
	f->used[pool] -= pages;
	mm->stats[pool].allocs--;
	memmgr_wake_locked(mm);
	spin_unlock(&mm->lock);
}

/**
 * memmgr_buf_publish_locked() - a new buffer's memory is in place
 * @mm:		the device
 * @buf:	the buffer, NEW
 * @pinned:	storage: starts with one pin; otherwise evictable at once
 */
void memmgr_buf_publish_locked(struct memmgr_dev *mm, struct memmgr_buffer *buf,
			       bool pinned)
{
	lockdep_assert_held(&mm->lock);
	buf->state = MEMMGR_BUF_LIVE;
	if (buf->pool != MEMMGR_POOL_STORAGE)
		return;
	buf->pins = pinned;
	if (!pinned) {
		memmgr_evictable_add_locked(mm, buf);
		memmgr_wake_locked(mm);
	}
}
