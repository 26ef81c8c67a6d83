// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests of libmemmgr's execution allocator (issue 13):
 * memmgr_malloc(), memmgr_calloc(), memmgr_realloc(), memmgr_usable_size()
 * and memmgr_free() of their objects, run in a VM against the loaded
 * module.  Every size class from 1 byte to 8 MiB (its usable size,
 * alignment, no overlap), realloc in place and moved, to and from 0 and of
 * foreign pointers, calloc's zeroing and overflow, reuse without zeroing,
 * the release of an exec id with objects of every size live, threads
 * freeing each other's objects, and out of memory: declined, timed out,
 * and granted once memory comes back.
 *
 * Every test runs twice: on a handle with the window (variant "fast") and
 * on one opened MEMMGR_OPEN_NO_FAST (variant "legacy": chunks mapped one
 * by one).  The expected size classes are jemalloc 5.3's for 4 KiB pages,
 * worked out by class_of() below.  A handle's charge is the kernel's
 * client_used[] of its open file: each test has its own handle on an idle
 * device, so that is the charge of the test's exec ids.  The tests need a
 * reserve of at least 48 MiB (total=64M in the VM).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "libmemmgr.h"
#include "memmgr_util.h"

#include "kselftest_harness.h"

#define EX		MEMMGR_POOL_EXEC
#define KiB		1024UL
#define MiB		(1024UL * 1024)
#define NR_CLASSES	73	/* jemalloc's classes from 8 B to 8 MiB */

/*
 * jemalloc 5.3's size class of a request, with 4 KiB pages and a 16-byte
 * quantum: 8; the multiples of 16 up to 64; then four classes per
 * doubling, 2^lg + k * 2^(lg - 2) for k = 1..4 (80, 96, 112, 128, 160,
 * ...).  Small up to 14336, large (MEMMGR_LARGE_MIN) from 16384.
 */
static size_t class_of(size_t n)
{
	size_t delta;

	if (n <= 8)
		return 8;
	if (n <= 64)
		return (n + 15) & ~(size_t)15;
	delta = (size_t)1 << (63 - __builtin_clzl(n - 1) - 2);
	return (n + delta - 1) & ~(delta - 1);
}

/* The smallest request of class @cls. */
static size_t class_min(size_t cls)
{
	if (cls <= 16)
		return cls == 8 ? 1 : 9;
	if (cls <= 64)
		return cls - 15;
	return cls - ((size_t)1 << (63 - __builtin_clzl(cls - 1) - 2)) + 1;
}

/*
 * The alignment promised for class @cls: 8, 16, and 64 from
 * MEMMGR_LARGE_MIN up (pages of its own, at a varying offset into the
 * first: jemalloc's cache-oblivious placement).
 */
static size_t align_of(size_t cls)
{
	if (cls >= MEMMGR_LARGE_MIN)
		return 64;
	return cls == 8 ? 8 : 16;
}

/*
 * Do all @n bytes at @p read @v?  (The first byte, then every byte equal
 * to the one before it: memcmp() runs fast under emulation where
 * mm_all_bytes()'s volatile loop would take seconds for 100 MiB.)
 */
static bool filled(const void *p, size_t n, unsigned char v)
{
	const unsigned char *b = p;

	return !n || (b[0] == v && !memcmp(b, b + 1, n - 1));
}

static struct memmgr_lib_stats stats(struct memmgr *mm)
{
	struct memmgr_lib_stats st;

	if (memmgr_get_stats(mm, &st))
		memset(&st, 0xff, sizeof(st));
	return st;
}

/* What the kernel charges this handle for execution memory. */
static uint64_t charged(struct memmgr *mm)
{
	return stats(mm).kernel.client_used[EX];
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

struct obj {
	unsigned char *p;
	size_t size;		/* bytes written: its usable size */
	unsigned char v;
};

/*
 * memmgr_malloc() of @size for @exec_id: its usable size is its class,
 * aligned as that class is; then @v written to every usable byte.
 */
static void take(struct __test_metadata *_metadata, struct memmgr *mm,
		 uint64_t exec_id, size_t size, unsigned char v, struct obj *o)
{
	size_t cls = class_of(size);

	o->p = memmgr_malloc(mm, exec_id, size);
	ASSERT_NE(NULL, o->p) TH_LOG("malloc(%zu): %m", size);
	o->size = memmgr_usable_size(mm, o->p);
	EXPECT_EQ(cls, o->size) TH_LOG("size %zu", size);
	ASSERT_LE(size, o->size) TH_LOG("size %zu", size);
	EXPECT_EQ(0, (uintptr_t)o->p % align_of(cls))
		TH_LOG("size %zu at %p", size, o->p);
	o->v = v;
	memset(o->p, v, o->size);
}

/* Every object still holds its byte, then is freed. */
static void check_free(struct __test_metadata *_metadata, struct memmgr *mm,
		       struct obj *o, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		EXPECT_TRUE(filled(o[i].p, o[i].size, o[i].v))
			TH_LOG("object %d of %zu bytes", i, o[i].size);
		EXPECT_EQ(0, memmgr_free(mm, o[i].p));
	}
}

/* Hold all the free memory of the device with one buffer of @exec_id. */
static uint64_t fill_pool(struct __test_metadata *_metadata,
			  struct memmgr *mm, uint64_t exec_id)
{
	uint64_t free = stats(mm).kernel.free;
	void *all;

	ASSERT_LT(0, free);
	ASSERT_EQ(0, memmgr_alloc_exec(mm, exec_id, free, 0, &all));
	/* Execution borrows storage's share too: nothing is left. */
	EXPECT_EQ(0, stats(mm).kernel.free);
	return free;
}

FIXTURE(alloc) {
	struct memmgr *mm;
	uint64_t T;
};

FIXTURE_VARIANT(alloc) {
	unsigned int open_flags;
};

FIXTURE_VARIANT_ADD(alloc, fast) {
	.open_flags = 0,
};

FIXTURE_VARIANT_ADD(alloc, legacy) {
	.open_flags = MEMMGR_OPEN_NO_FAST,
};

FIXTURE_SETUP(alloc)
{
	struct memmgr_lib_stats st;
	int ret;

	ret = memmgr_open(&self->mm, variant->open_flags);
	/* 6.1's harness runs the test after a SKIP in setup: leave now. */
	if (ret == -ENODEV)
		SKIP(_exit(255), "memmgr.ko is not loaded");
	ASSERT_EQ(0, ret);
	st = stats(self->mm);
	self->T = st.kernel.total;
	/* class_of() is jemalloc's with 4 KiB pages. */
	ASSERT_EQ(4096, st.kernel.page_size);
	ASSERT_LE(48 * MiB, self->T);
	ASSERT_EQ(0, st.kernel.pool[MEMMGR_POOL_STORAGE].used);
	ASSERT_EQ(0, st.kernel.pool[EX].used);
	ASSERT_EQ(0, st.kernel.waiters);
}

FIXTURE_TEARDOWN(alloc)
{
	memmgr_close(self->mm);
}

/*
 * Around every class boundary from 1 byte to 8 MiB (n - 1, n, n + 1 for
 * each class n): the usable size is the class, the alignment the class's,
 * and objects do not overlap (every usable byte written, then checked
 * with all of them live).  Classes up to 64 KiB are live all at once; each
 * larger class's three objects are live together in an exec id of their
 * own, released afterwards so that the reserve holds them.
 */
TEST_F_TIMEOUT(alloc, size_classes, 300)
{
	struct obj small[3 * NR_CLASSES], big[3];
	size_t cls[NR_CLASSES], n = 8;
	uint64_t freed, c;
	int i, j, k, nr = 0, ns = 0;

	while (n <= MEMMGR_MALLOC_MAX) {
		cls[nr++] = n;
		n = class_of(n + 1);
	}
	/* The list as jemalloc 5.3 has it. */
	ASSERT_EQ(NR_CLASSES, nr);
	EXPECT_EQ(8, cls[0]);
	EXPECT_EQ(48, cls[3]);
	EXPECT_EQ(80, cls[5]);
	EXPECT_EQ(160, cls[9]);
	EXPECT_EQ(14336, cls[35]);
	EXPECT_EQ(16384, cls[36]);
	EXPECT_EQ(20480, cls[37]);
	EXPECT_EQ(MEMMGR_MALLOC_MAX, cls[nr - 1]);
	EXPECT_EQ(7 * MiB, cls[nr - 2]);

	for (i = 0; i < nr && cls[i] <= 64 * KiB; i++) {
		for (j = -1; j <= 1; j++, ns++)
			take(_metadata, self->mm, 1, cls[i] + j, ns % 251 + 1,
			     &small[ns]);
	}
	/* 0 bytes: a unique object of the smallest class. */
	take(_metadata, self->mm, 1, 0, 0xfe, &small[ns++]);
	check_free(_metadata, self->mm, small, ns);

	for (k = 2; i < nr; i++, k++) {
		for (j = -1; j <= 1; j++)
			take(_metadata, self->mm, k, cls[i] + j, j + 2,
			     &big[j + 1]);
		check_free(_metadata, self->mm, big, 3);
		c = charged(self->mm);
		ASSERT_EQ(0, memmgr_release_exec(self->mm, k, &freed));
		EXPECT_LE(2 * cls[i] + class_of(cls[i] + 1), freed);
		EXPECT_EQ(c - freed, charged(self->mm));
	}
	ASSERT_EQ(0, memmgr_release_exec(self->mm, 1, &freed));
	EXPECT_EQ(0, charged(self->mm));
}

/* Growth within the usable size, shrink within the class: in place. */
TEST_F(alloc, realloc_in_place)
{
	static const size_t sizes[] = { 1, 100, 4000, 14336, 20000, 100000,
					MiB };
	unsigned char *p;
	size_t i, u, lo;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		p = memmgr_malloc(self->mm, 1, sizes[i]);
		ASSERT_NE(NULL, p);
		u = class_of(sizes[i]);
		lo = class_min(u);
		ASSERT_EQ(u, class_of(lo));
		ASSERT_EQ(u, memmgr_usable_size(self->mm, p));
		memset(p, 0x5a, u);
		EXPECT_EQ(p, memmgr_realloc(self->mm, 1, p, u));
		EXPECT_EQ(p, memmgr_realloc(self->mm, 1, p, lo))
			TH_LOG("%zu to %zu", u, lo);
		EXPECT_EQ(u, memmgr_usable_size(self->mm, p));
		EXPECT_TRUE(filled(p, lo, 0x5a));
		EXPECT_EQ(0, memmgr_free(self->mm, p));
	}
}

/*
 * Moves: small to large, large growth, shrink to a large and to a small
 * class, doubling from 16 B to 1 MiB; each keeps the first min(old, new)
 * bytes and has the new size's class.  A failed growth leaves the object.
 */
TEST_F(alloc, realloc_moves)
{
	unsigned char *p, *q;
	uint64_t freed = 1, c;
	size_t n;

	p = memmgr_malloc(self->mm, 1, 100);
	ASSERT_NE(NULL, p);
	memset(p, 0x11, 100);
	/* The exec id is of a new object only: 99 gets nothing. */
	q = memmgr_realloc(self->mm, 99, p, 100000);
	ASSERT_NE(NULL, q);
	EXPECT_TRUE(filled(q, 100, 0x11));
	EXPECT_EQ(class_of(100000), memmgr_usable_size(self->mm, q));
	EXPECT_EQ(0, (uintptr_t)q % align_of(class_of(100000)));
	EXPECT_EQ(0, memmgr_release_exec(self->mm, 99, &freed));
	EXPECT_EQ(0, freed);

	memset(q, 0x22, 100000);
	p = memmgr_realloc(self->mm, 1, q, 300000);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(filled(p, 100000, 0x22));
	EXPECT_EQ(class_of(300000), memmgr_usable_size(self->mm, p));
	memset(p, 0x33, 300000);
	q = memmgr_realloc(self->mm, 1, p, 50000);
	ASSERT_NE(NULL, q);
	EXPECT_TRUE(filled(q, 50000, 0x33));
	EXPECT_EQ(class_of(50000), memmgr_usable_size(self->mm, q));
	p = memmgr_realloc(self->mm, 1, q, 1000);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(filled(p, 1000, 0x33));
	EXPECT_EQ(1024, memmgr_usable_size(self->mm, p));

	/* Too large for the reserve: NULL, ENOMEM, the object as it was. */
	memset(p, 0x44, 1024);
	c = charged(self->mm);
	errno = 0;
	EXPECT_EQ(NULL, memmgr_realloc(self->mm, 1, p, self->T + 1));
	EXPECT_EQ(ENOMEM, errno);
	errno = 0;
	EXPECT_EQ(NULL, memmgr_realloc(self->mm, 1, p, SIZE_MAX / 2));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_EQ(1024, memmgr_usable_size(self->mm, p));
	EXPECT_TRUE(filled(p, 1024, 0x44));
	EXPECT_EQ(c, charged(self->mm));
	EXPECT_EQ(0, memmgr_free(self->mm, p));

	/* Doubling: each step keeps the bytes of the one before. */
	p = memmgr_malloc(self->mm, 1, 16);
	ASSERT_NE(NULL, p);
	memset(p, 4, 16);
	for (n = 32; n <= MiB; n *= 2) {
		q = memmgr_realloc(self->mm, 1, p, n);
		ASSERT_NE(NULL, q) TH_LOG("to %zu: %m", n);
		EXPECT_TRUE(filled(q, n / 2, __builtin_ctzl(n) - 1))
			TH_LOG("to %zu", n);
		EXPECT_EQ(n, memmgr_usable_size(self->mm, q));
		memset(q, __builtin_ctzl(n), n);
		p = q;
	}
	EXPECT_EQ(0, memmgr_free(self->mm, p));
}

/* realloc(NULL, n) is malloc() for the exec id; realloc(p, 0) frees. */
TEST_F(alloc, realloc_null_and_zero)
{
	uint64_t c, freed = 0;
	unsigned char *p;

	p = memmgr_realloc(self->mm, 5, NULL, 64);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(64, memmgr_usable_size(self->mm, p));
	memset(p, 0x66, 64);
	c = charged(self->mm);
	EXPECT_LE(MEMMGR_CHUNK_MIN, c);

	errno = EDOM;
	EXPECT_EQ(NULL, memmgr_realloc(self->mm, 5, p, 0));
	EXPECT_EQ(EDOM, errno);
	/* Freed to this thread's cache: the class's next object is it. */
	EXPECT_EQ(p, memmgr_malloc(self->mm, 5, 64));
	EXPECT_EQ(c, charged(self->mm));
	EXPECT_EQ(0, memmgr_free(self->mm, p));
	/* Exec id 5 held the chunk: its release takes it all back. */
	ASSERT_EQ(0, memmgr_release_exec(self->mm, 5, &freed));
	EXPECT_EQ(c, freed);
	EXPECT_EQ(0, charged(self->mm));
}

/*
 * Pointers of no object of the allocator: usable size 0; realloc NULL with
 * EINVAL, the memory untouched and its owner able to free it.
 */
TEST_F(alloc, foreign_pointers)
{
	unsigned char stack[64], *f[5];
	size_t len[5] = { 4096, 100, 3 * 4096, 100, sizeof(stack) };
	uint64_t c;
	int i;

	EXPECT_EQ(0, memmgr_usable_size(self->mm, NULL));
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1, 4096, 0, 0,
					  (void **)&f[0]));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 2, 100, 0, (void **)&f[1]));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 2, 3 * 4096, 0,
				       (void **)&f[2]));
	f[3] = malloc(100);
	ASSERT_NE(NULL, f[3]);
	f[4] = stack;
	for (i = 0; i < 5; i++)
		memset(f[i], 0x70 + i, len[i]);
	c = charged(self->mm);
	for (i = 0; i < 5; i++) {
		EXPECT_EQ(0, memmgr_usable_size(self->mm, f[i]))
			TH_LOG("pointer %d", i);
		errno = 0;
		EXPECT_EQ(NULL, memmgr_realloc(self->mm, 2, f[i], 200))
			TH_LOG("pointer %d", i);
		EXPECT_EQ(EINVAL, errno) TH_LOG("pointer %d", i);
		EXPECT_TRUE(filled(f[i], len[i], 0x70 + i));
	}
	EXPECT_EQ(c, charged(self->mm));
	/* The library's own entries are untouched: they free as before. */
	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, memmgr_free(self->mm, f[i]));
	free(f[3]);
}

/* calloc zeroes the usable bytes of memory reused after 0xff was in it. */
TEST_F(alloc, calloc_zeroes_reused)
{
	static const size_t sizes[] = { 1, 8, 64, 100, 1000, 4096, 14336,
					16384, 30000, 100000, MiB, 3 * MiB };
	unsigned char *p, *q;
	size_t i, u;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		u = class_of(sizes[i]);
		p = memmgr_malloc(self->mm, 1, sizes[i]);
		ASSERT_NE(NULL, p);
		memset(p, 0xff, u);
		EXPECT_EQ(0, memmgr_free(self->mm, p));
		q = memmgr_calloc(self->mm, 1, 1, sizes[i]);
		ASSERT_NE(NULL, q);
		/* A small class comes back from the thread's cache. */
		if (u <= 14336)
			EXPECT_EQ(p, q) TH_LOG("size %zu", sizes[i]);
		EXPECT_EQ(u, memmgr_usable_size(self->mm, q));
		EXPECT_TRUE(filled(q, u, 0)) TH_LOG("size %zu", sizes[i]);
		EXPECT_EQ(0, memmgr_free(self->mm, q));
	}
	/* n * size, not n or size. */
	p = memmgr_malloc(self->mm, 1, 3000);
	ASSERT_NE(NULL, p);
	memset(p, 0xff, 3072);
	EXPECT_EQ(0, memmgr_free(self->mm, p));
	q = memmgr_calloc(self->mm, 1, 3, 1000);
	EXPECT_EQ(p, q);
	EXPECT_EQ(3072, memmgr_usable_size(self->mm, q));
	EXPECT_TRUE(filled(q, 3072, 0));
	EXPECT_EQ(0, memmgr_free(self->mm, q));
}

/* An overflowing product or a size past the limit: ENOMEM, no charge. */
TEST_F(alloc, calloc_overflow)
{
	const size_t half = SIZE_MAX / 2 + 1;

	errno = 0;
	EXPECT_EQ(NULL, memmgr_calloc(self->mm, 1, half, 2));
	EXPECT_EQ(ENOMEM, errno);
	errno = 0;
	EXPECT_EQ(NULL, memmgr_calloc(self->mm, 1, 2, half));
	EXPECT_EQ(ENOMEM, errno);
	errno = 0;
	EXPECT_EQ(NULL, memmgr_calloc(self->mm, 1, SIZE_MAX, SIZE_MAX));
	EXPECT_EQ(ENOMEM, errno);
	errno = 0;
	EXPECT_EQ(NULL, memmgr_malloc(self->mm, 1, SIZE_MAX));
	EXPECT_EQ(ENOMEM, errno);
	/* Not even the exec id's first chunk. */
	EXPECT_EQ(0, charged(self->mm));
}

/*
 * malloc() does not zero: the last object freed comes back from the
 * thread's cache as it was left.  Memory fresh from the kernel is zero.
 */
TEST_F(alloc, reuse_not_zeroed)
{
	unsigned char *p, *q, *big;

	p = memmgr_malloc(self->mm, 1, 64);
	ASSERT_NE(NULL, p);
	big = memmgr_malloc(self->mm, 1, MiB);
	ASSERT_NE(NULL, big);
	EXPECT_TRUE(filled(p, 64, 0));
	EXPECT_TRUE(filled(big, MiB, 0));
	memset(p, 0xab, 64);
	EXPECT_EQ(0, memmgr_free(self->mm, p));
	q = memmgr_malloc(self->mm, 1, 64);
	EXPECT_EQ(p, q);
	EXPECT_TRUE(filled(q, 64, 0xab));
	EXPECT_EQ(0, memmgr_free(self->mm, q));
	EXPECT_EQ(0, memmgr_free(self->mm, big));
}

/*
 * Releasing an exec id with objects of every size live gives back all its
 * charge, in one go, and nothing of another exec id's; the exec id
 * allocates again afterwards, from fresh chunks.
 */
TEST_F_TIMEOUT(alloc, release_every_size, 120)
{
	static const size_t a_sizes[] = {
		0, 1, 8, 9, 16, 17, 100, 128, 1000, 4096, 4097, 10000, 14336,
		14337, 16384, 20000, 65536, 100000, 262145, MiB, 2 * MiB + 1,
		3 * MiB, MEMMGR_MALLOC_MAX,
	};
	static const size_t b_sizes[] = { 24, 3000, 40000, MiB, 5 * MiB };
	struct obj a[ARRAY_SIZE(a_sizes)];
	struct obj b[ARRAY_SIZE(b_sizes)];
	uint64_t before, after, freed = 1, sum = 0, c;
	unsigned char *p, *q;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(a); i++) {
		take(_metadata, self->mm, 1, a_sizes[i], i + 1, &a[i]);
		sum += a[i].size;
	}
	for (i = 0; i < ARRAY_SIZE(b); i++)
		take(_metadata, self->mm, 2, b_sizes[i], 0x80 + i, &b[i]);
	before = charged(self->mm);
	ASSERT_EQ(0, memmgr_release_exec(self->mm, 1, &freed));
	after = charged(self->mm);
	EXPECT_EQ(before - after, freed);
	EXPECT_LE(sum, freed);
	EXPECT_EQ(0, freed % 4096);
	EXPECT_LE(6 * MiB, after);
	for (i = 0; i < ARRAY_SIZE(b); i++)
		EXPECT_TRUE(filled(b[i].p, b[i].size, b[i].v));
	/* Exec id 1 holds nothing now. */
	ASSERT_EQ(0, memmgr_release_exec(self->mm, 1, &freed));
	EXPECT_EQ(0, freed);
	EXPECT_EQ(after, charged(self->mm));

	/* A new arena: fresh chunks, zero. */
	p = memmgr_malloc(self->mm, 1, 100);
	ASSERT_NE(NULL, p);
	q = memmgr_malloc(self->mm, 1, MiB);
	ASSERT_NE(NULL, q);
	EXPECT_TRUE(filled(p, 112, 0));
	EXPECT_TRUE(filled(q, MiB, 0));
	c = charged(self->mm);
	EXPECT_LT(after, c);
	ASSERT_EQ(0, memmgr_release_exec(self->mm, 2, &freed));
	EXPECT_EQ(after, freed);
	ASSERT_EQ(0, memmgr_release_exec(self->mm, 1, &freed));
	EXPECT_EQ(c - after, freed);
	EXPECT_EQ(0, charged(self->mm));
	EXPECT_EQ(0, stats(self->mm).kernel.pool[EX].used);
}

#define NR_THREADS	4
#define NR_OPS		3000
#define NR_LOCAL	32
#define QUEUE_ROOM	64
#define SHARED_ID	100

struct queue {
	pthread_mutex_t lock;
	struct obj o[QUEUE_ROOM];
	int n;
};

struct worker {
	struct memmgr *mm;
	struct queue *in, *out;
	pthread_barrier_t *barrier;
	unsigned int seed;
	uint64_t own_id;
	long allocs, frees, errors;
};

static bool queue_put(struct queue *q, const struct obj *o)
{
	bool ok;

	pthread_mutex_lock(&q->lock);
	ok = q->n < QUEUE_ROOM;
	if (ok)
		q->o[q->n++] = *o;
	pthread_mutex_unlock(&q->lock);
	return ok;
}

static bool queue_get(struct queue *q, struct obj *o)
{
	bool ok;

	pthread_mutex_lock(&q->lock);
	ok = q->n > 0;
	if (ok)
		*o = q->o[--q->n];
	pthread_mutex_unlock(&q->lock);
	return ok;
}

/* Check an object's bytes and free it, whichever thread allocated it. */
static void worker_free(struct worker *w, struct obj *o)
{
	if (!filled(o->p, o->size, o->v) || memmgr_free(w->mm, o->p))
		w->errors++;
	w->frees++;
	o->p = NULL;
}

/* Mostly small objects, some up to 16 KiB, a few up to 128 KiB. */
static size_t random_size(unsigned int *seed)
{
	int r = rand_r(seed) % 100;

	if (r < 70)
		return 1 + rand_r(seed) % 512;
	if (r < 95)
		return 1 + rand_r(seed) % (16 * KiB);
	return 1 + rand_r(seed) % (128 * KiB);
}

static void worker_alloc(struct worker *w, struct obj *o, int i)
{
	uint64_t id = rand_r(&w->seed) % 2 ? SHARED_ID : w->own_id;

	o->size = random_size(&w->seed);
	o->v = (unsigned char)(w->own_id * 61 + i) | 1;
	o->p = memmgr_malloc(w->mm, id, o->size);
	if (!o->p || memmgr_usable_size(w->mm, o->p) != class_of(o->size)) {
		w->errors++;
		o->p = NULL;
		return;
	}
	w->allocs++;
	memset(o->p, o->v, o->size);
}

/*
 * Objects for the shared exec id and the thread's own; of those it is done
 * with, half go to the next thread to check and free.  After the barrier
 * no one passes any more: each thread frees what is left to it.
 */
static void *worker_thread(void *arg)
{
	struct obj local[NR_LOCAL] = { { 0 } }, o;
	struct worker *w = arg;
	int i, k;

	for (i = 0; i < NR_OPS; i++) {
		if (i % 4 == 0 && queue_get(w->in, &o))
			worker_free(w, &o);
		k = rand_r(&w->seed) % NR_LOCAL;
		if (!local[k].p) {
			worker_alloc(w, &local[k], i);
			continue;
		}
		if (rand_r(&w->seed) % 2 && queue_put(w->out, &local[k]))
			local[k].p = NULL;
		else
			worker_free(w, &local[k]);
	}
	pthread_barrier_wait(w->barrier);
	while (queue_get(w->in, &o))
		worker_free(w, &o);
	for (k = 0; k < NR_LOCAL; k++)
		if (local[k].p)
			worker_free(w, &local[k]);
	return NULL;
}

/*
 * Objects from 32 KiB to 1 MiB are cached per thread and exec id too, two
 * of a class and 1 MiB in all: a freed one is the next of its class, as
 * it was (jemalloc itself would start a new one at another random cache
 * line of its first page).  Of two 1 MiB objects freed into an empty
 * cache, the first fills the 1 MiB and is the one handed back.
 */
TEST_F(alloc, large_cached)
{
	struct obj a, b, c;
	void *q;

	take(_metadata, self->mm, 6, 60000, 0x31, &a);
	ASSERT_EQ(65536, a.size);
	EXPECT_EQ(0, memmgr_free(self->mm, a.p));
	q = memmgr_malloc(self->mm, 6, 65536);
	EXPECT_EQ(a.p, q);
	EXPECT_TRUE(filled(q, a.size, 0x31));
	EXPECT_EQ(a.size, memmgr_usable_size(self->mm, q));
	/* Kept live: the cache holds nothing now. */

	take(_metadata, self->mm, 6, MiB, 0x32, &b);
	take(_metadata, self->mm, 6, MiB, 0x33, &c);
	EXPECT_EQ(0, memmgr_free(self->mm, b.p));
	EXPECT_EQ(0, memmgr_free(self->mm, c.p));
	a.p = memmgr_malloc(self->mm, 6, MiB - 4096);
	EXPECT_EQ(b.p, a.p);
	EXPECT_TRUE(filled(a.p, MiB, 0x32));
	EXPECT_EQ(0, memmgr_free(self->mm, a.p));
	EXPECT_EQ(0, memmgr_free(self->mm, q));
	ASSERT_EQ(0, memmgr_release_exec(self->mm, 6, NULL));
	EXPECT_EQ(0, charged(self->mm));
}

/*
 * Threads allocating for one shared exec id and their own, each freeing
 * objects of the others: every object keeps its bytes, every one is
 * freed, and releasing the exec ids takes back all the charge.
 */
TEST_F_TIMEOUT(alloc, threads_free_each_other, 300)
{
	struct queue queue[NR_THREADS];
	struct worker w[NR_THREADS];
	pthread_t thread[NR_THREADS];
	pthread_barrier_t barrier;
	uint64_t c, freed, sum = 0;
	long allocs = 0, frees = 0;
	int i;

	ASSERT_EQ(0, pthread_barrier_init(&barrier, NULL, NR_THREADS));
	for (i = 0; i < NR_THREADS; i++) {
		pthread_mutex_init(&queue[i].lock, NULL);
		queue[i].n = 0;
	}
	for (i = 0; i < NR_THREADS; i++) {
		w[i] = (struct worker){
			.mm = self->mm, .in = &queue[i],
			.out = &queue[(i + 1) % NR_THREADS],
			.barrier = &barrier, .seed = 1300 + i, .own_id = 1 + i,
		};
		ASSERT_EQ(0, pthread_create(&thread[i], NULL, worker_thread,
					    &w[i]));
	}
	for (i = 0; i < NR_THREADS; i++) {
		ASSERT_EQ(0, pthread_join(thread[i], NULL));
		EXPECT_EQ(0, w[i].errors) TH_LOG("thread %d", i);
		allocs += w[i].allocs;
		frees += w[i].frees;
	}
	EXPECT_EQ(allocs, frees);
	EXPECT_LT(NR_THREADS * NR_OPS / 4, allocs);
	for (i = 0; i < NR_THREADS; i++)
		EXPECT_EQ(0, queue[i].n);

	/* Nothing live, the chunks kept until the exec ids are released. */
	c = charged(self->mm);
	for (i = 0; i <= NR_THREADS; i++) {
		ASSERT_EQ(0, memmgr_release_exec(self->mm,
						 i ? (uint64_t)i : SHARED_ID,
						 &freed));
		EXPECT_LE(MEMMGR_CHUNK_MIN, freed) TH_LOG("exec id %d", i);
		sum += freed;
	}
	EXPECT_EQ(c, sum);
	EXPECT_EQ(0, charged(self->mm));
	EXPECT_EQ(0, stats(self->mm).kernel.pool[EX].used);
	pthread_barrier_destroy(&barrier);
}

/*
 * The pool full: a request for a new chunk is NULL with ENOMEM and charges
 * nothing; objects that fit in the exec id's chunks are still served; once
 * memory comes back the same request is granted.
 */
TEST_F(alloc, out_of_memory)
{
	uint64_t ca, c, held, freed = 0;
	unsigned char *p, *q;
	size_t big;

	p = memmgr_malloc(self->mm, 1, 100);
	ASSERT_NE(NULL, p);
	ca = charged(self->mm);
	/* More than every chunk of exec id 1 holds. */
	big = ca + 1;
	held = fill_pool(_metadata, self->mm, 9);
	c = charged(self->mm);
	EXPECT_EQ(ca + held, c);

	errno = 0;
	EXPECT_EQ(NULL, memmgr_malloc(self->mm, 1, big));
	EXPECT_EQ(ENOMEM, errno);
	errno = 0;
	EXPECT_EQ(NULL, memmgr_malloc(self->mm, 2, 1));
	EXPECT_EQ(ENOMEM, errno);
	errno = 0;
	EXPECT_EQ(NULL, memmgr_calloc(self->mm, 2, 10, 10));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_EQ(c, charged(self->mm));

	/* Room in exec id 1's chunk: no kernel needed. */
	q = memmgr_malloc(self->mm, 1, 64 * KiB);
	ASSERT_NE(NULL, q);
	memset(q, 0x5c, 64 * KiB);
	EXPECT_EQ(0, memmgr_free(self->mm, p));
	p = memmgr_malloc(self->mm, 1, 1000);
	ASSERT_NE(NULL, p);
	errno = 0;
	EXPECT_EQ(NULL, memmgr_realloc(self->mm, 1, q, big));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_TRUE(filled(q, 64 * KiB, 0x5c));
	EXPECT_EQ(c, charged(self->mm));

	ASSERT_EQ(0, memmgr_release_exec(self->mm, 9, &freed));
	EXPECT_EQ(held, freed);
	p = memmgr_malloc(self->mm, 1, big);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(class_of(big), memmgr_usable_size(self->mm, p));
	EXPECT_LE(ca + class_of(big), charged(self->mm));
	q = memmgr_realloc(self->mm, 1, q, big);
	ASSERT_NE(NULL, q);
	EXPECT_TRUE(filled(q, 64 * KiB, 0x5c));
}

/* A chunk request waits the handle's timeout, then fails: ENOMEM. */
TEST_F(alloc, timeout_honoured)
{
	struct memmgr_lib_stats st;
	struct timespec t0;
	uint64_t ca, c, held;
	long ms;
	void *p;

	p = memmgr_malloc(self->mm, 1, 100);
	ASSERT_NE(NULL, p);
	ca = charged(self->mm);
	fill_pool(_metadata, self->mm, 9);
	st = stats(self->mm);
	c = st.kernel.client_used[EX];
	held = st.kernel.pool[EX].held;
	ASSERT_EQ(0, memmgr_set_timeout(self->mm, 300));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	errno = 0;
	EXPECT_EQ(NULL, memmgr_malloc(self->mm, 1, ca + 1));
	EXPECT_EQ(ENOMEM, errno);
	ms = ms_since(&t0);
	EXPECT_LE(250, ms);
	EXPECT_GE(30000, ms);
	st = stats(self->mm);
	/* The kernel held it, and charged nothing. */
	EXPECT_LT(held, st.kernel.pool[EX].held);
	EXPECT_EQ(c, st.kernel.client_used[EX]);
	EXPECT_EQ(0, st.kernel.waiters);
}

struct waiter {
	struct memmgr *mm;
	size_t size;
	void *ptr;
	int err;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;

	w->ptr = memmgr_malloc(w->mm, 1, w->size);
	w->err = errno;
	return NULL;
}

/*
 * With MEMMGR_WAIT_FOREVER a chunk request waits while the pool is full
 * and is granted when another thread releases what filled it.
 */
TEST_F_TIMEOUT(alloc, wait_forever_granted, 60)
{
	struct waiter w = { .mm = self->mm };
	uint64_t ca, held, freed = 0;
	pthread_t thread;
	void *p;

	p = memmgr_malloc(self->mm, 1, 100);
	ASSERT_NE(NULL, p);
	ca = charged(self->mm);
	w.size = ca + 1;
	held = fill_pool(_metadata, self->mm, 9);
	ASSERT_EQ(0, memmgr_set_timeout(self->mm, MEMMGR_WAIT_FOREVER));
	ASSERT_EQ(0, pthread_create(&thread, NULL, wait_thread, &w));
	ASSERT_EQ(0, mm_wait_waiters(memmgr_fd(self->mm), 1));
	EXPECT_EQ(ca + held, charged(self->mm));
	ASSERT_EQ(0, memmgr_release_exec(self->mm, 9, &freed));
	EXPECT_EQ(held, freed);
	ASSERT_EQ(0, pthread_join(thread, NULL));
	ASSERT_NE(NULL, w.ptr) TH_LOG("errno %d", w.err);
	EXPECT_EQ(class_of(w.size), memmgr_usable_size(self->mm, w.ptr));
	EXPECT_TRUE(filled(w.ptr, w.size, 0));
	memset(w.ptr, 0x3e, w.size);
	EXPECT_LE(ca + class_of(w.size), charged(self->mm));
	EXPECT_EQ(0, memmgr_free(self->mm, w.ptr));
	EXPECT_EQ(0, memmgr_free(self->mm, p));
}

/*
 * Threads that come and go on one exec id strand nothing: each gives its
 * caches (libmemmgr's and jemalloc's) back when it exits, so the next one
 * reuses the same memory and the exec id's charge stays what the first
 * thread left.  (A jemalloc tcache left behind per thread would hold up
 * to 20 objects of each class: 16 KiB ones here, 320 KiB a thread.)
 */
#define CHURN_THREADS	200
#define CHURN_ID	300
#define CHURN_STACK	(128 * KiB)

static void *churn_thread(void *arg)
{
	struct memmgr *mm = arg;
	void *big[16], *small[64];
	long bad = 0;
	int i;

	for (i = 0; i < 16; i++) {
		big[i] = memmgr_malloc(mm, CHURN_ID, 16 * KiB);
		if (big[i])
			memset(big[i], i, 16 * KiB);
		bad += !big[i];
	}
	for (i = 0; i < 64; i++) {
		small[i] = memmgr_malloc(mm, CHURN_ID, 64);
		if (small[i])
			memset(small[i], i, 64);
		bad += !small[i];
	}
	for (i = 0; i < 16; i++)
		bad += memmgr_free(mm, big[i]) != 0;
	for (i = 0; i < 64; i++)
		bad += memmgr_free(mm, small[i]) != 0;
	return (void *)bad;
}

TEST_F_TIMEOUT(alloc, threads_come_and_go, 300)
{
	uint64_t first = 0, freed;
	pthread_attr_t attr;
	char *stacks;
	pthread_t th;
	void *bad;
	int i;

	/*
	 * A stack (and so thread-local storage) of its own for each thread,
	 * never reused: glibc would give a new thread the last one's, and
	 * with it whatever that thread left behind.
	 */
	stacks = malloc(CHURN_THREADS * CHURN_STACK);
	ASSERT_NE(NULL, stacks);
	for (i = 0; i < CHURN_THREADS; i++) {
		ASSERT_EQ(0, pthread_attr_init(&attr));
		ASSERT_EQ(0, pthread_attr_setstack(&attr,
						   stacks + i * CHURN_STACK,
						   CHURN_STACK));
		ASSERT_EQ(0, pthread_create(&th, &attr, churn_thread,
					    self->mm));
		pthread_attr_destroy(&attr);
		ASSERT_EQ(0, pthread_join(th, &bad));
		ASSERT_EQ(NULL, bad) TH_LOG("thread %d", i);
		if (!i)
			first = charged(self->mm);
		ASSERT_EQ(first, charged(self->mm)) TH_LOG("thread %d", i);
	}
	/* 16 objects of 16 KiB (and a page each) fit in the first chunk. */
	EXPECT_EQ(MEMMGR_CHUNK_MIN, first);
	ASSERT_EQ(0, memmgr_release_exec(self->mm, CHURN_ID, &freed));
	EXPECT_EQ(first, freed);
	EXPECT_EQ(0, charged(self->mm));
	free(stacks);
}

/*
 * MALLOC_CONF (read by Debian's jemalloc, and so by libmemmgr's copy)
 * cannot take away what the extent hooks rely on: with retain off and
 * decay on, a child works as without them.  The child is this program
 * again, run by conf_child() before the harness starts.
 */
#define CONF_CHILD	"MEMMGR_MALLOC_TEST_CONF_CHILD"
#define CONF_ID		400

static int conf_child_run(void)
{
	struct memmgr_lib_stats st;
	struct memmgr *mm;
	uint64_t freed;
	void *p, *q;

	if (memmgr_open(&mm, 0))
		return 2;
	p = memmgr_malloc(mm, CONF_ID, 100);
	q = memmgr_malloc(mm, CONF_ID, 3 * MiB);
	if (!p || !q || memmgr_get_stats(mm, &st))
		return 3;
	memset(q, 1, 3 * MiB);
	/* The first chunk (2 MiB), then one for 3 MiB + a page (3.5 MiB). */
	if (st.kernel.client_used[EX] != MEMMGR_CHUNK_MIN + 3584 * KiB)
		return 4;
	if (memmgr_free(mm, q) || memmgr_free(mm, p))
		return 5;
	/* Decay off: nothing went back before the release. */
	if (memmgr_release_exec(mm, CONF_ID, &freed) ||
	    freed != MEMMGR_CHUNK_MIN + 3584 * KiB)
		return 6;
	memmgr_close(mm);
	return 0;
}

__attribute__((constructor)) static void conf_child(void)
{
	if (getenv(CONF_CHILD))
		_exit(conf_child_run());
}

TEST_F(alloc, malloc_conf_ignored)
{
	char *argv[] = { "memmgr_malloc_test", NULL };
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		setenv(CONF_CHILD, "1", 1);
		setenv("MALLOC_CONF", "retain:false,dirty_decay_ms:0", 1);
		execv("/proc/self/exe", argv);
		_exit(1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_HARNESS_MAIN
