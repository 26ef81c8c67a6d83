// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests of eviction order and eviction notices: evict_policy=lru
 * evicts the least recently used unpinned storage buffer (allocation, pin,
 * unpin and LOOKUP count as use), MEMMGR_IOC_EVICTED reports what a file
 * lost in eviction order, and poll() reports POLLPRI while it has notices.
 * A workload test compares the hit rates of random and LRU eviction.
 *
 * Needs memmgr loaded with total=64M or so and an idle device; switches
 * /sys/module/memmgr/parameters/evict_policy and restores it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/memmgr.h>

#include "kselftest_harness.h"
#include "memmgr_util.h"

#define DEV MM_DEV
#define POLICY MM_PARAMS "evict_policy"
#define ST MEMMGR_POOL_STORAGE

/* MEMMGR_IOC_EVICTED into @tags; returns the count or -errno. */
static int evicted(int fd, __u64 *tags, __u32 count, __u64 *pending)
{
	struct memmgr_evicted e = {
		.tags = (uintptr_t)tags, .count = count,
	};

	if (ioctl(fd, MEMMGR_IOC_EVICTED, &e))
		return -errno;
	if (pending)
		*pending = e.pending;
	return e.count;
}

static short pollpri(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLPRI };

	return poll(&p, 1, timeout_ms) == 1 ? p.revents : 0;
}

FIXTURE(ev) {
	int fd;
	__u64 pg, S, quarter;
};

FIXTURE_SETUP(ev)
{
	struct memmgr_stats st;

	self->fd = open(DEV, O_RDWR | O_CLOEXEC);
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, DEV " is absent: memmgr.ko is not loaded");
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ioctl(self->fd, MEMMGR_IOC_STATS, &st));
	ASSERT_EQ(0, st.pool[ST].used);
	self->pg = st.page_size;
	self->S = st.pool[ST].quota;
	self->quarter = self->S / 4 / self->pg * self->pg;
	ASSERT_LT(0, self->quarter);
	ASSERT_EQ(0, mm_set_param("evict_policy", "lru"));
}

FIXTURE_TEARDOWN(ev)
{
	mm_set_param("evict_policy", "random");
	if (self->fd >= 0)
		close(self->fd);
}

/* Least recently used first; LOOKUP, pin and unpin count as use. */
TEST_F(ev, lru_order)
{
	struct memmgr_alloc a[4];
	__u64 tags[4] = { 0 }, pending = 9;
	int i;

	/* Tags 0..3 unpinned: LRU order 0, 1, 2, 3. */
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, mm_alloc(self->fd, ST, self->quarter, i,
				      MEMMGR_ALLOC_UNPINNED, &a[i]));
	ASSERT_EQ(0, mm_lookup(self->fd, 0, NULL));		/* 1, 2, 3, 0 */
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_PIN, a[1].handle));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, a[1].handle));
	/* 2, 3, 0, 1: room for one more quarter evicts tag 2. */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S - 3 * self->quarter, 10, 0,
			      NULL));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 2, NULL));
	EXPECT_EQ(0, mm_lookup(self->fd, 3, NULL));	/* 0, 1, 3 */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->quarter, 11, 0, NULL));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 0, NULL));
	EXPECT_EQ(0, mm_lookup(self->fd, 1, NULL));
	EXPECT_EQ(0, mm_lookup(self->fd, 3, NULL));
	/* The notices, in eviction order. */
	EXPECT_EQ(2, evicted(self->fd, tags, 4, &pending));
	EXPECT_EQ(2, tags[0]);
	EXPECT_EQ(0, tags[1]);
	EXPECT_EQ(0, pending);
}

/* Random eviction can pick any unpinned buffer, the most recent too. */
TEST_F(ev, policy_param)
{
	char buf[16] = "";
	int fd;

	ASSERT_EQ(0, mm_set_param("evict_policy", "random"));
	fd = open(POLICY, O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_LT(0, read(fd, buf, sizeof(buf) - 1));
	close(fd);
	EXPECT_STREQ("random\n", buf);
	EXPECT_EQ(-EINVAL, mm_set_param("evict_policy", "fifo"));
	ASSERT_EQ(0, mm_set_param("evict_policy", "lru"));
}

struct poller {
	int fd;
	short revents;
};

static void *poll_thread(void *arg)
{
	struct poller *p = arg;

	p->revents = pollpri(p->fd, 10000);
	return NULL;
}

/* poll() wakes with POLLPRI on eviction; notices drain one by one. */
TEST_F(ev, notices_and_poll)
{
	struct poller p = { .fd = self->fd };
	__u64 tags[2] = { 0 }, pending = 0;
	struct memmgr_alloc a;
	pthread_t thread;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->quarter, 1,
			      MEMMGR_ALLOC_UNPINNED, NULL));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->quarter, 2,
			      MEMMGR_ALLOC_UNPINNED, &a));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S - 2 * self->quarter, 3, 0,
			      NULL));
	EXPECT_EQ(0, pollpri(self->fd, 0));
	EXPECT_EQ(0, evicted(self->fd, tags, 2, &pending));
	EXPECT_EQ(0, pending);

	pthread_create(&thread, NULL, poll_thread, &p);
	usleep(100 * 1000);
	/* Needs both unpinned quarters: 1 then 2, oldest first. */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, 2 * self->quarter, 4, 0, NULL));
	pthread_join(thread, NULL);
	EXPECT_EQ(POLLPRI, p.revents & POLLPRI);
	EXPECT_EQ(POLLPRI, pollpri(self->fd, 0) & POLLPRI);

	EXPECT_EQ(1, evicted(self->fd, tags, 1, &pending));
	EXPECT_EQ(1, tags[0]);
	EXPECT_EQ(1, pending);
	/* Freeing a stale entry takes its notice away. */
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(0, evicted(self->fd, tags, 2, &pending));
	EXPECT_EQ(0, pending);
	EXPECT_EQ(0, pollpri(self->fd, 0));
}

/* Bad arguments take no notice away. */
TEST_F(ev, evicted_bad_input)
{
	struct memmgr_evicted e = { .count = 1 };
	__u64 tag = 0, pending = 0;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S, 1, MEMMGR_ALLOC_UNPINNED,
			      NULL));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 2, 0, NULL));
	EXPECT_EQ(-EFAULT, evicted(self->fd, NULL, 1, NULL));
	e.tags = (uintptr_t)&tag;
	e.flags = 1;
	EXPECT_EQ(-1, ioctl(self->fd, MEMMGR_IOC_EVICTED, &e));
	EXPECT_EQ(EINVAL, errno);
	e.flags = 0;
	e.reserved[1] = 1;
	EXPECT_EQ(-1, ioctl(self->fd, MEMMGR_IOC_EVICTED, &e));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, MEMMGR_IOC_EVICTED, NULL));
	EXPECT_EQ(EFAULT, errno);
	/* A count of 0 only says how many are pending. */
	EXPECT_EQ(0, evicted(self->fd, &tag, 0, &pending));
	EXPECT_EQ(1, pending);
	EXPECT_EQ(1, evicted(self->fd, &tag, 1, &pending));
	EXPECT_EQ(1, tag);
	EXPECT_EQ(0, pending);
}

/*
 * A cache of 32 slots, 96 keys: 90% of accesses go to 24 hot keys.  LRU
 * keeps the hot set resident; random eviction throws hot keys out.  The
 * same seeded stream runs under both policies.
 */
static double hit_rate(int fd, __u64 slot, unsigned int seed)
{
	unsigned int i, hits = 0, n = 4000;

	srand(seed);
	for (i = 0; i < n; i++) {
		__u64 key = rand() % 100 < 90 ? rand() % 24 :
						 24 + rand() % 72;
		struct memmgr_lookup l;
		int r = mm_lookup(fd, key, &l);

		if (!r) {
			hits++;
			continue;
		}
		if (r == -ESTALE)
			mm_buf(fd, MEMMGR_IOC_FREE, l.handle);
		if (mm_alloc(fd, ST, slot, key, MEMMGR_ALLOC_UNPINNED, NULL))
			return -1;
	}
	return (double)hits / n;
}

TEST_F(ev, lru_keeps_hot_set)
{
	__u64 slot = self->S / 32 / self->pg * self->pg;
	double lru, rnd;
	int fd2;

	ASSERT_LT(0, slot);
	lru = hit_rate(self->fd, slot, 42);
	ASSERT_EQ(0, mm_set_param("evict_policy", "random"));
	fd2 = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	close(self->fd);	/* an empty cache for the second run */
	self->fd = fd2;
	rnd = hit_rate(self->fd, slot, 42);
	ksft_print_msg("hit rate: lru %.1f%%, random %.1f%% (4000 accesses, 32 slots, 90%% on 24 hot keys of 96)\n",
		       100 * lru, 100 * rnd);
	EXPECT_LE(0.0, rnd);
	/* LRU keeps the hot set: clearly ahead of random. */
	EXPECT_LT(rnd + 0.05, lru);
}

TEST_HARNESS_MAIN
