/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memmgr's buddy allocator over a reserve taken from the kernel at load.
 */
#ifndef _MEMMGR_BUDDY_H
#define _MEMMGR_BUDDY_H

#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/list.h>
#include <linux/mmzone.h>
#include <linux/spinlock.h>
#include <linux/wait.h>

#include "compat.h"

/*
 * The largest block: order 10, 4 MiB with 4 KiB pages.  The reserve is
 * taken from the kernel in blocks of up to this order, so the kernel must
 * be able to allocate it.
 */
#define MEMMGR_MAX_ORDER	10

static_assert(BIT(MEMMGR_MAX_ORDER) <= MEMMGR_KERNEL_MAX_BLOCK_PAGES,
	      "MEMMGR_MAX_ORDER is above the kernel's largest order");

/* Freed single pages kept unmerged for the next single-page requests. */
#define MEMMGR_QUICK_MAX	64

/**
 * struct memmgr_buddy - a reserve of pages managed by order
 * @lock:	protects @free, @nr_free, @quick, @nr_quick and @free_pages
 * @free:	free blocks per order, linked through the head page's lru
 * @nr_free:	number of blocks in each @free list
 * @quick:	freed single pages not merged yet, a stack: newest on top;
 *		merged when a larger request finds no block of its order
 * @nr_quick:	pages on @quick
 * @free_pages:	pages in all @free lists and on @quick
 * @total_pages: pages reserved from the kernel; fixed after reserve
 * @wait:	allocations waiting for pages on their way back
 * @short_of_pages: if set, called before an allocation waits on @wait, so
 *		that whoever holds the pages on their way back hurries
 *
 * Each page of the reserve keeps in page->private the order of the block
 * the kernel gave it in (its home block: blocks never merge beyond it), and
 * a free block's head page keeps its own order and a free bit; a page that
 * may hold an earlier owner's data is stale until it is next exposed.
 * Blocks handed out are chained through their head page's lru.
 */
struct memmgr_buddy {
	spinlock_t lock;		/* see above */
	struct list_head free[MEMMGR_MAX_ORDER + 1];
	unsigned long nr_free[MEMMGR_MAX_ORDER + 1];
	struct page *quick[MEMMGR_QUICK_MAX];
	unsigned long nr_quick;
	unsigned long free_pages;
	unsigned long total_pages;
	wait_queue_head_t wait;
	void (*short_of_pages)(struct memmgr_buddy *b);
};

int memmgr_buddy_reserve(struct memmgr_buddy *b, unsigned long pages);
void memmgr_buddy_release(struct memmgr_buddy *b);
int memmgr_buddy_alloc(struct memmgr_buddy *b, unsigned long pages,
		       struct list_head *blocks);
void memmgr_buddy_free(struct memmgr_buddy *b, struct list_head *blocks,
		       bool written);
void memmgr_page_expose(struct page *page);
unsigned int memmgr_block_order(struct page *head);
void memmgr_buddy_counts(struct memmgr_buddy *b,
			 unsigned long nr_free[MEMMGR_MAX_ORDER + 1]);

#endif /* _MEMMGR_BUDDY_H */
