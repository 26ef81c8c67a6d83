// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests of the window (MEMMGR_WINDOW_OFFSET): one mapping of an open
 * file in which each of its buffers appears at its own offset.  Checked:
 * what a buffer holds is what its own mapping holds; SIGBUS on holes, on
 * freed and on evicted buffers; a freed range taken by a new buffer shows
 * the new buffer, zeroed; the mmap rules of the window; fork; and as many
 * one-page buffers as the reserve holds, all through one VMA (more than
 * vm.max_map_count's 65,530 when the reserve has room: check.sh runs this
 * program with total=512M as well).
 *
 * Needs memmgr loaded with total=64M or more and an otherwise idle device.
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
#define MIB (1UL << 20)
/* The part of the window the tests map: more than any total they use. */
#define WIN_LEN (1UL << 32)

FIXTURE(win) {
	int fd;
	__u64 pg, T, S, E;
	unsigned char *w;
};

FIXTURE_SETUP(win)
{
	struct memmgr_stats st;

	self->w = MAP_FAILED;
	self->fd = mm_open(0);
	ASSERT_LE(0, self->fd);
	st = mm_stats(self->fd);
	self->pg = st.page_size;
	self->T = st.total;
	self->S = st.pool[ST].quota;
	self->E = st.pool[EX].quota;
	ASSERT_EQ(0, st.pool[ST].used);
	ASSERT_EQ(0, st.pool[EX].used);
	ASSERT_LE(self->T, WIN_LEN);
	self->w = mmap(NULL, WIN_LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
		       self->fd, MEMMGR_WINDOW_OFFSET);
	ASSERT_NE(MAP_FAILED, self->w);
}

FIXTURE_TEARDOWN(win)
{
	if (self->w != MAP_FAILED)
		munmap(self->w, WIN_LEN);
	close(self->fd);
}

/* A buffer is at window + its offset, the same pages as its own mapping. */
TEST_F(win, shows_buffers)
{
	struct memmgr_alloc a, b;
	unsigned char *own;

	ASSERT_EQ(0, mm_alloc(self->fd, EX, 2 * self->pg, 1, 0, &a));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 2, 0, &b));
	EXPECT_EQ(0, a.offset);
	EXPECT_EQ(2 * self->pg, b.offset);
	EXPECT_TRUE(mm_all_bytes(self->w + a.offset, 2 * self->pg, 0));
	EXPECT_TRUE(mm_all_bytes(self->w + b.offset, self->pg, 0));
	memset(self->w + a.offset, 0x11, 2 * self->pg);
	memset(self->w + b.offset, 0x22, self->pg);
	own = mmap(NULL, a.granted, PROT_READ | PROT_WRITE, MAP_SHARED,
		   self->fd, a.offset);
	ASSERT_NE(MAP_FAILED, own);
	EXPECT_TRUE(mm_all_bytes(own, 2 * self->pg, 0x11));
	memset(own + self->pg, 0x33, self->pg);
	EXPECT_TRUE(mm_all_bytes(self->w + self->pg, self->pg, 0x33));
	EXPECT_TRUE(mm_all_bytes(self->w + b.offset, self->pg, 0x22));
	munmap(own, a.granted);
}

/* Holes, freed and evicted buffers: SIGBUS; a reused range: the new one. */
TEST_F(win, sigbus_and_reuse)
{
	struct memmgr_alloc a, b, c, u, pin, x;
	unsigned char v;

	ASSERT_EQ(0, mm_alloc(self->fd, EX, 2 * self->pg, 1, 0, &a));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, self->pg, 2, 0, &b));
	EXPECT_EQ(SIGBUS, probe_read(self->w + 3 * self->pg, &v));
	EXPECT_EQ(SIGBUS, probe_write(self->w + 64 * MIB - self->pg, 1));
	memset(self->w, 0x44, 2 * self->pg);

	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(SIGBUS, probe_read(self->w, &v));
	EXPECT_EQ(SIGBUS, probe_write(self->w + self->pg, 1));
	/* A one-page buffer takes the freed range's first page. */
	ASSERT_EQ(0, mm_alloc(self->fd, EX, self->pg, 3, 0, &c));
	ASSERT_EQ(0, c.offset);
	EXPECT_TRUE(mm_all_bytes(self->w, self->pg, 0));
	EXPECT_EQ(SIGBUS, probe_read(self->w + self->pg, &v));
	EXPECT_EQ(0, probe_read(self->w + 2 * self->pg, &v));

	/* An unpinned storage page, evicted for a pinned one. */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 4, MEMMGR_ALLOC_UNPINNED,
			      &u));
	EXPECT_EQ(self->pg, u.offset);
	memset(self->w + u.offset, 0x55, self->pg);
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S - self->pg, 5, 0, &pin));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 6, 0, &x));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 4, NULL));
	EXPECT_EQ(SIGBUS, probe_read(self->w + u.offset, &v));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, u.handle));
	EXPECT_EQ(SIGBUS, probe_read(self->w + u.offset, &v));
	EXPECT_EQ(0, probe_read(self->w + x.offset, &v));
	EXPECT_EQ(0, v);
}

/* The window's mmap rules, and a part of the window mapped alone. */
TEST_F(win, mmap_rules)
{
	const int rw = PROT_READ | PROT_WRITE;
	struct memmgr_alloc a, b;
	unsigned char *p, v;

	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->pg, rw, MAP_SHARED, self->fd,
				   MEMMGR_WINDOW_OFFSET + MEMMGR_OFFSET_LIMIT));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * self->pg, rw, MAP_SHARED,
				   self->fd, MEMMGR_WINDOW_OFFSET +
				   MEMMGR_OFFSET_LIMIT - self->pg));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->pg, rw, MAP_PRIVATE, self->fd,
				   MEMMGR_WINDOW_OFFSET));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->pg, rw | PROT_EXEC, MAP_SHARED,
				   self->fd, MEMMGR_WINDOW_OFFSET));
	EXPECT_EQ(EPERM, errno);
	errno = 0;
	EXPECT_EQ(-1, mprotect(self->w, self->pg, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);

	/* 1 MiB of the window from 1 MiB on: the buffer there, at its place. */
	ASSERT_EQ(0, mm_alloc(self->fd, EX, MIB, 1, 0, &a));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, MIB, 2, 0, &b));
	ASSERT_EQ(MIB, b.offset);
	p = mmap(NULL, MIB, rw, MAP_SHARED, self->fd,
		 MEMMGR_WINDOW_OFFSET + MIB);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x66, MIB);
	EXPECT_TRUE(mm_all_bytes(self->w + MIB, MIB, 0x66));
	EXPECT_TRUE(mm_all_bytes(self->w, MIB, 0));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, b.handle));
	EXPECT_EQ(SIGBUS, probe_read(p, &v));
	munmap(p, MIB);
}

/* A child sees the window as its parent does, as with other mappings. */
TEST_F(win, fork_shares)
{
	struct memmgr_alloc a;
	int status;
	pid_t pid;

	ASSERT_EQ(0, mm_alloc(self->fd, EX, self->pg, 1, 0, &a));
	memset(self->w, 0x77, self->pg);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int ok = mm_all_bytes(self->w, self->pg, 0x77);

		self->w[0] = 0x78;
		_exit(ok ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0x78, self->w[0]);
}

/*
 * Every page of the reserve as a one-page buffer, each written and read
 * back through the one window: T / page size buffers (131,072 with
 * total=512M, twice what a process could mmap() one by one).
 */
TEST_F(win, every_page_a_buffer)
{
	__u64 n = self->T / self->pg, i;
	struct memmgr_stats st;
	struct memmgr_alloc a;

	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, mm_alloc(self->fd, i < self->S / self->pg ? ST : EX,
				      self->pg, i, 0, &a));
		ASSERT_EQ(i * self->pg, a.offset);
		*(__u64 *)(self->w + a.offset) = i + 1;
	}
	st = mm_stats(self->fd);
	EXPECT_EQ(0, st.free);
	EXPECT_EQ(self->T, st.client_used[ST] + st.client_used[EX]);
	for (i = 0; i < n; i++)
		if (*(__u64 *)(self->w + i * self->pg) != i + 1)
			break;
	EXPECT_EQ(n, i);
	TH_LOG("%llu buffers through one mapping",
	       (unsigned long long)n);
}

TEST_HARNESS_MAIN
