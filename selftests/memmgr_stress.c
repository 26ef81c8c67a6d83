// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr_stress: randomized stress of /dev/memmgr, run in a VM against the
 * loaded module on an otherwise idle device.
 *
 *   memmgr_stress [--seed N] [--seconds S] [--ops N] [--procs P]
 *                 [--threads T] [--phase-ms MS]
 *
 * P worker processes (default 4), each with its own open file and T
 * threads (default 3), do random operations: allocations of both pools
 * (1 byte to a quarter of a quota, timeouts 0, small, or WAIT_FOREVER ended
 * by a signal), FREE, PIN, UNPIN, LOOKUP, RELEASE, mappings, reads and
 * writes of a pattern derived from each buffer's handle while other
 * threads evict, and invalid calls that must fail with their errno.  Every
 * phase (default 2 s) the parent kills one worker with SIGKILL in the
 * middle of whatever it does and starts another, then pauses all workers
 * and checks the invariants against MEMMGR_IOC_STATS.  At the end every
 * worker exits and the device must be idle again.
 *
 * Failures: a read that returns anything but what this thread wrote (or
 * zeros in a buffer never written), SIGBUS on a buffer that cannot have
 * been evicted or freed, an errno the ABI does not give for that call, a
 * process whose account differs from its file's use, or a broken
 * invariant.  Prints TAP; exits non-zero on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <setjmp.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/memmgr.h>

#include "kselftest.h"

#define DEV		"/dev/memmgr"
#define ST		MEMMGR_POOL_STORAGE
#define EX		MEMMGR_POOL_EXEC
#define MAX_PROCS	16
#define MAX_THREADS	8
#define MAX_BUFS	12
#define MAX_PINS	3
#define NSEC		1000000000ULL

enum op_kind {
	OP_ALLOC_ST, OP_ALLOC_EX, OP_GRANTED, OP_EAGAIN, OP_ETIMEDOUT,
	OP_EINTR, OP_FOREVER, OP_FREE, OP_FREE_MAPPED, OP_PIN, OP_UNPIN,
	OP_LOOKUP, OP_RELEASE, OP_MMAP, OP_MMAP_PART, OP_MUNMAP, OP_READ,
	OP_WRITE, OP_INVALID, OP_SIGBUS, OP_ESTALE, OP_EVICTED, OP_KILLED,
	NR_OPS
};

static const char * const op_names[NR_OPS] = {
	[OP_ALLOC_ST] = "alloc storage",
	[OP_ALLOC_EX] = "alloc exec",
	[OP_GRANTED] = "  granted",
	[OP_EAGAIN] = "  declined (EAGAIN)",
	[OP_ETIMEDOUT] = "  timed out (ETIMEDOUT)",
	[OP_EINTR] = "  interrupted (EINTR)",
	[OP_FOREVER] = "  WAIT_FOREVER",
	[OP_FREE] = "free",
	[OP_FREE_MAPPED] = "free while mapped (then SIGBUS)",
	[OP_PIN] = "pin",
	[OP_UNPIN] = "unpin",
	[OP_LOOKUP] = "lookup",
	[OP_RELEASE] = "release",
	[OP_MMAP] = "mmap whole",
	[OP_MMAP_PART] = "mmap part",
	[OP_MUNMAP] = "munmap",
	[OP_READ] = "read and check",
	[OP_WRITE] = "write",
	[OP_INVALID] = "invalid call",
	[OP_SIGBUS] = "SIGBUS on an evicted buffer",
	[OP_ESTALE] = "ESTALE",
	[OP_EVICTED] = "evictions seen by their owner",
	[OP_KILLED] = "workers killed",
};

/* One worker process's place in the shared control block. */
struct slot {
	pid_t pid;			/* 0: none */
	unsigned int incarnation;
	int parked_gen;			/* all its threads stopped */
	int reported_gen;
	__u64 acct[MEMMGR_NR_POOLS];	/* bytes it believes it holds */
	__u64 client_used[MEMMGR_NR_POOLS];	/* its file's, from STATS */
	__u64 live[MEMMGR_NR_POOLS];	/* its live buffers */
	unsigned long ops[NR_OPS];
	unsigned long failures;
};

/* Shared by the parent and every worker (MAP_SHARED). */
struct ctl {
	int pause_gen;		/* the parent asks for a pause, */
	int check_gen;		/* for reports once every worker stopped, */
	int resume_gen;		/* and ends it */
	int quit;		/* workers end */
	unsigned long ops_total;
	unsigned long max_ops;	/* 0: no limit */
	unsigned long failures;
	struct slot slot[MAX_PROCS];
};

static struct ctl *ctl;

static struct {
	unsigned long seed;
	unsigned int seconds, procs, threads, phase_ms;
	unsigned long ops;
} cfg = { .seconds = 60, .procs = 4, .threads = 3, .phase_ms = 2000 };

/* A buffer, as the thread that allocated it sees it. */
struct mbuf {
	__u64 handle, offset, granted, tag;
	__u32 pool, pins;
	bool evicted;		/* known evicted */
	bool written;		/* holds its pattern */
	unsigned char *map;	/* a mapping of all of it, or NULL */
};

struct proc;

struct thr {
	struct proc *pr;
	pthread_t tid;
	unsigned int idx;
	__u64 rng;
	__u64 next_tag;
	__u64 last_freed;	/* a handle this file no longer has */
	struct mbuf buf[MAX_BUFS];
	unsigned int nbuf;
	int holding;		/* in a hold the controller may end */
	__u64 kick_at;		/* when to end it with SIGUSR1 (ns) */
};

struct proc {
	int fd, slot;
	__u64 pg, T, S, E;
	__u64 acct[MEMMGR_NR_POOLS];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int pausing, stopping, parked;
	unsigned int nthr;
	struct thr thr[MAX_THREADS];
};

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC + ts.tv_nsec;
}

/* xorshift64* */
static __u64 rnd64(__u64 *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static __u64 rnd(__u64 *s, __u64 n)
{
	return n ? rnd64(s) % n : 0;
}

static __u64 seed_mix(__u64 a, __u64 b)
{
	__u64 s = a * 0x9e3779b97f4a7c15ULL + b + 1;

	rnd64(&s);
	return s ? s : 1;
}

/* A line on stdout in one write(), so that processes do not mix lines. */
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(1, line, n) < 0)
		return;
}

static void count(struct proc *pr, enum op_kind k)
{
	__atomic_add_fetch(&ctl->slot[pr->slot].ops[k], 1, __ATOMIC_RELAXED);
}

static void fail(struct proc *pr, const char *fmt, ...)
{
	unsigned long n;
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	__atomic_add_fetch(&ctl->failures, 1, __ATOMIC_RELAXED);
	n = __atomic_add_fetch(&ctl->slot[pr->slot].failures, 1,
			       __ATOMIC_RELAXED);
	if (n <= 10)
		say("# FAIL worker %d (pid %d): %s", pr->slot, getpid(), msg);
}

/* The pattern word at byte @off of the buffer with @handle. */
static __u64 pat(__u64 handle, __u64 off)
{
	return (handle * 0x9e3779b97f4a7c15ULL) ^
	       (off * 0xc2b2ae3d27d4eb4fULL) ^ 0x0123456789abcdefULL;
}

static __thread sigjmp_buf bus_jmp;
static __thread volatile sig_atomic_t bus_armed;

/* SIGBUS outside an access that expects it kills the worker. */
static void on_sigbus(int sig)
{
	if (!bus_armed) {
		signal(SIGBUS, SIG_DFL);
		return;
	}
	bus_armed = 0;
	siglongjmp(bus_jmp, 1);
}

static void on_usr1(int sig)
{
}

enum { CHECK_ZERO, CHECK_PAT, WRITE_PAT };

/*
 * Check (or write) the words [off, off + len) of @b through @map, which
 * maps the buffer from byte @map_off.  Return: 0, SIGBUS, or 1 with the
 * first wrong word's offset and value.
 */
static int access_range(const struct mbuf *b, unsigned char *map,
			__u64 map_off, __u64 off, __u64 len, int mode,
			__u64 *bad, __u64 *got)
{
	__u64 o, want, v;

	if (sigsetjmp(bus_jmp, 1))
		return SIGBUS;
	bus_armed = 1;
	for (o = off; o < off + len; o += 8) {
		volatile __u64 *w = (volatile __u64 *)(map + (o - map_off));

		want = mode == CHECK_ZERO ? 0 : pat(b->handle, o);
		if (mode == WRITE_PAT) {
			*w = want;
			continue;
		}
		v = *w;
		if (v != want) {
			bus_armed = 0;
			*bad = o;
			*got = v;
			return 1;
		}
	}
	bus_armed = 0;
	return 0;
}

static int mm_lookup(struct proc *pr, __u64 tag, struct memmgr_lookup *l)
{
	*l = (struct memmgr_lookup){ .tag = tag };
	return ioctl(pr->fd, MEMMGR_IOC_LOOKUP, l) ? errno : 0;
}

static int mm_buf(struct proc *pr, unsigned long cmd, __u64 handle,
		  __u64 flags)
{
	struct memmgr_buf b = { .handle = handle, .flags = flags };

	return ioctl(pr->fd, cmd, &b) ? errno : 0;
}

static void mark_evicted(struct thr *t, struct mbuf *b)
{
	if (b->evicted)
		return;
	b->evicted = true;
	__atomic_sub_fetch(&t->pr->acct[b->pool], b->granted,
			   __ATOMIC_RELAXED);
	count(t->pr, OP_EVICTED);
}

/*
 * What LOOKUP says of one of our storage buffers: 0 (live) or ESTALE,
 * with our handle, offset and size either way.  ESTALE marks it evicted;
 * it is a failure when the buffer was pinned or already known live after
 * being known evicted.
 */
static int check_lookup(struct thr *t, struct mbuf *b)
{
	struct proc *pr = t->pr;
	struct memmgr_lookup l;
	int ret = mm_lookup(pr, b->tag, &l);

	if (ret && ret != ESTALE) {
		fail(pr, "LOOKUP of tag %#llx: %s", b->tag, strerror(ret));
		return ret;
	}
	if (l.handle != b->handle || l.offset != b->offset ||
	    l.size != b->granted)
		fail(pr, "LOOKUP of tag %#llx: handle %#llx offset %#llx size %llu, want %#llx %#llx %llu",
		     b->tag, l.handle, l.offset, l.size, b->handle, b->offset,
		     b->granted);
	if (!ret && b->evicted)
		fail(pr, "LOOKUP: evicted buffer %#llx is live again",
		     b->handle);
	if (ret == ESTALE) {
		count(pr, OP_ESTALE);
		if (b->pins)
			fail(pr, "buffer %#llx evicted with %u pins",
			     b->handle, b->pins);
		mark_evicted(t, b);
	}
	return ret;
}

/* A SIGBUS on @b: only an evicted storage buffer may give one. */
static void got_sigbus(struct thr *t, struct mbuf *b)
{
	count(t->pr, OP_SIGBUS);
	if (b->pool != ST || b->pins) {
		fail(t->pr, "SIGBUS on %s buffer %#llx (%u pins)",
		     b->pool == ST ? "a pinned storage" : "an exec",
		     b->handle, b->pins);
		return;
	}
	if (check_lookup(t, b) == 0)
		fail(t->pr, "SIGBUS on live buffer %#llx", b->handle);
}

/* The outcome of access_range() on a buffer. */
static void access_done(struct thr *t, struct mbuf *b, int ret, __u64 bad,
			__u64 got, int mode)
{
	if (ret == SIGBUS) {
		got_sigbus(t, b);
	} else if (ret) {
		fail(t->pr, "buffer %#llx (%s, %llu bytes) at %#llx reads %#llx, want %#llx",
		     b->handle, b->pool == ST ? "storage" : "exec",
		     b->granted, bad, got,
		     mode == CHECK_ZERO ? 0 : pat(b->handle, bad));
	}
}

static void unmap(struct thr *t, struct mbuf *b)
{
	if (!b->map)
		return;
	if (munmap(b->map, b->granted))
		fail(t->pr, "munmap: %s", strerror(errno));
	b->map = NULL;
	count(t->pr, OP_MUNMAP);
}

static void forget(struct thr *t, struct mbuf *b)
{
	t->last_freed = b->handle;
	*b = t->buf[--t->nbuf];
}

static struct mbuf *pick(struct thr *t, int pool, bool mapped)
{
	unsigned int i, start, n = t->nbuf;

	if (!n)
		return NULL;
	start = rnd(&t->rng, n);
	for (i = 0; i < n; i++) {
		struct mbuf *b = &t->buf[(start + i) % n];

		if (pool >= 0 && b->pool != (__u32)pool)
			continue;
		if (mapped && !b->map)
			continue;
		return b;
	}
	return NULL;
}

/* 1 byte to a quarter of the pool's quota, log-uniform. */
static __u64 rand_size(struct thr *t, __u32 pool)
{
	__u64 limit = (pool == ST ? t->pr->S : t->pr->E) / 4;
	unsigned int bits = 63 - __builtin_clzll(limit);
	__u64 size = 1 + rnd(&t->rng, 2ULL << rnd(&t->rng, bits + 1));

	return size < limit ? size : limit;
}

static __s64 rand_timeout(struct thr *t)
{
	__u64 r = rnd(&t->rng, 100);

	if (r < 45)
		return 0;
	if (r < 92)
		return 1 + rnd(&t->rng, 30);
	return MEMMGR_WAIT_FOREVER;
}

/* Arrange for the controller to end a hold with SIGUSR1. */
static void hold_start(struct thr *t, __s64 timeout)
{
	__u64 kick = ~0ULL;

	if (timeout == MEMMGR_WAIT_FOREVER)
		kick = now_ns() + (5 + rnd(&t->rng, 100)) * 1000000ULL;
	else if (timeout > 0 && !rnd(&t->rng, 5))
		kick = now_ns() + rnd(&t->rng, timeout * 1000000ULL);
	__atomic_store_n(&t->kick_at, kick, __ATOMIC_RELAXED);
	__atomic_store_n(&t->holding, timeout != 0, __ATOMIC_RELEASE);
}

static void alloc_granted(struct thr *t, const struct memmgr_alloc *a)
{
	struct proc *pr = t->pr;
	__u64 want = (a->size + pr->pg - 1) / pr->pg * pr->pg;
	struct mbuf *b = &t->buf[t->nbuf++];

	count(pr, OP_GRANTED);
	if (a->granted != want || !a->handle || a->offset % pr->pg)
		fail(pr, "ALLOC of %llu bytes: granted %llu handle %#llx offset %#llx",
		     a->size, a->granted, a->handle, a->offset);
	*b = (struct mbuf){
		.handle = a->handle, .offset = a->offset,
		.granted = a->granted, .tag = a->tag, .pool = a->pool,
		.pins = a->pool == ST && !(a->flags & MEMMGR_ALLOC_UNPINNED),
	};
	__atomic_add_fetch(&pr->acct[a->pool], a->granted, __ATOMIC_RELAXED);
}

/* An ALLOC that failed: the errno must be one its timeout allows. */
static void alloc_failed(struct thr *t, const struct memmgr_alloc *a,
			 int err, __u64 ns)
{
	struct proc *pr = t->pr;
	bool timed = a->timeout_ms > 0;

	if (err == EAGAIN && a->timeout_ms == 0)
		count(pr, OP_EAGAIN);
	else if (err == EINTR && a->timeout_ms != 0)
		count(pr, OP_EINTR);
	else if (err == ETIMEDOUT && timed)
		count(pr, OP_ETIMEDOUT);
	else
		fail(pr, "ALLOC pool %u size %llu timeout %lld: %s", a->pool,
		     a->size, a->timeout_ms, strerror(err));
	/* Not before its time, give or take a tick (HZ >= 200). */
	if (err == ETIMEDOUT && timed &&
	    ns + 5000000ULL < (__u64)a->timeout_ms * 1000000ULL)
		fail(pr, "ALLOC timed out after %llu ns of %lld ms", ns,
		     a->timeout_ms);
}

static void op_alloc(struct thr *t)
{
	struct proc *pr = t->pr;
	struct memmgr_alloc a = { .pool = rnd(&t->rng, 2) };
	__u64 t0;
	int err;

	a.size = rand_size(t, a.pool);
	a.timeout_ms = rand_timeout(t);
	if (a.pool == ST) {
		a.tag = (__u64)t->idx << 40 | t->next_tag++;
		a.flags = rnd(&t->rng, 2) ? MEMMGR_ALLOC_UNPINNED : 0;
	} else {
		a.tag = (__u64)t->idx << 40 | 1ULL << 39 | rnd(&t->rng, 4);
	}
	count(pr, a.pool == ST ? OP_ALLOC_ST : OP_ALLOC_EX);
	if (a.timeout_ms == MEMMGR_WAIT_FOREVER)
		count(pr, OP_FOREVER);
	hold_start(t, a.timeout_ms);
	t0 = now_ns();
	err = ioctl(pr->fd, MEMMGR_IOC_ALLOC, &a) ? errno : 0;
	__atomic_store_n(&t->holding, 0, __ATOMIC_RELEASE);
	if (err)
		alloc_failed(t, &a, err, now_ns() - t0);
	else
		alloc_granted(t, &a);
}

/*
 * After FREE returns, the buffer's mapping must be revoked.  If it is not,
 * say whether it still reads this buffer's data, and how long (up to 2 s)
 * it takes to be revoked.
 */
static void mapped_after_free(struct thr *t, struct mbuf *b)
{
	__u64 bad = 0, got = 0, t0 = now_ns(), ms;
	int ret, later;

	ret = access_range(b, b->map, 0, 0, 8,
			   b->written ? CHECK_PAT : CHECK_ZERO, &bad, &got);
	if (ret == SIGBUS)
		return;
	do {
		usleep(1000);
		later = access_range(b, b->map, 0, 0, 8, CHECK_ZERO, &bad,
				     &got);
		ms = (now_ns() - t0) / 1000000;
	} while (later != SIGBUS && ms < 2000);
	fail(t->pr, "%s buffer %#llx (%llu bytes, %u pins, %s) still mapped after FREE, reading %s; SIGBUS %s %llu ms later",
	     b->pool == ST ? "storage" : "exec", b->handle, b->granted,
	     b->pins, b->evicted ? "known evicted" : "not known evicted",
	     ret ? "other data" : "its own data",
	     later == SIGBUS ? "from" : "not even", ms);
}

/* FREE, after munmap() or (sometimes) before: then the mapping SIGBUSes. */
static void op_free(struct thr *t)
{
	struct mbuf *b = pick(t, -1, false);
	bool mapped_free = b && b->map && !rnd(&t->rng, 4);
	int err;

	if (!b)
		return;
	if (!mapped_free)
		unmap(t, b);
	err = mm_buf(t->pr, MEMMGR_IOC_FREE, b->handle, 0);
	count(t->pr, OP_FREE);
	if (err)
		fail(t->pr, "FREE of %#llx: %s", b->handle, strerror(err));
	if (!b->evicted)
		__atomic_sub_fetch(&t->pr->acct[b->pool], b->granted,
				   __ATOMIC_RELAXED);
	if (mapped_free) {
		count(t->pr, OP_FREE_MAPPED);
		mapped_after_free(t, b);
		unmap(t, b);
	}
	forget(t, b);
}

static void op_pin(struct thr *t)
{
	struct mbuf *b = pick(t, ST, false);
	int err;

	if (!b || b->pins >= MAX_PINS)
		return;
	err = mm_buf(t->pr, MEMMGR_IOC_PIN, b->handle, 0);
	count(t->pr, OP_PIN);
	if (!err && !b->evicted) {
		b->pins++;
	} else if (err == ESTALE && !b->pins) {
		count(t->pr, OP_ESTALE);
		mark_evicted(t, b);
	} else {
		fail(t->pr, "PIN of %#llx (%u pins%s): %s", b->handle,
		     b->pins, b->evicted ? ", evicted" : "", strerror(err));
	}
}

static void op_unpin(struct thr *t)
{
	struct mbuf *b = pick(t, ST, false);
	int err;

	if (!b || !b->pins)
		return;
	err = mm_buf(t->pr, MEMMGR_IOC_UNPIN, b->handle, 0);
	count(t->pr, OP_UNPIN);
	if (err)
		fail(t->pr, "UNPIN of %#llx (%u pins): %s", b->handle,
		     b->pins, strerror(err));
	else
		b->pins--;
}

static void op_lookup(struct thr *t)
{
	struct mbuf *b = pick(t, ST, false);

	if (!b)
		return;
	count(t->pr, OP_LOOKUP);
	check_lookup(t, b);
}

/* RELEASE of one buffer's pool and tag: exec tags name several. */
static void op_release(struct thr *t)
{
	struct mbuf *b = pick(t, -1, false);
	struct memmgr_release r;
	__u64 sure = 0, maybe = 0;
	unsigned int i;
	int err;

	if (!b)
		return;
	r = (struct memmgr_release){ .pool = b->pool, .tag = b->tag };
	for (i = 0; i < t->nbuf; i++) {
		struct mbuf *c = &t->buf[i];

		if (c->pool != r.pool || c->tag != r.tag)
			continue;
		unmap(t, c);
		if (c->evicted)
			continue;
		if (c->pool == EX || c->pins)
			sure += c->granted;
		else
			maybe += c->granted;
	}
	err = ioctl(t->pr->fd, MEMMGR_IOC_RELEASE, &r) ? errno : 0;
	count(t->pr, OP_RELEASE);
	/* Storage tags are unique: an unpinned buffer may be gone. */
	if (err || (r.freed != sure + maybe && (r.freed != sure || !maybe)))
		fail(t->pr, "RELEASE pool %u tag %#llx: %s, freed %llu of %llu (+%llu)",
		     r.pool, r.tag, strerror(err), r.freed, sure, maybe);
	if (maybe && r.freed == sure)
		count(t->pr, OP_EVICTED);
	for (i = t->nbuf; i-- > 0;) {
		struct mbuf *c = &t->buf[i];

		if (c->pool != r.pool || c->tag != r.tag)
			continue;
		if (!c->evicted)
			__atomic_sub_fetch(&t->pr->acct[c->pool], c->granted,
					   __ATOMIC_RELAXED);
		forget(t, c);
	}
}

/* mmap() failed with EINVAL: only an evicted buffer may say so. */
static void map_refused(struct thr *t, struct mbuf *b, int err)
{
	if (err != EINVAL || b->pool != ST || b->pins) {
		fail(t->pr, "mmap of %s buffer %#llx (%u pins): %s",
		     b->pool == ST ? "storage" : "exec", b->handle, b->pins,
		     strerror(err));
		return;
	}
	if (check_lookup(t, b) == 0)
		fail(t->pr, "mmap of live buffer %#llx: EINVAL", b->handle);
}

/* Zeros first: all of a small buffer, 16 pages and the ends of a big one. */
static void check_zeros(struct thr *t, struct mbuf *b)
{
	__u64 pg = t->pr->pg, pages = b->granted / pg, bad, got, p;
	int i, ret;

	if (b->granted <= 256 * 1024) {
		ret = access_range(b, b->map, 0, 0, b->granted, CHECK_ZERO,
				   &bad, &got);
		access_done(t, b, ret, bad, got, CHECK_ZERO);
		return;
	}
	for (i = 0; i < 18; i++) {
		p = i == 0 ? 0 : i == 1 ? pages - 1 : rnd(&t->rng, pages);
		ret = access_range(b, b->map, 0, p * pg, pg, CHECK_ZERO,
				   &bad, &got);
		access_done(t, b, ret, bad, got, CHECK_ZERO);
		if (ret)
			return;
	}
}

static void op_mmap(struct thr *t)
{
	struct mbuf *b = pick(t, -1, false);
	__u64 bad, got;
	void *p;
	int ret;

	if (!b || b->map || b->evicted)
		return;
	count(t->pr, OP_MMAP);
	p = mmap(NULL, b->granted, PROT_READ | PROT_WRITE, MAP_SHARED,
		 t->pr->fd, b->offset);
	if (p == MAP_FAILED) {
		map_refused(t, b, errno);
		return;
	}
	b->map = p;
	if (!b->written)
		check_zeros(t, b);
	if (b->evicted)
		return;
	ret = access_range(b, b->map, 0, 0, b->granted, WRITE_PAT, &bad,
			   &got);
	access_done(t, b, ret, bad, got, WRITE_PAT);
	if (!ret)
		b->written = true;
}

/* A random range of at most 64 KiB of a buffer, 8-byte aligned. */
static void rand_range(struct thr *t, __u64 size, __u64 *off, __u64 *len)
{
	__u64 max = size < 65536 ? size : 65536;

	*len = 8 * (1 + rnd(&t->rng, max / 8));
	*off = 8 * rnd(&t->rng, (size - *len) / 8 + 1);
}

static void op_rw(struct thr *t, bool write)
{
	struct mbuf *b = pick(t, -1, true);
	__u64 off, len, bad, got;
	int ret, mode = write ? WRITE_PAT : CHECK_PAT;

	if (!b || !b->written || b->evicted)
		return;
	count(t->pr, write ? OP_WRITE : OP_READ);
	rand_range(t, b->granted, &off, &len);
	ret = access_range(b, b->map, 0, off, len, mode, &bad, &got);
	access_done(t, b, ret, bad, got, mode);
}

/* Map some pages of a buffer at their offset, check them, unmap. */
static void op_mmap_part(struct thr *t)
{
	struct mbuf *b = pick(t, -1, false);
	__u64 pg = t->pr->pg, pages, first, n, bad, got;
	unsigned char *p;
	int ret;

	if (!b || !b->written || b->evicted)
		return;
	pages = b->granted / pg;
	first = rnd(&t->rng, pages);
	n = 1 + rnd(&t->rng, pages - first);
	count(t->pr, OP_MMAP_PART);
	p = mmap(NULL, n * pg, PROT_READ, MAP_SHARED, t->pr->fd,
		 b->offset + first * pg);
	if (p == MAP_FAILED) {
		map_refused(t, b, errno);
		return;
	}
	ret = access_range(b, p, first * pg, first * pg,
			   n * pg < 65536 ? n * pg : 65536, CHECK_PAT, &bad,
			   &got);
	access_done(t, b, ret, bad, got, CHECK_PAT);
	if (munmap(p, n * pg))
		fail(t->pr, "munmap: %s", strerror(errno));
}

static void op_munmap(struct thr *t)
{
	struct mbuf *b = pick(t, -1, true);

	if (b)
		unmap(t, b);
}

/* Invalid calls: each must fail with the errno the ABI gives. */
static int invalid_alloc(struct thr *t, struct memmgr_alloc *a)
{
	struct proc *pr = t->pr;

	*a = (struct memmgr_alloc){
		.pool = rnd(&t->rng, 2), .size = pr->pg,
		.tag = (__u64)t->idx << 40 | 0xfffffffffULL,
	};
	switch (rnd(&t->rng, 7)) {
	case 0:
		a->reserved[rnd(&t->rng, 2)] = 1ULL << rnd(&t->rng, 64);
		return EINVAL;
	case 1:
		a->flags = 1U << (1 + rnd(&t->rng, 31));
		return EINVAL;
	case 2:
		a->pool = MEMMGR_NR_POOLS + rnd(&t->rng, 1000);
		return EINVAL;
	case 3:
		a->size = 0;
		return EINVAL;
	case 4:
		a->timeout_ms = -2 - (__s64)rnd(&t->rng, 1000);
		return EINVAL;
	case 5:
		a->pool = EX;
		a->flags = MEMMGR_ALLOC_UNPINNED;
		return EINVAL;
	}
	a->size = (a->pool == ST ? pr->S : pr->T) + 1 +
		  rnd(&t->rng, ~0ULL - pr->T - 1);
	a->timeout_ms = MEMMGR_WAIT_FOREVER;
	return E2BIG;
}

static void op_invalid(struct thr *t)
{
	struct proc *pr = t->pr;
	struct memmgr_alloc a;
	struct memmgr_lookup l;
	struct memmgr_release r = { .pool = EX, .tag = 1 };
	struct mbuf *b;
	int want, got;
	const char *what;

	count(pr, OP_INVALID);
	switch (rnd(&t->rng, 9)) {
	case 0:
		want = invalid_alloc(t, &a);
		got = ioctl(pr->fd, MEMMGR_IOC_ALLOC, &a) ? errno : 0;
		what = "ALLOC";
		break;
	case 1:
		want = ENOENT;
		got = mm_buf(pr, MEMMGR_IOC_FREE, (1ULL << 52) +
			     rnd(&t->rng, 1ULL << 40), 0);
		what = "FREE of an unknown handle";
		break;
	case 2:
		want = t->last_freed ? ENOENT : EINVAL;
		got = t->last_freed ?
		      mm_buf(pr, MEMMGR_IOC_UNPIN, t->last_freed, 0) :
		      mm_buf(pr, MEMMGR_IOC_PIN, 0, 1);
		what = "UNPIN of a freed handle";
		break;
	case 3:
		b = pick(t, -1, false);
		want = EINVAL;
		got = mm_buf(pr, MEMMGR_IOC_PIN, b ? b->handle : 1,
			     1ULL << rnd(&t->rng, 64));
		what = "PIN with a flag";
		break;
	case 4:
		b = pick(t, EX, false);
		want = b ? EINVAL : ENOENT;
		got = mm_buf(pr, MEMMGR_IOC_PIN, b ? b->handle : 0, 0);
		what = "PIN of an exec buffer";
		break;
	case 5:
		want = ENOENT;
		got = mm_lookup(pr, (__u64)t->idx << 40 | 0xfffffffffULL, &l);
		what = "LOOKUP of an unused tag";
		break;
	case 6:
		want = EINVAL;
		if (rnd(&t->rng, 2))
			r.pool = MEMMGR_NR_POOLS + rnd(&t->rng, 100);
		else
			r.flags = 1U << rnd(&t->rng, 32);
		got = ioctl(pr->fd, MEMMGR_IOC_RELEASE, &r) ? errno : 0;
		what = "RELEASE with a bad pool or flag";
		break;
	case 7:
		want = ENOTTY;
		got = ioctl(pr->fd, _IOWR(MEMMGR_IOC_MAGIC, 7 + rnd(&t->rng, 8),
					  struct memmgr_alloc), &a) ? errno : 0;
		what = "an unknown command";
		break;
	default:
		want = EFAULT;
		got = ioctl(pr->fd, MEMMGR_IOC_STATS, NULL) ? errno : 0;
		what = "STATS to NULL";
		break;
	}
	if (got != want)
		fail(pr, "%s: %s, want %s", what, strerror(got),
		     strerror(want));
}

/* Invalid mappings: MAP_PRIVATE (EINVAL) and PROT_EXEC (EPERM). */
static void op_invalid_map(struct thr *t)
{
	struct mbuf *b = pick(t, -1, false);
	bool exec = rnd(&t->rng, 2);
	void *p;

	if (!b)
		return;
	count(t->pr, OP_INVALID);
	p = mmap(NULL, t->pr->pg, PROT_READ | (exec ? PROT_EXEC : 0),
		 exec ? MAP_SHARED : MAP_PRIVATE, t->pr->fd, b->offset);
	if (p != MAP_FAILED) {
		fail(t->pr, "mmap %s succeeded",
		     exec ? "PROT_EXEC" : "MAP_PRIVATE");
		munmap(p, t->pr->pg);
	} else if (errno != (exec ? EPERM : EINVAL)) {
		fail(t->pr, "mmap %s: %s", exec ? "PROT_EXEC" : "MAP_PRIVATE",
		     strerror(errno));
	}
}

static void one_op(struct thr *t)
{
	__u64 r = rnd(&t->rng, 100);

	if (r < 22) {
		if (t->nbuf < MAX_BUFS)
			op_alloc(t);
		else
			op_free(t);
	} else if (r < 34) {
		op_free(t);
	} else if (r < 40) {
		op_pin(t);
	} else if (r < 47) {
		op_unpin(t);
	} else if (r < 51) {
		op_lookup(t);
	} else if (r < 54) {
		op_release(t);
	} else if (r < 64) {
		op_mmap(t);
	} else if (r < 68) {
		op_mmap_part(t);
	} else if (r < 71) {
		op_munmap(t);
	} else if (r < 82) {
		op_rw(t, false);
	} else if (r < 88) {
		op_rw(t, true);
	} else if (r < 97) {
		op_invalid(t);
	} else {
		op_invalid_map(t);
	}
}

/* Wait here while the controller pauses the process. */
static void park(struct proc *pr)
{
	pthread_mutex_lock(&pr->lock);
	pr->parked++;
	pthread_cond_broadcast(&pr->cond);
	while (pr->pausing && !pr->stopping)
		pthread_cond_wait(&pr->cond, &pr->lock);
	pr->parked--;
	pthread_mutex_unlock(&pr->lock);
}

static void *op_thread(void *arg)
{
	struct thr *t = arg;
	struct proc *pr = t->pr;

	while (!__atomic_load_n(&pr->stopping, __ATOMIC_ACQUIRE)) {
		if (__atomic_load_n(&pr->pausing, __ATOMIC_ACQUIRE)) {
			park(pr);
			continue;
		}
		if (ctl->max_ops &&
		    __atomic_add_fetch(&ctl->ops_total, 1, __ATOMIC_RELAXED) >
		    ctl->max_ops) {
			usleep(1000);
			continue;
		}
		if (!ctl->max_ops)
			__atomic_add_fetch(&ctl->ops_total, 1,
					   __ATOMIC_RELAXED);
		one_op(t);
	}
	return NULL;
}

/* End holds that are due, with a signal (no SA_RESTART: EINTR). */
static void kick_holds(struct proc *pr, bool all)
{
	__u64 now = now_ns();
	unsigned int i;

	for (i = 0; i < pr->nthr; i++) {
		struct thr *t = &pr->thr[i];

		if (all || (__atomic_load_n(&t->holding, __ATOMIC_ACQUIRE) &&
			    now >= __atomic_load_n(&t->kick_at,
						   __ATOMIC_RELAXED)))
			pthread_kill(t->tid, SIGUSR1);
	}
}

static struct memmgr_stats mm_stats(int fd)
{
	struct memmgr_stats st;

	memset(&st, 0xff, sizeof(st));
	if (ioctl(fd, MEMMGR_IOC_STATS, &st))
		memset(&st, 0xff, sizeof(st));
	return st;
}

/*
 * With every thread parked: learn which unpinned buffers were evicted,
 * then compare the account, the buffers and the file's use.
 */
static void reconcile(struct proc *pr, int gen)
{
	struct slot *s = &ctl->slot[pr->slot];
	__u64 sum[MEMMGR_NR_POOLS] = { 0 }, live[MEMMGR_NR_POOLS] = { 0 };
	struct memmgr_stats st;
	unsigned int i, j, p;

	for (i = 0; i < pr->nthr; i++) {
		struct thr *t = &pr->thr[i];

		for (j = 0; j < t->nbuf; j++) {
			struct mbuf *b = &t->buf[j];

			if (b->pool == ST)
				check_lookup(t, b);
			if (b->evicted)
				continue;
			sum[b->pool] += b->granted;
			live[b->pool]++;
		}
	}
	st = mm_stats(pr->fd);
	for (p = 0; p < MEMMGR_NR_POOLS; p++) {
		if (sum[p] != pr->acct[p] || st.client_used[p] != pr->acct[p])
			fail(pr, "pool %u: account %llu, buffers %llu, file uses %llu",
			     p, pr->acct[p], sum[p], st.client_used[p]);
		s->acct[p] = pr->acct[p];
		s->client_used[p] = st.client_used[p];
		s->live[p] = live[p];
	}
	__atomic_store_n(&s->reported_gen, gen, __ATOMIC_RELEASE);
}

/* The parent asked for a pause: park every thread, report, wait. */
static void pause_proc(struct proc *pr, int gen)
{
	pthread_mutex_lock(&pr->lock);
	__atomic_store_n(&pr->pausing, 1, __ATOMIC_RELEASE);
	while (pr->parked < (int)pr->nthr) {
		struct timespec ts;

		pthread_mutex_unlock(&pr->lock);
		kick_holds(pr, true);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 5000000;
		if (ts.tv_nsec >= (long)NSEC) {
			ts.tv_sec++;
			ts.tv_nsec -= NSEC;
		}
		pthread_mutex_lock(&pr->lock);
		pthread_cond_timedwait(&pr->cond, &pr->lock, &ts);
	}
	pthread_mutex_unlock(&pr->lock);

	/*
	 * Report only when no worker runs any more: a running one could
	 * still evict this one's buffers after the report.
	 */
	__atomic_store_n(&ctl->slot[pr->slot].parked_gen, gen,
			 __ATOMIC_RELEASE);
	while (__atomic_load_n(&ctl->check_gen, __ATOMIC_ACQUIRE) < gen &&
	       !__atomic_load_n(&ctl->quit, __ATOMIC_ACQUIRE))
		usleep(1000);
	reconcile(pr, gen);
	while (__atomic_load_n(&ctl->resume_gen, __ATOMIC_ACQUIRE) < gen &&
	       !__atomic_load_n(&ctl->quit, __ATOMIC_ACQUIRE))
		usleep(1000);

	pthread_mutex_lock(&pr->lock);
	pr->pausing = 0;
	if (__atomic_load_n(&ctl->quit, __ATOMIC_ACQUIRE))
		pr->stopping = 1;
	pthread_cond_broadcast(&pr->cond);
	pthread_mutex_unlock(&pr->lock);
}

/* Half the workers free everything themselves; the rest leave it to exit. */
static void proc_end(struct proc *pr, __u64 *rng)
{
	struct memmgr_stats st;
	unsigned int i;

	if (rnd(rng, 2))
		return;
	for (i = 0; i < pr->nthr; i++) {
		struct thr *t = &pr->thr[i];

		while (t->nbuf) {
			struct mbuf *b = &t->buf[0];
			int err;

			unmap(t, b);
			err = mm_buf(pr, MEMMGR_IOC_FREE, b->handle, 0);
			if (err)
				fail(pr, "FREE of %#llx at the end: %s",
				     b->handle, strerror(err));
			forget(t, b);
		}
	}
	st = mm_stats(pr->fd);
	if (st.client_used[ST] || st.client_used[EX])
		fail(pr, "the file still uses %llu + %llu bytes after FREE of everything",
		     st.client_used[ST], st.client_used[EX]);
}

static void proc_init(struct proc *pr, int slot)
{
	struct memmgr_stats st;

	memset(pr, 0, sizeof(*pr));
	pr->slot = slot;
	pr->fd = open(DEV, O_RDWR | O_CLOEXEC);
	if (pr->fd < 0) {
		fail(pr, DEV ": %s", strerror(errno));
		_exit(1);
	}
	st = mm_stats(pr->fd);
	pr->pg = st.page_size;
	pr->T = st.total;
	pr->S = st.pool[ST].quota;
	pr->E = st.pool[EX].quota;
	pthread_mutex_init(&pr->lock, NULL);
	pthread_cond_init(&pr->cond, NULL);
}

/* @seen: the last pause the parent asked for before this worker began. */
static void worker_main(int slot, unsigned int incarnation, int seen)
{
	static struct proc pr;
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART */
	__u64 rng = seed_mix(cfg.seed, slot * 1000003ULL + incarnation);
	unsigned int i;

	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_sigbus;
	sigaction(SIGBUS, &sa, NULL);
	proc_init(&pr, slot);
	pr.nthr = cfg.threads;
	for (i = 0; i < pr.nthr; i++) {
		struct thr *t = &pr.thr[i];

		t->pr = &pr;
		t->idx = i + 1;
		t->rng = seed_mix(rng, i);
		pthread_create(&t->tid, NULL, op_thread, t);
	}
	while (!pr.stopping) {
		int gen = __atomic_load_n(&ctl->pause_gen, __ATOMIC_ACQUIRE);

		if (gen != seen) {
			seen = gen;
			pause_proc(&pr, gen);
			continue;
		}
		kick_holds(&pr, false);
		usleep(2000);
	}
	for (i = 0; i < pr.nthr; i++)
		pthread_join(pr.thr[i].tid, NULL);
	proc_end(&pr, &rng);
	_exit(0);
}

/* The parent's side. */
static int parent_fd;
static struct memmgr_stats st0;

static void spawn(int slot)
{
	struct slot *s = &ctl->slot[slot];
	int gen = __atomic_load_n(&ctl->pause_gen, __ATOMIC_ACQUIRE);
	pid_t pid;

	s->incarnation++;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		ksft_exit_fail_msg("fork: %s\n", strerror(errno));
	if (!pid)
		worker_main(slot, s->incarnation, gen);
	__atomic_store_n(&s->pid, pid, __ATOMIC_RELEASE);
}

static void parent_fail(const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	__atomic_add_fetch(&ctl->failures, 1, __ATOMIC_RELAXED);
	say("# FAIL %s", msg);
}

/* Reap workers that died on their own: each is a failure; replace it. */
static void reap_unexpected(bool replace)
{
	int status, i;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < (int)cfg.procs; i++)
			if (ctl->slot[i].pid == pid)
				break;
		if (i == (int)cfg.procs)
			continue;
		ctl->slot[i].pid = 0;
		if (WIFSIGNALED(status))
			parent_fail("worker %d (pid %d) died of signal %d", i,
				    pid, WTERMSIG(status));
		else
			parent_fail("worker %d (pid %d) exited with %d", i,
				    pid, WEXITSTATUS(status));
		if (replace)
			spawn(i);
	}
}

static void kill_one(__u64 *rng)
{
	int i = rnd(rng, cfg.procs), status;
	pid_t pid = ctl->slot[i].pid;

	if (!pid)
		return;
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid)
		parent_fail("waitpid of worker %d: %s", i, strerror(errno));
	else if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		parent_fail("worker %d (pid %d) ended with status %#x before SIGKILL",
			    i, pid, status);
	ctl->slot[i].pid = 0;
	ctl->slot[i].ops[OP_KILLED]++;
	spawn(i);
}

/* Wait (at most 120 s) until every live worker's @field is @gen. */
static bool wait_workers(int gen, size_t field, const char *what)
{
	__u64 end = now_ns() + 120 * NSEC;
	unsigned int i, done;

	do {
		reap_unexpected(false);
		for (i = 0, done = 0; i < cfg.procs; i++) {
			int *v = (int *)((char *)&ctl->slot[i] + field);

			done += !ctl->slot[i].pid ||
				__atomic_load_n(v, __ATOMIC_ACQUIRE) == gen;
		}
		if (done == cfg.procs)
			return true;
		usleep(2000);
	} while (now_ns() < end);
	parent_fail("workers did not %s within 120 s", what);
	return false;
}

/* Stop every worker, then have each report what it holds. */
static bool pause_all(int gen)
{
	bool ok;

	__atomic_store_n(&ctl->pause_gen, gen, __ATOMIC_RELEASE);
	ok = wait_workers(gen, offsetof(struct slot, parked_gen), "stop");
	__atomic_store_n(&ctl->check_gen, gen, __ATOMIC_RELEASE);
	return wait_workers(gen, offsetof(struct slot, reported_gen),
			    "report") && ok;
}

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		parent_fail(__VA_ARGS__);				\
		ok = false;						\
	}								\
} while (0)

/* The invariants of a paused device against what the workers report. */
static bool check_invariants(const char *when)
{
	__u64 used[2] = { 0 }, acct[2] = { 0 }, live[2] = { 0 };
	struct memmgr_stats st = mm_stats(parent_fd);
	__u64 T = st.total, S = st.pool[ST].quota, E = st.pool[EX].quota;
	bool ok = true;
	unsigned int i, p;

	for (i = 0; i < cfg.procs; i++) {
		if (!ctl->slot[i].pid)
			continue;
		for (p = 0; p < 2; p++) {
			used[p] += ctl->slot[i].client_used[p];
			acct[p] += ctl->slot[i].acct[p];
			live[p] += ctl->slot[i].live[p];
		}
	}
	for (p = 0; p < 2; p++) {
		struct memmgr_pool_stats *ps = &st.pool[p];

		CHECK(ps->used == used[p] && ps->used == acct[p],
		      "%s: pool %u used %llu, files use %llu, accounts %llu",
		      when, p, ps->used, used[p], acct[p]);
		CHECK(ps->allocs - ps->frees == live[p],
		      "%s: pool %u allocs - frees = %llu, live buffers %llu",
		      when, p, ps->allocs - ps->frees, live[p]);
		CHECK(ps->peak >= ps->used, "%s: pool %u peak %llu < used %llu",
		      when, p, ps->peak, ps->used);
	}
	CHECK(st.pool[ST].used <= S, "%s: storage used %llu > quota %llu",
	      when, st.pool[ST].used, S);
	CHECK(st.pool[ST].used + st.pool[EX].used <= T,
	      "%s: used %llu + %llu > total %llu", when, st.pool[ST].used,
	      st.pool[EX].used, T);
	CHECK(st.free == T - st.pool[ST].used - st.pool[EX].used,
	      "%s: free %llu, total %llu, used %llu + %llu", when, st.free,
	      T, st.pool[ST].used, st.pool[EX].used);
	CHECK(st.pool[EX].borrowed ==
	      (st.pool[EX].used > E ? st.pool[EX].used - E : 0) &&
	      st.pool[ST].borrowed == 0,
	      "%s: borrowed %llu / %llu with exec used %llu of %llu", when,
	      st.pool[ST].borrowed, st.pool[EX].borrowed, st.pool[EX].used, E);
	CHECK(st.pool[ST].pinned <= st.pool[ST].used,
	      "%s: pinned %llu > storage used %llu", when, st.pool[ST].pinned,
	      st.pool[ST].used);
	CHECK(st.waiters == 0, "%s: %u requests held", when, st.waiters);
	CHECK(!st.client_used[ST] && !st.client_used[EX],
	      "%s: the parent's file uses memory", when);
	CHECK(st0.total == T && st0.pool[ST].quota == S &&
	      st0.pool[EX].quota == E, "%s: the reserve changed", when);
	return ok;
}

/* Every worker is gone: the device must be idle. */
static bool check_idle(void)
{
	struct memmgr_stats st = mm_stats(parent_fd);
	bool ok = true;
	unsigned int p;

	for (p = 0; p < 2; p++) {
		CHECK(st.pool[p].used == 0, "end: pool %u used %llu", p,
		      st.pool[p].used);
		CHECK(st.pool[p].borrowed == 0, "end: pool %u borrowed %llu",
		      p, st.pool[p].borrowed);
		CHECK(st.pool[p].allocs == st.pool[p].frees,
		      "end: pool %u allocs %llu, frees %llu", p,
		      st.pool[p].allocs, st.pool[p].frees);
	}
	CHECK(st.pool[ST].pinned == 0, "end: pinned %llu",
	      st.pool[ST].pinned);
	CHECK(st.free == st.total, "end: free %llu of %llu", st.free,
	      st.total);
	CHECK(st.waiters == 0, "end: %u requests held", st.waiters);
	return ok;
}

/* Tell the paused workers to end, and wait (at most 120 s) for them. */
static bool end_workers(void)
{
	__u64 end = now_ns() + 120 * NSEC;
	unsigned int i, left;
	int status;
	bool ok = true;

	__atomic_store_n(&ctl->quit, 1, __ATOMIC_RELEASE);
	do {
		for (i = 0, left = 0; i < cfg.procs; i++) {
			pid_t pid = ctl->slot[i].pid;

			if (!pid)
				continue;
			if (waitpid(pid, &status, WNOHANG) != pid) {
				left++;
				continue;
			}
			ctl->slot[i].pid = 0;
			CHECK(WIFEXITED(status) && !WEXITSTATUS(status),
			      "worker %u ended with status %#x", i, status);
		}
		if (!left)
			return ok;
		usleep(5000);
	} while (now_ns() < end);
	parent_fail("workers did not end within 120 s");
	for (i = 0; i < cfg.procs; i++)
		if (ctl->slot[i].pid)
			kill(ctl->slot[i].pid, SIGKILL);
	return false;
}

/* Run one phase of @ms; a worker is killed at a random moment in it. */
static void run_phase(__u64 *rng, __u64 ms, __u64 deadline)
{
	__u64 start = now_ns(), end = start + ms * 1000000ULL;
	__u64 kill_at = start + rnd(rng, ms * 1000000ULL);
	bool killed = false;
	unsigned int i;

	if (end > deadline)
		end = deadline;
	while (now_ns() < end) {
		if (ctl->max_ops && __atomic_load_n(&ctl->ops_total,
						    __ATOMIC_RELAXED) >=
		    ctl->max_ops)
			break;
		reap_unexpected(true);
		for (i = 0; i < cfg.procs; i++)
			if (!ctl->slot[i].pid)
				spawn(i);
		if (!killed && now_ns() >= kill_at) {
			kill_one(rng);
			killed = true;
		}
		usleep(5000);
	}
}

/* Operations started, at most --ops. */
static unsigned long ops_done(void)
{
	unsigned long n = __atomic_load_n(&ctl->ops_total, __ATOMIC_RELAXED);

	return ctl->max_ops && n > ctl->max_ops ? ctl->max_ops : n;
}

static void print_totals(double secs)
{
	unsigned long sum[NR_OPS] = { 0 };
	struct memmgr_stats st = mm_stats(parent_fd);
	unsigned int i, k;

	for (i = 0; i < cfg.procs; i++)
		for (k = 0; k < NR_OPS; k++)
			sum[k] += ctl->slot[i].ops[k];
	ksft_print_msg("%lu operations in %.1f s (seed %lu, %u processes x %u threads)\n",
		       ops_done(), secs, cfg.seed, cfg.procs, cfg.threads);
	for (k = 0; k < NR_OPS; k++)
		ksft_print_msg("  %-34s %lu\n", op_names[k], sum[k]);
	ksft_print_msg("  %-34s %llu (%llu bytes)\n", "evictions (kernel)",
		       st.pool[ST].evictions - st0.pool[ST].evictions,
		       st.pool[ST].evicted_bytes - st0.pool[ST].evicted_bytes);
	ksft_print_msg("  %-34s %llu storage, %llu exec\n",
		       "declined (kernel)",
		       st.pool[ST].declined - st0.pool[ST].declined,
		       st.pool[EX].declined - st0.pool[EX].declined);
	ksft_print_msg("  %-34s %llu storage, %llu exec\n", "held (kernel)",
		       st.pool[ST].held - st0.pool[ST].held,
		       st.pool[EX].held - st0.pool[EX].held);
	ksft_print_msg("  %-34s %lu\n", "failures", ctl->failures);
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--seed N] [--seconds S] [--ops N] [--procs P] [--threads T] [--phase-ms MS]\n",
		prog);
	exit(KSFT_FAIL);
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "ops", required_argument, NULL, 'o' },
		{ "procs", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 'n' },
		{ "phase-ms", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	cfg.seed = time(NULL);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			cfg.seed = strtoul(optarg, NULL, 0);
			break;
		case 't':
			cfg.seconds = strtoul(optarg, NULL, 0);
			break;
		case 'o':
			cfg.ops = strtoul(optarg, NULL, 0);
			break;
		case 'p':
			cfg.procs = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			cfg.threads = strtoul(optarg, NULL, 0);
			break;
		case 'm':
			cfg.phase_ms = strtoul(optarg, NULL, 0);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc || !cfg.procs || cfg.procs > MAX_PROCS ||
	    !cfg.threads || cfg.threads > MAX_THREADS || !cfg.phase_ms ||
	    !cfg.seconds)
		usage(argv[0]);
}

static void setup(void)
{
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	memset(ctl, 0, sizeof(*ctl));
	ctl->max_ops = cfg.ops;
	parent_fd = open(DEV, O_RDWR | O_CLOEXEC);
	if (parent_fd < 0)
		ksft_exit_fail_msg(DEV ": %s (is memmgr.ko loaded?)\n",
				   strerror(errno));
	st0 = mm_stats(parent_fd);
	if (st0.pool[ST].used || st0.pool[EX].used || st0.waiters)
		ksft_exit_fail_msg("the device is not idle\n");
	if (st0.total < 64ULL * st0.page_size || st0.pool[ST].quota < 8ULL *
	    st0.page_size || st0.pool[EX].quota < 8ULL * st0.page_size)
		ksft_exit_fail_msg("the reserve is too small\n");
}

int main(int argc, char **argv)
{
	__u64 start, deadline, rng;
	int gen = 0;
	bool done = false, ok;
	unsigned long fails;
	unsigned int i;

	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	ksft_print_msg("seed %lu (run again with --seed %lu), %u s, %u processes x %u threads\n",
		       cfg.seed, cfg.seed, cfg.seconds, cfg.procs,
		       cfg.threads);
	setup();
	rng = seed_mix(cfg.seed, 0xffffffff);
	start = now_ns();
	deadline = start + cfg.seconds * NSEC;
	for (i = 0; i < cfg.procs; i++)
		spawn(i);

	while (!done) {
		fails = ctl->failures;
		run_phase(&rng, cfg.phase_ms, deadline);
		done = now_ns() >= deadline ||
		       (ctl->max_ops && ctl->ops_total >= ctl->max_ops);
		ok = pause_all(++gen);
		ok = ok && check_invariants("check");
		ksft_test_result(ok && ctl->failures == fails,
				 "phase %d (%lu operations so far): invariants, data, errnos\n",
				 gen, ops_done());
		if (!done)
			__atomic_store_n(&ctl->resume_gen, gen,
					 __ATOMIC_RELEASE);
	}
	fails = ctl->failures;
	ok = end_workers();
	ok = ok && check_idle();
	ksft_test_result(ok && ctl->failures == fails,
			 "every client gone: the device is idle\n");
	print_totals((now_ns() - start) / 1e9);
	ksft_set_plan(ksft_test_num());
	if (ctl->failures)
		ksft_exit_fail();
	ksft_exit_pass();
}
