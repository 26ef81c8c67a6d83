// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's buddy allocator.
 *
 * The reserve is taken from the kernel's page allocator at load, highest
 * orders first, and kept here split and coalesced by order.  Requests are
 * served as a chain of blocks, largest first, so a request never fails for
 * fragmentation while the policy lets it in.  Every page on a free list
 * reads as zeros: pages are zeroed when they come back, off the lock.
 *
 * The policy charges a request before its pages are taken, and uncharges a
 * freed or evicted buffer before its mappings are revoked and its pages are
 * back here.  So an allocation may find fewer free pages than it was
 * granted for a moment; it then waits on @wait for the pages in flight.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>

#include "memmgr_buddy.h"

#define PG_ORDER_MASK	0x1fUL
#define PG_FREE		0x80UL
#define PG_HOME_SHIFT	8

static unsigned int pg_order(struct page *page)
{
	return page_private(page) & PG_ORDER_MASK;
}

static unsigned int pg_home(struct page *page)
{
	return (page_private(page) >> PG_HOME_SHIFT) & PG_ORDER_MASK;
}

static bool pg_free(struct page *page)
{
	return page_private(page) & PG_FREE;
}

static void pg_set(struct page *page, unsigned int order, bool free)
{
	set_page_private(page, ((unsigned long)pg_home(page) << PG_HOME_SHIFT) |
			       (free ? PG_FREE : 0) | order);
}

/**
 * memmgr_block_order() - the order of a block handed out by the buddy
 * @head: the block's head page
 *
 * Return: the order; the block has 1 << order pages.
 */
unsigned int memmgr_block_order(struct page *head)
{
	return pg_order(head);
}

static void add_free_locked(struct memmgr_buddy *b, struct page *page,
			    unsigned int order)
{
	lockdep_assert_held(&b->lock);
	pg_set(page, order, true);
	list_add(&page->lru, &b->free[order]);
	b->nr_free[order]++;
}

static void del_free_locked(struct memmgr_buddy *b, struct page *page,
			    unsigned int order)
{
	lockdep_assert_held(&b->lock);
	list_del(&page->lru);
	b->nr_free[order]--;
	pg_set(page, order, false);
}

/* Free one block, merging with its buddies up to its home order. */
static void free_block_locked(struct memmgr_buddy *b, struct page *page,
			      unsigned int order)
{
	unsigned long pfn = page_to_pfn(page);
	unsigned long pages = 1UL << order;
	unsigned int home = pg_home(page);

	while (order < home) {
		unsigned long buddy_pfn = pfn ^ (1UL << order);
		struct page *buddy = pfn_to_page(buddy_pfn);

		if (!pg_free(buddy) || pg_order(buddy) != order)
			break;
		del_free_locked(b, buddy, order);
		pfn &= ~(1UL << order);
		order++;
	}
	add_free_locked(b, pfn_to_page(pfn), order);
	b->free_pages += pages;
}

/*
 * Take one block of @order, splitting a larger one if needed; if there is
 * none of @order or more, the largest smaller one.  Return NULL when the
 * free lists are empty.
 */
static struct page *take_block_locked(struct memmgr_buddy *b,
				      unsigned int *order)
{
	unsigned int want = *order, k;
	struct page *page;

	for (k = want; k <= MEMMGR_MAX_ORDER && list_empty(&b->free[k]); k++)
		;
	if (k > MEMMGR_MAX_ORDER) {
		for (k = want; k > 0 && list_empty(&b->free[k]); k--)
			;
		if (list_empty(&b->free[k]))
			return NULL;
		want = k;
	}
	page = list_first_entry(&b->free[k], struct page, lru);
	del_free_locked(b, page, k);
	while (k > want) {
		k--;
		add_free_locked(b, page + (1UL << k), k);
	}
	pg_set(page, want, false);
	b->free_pages -= 1UL << want;
	*order = want;
	return page;
}

/**
 * memmgr_buddy_alloc() - take pages as a chain of blocks, largest first
 * @b:		the buddy
 * @pages:	how many pages; the policy has granted them
 * @blocks:	out: the head pages of the blocks, chained through lru
 *
 * Context: process context, may sleep.  The pages read as zeros.  Waits
 * for pages that freed or evicted buffers are still giving back.
 */
void memmgr_buddy_alloc(struct memmgr_buddy *b, unsigned long pages,
			struct list_head *blocks)
{
	while (pages) {
		unsigned int order = min_t(unsigned int, ilog2(pages),
					   MEMMGR_MAX_ORDER);
		struct page *page;

		spin_lock(&b->lock);
		page = take_block_locked(b, &order);
		spin_unlock(&b->lock);
		if (!page) {
			wait_event(b->wait, READ_ONCE(b->free_pages));
			continue;
		}
		list_add_tail(&page->lru, blocks);
		pages -= 1UL << order;
	}
}

/**
 * memmgr_buddy_free() - zero a chain of blocks and give them back
 * @b:		the buddy
 * @blocks:	head pages chained through lru, as memmgr_buddy_alloc()
 *		made them; the list is left empty
 *
 * Context: process context, may sleep.  No mapping of the pages may remain.
 */
void memmgr_buddy_free(struct memmgr_buddy *b, struct list_head *blocks)
{
	struct page *page, *next;

	list_for_each_entry(page, blocks, lru) {
		unsigned int i, n = 1U << pg_order(page);

		for (i = 0; i < n; i++)
			clear_highpage(page + i);
		cond_resched();
	}
	spin_lock(&b->lock);
	list_for_each_entry_safe(page, next, blocks, lru) {
		list_del(&page->lru);
		free_block_locked(b, page, pg_order(page));
	}
	spin_unlock(&b->lock);
	wake_up_all(&b->wait);
}

/**
 * memmgr_buddy_reserve() - take a reserve from the kernel's page allocator
 * @b:		the buddy, not yet set up
 * @pages:	the size of the reserve
 *
 * High orders are tried first and may fail quietly (__GFP_NORETRY |
 * __GFP_NOWARN); a failed order falls back to the next lower one.  No
 * order retries hard or calls the OOM killer: a reserve that cannot be had
 * fails with nothing kept.
 *
 * Context: process context, may sleep.
 * Return: 0, -ENOMEM, or -EINTR when the loading task was killed.
 */
int memmgr_buddy_reserve(struct memmgr_buddy *b, unsigned long pages)
{
	const gfp_t gfp = GFP_KERNEL | __GFP_ZERO | __GFP_NORETRY |
			  __GFP_NOWARN;
	unsigned int top = MEMMGR_MAX_ORDER, i;

	spin_lock_init(&b->lock);
	init_waitqueue_head(&b->wait);
	for (i = 0; i <= MEMMGR_MAX_ORDER; i++) {
		INIT_LIST_HEAD(&b->free[i]);
		b->nr_free[i] = 0;
	}
	b->free_pages = 0;
	b->total_pages = 0;

	while (b->total_pages < pages) {
		unsigned long left = pages - b->total_pages;
		unsigned int order = min_t(unsigned int, ilog2(left), top);
		struct page *page;

		if (fatal_signal_pending(current)) {
			memmgr_buddy_release(b);
			return -EINTR;
		}
		page = alloc_pages(gfp, order);
		if (!page) {
			if (!order) {
				memmgr_buddy_release(b);
				return -ENOMEM;
			}
			top = order - 1;
			continue;
		}
		for (i = 0; i < (1U << order); i++)
			set_page_private(page + i,
					 (unsigned long)order << PG_HOME_SHIFT);
		spin_lock(&b->lock);
		add_free_locked(b, page, order);
		b->free_pages += 1UL << order;
		spin_unlock(&b->lock);
		b->total_pages += 1UL << order;
		cond_resched();
	}
	return 0;
}

/**
 * memmgr_buddy_release() - give the whole reserve back to the kernel
 * @b:	the buddy; every block must be free, and so merged to its home
 *	order
 */
void memmgr_buddy_release(struct memmgr_buddy *b)
{
	unsigned long released = 0;
	unsigned int order, i;
	struct page *page, *next;

	for (order = 0; order <= MEMMGR_MAX_ORDER; order++) {
		list_for_each_entry_safe(page, next, &b->free[order], lru) {
			list_del_init(&page->lru);
			WARN_ON_ONCE(pg_home(page) != order);
			for (i = 0; i < (1U << order); i++)
				set_page_private(page + i, 0);
			__free_pages(page, order);
			released += 1UL << order;
		}
		b->nr_free[order] = 0;
	}
	WARN(released != b->total_pages,
	     "memmgr: %lu of %lu reserved pages were not free at release\n",
	     b->total_pages - released, b->total_pages);
	b->free_pages = 0;
	b->total_pages = 0;
}

/* A copy of the free block counts per order, for debugfs. */
void memmgr_buddy_counts(struct memmgr_buddy *b,
			 unsigned long nr_free[MEMMGR_MAX_ORDER + 1])
{
	spin_lock(&b->lock);
	memcpy(nr_free, b->nr_free, sizeof(b->nr_free));
	spin_unlock(&b->lock);
}
