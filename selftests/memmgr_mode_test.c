// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests of mode=unified, Spark's rules adapted to all-or-nothing
 * buffers: storage borrows free execution memory; execution takes free
 * memory and evicts unpinned storage above S, never below; storage evicts
 * only storage.  Figures come from the reserve the module reports.
 *
 * Needs memmgr loaded (total=64M or so) and an idle device; switches
 * /sys/module/memmgr/parameters/mode to unified and back to split.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/memmgr.h>

#include "kselftest_harness.h"
#include "memmgr_util.h"

#define DEV MM_DEV
#define MODE MM_PARAMS "mode"
#define ST MEMMGR_POOL_STORAGE
#define EX MEMMGR_POOL_EXEC

FIXTURE(uni) {
	int fd;
	__u64 pg, T, S, E, Q;	/* Q: a sixteenth of S, in whole pages */
	struct memmgr_stats st0;
};

FIXTURE_SETUP(uni)
{
	self->fd = open(DEV, O_RDWR | O_CLOEXEC);
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, DEV " is absent: memmgr.ko is not loaded");
	ASSERT_LE(0, self->fd);
	self->st0 = mm_stats(self->fd);
	ASSERT_EQ(0, self->st0.pool[ST].used);
	ASSERT_EQ(0, self->st0.pool[EX].used);
	self->pg = self->st0.page_size;
	self->T = self->st0.total;
	self->S = self->st0.pool[ST].quota;
	self->E = self->st0.pool[EX].quota;
	self->Q = self->S / 16 / self->pg * self->pg;
	ASSERT_LT(0, self->Q);
	ASSERT_EQ(0, mm_set_param("mode", "unified"));
}

FIXTURE_TEARDOWN(uni)
{
	mm_set_param("mode", "split");
	if (self->fd >= 0)
		close(self->fd);
}

/* Rule 1: storage borrows free execution memory, up to T. */
TEST_F(uni, storage_borrows_exec)
{
	struct memmgr_stats st;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S + 3 * self->pg, 1, 0,
			      NULL));
	st = mm_stats(self->fd);
	EXPECT_EQ(3 * self->pg, st.pool[ST].borrowed);
	EXPECT_EQ(0, st.pool[EX].borrowed);
	EXPECT_EQ(0, mm_alloc(self->fd, EX, self->E - 3 * self->pg, 1, 0,
			      NULL));
	/* Full, and the storage is pinned: nothing to evict. */
	EXPECT_EQ(-EAGAIN, mm_alloc(self->fd, EX, self->pg, 1, 0, NULL));
	/* E2BIG is at T for storage now. */
	EXPECT_EQ(-E2BIG, mm_alloc(self->fd, ST, self->T + self->pg, 2, 0,
				   NULL));
}

/* Rule 2: execution evicts unpinned storage above S. */
TEST_F(uni, exec_evicts_above_s)
{
	struct memmgr_stats st;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S, 1, 0, NULL));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->Q, 2,
			      MEMMGR_ALLOC_UNPINNED, NULL));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, self->E - self->Q, 1, 0, NULL));
	EXPECT_EQ(0, mm_stats(self->fd).free);
	ASSERT_EQ(0, mm_alloc(self->fd, EX, self->Q, 1, 0, NULL));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 2, NULL));
	EXPECT_EQ(0, mm_lookup(self->fd, 1, NULL));
	st = mm_stats(self->fd);
	EXPECT_EQ(self->S, st.pool[ST].used);
	EXPECT_EQ(self->E, st.pool[EX].used);
	EXPECT_EQ(1, st.pool[ST].evictions - self->st0.pool[ST].evictions);
	/* Storage is at S: execution takes no more. */
	EXPECT_EQ(-EAGAIN, mm_alloc(self->fd, EX, self->pg, 1, 0, NULL));
}

/* Rule 2: never below S, even when the buffers above S are large. */
TEST_F(uni, exec_never_evicts_below_s)
{
	struct memmgr_stats st;

	/* S - Q and 2Q, both unpinned: storage is Q above S. */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S - self->Q, 1,
			      MEMMGR_ALLOC_UNPINNED, NULL));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, 2 * self->Q, 2,
			      MEMMGR_ALLOC_UNPINNED, NULL));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, self->E - self->Q, 1, 0, NULL));
	/* Q is the room above S, but each buffer is larger than Q. */
	EXPECT_EQ(-EAGAIN, mm_alloc(self->fd, EX, self->Q, 1, 0, NULL));
	st = mm_stats(self->fd);
	EXPECT_EQ(0, st.pool[ST].evictions - self->st0.pool[ST].evictions);
	EXPECT_EQ(self->S + self->Q, st.pool[ST].used);
	EXPECT_EQ(self->Q, st.pool[ST].borrowed);
}

/* Rule 3: storage evicts storage, never execution memory. */
TEST_F(uni, storage_never_evicts_exec)
{
	struct memmgr_stats st;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S, 1,
			      MEMMGR_ALLOC_UNPINNED, NULL));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, self->E, 1, 0, NULL));
	/* Needs S + 1 page: only S is evictable. */
	EXPECT_EQ(-EAGAIN, mm_alloc(self->fd, ST, self->S + self->pg, 2, 0,
				    NULL));
	EXPECT_EQ(0, mm_lookup(self->fd, 1, NULL));
	/* S exactly: storage evicts its own. */
	EXPECT_EQ(0, mm_alloc(self->fd, ST, self->S, 2, 0, NULL));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 1, NULL));
	st = mm_stats(self->fd);
	EXPECT_EQ(self->E, st.pool[EX].used);
}

/* The parameter: readable, validated, and back to split. */
TEST_F(uni, mode_param)
{
	char buf[16] = "";
	int fd = open(MODE, O_RDONLY);

	ASSERT_LE(0, fd);
	ASSERT_LT(0, read(fd, buf, sizeof(buf) - 1));
	close(fd);
	EXPECT_STREQ("unified\n", buf);
	EXPECT_EQ(-EINVAL, mm_set_param("mode", "spark"));
	/* Storage above S, then split: storage waits until it is back. */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S + self->pg, 1, 0, NULL));
	ASSERT_EQ(0, mm_set_param("mode", "split"));
	EXPECT_EQ(-EAGAIN, mm_alloc(self->fd, ST, self->pg, 2, 0, NULL));
	EXPECT_EQ(-E2BIG, mm_alloc(self->fd, ST, self->S + self->pg, 3, 0,
				   NULL));
	EXPECT_EQ(0, mm_alloc(self->fd, EX, self->E - self->pg, 1, 0, NULL));
}

TEST_HARNESS_MAIN
