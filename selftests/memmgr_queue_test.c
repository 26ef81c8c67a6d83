// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests of how held requests queue (issue 11):
 *
 *  - a storage ALLOC reserves its page id before it is decided: while one
 *    ALLOC of a tag is held, another ALLOC of that tag in the same file
 *    fails at once with EEXIST, evicting nothing and holding nothing, and
 *    LOOKUP of the tag says ENOENT; of two ALLOCs of one tag racing, one
 *    evicts what it needs and the other fails with EEXIST before evicting;
 *  - within one open file, held requests of a pool are served in arrival
 *    order: a new request of the file queues behind the file's older held
 *    request (timeout 0: EAGAIN, even if it would fit), and a held one
 *    that would fit waits while an older one of its file does not;
 *  - across files, a held request that does not fit keeps no other file
 *    waiting: another file's new request that fits is granted at once,
 *    and when memory comes back every held request that fits is granted,
 *    oldest first, skipping those that do not (and the later ones of
 *    their files).
 *
 * Every figure is worked out here from what MEMMGR_IOC_STATS reports.
 * Needs memmgr loaded (total=64M or so) with mode=split, exec_fair=0 and
 * an otherwise idle device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/memmgr.h>

#include "kselftest_harness.h"
#include "memmgr_util.h"

#define DEV MM_DEV
#define ST MEMMGR_POOL_STORAGE
#define EX MEMMGR_POOL_EXEC
#define FOREVER MEMMGR_WAIT_FOREVER

/* A request made by a thread of its own, which may be held. */
struct holder {
	int fd;
	__u32 pool;
	__u64 size, tag;
	__s64 timeout;
	int ret;		/* 1 while the ALLOC has not returned */
	struct memmgr_alloc a;
	pthread_t thread;
};

static void *hold_thread(void *arg)
{
	struct holder *h = arg;
	struct memmgr_alloc a;
	int ret;

	ret = mm_alloc_wait(h->fd, h->pool, h->size, h->tag, h->timeout, 0,
			    &a);
	h->a = a;
	__atomic_store_n(&h->ret, ret, __ATOMIC_RELEASE);
	return NULL;
}

static int start_holder(struct holder *h, int fd, __u32 pool, __u64 size,
			__u64 tag, __s64 timeout)
{
	*h = (struct holder){ .fd = fd, .pool = pool, .size = size,
			      .tag = tag, .timeout = timeout, .ret = 1 };
	return pthread_create(&h->thread, NULL, hold_thread, h);
}

/* The holder's result so far: 1 while its ALLOC has not returned. */
static int holder_ret(struct holder *h)
{
	return __atomic_load_n(&h->ret, __ATOMIC_ACQUIRE);
}

/* Wait for the holder's ALLOC to return; its result. */
static int join_holder(struct holder *h)
{
	pthread_join(h->thread, NULL);
	return holder_ret(h);
}

static int lookup_size(int fd, __u64 tag, __u64 *size, __u64 *handle)
{
	struct memmgr_lookup l;
	int ret = mm_lookup(fd, tag, &l);

	*size = l.size;
	*handle = l.handle;
	return ret;
}

/* Common to the fixtures: an idle device and its figures. */
struct dev_state {
	int fd;
	__u64 pg, T, S;
	struct memmgr_stats st0;
};

/* Open the device and take its figures; it must be idle. */
static void setup_dev(struct __test_metadata *_metadata, struct dev_state *d)
{
	d->fd = mm_open(0);
	if (d->fd < 0 && errno == ENOENT)
		SKIP(return, DEV " is absent: memmgr.ko is not loaded");
	ASSERT_LE(0, d->fd);
	d->st0 = mm_stats(d->fd);
	d->pg = d->st0.page_size;
	d->T = d->st0.total;
	d->S = d->st0.pool[ST].quota;
	ASSERT_LE(64 * d->pg, d->T);
	ASSERT_EQ(0, d->st0.pool[ST].used);
	ASSERT_EQ(0, d->st0.pool[EX].used);
	ASSERT_EQ(0, d->st0.waiters);
}

/* A pool counter's change since the test started. */
#define DELTA(now, p, field) \
	((now).pool[p].field - self->d.st0.pool[p].field)

FIXTURE(tag) {
	struct dev_state d;
};

FIXTURE_SETUP(tag)
{
	setup_dev(_metadata, &self->d);
	/* The race below keeps 1024 one-page buffers evictable. */
	ASSERT_LE(2048 * self->d.pg, self->d.S);
}

FIXTURE_TEARDOWN(tag)
{
	if (self->d.fd >= 0)
		close(self->d.fd);
}

/*
 * While an ALLOC of tag 7 is held, another ALLOC of tag 7 in the same file
 * fails at once with EEXIST: with timeout 0 and with 100 ms (no hold: held
 * and declined do not move, EEXIST is not a decline), and without evicting
 * the unpinned buffer that would make room for it.  LOOKUP 7 meanwhile
 * says ENOENT.  When room comes back the held one is granted and LOOKUP
 * finds it.  A hold that timed out gives its tag back.
 */
TEST_F(tag, held_tag_reserved)
{
	__u64 pg = self->d.pg, S = self->d.S, size, handle;
	int fd = self->d.fd;
	struct memmgr_alloc p;
	struct memmgr_stats st1, st;
	struct holder h;

	/* Storage full: S - 1 page pinned, 1 page unpinned. */
	ASSERT_EQ(0, mm_alloc_wait(fd, ST, S - pg, 1, 0, 0, &p));
	ASSERT_EQ(0, mm_alloc_wait(fd, ST, pg, 2, 0, MEMMGR_ALLOC_UNPINNED,
				   NULL));
	/* Two pages: evicting the one unpinned page is not enough. */
	EXPECT_EQ(-ETIMEDOUT, mm_alloc_wait(fd, ST, 2 * pg, 8, 50, 0, NULL));
	ASSERT_EQ(0, start_holder(&h, fd, ST, 2 * pg, 7, FOREVER));
	ASSERT_EQ(0, mm_wait_waiters(fd, 1));
	st1 = mm_stats(fd);
	EXPECT_EQ(2, DELTA(st1, ST, held));
	EXPECT_EQ(1, DELTA(st1, ST, declined));

	/* One page would fit by evicting tag 2: the tag is taken first. */
	EXPECT_EQ(-EEXIST, mm_alloc_wait(fd, ST, pg, 7, 0, 0, NULL));
	EXPECT_EQ(-EEXIST, mm_alloc_wait(fd, ST, pg, 7, 100, 0, NULL));
	EXPECT_EQ(-EEXIST, mm_alloc_wait(fd, ST, pg, 7, 100,
					 MEMMGR_ALLOC_UNPINNED, NULL));
	EXPECT_EQ(-ENOENT, mm_lookup(fd, 7, NULL));
	st = mm_stats(fd);
	EXPECT_EQ(1, st.waiters);
	EXPECT_EQ(st1.pool[ST].held, st.pool[ST].held);
	EXPECT_EQ(st1.pool[ST].declined, st.pool[ST].declined);
	EXPECT_EQ(st1.pool[ST].allocs, st.pool[ST].allocs);
	EXPECT_EQ(0, DELTA(st, ST, evictions));
	EXPECT_EQ(S, st.pool[ST].used);
	EXPECT_EQ(S - pg, st.pool[ST].pinned);
	EXPECT_EQ(0, mm_lookup(fd, 2, NULL));
	EXPECT_EQ(1, holder_ret(&h));

	/* Room for it without eviction: granted, and LOOKUP finds it. */
	ASSERT_EQ(0, mm_buf(fd, MEMMGR_IOC_FREE, p.handle));
	EXPECT_EQ(0, join_holder(&h));
	EXPECT_EQ(2 * pg, h.a.granted);
	EXPECT_EQ(0, lookup_size(fd, 7, &size, &handle));
	EXPECT_EQ(2 * pg, size);
	EXPECT_EQ(h.a.handle, handle);
	EXPECT_EQ(0, mm_lookup(fd, 2, NULL));
	EXPECT_EQ(-EEXIST, mm_alloc_wait(fd, ST, pg, 7, 0, 0, NULL));
	/* The tag of the hold that timed out is free. */
	EXPECT_EQ(-ENOENT, mm_lookup(fd, 8, NULL));
	EXPECT_EQ(0, mm_alloc_wait(fd, ST, pg, 8, 0, 0, NULL));

	st = mm_stats(fd);
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(4, DELTA(st, ST, allocs));	/* 1, 2, 7, 8 */
	EXPECT_EQ(1, DELTA(st, ST, frees));
	EXPECT_EQ(2, DELTA(st, ST, held));
	EXPECT_EQ(1, DELTA(st, ST, declined));
	EXPECT_EQ(0, DELTA(st, ST, evictions));
	EXPECT_EQ(4 * pg, st.pool[ST].used);
}

#define RACE_ROUNDS	200
#define RACE_VICTIMS	1024	/* one-page unpinned buffers */
#define RACE_TAG0	100000

struct racer {
	int fd;
	__u64 size, tag;
	pthread_barrier_t *go;
	int ret;
};

static void *race_thread(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->go);
	r->ret = mm_alloc_wait(r->fd, ST, r->size, r->tag, 0, 0, NULL);
	return NULL;
}

/*
 * Two threads of one file ALLOC the same new tag at once, storage full
 * with one-page unpinned buffers: each ALLOC of two pages must evict two.
 * Exactly one is granted, the other fails with EEXIST, and only the
 * winner's two pages are evicted.  200 rounds, each with a fresh tag; the
 * winners stay pinned, so storage stays full.
 */
TEST_F(tag, same_tag_race_evicts_once)
{
	__u64 pg = self->d.pg, S = self->d.S, size, handle;
	int fd = self->d.fd, round, ok = 0, eexist = 0, other = 0, i;
	struct memmgr_stats st;

	ASSERT_EQ(0, mm_alloc_wait(fd, ST, S - RACE_VICTIMS * pg, RACE_TAG0 - 1,
				   0, 0, NULL));
	for (i = 0; i < RACE_VICTIMS; i++)
		ASSERT_EQ(0, mm_alloc_wait(fd, ST, pg, i + 1, 0,
					   MEMMGR_ALLOC_UNPINNED, NULL));
	ASSERT_EQ(S, mm_stats(fd).pool[ST].used);

	for (round = 0; round < RACE_ROUNDS; round++) {
		pthread_barrier_t go;
		struct racer r[2];
		pthread_t t[2];

		pthread_barrier_init(&go, NULL, 2);
		for (i = 0; i < 2; i++) {
			r[i] = (struct racer){ .fd = fd, .size = 2 * pg,
					       .tag = RACE_TAG0 + round,
					       .go = &go, .ret = 1 };
			ASSERT_EQ(0, pthread_create(&t[i], NULL, race_thread,
						    &r[i]));
		}
		for (i = 0; i < 2; i++) {
			pthread_join(t[i], NULL);
			if (!r[i].ret)
				ok++;
			else if (r[i].ret == -EEXIST)
				eexist++;
			else
				other++;
		}
		pthread_barrier_destroy(&go);
		ASSERT_EQ(0, lookup_size(fd, RACE_TAG0 + round, &size,
					 &handle));
		ASSERT_EQ(2 * pg, size);
	}
	EXPECT_EQ(RACE_ROUNDS, ok);
	EXPECT_EQ(RACE_ROUNDS, eexist);
	EXPECT_EQ(0, other);
	st = mm_stats(fd);
	EXPECT_EQ(2 * RACE_ROUNDS, DELTA(st, ST, evictions));
	EXPECT_EQ(2 * RACE_ROUNDS * pg, DELTA(st, ST, evicted_bytes));
	EXPECT_EQ(2 * RACE_ROUNDS, DELTA(st, ST, frees));
	EXPECT_EQ(1 + RACE_VICTIMS + RACE_ROUNDS, DELTA(st, ST, allocs));
	EXPECT_EQ(0, DELTA(st, ST, held));
	EXPECT_EQ(0, DELTA(st, ST, declined));
	EXPECT_EQ(S, st.pool[ST].used);
	EXPECT_EQ(S - (RACE_VICTIMS - 2 * RACE_ROUNDS) * pg,
		  st.pool[ST].pinned);
}

/*
 * The queue rules, for each pool.  C is what the pool can grant with the
 * other pool idle: S for storage, T for execution.  Buffers are pinned
 * (storage) so that nothing is evictable.
 */
FIXTURE(queue) {
	struct dev_state d;
	__u64 C;
};

FIXTURE_VARIANT(queue) {
	__u32 pool;
};

FIXTURE_VARIANT_ADD(queue, storage) { .pool = ST };
FIXTURE_VARIANT_ADD(queue, exec) { .pool = EX };

FIXTURE_SETUP(queue)
{
	setup_dev(_metadata, &self->d);
	self->C = variant->pool == ST ? self->d.S : self->d.T;
	ASSERT_LE(32 * self->d.pg, self->C);
}

FIXTURE_TEARDOWN(queue)
{
	if (self->d.fd >= 0)
		close(self->d.fd);
}

/*
 * File A holds a request of 8 pages that does not fit (4 pages of room).
 * File B's new request of 2 pages fits: granted at once, timeout 0.  A's
 * own new request of 1 page would fit too, but queues behind A's older
 * hold: EAGAIN with timeout 0, held with WAIT_FOREVER.  8 pages back:
 * A's first is granted, its second (1 page, no room left) still waits;
 * one more page: granted.  Then A holds 8 pages and B 2, B's younger; 2
 * pages come back: B's is granted, A's stays held.
 */
TEST_F(queue, other_file_not_kept_waiting)
{
	__u32 pool = variant->pool;
	__u64 pg = self->d.pg, C = self->C;
	int a = self->d.fd, b = mm_open(0);
	struct memmgr_alloc x6, x1, y, b2;
	struct holder h1, h2, h3, hb;
	struct memmgr_stats st;

	ASSERT_LE(0, b);
	ASSERT_EQ(0, mm_alloc_wait(a, pool, 6 * pg, 1, 0, 0, &x6));
	ASSERT_EQ(0, mm_alloc_wait(a, pool, pg, 2, 0, 0, &x1));
	ASSERT_EQ(0, mm_alloc_wait(a, pool, C - 11 * pg, 3, 0, 0, &y));
	ASSERT_EQ(0, start_holder(&h1, a, pool, 8 * pg, 10, FOREVER));
	ASSERT_EQ(0, mm_wait_waiters(a, 1));

	/* Another file's request that fits does not wait behind A's. */
	ASSERT_EQ(0, mm_alloc_wait(b, pool, 2 * pg, 20, 0, 0, &b2));
	/* A's own requests keep their order: 1 page would fit. */
	EXPECT_EQ(-EAGAIN, mm_alloc_wait(a, pool, pg, 11, 0, 0, NULL));
	ASSERT_EQ(0, start_holder(&h2, a, pool, pg, 12, FOREVER));
	ASSERT_EQ(0, mm_wait_waiters(a, 2));
	st = mm_stats(a);
	EXPECT_EQ(C - 2 * pg, st.pool[pool].used);
	EXPECT_EQ(1, holder_ret(&h1));
	EXPECT_EQ(1, holder_ret(&h2));

	/* 8 pages of room: A's first, then none for its second. */
	ASSERT_EQ(0, mm_buf(a, MEMMGR_IOC_FREE, x6.handle));
	EXPECT_EQ(0, join_holder(&h1));
	EXPECT_EQ(8 * pg, h1.a.granted);
	st = mm_stats(a);
	EXPECT_EQ(1, st.waiters);
	EXPECT_EQ(C, st.pool[pool].used);
	EXPECT_EQ(1, holder_ret(&h2));
	ASSERT_EQ(0, mm_buf(a, MEMMGR_IOC_FREE, x1.handle));
	EXPECT_EQ(0, join_holder(&h2));
	EXPECT_EQ(pg, h2.a.granted);
	EXPECT_EQ(0, mm_stats(a).waiters);

	/* Held requests of two files: the younger one fits, and goes. */
	ASSERT_EQ(0, start_holder(&h3, a, pool, 8 * pg, 13, FOREVER));
	ASSERT_EQ(0, mm_wait_waiters(a, 1));
	ASSERT_EQ(0, start_holder(&hb, b, pool, 2 * pg, 21, FOREVER));
	ASSERT_EQ(0, mm_wait_waiters(a, 2));
	ASSERT_EQ(0, mm_buf(b, MEMMGR_IOC_FREE, b2.handle));
	EXPECT_EQ(0, join_holder(&hb));
	EXPECT_EQ(2 * pg, hb.a.granted);
	st = mm_stats(a);
	EXPECT_EQ(1, st.waiters);
	EXPECT_EQ(C, st.pool[pool].used);
	EXPECT_EQ(1, holder_ret(&h3));

	ASSERT_EQ(0, mm_buf(a, MEMMGR_IOC_FREE, y.handle));
	EXPECT_EQ(0, join_holder(&h3));
	st = mm_stats(a);
	EXPECT_EQ(0, st.waiters);
	/* Left: h1 8, h2 1, hb 2, h3 8 pages. */
	EXPECT_EQ(19 * pg, st.pool[pool].used);
	EXPECT_EQ(8, DELTA(st, pool, allocs));
	EXPECT_EQ(4, DELTA(st, pool, frees));
	EXPECT_EQ(4, DELTA(st, pool, held));
	EXPECT_EQ(1, DELTA(st, pool, declined));
	EXPECT_EQ(0, DELTA(st, ST, evictions));
	EXPECT_EQ(0, st.pool[pool == ST ? EX : ST].used);
	close(b);
}

/*
 * One file's threads: the first holds 4 pages that do not fit (2 pages of
 * room), the second asks for 1 page, which would fit, and waits behind it.
 * 3 pages of room: the second would fit, the first not: both wait.  5
 * pages: both are granted.
 */
TEST_F(queue, own_order_kept)
{
	__u32 pool = variant->pool;
	__u64 pg = self->d.pg, C = self->C;
	int a = self->d.fd;
	struct memmgr_alloc x1, x2;
	struct memmgr_stats st;
	struct holder h1, h2;

	ASSERT_EQ(0, mm_alloc_wait(a, pool, pg, 1, 0, 0, &x1));
	ASSERT_EQ(0, mm_alloc_wait(a, pool, 2 * pg, 2, 0, 0, &x2));
	ASSERT_EQ(0, mm_alloc_wait(a, pool, C - 5 * pg, 3, 0, 0, NULL));
	ASSERT_EQ(0, start_holder(&h1, a, pool, 4 * pg, 10, FOREVER));
	ASSERT_EQ(0, mm_wait_waiters(a, 1));
	ASSERT_EQ(0, start_holder(&h2, a, pool, pg, 11, FOREVER));
	ASSERT_EQ(0, mm_wait_waiters(a, 2));
	st = mm_stats(a);
	EXPECT_EQ(C - 2 * pg, st.pool[pool].used);

	/* Each FREE tries the holds before it returns. */
	ASSERT_EQ(0, mm_buf(a, MEMMGR_IOC_FREE, x1.handle));
	st = mm_stats(a);
	EXPECT_EQ(2, st.waiters);
	EXPECT_EQ(C - 3 * pg, st.pool[pool].used);
	EXPECT_EQ(1, holder_ret(&h1));
	EXPECT_EQ(1, holder_ret(&h2));

	ASSERT_EQ(0, mm_buf(a, MEMMGR_IOC_FREE, x2.handle));
	EXPECT_EQ(0, join_holder(&h1));
	EXPECT_EQ(0, join_holder(&h2));
	st = mm_stats(a);
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(C, st.pool[pool].used);
	EXPECT_EQ(2, DELTA(st, pool, held));
	EXPECT_EQ(0, DELTA(st, pool, declined));
	EXPECT_EQ(5, DELTA(st, pool, allocs));
}

TEST_HARNESS_MAIN
