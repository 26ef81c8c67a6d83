// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's statistics: MEMMGR_IOC_STATS, a consistent snapshot taken
 * under memmgr_dev.lock and converted from pages to bytes.
 */
#include <linux/mm.h>

#include "memmgr.h"

static void pool_fill_locked(struct memmgr_dev *mm, unsigned int pool,
			     struct memmgr_pool_stats *ps)
{
	const struct memmgr_policy *p = &mm->policy;
	const struct memmgr_counters *c = &mm->stats[pool];

	ps->quota = p->quota[pool] << PAGE_SHIFT;
	ps->used = p->used[pool] << PAGE_SHIFT;
	ps->borrowed = memmgr_policy_borrowed(p, pool) << PAGE_SHIFT;
	ps->peak = c->peak << PAGE_SHIFT;
	if (pool == MEMMGR_POOL_STORAGE)
		ps->pinned = (p->used[pool] - p->evictable) << PAGE_SHIFT;
	ps->allocs = c->allocs;
	ps->frees = c->frees;
	ps->declined = c->declined;
	ps->held = c->held;
	ps->evictions = c->evictions;
	ps->evicted_bytes = c->evicted_pages << PAGE_SHIFT;
}

/**
 * memmgr_stats_fill() - MEMMGR_IOC_STATS
 * @f:	the file asking: its own use is reported too
 * @st:	zeroed by the caller
 */
void memmgr_stats_fill(struct memmgr_file *f, struct memmgr_stats *st)
{
	struct memmgr_dev *mm = f->mm;
	unsigned int pool;

	spin_lock(&mm->lock);
	st->total = mm->policy.total << PAGE_SHIFT;
	st->free = memmgr_policy_free(&mm->policy) << PAGE_SHIFT;
	st->page_size = PAGE_SIZE;
	st->waiters = mm->nr_waiters;
	for (pool = 0; pool < MEMMGR_NR_POOLS; pool++) {
		st->client_used[pool] = f->used[pool] << PAGE_SHIFT;
		pool_fill_locked(mm, pool, &st->pool[pool]);
	}
	spin_unlock(&mm->lock);
}
