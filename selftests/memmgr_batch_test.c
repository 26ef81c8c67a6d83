// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests of the batched calls and of RETAG.
 *
 * MEMMGR_IOC_ALLOC_MANY and MEMMGR_IOC_FREE_MANY do their entries in order,
 * each as its single ALLOC or FREE would (the same checks, the same out
 * fields), and stop at the first entry that fails: the call fails with its
 * errno, done says which entry it was, the entries before it are done and
 * it and those after have had no effect (their memory is as it was, their
 * tags are free, nothing was charged for them).  Checked on one-page
 * buffers (offsets first fit on a fresh file), mixed pools, a failure at
 * entry 10 for each kind of error, counts 0, MEMMGR_BATCH_MAX and one more,
 * bad header fields and pointers, an entries array on a read-only page, an
 * unknown or repeated handle in FREE_MANY.
 *
 * MEMMGR_IOC_RETAG gives a storage buffer a new tag and keeps the rest
 * (handle, offset, contents, pins); its errors, and the eviction notice of
 * a retagged buffer.
 *
 * Needs memmgr loaded with total=64M (or more, split mode) and an
 * otherwise idle device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
/* What the out fields of an entry that was not done keep. */
#define SENT 0x5a5a5a5a5a5a5a5aULL
/* What done holds before a call that must write it. */
#define DONE_SENT 0xdeadbeefU

/*
 * ALLOC_MANY or FREE_MANY of @count entries at @entries; @done is in (what
 * the field holds before the call) and out.  Returns 0 or -errno.
 */
static int batch(int fd, unsigned long cmd, void *entries, __u32 count,
		 __u32 *done)
{
	struct memmgr_batch b = {
		.entries = (uintptr_t)entries, .count = count, .done = *done,
	};
	int ret = ioctl(fd, cmd, &b) ? -errno : 0;

	*done = b.done;
	return ret;
}

static int retag(int fd, __u64 handle, __u64 tag)
{
	struct memmgr_retag r = { .handle = handle, .tag = tag };

	return ioctl(fd, MEMMGR_IOC_RETAG, &r) ? -errno : 0;
}

/* The tag of a buffer by its handle, or -errno. */
static int lookup_handle(int fd, __u64 handle, struct memmgr_lookup *out)
{
	struct memmgr_lookup l = {
		.flags = MEMMGR_LOOKUP_HANDLE, .handle = handle,
	};
	int ret = ioctl(fd, MEMMGR_IOC_LOOKUP, &l) ? -errno : 0;

	*out = l;
	return ret;
}

/* An entry as the tests make them: out fields at SENT. */
static struct memmgr_alloc entry(__u32 pool, __u64 size, __u64 tag,
				 __u32 flags)
{
	return (struct memmgr_alloc){
		.pool = pool, .flags = flags, .size = size, .tag = tag,
		.handle = SENT, .offset = SENT, .granted = SENT,
	};
}

/* Is @e as entry() made it, out fields included? */
static bool untouched(const struct memmgr_alloc *e, __u32 pool, __u64 size,
		      __u64 tag, __u32 flags)
{
	return e->pool == pool && e->flags == flags && e->size == size &&
	       e->tag == tag && e->timeout_ms == 0 && e->handle == SENT &&
	       e->offset == SENT && e->granted == SENT && !e->reserved[0] &&
	       !e->reserved[1];
}

FIXTURE(batch) {
	int fd;
	__u64 pg, T, S, E;
	struct memmgr_stats st0;
};

FIXTURE_SETUP(batch)
{
	self->fd = mm_open(0);
	ASSERT_LE(0, self->fd);
	self->st0 = mm_stats(self->fd);
	self->pg = self->st0.page_size;
	self->T = self->st0.total;
	self->S = self->st0.pool[ST].quota;
	self->E = self->st0.pool[EX].quota;
	ASSERT_EQ(0, self->st0.pool[ST].used);
	ASSERT_EQ(0, self->st0.pool[EX].used);
	ASSERT_EQ(0, self->st0.waiters);
	/* MEMMGR_BATCH_MAX one-page buffers fit in storage. */
	ASSERT_LE((MEMMGR_BATCH_MAX + 64) * self->pg, self->S);
}

FIXTURE_TEARDOWN(batch)
{
	close(self->fd);
}

/*
 * A later entry may evict an earlier one of the same batch, as the single
 * calls would: storage has room for three pages (a pinned filler holds
 * the rest), and a batch of four unpinned one-page entries, timeout 0,
 * is granted whole: the fourth evicts one of the first three.
 */
TEST_F(batch, evicts_its_own_entries)
{
	__u64 pg = self->pg;
	struct memmgr_alloc e[4], fill;
	struct memmgr_stats st;
	__u32 done = DONE_SENT;
	unsigned int i, stale = 0;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S - 3 * pg, 99, 0, &fill));
	for (i = 0; i < 4; i++)
		e[i] = entry(ST, pg, 10 + i, MEMMGR_ALLOC_UNPINNED);
	ASSERT_EQ(0, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, e, 4, &done));
	EXPECT_EQ(4, done);
	st = mm_stats(self->fd);
	EXPECT_EQ(self->st0.pool[ST].evictions + 1, st.pool[ST].evictions);
	EXPECT_EQ(self->S, st.pool[ST].used);
	EXPECT_EQ(self->st0.pool[ST].declined, st.pool[ST].declined);
	for (i = 0; i < 3; i++)
		stale += mm_lookup(self->fd, 10 + i, NULL) == -ESTALE;
	EXPECT_EQ(1, stale);
	EXPECT_EQ(0, mm_lookup(self->fd, 13, NULL));
}

/*
 * 64 one-page storage buffers in one call: each as a single ALLOC would
 * give it on a fresh file (offsets 0, 1, ..., 63 pages, first fit), found
 * by LOOKUP, and counted as 64 allocations of 64 pages.
 */
TEST_F(batch, alloc_64)
{
	__u64 pg = self->pg;
	struct memmgr_alloc e[64], one;
	struct memmgr_stats st;
	struct memmgr_lookup l;
	__u32 done = DONE_SENT;
	unsigned int i, j;

	for (i = 0; i < 64; i++)
		e[i] = entry(ST, pg, 1000 + i, 0);
	ASSERT_EQ(0, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, e, 64, &done));
	EXPECT_EQ(64, done);
	for (i = 0; i < 64; i++) {
		EXPECT_EQ(ST, e[i].pool);
		EXPECT_EQ(0, e[i].flags);
		EXPECT_EQ(pg, e[i].size);
		EXPECT_EQ(1000 + i, e[i].tag);
		EXPECT_EQ(i * pg, e[i].offset);
		EXPECT_EQ(pg, e[i].granted);
		EXPECT_NE(0, e[i].handle);
		EXPECT_NE(SENT, e[i].handle);
		for (j = 0; j < i; j++)
			EXPECT_NE(e[j].handle, e[i].handle);
		ASSERT_EQ(0, mm_lookup(self->fd, 1000 + i, &l));
		EXPECT_EQ(e[i].handle, l.handle);
		EXPECT_EQ(i * pg, l.offset);
		EXPECT_EQ(pg, l.size);
	}
	st = mm_stats(self->fd);
	EXPECT_EQ(self->st0.pool[ST].allocs + 64, st.pool[ST].allocs);
	EXPECT_EQ(64 * pg, st.pool[ST].used);
	EXPECT_EQ(64 * pg, st.pool[ST].pinned);
	EXPECT_EQ(64 * pg, st.client_used[ST]);
	EXPECT_EQ(self->T - 64 * pg, st.free);
	EXPECT_EQ(self->st0.pool[ST].declined, st.pool[ST].declined);
	EXPECT_EQ(self->st0.pool[EX].allocs, st.pool[EX].allocs);
	/* The next single ALLOC comes after them, and a tag is taken. */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 2000, 0, &one));
	EXPECT_EQ(64 * pg, one.offset);
	EXPECT_EQ(-EEXIST, mm_alloc(self->fd, ST, pg, 1010, 0, NULL));
}

/* FREE_MANY of 64 buffers: all gone, their memory back. */
TEST_F(batch, free_64)
{
	__u64 pg = self->pg, h[64];
	struct memmgr_alloc e[64];
	struct memmgr_stats st;
	__u32 done = 0;
	unsigned int i;

	for (i = 0; i < 64; i++)
		e[i] = entry(i % 2 ? EX : ST, pg, 1000 + i, 0);
	ASSERT_EQ(0, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, e, 64, &done));
	ASSERT_EQ(64, done);
	for (i = 0; i < 64; i++)
		h[i] = e[i].handle;
	st = mm_stats(self->fd);
	ASSERT_EQ(32 * pg, st.pool[ST].used);
	ASSERT_EQ(32 * pg, st.pool[EX].used);

	done = DONE_SENT;
	ASSERT_EQ(0, batch(self->fd, MEMMGR_IOC_FREE_MANY, h, 64, &done));
	EXPECT_EQ(64, done);
	st = mm_stats(self->fd);
	EXPECT_EQ(0, st.pool[ST].used);
	EXPECT_EQ(0, st.pool[EX].used);
	EXPECT_EQ(0, st.pool[ST].pinned);
	EXPECT_EQ(0, st.client_used[ST]);
	EXPECT_EQ(0, st.client_used[EX]);
	EXPECT_EQ(self->T, st.free);
	EXPECT_EQ(self->st0.pool[ST].frees + 32, st.pool[ST].frees);
	EXPECT_EQ(self->st0.pool[EX].frees + 32, st.pool[EX].frees);
	for (i = 0; i < 64; i++) {
		EXPECT_EQ(1000 + i, e[i].tag);
		EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_FREE, h[i]));
		if (i % 2 == 0)
			EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 1000 + i, NULL));
	}
	/* The handles array is only read. */
	EXPECT_EQ(e[5].handle, h[5]);
}

/*
 * Both pools in one batch, sizes rounded up to pages, an unpinned storage
 * buffer and two exec buffers with one tag: offsets first fit in order.
 */
TEST_F(batch, mixed_pools)
{
	__u64 pg = self->pg;
	struct memmgr_alloc e[5];
	struct memmgr_release r = { .pool = EX, .tag = 7 };
	struct memmgr_lookup l;
	struct memmgr_stats st;
	__u32 done = DONE_SENT;

	e[0] = entry(ST, pg, 1, 0);
	e[1] = entry(EX, 2 * pg, 7, 0);
	e[2] = entry(ST, 2 * pg + 1, 2, MEMMGR_ALLOC_UNPINNED);
	e[3] = entry(EX, 1, 7, 0);
	e[4] = entry(ST, pg - 1, 3, 0);
	ASSERT_EQ(0, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, e, 5, &done));
	EXPECT_EQ(5, done);
	EXPECT_EQ(0, e[0].offset);
	EXPECT_EQ(pg, e[0].granted);
	EXPECT_EQ(pg, e[1].offset);
	EXPECT_EQ(2 * pg, e[1].granted);
	EXPECT_EQ(3 * pg, e[2].offset);
	EXPECT_EQ(3 * pg, e[2].granted);
	EXPECT_EQ(6 * pg, e[3].offset);
	EXPECT_EQ(pg, e[3].granted);
	EXPECT_EQ(7 * pg, e[4].offset);
	EXPECT_EQ(pg, e[4].granted);

	st = mm_stats(self->fd);
	EXPECT_EQ(5 * pg, st.pool[ST].used);
	EXPECT_EQ(3 * pg, st.pool[EX].used);
	EXPECT_EQ(2 * pg, st.pool[ST].pinned);
	EXPECT_EQ(self->st0.pool[ST].allocs + 3, st.pool[ST].allocs);
	EXPECT_EQ(self->st0.pool[EX].allocs + 2, st.pool[EX].allocs);

	ASSERT_EQ(0, mm_lookup(self->fd, 2, &l));
	EXPECT_EQ(e[2].handle, l.handle);
	EXPECT_EQ(3 * pg, l.offset);
	/* An exec tag is no page id; by handle its buffer is found. */
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 7, NULL));
	ASSERT_EQ(0, lookup_handle(self->fd, e[3].handle, &l));
	EXPECT_EQ(7, l.tag);
	EXPECT_EQ(6 * pg, l.offset);
	/* The unpinned one has no pin to drop, the others one each. */
	EXPECT_EQ(-EINVAL, mm_buf(self->fd, MEMMGR_IOC_UNPIN, e[2].handle));
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, e[0].handle));
	ASSERT_EQ(0, ioctl(self->fd, MEMMGR_IOC_RELEASE, &r));
	EXPECT_EQ(3 * pg, r.freed);
}

/*
 * A batch of 16 one-page storage entries whose entry 10 fails: the call
 * fails with that entry's errno, done is 10, entries 0-9 are allocated
 * and entries 10-15 untouched, with nothing charged for them.
 */
enum stop_kind {
	STOP_SIZE0, STOP_DUP_TAG, STOP_TOO_BIG, STOP_FULL, STOP_RESERVED,
	STOP_EXEC_UNPINNED,
};

FIXTURE(stop) {
	int fd;
	__u64 pg, S;
};

FIXTURE_VARIANT(stop) {
	enum stop_kind kind;
	int err;
	bool declined;		/* counted as a declined request */
};

FIXTURE_VARIANT_ADD(stop, size0) {
	.kind = STOP_SIZE0, .err = EINVAL,
};

FIXTURE_VARIANT_ADD(stop, dup_tag) {
	.kind = STOP_DUP_TAG, .err = EEXIST,
};

FIXTURE_VARIANT_ADD(stop, too_big) {
	.kind = STOP_TOO_BIG, .err = E2BIG, .declined = true,
};

FIXTURE_VARIANT_ADD(stop, full_timeout0) {
	.kind = STOP_FULL, .err = EAGAIN, .declined = true,
};

FIXTURE_VARIANT_ADD(stop, reserved) {
	.kind = STOP_RESERVED, .err = EINVAL,
};

FIXTURE_VARIANT_ADD(stop, exec_unpinned) {
	.kind = STOP_EXEC_UNPINNED, .err = EINVAL,
};

FIXTURE_SETUP(stop)
{
	struct memmgr_stats st;

	self->fd = mm_open(0);
	ASSERT_LE(0, self->fd);
	st = mm_stats(self->fd);
	self->pg = st.page_size;
	self->S = st.pool[ST].quota;
	ASSERT_EQ(0, st.pool[ST].used);
	ASSERT_EQ(0, st.pool[EX].used);
	ASSERT_LE(64 * self->pg, self->S);
}

FIXTURE_TEARDOWN(stop)
{
	close(self->fd);
}

TEST_F(stop, at_entry_10)
{
	__u64 pg = self->pg, base = 0, size[16], tag[16];
	__u32 pool[16], flags[16], done = DONE_SENT;
	struct memmgr_alloc e[16], fill = { 0 };
	struct memmgr_stats st0, st;
	struct memmgr_lookup l;
	unsigned int i;

	for (i = 0; i < 16; i++) {
		pool[i] = ST;
		flags[i] = 0;
		size[i] = pg;
		tag[i] = 100 + i;
	}
	switch (variant->kind) {
	case STOP_SIZE0:
		size[10] = 0;
		break;
	case STOP_DUP_TAG:
		tag[10] = tag[3];
		break;
	case STOP_TOO_BIG:
		size[10] = self->S + pg;
		break;
	case STOP_FULL:
		/* Pinned storage leaves room for entries 0-9 exactly. */
		ASSERT_EQ(0, mm_alloc(self->fd, ST, self->S - 10 * pg, 999, 0,
				      &fill));
		base = fill.granted;
		break;
	case STOP_RESERVED:
		break;
	case STOP_EXEC_UNPINNED:
		pool[10] = EX;
		flags[10] = MEMMGR_ALLOC_UNPINNED;
		break;
	}
	for (i = 0; i < 16; i++)
		e[i] = entry(pool[i], size[i], tag[i], flags[i]);
	if (variant->kind == STOP_RESERVED)
		e[10].reserved[1] = 1;

	st0 = mm_stats(self->fd);
	EXPECT_EQ(-variant->err, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, e, 16,
				       &done));
	EXPECT_EQ(10, done);
	for (i = 0; i < 10; i++) {
		EXPECT_EQ(base + i * pg, e[i].offset);
		EXPECT_EQ(pg, e[i].granted);
		ASSERT_EQ(0, mm_lookup(self->fd, tag[i], &l));
		EXPECT_EQ(e[i].handle, l.handle);
		EXPECT_EQ(base + i * pg, l.offset);
		EXPECT_EQ(pg, l.size);
	}
	for (i = 10; i < 16; i++) {
		if (variant->kind == STOP_RESERVED && i == 10) {
			EXPECT_EQ(1, e[i].reserved[1]);
			e[i].reserved[1] = 0;
		}
		EXPECT_TRUE(untouched(&e[i], pool[i], size[i], tag[i],
				      flags[i])) {
			TH_LOG("entry %u was written", i);
		}
		if (i > 10 || variant->kind != STOP_DUP_TAG)
			EXPECT_EQ(-ENOENT, mm_lookup(self->fd, tag[i], NULL));
	}
	st = mm_stats(self->fd);
	EXPECT_EQ(st0.pool[ST].allocs + 10, st.pool[ST].allocs);
	EXPECT_EQ(st0.pool[ST].used + 10 * pg, st.pool[ST].used);
	EXPECT_EQ(st0.pool[ST].pinned + 10 * pg, st.pool[ST].pinned);
	EXPECT_EQ(st0.client_used[ST] + 10 * pg, st.client_used[ST]);
	EXPECT_EQ(st0.pool[ST].declined + variant->declined,
		  st.pool[ST].declined);
	EXPECT_EQ(st0.pool[EX].allocs, st.pool[EX].allocs);
	EXPECT_EQ(st0.pool[EX].used, st.pool[EX].used);
	EXPECT_EQ(st0.pool[EX].declined, st.pool[EX].declined);
	EXPECT_EQ(st0.pool[ST].evictions, st.pool[ST].evictions);
	EXPECT_EQ(0, st.waiters);
	/* The rest of the batch, from entry 11 on, goes through alone. */
	if (variant->kind == STOP_FULL)
		ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, fill.handle));
	done = DONE_SENT;
	EXPECT_EQ(0, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, e + 11, 5, &done));
	EXPECT_EQ(5, done);
	EXPECT_EQ(0, mm_lookup(self->fd, tag[15], NULL));
}

/* Count 0 does nothing and succeeds, whatever the entries pointer. */
TEST_F(batch, count_zero)
{
	struct memmgr_alloc e = entry(ST, self->pg, 1, 0);
	__u64 h = 1;
	struct memmgr_stats st;
	__u32 done;

	done = DONE_SENT;
	EXPECT_EQ(0, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, &e, 0, &done));
	EXPECT_EQ(0, done);
	EXPECT_TRUE(untouched(&e, ST, self->pg, 1, 0));
	done = DONE_SENT;
	EXPECT_EQ(0, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, NULL, 0, &done));
	EXPECT_EQ(0, done);
	done = DONE_SENT;
	EXPECT_EQ(0, batch(self->fd, MEMMGR_IOC_FREE_MANY, &h, 0, &done));
	EXPECT_EQ(0, done);
	done = DONE_SENT;
	EXPECT_EQ(0, batch(self->fd, MEMMGR_IOC_FREE_MANY, NULL, 0, &done));
	EXPECT_EQ(0, done);
	st = mm_stats(self->fd);
	EXPECT_EQ(self->st0.pool[ST].allocs, st.pool[ST].allocs);
	EXPECT_EQ(self->st0.pool[ST].declined, st.pool[ST].declined);
	EXPECT_EQ(0, st.pool[ST].used);
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 1, NULL));
}

/* MEMMGR_BATCH_MAX entries in one call work; one more is EINVAL. */
TEST_F(batch, count_max)
{
	const __u32 n = MEMMGR_BATCH_MAX;
	struct memmgr_alloc *e = calloc(n + 1, sizeof(*e));
	__u64 *h = calloc(n + 1, sizeof(*h)), pg = self->pg;
	struct memmgr_stats st;
	__u32 done, i;

	ASSERT_NE(NULL, e);
	ASSERT_NE(NULL, h);
	ASSERT_EQ(1024, n);
	for (i = 0; i <= n; i++)
		e[i] = entry(ST, pg, i, MEMMGR_ALLOC_UNPINNED);

	done = 0;
	EXPECT_EQ(-EINVAL, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, e, n + 1,
				 &done));
	EXPECT_EQ(0, done);
	EXPECT_TRUE(untouched(&e[0], ST, pg, 0, MEMMGR_ALLOC_UNPINNED));
	st = mm_stats(self->fd);
	EXPECT_EQ(self->st0.pool[ST].allocs, st.pool[ST].allocs);
	EXPECT_EQ(0, st.pool[ST].used);

	done = DONE_SENT;
	ASSERT_EQ(0, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, e, n, &done));
	EXPECT_EQ(n, done);
	EXPECT_TRUE(untouched(&e[n], ST, pg, n, MEMMGR_ALLOC_UNPINNED));
	for (i = 0; i < n; i++) {
		EXPECT_EQ((__u64)i * pg, e[i].offset);
		h[i] = e[i].handle;
	}
	h[n] = h[0];
	st = mm_stats(self->fd);
	EXPECT_EQ(self->st0.pool[ST].allocs + n, st.pool[ST].allocs);
	EXPECT_EQ(n * pg, st.pool[ST].used);
	EXPECT_EQ(0, st.pool[ST].pinned);

	done = 0;
	EXPECT_EQ(-EINVAL, batch(self->fd, MEMMGR_IOC_FREE_MANY, h, n + 1,
				 &done));
	EXPECT_EQ(0, done);
	EXPECT_EQ(n * pg, mm_stats(self->fd).pool[ST].used);
	done = DONE_SENT;
	EXPECT_EQ(0, batch(self->fd, MEMMGR_IOC_FREE_MANY, h, n, &done));
	EXPECT_EQ(n, done);
	st = mm_stats(self->fd);
	EXPECT_EQ(0, st.pool[ST].used);
	EXPECT_EQ(self->st0.pool[ST].frees + n, st.pool[ST].frees);
	free(e);
	free(h);
}

/* Non-zero flags, reserved0 or reserved[]: EINVAL, nothing done. */
TEST_F(batch, header_fields_einval)
{
	static const struct {
		__u32 flags, reserved0;
		__u64 reserved[2];
	} bad[] = {
		{ .flags = 1 }, { .flags = 1U << 31 }, { .flags = ~0U },
		{ .reserved0 = 1 }, { .reserved0 = 1U << 31 },
		{ .reserved = { 1, 0 } }, { .reserved = { 1ULL << 63, 0 } },
		{ .reserved = { 0, 1 } }, { .reserved = { 0, ~0ULL } },
	};
	static const unsigned long cmds[] = {
		MEMMGR_IOC_ALLOC_MANY, MEMMGR_IOC_FREE_MANY,
	};
	__u64 pg = self->pg, h[2];
	struct memmgr_alloc e[2], live;
	struct memmgr_stats st0, st;
	struct memmgr_batch b;
	unsigned int i, c;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 50, 0, &live));
	h[0] = live.handle;
	h[1] = live.handle;
	st0 = mm_stats(self->fd);
	for (c = 0; c < 2; c++) {
		for (i = 0; i < ARRAY_SIZE(bad); i++) {
			e[0] = entry(ST, pg, 1, 0);
			e[1] = entry(EX, pg, 2, 0);
			b = (struct memmgr_batch){
				.entries = c ? (uintptr_t)h : (uintptr_t)e,
				.count = c ? 1 : 2, .flags = bad[i].flags,
				.reserved0 = bad[i].reserved0,
				.reserved = { bad[i].reserved[0],
					      bad[i].reserved[1] },
			};
			errno = 0;
			EXPECT_EQ(-1, ioctl(self->fd, cmds[c], &b));
			EXPECT_EQ(EINVAL, errno) {
				TH_LOG("%s with bad field %u",
				       c ? "FREE_MANY" : "ALLOC_MANY", i);
			}
			EXPECT_TRUE(untouched(&e[0], ST, pg, 1, 0));
			EXPECT_TRUE(untouched(&e[1], EX, pg, 2, 0));
		}
	}
	st = mm_stats(self->fd);
	EXPECT_EQ(st0.pool[ST].allocs, st.pool[ST].allocs);
	EXPECT_EQ(st0.pool[EX].allocs, st.pool[EX].allocs);
	EXPECT_EQ(st0.pool[ST].frees, st.pool[ST].frees);
	EXPECT_EQ(pg, st.pool[ST].used);
	EXPECT_EQ(0, st.pool[EX].used);
	EXPECT_EQ(0, mm_lookup(self->fd, 50, NULL));
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 1, NULL));
}

/* A NULL or unmapped entries array with count > 0: EFAULT, nothing done. */
TEST_F(batch, entries_bad_pointer_efault)
{
	struct memmgr_stats st;
	unsigned char *none;
	__u32 done;

	none = mmap(NULL, self->pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	done = 0;
	EXPECT_EQ(-EFAULT, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, NULL, 1,
				 &done));
	EXPECT_EQ(0, done);
	done = 0;
	EXPECT_EQ(-EFAULT, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, none, 3,
				 &done));
	EXPECT_EQ(0, done);
	done = 0;
	EXPECT_EQ(-EFAULT, batch(self->fd, MEMMGR_IOC_FREE_MANY, NULL, 1,
				 &done));
	EXPECT_EQ(0, done);
	done = 0;
	EXPECT_EQ(-EFAULT, batch(self->fd, MEMMGR_IOC_FREE_MANY, none, 3,
				 &done));
	EXPECT_EQ(0, done);
	st = mm_stats(self->fd);
	EXPECT_EQ(self->st0.pool[ST].allocs, st.pool[ST].allocs);
	EXPECT_EQ(self->st0.pool[EX].allocs, st.pool[EX].allocs);
	EXPECT_EQ(self->st0.pool[ST].declined, st.pool[ST].declined);
	EXPECT_EQ(0, st.pool[ST].used);
	EXPECT_EQ(0, st.pool[EX].used);
	munmap(none, self->pg);
}

/*
 * Entries on a read-only page: each entry is checked to be writable
 * before it is done, so the first one fails with EFAULT and nothing is
 * allocated.  A FREE_MANY only reads its handles: a read-only array works.
 */
TEST_F(batch, entries_readonly)
{
	__u64 pg = self->pg, *h;
	struct memmgr_alloc *e, w[4];
	struct memmgr_stats st;
	unsigned int i;
	__u32 done;
	void *p;

	p = mmap(NULL, pg, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	e = p;
	for (i = 0; i < 4; i++)
		e[i] = entry(i % 2 ? EX : ST, pg, 10 + i, 0);
	ASSERT_EQ(0, mprotect(p, pg, PROT_READ));

	done = 0;
	EXPECT_EQ(-EFAULT, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, e, 4, &done));
	EXPECT_EQ(0, done);
	for (i = 0; i < 4; i++) {
		EXPECT_TRUE(untouched(&e[i], i % 2 ? EX : ST, pg, 10 + i, 0));
		if (i % 2 == 0)
			EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 10 + i, NULL));
	}
	st = mm_stats(self->fd);
	EXPECT_EQ(self->st0.pool[ST].allocs, st.pool[ST].allocs);
	EXPECT_EQ(self->st0.pool[EX].allocs, st.pool[EX].allocs);
	EXPECT_EQ(self->st0.pool[ST].declined, st.pool[ST].declined);
	EXPECT_EQ(0, st.pool[ST].used);
	EXPECT_EQ(0, st.pool[EX].used);
	EXPECT_EQ(self->T, st.free);

	/* The same entries from writable memory: all four, tags free. */
	memcpy(w, e, sizeof(w));
	done = DONE_SENT;
	ASSERT_EQ(0, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, w, 4, &done));
	EXPECT_EQ(4, done);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(i * pg, w[i].offset);

	/* Their handles from a read-only page: freed. */
	ASSERT_EQ(0, mprotect(p, pg, PROT_READ | PROT_WRITE));
	h = p;
	for (i = 0; i < 4; i++)
		h[i] = w[i].handle;
	ASSERT_EQ(0, mprotect(p, pg, PROT_READ));
	done = DONE_SENT;
	EXPECT_EQ(0, batch(self->fd, MEMMGR_IOC_FREE_MANY, h, 4, &done));
	EXPECT_EQ(4, done);
	st = mm_stats(self->fd);
	EXPECT_EQ(0, st.pool[ST].used);
	EXPECT_EQ(0, st.pool[EX].used);
	munmap(p, pg);
}

/*
 * FREE_MANY with a handle this file does not have at index 5: ENOENT,
 * done 5, handles 0-4 freed and 6-10 still live.
 */
TEST_F(batch, free_unknown_at_5)
{
	__u64 pg = self->pg, h[11], gone;
	struct memmgr_alloc e[10], g;
	struct memmgr_lookup l;
	struct memmgr_stats st0, st;
	unsigned int i;
	__u32 done = 0;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 99, 0, &g));
	gone = g.handle;
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, gone));
	for (i = 0; i < 10; i++)
		e[i] = entry(ST, pg, 200 + i, 0);
	ASSERT_EQ(0, batch(self->fd, MEMMGR_IOC_ALLOC_MANY, e, 10, &done));
	ASSERT_EQ(10, done);
	for (i = 0; i < 11; i++)
		h[i] = i < 5 ? e[i].handle : i == 5 ? gone : e[i - 1].handle;
	for (i = 0; i < 10; i++)
		ASSERT_NE(gone, e[i].handle);

	st0 = mm_stats(self->fd);
	done = DONE_SENT;
	EXPECT_EQ(-ENOENT, batch(self->fd, MEMMGR_IOC_FREE_MANY, h, 11, &done));
	EXPECT_EQ(5, done);
	for (i = 0; i < 10; i++) {
		if (i < 5) {
			EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 200 + i, NULL));
			EXPECT_EQ(-ENOENT, mm_buf(self->fd, MEMMGR_IOC_FREE,
						  e[i].handle));
		} else {
			ASSERT_EQ(0, mm_lookup(self->fd, 200 + i, &l));
			EXPECT_EQ(e[i].handle, l.handle);
		}
	}
	st = mm_stats(self->fd);
	EXPECT_EQ(st0.pool[ST].frees + 5, st.pool[ST].frees);
	EXPECT_EQ(st0.pool[ST].used - 5 * pg, st.pool[ST].used);
	EXPECT_EQ(5 * pg, st.pool[ST].used);
	EXPECT_EQ(5 * pg, st.pool[ST].pinned);
	/* The rest, without the unknown handle. */
	done = DONE_SENT;
	EXPECT_EQ(0, batch(self->fd, MEMMGR_IOC_FREE_MANY, h + 6, 5, &done));
	EXPECT_EQ(5, done);
	EXPECT_EQ(0, mm_stats(self->fd).pool[ST].used);
}

/* One handle twice in a batch: the second is ENOENT, done 1. */
TEST_F(batch, free_same_twice)
{
	__u64 pg = self->pg, h[3];
	struct memmgr_alloc a, b;
	struct memmgr_stats st;
	__u32 done;

	ASSERT_EQ(0, mm_alloc(self->fd, EX, pg, 1, 0, &a));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 2, 0, &b));
	h[0] = a.handle;
	h[1] = a.handle;
	h[2] = b.handle;
	done = DONE_SENT;
	EXPECT_EQ(-ENOENT, batch(self->fd, MEMMGR_IOC_FREE_MANY, h, 3, &done));
	EXPECT_EQ(1, done);
	st = mm_stats(self->fd);
	EXPECT_EQ(0, st.pool[EX].used);
	EXPECT_EQ(pg, st.pool[ST].used);
	EXPECT_EQ(self->st0.pool[EX].frees + 1, st.pool[EX].frees);
	EXPECT_EQ(0, mm_lookup(self->fd, 2, NULL));

	h[0] = b.handle;
	h[1] = b.handle;
	done = DONE_SENT;
	EXPECT_EQ(-ENOENT, batch(self->fd, MEMMGR_IOC_FREE_MANY, h, 2, &done));
	EXPECT_EQ(1, done);
	EXPECT_EQ(0, mm_stats(self->fd).pool[ST].used);
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 2, NULL));
}

/*
 * RETAG: LOOKUP finds the buffer under its new tag, same handle, offset,
 * size, contents and pins; its old tag is free for a new ALLOC.
 */
TEST_F(batch, retag_moves_tag)
{
	__u64 pg = self->pg;
	struct memmgr_alloc a, b;
	struct memmgr_stats st0, st;
	struct memmgr_lookup l;
	unsigned char *p, *q;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, 2 * pg, 1, 0, &a));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_PIN, a.handle));
	p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		 a.offset);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x3a, 2 * pg);
	st0 = mm_stats(self->fd);

	ASSERT_EQ(0, retag(self->fd, a.handle, 0x1234567890ULL));
	ASSERT_EQ(0, mm_lookup(self->fd, 0x1234567890ULL, &l));
	EXPECT_EQ(a.handle, l.handle);
	EXPECT_EQ(a.offset, l.offset);
	EXPECT_EQ(2 * pg, l.size);
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 1, NULL));
	ASSERT_EQ(0, lookup_handle(self->fd, a.handle, &l));
	EXPECT_EQ(0x1234567890ULL, l.tag);
	/* The same memory, through the old mapping and a new one. */
	EXPECT_TRUE(mm_all_bytes(p, 2 * pg, 0x3a));
	q = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		 a.offset);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_TRUE(mm_all_bytes(q, 2 * pg, 0x3a));
	q[pg] = 0x3b;
	EXPECT_EQ(0x3b, p[pg]);
	/* Nothing counted, charged or unpinned by it. */
	st = mm_stats(self->fd);
	EXPECT_EQ(st0.pool[ST].allocs, st.pool[ST].allocs);
	EXPECT_EQ(st0.pool[ST].frees, st.pool[ST].frees);
	EXPECT_EQ(2 * pg, st.pool[ST].used);
	EXPECT_EQ(2 * pg, st.pool[ST].pinned);

	/* The old tag is free. */
	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 1, MEMMGR_ALLOC_UNPINNED, &b));
	EXPECT_EQ(2 * pg, b.offset);
	ASSERT_EQ(0, mm_lookup(self->fd, 1, &l));
	EXPECT_EQ(b.handle, l.handle);
	EXPECT_NE(a.handle, b.handle);
	/* Two pins came along: two UNPINs, then none left. */
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, a.handle));
	EXPECT_EQ(2 * pg, mm_stats(self->fd).pool[ST].pinned);
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, a.handle));
	EXPECT_EQ(0, mm_stats(self->fd).pool[ST].pinned);
	EXPECT_EQ(-EINVAL, mm_buf(self->fd, MEMMGR_IOC_UNPIN, a.handle));
	/* And it frees under its new tag. */
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 0x1234567890ULL, NULL));
	munmap(p, 2 * pg);
	munmap(q, 2 * pg);
}

/*
 * A tag another storage buffer of the file holds: EEXIST, both as they
 * were.  The same tag: 0.  An exec buffer's tag is no page id: free.
 */
TEST_F(batch, retag_eexist_same_exec_tag)
{
	__u64 pg = self->pg;
	struct memmgr_alloc a, b, x;
	struct memmgr_lookup l;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 1, 0, &a));
	ASSERT_EQ(0, mm_alloc(self->fd, ST, pg, 2, MEMMGR_ALLOC_UNPINNED, &b));
	ASSERT_EQ(0, mm_alloc(self->fd, EX, pg, 3, 0, &x));

	EXPECT_EQ(-EEXIST, retag(self->fd, a.handle, 2));
	EXPECT_EQ(-EEXIST, retag(self->fd, b.handle, 1));
	ASSERT_EQ(0, mm_lookup(self->fd, 1, &l));
	EXPECT_EQ(a.handle, l.handle);
	ASSERT_EQ(0, mm_lookup(self->fd, 2, &l));
	EXPECT_EQ(b.handle, l.handle);

	EXPECT_EQ(0, retag(self->fd, a.handle, 1));
	ASSERT_EQ(0, mm_lookup(self->fd, 1, &l));
	EXPECT_EQ(a.handle, l.handle);
	EXPECT_EQ(a.offset, l.offset);

	EXPECT_EQ(0, retag(self->fd, b.handle, 3));
	ASSERT_EQ(0, mm_lookup(self->fd, 3, &l));
	EXPECT_EQ(b.handle, l.handle);
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 2, NULL));
	ASSERT_EQ(0, lookup_handle(self->fd, x.handle, &l));
	EXPECT_EQ(3, l.tag);
	/* Tag 2 is free now, tag 3 taken. */
	EXPECT_EQ(0, mm_alloc(self->fd, ST, pg, 2, 0, NULL));
	EXPECT_EQ(-EEXIST, mm_alloc(self->fd, ST, pg, 3, 0, NULL));
}

/*
 * An evicted buffer: ESTALE, and its stale entry keeps its tag.  The
 * eviction: another file fills storage while the buffer is unpinned.
 */
TEST_F(batch, retag_evicted_estale)
{
	struct memmgr_alloc u, big;
	struct memmgr_lookup l;
	int fd2 = mm_open(0);

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 1, MEMMGR_ALLOC_UNPINNED,
			      &u));
	ASSERT_EQ(0, mm_alloc(fd2, ST, self->S, 1, 0, &big));
	ASSERT_EQ(self->st0.pool[ST].evictions + 1,
		  mm_stats(self->fd).pool[ST].evictions);
	ASSERT_EQ(-ESTALE, mm_lookup(self->fd, 1, NULL));

	EXPECT_EQ(-ESTALE, retag(self->fd, u.handle, 2));
	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 1, &l));
	EXPECT_EQ(u.handle, l.handle);
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 2, NULL));
	EXPECT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, u.handle));
	EXPECT_EQ(-ENOENT, retag(self->fd, u.handle, 2));
	close(fd2);
}

/* Exec buffers have no page id: EINVAL, their tag as it was. */
TEST_F(batch, retag_exec_einval)
{
	struct memmgr_alloc x;
	struct memmgr_lookup l;

	ASSERT_EQ(0, mm_alloc(self->fd, EX, self->pg, 5, 0, &x));
	EXPECT_EQ(-EINVAL, retag(self->fd, x.handle, 6));
	EXPECT_EQ(-EINVAL, retag(self->fd, x.handle, 5));
	ASSERT_EQ(0, lookup_handle(self->fd, x.handle, &l));
	EXPECT_EQ(5, l.tag);
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 6, NULL));
}

/* Non-zero flags or reserved: EINVAL, nothing renamed. */
TEST_F(batch, retag_fields_einval)
{
	static const __u64 vals[] = { 1, 2, 1ULL << 31, 1ULL << 63, ~0ULL };
	struct memmgr_alloc a;
	struct memmgr_retag r;
	struct memmgr_lookup l;
	unsigned int i, f;

	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 1, 0, &a));
	for (f = 0; f < 2; f++) {
		for (i = 0; i < ARRAY_SIZE(vals); i++) {
			r = (struct memmgr_retag){
				.handle = a.handle, .tag = 2,
				.flags = f ? 0 : vals[i],
				.reserved = f ? vals[i] : 0,
			};
			errno = 0;
			EXPECT_EQ(-1, ioctl(self->fd, MEMMGR_IOC_RETAG, &r));
			EXPECT_EQ(EINVAL, errno);
		}
	}
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 2, NULL));
	ASSERT_EQ(0, mm_lookup(self->fd, 1, &l));
	EXPECT_EQ(a.handle, l.handle);
	/* The same request without them works. */
	EXPECT_EQ(0, retag(self->fd, a.handle, 2));
	EXPECT_EQ(0, mm_lookup(self->fd, 2, NULL));
}

/* Handles this file does not have: ENOENT. */
TEST_F(batch, retag_unknown_enoent)
{
	struct memmgr_alloc a, other;
	struct memmgr_lookup l;
	int fd2 = mm_open(0);

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 1, 0, &a));
	ASSERT_EQ(0, mm_alloc(fd2, ST, self->pg, 1, 0, &other));
	EXPECT_EQ(-ENOENT, retag(self->fd, 0, 2));
	EXPECT_EQ(-ENOENT, retag(self->fd, ~0ULL, 2));
	if (other.handle != a.handle)
		EXPECT_EQ(-ENOENT, retag(self->fd, other.handle, 2));
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 2, NULL));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(-ENOENT, retag(self->fd, a.handle, 2));
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 2, NULL));
	/* The other file's buffer kept its tag there. */
	ASSERT_EQ(0, mm_lookup(fd2, 1, &l));
	EXPECT_EQ(other.handle, l.handle);
	close(fd2);
}

/* The eviction notice of a retagged buffer names its new tag. */
TEST_F(batch, retag_then_evicted_notice)
{
	struct memmgr_alloc u, big;
	struct memmgr_evicted ev;
	struct memmgr_lookup l;
	__u64 tags[4] = { 0, 0, 0, 0 };
	int fd2 = mm_open(0);

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mm_alloc(self->fd, ST, self->pg, 1, 0, &u));
	ASSERT_EQ(0, retag(self->fd, u.handle, 0xabcdef));
	ASSERT_EQ(0, mm_buf(self->fd, MEMMGR_IOC_UNPIN, u.handle));
	ASSERT_EQ(0, mm_alloc(fd2, ST, self->S, 1, 0, &big));
	ASSERT_EQ(self->st0.pool[ST].evictions + 1,
		  mm_stats(self->fd).pool[ST].evictions);

	EXPECT_EQ(-ESTALE, mm_lookup(self->fd, 0xabcdef, &l));
	EXPECT_EQ(u.handle, l.handle);
	EXPECT_EQ(-ENOENT, mm_lookup(self->fd, 1, NULL));
	ev = (struct memmgr_evicted){
		.tags = (uintptr_t)tags, .count = 4,
	};
	ASSERT_EQ(0, ioctl(self->fd, MEMMGR_IOC_EVICTED, &ev));
	EXPECT_EQ(1, ev.count);
	EXPECT_EQ(0xabcdef, tags[0]);
	EXPECT_EQ(0, tags[1]);
	EXPECT_EQ(0, ev.pending);
	close(fd2);
}

TEST_HARNESS_MAIN
