// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests of memmgr's answers to bad input, run in a VM against the
 * loaded module: every ioctl with bad pointers, non-zero reserved fields,
 * unknown flag bits, pools, sizes and timeouts, bad handles and wrong
 * command numbers; mmap() outside the rules; and what happens to mappings
 * across mprotect(), mremap(), munmap(), close(), fork(), free and
 * eviction.
 *
 * Every bad call must fail with its exact errno and leave MEMMGR_IOC_STATS
 * (the whole structure, read on the same file) as it was, except where the
 * test works out the change: E2BIG counts one more declined request in its
 * pool.  An argument the command cannot write back (on a read-only page)
 * fails with EFAULT before anything is done.  The number of bad inputs
 * tried is printed after the totals.
 *
 * The batched calls (ALLOC_MANY, FREE_MANY) fail at their first bad
 * entry, with the entries before it done: where the test puts a bad entry
 * after good ones, it works out the change those made to the stats.
 *
 * Sizes come from what the module reports (page size, total, quotas); the
 * tests need a reserve of at least 64 pages and an otherwise idle device.
 * In all, 2632 bad inputs (each test's comment gives its share).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/memmgr.h>

#include "kselftest_harness.h"
#include "memmgr_util.h"

#define DEV "/dev/memmgr"
#define NR(a)	(sizeof(a) / sizeof((a)[0]))
#define ST MEMMGR_POOL_STORAGE
#define EX MEMMGR_POOL_EXEC

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE	0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC		0x80000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP	4
#endif

/*
 * Bad inputs tried, over every test: the harness runs each test in a child
 * of its own, so the count lives in shared memory.
 */
static unsigned int *nr_bad;
static pid_t harness_pid;

static void __attribute__((constructor)) bad_count_init(void)
{
	void *p = mmap(NULL, sizeof(*nr_bad), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	nr_bad = p == MAP_FAILED ? NULL : p;
	harness_pid = getpid();
}

static void __attribute__((destructor)) bad_count_print(void)
{
	if (nr_bad && getpid() == harness_pid)
		printf("# %u bad inputs tried, each checked for its errno and the stats\n",
		       *nr_bad);
}

static void bad_count(void)
{
	if (nr_bad)
		__atomic_fetch_add(nr_bad, 1, __ATOMIC_RELAXED);
}

/* mmap() without libc's checks of the offset: the kernel sees it all. */
static long sys_mmap(void *addr, size_t len, int prot, int flags, int fd,
		     __u64 off)
{
	return syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static void *map(int fd, __u64 off, size_t len)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
}

static const char *cmd_name(unsigned long cmd)
{
	switch (cmd) {
	case MEMMGR_IOC_ALLOC:	return "ALLOC";
	case MEMMGR_IOC_FREE:	return "FREE";
	case MEMMGR_IOC_PIN:	return "PIN";
	case MEMMGR_IOC_UNPIN:	return "UNPIN";
	case MEMMGR_IOC_LOOKUP:	return "LOOKUP";
	case MEMMGR_IOC_RELEASE: return "RELEASE";
	case MEMMGR_IOC_STATS:	return "STATS";
	case MEMMGR_IOC_EVICTED: return "EVICTED";
	case MEMMGR_IOC_ALLOC_MANY: return "ALLOC_MANY";
	case MEMMGR_IOC_FREE_MANY: return "FREE_MANY";
	case MEMMGR_IOC_RETAG:	return "RETAG";
	}
	return "?";
}

/* The name of the 64-bit word @w of struct memmgr_stats. */
static void stats_word_name(size_t w, char *name, size_t n)
{
	static const char * const top[] = {
		"total", "free", "page_size/waiters", "client_used[0]",
		"client_used[1]",
	};
	static const char * const pool[] = {
		"quota", "used", "borrowed", "peak", "pinned", "allocs",
		"frees", "declined", "held", "evictions", "evicted_bytes",
	};
	size_t first = offsetof(struct memmgr_stats, pool) / 8;
	size_t per = sizeof(struct memmgr_pool_stats) / 8;

	if (w < first) {
		snprintf(name, n, "%s", top[w]);
	} else if (w < first + MEMMGR_NR_POOLS * per) {
		size_t i = (w - first) % per;

		snprintf(name, n, "pool[%zu].%s", (w - first) / per,
			 i < NR(pool) ? pool[i] :
			 "reserved");
	} else {
		snprintf(name, n, "reserved");
	}
}

/* Compare every word of two snapshots; log each difference. */
static bool stats_same(struct __test_metadata *_metadata,
		       const struct memmgr_stats *want,
		       const struct memmgr_stats *got, const char *what)
{
	const __u64 *w = (const __u64 *)want, *g = (const __u64 *)got;
	bool same = true;
	char name[48];
	size_t i;

	for (i = 0; i < sizeof(*want) / sizeof(*w); i++) {
		if (w[i] == g[i])
			continue;
		stats_word_name(i, name, sizeof(name));
		TH_LOG("%s: stats %s is %llu, expected %llu", what, name,
		       (unsigned long long)g[i], (unsigned long long)w[i]);
		same = false;
	}
	return same;
}

/* One bad call's outcome: -1 with errno @err, and the stats as @want. */
static void bad_check(struct __test_metadata *_metadata, int fd, long ret,
		      int got, int err, const struct memmgr_stats *want,
		      const char *what)
{
	struct memmgr_stats now = mm_stats(fd);

	bad_count();
	if (ret != -1 || got != err) {
		TH_LOG("%s: returned %ld errno %d (%s), expected -1 errno %d (%s)",
		       what, ret, got, strerror(got), err, strerror(err));
		_metadata->passed = 0;
	}
	if (!stats_same(_metadata, want, &now, what))
		_metadata->passed = 0;
}

/*
 * BAD_AS(fd, err, want, call, fmt...): @call must fail with @err and leave
 * the stats of @fd as *@want.  BAD() wants them unchanged.
 */
#define BAD_AS(fd, err, want, call, ...) do {				\
	char __what[200];						\
	long __ret;							\
	int __err;							\
									\
	snprintf(__what, sizeof(__what), __VA_ARGS__);			\
	errno = 0;							\
	__ret = (long)(call);						\
	__err = errno;							\
	bad_check(_metadata, fd, __ret, __err, err, want, __what);	\
} while (0)

#define BAD(fd, err, call, ...) do {					\
	struct memmgr_stats __want = mm_stats(fd);			\
									\
	BAD_AS(fd, err, &__want, call, __VA_ARGS__);			\
} while (0)

/* Is [p, p + len) mapped?  mincore() says ENOMEM for unmapped pages. */
static bool mapped(void *p, size_t len)
{
	unsigned char vec[16];

	return !mincore(p, len, vec);
}

/*
 * What every fixture starts with: an idle device, then on one file a
 * pinned storage buffer of two pages (tag 1) right before an exec buffer
 * of one page (tag 2), at adjacent offsets, after a page of offsets that
 * no buffer holds; and three pages of this process: read-write,
 * inaccessible, read-only.
 */
struct base {
	int fd;
	__u64 pg, T, S, E;
	struct memmgr_alloc st, ex;
	unsigned char *rw, *none, *ro;
};

static void base_setup(struct __test_metadata *_metadata, struct base *d)
{
	struct memmgr_stats st;
	struct memmgr_alloc a;

	d->fd = mm_open(0);
	ASSERT_LE(0, d->fd) {
		TH_LOG(DEV ": %s (is memmgr.ko loaded?)", strerror(errno));
	}
	st = mm_stats(d->fd);
	d->pg = st.page_size;
	d->T = st.total;
	d->S = st.pool[ST].quota;
	d->E = st.pool[EX].quota;
	ASSERT_LE(64 * d->pg, d->T);
	ASSERT_LE(8 * d->pg, d->S);
	ASSERT_EQ(0, st.pool[ST].used);
	ASSERT_EQ(0, st.pool[EX].used);
	ASSERT_EQ(0, st.waiters);

	/*
	 * A page of offsets before st that no buffer holds: a one-page
	 * buffer takes it first and is freed once st and ex stand after it.
	 */
	ASSERT_EQ(0, mm_alloc(d->fd, EX, 1, 0, 0, &a));
	ASSERT_EQ(0, mm_alloc(d->fd, ST, 2 * d->pg, 1, 0, &d->st));
	ASSERT_EQ(0, mm_alloc(d->fd, EX, d->pg, 2, 0, &d->ex));
	ASSERT_EQ(0, mm_buf(d->fd, MEMMGR_IOC_FREE, a.handle));
	ASSERT_EQ(a.offset + d->pg, d->st.offset);
	ASSERT_EQ(d->st.offset + d->st.granted, d->ex.offset);

	d->rw = mmap(NULL, 3 * d->pg, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, d->rw);
	d->none = d->rw + d->pg;
	d->ro = d->rw + 2 * d->pg;
	ASSERT_EQ(0, mprotect(d->none, d->pg, PROT_NONE));
	ASSERT_EQ(0, mprotect(d->ro, d->pg, PROT_READ));
}

static void base_teardown(struct base *d)
{
	if (d->fd >= 0)
		close(d->fd);
}

FIXTURE(dev) {
	struct base d;
};

FIXTURE_SETUP(dev)
{
	self->d.fd = -1;
	base_setup(_metadata, &self->d);
}

FIXTURE_TEARDOWN(dev)
{
	base_teardown(&self->d);
}

/*
 * The pointer and command-number checks, for each of the eleven commands.
 * Per command: 1 NULL + 1 unmapped + 1 straddling + 2 kernel addresses +
 * 6 sizes + 3 directions + 5 type codes = 19 bad inputs.
 */
FIXTURE(abi) {
	struct base d;
	unsigned char arg[1 << 14];	/* _IOC_SIZEMASK + 1 */
};

FIXTURE_VARIANT(abi) {
	unsigned long cmd;
};

FIXTURE_VARIANT_ADD(abi, alloc) { .cmd = MEMMGR_IOC_ALLOC };
FIXTURE_VARIANT_ADD(abi, free) { .cmd = MEMMGR_IOC_FREE };
FIXTURE_VARIANT_ADD(abi, pin) { .cmd = MEMMGR_IOC_PIN };
FIXTURE_VARIANT_ADD(abi, unpin) { .cmd = MEMMGR_IOC_UNPIN };
FIXTURE_VARIANT_ADD(abi, lookup) { .cmd = MEMMGR_IOC_LOOKUP };
FIXTURE_VARIANT_ADD(abi, release) { .cmd = MEMMGR_IOC_RELEASE };
FIXTURE_VARIANT_ADD(abi, stats) { .cmd = MEMMGR_IOC_STATS };
FIXTURE_VARIANT_ADD(abi, evicted) { .cmd = MEMMGR_IOC_EVICTED };
FIXTURE_VARIANT_ADD(abi, alloc_many) { .cmd = MEMMGR_IOC_ALLOC_MANY };
FIXTURE_VARIANT_ADD(abi, free_many) { .cmd = MEMMGR_IOC_FREE_MANY };
FIXTURE_VARIANT_ADD(abi, retag) { .cmd = MEMMGR_IOC_RETAG };

FIXTURE_SETUP(abi)
{
	self->d.fd = -1;
	base_setup(_metadata, &self->d);
	memset(self->arg, 0, sizeof(self->arg));
}

FIXTURE_TEARDOWN(abi)
{
	base_teardown(&self->d);
}

TEST_F(abi, null_arg_efault)
{
	unsigned long cmd = variant->cmd;

	BAD(self->d.fd, EFAULT, ioctl(self->d.fd, cmd, NULL), "%s(NULL)",
	    cmd_name(cmd));
}

TEST_F(abi, unmapped_arg_efault)
{
	unsigned long cmd = variant->cmd;

	BAD(self->d.fd, EFAULT, ioctl(self->d.fd, cmd, self->d.none),
	    "%s(PROT_NONE page)", cmd_name(cmd));
}

/* All but the last byte readable and writable: still EFAULT. */
TEST_F(abi, straddling_arg_efault)
{
	unsigned long cmd = variant->cmd;
	unsigned char *arg = self->d.none - (_IOC_SIZE(cmd) - 1);

	BAD(self->d.fd, EFAULT, ioctl(self->d.fd, cmd, arg),
	    "%s(last byte on a PROT_NONE page)", cmd_name(cmd));
}

TEST_F(abi, kernel_arg_efault)
{
	static const unsigned long addrs[] = {
		0xffffffffff600000UL,	/* the kernel's half (vsyscall) */
		1UL << 63,		/* non-canonical */
	};
	unsigned long cmd = variant->cmd;
	unsigned int i;

	for (i = 0; i < NR(addrs); i++)
		BAD(self->d.fd, EFAULT,
		    ioctl(self->d.fd, cmd, (void *)addrs[i]), "%s(%#lx)",
		    cmd_name(cmd), addrs[i]);
}

/* The same number and direction with another size is another command. */
TEST_F(abi, wrong_size_enotty)
{
	unsigned long cmd = variant->cmd, bad;
	unsigned int size = _IOC_SIZE(cmd);
	const unsigned int sizes[] = {
		0, size - 1, size + 1, size + 8, 2 * size, _IOC_SIZEMASK,
	};
	unsigned int i;

	for (i = 0; i < NR(sizes); i++) {
		ASSERT_NE(size, sizes[i]);
		bad = _IOC(_IOC_DIR(cmd), MEMMGR_IOC_MAGIC, _IOC_NR(cmd),
			   sizes[i]);
		BAD(self->d.fd, ENOTTY, ioctl(self->d.fd, bad, self->arg),
		    "%s with size %u (%#lx)", cmd_name(cmd), sizes[i], bad);
	}
}

TEST_F(abi, wrong_direction_enotty)
{
	static const unsigned int dirs[] = {
		_IOC_NONE, _IOC_READ, _IOC_WRITE, _IOC_READ | _IOC_WRITE,
	};
	unsigned long cmd = variant->cmd, bad;
	unsigned int i, tried = 0;

	for (i = 0; i < NR(dirs); i++) {
		if (dirs[i] == _IOC_DIR(cmd))
			continue;
		bad = _IOC(dirs[i], MEMMGR_IOC_MAGIC, _IOC_NR(cmd),
			   _IOC_SIZE(cmd));
		BAD(self->d.fd, ENOTTY, ioctl(self->d.fd, bad, self->arg),
		    "%s with direction %u (%#lx)", cmd_name(cmd), dirs[i],
		    bad);
		tried++;
	}
	EXPECT_EQ(3, tried);
}

TEST_F(abi, wrong_type_enotty)
{
	static const unsigned int types[] = {
		MEMMGR_IOC_MAGIC - 1, MEMMGR_IOC_MAGIC + 1,
		MEMMGR_IOC_MAGIC & 0x7f, 'x', 0xff,
	};
	unsigned long cmd = variant->cmd, bad;
	unsigned int i;

	for (i = 0; i < NR(types); i++) {
		bad = _IOC(_IOC_DIR(cmd), types[i], _IOC_NR(cmd),
			   _IOC_SIZE(cmd));
		BAD(self->d.fd, ENOTTY, ioctl(self->d.fd, bad, self->arg),
		    "%s with type %#x (%#lx)", cmd_name(cmd), types[i], bad);
	}
}

/*
 * The first LOOKUP argument, before it had flags and reserved fields: its
 * command number (another size) is no command any more.
 */
struct memmgr_lookup_v1 {
	__u64 tag;
	__u64 handle;
	__u64 offset;
	__u64 size;
};

#define MEMMGR_IOC_LOOKUP_V1 \
	_IOWR(MEMMGR_IOC_MAGIC, 0x04, struct memmgr_lookup_v1)

/*
 * Numbers past the last command, in every direction and with every
 * argument size of the ABI, the old LOOKUP's included (struct
 * memmgr_batch has the size of struct memmgr_evicted, struct memmgr_retag
 * that of the old LOOKUP's): 6 x 4 x 8 = 192 bad inputs.
 */
TEST_F(dev, unknown_nr_enotty)
{
	static const unsigned int nrs[] = {
		0x0b, 0x0c, 0x3f, 0x7f, 0x80, 0xff,
	};
	static const unsigned int dirs[] = {
		_IOC_NONE, _IOC_READ, _IOC_WRITE, _IOC_READ | _IOC_WRITE,
	};
	static const unsigned int sizes[] = {
		0, sizeof(struct memmgr_buf), sizeof(struct memmgr_release),
		sizeof(struct memmgr_lookup_v1), sizeof(struct memmgr_evicted),
		sizeof(struct memmgr_lookup), sizeof(struct memmgr_alloc),
		sizeof(struct memmgr_stats),
	};
	static unsigned char arg[sizeof(struct memmgr_stats)];
	unsigned int n, d, s;
	unsigned long bad;

	ASSERT_EQ(0x0a, _IOC_NR(MEMMGR_IOC_RETAG));
	ASSERT_EQ(sizeof(struct memmgr_evicted), sizeof(struct memmgr_batch));
	ASSERT_EQ(sizeof(struct memmgr_lookup_v1), sizeof(struct memmgr_retag));
	for (n = 0; n < NR(nrs); n++)
		for (d = 0; d < NR(dirs); d++)
			for (s = 0; s < NR(sizes); s++) {
				bad = _IOC(dirs[d], MEMMGR_IOC_MAGIC, nrs[n],
					   sizes[s]);
				BAD(self->d.fd, ENOTTY,
				    ioctl(self->d.fd, bad, arg),
				    "unknown command %#lx", bad);
			}
}

/*
 * The 32-byte LOOKUP of a tag this file holds: ENOTTY, and nothing is
 * written back.  1 bad input.
 */
TEST_F(dev, old_lookup_enotty)
{
	struct memmgr_lookup_v1 l = { .tag = self->d.st.tag };
	struct memmgr_lookup now;

	ASSERT_EQ(32, sizeof(struct memmgr_lookup_v1));
	ASSERT_EQ(64, sizeof(struct memmgr_lookup));
	ASSERT_NE(MEMMGR_IOC_LOOKUP, MEMMGR_IOC_LOOKUP_V1);
	BAD(self->d.fd, ENOTTY, ioctl(self->d.fd, MEMMGR_IOC_LOOKUP_V1, &l),
	    "LOOKUP with the 32-byte struct (%#lx)",
	    (unsigned long)MEMMGR_IOC_LOOKUP_V1);
	EXPECT_EQ(self->d.st.tag, l.tag);
	EXPECT_EQ(0, l.handle);
	EXPECT_EQ(0, l.offset);
	EXPECT_EQ(0, l.size);
	/* The 64-byte LOOKUP finds it. */
	ASSERT_EQ(0, mm_lookup(self->d.fd, self->d.st.tag, &now));
	EXPECT_EQ(self->d.st.handle, now.handle);
	EXPECT_EQ(self->d.st.offset, now.offset);
	EXPECT_EQ(self->d.st.granted, now.size);
}

/*
 * Fields that must hold certain values, tried against a request that
 * succeeds as it is (the test makes it at the end, to prove it): flags and
 * reserved fields get every bit that is not defined, one at a time, then
 * 0xff in each byte, all ones, 0x55... and 0xaa...; other fields get a
 * list of bad values.
 */
enum tmpl {
	ALLOC_ST, ALLOC_EX, FREE_ST, PIN_ST, UNPIN_ST, RELEASE_EX, LOOKUP_ST,
	EVICTED_NONE, ALLOC_MANY_ST, ALLOC_MANY_EX, FREE_MANY_ST, RETAG_ST,
};

/*
 * A batch and what it points at, in one argument: a field of an entry has
 * its offset here as a field of the header has.  ALLOC_MANY_ST allocates
 * a storage page then an exec page, ALLOC_MANY_EX the other way round.
 */
struct many_arg {
	struct memmgr_batch b;
	struct memmgr_alloc e[2];
	__u64 h[1];
};

union arg {
	struct memmgr_alloc alloc;
	struct memmgr_buf buf;
	struct memmgr_release rel;
	struct memmgr_lookup lookup;
	struct memmgr_evicted evicted;
	struct many_arg many;
	struct memmgr_retag retag;
};

FIXTURE(field) {
	struct base d;
};

FIXTURE_VARIANT(field) {
	enum tmpl tmpl;
	size_t off;		/* of the field */
	unsigned int width;	/* its bytes: 4 or 8 */
	unsigned int first_bit;	/* the lowest bit that is not defined */
	const __u64 *values;	/* or these values */
	unsigned int nr_values;
	int err;
};

static const __u64 bad_pools[] = {
	MEMMGR_NR_POOLS, MEMMGR_NR_POOLS + 1, 0x100, 0x80000000, 0xfffffffe,
	0xffffffff,
};

static const __u64 zero_size[] = { 0 };

static const __u64 bad_timeouts[] = {
	(__u64)-2, (__u64)-3, (__u64)-1000, (__u64)INT32_MIN,
	(__u64)INT64_MIN + 1, (__u64)INT64_MIN,
};

#define ALLOC_OFF(f)	offsetof(struct memmgr_alloc, f)

/* 31 bits + 4 bytes + 3 patterns = 38 bad inputs */
FIXTURE_VARIANT_ADD(field, alloc_flags_storage) {
	.tmpl = ALLOC_ST, .off = ALLOC_OFF(flags), .width = 4,
	.first_bit = 1, .err = EINVAL,
};

/* 32 + 4 + 3 = 39: bit 0 is MEMMGR_ALLOC_UNPINNED, storage only. */
FIXTURE_VARIANT_ADD(field, alloc_flags_exec) {
	.tmpl = ALLOC_EX, .off = ALLOC_OFF(flags), .width = 4,
	.first_bit = 0, .err = EINVAL,
};

/* 64 + 8 + 3 = 75 each */
FIXTURE_VARIANT_ADD(field, alloc_reserved0_storage) {
	.tmpl = ALLOC_ST, .off = ALLOC_OFF(reserved[0]), .width = 8,
	.err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, alloc_reserved1_storage) {
	.tmpl = ALLOC_ST, .off = ALLOC_OFF(reserved[1]), .width = 8,
	.err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, alloc_reserved0_exec) {
	.tmpl = ALLOC_EX, .off = ALLOC_OFF(reserved[0]), .width = 8,
	.err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, alloc_reserved1_exec) {
	.tmpl = ALLOC_EX, .off = ALLOC_OFF(reserved[1]), .width = 8,
	.err = EINVAL,
};

/* 6 */
FIXTURE_VARIANT_ADD(field, alloc_pool) {
	.tmpl = ALLOC_ST, .off = ALLOC_OFF(pool), .width = 4,
	.values = bad_pools, .nr_values = NR(bad_pools), .err = EINVAL,
};

/* 1 each */
FIXTURE_VARIANT_ADD(field, alloc_size0_storage) {
	.tmpl = ALLOC_ST, .off = ALLOC_OFF(size), .width = 8,
	.values = zero_size, .nr_values = 1, .err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, alloc_size0_exec) {
	.tmpl = ALLOC_EX, .off = ALLOC_OFF(size), .width = 8,
	.values = zero_size, .nr_values = 1, .err = EINVAL,
};

/* 6 each */
FIXTURE_VARIANT_ADD(field, alloc_timeout_storage) {
	.tmpl = ALLOC_ST, .off = ALLOC_OFF(timeout_ms), .width = 8,
	.values = bad_timeouts, .nr_values = NR(bad_timeouts),
	.err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, alloc_timeout_exec) {
	.tmpl = ALLOC_EX, .off = ALLOC_OFF(timeout_ms), .width = 8,
	.values = bad_timeouts, .nr_values = NR(bad_timeouts),
	.err = EINVAL,
};

/* 64 + 8 + 3 = 75 each */
FIXTURE_VARIANT_ADD(field, free_flags) {
	.tmpl = FREE_ST, .off = offsetof(struct memmgr_buf, flags),
	.width = 8, .err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, pin_flags) {
	.tmpl = PIN_ST, .off = offsetof(struct memmgr_buf, flags),
	.width = 8, .err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, unpin_flags) {
	.tmpl = UNPIN_ST, .off = offsetof(struct memmgr_buf, flags),
	.width = 8, .err = EINVAL,
};

/* 32 + 4 + 3 = 39 */
FIXTURE_VARIANT_ADD(field, release_flags) {
	.tmpl = RELEASE_EX, .off = offsetof(struct memmgr_release, flags),
	.width = 4, .err = EINVAL,
};

/* 6 */
FIXTURE_VARIANT_ADD(field, release_pool) {
	.tmpl = RELEASE_EX, .off = offsetof(struct memmgr_release, pool),
	.width = 4, .values = bad_pools, .nr_values = NR(bad_pools),
	.err = EINVAL,
};

#define LOOKUP_OFF(f)	offsetof(struct memmgr_lookup, f)

/* 63 + 8 + 3 = 74: bit 0 is MEMMGR_LOOKUP_HANDLE. */
FIXTURE_VARIANT_ADD(field, lookup_flags) {
	.tmpl = LOOKUP_ST, .off = LOOKUP_OFF(flags), .width = 8,
	.first_bit = 1, .err = EINVAL,
};

/* 64 + 8 + 3 = 75 each */

FIXTURE_VARIANT_ADD(field, lookup_reserved0) {
	.tmpl = LOOKUP_ST, .off = LOOKUP_OFF(reserved[0]), .width = 8,
	.err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, lookup_reserved1) {
	.tmpl = LOOKUP_ST, .off = LOOKUP_OFF(reserved[1]), .width = 8,
	.err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, lookup_reserved2) {
	.tmpl = LOOKUP_ST, .off = LOOKUP_OFF(reserved[2]), .width = 8,
	.err = EINVAL,
};

#define EVICTED_OFF(f)	offsetof(struct memmgr_evicted, f)

/* 32 + 4 + 3 = 39 */
FIXTURE_VARIANT_ADD(field, evicted_flags) {
	.tmpl = EVICTED_NONE, .off = EVICTED_OFF(flags), .width = 4,
	.err = EINVAL,
};

/* 64 + 8 + 3 = 75 each */
FIXTURE_VARIANT_ADD(field, evicted_reserved0) {
	.tmpl = EVICTED_NONE, .off = EVICTED_OFF(reserved[0]), .width = 8,
	.err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, evicted_reserved1) {
	.tmpl = EVICTED_NONE, .off = EVICTED_OFF(reserved[1]), .width = 8,
	.err = EINVAL,
};

#define BATCH_OFF(f)	offsetof(struct many_arg, b.f)
#define ENTRY_OFF(f)	offsetof(struct many_arg, e[0].f)

static const __u64 bad_counts[] = {
	MEMMGR_BATCH_MAX + 1, MEMMGR_BATCH_MAX + 2, 0x10000, 0x80000000,
	0xffffffff,
};

/* 32 + 4 + 3 = 39 each */
FIXTURE_VARIANT_ADD(field, alloc_many_flags) {
	.tmpl = ALLOC_MANY_ST, .off = BATCH_OFF(flags), .width = 4,
	.err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, alloc_many_reserved0) {
	.tmpl = ALLOC_MANY_ST, .off = BATCH_OFF(reserved0), .width = 4,
	.err = EINVAL,
};

/* 64 + 8 + 3 = 75 each */
FIXTURE_VARIANT_ADD(field, alloc_many_reserved_0) {
	.tmpl = ALLOC_MANY_ST, .off = BATCH_OFF(reserved[0]), .width = 8,
	.err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, alloc_many_reserved_1) {
	.tmpl = ALLOC_MANY_ST, .off = BATCH_OFF(reserved[1]), .width = 8,
	.err = EINVAL,
};

/* 5 */
FIXTURE_VARIANT_ADD(field, alloc_many_count) {
	.tmpl = ALLOC_MANY_ST, .off = BATCH_OFF(count), .width = 4,
	.values = bad_counts, .nr_values = NR(bad_counts), .err = EINVAL,
};

/* 32 + 4 + 3 = 39 each */
FIXTURE_VARIANT_ADD(field, free_many_flags) {
	.tmpl = FREE_MANY_ST, .off = BATCH_OFF(flags), .width = 4,
	.err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, free_many_reserved0) {
	.tmpl = FREE_MANY_ST, .off = BATCH_OFF(reserved0), .width = 4,
	.err = EINVAL,
};

/* 64 + 8 + 3 = 75 each */
FIXTURE_VARIANT_ADD(field, free_many_reserved_0) {
	.tmpl = FREE_MANY_ST, .off = BATCH_OFF(reserved[0]), .width = 8,
	.err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, free_many_reserved_1) {
	.tmpl = FREE_MANY_ST, .off = BATCH_OFF(reserved[1]), .width = 8,
	.err = EINVAL,
};

/* 5 */
FIXTURE_VARIANT_ADD(field, free_many_count) {
	.tmpl = FREE_MANY_ST, .off = BATCH_OFF(count), .width = 4,
	.values = bad_counts, .nr_values = NR(bad_counts), .err = EINVAL,
};

/*
 * The first entry of an ALLOC_MANY, checked as its ALLOC would be: done 0,
 * neither entry done.  31 + 4 + 3 = 38 (storage), 32 + 4 + 3 = 39 (exec).
 */
FIXTURE_VARIANT_ADD(field, alloc_many_entry_flags_storage) {
	.tmpl = ALLOC_MANY_ST, .off = ENTRY_OFF(flags), .width = 4,
	.first_bit = 1, .err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, alloc_many_entry_flags_exec) {
	.tmpl = ALLOC_MANY_EX, .off = ENTRY_OFF(flags), .width = 4,
	.first_bit = 0, .err = EINVAL,
};

/* 64 + 8 + 3 = 75 each */
FIXTURE_VARIANT_ADD(field, alloc_many_entry_reserved0) {
	.tmpl = ALLOC_MANY_ST, .off = ENTRY_OFF(reserved[0]), .width = 8,
	.err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, alloc_many_entry_reserved1) {
	.tmpl = ALLOC_MANY_EX, .off = ENTRY_OFF(reserved[1]), .width = 8,
	.err = EINVAL,
};

/* 6 */
FIXTURE_VARIANT_ADD(field, alloc_many_entry_pool) {
	.tmpl = ALLOC_MANY_ST, .off = ENTRY_OFF(pool), .width = 4,
	.values = bad_pools, .nr_values = NR(bad_pools), .err = EINVAL,
};

/* 1 */
FIXTURE_VARIANT_ADD(field, alloc_many_entry_size0) {
	.tmpl = ALLOC_MANY_ST, .off = ENTRY_OFF(size), .width = 8,
	.values = zero_size, .nr_values = 1, .err = EINVAL,
};

/* 6 */
FIXTURE_VARIANT_ADD(field, alloc_many_entry_timeout) {
	.tmpl = ALLOC_MANY_EX, .off = ENTRY_OFF(timeout_ms), .width = 8,
	.values = bad_timeouts, .nr_values = NR(bad_timeouts),
	.err = EINVAL,
};

#define RETAG_OFF(f)	offsetof(struct memmgr_retag, f)

/* 64 + 8 + 3 = 75 each */
FIXTURE_VARIANT_ADD(field, retag_flags) {
	.tmpl = RETAG_ST, .off = RETAG_OFF(flags), .width = 8,
	.err = EINVAL,
};

FIXTURE_VARIANT_ADD(field, retag_reserved) {
	.tmpl = RETAG_ST, .off = RETAG_OFF(reserved), .width = 8,
	.err = EINVAL,
};

FIXTURE_SETUP(field)
{
	self->d.fd = -1;
	base_setup(_metadata, &self->d);
}

FIXTURE_TEARDOWN(field)
{
	base_teardown(&self->d);
}

/* A request that succeeds as it is; returns its command. */
static unsigned long tmpl_build(const struct base *d, enum tmpl t,
				union arg *a)
{
	memset(a, 0, sizeof(*a));
	switch (t) {
	case ALLOC_ST:
	case ALLOC_EX:
		a->alloc.pool = t == ALLOC_ST ? ST : EX;
		a->alloc.size = d->pg;
		a->alloc.tag = 100;
		return MEMMGR_IOC_ALLOC;
	case FREE_ST:
		a->buf.handle = d->st.handle;
		return MEMMGR_IOC_FREE;
	case PIN_ST:
		a->buf.handle = d->st.handle;
		return MEMMGR_IOC_PIN;
	case UNPIN_ST:
		a->buf.handle = d->st.handle;
		return MEMMGR_IOC_UNPIN;
	case RELEASE_EX:
		a->rel.pool = EX;
		a->rel.tag = d->ex.tag;
		return MEMMGR_IOC_RELEASE;
	case LOOKUP_ST:
		a->lookup.tag = d->st.tag;
		return MEMMGR_IOC_LOOKUP;
	case EVICTED_NONE:
		/* Nothing was evicted: it returns count 0, pending 0. */
		a->evicted.tags = (uintptr_t)d->rw;
		a->evicted.count = 1;
		return MEMMGR_IOC_EVICTED;
	case ALLOC_MANY_ST:
	case ALLOC_MANY_EX:
		a->many.b.entries = (uintptr_t)a->many.e;
		a->many.b.count = 2;
		a->many.e[0].pool = t == ALLOC_MANY_ST ? ST : EX;
		a->many.e[1].pool = t == ALLOC_MANY_ST ? EX : ST;
		a->many.e[0].size = d->pg;
		a->many.e[1].size = d->pg;
		a->many.e[0].tag = 100;
		a->many.e[1].tag = 101;
		return MEMMGR_IOC_ALLOC_MANY;
	case FREE_MANY_ST:
		a->many.b.entries = (uintptr_t)a->many.h;
		a->many.b.count = 1;
		a->many.h[0] = d->st.handle;
		return MEMMGR_IOC_FREE_MANY;
	case RETAG_ST:
		a->retag.handle = d->st.handle;
		a->retag.tag = 100;
		return MEMMGR_IOC_RETAG;
	}
	return 0;
}

/* The bad values of a variant's field; returns how many. */
static unsigned int field_values(const FIXTURE_VARIANT(field) *v,
				 __u64 *out)
{
	unsigned int bits = v->width * 8, n = 0, i;
	__u64 mask = bits == 64 ? ~0ULL : (1ULL << bits) - 1;

	if (v->values) {
		memcpy(out, v->values, v->nr_values * sizeof(*out));
		return v->nr_values;
	}
	for (i = v->first_bit; i < bits; i++)
		out[n++] = 1ULL << i;
	for (i = 0; i < v->width; i++)
		out[n++] = 0xffULL << (8 * i);
	out[n++] = mask;
	out[n++] = 0x5555555555555555ULL & mask;
	out[n++] = 0xaaaaaaaaaaaaaaaaULL & mask;
	return n;
}

static void field_set(union arg *a, size_t off, unsigned int width, __u64 v)
{
	__u32 v32 = v;

	if (width == 4)
		memcpy((char *)a + off, &v32, 4);
	else
		memcpy((char *)a + off, &v, 8);
}

TEST_F(field, rejected)
{
	struct base *d = &self->d;
	unsigned long cmd;
	__u64 values[128];
	unsigned int n, i;
	union arg a;

	n = field_values(variant, values);
	ASSERT_LT(0, n);
	for (i = 0; i < n; i++) {
		cmd = tmpl_build(d, variant->tmpl, &a);
		field_set(&a, variant->off, variant->width, values[i]);
		BAD(d->fd, variant->err, ioctl(d->fd, cmd, &a),
		    "%s with %#llx at byte %zu", cmd_name(cmd),
		    (unsigned long long)values[i], variant->off);
		/* A batch: no entry done, none written. */
		if (cmd == MEMMGR_IOC_ALLOC_MANY ||
		    cmd == MEMMGR_IOC_FREE_MANY) {
			EXPECT_EQ(0, a.many.b.done);
			EXPECT_EQ(0, a.many.e[0].handle);
			EXPECT_EQ(0, a.many.e[1].handle);
			EXPECT_EQ(0, a.many.e[1].granted);
		}
	}
	/* The request as it is works: the errors came from the field. */
	cmd = tmpl_build(d, variant->tmpl, &a);
	ASSERT_EQ(0, ioctl(d->fd, cmd, &a));
	if (cmd == MEMMGR_IOC_ALLOC)
		EXPECT_EQ(d->pg, a.alloc.granted);
	if (cmd == MEMMGR_IOC_RELEASE)
		EXPECT_EQ(d->pg, a.rel.freed);
	if (cmd == MEMMGR_IOC_LOOKUP) {
		EXPECT_EQ(d->st.handle, a.lookup.handle);
		EXPECT_EQ(d->st.offset, a.lookup.offset);
		EXPECT_EQ(d->st.granted, a.lookup.size);
	}
	if (cmd == MEMMGR_IOC_EVICTED) {
		EXPECT_EQ(0, a.evicted.count);
		EXPECT_EQ(0, a.evicted.pending);
	}
	if (cmd == MEMMGR_IOC_ALLOC_MANY) {
		EXPECT_EQ(2, a.many.b.done);
		EXPECT_EQ(d->pg, a.many.e[0].granted);
		EXPECT_EQ(d->pg, a.many.e[1].granted);
	}
	if (cmd == MEMMGR_IOC_FREE_MANY) {
		EXPECT_EQ(1, a.many.b.done);
		EXPECT_EQ(-ENOENT, mm_lookup(d->fd, d->st.tag, NULL));
	}
	if (cmd == MEMMGR_IOC_RETAG) {
		EXPECT_EQ(-ENOENT, mm_lookup(d->fd, d->st.tag, NULL));
		EXPECT_EQ(0, mm_lookup(d->fd, 100, NULL));
	}
}

/*
 * Requests larger than the pool could ever grant: E2BIG at once, whatever
 * the timeout and on an O_NONBLOCK file too, each counted as one declined
 * request of its pool and nothing else (not held).  Sizes above
 * U64_MAX - page_size + 1 overflow when rounded up to pages.
 * 9 sizes x 3 timeouts x 2 files = 54 bad inputs per pool.
 */
FIXTURE(too_big) {
	struct base d;
};

FIXTURE_VARIANT(too_big) {
	__u32 pool;
	__u32 flags;
};

FIXTURE_VARIANT_ADD(too_big, storage) {
	.pool = ST, .flags = MEMMGR_ALLOC_UNPINNED,
};

FIXTURE_VARIANT_ADD(too_big, exec) {
	.pool = EX,
};

FIXTURE_SETUP(too_big)
{
	self->d.fd = -1;
	base_setup(_metadata, &self->d);
}

FIXTURE_TEARDOWN(too_big)
{
	base_teardown(&self->d);
}

static void too_big_one(struct __test_metadata *_metadata, int fd,
			__u32 pool, __u32 flags, __u64 size, __s64 timeout)
{
	struct memmgr_alloc a = {
		.pool = pool, .flags = flags, .size = size, .tag = 200,
		.timeout_ms = timeout,
	};
	struct memmgr_stats want = mm_stats(fd);

	want.pool[pool].declined++;
	BAD_AS(fd, E2BIG, &want, ioctl(fd, MEMMGR_IOC_ALLOC, &a),
	       "ALLOC pool %u size %#llx timeout %lld", pool,
	       (unsigned long long)size, (long long)timeout);
}

TEST_F(too_big, e2big)
{
	struct base *d = &self->d;
	__u64 limit = variant->pool == ST ? d->S : d->T;
	const __u64 sizes[] = {
		UINT64_MAX, UINT64_MAX - 1,
		UINT64_MAX - d->pg + 2,		/* rounds up past U64_MAX */
		UINT64_MAX - d->pg + 1,		/* rounds to itself */
		1ULL << 63, (1ULL << 63) + 1,
		limit + 1, limit + d->pg, 2 * limit,
	};
	const __s64 timeouts[] = { 0, 1, MEMMGR_WAIT_FOREVER };
	int fds[2] = { d->fd, mm_open(O_NONBLOCK) };
	unsigned int s, t, f;

	ASSERT_LE(0, fds[1]);
	for (f = 0; f < 2; f++)
		for (s = 0; s < NR(sizes); s++)
			for (t = 0; t < NR(timeouts); t++)
				too_big_one(_metadata, fds[f], variant->pool,
					    variant->flags, sizes[s],
					    timeouts[t]);
	/* The largest request is not too big: it waits its turn. */
	EXPECT_EQ(-EAGAIN, mm_alloc(d->fd, variant->pool, limit, 201,
				    variant->flags, NULL));
	close(fds[1]);
}

/*
 * FREE, PIN, UNPIN, FREE_MANY (of that one handle) and RETAG (to a tag no
 * buffer holds) of handles this file does not have: 0, the values next to
 * a handle of this file and of another file, another file's (its files
 * and handles are its own), and large values.  Handles are opaque: the
 * test checks that none of these is one of this file's two live handles.
 * 7 bad inputs per command.
 */
FIXTURE(handle) {
	struct base d;
};

FIXTURE_VARIANT(handle) {
	unsigned long cmd;
};

FIXTURE_VARIANT_ADD(handle, free) { .cmd = MEMMGR_IOC_FREE };
FIXTURE_VARIANT_ADD(handle, pin) { .cmd = MEMMGR_IOC_PIN };
FIXTURE_VARIANT_ADD(handle, unpin) { .cmd = MEMMGR_IOC_UNPIN };
FIXTURE_VARIANT_ADD(handle, free_many) { .cmd = MEMMGR_IOC_FREE_MANY };
FIXTURE_VARIANT_ADD(handle, retag) { .cmd = MEMMGR_IOC_RETAG };

FIXTURE_SETUP(handle)
{
	self->d.fd = -1;
	base_setup(_metadata, &self->d);
}

FIXTURE_TEARDOWN(handle)
{
	base_teardown(&self->d);
}

/* MEMMGR_IOC_RETAG: the ioctl's return, errno set. */
static int mm_retag_ioctl(int fd, __u64 handle, __u64 tag)
{
	struct memmgr_retag r = { .handle = handle, .tag = tag };

	return ioctl(fd, MEMMGR_IOC_RETAG, &r);
}

/* @cmd on @handle: FREE_MANY with done 0 on failure. */
static int handle_cmd(int fd, unsigned long cmd, __u64 handle)
{
	struct memmgr_batch m = { .entries = (uintptr_t)&handle, .count = 1 };
	struct memmgr_retag r = { .handle = handle, .tag = 300 };
	struct memmgr_buf b = { .handle = handle };
	int ret, err;

	if (cmd == MEMMGR_IOC_FREE_MANY) {
		ret = ioctl(fd, cmd, &m);
		err = errno;
		if (ret && m.done) {
			ret = -2;
			err = 0;
		}
		errno = err;
		return ret;
	}
	if (cmd == MEMMGR_IOC_RETAG)
		return ioctl(fd, cmd, &r);
	return ioctl(fd, cmd, &b);
}

TEST_F(handle, unknown_enoent)
{
	struct base *d = &self->d;
	int fd2 = mm_open(0);
	struct memmgr_alloc other;
	__u64 handles[7];
	unsigned int i;

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mm_alloc(fd2, ST, d->pg, 1, 0, &other));
	handles[0] = 0;
	handles[1] = d->st.handle + 1;
	handles[2] = other.handle + 1;
	handles[3] = other.handle;
	handles[4] = UINT64_MAX;
	handles[5] = 1ULL << 51;
	handles[6] = 1ULL << 63;
	for (i = 0; i < NR(handles); i++) {
		ASSERT_TRUE(handles[i] != d->st.handle &&
			    handles[i] != d->ex.handle) {
			TH_LOG("handle %#llx is one of this file's",
			       (unsigned long long)handles[i]);
		}
		BAD(d->fd, ENOENT, handle_cmd(d->fd, variant->cmd, handles[i]),
		    "%s of handle %#llx", cmd_name(variant->cmd),
		    (unsigned long long)handles[i]);
	}
	/* The same command on the right file works. */
	EXPECT_EQ(0, handle_cmd(fd2, variant->cmd, other.handle));
	close(fd2);
}

/*
 * Calls that are well formed but wrong for the buffer's state: 12 bad
 * inputs.
 */
TEST_F(dev, buffer_state_errors)
{
	struct base *d = &self->d;
	struct memmgr_alloc u, e, full;
	struct memmgr_stats st;
	int fd = d->fd;

	/* Exec buffers have no pins. */
	BAD(fd, EINVAL, mm_buf(fd, MEMMGR_IOC_PIN, d->ex.handle) ? -1 : 0,
	    "PIN of an exec buffer");
	BAD(fd, EINVAL, mm_buf(fd, MEMMGR_IOC_UNPIN, d->ex.handle) ? -1 : 0,
	    "UNPIN of an exec buffer");
	/* An unpinned buffer has no pin to drop. */
	ASSERT_EQ(0, mm_alloc(fd, ST, d->pg, 3, MEMMGR_ALLOC_UNPINNED, &u));
	BAD(fd, EINVAL, mm_buf(fd, MEMMGR_IOC_UNPIN, u.handle) ? -1 : 0,
	    "UNPIN with no pin");
	/* A storage tag is unique within a file. */
	BAD(fd, EEXIST, mm_alloc(fd, ST, d->pg, 3, 0, NULL) ? -1 : 0,
	    "ALLOC of a storage tag this file holds");
	/* A freed buffer is gone. */
	ASSERT_EQ(0, mm_alloc(fd, EX, d->pg, 4, 0, &e));
	ASSERT_EQ(0, mm_buf(fd, MEMMGR_IOC_FREE, e.handle));
	BAD(fd, ENOENT, mm_buf(fd, MEMMGR_IOC_FREE, e.handle) ? -1 : 0,
	    "FREE twice");
	BAD(fd, ENOENT, mm_lookup(fd, 999, NULL) ? -1 : 0, "LOOKUP of no tag");
	BAD(fd, ENOENT, mm_lookup(fd, d->ex.tag, NULL) ? -1 : 0,
	    "LOOKUP of an exec tag");

	/*
	 * One page more than storage has left: u, the one unpinned buffer,
	 * is evicted.
	 */
	st = mm_stats(fd);
	ASSERT_EQ(0, mm_alloc(fd, ST, d->S - st.pool[ST].used + d->pg, 5, 0,
			      &full));
	EXPECT_EQ(st.pool[ST].evictions + 1,
		  mm_stats(fd).pool[ST].evictions);
	st = mm_stats(fd);
	ASSERT_EQ(d->S, st.pool[ST].used);
	ASSERT_EQ(-ESTALE, mm_lookup(fd, 3, NULL));
	BAD(fd, ESTALE, mm_buf(fd, MEMMGR_IOC_PIN, u.handle) ? -1 : 0,
	    "PIN of an evicted buffer");
	BAD(fd, ESTALE, mm_buf(fd, MEMMGR_IOC_UNPIN, u.handle) ? -1 : 0,
	    "UNPIN of an evicted buffer");
	BAD(fd, ESTALE, mm_lookup(fd, 3, NULL) ? -1 : 0,
	    "LOOKUP of an evicted buffer");
	BAD(fd, EINVAL, map(fd, u.offset, d->pg), "mmap of an evicted buffer");
	/* Freeing the stale entry is fine; then it is unknown. */
	ASSERT_EQ(0, mm_buf(fd, MEMMGR_IOC_FREE, u.handle));
	BAD(fd, ENOENT, mm_lookup(fd, 3, NULL) ? -1 : 0,
	    "LOOKUP of a freed evicted buffer");
}

/* RELEASE of a tag with nothing is not an error: freed = 0. */
TEST_F(dev, release_nothing)
{
	struct memmgr_release r = { .pool = ST, .tag = 77, .freed = ~0ULL };
	struct memmgr_stats want = mm_stats(self->d.fd), now;

	ASSERT_EQ(0, ioctl(self->d.fd, MEMMGR_IOC_RELEASE, &r));
	EXPECT_EQ(0, r.freed);
	now = mm_stats(self->d.fd);
	EXPECT_TRUE(stats_same(_metadata, &want, &now, "RELEASE of nothing"));
}

/* Copy @n bytes of @arg to the start of the read-only page. */
static void ro_put(struct __test_metadata *_metadata, struct base *d,
		   const void *arg, size_t n)
{
	ASSERT_EQ(0, mprotect(d->ro, d->pg, PROT_READ | PROT_WRITE));
	memset(d->ro, 0, d->pg);
	memcpy(d->ro, arg, n);
	ASSERT_EQ(0, mprotect(d->ro, d->pg, PROT_READ));
}

/*
 * Arguments on a read-only page for the _IOW commands, which only read
 * theirs: a read-only page is fine for them.  4 bad inputs.
 */
TEST_F(dev, readonly_arg)
{
	struct base *d = &self->d;
	int fd = d->fd;
	struct memmgr_stats want;
	struct memmgr_buf b = { .handle = 0 };
	struct memmgr_retag r = { .handle = d->st.handle, .tag = 77 };
	struct memmgr_lookup l;
	unsigned long cmds[] = {
		MEMMGR_IOC_FREE, MEMMGR_IOC_PIN, MEMMGR_IOC_UNPIN,
		MEMMGR_IOC_RETAG,
	};
	unsigned int i;

	/* The handle is read from the read-only page: ENOENT, not EFAULT. */
	ro_put(_metadata, d, &b, sizeof(b));
	for (i = 0; i < NR(cmds); i++)
		BAD(fd, ENOENT, ioctl(fd, cmds[i], d->ro),
		    "%s of handle 0 in a read-only page", cmd_name(cmds[i]));
	/* And a good handle works from there. */
	b.handle = d->st.handle;
	ro_put(_metadata, d, &b, sizeof(b));
	EXPECT_EQ(0, ioctl(fd, MEMMGR_IOC_PIN, d->ro));
	EXPECT_EQ(0, ioctl(fd, MEMMGR_IOC_UNPIN, d->ro));
	want = mm_stats(fd);
	EXPECT_EQ(d->st.granted, want.pool[ST].pinned);
	ro_put(_metadata, d, &r, sizeof(r));
	EXPECT_EQ(0, ioctl(fd, MEMMGR_IOC_RETAG, d->ro));
	ASSERT_EQ(0, mm_lookup(fd, 77, &l));
	EXPECT_EQ(d->st.handle, l.handle);
}

/* ALLOC_MANY or FREE_MANY of @count entries at @entries; sets *@done. */
static int many(int fd, unsigned long cmd, const void *entries, __u32 count,
		__u32 *done)
{
	struct memmgr_batch b = {
		.entries = (uintptr_t)entries, .count = count,
	};
	int ret = ioctl(fd, cmd, &b);

	*done = b.done;
	return ret;
}

/*
 * Batches and RETAG that are well formed but wrong for the state of a
 * buffer: a storage tag taken (by a live buffer, by an earlier entry of
 * the batch), a handle freed by an earlier entry, an entry too big, an
 * exec or evicted buffer.  An entry that fails leaves the ones before it
 * done: the test works out their change to the stats.  7 bad inputs.
 */
TEST_F(dev, batch_retag_state_errors)
{
	struct base *d = &self->d;
	int fd = d->fd;
	__u64 pg = d->pg, h[2];
	struct memmgr_alloc u, x, e[2], full;
	struct memmgr_stats want, st;
	__u32 done = 0;

	BAD(fd, EINVAL, mm_retag_ioctl(fd, d->ex.handle, 5),
	    "RETAG of an exec buffer");
	ASSERT_EQ(0, mm_alloc(fd, ST, pg, 3, MEMMGR_ALLOC_UNPINNED, &u));
	BAD(fd, EEXIST, mm_retag_ioctl(fd, d->st.handle, 3),
	    "RETAG to a tag another storage buffer holds");

	memset(e, 0, sizeof(e));
	e[0] = (struct memmgr_alloc){ .pool = ST, .size = pg, .tag = 1 };
	BAD(fd, EEXIST, many(fd, MEMMGR_IOC_ALLOC_MANY, e, 1, &done),
	    "ALLOC_MANY of a storage tag this file holds");
	EXPECT_EQ(0, done);
	EXPECT_EQ(0, e[0].handle);

	/* Entry 0 is granted, entry 1 wants its tag. */
	e[0] = (struct memmgr_alloc){ .pool = ST, .size = pg, .tag = 10 };
	e[1] = e[0];
	want = mm_stats(fd);
	want.pool[ST].used += pg;
	want.pool[ST].pinned += pg;
	want.pool[ST].allocs++;
	if (want.pool[ST].peak < want.pool[ST].used)
		want.pool[ST].peak = want.pool[ST].used;
	want.client_used[ST] += pg;
	want.free -= pg;
	BAD_AS(fd, EEXIST, &want, many(fd, MEMMGR_IOC_ALLOC_MANY, e, 2, &done),
	       "ALLOC_MANY of one storage tag twice");
	EXPECT_EQ(1, done);
	EXPECT_EQ(pg, e[0].granted);
	EXPECT_EQ(0, e[1].handle);
	EXPECT_EQ(0, e[1].granted);

	/* Entry 0 frees it, entry 1 finds no such handle. */
	ASSERT_EQ(0, mm_alloc(fd, EX, pg, 11, 0, &x));
	h[0] = x.handle;
	h[1] = x.handle;
	want = mm_stats(fd);
	want.pool[EX].used -= pg;
	want.pool[EX].frees++;
	want.client_used[EX] -= pg;
	want.free += pg;
	BAD_AS(fd, ENOENT, &want, many(fd, MEMMGR_IOC_FREE_MANY, h, 2, &done),
	       "FREE_MANY of one handle twice");
	EXPECT_EQ(1, done);

	e[0] = (struct memmgr_alloc){
		.pool = ST, .size = d->S + pg, .tag = 12,
	};
	want = mm_stats(fd);
	want.pool[ST].declined++;
	BAD_AS(fd, E2BIG, &want, many(fd, MEMMGR_IOC_ALLOC_MANY, e, 1, &done),
	       "ALLOC_MANY of an entry larger than storage");
	EXPECT_EQ(0, done);

	/* One page more than storage has left: u is evicted. */
	st = mm_stats(fd);
	ASSERT_EQ(0, mm_alloc(fd, ST, d->S - st.pool[ST].used + pg, 13, 0,
			      &full));
	ASSERT_EQ(st.pool[ST].evictions + 1, mm_stats(fd).pool[ST].evictions);
	ASSERT_EQ(-ESTALE, mm_lookup(fd, 3, NULL));
	BAD(fd, ESTALE, mm_retag_ioctl(fd, u.handle, 14),
	    "RETAG of an evicted buffer");
	EXPECT_EQ(-ENOENT, mm_lookup(fd, 14, NULL));
}

/*
 * Entries or handles that cannot be read (NULL, on a PROT_NONE page, the
 * first entry's end on one), and entries that can be read but not written
 * (on a read-only page): EFAULT, no entry done.  7 bad inputs.
 */
TEST_F(dev, batch_entries_efault)
{
	struct base *d = &self->d;
	int fd = d->fd;
	__u64 pg = d->pg, h = d->st.handle;
	struct memmgr_alloc e[2] = {
		{ .pool = ST, .size = pg, .tag = 20 },
		{ .pool = EX, .size = pg, .tag = 21 },
	};
	const struct memmgr_alloc *ro = (const void *)d->ro;
	__u32 done = 0;

	BAD(fd, EFAULT, many(fd, MEMMGR_IOC_ALLOC_MANY, NULL, 1, &done),
	    "ALLOC_MANY of NULL entries");
	BAD(fd, EFAULT, many(fd, MEMMGR_IOC_ALLOC_MANY, d->none, 2, &done),
	    "ALLOC_MANY of entries on a PROT_NONE page");
	BAD(fd, EFAULT, many(fd, MEMMGR_IOC_ALLOC_MANY,
			     d->none - sizeof(e[0]) / 2, 1, &done),
	    "ALLOC_MANY of an entry whose end is on a PROT_NONE page");
	ro_put(_metadata, d, e, sizeof(e));
	BAD(fd, EFAULT, many(fd, MEMMGR_IOC_ALLOC_MANY, ro, 2, &done),
	    "ALLOC_MANY of entries on a read-only page");
	EXPECT_EQ(0, done);
	EXPECT_EQ(0, ro[0].handle);
	EXPECT_EQ(-ENOENT, mm_lookup(fd, 20, NULL));
	BAD(fd, EFAULT, many(fd, MEMMGR_IOC_FREE_MANY, NULL, 1, &done),
	    "FREE_MANY of NULL handles");
	BAD(fd, EFAULT, many(fd, MEMMGR_IOC_FREE_MANY, d->none, 1, &done),
	    "FREE_MANY of handles on a PROT_NONE page");
	BAD(fd, EFAULT, many(fd, MEMMGR_IOC_FREE_MANY, d->none - 4, 1, &done),
	    "FREE_MANY of a handle whose end is on a PROT_NONE page");
	EXPECT_EQ(0, done);

	/* The same entries from writable memory; a read-only handle works. */
	ASSERT_EQ(0, many(fd, MEMMGR_IOC_ALLOC_MANY, e, 2, &done));
	EXPECT_EQ(2, done);
	EXPECT_EQ(pg, e[1].granted);
	ro_put(_metadata, d, &h, sizeof(h));
	ASSERT_EQ(0, many(fd, MEMMGR_IOC_FREE_MANY, ro, 1, &done));
	EXPECT_EQ(1, done);
	EXPECT_EQ(-ENOENT, mm_lookup(fd, d->st.tag, NULL));
}

/*
 * An argument that can be read but not written (on a PROT_READ page), for
 * each command that writes its argument back (_IOWR and _IOR): EFAULT,
 * found before the command does anything.  The whole statistics stay as
 * they were (nothing charged, evicted, held, declined, counted or freed),
 * no eviction notice is taken, and what the test set up is still there,
 * shown by the calls that follow with a writable argument.  1 bad input
 * per variant.
 */
enum ro_case {
	RO_ALLOC_ST,		/* a storage ALLOC that fits */
	RO_ALLOC_ST_EVICT,	/* one that must evict an unpinned buffer */
	RO_ALLOC_ST_HOLD,	/* one that would be held */
	RO_ALLOC_EX,		/* an exec ALLOC that fits */
	RO_LOOKUP,		/* of a live buffer */
	RO_LOOKUP_STALE,	/* of an evicted buffer */
	RO_RELEASE_EX,		/* of an exec id with two live buffers */
	RO_RELEASE_ST,		/* of a live storage tag */
	RO_STATS,
	RO_EVICTED,		/* with one notice queued */
	RO_ALLOC_MANY,		/* of a storage and an exec page */
	RO_FREE_MANY,		/* of a live storage buffer */
};

FIXTURE(readonly) {
	struct base d;
};

FIXTURE_VARIANT(readonly) {
	enum ro_case c;
	const char *what;
};

FIXTURE_VARIANT_ADD(readonly, alloc_storage) {
	.c = RO_ALLOC_ST, .what = "storage ALLOC that fits",
};

FIXTURE_VARIANT_ADD(readonly, alloc_storage_evicting) {
	.c = RO_ALLOC_ST_EVICT,
	.what = "storage ALLOC that must evict an unpinned buffer",
};

FIXTURE_VARIANT_ADD(readonly, alloc_storage_held) {
	.c = RO_ALLOC_ST_HOLD, .what = "storage ALLOC that would be held",
};

FIXTURE_VARIANT_ADD(readonly, alloc_exec) {
	.c = RO_ALLOC_EX, .what = "exec ALLOC that fits",
};

FIXTURE_VARIANT_ADD(readonly, lookup) {
	.c = RO_LOOKUP, .what = "LOOKUP of a live buffer",
};

FIXTURE_VARIANT_ADD(readonly, lookup_stale) {
	.c = RO_LOOKUP_STALE, .what = "LOOKUP of an evicted buffer",
};

FIXTURE_VARIANT_ADD(readonly, release_exec) {
	.c = RO_RELEASE_EX, .what = "RELEASE of an exec id with 2 buffers",
};

FIXTURE_VARIANT_ADD(readonly, release_storage) {
	.c = RO_RELEASE_ST, .what = "RELEASE of a storage tag",
};

FIXTURE_VARIANT_ADD(readonly, stats) {
	.c = RO_STATS, .what = "STATS",
};

FIXTURE_VARIANT_ADD(readonly, evicted) {
	.c = RO_EVICTED, .what = "EVICTED with one notice queued",
};

FIXTURE_VARIANT_ADD(readonly, alloc_many) {
	.c = RO_ALLOC_MANY, .what = "ALLOC_MANY of a storage and an exec page",
};

FIXTURE_VARIANT_ADD(readonly, free_many) {
	.c = RO_FREE_MANY, .what = "FREE_MANY of a live storage buffer",
};

FIXTURE_SETUP(readonly)
{
	self->d.fd = -1;
	base_setup(_metadata, &self->d);
}

FIXTURE_TEARDOWN(readonly)
{
	base_teardown(&self->d);
}

static short pollpri(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLPRI };

	return poll(&p, 1, 0) == 1 ? p.revents & POLLPRI : 0;
}

/* Fill storage up to S with one buffer of tag 3 (next to st). */
static void ro_fill_storage(struct __test_metadata *_metadata,
			    struct base *d, __u32 flags,
			    struct memmgr_alloc *v)
{
	ASSERT_EQ(0, mm_alloc(d->fd, ST, d->S - d->st.granted, 3, flags, v));
	ASSERT_EQ(d->S, mm_stats(d->fd).pool[ST].used);
}

/* Evict an unpinned buffer of tag 3 with a pinned page of tag 4. */
static void ro_evict(struct __test_metadata *_metadata, struct base *d,
		     struct memmgr_alloc *v)
{
	__u64 evictions = mm_stats(d->fd).pool[ST].evictions;

	ro_fill_storage(_metadata, d, MEMMGR_ALLOC_UNPINNED, v);
	ASSERT_EQ(0, mm_alloc(d->fd, ST, d->pg, 4, 0, NULL));
	ASSERT_EQ(evictions + 1, mm_stats(d->fd).pool[ST].evictions);
	/* ESTALE once the mappings are revoked: nothing is left to do. */
	ASSERT_EQ(-ESTALE, mm_lookup(d->fd, 3, NULL));
	ASSERT_EQ(POLLPRI, pollpri(d->fd));
}

union ro_arg {
	struct memmgr_alloc alloc;
	struct memmgr_lookup lookup;
	struct memmgr_release rel;
	struct memmgr_stats stats;
	struct memmgr_evicted evicted;
	struct memmgr_batch batch;
};

TEST_F(readonly, efault_no_side_effect)
{
	struct base *d = &self->d;
	int fd = d->fd;
	__u64 pg = d->pg, tags[2] = { 0, 0 }, evictions;
	struct memmgr_alloc v = { 0 }, b, r1 = { 0 }, r2 = { 0 }, me[2];
	struct memmgr_batch mb;
	struct memmgr_release rel;
	struct memmgr_evicted e;
	struct memmgr_lookup l;
	unsigned long cmd = 0;
	union ro_arg a;
	void *p;

	memset(&a, 0, sizeof(a));
	switch (variant->c) {
	case RO_ALLOC_ST:
	case RO_ALLOC_ST_EVICT:
		if (variant->c == RO_ALLOC_ST_EVICT)
			ro_fill_storage(_metadata, d, MEMMGR_ALLOC_UNPINNED,
					&v);
		a.alloc.pool = ST;
		a.alloc.size = pg;
		a.alloc.tag = 9;
		cmd = MEMMGR_IOC_ALLOC;
		break;
	case RO_ALLOC_ST_HOLD:
		ro_fill_storage(_metadata, d, 0, &v);
		a.alloc.pool = ST;
		a.alloc.size = pg;
		a.alloc.tag = 9;
		a.alloc.timeout_ms = 1000;
		cmd = MEMMGR_IOC_ALLOC;
		break;
	case RO_ALLOC_EX:
		a.alloc.pool = EX;
		a.alloc.size = 3 * pg;
		a.alloc.tag = 9;
		cmd = MEMMGR_IOC_ALLOC;
		break;
	case RO_LOOKUP_STALE:
		ro_evict(_metadata, d, &v);
		a.lookup.tag = 3;
		cmd = MEMMGR_IOC_LOOKUP;
		break;
	case RO_LOOKUP:
		a.lookup.tag = d->st.tag;
		cmd = MEMMGR_IOC_LOOKUP;
		break;
	case RO_RELEASE_EX:
		ASSERT_EQ(0, mm_alloc(fd, EX, pg, 9, 0, &r1));
		ASSERT_EQ(0, mm_alloc(fd, EX, 2 * pg, 9, 0, &r2));
		a.rel.pool = EX;
		a.rel.tag = 9;
		cmd = MEMMGR_IOC_RELEASE;
		break;
	case RO_RELEASE_ST:
		a.rel.pool = ST;
		a.rel.tag = d->st.tag;
		cmd = MEMMGR_IOC_RELEASE;
		break;
	case RO_STATS:
		cmd = MEMMGR_IOC_STATS;
		break;
	case RO_EVICTED:
		ro_evict(_metadata, d, &v);
		a.evicted.tags = (uintptr_t)tags;
		a.evicted.count = NR(tags);
		cmd = MEMMGR_IOC_EVICTED;
		break;
	case RO_ALLOC_MANY:
		memset(me, 0, sizeof(me));
		me[0].pool = ST;
		me[1].pool = EX;
		me[0].size = pg;
		me[1].size = pg;
		me[0].tag = 9;
		me[1].tag = 9;
		a.batch.entries = (uintptr_t)me;
		a.batch.count = 2;
		cmd = MEMMGR_IOC_ALLOC_MANY;
		break;
	case RO_FREE_MANY:
		tags[0] = d->st.handle;
		a.batch.entries = (uintptr_t)tags;
		a.batch.count = 1;
		cmd = MEMMGR_IOC_FREE_MANY;
		break;
	default:
		ASSERT_TRUE(false);
	}
	ASSERT_LE(_IOC_SIZE(cmd), sizeof(a));
	ro_put(_metadata, d, &a, _IOC_SIZE(cmd));
	evictions = mm_stats(fd).pool[ST].evictions;
	BAD(fd, EFAULT, ioctl(fd, cmd, d->ro), "%s, argument in a read-only page",
	    variant->what);

	switch (variant->c) {
	case RO_ALLOC_ST:
	case RO_ALLOC_ST_HOLD:
		/* The tag was not kept: not found, and free to take. */
		EXPECT_EQ(-ENOENT, mm_lookup(fd, 9, NULL));
		if (variant->c == RO_ALLOC_ST) {
			EXPECT_EQ(0, mm_alloc(fd, ST, pg, 9, 0, &b));
			EXPECT_EQ(pg, b.granted);
		} else {
			/* Storage is full of pinned memory. */
			EXPECT_EQ(-EAGAIN, mm_alloc(fd, ST, pg, 9, 0, NULL));
		}
		break;
	case RO_ALLOC_ST_EVICT:
		/* The would-be victim is untouched, and no notice came. */
		EXPECT_EQ(0, pollpri(fd));
		EXPECT_EQ(-ENOENT, mm_lookup(fd, 9, NULL));
		ASSERT_EQ(0, mm_lookup(fd, 3, &l));
		EXPECT_EQ(v.handle, l.handle);
		EXPECT_EQ(v.offset, l.offset);
		EXPECT_EQ(v.granted, l.size);
		p = map(fd, v.offset, pg);
		EXPECT_NE(MAP_FAILED, p);
		if (p != MAP_FAILED)
			EXPECT_EQ(0, munmap(p, pg));
		/* With a writable argument the same request evicts it. */
		EXPECT_EQ(0, mm_alloc(fd, ST, pg, 9, 0, &b));
		EXPECT_EQ(evictions + 1, mm_stats(fd).pool[ST].evictions);
		EXPECT_EQ(-ESTALE, mm_lookup(fd, 3, NULL));
		break;
	case RO_ALLOC_EX:
		EXPECT_EQ(0, mm_alloc(fd, EX, 3 * pg, 9, 0, &b));
		EXPECT_EQ(3 * pg, b.granted);
		break;
	case RO_LOOKUP:
		ASSERT_EQ(0, mm_lookup(fd, d->st.tag, &l));
		EXPECT_EQ(d->st.handle, l.handle);
		break;
	case RO_LOOKUP_STALE:
		EXPECT_EQ(-ESTALE, mm_lookup(fd, 3, NULL));
		break;
	case RO_RELEASE_EX:
		/* Both buffers are live: each maps, FREE and RELEASE work. */
		p = map(fd, r1.offset, pg);
		EXPECT_NE(MAP_FAILED, p);
		if (p != MAP_FAILED)
			EXPECT_EQ(0, munmap(p, pg));
		p = map(fd, r2.offset, 2 * pg);
		EXPECT_NE(MAP_FAILED, p);
		if (p != MAP_FAILED)
			EXPECT_EQ(0, munmap(p, 2 * pg));
		EXPECT_EQ(0, mm_buf(fd, MEMMGR_IOC_FREE, r1.handle));
		rel = (struct memmgr_release){ .pool = EX, .tag = 9 };
		ASSERT_EQ(0, ioctl(fd, MEMMGR_IOC_RELEASE, &rel));
		EXPECT_EQ(2 * pg, rel.freed);
		EXPECT_EQ(-ENOENT, mm_buf(fd, MEMMGR_IOC_FREE, r2.handle));
		break;
	case RO_RELEASE_ST:
		ASSERT_EQ(0, mm_lookup(fd, d->st.tag, &l));
		EXPECT_EQ(d->st.handle, l.handle);
		break;
	case RO_STATS:
		break;
	case RO_EVICTED:
		/* The notice is still queued, and comes out once. */
		EXPECT_EQ(POLLPRI, pollpri(fd));
		e = (struct memmgr_evicted){
			.tags = (uintptr_t)tags, .count = NR(tags),
		};
		ASSERT_EQ(0, ioctl(fd, MEMMGR_IOC_EVICTED, &e));
		EXPECT_EQ(1, e.count);
		EXPECT_EQ(3, tags[0]);
		EXPECT_EQ(0, e.pending);
		EXPECT_EQ(0, pollpri(fd));
		break;
	case RO_ALLOC_MANY:
		/* Neither entry done nor written, the tag not kept. */
		EXPECT_EQ(0, me[0].handle);
		EXPECT_EQ(0, me[1].granted);
		EXPECT_EQ(-ENOENT, mm_lookup(fd, 9, NULL));
		mb = (struct memmgr_batch){
			.entries = (uintptr_t)me, .count = 2,
		};
		ASSERT_EQ(0, ioctl(fd, MEMMGR_IOC_ALLOC_MANY, &mb));
		EXPECT_EQ(2, mb.done);
		EXPECT_EQ(pg, me[0].granted);
		EXPECT_EQ(pg, me[1].granted);
		break;
	case RO_FREE_MANY:
		/* Still there: it maps, and the same request frees it. */
		ASSERT_EQ(0, mm_lookup(fd, d->st.tag, &l));
		EXPECT_EQ(d->st.handle, l.handle);
		p = map(fd, d->st.offset, pg);
		EXPECT_NE(MAP_FAILED, p);
		if (p != MAP_FAILED)
			EXPECT_EQ(0, munmap(p, pg));
		mb = (struct memmgr_batch){
			.entries = (uintptr_t)tags, .count = 1,
		};
		ASSERT_EQ(0, ioctl(fd, MEMMGR_IOC_FREE_MANY, &mb));
		EXPECT_EQ(1, mb.done);
		EXPECT_EQ(-ENOENT, mm_lookup(fd, d->st.tag, NULL));
		break;
	}
}

/*
 * mmap() ranges memmgr refuses: EINVAL unless a live allocation of this
 * file holds the whole range.  The core mm checks some first (mm/mmap.c in
 * 6.1, do_mmap()):
 *  - a length that rounds up to 0 or is larger than the address space:
 *    ENOMEM;
 *  - a range whose end lies past 2^64 bytes: EOVERFLOW (file_mmap_ok(): a
 *    character device's limit is ULONG_MAX bytes);
 *  - length 0 or an unaligned offset: EINVAL.
 * Offsets below that reach memmgr: past the window or in no buffer of
 * this file: EINVAL.  18 bad inputs.
 */
TEST_F(dev, mmap_range_errors)
{
	struct base *d = &self->d;
	int fd = d->fd, fd2 = mm_open(0), rw = PROT_READ | PROT_WRITE;
	__u64 pg = d->pg, st = d->st.offset, ex = d->ex.offset;
	struct memmgr_alloc other, gone;

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mm_alloc(fd2, EX, pg, 1, 0, &other));
	ASSERT_EQ(0, mm_alloc(fd, EX, pg, 1, 0, &gone));
	ASSERT_EQ(0, mm_buf(fd, MEMMGR_IOC_FREE, gone.handle));

	BAD(fd, EINVAL, sys_mmap(NULL, 3 * pg, rw, MAP_SHARED, fd, st),
	    "mmap across two buffers");
	BAD(fd, EINVAL, sys_mmap(NULL, 2 * pg, rw, MAP_SHARED, fd, st + pg),
	    "mmap of the end of one buffer and the start of the next");
	BAD(fd, EINVAL, sys_mmap(NULL, 2 * pg, rw, MAP_SHARED, fd, ex),
	    "mmap past the end of a buffer");
	BAD(fd, EINVAL, sys_mmap(NULL, pg, rw, MAP_SHARED, fd, ex + pg),
	    "mmap after the last buffer");
	BAD(fd, EINVAL, sys_mmap(NULL, pg, rw, MAP_SHARED, fd, st - pg),
	    "mmap before the first buffer");
	BAD(fd, EINVAL, sys_mmap(NULL, pg, rw, MAP_SHARED, fd, other.offset),
	    "mmap of another file's buffer");
	BAD(fd, EINVAL, sys_mmap(NULL, pg, rw, MAP_SHARED, fd, gone.offset),
	    "mmap of a freed buffer");
	BAD(fd, EINVAL, sys_mmap(NULL, 0, rw, MAP_SHARED, fd, st),
	    "mmap of length 0");
	BAD(fd, EINVAL, sys_mmap(NULL, pg, rw, MAP_SHARED, fd, st + 1),
	    "mmap at an unaligned offset");
	BAD(fd, EINVAL,
	    sys_mmap(NULL, pg, rw, MAP_SHARED, fd,
		     MEMMGR_WINDOW_OFFSET + MEMMGR_OFFSET_LIMIT),
	    "mmap past the window");
	BAD(fd, EINVAL, sys_mmap(NULL, pg, rw, MAP_SHARED, fd, 1ULL << 62),
	    "mmap at offset 2^62");
	BAD(fd, EINVAL, sys_mmap(NULL, pg, rw, MAP_SHARED, fd, 1ULL << 63),
	    "mmap at offset 2^63");
	BAD(fd, EOVERFLOW,
	    sys_mmap(NULL, pg, rw, MAP_SHARED, fd, UINT64_MAX - pg + 1),
	    "mmap of the last page below 2^64");
	BAD(fd, EOVERFLOW,
	    sys_mmap(NULL, 32 * pg, rw, MAP_SHARED, fd, UINT64_MAX - 16 * pg + 1),
	    "mmap whose offset + length passes 2^64");
	BAD(fd, EOVERFLOW,
	    sys_mmap(NULL, 1UL << 40, rw, MAP_SHARED, fd, UINT64_MAX - pg + 1),
	    "mmap of 2^40 bytes at the last page");
	BAD(fd, ENOMEM, sys_mmap(NULL, SIZE_MAX, rw, MAP_SHARED, fd, st),
	    "mmap of SIZE_MAX bytes (rounds to 0)");
	BAD(fd, ENOMEM, sys_mmap(NULL, SIZE_MAX - pg + 2, rw, MAP_SHARED, fd,
				 st),
	    "mmap of a length that rounds past SIZE_MAX");
	BAD(fd, ENOMEM, sys_mmap(NULL, 1UL << 62, rw, MAP_SHARED, fd, st),
	    "mmap of 2^62 bytes");
	close(fd2);
}

/*
 * mmap() flags and protections: MAP_PRIVATE is refused by memmgr
 * (EINVAL), PROT_EXEC too (EPERM); the core refuses MAP_SYNC on a file
 * that does not support it (EOPNOTSUPP), a shared MAP_GROWSDOWN mapping
 * (EINVAL).  6 bad inputs.
 */
TEST_F(dev, mmap_flag_errors)
{
	struct base *d = &self->d;
	int fd = d->fd, rw = PROT_READ | PROT_WRITE;
	__u64 pg = d->pg, off = d->ex.offset;
	unsigned char *p;

	BAD(fd, EINVAL, sys_mmap(NULL, pg, rw, MAP_PRIVATE, fd, off),
	    "mmap MAP_PRIVATE");
	BAD(fd, EINVAL, sys_mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, off),
	    "mmap MAP_PRIVATE read-only");
	BAD(fd, EPERM, sys_mmap(NULL, pg, rw | PROT_EXEC, MAP_SHARED, fd, off),
	    "mmap PROT_EXEC");
	BAD(fd, EPERM, sys_mmap(NULL, pg, PROT_EXEC, MAP_SHARED, fd, off),
	    "mmap PROT_EXEC alone");
	BAD(fd, EOPNOTSUPP, sys_mmap(NULL, pg, rw,
				     MAP_SHARED_VALIDATE | MAP_SYNC, fd, off),
	    "mmap MAP_SHARED_VALIDATE | MAP_SYNC");
	BAD(fd, EINVAL, sys_mmap(NULL, pg, rw, MAP_SHARED | MAP_GROWSDOWN, fd,
				 off),
	    "mmap MAP_GROWSDOWN");

	/* MAP_SHARED_VALIDATE with no unknown flag is MAP_SHARED. */
	p = mmap(NULL, pg, rw, MAP_SHARED_VALIDATE, fd, off);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	EXPECT_EQ(0, munmap(p, pg));
}

/*
 * A file opened read-only: the core refuses a writable shared mapping
 * (EACCES) and mprotect() to write (EACCES: no VM_MAYWRITE); a read-only
 * MAP_SHARED mapping is a shared mapping and must work.  2 bad inputs.
 */
TEST_F(dev, readonly_file_maps_readonly)
{
	__u64 pg = self->d.pg;
	int rw = PROT_READ | PROT_WRITE, fd_ro;
	struct memmgr_alloc a;
	unsigned char *p;

	fd_ro = open(DEV, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd_ro);
	ASSERT_EQ(0, mm_alloc(fd_ro, EX, pg, 1, 0, &a));
	BAD(fd_ro, EACCES, sys_mmap(NULL, pg, rw, MAP_SHARED, fd_ro, a.offset),
	    "writable mmap of a read-only file");
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd_ro, a.offset);
	ASSERT_NE(MAP_FAILED, p) {
		TH_LOG("read-only MAP_SHARED mmap: %s", strerror(errno));
	}
	EXPECT_EQ(0, p[0]);
	BAD(fd_ro, EACCES, mprotect(p, pg, rw),
	    "mprotect to write a read-only file's mapping");
	EXPECT_EQ(0, munmap(p, pg));
	close(fd_ro);
}

/* mprotect() to exec: EACCES, and the mapping is as it was.  2. */
TEST_F(dev, mprotect_exec_eacces)
{
	struct base *d = &self->d;
	unsigned char *p = map(d->fd, d->ex.offset, d->pg);

	ASSERT_NE(MAP_FAILED, p);
	p[5] = 0x42;
	BAD(d->fd, EACCES, mprotect(p, d->pg, PROT_READ | PROT_EXEC),
	    "mprotect PROT_READ | PROT_EXEC");
	BAD(d->fd, EACCES, mprotect(p, d->pg, PROT_EXEC),
	    "mprotect PROT_EXEC");
	p[6] = 0x43;
	EXPECT_EQ(0x42, p[5]);
	EXPECT_EQ(0x43, p[6]);
	EXPECT_EQ(0, munmap(p, d->pg));
}

/*
 * mremap() cannot grow a memmgr mapping (VM_DONTEXPAND: EFAULT, from
 * vma_to_resize() in mm/mremap.c), even inside its buffer, nor duplicate
 * it (old size 0, also a growth: EFAULT); MREMAP_DONTUNMAP is refused for
 * such mappings (EINVAL).  4 bad inputs.
 */
TEST_F(dev, mremap_grow_fails)
{
	struct base *d = &self->d;
	__u64 pg = d->pg;
	unsigned char *p = map(d->fd, d->st.offset, pg);
	unsigned char *q, *dst;

	ASSERT_NE(MAP_FAILED, p);
	p[0] = 0x31;
	BAD(d->fd, EFAULT, mremap(p, pg, 2 * pg, 0),
	    "mremap growth in place");
	BAD(d->fd, EFAULT, mremap(p, pg, 2 * pg, MREMAP_MAYMOVE),
	    "mremap growth that may move");
	BAD(d->fd, EFAULT, mremap(p, 0, pg, MREMAP_MAYMOVE),
	    "mremap duplicate (old size 0)");
	dst = mmap(NULL, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dst);
	BAD(d->fd, EINVAL, syscall(SYS_mremap, p, pg, pg,
				   MREMAP_MAYMOVE | MREMAP_DONTUNMAP, dst),
	    "mremap MREMAP_DONTUNMAP");
	EXPECT_EQ(0x31, p[0]);
	/* The whole buffer maps at once, as before. */
	q = map(d->fd, d->st.offset, 2 * pg);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(0x31, q[0]);
	EXPECT_EQ(0, munmap(q, 2 * pg));
	EXPECT_EQ(0, munmap(p, pg));
}

/* mremap() shrinks: the kept part works, the rest is unmapped. */
TEST_F(dev, mremap_shrink)
{
	struct base *d = &self->d;
	__u64 pg = d->pg;
	unsigned char *p = map(d->fd, d->st.offset, 2 * pg), *q, v = 0;

	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x21, 2 * pg);
	q = mremap(p, 2 * pg, pg, 0);
	ASSERT_EQ(p, q);
	EXPECT_TRUE(mm_all_bytes(p, pg, 0x21));
	EXPECT_TRUE(mapped(p, pg));
	EXPECT_FALSE(mapped(p + pg, pg));
	/* The second page kept its data: map it again. */
	q = map(d->fd, d->st.offset + pg, pg);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_TRUE(mm_all_bytes(q, pg, 0x21));
	/* And revocation still finds the shrunk mapping. */
	ASSERT_EQ(0, mm_buf(d->fd, MEMMGR_IOC_FREE, d->st.handle));
	EXPECT_EQ(SIGBUS, probe_read(p, &v));
	EXPECT_EQ(SIGBUS, probe_read(q, &v));
	EXPECT_EQ(0, munmap(p, pg));
	EXPECT_EQ(0, munmap(q, pg));
}

/* mremap() moves a mapping whole; revocation finds it at its new place. */
TEST_F(dev, mremap_move)
{
	struct base *d = &self->d;
	__u64 pg = d->pg;
	unsigned char *p = map(d->fd, d->st.offset, 2 * pg), *dst, *q, v = 0;

	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x61, 2 * pg);
	dst = mmap(NULL, 2 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dst);
	q = mremap(p, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ASSERT_EQ(dst, q);
	EXPECT_FALSE(mapped(p, 2 * pg));
	EXPECT_TRUE(mm_all_bytes(q, 2 * pg, 0x61));
	q[pg] = 0x62;
	p = map(d->fd, d->st.offset, 2 * pg);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0x62, p[pg]);
	ASSERT_EQ(0, mm_buf(d->fd, MEMMGR_IOC_FREE, d->st.handle));
	EXPECT_EQ(SIGBUS, probe_read(q, &v));
	EXPECT_EQ(SIGBUS, probe_write(q + pg, 1));
	EXPECT_EQ(SIGBUS, probe_read(p + pg, &v));
	EXPECT_EQ(0, munmap(p, 2 * pg));
	EXPECT_EQ(0, munmap(q, 2 * pg));
}

/* munmap() of the middle page leaves both ends working, then revoked. */
TEST_F(dev, partial_munmap)
{
	struct base *d = &self->d;
	__u64 pg = d->pg;
	struct memmgr_alloc a;
	unsigned char *p, *mid, v = 0;
	int i;

	ASSERT_EQ(0, mm_alloc(d->fd, EX, 3 * pg, 3, 0, &a));
	p = map(d->fd, a.offset, 3 * pg);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < 3; i++)
		memset(p + i * pg, 0x70 + i, pg);
	ASSERT_EQ(0, munmap(p + pg, pg));
	EXPECT_FALSE(mapped(p + pg, pg));
	EXPECT_TRUE(mm_all_bytes(p, pg, 0x70));
	EXPECT_TRUE(mm_all_bytes(p + 2 * pg, pg, 0x72));
	p[0] = 0x7a;
	p[2 * pg] = 0x7b;
	mid = map(d->fd, a.offset + pg, pg);
	ASSERT_NE(MAP_FAILED, mid);
	EXPECT_TRUE(mm_all_bytes(mid, pg, 0x71));
	ASSERT_EQ(0, mm_buf(d->fd, MEMMGR_IOC_FREE, a.handle));
	EXPECT_EQ(SIGBUS, probe_read(p, &v));
	EXPECT_EQ(SIGBUS, probe_read(p + 2 * pg, &v));
	EXPECT_EQ(SIGBUS, probe_read(mid, &v));
	EXPECT_EQ(0, munmap(p, pg));
	EXPECT_EQ(0, munmap(p + 2 * pg, pg));
	EXPECT_EQ(0, munmap(mid, pg));
}

/* After FREE every page of every mapping gets SIGBUS, writes too. */
TEST_F(dev, sigbus_after_free)
{
	struct base *d = &self->d;
	__u64 pg = d->pg;
	unsigned char *p = map(d->fd, d->st.offset, 2 * pg), v = 0;
	struct memmgr_stats want, now;

	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x13, 2 * pg);
	want = mm_stats(d->fd);
	ASSERT_EQ(0, mm_buf(d->fd, MEMMGR_IOC_FREE, d->st.handle));
	EXPECT_EQ(SIGBUS, probe_read(p, &v));
	EXPECT_EQ(SIGBUS, probe_read(p + 2 * pg - 1, &v));
	EXPECT_EQ(SIGBUS, probe_write(p + pg, 1));
	BAD(d->fd, EINVAL, map(d->fd, d->st.offset, pg),
	    "mmap of a freed buffer");
	EXPECT_EQ(0, munmap(p, 2 * pg));
	want.pool[ST].used -= 2 * pg;
	want.pool[ST].pinned -= 2 * pg;
	want.pool[ST].frees++;
	want.client_used[ST] -= 2 * pg;
	want.free += 2 * pg;
	now = mm_stats(d->fd);
	EXPECT_TRUE(stats_same(_metadata, &want, &now, "after FREE"));
}

/* After eviction: SIGBUS, the offset cannot be mapped again.  1. */
TEST_F(dev, sigbus_after_eviction)
{
	struct base *d = &self->d;
	__u64 room = d->S - d->st.granted;
	struct memmgr_alloc u, b;
	unsigned char *p, *q, v = 0;

	ASSERT_EQ(0, mm_alloc(d->fd, ST, room, 3, MEMMGR_ALLOC_UNPINNED, &u));
	p = map(d->fd, u.offset, room);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, room);
	ASSERT_EQ(0, mm_alloc(d->fd, ST, d->pg, 4, 0, &b));
	EXPECT_EQ(-ESTALE, mm_lookup(d->fd, 3, NULL));
	EXPECT_EQ(SIGBUS, probe_read(p, &v));
	EXPECT_EQ(SIGBUS, probe_read(p + room - 1, &v));
	EXPECT_EQ(SIGBUS, probe_write(p + d->pg, 1));
	BAD(d->fd, EINVAL, map(d->fd, u.offset, d->pg),
	    "mmap of an evicted buffer");
	/* The new buffer is zeros, not the old data. */
	q = map(d->fd, b.offset, d->pg);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_TRUE(mm_all_bytes(q, d->pg, 0));
	EXPECT_EQ(0, mm_buf(d->fd, MEMMGR_IOC_FREE, u.handle));
	EXPECT_EQ(SIGBUS, probe_read(p, &v));
	EXPECT_EQ(0, munmap(p, room));
	EXPECT_EQ(0, munmap(q, d->pg));
}

/*
 * close() with mappings left: they hold the file, so its memory stays
 * charged and usable; unmapping the last of them closes the file and
 * frees it all.
 */
TEST_F(dev, close_then_munmap)
{
	struct base *d = &self->d;
	__u64 pg = d->pg;
	int fd2 = mm_open(0);
	struct memmgr_stats want, now;
	struct memmgr_alloc a;
	unsigned char *p;

	ASSERT_LE(0, fd2);
	want = mm_stats(d->fd);
	ASSERT_EQ(0, mm_alloc(fd2, EX, 2 * pg, 1, 0, &a));
	p = map(fd2, a.offset, 2 * pg);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x44, 2 * pg);
	ASSERT_EQ(0, close(fd2));

	now = mm_stats(d->fd);
	EXPECT_EQ(want.pool[EX].used + 2 * pg, now.pool[EX].used);
	EXPECT_TRUE(mm_all_bytes(p, 2 * pg, 0x44));
	p[pg] = 0x45;
	EXPECT_EQ(0x45, p[pg]);
	/* Unmapping one of two pieces keeps the file. */
	ASSERT_EQ(0, munmap(p, pg));
	now = mm_stats(d->fd);
	EXPECT_EQ(want.pool[EX].used + 2 * pg, now.pool[EX].used);
	EXPECT_EQ(0x45, p[pg]);
	ASSERT_EQ(0, munmap(p + pg, pg));

	want.pool[EX].allocs++;
	want.pool[EX].frees++;
	if (want.pool[EX].peak < want.pool[EX].used + 2 * pg)
		want.pool[EX].peak = want.pool[EX].used + 2 * pg;
	now = mm_stats(d->fd);
	EXPECT_TRUE(stats_same(_metadata, &want, &now, "after the last munmap"));
}

/* Run @fn in a child; return its exit status, or 128 + signal. */
static int in_child(int (*fn)(struct base *, unsigned char *), struct base *d,
		    unsigned char *p)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid)
		_exit(fn(d, p));
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) :
	       128 + WTERMSIG(status);
}

/* The child sees the parent's data and writes back through it. */
static int child_reads(struct base *d, unsigned char *p)
{
	unsigned char *q;

	if (!mm_all_bytes(p, d->st.granted, 0x3c))
		return 1;
	q = map(d->fd, d->st.offset, d->st.granted);
	if (q == MAP_FAILED || !mm_all_bytes(q, d->st.granted, 0x3c))
		return 2;
	p[d->pg] = 0x3d;
	return 0;
}

static int child_frees(struct base *d, unsigned char *p)
{
	return mm_buf(d->fd, MEMMGR_IOC_FREE, d->st.handle) ? 1 : 0;
}

/* fork() with live mappings: the child shares the parent's memory. */
TEST_F(dev, fork_child_sees_data)
{
	struct base *d = &self->d;
	unsigned char *p = map(d->fd, d->st.offset, d->st.granted);
	struct memmgr_stats want, now;

	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x3c, d->st.granted);
	want = mm_stats(d->fd);
	EXPECT_EQ(0, in_child(child_reads, d, p));
	EXPECT_EQ(0x3d, p[d->pg]);
	EXPECT_EQ(0x3c, p[0]);
	/* The child's exit freed nothing: the parent still has the file. */
	now = mm_stats(d->fd);
	EXPECT_TRUE(stats_same(_metadata, &want, &now, "after the child"));
	EXPECT_EQ(0, munmap(p, d->st.granted));
}

/* The child frees the buffer through the inherited file: SIGBUS here. */
TEST_F(dev, fork_child_frees)
{
	struct base *d = &self->d;
	unsigned char *p = map(d->fd, d->st.offset, d->st.granted), v = 0;
	struct memmgr_stats want, now;

	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x3c, d->st.granted);
	want = mm_stats(d->fd);
	EXPECT_EQ(0, in_child(child_frees, d, p));
	EXPECT_EQ(SIGBUS, probe_read(p, &v));
	EXPECT_EQ(SIGBUS, probe_write(p + d->pg, 1));
	EXPECT_EQ(-ENOENT, mm_buf(d->fd, MEMMGR_IOC_FREE, d->st.handle));
	want.pool[ST].used -= d->st.granted;
	want.pool[ST].pinned -= d->st.granted;
	want.pool[ST].frees++;
	want.client_used[ST] -= d->st.granted;
	want.free += d->st.granted;
	now = mm_stats(d->fd);
	EXPECT_TRUE(stats_same(_metadata, &want, &now, "after the child"));
	EXPECT_EQ(0, munmap(p, d->st.granted));
}

/* A child killed while it writes to the mapping: the parent's works. */
TEST_F(dev, fork_child_killed)
{
	struct base *d = &self->d;
	unsigned char *p = map(d->fd, d->st.offset, d->st.granted);
	struct memmgr_stats want, now;
	int status, i;
	pid_t pid;

	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0, d->st.granted);
	want = mm_stats(d->fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		for (;;)
			((volatile unsigned char *)p)[d->pg] = 0x99;
	}
	for (i = 0; i < 10000 && ((volatile unsigned char *)p)[d->pg] != 0x99;
	     i++)
		usleep(1000);
	EXPECT_EQ(0x99, p[d->pg]);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	p[0] = 0x98;
	EXPECT_EQ(0x98, p[0]);
	now = mm_stats(d->fd);
	EXPECT_TRUE(stats_same(_metadata, &want, &now, "after the kill"));
	EXPECT_EQ(0, munmap(p, d->st.granted));
}

TEST_HARNESS_MAIN
