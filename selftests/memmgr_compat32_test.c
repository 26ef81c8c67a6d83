// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests of memmgr from a real 32-bit (i386) process: built with -m32
 * -static, run in the VM through the kernel's IA32 emulation, so every
 * ioctl goes through compat_ptr_ioctl and every mapping through mmap2(),
 * whose page offset is 32 bits wide.
 *
 * The offset burn (issue 11): the module once handed out mmap offsets
 * from one counter that never reused a range, so after 2^32 pages of
 * offsets a 32-bit client's mmap2() of its new buffer B got the page
 * offset truncated and mapped its older buffer A.  Offsets are now the
 * lowest free range of the open file, so the burn keeps getting the same
 * offset and B lands right after A.
 *
 * Figures come from MEMMGR_IOC_STATS (total, page size); run with an
 * otherwise idle device, memmgr loaded with total=64M (T = 16384 pages:
 * the burn is 262,162 ALLOC+FREE pairs of 16383 pages).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/memmgr.h>

#include "kselftest_harness.h"
#include "memmgr_util.h"

#define ST MEMMGR_POOL_STORAGE
#define EX MEMMGR_POOL_EXEC

/*
 * This must be a 32-bit program, and the ABI the same as on 64-bit (the
 * sizes are those of the x86-64 build).
 */
_Static_assert(sizeof(void *) == 4, "build memmgr_compat32_test with -m32");
_Static_assert(sizeof(struct memmgr_alloc) == 72, "memmgr_alloc");
_Static_assert(offsetof(struct memmgr_alloc, handle) == 32, "handle");
_Static_assert(sizeof(struct memmgr_buf) == 16, "memmgr_buf");
_Static_assert(sizeof(struct memmgr_lookup) == 64, "memmgr_lookup");
_Static_assert(sizeof(struct memmgr_release) == 24, "memmgr_release");
_Static_assert(sizeof(struct memmgr_pool_stats) == 128, "memmgr_pool_stats");
_Static_assert(sizeof(struct memmgr_stats) == 360, "memmgr_stats");
_Static_assert(offsetof(struct memmgr_stats, pool) == 40, "stats.pool");
_Static_assert(sizeof(struct memmgr_evicted) == 40, "memmgr_evicted");

/* mmap2's offset is in units of 4096 bytes on x86, whatever PAGE_SIZE. */
#define MMAP2_UNIT	4096ULL

/*
 * A 32-bit process's mmap: the raw mmap2 syscall, the page offset passed
 * as an unsigned long (32 bits), as glibc's mmap64() does.
 */
static unsigned char *map2(int fd, __u64 offset, size_t len)
{
	long r = syscall(SYS_mmap2, NULL, len, PROT_READ | PROT_WRITE,
			 MAP_SHARED, fd, (unsigned long)(offset / MMAP2_UNIT));

	return r == -1 ? MAP_FAILED : (unsigned char *)r;
}

FIXTURE(c32) {
	int fd;
	__u64 pg, T, S, E;
	struct memmgr_stats st0;
};

/* A pool counter's change since the test started. */
#define DELTA(now, p, field) \
	((now).pool[p].field - self->st0.pool[p].field)

FIXTURE_SETUP(c32)
{
	struct memmgr_stats st;

	self->fd = mm_open(0);
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, MM_DEV " is absent: memmgr.ko is not loaded");
	ASSERT_LE(0, self->fd);
	/* STATS through compat: the fixed layout reads right. */
	ASSERT_EQ(0, ioctl(self->fd, MEMMGR_IOC_STATS, &st));
	self->st0 = st;
	self->pg = st.page_size;
	self->T = st.total;
	self->S = st.pool[ST].quota;
	self->E = st.pool[EX].quota;
	ASSERT_EQ(MMAP2_UNIT, self->pg);
	ASSERT_LE(64 * self->pg, self->T);
	ASSERT_EQ(self->T, self->S + self->E);
	ASSERT_EQ(self->T, st.free);
	ASSERT_EQ(0, st.pool[ST].used);
	ASSERT_EQ(0, st.pool[EX].used);
	ASSERT_EQ(0, st.waiters);
	ASSERT_EQ(0, st.client_used[ST]);
	ASSERT_EQ(0, st.client_used[EX]);
}

FIXTURE_TEARDOWN(c32)
{
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * Burn more than 2^32 pages of offsets, then mmap2 a new buffer: it is
 * the new buffer, at a 32-bit page offset, and the old one is untouched.
 * 262,162 ALLOC+FREE pairs at total=64M: up to 10 minutes.
 */
TEST_F_TIMEOUT(c32, offset_burn_then_mmap2, 600)
{
	__u64 pg = self->pg, burn_pages, burns, i;
	struct memmgr_alloc a, b, e;
	struct memmgr_lookup l;
	struct memmgr_stats st;
	unsigned char *pa, *pb, v = 0;

	ASSERT_EQ(MMAP2_UNIT, pg);
	/* All of T beside A, enough times to pass 2^32 pages. */
	burn_pages = (self->T - pg) / pg;
	burns = ((1ULL << 32) + burn_pages - 1) / burn_pages + 1;

	/* A: one storage page, through compat ALLOC, LOOKUP and STATS. */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 0xA, 0, &a));
	EXPECT_EQ(0, a.offset);
	EXPECT_EQ(pg, a.granted);
	EXPECT_NE(0, a.handle);
	st = mm_stats(self->fd);
	EXPECT_EQ(pg, st.pool[ST].used);
	EXPECT_EQ(pg, st.pool[ST].pinned);
	EXPECT_EQ(pg, st.client_used[ST]);
	EXPECT_EQ(0, st.pool[EX].used);
	EXPECT_EQ(self->T - pg, st.free);
	EXPECT_EQ(1, DELTA(st, ST, allocs));
	ASSERT_EQ(0, mm_lookup(self->fd, 0xA, &l));
	EXPECT_EQ(a.handle, l.handle);
	EXPECT_EQ(a.offset, l.offset);
	EXPECT_EQ(pg, l.size);
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 0xB, NULL));

	pa = map2(self->fd, a.offset, pg);
	ASSERT_NE(-1L, (long)pa);
	memset(pa, 0xAA, pg);

	/*
	 * The burn: T - A, the most exec can have beside A, again and again;
	 * each gets the lowest free range, right after A.  The old counter
	 * would have handed out burns * burn_pages > 2^32 pages.
	 */
	ASSERT_LT(1ULL << 32, burns * burn_pages);
	for (i = 0; i < burns; i++) {
		ASSERT_EQ(0, mm_alloc(self->fd, EX, burn_pages * pg, 1, 0, &e))
			TH_LOG("burn %llu of %llu", i, burns);
		ASSERT_EQ(pg, e.offset)
			TH_LOG("burn %llu of %llu", i, burns);
		ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, e.handle))
			TH_LOG("burn %llu of %llu", i, burns);
	}
	st = mm_stats(self->fd);
	EXPECT_EQ(burns, DELTA(st, EX, allocs));
	EXPECT_EQ(burns, DELTA(st, EX, frees));
	EXPECT_EQ(0, DELTA(st, EX, declined));
	EXPECT_EQ(0, st.pool[EX].used);
	EXPECT_LE(self->T - pg, st.pool[EX].peak);
	EXPECT_EQ(pg, st.pool[ST].used);

	/* B: right after A, a page offset mmap2 can carry. */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 0xB, 0, &b));
	ASSERT_EQ(pg, b.offset);
	ASSERT_GE(0xffffffffULL, b.offset / MMAP2_UNIT);
	EXPECT_NE(a.handle, b.handle);
	EXPECT_EQ(2 * pg, mm_stats(self->fd).pool[ST].used);
	pb = map2(self->fd, b.offset, pg);
	ASSERT_NE(-1L, (long)pb);
	EXPECT_TRUE(mm_all_bytes(pb, pg, 0));
	memset(pb, 0xBB, pg);
	/* Each mapping is its own buffer. */
	EXPECT_TRUE(mm_all_bytes(pa, pg, 0xAA));
	EXPECT_TRUE(mm_all_bytes(pb, pg, 0xBB));

	/* FREE A: its mapping is revoked, B's is not. */
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(SIGBUS, probe_read(pa, &v));
	EXPECT_EQ(SIGBUS, probe_read(pa + pg - 1, &v));
	EXPECT_EQ(SIGBUS, probe_write(pa, 1));
	EXPECT_TRUE(mm_all_bytes(pb, pg, 0xBB));
	st = mm_stats(self->fd);
	EXPECT_EQ(pg, st.pool[ST].used);
	EXPECT_EQ(pg, st.client_used[ST]);
	EXPECT_EQ(1, DELTA(st, ST, frees));
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 0xA, NULL));
	ASSERT_EQ(0, mm_lookup(self->fd, 0xB, &l));
	EXPECT_EQ(b.handle, l.handle);
	EXPECT_EQ(b.offset, l.offset);
	EXPECT_EQ(0, munmap(pa, pg));
	EXPECT_EQ(0, munmap(pb, pg));
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, b.handle));
}

/* The commands that carry more than flat numbers, through compat. */
TEST_F(c32, compat_lookup_release_evicted)
{
	struct memmgr_lookup l = { .tag = 7, .flags = 2 };
	struct memmgr_release r = { .pool = EX, .tag = 3 };
	struct memmgr_alloc x, u, s, y;
	__u64 tags[4] = { 0, 0, 0, 0 };
	struct memmgr_evicted ev = {
		.tags = (uintptr_t)tags, .count = 4, .pending = 99,
	};
	struct memmgr_stats st;
	__u64 pg = self->pg;

	/* Fill T: exec E, storage S - 1 page pinned, 1 page unpinned. */
	ASSERT_EQ(0, mm_alloc(self->fd, EX, self->E, 3, 0, &x));
	EXPECT_EQ(0, x.offset);
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S - pg, 6, 0, &s));
	EXPECT_EQ(self->E, s.offset);
	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 7, MEMMGR_ALLOC_UNPINNED, &u));
	EXPECT_EQ(self->T - pg, u.offset);
	EXPECT_EQ(0, mm_stats(self->fd).free);
	/* LOOKUP's new fields are checked (bit 0 is MEMMGR_LOOKUP_HANDLE). */
	EXPECT_EQ(-1, ioctl(self->fd, MEMMGR_IOC_LOOKUP, &l));
	EXPECT_EQ(EINVAL, errno);
	l = (struct memmgr_lookup){ .flags = 1ULL << 32 };
	EXPECT_EQ(-1, ioctl(self->fd, MEMMGR_IOC_LOOKUP, &l));
	EXPECT_EQ(EINVAL, errno);
	/* By handle, through compat: the 64-bit handle round-trips. */
	l = (struct memmgr_lookup){ .flags = MEMMGR_LOOKUP_HANDLE,
				    .handle = s.handle };
	ASSERT_EQ(0, ioctl(self->fd, MEMMGR_IOC_LOOKUP, &l));
	EXPECT_EQ(6, l.tag);
	EXPECT_EQ(self->E, l.offset);
	EXPECT_EQ(self->S - pg, l.size);
	l = (struct memmgr_lookup){ .tag = 7, .reserved = { 0, 0, 1 } };
	EXPECT_EQ(-1, ioctl(self->fd, MEMMGR_IOC_LOOKUP, &l));
	EXPECT_EQ(EINVAL, errno);

	/* A pinned page evicts tag 7, the only unpinned buffer. */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 8, 0, &y));
	/* Tag 7's stale entry keeps its range: y goes above all of T. */
	EXPECT_EQ(self->T, y.offset);
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 7, NULL));
	/* EVICTED writes through the 32-bit pointer in tags. */
	ASSERT_EQ(0, ioctl(self->fd, MEMMGR_IOC_EVICTED, &ev));
	EXPECT_EQ(1, ev.count);
	EXPECT_EQ(0, ev.pending);
	EXPECT_EQ(7, tags[0]);
	EXPECT_EQ(0, tags[1]);
	st = mm_stats(self->fd);
	EXPECT_EQ(1, DELTA(st, ST, evictions));
	EXPECT_EQ(pg, DELTA(st, ST, evicted_bytes));
	EXPECT_EQ(self->S, st.pool[ST].used);
	EXPECT_EQ(self->S, st.pool[ST].pinned);

	/* RELEASE's reply through compat. */
	ASSERT_EQ(0, ioctl(self->fd, MEMMGR_IOC_RELEASE, &r));
	EXPECT_EQ(self->E, r.freed);
	st = mm_stats(self->fd);
	EXPECT_EQ(0, st.pool[EX].used);
	EXPECT_EQ(self->E, st.free);
	EXPECT_EQ(1, DELTA(st, EX, frees));
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, u.handle));
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 7, NULL));
}

TEST_HARNESS_MAIN
