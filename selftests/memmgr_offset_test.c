// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests of mmap offsets under reuse (issue 11): each open file has
 * its own offset space, and every ALLOC gets the lowest free range of it
 * that is large enough (first fit), so a freed buffer's range is taken by
 * the next ALLOC that fits.  What must not follow from reuse: a freed
 * buffer's handle finding the new buffer, or a mapping of the freed buffer
 * reaching the new one.  An evicted buffer keeps its range until freed.
 *
 * Offsets are worked out here from the sizes; quotas come from
 * MEMMGR_IOC_STATS.  Needs memmgr loaded with total=64M or so (64 pages at
 * least) and an otherwise idle device.
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
#include <unistd.h>

#include <linux/memmgr.h>

#include "kselftest_harness.h"
#include "memmgr_util.h"

#define ST MEMMGR_POOL_STORAGE
#define EX MEMMGR_POOL_EXEC
#define NR_REUSE 64

static unsigned char *map(int fd, const struct memmgr_alloc *a)
{
	return mmap(NULL, a->granted, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    a->offset);
}

FIXTURE(off) {
	int fd;
	__u64 pg, T, S, E;
	struct memmgr_stats st0;
};

/* A pool counter's change since the test started. */
#define DELTA(now, p, field) \
	((now).pool[p].field - self->st0.pool[p].field)

FIXTURE_SETUP(off)
{
	struct memmgr_stats st;

	self->fd = mm_open(0);
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, MM_DEV " is absent: memmgr.ko is not loaded");
	ASSERT_LE(0, self->fd);
	st = mm_stats(self->fd);
	self->st0 = st;
	self->pg = st.page_size;
	self->T = st.total;
	self->S = st.pool[ST].quota;
	self->E = st.pool[EX].quota;
	ASSERT_LE(64 * self->pg, self->T);
	ASSERT_EQ(self->T, self->S + self->E);
	ASSERT_EQ(0, st.pool[ST].used);
	ASSERT_EQ(0, st.pool[EX].used);
	ASSERT_EQ(0, st.waiters);
}

FIXTURE_TEARDOWN(off)
{
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * The lowest free range, in pages: A 1 at 0, B 1 at 1, FREE A, C 1 at 0,
 * D 2 at 2.
 */
TEST_F(off, lowest_free_range)
{
	struct memmgr_alloc a, b, c, d, e;
	__u64 pg = self->pg;

	ASSERT_EQ(0, mm_alloc(self->fd, EX, pg, 1, 0, &a));
	EXPECT_EQ(0, a.offset);
	ASSERT_EQ(0, mm_alloc(self->fd, EX, pg, 1, 0, &b));
	EXPECT_EQ(pg, b.offset);
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, pg, 1, 0, &c));
	EXPECT_EQ(0, c.offset);
	ASSERT_EQ(0, mm_alloc(self->fd, EX, 2 * pg, 1, 0, &d));
	EXPECT_EQ(2 * pg, d.offset);
	/* Storage and exec share the file's one offset space. */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 1, 0, &e));
	EXPECT_EQ(4 * pg, e.offset);
	/* Handles are non-zero and distinct; no longer offset / pg + 1. */
	EXPECT_NE(0, a.handle);
	EXPECT_NE(0, c.handle);
	EXPECT_NE(a.handle, c.handle);
	EXPECT_NE(b.handle, c.handle);
	EXPECT_NE(c.handle, d.handle);
	EXPECT_NE(d.handle, e.handle);
}

/*
 * First fit: A 1, B 2, C 1 page; FREE B leaves a 2-page hole at page 1.
 * 3 pages do not fit in it and go after C (page 4); 2 pages fill it.
 */
TEST_F(off, first_fit_skips_small_hole)
{
	struct memmgr_alloc a, b, c, d, e, f;
	__u64 pg = self->pg;

	ASSERT_EQ(0, mm_alloc(self->fd, EX, pg, 1, 0, &a));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, 2 * pg, 1, 0, &b));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, pg, 1, 0, &c));
	EXPECT_EQ(0, a.offset);
	EXPECT_EQ(pg, b.offset);
	EXPECT_EQ(3 * pg, c.offset);
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, b.handle));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, 3 * pg, 1, 0, &d));
	EXPECT_EQ(4 * pg, d.offset);
	ASSERT_EQ(0, mm_alloc(self->fd, EX, 2 * pg, 1, 0, &e));
	EXPECT_EQ(pg, e.offset);
	/* No hole left below the end: the next goes after D. */
	ASSERT_EQ(0, mm_alloc(self->fd, EX, pg, 1, 0, &f));
	EXPECT_EQ(7 * pg, f.offset);
}

/*
 * A hole is filled from its low end: a 3-page hole at page 1 takes 1 page
 * at 1, then 2 pages at 2; the next page goes past the end (5).
 */
TEST_F(off, hole_filled_from_low_end)
{
	struct memmgr_alloc a, b, c, x, y, z;
	struct memmgr_lookup l;
	__u64 pg = self->pg;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 1, 0, &a));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, 3 * pg, 2, 0, &b));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 3, 0, &c));
	EXPECT_EQ(4 * pg, c.offset);
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, b.handle));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 4, 0, &x));
	EXPECT_EQ(pg, x.offset);
	ASSERT_EQ(0, mm_alloc(self->fd, ST, 2 * pg, 5, 0, &y));
	EXPECT_EQ(2 * pg, y.offset);
	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 6, 0, &z));
	EXPECT_EQ(5 * pg, z.offset);
	/* LOOKUP reports the reused offsets. */
	ASSERT_EQ(0, mm_lookup(self->fd, 5, &l));
	EXPECT_EQ(y.handle, l.handle);
	EXPECT_EQ(2 * pg, l.offset);
	EXPECT_EQ(2 * pg, l.size);
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 2, NULL));
}

/* Two open files: offsets of each start at 0; each maps its own data. */
TEST_F(off, per_file_offsets)
{
	int fd2 = mm_open(0);
	struct memmgr_alloc a, b, a2, b2;
	unsigned char *p, *q, v = 0;
	__u64 pg = self->pg;

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mm_alloc(self->fd, EX, 2 * pg, 1, 0, &a));
	ASSERT_EQ(0, mm_alloc(fd2, EX, pg, 1, 0, &b));
	EXPECT_EQ(0, a.offset);
	EXPECT_EQ(0, b.offset);
	ASSERT_EQ(0, mm_alloc(fd2, ST, pg, 1, 0, &b2));
	EXPECT_EQ(pg, b2.offset);
	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 1, 0, &a2));
	EXPECT_EQ(2 * pg, a2.offset);
	p = map(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	q = map(fd2, &b);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_TRUE(mm_all_bytes(p, a.granted, 0));
	EXPECT_TRUE(mm_all_bytes(q, b.granted, 0));
	memset(p, 0x11, a.granted);
	memset(q, 0x22, b.granted);
	EXPECT_TRUE(mm_all_bytes(p, a.granted, 0x11));
	EXPECT_TRUE(mm_all_bytes(q, b.granted, 0x22));
	/* A2's offset is this file's: fd2 has nothing there. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, pg, PROT_READ, MAP_SHARED, fd2,
				   a2.offset));
	EXPECT_EQ(EINVAL, errno);
	/* Freeing fd2's offset 0 leaves this file's offset 0 alone. */
	ASSERT_EQ(0, mm_buf(fd2, MEMMGR_IOC_FREE, b.handle));
	EXPECT_EQ(SIGBUS, probe_read(q, &v));
	EXPECT_TRUE(mm_all_bytes(p, a.granted, 0x11));
	ASSERT_EQ(0, mm_alloc(fd2, EX, pg, 1, 0, &b));
	EXPECT_EQ(0, b.offset);
	EXPECT_EQ(SIGBUS, probe_read(q, &v));
	EXPECT_TRUE(mm_all_bytes(p, a.granted, 0x11));
	EXPECT_EQ(0, munmap(p, a.granted));
	EXPECT_EQ(0, munmap(q, pg));
	close(fd2);
}

/*
 * A freed handle is unknown (ENOENT) for FREE, PIN and UNPIN, also once
 * its range belongs to a new buffer, and the new buffer is untouched.
 * Then NR_REUSE more buffers at the same offset: every handle new.
 */
TEST_F(off, freed_handle_enoent_after_reuse)
{
	struct memmgr_alloc a, b, r[NR_REUSE];
	struct memmgr_lookup l;
	struct memmgr_stats st;
	unsigned char *q;
	__u64 pg = self->pg;
	int i, j;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, 2 * pg, 1, 0, &a));
	EXPECT_EQ(0, a.offset);
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	/* B, unpinned, takes A's range. */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, 2 * pg, 2, MEMMGR_ALLOC_UNPINNED,
			      &b));
	EXPECT_EQ(0, b.offset);
	EXPECT_NE(a.handle, b.handle);
	q = map(self->fd, &b);
	ASSERT_NE(MAP_FAILED, q);
	memset(q, 0x5b, b.granted);

	EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_PIN, a.handle));
	EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_UNPIN, a.handle));
	EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	/* B is as it was: live, unpinned, its data intact. */
	st = mm_stats(self->fd);
	EXPECT_EQ(2 * pg, st.pool[ST].used);
	EXPECT_EQ(0, st.pool[ST].pinned);
	EXPECT_EQ(1, DELTA(st, ST, frees));
	ASSERT_EQ(0, mm_lookup(self->fd, 2, &l));
	EXPECT_EQ(b.handle, l.handle);
	EXPECT_EQ(0, l.offset);
	EXPECT_EQ(2 * pg, l.size);
	EXPECT_TRUE(mm_all_bytes(q, b.granted, 0x5b));
	/* B's own handle works. */
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_PIN, b.handle));
	EXPECT_EQ(2 * pg, mm_stats(self->fd).pool[ST].pinned);
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, b.handle));
	EXPECT_EQ(0, mm_stats(self->fd).pool[ST].pinned);
	EXPECT_EQ(0, munmap(q, b.granted));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, b.handle));
	EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_FREE, b.handle));

	/* Offset 0 again and again, never a handle seen before. */
	for (i = 0; i < NR_REUSE; i++) {
		ASSERT_EQ(0, mm_alloc(self->fd, EX, pg, 3, 0, &r[i]));
		ASSERT_EQ(0, r[i].offset);
		ASSERT_NE(0, r[i].handle);
		ASSERT_NE(a.handle, r[i].handle);
		ASSERT_NE(b.handle, r[i].handle);
		for (j = 0; j < i; j++)
			ASSERT_NE(r[j].handle, r[i].handle);
		ASSERT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_FREE,
					  a.handle));
		ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, r[i].handle));
	}
	st = mm_stats(self->fd);
	EXPECT_EQ(NR_REUSE, DELTA(st, EX, allocs));
	EXPECT_EQ(NR_REUSE, DELTA(st, EX, frees));
	EXPECT_EQ(0, st.pool[EX].used);
	EXPECT_EQ(0, st.pool[ST].used);
}

/*
 * A mapping of A made before FREE A stays A's: SIGBUS after the free, and
 * still SIGBUS once B took A's offset, touched before the free or not.
 * B's own mapping reads zeros, then its own data.
 */
TEST_F(off, old_mapping_sigbus_after_reuse)
{
	struct memmgr_alloc a, b;
	unsigned char *p, *p2, *q, v = 0;
	__u64 pg = self->pg;

	ASSERT_EQ(0, mm_alloc(self->fd, EX, 2 * pg, 1, 0, &a));
	EXPECT_EQ(0, a.offset);
	p = map(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0xa1, a.granted);
	/* A second mapping of A, never touched. */
	p2 = map(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p2);
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(SIGBUS, probe_read(p, &v));
	EXPECT_EQ(SIGBUS, probe_read(p + pg, &v));

	ASSERT_EQ(0, mm_alloc(self->fd, EX, 2 * pg, 1, 0, &b));
	ASSERT_EQ(0, b.offset);
	EXPECT_EQ(SIGBUS, probe_read(p, &v));
	EXPECT_EQ(SIGBUS, probe_write(p + pg, 0xee));
	EXPECT_EQ(SIGBUS, probe_read(p2, &v));
	EXPECT_EQ(SIGBUS, probe_write(p2 + pg, 0xee));
	q = map(self->fd, &b);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_TRUE(mm_all_bytes(q, b.granted, 0));
	memset(q, 0xb2, b.granted);
	EXPECT_EQ(SIGBUS, probe_read(p, &v));
	EXPECT_EQ(SIGBUS, probe_read(p + 2 * pg - 1, &v));
	EXPECT_EQ(SIGBUS, probe_read(p2, &v));
	EXPECT_EQ(SIGBUS, probe_read(p2 + 2 * pg - 1, &v));
	EXPECT_TRUE(mm_all_bytes(q, b.granted, 0xb2));
	EXPECT_EQ(0, munmap(p, a.granted));
	EXPECT_EQ(0, munmap(p2, a.granted));
	EXPECT_EQ(0, munmap(q, b.granted));
}

/*
 * An evicted buffer keeps its range until it is freed.  T is filled (exec
 * E, storage X 1 page unpinned, P S - 1 page pinned), so a storage page
 * evicts X in either mode.
 */
TEST_F(off, evicted_keeps_range_until_freed)
{
	struct memmgr_alloc x, e, p, y, w, z;
	struct memmgr_stats st;
	__u64 pg = self->pg;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 1, MEMMGR_ALLOC_UNPINNED, &x));
	EXPECT_EQ(0, x.offset);
	ASSERT_EQ(0, mm_alloc(self->fd, EX, self->E, 9, 0, &e));
	EXPECT_EQ(pg, e.offset);
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S - pg, 2, 0, &p));
	EXPECT_EQ(pg + self->E, p.offset);
	EXPECT_EQ(0, mm_stats(self->fd).free);

	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 3, 0, &y));
	st = mm_stats(self->fd);
	EXPECT_EQ(1, DELTA(st, ST, evictions));
	EXPECT_EQ(pg, DELTA(st, ST, evicted_bytes));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 1, NULL));
	/* Not X's range, which its stale entry keeps: after all of T. */
	EXPECT_EQ(self->T, y.offset);

	/* E's range comes free; X's still is not. */
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, e.handle));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, pg, 9, 0, &w));
	EXPECT_EQ(pg, w.offset);
	ASSERT_EQ(0, mm_alloc(self->fd, EX, pg, 9, 0, &w));
	EXPECT_EQ(2 * pg, w.offset);

	/* FREE of the stale entry gives its range back. */
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, x.handle));
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 1, NULL));
	EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_FREE, x.handle));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, pg, 9, 0, &z));
	EXPECT_EQ(0, z.offset);
	EXPECT_NE(x.handle, z.handle);
	st = mm_stats(self->fd);
	EXPECT_EQ(self->S, st.pool[ST].used);
	EXPECT_EQ(3 * pg, st.pool[EX].used);
}

/* LOOKUP with MEMMGR_LOOKUP_HANDLE: any buffer of the file, by handle. */
static int lookup_handle(int fd, __u64 handle, struct memmgr_lookup *out)
{
	struct memmgr_lookup l = {
		.flags = MEMMGR_LOOKUP_HANDLE, .handle = handle,
	};
	int ret = ioctl(fd, MEMMGR_IOC_LOOKUP, &l) ? -errno : 0;

	*out = l;
	return ret;
}

/*
 * By handle, LOOKUP finds an execution or a storage buffer and gives its
 * tag, offset and size; a freed handle is ENOENT also once its range is
 * taken again (libmemmgr relies on it to know a mapping is its own), and
 * an evicted one ESTALE, its entry described all the same.
 */
TEST_F(off, lookup_by_handle)
{
	struct memmgr_alloc a, b, c, x, pin;
	struct memmgr_lookup l;

	ASSERT_EQ(0, mm_alloc(self->fd, EX, 2 * self->pg, 5, 0, &a));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 9, 0, &b));
	ASSERT_EQ(0, lookup_handle(self->fd, a.handle, &l));
	EXPECT_EQ(5, l.tag);
	EXPECT_EQ(a.handle, l.handle);
	EXPECT_EQ(0, l.offset);
	EXPECT_EQ(2 * self->pg, l.size);
	EXPECT_EQ(MEMMGR_LOOKUP_HANDLE, l.flags);
	ASSERT_EQ(0, lookup_handle(self->fd, b.handle, &l));
	EXPECT_EQ(9, l.tag);
	EXPECT_EQ(2 * self->pg, l.offset);
	EXPECT_EQ(self->pg, l.size);
	EXPECT_EQ(-ENOENT, lookup_handle(self->fd, 0, &l));
	EXPECT_EQ(-ENOENT, lookup_handle(self->fd, a.handle ^ (1ULL << 32),
					 &l));

	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(-ENOENT, lookup_handle(self->fd, a.handle, &l));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, self->pg, 6, 0, &c));
	EXPECT_EQ(0, c.offset);
	EXPECT_EQ(-ENOENT, lookup_handle(self->fd, a.handle, &l));
	ASSERT_EQ(0, lookup_handle(self->fd, c.handle, &l));
	EXPECT_EQ(6, l.tag);
	EXPECT_EQ(0, l.offset);

	/* Storage full of pinned memory but b: a new page evicts b. */
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, b.handle));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S - self->pg, 10, 0, &pin));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 11, 0, &x));
	EXPECT_EQ(1, DELTA(mm_stats(self->fd), ST, evictions));
	ASSERT_EQ(-ESTALE, lookup_handle(self->fd, b.handle, &l));
	EXPECT_EQ(9, l.tag);
	EXPECT_EQ(b.handle, l.handle);
	EXPECT_EQ(2 * self->pg, l.offset);
	EXPECT_EQ(self->pg, l.size);
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, b.handle));
	EXPECT_EQ(-ENOENT, lookup_handle(self->fd, b.handle, &l));
}

TEST_HARNESS_MAIN
