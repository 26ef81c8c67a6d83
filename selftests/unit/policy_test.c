// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of memmgr's policy arithmetic (module/memmgr_policy.c),
 * compiled without the kernel.  Each case sets the accounting by hand and
 * checks the verdict the rules of the README give for it.
 */
#include "kselftest_harness.h"
#include "memmgr_policy.h"

#define S MEMMGR_POOL_STORAGE
#define X MEMMGR_POOL_EXEC

/* T = 1000 pages, 50/50: S = 500, E = 500. */
static struct memmgr_policy p1000(u64 storage_used, u64 exec_used,
				  u64 evictable)
{
	struct memmgr_policy p;

	memmgr_policy_init(&p, 1000, 50);
	p.used[S] = storage_used;
	p.used[X] = exec_used;
	p.evictable = evictable;
	return p;
}

TEST(split_quotas)
{
	struct memmgr_policy p;

	memmgr_policy_init(&p, 1000, 50);
	ASSERT_EQ(1000, p.total);
	ASSERT_EQ(500, p.quota[S]);
	ASSERT_EQ(500, p.quota[X]);
	/* 1001 * 30 / 100 = 300.3: storage gets 300, execution the rest. */
	memmgr_policy_init(&p, 1001, 30);
	ASSERT_EQ(300, p.quota[S]);
	ASSERT_EQ(701, p.quota[X]);
	memmgr_policy_init(&p, 1000, 0);
	ASSERT_EQ(0, p.quota[S]);
	ASSERT_EQ(1000, p.quota[X]);
}

TEST(size_rounding)
{
	u64 pages = 0;

	ASSERT_TRUE(memmgr_size_to_pages(1, 12, &pages));
	ASSERT_EQ(1, pages);
	ASSERT_TRUE(memmgr_size_to_pages(4096, 12, &pages));
	ASSERT_EQ(1, pages);
	ASSERT_TRUE(memmgr_size_to_pages(4097, 12, &pages));
	ASSERT_EQ(2, pages);
	ASSERT_FALSE(memmgr_size_to_pages(0, 12, &pages));
	ASSERT_FALSE(memmgr_size_to_pages(UINT64_MAX, 12, &pages));
	ASSERT_FALSE(memmgr_size_to_pages(UINT64_MAX - 4094, 12, &pages));
	ASSERT_TRUE(memmgr_size_to_pages(UINT64_MAX - 4095, 12, &pages));
	ASSERT_EQ(UINT64_MAX >> 12, pages);
}

/* Rule 1: execution uses E, then borrows free storage memory. */
TEST(exec_borrows_free_storage)
{
	struct memmgr_policy p = p1000(0, 500, 0);
	u64 evict = 0;

	ASSERT_EQ(MEMMGR_GRANT, memmgr_policy_check(&p, X, 500, &evict));
	memmgr_policy_charge(&p, X, 200);
	ASSERT_EQ(700, p.used[X]);
	ASSERT_EQ(200, memmgr_policy_borrowed(&p, X));
	ASSERT_EQ(0, memmgr_policy_borrowed(&p, S));
	ASSERT_EQ(300, memmgr_policy_free(&p));
}

/* Rule 2: execution never takes what storage uses, and never evicts. */
TEST(exec_never_takes_used_storage)
{
	struct memmgr_policy p = p1000(400, 500, 400);
	u64 evict = 0;

	ASSERT_EQ(MEMMGR_GRANT, memmgr_policy_check(&p, X, 100, &evict));
	ASSERT_EQ(MEMMGR_WAIT, memmgr_policy_check(&p, X, 101, &evict));
}

/* Rule 3: storage stays within S, and cannot use what exec borrowed. */
TEST(storage_quota_and_borrowed)
{
	struct memmgr_policy p = p1000(500, 0, 0);
	u64 evict = 0;

	ASSERT_EQ(MEMMGR_WAIT, memmgr_policy_check(&p, S, 1, &evict));
	p = p1000(200, 700, 0);	/* exec borrowed 200: F = 100 */
	ASSERT_EQ(MEMMGR_GRANT, memmgr_policy_check(&p, S, 100, &evict));
	ASSERT_EQ(MEMMGR_WAIT, memmgr_policy_check(&p, S, 101, &evict));
	/* Rule 7: once exec frees what it borrowed, storage has S again. */
	memmgr_policy_uncharge(&p, X, 200);
	ASSERT_EQ(0, memmgr_policy_borrowed(&p, X));
	ASSERT_EQ(MEMMGR_GRANT, memmgr_policy_check(&p, S, 300, &evict));
	ASSERT_EQ(MEMMGR_WAIT, memmgr_policy_check(&p, S, 301, &evict));
}

/* Rule 4: eviction of exactly what is missing, or of nothing. */
TEST(storage_eviction_all_or_nothing)
{
	struct memmgr_policy p = p1000(500, 0, 500);
	u64 evict = 0;

	ASSERT_EQ(MEMMGR_EVICT, memmgr_policy_check(&p, S, 120, &evict));
	ASSERT_EQ(120, evict);
	p = p1000(500, 0, 100);
	ASSERT_EQ(MEMMGR_WAIT, memmgr_policy_check(&p, S, 150, &evict));
	/* Used 450 of 500, 30 evictable: 80 needs 30 to go. */
	p = p1000(450, 500, 30);
	ASSERT_EQ(MEMMGR_EVICT, memmgr_policy_check(&p, S, 80, &evict));
	ASSERT_EQ(30, evict);
	/* Exec borrowed 100: F = 50; 80 needs 30 more than F. */
	p = p1000(350, 600, 30);
	ASSERT_EQ(MEMMGR_EVICT, memmgr_policy_check(&p, S, 80, &evict));
	ASSERT_EQ(30, evict);
	ASSERT_EQ(MEMMGR_WAIT, memmgr_policy_check(&p, S, 81, &evict));
}

/* Rule 5: larger than the pool could ever grant. */
TEST(too_big)
{
	struct memmgr_policy p = p1000(0, 0, 0);
	u64 evict = 0;

	ASSERT_EQ(MEMMGR_TOO_BIG, memmgr_policy_check(&p, S, 501, &evict));
	ASSERT_EQ(MEMMGR_GRANT, memmgr_policy_check(&p, S, 500, &evict));
	ASSERT_EQ(MEMMGR_TOO_BIG, memmgr_policy_check(&p, X, 1001, &evict));
	ASSERT_EQ(MEMMGR_GRANT, memmgr_policy_check(&p, X, 1000, &evict));
	ASSERT_EQ(1000, memmgr_policy_limit(&p, X));
	ASSERT_EQ(500, memmgr_policy_limit(&p, S));
	ASSERT_EQ(MEMMGR_TOO_BIG,
		  memmgr_policy_check(&p, X, UINT64_MAX, &evict));
}

static struct memmgr_policy unified(u64 storage_used, u64 exec_used,
				    u64 evictable)
{
	struct memmgr_policy p = p1000(storage_used, exec_used, evictable);

	p.unified = true;
	return p;
}

/* Unified 1: storage may borrow free execution memory, up to T. */
TEST(unified_storage_borrows)
{
	struct memmgr_policy p = unified(500, 0, 0);
	u64 evict = 0;

	ASSERT_EQ(MEMMGR_GRANT, memmgr_policy_check(&p, S, 500, &evict));
	ASSERT_EQ(MEMMGR_WAIT, memmgr_policy_check(&p, S, 501, &evict));
	ASSERT_EQ(1000, memmgr_policy_limit(&p, S));
	p = unified(0, 0, 0);
	ASSERT_EQ(MEMMGR_GRANT, memmgr_policy_check(&p, S, 1000, &evict));
	ASSERT_EQ(MEMMGR_TOO_BIG, memmgr_policy_check(&p, S, 1001, &evict));
	memmgr_policy_charge(&p, S, 700);
	ASSERT_EQ(200, memmgr_policy_borrowed(&p, S));
}

/* Unified 2: execution evicts storage above S only, never below. */
TEST(unified_exec_evicts_above_s)
{
	struct memmgr_policy p = unified(700, 300, 700);
	u64 evict = 0;

	/* F = 0; 200 pages of storage lie above S. */
	ASSERT_EQ(MEMMGR_EVICT, memmgr_policy_check(&p, X, 200, &evict));
	ASSERT_EQ(200, evict);
	ASSERT_EQ(MEMMGR_WAIT, memmgr_policy_check(&p, X, 201, &evict));
	ASSERT_EQ(500, memmgr_policy_evict_floor(&p, X));
	ASSERT_EQ(0, memmgr_policy_evict_floor(&p, S));
	/* Only 50 of the 200 above S are unpinned. */
	p = unified(700, 250, 50);
	ASSERT_EQ(MEMMGR_EVICT, memmgr_policy_check(&p, X, 100, &evict));
	ASSERT_EQ(50, evict);
	ASSERT_EQ(MEMMGR_WAIT, memmgr_policy_check(&p, X, 101, &evict));
	/* Storage within S: execution takes only what is free. */
	p = unified(500, 400, 500);
	ASSERT_EQ(MEMMGR_GRANT, memmgr_policy_check(&p, X, 100, &evict));
	ASSERT_EQ(MEMMGR_WAIT, memmgr_policy_check(&p, X, 101, &evict));
	/* In split mode execution never evicts. */
	p = p1000(500, 500, 500);
	ASSERT_EQ(MEMMGR_WAIT, memmgr_policy_check(&p, X, 1, &evict));
}

/* Unified 3: storage evicts storage, never execution memory. */
TEST(unified_storage_evicts_storage_only)
{
	struct memmgr_policy p = unified(300, 700, 300);
	u64 evict = 0;

	ASSERT_EQ(MEMMGR_EVICT, memmgr_policy_check(&p, S, 300, &evict));
	ASSERT_EQ(300, evict);
	ASSERT_EQ(MEMMGR_WAIT, memmgr_policy_check(&p, S, 301, &evict));
	/* No quota check: 600 of storage is fine when free. */
	p = unified(600, 0, 0);
	ASSERT_EQ(MEMMGR_GRANT, memmgr_policy_check(&p, S, 400, &evict));
}

/* exec_fair: at most C/N each. */
TEST(fair_shares)
{
	struct memmgr_policy p = p1000(200, 0, 0);	/* C = 800 */

	ASSERT_EQ(800, memmgr_policy_exec_capacity(&p));
	ASSERT_TRUE(memmgr_policy_fair(&p, 0, 800, 1));
	ASSERT_TRUE(memmgr_policy_fair(&p, 100, 300, 2));
	ASSERT_FALSE(memmgr_policy_fair(&p, 100, 301, 2));
	ASSERT_TRUE(memmgr_policy_fair(&p, 0, 200, 4));
	ASSERT_FALSE(memmgr_policy_fair(&p, 0, 201, 4));
	/* Unified: storage above S counts as execution's. */
	p = unified(700, 0, 0);
	ASSERT_EQ(500, memmgr_policy_exec_capacity(&p));
}

TEST_HARNESS_MAIN
