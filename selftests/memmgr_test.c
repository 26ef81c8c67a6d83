// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests of memmgr's rules, run in a VM against the loaded module.
 *
 * Every figure is worked out here from what MEMMGR_IOC_STATS reports of the
 * reserve (total and page size), so the tests hold for any total= the
 * module was loaded with; they need a reserve of at least 64 pages and an
 * otherwise idle device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/memmgr.h>

#include "kselftest_harness.h"
#include "memmgr_util.h"

#define DEV MM_DEV
#define ST MEMMGR_POOL_STORAGE
#define EX MEMMGR_POOL_EXEC

static void *map(int fd, const struct memmgr_alloc *a)
{
	return mmap(NULL, a->granted, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    a->offset);
}

FIXTURE(mm) {
	int fd;
	__u64 pg;	/* page size */
	__u64 T, S, E;	/* bytes */
	struct memmgr_stats st0;	/* at the start of the test */
};

/* A pool counter's change since the test started. */
#define DELTA(now, p, field) \
	((now).pool[p].field - self->st0.pool[p].field)

FIXTURE_SETUP(mm)
{
	struct memmgr_stats st;

	self->fd = mm_open(0);
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, DEV " is absent: memmgr.ko is not loaded");
	ASSERT_LE(0, self->fd);
	st = mm_stats(self->fd);
	self->st0 = st;
	self->pg = st.page_size;
	self->T = st.total;
	self->S = st.pool[ST].quota;
	self->E = st.pool[EX].quota;
	ASSERT_LE(64 * self->pg, self->T);
	/* Each test starts on an idle device. */
	ASSERT_EQ(0, st.pool[ST].used);
	ASSERT_EQ(0, st.pool[EX].used);
	ASSERT_EQ(0, st.waiters);
}

FIXTURE_TEARDOWN(mm)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* The foundation: an unknown command is ENOTTY, whatever its size. */
TEST_F(mm, unknown_ioctl_enotty)
{
	char arg[64] = { 0 };

	EXPECT_EQ(-1, ioctl(self->fd, _IO(MEMMGR_IOC_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IOWR(MEMMGR_IOC_MAGIC, 0x00, __u64),
			    arg));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IOR('x', 0x06, struct memmgr_stats),
			    arg));
	EXPECT_EQ(ENOTTY, errno);
}

/* T is split 50/50 by default; sizes round up to pages. */
TEST_F(mm, split_50_50)
{
	struct memmgr_alloc a;
	struct memmgr_stats st;
	__u64 pages = self->T / self->pg;

	ASSERT_EQ(0, self->T % self->pg);
	EXPECT_EQ(pages * 50 / 100 * self->pg, self->S);
	EXPECT_EQ(self->T - self->S, self->E);
	EXPECT_EQ(self->T, mm_stats(self->fd).free);

	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, 1, 7, 0, 0, &a));
	EXPECT_EQ(self->pg, a.granted);
	EXPECT_NE(0, a.handle);
	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->pg + 1, 8, 0, 0, &a));
	EXPECT_EQ(2 * self->pg, a.granted);
	st = mm_stats(self->fd);
	EXPECT_EQ(self->pg, st.pool[EX].used);
	EXPECT_EQ(2 * self->pg, st.pool[ST].used);
	EXPECT_EQ(self->pg, st.client_used[EX]);
	EXPECT_EQ(2 * self->pg, st.client_used[ST]);
	EXPECT_EQ(self->T - 3 * self->pg, st.free);
	EXPECT_EQ(1, DELTA(st, EX, allocs));
	EXPECT_EQ(1, DELTA(st, ST, allocs));
}

/* Rules 1 and 7: exec borrows free storage memory, and gives it back. */
TEST_F(mm, exec_borrows_and_returns)
{
	struct memmgr_alloc a, b;
	struct memmgr_stats st;
	__u64 extra = 3 * self->pg;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, self->E, 1, 0, 0, &a));
	st = mm_stats(self->fd);
	EXPECT_EQ(self->E, st.pool[EX].used);
	EXPECT_EQ(0, st.pool[EX].borrowed);
	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, extra, 1, 0, 0, &b));
	st = mm_stats(self->fd);
	EXPECT_EQ(self->E + extra, st.pool[EX].used);
	EXPECT_EQ(extra, st.pool[EX].borrowed);
	EXPECT_EQ(self->S - extra, st.free);
	/* Storage cannot have the borrowed part while exec holds it. */
	EXPECT_EQ(-EAGAIN, mm_alloc_wait(self->fd, ST, self->S, 2, 0, 0, NULL));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, b.handle));
	st = mm_stats(self->fd);
	EXPECT_EQ(0, st.pool[EX].borrowed);
	EXPECT_EQ(self->S, st.free);
	/* Now all of S is storage's again. */
	EXPECT_EQ(0, mm_alloc_wait(self->fd, ST, self->S, 2, 0, 0, NULL));
	EXPECT_EQ(0, mm_stats(self->fd).free);
}

/* Rule 2: exec never takes storage memory in use, even evictable. */
TEST_F(mm, exec_never_evicts)
{
	struct memmgr_stats st;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->S, 1, 0,
			      MEMMGR_ALLOC_UNPINNED, NULL));
	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, self->E, 2, 0, 0, NULL));
	EXPECT_EQ(-EAGAIN, mm_alloc_wait(self->fd, EX, self->pg, 2, 0, 0, NULL));
	st = mm_stats(self->fd);
	EXPECT_EQ(0, DELTA(st, ST, evictions));
	EXPECT_EQ(1, DELTA(st, EX, declined));
	EXPECT_EQ(0, mm_lookup(self->fd, 1, NULL));
}

/* Rule 3: storage stays within S. */
TEST_F(mm, storage_quota)
{
	struct memmgr_stats st;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->S - self->pg, 1, 0, 0,
			      NULL));
	EXPECT_EQ(-EAGAIN, mm_alloc_wait(self->fd, ST, 2 * self->pg, 2, 0, 0,
				    NULL));
	EXPECT_EQ(0, mm_alloc_wait(self->fd, ST, self->pg, 3, 0, 0, NULL));
	st = mm_stats(self->fd);
	EXPECT_EQ(self->S, st.pool[ST].used);
	EXPECT_EQ(self->S, st.pool[ST].pinned);
	EXPECT_EQ(0, st.pool[ST].borrowed);
	EXPECT_EQ(1, DELTA(st, ST, declined));
	EXPECT_EQ(self->E, st.free);
}

/*
 * Rule 4: a storage request that does not fit evicts unpinned buffers
 * only, at random, just enough; pinned buffers survive.
 */
TEST_F(mm, storage_evicts_unpinned_only)
{
	__u64 quarter = self->S / 4 / self->pg * self->pg;
	struct memmgr_stats st;
	int i, stale = 0;

	/* Tags 0 and 1 pinned, 2 and 3 not: half of S is evictable. */
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, quarter, i, 0,
				      i < 2 ? 0 : MEMMGR_ALLOC_UNPINNED,
				      NULL));
	st = mm_stats(self->fd);
	EXPECT_EQ(2 * quarter, st.pool[ST].pinned);
	/* What is left of S, plus one quarter: one victim. */
	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->S - 3 * quarter, 10, 0, 0,
			      NULL));
	st = mm_stats(self->fd);
	EXPECT_EQ(1, DELTA(st, ST, evictions));
	EXPECT_EQ(quarter, DELTA(st, ST, evicted_bytes));
	/* 4q + (S - 3q) - q: S exactly. */
	EXPECT_EQ(self->S, st.pool[ST].used);
	EXPECT_EQ(0, mm_lookup(self->fd, 0, NULL));
	EXPECT_EQ(0, mm_lookup(self->fd, 1, NULL));
	for (i = 2; i < 4; i++) {
		int r = mm_lookup(self->fd, i, NULL);

		ASSERT_TRUE(r == 0 || r == -ESTALE);
		stale += r == -ESTALE;
	}
	EXPECT_EQ(1, stale);
}

/* Rule 4: if evicting every unpinned buffer is not enough, none goes. */
TEST_F(mm, eviction_all_or_nothing)
{
	__u64 half = self->S / 2 / self->pg * self->pg;
	struct memmgr_stats st;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, half, 1, 0, 0, NULL));
	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->S - half, 2, 0,
			      MEMMGR_ALLOC_UNPINNED, NULL));
	EXPECT_EQ(-EAGAIN, mm_alloc_wait(self->fd, ST, self->S - half + self->pg,
				    3, 0, 0, NULL));
	st = mm_stats(self->fd);
	EXPECT_EQ(0, DELTA(st, ST, evictions));
	EXPECT_EQ(self->S, st.pool[ST].used);
	EXPECT_EQ(0, mm_lookup(self->fd, 2, NULL));
	/* Exactly what is evictable is enough. */
	EXPECT_EQ(0, mm_alloc_wait(self->fd, ST, self->S - half, 3, 0, 0, NULL));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 2, NULL));
}

/* Pins count, and an evicted buffer cannot be pinned again. */
TEST_F(mm, pin_unpin_estale)
{
	struct memmgr_alloc a;
	struct memmgr_stats st;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->S, 1, 0, 0, &a));
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_PIN, a.handle));
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, a.handle));
	/* One pin left: not evictable. */
	EXPECT_EQ(-EAGAIN, mm_alloc_wait(self->fd, ST, self->pg, 2, 0, 0, NULL));
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, a.handle));
	EXPECT_EQ(-EINVAL, mm_buf(self->fd, MEMMGR_IOC_UNPIN, a.handle));
	st = mm_stats(self->fd);
	EXPECT_EQ(0, st.pool[ST].pinned);
	EXPECT_EQ(0, mm_alloc_wait(self->fd, ST, self->pg, 2, 0, 0, NULL));
	EXPECT_EQ(-ESTALE, mm_buf(self->fd, MEMMGR_IOC_PIN, a.handle));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 1, NULL));
	/* The stale entry stays until freed. */
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 1, NULL));
	/* Exec buffers have no pins. */
	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, self->pg, 1, 0, 0, &a));
	EXPECT_EQ(-EINVAL, mm_buf(self->fd, MEMMGR_IOC_PIN, a.handle));
}

/* Minor faults of this process so far. */
static long minor_faults(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return -1;
	return ru.ru_minflt;
}

/*
 * Write every page of @len bytes of buffer @a mapped from byte @off of it,
 * each page once, in order; return the faults that took.
 */
static long faults_to_touch(int fd, const struct memmgr_alloc *a, size_t off,
			    size_t len, size_t pg)
{
	volatile unsigned char *p;
	long before, after;
	size_t i;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 a->offset + off);
	if (p == MAP_FAILED)
		return -1;
	before = minor_faults();
	for (i = 0; i < len; i += pg)
		p[i] = 1;
	after = minor_faults();
	munmap((void *)p, len);
	return after - before;
}

/*
 * A fault maps the 2 MiB chunk of the buffer that holds the faulting page,
 * clipped to the mapping, so no fault's work (nor the time a revocation
 * waits for it) grows with the buffer: a 16 MiB buffer takes 8 faults to
 * touch, a 3 MiB one 2, and 2 MiB mapped from 1 MiB into a buffer 2 (the
 * ends of two chunks).
 */
TEST_F(mm, fault_maps_one_chunk)
{
	const size_t mib = 1 << 20;
	struct memmgr_alloc a;

	ASSERT_EQ(0, mm_alloc(self->fd, EX, 16 * mib, 1, 0, &a));
	EXPECT_EQ(8, faults_to_touch(self->fd, &a, 0, 16 * mib, self->pg));
	EXPECT_EQ(4, faults_to_touch(self->fd, &a, 2 * mib, 8 * mib, self->pg));
	EXPECT_EQ(2, faults_to_touch(self->fd, &a, mib, 2 * mib, self->pg));
	EXPECT_EQ(1, faults_to_touch(self->fd, &a, 15 * mib, mib, self->pg));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, 3 * mib, 2, 0, &a));
	EXPECT_EQ(2, faults_to_touch(self->fd, &a, 0, 3 * mib, self->pg));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
}

/*
 * After eviction an access gets SIGBUS, not the new owner's data: by the
 * time LOOKUP says ESTALE.
 */
TEST_F(mm, sigbus_after_eviction)
{
	struct memmgr_alloc a, b;
	unsigned char *p, *q, v = 0;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->S, 1, 0,
			      MEMMGR_ALLOC_UNPINNED, &a));
	p = map(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, a.granted);
	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->S, 2, 0, 0, &b));
	EXPECT_EQ(1, DELTA(mm_stats(self->fd), ST, evictions));
	/* Once its owner can learn of the eviction, the mapping is gone. */
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 1, NULL));
	q = map(self->fd, &b);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_TRUE(mm_all_bytes(q, b.granted, 0));
	memset(q, 0xa5, b.granted);
	EXPECT_EQ(SIGBUS, probe_read(p, &v));
	EXPECT_EQ(SIGBUS, probe_read(p + a.granted - 1, &v));
	EXPECT_EQ(SIGBUS, probe_write(p, 1));
	EXPECT_EQ(0xa5, q[0]);
	/* A mapping of an evicted buffer is refused. */
	EXPECT_EQ(MAP_FAILED, map(self->fd, &a));
	EXPECT_EQ(EINVAL, errno);
}

/*
 * An evicted buffer's mappings are revoked within a tick even if its owner
 * never asks; until then it reads its own data.  Polls for up to 2 s.
 */
TEST_F(mm, eviction_revoked_unasked)
{
	struct memmgr_alloc a, b;
	unsigned char *p, v = 0;
	int i, sig = 0;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->S, 1, 0,
			      MEMMGR_ALLOC_UNPINNED, &a));
	p = map(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, a.granted);
	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->pg, 2, 0, 0, &b));
	EXPECT_EQ(1, DELTA(mm_stats(self->fd), ST, evictions));
	for (i = 0; i < 200; i++) {
		sig = probe_read(p + a.granted - 1, &v);
		if (sig)
			break;
		ASSERT_EQ(0x5a, v);
		usleep(10000);
	}
	EXPECT_EQ(SIGBUS, sig);
	EXPECT_EQ(0, munmap(p, a.granted));
}

/*
 * With the whole reserve in use, an evicting request waits for its
 * victim's pages: revoked first, and zeros by the time it maps them.
 */
TEST_F(mm, eviction_reuses_victim_pages)
{
	struct memmgr_alloc e, a, b;
	unsigned char *p, *q, v = 0;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, self->E, 9, 0, 0, &e));
	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->S, 1, 0,
			      MEMMGR_ALLOC_UNPINNED, &a));
	EXPECT_EQ(self->T, mm_stats(self->fd).pool[ST].used +
			   mm_stats(self->fd).pool[EX].used);
	p = map(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, a.granted);
	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->S, 2, 0, 0, &b));
	EXPECT_EQ(1, DELTA(mm_stats(self->fd), ST, evictions));
	q = map(self->fd, &b);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_TRUE(mm_all_bytes(q, b.granted, 0));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 1, NULL));
	EXPECT_EQ(SIGBUS, probe_read(p, &v));
	EXPECT_EQ(0, munmap(p, a.granted));
	EXPECT_EQ(0, munmap(q, b.granted));
}

/* After free an access gets SIGBUS. */
TEST_F(mm, sigbus_after_free)
{
	struct memmgr_alloc a;
	unsigned char *p, v = 0;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, 4 * self->pg, 1, 0, 0, &a));
	p = map(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x11, a.granted);
	EXPECT_EQ(0, probe_read(p + self->pg, &v));
	EXPECT_EQ(0x11, v);
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(SIGBUS, probe_read(p, &v));
	EXPECT_EQ(SIGBUS, probe_read(p + 3 * self->pg, &v));
	EXPECT_EQ(0, munmap(p, a.granted));
}

/* Memory reads as zeros first, whoever wrote it before. */
TEST_F(mm, zeroed_after_other_client)
{
	int fd2 = mm_open(0);
	struct memmgr_alloc a;
	unsigned char *p;
	int pool;

	ASSERT_LE(0, fd2);
	for (pool = 0; pool < MEMMGR_NR_POOLS; pool++) {
		__u64 size = pool == ST ? self->S : self->T;

		ASSERT_EQ(0, mm_alloc_wait(fd2, pool, size, 1, 0, 0, &a));
		p = map(fd2, &a);
		ASSERT_NE(MAP_FAILED, p);
		memset(p, 0xff, a.granted);
		munmap(p, a.granted);
		ASSERT_EQ(0, mm_buf(fd2, MEMMGR_IOC_FREE, a.handle));

		ASSERT_EQ(0, mm_alloc_wait(self->fd, pool, size, 1, 0, 0, &a));
		p = map(self->fd, &a);
		ASSERT_NE(MAP_FAILED, p);
		EXPECT_TRUE(mm_all_bytes(p, a.granted, 0));
		munmap(p, a.granted);
		ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	}
	close(fd2);
}

struct holder {
	int fd;
	__u32 pool;
	__u64 size;
	__s64 timeout;
	int ret;
	struct memmgr_alloc a;
	pthread_t thread;
};

static void *hold_thread(void *arg)
{
	struct holder *h = arg;

	h->ret = mm_alloc_wait(h->fd, h->pool, h->size, 99, h->timeout, 0, &h->a);
	return NULL;
}

static void start_holder(struct holder *h, int fd, __u32 pool, __u64 size,
			 __s64 timeout)
{
	*h = (struct holder){ .fd = fd, .pool = pool, .size = size,
			      .timeout = timeout, .ret = 1 };
	pthread_create(&h->thread, NULL, hold_thread, h);
}

/* Rule 5: a held request is granted when memory frees. */
TEST_F(mm, hold_granted_on_free)
{
	struct memmgr_alloc a;
	struct memmgr_stats st;
	struct holder h;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, self->T, 1, 0, 0, &a));
	start_holder(&h, self->fd, EX, self->pg, 10000);
	ASSERT_EQ(0, mm_wait_waiters(self->fd, 1));
	st = mm_stats(self->fd);
	EXPECT_EQ(1, DELTA(st, EX, held));
	EXPECT_EQ(1, h.ret);
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	pthread_join(h.thread, NULL);
	EXPECT_EQ(0, h.ret);
	EXPECT_EQ(self->pg, h.a.granted);
	st = mm_stats(self->fd);
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(self->pg, st.pool[EX].used);
	EXPECT_EQ(0, DELTA(st, EX, declined));
}

/*
 * Rule 5: a hold ends with ETIMEDOUT after about its timeout: it held (not
 * declined at once), within one timer tick (10 ms at HZ=100) of 200 ms.
 */
TEST_F(mm, hold_times_out)
{
	struct timespec t0, t1;
	struct memmgr_stats st;
	long ms;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, self->T, 1, 0, 0, NULL));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_EQ(-ETIMEDOUT, mm_alloc_wait(self->fd, EX, self->pg, 2, 200, 0,
				       NULL));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	     (t1.tv_nsec - t0.tv_nsec) / 1000000;
	EXPECT_LE(190, ms);
	st = mm_stats(self->fd);
	EXPECT_EQ(1, DELTA(st, EX, held));
	EXPECT_EQ(1, DELTA(st, EX, declined));
	EXPECT_EQ(0, st.waiters);
}

static void on_usr1(int sig)
{
}

/* Rule 5: a signal ends a hold with EINTR. */
TEST_F(mm, hold_interrupted)
{
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART */
	struct holder h;

	sigaction(SIGUSR1, &sa, NULL);
	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, self->T, 1, 0, 0, NULL));
	start_holder(&h, self->fd, EX, self->pg, MEMMGR_WAIT_FOREVER);
	ASSERT_EQ(0, mm_wait_waiters(self->fd, 1));
	pthread_kill(h.thread, SIGUSR1);
	pthread_join(h.thread, NULL);
	EXPECT_EQ(-EINTR, h.ret);
	EXPECT_EQ(0, mm_stats(self->fd).waiters);
	EXPECT_EQ(1, DELTA(mm_stats(self->fd), EX, declined));
}

/* Rule 5: an O_NONBLOCK file never holds. */
TEST_F(mm, nonblock_never_holds)
{
	int fd2 = mm_open(O_NONBLOCK);

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, self->T, 1, 0, 0, NULL));
	EXPECT_EQ(-EAGAIN, mm_alloc_wait(fd2, EX, self->pg, 1,
				    MEMMGR_WAIT_FOREVER, 0, NULL));
	EXPECT_EQ(0, DELTA(mm_stats(self->fd), EX, held));
	close(fd2);
}

/* Rule 5: larger than the pool could ever grant: E2BIG at once. */
TEST_F(mm, too_big)
{
	struct memmgr_stats st;

	EXPECT_EQ(-E2BIG, mm_alloc_wait(self->fd, ST, self->S + self->pg, 1,
				   MEMMGR_WAIT_FOREVER, 0, NULL));
	EXPECT_EQ(-E2BIG, mm_alloc_wait(self->fd, ST, self->S + 1, 1,
				   MEMMGR_WAIT_FOREVER, 0, NULL));
	EXPECT_EQ(-E2BIG, mm_alloc_wait(self->fd, EX, self->T + 1, 1,
				   MEMMGR_WAIT_FOREVER, 0, NULL));
	EXPECT_EQ(-E2BIG, mm_alloc_wait(self->fd, EX, UINT64_MAX, 1, 0, 0, NULL));
	st = mm_stats(self->fd);
	EXPECT_EQ(2, DELTA(st, ST, declined));
	EXPECT_EQ(2, DELTA(st, EX, declined));
	EXPECT_EQ(0, DELTA(st, ST, held) + DELTA(st, EX, held));
	/* The whole pool is not too big. */
	EXPECT_EQ(0, mm_alloc_wait(self->fd, EX, self->T, 1, 0, 0, NULL));
}

/* Rule 6: held requests of a pool are served in arrival order. */
TEST_F(mm, holds_fifo)
{
	struct memmgr_alloc x, y;
	struct holder big, small;
	struct memmgr_stats st;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, 2 * self->pg, 1, 0, 0, &x));
	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, self->pg, 2, 0, 0, &y));
	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, self->T - 3 * self->pg, 3, 0, 0,
			      NULL));
	start_holder(&big, self->fd, EX, 2 * self->pg, MEMMGR_WAIT_FOREVER);
	ASSERT_EQ(0, mm_wait_waiters(self->fd, 1));
	start_holder(&small, self->fd, EX, self->pg, MEMMGR_WAIT_FOREVER);
	ASSERT_EQ(0, mm_wait_waiters(self->fd, 2));
	/* A new request that would fit must queue too. */
	EXPECT_EQ(-EAGAIN, mm_alloc_wait(self->fd, EX, self->pg, 4, 0, 0, NULL));

	/* One page free: the small one fits but the big one is first. */
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, y.handle));
	st = mm_stats(self->fd);
	EXPECT_EQ(2, st.waiters);
	EXPECT_EQ(self->pg, st.free);

	/* Three pages free: both, in order. */
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, x.handle));
	pthread_join(big.thread, NULL);
	pthread_join(small.thread, NULL);
	EXPECT_EQ(0, big.ret);
	EXPECT_EQ(0, small.ret);
	st = mm_stats(self->fd);
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(0, st.free);
	EXPECT_EQ(2, DELTA(st, EX, held));
}

/* A storage hold is granted by eviction once a buffer is unpinned. */
TEST_F(mm, hold_granted_on_unpin)
{
	struct memmgr_alloc a;
	struct holder h;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->S, 1, 0, 0, &a));
	start_holder(&h, self->fd, ST, self->pg, 10000);
	ASSERT_EQ(0, mm_wait_waiters(self->fd, 1));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, a.handle));
	pthread_join(h.thread, NULL);
	EXPECT_EQ(0, h.ret);
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 1, NULL));
	EXPECT_EQ(1, DELTA(mm_stats(self->fd), ST, evictions));
}

/* EEXIST, ENOENT, and a storage tag per file. */
TEST_F(mm, tags_and_handles)
{
	int fd2 = mm_open(0);
	struct memmgr_alloc a;
	struct memmgr_lookup l;

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->pg, 42, 0, 0, &a));
	EXPECT_EQ(-EEXIST, mm_alloc_wait(self->fd, ST, self->pg, 42, 0, 0, NULL));
	EXPECT_EQ(0, mm_alloc_wait(fd2, ST, self->pg, 42, 0, 0, NULL));
	/* Exec ids repeat freely. */
	EXPECT_EQ(0, mm_alloc_wait(self->fd, EX, self->pg, 42, 0, 0, NULL));
	EXPECT_EQ(0, mm_alloc_wait(self->fd, EX, self->pg, 42, 0, 0, NULL));
	ASSERT_EQ(0, mm_lookup(self->fd, 42, &l));
	EXPECT_EQ(a.handle, l.handle);
	EXPECT_EQ(a.offset, l.offset);
	EXPECT_EQ(self->pg, l.size);
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 43, NULL));
	EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle + 1));
	EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_FREE, 0));
	EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_PIN, 12345678));
	EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_UNPIN, UINT64_MAX));
	/* Another file's handle is unknown here. */
	EXPECT_EQ(-ENOENT, mm_buf(fd2, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	close(fd2);
}

/* RELEASE frees every allocation of a tag, and says how much. */
TEST_F(mm, release_by_tag)
{
	struct memmgr_release r = { .pool = EX, .tag = 5 };
	struct memmgr_stats st;

	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, self->pg, 5, 0, 0, NULL));
	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, 3 * self->pg, 5, 0, 0, NULL));
	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, 2 * self->pg, 6, 0, 0, NULL));
	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, 2 * self->pg, 5, 0, 0, NULL));
	ASSERT_EQ(0, ioctl(self->fd, MEMMGR_IOC_RELEASE, &r));
	EXPECT_EQ(4 * self->pg, r.freed);
	st = mm_stats(self->fd);
	EXPECT_EQ(2 * self->pg, st.pool[EX].used);
	EXPECT_EQ(2 * self->pg, st.pool[ST].used);
	EXPECT_EQ(2, DELTA(st, EX, frees));
	ASSERT_EQ(0, ioctl(self->fd, MEMMGR_IOC_RELEASE, &r));
	EXPECT_EQ(0, r.freed);
	r = (struct memmgr_release){ .pool = ST, .tag = 5 };
	ASSERT_EQ(0, ioctl(self->fd, MEMMGR_IOC_RELEASE, &r));
	EXPECT_EQ(2 * self->pg, r.freed);
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 5, NULL));
}

/* mmap: shared only, inside one live allocation of this file. */
TEST_F(mm, mmap_rules)
{
	int fd2 = mm_open(0);
	struct memmgr_alloc a, b;
	unsigned char *p;
	__u64 pg = self->pg;

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, 3 * pg, 1, 0, 0, &a));
	ASSERT_EQ(0, mm_alloc_wait(self->fd, EX, 2 * pg, 1, 0, 0, &b));

	EXPECT_EQ(MAP_FAILED, mmap(NULL, pg, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE, self->fd, a.offset));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4 * pg, PROT_READ, MAP_SHARED,
				   self->fd, a.offset));
	EXPECT_EQ(EINVAL, errno);
	if (b.offset == a.offset + a.granted) {
		/* Adjacent offsets: a range across both is refused. */
		EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * pg, PROT_READ, MAP_SHARED,
					   self->fd, a.offset + 2 * pg));
		EXPECT_EQ(EINVAL, errno);
	}
	EXPECT_EQ(MAP_FAILED, mmap(NULL, pg, PROT_READ, MAP_SHARED,
				   self->fd, b.offset + b.granted + 64 * pg));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, pg, PROT_READ, MAP_SHARED, fd2,
				   a.offset));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, pg, PROT_READ | PROT_EXEC,
				   MAP_SHARED, self->fd, a.offset));
	EXPECT_EQ(EPERM, errno);

	/* A partial mapping sees the right pages. */
	p = map(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	p[pg] = 0x77;
	p[2 * pg + 5] = 0x78;
	munmap(p, a.granted);
	p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		 a.offset + pg);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0x77, p[0]);
	EXPECT_EQ(0x78, p[pg + 5]);
	EXPECT_EQ(-1, mprotect(p, pg, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
	munmap(p, 2 * pg);
	close(fd2);
}

/* close() of the last reference frees everything and wakes holds. */
TEST_F(mm, close_frees_everything)
{
	int fd2 = mm_open(0);
	struct memmgr_alloc a;
	struct memmgr_stats st;
	struct holder h;
	unsigned char *p;

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mm_alloc_wait(fd2, EX, self->E, 1, 0, 0, &a));
	ASSERT_EQ(0, mm_alloc_wait(fd2, ST, self->S, 2, 0, 0, NULL));
	p = map(fd2, &a);
	ASSERT_NE(MAP_FAILED, p);
	start_holder(&h, self->fd, EX, self->pg, 10000);
	ASSERT_EQ(0, mm_wait_waiters(self->fd, 1));
	close(fd2);
	/* The mapping keeps the file open. */
	EXPECT_EQ(1, mm_stats(self->fd).waiters);
	p[0] = 1;
	munmap(p, a.granted);
	pthread_join(h.thread, NULL);
	EXPECT_EQ(0, h.ret);
	st = mm_stats(self->fd);
	EXPECT_EQ(self->pg, st.pool[EX].used);
	EXPECT_EQ(0, st.pool[ST].used);
	EXPECT_EQ(self->T - self->pg, st.free);
}

/* A process killed while holding memory and a hold leaks nothing. */
TEST_F(mm, kill9_frees_everything)
{
	struct memmgr_stats st;
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd = mm_open(0);
		struct memmgr_alloc a;
		unsigned char *p;

		if (mm_alloc_wait(fd, EX, self->T, 1, 0, 0, &a))
			_exit(1);
		p = map(fd, &a);
		if (p == MAP_FAILED)
			_exit(2);
		memset(p, 3, a.granted);
		mm_alloc_wait(fd, EX, self->pg, 1, MEMMGR_WAIT_FOREVER, 0, NULL);
		_exit(3);
	}
	ASSERT_EQ(0, mm_wait_waiters(self->fd, 1));
	EXPECT_EQ(self->T, mm_stats(self->fd).pool[EX].used);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	st = mm_stats(self->fd);
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(0, st.pool[EX].used);
	EXPECT_EQ(self->T, st.free);
}

/*
 * A file whose evicted buffer the reclaim worker has not taken yet closes
 * at once.  Last in this file: the load test unloads memmgr right after
 * it, with the eviction's pages likely still on their way back.
 */
TEST_F(mm, close_with_eviction_pending)
{
	struct memmgr_alloc a, b;
	unsigned char *p;
	int fd = mm_open(0);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mm_alloc_wait(fd, ST, self->S, 1, 0,
			      MEMMGR_ALLOC_UNPINNED, &a));
	p = map(fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, a.granted);
	ASSERT_EQ(0, munmap(p, a.granted));
	ASSERT_EQ(0, mm_alloc_wait(self->fd, ST, self->S, 2, 0, 0, &b));
	EXPECT_EQ(1, DELTA(mm_stats(self->fd), ST, evictions));
	EXPECT_EQ(0, close(fd));
	EXPECT_EQ(self->S, mm_stats(self->fd).pool[ST].used);
	EXPECT_EQ(self->S, mm_stats(self->fd).client_used[ST]);
}

TEST_HARNESS_MAIN
