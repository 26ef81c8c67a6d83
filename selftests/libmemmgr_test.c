// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests of libmemmgr, run in a VM against the loaded module: memory
 * of both pools by pointer, lookup and eviction, release by id, small
 * objects packed into chunks, empty chunks retained (the cap, trim,
 * release, pressure), the library's figures against the kernel's, the
 * original design's names, many threads on one handle, and a release
 * racing allocations while the kernel reuses freed mmap offsets; pins by
 * handle, batches, retag, page ids of several caches, the figures page.
 *
 * The tests of fixture "lib" run twice: on a handle with the window, the
 * state area and the figures page (variant "fast"), and on one opened
 * MEMMGR_OPEN_NO_FAST (variant "legacy": a mapping per buffer, pins and
 * figures by ioctl, batches as single calls, as with an older module).
 * Fixture "fast" checks what only the first has: pins and figures with no
 * system call at all (a seccomp filter fails every ioctl), the state
 * words themselves, the pointers in the window.
 *
 * Every figure is worked out here from what the kernel reports of the
 * reserve (total, quotas, page size); the tests need a reserve of at least
 * 64 pages (batch_many_calls: MEMMGR_BATCH_MAX + 6 pages of storage) and
 * an otherwise idle device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "libmemmgr.h"

#include "kselftest_harness.h"

#define ST MEMMGR_POOL_STORAGE
#define EX MEMMGR_POOL_EXEC

static struct memmgr_lib_stats stats(struct memmgr *mm)
{
	struct memmgr_lib_stats st;

	if (memmgr_get_stats(mm, &st))
		memset(&st, 0xff, sizeof(st));
	return st;
}

static uint64_t used(struct memmgr *mm, int pool)
{
	return stats(mm).kernel.pool[pool].used;
}

static int all_bytes(const void *p, size_t n, unsigned char v)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != v)
			return 0;
	return 1;
}

/* Wait (at most 10 s) until the device holds @n requests. */
static int wait_waiters(struct memmgr *mm, uint32_t n)
{
	int i;

	for (i = 0; i < 10000; i++) {
		if (stats(mm).kernel.waiters == n)
			return 0;
		usleep(1000);
	}
	return -1;
}

static uintptr_t page_of(const void *p, uint64_t pg)
{
	return (uintptr_t)p & ~(uintptr_t)(pg - 1);
}

/*
 * The chunk of a size class (a power of two): the larger of a page and 16
 * objects.  With 4 KiB pages: 4 KiB up to 256 B, then 8, 16, 32, 64 KiB.
 */
static uint64_t chunk_of(uint64_t cls, uint64_t pg)
{
	return 16 * cls > pg ? 16 * cls : pg;
}

FIXTURE(lib) {
	struct memmgr *mm;
	uint64_t pg;		/* page size */
	uint64_t T, S, E;	/* bytes */
	struct memmgr_lib_stats st0;	/* at the start of the test */
};

FIXTURE_VARIANT(lib) {
	unsigned int open_flags;	/* of every handle of the test */
	unsigned int features;		/* what memmgr_features() says */
	bool fast;
};

#define ALL_FEATURES	(MEMMGR_FEATURE_WINDOW | MEMMGR_FEATURE_STATE | \
			 MEMMGR_FEATURE_FIGURES | MEMMGR_FEATURE_BATCH)

FIXTURE_VARIANT_ADD(lib, fast) {
	.open_flags = 0,
	.features = ALL_FEATURES,
	.fast = true,
};

FIXTURE_VARIANT_ADD(lib, legacy) {
	.open_flags = MEMMGR_OPEN_NO_FAST,
	.features = 0,
	.fast = false,
};

/* A kernel counter's change since the test started. */
#define DELTA(now, p, field) \
	((now).kernel.pool[p].field - self->st0.kernel.pool[p].field)

/* Every figure of the library is zero: nothing held, nothing counted. */
#define EXPECT_LIB_IDLE(st) do {					\
	EXPECT_EQ(0, (st).requested[ST] + (st).requested[EX]);		\
	EXPECT_EQ(0, (st).charged[ST] + (st).charged[EX]);		\
	EXPECT_EQ(0, (st).buffers[ST] + (st).buffers[EX]);		\
	EXPECT_EQ(0, (st).small_objects);				\
	EXPECT_EQ(0, (st).small_requested);				\
	EXPECT_EQ(0, (st).small_chunks);				\
	EXPECT_EQ(0, (st).small_charged);				\
	EXPECT_EQ(0, (st).small_retained);				\
	EXPECT_EQ(0, (st).kernel.client_used[ST]);			\
	EXPECT_EQ(0, (st).kernel.client_used[EX]);			\
} while (0)

FIXTURE_SETUP(lib)
{
	struct memmgr_lib_stats st;
	int ret;

	ret = memmgr_open(&self->mm, variant->open_flags);
	if (ret == -ENODEV)
		SKIP(return, "memmgr.ko is not loaded");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(variant->features, memmgr_features(self->mm));
	ASSERT_EQ(0, memmgr_get_stats(self->mm, &st));
	self->st0 = st;
	self->pg = st.kernel.page_size;
	self->T = st.kernel.total;
	self->S = st.kernel.pool[ST].quota;
	self->E = st.kernel.pool[EX].quota;
	ASSERT_EQ(sysconf(_SC_PAGESIZE), self->pg);
	ASSERT_LE(64 * self->pg, self->T);
	/* Classes up to a page (chunk_of() knows no other case). */
	ASSERT_LE(MEMMGR_SMALL_MAX, self->pg);
	ASSERT_EQ(0, self->pg & (self->pg - 1));
	/* Each test starts on an idle device and an idle handle. */
	ASSERT_EQ(0, st.kernel.pool[ST].used);
	ASSERT_EQ(0, st.kernel.pool[EX].used);
	ASSERT_EQ(0, st.kernel.waiters);
	EXPECT_LIB_IDLE(st);
}

FIXTURE_TEARDOWN(lib)
{
	memmgr_close(self->mm);
}

/* Execution memory above the small size: whole pages, mapped, zeroed. */
TEST_F(lib, exec_alloc_free)
{
	struct memmgr_lib_stats st;
	size_t size = 3 * self->pg + 1;
	unsigned char *p;

	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, size, 0, (void **)&p));
	EXPECT_EQ(0, (uintptr_t)p % self->pg);
	EXPECT_TRUE(all_bytes(p, 4 * self->pg, 0));
	memset(p, 0x3c, 4 * self->pg);
	EXPECT_TRUE(all_bytes(p, 4 * self->pg, 0x3c));
	st = stats(self->mm);
	EXPECT_EQ(4 * self->pg, st.kernel.pool[EX].used);
	EXPECT_EQ(4 * self->pg, st.kernel.client_used[EX]);
	EXPECT_EQ(size, st.requested[EX]);
	EXPECT_EQ(4 * self->pg, st.charged[EX]);
	EXPECT_EQ(1, st.buffers[EX]);
	EXPECT_EQ(0, st.small_objects);
	EXPECT_EQ(0, st.small_chunks);

	/* Not the start of an allocation: refused, nothing freed. */
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, p + self->pg));
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, p + 16));
	EXPECT_EQ(4 * self->pg, used(self->mm, EX));
	ASSERT_EQ(0, memmgr_free(self->mm, p));
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.pool[EX].used);
	EXPECT_EQ(1, DELTA(st, EX, frees));
	EXPECT_LIB_IDLE(st);
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, p));
	EXPECT_EQ(0, memmgr_free(self->mm, NULL));
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, &st));
}

/* Storage memory: pinned from the start, found by page id, freed. */
TEST_F(lib, storage_alloc_lookup_free)
{
	struct memmgr_lib_stats st;
	unsigned char *p;
	void *q = NULL;
	size_t size = 0;

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 9, self->pg + 100, 0, 0,
					  (void **)&p));
	EXPECT_TRUE(all_bytes(p, 2 * self->pg, 0));
	memset(p, 0x77, 2 * self->pg);
	st = stats(self->mm);
	EXPECT_EQ(2 * self->pg, st.kernel.pool[ST].used);
	EXPECT_EQ(2 * self->pg, st.kernel.pool[ST].pinned);
	EXPECT_EQ(self->pg + 100, st.requested[ST]);
	EXPECT_EQ(2 * self->pg, st.charged[ST]);
	EXPECT_EQ(1, st.buffers[ST]);

	ASSERT_EQ(0, memmgr_lookup_page(self->mm, 9, &q, &size));
	EXPECT_EQ(p, q);
	EXPECT_EQ(2 * self->pg, size);
	EXPECT_EQ(0, memmgr_lookup_page(self->mm, 9, NULL, NULL));
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 10, &q, &size));
	EXPECT_EQ(-EEXIST, memmgr_alloc_storage(self->mm, 9, 1, 0, 0, &q));

	ASSERT_EQ(0, memmgr_free(self->mm, p));
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 9, NULL, NULL));
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.pool[ST].used);
	EXPECT_LIB_IDLE(st);
	/* The page id is free again. */
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 9, 1, 0, 0, &q));
	EXPECT_EQ(self->pg, used(self->mm, ST));
}

/* Unpinned from the start; pins count. */
TEST_F(lib, storage_pins)
{
	void *p;

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 3, 2 * self->pg, 0,
					  MEMMGR_ALLOC_UNPINNED, &p));
	EXPECT_EQ(0, stats(self->mm).kernel.pool[ST].pinned);
	EXPECT_EQ(0, memmgr_pin(self->mm, 3));
	EXPECT_EQ(0, memmgr_pin(self->mm, 3));
	EXPECT_EQ(2 * self->pg, stats(self->mm).kernel.pool[ST].pinned);
	EXPECT_EQ(0, memmgr_unpin(self->mm, 3));
	EXPECT_EQ(2 * self->pg, stats(self->mm).kernel.pool[ST].pinned);
	EXPECT_EQ(0, memmgr_unpin(self->mm, 3));
	EXPECT_EQ(0, stats(self->mm).kernel.pool[ST].pinned);
	EXPECT_EQ(-EINVAL, memmgr_unpin(self->mm, 3));
	EXPECT_EQ(-ENOENT, memmgr_pin(self->mm, 4));
	EXPECT_EQ(-ENOENT, memmgr_unpin(self->mm, 4));
}

/* An evicted buffer: lookup says ESTALE and gives the pointer to free. */
TEST_F(lib, lookup_estale_after_eviction)
{
	struct memmgr_lib_stats st;
	void *p, *q, *r = NULL;
	size_t size = 0;

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1, self->S, 0,
					  MEMMGR_ALLOC_UNPINNED, &p));
	memset(p, 0x5a, self->S);
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 2, self->S, 0, 0, &q));
	EXPECT_TRUE(all_bytes(q, self->S, 0));
	st = stats(self->mm);
	EXPECT_EQ(1, DELTA(st, ST, evictions));
	EXPECT_EQ(self->S, st.kernel.pool[ST].used);
	EXPECT_EQ(self->S, st.kernel.client_used[ST]);
	/* The library counts the stale buffer until it is freed. */
	EXPECT_EQ(2 * self->S, st.charged[ST]);
	EXPECT_EQ(2, st.buffers[ST]);

	EXPECT_EQ(-ESTALE, memmgr_lookup_page(self->mm, 1, &r, &size));
	EXPECT_EQ(p, r);
	EXPECT_EQ(self->S, size);
	EXPECT_EQ(-ESTALE, memmgr_pin(self->mm, 1));
	EXPECT_EQ(-ESTALE, memmgr_unpin(self->mm, 1));
	EXPECT_EQ(0, memmgr_lookup_page(self->mm, 2, &r, NULL));
	EXPECT_EQ(q, r);

	ASSERT_EQ(0, memmgr_free(self->mm, p));
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 1, NULL, NULL));
	st = stats(self->mm);
	EXPECT_EQ(self->S, st.charged[ST]);
	EXPECT_EQ(1, st.buffers[ST]);
	EXPECT_EQ(self->S, st.kernel.pool[ST].used);
}

/* Eviction notices: poll() on memmgr_fd(), then memmgr_evicted(). */
TEST_F(lib, eviction_notices)
{
	struct pollfd pfd = { .fd = memmgr_fd(self->mm), .events = POLLPRI };
	uint64_t ids[4] = { 0 }, pending = 9;
	void *p, *q;

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 7, self->S / 2, 0,
					  MEMMGR_ALLOC_UNPINNED, &p));
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 8, self->S - self->S / 2,
					  0, MEMMGR_ALLOC_UNPINNED, &q));
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	EXPECT_EQ(0, memmgr_evicted(self->mm, ids, 4, &pending));
	EXPECT_EQ(0, pending);
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 9, self->S, 0, 0, &p));
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLPRI, pfd.revents & POLLPRI);
	EXPECT_EQ(2, memmgr_evicted(self->mm, ids, 4, &pending));
	EXPECT_EQ(0, pending);
	/* Both went; in some order. */
	EXPECT_EQ(7 + 8, ids[0] + ids[1]);
	EXPECT_EQ(0, poll(&pfd, 1, 0));
}

/*
 * One page of 16-byte objects is exactly one chunk.  Emptied, it is kept
 * (retained, still charged by the kernel) and reused before asking the
 * kernel again; memmgr_trim() gives it back.
 */
TEST_F(lib, small_objects_pack_into_one_page)
{
	size_t n = self->pg / 16, i, j;
	struct memmgr_lib_stats st;
	unsigned char **obj;
	void *extra;

	obj = calloc(n, sizeof(*obj));
	ASSERT_NE(NULL, obj);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 3, 16, 0,
					       (void **)&obj[i]));
		EXPECT_EQ(0, (uintptr_t)obj[i] % 16);
		EXPECT_EQ(page_of(obj[0], self->pg),
			  page_of(obj[i], self->pg));
		EXPECT_TRUE(all_bytes(obj[i], 16, 0));
		memset(obj[i], (int)(i & 0xff), 16);
	}
	/* Each object kept its own bytes: none overlaps another. */
	for (i = 0; i < n; i++)
		EXPECT_TRUE(all_bytes(obj[i], 16, i & 0xff));
	st = stats(self->mm);
	EXPECT_EQ(self->pg, st.kernel.pool[EX].used);
	EXPECT_EQ(self->pg, st.kernel.client_used[EX]);
	EXPECT_EQ(1, DELTA(st, EX, allocs));
	EXPECT_EQ(n, st.small_objects);
	EXPECT_EQ(16 * n, st.small_requested);
	EXPECT_EQ(1, st.small_chunks);
	EXPECT_EQ(self->pg, st.small_charged);
	EXPECT_EQ(0, st.small_retained);
	EXPECT_EQ(16 * n, st.requested[EX]);
	EXPECT_EQ(self->pg, st.charged[EX]);
	EXPECT_EQ(1, st.buffers[EX]);

	/* One more needs a second chunk; freed, that chunk is retained. */
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 3, 16, 0, &extra));
	EXPECT_NE(page_of(obj[0], self->pg), page_of(extra, self->pg));
	EXPECT_EQ(2 * self->pg, used(self->mm, EX));
	EXPECT_EQ(2, stats(self->mm).small_chunks);
	ASSERT_EQ(0, memmgr_free(self->mm, extra));
	st = stats(self->mm);
	EXPECT_EQ(2 * self->pg, st.kernel.pool[EX].used);
	EXPECT_EQ(2 * self->pg, st.kernel.client_used[EX]);
	EXPECT_EQ(0, DELTA(st, EX, frees));
	EXPECT_EQ(2, st.small_chunks);
	EXPECT_EQ(2 * self->pg, st.small_charged);
	EXPECT_EQ(self->pg, st.small_retained);
	EXPECT_EQ(2 * self->pg, st.charged[EX]);
	EXPECT_EQ(2, st.buffers[EX]);
	EXPECT_EQ(n, st.small_objects);
	EXPECT_EQ(16 * n, st.small_requested);

	/* Freeing all: both chunks kept, nothing goes back, nothing live. */
	for (i = 0, j = n / 2; i < n; i++) {
		if (i != j)
			ASSERT_EQ(0, memmgr_free(self->mm, obj[i]));
	}
	st = stats(self->mm);
	EXPECT_EQ(1, st.small_objects);
	EXPECT_EQ(16, st.small_requested);
	EXPECT_EQ(self->pg, st.small_retained);
	ASSERT_EQ(0, memmgr_free(self->mm, obj[j]));
	st = stats(self->mm);
	EXPECT_EQ(2 * self->pg, st.kernel.pool[EX].used);
	EXPECT_EQ(2 * self->pg, st.kernel.client_used[EX]);
	EXPECT_EQ(0, DELTA(st, EX, frees));
	EXPECT_EQ(0, st.small_objects);
	EXPECT_EQ(0, st.small_requested);
	EXPECT_EQ(0, st.requested[EX]);
	EXPECT_EQ(2, st.small_chunks);
	EXPECT_EQ(2 * self->pg, st.small_charged);
	EXPECT_EQ(2 * self->pg, st.small_retained);
	EXPECT_EQ(2 * self->pg, st.charged[EX]);

	/* Reused before the kernel is asked, and zeroed again. */
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 3, 16, 0,
					       (void **)&obj[i]));
		EXPECT_TRUE(all_bytes(obj[i], 16, 0));
	}
	st = stats(self->mm);
	EXPECT_EQ(2, DELTA(st, EX, allocs));
	EXPECT_EQ(self->pg, st.small_retained);
	EXPECT_EQ(n, st.small_objects);
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, memmgr_free(self->mm, obj[i]));

	/* memmgr_trim() gives back every retained chunk, once. */
	ASSERT_EQ(0, memmgr_trim(self->mm));
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.pool[EX].used);
	EXPECT_EQ(2, DELTA(st, EX, frees));
	EXPECT_LIB_IDLE(st);
	ASSERT_EQ(0, memmgr_trim(self->mm));
	EXPECT_EQ(2, DELTA(stats(self->mm), EX, frees));
	free(obj);
}

/*
 * Each size class has its own chunks (chunk_of() bytes), objects are
 * aligned to their class, and a request just above MEMMGR_SMALL_MAX takes
 * whole pages.
 */
TEST_F(lib, size_classes)
{
	uint64_t requested = 0, chunks = 0;
	struct memmgr_lib_stats st;
	size_t c, nr = 0;
	void *p, *big;

	/* With 4 KiB pages: the sizes the documentation states. */
	if (self->pg == 4096) {
		EXPECT_EQ(4096, chunk_of(16, self->pg));
		EXPECT_EQ(4096, chunk_of(256, self->pg));
		EXPECT_EQ(8192, chunk_of(512, self->pg));
		EXPECT_EQ(16384, chunk_of(1024, self->pg));
		EXPECT_EQ(32768, chunk_of(2048, self->pg));
		EXPECT_EQ(65536, chunk_of(4096, self->pg));
	}
	for (c = MEMMGR_SMALL_MIN; c <= MEMMGR_SMALL_MAX; c *= 2) {
		size_t size = c / 2 + 1;	/* the smallest of class c */

		ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 4, size, 0, &p));
		EXPECT_EQ(0, (uintptr_t)p % c);
		EXPECT_EQ(chunks + chunk_of(c, self->pg), used(self->mm, EX));
		requested += size;
		chunks += chunk_of(c, self->pg);
		nr++;
	}
	/* Classes 16..4096: 9 chunks; 5 pages, then 2 + 4 + 8 + 16. */
	EXPECT_EQ(9, nr);
	if (self->pg == 4096)
		EXPECT_EQ(35 * self->pg, chunks);
	st = stats(self->mm);
	EXPECT_EQ(chunks, st.kernel.pool[EX].used);
	EXPECT_EQ(chunks, st.kernel.client_used[EX]);
	EXPECT_EQ(nr, DELTA(st, EX, allocs));
	EXPECT_EQ(nr, st.small_chunks);
	EXPECT_EQ(nr, st.small_objects);
	/* 9 + 17 + 33 + 65 + 129 + 257 + 513 + 1025 + 2049 */
	EXPECT_EQ(4097, requested);
	EXPECT_EQ(4097, st.small_requested);
	EXPECT_EQ(4097, st.requested[EX]);
	EXPECT_EQ(chunks, st.small_charged);
	EXPECT_EQ(chunks, st.charged[EX]);
	EXPECT_EQ(0, st.small_retained);

	/* A chunk of the top class holds 16 objects (one is there). */
	for (c = 1; c < 16; c++)
		ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 4, MEMMGR_SMALL_MAX,
					       0, &p));
	EXPECT_EQ(nr, stats(self->mm).small_chunks);
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 4, MEMMGR_SMALL_MAX, 0, &p));
	EXPECT_EQ(nr + 1, stats(self->mm).small_chunks);
	chunks += chunk_of(MEMMGR_SMALL_MAX, self->pg);
	EXPECT_EQ(chunks, used(self->mm, EX));

	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 4, MEMMGR_SMALL_MAX + 1, 0,
				       &big));
	EXPECT_EQ(0, (uintptr_t)big % self->pg);
	st = stats(self->mm);
	EXPECT_EQ(nr + 1, st.small_chunks);
	EXPECT_EQ(nr + 2, st.buffers[EX]);
	EXPECT_EQ(chunks + 2 * self->pg, st.kernel.pool[EX].used);
	EXPECT_EQ(chunks + 2 * self->pg, st.charged[EX]);
	EXPECT_EQ(4097 + 16 * MEMMGR_SMALL_MAX + MEMMGR_SMALL_MAX + 1,
		  st.requested[EX]);
}

/*
 * The top class: 16 objects of 4096 bytes in one 64 KiB chunk, one after
 * the other, page-aligned, zeroed again when reused.
 */
TEST_F(lib, top_class_chunk)
{
	uint64_t chunk = chunk_of(MEMMGR_SMALL_MAX, self->pg);
	size_t n = chunk / MEMMGR_SMALL_MAX, i;
	struct memmgr_lib_stats st;
	unsigned char *obj[16], *more;

	ASSERT_EQ(16, n);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 2, MEMMGR_SMALL_MAX, 0,
					       (void **)&obj[i]));
		EXPECT_EQ(obj[0] + i * MEMMGR_SMALL_MAX, obj[i]);
		EXPECT_TRUE(all_bytes(obj[i], MEMMGR_SMALL_MAX, 0));
		memset(obj[i], 0xa5, MEMMGR_SMALL_MAX);
	}
	EXPECT_EQ(0, (uintptr_t)obj[0] % self->pg);
	st = stats(self->mm);
	EXPECT_EQ(chunk, st.kernel.pool[EX].used);
	EXPECT_EQ(1, DELTA(st, EX, allocs));
	EXPECT_EQ(1, st.small_chunks);
	EXPECT_EQ(chunk, st.small_charged);
	EXPECT_EQ(16 * MEMMGR_SMALL_MAX, st.small_requested);
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 2, 3000, 0, (void **)&more));
	EXPECT_EQ(2 * chunk, used(self->mm, EX));
	EXPECT_EQ(2, DELTA(stats(self->mm), EX, allocs));

	/* Freed and taken again: the same slot, zeroed. */
	ASSERT_EQ(0, memmgr_free(self->mm, obj[5]));
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, obj[5]));
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, obj[6] + 16));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 2, MEMMGR_SMALL_MAX / 2 + 1, 0,
				       (void **)&obj[5]));
	EXPECT_EQ(obj[4] + MEMMGR_SMALL_MAX, obj[5]);
	EXPECT_TRUE(all_bytes(obj[5], MEMMGR_SMALL_MAX, 0));
	EXPECT_TRUE(all_bytes(obj[6], MEMMGR_SMALL_MAX, 0xa5));
	st = stats(self->mm);
	EXPECT_EQ(15 * MEMMGR_SMALL_MAX + MEMMGR_SMALL_MAX / 2 + 1 + 3000,
		  st.small_requested);
	EXPECT_EQ(17, st.small_objects);
	EXPECT_EQ(2 * chunk, st.kernel.pool[EX].used);
}

/* The library reports bytes asked for against bytes charged. */
TEST_F(lib, requested_vs_charged)
{
	size_t per_chunk = self->pg / 128, i;
	struct memmgr_lib_stats st;
	void *p, *big;

	/* 100 bytes go in the 128-byte class: pg / 128 per chunk. */
	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 5, 100, 0, &p));
	st = stats(self->mm);
	EXPECT_EQ(1000, st.small_requested);
	EXPECT_EQ(1000, st.requested[EX]);
	EXPECT_EQ(self->pg, st.small_charged);
	EXPECT_EQ(self->pg, st.charged[EX]);
	EXPECT_EQ(self->pg, st.kernel.client_used[EX]);

	for (; i < per_chunk + 1; i++)
		ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 5, 100, 0, &p));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 5, 5 * self->pg - 7, 0, &big));
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 5, 10, 0, 0, &p));
	st = stats(self->mm);
	EXPECT_EQ(100 * (per_chunk + 1), st.small_requested);
	EXPECT_EQ(2 * self->pg, st.small_charged);
	EXPECT_EQ(100 * (per_chunk + 1) + 5 * self->pg - 7, st.requested[EX]);
	EXPECT_EQ(7 * self->pg, st.charged[EX]);
	EXPECT_EQ(7 * self->pg, st.kernel.client_used[EX]);
	EXPECT_EQ(3, st.buffers[EX]);
	EXPECT_EQ(10, st.requested[ST]);
	EXPECT_EQ(self->pg, st.charged[ST]);
	EXPECT_EQ(1, st.buffers[ST]);
}

/* A freed slot is handed out again, zeroed; bad frees are refused. */
TEST_F(lib, small_reuse_and_bad_frees)
{
	unsigned char *a, *b, *c;

	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 6, 64, 0, (void **)&a));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 6, 64, 0, (void **)&b));
	EXPECT_EQ(a + 64, b);
	memset(a, 0xab, 64);
	memset(b, 0xcd, 64);
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, a + 1));
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, a + 128));	/* free slot */
	ASSERT_EQ(0, memmgr_free(self->mm, a));
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, a));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 6, 50, 0, (void **)&c));
	EXPECT_EQ(a, c);
	EXPECT_TRUE(all_bytes(c, 64, 0));
	EXPECT_TRUE(all_bytes(b, 64, 0xcd));
	EXPECT_EQ(self->pg, used(self->mm, EX));
	EXPECT_EQ(2, stats(self->mm).small_objects);
}

/* A chunk belongs to one exec id. */
TEST_F(lib, chunks_per_exec_id)
{
	void *a, *b;

	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, 16, 0, &a));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 2, 16, 0, &b));
	EXPECT_NE(page_of(a, self->pg), page_of(b, self->pg));
	EXPECT_EQ(2 * self->pg, used(self->mm, EX));
	EXPECT_EQ(2, stats(self->mm).small_chunks);
}

/* Allocate @n objects of @size bytes on @exec_id and free them all. */
static int churn(struct memmgr *mm, uint64_t exec_id, size_t size, size_t n)
{
	void **p = calloc(n, sizeof(*p));
	size_t i;
	int ret = 0;

	if (!p)
		return -ENOMEM;
	for (i = 0; i < n && !ret; i++)
		ret = memmgr_alloc_exec(mm, exec_id, size, 0, &p[i]);
	while (i--)
		if (p[i] && memmgr_free(mm, p[i]))
			ret = -EINVAL;
	free(p);
	return ret;
}

/* The default cap, MEMMGR_RETAIN_DEFAULT: chunks beyond it go back. */
TEST_F(lib, retain_default_cap)
{
	uint64_t top = chunk_of(MEMMGR_SMALL_MAX, self->pg);
	uint64_t fit = MEMMGR_RETAIN_DEFAULT / top;
	struct memmgr_lib_stats st;

	ASSERT_EQ(4 << 20, MEMMGR_RETAIN_DEFAULT);
	/* One chunk more than the cap holds: the last one emptied goes. */
	ASSERT_EQ(0, churn(self->mm, 1, MEMMGR_SMALL_MAX, (fit + 1) * 16));
	st = stats(self->mm);
	EXPECT_EQ(fit + 1, DELTA(st, EX, allocs));
	EXPECT_EQ(1, DELTA(st, EX, frees));
	EXPECT_EQ(fit, st.small_chunks);
	EXPECT_EQ(MEMMGR_RETAIN_DEFAULT, st.small_retained);
	EXPECT_EQ(MEMMGR_RETAIN_DEFAULT, st.small_charged);
	EXPECT_EQ(MEMMGR_RETAIN_DEFAULT, st.charged[EX]);
	EXPECT_EQ(MEMMGR_RETAIN_DEFAULT, st.kernel.client_used[EX]);
	EXPECT_EQ(MEMMGR_RETAIN_DEFAULT, st.kernel.pool[EX].used);
	/* Full: a 16-byte chunk goes back at once too. */
	ASSERT_EQ(0, churn(self->mm, 1, 16, 1));
	st = stats(self->mm);
	EXPECT_EQ(fit + 2, DELTA(st, EX, allocs));
	EXPECT_EQ(2, DELTA(st, EX, frees));
	EXPECT_EQ(MEMMGR_RETAIN_DEFAULT, st.small_retained);
	/* The same again: every chunk comes from the retained ones. */
	ASSERT_EQ(0, churn(self->mm, 1, MEMMGR_SMALL_MAX, fit * 16));
	st = stats(self->mm);
	EXPECT_EQ(fit + 2, DELTA(st, EX, allocs));
	EXPECT_EQ(MEMMGR_RETAIN_DEFAULT, st.kernel.pool[EX].used);
}

/* A cap of 0: a chunk goes back with its last object, exactly its bytes. */
TEST_F(lib, retain_zero)
{
	uint64_t top = chunk_of(MEMMGR_SMALL_MAX, self->pg);
	struct memmgr_lib_stats st;
	void *a, *b, *c;

	ASSERT_EQ(0, memmgr_set_retain(self->mm, 0));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, 16, 0, &a));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, 16, 0, &b));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, MEMMGR_SMALL_MAX, 0, &c));
	EXPECT_EQ(self->pg + top, used(self->mm, EX));
	ASSERT_EQ(0, memmgr_free(self->mm, a));
	EXPECT_EQ(self->pg + top, used(self->mm, EX));
	ASSERT_EQ(0, memmgr_free(self->mm, b));
	st = stats(self->mm);
	EXPECT_EQ(top, st.kernel.pool[EX].used);
	EXPECT_EQ(top, st.kernel.client_used[EX]);
	EXPECT_EQ(1, DELTA(st, EX, frees));
	EXPECT_EQ(1, st.small_chunks);
	EXPECT_EQ(0, st.small_retained);
	ASSERT_EQ(0, memmgr_free(self->mm, c));
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.pool[EX].used);
	EXPECT_EQ(2, DELTA(st, EX, frees));
	EXPECT_LIB_IDLE(st);
	/* As before retention: each use asks the kernel again. */
	ASSERT_EQ(0, churn(self->mm, 1, 16, 1));
	ASSERT_EQ(0, churn(self->mm, 1, 16, 1));
	st = stats(self->mm);
	EXPECT_EQ(4, DELTA(st, EX, allocs));
	EXPECT_EQ(4, DELTA(st, EX, frees));
	EXPECT_LIB_IDLE(st);
}

/*
 * A cap of one page: a page-sized chunk fits, a second one or a 64 KiB
 * one does not.  Lowering the cap gives back the oldest chunks first.
 */
TEST_F(lib, retain_small_cap)
{
	uint64_t top = chunk_of(MEMMGR_SMALL_MAX, self->pg);
	struct memmgr_lib_stats st;

	ASSERT_EQ(0, memmgr_set_retain(self->mm, self->pg));
	ASSERT_EQ(0, churn(self->mm, 1, 16, 1));
	ASSERT_EQ(0, churn(self->mm, 1, MEMMGR_SMALL_MAX, 1));
	ASSERT_EQ(0, churn(self->mm, 2, 16, 1));
	st = stats(self->mm);
	EXPECT_EQ(3, DELTA(st, EX, allocs));
	EXPECT_EQ(2, DELTA(st, EX, frees));
	EXPECT_EQ(self->pg, st.kernel.pool[EX].used);
	EXPECT_EQ(self->pg, st.small_retained);
	EXPECT_EQ(self->pg, st.small_charged);
	EXPECT_EQ(1, st.small_chunks);
	/* The one kept is exec 1's: it serves exec 1, not exec 2. */
	ASSERT_EQ(0, churn(self->mm, 1, 16, 1));
	EXPECT_EQ(3, DELTA(stats(self->mm), EX, allocs));
	ASSERT_EQ(0, churn(self->mm, 2, 16, 1));
	EXPECT_EQ(4, DELTA(stats(self->mm), EX, allocs));

	/* Three chunks kept (exec 1, 2, 3, in that order), then a cap of 1. */
	ASSERT_EQ(0, memmgr_set_retain(self->mm, MEMMGR_RETAIN_DEFAULT));
	ASSERT_EQ(0, churn(self->mm, 2, 16, 1));
	ASSERT_EQ(0, churn(self->mm, 3, 16, 1));
	st = stats(self->mm);
	EXPECT_EQ(6, DELTA(st, EX, allocs));
	EXPECT_EQ(3, DELTA(st, EX, frees));
	EXPECT_EQ(3 * self->pg, st.small_retained);
	ASSERT_EQ(0, memmgr_set_retain(self->mm, self->pg + top - 1));
	EXPECT_EQ(3 * self->pg, stats(self->mm).small_retained);
	ASSERT_EQ(0, memmgr_set_retain(self->mm, self->pg));
	st = stats(self->mm);
	EXPECT_EQ(5, DELTA(st, EX, frees));
	EXPECT_EQ(self->pg, st.small_retained);
	EXPECT_EQ(self->pg, st.kernel.pool[EX].used);
	/* Exec 3's, the newest, stayed. */
	ASSERT_EQ(0, churn(self->mm, 3, 16, 1));
	EXPECT_EQ(6, DELTA(stats(self->mm), EX, allocs));
	ASSERT_EQ(0, churn(self->mm, 1, 16, 1));
	st = stats(self->mm);
	EXPECT_EQ(7, DELTA(st, EX, allocs));
	EXPECT_EQ(6, DELTA(st, EX, frees));
	EXPECT_EQ(self->pg, st.small_retained);
}

/* Releasing an exec id gives back its retained chunks, and only its. */
TEST_F(lib, release_returns_retained)
{
	uint64_t top = chunk_of(MEMMGR_SMALL_MAX, self->pg), freed = 1;
	struct memmgr_lib_stats st;
	void *live;

	ASSERT_EQ(0, churn(self->mm, 7, 16, 1));
	ASSERT_EQ(0, churn(self->mm, 7, MEMMGR_SMALL_MAX, 1));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 7, 100, 0, &live));
	ASSERT_EQ(0, churn(self->mm, 8, 16, 1));
	st = stats(self->mm);
	EXPECT_EQ(3 * self->pg + top, st.kernel.pool[EX].used);
	EXPECT_EQ(2 * self->pg + top, st.small_retained);

	ASSERT_EQ(0, memmgr_release_exec(self->mm, 7, &freed));
	EXPECT_EQ(2 * self->pg + top, freed);
	st = stats(self->mm);
	EXPECT_EQ(self->pg, st.kernel.pool[EX].used);
	EXPECT_EQ(self->pg, st.small_retained);
	EXPECT_EQ(1, st.small_chunks);
	EXPECT_EQ(0, st.small_objects);
	EXPECT_EQ(0, st.small_requested);
	EXPECT_EQ(3, DELTA(st, EX, frees));
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, live));
	/* Also by the original design's name. */
	EXPECT_EQ(self->pg, memmgr_release_execution_memory(self->mm, 8));
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.pool[EX].used);
	EXPECT_LIB_IDLE(st);
}

/*
 * Pressure: a request the kernel declines gets the handle's retained
 * chunks back and is made again; one that may wait gives them back first
 * and is granted without being held.
 */
TEST_F(lib, pressure_trims_retained)
{
	uint64_t top = chunk_of(MEMMGR_SMALL_MAX, self->pg);
	struct memmgr_lib_stats st;
	void *all, *p, *q;

	/* A retained 64 KiB chunk; everything else taken. */
	ASSERT_EQ(0, churn(self->mm, 1, MEMMGR_SMALL_MAX, 1));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 2, self->T - top, 0, &all));
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.free);
	EXPECT_EQ(top, st.small_retained);
	/* Whole pages, declined at once: granted after the trim. */
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 3, top, 0, &p));
	st = stats(self->mm);
	EXPECT_EQ(1, DELTA(st, EX, declined));
	EXPECT_EQ(0, DELTA(st, EX, held));
	EXPECT_EQ(1, DELTA(st, EX, frees));
	EXPECT_EQ(0, st.small_retained);
	EXPECT_EQ(0, st.small_chunks);
	EXPECT_EQ(self->T, st.kernel.pool[EX].used);
	EXPECT_EQ(self->T, st.charged[EX]);

	/* A new chunk, declined at once: the same for a small object. */
	ASSERT_EQ(0, memmgr_free(self->mm, p));
	ASSERT_EQ(0, churn(self->mm, 1, MEMMGR_SMALL_MAX, 1));
	EXPECT_EQ(0, stats(self->mm).kernel.free);
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 4, 2000, 0, &p));
	st = stats(self->mm);
	EXPECT_EQ(2, DELTA(st, EX, declined));
	EXPECT_EQ(3, DELTA(st, EX, frees));
	EXPECT_EQ(0, st.small_retained);
	EXPECT_EQ(1, st.small_chunks);
	EXPECT_EQ(self->T - top + chunk_of(2048, self->pg),
		  st.kernel.pool[EX].used);

	/* A request that may wait trims first: never declined nor held. */
	ASSERT_EQ(0, memmgr_free(self->mm, p));
	EXPECT_EQ(chunk_of(2048, self->pg), stats(self->mm).small_retained);
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 5, top, 50, &q));
	st = stats(self->mm);
	EXPECT_EQ(2, DELTA(st, EX, declined));
	EXPECT_EQ(0, DELTA(st, EX, held));
	EXPECT_EQ(0, st.small_retained);
	EXPECT_EQ(0, st.small_chunks);
	EXPECT_EQ(self->T, st.kernel.pool[EX].used);
	/* Nothing retained: declined as before. */
	EXPECT_EQ(-EAGAIN, memmgr_alloc_exec(self->mm, 4, 16, 0, &p));
	EXPECT_EQ(3, DELTA(stats(self->mm), EX, declined));
}

/* A request that may wait but fits now keeps the retained chunks. */
TEST_F(lib, waiting_request_that_fits_keeps_retained)
{
	uint64_t top = chunk_of(MEMMGR_SMALL_MAX, self->pg);
	struct memmgr_lib_stats st;
	void *p;

	ASSERT_EQ(0, churn(self->mm, 1, MEMMGR_SMALL_MAX, 1));
	EXPECT_EQ(top, stats(self->mm).small_retained);
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 2, 2 * self->pg, 50, &p));
	st = stats(self->mm);
	EXPECT_EQ(top, st.small_retained);
	EXPECT_EQ(1, st.small_chunks);
	EXPECT_EQ(top + 2 * self->pg, st.kernel.client_used[EX]);
	EXPECT_EQ(0, DELTA(st, EX, declined));
	EXPECT_EQ(0, DELTA(st, EX, held));
	EXPECT_EQ(0, memmgr_free(self->mm, p));
}

/* Only the handle's own retained chunks go back under pressure. */
TEST_F(lib, pressure_spares_other_handles)
{
	uint64_t top = chunk_of(MEMMGR_SMALL_MAX, self->pg);
	struct memmgr_lib_stats st;
	struct memmgr *mm2;
	void *all, *p;

	ASSERT_EQ(0, memmgr_open(&mm2, variant->open_flags));
	ASSERT_EQ(0, churn(mm2, 1, MEMMGR_SMALL_MAX, 1));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 2, self->T - top, 0, &all));
	EXPECT_EQ(-EAGAIN, memmgr_alloc_exec(self->mm, 3, top, 0, &p));
	EXPECT_EQ(-ETIMEDOUT, memmgr_alloc_exec(self->mm, 3, top, 20, &p));
	st = stats(mm2);
	EXPECT_EQ(top, st.small_retained);
	EXPECT_EQ(top, st.kernel.client_used[EX]);
	EXPECT_EQ(0, st.kernel.free);
	/* Once mm2 trims, the request is granted. */
	ASSERT_EQ(0, memmgr_trim(mm2));
	EXPECT_EQ(0, stats(mm2).kernel.client_used[EX]);
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 3, top, 0, &p));
	st = stats(self->mm);
	EXPECT_EQ(self->T, st.kernel.client_used[EX]);
	/* The kernel counts a timed-out request as held and declined. */
	EXPECT_EQ(2, DELTA(st, EX, declined));
	EXPECT_EQ(1, DELTA(st, EX, held));
	memmgr_close(mm2);
}

/* Releasing an exec id frees its buffers and its small objects' chunks. */
TEST_F(lib, release_exec)
{
	struct memmgr_lib_stats st;
	void *small7[8], *big7, *huge7, *p8;
	uint64_t freed = 1;
	int i;

	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 7, 16, 0,
					       &small7[i]));
	for (; i < 8; i++)
		ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 7, 512, 0,
					       &small7[i]));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 7, MEMMGR_SMALL_MAX + 1, 0,
				       &big7));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 7, 3 * self->pg, 0, &huge7));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 8, 16, 0, &p8));
	/* exec 7: a 16-byte chunk, a 512-byte chunk, 2 pages, 3 pages. */
	EXPECT_EQ(self->pg + chunk_of(512, self->pg) + 5 * self->pg,
		  used(self->mm, EX) - self->pg);

	ASSERT_EQ(0, memmgr_release_exec(self->mm, 7, &freed));
	EXPECT_EQ(self->pg + chunk_of(512, self->pg) + 5 * self->pg, freed);
	st = stats(self->mm);
	EXPECT_EQ(self->pg, st.kernel.pool[EX].used);
	EXPECT_EQ(4, DELTA(st, EX, frees));
	EXPECT_EQ(1, st.small_objects);
	EXPECT_EQ(16, st.small_requested);
	EXPECT_EQ(1, st.small_chunks);
	EXPECT_EQ(1, st.buffers[EX]);
	EXPECT_EQ(16, st.requested[EX]);
	EXPECT_EQ(self->pg, st.charged[EX]);
	/* Every pointer of exec 7 is gone. */
	for (i = 0; i < 8; i++)
		EXPECT_EQ(-EINVAL, memmgr_free(self->mm, small7[i]));
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, big7));
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, huge7));

	ASSERT_EQ(0, memmgr_release_exec(self->mm, 7, &freed));
	EXPECT_EQ(0, freed);
	/* Exec 7 can start again. */
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 7, 16, 0, &small7[0]));
	EXPECT_EQ(2 * self->pg, used(self->mm, EX));
	ASSERT_EQ(0, memmgr_release_exec(self->mm, 7, NULL));
	ASSERT_EQ(0, memmgr_release_exec(self->mm, 8, &freed));
	EXPECT_EQ(self->pg, freed);
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.pool[EX].used);
	EXPECT_LIB_IDLE(st);
}

/* Releasing a page id, live or evicted. */
TEST_F(lib, release_page)
{
	struct memmgr_lib_stats st;
	uint64_t freed = 1;
	void *p;

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 4, 3 * self->pg, 0, 0, &p));
	ASSERT_EQ(0, memmgr_release_page(self->mm, 4, &freed));
	EXPECT_EQ(3 * self->pg, freed);
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 4, NULL, NULL));
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, p));
	ASSERT_EQ(0, memmgr_release_page(self->mm, 4, &freed));
	EXPECT_EQ(0, freed);

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 5, self->S, 0,
					  MEMMGR_ALLOC_UNPINNED, &p));
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 6, self->S, 0, 0, &p));
	EXPECT_EQ(-ESTALE, memmgr_lookup_page(self->mm, 5, NULL, NULL));
	ASSERT_EQ(0, memmgr_release_page(self->mm, 5, &freed));
	EXPECT_EQ(0, freed);
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 5, NULL, NULL));
	ASSERT_EQ(0, memmgr_release_page(self->mm, 6, &freed));
	EXPECT_EQ(self->S, freed);
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.pool[ST].used);
	EXPECT_LIB_IDLE(st);
}

/* The original design's interface. */
TEST_F(lib, original_names)
{
	struct timespec t0, t1;
	unsigned char *e, *s;
	void *all;
	long ms;

	e = memmgr_acquire_execution_memory(self->mm, 11, 100);
	ASSERT_NE(NULL, e);
	EXPECT_TRUE(all_bytes(e, 100, 0));
	s = memmgr_acquire_storage_memory(self->mm, 12, self->pg);
	ASSERT_NE(NULL, s);
	memset(s, 1, self->pg);
	EXPECT_EQ(self->pg, stats(self->mm).kernel.pool[ST].pinned);
	errno = 0;
	EXPECT_EQ(NULL, memmgr_acquire_storage_memory(self->mm, 12, 1));
	EXPECT_EQ(EEXIST, errno);
	errno = 0;
	EXPECT_EQ(NULL, memmgr_acquire_execution_memory(self->mm, 11, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(self->pg, memmgr_release_storage_memory(self->mm, 12));
	EXPECT_EQ(0, memmgr_release_storage_memory(self->mm, 12));
	EXPECT_EQ(self->pg, memmgr_release_execution_memory(self->mm, 11));
	EXPECT_EQ(0, used(self->mm, EX) + used(self->mm, ST));

	/* By default they decline at once; memmgr_set_timeout() holds. */
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, self->T, 0, &all));
	errno = 0;
	EXPECT_EQ(NULL, memmgr_acquire_execution_memory(self->mm, 11, 100));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(-EINVAL, memmgr_set_timeout(self->mm, -2));
	ASSERT_EQ(0, memmgr_set_timeout(self->mm, 100));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	errno = 0;
	EXPECT_EQ(NULL, memmgr_acquire_storage_memory(self->mm, 12, 1));
	EXPECT_EQ(ETIMEDOUT, errno);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	     (t1.tv_nsec - t0.tv_nsec) / 1000000;
	EXPECT_LE(100, ms);
	EXPECT_EQ(1, DELTA(stats(self->mm), ST, held));
}

/* Declined, too big, and bad arguments; a full pool still serves chunks. */
TEST_F(lib, errors)
{
	struct memmgr_lib_stats st;
	void *p, *q, *all;

	EXPECT_EQ(-EINVAL, memmgr_alloc_exec(self->mm, 1, 0, 0, &p));
	EXPECT_EQ(-EINVAL, memmgr_alloc_storage(self->mm, 1, 0, 0, 0, &p));
	EXPECT_EQ(-EINVAL, memmgr_alloc_exec(self->mm, 1, 16, -2, &p));
	EXPECT_EQ(-EINVAL, memmgr_alloc_storage(self->mm, 1, 16, 0, 2, &p));
	EXPECT_EQ(-EINVAL, memmgr_alloc_exec(self->mm, 1, 16, 0, NULL));
	EXPECT_EQ(-E2BIG, memmgr_alloc_exec(self->mm, 1, self->T + 1, 0, &p));
	EXPECT_EQ(-E2BIG, memmgr_alloc_storage(self->mm, 1, self->S + 1,
					       MEMMGR_WAIT_FOREVER, 0, &p));

	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, 16, 0, &p));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 2, self->T - self->pg, 0,
				       &all));
	EXPECT_EQ(0, stats(self->mm).kernel.free);
	/* Room in exec 1's chunk: granted without the kernel. */
	EXPECT_EQ(0, memmgr_alloc_exec(self->mm, 1, 16, 0, &q));
	/* A new chunk, whole pages, storage: none to be had. */
	EXPECT_EQ(-EAGAIN, memmgr_alloc_exec(self->mm, 1, 32, 0, &q));
	EXPECT_EQ(-EAGAIN, memmgr_alloc_exec(self->mm, 3, 16, 0, &q));
	EXPECT_EQ(-EAGAIN, memmgr_alloc_exec(self->mm, 1, self->pg + 1, 0,
					     &q));
	EXPECT_EQ(-ETIMEDOUT, memmgr_alloc_storage(self->mm, 1, 1, 50, 0, &q));
	st = stats(self->mm);
	EXPECT_EQ(1, st.small_chunks);
	EXPECT_EQ(2, st.small_objects);
	EXPECT_EQ(2, st.buffers[EX]);
	EXPECT_EQ(0, st.buffers[ST]);
	/* Argument errors never reach the kernel. */
	EXPECT_EQ(4, DELTA(st, EX, declined));
	EXPECT_EQ(2, DELTA(st, ST, declined));
	EXPECT_EQ(1, DELTA(st, ST, held));
}

/* A handle opened MEMMGR_OPEN_NONBLOCK never waits. */
TEST_F(lib, nonblock)
{
	struct memmgr *nb;
	void *p;

	EXPECT_EQ(-EINVAL, memmgr_open(&nb, 1U << 2));
	EXPECT_EQ(-EINVAL, memmgr_open(&nb, 1U << 31));
	ASSERT_EQ(0, memmgr_open(&nb, MEMMGR_OPEN_NONBLOCK |
					variant->open_flags));
	EXPECT_EQ(variant->features, memmgr_features(nb));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, self->T, 0, &p));
	EXPECT_EQ(-EAGAIN, memmgr_alloc_exec(nb, 1, 16, MEMMGR_WAIT_FOREVER,
					     &p));
	EXPECT_EQ(-EAGAIN, memmgr_alloc_storage(nb, 1, 1, MEMMGR_WAIT_FOREVER,
						0, &p));
	EXPECT_EQ(0, DELTA(stats(self->mm), EX, held));
	memmgr_close(nb);
}

struct waiter {
	struct memmgr *mm;
	size_t size;
	int ret;
	void *ptr;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;

	w->ret = memmgr_alloc_exec(w->mm, 9, w->size, MEMMGR_WAIT_FOREVER,
				   &w->ptr);
	return NULL;
}

/*
 * A request waiting for memory does not hold the handle: another thread
 * of the same handle frees the memory it waits for.
 */
TEST_F(lib, wait_leaves_handle_usable)
{
	struct waiter w = { .mm = self->mm, .size = 100, .ret = 1 };
	pthread_t thread;
	void *all, *q;

	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, self->T, 0, &all));
	ASSERT_EQ(0, pthread_create(&thread, NULL, wait_thread, &w));
	ASSERT_EQ(0, wait_waiters(self->mm, 1));
	EXPECT_EQ(1, w.ret);
	/* The handle answers meanwhile. */
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 1, &q, NULL));
	ASSERT_EQ(0, memmgr_free(self->mm, all));
	ASSERT_EQ(0, pthread_join(thread, NULL));
	EXPECT_EQ(0, w.ret);
	EXPECT_TRUE(all_bytes(w.ptr, 100, 0));
	EXPECT_EQ(self->pg, used(self->mm, EX));
	EXPECT_EQ(1, stats(self->mm).small_objects);
}

#define NR_THREADS	4
#define NR_LIVE		64
#define NR_ROUNDS	3000

/* The bytes worker @id writes in its slot @k: never 0. */
static unsigned char fill_of(int id, int k)
{
	return (unsigned char)((id * NR_LIVE + k) % 255 + 1);
}

struct worker {
	struct memmgr *mm;
	unsigned int seed;
	int id;
	int errors;
};

/* Random small (and a few page) objects on two exec ids shared by all. */
static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	unsigned char *obj[NR_LIVE] = { NULL };
	size_t size[NR_LIVE] = { 0 };
	int i, k;

	for (i = 0; i < NR_ROUNDS; i++) {
		unsigned char fill;

		k = rand_r(&w->seed) % NR_LIVE;
		fill = fill_of(w->id, k);
		if (obj[k]) {
			if (!all_bytes(obj[k], size[k], fill) ||
			    memmgr_free(w->mm, obj[k]))
				w->errors++;
			obj[k] = NULL;
			continue;
		}
		size[k] = 1 + rand_r(&w->seed) % MEMMGR_SMALL_MAX;
		if (!(rand_r(&w->seed) % 16))
			size[k] += 2 * MEMMGR_SMALL_MAX;
		if (memmgr_alloc_exec(w->mm, i % 2, size[k], 0,
				      (void **)&obj[k]) ||
		    !all_bytes(obj[k], size[k], 0)) {
			w->errors++;
			obj[k] = NULL;
			continue;
		}
		memset(obj[k], fill, size[k]);
	}
	for (k = 0; k < NR_LIVE; k++) {
		if (obj[k] && (!all_bytes(obj[k], size[k], fill_of(w->id, k)) ||
			       memmgr_free(w->mm, obj[k])))
			w->errors++;
	}
	return NULL;
}

/* Several threads allocate and free on one handle; nothing is lost. */
TEST_F(lib, threads)
{
	struct worker w[NR_THREADS];
	pthread_t thread[NR_THREADS];
	struct memmgr_lib_stats st;
	int i;

	for (i = 0; i < NR_THREADS; i++) {
		w[i] = (struct worker){ .mm = self->mm, .seed = 1000 + i,
					.id = i };
		ASSERT_EQ(0, pthread_create(&thread[i], NULL, worker_thread,
					    &w[i]));
	}
	for (i = 0; i < NR_THREADS; i++) {
		ASSERT_EQ(0, pthread_join(thread[i], NULL));
		EXPECT_EQ(0, w[i].errors);
	}
	/* Nothing live: what the kernel still charges is retained. */
	st = stats(self->mm);
	EXPECT_EQ(0, st.small_objects);
	EXPECT_EQ(0, st.small_requested);
	EXPECT_EQ(0, st.requested[EX]);
	EXPECT_LT(0, st.small_retained);
	EXPECT_GE(MEMMGR_RETAIN_DEFAULT, st.small_retained);
	EXPECT_EQ(st.small_retained, st.small_charged);
	EXPECT_EQ(st.small_retained, st.charged[EX]);
	EXPECT_EQ(st.small_retained, st.kernel.client_used[EX]);
	EXPECT_EQ(st.small_retained, st.kernel.pool[EX].used);
	EXPECT_EQ(st.small_chunks, st.buffers[EX]);
	EXPECT_EQ(st.small_chunks,
		  DELTA(st, EX, allocs) - DELTA(st, EX, frees));
	ASSERT_EQ(0, memmgr_trim(self->mm));
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.pool[EX].used);
	EXPECT_LT(NR_THREADS, DELTA(st, EX, allocs));
	EXPECT_EQ(DELTA(st, EX, allocs), DELTA(st, EX, frees));
	EXPECT_LIB_IDLE(st);
}

/* Closing a handle unmaps everything: the kernel frees it all. */
TEST_F(lib, close_frees_everything)
{
	struct memmgr *mm2;
	void *p;

	ASSERT_EQ(0, memmgr_open(&mm2, variant->open_flags));
	ASSERT_EQ(0, memmgr_alloc_exec(mm2, 1, 3 * self->pg, 0, &p));
	memset(p, 1, 3 * self->pg);
	ASSERT_EQ(0, memmgr_alloc_exec(mm2, 1, 16, 0, &p));
	ASSERT_EQ(0, memmgr_alloc_exec(mm2, 2, 16, 0, &p));
	/* A retained chunk. */
	ASSERT_EQ(0, memmgr_alloc_exec(mm2, 3, MEMMGR_SMALL_MAX, 0, &p));
	ASSERT_EQ(0, memmgr_free(mm2, p));
	EXPECT_EQ(chunk_of(MEMMGR_SMALL_MAX, self->pg),
		  stats(mm2).small_retained);
	ASSERT_EQ(0, memmgr_alloc_storage(mm2, 1, 2 * self->pg, 0, 0, &p));
	ASSERT_EQ(0, memmgr_alloc_storage(mm2, 2, self->pg, 0,
					  MEMMGR_ALLOC_UNPINNED, &p));
	EXPECT_EQ(5 * self->pg + chunk_of(MEMMGR_SMALL_MAX, self->pg),
		  used(self->mm, EX));
	EXPECT_EQ(3 * self->pg, used(self->mm, ST));
	memmgr_close(mm2);
	EXPECT_EQ(0, used(self->mm, EX));
	EXPECT_EQ(0, used(self->mm, ST));
	memmgr_close(NULL);
}

struct releaser {
	struct memmgr *mm;
	int stop;		/* atomic */
	int releases;
};

static void *release_thread(void *arg)
{
	struct releaser *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		if (memmgr_release_exec(r->mm, 5, NULL))
			return NULL;
		r->releases++;
		usleep(100);
	}
	return NULL;
}

/*
 * Releasing an exec id while another thread allocates with it: each
 * allocation either stands or fails with -ECANCELED, and nothing leaks.
 */
TEST_F(lib, release_races_alloc)
{
	struct releaser r = { .mm = self->mm };
	int i, ret, granted = 0, canceled = 0, other = 0;
	struct memmgr_lib_stats st;
	unsigned int seed = 7;
	pthread_t thread;
	void *p;

	ASSERT_EQ(0, pthread_create(&thread, NULL, release_thread, &r));
	for (i = 0; i < 2000; i++) {
		size_t size = 1 + rand_r(&seed) % (2 * self->pg);

		ret = memmgr_alloc_exec(self->mm, 5, size, 0, &p);
		if (!ret)
			granted++;
		else if (ret == -ECANCELED)
			canceled++;
		else
			other++;
		/* Gone already if a release came first. */
		if (!ret && i % 2) {
			ret = memmgr_free(self->mm, p);
			if (ret && ret != -EINVAL)
				other++;
		}
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
	ASSERT_EQ(0, pthread_join(thread, NULL));
	EXPECT_LT(0, r.releases);
	EXPECT_EQ(0, other);
	EXPECT_EQ(2000, granted + canceled);
	ASSERT_EQ(0, memmgr_release_exec(self->mm, 5, NULL));
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.pool[EX].used);
	EXPECT_EQ(DELTA(st, EX, allocs), DELTA(st, EX, frees));
	EXPECT_LIB_IDLE(st);
}

/*
 * Offset reuse under a release racing an allocation.  The kernel gives a
 * freed buffer's mmap offset range to the next ALLOC of the file that
 * fits, and the library asks the kernel for a buffer without its mutex
 * and maps it under it.  If a release of the same exec id frees the new
 * buffer in between, and another thread's ALLOC takes its range, the
 * mmap() succeeds on that other buffer: the library must see that a
 * release ran since the request began, ask the kernel whether its handle
 * is still there (LOOKUP by handle), and fail with -ECANCELED, never hand
 * out a mapping of someone else's buffer.
 *
 * Three threads on one handle, buffers of two pages (whole pages, so each
 * allocation is a request to the kernel):
 *  A allocates from exec id 1 in batches of RACE_BATCH, then reads the
 *    first byte of every page of each buffer it got and frees it: each
 *    byte must read 0 (fresh memory);
 *  R releases exec id 1 once per batch of A's, just as A begins a random
 *    one of its allocations (unmapping the batch's buffers mapped before
 *    it makes the release take longer);
 *  C keeps a ring of up to RACE_RING buffers of exec id 2, each filled
 *    with 0xC3 as soon as it is mapped, and frees the oldest when the
 *    ring is full: its ALLOCs take the ranges R frees.
 * A reads under two locks of the test's, one that R holds while it
 * releases and one that C holds while it allocates, fills or frees.  A
 * release frees all that the library had mapped of exec id 1, so the
 * buffers of a batch that are still in the library's tables are the last
 * ones it mapped, as many as the exec buffers it holds beyond C's ring;
 * A reads only those (the addresses of the others may be another
 * mapping's by now), and R does not release again before A has read
 * them.  So each one is A's own and live, unless the library mapped
 * another buffer for A: a byte that reads non-zero (0xC3: C's buffer) or
 * faults (SIGBUS: a buffer of C's freed since) fails the test.  At the
 * end every buffer of C's ring still reads 0xC3 and the figures add up.
 *
 * A library without the check fails here only when the race hits (a
 * release and another ALLOC both between A's ALLOC and its mmap()), so
 * this is a stress check, not a deterministic one: passing says little
 * of such a library, failing always means a wrong mapping.
 */
#define RACE_ALLOCS	3000
#define RACE_BATCH	8
#define RACE_RING	16
#define RACE_FILL	0xC3

struct race {
	struct memmgr *mm;
	uint64_t pg;
	size_t size;			/* of every buffer: two pages */
	pthread_mutex_t release_lock;	/* R's releases, A's reads */
	pthread_mutex_t ring_lock;	/* C's buffers and ring, A's reads */
	int stop;			/* atomic: a thread failed */
	int a_started;			/* atomic: A's allocations begun */
	int a_batches;			/* atomic: A's batches read */
	int a_done;			/* atomic */
	/* C's ring, under ring_lock: @ring_len buffers from @ring_head */
	unsigned char *ring[RACE_RING];
	unsigned int ring_head, ring_len;
	/* A's counts */
	unsigned int a_ok, a_canceled, a_again;
	unsigned int a_checked;		/* still A's when it read them */
	unsigned int a_released;	/* released by R before that */
	unsigned int a_nonzero;		/* pages that read non-zero */
	unsigned int a_sigbus;		/* pages that faulted */
	/* C's and R's */
	unsigned int c_ok, c_canceled, c_again;
	unsigned int r_releases;
	/* The first unexpected failure of each thread, or NULL */
	const char *a_fail, *c_fail, *r_fail;
	int a_err, c_err, r_err;	/* its return value */
};

static bool race_stopped(struct race *r)
{
	return __atomic_load_n(&r->stop, __ATOMIC_RELAXED);
}

static void race_fail(struct race *r, const char **what, int *err,
		      const char *why, int ret)
{
	if (!*what) {
		*what = why;
		*err = ret;
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
}

static __thread sigjmp_buf race_jmp;
static __thread volatile sig_atomic_t race_armed;

/* Process-wide; a fault outside race_read() kills the test. */
static void race_sigbus(int sig)
{
	if (!race_armed) {
		signal(sig, SIG_DFL);
		return;
	}
	race_armed = 0;
	siglongjmp(race_jmp, 1);
}

/* Read a byte in this thread: SIGBUS if the access faulted, else 0. */
static int race_read(const volatile unsigned char *p, unsigned char *val)
{
	if (sigsetjmp(race_jmp, 1))
		return SIGBUS;
	race_armed = 1;
	*val = *p;
	race_armed = 0;
	return 0;
}

/* A: read and free what is left of a batch of @n buffers, @p[]. */
static void race_check(struct race *r, unsigned char **p, unsigned int n)
{
	struct memmgr_lib_stats st;
	unsigned int j, live;
	unsigned char v;
	size_t off;
	int ret;

	pthread_mutex_lock(&r->release_lock);
	pthread_mutex_lock(&r->ring_lock);
	ret = memmgr_get_stats(r->mm, &st);
	if (ret) {
		race_fail(r, &r->a_fail, &r->a_err, "get_stats", ret);
		goto out_unlock;
	}
	/* The exec buffers beyond C's ring: the last @live of @p[]. */
	live = st.buffers[EX] - r->ring_len;
	if (st.buffers[EX] < r->ring_len || live > n) {
		race_fail(r, &r->a_fail, &r->a_err, "buffers beyond the ring",
			  (int)(st.buffers[EX] - r->ring_len));
		goto out_unlock;
	}
	r->a_released += n - live;
	for (j = n - live; j < n; j++) {
		r->a_checked++;
		for (off = 0; off < r->size; off += r->pg) {
			if (race_read(p[j] + off, &v))
				r->a_sigbus++;
			else if (v)
				r->a_nonzero++;
		}
		ret = memmgr_free(r->mm, p[j]);
		if (ret)
			race_fail(r, &r->a_fail, &r->a_err, "free exec 1", ret);
	}
	if (r->a_sigbus || r->a_nonzero)
		race_fail(r, &r->a_fail, &r->a_err, "mapped a foreign buffer",
			  0);
out_unlock:
	pthread_mutex_unlock(&r->ring_lock);
	pthread_mutex_unlock(&r->release_lock);
}

static void *race_alloc_thread(void *arg)
{
	struct race *r = arg;
	unsigned char *p[RACE_BATCH];
	unsigned int i = 0, k, n;
	int ret;

	while (i < RACE_ALLOCS && !race_stopped(r)) {
		for (n = 0, k = 0; k < RACE_BATCH && i < RACE_ALLOCS; k++, i++) {
			__atomic_add_fetch(&r->a_started, 1, __ATOMIC_RELAXED);
			ret = memmgr_alloc_exec(r->mm, 1, r->size, 0,
						(void **)&p[n]);
			if (!ret) {
				r->a_ok++;
				n++;
			} else if (ret == -ECANCELED) {
				r->a_canceled++;
			} else if (ret == -EAGAIN) {
				r->a_again++;
			} else {
				race_fail(r, &r->a_fail, &r->a_err,
					  "alloc exec 1", ret);
				break;
			}
		}
		race_check(r, p, n);
		__atomic_add_fetch(&r->a_batches, 1, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&r->a_done, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void *race_ring_thread(void *arg)
{
	struct race *r = arg;
	unsigned char *q;
	int i, ret;

	for (i = 0; i < RACE_ALLOCS && !race_stopped(r); i++) {
		pthread_mutex_lock(&r->ring_lock);
		ret = memmgr_alloc_exec(r->mm, 2, r->size, 0, (void **)&q);
		if (ret == -ECANCELED) {
			r->c_canceled++;
		} else if (ret == -EAGAIN) {
			r->c_again++;
		} else if (ret) {
			race_fail(r, &r->c_fail, &r->c_err, "alloc exec 2",
				  ret);
		} else {
			r->c_ok++;
			if (!all_bytes(q, r->size, 0))
				race_fail(r, &r->c_fail, &r->c_err,
					  "new buffer not zeroed", 0);
			memset(q, RACE_FILL, r->size);
			r->ring[(r->ring_head + r->ring_len) % RACE_RING] = q;
			r->ring_len++;
		}
		/*
		 * Free after allocating: freeing first, the ALLOC would take
		 * the range just freed (the lowest free one) more often than
		 * one that R freed.
		 */
		if (r->ring_len == RACE_RING) {
			ret = memmgr_free(r->mm, r->ring[r->ring_head]);
			if (ret)
				race_fail(r, &r->c_fail, &r->c_err,
					  "free exec 2", ret);
			r->ring_head = (r->ring_head + 1) % RACE_RING;
			r->ring_len--;
		}
		pthread_mutex_unlock(&r->ring_lock);
	}
	return NULL;
}

static bool race_over(struct race *r)
{
	return race_stopped(r) || __atomic_load_n(&r->a_done, __ATOMIC_RELAXED);
}

static int race_load(int *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

/* R: one release per batch of A's, until A is done. */
static void *race_release_thread(void *arg)
{
	struct race *r = arg;
	unsigned int seed = 11;
	int batch, target, ret;

	while (!race_over(r)) {
		/* As A begins a random allocation of its current batch. */
		batch = race_load(&r->a_batches);
		target = batch * RACE_BATCH + 1 + rand_r(&seed) % RACE_BATCH;
		while (race_load(&r->a_started) < target &&
		       race_load(&r->a_batches) == batch && !race_over(r))
			sched_yield();
		if (race_over(r))
			break;
		pthread_mutex_lock(&r->release_lock);
		ret = memmgr_release_exec(r->mm, 1, NULL);
		batch = race_load(&r->a_batches);
		pthread_mutex_unlock(&r->release_lock);
		if (ret) {
			race_fail(r, &r->r_fail, &r->r_err, "release exec 1",
				  ret);
			break;
		}
		r->r_releases++;
		/* Not again before A has read what this batch has left. */
		while (race_load(&r->a_batches) == batch && !race_over(r))
			sched_yield();
	}
	return NULL;
}

TEST_F_TIMEOUT(lib, release_race_reused_offset, 120)
{
	struct sigaction sa = { .sa_handler = race_sigbus }, old_sa;
	struct memmgr_lib_stats st;
	pthread_t a, c, rel;
	uint64_t freed = 1;
	struct race *r;
	unsigned int k;

	r = calloc(1, sizeof(*r));
	ASSERT_NE(NULL, r);
	r->mm = self->mm;
	r->pg = self->pg;
	r->size = 2 * self->pg;
	/* Whole pages: each allocation is a request to the kernel. */
	ASSERT_LT(MEMMGR_SMALL_MAX, r->size);
	/* A's batch and C's ring fit: no EAGAIN on an idle device. */
	ASSERT_LE((RACE_BATCH + RACE_RING) * r->size, self->T);
	ASSERT_EQ(0, pthread_mutex_init(&r->release_lock, NULL));
	ASSERT_EQ(0, pthread_mutex_init(&r->ring_lock, NULL));
	ASSERT_EQ(0, sigaction(SIGBUS, &sa, &old_sa));

	ASSERT_EQ(0, pthread_create(&rel, NULL, race_release_thread, r));
	ASSERT_EQ(0, pthread_create(&c, NULL, race_ring_thread, r));
	ASSERT_EQ(0, pthread_create(&a, NULL, race_alloc_thread, r));
	ASSERT_EQ(0, pthread_join(a, NULL));
	ASSERT_EQ(0, pthread_join(c, NULL));
	ASSERT_EQ(0, pthread_join(rel, NULL));

	TH_LOG("A: %u granted (%u read, %u released first), %u canceled, %u EAGAIN",
	       r->a_ok, r->a_checked, r->a_released, r->a_canceled,
	       r->a_again);
	TH_LOG("A: pages read: %u non-zero, %u SIGBUS", r->a_nonzero,
	       r->a_sigbus);
	TH_LOG("C: %u granted, %u canceled, %u EAGAIN; R: %u releases",
	       r->c_ok, r->c_canceled, r->c_again, r->r_releases);
	if (r->a_fail)
		TH_LOG("A: %s: %d (%s)", r->a_fail, r->a_err,
		       memmgr_strerror(r->a_err));
	if (r->c_fail)
		TH_LOG("C: %s: %d (%s)", r->c_fail, r->c_err,
		       memmgr_strerror(r->c_err));
	if (r->r_fail)
		TH_LOG("R: %s: %d (%s)", r->r_fail, r->r_err,
		       memmgr_strerror(r->r_err));
	EXPECT_EQ(NULL, r->a_fail);
	EXPECT_EQ(NULL, r->c_fail);
	EXPECT_EQ(NULL, r->r_fail);
	/* Never another buffer's bytes, nor a buffer freed under A. */
	EXPECT_EQ(0, r->a_nonzero);
	EXPECT_EQ(0, r->a_sigbus);
	/* R never releases exec id 2. */
	EXPECT_EQ(0, r->c_canceled);
	ASSERT_EQ(0, race_stopped(r));
	EXPECT_EQ(RACE_ALLOCS, r->a_ok + r->a_canceled + r->a_again);
	EXPECT_EQ(r->a_ok, r->a_checked + r->a_released);
	EXPECT_EQ(RACE_ALLOCS, r->c_ok + r->c_again);
	/* One per batch, and maybe one after the last. */
	EXPECT_LT(0, r->r_releases);
	EXPECT_GE((RACE_ALLOCS + RACE_BATCH - 1) / RACE_BATCH + 1,
		  r->r_releases);
	/* Something was read, and C's ring was full at some point. */
	EXPECT_LT(0, r->a_checked);
	EXPECT_LE(RACE_RING, r->c_ok);

	/* C's ring is intact, and it is all the handle holds. */
	for (k = 0; k < r->ring_len; k++)
		EXPECT_TRUE(all_bytes(r->ring[(r->ring_head + k) % RACE_RING],
				      r->size, RACE_FILL));
	st = stats(self->mm);
	EXPECT_EQ(r->ring_len, st.buffers[EX]);
	EXPECT_EQ(r->ring_len * r->size, st.requested[EX]);
	EXPECT_EQ(r->ring_len * r->size, st.charged[EX]);
	EXPECT_EQ(r->ring_len * r->size, st.kernel.client_used[EX]);
	EXPECT_EQ(r->ring_len * r->size, st.kernel.pool[EX].used);
	ASSERT_EQ(0, memmgr_release_exec(self->mm, 1, &freed));
	EXPECT_EQ(0, freed);
	ASSERT_EQ(0, memmgr_release_exec(self->mm, 2, &freed));
	EXPECT_EQ(r->ring_len * r->size, freed);
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.pool[EX].used);
	EXPECT_EQ(DELTA(st, EX, allocs), DELTA(st, EX, frees));
	EXPECT_LIB_IDLE(st);

	ASSERT_EQ(0, sigaction(SIGBUS, &old_sa, NULL));
	pthread_mutex_destroy(&r->ring_lock);
	pthread_mutex_destroy(&r->release_lock);
	free(r);
}

/* Issue 12's interface: pins by handle, batches, retag, tags, figures. */

/* MEMMGR_IOC_LOOKUP of page id @tag on @mm's open file. */
static int kernel_lookup(struct memmgr *mm, uint64_t tag,
			 struct memmgr_lookup *l)
{
	*l = (struct memmgr_lookup){ .tag = tag };
	return ioctl(memmgr_fd(mm), MEMMGR_IOC_LOOKUP, l) ? -errno : 0;
}

static uint64_t pinned(struct memmgr *mm)
{
	return stats(mm).kernel.pool[ST].pinned;
}

/*
 * Pins by handle and by page id count together, with the kernel's ioctls
 * too, and the kernel's pinned figure follows each exactly.
 */
TEST_F(lib, pin_by_handle)
{
	struct memmgr_lookup l;
	void *p, *e, *q;
	uint64_t h, hq;

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 3, 2 * self->pg, 0,
					  MEMMGR_ALLOC_UNPINNED, &p));
	h = memmgr_handle(self->mm, p);
	ASSERT_NE(0, h);
	ASSERT_EQ(0, kernel_lookup(self->mm, 3, &l));
	EXPECT_EQ(l.handle, h);
	/* Only a storage buffer's own pointer has a handle. */
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, 2 * self->pg, 0, &e));
	EXPECT_EQ(0, memmgr_handle(self->mm, e));
	EXPECT_EQ(0, memmgr_handle(self->mm, (char *)p + self->pg));
	EXPECT_EQ(0, memmgr_handle(self->mm, NULL));

	EXPECT_EQ(0, pinned(self->mm));
	EXPECT_EQ(0, memmgr_pin_handle(self->mm, h));
	EXPECT_EQ(2 * self->pg, pinned(self->mm));
	EXPECT_EQ(0, memmgr_pin_handle(self->mm, h));
	EXPECT_EQ(0, memmgr_pin(self->mm, 3));
	EXPECT_EQ(2 * self->pg, pinned(self->mm));
	EXPECT_EQ(0, memmgr_unpin_handle(self->mm, h));
	EXPECT_EQ(0, memmgr_unpin(self->mm, 3));
	EXPECT_EQ(2 * self->pg, pinned(self->mm));
	EXPECT_EQ(0, memmgr_unpin_handle(self->mm, h));
	EXPECT_EQ(0, pinned(self->mm));
	EXPECT_EQ(-EINVAL, memmgr_unpin_handle(self->mm, h));
	EXPECT_EQ(-EINVAL, memmgr_unpin(self->mm, 3));
	/* The ioctls count the same pins. */
	EXPECT_EQ(0, memmgr_pin_ioctl(self->mm, h));
	EXPECT_EQ(2 * self->pg, pinned(self->mm));
	EXPECT_EQ(0, memmgr_pin_handle(self->mm, h));
	EXPECT_EQ(0, memmgr_unpin_ioctl(self->mm, h));
	EXPECT_EQ(2 * self->pg, pinned(self->mm));
	EXPECT_EQ(0, memmgr_unpin_handle(self->mm, h));
	EXPECT_EQ(0, pinned(self->mm));
	EXPECT_EQ(-EINVAL, memmgr_unpin_ioctl(self->mm, h));

	/* Allocated pinned: one pin, which the handle drops. */
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 4, self->pg, 0, 0, &q));
	hq = memmgr_handle(self->mm, q);
	EXPECT_NE(h, hq);
	EXPECT_EQ(self->pg, pinned(self->mm));
	EXPECT_EQ(0, memmgr_unpin_handle(self->mm, hq));
	EXPECT_EQ(0, pinned(self->mm));
	EXPECT_EQ(-EINVAL, memmgr_unpin_handle(self->mm, hq));
}

/*
 * A freed buffer's handle pins nothing, not even the buffer that took its
 * range next (at the same address in the window), which reads as zeros.
 */
TEST_F(lib, stale_handle)
{
	uint64_t h, h2;
	void *p, *q;

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1, self->pg, 0, 0, &p));
	h = memmgr_handle(self->mm, p);
	memset(p, 0xaa, self->pg);
	ASSERT_EQ(0, memmgr_free(self->mm, p));
	EXPECT_EQ(0, memmgr_handle(self->mm, p));
	EXPECT_EQ(-ENOENT, memmgr_pin_handle(self->mm, h));
	EXPECT_EQ(-ENOENT, memmgr_unpin_handle(self->mm, h));

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 2, self->pg, 0,
					  MEMMGR_ALLOC_UNPINNED, &q));
	if (variant->fast)
		EXPECT_EQ(p, q);
	EXPECT_TRUE(all_bytes(q, self->pg, 0));
	h2 = memmgr_handle(self->mm, q);
	ASSERT_NE(0, h2);
	EXPECT_NE(h, h2);
	EXPECT_EQ(-ENOENT, memmgr_pin_handle(self->mm, h));
	EXPECT_EQ(0, pinned(self->mm));
	EXPECT_EQ(0, memmgr_pin_handle(self->mm, h2));
	EXPECT_EQ(self->pg, pinned(self->mm));
	EXPECT_EQ(-ENOENT, memmgr_unpin_handle(self->mm, h));
	EXPECT_EQ(self->pg, pinned(self->mm));
	EXPECT_EQ(0, memmgr_unpin_handle(self->mm, h2));
	EXPECT_EQ(0, pinned(self->mm));
	/* Handles that were never a buffer's. */
	EXPECT_EQ(-ENOENT, memmgr_pin_handle(self->mm, 0));
	EXPECT_EQ(-ENOENT, memmgr_pin_handle(self->mm, h2 ^ (1ULL << 63)));
	EXPECT_EQ(-ENOENT, memmgr_pin_handle(self->mm, h2 | 0xffffffffULL));
	EXPECT_EQ(-ENOENT, memmgr_unpin_handle(self->mm, h2 | 0xffffffffULL));
	EXPECT_EQ(0, pinned(self->mm));
}

/*
 * Storage full of two unpinned buffers, A pinned by handle: a request of
 * B's size evicts B and not A, whose bytes stay; unpinned, A goes next.
 */
TEST_F(lib, pinned_buffer_survives_eviction)
{
	uint64_t a = self->S / 2 & ~(self->pg - 1), b = self->S - a, ha, hb;
	struct memmgr_lib_stats st;
	void *pa, *pb, *pc, *pd;

	ASSERT_LT(0, a);
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1, a, 0,
					  MEMMGR_ALLOC_UNPINNED, &pa));
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 2, b, 0,
					  MEMMGR_ALLOC_UNPINNED, &pb));
	ha = memmgr_handle(self->mm, pa);
	hb = memmgr_handle(self->mm, pb);
	ASSERT_EQ(0, memmgr_pin_handle(self->mm, ha));
	memset(pa, 0x5a, a);
	EXPECT_EQ(a, pinned(self->mm));

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 3, b, 0, 0, &pc));
	st = stats(self->mm);
	EXPECT_EQ(1, DELTA(st, ST, evictions));
	EXPECT_EQ(b, DELTA(st, ST, evicted_bytes));
	EXPECT_EQ(a + b, st.kernel.pool[ST].pinned);
	EXPECT_EQ(self->S, st.kernel.pool[ST].used);
	EXPECT_EQ(0, memmgr_lookup_page(self->mm, 1, NULL, NULL));
	EXPECT_TRUE(all_bytes(pa, a, 0x5a));
	EXPECT_EQ(-ESTALE, memmgr_lookup_page(self->mm, 2, NULL, NULL));
	EXPECT_EQ(-ESTALE, memmgr_pin_handle(self->mm, hb));
	EXPECT_EQ(-ESTALE, memmgr_unpin_handle(self->mm, hb));
	EXPECT_EQ(hb, memmgr_handle(self->mm, pb));

	EXPECT_EQ(0, memmgr_unpin_handle(self->mm, ha));
	EXPECT_EQ(b, pinned(self->mm));
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 4, a, 0, 0, &pd));
	st = stats(self->mm);
	EXPECT_EQ(2, DELTA(st, ST, evictions));
	EXPECT_EQ(a + b, DELTA(st, ST, evicted_bytes));
	EXPECT_EQ(a + b, st.kernel.pool[ST].pinned);
	EXPECT_EQ(-ESTALE, memmgr_lookup_page(self->mm, 1, NULL, NULL));
	EXPECT_EQ(-ESTALE, memmgr_pin_handle(self->mm, ha));
	/* Freed, an evicted buffer's handle is no one's. */
	ASSERT_EQ(0, memmgr_free(self->mm, pa));
	EXPECT_EQ(-ENOENT, memmgr_pin_handle(self->mm, ha));
	EXPECT_EQ(-ESTALE, memmgr_pin_handle(self->mm, hb));
}

/* A batch of three and back; nothing to do; bad arguments do nothing. */
TEST_F(lib, batch_alloc_free)
{
	uint64_t ids[3] = { 21, 22, 23 }, handles[3];
	size_t sizes[3] = { self->pg, 2 * self->pg + 1, 1 };
	struct memmgr_lib_stats st;
	size_t done = 99, size;
	unsigned char *p[3];
	void *mix[5], *q;
	int i;

	ASSERT_EQ(0, memmgr_alloc_storage_many(self->mm, 3, ids, sizes, 0, 0,
					       (void **)p, handles, &done));
	EXPECT_EQ(3, done);
	st = stats(self->mm);
	EXPECT_EQ(5 * self->pg, st.kernel.pool[ST].used);
	EXPECT_EQ(5 * self->pg, st.kernel.pool[ST].pinned);
	EXPECT_EQ(3, DELTA(st, ST, allocs));
	EXPECT_EQ(3 * self->pg + 2, st.requested[ST]);
	EXPECT_EQ(5 * self->pg, st.charged[ST]);
	EXPECT_EQ(3, st.buffers[ST]);
	for (i = 0; i < 3; i++) {
		size = (sizes[i] + self->pg - 1) & ~(self->pg - 1);
		EXPECT_EQ(0, (uintptr_t)p[i] % self->pg);
		EXPECT_TRUE(all_bytes(p[i], size, 0));
		memset(p[i], i + 1, size);
		EXPECT_EQ(handles[i], memmgr_handle(self->mm, p[i]));
		ASSERT_EQ(0, memmgr_lookup_page(self->mm, ids[i], &q, &size));
		EXPECT_EQ(p[i], q);
	}
	for (i = 0; i < 3; i++)
		EXPECT_TRUE(all_bytes(p[i], self->pg, i + 1));
	EXPECT_EQ(0, memmgr_unpin_handle(self->mm, handles[1]));
	EXPECT_EQ(2 * self->pg, pinned(self->mm));
	done = 99;
	ASSERT_EQ(0, memmgr_free_many(self->mm, 3, (void **)p, &done));
	EXPECT_EQ(3, done);
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.pool[ST].used);
	EXPECT_EQ(3, DELTA(st, ST, frees));
	EXPECT_LIB_IDLE(st);

	/* Unpinned from the start. */
	ASSERT_EQ(0, memmgr_alloc_storage_many(self->mm, 3, ids, sizes, 0,
					       MEMMGR_ALLOC_UNPINNED,
					       (void **)p, NULL, &done));
	EXPECT_EQ(3, done);
	EXPECT_EQ(0, pinned(self->mm));
	EXPECT_EQ(5 * self->pg, used(self->mm, ST));
	/* Nothing to do. */
	done = 99;
	EXPECT_EQ(0, memmgr_alloc_storage_many(self->mm, 0, NULL, NULL, 0, 0,
					       NULL, NULL, &done));
	EXPECT_EQ(0, done);
	done = 99;
	EXPECT_EQ(0, memmgr_free_many(self->mm, 0, NULL, &done));
	EXPECT_EQ(0, done);
	/* Bad arguments: nothing done, nothing asked of the kernel. */
	done = 99;
	EXPECT_EQ(-EINVAL, memmgr_alloc_storage_many(self->mm, 3, ids, sizes,
						     0, 2, (void **)p, NULL,
						     &done));
	EXPECT_EQ(0, done);
	EXPECT_EQ(-EINVAL, memmgr_alloc_storage_many(self->mm, 3, ids, sizes,
						     -2, 0, (void **)p, NULL,
						     &done));
	EXPECT_EQ(-EINVAL, memmgr_alloc_storage_many(self->mm, 1, ids, sizes,
						     0, 0, NULL, NULL, &done));
	EXPECT_EQ(3, DELTA(stats(self->mm), ST, allocs) -
		     DELTA(stats(self->mm), ST, frees));

	/* Any memory of the handle: a small object, a buffer, NULL... */
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, 100, 0, &mix[0]));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, 2 * self->pg, 0, &mix[1]));
	mix[2] = NULL;
	mix[3] = p[0];
	mix[4] = p[2];
	done = 99;
	ASSERT_EQ(0, memmgr_free_many(self->mm, 5, mix, &done));
	EXPECT_EQ(5, done);
	st = stats(self->mm);
	EXPECT_EQ(3 * self->pg, st.kernel.pool[ST].used);
	EXPECT_EQ(1, st.buffers[ST]);
	EXPECT_EQ(0, st.small_objects);
	EXPECT_EQ(self->pg, st.small_retained);
	EXPECT_EQ(self->pg, st.kernel.pool[EX].used);
	EXPECT_EQ(1, st.buffers[EX]);
	EXPECT_EQ(1, DELTA(st, EX, frees));
	EXPECT_EQ(0, memmgr_lookup_page(self->mm, 22, NULL, NULL));
}

/* A batch stops at its first failing entry: before it done, after not. */
TEST_F(lib, batch_stops_at_failure)
{
	uint64_t ids[3] = { 10, 5, 12 }, handles[3] = { 77, 77, 77 };
	size_t sizes[3] = { self->pg, self->pg, self->pg }, done = 99;
	void *p[3] = { NULL, (void *)1, (void *)1 }, *p5, *p13, *q;
	uint64_t ids2[2] = { 13, 14 }, ids3[2] = { 30, 31 };
	size_t sizes2[2] = { self->pg, 0 };
	size_t sizes3[2] = { self->S - 4 * self->pg, 2 * self->pg };
	struct memmgr_lib_stats st;
	void *f[4], *p30[2];

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 5, self->pg, 0, 0, &p5));
	EXPECT_EQ(-EEXIST, memmgr_alloc_storage_many(self->mm, 3, ids, sizes,
						     0, 0, p, handles, &done));
	EXPECT_EQ(1, done);
	ASSERT_EQ(0, memmgr_lookup_page(self->mm, 10, &q, NULL));
	EXPECT_EQ(p[0], q);
	EXPECT_EQ(handles[0], memmgr_handle(self->mm, p[0]));
	EXPECT_EQ((void *)1, p[1]);
	EXPECT_EQ((void *)1, p[2]);
	EXPECT_EQ(77, handles[1]);
	EXPECT_EQ(77, handles[2]);
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 12, NULL, NULL));
	st = stats(self->mm);
	EXPECT_EQ(2 * self->pg, st.kernel.pool[ST].used);
	EXPECT_EQ(2, DELTA(st, ST, allocs));
	EXPECT_EQ(2, st.buffers[ST]);

	/* An entry the kernel finds bad: size 0. */
	EXPECT_EQ(-EINVAL, memmgr_alloc_storage_many(self->mm, 2, ids2, sizes2,
						     0, 0, p, NULL, &done));
	EXPECT_EQ(1, done);
	p13 = p[0];
	EXPECT_EQ(0, memmgr_lookup_page(self->mm, 13, NULL, NULL));
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 14, NULL, NULL));

	/* Declined at once: storage full, nothing evictable (3 pages held). */
	EXPECT_EQ(-EAGAIN, memmgr_alloc_storage_many(self->mm, 2, ids3,
						     sizes3, 0, 0, p30, NULL,
						     &done));
	EXPECT_EQ(1, done);
	st = stats(self->mm);
	EXPECT_EQ(self->S - self->pg, st.kernel.pool[ST].used);
	EXPECT_EQ(1, DELTA(st, ST, declined));
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 31, NULL, NULL));

	/* Frees stop at a pointer that is not the handle's... */
	ASSERT_EQ(0, memmgr_lookup_page(self->mm, 10, &f[0], NULL));
	f[1] = &done;
	f[2] = p5;
	f[3] = NULL;
	EXPECT_EQ(-EINVAL, memmgr_free_many(self->mm, 4, f, &done));
	EXPECT_EQ(1, done);
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 10, NULL, NULL));
	EXPECT_EQ(0, memmgr_lookup_page(self->mm, 5, NULL, NULL));
	/* ...and at one given twice. */
	f[0] = p5;
	f[1] = p5;
	EXPECT_EQ(-EINVAL, memmgr_free_many(self->mm, 2, f, &done));
	EXPECT_EQ(1, done);
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 5, NULL, NULL));
	f[0] = p13;
	f[1] = p30[0];
	ASSERT_EQ(0, memmgr_free_many(self->mm, 2, f, &done));
	EXPECT_EQ(2, done);
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.pool[ST].used);
	EXPECT_EQ(DELTA(st, ST, allocs), DELTA(st, ST, frees));
	EXPECT_LIB_IDLE(st);
}

/*
 * More entries than one call takes: MEMMGR_BATCH_MAX + 6, the second call
 * stopped by a page id the first one took, then the rest.
 */
TEST_F(lib, batch_many_calls)
{
	size_t n = MEMMGR_BATCH_MAX + 6, stop = MEMMGR_BATCH_MAX + 2, i;
	struct memmgr_lib_stats st;
	uint64_t *ids, *handles;
	size_t *sizes, done;
	unsigned char **p;
	void *q;

	ASSERT_LE(n * self->pg, self->S);
	ids = calloc(n, sizeof(*ids));
	handles = calloc(n, sizeof(*handles));
	sizes = calloc(n, sizeof(*sizes));
	p = calloc(n, sizeof(*p));
	ASSERT_TRUE(ids && handles && sizes && p);
	for (i = 0; i < n; i++) {
		ids[i] = 1000 + i;
		sizes[i] = self->pg;
	}
	ids[stop] = ids[3];
	EXPECT_EQ(-EEXIST, memmgr_alloc_storage_many(self->mm, n, ids, sizes,
						     0, 0, (void **)p, handles,
						     &done));
	EXPECT_EQ(stop, done);
	st = stats(self->mm);
	EXPECT_EQ(stop * self->pg, st.kernel.pool[ST].used);
	EXPECT_EQ(stop, DELTA(st, ST, allocs));
	EXPECT_EQ(stop, st.buffers[ST]);
	EXPECT_EQ(NULL, p[stop]);
	EXPECT_EQ(0, handles[stop]);

	ids[stop] = 1000 + n;
	ASSERT_EQ(0, memmgr_alloc_storage_many(self->mm, n - stop, ids + stop,
					       sizes + stop, 0, 0,
					       (void **)p + stop,
					       handles + stop, &done));
	EXPECT_EQ(n - stop, done);
	for (i = 0; i < n; i++)
		*(uint64_t *)p[i] = i + 1;
	for (i = 0; i < n; i++) {
		if (*(uint64_t *)p[i] != i + 1 ||
		    memmgr_lookup_page(self->mm, ids[i], &q, NULL) ||
		    q != p[i] || memmgr_handle(self->mm, p[i]) != handles[i])
			break;
	}
	EXPECT_EQ(n, i);
	st = stats(self->mm);
	EXPECT_EQ(n * self->pg, st.kernel.pool[ST].used);
	EXPECT_EQ(n * self->pg, st.kernel.pool[ST].pinned);
	EXPECT_EQ(n, st.buffers[ST]);

	ASSERT_EQ(0, memmgr_free_many(self->mm, n, (void **)p, &done));
	EXPECT_EQ(n, done);
	st = stats(self->mm);
	EXPECT_EQ(0, st.kernel.pool[ST].used);
	EXPECT_EQ(n, DELTA(st, ST, frees));
	EXPECT_LIB_IDLE(st);
	free(p);
	free(sizes);
	free(handles);
	free(ids);
}

/*
 * A new page id for a buffer: same pointer, handle, pins and bytes; the
 * old id free at once; eviction notices name the new one.
 */
TEST_F(lib, retag)
{
	uint64_t h, freed = 0, id = memmgr_tag(1, 5), notes[4] = { 0 };
	struct memmgr_lookup l;
	void *p, *q, *r, *u;
	size_t size = 0;

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1, 2 * self->pg, 0, 0, &p));
	memset(p, 0xab, 2 * self->pg);
	h = memmgr_handle(self->mm, p);
	ASSERT_EQ(0, memmgr_retag(self->mm, 1, 2));
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 1, NULL, NULL));
	EXPECT_EQ(-ENOENT, kernel_lookup(self->mm, 1, &l));
	ASSERT_EQ(0, memmgr_lookup_page(self->mm, 2, &q, &size));
	EXPECT_EQ(p, q);
	EXPECT_EQ(2 * self->pg, size);
	EXPECT_TRUE(all_bytes(p, 2 * self->pg, 0xab));
	EXPECT_EQ(h, memmgr_handle(self->mm, p));
	ASSERT_EQ(0, kernel_lookup(self->mm, 2, &l));
	EXPECT_EQ(h, l.handle);
	EXPECT_EQ(2 * self->pg, pinned(self->mm));

	/* Page id 1 is free again; 2 is held. */
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1, self->pg, 0, 0, &r));
	EXPECT_NE(p, r);
	EXPECT_EQ(-EEXIST, memmgr_retag(self->mm, 1, 2));
	EXPECT_EQ(-EEXIST, memmgr_alloc_storage(self->mm, 2, 1, 0, 0, &q));
	EXPECT_EQ(-ENOENT, memmgr_retag(self->mm, 3, 4));
	EXPECT_EQ(0, memmgr_retag(self->mm, 2, 2));
	EXPECT_EQ(0, memmgr_lookup_page(self->mm, 2, NULL, NULL));
	ASSERT_EQ(0, memmgr_release_page(self->mm, 2, &freed));
	EXPECT_EQ(2 * self->pg, freed);
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, p));
	EXPECT_EQ(0, memmgr_lookup_page(self->mm, 1, &q, NULL));
	EXPECT_EQ(r, q);

	/* Evicted under its new page id. */
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 5, self->pg, 0,
					  MEMMGR_ALLOC_UNPINNED, &u));
	ASSERT_EQ(0, memmgr_retag(self->mm, 5, id));
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 6, self->S - self->pg, 0,
					  0, &q));
	EXPECT_EQ(1, memmgr_evicted(self->mm, notes, 4, NULL));
	EXPECT_EQ(id, notes[0]);
	EXPECT_EQ(-ESTALE, memmgr_lookup_page(self->mm, id, &q, NULL));
	EXPECT_EQ(u, q);
	EXPECT_EQ(-ESTALE, memmgr_retag(self->mm, id, 7));
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 7, NULL, NULL));
}

/* Page ids of several caches in one handle: memmgr_tag()'s layout. */
TEST_F(lib, tag_layout)
{
	void *p1, *p2, *q;

	EXPECT_EQ(0x0001000000000005ULL, memmgr_tag(1, 5));
	EXPECT_EQ(0x0002000000000005ULL, memmgr_tag(2, 5));
	EXPECT_EQ(0x0000123456789abcULL, memmgr_tag(0, 0x123456789abcULL));
	EXPECT_EQ(~0ULL, memmgr_tag(0xffff, ~0ULL));
	/* A key's bits above 48 are not kept. */
	EXPECT_EQ(0x0003000000000007ULL, memmgr_tag(3, 0xabcd000000000007ULL));
	EXPECT_EQ(memmgr_tag(3, 7), memmgr_tag(3, 0xabcd000000000007ULL));

	/* Two caches, one key: two buffers. */
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, memmgr_tag(1, 5), 1, 0, 0,
					  &p1));
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, memmgr_tag(2, 5), 1, 0, 0,
					  &p2));
	EXPECT_NE(p1, p2);
	ASSERT_EQ(0, memmgr_lookup_page(self->mm, memmgr_tag(1, 5), &q, NULL));
	EXPECT_EQ(p1, q);
	ASSERT_EQ(0, memmgr_lookup_page(self->mm, memmgr_tag(2, 5), &q, NULL));
	EXPECT_EQ(p2, q);
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 5, NULL, NULL));
	EXPECT_EQ(2 * self->pg, used(self->mm, ST));
}

/* memmgr_figures() says what STATS says, worked out here too. */
TEST_F(lib, figures_equal_stats)
{
	struct memmgr_figures f;
	struct memmgr_stats st;
	void *e, *s1, *s2;
	int p;

	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, 3 * self->pg, 0, &e));
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1, self->S, 0,
					  MEMMGR_ALLOC_UNPINNED, &s1));
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 2, self->pg, 0, 0, &s2));
	memset(&f, 0xff, sizeof(f));
	ASSERT_EQ(0, memmgr_figures(self->mm, &f));
	st = stats(self->mm).kernel;
	EXPECT_EQ(0, f.seq % 2);
	if (!variant->fast)
		EXPECT_EQ(0, f.seq);
	EXPECT_EQ(self->pg, f.page_size);
	EXPECT_EQ(self->T, f.total);
	EXPECT_EQ(self->T - 4 * self->pg, f.free);
	EXPECT_EQ(self->S, f.pool[ST].quota);
	EXPECT_EQ(self->E, f.pool[EX].quota);
	EXPECT_EQ(self->pg, f.pool[ST].used);
	EXPECT_EQ(3 * self->pg, f.pool[EX].used);
	EXPECT_EQ(1, f.pool[ST].evictions -
		     self->st0.kernel.pool[ST].evictions);
	EXPECT_EQ(self->S, f.pool[ST].evicted_bytes -
			   self->st0.kernel.pool[ST].evicted_bytes);
	EXPECT_EQ(st.page_size, f.page_size);
	EXPECT_EQ(st.total, f.total);
	EXPECT_EQ(st.free, f.free);
	for (p = 0; p < MEMMGR_NR_POOLS; p++) {
		EXPECT_EQ(st.pool[p].quota, f.pool[p].quota);
		EXPECT_EQ(st.pool[p].used, f.pool[p].used);
		EXPECT_EQ(st.pool[p].evictions, f.pool[p].evictions);
		EXPECT_EQ(st.pool[p].evicted_bytes, f.pool[p].evicted_bytes);
	}
	/* They follow: a free shows at once. */
	ASSERT_EQ(0, memmgr_free(self->mm, e));
	ASSERT_EQ(0, memmgr_figures(self->mm, &f));
	EXPECT_EQ(0, f.pool[EX].used);
	EXPECT_EQ(self->T - self->pg, f.free);
}

/*
 * A buffer freed behind the library's back (MEMMGR_IOC_FREE on its fd):
 * the kernel hands its page id, or its address in the window, out again,
 * and the library forgets the stale entry instead of keeping two.
 */
TEST_F(lib, freed_behind_the_back)
{
	struct memmgr_buf b = { 0 };
	void *p, *q, *r;

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1, self->pg, 0, 0, &p));
	b.handle = memmgr_handle(self->mm, p);
	ASSERT_EQ(0, ioctl(memmgr_fd(self->mm), MEMMGR_IOC_FREE, &b));
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1, self->pg, 0, 0, &q));
	if (variant->fast)
		EXPECT_EQ(p, q);
	ASSERT_EQ(0, memmgr_lookup_page(self->mm, 1, &r, NULL));
	EXPECT_EQ(q, r);
	EXPECT_EQ(1, stats(self->mm).buffers[ST]);
	EXPECT_EQ(self->pg, stats(self->mm).charged[ST]);
	ASSERT_EQ(0, memmgr_free(self->mm, q));
	EXPECT_EQ(-EINVAL, memmgr_free(self->mm, p));
	EXPECT_LIB_IDLE(stats(self->mm));

	/* Another page id at the same offset. */
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 2, self->pg, 0, 0, &p));
	b.handle = memmgr_handle(self->mm, p);
	ASSERT_EQ(0, ioctl(memmgr_fd(self->mm), MEMMGR_IOC_FREE, &b));
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 3, self->pg, 0, 0, &q));
	if (variant->fast) {
		EXPECT_EQ(p, q);
		EXPECT_EQ(1, stats(self->mm).buffers[ST]);
	}
	EXPECT_EQ(-ENOENT, memmgr_lookup_page(self->mm, 2, NULL, NULL));
	ASSERT_EQ(0, memmgr_lookup_page(self->mm, 3, &r, NULL));
	EXPECT_EQ(q, r);
	ASSERT_EQ(0, memmgr_free(self->mm, q));
	/* Without the window, the stale entry went when freed. */
	EXPECT_EQ(variant->fast ? -EINVAL : 0, memmgr_free(self->mm, p));
	EXPECT_LIB_IDLE(stats(self->mm));
	EXPECT_EQ(0, used(self->mm, ST));
}

/* What only a handle with the window and the state area does. */
FIXTURE(fast) {
	struct memmgr *mm;
	struct memmgr_fast *f;	/* the state area, for a look at words */
	uint64_t pg, T, S;
};

FIXTURE_SETUP(fast)
{
	struct memmgr_stats st;
	int ret;

	ret = memmgr_open(&self->mm, 0);
	if (ret == -ENODEV)
		SKIP(return, "memmgr.ko is not loaded");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(ALL_FEATURES, memmgr_features(self->mm));
	self->f = (struct memmgr_fast *)(void *)self->mm;
	ASSERT_NE(NULL, self->f->state);
	st = stats(self->mm).kernel;
	self->pg = st.page_size;
	self->T = st.total;
	self->S = st.pool[ST].quota;
	ASSERT_EQ(0, st.pool[ST].used);
	ASSERT_EQ(0, st.pool[EX].used);
	/* No word is backed before the first storage buffer. */
	EXPECT_EQ(0, self->f->nr_words);
}

FIXTURE_TEARDOWN(fast)
{
	memmgr_close(self->mm);
}

struct nosys {
	struct memmgr *mm, *legacy;
	uint64_t h;
	int filter, pin, pin_id, unpin, figures, lookup, legacy_pin;
	int legacy_figures;
	struct memmgr_figures f;
};

/* What an ioctl() fails with under no_ioctl(): no memmgr call says it. */
#define NO_IOCTL	EDOM

/* In this thread from now on, every ioctl() fails with NO_IOCTL. */
static int no_ioctl(void)
{
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | NO_IOCTL),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = ARRAY_SIZE(insns), .filter = insns,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) ? -errno : 0;
}

static void *nosys_thread(void *arg)
{
	struct memmgr_figures f;
	struct nosys *n = arg;

	n->filter = no_ioctl();
	if (n->filter)
		return NULL;
	n->pin = memmgr_pin_handle(n->mm, n->h);
	n->pin_id = memmgr_pin(n->mm, 1);
	n->unpin = memmgr_unpin_handle(n->mm, n->h);
	n->figures = memmgr_figures(n->mm, &n->f);
	/* What still makes a system call fails: the filter works. */
	n->lookup = memmgr_lookup_page(n->mm, 1, NULL, NULL);
	n->legacy_pin = memmgr_pin(n->legacy, 1);
	n->legacy_figures = memmgr_figures(n->legacy, &f);
	return NULL;
}

/*
 * Pins, unpins and figures make no system call: a thread whose every
 * ioctl() fails (seccomp) does them all, while a legacy handle's fail.
 */
TEST_F(fast, no_system_calls)
{
	struct nosys n = { .mm = self->mm };
	struct memmgr_stats st;
	pthread_t thread;
	void *p, *q;

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1, 2 * self->pg, 0,
					  MEMMGR_ALLOC_UNPINNED, &p));
	n.h = memmgr_handle(self->mm, p);
	ASSERT_EQ(0, memmgr_open(&n.legacy, MEMMGR_OPEN_NO_FAST));
	ASSERT_EQ(0, memmgr_alloc_storage(n.legacy, 1, self->pg, 0,
					  MEMMGR_ALLOC_UNPINNED, &q));
	EXPECT_EQ(0, pinned(self->mm));
	ASSERT_EQ(0, pthread_create(&thread, NULL, nosys_thread, &n));
	ASSERT_EQ(0, pthread_join(thread, NULL));
	ASSERT_EQ(0, n.filter);
	EXPECT_EQ(0, n.pin);
	EXPECT_EQ(0, n.pin_id);
	EXPECT_EQ(0, n.unpin);
	EXPECT_EQ(0, n.figures);
	EXPECT_EQ(-NO_IOCTL, n.lookup);
	EXPECT_EQ(-NO_IOCTL, n.legacy_pin);
	EXPECT_EQ(-NO_IOCTL, n.legacy_figures);
	/* Two pins and one unpin: the kernel counts the one left. */
	st = stats(self->mm).kernel;
	EXPECT_EQ(2 * self->pg, st.pool[ST].pinned);
	EXPECT_EQ(st.total, n.f.total);
	EXPECT_EQ(3 * self->pg, n.f.pool[ST].used);
	EXPECT_EQ(self->T - 3 * self->pg, n.f.free);
	EXPECT_EQ(0, memmgr_unpin(self->mm, 1));
	EXPECT_EQ(0, pinned(self->mm));
	memmgr_close(n.legacy);
}

/* The word of a buffer through its life, as uapi/linux/memmgr.h says. */
TEST_F(fast, state_words)
{
	const uint64_t used_bit = MEMMGR_STATE_USED;
	const uint64_t parked = MEMMGR_STATE_PARKED;
	const uint64_t gone = MEMMGR_STATE_GONE;
	const uint64_t freed = MEMMGR_STATE_FREED;
	struct memmgr_lookup l;
	uint64_t h, gen, *w;
	void *p, *big;

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1, self->pg, 0, 0, &p));
	h = memmgr_handle(self->mm, p);
	gen = h & ~0xffffffffULL;
	ASSERT_EQ(0, kernel_lookup(self->mm, 1, &l));
	EXPECT_EQ(0, l.offset);
	/* The handle names its word (memmgr_state_word()). */
	EXPECT_EQ(l.offset / self->pg + 1, h & 0xffffffff);
	/* Words up to this buffer's may be read now; one past it may not. */
	EXPECT_EQ(1, self->f->nr_words);
	EXPECT_EQ(-ENOENT, memmgr_pin_handle(self->mm, gen | 2));
	w = &self->f->state[l.offset / self->pg];
	EXPECT_EQ(gen | 1, *w);
	EXPECT_EQ(0, memmgr_unpin_handle(self->mm, h));
	EXPECT_EQ(gen, *w);
	EXPECT_EQ(0, memmgr_pin_handle(self->mm, h));
	EXPECT_EQ(gen | used_bit | 1, *w);
	EXPECT_EQ(0, memmgr_pin(self->mm, 1));
	EXPECT_EQ(gen | used_bit | 2, *w);
	EXPECT_EQ(0, memmgr_unpin(self->mm, 1));
	EXPECT_EQ(gen | used_bit | 1, *w);
	/* The ioctl parks it: the last unpin goes through the kernel then. */
	EXPECT_EQ(0, memmgr_pin_ioctl(self->mm, h));
	EXPECT_EQ(gen | used_bit | parked | 2, *w);
	EXPECT_EQ(0, memmgr_unpin_handle(self->mm, h));
	EXPECT_EQ(gen | used_bit | parked | 1, *w);
	EXPECT_EQ(0, memmgr_unpin_handle(self->mm, h));
	EXPECT_EQ(gen | used_bit, *w);
	EXPECT_EQ(0, pinned(self->mm));
	ASSERT_EQ(0, memmgr_free(self->mm, p));
	EXPECT_EQ(gen | gone | freed, *w);

	/* The next buffer there: its own generation, evicted, freed. */
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 2, self->pg, 0,
					  MEMMGR_ALLOC_UNPINNED, &p));
	h = memmgr_handle(self->mm, p);
	EXPECT_NE(gen, h & ~0xffffffffULL);
	gen = h & ~0xffffffffULL;
	EXPECT_EQ(gen, *w);
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 3, self->S, 0, 0, &big));
	EXPECT_EQ(gen | gone, *w);
	EXPECT_EQ(-ESTALE, memmgr_pin_handle(self->mm, h));
	EXPECT_EQ(gen | gone, *w);
	ASSERT_EQ(0, memmgr_free(self->mm, p));
	EXPECT_EQ(gen | gone | freed, *w);
	EXPECT_EQ(-ENOENT, memmgr_pin_handle(self->mm, h));
}

/* MEMMGR_STATE_PINS pins at most; the kernel counts them as pinned. */
TEST_F(fast, pins_overflow)
{
	const uint64_t max = MEMMGR_STATE_PINS, used_bit = MEMMGR_STATE_USED;
	uint64_t h, gen, *w, old;
	void *p;

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1, self->pg, 0, 0, &p));
	h = memmgr_handle(self->mm, p);
	gen = h & ~0xffffffffULL;
	w = memmgr_state_word(self->mm, h);
	ASSERT_NE(NULL, w);
	/* MEMMGR_STATE_PINS - 1 pins, as if taken one by one. */
	old = gen | 1;
	ASSERT_TRUE(__atomic_compare_exchange_n(w, &old,
						gen | used_bit | (max - 1),
						0, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST));
	EXPECT_EQ(0, memmgr_pin_handle(self->mm, h));
	EXPECT_EQ(gen | used_bit | max, *w);
	EXPECT_EQ(-EOVERFLOW, memmgr_pin_handle(self->mm, h));
	EXPECT_EQ(-EOVERFLOW, memmgr_pin(self->mm, 1));
	EXPECT_EQ(-EOVERFLOW, memmgr_pin_ioctl(self->mm, h));
	EXPECT_EQ(gen | used_bit | max, *w);
	EXPECT_EQ(self->pg, pinned(self->mm));
	EXPECT_EQ(0, memmgr_unpin_handle(self->mm, h));
	EXPECT_EQ(gen | used_bit | (max - 1), *w);
	/* Back to one pin, then none. */
	old = gen | used_bit | (max - 1);
	ASSERT_TRUE(__atomic_compare_exchange_n(w, &old, gen | used_bit | 1,
						0, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST));
	EXPECT_EQ(0, memmgr_unpin_handle(self->mm, h));
	EXPECT_EQ(0, pinned(self->mm));
	EXPECT_EQ(-EINVAL, memmgr_unpin_handle(self->mm, h));
}

/* The process's mappings of /dev/memmgr, in /proc/self/maps. */
static int nr_device_mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "memmgr") != NULL;
	fclose(f);
	return n;
}

/*
 * Every buffer is at window + its offset: no mapping of its own, however
 * many (storage, execution buffers, chunks of small objects).
 */
TEST_F(fast, one_window)
{
	struct memmgr_lookup l1, l2;
	void *p1, *p2, *p;
	int before, i;

	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1, 3 * self->pg, 0, 0,
					  &p1));
	ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, 2 * self->pg, 0, &p));
	ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 2, self->pg, 0, 0, &p2));
	ASSERT_EQ(0, kernel_lookup(self->mm, 1, &l1));
	ASSERT_EQ(0, kernel_lookup(self->mm, 2, &l2));
	EXPECT_EQ(0, l1.offset);
	EXPECT_EQ(5 * self->pg, l2.offset);
	EXPECT_EQ((intptr_t)(l2.offset - l1.offset), (char *)p2 - (char *)p1);
	EXPECT_EQ((char *)p1 + 3 * self->pg, p);

	/* The window at least. */
	before = nr_device_mappings();
	ASSERT_LE(1, before);
	for (i = 0; i < 50; i++) {
		ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 100 + i, self->pg,
						  0, 0, &p));
		ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 1, 2 * self->pg, 0,
					       &p));
		ASSERT_EQ(0, memmgr_alloc_exec(self->mm, 2 + i, 16, 0, &p));
	}
	EXPECT_EQ(before, nr_device_mappings());
	EXPECT_EQ(54 * self->pg, used(self->mm, ST));
	EXPECT_EQ(2 * self->pg + 50 * 3 * self->pg, used(self->mm, EX));
}

/* Enough mappings that the tables grow: each one is still found. */
TEST_F(lib, many_mappings)
{
	enum { N = 600 };
	unsigned char **p;
	unsigned int seed = 3;
	int i, j;

	p = calloc(N, sizeof(*p));
	ASSERT_NE(NULL, p);
	for (i = 0; i < N; i++) {
		ASSERT_EQ(0, memmgr_alloc_storage(self->mm, 1000 + i,
						  self->pg - 1, 0, 0,
						  (void **)&p[i]));
		p[i][0] = (unsigned char)i;
	}
	EXPECT_EQ(N * self->pg, used(self->mm, ST));
	for (i = 0; i < N; i++) {
		void *q = NULL;

		ASSERT_EQ(0, memmgr_lookup_page(self->mm, 1000 + i, &q, NULL));
		EXPECT_EQ(p[i], q);
		EXPECT_EQ((unsigned char)i, p[i][0]);
	}
	/* Free in a random order. */
	for (i = N - 1; i > 0; i--) {
		unsigned char *t;

		j = rand_r(&seed) % (i + 1);
		t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, memmgr_free(self->mm, p[i]));
	EXPECT_EQ(0, used(self->mm, ST));
	EXPECT_LIB_IDLE(stats(self->mm));
	free(p);
}

/* @arg: the memmgr_open() flags, as a pointer. */
static void *leak_workload(void *arg)
{
	struct memmgr *mm;
	intptr_t ret = 1;
	uint64_t ids[3] = { 7, 8, 9 };
	size_t sizes[3] = { 1, 2, 3 }, done;
	void *p[300];
	int i;

	if (memmgr_open(&mm, (unsigned int)(uintptr_t)arg))
		return (void *)ret;
	for (i = 0; i < 300; i++)
		if (memmgr_alloc_exec(mm, i % 3, 1 + i * 16, 0, &p[i]))
			goto out_close;
	for (i = 0; i < 100; i++)
		if (memmgr_free(mm, p[i]))
			goto out_close;
	if (memmgr_release_exec(mm, 1, NULL) ||
	    memmgr_alloc_storage(mm, 1, 1, 0, 0, &p[0]) ||
	    memmgr_alloc_storage(mm, 2, 1, 0, 0, &p[0]) ||
	    memmgr_release_page(mm, 1, NULL) ||
	    memmgr_alloc_storage_many(mm, 3, ids, sizes, 0, 0, p, NULL,
				      &done) ||
	    memmgr_retag(mm, 7, 10) ||
	    memmgr_free_many(mm, 2, p, &done))
		goto out_close;
	ret = 0;
out_close:
	memmgr_close(mm);
	return (void *)ret;
}

static void *run_thread(void *(*fn)(void *), void *arg)
{
	pthread_t thread;
	void *ret;

	if (pthread_create(&thread, NULL, fn, arg) ||
	    pthread_join(thread, &ret))
		return (void *)-1;
	return ret;
}

/*
 * The library gives back all the memory it took from malloc().  The work
 * runs in a thread, whose exit empties its malloc cache (tcache), which
 * mallinfo2() counts as in use; it runs twice and the second run is
 * measured, so what the C library keeps for threads (a cached stack and
 * its TLS, an arena) is already there.
 */
TEST(no_leaks)
{
	size_t before, after;

	ASSERT_EQ(NULL, run_thread(leak_workload, NULL));
	before = mallinfo2().uordblks;
	ASSERT_EQ(NULL, run_thread(leak_workload, NULL));
	after = mallinfo2().uordblks;
	EXPECT_EQ(before, after);
}

/* The same without the window, the state area and the figures page. */
TEST(no_leaks_legacy)
{
	void *flags = (void *)(uintptr_t)MEMMGR_OPEN_NO_FAST;
	size_t before, after;

	ASSERT_EQ(NULL, run_thread(leak_workload, flags));
	before = mallinfo2().uordblks;
	ASSERT_EQ(NULL, run_thread(leak_workload, flags));
	after = mallinfo2().uordblks;
	EXPECT_EQ(before, after);
}

TEST(error_strings)
{
	EXPECT_STREQ("Success", memmgr_strerror(0));
	EXPECT_STREQ("Memory is not available now (request declined)",
		     memmgr_strerror(-EAGAIN));
	EXPECT_STREQ(memmgr_strerror(-EAGAIN), memmgr_strerror(EAGAIN));
	EXPECT_STREQ("Memory did not become available in time",
		     memmgr_strerror(-ETIMEDOUT));
	EXPECT_STREQ("Storage buffer was evicted", memmgr_strerror(-ESTALE));
	EXPECT_STREQ("memmgr is not loaded (no /dev/memmgr)",
		     memmgr_strerror(-ENODEV));
	EXPECT_STREQ("Released by its id while being allocated",
		     memmgr_strerror(-ECANCELED));
	EXPECT_STREQ("Request larger than its pool could ever grant",
		     memmgr_strerror(-E2BIG));
	/* Others as the C library says them; never NULL. */
	EXPECT_STREQ("Bad file descriptor", memmgr_strerror(-EBADF));
	EXPECT_STREQ("Unknown error", memmgr_strerror(-4000));
}

TEST_HARNESS_MAIN
