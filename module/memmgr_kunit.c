// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for memmgr's buddy allocator, evictable set, offset
 * allocator and policy arithmetic, built as their own module
 * (memmgr_kunit.ko) where the kernel has CONFIG_KUNIT.
 * Their sources are compiled in here rather than exported from
 * memmgr.ko: 6.1 has no EXPORT_SYMBOL_IF_KUNIT, and the tests must not
 * widen memmgr's exported API.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/highmem.h>
#include <linux/kthread.h>

#include "memmgr_buddy.c"
#include "memmgr_evict.c"
#include "memmgr_offset.c"
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

struct buddy_waiter {
	struct memmgr_buddy *b;
	struct list_head blocks;
	int ret;
	struct completion done;
};

static int buddy_waiter_fn(void *arg)
{
	struct buddy_waiter *w = arg;

	/*
	 * SIGKILL as a process gets it: fatal, so that it is pending on the
	 * thread and fatal_signal_pending() sees it (allow_signal() would
	 * leave it on the shared queue, where killable waits do not look).
	 */
	kernel_sigaction(SIGKILL, SIG_DFL);
	w->ret = memmgr_buddy_alloc(w->b, 1, &w->blocks);
	complete(&w->done);
	return 0;
}

/*
 * An allocation that waits for pages on their way back ends on a fatal
 * signal: -EINTR, with nothing taken.  (An uninterruptible wait never
 * ends here: no page comes back until the test has its answer.)
 */
static void buddy_wait_killable(struct kunit *test)
{
	struct memmgr_buddy *b = test->priv;
	struct buddy_waiter *w = kunit_kzalloc(test, sizeof(*w), GFP_KERNEL);
	struct task_struct *task;
	unsigned long done;
	LIST_HEAD(all);
	int i;

	KUNIT_ASSERT_NOT_NULL(test, w);
	w->b = b;
	INIT_LIST_HEAD(&w->blocks);
	init_completion(&w->done);
	KUNIT_ASSERT_EQ(test, memmgr_buddy_alloc(b, RESERVE_PAGES, &all), 0);
	task = kthread_run(buddy_waiter_fn, w, "memmgr_kunit_wait");
	KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	for (i = 0; i < 500 && !wq_has_sleeper(&b->wait); i++)
		msleep(20);
	KUNIT_EXPECT_TRUE(test, wq_has_sleeper(&b->wait));
	send_sig(SIGKILL, task, 1);
	done = wait_for_completion_timeout(&w->done, 10 * HZ);
	KUNIT_EXPECT_NE(test, done, 0);
	memmgr_buddy_free(b, &all, false);
	/* If it is still waiting, the pages let it finish. */
	if (!done)
		wait_for_completion(&w->done);
	KUNIT_EXPECT_EQ(test, w->ret, -EINTR);
	KUNIT_EXPECT_TRUE(test, list_empty(&w->blocks));
	memmgr_buddy_free(b, &w->blocks, false);
}

static struct kunit_case buddy_cases[] = {
	KUNIT_CASE(buddy_reserve_counts),
	KUNIT_CASE(buddy_alloc_exact),
	KUNIT_CASE(buddy_coalesce),
	KUNIT_CASE(buddy_quick),
	KUNIT_CASE(buddy_fragmented),
	KUNIT_CASE(buddy_zeroes),
	KUNIT_CASE(buddy_wait_killable),
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

/*
 * The evictable set, with buffers that exist only here: nothing but their
 * sizes and places in the set is used.
 */
struct evict_fixture {
	struct memmgr_evictable e;
	struct memmgr_buffer *bufs;
	unsigned int n;
};

/* @n buffers of @pages pages each, added in index order. */
static struct evict_fixture *evict_setup(struct kunit *test, u64 reserve,
					 u64 pages, unsigned int n)
{
	struct evict_fixture *fx = kunit_kzalloc(test, sizeof(*fx), GFP_KERNEL);
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, fx);
	KUNIT_ASSERT_EQ(test, memmgr_evictable_init(&fx->e, reserve), 0);
	fx->bufs = kvcalloc(n, sizeof(*fx->bufs), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, fx->bufs);
	fx->n = n;
	for (i = 0; i < n; i++) {
		fx->bufs[i].nr_pages = pages;
		INIT_LIST_HEAD(&fx->bufs[i].evict_node);
		memmgr_evictable_add(&fx->e, &fx->bufs[i]);
	}
	return fx;
}

static void evict_teardown(struct evict_fixture *fx)
{
	kvfree(fx->bufs);
	memmgr_evictable_exit(&fx->e);
}

/*
 * The case of issue 11: 32,768 two-page buffers and one page of room.  No
 * bucket can hold a victim, so the search looks at no buffer at all (a
 * walk of the buffers looked at all 32,768).
 */
static void evict_select_bounded(struct kunit *test)
{
	struct evict_fixture *fx = evict_setup(test, 65537, 2, 32768);
	LIST_HEAD(picked);
	LIST_HEAD(parked);

	KUNIT_EXPECT_FALSE(test, memmgr_evict_select(&fx->e, false, 1, 1,
						     &picked, &parked));
	KUNIT_EXPECT_FALSE(test, memmgr_evict_select(&fx->e, true, 1, 1,
						     &picked, &parked));
	KUNIT_EXPECT_EQ(test, fx->e.examined, 0);
	KUNIT_EXPECT_TRUE(test, list_empty(&picked));
	KUNIT_EXPECT_EQ(test, fx->e.count, 32768);
	/* Two pages of room: the oldest buffer, the only one looked at. */
	KUNIT_EXPECT_TRUE(test, memmgr_evict_select(&fx->e, true, 1, 2,
						    &picked, &parked));
	KUNIT_EXPECT_EQ(test, fx->e.examined, 1);
	KUNIT_EXPECT_PTR_EQ(test, list_first_entry(&picked,
						   struct memmgr_buffer,
						   evict_node), &fx->bufs[0]);
	KUNIT_EXPECT_EQ(test, fx->bufs[0].evict_idx, -1);
	KUNIT_EXPECT_EQ(test, fx->e.count, 32767);
	evict_teardown(fx);
}

/* Bucket 1's array and LRU list, in order. */
static void evict_snapshot(struct evict_fixture *fx,
			   struct memmgr_buffer **slots,
			   struct memmgr_buffer **lru)
{
	struct memmgr_buffer *buf;
	unsigned int i = 0;

	memcpy(slots, fx->e.bufs[1], fx->n * sizeof(*slots));
	list_for_each_entry(buf, &fx->e.lru[1], lru_node)
		lru[i++] = buf;
}

/*
 * Need 7 pages in 7 of room, from two-page buffers: three are chosen, then
 * one page is left and nothing fits.  Everything goes back as it was.
 */
static void evict_select_restores(struct kunit *test)
{
	struct memmgr_buffer *slots[8], *lru[8], *slots2[8], *lru2[8];
	struct evict_fixture *fx = evict_setup(test, 64, 2, 8);
	struct memmgr_buffer *buf;
	unsigned int i, round;
	LIST_HEAD(picked);
	LIST_HEAD(parked);

	/* Some LRU order that is not the array's. */
	memmgr_evictable_touch(&fx->e, &fx->bufs[2]);
	memmgr_evictable_touch(&fx->e, &fx->bufs[0]);
	memmgr_evictable_del(&fx->e, &fx->bufs[5]);
	memmgr_evictable_add(&fx->e, &fx->bufs[5]);
	evict_snapshot(fx, slots, lru);
	for (round = 0; round < 20; round++) {
		bool lru_policy = round & 1;

		KUNIT_EXPECT_FALSE(test, memmgr_evict_select(&fx->e, lru_policy,
							     7, 7, &picked, &parked));
		KUNIT_EXPECT_TRUE(test, list_empty(&picked));
		KUNIT_EXPECT_EQ(test, fx->e.count, 8);
		evict_snapshot(fx, slots2, lru2);
		for (i = 0; i < 8; i++) {
			KUNIT_EXPECT_PTR_EQ(test, slots2[i], slots[i]);
			KUNIT_EXPECT_PTR_EQ(test, lru2[i], lru[i]);
			KUNIT_EXPECT_PTR_EQ(test,
					    slots[fx->bufs[i].evict_idx],
					    &fx->bufs[i]);
		}
	}
	/* The LRU choice that works takes the oldest first. */
	KUNIT_EXPECT_TRUE(test, memmgr_evict_select(&fx->e, true, 6, 7,
						    &picked, &parked));
	i = 0;
	list_for_each_entry(buf, &picked, evict_node)
		KUNIT_EXPECT_PTR_EQ(test, buf, lru[i++]);
	KUNIT_EXPECT_EQ(test, i, 3);
	KUNIT_EXPECT_EQ(test, fx->e.count, 5);
	evict_teardown(fx);
}

/* With no room limit, the LRU victim is the oldest of every bucket. */
static void evict_victim_lru_across_buckets(struct kunit *test)
{
	struct evict_fixture *fx = evict_setup(test, 1024, 1, 4);
	struct memmgr_buffer *big = kunit_kcalloc(test, 3, sizeof(*big),
						  GFP_KERNEL);
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, big);
	for (i = 0; i < 3; i++) {
		big[i].nr_pages = 5 << i;	/* buckets 2, 3 and 4 */
		memmgr_evictable_add(&fx->e, &big[i]);
	}
	for (i = 0; i < 4; i++)
		memmgr_evictable_touch(&fx->e, &fx->bufs[i]);
	KUNIT_EXPECT_PTR_EQ(test, memmgr_evict_victim(&fx->e, true), &big[0]);
	memmgr_evictable_touch(&fx->e, &big[0]);
	KUNIT_EXPECT_PTR_EQ(test, memmgr_evict_victim(&fx->e, true), &big[1]);
	memmgr_evictable_del(&fx->e, &big[1]);
	memmgr_evictable_del(&fx->e, &big[2]);
	KUNIT_EXPECT_PTR_EQ(test, memmgr_evict_victim(&fx->e, true),
			    &fx->bufs[0]);
	/* Buckets 0 (the one-page buffers) and 2 (big[0]) are left. */
	KUNIT_EXPECT_EQ(test, fx->e.mask, BIT_ULL(0) | BIT_ULL(2));
	memmgr_evictable_del(&fx->e, &big[0]);
	for (i = 0; i < 4; i++)
		memmgr_evictable_del(&fx->e, &fx->bufs[i]);
	KUNIT_EXPECT_EQ(test, fx->e.count, 0);
	KUNIT_EXPECT_EQ(test, fx->e.mask, 0);
	evict_teardown(fx);
}

/*
 * 64 two-page buffers cannot make 127 pages within 127 of room: the
 * search takes 63 of them before it finds so, then puts them back.  The
 * same search fails at once until the set changes.
 */
static void evict_select_failure_remembered(struct kunit *test)
{
	struct evict_fixture *fx = evict_setup(test, 256, 2, 64);
	LIST_HEAD(picked);
	LIST_HEAD(parked);
	u64 once;

	KUNIT_EXPECT_FALSE(test, memmgr_evict_select(&fx->e, true, 127, 127,
						     &picked, &parked));
	once = fx->e.examined;
	KUNIT_EXPECT_EQ(test, once, 63);
	KUNIT_EXPECT_FALSE(test, memmgr_evict_select(&fx->e, true, 127, 127,
						     &picked, &parked));
	KUNIT_EXPECT_EQ(test, fx->e.examined, once);
	/* Another search, or the same one after a change, looks again. */
	KUNIT_EXPECT_FALSE(test, memmgr_evict_select(&fx->e, false, 127, 127,
						     &picked, &parked));
	KUNIT_EXPECT_GT(test, fx->e.examined, once);
	once = fx->e.examined;
	memmgr_evictable_touch(&fx->e, &fx->bufs[3]);
	KUNIT_EXPECT_FALSE(test, memmgr_evict_select(&fx->e, true, 127, 127,
						     &picked, &parked));
	KUNIT_EXPECT_EQ(test, fx->e.examined, once + 63);
	KUNIT_EXPECT_TRUE(test, memmgr_evict_select(&fx->e, true, 126, 127,
						    &picked, &parked));
	KUNIT_EXPECT_EQ(test, fx->e.count, 1);
	evict_teardown(fx);
}

/* Give the fixture's buffers state words: generation i + 1, no pin. */
static u64 *evict_words(struct kunit *test, struct evict_fixture *fx)
{
	u64 *words = kunit_kcalloc(test, fx->n, sizeof(*words), GFP_KERNEL);
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, words);
	for (i = 0; i < fx->n; i++) {
		fx->bufs[i].seq = i + 1;
		fx->bufs[i].word = &words[i];
		words[i] = (u64)(i + 1) << MEMMGR_STATE_GEN_SHIFT;
	}
	return words;
}

static bool on_list(struct list_head *head, struct memmgr_buffer *buf)
{
	struct memmgr_buffer *b;

	list_for_each_entry(b, head, evict_node)
		if (b == buf)
			return true;
	return false;
}

/*
 * Eight one-page buffers in LRU order 0..7, with state words: 0 and 2
 * pinned, 4 with a word of another generation, 1 used since the last
 * look.  Three pages are needed: 0, 2 and 4 are parked (PARKED set in the
 * pinned words, the foreign word left alone), 1 gets a second chance
 * (USED cleared, now the most recently used), and 3, 5, 6 are claimed.
 */
static void evict_select_state_words(struct kunit *test)
{
	static const unsigned int victims[] = { 3, 5, 6 }, pinned[] = { 0, 2, 4 };
	struct evict_fixture *fx = evict_setup(test, 64, 1, 8);
	u64 *w = evict_words(test, fx), g[8];
	LIST_HEAD(picked);
	LIST_HEAD(parked);
	unsigned int i;

	for (i = 0; i < 8; i++)
		g[i] = w[i];
	w[0] |= 1;
	w[2] |= 2 | MEMMGR_STATE_USED;
	w[4] = g[5];
	w[1] |= MEMMGR_STATE_USED;
	KUNIT_EXPECT_TRUE(test, memmgr_evict_select(&fx->e, true, 3, U64_MAX,
						    &picked, &parked));
	KUNIT_EXPECT_EQ(test, list_count_nodes(&picked), 3);
	KUNIT_EXPECT_EQ(test, list_count_nodes(&parked), 3);
	for (i = 0; i < ARRAY_SIZE(victims); i++) {
		KUNIT_EXPECT_TRUE(test, on_list(&picked, &fx->bufs[victims[i]]));
		KUNIT_EXPECT_EQ(test, w[victims[i]],
				g[victims[i]] | MEMMGR_STATE_EVICTING);
		KUNIT_EXPECT_EQ(test, fx->bufs[victims[i]].evict_idx, -1);
		KUNIT_EXPECT_TRUE(test, on_list(&parked,
						&fx->bufs[pinned[i]]));
	}
	KUNIT_EXPECT_EQ(test, w[0], g[0] | 1 | MEMMGR_STATE_PARKED);
	KUNIT_EXPECT_EQ(test, w[2], g[2] | 2 | MEMMGR_STATE_USED |
			MEMMGR_STATE_PARKED);
	KUNIT_EXPECT_EQ(test, w[4], g[5]);
	KUNIT_EXPECT_EQ(test, w[1], g[1]);
	KUNIT_EXPECT_EQ(test, fx->e.count, 2);
	/* 1 went behind 7 on its second chance: 7 is the oldest now. */
	KUNIT_EXPECT_PTR_EQ(test, memmgr_evict_victim(&fx->e, true),
			    &fx->bufs[7]);
	evict_teardown(fx);
}

/*
 * A search that falls short undoes its claims (the words are as they
 * were, USED included) but keeps the pinned buffers it found parked.
 */
static void evict_select_state_undo(struct kunit *test)
{
	struct evict_fixture *fx = evict_setup(test, 64, 1, 4);
	u64 *w = evict_words(test, fx), g[4];
	LIST_HEAD(picked);
	LIST_HEAD(parked);
	unsigned int i;

	for (i = 0; i < 4; i++)
		g[i] = w[i];
	w[1] |= 1;
	w[3] |= MEMMGR_STATE_USED;
	KUNIT_EXPECT_FALSE(test, memmgr_evict_select(&fx->e, false, 4, U64_MAX,
						     &picked, &parked));
	KUNIT_EXPECT_TRUE(test, list_empty(&picked));
	KUNIT_EXPECT_EQ(test, list_count_nodes(&parked), 1);
	KUNIT_EXPECT_TRUE(test, on_list(&parked, &fx->bufs[1]));
	KUNIT_EXPECT_EQ(test, w[0], g[0]);
	KUNIT_EXPECT_EQ(test, w[1], g[1] | 1 | MEMMGR_STATE_PARKED);
	KUNIT_EXPECT_EQ(test, w[2], g[2]);
	KUNIT_EXPECT_EQ(test, w[3], g[3] | MEMMGR_STATE_USED);
	KUNIT_EXPECT_EQ(test, fx->e.count, 3);
	KUNIT_EXPECT_EQ(test, fx->bufs[1].evict_idx, -1);
	KUNIT_EXPECT_GE(test, fx->bufs[0].evict_idx, 0);
	KUNIT_EXPECT_GE(test, fx->bufs[2].evict_idx, 0);
	KUNIT_EXPECT_GE(test, fx->bufs[3].evict_idx, 0);
	evict_teardown(fx);
}

static struct kunit_case evict_test_cases[] = {
	KUNIT_CASE(evict_select_state_words),
	KUNIT_CASE(evict_select_state_undo),
	KUNIT_CASE(evict_select_bounded),
	KUNIT_CASE(evict_select_failure_remembered),
	KUNIT_CASE(evict_select_restores),
	KUNIT_CASE(evict_victim_lru_across_buckets),
	{}
};

static struct kunit_suite evict_suite = {
	.name = "memmgr_evict",
	.test_cases = evict_test_cases,
};

/*
 * The offset allocator, against a model: a bitmap of the pages in use,
 * whose lowest free run of each size is where the next buffer must go.
 */
#define OFFSET_SPACE	256

struct offset_fixture {
	struct memmgr_file f;
	struct memmgr_buffer bufs[64];
	bool live[64];
	DECLARE_BITMAP(used, OFFSET_SPACE + 64);
};

static u64 model_first_fit(struct offset_fixture *fx, u64 pages)
{
	unsigned long start = 0, zero;

	for (;;) {
		zero = find_next_zero_bit(fx->used, OFFSET_SPACE + 64, start);
		start = find_next_bit(fx->used, OFFSET_SPACE + 64, zero);
		if (start - zero >= pages)
			return zero;
	}
}

/* Every buffer's gap and subtree gap are what they must be. */
static void offset_check_tree(struct kunit *test, struct offset_fixture *fx)
{
	struct rb_node *node;
	u64 end = 0;

	for (node = rb_first(&fx->f.offsets); node; node = rb_next(node)) {
		struct memmgr_buffer *b = offset_entry(node);
		u64 max = b->gap;

		KUNIT_EXPECT_EQ(test, b->gap, b->pgoff - end);
		if (node->rb_left)
			max = max_t(u64, max, subtree_gap(node->rb_left));
		if (node->rb_right)
			max = max_t(u64, max, subtree_gap(node->rb_right));
		KUNIT_EXPECT_EQ(test, b->subtree_gap, max);
		end = b->pgoff + b->nr_pages;
	}
}

static void offset_first_fit_model(struct kunit *test)
{
	struct offset_fixture *fx = kunit_kzalloc(test, sizeof(*fx),
						  GFP_KERNEL);
	unsigned int step, i;

	KUNIT_ASSERT_NOT_NULL(test, fx);
	mutex_init(&fx->f.lock);
	fx->f.offsets = RB_ROOT;
	mutex_lock(&fx->f.lock);
	for (step = 0; step < 2000; step++) {
		i = get_random_u32_below(64);
		if (fx->live[i]) {
			memmgr_offset_erase(&fx->f, &fx->bufs[i]);
			bitmap_clear(fx->used, fx->bufs[i].pgoff,
				     fx->bufs[i].nr_pages);
			fx->live[i] = false;
		} else {
			u64 want;

			fx->bufs[i].nr_pages = 1 + get_random_u32_below(4);
			want = model_first_fit(fx, fx->bufs[i].nr_pages);
			KUNIT_ASSERT_EQ(test, memmgr_offset_insert(&fx->f,
								   &fx->bufs[i]),
					0);
			KUNIT_EXPECT_EQ(test, fx->bufs[i].pgoff, want);
			bitmap_set(fx->used, want, fx->bufs[i].nr_pages);
			fx->live[i] = true;
		}
		KUNIT_EXPECT_PTR_EQ(test,
				    memmgr_offset_find(&fx->f, fx->bufs[i].pgoff),
				    fx->live[i] ? &fx->bufs[i] : NULL);
		if (step % 100 == 0)
			offset_check_tree(test, fx);
	}
	offset_check_tree(test, fx);
	mutex_unlock(&fx->f.lock);
}

/* The last range ends at MEMMGR_OFFSET_LIMIT; one page more is ENOSPC. */
static void offset_limit(struct kunit *test)
{
	u64 limit = MEMMGR_OFFSET_LIMIT >> PAGE_SHIFT;
	struct memmgr_file *f = kunit_kzalloc(test, sizeof(*f), GFP_KERNEL);
	struct memmgr_buffer *b = kunit_kcalloc(test, 3, sizeof(*b),
						GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, f);
	KUNIT_ASSERT_NOT_NULL(test, b);
	mutex_init(&f->lock);
	f->offsets = RB_ROOT;
	mutex_lock(&f->lock);
	b[0].nr_pages = limit - 1;
	KUNIT_EXPECT_EQ(test, memmgr_offset_insert(f, &b[0]), 0);
	b[1].nr_pages = 2;
	KUNIT_EXPECT_EQ(test, memmgr_offset_insert(f, &b[1]), -ENOSPC);
	b[1].nr_pages = 1;
	KUNIT_EXPECT_EQ(test, memmgr_offset_insert(f, &b[1]), 0);
	KUNIT_EXPECT_EQ(test, b[1].pgoff, limit - 1);
	b[2].nr_pages = 1;
	KUNIT_EXPECT_EQ(test, memmgr_offset_insert(f, &b[2]), -ENOSPC);
	memmgr_offset_erase(f, &b[0]);
	b[2].nr_pages = limit - 1;
	KUNIT_EXPECT_EQ(test, memmgr_offset_insert(f, &b[2]), 0);
	KUNIT_EXPECT_EQ(test, b[2].pgoff, 0);
	mutex_unlock(&f->lock);
}

static struct kunit_case offset_test_cases[] = {
	KUNIT_CASE(offset_first_fit_model),
	KUNIT_CASE(offset_limit),
	{}
};

static struct kunit_suite offset_suite = {
	.name = "memmgr_offset",
	.test_cases = offset_test_cases,
};

kunit_test_suites(&buddy_suite, &evict_suite, &offset_suite, &policy_suite);

MODULE_DESCRIPTION("KUnit tests of memmgr's buddy allocator, evictable set, offsets and policy");
MODULE_LICENSE("GPL");
