// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's policy arithmetic (see memmgr_policy.h and the design note).
 *
 * T = total, S = T * storage_pct / 100, E = T - S, F = T - used[storage] -
 * used[exec], all in pages.
 *
 * mode=split (the default):
 *  - execution may take any free page: it uses E first, then borrows free
 *    storage memory, and never takes a page storage is using;
 *  - storage fits when used[storage] + r <= S and r <= F, so it cannot use
 *    what execution borrowed until execution frees it;
 *  - a storage request that does not fit may evict unpinned storage
 *    buffers, but only if evicting all of them would make it fit.
 *
 * mode=unified (Spark's UnifiedMemoryManager, all-or-nothing):
 *  - storage fits when r <= F: it may borrow free execution memory;
 *  - execution may take any free page, and may evict unpinned storage
 *    buffers while storage uses more than S, never taking storage below S;
 *  - storage evicts only storage, never execution memory.
 */
#include "memmgr_policy.h"

/**
 * memmgr_policy_init() - split a reserve between the pools
 * @p:		the accounting to set up
 * @total_pages: T
 * @storage_pct: the storage pool's share of T, 0 to 100
 */
void memmgr_policy_init(struct memmgr_policy *p, u64 total_pages,
			unsigned int storage_pct)
{
	*p = (struct memmgr_policy){ .total = total_pages };
	p->quota[MEMMGR_POOL_STORAGE] = total_pages * storage_pct / 100;
	p->quota[MEMMGR_POOL_EXEC] = total_pages -
				     p->quota[MEMMGR_POOL_STORAGE];
}

/* F: pages neither pool uses. */
u64 memmgr_policy_free(const struct memmgr_policy *p)
{
	return p->total - p->used[MEMMGR_POOL_STORAGE] -
	       p->used[MEMMGR_POOL_EXEC];
}

/* The part of a pool's use that lies in the other pool's share. */
u64 memmgr_policy_borrowed(const struct memmgr_policy *p, unsigned int pool)
{
	return p->used[pool] > p->quota[pool] ?
	       p->used[pool] - p->quota[pool] : 0;
}

/* The largest request a pool could ever grant: E2BIG above it. */
u64 memmgr_policy_limit(const struct memmgr_policy *p, unsigned int pool)
{
	if (pool == MEMMGR_POOL_EXEC || p->unified)
		return p->total;
	return p->quota[pool];
}

/*
 * How low eviction on behalf of @pool may take storage: execution (only in
 * unified mode) never takes storage below S; storage evicts its own.
 */
u64 memmgr_policy_evict_floor(const struct memmgr_policy *p,
			      unsigned int pool)
{
	return pool == MEMMGR_POOL_EXEC ? p->quota[MEMMGR_POOL_STORAGE] : 0;
}

/* Pages execution may take from storage by eviction (unified only). */
static u64 exec_reclaimable(const struct memmgr_policy *p)
{
	u64 used = p->used[MEMMGR_POOL_STORAGE];
	u64 floor = p->quota[MEMMGR_POOL_STORAGE];

	if (!p->unified || used <= floor)
		return 0;
	return used - floor < p->evictable ? used - floor : p->evictable;
}

/**
 * memmgr_policy_check() - decide a request against the current accounting
 * @p:		the accounting
 * @pool:	MEMMGR_POOL_*
 * @pages:	the request, > 0
 * @evict:	out, with MEMMGR_EVICT: the least number of pages of
 *		unpinned storage to evict before the request fits
 *
 * Return: the verdict; nothing is charged.
 */
enum memmgr_verdict memmgr_policy_check(const struct memmgr_policy *p,
					unsigned int pool, u64 pages,
					u64 *evict)
{
	u64 free = memmgr_policy_free(p);
	u64 over_quota, over_free, need;

	if (pages > memmgr_policy_limit(p, pool))
		return MEMMGR_TOO_BIG;

	over_free = pages > free ? pages - free : 0;
	if (pool == MEMMGR_POOL_EXEC) {
		if (!over_free)
			return MEMMGR_GRANT;
		if (over_free > exec_reclaimable(p))
			return MEMMGR_WAIT;
		*evict = over_free;
		return MEMMGR_EVICT;
	}

	over_quota = !p->unified && p->used[pool] + pages > p->quota[pool] ?
		     p->used[pool] + pages - p->quota[pool] : 0;
	need = over_quota > over_free ? over_quota : over_free;
	if (!need)
		return MEMMGR_GRANT;
	if (need > p->evictable)
		return MEMMGR_WAIT;
	*evict = need;
	return MEMMGR_EVICT;
}

/*
 * exec_fair (Spark's ExecutionMemoryPool): with N active exec ids, one may
 * hold at most 1/N of what execution can use.  (Spark also makes a task
 * below 1/(2N) wait rather than spill; here a request waits only if its
 * timeout lets it.)  What execution can use: all but storage's pages,
 * and in unified mode storage above S counts as execution's (it may evict
 * it).
 */
u64 memmgr_policy_exec_capacity(const struct memmgr_policy *p)
{
	u64 storage = p->used[MEMMGR_POOL_STORAGE];

	if (p->unified && storage > p->quota[MEMMGR_POOL_STORAGE])
		storage = p->quota[MEMMGR_POOL_STORAGE];
	return p->total - storage;
}

/* May an exec id holding @held pages take @pages more, of @nr_ids? */
bool memmgr_policy_fair(const struct memmgr_policy *p, u64 held, u64 pages,
			u64 nr_ids)
{
	return nr_ids <= 1 ||
	       held + pages <= memmgr_policy_exec_capacity(p) / nr_ids;
}
