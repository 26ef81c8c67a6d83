// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's buddy allocator.
 *
 * The reserve is taken from the kernel's page allocator at load, highest
 * orders first, and kept here split and coalesced by order.  Requests are
 * served as a chain of blocks, largest first, so a request never fails for
 * fragmentation while the policy lets it in.  Freed single pages wait
 * unmerged on a short list for the next single-page requests, so a stream
 * of them does not split and merge a large block each time.
 *
 * Zeroing is lazy.  The reserve comes zeroed from the kernel; a page that
 * a client may have written is marked stale when its buffer is freed, and
 * memmgr_page_expose() zeroes a stale page just before a new owner can see
 * it (a fault maps it, an in-kernel client asks for it).  So memory nobody
 * maps is never zeroed, and no request waits for zeroing.
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

/*
 * page->private of a reserve page: its home order, and on a block's head
 * page the block's order and whether it is free.  PG_STALE is per page and
 * survives splits and merges: the page may hold an earlier owner's data.
 * The buddy writes a page's private under @lock while the page is free or
 * being handed out; its owner writes PG_STALE (memmgr_page_expose()) while
 * it owns the page, and the buddy then only reads it.
 */
#define PG_ORDER_MASK	0x1fUL
#define PG_STALE	0x40UL
#define PG_FREE		0x80UL
#define PG_HOME_SHIFT	8
#define PG_HOME_MASK	(PG_ORDER_MASK << PG_HOME_SHIFT)

static unsigned long pg_bits(struct page *page)
{
	return READ_ONCE(page->private);
}

static void pg_set_bits(struct page *page, unsigned long bits)
{
	WRITE_ONCE(page->private, bits);
}

static unsigned int pg_order(struct page *page)
{
	return pg_bits(page) & PG_ORDER_MASK;
}

static unsigned int pg_home(struct page *page)
{
	return (pg_bits(page) >> PG_HOME_SHIFT) & PG_ORDER_MASK;
}

static bool pg_free(struct page *page)
{
	return pg_bits(page) & PG_FREE;
}

static void pg_set(struct page *page, unsigned int order, bool free)
{
	unsigned long keep = pg_bits(page) & (PG_STALE | PG_HOME_MASK);

	pg_set_bits(page, keep | (free ? PG_FREE : 0) | order);
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
 * Keep a freed single page unmerged on @quick, where the next single-page
 * request finds it without splitting; false when @quick is full.  Its
 * private stays as memmgr_buddy_alloc() left it: not free, so no buddy
 * merges with it.
 */
static bool quick_push_locked(struct memmgr_buddy *b, struct page *page)
{
	lockdep_assert_held(&b->lock);
	if (b->nr_quick >= MEMMGR_QUICK_MAX)
		return false;
	b->quick[b->nr_quick++] = page;
	b->free_pages++;
	return true;
}

static struct page *quick_pop_locked(struct memmgr_buddy *b)
{
	lockdep_assert_held(&b->lock);
	if (!b->nr_quick)
		return NULL;
	b->free_pages--;
	return b->quick[--b->nr_quick];
}

/* Merge every page on @quick into the free lists. */
static void quick_drain_locked(struct memmgr_buddy *b)
{
	struct page *page;

	while ((page = quick_pop_locked(b)))
		free_block_locked(b, page, 0);
}

/* The lowest order from @want up with a free block, or one past the top. */
static unsigned int find_order_locked(struct memmgr_buddy *b, unsigned int want)
{
	unsigned int k;

	for (k = want; k <= MEMMGR_MAX_ORDER && list_empty(&b->free[k]); k++)
		;
	return k;
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

	if (!want && b->nr_quick)
		return quick_pop_locked(b);
	k = find_order_locked(b, want);
	if (k > MEMMGR_MAX_ORDER && b->nr_quick) {
		quick_drain_locked(b);
		k = find_order_locked(b, want);
	}
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
 * Context: process context, may sleep.  The pages may be stale: pass
 * each through memmgr_page_expose() before a client can see it.  Waits
 * for pages that freed or evicted buffers are still giving back; a fatal
 * signal ends the wait.
 * Return: 0, or -EINTR with the blocks taken so far on @blocks, for the
 * caller to give back.
 */
int memmgr_buddy_alloc(struct memmgr_buddy *b, unsigned long pages,
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
			if (b->short_of_pages)
				b->short_of_pages(b);
			if (wait_event_killable(b->wait,
						READ_ONCE(b->free_pages)))
				return -EINTR;
			continue;
		}
		list_add_tail(&page->lru, blocks);
		pages -= 1UL << order;
	}
	return 0;
}

/**
 * memmgr_page_expose() - make a page of a new allocation safe to show
 * @page:	a page its caller has from memmgr_buddy_alloc() and has not
 *		freed; the caller serialises exposures of it
 *
 * Zeroes the page if an earlier owner may have written it.  Exposing it
 * again in the same allocation does nothing: the owner's data stays.
 *
 * Context: any context that may touch the page; does not sleep.
 */
void memmgr_page_expose(struct page *page)
{
	unsigned long bits = pg_bits(page);

	if (!(bits & PG_STALE))
		return;
	clear_highpage(page);
	pg_set_bits(page, bits & ~PG_STALE);
}

/* Mark every page of a chain as possibly written by its owner. */
static void mark_stale(struct list_head *blocks)
{
	struct page *head;

	list_for_each_entry(head, blocks, lru) {
		unsigned int i, n = 1U << pg_order(head);

		for (i = 0; i < n; i++)
			pg_set_bits(head + i, pg_bits(head + i) | PG_STALE);
	}
}

/**
 * memmgr_buddy_free() - give a chain of blocks back
 * @b:		the buddy
 * @blocks:	head pages chained through lru, as memmgr_buddy_alloc()
 *		made them; the list is left empty
 * @written:	a client may have written the pages: they are marked stale
 *		and zeroed when they are next exposed
 *
 * Context: any context that may take a spinlock.  No mapping of the
 * pages may remain.
 */
void memmgr_buddy_free(struct memmgr_buddy *b, struct list_head *blocks,
		       bool written)
{
	struct page *page, *next;

	if (written)
		mark_stale(blocks);
	spin_lock(&b->lock);
	list_for_each_entry_safe(page, next, blocks, lru) {
		unsigned int order = pg_order(page);

		list_del(&page->lru);
		if (order || !quick_push_locked(b, page))
			free_block_locked(b, page, order);
	}
	spin_unlock(&b->lock);
	if (wq_has_sleeper(&b->wait))
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
	b->nr_quick = 0;
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

	spin_lock(&b->lock);
	quick_drain_locked(b);
	spin_unlock(&b->lock);
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

/*
 * A copy of the free block counts per order, for debugfs; the pages on
 * @quick count as blocks of order 0.
 */
void memmgr_buddy_counts(struct memmgr_buddy *b,
			 unsigned long nr_free[MEMMGR_MAX_ORDER + 1])
{
	spin_lock(&b->lock);
	memcpy(nr_free, b->nr_free, sizeof(b->nr_free));
	nr_free[0] += b->nr_quick;
	spin_unlock(&b->lock);
}
