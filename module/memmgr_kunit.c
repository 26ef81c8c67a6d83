// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for memmgr's buddy allocator and policy arithmetic, built as
 * their own module (memmgr_kunit.ko) where the kernel has CONFIG_KUNIT.
 * The two sources are compiled in here rather than exported from
 * memmgr.ko: 6.1 has no EXPORT_SYMBOL_IF_KUNIT, and the tests must not
 * widen memmgr's exported API.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <kunit/test.h>
#include <linux/highmem.h>

#include "memmgr_buddy.c"
#include "memmgr_policy.c"

/* A 64-page reserve; the kernel may hand it over in several blocks. */
#define RESERVE_PAGES	64

static unsigned long count_free(struct memmgr_buddy *b)
{
	unsigned long pages = 0;
	unsigned int order;

	for (order = 0; order <= MEMMGR_MAX_ORDER; order++)
		pages += b->nr_free[order] << order;
	return pages + b->nr_quick;
}

static unsigned long count_blocks(struct list_head *blocks)
{
	unsigned long n = 0;
	struct page *head;

	list_for_each_entry(head, blocks, lru)
		n++;
	return n;
}

static unsigned long chain_pages(struct list_head *blocks)
{
	unsigned long pages = 0;
	struct page *head;

	list_for_each_entry(head, blocks, lru)
		pages += 1UL << memmgr_block_order(head);
	return pages;
}

static int buddy_init(struct kunit *test)
{
	struct memmgr_buddy *b;

	b = kunit_kzalloc(test, sizeof(*b), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, b);
	KUNIT_ASSERT_EQ(test, memmgr_buddy_reserve(b, RESERVE_PAGES), 0);
	test->priv = b;
	return 0;
}

static void buddy_exit(struct kunit *test)
{
	memmgr_buddy_release(test->priv);
}

static void buddy_reserve_counts(struct kunit *test)
{
	struct memmgr_buddy *b = test->priv;

	KUNIT_EXPECT_EQ(test, b->total_pages, RESERVE_PAGES);
	KUNIT_EXPECT_EQ(test, b->free_pages, RESERVE_PAGES);
	KUNIT_EXPECT_EQ(test, count_free(b), RESERVE_PAGES);
}

/* n pages come as blocks of the orders of n's set bits, largest first. */
static void buddy_alloc_exact(struct kunit *test)
{
	struct memmgr_buddy *b = test->priv;
	LIST_HEAD(blocks);
	struct page *head;
	unsigned int orders[3], i = 0;

	memmgr_buddy_alloc(b, 7, &blocks);
	KUNIT_EXPECT_EQ(test, chain_pages(&blocks), 7);
	KUNIT_EXPECT_EQ(test, b->free_pages, RESERVE_PAGES - 7);
	list_for_each_entry(head, &blocks, lru) {
		KUNIT_ASSERT_LT(test, i, 3U);
		orders[i++] = memmgr_block_order(head);
	}
	KUNIT_EXPECT_EQ(test, i, 3U);
	KUNIT_EXPECT_EQ(test, orders[0], 2U);
	KUNIT_EXPECT_EQ(test, orders[1], 1U);
	KUNIT_EXPECT_EQ(test, orders[2], 0U);
	memmgr_buddy_free(b, &blocks, false);
	KUNIT_EXPECT_TRUE(test, list_empty(&blocks));
	KUNIT_EXPECT_EQ(test, b->free_pages, RESERVE_PAGES);
}

/* Freeing everything merges every block back to its home order. */
static void buddy_coalesce(struct kunit *test)
{
	struct memmgr_buddy *b = test->priv;
	unsigned long before[MEMMGR_MAX_ORDER + 1];
	LIST_HEAD(one);
	LIST_HEAD(all);
	unsigned int i;

	memcpy(before, b->nr_free, sizeof(before));
	for (i = 0; i < RESERVE_PAGES; i++) {
		memmgr_buddy_alloc(b, 1, &one);
		list_splice_tail_init(&one, &all);
	}
	KUNIT_EXPECT_EQ(test, b->free_pages, 0);
	KUNIT_EXPECT_EQ(test, chain_pages(&all), RESERVE_PAGES);
	memmgr_buddy_free(b, &all, false);
	/* The first MEMMGR_QUICK_MAX single pages wait unmerged. */
	KUNIT_EXPECT_EQ(test, b->nr_quick,
			min_t(unsigned long, RESERVE_PAGES, MEMMGR_QUICK_MAX));
	KUNIT_EXPECT_EQ(test, b->free_pages, RESERVE_PAGES);
	spin_lock(&b->lock);
	quick_drain_locked(b);
	spin_unlock(&b->lock);
	KUNIT_EXPECT_EQ(test, b->nr_quick, 0);
	for (i = 0; i <= MEMMGR_MAX_ORDER; i++)
		KUNIT_EXPECT_EQ(test, b->nr_free[i], before[i]);
}

/*
 * Single pages come from the quick list, newest first; a request larger
 * than any free block merges the quick list before falling back to
 * smaller blocks, so it gets the reserve's own blocks.
 */
static void buddy_quick(struct kunit *test)
{
	struct memmgr_buddy *b = test->priv;
	unsigned long blocks = 0;
	struct page *last, *again;
	LIST_HEAD(one);
	LIST_HEAD(all);
	unsigned int i;

	for (i = 0; i <= MEMMGR_MAX_ORDER; i++)
		blocks += b->nr_free[i];
	for (i = 0; i < RESERVE_PAGES; i++) {
		memmgr_buddy_alloc(b, 1, &one);
		list_splice_tail_init(&one, &all);
	}
	last = list_last_entry(&all, struct page, lru);
	memmgr_buddy_free(b, &all, false);
	KUNIT_ASSERT_GT(test, b->nr_quick, 0);
	memmgr_buddy_alloc(b, 1, &one);
	again = list_first_entry(&one, struct page, lru);
	KUNIT_EXPECT_PTR_EQ(test, again, last);
	memmgr_buddy_free(b, &one, false);

	memmgr_buddy_alloc(b, RESERVE_PAGES, &all);
	KUNIT_EXPECT_EQ(test, b->nr_quick, 0);
	KUNIT_EXPECT_EQ(test, chain_pages(&all), RESERVE_PAGES);
	KUNIT_EXPECT_EQ(test, count_blocks(&all), blocks);
	memmgr_buddy_free(b, &all, false);
}

/* With only single free pages left, a larger request still succeeds. */
static void buddy_fragmented(struct kunit *test)
{
	struct memmgr_buddy *b = test->priv;
	struct page *head, *next;
	LIST_HEAD(all);
	LIST_HEAD(odd);
	LIST_HEAD(got);
	unsigned int i = 0;

	memmgr_buddy_alloc(b, RESERVE_PAGES, &all);
	/* Split into single pages by freeing every other page's block. */
	memmgr_buddy_free(b, &all, false);
	for (i = 0; i < RESERVE_PAGES; i++) {
		LIST_HEAD(one);

		memmgr_buddy_alloc(b, 1, &one);
		list_splice_tail_init(&one, i % 2 ? &odd : &all);
	}
	memmgr_buddy_free(b, &odd, false);
	KUNIT_EXPECT_EQ(test, b->free_pages, RESERVE_PAGES / 2);
	KUNIT_EXPECT_EQ(test, b->nr_free[0] + b->nr_quick, RESERVE_PAGES / 2);
	memmgr_buddy_alloc(b, 5, &got);
	KUNIT_EXPECT_EQ(test, chain_pages(&got), 5);
	i = 0;
	list_for_each_entry_safe(head, next, &got, lru)
		KUNIT_EXPECT_EQ(test, memmgr_block_order(head), 0U);
	memmgr_buddy_free(b, &got, false);
	memmgr_buddy_free(b, &all, false);
	KUNIT_EXPECT_EQ(test, b->free_pages, RESERVE_PAGES);
}

static void fill_chain(struct list_head *blocks, int byte)
{
	struct page *head;
	u8 *p;

	list_for_each_entry(head, blocks, lru) {
		unsigned int i, n = 1U << memmgr_block_order(head);

		for (i = 0; i < n; i++) {
			p = kmap_local_page(head + i);
			memset(p, byte, PAGE_SIZE);
			kunmap_local(p);
		}
	}
}

/* Pages of the chain that read as @byte throughout, exposed first. */
static unsigned long expose_and_count(struct list_head *blocks, int byte)
{
	unsigned long same = 0;
	struct page *head;
	u8 *p;

	list_for_each_entry(head, blocks, lru) {
		unsigned int i, n = 1U << memmgr_block_order(head);

		for (i = 0; i < n; i++) {
			memmgr_page_expose(head + i);
			p = kmap_local_page(head + i);
			same += !memchr_inv(p, byte, PAGE_SIZE);
			kunmap_local(p);
		}
	}
	return same;
}

/*
 * Written pages come back stale and read as zeros once exposed; exposing
 * again within one allocation keeps what its owner wrote; a page stays
 * stale until it is exposed.
 */
static void buddy_zeroes(struct kunit *test)
{
	struct memmgr_buddy *b = test->priv;
	LIST_HEAD(blocks);

	memmgr_buddy_alloc(b, RESERVE_PAGES, &blocks);
	KUNIT_EXPECT_EQ(test, expose_and_count(&blocks, 0), RESERVE_PAGES);
	fill_chain(&blocks, 0xa5);
	KUNIT_EXPECT_EQ(test, expose_and_count(&blocks, 0xa5), RESERVE_PAGES);
	memmgr_buddy_free(b, &blocks, true);
	memmgr_buddy_alloc(b, RESERVE_PAGES, &blocks);
	KUNIT_EXPECT_EQ(test, expose_and_count(&blocks, 0), RESERVE_PAGES);
	fill_chain(&blocks, 0x5a);
	KUNIT_EXPECT_EQ(test, expose_and_count(&blocks, 0x5a), RESERVE_PAGES);
	memmgr_buddy_free(b, &blocks, true);
	/* Freed unwritten, stale pages stay stale through merges. */
	memmgr_buddy_alloc(b, RESERVE_PAGES, &blocks);
	fill_chain(&blocks, 0x77);
	memmgr_buddy_free(b, &blocks, false);
	memmgr_buddy_alloc(b, RESERVE_PAGES, &blocks);
	KUNIT_EXPECT_EQ(test, expose_and_count(&blocks, 0), RESERVE_PAGES);
	memmgr_buddy_free(b, &blocks, true);
}

static struct kunit_case buddy_cases[] = {
	KUNIT_CASE(buddy_reserve_counts),
	KUNIT_CASE(buddy_alloc_exact),
	KUNIT_CASE(buddy_coalesce),
	KUNIT_CASE(buddy_quick),
	KUNIT_CASE(buddy_fragmented),
	KUNIT_CASE(buddy_zeroes),
	{}
};

static struct kunit_suite buddy_suite = {
	.name = "memmgr_buddy",
	.init = buddy_init,
	.exit = buddy_exit,
	.test_cases = buddy_cases,
};

/* The policy: T = 1000 pages, S = E = 500. */
struct policy_case {
	const char *desc;
	u32 pool;
	u64 storage_used, exec_used, evictable, pages;
	enum memmgr_verdict verdict;
	u64 evict;
};

static const struct policy_case policy_cases[] = {
	{ "exec within E", MEMMGR_POOL_EXEC, 0, 0, 0, 500, MEMMGR_GRANT, 0 },
	{ "exec borrows free storage", MEMMGR_POOL_EXEC, 0, 500, 0, 500,
	  MEMMGR_GRANT, 0 },
	{ "exec never takes used storage", MEMMGR_POOL_EXEC, 400, 500, 400,
	  101, MEMMGR_WAIT, 0 },
	{ "exec over T", MEMMGR_POOL_EXEC, 0, 0, 0, 1001, MEMMGR_TOO_BIG, 0 },
	{ "storage within S", MEMMGR_POOL_STORAGE, 0, 0, 0, 500, MEMMGR_GRANT,
	  0 },
	{ "storage over S", MEMMGR_POOL_STORAGE, 0, 0, 0, 501, MEMMGR_TOO_BIG,
	  0 },
	{ "storage full, nothing evictable", MEMMGR_POOL_STORAGE, 500, 0, 0, 1,
	  MEMMGR_WAIT, 0 },
	{ "storage evicts what is missing", MEMMGR_POOL_STORAGE, 500, 0, 500,
	  120, MEMMGR_EVICT, 120 },
	{ "storage: all or nothing", MEMMGR_POOL_STORAGE, 500, 0, 100, 150,
	  MEMMGR_WAIT, 0 },
	{ "storage cannot use borrowed", MEMMGR_POOL_STORAGE, 200, 700, 0, 101,
	  MEMMGR_WAIT, 0 },
	{ "storage evicts past borrowed", MEMMGR_POOL_STORAGE, 350, 600, 30,
	  80, MEMMGR_EVICT, 30 },
};

static void policy_case_desc(const struct policy_case *c, char *desc)
{
	strscpy(desc, c->desc, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(policy, policy_cases, policy_case_desc);

static void policy_verdicts(struct kunit *test)
{
	const struct policy_case *c = test->param_value;
	struct memmgr_policy p;
	u64 evict = 0;

	memmgr_policy_init(&p, 1000, 50);
	p.used[MEMMGR_POOL_STORAGE] = c->storage_used;
	p.used[MEMMGR_POOL_EXEC] = c->exec_used;
	p.evictable = c->evictable;
	KUNIT_EXPECT_EQ(test, memmgr_policy_check(&p, c->pool, c->pages,
						  &evict), c->verdict);
	KUNIT_EXPECT_EQ(test, evict, c->evict);
}

static void policy_borrowed_returns(struct kunit *test)
{
	struct memmgr_policy p;

	memmgr_policy_init(&p, 1000, 50);
	memmgr_policy_charge(&p, MEMMGR_POOL_EXEC, 700);
	KUNIT_EXPECT_EQ(test, memmgr_policy_borrowed(&p, MEMMGR_POOL_EXEC),
			200);
	KUNIT_EXPECT_EQ(test, memmgr_policy_free(&p), 300);
	memmgr_policy_uncharge(&p, MEMMGR_POOL_EXEC, 250);
	KUNIT_EXPECT_EQ(test, memmgr_policy_borrowed(&p, MEMMGR_POOL_EXEC),
			0);
}

static struct kunit_case policy_test_cases[] = {
	KUNIT_CASE_PARAM(policy_verdicts, policy_gen_params),
	KUNIT_CASE(policy_borrowed_returns),
	{}
};

static struct kunit_suite policy_suite = {
	.name = "memmgr_policy",
	.test_cases = policy_test_cases,
};

kunit_test_suites(&buddy_suite, &policy_suite);

MODULE_DESCRIPTION("KUnit tests of memmgr's buddy allocator and policy");
MODULE_LICENSE("GPL");
