// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr_bench: memmgr against its baselines, side by side in one run.
 *
 *   memmgr_bench [--quick] [--json PATH] [--module KO [--params P]]
 *                [--accel NAME] [--reps N] [--cases LIST] [--trace FILE]
 *
 * Runs in the VM (selftests/vm.sh; `make bench` drives it).  Each case and
 * its baseline run in the same process, alternating from one repetition
 * to the next (the order rotates so neither always goes first); the table
 * gives medians over the repetitions and their ratio.  Times are per
 * operation, from CLOCK_MONOTONIC around batches of operations.
 *
 *  1. ALLOC + FREE of 4 KiB of execution memory, unmapped, against the
 *     system-call floor: an unknown ioctl on the same file (ENOTTY), as
 *     many calls as the case makes (two).  Beside it, what the emulator
 *     makes of the kernel's clear_page(): 4 KiB of "rep stosb" (what
 *     memmgr's zeroing runs with ERMS) against "rep stosq" (without).
 *  2. ALLOC + mmap + a write to every page + munmap + FREE, at 64 KiB,
 *     2 MiB and 32 MiB, against anonymous mmap(MAP_POPULATE) + write +
 *     munmap and memfd_create + ftruncate + mmap + write + munmap + close.
 *  3. Case 1 in two processes at once (own open file each) against one
 *     process alone: throughput.  Two controls tell what the VM lets two
 *     processes gain at all: ENOTTY ioctls, and a loop with no system call.
 *  4. Case 1 on a file holding 100,000 live allocations against one
 *     holding 100 (both open at once).
 *  5. Storage churn through twice the storage quota in 64 KiB unpinned,
 *     mapped buffers: an ALLOC that evicts against one that does not.
 *     Then a Zipf-like key stream (s = 0.99 over eight times as many keys
 *     as fit) of LOOKUP, and ALLOC on a miss: the hit rate with
 *     evict_policy=random, with evict_policy=lru where the module has it,
 *     and with LRU simulated here on the same stream.
 *  6. libmemmgr's small objects (memmgr_alloc_exec + memmgr_free, batches
 *     of one size) against glibc malloc and jemalloc (Debian's
 *     libjemalloc.a, linked statically with its malloc API renamed je_*),
 *     16 B to 4 KiB (libmemmgr's small objects go up to MEMMGR_SMALL_MAX;
 *     above it, each object is a kernel buffer).
 *  7. With --module: insmod and rmmod of the reserve (--params, default
 *     total=1G) against insmod and rmmod of a one-page reserve, then the
 *     module stays loaded for the other cases.  Metadata: slab bytes per
 *     live allocation (Slab in /proc/meminfo around case 4's allocations;
 *     the memmgr_buffer cache's sizes from /sys/kernel/slab) and bytes per
 *     reserved GiB (Slab + VmallocUsed taken by the insmod, beyond what the
 *     one-page load takes).
 *  8. mode=unified, storage holding S + 1 pages (a pinned buffer and
 *     32,768 unpinned two-page buffers, as many as fit at smaller totals)
 *     and execution all the rest: a one-page execution ALLOC declined at
 *     once (EAGAIN: no buffer fits in the one page above S), against the
 *     same state switched to mode=split, where execution never evicts.
 *     Target: within 2x (issue 11: choosing a victim must not walk every
 *     evictable buffer).  Restores mode=split.
 *
 *  9. A cache miss of a 4 KiB storage page (issue 12): ALLOC, write the
 *     page, FREE, with the page reached through the file's window
 *     (MEMMGR_WINDOW_OFFSET, mapped once), against the per-buffer way:
 *     ALLOC, mmap, write, munmap, FREE.  Reported, no target.
 * 10. Pin + unpin of a resident (unpinned, one-page) storage buffer
 *     through libmemmgr's inline fast path, memmgr_pin_handle() +
 *     memmgr_unpin_handle() on the buffer's word in the file's state area
 *     (issue 12), against the same two compare-and-swaps (+1 with
 *     acquire, -1 with release) on an ordinary word of a MAP_SHARED
 *     anonymous page.  Target: within 2x (no system call on the path).
 *     Beside it, for reference: the PIN + UNPIN ioctls on a file with no
 *     state area, against the same two compare-and-swaps.
 * 11. 64 one-page storage buffers, unmapped, allocated and freed by
 *     MEMMGR_IOC_ALLOC_MANY + MEMMGR_IOC_FREE_MANY (two calls), against
 *     64 MEMMGR_IOC_ALLOC + 64 MEMMGR_IOC_FREE (128 calls): time per 64
 *     buffers.  Target: at most 0.3x (issue 12).
 * 12. The execution allocator (issue 13): p = alloc(size), optionally
 *     memset(p, i, size), free, at 16 B to 8 MiB, in four loop shapes:
 *     "free" and "write" free p at once; "window" and "window+write"
 *     free the object allocated a window ago (64 live objects per
 *     thread, fewer above 256 KiB: at most 16 MiB, at least 2), so the
 *     allocator cannot hand the same slot back.  Allocators: glibc
 *     malloc, jemalloc (je_malloc, as case 6), memmgr_malloc (one exec id
 *     per thread) and, to compare engines, memmgr_alloc_exec (libmemmgr's
 *     slabs and kernel buffers); each with one thread and with two
 *     threads at once (two persistent threads; the one-thread batches
 *     run on the first), all eight alternating.  A batch has as many
 *     ops as make jemalloc's one-thread batch take about 0.1 s (measured
 *     first; memmgr_alloc_exec's may have fewer).  Per size, the table
 *     gives the shape where memmgr_malloc does worst against jemalloc,
 *     with one thread and with two (ns per op and thread).  Target:
 *     within 1.3x.  And the shape where memmgr_malloc's throughput gains
 *     least from a second thread.  Target: at least 1.6x (with two
 *     vCPUs; with one, not judged).  Beside them, a CPU loop in one and
 *     two threads: what the VM lets two threads gain at all.  The whole
 *     matrix: the "malloc" block and the JSON.
 * 13. One object grown from 16 B to 1 MiB by realloc to twice its size,
 *     writing each new half, then freed: memmgr_malloc + memmgr_realloc
 *     against je_malloc + je_realloc, and glibc.  Target: within 1.3x of
 *     jemalloc.
 * 14. A trace of a real program's allocations replayed (--trace FILE,
 *     made on the host by malloc_trace: SQLite's speedtest1; without it,
 *     a synthetic trace of SQLite-like sizes, labelled so), each new
 *     object filled with memset, the grown part of a realloc too:
 *     memmgr_malloc against glibc (target: within 1.15x) and jemalloc,
 *     time per replay.  Then, untimed, a replay on a fresh handle that
 *     samples the file's execution charge (memmgr_get_stats():
 *     kernel.client_used[MEMMGR_POOL_EXEC]) after the event where the
 *     bytes live, as asked for, peak (target: at most 1.25x of them) and
 *     after the last event (against the same peak: speedtest1 frees
 *     everything by its end).
 *
 * --cases runs only the cases listed (7: the metadata rows; insmod is
 * timed whenever --module is given).
 *
 * --quick runs every case once with tiny counts (and case 5 in a few
 * buffers of room, the rest of the quota held by one pinned buffer; case 8
 * with its full count of buffers, as many as fit, and few requests; case
 * 12 with 8 ops per batch, windows of 4; case 13 with one growth per
 * batch; case 14 on a synthetic
 * trace of 20,000 events unless --trace is given): it checks that the
 * benchmark works, not how fast memmgr is.  --reps sets cases 12 to 14's
 * repetitions too (5 by default for case 12).
 *
 * Output: progress lines, then the table; the JSON (also written to
 * --json, default /tmp/bench.json), the two size sweeps and case 12's
 * matrix (for gnuplot, the matrix for people too) between
 * "@@memmgr-bench-NAME-begin" and "-end" lines, for the host to
 * extract.  Exits 0 when every case ran, whether or not targets were met;
 * 1 on any error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/memmgr.h>

#include "libmemmgr.h"
#include "malloc_trace.h"

/* Debian's libjemalloc.a with its malloc API renamed (selftests/Makefile). */
void *je_malloc(size_t size);
void *je_realloc(void *ptr, size_t size);
void je_free(void *ptr);

#define DEV		"/dev/memmgr"
#define PAGE		4096UL
#define KIB		1024UL
#define MIB		(1024 * KIB)
#define MAX_REPS	31
#define MAX_RESULTS	128
#define NR_MAP_SIZES	3
#define NR_SMALL	6
#define CHURN_BUF	(64 * KIB)
#define CHURN_BATCH	256
#define ZIPF_S		0.99
#define ZIPF_KEYS	8	/* keys per buffer of room */
#define SCAN_BUF	(2 * PAGE)	/* case 8: each evictable buffer */
#define BATCH_BUFS	64		/* case 11: buffers per batch */
#define NR_MALLOC	10		/* case 12: sizes */
#define MALLOC_WINDOW_MAX 64		/* case 12: live objects per thread */
#define MALLOC_WINDOW_BYTES (16 * MIB)	/* and at most this much */
#define REALLOC_FROM	16		/* case 13 */
#define REALLOC_TO	(1 << 20)
/* No command has this number: the ioctl layer answers ENOTTY. */
#define IOC_UNKNOWN	_IO(MEMMGR_IOC_MAGIC, 0x7f)

static const size_t map_sizes[NR_MAP_SIZES] = { 64 * KIB, 2 * MIB, 32 * MIB };
static const size_t small_sizes[NR_SMALL] = { 16, 64, 256, 1024, 2048, 4096 };
static const size_t malloc_sizes[NR_MALLOC] = {
	16, 64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB, 8 * MIB,
};

/* Cases 12 to 14: the allocators. */
enum alloc_kind { AK_GLIBC, AK_JE, AK_MM, AK_OLD, NR_AK };
static const char * const ak_names[NR_AK] = {
	"malloc", "je_malloc", "memmgr_malloc", "memmgr_alloc_exec",
};

/* Case 12: the loop shapes, MS_* ORed. */
#define MS_WRITE	1	/* memset of the whole object */
#define MS_WINDOW	2	/* free the object allocated a window ago */
#define NR_SHAPES	4
static const char * const shape_names[NR_SHAPES] = {
	"free", "write", "window", "window+write",
};

/* How much work each case does. */
struct sizing {
	int reps;
	int cycles;			/* cases 1, 3, 4: ALLOC+FREE pairs */
	int map_iters[NR_MAP_SIZES];	/* case 2, per size */
	long live_few, live_many;	/* case 4 */
	long churn_room;		/* case 5: buffers of room, 0: quota */
	long zipf_len;			/* case 5: accesses */
	int small_batch, small_rounds;	/* case 6 */
	int load_reps;			/* case 7 */
	long scan_buffers;		/* case 8: evictable buffers */
	int scan_ops;			/* case 8: requests per batch */
	int pin_pairs;			/* case 10: pin+unpin pairs */
	int batch_rounds;		/* case 11: batches of 64 */
	int malloc_reps;		/* case 12 */
	uint64_t malloc_ns;		/* cases 12, 13: ns per batch, 0: */
	long malloc_ops;		/* ops per batch instead */
	int malloc_window;		/* case 12: most objects in a window */
	uint64_t synth_events;		/* case 14 without a trace */
};

static const struct sizing full_sizing = {
	.reps = 7, .cycles = 4000, .map_iters = { 200, 20, 3 },
	.live_few = 100, .live_many = 100000, .churn_room = 0,
	.zipf_len = 120000, .small_batch = 512, .small_rounds = 4,
	.load_reps = 5, .scan_buffers = 32768, .scan_ops = 200,
	.pin_pairs = 100000, .batch_rounds = 200,
	.malloc_reps = 5, .malloc_ns = 100000000, .malloc_window = 64,
	.synth_events = 1000000,
};

static const struct sizing quick_sizing = {
	.reps = 1, .cycles = 20, .map_iters = { 2, 1, 1 },
	.live_few = 10, .live_many = 1000, .churn_room = 32,
	.zipf_len = 2000, .small_batch = 16, .small_rounds = 1,
	.load_reps = 1, .scan_buffers = 32768, .scan_ops = 10,
	.pin_pairs = 20, .batch_rounds = 2,
	.malloc_reps = 1, .malloc_ops = 8, .malloc_window = 4,
	.synth_events = 20000,
};

static struct sizing sz;
static bool quick;

enum target_kind { T_NONE, T_LE, T_LT, T_GE };

/**
 * struct result - one row of the table
 * @cs:		case number
 * @what:	what memmgr does
 * @unit:	"ns/op", "op/s", "%", "B" or "ms"
 * @bname:	what the baseline is
 * @a:		memmgr's median (NAN: none)
 * @b:		the baseline's median (NAN: none)
 * @ratio:	@a / @b, or NAN
 * @kind:	how @ratio is judged against @limit
 * @limit:	the target
 * @nr:		samples in @sa and @sb
 * @sa:		memmgr's samples, one per repetition
 * @sb:		the baseline's
 */
struct result {
	int cs;
	char what[40];
	const char *unit;
	char bname[24];
	double a, b, ratio;
	enum target_kind kind;
	double limit;
	int nr;
	double sa[MAX_REPS], sb[MAX_REPS];
};

static struct result results[MAX_RESULTS];
static int nr_results;

/*
 * Case 12, one size and loop shape: per allocator and thread count (1, 2),
 * ns per op and thread (medians, samples); ops per thread and batch.
 */
struct malloc_fig {
	double ns[NR_AK][2];
	double samples[NR_AK][2][MAX_REPS];
	long ops[NR_AK];
	int window;
};

/* Figures outside the table, for the JSON and the plot. */
static struct {
	double map_ns[NR_MAP_SIZES][3];		/* memmgr, anon, memfd */
	double small_ns[NR_SMALL][3];		/* memmgr, glibc, jemalloc */
	double per_ioctl_ns;			/* case 1: one ENOTTY ioctl */
	double rep_stosb_ns;			/* case 1: zero 4 KiB */
	long live_many;
	double slab_per_alloc;			/* bytes */
	long slab_object_size, slab_size;	/* memmgr_buffer cache */
	double reserve_overhead_per_gib;	/* bytes */
	double evictable_per_gib;		/* bytes */
	uint64_t total;				/* bytes reserved */
	uint64_t churn_buffers, churn_evictions;
	double zipf_random, zipf_lru, zipf_lru_sim;
	bool lru_implemented;
	long zipf_keys, zipf_room, zipf_measured;
	uint64_t zipf_evictions;
	long scan_buffers;			/* case 8 */
	long vcpus;				/* case 12 */
	bool malloc_done;
	struct malloc_fig malloc[NR_MALLOC][NR_SHAPES];
	long realloc_chains;			/* case 13: per batch */
	uint64_t charged_peak, charged_end;	/* case 14 */
	bool loaded_here;
} fig = {
	.slab_object_size = -1, .slab_size = -1, .slab_per_alloc = NAN,
	.reserve_overhead_per_gib = NAN,
};

static const char *accel = "unknown";

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "memmgr_bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (errno %d: %s)\n", err, strerror(err));
	exit(1);
}

static void __attribute__((format(printf, 1, 2))) progress(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

static double median(const double *v, int n)
{
	double s[MAX_REPS];

	if (!n)
		return NAN;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* xorshift64*: the same stream on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static double rng_unit(void)
{
	return (rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

/* A value in kB from /proc/meminfo, -1 if missing. */
static long meminfo_kb(const char *key)
{
	size_t len = strlen(key);
	char line[256];
	long v = -1;
	FILE *f;

	f = fopen("/proc/meminfo", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == ':') {
			v = strtol(line + len + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static long read_long(const char *path)
{
	long v = -1;
	FILE *f;

	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* The first line of @path starting with @key, after its colon. */
static void read_field(const char *path, const char *key, char *buf,
		       size_t size)
{
	size_t len = strlen(key);
	char line[256];
	FILE *f;

	snprintf(buf, size, "unknown");
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *v;

		if (strncmp(line, key, len))
			continue;
		v = strchr(line, ':');
		v = v ? v + 1 : line;
		v += strspn(v, " \t");
		v[strcspn(v, "\n")] = '\0';
		snprintf(buf, size, "%s", v);
		break;
	}
	fclose(f);
}

/* The table. */

static struct result *add_result(int cs, const char *what, const char *unit,
				 const char *bname)
{
	struct result *r;

	if (nr_results == MAX_RESULTS)
		die("too many results");
	r = &results[nr_results++];
	r->cs = cs;
	snprintf(r->what, sizeof(r->what), "%s", what);
	r->unit = unit;
	snprintf(r->bname, sizeof(r->bname), "%s", bname);
	r->a = r->b = r->ratio = NAN;
	return r;
}

static void set_target(struct result *r, enum target_kind kind, double limit)
{
	r->kind = kind;
	r->limit = limit;
}

/* Samples of memmgr (@a) and the baseline (@b): medians and ratio. */
static void set_samples(struct result *r, const double *a, const double *b,
			int n)
{
	r->nr = n;
	memcpy(r->sa, a, n * sizeof(*a));
	memcpy(r->sb, b, n * sizeof(*b));
	r->a = median(a, n);
	r->b = median(b, n);
	r->ratio = r->a / r->b;
}

/* 1 met, 0 not met, -1 no target. */
static int result_met(const struct result *r)
{
	switch (r->kind) {
	case T_LE:
		return r->ratio <= r->limit;
	case T_LT:
		return r->ratio < r->limit;
	case T_GE:
		return r->ratio >= r->limit;
	default:
		return -1;
	}
}

static const char *target_str(const struct result *r, char *buf, size_t size)
{
	static const char * const ops[] = { "-", "<=", "<", ">=" };

	if (r->kind == T_NONE)
		return "-";
	snprintf(buf, size, "%s %.2fx", ops[r->kind], r->limit);
	return buf;
}

static const char *fmt_val(double v, const char *unit, char *buf, size_t size)
{
	if (isnan(v))
		snprintf(buf, size, "-");
	else if (!strcmp(unit, "ns/op") && v < 1e3)
		snprintf(buf, size, "%.0f ns", v);
	else if (!strcmp(unit, "ns/op") && v < 1e6)
		snprintf(buf, size, "%.1f us", v / 1e3);
	else if (!strcmp(unit, "ns/op"))
		snprintf(buf, size, "%.2f ms", v / 1e6);
	else if (!strcmp(unit, "op/s") && v >= 1e7)
		snprintf(buf, size, "%.1f M/s", v / 1e6);
	else if (!strcmp(unit, "op/s"))
		snprintf(buf, size, "%.1f k/s", v / 1e3);
	else if (!strcmp(unit, "%"))
		snprintf(buf, size, "%.1f %%", v);
	else if (!strcmp(unit, "B") && v >= 10 * MIB)
		snprintf(buf, size, "%.1f MiB", v / MIB);
	else if (!strcmp(unit, "B") && v >= 10 * KIB)
		snprintf(buf, size, "%.1f KiB", v / KIB);
	else if (!strcmp(unit, "ms"))
		snprintf(buf, size, "%.1f ms", v);
	else
		snprintf(buf, size, "%.0f %s", v, unit);
	return buf;
}

static int cmp_case(const void *x, const void *y)
{
	const struct result *a = x, *b = y;

	if (a->cs != b->cs)
		return a->cs - b->cs;
	return (a > b) - (a < b);
}

static void print_table(FILE *out)
{
	char va[24], vb[24], t[24], ratio[16];
	int i;

	fprintf(out, "%-4s %-36s %10s %10s %-16s %7s %8s %s\n", "case",
		"what", "memmgr", "baseline", "(baseline)", "ratio",
		"target", "met");
	for (i = 0; i < nr_results; i++) {
		const struct result *r = &results[i];
		int met = result_met(r);

		if (isnan(r->ratio))
			snprintf(ratio, sizeof(ratio), "-");
		else
			snprintf(ratio, sizeof(ratio), "%.2fx", r->ratio);
		fprintf(out, "%-4d %-36s %10s %10s %-16s %7s %8s %s\n", r->cs,
			r->what, fmt_val(r->a, r->unit, va, sizeof(va)),
			fmt_val(r->b, r->unit, vb, sizeof(vb)), r->bname, ratio,
			target_str(r, t, sizeof(t)),
			met < 0 ? "-" : met ? "yes" : "NO");
	}
}

/* One batch of operations, timed as a whole. */
typedef void (*bench_fn)(void *ctx);

/*
 * Run @k functions @sz.reps times, rotating which goes first; @out[j][rep]
 * gets function j's time divided by @ops.  One untimed round first.
 */
static void measure(int k, bench_fn const fn[], void *const ctx[],
		    double ops, double out[][MAX_REPS])
{
	int rep, j;

	for (j = 0; j < k; j++)
		fn[j](ctx[j]);
	for (rep = 0; rep < sz.reps; rep++)
		for (j = 0; j < k; j++) {
			int w = (rep + j) % k;
			uint64_t t0 = now_ns();

			fn[w](ctx[w]);
			out[w][rep] = (now_ns() - t0) / ops;
		}
}

/* The device. */

static int dev_open(void)
{
	int fd = open(DEV, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("open %s", DEV);
	return fd;
}

static void dev_stats(int fd, struct memmgr_stats *st)
{
	if (ioctl(fd, MEMMGR_IOC_STATS, st))
		die("MEMMGR_IOC_STATS");
}

static int dev_alloc(int fd, uint32_t pool, uint64_t size, uint64_t tag,
		     uint32_t flags, struct memmgr_alloc *a)
{
	*a = (struct memmgr_alloc){
		.pool = pool, .flags = flags, .size = size, .tag = tag,
	};
	return ioctl(fd, MEMMGR_IOC_ALLOC, a) ? -errno : 0;
}

static void dev_alloc_ok(int fd, uint32_t pool, uint64_t size, uint64_t tag,
			 uint32_t flags, struct memmgr_alloc *a)
{
	int ret = dev_alloc(fd, pool, size, tag, flags, a);

	if (ret) {
		errno = -ret;
		die("MEMMGR_IOC_ALLOC pool %u size %llu", pool,
		    (unsigned long long)size);
	}
}

static void dev_free(int fd, uint64_t handle)
{
	struct memmgr_buf b = { .handle = handle };

	if (ioctl(fd, MEMMGR_IOC_FREE, &b))
		die("MEMMGR_IOC_FREE");
}

static void touch_pages(char *p, size_t size)
{
	size_t off;

	for (off = 0; off < size; off += PAGE)
		*(volatile uint64_t *)(p + off) = off;
}

/* Case 1, 3 and 4: ALLOC + FREE of one unmapped 4 KiB exec buffer. */
struct cycle_ctx {
	int fd;
	int n;
};

static void exec_cycles(void *arg)
{
	struct cycle_ctx *c = arg;
	struct memmgr_alloc a;
	int i;

	for (i = 0; i < c->n; i++) {
		dev_alloc_ok(c->fd, MEMMGR_POOL_EXEC, PAGE, 1, 0, &a);
		dev_free(c->fd, a.handle);
	}
}

/* The floor: as many system calls, each answered ENOTTY at once. */
static void unknown_ioctls(void *arg)
{
	struct cycle_ctx *c = arg;
	int i;

	for (i = 0; i < 2 * c->n; i++)
		if (ioctl(c->fd, IOC_UNKNOWN, 0) != -1 || errno != ENOTTY)
			die("unknown ioctl did not fail with ENOTTY");
}

/*
 * How the emulator runs the kernel's clear_page(): with ERMS (-cpu max has
 * it) x86 uses clear_page_erms, one "rep stosb" of 4096 bytes, which TCG
 * executes an iteration at a time; without, clear_page_rep, a "rep stosq"
 * of 512 iterations.  Both here, in userspace.
 */
static char zero_buf[PAGE] __attribute__((aligned(PAGE)));

static void zero_rep_stosb(void *arg)
{
	struct cycle_ctx *c = arg;
	int i;

	for (i = 0; i < c->n; i++) {
		void *dst = zero_buf;
		size_t cnt = PAGE;

		asm volatile("rep stosb" : "+D" (dst), "+c" (cnt) : "a" (0)
			     : "memory");
	}
}

static void zero_rep_stosq(void *arg)
{
	struct cycle_ctx *c = arg;
	int i;

	for (i = 0; i < c->n; i++) {
		void *dst = zero_buf;
		size_t cnt = PAGE / 8;

		asm volatile("rep stosq" : "+D" (dst), "+c" (cnt) : "a" (0)
			     : "memory");
	}
}

static void case_syscall_floor(int fd)
{
	struct cycle_ctx c = { .fd = fd, .n = sz.cycles };
	bench_fn const fn[2] = { exec_cycles, unknown_ioctls };
	bench_fn const zfn[2] = { zero_rep_stosb, zero_rep_stosq };
	void *const ctx[2] = { &c, &c };
	double t[2][MAX_REPS];
	struct result *r;

	progress("case 1: ALLOC+FREE 4 KiB against 2 unknown ioctls");
	measure(2, fn, ctx, sz.cycles, t);
	r = add_result(1, "exec 4 KiB ALLOC+FREE, unmapped", "ns/op",
		       "2 ENOTTY ioctl");
	set_samples(r, t[0], t[1], sz.reps);
	set_target(r, T_LE, 2.5);
	fig.per_ioctl_ns = r->b / 2;

	measure(2, zfn, ctx, sz.cycles, t);
	r = add_result(1, "emulator: zero 4 KiB, rep stosb", "ns/op",
		       "rep stosq");
	set_samples(r, t[0], t[1], sz.reps);
	fig.rep_stosb_ns = r->a;
}

/* Case 2: a buffer to use, from memmgr, anonymous memory or a memfd. */
struct map_ctx {
	int fd;
	size_t size;
	int iters;
};

static void map_memmgr(void *arg)
{
	struct map_ctx *c = arg;
	struct memmgr_alloc a;
	char *p;
	int i;

	for (i = 0; i < c->iters; i++) {
		dev_alloc_ok(c->fd, MEMMGR_POOL_EXEC, c->size, 2, 0, &a);
		p = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 c->fd, a.offset);
		if (p == MAP_FAILED)
			die("mmap of a memmgr buffer");
		touch_pages(p, c->size);
		munmap(p, c->size);
		dev_free(c->fd, a.handle);
	}
}

static void map_anon(void *arg)
{
	struct map_ctx *c = arg;
	char *p;
	int i;

	for (i = 0; i < c->iters; i++) {
		p = mmap(NULL, c->size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (p == MAP_FAILED)
			die("anonymous mmap");
		touch_pages(p, c->size);
		munmap(p, c->size);
	}
}

static void map_memfd(void *arg)
{
	struct map_ctx *c = arg;
	int i, mfd;
	char *p;

	for (i = 0; i < c->iters; i++) {
		mfd = memfd_create("memmgr_bench", MFD_CLOEXEC);
		if (mfd < 0 || ftruncate(mfd, c->size))
			die("memfd");
		p = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 mfd, 0);
		if (p == MAP_FAILED)
			die("mmap of a memfd");
		touch_pages(p, c->size);
		munmap(p, c->size);
		close(mfd);
	}
}

static void case_map_sizes(int fd)
{
	bench_fn const fn[3] = { map_memmgr, map_anon, map_memfd };
	double t[3][MAX_REPS];
	int s, j;

	for (s = 0; s < NR_MAP_SIZES; s++) {
		struct map_ctx c = {
			.fd = fd, .size = map_sizes[s], .iters = sz.map_iters[s],
		};
		void *const ctx[3] = { &c, &c, &c };
		char what[40];
		struct result *r;

		progress("case 2: %zu KiB: memmgr, anonymous, memfd",
			 c.size / KIB);
		measure(3, fn, ctx, c.iters, t);
		snprintf(what, sizeof(what), "map+write+unmap %zu KiB",
			 c.size / KIB);
		r = add_result(2, what, "ns/op", "anon POPULATE");
		set_samples(r, t[0], t[1], sz.reps);
		set_target(r, c.size < 2 * MIB ? T_LE : T_LT, 1.0);
		r = add_result(2, what, "ns/op", "memfd");
		set_samples(r, t[0], t[2], sz.reps);
		for (j = 0; j < 3; j++)
			fig.map_ns[s][j] = median(t[j], sz.reps);
	}
}

/*
 * Case 3 and its controls: what each process does, @n times.  The controls
 * tell what the VM itself lets two processes gain: system calls that do
 * nothing (ENOTTY), and a loop that makes none.
 */
enum proc_work { WORK_CYCLES, WORK_ENOTTY, WORK_SPIN };

uint64_t spin_sink;

static void proc_work(enum proc_work work, int n)
{
	struct cycle_ctx cc = { .fd = -1, .n = n };
	uint64_t x = n;
	long i;

	switch (work) {
	case WORK_CYCLES:
		cc.fd = dev_open();
		exec_cycles(&cc);
		break;
	case WORK_ENOTTY:
		cc.fd = dev_open();
		unknown_ioctls(&cc);
		break;
	case WORK_SPIN:
		for (i = 0; i < n * 2000L; i++) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			/* Keep the compiler from folding the loop. */
			asm volatile("" : "+r" (x));
		}
		spin_sink = x;
		break;
	}
}

/*
 * @k processes, each with its own open file, do @work @n times at once.
 * Return their throughput in units of work per second, from the moment
 * they are let go to the moment the last one finished.
 */
static double run_procs(int k, enum proc_work work, int n)
{
	int ready[2], go[2], done[2], i, status;
	uint64_t t0, end, last = 0;
	char c;

	if (pipe(ready) || pipe(go) || pipe(done))
		die("pipe");
	for (i = 0; i < k; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (!pid) {
			if (write(ready[1], "r", 1) != 1 ||
			    read(go[0], &c, 1) != 1)
				_exit(2);
			proc_work(work, n);
			end = now_ns();
			if (write(done[1], &end, sizeof(end)) != sizeof(end))
				_exit(2);
			_exit(0);
		}
	}
	for (i = 0; i < k; i++)
		if (read(ready[0], &c, 1) != 1)
			die("a worker did not start");
	t0 = now_ns();
	for (i = 0; i < k; i++)
		if (write(go[1], "g", 1) != 1)
			die("write");
	for (i = 0; i < k; i++) {
		if (read(done[0], &end, sizeof(end)) != sizeof(end))
			die("a worker did not finish");
		if (end > last)
			last = end;
	}
	for (i = 0; i < k; i++)
		if (wait(&status) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			die("a worker failed");
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
	return k * (double)n / ((last - t0) / 1e9);
}

/*
 * Each repetition runs every kind of work, one process and two, in an
 * order that rotates: the controls see the same moment of the host as
 * memmgr does.
 */
static void case_two_procs(void)
{
	static const char * const what[] = {
		"case 1 in 2 processes: throughput",
		"control: 2 procs, ENOTTY ioctls",
		"control: 2 procs, a CPU loop",
	};
	double tput[3][2][MAX_REPS];
	struct result *r;
	int rep, i, w;

	progress("case 3: two processes against one, and two controls");
	for (w = WORK_CYCLES; w <= WORK_SPIN; w++)
		run_procs(1, w, sz.cycles);
	for (rep = 0; rep < sz.reps; rep++)
		for (i = 0; i < 6; i++) {
			int k = (rep + i) % 6;

			w = k / 2;
			tput[w][k % 2][rep] = run_procs(k % 2 + 1, w,
							sz.cycles);
		}
	for (w = WORK_CYCLES; w <= WORK_SPIN; w++) {
		r = add_result(3, what[w], "op/s", "1 process");
		set_samples(r, tput[w][1], tput[w][0], sz.reps);
		if (w == WORK_CYCLES)
			set_target(r, T_GE, 1.6);
	}
}

/* Fill @fd with @n live unmapped 4 KiB exec buffers. */
static void hold_live(int fd, long n)
{
	struct memmgr_alloc a;
	long i;

	for (i = 0; i < n; i++)
		dev_alloc_ok(fd, MEMMGR_POOL_EXEC, PAGE, 4, 0, &a);
}

static void case_live_allocs(void)
{
	int few = dev_open(), many = dev_open();
	struct cycle_ctx cf = { .fd = few, .n = sz.cycles };
	struct cycle_ctx cm = { .fd = many, .n = sz.cycles };
	bench_fn const fn[2] = { exec_cycles, exec_cycles };
	void *const ctx[2] = { &cm, &cf };
	long slab0, slab1, room;
	struct memmgr_stats st;
	double t[2][MAX_REPS];
	struct result *r;
	char what[40];

	dev_stats(few, &st);
	/* Leave room for the cycles themselves. */
	room = st.free / PAGE - sz.live_few - 64;
	fig.live_many = sz.live_many < room ? sz.live_many : room;
	progress("case 4: %ld live allocations against %ld", fig.live_many,
		 sz.live_few);
	hold_live(few, sz.live_few);
	slab0 = meminfo_kb("Slab");
	hold_live(many, fig.live_many);
	slab1 = meminfo_kb("Slab");
	if (slab0 >= 0 && slab1 >= 0)
		fig.slab_per_alloc = (slab1 - slab0) * 1024.0 / fig.live_many;
	else
		fig.slab_per_alloc = NAN;

	measure(2, fn, ctx, sz.cycles, t);
	snprintf(what, sizeof(what), "case 1 with %ld live", fig.live_many);
	r = add_result(4, what, "ns/op", "");
	snprintf(r->bname, sizeof(r->bname), "%ld live", sz.live_few);
	set_samples(r, t[0], t[1], sz.reps);
	set_target(r, T_LE, 1.5);
	close(many);
	close(few);
}

/*
 * Case 5.  The storage pool's room for churn, in CHURN_BUF buffers: the
 * whole quota, or in quick mode @sz.churn_room buffers with the rest held
 * by one pinned buffer (tag 0 is never a churn tag: those start at 1).
 */
static long churn_setup(int fd, struct memmgr_stats *st)
{
	uint64_t quota = st->pool[MEMMGR_POOL_STORAGE].quota;
	long room = quota / CHURN_BUF;
	struct memmgr_alloc a;

	if (st->pool[MEMMGR_POOL_STORAGE].used || st->pool[MEMMGR_POOL_EXEC].used)
		die("case 5 needs an idle device");
	if (sz.churn_room && sz.churn_room < room) {
		room = sz.churn_room;
		dev_alloc_ok(fd, MEMMGR_POOL_STORAGE, quota - room * CHURN_BUF,
			     0, 0, &a);
	}
	if (room < 2)
		die("storage quota too small for case 5");
	return room;
}

/*
 * One pass of churn through 2 * @room buffers: the first @room fill the
 * pool, each later one evicts one at random.  Allocations are timed in
 * batches; each buffer is then mapped and written (untimed), so that
 * evictions revoke real mappings.  Adds the ALLOC time of each half to
 * @ns[0] (no eviction) and @ns[1] (evicting).
 */
static void churn_pass(int fd, long room, uint64_t *ns)
{
	long n = 2 * room, i, j, nr_maps = 0;
	struct memmgr_alloc *a;
	void **maps;

	a = calloc(n, sizeof(*a));
	maps = calloc(n, sizeof(*maps));
	if (!a || !maps)
		die("calloc");
	for (i = 0; i < n; i = j) {
		long end = i + CHURN_BATCH;
		uint64_t t0;

		/* A batch never straddles the start of eviction. */
		if (i < room && end > room)
			end = room;
		if (end > n)
			end = n;
		t0 = now_ns();
		for (j = i; j < end; j++)
			dev_alloc_ok(fd, MEMMGR_POOL_STORAGE, CHURN_BUF, j + 1,
				     MEMMGR_ALLOC_UNPINNED, &a[j]);
		ns[i >= room] += now_ns() - t0;
		for (j = i; j < end; j++) {
			void *p = mmap(NULL, CHURN_BUF, PROT_READ | PROT_WRITE,
				       MAP_SHARED, fd, a[j].offset);

			/* EINVAL: evicted by a later one of this batch. */
			if (p == MAP_FAILED && errno == EINVAL)
				continue;
			if (p == MAP_FAILED)
				die("mmap of a storage buffer");
			touch_pages(p, CHURN_BUF);
			maps[nr_maps++] = p;
		}
	}
	for (i = 0; i < nr_maps; i++)
		munmap(maps[i], CHURN_BUF);
	free(maps);
	free(a);
}

static void case_churn(void)
{
	double t[2][MAX_REPS];
	struct memmgr_stats st0, st1;
	struct result *r;
	long room = 0;
	int rep;

	for (rep = -1; rep < sz.reps; rep++) {
		uint64_t ns[2] = { 0, 0 };
		int fd = dev_open();

		dev_stats(fd, &st0);
		room = churn_setup(fd, &st0);
		if (rep < 0)
			progress("case 5: churn through %ld buffers of %lu KiB, %ld fit",
				 2 * room, CHURN_BUF / KIB, room);
		churn_pass(fd, room, ns);
		dev_stats(fd, &st1);
		fig.churn_evictions = st1.pool[MEMMGR_POOL_STORAGE].evictions -
				      st0.pool[MEMMGR_POOL_STORAGE].evictions;
		if (fig.churn_evictions != (uint64_t)room)
			die("churn evicted %llu buffers, expected %ld",
			    (unsigned long long)fig.churn_evictions, room);
		close(fd);
		if (rep < 0)
			continue;
		t[0][rep] = (double)ns[1] / room;
		t[1][rep] = (double)ns[0] / room;
	}
	fig.churn_buffers = 2 * room;
	r = add_result(5, "storage 64 KiB ALLOC that evicts", "ns/op",
		       "no eviction");
	set_samples(r, t[0], t[1], sz.reps);
	set_target(r, T_LE, 2.0);
}

/* Zipf(s) over ranks 1..@n: the cumulative distribution. */
static double *zipf_cdf(long n, double s)
{
	double *cdf = malloc(n * sizeof(*cdf)), sum = 0;
	long i;

	if (!cdf)
		die("malloc");
	for (i = 0; i < n; i++) {
		sum += 1.0 / pow(i + 1, s);
		cdf[i] = sum;
	}
	for (i = 0; i < n; i++)
		cdf[i] /= sum;
	return cdf;
}

static long zipf_draw(const double *cdf, long n)
{
	double u = rng_unit();
	long lo = 0, hi = n - 1;

	while (lo < hi) {
		long mid = (lo + hi) / 2;

		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* LRU of @room entries over keys 0..@keys-1: hits among accesses @from on. */
static long lru_hits(const uint32_t *stream, long len, long from, long keys,
		     long room)
{
	long *prev = malloc(keys * sizeof(long)), *next;
	long head = -1, tail = -1, used = 0, hits = 0, i;
	bool *in = calloc(keys, sizeof(bool));

	next = malloc(keys * sizeof(long));
	if (!prev || !next || !in)
		die("malloc");
	for (i = 0; i < len; i++) {
		long k = stream[i];

		if (in[k]) {
			hits += i >= from;
			/* Unlink, to go to the head below. */
			if (prev[k] >= 0)
				next[prev[k]] = next[k];
			else
				head = next[k];
			if (next[k] >= 0)
				prev[next[k]] = prev[k];
			else
				tail = prev[k];
		} else if (used == room) {
			long victim = tail;

			tail = prev[victim];
			if (tail >= 0)
				next[tail] = -1;
			else
				head = -1;
			in[victim] = false;
		} else {
			used++;
		}
		in[k] = true;
		prev[k] = -1;
		next[k] = head;
		if (head >= 0)
			prev[head] = k;
		head = k;
		if (tail < 0)
			tail = k;
	}
	free(in);
	free(next);
	free(prev);
	return hits;
}

#define EVICT_POLICY	"/sys/module/memmgr/parameters/evict_policy"

/* Set memmgr's eviction policy; false when the module has no such knob. */
static bool set_evict_policy(const char *policy)
{
	int fd = open(EVICT_POLICY, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 && errno == ENOENT)
		return false;
	if (fd < 0)
		die("open %s", EVICT_POLICY);
	n = write(fd, policy, strlen(policy));
	close(fd);
	if (n != (ssize_t)strlen(policy))
		die("write %s to %s", policy, EVICT_POLICY);
	return true;
}

/*
 * Play @stream (keys 0..@keys-1) on a fresh file: LOOKUP each page id; a
 * hit finds it resident; a miss (never there, or evicted: ESTALE, whose
 * stale entry is freed first) allocates it, evicting as the policy says.
 * Return the hits among accesses @from on.
 */
static long zipf_play(const uint32_t *stream, long len, long from,
		      long *room, uint64_t *evictions)
{
	int fd = dev_open();
	struct memmgr_stats st;
	struct memmgr_alloc a;
	long hits = 0, i;

	dev_stats(fd, &st);
	*evictions = st.pool[MEMMGR_POOL_STORAGE].evictions;
	*room = churn_setup(fd, &st);
	for (i = 0; i < len; i++) {
		struct memmgr_lookup lk = { .tag = stream[i] + 1 };
		int ret = ioctl(fd, MEMMGR_IOC_LOOKUP, &lk) ? -errno : 0;

		if (!ret) {
			hits += i >= from;
			continue;
		}
		if (ret == -ESTALE)
			dev_free(fd, lk.handle);
		else if (ret != -ENOENT)
			die("MEMMGR_IOC_LOOKUP");
		dev_alloc_ok(fd, MEMMGR_POOL_STORAGE, CHURN_BUF, lk.tag,
			     MEMMGR_ALLOC_UNPINNED, &a);
	}
	dev_stats(fd, &st);
	*evictions = st.pool[MEMMGR_POOL_STORAGE].evictions - *evictions;
	if (!*evictions)
		die("the Zipf stream evicted nothing");
	close(fd);
	return hits;
}

/*
 * A Zipf-like stream over eight times as many page ids as fit, played
 * with evict_policy=random and, where the module has it, =lru; and LRU
 * simulated here on the same stream, to check the kernel's.  The first
 * third of the stream warms the cache up and is not counted.
 */
static void case_zipf(void)
{
	long room, keys, len = sz.zipf_len, from = len / 3, measured, i;
	struct memmgr_stats st;
	uint64_t evictions;
	uint32_t *stream;
	struct result *r;
	double *cdf;
	int fd;

	fd = dev_open();
	dev_stats(fd, &st);
	close(fd);
	room = st.pool[MEMMGR_POOL_STORAGE].quota / CHURN_BUF;
	if (sz.churn_room && sz.churn_room < room)
		room = sz.churn_room;
	keys = ZIPF_KEYS * room;
	measured = len - from;
	progress("case 5: Zipf %.2f stream of %ld over %ld keys, %ld fit",
		 ZIPF_S, len, keys, room);
	cdf = zipf_cdf(keys, ZIPF_S);
	stream = malloc(len * sizeof(*stream));
	if (!stream)
		die("malloc");
	for (i = 0; i < len; i++)
		stream[i] = zipf_draw(cdf, keys);

	fig.lru_implemented = set_evict_policy("random");
	fig.zipf_random = 100.0 * zipf_play(stream, len, from, &room,
					    &fig.zipf_evictions) / measured;
	fig.zipf_lru = NAN;
	if (fig.lru_implemented) {
		set_evict_policy("lru");
		fig.zipf_lru = 100.0 * zipf_play(stream, len, from, &room,
						 &evictions) / measured;
		set_evict_policy("random");
	}
	fig.zipf_lru_sim = 100.0 * lru_hits(stream, len, from, keys, room) /
			   measured;
	fig.zipf_keys = keys;
	fig.zipf_room = room;
	fig.zipf_measured = measured;

	r = add_result(5, "hit rate, Zipf, evict_policy=random", "%",
		       fig.lru_implemented ? "evict_policy=lru" :
		       "LRU: none");
	r->a = fig.zipf_random;
	r->b = fig.zipf_lru;
	r = add_result(5, fig.lru_implemented ?
		       "hit rate, Zipf, evict_policy=lru" :
		       "hit rate, Zipf, LRU not in memmgr", "%",
		       "LRU simulated");
	r->a = fig.zipf_lru;
	r->b = fig.zipf_lru_sim;
	free(stream);
	free(cdf);
}

/* Case 6: batches of one size, allocated then freed in order. */
struct small_ctx {
	struct memmgr *mm;
	size_t size;
	void **ptrs;
};

static void small_memmgr(void *arg)
{
	struct small_ctx *c = arg;
	int r, i, ret;

	for (r = 0; r < sz.small_rounds; r++) {
		for (i = 0; i < sz.small_batch; i++) {
			ret = memmgr_alloc_exec(c->mm, 6, c->size, 0,
						&c->ptrs[i]);
			if (ret) {
				errno = -ret;
				die("memmgr_alloc_exec(%zu)", c->size);
			}
			*(volatile char *)c->ptrs[i] = 1;
		}
		for (i = 0; i < sz.small_batch; i++)
			if (memmgr_free(c->mm, c->ptrs[i]))
				die("memmgr_free");
	}
}

static void small_glibc(void *arg)
{
	struct small_ctx *c = arg;
	int r, i;

	for (r = 0; r < sz.small_rounds; r++) {
		for (i = 0; i < sz.small_batch; i++) {
			c->ptrs[i] = malloc(c->size);
			if (!c->ptrs[i])
				die("malloc");
			*(volatile char *)c->ptrs[i] = 1;
		}
		for (i = 0; i < sz.small_batch; i++)
			free(c->ptrs[i]);
	}
}

static void small_jemalloc(void *arg)
{
	struct small_ctx *c = arg;
	int r, i;

	for (r = 0; r < sz.small_rounds; r++) {
		for (i = 0; i < sz.small_batch; i++) {
			c->ptrs[i] = je_malloc(c->size);
			if (!c->ptrs[i])
				die("je_malloc");
			*(volatile char *)c->ptrs[i] = 1;
		}
		for (i = 0; i < sz.small_batch; i++)
			je_free(c->ptrs[i]);
	}
}

static void case_small(void)
{
	bench_fn const fn[3] = {
		small_memmgr, small_glibc, small_jemalloc,
	};
	double t[3][MAX_REPS];
	struct memmgr *mm;
	void **ptrs;
	int s, j, ret;

	ret = memmgr_open(&mm, 0);
	if (ret) {
		errno = -ret;
		die("memmgr_open");
	}
	ptrs = calloc(sz.small_batch, sizeof(*ptrs));
	if (!ptrs)
		die("calloc");
	progress("case 6: small objects: libmemmgr, glibc, jemalloc");
	for (s = 0; s < NR_SMALL; s++) {
		struct small_ctx c = {
			.mm = mm, .size = small_sizes[s], .ptrs = ptrs,
		};
		void *const ctx[3] = { &c, &c, &c };
		char what[40];
		struct result *r;

		measure(3, fn, ctx, (double)sz.small_rounds * sz.small_batch,
			t);
		snprintf(what, sizeof(what), "libmemmgr %zu B alloc+free%s",
			 c.size, c.size > MEMMGR_SMALL_MAX ? " (kernel)" : "");
		r = add_result(6, what, "ns/op", "jemalloc");
		set_samples(r, t[0], t[2], sz.reps);
		set_target(r, T_LE, 1.5);
		r = add_result(6, what, "ns/op", "glibc malloc");
		set_samples(r, t[0], t[1], sz.reps);
		for (j = 0; j < 3; j++)
			fig.small_ns[s][j] = median(t[j], sz.reps);
	}
	free(ptrs);
	memmgr_close(mm);
}

/* Cases 12 to 14: memmgr_malloc() against glibc malloc and jemalloc. */

static struct memmgr *malloc_open(void)
{
	struct memmgr *mm;
	int ret = memmgr_open(&mm, 0);

	if (ret) {
		errno = -ret;
		die("memmgr_open");
	}
	return mm;
}

static void release_exec(struct memmgr *mm, uint64_t exec_id)
{
	int ret = memmgr_release_exec(mm, exec_id, NULL);

	if (ret) {
		errno = -ret;
		die("memmgr_release_exec(%llu)", (unsigned long long)exec_id);
	}
}

/*
 * One allocator's calls, inlined into loops specialised for each (the
 * allocator is a constant there): every allocator pays the same loop.
 */
static inline __attribute__((always_inline)) void *
ak_alloc(enum alloc_kind k, struct memmgr *mm, uint64_t exec_id, size_t size)
{
	void *p;
	int ret;

	switch (k) {
	case AK_GLIBC:
		return malloc(size);
	case AK_JE:
		return je_malloc(size);
	case AK_MM:
		return memmgr_malloc(mm, exec_id, size);
	default:
		ret = memmgr_alloc_exec(mm, exec_id, size, 0, &p);
		if (ret) {
			errno = -ret;
			return NULL;
		}
		return p;
	}
}

static inline __attribute__((always_inline)) void
ak_free(enum alloc_kind k, struct memmgr *mm, void *p)
{
	switch (k) {
	case AK_GLIBC:
		free(p);
		break;
	case AK_JE:
		je_free(p);
		break;
	default:
		if (memmgr_free(mm, p))
			die("memmgr_free");
	}
}

/* memmgr_alloc_exec() has no realloc: cases 13 and 14 leave it out. */
static inline __attribute__((always_inline)) void *
ak_realloc(enum alloc_kind k, struct memmgr *mm, uint64_t exec_id, void *p,
	   size_t size)
{
	switch (k) {
	case AK_GLIBC:
		return realloc(p, size);
	case AK_JE:
		return je_realloc(p, size);
	default:
		return memmgr_realloc(mm, exec_id, p, size);
	}
}

/* Keep the compiler from dropping an allocation or a write never read. */
static inline __attribute__((always_inline)) void keep(void *p)
{
	asm volatile("" : : "r" (p) : "memory");
}

/*
 * Case 12.  What each thread does in one batch: @n times p = alloc(size),
 * [memset(p, i, size)], free of p or, with MS_WINDOW, of the object
 * allocated @window ops earlier (FIFO), so the allocator cannot hand the
 * same slot back each time.  Thread k uses exec id @exec_id[kind] + k.
 */
struct malloc_job {
	enum alloc_kind kind;
	size_t size;
	unsigned int shape;
	long n;
	int window;
	struct memmgr *mm;
	uint64_t exec_id[NR_AK];
};

struct malloc_worker {
	pthread_t thread;
	int idx;
	sem_t go, done;
	uint64_t t0, t1;
	void *win[MALLOC_WINDOW_MAX];
};

static struct malloc_job mjob;
static struct malloc_worker mworkers[2];
static bool mworkers_quit;

static inline __attribute__((always_inline)) void
malloc_ops(enum alloc_kind k, struct malloc_worker *w)
{
	uint64_t exec_id = mjob.exec_id[k] + w->idx;
	int win = mjob.shape & MS_WINDOW ? mjob.window : 0;
	bool write = mjob.shape & MS_WRITE;
	struct memmgr *mm = mjob.mm;
	size_t size = mjob.size;
	int j = 0;
	long i;

	for (i = 0; i < mjob.n; i++) {
		void *p = ak_alloc(k, mm, exec_id, size);

		if (!p)
			die("%s(%zu)", ak_names[k], size);
		if (write)
			memset(p, (int)i, size);
		keep(p);
		if (!win) {
			ak_free(k, mm, p);
			continue;
		}
		if (w->win[j])
			ak_free(k, mm, w->win[j]);
		w->win[j] = p;
		if (++j == win)
			j = 0;
	}
	for (j = 0; j < win; j++)
		if (w->win[j]) {
			ak_free(k, mm, w->win[j]);
			w->win[j] = NULL;
		}
}

/* A loop with no allocation: what the VM lets two threads gain at all. */
static void malloc_spin(void)
{
	uint64_t x = mjob.n;
	long i;

	for (i = 0; i < mjob.n * 1000L; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		asm volatile("" : "+r" (x));
	}
	spin_sink = x;
}

static void *malloc_worker_fn(void *arg)
{
	struct malloc_worker *w = arg;

	for (;;) {
		while (sem_wait(&w->go))
			;
		if (mworkers_quit)
			return NULL;
		w->t0 = now_ns();
		switch (mjob.kind) {
		case AK_GLIBC:
			malloc_ops(AK_GLIBC, w);
			break;
		case AK_JE:
			malloc_ops(AK_JE, w);
			break;
		case AK_MM:
			malloc_ops(AK_MM, w);
			break;
		case AK_OLD:
			malloc_ops(AK_OLD, w);
			break;
		default:
			malloc_spin();
		}
		w->t1 = now_ns();
		sem_post(&w->done);
	}
}

static void malloc_workers_start(void)
{
	int k;

	mworkers_quit = false;
	for (k = 0; k < 2; k++) {
		struct malloc_worker *w = &mworkers[k];

		memset(w, 0, sizeof(*w));
		w->idx = k;
		if (sem_init(&w->go, 0, 0) || sem_init(&w->done, 0, 0))
			die("sem_init");
		errno = pthread_create(&w->thread, NULL, malloc_worker_fn, w);
		if (errno)
			die("pthread_create");
	}
}

static void malloc_workers_stop(void)
{
	int k;

	mworkers_quit = true;
	for (k = 0; k < 2; k++) {
		sem_post(&mworkers[k].go);
		pthread_join(mworkers[k].thread, NULL);
		sem_destroy(&mworkers[k].go);
		sem_destroy(&mworkers[k].done);
	}
}

/*
 * Run mjob on @threads workers at once (1: worker 0 alone, always the same
 * thread, so its caches stay warm); nanoseconds from the first start to
 * the last end.
 */
static uint64_t malloc_batch(int threads)
{
	uint64_t t0 = UINT64_MAX, t1 = 0;
	int k;

	for (k = 0; k < threads; k++)
		sem_post(&mworkers[k].go);
	for (k = 0; k < threads; k++) {
		while (sem_wait(&mworkers[k].done))
			;
		if (mworkers[k].t0 < t0)
			t0 = mworkers[k].t0;
		if (mworkers[k].t1 > t1)
			t1 = mworkers[k].t1;
	}
	return t1 - t0;
}

/*
 * Ops per batch for allocator @k so one thread's batch takes about
 * @sz.malloc_ns: doubled until a batch takes an eighth of that, then
 * scaled.  At least two windows' worth.
 */
static long malloc_calibrate(enum alloc_kind k, long floor)
{
	uint64_t ns;
	long n = 1;

	mjob.kind = k;
	for (;;) {
		mjob.n = n;
		ns = malloc_batch(1);
		if (ns >= sz.malloc_ns / 8 || n >= 1L << 26)
			break;
		n *= 2;
	}
	n = (long)((double)n * sz.malloc_ns / (ns ? ns : 1));
	return n > floor ? n : floor;
}

static const char *size_str(size_t size, char *buf, size_t len)
{
	if (size >= MIB)
		snprintf(buf, len, "%zu MiB", size / MIB);
	else if (size >= KIB)
		snprintf(buf, len, "%zu KiB", size / KIB);
	else
		snprintf(buf, len, "%zu B", size);
	return buf;
}

/*
 * One size and loop shape: the four allocators, one thread and two,
 * alternating in a rotating order; medians into fig.malloc.
 */
static void malloc_point(struct memmgr *mm, int s, unsigned int shape,
			 uint64_t *next_exec)
{
	struct malloc_fig *f = &fig.malloc[s][shape];
	double t[NR_AK][2][MAX_REPS];
	long n[NR_AK];
	int rep, j, k, th;

	mjob = (struct malloc_job){
		.size = malloc_sizes[s], .shape = shape, .mm = mm,
	};
	mjob.window = MALLOC_WINDOW_BYTES / mjob.size;
	if (mjob.window > sz.malloc_window)
		mjob.window = sz.malloc_window;
	if (mjob.window < 2)
		mjob.window = 2;
	for (k = 0; k < NR_AK; k++) {
		mjob.exec_id[k] = *next_exec;
		*next_exec += 2;
	}
	if (sz.malloc_ns) {
		/* jemalloc sets the pace for glibc and memmgr_malloc. */
		long floor = shape & MS_WINDOW ? 2L * mjob.window : 2;

		n[AK_JE] = malloc_calibrate(AK_JE, floor);
		n[AK_GLIBC] = n[AK_MM] = n[AK_JE];
		n[AK_OLD] = malloc_calibrate(AK_OLD, floor);
		if (n[AK_OLD] > n[AK_JE])
			n[AK_OLD] = n[AK_JE];
	} else {
		for (k = 0; k < NR_AK; k++)
			n[k] = sz.malloc_ops;
	}
	/* An untimed round of each first, then the repetitions. */
	for (rep = -1; rep < sz.malloc_reps; rep++)
		for (j = 0; j < 2 * NR_AK; j++) {
			int w = (rep + 1 + j) % (2 * NR_AK);
			uint64_t ns;

			k = w / 2;
			th = w % 2;
			mjob.kind = k;
			mjob.n = n[k];
			ns = malloc_batch(th + 1);
			if (rep >= 0)
				t[k][th][rep] = (double)ns / n[k];
		}
	for (k = 0; k < NR_AK; k++) {
		f->ops[k] = n[k];
		for (th = 0; th < 2; th++) {
			memcpy(f->samples[k][th], t[k][th],
			       sz.malloc_reps * sizeof(double));
			f->ns[k][th] = median(t[k][th], sz.malloc_reps);
		}
	}
	f->window = shape & MS_WINDOW ? mjob.window : 0;
	for (th = 0; th < 2; th++) {
		release_exec(mm, mjob.exec_id[AK_MM] + th);
		release_exec(mm, mjob.exec_id[AK_OLD] + th);
	}
}

/* 2T/1T throughput of allocator @k: twice the ops in the time per op. */
static double malloc_scaling(const struct malloc_fig *f, int k)
{
	return 2 * f->ns[k][0] / f->ns[k][1];
}

/* The two-thread control: a CPU loop, 1 thread against 2. */
static void malloc_control(void)
{
	double tput[2][MAX_REPS];
	struct result *r;
	int rep, j;

	mjob = (struct malloc_job){ .kind = NR_AK, .n = 1 };
	if (sz.malloc_ns) {
		uint64_t ns = malloc_batch(1);

		mjob.n = (long)(sz.malloc_ns / (ns ? ns : 1)) + 1;
	}
	malloc_batch(1);
	for (rep = 0; rep < sz.malloc_reps; rep++)
		for (j = 0; j < 2; j++) {
			int th = (rep + j) % 2;

			tput[th][rep] = (th + 1) * mjob.n /
					(malloc_batch(th + 1) / 1e9);
		}
	r = add_result(12, "control: 2 threads, a CPU loop", "op/s",
		       "1 thread");
	set_samples(r, tput[1], tput[0], sz.malloc_reps);
}

/*
 * The table gets, per size, the loop shape where memmgr_malloc() does
 * worst against jemalloc (one thread, and two), and the one where its
 * two-thread throughput gains least; the whole matrix goes to the
 * "malloc" block and the JSON.
 */
static void malloc_rows(int s)
{
	char what[40], sbuf[24];
	struct malloc_fig *f;
	unsigned int sh, worst;
	struct result *r;
	int th;

	size_str(malloc_sizes[s], sbuf, sizeof(sbuf));
	for (th = 0; th < 2; th++) {
		worst = 0;
		for (sh = 1; sh < NR_SHAPES; sh++) {
			const struct malloc_fig *a = &fig.malloc[s][sh];
			const struct malloc_fig *b = &fig.malloc[s][worst];

			if (a->ns[AK_MM][th] / a->ns[AK_JE][th] >
			    b->ns[AK_MM][th] / b->ns[AK_JE][th])
				worst = sh;
		}
		f = &fig.malloc[s][worst];
		snprintf(what, sizeof(what), "malloc %s %dT, %s", sbuf, th + 1,
			 shape_names[worst]);
		r = add_result(12, what, "ns/op", "jemalloc");
		set_samples(r, f->samples[AK_MM][th], f->samples[AK_JE][th],
			    sz.malloc_reps);
		set_target(r, T_LE, 1.3);
	}
	worst = 0;
	for (sh = 1; sh < NR_SHAPES; sh++)
		if (malloc_scaling(&fig.malloc[s][sh], AK_MM) <
		    malloc_scaling(&fig.malloc[s][worst], AK_MM))
			worst = sh;
	f = &fig.malloc[s][worst];
	snprintf(what, sizeof(what), "malloc %s 2T/1T, %s", sbuf,
		 shape_names[worst]);
	r = add_result(12, what, "op/s", "1 thread");
	r->a = 2e9 / f->ns[AK_MM][1];
	r->b = 1e9 / f->ns[AK_MM][0];
	r->ratio = r->a / r->b;
	if (fig.vcpus >= 2)
		set_target(r, T_GE, 1.6);
}

static void case_malloc(void)
{
	struct memmgr *mm = malloc_open();
	uint64_t next_exec = 12ULL << 32;
	char sbuf[24];
	unsigned int sh;
	int s;

	fig.vcpus = sysconf(_SC_NPROCESSORS_ONLN);
	progress("case 12: malloc+free, 16 B to 8 MiB: glibc, jemalloc, memmgr_malloc, memmgr_alloc_exec; 1 and 2 threads");
	if (fig.vcpus < 2)
		progress("case 12: %ld vCPU: two-thread scaling is measured but not judged",
			 fig.vcpus);
	malloc_workers_start();
	for (s = 0; s < NR_MALLOC; s++) {
		for (sh = 0; sh < NR_SHAPES; sh++) {
			progress("case 12: %s, %s",
				 size_str(malloc_sizes[s], sbuf, sizeof(sbuf)),
				 shape_names[sh]);
			malloc_point(mm, s, sh, &next_exec);
		}
		malloc_rows(s);
	}
	malloc_control();
	malloc_workers_stop();
	memmgr_close(mm);
	fig.malloc_done = true;
}

/*
 * Case 13: one object grown from 16 B to 1 MiB by doubling, writing each
 * new half (as a growing buffer is filled), then freed.  One op is the
 * whole growth.
 */
struct grow_ctx {
	struct memmgr *mm;
	long n;
};

static inline __attribute__((always_inline)) void
grow_chains(enum alloc_kind k, struct grow_ctx *c)
{
	size_t size;
	char *p, *q;
	long i;

	for (i = 0; i < c->n; i++) {
		p = ak_alloc(k, c->mm, 13, REALLOC_FROM);
		if (!p)
			die("%s(%d)", ak_names[k], REALLOC_FROM);
		memset(p, 1, REALLOC_FROM);
		for (size = 2 * REALLOC_FROM; size <= REALLOC_TO; size *= 2) {
			q = ak_realloc(k, c->mm, 13, p, size);
			if (!q)
				die("%s realloc(%zu)", ak_names[k], size);
			p = q;
			memset(p + size / 2, (int)size, size / 2);
		}
		keep(p);
		ak_free(k, c->mm, p);
	}
}

static void grow_glibc(void *arg)
{
	grow_chains(AK_GLIBC, arg);
}

static void grow_je(void *arg)
{
	grow_chains(AK_JE, arg);
}

static void grow_mm(void *arg)
{
	grow_chains(AK_MM, arg);
}

static void case_realloc(void)
{
	bench_fn const fn[3] = { grow_mm, grow_je, grow_glibc };
	struct grow_ctx c = { .mm = malloc_open(), .n = 1 };
	void *const ctx[3] = { &c, &c, &c };
	double t[3][MAX_REPS];
	struct result *r;

	progress("case 13: realloc from %d B to %d KiB by doubling: memmgr_realloc, jemalloc, glibc",
		 REALLOC_FROM, REALLOC_TO / (int)KIB);
	if (sz.malloc_ns) {
		uint64_t t0, ns;

		for (;; c.n *= 2) {
			t0 = now_ns();
			grow_je(&c);
			ns = now_ns() - t0;
			if (ns >= sz.malloc_ns / 8)
				break;
		}
		c.n = (long)((double)c.n * sz.malloc_ns / ns) + 1;
	}
	fig.realloc_chains = c.n;
	measure(3, fn, ctx, c.n, t);
	r = add_result(13, "realloc 16 B to 1 MiB by doubling", "ns/op",
		       "jemalloc");
	set_samples(r, t[0], t[1], sz.reps);
	set_target(r, T_LE, 1.3);
	r = add_result(13, "realloc 16 B to 1 MiB by doubling", "ns/op",
		       "glibc realloc");
	set_samples(r, t[0], t[2], sz.reps);
	release_exec(c.mm, 13);
	memmgr_close(c.mm);
}

/*
 * Case 14: a trace of a real program's allocations (malloc_trace.h),
 * replayed.  Each new object is filled with memset, the grown part of a
 * realloc too, as the program would fill them: every allocator pays the
 * same writes, and the first touch of memory fresh from the kernel falls
 * where the allocator puts it.
 */
struct trace {
	struct mtr_event *ev;
	uint64_t nr_events;
	uint32_t nr_ids;
	uint64_t peak, peak_at;		/* bytes live as asked for; event */
	uint64_t ops[3];
	bool synthetic;
};

static struct trace trace;

struct replay_ctx {
	struct memmgr *mm;
	uint64_t exec_id;
	void **ptr;		/* by id */
	uint32_t *size;		/* by id */
	uint64_t stop_at;	/* fragmentation pass: pause after this event */
	void (*at_stop)(struct replay_ctx *c);
	int nr_samples;
	uint64_t charged_peak, charged_end;
};

static inline __attribute__((always_inline)) void
replay_range(enum alloc_kind k, struct replay_ctx *c, uint64_t from,
	     uint64_t to)
{
	uint64_t i;

	for (i = from; i < to; i++) {
		const struct mtr_event *e = &trace.ev[i];
		uint32_t id = mtr_id(e), size = e->size, old;
		char *p;

		switch (mtr_op(e)) {
		case MTR_MALLOC:
			p = ak_alloc(k, c->mm, c->exec_id, size);
			if (!p)
				die("replay: %s(%u)", ak_names[k], size);
			memset(p, id, size);
			c->ptr[id] = p;
			c->size[id] = size;
			break;
		case MTR_FREE:
			ak_free(k, c->mm, c->ptr[id]);
			c->ptr[id] = NULL;
			break;
		default:
			p = ak_realloc(k, c->mm, c->exec_id, c->ptr[id], size);
			if (!p)
				die("replay: %s realloc(%u)", ak_names[k],
				    size);
			old = c->size[id];
			if (size > old)
				memset(p + old, id, size - old);
			c->ptr[id] = p;
			c->size[id] = size;
		}
	}
}

/* The whole trace, then whatever it left live is freed. */
static inline __attribute__((always_inline)) void
replay(enum alloc_kind k, struct replay_ctx *c)
{
	uint32_t id;

	if (c->at_stop) {
		replay_range(k, c, 0, c->stop_at + 1);
		c->at_stop(c);
		replay_range(k, c, c->stop_at + 1, trace.nr_events);
		c->at_stop(c);
	} else {
		replay_range(k, c, 0, trace.nr_events);
	}
	for (id = 0; id < trace.nr_ids; id++)
		if (c->ptr[id]) {
			ak_free(k, c->mm, c->ptr[id]);
			c->ptr[id] = NULL;
		}
}

static void replay_glibc(void *arg)
{
	replay(AK_GLIBC, arg);
}

static void replay_je(void *arg)
{
	replay(AK_JE, arg);
}

static void replay_mm(void *arg)
{
	replay(AK_MM, arg);
}

/* After the event of the peak, then after the last: the file's charge. */
static void replay_sample(struct replay_ctx *c)
{
	struct memmgr_lib_stats st;
	int ret = memmgr_get_stats(c->mm, &st);

	if (ret) {
		errno = -ret;
		die("memmgr_get_stats");
	}
	if (!c->nr_samples++)
		c->charged_peak = st.kernel.client_used[MEMMGR_POOL_EXEC];
	else
		c->charged_end = st.kernel.client_used[MEMMGR_POOL_EXEC];
}

/*
 * Check the trace (every FREE and REALLOC of a live id, every MALLOC of a
 * free one, ids within nr_ids) and find its peak of live bytes as asked
 * for: the fragmentation figures are taken there.
 */
static void trace_scan(struct trace *tr)
{
	uint32_t *size = calloc(tr->nr_ids, sizeof(*size));
	uint8_t *live = calloc(tr->nr_ids, 1);
	uint64_t i, bytes = 0;

	if (!size || !live)
		die("calloc");
	tr->peak = tr->peak_at = 0;
	memset(tr->ops, 0, sizeof(tr->ops));
	for (i = 0; i < tr->nr_events; i++) {
		const struct mtr_event *e = &tr->ev[i];
		uint32_t id = mtr_id(e);
		enum mtr_op op = mtr_op(e);

		if (id >= tr->nr_ids || op > MTR_REALLOC ||
		    live[id] != (op != MTR_MALLOC) ||
		    (op == MTR_REALLOC && !e->size)) {
			errno = EINVAL;
			die("trace: event %llu is not a valid call",
			    (unsigned long long)i);
		}
		tr->ops[op]++;
		bytes = bytes - size[id] + e->size;
		size[id] = e->size;
		live[id] = op != MTR_FREE;
		if (bytes > tr->peak) {
			tr->peak = bytes;
			tr->peak_at = i;
		}
	}
	free(live);
	free(size);
}

static void trace_load(const char *path, struct trace *tr)
{
	struct mtr_header h;
	FILE *f = fopen(path, "rb");
	long len;

	if (!f)
		die("open %s", path);
	if (fread(&h, sizeof(h), 1, f) != 1 ||
	    memcmp(h.magic, MTR_MAGIC, sizeof(h.magic)) ||
	    fseek(f, 0, SEEK_END))
		die("%s: not a trace", path);
	len = ftell(f);
	if (len < 0 || (uint64_t)len != sizeof(h) + h.nr_events *
					 sizeof(struct mtr_event) ||
	    !h.nr_events)
		die("%s: %ld bytes, not as its header says", path, len);
	tr->ev = malloc(h.nr_events * sizeof(*tr->ev));
	if (!tr->ev || fseek(f, sizeof(h), SEEK_SET) ||
	    fread(tr->ev, sizeof(*tr->ev), h.nr_events, f) != h.nr_events)
		die("read %s", path);
	fclose(f);
	tr->nr_events = h.nr_events;
	tr->nr_ids = h.nr_ids;
	tr->synthetic = false;
}

/*
 * Without --trace (make check's quick run has none): a made-up trace of
 * @n events whose sizes follow SQLite's in speedtest1 roughly (mostly 32
 * to 511 bytes, one in twenty a page or more), up to @live objects live
 * (half that on average), freed in random order, one call in 200 a
 * realloc to twice the size.
 */
static void trace_synth(struct trace *tr, uint64_t n, uint32_t live)
{
	static const uint32_t bucket_bytes[] = {
		8, 16, 32, 64, 256, 1024, 4096, 8192, 16384, 65536,
	};
	static const int bucket_weight[] = {
		3, 3, 18, 4, 19, 2, 4, 1, 1, 1,
	};
	int nr_buckets = sizeof(bucket_weight) / sizeof(bucket_weight[0]);
	uint32_t *live_ids, *free_ids, *size, nr = 0, nr_free = 0, next = 0;
	int total = 0, b, w;
	uint64_t i;

	tr->ev = malloc(n * sizeof(*tr->ev));
	live_ids = malloc(live * sizeof(*live_ids));
	free_ids = malloc(live * sizeof(*free_ids));
	size = calloc(live, sizeof(*size));
	if (!tr->ev || !live_ids || !free_ids || !size)
		die("malloc");
	for (b = 0; b < nr_buckets; b++)
		total += bucket_weight[b];
	for (i = 0; i < n; i++) {
		struct mtr_event *e = &tr->ev[i];
		uint64_t r = rng_next();
		uint32_t j, id;

		/*
		 * A free the likelier the more are live (about @live / 2
		 * on average), and every call near the end.
		 */
		if (nr && ((r & 0xffff) < 0x10000ULL * nr / live ||
			   n - i <= nr)) {
			j = (r >> 8) % nr;
			id = live_ids[j];
			live_ids[j] = live_ids[--nr];
			free_ids[nr_free++] = id;
			e->op_id = (uint32_t)MTR_FREE << MTR_OP_SHIFT | id;
			e->size = 0;
			continue;
		}
		if (nr && (r >> 40) % 200 == 0 &&
		    size[live_ids[(r >> 8) % nr]] < 64 * KIB) {
			id = live_ids[(r >> 8) % nr];
			size[id] *= 2;
			e->op_id = (uint32_t)MTR_REALLOC << MTR_OP_SHIFT | id;
			e->size = size[id];
			continue;
		}
		w = (r >> 8) % total;
		for (b = 0; w >= bucket_weight[b]; b++)
			w -= bucket_weight[b];
		id = nr_free ? free_ids[--nr_free] : next++;
		live_ids[nr++] = id;
		size[id] = bucket_bytes[b] + (r >> 32) % bucket_bytes[b];
		e->op_id = (uint32_t)MTR_MALLOC << MTR_OP_SHIFT | id;
		e->size = size[id];
	}
	free(size);
	free(free_ids);
	free(live_ids);
	tr->nr_events = n;
	tr->nr_ids = next;
	tr->synthetic = true;
}

static void case_trace(const char *path)
{
	bench_fn const fn[3] = { replay_mm, replay_glibc, replay_je };
	struct replay_ctx c = { .mm = malloc_open(), .exec_id = 14 };
	void *const ctx[3] = { &c, &c, &c };
	double t[3][MAX_REPS];
	struct result *r;
	char what[40];

	if (path)
		trace_load(path, &trace);
	else
		trace_synth(&trace, sz.synth_events, 2000);
	trace_scan(&trace);
	progress("case 14: replay of %s: %llu events, %u ids, peak %llu bytes live at event %llu",
		 path ? path : "a synthetic trace (no --trace)",
		 (unsigned long long)trace.nr_events, trace.nr_ids,
		 (unsigned long long)trace.peak,
		 (unsigned long long)trace.peak_at);
	c.ptr = calloc(trace.nr_ids, sizeof(*c.ptr));
	c.size = calloc(trace.nr_ids, sizeof(*c.size));
	if (!c.ptr || !c.size)
		die("calloc");
	/* Per replay, in milliseconds. */
	measure(3, fn, ctx, 1e6, t);
	snprintf(what, sizeof(what), "replay %s",
		 trace.synthetic ? "a synthetic trace" : "SQLite speedtest1");
	r = add_result(14, what, "ms", "glibc malloc");
	set_samples(r, t[0], t[1], sz.reps);
	set_target(r, T_LE, 1.15);
	r = add_result(14, what, "ms", "jemalloc");
	set_samples(r, t[0], t[2], sz.reps);
	release_exec(c.mm, c.exec_id);
	memmgr_close(c.mm);

	/*
	 * Fragmentation, untimed (each sample is a system call): a fresh
	 * handle and exec id, sampled after the event of the peak and after
	 * the last event.
	 */
	c.mm = malloc_open();
	c.exec_id = 15;
	c.stop_at = trace.peak_at;
	c.at_stop = replay_sample;
	replay_mm(&c);
	fig.charged_peak = c.charged_peak;
	fig.charged_end = c.charged_end;
	r = add_result(14, "exec charge at the trace's peak", "B",
		       "requested");
	r->a = fig.charged_peak;
	r->b = trace.peak;
	r->ratio = r->a / r->b;
	set_target(r, T_LE, 1.25);
	r = add_result(14, "exec charge at the trace's end", "B",
		       "peak requested");
	r->a = fig.charged_end;
	r->b = trace.peak;
	r->ratio = r->a / r->b;
	release_exec(c.mm, c.exec_id);
	memmgr_close(c.mm);
	free(c.size);
	free(c.ptr);
}

/*
 * Case 8: issue 11's third finding.  In mode=unified execution may evict
 * storage above S, and a request finds out whether some buffer fits in
 * what lies above S.  With one page above S and every evictable buffer
 * two pages, none does: the request is declined, and the time it takes to
 * learn that must not grow with the number of buffers.
 */
#define MODE_PARAM	"/sys/module/memmgr/parameters/mode"

static void set_mode(const char *mode)
{
	int fd = open(MODE_PARAM, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		die("open %s", MODE_PARAM);
	n = write(fd, mode, strlen(mode));
	close(fd);
	if (n != (ssize_t)strlen(mode))
		die("write %s to %s", mode, MODE_PARAM);
}

/* @n one-page execution ALLOCs with timeout 0, each declined. */
static void declined_exec(int fd, int n)
{
	struct memmgr_alloc a;
	int i, ret;

	for (i = 0; i < n; i++) {
		ret = dev_alloc(fd, MEMMGR_POOL_EXEC, PAGE, 8, 0, &a);
		if (ret != -EAGAIN) {
			errno = ret < 0 ? -ret : 0;
			die("case 8: a one-page exec ALLOC with no room was not declined (%d)",
			    ret);
		}
	}
}

static void case_unified_scan(void)
{
	static const char * const modes[2] = { "unified", "split" };
	int fd = dev_open(), probe = dev_open(), rep, j, w;
	uint64_t s_pages, t_pages, pinned, declined0;
	struct memmgr_stats st0, st;
	double t[2][MAX_REPS];
	struct memmgr_alloc a;
	struct result *r;
	char what[64];
	long n, i;

	dev_stats(fd, &st0);
	if (st0.pool[MEMMGR_POOL_STORAGE].used || st0.pool[MEMMGR_POOL_EXEC].used)
		die("case 8 needs an idle device");
	s_pages = st0.pool[MEMMGR_POOL_STORAGE].quota / PAGE;
	t_pages = st0.total / PAGE;
	/* The pinned buffer takes at least one page: S + 1 - 2n >= 1. */
	n = sz.scan_buffers;
	if ((uint64_t)n > s_pages / 2)
		n = s_pages / 2;
	if (n < 1 || t_pages < s_pages + 2)
		die("reserve too small for case 8");
	pinned = s_pages + 1 - 2 * n;
	fig.scan_buffers = n;
	progress("case 8: mode=unified, storage at S + 1 page (%ld evictable %lu KiB buffers), no free memory: declined 1-page exec ALLOC, unified against split (target: within 2x)",
		 n, SCAN_BUF / KIB);

	/* Storage beyond S only in unified mode; then execution the rest. */
	set_mode("unified");
	for (i = 0; i < n; i++)
		dev_alloc_ok(fd, MEMMGR_POOL_STORAGE, SCAN_BUF, i + 1,
			     MEMMGR_ALLOC_UNPINNED, &a);
	dev_alloc_ok(fd, MEMMGR_POOL_STORAGE, pinned * PAGE, 0, 0, &a);
	dev_alloc_ok(fd, MEMMGR_POOL_EXEC, (t_pages - s_pages - 1) * PAGE, 1,
		     0, &a);
	dev_stats(fd, &st);
	if (st.free ||
	    st.pool[MEMMGR_POOL_STORAGE].used != (s_pages + 1) * PAGE ||
	    st.pool[MEMMGR_POOL_STORAGE].pinned != pinned * PAGE)
		die("case 8: the reserve is not as set up");
	declined0 = st.pool[MEMMGR_POOL_EXEC].declined;

	/* One untimed round, then the order rotates; mode written between. */
	for (rep = -1; rep < sz.reps; rep++)
		for (j = 0; j < 2; j++) {
			uint64_t t0, ns;

			w = (rep + 2 + j) % 2;
			set_mode(modes[w]);
			t0 = now_ns();
			declined_exec(probe, sz.scan_ops);
			ns = now_ns() - t0;
			if (rep >= 0)
				t[w][rep] = (double)ns / sz.scan_ops;
		}

	dev_stats(fd, &st);
	if (st.pool[MEMMGR_POOL_STORAGE].evictions !=
	    st0.pool[MEMMGR_POOL_STORAGE].evictions ||
	    st.pool[MEMMGR_POOL_EXEC].declined - declined0 !=
	    (uint64_t)(sz.reps + 1) * 2 * sz.scan_ops ||
	    st.pool[MEMMGR_POOL_STORAGE].used != (s_pages + 1) * PAGE)
		die("case 8: a declined request changed the reserve");
	set_mode("split");
	close(fd);
	dev_stats(probe, &st);
	if (st.pool[MEMMGR_POOL_STORAGE].used || st.pool[MEMMGR_POOL_EXEC].used)
		die("case 8: memory left after close");
	close(probe);

	snprintf(what, sizeof(what), "unified: declined exec, %ld bufs", n);
	r = add_result(8, what, "ns/op", "mode=split");
	set_samples(r, t[0], t[1], sz.reps);
	set_target(r, T_LE, 2.0);
}

/* Case 9: a cache miss through the window, against a mapping per buffer. */

static void miss_window(int fd, unsigned char *win, int n)
{
	struct memmgr_alloc a;
	int i;

	for (i = 0; i < n; i++) {
		dev_alloc_ok(fd, MEMMGR_POOL_STORAGE, PAGE, 1, 0, &a);
		*(volatile uint64_t *)(win + a.offset) = i;
		dev_free(fd, a.handle);
	}
}

static void miss_mmap(int fd, int n)
{
	struct memmgr_alloc a;
	void *p;
	int i;

	for (i = 0; i < n; i++) {
		dev_alloc_ok(fd, MEMMGR_POOL_STORAGE, PAGE, 1, 0, &a);
		p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 a.offset);
		if (p == MAP_FAILED)
			die("mmap");
		*(volatile uint64_t *)p = i;
		munmap(p, PAGE);
		dev_free(fd, a.handle);
	}
}

static void case_window_miss(void)
{
	int fd = dev_open(), rep, j, n = sz.cycles;
	double t[2][MAX_REPS];
	unsigned char *win;
	struct result *r;

	progress("case 9: storage 4 KiB cache miss (ALLOC, write, FREE) through the window, against ALLOC+mmap+write+munmap+FREE");
	win = mmap(NULL, MEMMGR_OFFSET_LIMIT, PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, MEMMGR_WINDOW_OFFSET);
	if (win == MAP_FAILED)
		die("mmap of the window");
	for (rep = -1; rep < sz.reps; rep++)
		for (j = 0; j < 2; j++) {
			int w = (rep + 2 + j) % 2;
			uint64_t t0 = now_ns();

			if (w)
				miss_mmap(fd, n);
			else
				miss_window(fd, win, n);
			if (rep >= 0)
				t[w][rep] = (double)(now_ns() - t0) / n;
		}
	munmap(win, MEMMGR_OFFSET_LIMIT);
	close(fd);
	r = add_result(9, "storage 4 KiB miss via window", "ns/op",
		       "mmap per buffer");
	set_samples(r, t[0], t[1], sz.reps);
}

/*
 * Case 10: a pin and an unpin of a resident buffer, as a page cache makes
 * them around each access.  libmemmgr's fast path is a compare-and-swap
 * on the buffer's state word each way; the baseline is the same two on a
 * word that means nothing to the kernel.
 */

static void pin_fast(struct memmgr *mm, uint64_t handle, int n)
{
	int i, ret;

	for (i = 0; i < n; i++) {
		ret = memmgr_pin_handle(mm, handle);
		if (!ret)
			ret = memmgr_unpin_handle(mm, handle);
		if (ret) {
			errno = -ret;
			die("case 10: memmgr_pin_handle + memmgr_unpin_handle");
		}
	}
}

/* The pin protocol's shape: load, CAS +1 (acquire); load, CAS -1 (release). */
static void pin_cas(uint64_t *word, int n)
{
	uint64_t old;
	int i;

	for (i = 0; i < n; i++) {
		old = __atomic_load_n(word, __ATOMIC_RELAXED);
		while (!__atomic_compare_exchange_n(word, &old, old + 1, false,
						    __ATOMIC_ACQUIRE,
						    __ATOMIC_RELAXED))
			;
		old = __atomic_load_n(word, __ATOMIC_RELAXED);
		while (!__atomic_compare_exchange_n(word, &old, old - 1, false,
						    __ATOMIC_RELEASE,
						    __ATOMIC_RELAXED))
			;
	}
}

static void pin_ioctl(int fd, uint64_t handle, int n)
{
	struct memmgr_buf b = { .handle = handle };
	int i;

	for (i = 0; i < n; i++)
		if (ioctl(fd, MEMMGR_IOC_PIN, &b) ||
		    ioctl(fd, MEMMGR_IOC_UNPIN, &b))
			die("case 10: MEMMGR_IOC_PIN + MEMMGR_IOC_UNPIN");
}

static uint64_t storage_pinned(int fd)
{
	struct memmgr_stats st;

	dev_stats(fd, &st);
	return st.pool[MEMMGR_POOL_STORAGE].pinned;
}

static void case_pin(void)
{
	int fd = dev_open(), rep, j, ret, n = sz.pin_pairs;
	uint64_t *word, handle, pinned0;
	double t[3][MAX_REPS];
	struct memmgr_alloc a;
	struct memmgr *mm;
	struct result *r;
	void *p;

	progress("case 10: pin+unpin of a resident 4 KiB storage buffer through libmemmgr's state word, against 2 CAS on a shared word (target: within 2x); and through PIN/UNPIN ioctls without a state area");
	ret = memmgr_open(&mm, 0);
	if (ret) {
		errno = -ret;
		die("memmgr_open");
	}
	if (!(memmgr_features(mm) & MEMMGR_FEATURE_STATE)) {
		errno = 0;
		die("case 10: libmemmgr's handle has no state area");
	}
	ret = memmgr_alloc_storage(mm, 1, PAGE, 0, MEMMGR_ALLOC_UNPINNED, &p);
	if (ret) {
		errno = -ret;
		die("case 10: memmgr_alloc_storage");
	}
	handle = memmgr_handle(mm, p);
	if (!handle) {
		errno = 0;
		die("case 10: memmgr_handle gave no handle");
	}
	/* The file of the ioctls: raw, no state area. */
	dev_alloc_ok(fd, MEMMGR_POOL_STORAGE, PAGE, 1, MEMMGR_ALLOC_UNPINNED,
		     &a);
	word = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (word == MAP_FAILED)
		die("mmap of the shared word");

	/* Both ways pin for real: the pool's pinned bytes show each pin. */
	pinned0 = storage_pinned(fd);
	ret = memmgr_pin_handle(mm, handle);
	if (ret) {
		errno = -ret;
		die("case 10: memmgr_pin_handle");
	}
	if (storage_pinned(fd) != pinned0 + PAGE) {
		errno = 0;
		die("case 10: a pin through the state word is not counted pinned");
	}
	ret = memmgr_unpin_handle(mm, handle);
	if (ret) {
		errno = -ret;
		die("case 10: memmgr_unpin_handle");
	}
	pin_ioctl(fd, a.handle, 1);
	if (storage_pinned(fd) != pinned0) {
		errno = 0;
		die("case 10: pinned bytes left after the unpins");
	}

	for (rep = -1; rep < sz.reps; rep++)
		for (j = 0; j < 3; j++) {
			int w = (rep + 3 + j) % 3;
			uint64_t t0 = now_ns();

			if (w == 0)
				pin_fast(mm, handle, n);
			else if (w == 1)
				pin_cas(word, n);
			else
				pin_ioctl(fd, a.handle, n);
			if (rep >= 0)
				t[w][rep] = (double)(now_ns() - t0) / n;
		}
	if (*word || storage_pinned(fd) != pinned0) {
		errno = 0;
		die("case 10: pins left after the runs");
	}
	munmap(word, PAGE);
	ret = memmgr_free(mm, p);
	if (ret) {
		errno = -ret;
		die("case 10: memmgr_free");
	}
	memmgr_close(mm);
	close(fd);
	r = add_result(10, "pin+unpin, libmemmgr state word", "ns/op",
		       "2 CAS, shared word");
	set_samples(r, t[0], t[1], sz.reps);
	set_target(r, T_LE, 2.0);
	r = add_result(10, "pin+unpin, PIN+UNPIN ioctls", "ns/op",
		       "2 CAS, shared word");
	set_samples(r, t[2], t[1], sz.reps);
}

/*
 * Case 11: 64 buffers in one ALLOC_MANY and one FREE_MANY, against a
 * call per buffer each way.  Both fill in a struct memmgr_alloc per
 * buffer, as dev_alloc() does.
 */

static void batch_call(int fd, unsigned long cmd, const void *entries,
		       const char *name)
{
	struct memmgr_batch b = {
		.entries = (uintptr_t)entries, .count = BATCH_BUFS,
	};

	if (ioctl(fd, cmd, &b))
		die("case 11: %s (done %u)", name, b.done);
	if (b.done != BATCH_BUFS) {
		errno = 0;
		die("case 11: %s returned 0 with done %u", name, b.done);
	}
}

static void batch_many(int fd, struct memmgr_alloc *ent, uint64_t *handles,
		       int rounds)
{
	int k, i;

	for (k = 0; k < rounds; k++) {
		for (i = 0; i < BATCH_BUFS; i++)
			ent[i] = (struct memmgr_alloc){
				.pool = MEMMGR_POOL_STORAGE, .size = PAGE,
				.tag = i + 1,
			};
		batch_call(fd, MEMMGR_IOC_ALLOC_MANY, ent,
			   "MEMMGR_IOC_ALLOC_MANY");
		for (i = 0; i < BATCH_BUFS; i++)
			handles[i] = ent[i].handle;
		batch_call(fd, MEMMGR_IOC_FREE_MANY, handles,
			   "MEMMGR_IOC_FREE_MANY");
	}
}

static void batch_single(int fd, uint64_t *handles, int rounds)
{
	struct memmgr_alloc a;
	int k, i;

	for (k = 0; k < rounds; k++) {
		for (i = 0; i < BATCH_BUFS; i++) {
			dev_alloc_ok(fd, MEMMGR_POOL_STORAGE, PAGE, i + 1, 0,
				     &a);
			handles[i] = a.handle;
		}
		for (i = 0; i < BATCH_BUFS; i++)
			dev_free(fd, handles[i]);
	}
}

static void case_batch(void)
{
	int fd = dev_open(), rep, j, n = sz.batch_rounds;
	struct memmgr_alloc ent[BATCH_BUFS];
	uint64_t handles[BATCH_BUFS];
	struct memmgr_stats st0, st;
	double t[2][MAX_REPS];
	uint64_t bufs;
	struct result *r;

	progress("case 11: %d one-page storage buffers, unmapped: ALLOC_MANY + FREE_MANY (2 calls) against %d ALLOC + %d FREE (target: at most 0.3x)",
		 BATCH_BUFS, BATCH_BUFS, BATCH_BUFS);
	dev_stats(fd, &st0);
	for (rep = -1; rep < sz.reps; rep++)
		for (j = 0; j < 2; j++) {
			int w = (rep + 2 + j) % 2;
			uint64_t t0 = now_ns();

			if (w)
				batch_single(fd, handles, n);
			else
				batch_many(fd, ent, handles, n);
			if (rep >= 0)
				t[w][rep] = (double)(now_ns() - t0) / n;
		}
	/* Every entry of a batch allocated and freed as its single call. */
	dev_stats(fd, &st);
	bufs = (uint64_t)(sz.reps + 1) * 2 * n * BATCH_BUFS;
	if (st.pool[MEMMGR_POOL_STORAGE].allocs -
	    st0.pool[MEMMGR_POOL_STORAGE].allocs != bufs ||
	    st.pool[MEMMGR_POOL_STORAGE].frees -
	    st0.pool[MEMMGR_POOL_STORAGE].frees != bufs ||
	    st.client_used[MEMMGR_POOL_STORAGE]) {
		errno = 0;
		die("case 11: the pool's counts do not show %llu buffers allocated and freed",
		    (unsigned long long)bufs);
	}
	close(fd);
	r = add_result(11, "ALLOC_MANY+FREE_MANY, 64 x 4 KiB", "ns/op",
		       "64 ALLOC + 64 FREE");
	set_samples(r, t[0], t[1], sz.reps);
	set_target(r, T_LE, 0.3);
}

/* Case 7: the module. */

static bool module_loaded(void)
{
	return access(DEV, F_OK) == 0;
}

static void module_load(const char *path, const char *params)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("open %s", path);
	if (syscall(SYS_finit_module, fd, params, 0))
		die("finit_module %s %s", path, params);
	close(fd);
}

static void module_unload(void)
{
	int tries;

	for (tries = 0; tries < 1000; tries++) {
		if (!syscall(SYS_delete_module, "memmgr", O_NONBLOCK))
			return;
		if (errno != EAGAIN && errno != EBUSY)
			break;
		usleep(1000);
	}
	die("delete_module memmgr");
}

/*
 * Kernel memory besides whole pages: slab (large kmalloc() included) and
 * vmalloc, in kB.  MemFree would not do: it misses pages that the per-CPU
 * free lists hand out, as a freed 2 MiB array is when loaded again.
 */
static long kernel_kb(void)
{
	return meminfo_kb("Slab") + meminfo_kb("VmallocUsed");
}

/*
 * Load with @params and unload: the times in ms, and the kernel memory it
 * took besides its reserve, in bytes.
 */
static void load_cycle(const char *path, const char *params, double *load_ms,
		       double *unload_ms, double *taken)
{
	long before = kernel_kb(), after;
	uint64_t t0, t1;

	t0 = now_ns();
	module_load(path, params);
	t1 = now_ns();
	*load_ms = (t1 - t0) / 1e6;
	after = kernel_kb();
	t0 = now_ns();
	module_unload();
	t1 = now_ns();
	*unload_ms = (t1 - t0) / 1e6;
	*taken = (after - before) * 1024.0;
}

static void case_insmod(const char *path, const char *params)
{
	double load[2][MAX_REPS], unload[2][MAX_REPS], taken[2][MAX_REPS];
	const char *floor_params = "total=4096";
	char what[40];
	struct result *r;
	int rep, w, reps = sz.load_reps;

	if (module_loaded())
		die("--module: memmgr is loaded already (run vm.sh --no-load)");
	progress("case 7: insmod %s against insmod %s", params, floor_params);
	for (rep = 0; rep < reps; rep++)
		for (w = 0; w < 2; w++) {
			int k = (rep + w) % 2;

			load_cycle(path, k ? floor_params : params,
				   &load[k][rep], &unload[k][rep],
				   &taken[k][rep]);
		}
	snprintf(what, sizeof(what), "insmod %s", params);
	r = add_result(7, what, "ms", "insmod 1 page");
	set_samples(r, load[0], load[1], reps);
	snprintf(what, sizeof(what), "rmmod %s", params);
	r = add_result(7, what, "ms", "rmmod 1 page");
	set_samples(r, unload[0], unload[1], reps);
	module_load(path, params);
	fig.loaded_here = true;
	/* Beyond what a 1-page load takes: what the reserve costs. */
	for (rep = 0; rep < reps; rep++)
		taken[0][rep] -= taken[1][rep];
	fig.reserve_overhead_per_gib = median(taken[0], reps);
}

static void metadata_rows(void)
{
	double gib;
	struct result *r;

	fig.slab_object_size =
		read_long("/sys/kernel/slab/memmgr_buffer/object_size");
	fig.slab_size = read_long("/sys/kernel/slab/memmgr_buffer/slab_size");
	/*
	 * memmgr_dev.evictable: bucket k of the reserve's pages P has room
	 * for P >> k pointers (its buffers have 2^k pages at least).
	 */
	fig.evictable_per_gib = 0;
	for (unsigned long p = (1UL << 30) / PAGE; p; p >>= 1)
		fig.evictable_per_gib += (double)p * sizeof(void *);

	r = add_result(7, "slab bytes per live allocation", "B",
		       "memmgr_buffer");
	r->a = fig.slab_per_alloc;
	r->b = fig.slab_size > 0 ? fig.slab_size : NAN;
	if (isnan(fig.reserve_overhead_per_gib))
		return;
	gib = (double)fig.total / (1UL << 30);
	fig.reserve_overhead_per_gib /= gib;
	r = add_result(7, "bytes per reserved GiB", "B", "evictable set");
	r->a = fig.reserve_overhead_per_gib;
	r->b = fig.evictable_per_gib;
}

/* Output. */

static void json_num(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

static void json_samples(FILE *f, const double *v, int n)
{
	int i;

	fputc('[', f);
	for (i = 0; i < n; i++) {
		if (i)
			fputs(", ", f);
		json_num(f, v[i]);
	}
	fputc(']', f);
}

/* Case 12's matrix: per size, loop shape and thread count. */
static void json_malloc(FILE *f)
{
	bool first = true;
	unsigned int sh;
	int s, k, th;

	fputs("  \"malloc\": [", f);
	for (s = 0; fig.malloc_done && s < NR_MALLOC; s++)
		for (sh = 0; sh < NR_SHAPES; sh++)
			for (th = 0; th < 2; th++) {
				const struct malloc_fig *m = &fig.malloc[s][sh];

				fprintf(f, "%s\n    {\"bytes\": %zu, \"shape\": \"%s\", \"window\": %d, \"threads\": %d",
					first ? "" : ",", malloc_sizes[s],
					shape_names[sh], m->window, th + 1);
				first = false;
				for (k = 0; k < NR_AK; k++) {
					fprintf(f, ",\n     \"%s\": {\"ops\": %ld, \"ns\": ",
						ak_names[k], m->ops[k]);
					json_num(f, m->ns[k][th]);
					fputs(", \"samples\": ", f);
					json_samples(f, m->samples[k][th],
						     sz.malloc_reps);
					fputs(", \"scaling\": ", f);
					json_num(f, malloc_scaling(m, k));
					fputc('}', f);
				}
				fputc('}', f);
			}
	fputs("\n  ],\n", f);
}

static void write_json(FILE *f, const char *date, const char *kernel,
		       const char *cpu, const char *clock)
{
	int i, s;

	fprintf(f, "{\n  \"date\": \"%s\",\n  \"accel\": \"%s\",\n", date,
		accel);
	fprintf(f, "  \"kernel\": \"%s\",\n  \"cpu\": \"%s\",\n", kernel,
		cpu);
	fprintf(f, "  \"vcpus\": %ld,\n  \"clocksource\": \"%s\",\n",
		sysconf(_SC_NPROCESSORS_ONLN), clock);
	fprintf(f, "  \"quick\": %s,\n  \"reps\": %d,\n  \"total\": %llu,\n",
		quick ? "true" : "false", sz.reps,
		(unsigned long long)fig.total);
	fputs("  \"results\": [\n", f);
	for (i = 0; i < nr_results; i++) {
		const struct result *r = &results[i];
		int met = result_met(r);
		char t[24];

		fprintf(f, "    {\"case\": %d, \"what\": \"%s\", \"unit\": \"%s\", \"baseline_name\": \"%s\",\n",
			r->cs, r->what, r->unit, r->bname);
		fputs("     \"memmgr\": ", f);
		json_num(f, r->a);
		fputs(", \"baseline\": ", f);
		json_num(f, r->b);
		fputs(", \"ratio\": ", f);
		json_num(f, r->ratio);
		fprintf(f, ", \"target\": \"%s\", \"met\": %s,\n",
			target_str(r, t, sizeof(t)),
			met < 0 ? "null" : met ? "true" : "false");
		fputs("     \"memmgr_samples\": ", f);
		json_samples(f, r->sa, r->nr);
		fputs(", \"baseline_samples\": ", f);
		json_samples(f, r->sb, r->nr);
		fprintf(f, "}%s\n", i + 1 < nr_results ? "," : "");
	}
	fputs("  ],\n  \"sizes\": [\n", f);
	for (s = 0; s < NR_MAP_SIZES; s++) {
		fprintf(f, "    {\"bytes\": %zu, \"memmgr_ns\": ", map_sizes[s]);
		json_num(f, fig.map_ns[s][0]);
		fputs(", \"anon_ns\": ", f);
		json_num(f, fig.map_ns[s][1]);
		fputs(", \"memfd_ns\": ", f);
		json_num(f, fig.map_ns[s][2]);
		fprintf(f, "}%s\n", s + 1 < NR_MAP_SIZES ? "," : "");
	}
	fputs("  ],\n  \"small\": [\n", f);
	for (s = 0; s < NR_SMALL; s++) {
		fprintf(f, "    {\"bytes\": %zu, \"memmgr_ns\": ",
			small_sizes[s]);
		json_num(f, fig.small_ns[s][0]);
		fputs(", \"glibc_ns\": ", f);
		json_num(f, fig.small_ns[s][1]);
		fputs(", \"jemalloc_ns\": ", f);
		json_num(f, fig.small_ns[s][2]);
		fprintf(f, "}%s\n", s + 1 < NR_SMALL ? "," : "");
	}
	fputs("  ],\n  \"syscall_floor_ns\": ", f);
	json_num(f, fig.per_ioctl_ns);
	fputs(",\n  \"rep_stosb_4k_ns\": ", f);
	json_num(f, fig.rep_stosb_ns);
	fprintf(f, ",\n  \"live_many\": %ld,\n", fig.live_many);
	fprintf(f, "  \"churn\": {\"buffer_bytes\": %lu, \"buffers\": %llu, \"evictions\": %llu},\n",
		CHURN_BUF, (unsigned long long)fig.churn_buffers,
		(unsigned long long)fig.churn_evictions);
	fprintf(f, "  \"zipf\": {\"s\": %.2f, \"keys\": %ld, \"room\": %ld, \"accesses\": %ld, \"measured\": %ld, \"evictions\": %llu, \"random_hit_pct\": ",
		ZIPF_S, fig.zipf_keys, fig.zipf_room, sz.zipf_len,
		fig.zipf_measured,
		(unsigned long long)fig.zipf_evictions);
	json_num(f, fig.zipf_random);
	fputs(", \"lru_hit_pct\": ", f);
	json_num(f, fig.zipf_lru);
	fputs(", \"lru_simulated_hit_pct\": ", f);
	json_num(f, fig.zipf_lru_sim);
	fprintf(f, ", \"lru_implemented\": %s},\n",
		fig.lru_implemented ? "true" : "false");
	fputs("  \"metadata\": {\"slab_bytes_per_alloc\": ", f);
	json_num(f, fig.slab_per_alloc);
	fprintf(f, ", \"memmgr_buffer_object_size\": %ld, \"memmgr_buffer_slab_size\": %ld, \"bytes_per_reserved_gib\": ",
		fig.slab_object_size, fig.slab_size);
	json_num(f, fig.reserve_overhead_per_gib);
	fputs(", \"evictable_bytes_per_gib\": ", f);
	json_num(f, fig.evictable_per_gib);
	fprintf(f, "},\n  \"unified_scan\": {\"buffers\": %ld, \"buffer_bytes\": %lu, \"storage_above_quota_bytes\": %lu, \"requests_per_batch\": %d},\n",
		fig.scan_buffers, SCAN_BUF, PAGE, sz.scan_ops);
	fprintf(f, "  \"pin_unpin\": {\"buffer_bytes\": %lu, \"pairs_per_sample\": %d},\n",
		PAGE, sz.pin_pairs);
	fprintf(f, "  \"batch\": {\"buffers\": %d, \"buffer_bytes\": %lu, \"batches_per_sample\": %d},\n",
		BATCH_BUFS, PAGE, sz.batch_rounds);
	json_malloc(f);
	fprintf(f, "  \"realloc\": {\"from_bytes\": %d, \"to_bytes\": %d, \"chains_per_sample\": %ld},\n",
		REALLOC_FROM, REALLOC_TO, fig.realloc_chains);
	fprintf(f, "  \"trace\": {\"synthetic\": %s, \"events\": %llu, \"mallocs\": %llu, \"frees\": %llu, \"reallocs\": %llu, \"ids\": %u, \"peak_requested_bytes\": %llu, \"peak_event\": %llu, \"charged_at_peak_bytes\": %llu, \"charged_at_end_bytes\": %llu}\n}\n",
		trace.synthetic ? "true" : "false",
		(unsigned long long)trace.nr_events,
		(unsigned long long)trace.ops[MTR_MALLOC],
		(unsigned long long)trace.ops[MTR_FREE],
		(unsigned long long)trace.ops[MTR_REALLOC], trace.nr_ids,
		(unsigned long long)trace.peak,
		(unsigned long long)trace.peak_at,
		(unsigned long long)fig.charged_peak,
		(unsigned long long)fig.charged_end);
}

/*
 * Case 12's matrix, for people and gnuplot alike: ns per op and thread
 * (medians) of each allocator, memmgr_malloc / jemalloc, and each one's
 * throughput with two threads over one.
 */
static void print_malloc(FILE *out)
{
	unsigned int sh;
	int s, k, th;

	fprintf(out, "# case 12: ns per alloc+free and thread (medians); x2: 2-thread throughput / 1-thread\n");
	fprintf(out, "# %-8s %-12s %3s %9s %9s %9s %9s %6s %5s %5s %5s %5s\n",
		"bytes", "shape", "thr", "glibc", "jemalloc", "memmgr",
		"exec_old", "mm/je", "x2gl", "x2je", "x2mm", "x2old");
	for (s = 0; fig.malloc_done && s < NR_MALLOC; s++)
		for (sh = 0; sh < NR_SHAPES; sh++)
			for (th = 0; th < 2; th++) {
				const struct malloc_fig *m = &fig.malloc[s][sh];

				fprintf(out, "%-10zu %-12s %3d", malloc_sizes[s],
					shape_names[sh], th + 1);
				for (k = 0; k < NR_AK; k++)
					fprintf(out, " %9.1f", m->ns[k][th]);
				fprintf(out, " %6.2f", m->ns[AK_MM][th] /
						       m->ns[AK_JE][th]);
				for (k = 0; k < NR_AK; k++)
					fprintf(out, " %5.2f",
						malloc_scaling(m, k));
				fputc('\n', out);
			}
}

static void emit(const char *json_path)
{
	char date[32], cpu[128], clock[64];
	struct utsname un;
	time_t now = time(NULL);
	FILE *f;
	int s;

	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	uname(&un);
	read_field("/proc/cpuinfo", "model name", cpu, sizeof(cpu));
	read_field("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		   "", clock, sizeof(clock));

	qsort(results, nr_results, sizeof(results[0]), cmp_case);
	f = fopen(json_path, "w");
	if (!f)
		die("open %s", json_path);
	write_json(f, date, un.release, cpu, clock);
	if (fclose(f))
		die("write %s", json_path);

	puts("@@memmgr-bench-json-begin");
	write_json(stdout, date, un.release, cpu, clock);
	puts("@@memmgr-bench-json-end");
	puts("@@memmgr-bench-sizes-begin");
	puts("# bytes memmgr_ns anon_ns memfd_ns");
	for (s = 0; s < NR_MAP_SIZES; s++)
		printf("%zu %.0f %.0f %.0f\n", map_sizes[s], fig.map_ns[s][0],
		       fig.map_ns[s][1], fig.map_ns[s][2]);
	puts("@@memmgr-bench-sizes-end");
	puts("@@memmgr-bench-small-begin");
	puts("# bytes memmgr_ns glibc_ns jemalloc_ns");
	for (s = 0; s < NR_SMALL; s++)
		printf("%zu %.1f %.1f %.1f\n", small_sizes[s],
		       fig.small_ns[s][0], fig.small_ns[s][1],
		       fig.small_ns[s][2]);
	puts("@@memmgr-bench-small-end");
	puts("@@memmgr-bench-malloc-begin");
	print_malloc(stdout);
	puts("@@memmgr-bench-malloc-end");

	printf("\nmemmgr_bench%s: %s, kernel %s, %ld vCPUs, accel %s, clock %s, %d repetitions, medians\n",
	       quick ? " --quick (no figure means anything)" : "", date,
	       un.release, sysconf(_SC_NPROCESSORS_ONLN), accel, clock,
	       sz.reps);
	puts("@@memmgr-bench-table-begin");
	print_table(stdout);
	puts("@@memmgr-bench-table-end");
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: memmgr_bench [--quick] [--json PATH] [--module KO [--params P]]\n"
		"                    [--accel NAME] [--reps N] [--cases 1,2,...]\n"
		"                    [--trace FILE]\n");
	exit(2);
}

/* --cases 1,5,6: a bit per case number to run (all by default). */
static unsigned int parse_cases(const char *list)
{
	unsigned int cases = 0;
	char *end;
	long n;

	do {
		n = strtol(list, &end, 10);
		if (end == list || n < 1 || n > 14 || (*end && *end != ','))
			usage();
		cases |= 1U << n;
		list = end + (*end == ',');
	} while (*end);
	return cases;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", required_argument, NULL, 'j' },
		{ "module", required_argument, NULL, 'm' },
		{ "params", required_argument, NULL, 'p' },
		{ "accel", required_argument, NULL, 'a' },
		{ "reps", required_argument, NULL, 'r' },
		{ "cases", required_argument, NULL, 'c' },
		{ "trace", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	const char *json_path = "/tmp/bench.json", *module = NULL;
	const char *params = "total=1G", *trace_path = NULL;
	struct memmgr_stats st;
	unsigned int cases = ~0U;
	int opt, reps = 0, fd;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			quick = true;
			break;
		case 'j':
			json_path = optarg;
			break;
		case 'm':
			module = optarg;
			break;
		case 'p':
			params = optarg;
			break;
		case 'a':
			accel = optarg;
			break;
		case 'c':
			cases = parse_cases(optarg);
			break;
		case 't':
			trace_path = optarg;
			break;
		case 'r':
			reps = atoi(optarg);
			if (reps < 1 || reps > MAX_REPS)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	sz = quick ? quick_sizing : full_sizing;
	if (reps)
		sz.reps = sz.malloc_reps = reps;

	if (module)
		case_insmod(module, params);
	else
		progress("case 7: no --module: insmod not timed");
	fd = dev_open();
	dev_stats(fd, &st);
	fig.total = st.total;
	progress("memmgr: %llu MiB reserved, %s%s",
		 (unsigned long long)(st.total / MIB),
		 quick ? "quick mode" : "full run",
		 fig.loaded_here ? ", loaded by this run" : "");

	if (cases & 1U << 1)
		case_syscall_floor(fd);
	if (cases & 1U << 3)
		case_two_procs();
	if (cases & 1U << 4)
		case_live_allocs();
	if (cases & 1U << 2)
		case_map_sizes(fd);
	if (cases & 1U << 5) {
		case_churn();
		case_zipf();
	}
	if (cases & 1U << 6)
		case_small();
	if (cases & 1U << 8)
		case_unified_scan();
	if (cases & 1U << 9)
		case_window_miss();
	if (cases & 1U << 10)
		case_pin();
	if (cases & 1U << 11)
		case_batch();
	if (cases & 1U << 12)
		case_malloc();
	if (cases & 1U << 13)
		case_realloc();
	if (cases & 1U << 14)
		case_trace(trace_path);
	if (cases & 1U << 7)
		metadata_rows();
	close(fd);

	emit(json_path);
	return 0;
}
