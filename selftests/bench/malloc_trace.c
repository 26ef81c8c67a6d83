// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_trace: the allocations a real program makes, for memmgr_bench's
 * case 14 to replay.  The program is SQLite's own benchmark, speedtest1
 * (test/speedtest1.c of Debian's sqlite3 source package, compiled in with
 * its main() renamed speedtest1_main), run on Debian's libsqlite3 with an
 * allocator (SQLITE_CONFIG_MALLOC) that hands every call on to glibc's
 * malloc and records it:
 *
 *   malloc_trace OUT [SPEEDTEST1 ARGS...]
 *
 * writes the trace to OUT (the format is in malloc_trace.h) and its
 * figures to stderr: events, ids, the peak of the bytes live (as asked
 * for) and the sizes asked for, by power of two.  speedtest1 prints its
 * own report on stdout.  The host runs it when the benchmark is built
 * (selftests/bench/Makefile); the guest only reads the trace.
 *
 * xSize is malloc_usable_size(), so SQLite sees the sizes it would see on
 * glibc with no header of ours: pointers find their ids through a hash
 * table here (the replayer needs none: ids are dense).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "malloc_trace.h"

int speedtest1_main(int argc, char **argv);

#define NR_BUCKETS	32

/* Pointer to id, open addressing; a slot with p == NULL is empty. */
struct slot {
	void *p;
	uint32_t id;
};

static struct {
	pthread_mutex_t lock;
	struct slot *slots;
	size_t nr_slots, used;		/* a power of two; live pointers */
	uint32_t *free_ids;		/* freed ids, a stack */
	uint32_t nr_free, nr_ids, max_free;
	struct mtr_event *ev;
	uint64_t nr_ev, max_ev;
	uint64_t *size_of;		/* by id: bytes asked for */
	uint64_t live, peak, peak_at;
	uint64_t ops[3];
	uint64_t by_size[NR_BUCKETS];	/* sizes asked for, by log2 */
} t = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void __attribute__((noreturn)) fail(const char *what)
{
	fprintf(stderr, "malloc_trace: %s: %s\n", what, strerror(errno));
	exit(1);
}

static size_t hash(const void *p)
{
	uint64_t x = (uintptr_t)p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x & (t.nr_slots - 1);
}

static struct slot *find(const void *p)
{
	size_t i = hash(p);

	while (t.slots[i].p && t.slots[i].p != p)
		i = (i + 1) & (t.nr_slots - 1);
	return &t.slots[i];
}

static void insert(void *p, uint32_t id);

/* Keep the table at most half full: probes stay short. */
static void grow_table(void)
{
	struct slot *old = t.slots;
	size_t n = t.nr_slots, i;

	t.nr_slots = n ? 2 * n : 4096;
	t.slots = calloc(t.nr_slots, sizeof(*t.slots));
	if (!t.slots)
		fail("calloc");
	t.used = 0;
	for (i = 0; i < n; i++)
		if (old[i].p)
			insert(old[i].p, old[i].id);
	free(old);
}

static void insert(void *p, uint32_t id)
{
	struct slot *s;

	if (2 * (t.used + 1) > t.nr_slots)
		grow_table();
	s = find(p);
	s->p = p;
	s->id = id;
	t.used++;
}

/* Backward-shift deletion: no tombstones, lookups stay exact. */
static uint32_t remove_ptr(const void *p)
{
	size_t mask = t.nr_slots - 1, i, j, home;
	struct slot *s = find(p);
	uint32_t id = s->id;

	if (!s->p) {
		fprintf(stderr, "malloc_trace: SQLite freed %p, not its own\n", p);
		exit(1);
	}
	i = s - t.slots;
	for (j = (i + 1) & mask; t.slots[j].p; j = (j + 1) & mask) {
		home = hash(t.slots[j].p);
		/* Move j back to i unless its home lies in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			t.slots[i] = t.slots[j];
			i = j;
		}
	}
	t.slots[i].p = NULL;
	t.used--;
	return id;
}

static void *grow(void *v, size_t n, size_t elem)
{
	v = realloc(v, n * elem);
	if (!v)
		fail("realloc");
	return v;
}

static uint32_t new_id(void)
{
	if (t.nr_free)
		return t.free_ids[--t.nr_free];
	if (t.nr_ids > MTR_ID_MASK) {
		errno = EOVERFLOW;
		fail("ids");
	}
	t.size_of = grow(t.size_of, t.nr_ids + 1, sizeof(*t.size_of));
	t.size_of[t.nr_ids] = 0;
	return t.nr_ids++;
}

static void free_id(uint32_t id)
{
	if (t.nr_free == t.max_free) {
		t.max_free = t.max_free ? 2 * t.max_free : 1024;
		t.free_ids = grow(t.free_ids, t.max_free, sizeof(*t.free_ids));
	}
	t.free_ids[t.nr_free++] = id;
}

static void record(enum mtr_op op, uint32_t id, uint64_t size)
{
	if (size > UINT32_MAX) {
		errno = EOVERFLOW;
		fail("an allocation of 4 GiB or more");
	}
	if (t.nr_ev == t.max_ev) {
		t.max_ev = t.max_ev ? 2 * t.max_ev : 1 << 20;
		t.ev = grow(t.ev, t.max_ev, sizeof(*t.ev));
	}
	t.ev[t.nr_ev++] = (struct mtr_event){
		.op_id = (uint32_t)op << MTR_OP_SHIFT | id, .size = size,
	};
	t.ops[op]++;
	if (op != MTR_FREE)
		t.by_size[size ? 64 - __builtin_clzll(size) - 1 : 0]++;
	t.live = t.live - t.size_of[id] + size;
	t.size_of[id] = size;
	if (t.live > t.peak) {
		t.peak = t.live;
		t.peak_at = t.nr_ev - 1;
	}
}

static void *trace_malloc(int n)
{
	void *p = malloc(n);

	if (p) {
		pthread_mutex_lock(&t.lock);
		insert(p, new_id());
		record(MTR_MALLOC, find(p)->id, n);
		pthread_mutex_unlock(&t.lock);
	}
	return p;
}

static void trace_free(void *p)
{
	uint32_t id;

	if (!p)
		return;
	pthread_mutex_lock(&t.lock);
	id = remove_ptr(p);
	record(MTR_FREE, id, 0);
	free_id(id);
	pthread_mutex_unlock(&t.lock);
	free(p);
}

/* SQLite never passes NULL or 0 here (sqlite3Realloc handles those). */
static void *trace_realloc(void *p, int n)
{
	uint32_t id;
	void *q;

	pthread_mutex_lock(&t.lock);
	/* Out of the table first: the old pointer is not used after realloc. */
	id = remove_ptr(p);
	q = realloc(p, n);
	insert(q ? q : p, id);
	if (q)
		record(MTR_REALLOC, id, n);
	pthread_mutex_unlock(&t.lock);
	return q;
}

static int trace_size(void *p)
{
	return malloc_usable_size(p);
}

/* As SQLite's own glibc allocator (mem1.c) rounds. */
static int trace_roundup(int n)
{
	return (n + 7) & ~7;
}

static int trace_init(void *arg)
{
	(void)arg;
	return SQLITE_OK;
}

static void trace_shutdown(void *arg)
{
	(void)arg;
}

static const sqlite3_mem_methods trace_methods = {
	.xMalloc = trace_malloc,
	.xFree = trace_free,
	.xRealloc = trace_realloc,
	.xSize = trace_size,
	.xRoundup = trace_roundup,
	.xInit = trace_init,
	.xShutdown = trace_shutdown,
};

static void write_trace(const char *path)
{
	struct mtr_header h = {
		.magic = MTR_MAGIC, .nr_events = t.nr_ev, .nr_ids = t.nr_ids,
	};
	FILE *f = fopen(path, "wb");

	if (!f)
		fail(path);
	if (fwrite(&h, sizeof(h), 1, f) != 1 ||
	    fwrite(t.ev, sizeof(*t.ev), t.nr_ev, f) != t.nr_ev || fclose(f))
		fail(path);
}

static void print_figures(const char *path)
{
	int b;

	fprintf(stderr, "malloc_trace: %s: %llu events (%llu malloc, %llu free, %llu realloc), %u ids\n",
		path, (unsigned long long)t.nr_ev,
		(unsigned long long)t.ops[MTR_MALLOC],
		(unsigned long long)t.ops[MTR_FREE],
		(unsigned long long)t.ops[MTR_REALLOC], t.nr_ids);
	fprintf(stderr, "malloc_trace: peak %llu bytes live (as asked for) at event %llu, %llu at the end in %zu objects\n",
		(unsigned long long)t.peak, (unsigned long long)t.peak_at,
		(unsigned long long)t.live, t.used);
	fprintf(stderr, "malloc_trace: sizes asked for (malloc and realloc):\n");
	for (b = 0; b < NR_BUCKETS; b++)
		if (t.by_size[b])
			fprintf(stderr, "malloc_trace:   %10llu - %10llu B: %llu\n",
				1ULL << b, (2ULL << b) - 1,
				(unsigned long long)t.by_size[b]);
}

int main(int argc, char **argv)
{
	const char *out;
	int ret;

	if (argc < 2) {
		fprintf(stderr, "usage: malloc_trace OUT [SPEEDTEST1 ARGS...]\n");
		return 2;
	}
	ret = sqlite3_config(SQLITE_CONFIG_MALLOC, &trace_methods);
	if (ret != SQLITE_OK) {
		fprintf(stderr, "malloc_trace: SQLITE_CONFIG_MALLOC: %d\n", ret);
		return 1;
	}
	/* speedtest1 sees its own name and the arguments after OUT. */
	out = argv[1];
	argv[1] = argv[0];
	ret = speedtest1_main(argc - 1, argv + 1);
	fflush(stdout);
	if (ret)
		return ret;
	write_trace(out);
	print_figures(out);
	return 0;
}
