/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memmgr's policy arithmetic: which request fits, and what it costs.
 *
 * This file and memmgr_policy.c depend on nothing but integer types, so that
 * they compile into the module and into a host unit test alike.  All
 * quantities are in pages.  The caller serialises every call on one
 * struct memmgr_policy (the module holds memmgr_dev.lock).
 */
#ifndef _MEMMGR_POLICY_H
#define _MEMMGR_POLICY_H

#include <linux/types.h>	/* the host test brings u64 and bool itself */

#include <linux/memmgr.h>

/*
 * MEMMGR_EVICT leaves the choice of victims to the caller, which must not
 * take storage below memmgr_policy_evict_floor() and may find it cannot.
 * MEMMGR_OVER_SHARE comes from the caller's memmgr_policy_fair() check,
 * never from memmgr_policy_check().
 */
enum memmgr_verdict {
	MEMMGR_GRANT,	/* fits now */
	MEMMGR_EVICT,	/* fits once *evict pages of unpinned storage go */
	MEMMGR_WAIT,	/* does not fit now, might later */
	MEMMGR_TOO_BIG,	/* larger than the pool could ever grant */
	MEMMGR_OVER_SHARE, /* exec_fair: over its exec id's share */
};

/**
 * struct memmgr_policy - the accounting the rules are checked against
 * @total:	T, pages reserved at load
 * @quota:	S and E, per pool; they add up to @total
 * @used:	pages granted now, per pool, borrowed pages included
 * @evictable:	pages of live storage buffers with no pin
 * @unified:	mode=unified (Spark's rules) rather than split
 */
struct memmgr_policy {
	u64 total;
	u64 quota[MEMMGR_NR_POOLS];
	u64 used[MEMMGR_NR_POOLS];
	u64 evictable;
	bool unified;
};

void memmgr_policy_init(struct memmgr_policy *p, u64 total_pages,
			unsigned int storage_pct);
u64 memmgr_policy_free(const struct memmgr_policy *p);
u64 memmgr_policy_borrowed(const struct memmgr_policy *p, unsigned int pool);
u64 memmgr_policy_limit(const struct memmgr_policy *p, unsigned int pool);
u64 memmgr_policy_evict_floor(const struct memmgr_policy *p,
			      unsigned int pool);
enum memmgr_verdict memmgr_policy_check(const struct memmgr_policy *p,
					unsigned int pool, u64 pages,
					u64 *evict);
u64 memmgr_policy_exec_capacity(const struct memmgr_policy *p);
bool memmgr_policy_fair(const struct memmgr_policy *p, u64 held, u64 pages,
			u64 nr_ids);

/**
 * memmgr_size_to_pages() - round a request up to whole pages
 * @size:	bytes
 * @page_shift:	log2 of the page size
 * @pages:	out: the number of pages
 *
 * Return: false when @size is 0 or rounding it up overflows.
 */
static inline bool memmgr_size_to_pages(u64 size, unsigned int page_shift,
					u64 *pages)
{
	u64 mask = ((u64)1 << page_shift) - 1;

	if (!size || size > ~(u64)0 - mask)
		return false;
	*pages = (size + mask) >> page_shift;
	return true;
}

static inline void memmgr_policy_charge(struct memmgr_policy *p,
					unsigned int pool, u64 pages)
{
	p->used[pool] += pages;
}

static inline void memmgr_policy_uncharge(struct memmgr_policy *p,
					  unsigned int pool, u64 pages)
{
	p->used[pool] -= pages;
}

#endif /* _MEMMGR_POLICY_H */
