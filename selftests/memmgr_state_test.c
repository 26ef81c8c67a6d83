// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests of the state area (MEMMGR_STATE_OFFSET) and the figures page
 * (MEMMGR_FIGURES_OFFSET), at the raw ioctl and mmap level.  Checked:
 * the state area's mmap rules (EBUSY once the file has a storage buffer,
 * live or evicted; an exec-only file may map it); the exact word of a
 * buffer after ALLOC, PIN, UNPIN, FREE and eviction; pins made with a
 * compare-and-swap keep a buffer from eviction, and a buffer the kernel
 * parked needs MEMMGR_IOC_UNPIN; a stale generation cannot pin a reused
 * offset; a pin racing eviction from another process, a million times,
 * never both pinned and evicted; garbage in the words hurts only its own
 * file's buffers and keeps the statistics exact; the pinned statistic;
 * fork and close; and the figures page, equal to STATS.
 *
 * Needs memmgr loaded with total=64M or so and an otherwise idle device;
 * sets mode=split and evict_policy=random (the defaults).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/memmgr.h>

#include "kselftest_harness.h"
#include "memmgr_util.h"

#define ST MEMMGR_POOL_STORAGE
#define EX MEMMGR_POOL_EXEC
#define MIB (1ULL << 20)
#define PINS MEMMGR_STATE_PINS
#define USED MEMMGR_STATE_USED
#define PARKED MEMMGR_STATE_PARKED
#define EVICTING MEMMGR_STATE_EVICTING
#define GONE MEMMGR_STATE_GONE
#define FREED MEMMGR_STATE_FREED
/* A word no live buffer has (a page never used, or a freed buffer's). */
#define UNUSED (FREED | GONE)
/* The part of the state area the tests map: words for 128 MiB of offsets. */
#define STATE_LEN (256UL << 10)
#define RW (PROT_READ | PROT_WRITE)

/* The word a buffer with @handle has with the low bits @bits. */
static __u64 wd(__u64 handle, __u64 bits)
{
	return (handle >> MEMMGR_STATE_GEN_SHIFT << MEMMGR_STATE_GEN_SHIFT) |
	       bits;
}

static __u64 ld(__u64 *w)
{
	return __atomic_load_n(w, __ATOMIC_ACQUIRE);
}

static __u64 *state_map(int fd, size_t len, __u64 at)
{
	void *p = mmap(NULL, len, RW, MAP_SHARED, fd, MEMMGR_STATE_OFFSET + at);

	return p == MAP_FAILED ? NULL : p;
}

/* errno of a failing mmap(), or 0 if it succeeded (then unmapped). */
static int map_err(int fd, size_t len, int prot, int flags, __u64 off)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);

	if (p == MAP_FAILED)
		return errno;
	munmap(p, len);
	return 0;
}

/*
 * The protocol's pin: 0, or -ENOENT (freed, or another generation),
 * -ESTALE (evicted), -EBUSY (being evicted: MEMMGR_IOC_PIN must do it),
 * -EOVERFLOW (pin count full).
 */
static int cas_pin(__u64 *w, __u64 handle)
{
	__u64 old = __atomic_load_n(w, __ATOMIC_RELAXED);

	do {
		if (old >> 32 != handle >> 32 || (old & FREED))
			return -ENOENT;
		if (old & GONE)
			return -ESTALE;
		if (old & EVICTING)
			return -EBUSY;
		if ((old & PINS) == PINS)
			return -EOVERFLOW;
	} while (!__atomic_compare_exchange_n(w, &old, (old + 1) | USED, 0,
					      __ATOMIC_ACQUIRE,
					      __ATOMIC_RELAXED));
	return 0;
}

/* The protocol's unpin: 0, -EINVAL (no pin), -EAGAIN (the ioctl's turn). */
static int cas_unpin(__u64 *w)
{
	__u64 old = __atomic_load_n(w, __ATOMIC_RELAXED);

	do {
		if (!(old & PINS))
			return -EINVAL;
		if ((old & PARKED) && (old & PINS) == 1)
			return -EAGAIN;
	} while (!__atomic_compare_exchange_n(w, &old, old - 1, 0,
					      __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
	return 0;
}

/* Unpin as a client must: by CAS, or by MEMMGR_IOC_UNPIN when parked. */
static int unpin(int fd, __u64 *w, __u64 handle)
{
	int ret = cas_unpin(w);

	if (ret == -EAGAIN)
		ret = mm_buf(fd, MEMMGR_IOC_UNPIN, handle);
	return ret;
}

/* MEMMGR_IOC_LOOKUP by handle. */
static int lookup_handle(int fd, __u64 handle)
{
	struct memmgr_lookup l = {
		.flags = MEMMGR_LOOKUP_HANDLE, .handle = handle,
	};

	return ioctl(fd, MEMMGR_IOC_LOOKUP, &l) ? -errno : 0;
}

FIXTURE(st) {
	int fd;			/* has a state area before any ALLOC */
	__u64 pg, T, S;
	__u64 *sa;		/* STATE_LEN bytes of it */
	unsigned char *w;	/* T bytes of its window */
};

FIXTURE_SETUP(st)
{
	struct memmgr_stats st;

	self->sa = NULL;
	self->w = MAP_FAILED;
	self->fd = mm_open(0);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, mm_set_param("mode", "split"));
	ASSERT_EQ(0, mm_set_param("evict_policy", "random"));
	st = mm_stats(self->fd);
	self->pg = st.page_size;
	self->T = st.total;
	self->S = st.pool[ST].quota;
	ASSERT_EQ(4096, self->pg);
	ASSERT_EQ(0, st.pool[ST].used);
	ASSERT_EQ(0, st.pool[EX].used);
	ASSERT_EQ(0, st.pool[ST].pinned);
	ASSERT_LE(8 * MIB, self->S);
	ASSERT_GE(self->T - self->S, 8 * MIB);
	self->sa = state_map(self->fd, STATE_LEN, 0);
	ASSERT_NE(NULL, self->sa);
	self->w = mmap(NULL, self->T, RW, MAP_SHARED, self->fd,
		       MEMMGR_WINDOW_OFFSET);
	ASSERT_NE(MAP_FAILED, self->w);
}

FIXTURE_TEARDOWN(st)
{
	if (self->sa)
		munmap(self->sa, STATE_LEN);
	if (self->w != MAP_FAILED)
		munmap(self->w, self->T);
	if (self->fd >= 0)
		close(self->fd);
}

/* The word of the fixture's buffer at @offset. */
#define W(off) (&self->sa[(off) / self->pg])

/* The state area's mmap rules, EBUSY, and several mappings of one file. */
TEST_F(st, mmap_rules)
{
	const __u64 so = MEMMGR_STATE_OFFSET, end = so + MEMMGR_STATE_SIZE;
	struct memmgr_alloc a, b, c, d, e;
	int x, fb, fc, fd2, fe;
	unsigned char v;
	__u64 *p, *q;

	x = mm_open(0);
	ASSERT_LE(0, x);
	EXPECT_EQ(EINVAL, map_err(x, self->pg, RW, MAP_PRIVATE, so));
	EXPECT_EQ(EPERM, map_err(x, self->pg, RW | PROT_EXEC, MAP_SHARED, so));
	EXPECT_EQ(EINVAL, map_err(x, self->pg, RW, MAP_SHARED, end));
	EXPECT_EQ(EINVAL, map_err(x, 2 * self->pg, RW, MAP_SHARED,
				  end - self->pg));
	/*
	 * The last page alone maps, but no buffer had an offset whose word
	 * is there: the area is not backed so high, SIGBUS.  Once a buffer
	 * at 512 pages and more exists, the page of words below it, a hole
	 * no buffer began in, reads as words of no buffer.
	 */
	p = mmap(NULL, self->pg, RW, MAP_SHARED, x, end - self->pg);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(SIGBUS, probe_read((unsigned char *)p, &v));
	munmap(p, self->pg);
	p = mmap(NULL, 2 * self->pg, RW, MAP_SHARED, x, so);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(SIGBUS, probe_read((unsigned char *)p, &v));
	ASSERT_EQ(0, mm_alloc(x, EX, 512 * self->pg, 1, 0, &a));
	EXPECT_EQ(SIGBUS, probe_read((unsigned char *)p, &v));
	ASSERT_EQ(0, mm_alloc(x, ST, self->pg, 2, 0, &e));
	ASSERT_EQ(512 * self->pg, e.offset);
	EXPECT_EQ(UNUSED, p[0]);
	EXPECT_EQ(UNUSED, p[self->pg / 8 - 1]);
	EXPECT_EQ(wd(e.handle, 1), p[self->pg / 8]);
	EXPECT_EQ(0, probe_read((unsigned char *)p + 2 * self->pg - 1, &v));
	munmap(p, 2 * self->pg);
	close(x);

	/* A live storage buffer: EBUSY. */
	fb = mm_open(0);
	ASSERT_LE(0, fb);
	ASSERT_EQ(0, mm_alloc(fb, ST, self->pg, 1, 0, &b));
	EXPECT_EQ(EBUSY, map_err(fb, self->pg, RW, MAP_SHARED, so));
	EXPECT_EQ(EBUSY, map_err(fb, STATE_LEN, RW, MAP_SHARED, so));

	/* Only an evicted entry: EBUSY too. */
	fc = mm_open(0);
	ASSERT_LE(0, fc);
	ASSERT_EQ(0, mm_alloc(fc, ST, self->pg, 1, MEMMGR_ALLOC_UNPINNED, &c));
	fd2 = mm_open(0);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mm_alloc(fd2, ST, self->S - self->pg, 1, 0, &d));
	ASSERT_EQ(-ESTALE, mm_lookup(fc, 1, NULL));
	EXPECT_EQ(EBUSY, map_err(fc, self->pg, RW, MAP_SHARED, so));
	close(fd2);
	close(fc);
	close(fb);

	/* Execution buffers only: allowed; they have no word. */
	fe = mm_open(0);
	ASSERT_LE(0, fe);
	ASSERT_EQ(0, mm_alloc(fe, EX, self->pg, 1, 0, &e));
	ASSERT_EQ(0, e.offset);
	p = state_map(fe, self->pg, 0);
	ASSERT_NE(NULL, p);
	/* No storage buffer yet, so no word is backed. */
	EXPECT_EQ(SIGBUS, probe_read((unsigned char *)p, &v));
	ASSERT_EQ(0, mm_alloc(fe, ST, self->pg, 2, 0, &e));
	ASSERT_EQ(self->pg, e.offset);
	EXPECT_EQ(wd(e.handle, 1), p[1]);
	EXPECT_EQ(UNUSED, p[0]);
	munmap(p, self->pg);
	close(fe);

	/* The fixture's file: mapped again once it has buffers. */
	EXPECT_EQ(SIGBUS, probe_read((unsigned char *)self->sa, &v));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 1, 0, &a));
	ASSERT_EQ(0, a.offset);
	EXPECT_EQ(wd(a.handle, 1), self->sa[0]);
	p = state_map(self->fd, STATE_LEN, 0);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(wd(a.handle, 1), p[0]);
	EXPECT_EQ(UNUSED, p[1]);
	/*
	 * A part that does not start at the area's start maps; its page of
	 * words is above any buffer's: SIGBUS.
	 */
	q = state_map(self->fd, self->pg, self->pg);
	ASSERT_NE(NULL, q);
	EXPECT_EQ(SIGBUS, probe_read((unsigned char *)q, &v));
	/* The same words: a store through one shows through the other. */
	p[3] = 0x1234;
	EXPECT_EQ(0x1234, self->sa[3]);
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_PIN, a.handle));
	EXPECT_EQ(wd(a.handle, 2 | USED | PARKED), p[0]);
	munmap(q, self->pg);
	munmap(p, STATE_LEN);
}

/* The word after ALLOC, PIN, UNPIN, FREE and eviction; unused words. */
TEST_F(st, words)
{
	struct memmgr_alloc a, b, x, big;
	int other;

	unsigned char v;

	/* Before any storage buffer, no word is backed: SIGBUS. */
	EXPECT_EQ(SIGBUS, probe_read((unsigned char *)self->sa, &v));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 1, 0, &a));
	ASSERT_EQ(0, a.offset);
	EXPECT_EQ(wd(a.handle, 1), *W(a.offset));
	/* Two pages: the word of the first page is the buffer's. */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, 2 * self->pg, 2,
			      MEMMGR_ALLOC_UNPINNED, &b));
	ASSERT_EQ(self->pg, b.offset);
	EXPECT_EQ(wd(b.handle, 0), *W(b.offset));
	/* The rest of the page of words reads as words of no buffer. */
	EXPECT_EQ(UNUSED, self->sa[self->pg / 8 - 1]);
	EXPECT_EQ(SIGBUS, probe_read((unsigned char *)self->sa + self->pg,
				     &v));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, self->pg, 3, 0, &x));
	ASSERT_EQ(3 * self->pg, x.offset);
	EXPECT_EQ(UNUSED, *W(x.offset));
	EXPECT_EQ(-EINVAL, mm_buf(self->fd, MEMMGR_IOC_PIN, x.handle));
	EXPECT_EQ(UNUSED, *W(x.offset));

	/* PIN and UNPIN ioctls act on the word. */
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_PIN, b.handle));
	EXPECT_EQ(wd(b.handle, 1 | USED | PARKED), *W(b.offset));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_PIN, b.handle));
	EXPECT_EQ(wd(b.handle, 2 | USED | PARKED), *W(b.offset));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, b.handle));
	EXPECT_EQ(wd(b.handle, 1 | USED | PARKED), *W(b.offset));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, b.handle));
	EXPECT_EQ(wd(b.handle, USED), *W(b.offset));
	EXPECT_EQ(-EINVAL, mm_buf(self->fd, MEMMGR_IOC_UNPIN, b.handle));
	EXPECT_EQ(wd(b.handle, USED), *W(b.offset));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, a.handle));
	EXPECT_EQ(wd(a.handle, 0), *W(a.offset));

	/* FREE: GONE|FREED with the buffer's generation. */
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, b.handle));
	EXPECT_EQ(wd(b.handle, GONE | FREED), *W(b.offset));
	EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_PIN, b.handle));

	/* Eviction (a is the device's only unpinned buffer): GONE. */
	other = mm_open(0);
	ASSERT_LE(0, other);
	ASSERT_EQ(0, mm_alloc(other, ST, self->S, 1, 0, &big));
	EXPECT_EQ(wd(a.handle, GONE), *W(a.offset));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 1, NULL));
	EXPECT_EQ(-ESTALE, mm_buf(self->fd, MEMMGR_IOC_PIN, a.handle));
	EXPECT_EQ(-ESTALE, cas_pin(W(a.offset), a.handle));
	EXPECT_EQ(wd(a.handle, GONE), *W(a.offset));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(wd(a.handle, GONE | FREED), *W(a.offset));
	close(other);
}

/*
 * Pins by CAS keep a buffer from eviction; after a CAS unpin it can be
 * evicted; a buffer the kernel found pinned (PARKED) needs the UNPIN
 * ioctl for its last pin, after which it can be evicted again.
 */
TEST_F(st, cas_pin_vs_eviction)
{
	struct memmgr_alloc x[4], y, big, one;
	__u64 w0;
	int p, i;

	p = mm_open(0);
	ASSERT_LE(0, p);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, i + 1,
				      MEMMGR_ALLOC_UNPINNED, &x[i]));
		ASSERT_EQ(i * self->pg, x[i].offset);
		memset(self->w + x[i].offset, 0x10 + i, self->pg);
	}
	ASSERT_EQ(0, cas_pin(W(0), x[0].handle));
	EXPECT_EQ(wd(x[0].handle, 1 | USED), *W(0));

	/* Room for S - pg: the three unpinned pages go, x[0] stays. */
	ASSERT_EQ(0, mm_alloc(p, ST, self->S - self->pg, 1, 0, &big));
	for (i = 1; i < 4; i++) {
		EXPECT_EQ(wd(x[i].handle, GONE), *W(x[i].offset));
		EXPECT_EQ(-ESTALE, mm_lookup(self->fd, i + 1, NULL));
	}
	EXPECT_EQ(0, mm_lookup(self->fd, 1, NULL));
	EXPECT_TRUE(mm_all_bytes(self->w, self->pg, 0x10));
	w0 = *W(0);
	EXPECT_EQ(wd(x[0].handle, 1 | USED), w0 & ~PARKED);
	TH_LOG("x[0] %s parked", w0 & PARKED ? "was" : "was not");
	ASSERT_EQ(0, unpin(self->fd, W(0), x[0].handle));
	EXPECT_EQ(wd(x[0].handle, USED), *W(0));

	/* A CAS pin and a CAS unpin: evictable again. */
	ASSERT_EQ(0, cas_pin(W(0), x[0].handle));
	EXPECT_EQ(wd(x[0].handle, 1 | USED), *W(0));
	ASSERT_EQ(0, cas_unpin(W(0)));
	EXPECT_EQ(wd(x[0].handle, USED), *W(0));
	ASSERT_EQ(0, mm_alloc(p, ST, self->pg, 2, 0, &one));
	EXPECT_EQ(wd(x[0].handle, GONE), *W(0));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 1, NULL));
	EXPECT_EQ(-ESTALE, cas_pin(W(0), x[0].handle));

	/* Parked: the kernel needed the one page y holds, pinned by CAS. */
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, x[i].handle));
	ASSERT_EQ(0, mm_buf(p, MEMMGR_IOC_FREE, big.handle));
	ASSERT_EQ(0, mm_buf(p, MEMMGR_IOC_FREE, one.handle));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 5, MEMMGR_ALLOC_UNPINNED,
			      &y));
	ASSERT_EQ(0, y.offset);
	EXPECT_EQ(wd(y.handle, 0), *W(0));
	ASSERT_EQ(0, cas_pin(W(0), y.handle));
	EXPECT_EQ(-EAGAIN, mm_alloc(p, ST, self->S, 1, 0, &big));
	EXPECT_EQ(wd(y.handle, 1 | USED | PARKED), *W(0));
	EXPECT_EQ(0, mm_lookup(self->fd, 5, NULL));
	/* Another pin and its unpin by CAS; the last one is the ioctl's. */
	ASSERT_EQ(0, cas_pin(W(0), y.handle));
	EXPECT_EQ(wd(y.handle, 2 | USED | PARKED), *W(0));
	ASSERT_EQ(0, cas_unpin(W(0)));
	EXPECT_EQ(-EAGAIN, cas_unpin(W(0)));
	EXPECT_EQ(wd(y.handle, 1 | USED | PARKED), *W(0));
	/* Still parked: the kernel does not consider it. */
	EXPECT_EQ(-EAGAIN, mm_alloc(p, ST, self->S, 1, 0, &big));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, y.handle));
	EXPECT_EQ(wd(y.handle, USED), *W(0));
	ASSERT_EQ(0, mm_alloc(p, ST, self->S, 1, 0, &big));
	EXPECT_EQ(wd(y.handle, GONE), *W(0));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 5, NULL));
	close(p);
}

/* A handle freed and its offset reused: its generation cannot pin. */
TEST_F(st, stale_generation)
{
	struct memmgr_alloc a, b;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 1, MEMMGR_ALLOC_UNPINNED,
			      &a));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(wd(a.handle, GONE | FREED), *W(a.offset));
	EXPECT_EQ(-ENOENT, cas_pin(W(a.offset), a.handle));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 1, MEMMGR_ALLOC_UNPINNED,
			      &b));
	ASSERT_EQ(a.offset, b.offset);
	EXPECT_NE(a.handle >> 32, b.handle >> 32);
	EXPECT_EQ(wd(b.handle, 0), *W(b.offset));

	EXPECT_EQ(-ENOENT, cas_pin(W(a.offset), a.handle));
	EXPECT_EQ(wd(b.handle, 0), *W(b.offset));
	EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_PIN, a.handle));
	EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_UNPIN, a.handle));
	EXPECT_EQ(-ENOENT, lookup_handle(self->fd, a.handle));
	EXPECT_EQ(0, mm_stats(self->fd).pool[ST].pinned);
	ASSERT_EQ(0, cas_pin(W(b.offset), b.handle));
	EXPECT_EQ(wd(b.handle, 1 | USED), *W(b.offset));
	EXPECT_EQ(self->pg, mm_stats(self->fd).pool[ST].pinned);
}

/*
 * The race: a child pins and unpins its buffers by CAS; the parent, from
 * another open file, keeps storage full, so that each of its allocations
 * evicts one of them.  RACE_ATTEMPTS pins in all, RACE_CYCLES allocations
 * at most.
 */
#define RACE_BUFS	16
#define RACE_ATTEMPTS	1000000
#define RACE_CYCLES	3000

struct race {
	int done, line, ret;
	__u64 attempts, pins, failed, ioctl_pins, h, v;
};

static void race_sigbus(int sig)
{
	static const char msg[] = "SIGBUS in the race child\n";

	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(21);
	_exit(20);
}

/* The child's first failure: where, with the handle, word and error. */
#define RACE_FAIL(hh, vv, rr) do { \
	r->line = __LINE__; \
	r->h = (hh); \
	r->v = (vv); \
	r->ret = (rr); \
	return 1; \
} while (0)

/* Put @h's pattern into its page (first, middle and last words). */
static void race_fill(volatile __u64 *p, __u64 pg, __u64 h)
{
	p[0] = h;
	p[pg / 16] = h;
	p[pg / 8 - 1] = h;
}

static int race_child(int fd, __u64 pg, __u64 *hd, const __u64 *off,
		      volatile unsigned char *win, struct race *r)
{
	struct memmgr_alloc a;
	__u64 i, k, v, *sa;
	int ret;

	sa = state_map(fd, STATE_LEN, 0);
	if (!sa)
		RACE_FAIL(0, 0, -errno);
	for (i = 0; i < RACE_ATTEMPTS; i++) {
		int b = i % RACE_BUFS;
		volatile __u64 *p = (volatile __u64 *)(win + off[b]);
		__u64 *w = &sa[off[b] / pg], h = hd[b];

		ret = cas_pin(w, h);
		if (ret == -EBUSY) {
			/* EVICTING: the ioctl waits for the kernel. */
			ret = mm_buf(fd, MEMMGR_IOC_PIN, h);
			r->ioctl_pins++;
		}
		if (!ret) {
			r->pins++;
			if (p[0] != h || p[pg / 16] != h || p[pg / 8 - 1] != h)
				RACE_FAIL(h, p[0], 0);
			/* Pinned: never evicted, nor being evicted. */
			v = ld(w);
			if (v >> 32 != h >> 32 || !(v & PINS) ||
			    (v & (GONE | EVICTING | FREED)))
				RACE_FAIL(h, v, 0);
			if (!(r->pins & 255))
				ret = lookup_handle(fd, h);
			if (!ret)
				ret = unpin(fd, w, h);
			if (ret)
				RACE_FAIL(h, ld(w), ret);
			continue;
		}
		if (ret != -ESTALE)
			RACE_FAIL(h, ld(w), ret);
		/* Lost to an eviction: LOOKUP agrees; a new buffer there. */
		r->failed++;
		ret = lookup_handle(fd, h);
		if (ret != -ESTALE)
			RACE_FAIL(h, ld(w), ret);
		ret = mm_buf(fd, MEMMGR_IOC_FREE, h);
		if (ret)
			RACE_FAIL(h, ld(w), ret);
		for (k = 0; k < 60; k++) {
			ret = mm_alloc_wait(fd, ST, pg, b + 1, 1000, 0, &a);
			if (ret != -ETIMEDOUT)
				break;
		}
		if (ret || a.offset != off[b])
			RACE_FAIL(a.offset, off[b], ret);
		v = ld(w) & ~PARKED;
		if (v != wd(a.handle, 1))
			RACE_FAIL(a.handle, v, 0);
		hd[b] = a.handle;
		race_fill(p, pg, a.handle);
		ret = unpin(fd, w, a.handle);
		if (ret)
			RACE_FAIL(a.handle, ld(w), ret);
	}
	r->attempts = i;
	return 0;
}

TEST_F_TIMEOUT(st, pin_races_eviction, 120)
{
	struct memmgr_stats st0, st1, st2;
	__u64 hd[RACE_BUFS], off[RACE_BUFS], cycles, allocs = 0;
	struct memmgr_alloc a, fill;
	struct sigaction sa = { .sa_handler = race_sigbus };
	struct race *r;
	int p, i, ret, status, pipefd[2];
	pid_t pid;
	char c;

	r = mmap(NULL, sizeof(*r), RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r);
	memset(r, 0, sizeof(*r));
	for (i = 0; i < RACE_BUFS; i++) {
		ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, i + 1, 0, &a));
		ASSERT_EQ(i * self->pg, a.offset);
		hd[i] = a.handle;
		off[i] = a.offset;
		race_fill((volatile __u64 *)(self->w + a.offset), self->pg,
			  a.handle);
		ASSERT_EQ(0, cas_unpin(W(a.offset)));
		ASSERT_EQ(wd(a.handle, 0), *W(a.offset));
	}
	/* Storage full: every later page evicts one of the child's. */
	p = mm_open(0);
	ASSERT_LE(0, p);
	ASSERT_EQ(0, mm_alloc(p, ST, self->S - RACE_BUFS * self->pg, 1, 0,
			      &fill));
	st0 = mm_stats(p);
	ASSERT_EQ(self->S, st0.pool[ST].used);
	ASSERT_EQ(0, pipe(pipefd));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		sigaction(SIGBUS, &sa, NULL);
		close(pipefd[0]);
		if (write(pipefd[1], "r", 1) != 1)
			_exit(2);
		ret = race_child(self->fd, self->pg, hd, off, self->w, r);
		__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
		_exit(ret);
	}
	close(pipefd[1]);
	EXPECT_EQ(1, read(pipefd[0], &c, 1));
	close(pipefd[0]);
	for (cycles = 0; cycles < RACE_CYCLES &&
	     !__atomic_load_n(&r->done, __ATOMIC_ACQUIRE); cycles++) {
		ret = mm_alloc(p, ST, self->pg, 2, 0, &a);
		if (ret == -EAGAIN)
			continue;
		EXPECT_EQ(0, ret);
		if (ret)
			break;
		allocs++;
		EXPECT_EQ(0, mm_buf(p, MEMMGR_IOC_FREE, a.handle));
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	st1 = mm_stats(self->fd);
	st2 = mm_stats(p);
	TH_LOG("%llu pins (%llu by ioctl), %llu lost; %llu of %llu allocs",
	       r->pins, r->ioctl_pins, r->failed, allocs, cycles);
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) {
		TH_LOG("child failed at line %d: %llx %llx, error %d", r->line,
		       r->h, r->v, r->ret);
	}
	EXPECT_EQ(RACE_ATTEMPTS, r->attempts);
	EXPECT_EQ(r->attempts, r->pins + r->failed);
	EXPECT_LE(1, r->pins);
	EXPECT_LE(1, r->failed);
	/* Each failed pin saw its own eviction. */
	EXPECT_LE(r->failed, st1.pool[ST].evictions - st0.pool[ST].evictions);
	/* No pin left behind; the pools add up. */
	EXPECT_EQ(fill.granted, st1.pool[ST].pinned);
	EXPECT_EQ(st1.pool[ST].used, st1.client_used[ST] + st2.client_used[ST]);
	EXPECT_EQ(fill.granted, st2.client_used[ST]);
	close(p);
	munmap(r, sizeof(*r));
}

/*
 * Garbage in this file's words: those buffers count as pinned, are never
 * evicted, and their PIN/UNPIN ioctls fail with EIO; another file's
 * buffers (and this file's good one) are evicted as usual, the statistics
 * stay exact, and closing the file gives everything back.
 */
TEST_F(st, garbage)
{
	struct memmgr_alloc g[5], n, o[3], big, a;
	struct memmgr_stats st0, s, sf, so, sp;
	int of, p, i;

	st0 = mm_stats(self->fd);
	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, i + 1,
				      MEMMGR_ALLOC_UNPINNED, &g[i]));
		ASSERT_EQ(i * self->pg, g[i].offset);
		memset(self->w + g[i].offset, 0x40 + i, self->pg);
	}
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 6, MEMMGR_ALLOC_UNPINNED,
			      &n));
	of = mm_open(0);
	ASSERT_LE(0, of);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, mm_alloc(of, ST, self->pg, i + 1,
				      MEMMGR_ALLOC_UNPINNED, &o[i]));
	EXPECT_EQ(0, mm_stats(of).pool[ST].pinned);

	*W(0) = wd(g[0].handle ^ (1ULL << 32), 0);	/* wrong generation */
	*W(self->pg) = wd(g[1].handle, EVICTING);
	*W(2 * self->pg) = wd(g[2].handle, GONE);
	*W(3 * self->pg) = wd(g[3].handle, GONE | FREED);
	*W(4 * self->pg) = wd(g[4].handle, PINS);	/* pinned, full */
	s = mm_stats(of);
	EXPECT_EQ(5 * self->pg, s.pool[ST].pinned);
	EXPECT_EQ(9 * self->pg, s.pool[ST].used);

	/* Room for S - 5 pages: exactly the four good pages go. */
	p = mm_open(0);
	ASSERT_LE(0, p);
	ASSERT_EQ(0, mm_alloc(p, ST, self->S - 5 * self->pg, 1, 0, &big));
	EXPECT_EQ(-EAGAIN, mm_alloc(p, ST, self->pg, 2, 0, &a));
	for (i = 0; i < 3; i++)
		EXPECT_EQ(-ESTALE, mm_lookup(of, i + 1, NULL));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 6, NULL));
	EXPECT_EQ(wd(n.handle, GONE), *W(n.offset));
	for (i = 0; i < 5; i++) {
		EXPECT_EQ(0, mm_lookup(self->fd, i + 1, NULL));
		EXPECT_TRUE(mm_all_bytes(self->w + g[i].offset, self->pg,
					 0x40 + i));
	}
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(-EIO, mm_buf(self->fd, MEMMGR_IOC_PIN, g[i].handle));
		EXPECT_EQ(-EIO, mm_buf(self->fd, MEMMGR_IOC_UNPIN,
				       g[i].handle));
	}
	EXPECT_EQ(-EOVERFLOW, mm_buf(self->fd, MEMMGR_IOC_PIN, g[4].handle));
	EXPECT_EQ(wd(g[4].handle, PINS), *W(4 * self->pg) & ~PARKED);

	sf = mm_stats(self->fd);
	so = mm_stats(of);
	sp = mm_stats(p);
	EXPECT_EQ(4, sf.pool[ST].evictions - st0.pool[ST].evictions);
	EXPECT_EQ(4 * self->pg,
		  sf.pool[ST].evicted_bytes - st0.pool[ST].evicted_bytes);
	EXPECT_EQ(self->S, sf.pool[ST].used);
	EXPECT_EQ(5 * self->pg, sf.client_used[ST]);
	EXPECT_EQ(0, so.client_used[ST]);
	EXPECT_EQ(big.granted, sp.client_used[ST]);
	EXPECT_EQ(sf.pool[ST].used, sf.client_used[ST] + so.client_used[ST] +
		  sp.client_used[ST]);
	EXPECT_EQ(self->S, sf.pool[ST].pinned);
	EXPECT_EQ(0, sf.pool[EX].used);

	/* Closing the garbage file (mappings first) returns its 5 pages. */
	munmap(self->sa, STATE_LEN);
	munmap(self->w, self->T);
	close(self->fd);
	self->sa = NULL;
	self->w = MAP_FAILED;
	self->fd = -1;
	s = mm_stats(p);
	EXPECT_EQ(big.granted, s.pool[ST].used);
	EXPECT_EQ(big.granted, s.pool[ST].pinned);
	EXPECT_EQ(sf.pool[ST].evictions, s.pool[ST].evictions);
	ASSERT_EQ(0, mm_alloc(p, ST, 5 * self->pg, 2, 0, &a));
	s = mm_stats(p);
	EXPECT_EQ(self->S, s.pool[ST].used);
	EXPECT_EQ(sf.pool[ST].evictions, s.pool[ST].evictions);
	close(p);
	close(of);
}

/* STATS' pinned counts exactly the buffers whose word holds a pin. */
TEST_F(st, pinned_exact)
{
	struct memmgr_alloc b[8];
	int i;

	for (i = 0; i < 8; i++) {
		ASSERT_EQ(0, mm_alloc(self->fd, ST, 2 * self->pg, i + 1,
				      MEMMGR_ALLOC_UNPINNED, &b[i]));
		ASSERT_EQ(2 * i * self->pg, b[i].offset);
	}
	EXPECT_EQ(16 * self->pg, mm_stats(self->fd).pool[ST].used);
	EXPECT_EQ(0, mm_stats(self->fd).pool[ST].pinned);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, cas_pin(W(b[i].offset), b[i].handle));
	EXPECT_EQ(6 * self->pg, mm_stats(self->fd).pool[ST].pinned);
	ASSERT_EQ(0, cas_pin(W(b[0].offset), b[0].handle));
	EXPECT_EQ(wd(b[0].handle, 2 | USED), *W(b[0].offset));
	EXPECT_EQ(6 * self->pg, mm_stats(self->fd).pool[ST].pinned);
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_PIN, b[3].handle));
	EXPECT_EQ(8 * self->pg, mm_stats(self->fd).pool[ST].pinned);
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, b[3].handle));
	EXPECT_EQ(6 * self->pg, mm_stats(self->fd).pool[ST].pinned);
	ASSERT_EQ(0, cas_unpin(W(b[0].offset)));
	EXPECT_EQ(6 * self->pg, mm_stats(self->fd).pool[ST].pinned);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, cas_unpin(W(b[i].offset)));
		EXPECT_EQ(wd(b[i].handle, USED), *W(b[i].offset));
	}
	EXPECT_EQ(0, mm_stats(self->fd).pool[ST].pinned);
	EXPECT_EQ(16 * self->pg, mm_stats(self->fd).pool[ST].used);
}

/*
 * fork: the child does not have the state area (SIGSEGV), but may map
 * it and then shares the file's words.  close: the last reference gone,
 * every buffer and pin of the file goes.
 */
TEST_F(st, fork_and_close)
{
	struct memmgr_alloc a, b[4];
	struct memmgr_stats s0, s;
	int status, g, i;
	__u64 *gsa;
	pid_t pid;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 1, 0, &a));
	ASSERT_EQ(wd(a.handle, 1), *W(0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		signal(SIGSEGV, SIG_DFL);
		_exit(*(volatile __u64 *)self->sa == wd(a.handle, 1) ? 3 : 4);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGSEGV, WTERMSIG(status));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		__u64 *m = state_map(self->fd, STATE_LEN, 0);

		if (!m)
			_exit(2);
		if (m[0] != wd(a.handle, 1))
			_exit(3);
		_exit(cas_pin(m, a.handle) ? 4 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The child's pin is the file's. */
	EXPECT_EQ(wd(a.handle, 2 | USED), *W(0));
	ASSERT_EQ(0, cas_unpin(W(0)));
	ASSERT_EQ(0, cas_unpin(W(0)));
	EXPECT_EQ(wd(a.handle, USED), *W(0));
	EXPECT_EQ(-EINVAL, cas_unpin(W(0)));

	/* Another file, its buffers pinned by CAS and by ioctl, closed. */
	s0 = mm_stats(self->fd);
	EXPECT_EQ(self->pg, s0.pool[ST].used);
	EXPECT_EQ(0, s0.pool[ST].pinned);
	g = mm_open(0);
	ASSERT_LE(0, g);
	gsa = state_map(g, STATE_LEN, 0);
	ASSERT_NE(NULL, gsa);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, mm_alloc(g, ST, self->pg, i + 1,
				      MEMMGR_ALLOC_UNPINNED, &b[i]));
		ASSERT_EQ(i * self->pg, b[i].offset);
	}
	ASSERT_EQ(0, cas_pin(&gsa[0], b[0].handle));
	ASSERT_EQ(0, cas_pin(&gsa[1], b[1].handle));
	ASSERT_EQ(0, cas_pin(&gsa[1], b[1].handle));
	ASSERT_EQ(0, mm_buf(g, MEMMGR_IOC_PIN, b[2].handle));
	s = mm_stats(g);
	EXPECT_EQ(s0.pool[ST].used + 4 * self->pg, s.pool[ST].used);
	EXPECT_EQ(3 * self->pg, s.pool[ST].pinned);
	EXPECT_EQ(4 * self->pg, s.client_used[ST]);
	/* The mapping still holds the file. */
	close(g);
	s = mm_stats(self->fd);
	EXPECT_EQ(s0.pool[ST].used + 4 * self->pg, s.pool[ST].used);
	EXPECT_EQ(3 * self->pg, s.pool[ST].pinned);
	munmap(gsa, STATE_LEN);
	s = mm_stats(self->fd);
	EXPECT_EQ(s0.pool[ST].used, s.pool[ST].used);
	EXPECT_EQ(0, s.pool[ST].pinned);
	EXPECT_EQ(s0.pool[ST].frees + 4, s.pool[ST].frees);
	EXPECT_EQ(s0.pool[ST].evictions, s.pool[ST].evictions);
}

/* Read the figures under their sequence lock; the seq that was read. */
static __u32 fig_read(const struct memmgr_figures *f,
		      struct memmgr_figures *out)
{
	__u32 s1, s2;
	int i;

	for (i = 0; i < 1000000; i++) {
		s1 = __atomic_load_n(&f->seq, __ATOMIC_ACQUIRE);
		memcpy(out, f, sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&f->seq, __ATOMIC_RELAXED);
		if (s1 == s2 && !(s1 & 1))
			break;
	}
	return s1;
}

/* Every figure of @fig equals what STATS said in @s; seq is even. */
#define FIG_EQ(fig, s) do { \
	struct memmgr_figures _f; \
	struct memmgr_stats _s = (s); \
	int _p; \
	EXPECT_EQ(0, fig_read((fig), &_f) & 1); \
	EXPECT_EQ(_s.page_size, _f.page_size); \
	EXPECT_EQ(_s.total, _f.total); \
	EXPECT_EQ(_s.free, _f.free); \
	for (_p = 0; _p < MEMMGR_NR_POOLS; _p++) { \
		EXPECT_EQ(_s.pool[_p].quota, _f.pool[_p].quota); \
		EXPECT_EQ(_s.pool[_p].used, _f.pool[_p].used); \
		EXPECT_EQ(_s.pool[_p].evictions, _f.pool[_p].evictions); \
		EXPECT_EQ(_s.pool[_p].evicted_bytes, \
			  _f.pool[_p].evicted_bytes); \
	} \
} while (0)

/* The figures page: its mmap rules, and STATS' figures at every step. */
TEST_F(st, figures)
{
	const __u64 fo = MEMMGR_FIGURES_OFFSET;
	struct memmgr_figures *f, *f2, now, now2;
	struct memmgr_alloc u, big, one;
	struct memmgr_stats s0, s;
	int fd;

	fd = mm_open(0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(EPERM, map_err(fd, self->pg, RW, MAP_SHARED, fo));
	EXPECT_EQ(EPERM, map_err(fd, self->pg, PROT_WRITE, MAP_SHARED, fo));
	EXPECT_EQ(EINVAL, map_err(fd, 2 * self->pg, PROT_READ, MAP_SHARED,
				  fo));
	EXPECT_EQ(EINVAL, map_err(fd, self->pg, PROT_READ, MAP_PRIVATE, fo));
	f = mmap(NULL, self->pg, PROT_READ, MAP_SHARED, fd, fo);
	ASSERT_NE(MAP_FAILED, f);
	errno = 0;
	EXPECT_EQ(-1, mprotect(f, self->pg, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	/* Another open file (with a state area) sees the same page. */
	f2 = mmap(NULL, self->pg, PROT_READ, MAP_SHARED, self->fd, fo);
	ASSERT_NE(MAP_FAILED, f2);

	/* At rest. */
	s0 = mm_stats(fd);
	fig_read(f, &now);
	EXPECT_EQ(0, __atomic_load_n(&f->seq, __ATOMIC_ACQUIRE) & 1);
	FIG_EQ(f, s0);
	EXPECT_EQ(self->pg, now.page_size);
	EXPECT_EQ(self->T, now.total);
	EXPECT_EQ(self->T, now.free);
	EXPECT_EQ(self->S, now.pool[ST].quota);
	EXPECT_EQ(self->T - self->S, now.pool[EX].quota);
	EXPECT_EQ(0, now.pool[ST].used);
	fig_read(f2, &now2);
	EXPECT_EQ(0, memcmp(&now, &now2, sizeof(now)));

	/* After an ALLOC. */
	ASSERT_EQ(0, mm_alloc(fd, ST, MIB, 1, MEMMGR_ALLOC_UNPINNED, &u));
	FIG_EQ(f, mm_stats(fd));
	fig_read(f2, &now);
	EXPECT_EQ(MIB, now.pool[ST].used);
	EXPECT_EQ(self->T - MIB, now.free);
	ASSERT_EQ(0, mm_alloc(fd, ST, self->S - MIB, 2, 0, &big));
	FIG_EQ(f, mm_stats(fd));
	fig_read(f, &now);
	EXPECT_EQ(self->S, now.pool[ST].used);

	/* After an eviction: u goes for one page. */
	ASSERT_EQ(0, mm_alloc(fd, ST, self->pg, 3, 0, &one));
	ASSERT_EQ(-ESTALE, mm_lookup(fd, 1, NULL));
	s = mm_stats(fd);
	FIG_EQ(f, s);
	FIG_EQ(f2, s);
	fig_read(f, &now);
	EXPECT_EQ(s0.pool[ST].evictions + 1, now.pool[ST].evictions);
	EXPECT_EQ(s0.pool[ST].evicted_bytes + MIB, now.pool[ST].evicted_bytes);
	EXPECT_EQ(self->S - MIB + self->pg, now.pool[ST].used);
	EXPECT_EQ(self->T - self->S + MIB - self->pg, now.free);

	/* After a FREE. */
	ASSERT_EQ(0, mm_buf(fd, MEMMGR_IOC_FREE, big.handle));
	FIG_EQ(f, mm_stats(fd));
	fig_read(f, &now);
	EXPECT_EQ(self->pg, now.pool[ST].used);
	EXPECT_EQ(s0.pool[ST].evictions + 1, now.pool[ST].evictions);
	fig_read(f2, &now2);
	EXPECT_EQ(0, memcmp(&now, &now2, sizeof(now)));
	munmap(f2, self->pg);
	munmap(f, self->pg);

	/*
	 * Unmapped by everyone, the page is not kept up to date; the next
	 * mapping shows the figures of its moment: one more page in use.
	 */
	ASSERT_EQ(0, mm_alloc(fd, ST, self->pg, 4, 0, &one));
	f = mmap(NULL, self->pg, PROT_READ, MAP_SHARED, fd, fo);
	ASSERT_NE(MAP_FAILED, f);
	FIG_EQ(f, mm_stats(fd));
	fig_read(f, &now);
	EXPECT_EQ(2 * self->pg, now.pool[ST].used);
	munmap(f, self->pg);
	close(fd);
}

TEST_HARNESS_MAIN
