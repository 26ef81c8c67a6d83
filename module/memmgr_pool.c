// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's request path: grant, hold or decline each request by the rules
 * of memmgr_policy.c, choose eviction victims at random, and wake held
 * requests, oldest first, whenever memory comes back.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/jiffies.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "memmgr.h"
#include "memmgr_trace.h"

/**
 * struct memmgr_waiter - a held request, on its task's stack
 * @node:	in memmgr_dev.waiters[@pool]
 * @file_node:	in its file's waiters[@pool]
 * @task:	the task holding
 * @file:	the file it asks for
 * @pages:	its size
 * @tag:	its page id or exec id, for tracing
 * @pool:	MEMMGR_POOL_*
 * @result:	1 while held, then 0 (granted) or a negative errno, set under
 *		memmgr_dev.lock by whoever takes it off the queue
 * @id:		its exec id (execution requests), else NULL
 */
struct memmgr_waiter {
	struct list_head node;
	struct list_head file_node;
	struct task_struct *task;
	struct memmgr_file *file;
	u64 pages;
	u64 tag;
	u32 pool;
	int result;
	struct memmgr_execid *id;
};

void memmgr_evictable_add_locked(struct memmgr_dev *mm,
				 struct memmgr_buffer *buf)
{
	lockdep_assert_held(&mm->lock);
	memmgr_evictable_add(&mm->evictable, buf);
	mm->policy.evictable += buf->nr_pages;
}

void memmgr_evictable_del_locked(struct memmgr_dev *mm,
				 struct memmgr_buffer *buf)
{
	lockdep_assert_held(&mm->lock);
	memmgr_evictable_del(&mm->evictable, buf);
	mm->policy.evictable -= buf->nr_pages;
}

/**
 * memmgr_touch_locked() - a storage buffer was used: last in LRU order
 * @mm:		the device
 * @buf:	the buffer; only an evictable one has an LRU position
 */
void memmgr_touch_locked(struct memmgr_dev *mm, struct memmgr_buffer *buf)
{
	lockdep_assert_held(&mm->lock);
	if (buf->evict_idx >= 0)
		memmgr_evictable_touch(&mm->evictable, buf);
}

/* Queue an eviction notice for the buffer's owner and wake its poll(). */
static void notify_locked(struct memmgr_buffer *buf)
{
	struct memmgr_file *f = buf->file;

	if (!f->filp)
		return;
	list_add_tail(&buf->notice_node, &f->evicted);
	f->nr_evicted++;
	wake_up_interruptible_poll(&f->poll_wait, EPOLLPRI);
}

/**
 * memmgr_evicted_pop() - MEMMGR_IOC_EVICTED: take the oldest notices
 * @f:		the file
 * @tags:	out: up to @count page ids
 * @count:	room in @tags
 * @pending:	out: notices left
 *
 * Return: the number of page ids written.
 */
int memmgr_evicted_pop(struct memmgr_file *f, u64 *tags, u32 count,
		       u64 *pending)
{
	struct memmgr_dev *mm = f->mm;
	struct memmgr_buffer *buf;
	bool flush = false;
	u32 n = 0;

	spin_lock(&mm->lock);
	while (n < count && !list_empty(&f->evicted)) {
		buf = list_first_entry(&f->evicted, struct memmgr_buffer,
				       notice_node);
		list_del_init(&buf->notice_node);
		f->nr_evicted--;
		tags[n++] = buf->tag;
		flush |= !memmgr_buf_revoked(buf);
	}
	*pending = f->nr_evicted;
	spin_unlock(&mm->lock);
	/* Their reclaim was queued with the notice: revoked before told. */
	if (flush)
		memmgr_reclaim_flush(mm);
	return n;
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
	if (buf->pool == MEMMGR_POOL_EXEC)
		memmgr_execid_uncharge_locked(buf->file, buf->tag,
					      buf->nr_pages);
	buf->file->used[buf->pool] -= buf->nr_pages;
	mm->stats[buf->pool].frees++;
}

/*
 * Take one victim out of LIVE and hand it to the reclaim worker, which
 * revokes its mappings and gives its pages back (memmgr_reclaim_work()).
 */
static void evict_one_locked(struct memmgr_dev *mm, struct memmgr_buffer *buf)
{
	struct file *filp = buf->file->filp;	/* NULL: in-kernel */

	uncharge_buf_locked(mm, buf, MEMMGR_BUF_EVICTED);
	if (buf->word)
		memmgr_state_set_locked(buf, MEMMGR_STATE_GONE);
	notify_locked(buf);
	mm->stats[MEMMGR_POOL_STORAGE].evictions++;
	mm->stats[MEMMGR_POOL_STORAGE].evicted_pages += buf->nr_pages;
	memmgr_figures_update_locked(mm);
	trace_memmgr_evict(MEMMGR_POOL_STORAGE, buf->tag,
			   buf->nr_pages << PAGE_SHIFT, 0);
	kref_get(&buf->ref);
	/* The inode, not the file, whose close must not wait for the worker. */
	if (filp) {
		buf->evict_inode = buf->file->inode;
		ihold(buf->evict_inode);
	}
	list_add_tail(&buf->evict_node, &mm->reclaim);
	/*
	 * Under the lock, so whoever sees the eviction can flush the work.
	 * Victims are revoked in batches, a tick later at most: sooner when
	 * an allocation is short of pages or an owner is told of one.
	 */
	queue_delayed_work(system_unbound_wq, &mm->reclaim_work,
			   MEMMGR_RECLAIM_DELAY);
}

/*
 * Evict unpinned storage buffers until at least @need pages are back,
 * without taking storage below @floor (0: no floor).  Each victim is the
 * least recently used or one at random (evict_policy), of those that fit
 * above the floor when there is one (memmgr_evict.c: not linear in the
 * number of buffers), and whose client has not pinned it in its state
 * word; those found pinned there are parked on the way (memmgr_state.c).
 * Each victim goes to the reclaim worker (evict_one_locked()).  Return
 * false, evicting nothing, when too few were found.
 */
static bool evict_locked(struct memmgr_dev *mm, u64 need, u64 floor)
{
	u64 used = mm->policy.used[MEMMGR_POOL_STORAGE];
	bool lru = READ_ONCE(memmgr_evict_lru);
	struct memmgr_buffer *buf, *next;
	u64 room = U64_MAX;
	LIST_HEAD(picked);
	LIST_HEAD(parked);
	bool found;

	lockdep_assert_held(&mm->lock);
	if (floor)
		room = used > floor ? used - floor : 0;
	found = memmgr_evict_select(&mm->evictable, lru, need, room, &picked,
				    &parked);
	/* Out of the set already: only the accounting is left. */
	list_for_each_entry_safe(buf, next, &parked, evict_node) {
		list_del(&buf->evict_node);
		mm->policy.evictable -= buf->nr_pages;
		buf->parked = true;
	}
	list_for_each_entry_safe(buf, next, &picked, evict_node) {
		list_del(&buf->evict_node);
		mm->policy.evictable -= buf->nr_pages;
		evict_one_locked(mm, buf);
	}
	return found;
}

/* Bytes of a request for tracing: sizes that overflowed read as U64_MAX. */
static u64 req_bytes(u64 pages)
{
	return pages > (U64_MAX >> PAGE_SHIFT) ? U64_MAX : pages << PAGE_SHIFT;
}

/*
 * Grant a request if it fits now, evicting for it if the rules allow.
 * Return the verdict that applied: GRANT or EVICT (charged), WAIT,
 * OVER_SHARE (exec_fair) or TOO_BIG (nothing done).
 */
static enum memmgr_verdict try_grant_locked(struct memmgr_dev *mm,
					    struct memmgr_file *f, u32 pool,
					    u64 tag, u64 pages,
					    struct memmgr_execid *id)
{
	struct memmgr_counters *st = &mm->stats[pool];
	enum memmgr_verdict v;
	u64 evict = 0;

	lockdep_assert_held(&mm->lock);
	if (id && READ_ONCE(memmgr_exec_fair) &&
	    pages <= memmgr_policy_limit(&mm->policy, pool) &&
	    !memmgr_policy_fair(&mm->policy, id->pages, pages, mm->nr_execids))
		return MEMMGR_OVER_SHARE;
	v = memmgr_policy_check(&mm->policy, pool, pages, &evict);
	if (v == MEMMGR_EVICT &&
	    !evict_locked(mm, evict,
			  memmgr_policy_evict_floor(&mm->policy, pool)))
		v = MEMMGR_WAIT;
	if (v != MEMMGR_GRANT && v != MEMMGR_EVICT)
		return v;
	trace_memmgr_alloc(pool, tag, req_bytes(pages), 0);
	memmgr_policy_charge(&mm->policy, pool, pages);
	f->used[pool] += pages;
	if (id)
		id->pages += pages;
	st->allocs++;
	if (mm->policy.used[pool] > st->peak)
		st->peak = mm->policy.used[pool];
	memmgr_figures_update_locked(mm);
	return v;
}

/* Is @w kept back only by its exec id's share (exec_fair)? */
static bool held_by_share_locked(struct memmgr_dev *mm, struct memmgr_waiter *w)
{
	return w->id && READ_ONCE(memmgr_exec_fair) &&
	       !memmgr_policy_fair(&mm->policy, w->id->pages, w->pages,
				   mm->nr_execids);
}

/* Take @w off its queue with @result and wake it. */
static void waiter_done_locked(struct memmgr_dev *mm, struct memmgr_waiter *w,
			       int result)
{
	list_del(&w->node);
	list_del(&w->file_node);
	mm->nr_waiters--;
	w->result = result;
	if (result) {
		mm->stats[w->pool].declined++;
		trace_memmgr_decline(w->pool, w->tag, req_bytes(w->pages),
				     result);
	} else {
		trace_memmgr_wake(w->pool, w->tag, req_bytes(w->pages), 0);
	}
	wake_up_process(w->task);
}

/**
 * memmgr_wake_locked() - grant the held requests that now fit
 * @mm: the device
 *
 * Each pool's queue is tried oldest first.  One file's requests are
 * served in arrival order: once one of them does not fit, the file's
 * later ones of the pool wait behind it.  Another file's request that
 * fits is granted past it, so a request that does not fit keeps no other
 * client waiting.  A request held only by its exec id's fair share
 * (exec_fair) keeps nothing waiting.
 */
void memmgr_wake_locked(struct memmgr_dev *mm)
{
	unsigned int pool;

	lockdep_assert_held(&mm->lock);
	if (!mm->nr_waiters)
		return;
	for (pool = 0; pool < MEMMGR_NR_POOLS; pool++) {
		struct memmgr_waiter *w, *next;
		u64 pass = ++mm->wake_pass;

		list_for_each_entry_safe(w, next, &mm->waiters[pool], node) {
			enum memmgr_verdict v;

			if (w->file->blocked_pass == pass)
				continue;
			v = try_grant_locked(mm, w->file, pool, w->tag,
					     w->pages, w->id);
			if (v == MEMMGR_WAIT) {
				w->file->blocked_pass = pass;
				continue;
			}
			if (v == MEMMGR_OVER_SHARE)
				continue;
			/* TOO_BIG: the mode changed under it. */
			waiter_done_locked(mm, w,
					   v == MEMMGR_TOO_BIG ? -E2BIG : 0);
		}
	}
}

/*
 * May a new request of @f for @pool be decided now?  Only if no older
 * request of the same file waits in the pool, other than ones kept back
 * only by their exec id's share.
 */
static bool queue_clear_locked(struct memmgr_dev *mm, struct memmgr_file *f,
			       u32 pool)
{
	struct memmgr_waiter *w;

	list_for_each_entry(w, &f->waiters[pool], file_node) {
		if (!held_by_share_locked(mm, w))
			return false;
	}
	return true;
}

static long timeout_jiffies(s64 timeout_ms)
{
	if (timeout_ms == MEMMGR_WAIT_FOREVER)
		return MAX_SCHEDULE_TIMEOUT;
	/* One more: the first tick may be all but over already. */
	return msecs_to_jiffies(min_t(s64, timeout_ms, UINT_MAX)) + 1;
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
 * memmgr_request_now_locked() - charge a request if it is granted at once
 * @f:		the file asking
 * @pool:	MEMMGR_POOL_*
 * @tag:	its page id or exec id
 * @pages:	its size, > 0
 *
 * What memmgr_request() does when the request fits now, for a batch that
 * holds memmgr_dev.lock across several requests.
 *
 * Context: memmgr_dev.lock held.
 * Return: true when charged; false, with nothing charged, counted or held,
 * when the request must go through memmgr_request(), which decides it.
 */
bool memmgr_request_now_locked(struct memmgr_file *f, u32 pool, u64 tag,
			       u64 pages)
{
	struct memmgr_dev *mm = f->mm;
	struct memmgr_execid *id = NULL;
	enum memmgr_verdict v = MEMMGR_WAIT;

	lockdep_assert_held(&mm->lock);
	if (pool == MEMMGR_POOL_EXEC) {
		id = memmgr_execid_get_locked(f, tag);
		if (!id)
			return false;	/* a node to allocate: unlocked */
	}
	if (queue_clear_locked(mm, f, pool))
		v = try_grant_locked(mm, f, pool, tag, pages, id);
	if (id)
		memmgr_execid_put_locked(f, id);
	/* Evicting more than needed may let others in. */
	if (v == MEMMGR_EVICT)
		memmgr_wake_locked(mm);
	return v == MEMMGR_GRANT || v == MEMMGR_EVICT;
}

/**
 * memmgr_request() - charge a request to its pool, holding it if need be
 * @f:		the file asking
 * @pool:	MEMMGR_POOL_*
 * @tag:	its page id or exec id
 * @pages:	its size, > 0
 * @timeout_ms:	0, a positive number of milliseconds, or
 *		MEMMGR_WAIT_FOREVER
 * @nonblock:	the file is O_NONBLOCK: never hold
 *
 * Storage evicted to make room is uncharged at once; its pages come back
 * to the buddy when the reclaim worker has revoked its mappings, and the
 * caller's memmgr_buddy_alloc() waits for them if it must.
 *
 * Context: process context, may sleep.  Takes memmgr_dev.lock.
 * Return: 0 when charged, -E2BIG, -EAGAIN, -ETIMEDOUT, -EINTR or -ENOMEM.
 */
int memmgr_request(struct memmgr_file *f, u32 pool, u64 tag, u64 pages,
		   s64 timeout_ms, bool nonblock)
{
	struct memmgr_dev *mm = f->mm;
	struct memmgr_waiter w = {
		.task = current, .file = f, .pages = pages, .tag = tag,
		.pool = pool, .result = 1,
	};
	enum memmgr_verdict v;
	u64 evict = 0;
	int ret;

	/* An exec id new to its file may need a node: allocated unlocked. */
	for (;;) {
		spin_lock(&mm->lock);
		if (pool != MEMMGR_POOL_EXEC)
			break;
		w.id = memmgr_execid_get_locked(f, tag);
		if (w.id)
			break;
		spin_unlock(&mm->lock);
		ret = memmgr_execid_refill(f);
		if (ret)
			return ret;
	}
	if (queue_clear_locked(mm, f, pool)) {
		v = try_grant_locked(mm, f, pool, tag, pages, w.id);
		if (v == MEMMGR_GRANT || v == MEMMGR_EVICT) {
			/* Evicting more than needed may let others in. */
			if (v == MEMMGR_EVICT)
				memmgr_wake_locked(mm);
			ret = 0;
			goto out_unlock;
		}
	} else {
		/* This file's older holds go first: it can only queue. */
		v = memmgr_policy_check(&mm->policy, pool, pages, &evict);
	}
	if (v == MEMMGR_TOO_BIG) {
		ret = -E2BIG;
		goto out_decline;
	}
	/* Whatever the policy, timeout 0 never holds. */
	if (!timeout_ms || nonblock) {
		ret = -EAGAIN;
		goto out_decline;
	}
	list_add_tail(&w.node, &mm->waiters[pool]);
	list_add_tail(&w.file_node, &f->waiters[pool]);
	mm->nr_waiters++;
	mm->stats[pool].held++;
	trace_memmgr_hold(pool, tag, req_bytes(pages), 0);
	spin_unlock(&mm->lock);

	ret = wait_for_grant(&w, timeout_ms);

	spin_lock(&mm->lock);
	if (w.result <= 0) {
		/* Taken off the queue: granted, or declined and counted. */
		ret = w.result;
		goto out_unlock;
	}
	list_del(&w.node);
	list_del(&w.file_node);
	mm->nr_waiters--;
out_decline:
	mm->stats[pool].declined++;
	trace_memmgr_decline(pool, tag, req_bytes(pages), ret);
out_unlock:
	if (w.id)
		memmgr_execid_put_locked(f, w.id);
	/*
	 * Whoever queued behind a hold that gave up, or waited on an exec id
	 * that is no longer active, may fit now.
	 */
	if (ret)
		memmgr_wake_locked(mm);
	spin_unlock(&mm->lock);
	return ret;
}

/**
 * memmgr_reclaim_work() - revoke evicted buffers and take their pages
 * @work:	memmgr_dev.reclaim_work
 *
 * Every mapping of a victim is revoked before its pages go back to the
 * buddy, so a late access gets SIGBUS and never another buffer's data.
 * An allocation short of pages waits for these (memmgr_buddy_alloc()).
 */
void memmgr_reclaim_work(struct work_struct *work)
{
	struct memmgr_dev *mm = container_of(to_delayed_work(work),
					     struct memmgr_dev, reclaim_work);
	struct memmgr_buffer *buf, *next;
	LIST_HEAD(victims);

	spin_lock(&mm->lock);
	list_splice_init(&mm->reclaim, &victims);
	spin_unlock(&mm->lock);

	list_for_each_entry_safe(buf, next, &victims, evict_node) {
		bool written = true;	/* in-kernel clients write */

		list_del(&buf->evict_node);
		if (buf->evict_inode) {
			memmgr_buf_revoke(buf, buf->evict_inode->i_mapping);
			written = READ_ONCE(buf->mapped);
			iput(buf->evict_inode);
			buf->evict_inode = NULL;
		}
		/* Pairs with memmgr_buf_revoked(): revoked, then said so. */
		smp_store_release(&buf->revoked, true);
		memmgr_buddy_free(&mm->buddy, &buf->blocks, written);
		memmgr_buf_put(buf);
		cond_resched();
	}
}

/**
 * memmgr_reclaim_flush() - wait until every eviction so far is revoked
 * @mm:	the device
 *
 * Called before an owner learns that its buffer was evicted (ESTALE, an
 * eviction notice), so that by then no mapping of the buffer is left.
 *
 * Context: process context, may sleep; no memmgr lock held.
 */
void memmgr_reclaim_flush(struct memmgr_dev *mm)
{
	flush_delayed_work(&mm->reclaim_work);
}

/**
 * memmgr_reclaim_kick() - revoke pending victims now, without waiting
 * @b:	the device's buddy, about to wait for pages on their way back
 *
 * memmgr_buddy.short_of_pages: evicted buffers' pages may be the ones.
 */
void memmgr_reclaim_kick(struct memmgr_buddy *b)
{
	struct memmgr_dev *mm = container_of(b, struct memmgr_dev, buddy);

	mod_delayed_work(system_unbound_wq, &mm->reclaim_work, 0);
}

/**
 * memmgr_uncharge_locked() - its owner frees a LIVE buffer
 * @mm:		the device
 * @buf:	the buffer; the caller then owns its pages
 */
void memmgr_uncharge_locked(struct memmgr_dev *mm, struct memmgr_buffer *buf)
{
	uncharge_buf_locked(mm, buf, MEMMGR_BUF_FREED);
	memmgr_figures_update_locked(mm);
	memmgr_wake_locked(mm);
}

/**
 * memmgr_charge_undo() - give back a charge whose buffer was never made
 * @f:		the file charged
 * @pool:	MEMMGR_POOL_*
 * @tag:	the request's page id or exec id
 * @pages:	what memmgr_request() charged
 */
void memmgr_charge_undo(struct memmgr_file *f, u32 pool, u64 tag, u64 pages)
{
	struct memmgr_dev *mm = f->mm;

	spin_lock(&mm->lock);
	memmgr_policy_uncharge(&mm->policy, pool, pages);
	if (pool == MEMMGR_POOL_EXEC)
		memmgr_execid_uncharge_locked(f, tag, pages);
	f->used[pool] -= pages;
	mm->stats[pool].allocs--;
	memmgr_figures_update_locked(mm);
	memmgr_wake_locked(mm);
	spin_unlock(&mm->lock);
}

/**
 * memmgr_buf_publish_locked() - a new buffer's memory is in place
 * @mm:		the device
 * @buf:	the buffer, NEW
 * @pinned:	storage: starts with one pin; otherwise evictable at once
 *
 * A storage buffer with a state word is in the evictable set from the
 * start, pinned or not: its pin is in the word, which an eviction reads.
 */
void memmgr_buf_publish_locked(struct memmgr_dev *mm, struct memmgr_buffer *buf,
			       bool pinned)
{
	lockdep_assert_held(&mm->lock);
	/*
	 * Its blocks and their pages' bits, then LIVE: a fault or a lookup
	 * that sees LIVE without this lock sees them (smp_load_acquire()).
	 */
	smp_store_release(&buf->state, MEMMGR_BUF_LIVE);
	if (buf->pool != MEMMGR_POOL_STORAGE)
		return;
	/* A pin in its word keeps it out of no set: evictions look there. */
	if (buf->word)
		memmgr_state_publish_locked(buf, pinned);
	else
		buf->pins = pinned;
	if (!pinned || buf->word) {
		memmgr_evictable_add_locked(mm, buf);
		memmgr_wake_locked(mm);
	}
}
