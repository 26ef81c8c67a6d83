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
 * by a signal), FREE, PIN, UNPIN, LOOKUP, RELEASE, RETAG, batches of
 * allocations (ALLOC_MANY) and frees (FREE_MANY), some with a bad entry
 * among good ones where the batch must stop, mappings, reads and writes of
 * a pattern derived from each buffer's handle while other threads evict,
 * and invalid calls that must fail with their errno.  Every
 * phase (default 2 s) the parent kills one worker with SIGKILL in the
 * middle of whatever it does and starts another, then pauses all workers
 * and checks the invariants against MEMMGR_IOC_STATS.  At the end every
 * worker exits and the device must be idle again.
 *
 * Half of the workers (every other slot, which half chosen by the seed and
 * printed) map their file's state area right after opening it, before any
 * ALLOC.  Their threads pin and unpin mostly by compare-and-swap on the
 * buffer's word, as uapi/linux/memmgr.h says, and sometimes with the
 * ioctls, on the same words: a word found EVICTING, or PARKED with its
 * last pin, goes to the ioctl; one found GONE counts as ESTALE.  After a
 * pin by compare-and-swap they read the buffer, which must not be evicted
 * meanwhile.  Rarely one writes garbage (another generation) into the
 * word of an unpinned buffer of its own: from then on that buffer is
 * never evicted, counts as pinned, its PIN and UNPIN fail with EIO and a
 * pin by compare-and-swap is refused; FREE works.  Their invalid calls
 * include mappings of the area that are private, executable or past its
 * end; the other workers check that mapping it once they hold storage
 * fails with EBUSY.
 *
 * Failures: a read that returns anything but what this thread wrote (or
 * zeros in a buffer never written), SIGBUS on a buffer that cannot have
 * been evicted or freed, an errno the ABI does not give for that call, a
 * state word other than the model says (after ALLOC, FREE, at a pin or
 * unpin, at a pause), a process whose account differs from its file's
 * use, storage pinned (STATS) other than the pinned and garbage buffers
 * of the model, or a broken invariant.  Prints TAP; exits non-zero on any
 * failure.
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
/* The most entries in a batch of the stress test. */
#define MAX_BATCH	8
/* What an entry's out fields hold until the kernel writes them. */
#define SENT		0x5a5a5a5a5a5a5a5aULL
#define NSEC		1000000000ULL
/* Every flag of a state word; the generation is above them. */
#define STATE_LOW	0xffffffffULL
/* Compare-and-swap attempts on a word before the ioctl is used instead. */
#define CAS_TRIES	64

enum op_kind {
	OP_ALLOC_ST, OP_ALLOC_EX, OP_GRANTED, OP_EAGAIN, OP_ETIMEDOUT,
	OP_EINTR, OP_FOREVER, OP_FREE, OP_FREE_MAPPED, OP_PIN, OP_PIN_CAS,
	OP_PIN_BUSY, OP_PINNED_READ, OP_UNPIN, OP_UNPIN_CAS, OP_UNPIN_PARKED,
	OP_GARBAGE, OP_GARBAGE_EIO, OP_GARBAGE_REFUSED, OP_LOOKUP, OP_RELEASE,
	OP_ALLOC_MANY, OP_BATCH_STOPPED, OP_FREE_MANY,
	OP_RETAG, OP_MMAP, OP_MMAP_PART, OP_MUNMAP, OP_READ, OP_WRITE,
	OP_INVALID, OP_SIGBUS, OP_ESTALE, OP_EVICTED, OP_KILLED,
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
	[OP_PIN_CAS] = "  by compare-and-swap",
	[OP_PIN_BUSY] = "  word EVICTING or busy: PIN",
	[OP_PINNED_READ] = "  read after the swap",
	[OP_UNPIN] = "unpin",
	[OP_UNPIN_CAS] = "  by compare-and-swap",
	[OP_UNPIN_PARKED] = "  PARKED, last pin: UNPIN",
	[OP_GARBAGE] = "garbage written in a state word",
	[OP_GARBAGE_EIO] = "  PIN/UNPIN of it: EIO",
	[OP_GARBAGE_REFUSED] = "  pin by swap refused",
	[OP_LOOKUP] = "lookup",
	[OP_RELEASE] = "release",
	[OP_ALLOC_MANY] = "alloc batch (entries counted above)",
	[OP_BATCH_STOPPED] = "  stopped at a bad entry",
	[OP_FREE_MANY] = "free batch",
	[OP_RETAG] = "retag",
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
	__u64 pinned;			/* storage pinned or with garbage */
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
	bool garbage;		/* its state word holds garbage: pinned */
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
	__u64 *state;		/* its file's state area, or NULL */
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

/* Does the worker in @slot map its file's state area?  Half of them do. */
static bool state_slot(int slot)
{
	return (slot + cfg.seed) % 2;
}

/* The state word of storage buffer @b, in a file with a state area. */
static __u64 *word_of(struct proc *pr, const struct mbuf *b)
{
	return &pr->state[b->offset / pr->pg];
}

/* The generation of @handle, where a state word has it. */
static __u64 gen_of(__u64 handle)
{
	return handle >> MEMMGR_STATE_GEN_SHIFT << MEMMGR_STATE_GEN_SHIFT;
}

static __u64 word_load(const __u64 *w)
{
	return __atomic_load_n(w, __ATOMIC_ACQUIRE);
}

/* Compare-and-swap: true if *@w was *@old (now @new), else *@old is *@w. */
static bool word_cas(__u64 *w, __u64 *old, __u64 new)
{
	return __atomic_compare_exchange_n(w, old, new, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
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
		if (b->pins || b->garbage)
			fail(pr, "buffer %#llx evicted with %u pins%s",
			     b->handle, b->pins,
			     b->garbage ? ", garbage in its word" : "");
		mark_evicted(t, b);
	}
	return ret;
}

/* A SIGBUS on @b: only an evicted storage buffer may give one. */
static void got_sigbus(struct thr *t, struct mbuf *b)
{
	count(t->pr, OP_SIGBUS);
	if (b->pool != ST || b->pins || b->garbage) {
		fail(t->pr, "SIGBUS on %s buffer %#llx (%u pins%s)",
		     b->pool == ST ? "a pinned storage" : "an exec",
		     b->handle, b->pins,
		     b->garbage ? ", garbage in its word" : "");
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

/*
 * The word of a storage buffer just granted: its generation with one pin
 * (the kernel may have parked it) or none (it may be being evicted, or
 * gone already: an ALLOC may evict the one before it in a batch).
 */
static void check_new_word(struct thr *t, const struct mbuf *b)
{
	__u64 gen = gen_of(b->handle), w = word_load(word_of(t->pr, b));
	bool ok;

	if (b->pins)
		ok = (w & ~MEMMGR_STATE_PARKED) == (gen | 1);
	else
		ok = w == gen || w == (gen | MEMMGR_STATE_EVICTING) ||
		     w == (gen | MEMMGR_STATE_GONE);
	if (!ok)
		fail(t->pr, "word of buffer %#llx after ALLOC (%u pins): %#llx",
		     b->handle, b->pins, w);
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
	if (pr->state && b->pool == ST)
		check_new_word(t, b);
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

/* A random request: storage tags are new, exec tags one of four. */
static void rand_request(struct thr *t, struct memmgr_alloc *a)
{
	*a = (struct memmgr_alloc){ .pool = rnd(&t->rng, 2) };
	a->size = rand_size(t, a->pool);
	a->timeout_ms = rand_timeout(t);
	if (a->pool == ST) {
		a->tag = (__u64)t->idx << 40 | t->next_tag++;
		a->flags = rnd(&t->rng, 2) ? MEMMGR_ALLOC_UNPINNED : 0;
	} else {
		a->tag = (__u64)t->idx << 40 | 1ULL << 39 | rnd(&t->rng, 4);
	}
}

static void op_alloc(struct thr *t)
{
	struct proc *pr = t->pr;
	struct memmgr_alloc a;
	__u64 t0;
	int err;

	rand_request(t, &a);
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

/*
 * After FREE of a storage buffer its word is GONE and FREED with its
 * generation, unless another thread's new buffer took the offset since
 * (another generation).
 */
static void check_freed_word(struct thr *t, const struct mbuf *b)
{
	__u64 gen = gen_of(b->handle), w = word_load(word_of(t->pr, b));

	if ((w & ~STATE_LOW) == gen &&
	    w != (gen | MEMMGR_STATE_GONE | MEMMGR_STATE_FREED))
		fail(t->pr, "word of buffer %#llx after FREE%s: %#llx",
		     b->handle, b->garbage ? " (garbage)" : "", w);
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
	else if (t->pr->state && b->pool == ST)
		check_freed_word(t, b);
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

/* The outcome of a PIN ioctl, or of a word found GONE (as ESTALE). */
static void pin_done(struct thr *t, struct mbuf *b, int err, const char *how)
{
	if (!err && !b->evicted) {
		b->pins++;
	} else if (err == ESTALE && !b->pins) {
		count(t->pr, OP_ESTALE);
		mark_evicted(t, b);
	} else {
		fail(t->pr, "%s of %#llx (%u pins%s): %s", how, b->handle,
		     b->pins, b->evicted ? ", evicted" : "", strerror(err));
	}
}

static void rand_range(struct thr *t, __u64 size, __u64 *off, __u64 *len);

/* Read part of @b, just pinned by swap: no eviction may take it now. */
static void pinned_read(struct thr *t, struct mbuf *b)
{
	__u64 off, len, bad, got;
	int ret;

	if (!b->map || !b->written || b->evicted)
		return;
	count(t->pr, OP_PINNED_READ);
	rand_range(t, b->granted, &off, &len);
	ret = access_range(b, b->map, 0, off, len, CHECK_PAT, &bad, &got);
	access_done(t, b, ret, bad, got, CHECK_PAT);
}

/*
 * Pin @b by compare-and-swap on its word: from its generation with none
 * of EVICTING, GONE, FREED to one pin more, with USED.  GONE: it was
 * evicted (as ESTALE).  EVICTING, or a word that keeps changing: the PIN
 * ioctl decides.  Only this thread pins its buffers, so the word's pins
 * are the model's; the kernel only parks a pinned word.
 */
static void pin_cas(struct thr *t, struct mbuf *b)
{
	struct proc *pr = t->pr;
	__u64 *w = word_of(pr, b), gen = gen_of(b->handle), old = word_load(w);
	const __u64 not_live = MEMMGR_STATE_EVICTING | MEMMGR_STATE_GONE |
			       MEMMGR_STATE_FREED;
	unsigned int i;

	count(pr, OP_PIN_CAS);
	for (i = 0; i < CAS_TRIES; i++) {
		if (old == (gen | MEMMGR_STATE_GONE)) {
			pin_done(t, b, ESTALE, "pin by swap");
			return;
		}
		if (old == (gen | MEMMGR_STATE_EVICTING))
			break;
		if ((old & ~STATE_LOW) != gen || (old & not_live) ||
		    (old & MEMMGR_STATE_PINS) != b->pins ||
		    (!b->pins && (old & MEMMGR_STATE_PARKED))) {
			fail(pr, "pin by swap of %#llx (%u pins%s): word %#llx",
			     b->handle, b->pins,
			     b->evicted ? ", evicted" : "", old);
			return;
		}
		if (word_cas(w, &old, (old + 1) | MEMMGR_STATE_USED)) {
			pin_done(t, b, 0, "pin by swap");
			pinned_read(t, b);
			return;
		}
	}
	count(pr, OP_PIN_BUSY);
	pin_done(t, b, mm_buf(pr, MEMMGR_IOC_PIN, b->handle, 0),
		 "PIN of a word EVICTING or busy");
}

/*
 * A buffer with garbage in its word: PIN and UNPIN fail with EIO, and the
 * protocol refuses a pin by swap, as the word keeps a generation not the
 * buffer's (the kernel writes a word only with its buffer's generation:
 * had it evicted or freed this one, or taken the garbage for a word of
 * its own, the swap would be allowed or find GONE).
 */
static void garbage_pin(struct thr *t, struct mbuf *b, bool pin)
{
	struct proc *pr = t->pr;
	__u64 w;
	int err;

	if (pin && pr->state && rnd(&t->rng, 2)) {
		w = word_load(word_of(pr, b));
		if ((w & ~STATE_LOW) == gen_of(b->handle))
			fail(pr, "garbage word of %#llx is now its own: %#llx",
			     b->handle, w);
		else
			count(pr, OP_GARBAGE_REFUSED);
		return;
	}
	err = mm_buf(pr, pin ? MEMMGR_IOC_PIN : MEMMGR_IOC_UNPIN, b->handle,
		     0);
	if (err != EIO)
		fail(pr, "%s of %#llx, garbage in its word: %s, want EIO",
		     pin ? "PIN" : "UNPIN", b->handle, strerror(err));
	else
		count(pr, OP_GARBAGE_EIO);
}

/* In a file with a state area, 3 in 4 pins are made by swap. */
static void op_pin(struct thr *t)
{
	struct mbuf *b = pick(t, ST, false);

	if (!b || b->pins >= MAX_PINS)
		return;
	count(t->pr, OP_PIN);
	if (b->garbage)
		garbage_pin(t, b, true);
	else if (t->pr->state && rnd(&t->rng, 4))
		pin_cas(t, b);
	else
		pin_done(t, b, mm_buf(t->pr, MEMMGR_IOC_PIN, b->handle, 0),
			 "PIN");
}

static void unpin_ioctl(struct thr *t, struct mbuf *b)
{
	int err = mm_buf(t->pr, MEMMGR_IOC_UNPIN, b->handle, 0);

	if (err)
		fail(t->pr, "UNPIN of %#llx (%u pins): %s", b->handle,
		     b->pins, strerror(err));
	else
		b->pins--;
}

/*
 * Unpin @b by compare-and-swap to one pin less, but for the last pin of
 * a word the kernel parked: that one is the UNPIN ioctl's.
 */
static void unpin_cas(struct thr *t, struct mbuf *b)
{
	struct proc *pr = t->pr;
	__u64 *w = word_of(pr, b), gen = gen_of(b->handle), old = word_load(w);
	const __u64 not_live = MEMMGR_STATE_EVICTING | MEMMGR_STATE_GONE |
			       MEMMGR_STATE_FREED;
	unsigned int i;

	count(pr, OP_UNPIN_CAS);
	for (i = 0; i < CAS_TRIES; i++) {
		if ((old & ~STATE_LOW) != gen || (old & not_live) ||
		    (old & MEMMGR_STATE_PINS) != b->pins) {
			fail(pr, "unpin by swap of %#llx (%u pins): word %#llx",
			     b->handle, b->pins, old);
			return;
		}
		if ((old & MEMMGR_STATE_PARKED) && b->pins == 1) {
			count(pr, OP_UNPIN_PARKED);
			break;
		}
		if (word_cas(w, &old, old - 1)) {
			b->pins--;
			return;
		}
	}
	unpin_ioctl(t, b);
}

static void op_unpin(struct thr *t)
{
	struct mbuf *b = pick(t, ST, false);

	if (!b || (!b->pins && !b->garbage))
		return;
	count(t->pr, OP_UNPIN);
	if (b->garbage)
		garbage_pin(t, b, false);
	else if (t->pr->state && rnd(&t->rng, 4))
		unpin_cas(t, b);
	else
		unpin_ioctl(t, b);
}

/*
 * Garbage in the word of an unpinned buffer of ours: another generation
 * (half the time with random flags too), by a swap from a word the kernel
 * could evict from, so that an eviction is not overwritten.  From then on
 * the buffer is pinned for good (the model counts it so) until FREE.
 */
static void op_garbage(struct thr *t)
{
	struct proc *pr = t->pr;
	struct mbuf *b = pick(t, ST, false);
	__u64 *w, gen, old, bad;
	unsigned int i;

	if (!b || b->pins || b->evicted || b->garbage)
		return;
	w = word_of(pr, b);
	gen = gen_of(b->handle);
	old = word_load(w);
	for (i = 0; i < CAS_TRIES; i++) {
		if (old == (gen | MEMMGR_STATE_GONE)) {
			count(pr, OP_ESTALE);
			mark_evicted(t, b);
			return;
		}
		if (old == (gen | MEMMGR_STATE_EVICTING)) {
			old = word_load(w);
			continue;
		}
		if ((old & ~MEMMGR_STATE_USED) != gen) {
			fail(pr, "word of unpinned buffer %#llx: %#llx",
			     b->handle, old);
			return;
		}
		bad = old ^ (1 + rnd(&t->rng, STATE_LOW)) <<
		      MEMMGR_STATE_GEN_SHIFT;
		if (rnd(&t->rng, 2))
			bad = (bad & ~STATE_LOW) | rnd(&t->rng, STATE_LOW + 1);
		if (word_cas(w, &old, bad)) {
			b->garbage = true;
			count(pr, OP_GARBAGE);
			return;
		}
	}
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
		if (c->pool == EX || c->pins || c->garbage)
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

static struct mbuf *find(struct thr *t, __u64 handle)
{
	unsigned int i;

	for (i = 0; i < t->nbuf; i++)
		if (t->buf[i].handle == handle)
			return &t->buf[i];
	return NULL;
}

static int invalid_alloc(struct thr *t, struct memmgr_alloc *a);

/*
 * ALLOC_MANY of up to MAX_BATCH random requests, mostly with timeout 0;
 * sometimes an invalid entry among them, where the batch must stop.  The
 * entries before the one that failed are granted, each checked as its
 * ALLOC would be; the one that failed gets the errno its ALLOC would;
 * it and those after it keep their out fields as they were.
 */
static void op_alloc_many(struct thr *t)
{
	struct proc *pr = t->pr;
	struct memmgr_alloc e[MAX_BATCH + 1];
	unsigned int room = MAX_BUFS - t->nbuf, n, i, bad = ~0U;
	__s64 longest = 0;
	struct memmgr_batch b;
	int err, want_bad = 0;
	__u64 t0, ns;

	if (!room)
		return;
	n = 1 + rnd(&t->rng, room < MAX_BATCH ? room : MAX_BATCH);
	for (i = 0; i < n; i++) {
		rand_request(t, &e[i]);
		if (rnd(&t->rng, 4))
			e[i].timeout_ms = 0;
		if (e[i].timeout_ms == MEMMGR_WAIT_FOREVER ||
		    (longest != MEMMGR_WAIT_FOREVER &&
		     e[i].timeout_ms > longest))
			longest = e[i].timeout_ms;
	}
	if (!rnd(&t->rng, 4)) {
		bad = rnd(&t->rng, n + 1);
		memmove(&e[bad + 1], &e[bad], (n - bad) * sizeof(e[0]));
		want_bad = invalid_alloc(t, &e[bad]);
		n++;
	}
	for (i = 0; i < n; i++) {
		e[i].handle = SENT;
		e[i].offset = SENT;
		e[i].granted = SENT;
	}
	b = (struct memmgr_batch){
		.entries = (uintptr_t)e, .count = n, .done = ~0U,
	};
	count(pr, OP_ALLOC_MANY);
	hold_start(t, longest);
	t0 = now_ns();
	err = ioctl(pr->fd, MEMMGR_IOC_ALLOC_MANY, &b) ? errno : 0;
	ns = now_ns() - t0;
	__atomic_store_n(&t->holding, 0, __ATOMIC_RELEASE);

	if (b.done > n || (err && b.done == n) || (!err && b.done != n)) {
		fail(pr, "ALLOC_MANY of %u: %s, done %u", n, strerror(err),
		     b.done);
		if (b.done > n)
			b.done = n;
	}
	for (i = 0; i < b.done; i++) {
		count(pr, e[i].pool == ST ? OP_ALLOC_ST : OP_ALLOC_EX);
		if (i == bad || e[i].handle == SENT || t->nbuf == MAX_BUFS) {
			fail(pr, "ALLOC_MANY entry %u of %u (bad %d): done, handle %#llx",
			     i, n, i == bad, e[i].handle);
			continue;
		}
		alloc_granted(t, &e[i]);
	}
	if (!err)
		return;
	i = b.done;
	if (i < n) {
		count(pr, e[i].pool == ST ? OP_ALLOC_ST : OP_ALLOC_EX);
		if (i != bad)
			alloc_failed(t, &e[i], err, ns);
		else if (err != want_bad)
			fail(pr, "ALLOC_MANY entry %u, invalid: %s, want %s", i,
			     strerror(err), strerror(want_bad));
		else
			count(pr, OP_BATCH_STOPPED);
	}
	for (; i < n; i++)
		if (e[i].handle != SENT || e[i].offset != SENT ||
		    e[i].granted != SENT)
			fail(pr, "ALLOC_MANY entry %u of %u written, done %u: handle %#llx",
			     i, n, b.done, e[i].handle);
}

/*
 * FREE_MANY of some of this thread's buffers, unmapped first; sometimes
 * with a handle this file does not have (one unknown, or one freed by an
 * earlier entry) among them, where it must stop: the buffers after it
 * stay.
 */
static void op_free_many(struct thr *t)
{
	struct proc *pr = t->pr;
	unsigned int n, i, start, bad = ~0U;
	__u64 h[MAX_BUFS + 1];
	struct memmgr_batch b;
	struct mbuf *m;
	int err;

	if (!t->nbuf)
		return;
	n = 1 + rnd(&t->rng, t->nbuf);
	start = rnd(&t->rng, t->nbuf);
	for (i = 0; i < n; i++) {
		m = &t->buf[(start + i) % t->nbuf];
		unmap(t, m);
		h[i] = m->handle;
	}
	if (!rnd(&t->rng, 4)) {
		bad = rnd(&t->rng, n + 1);
		memmove(&h[bad + 1], &h[bad], (n - bad) * sizeof(h[0]));
		h[bad] = bad && rnd(&t->rng, 2) ? h[rnd(&t->rng, bad)] :
			 (1ULL << 52) + rnd(&t->rng, 1ULL << 40);
		n++;
	}
	b = (struct memmgr_batch){
		.entries = (uintptr_t)h, .count = n, .done = ~0U,
	};
	err = ioctl(pr->fd, MEMMGR_IOC_FREE_MANY, &b) ? errno : 0;
	count(pr, OP_FREE_MANY);
	if (bad < n ? err != ENOENT || b.done != bad : err || b.done != n)
		fail(pr, "FREE_MANY of %u (bad %d): %s, done %u", n, (int)bad,
		     strerror(err), b.done);
	else if (bad < n)
		count(pr, OP_BATCH_STOPPED);
	if (b.done > n)
		b.done = n;
	for (i = 0; i < b.done; i++) {
		m = find(t, h[i]);
		if (!m) {
			fail(pr, "FREE_MANY freed %#llx, not a buffer here",
			     h[i]);
			continue;
		}
		count(pr, OP_FREE);
		if (!m->evicted)
			__atomic_sub_fetch(&pr->acct[m->pool], m->granted,
					   __ATOMIC_RELAXED);
		forget(t, m);
	}
}

/*
 * RETAG of a storage buffer: to a new tag, to its own, or (an error) to
 * another storage buffer's.  Only a buffer with no pin may have been
 * evicted (ESTALE).  After a move its old tag is no one's.
 */
static void op_retag(struct thr *t)
{
	struct mbuf *m = pick(t, ST, false), *c = NULL;
	struct proc *pr = t->pr;
	struct memmgr_retag r;
	struct memmgr_lookup l;
	unsigned int kind = rnd(&t->rng, 8), i;
	__u64 old;
	int err;

	if (!m)
		return;
	if (kind == 1)
		for (i = 0; i < t->nbuf && !c; i++)
			if (t->buf[i].pool == ST && &t->buf[i] != m)
				c = &t->buf[i];
	r = (struct memmgr_retag){
		.handle = m->handle,
		.tag = kind == 0 ? m->tag : c ? c->tag :
		       (__u64)t->idx << 40 | t->next_tag++,
	};
	err = ioctl(pr->fd, MEMMGR_IOC_RETAG, &r) ? errno : 0;
	count(pr, OP_RETAG);
	if (err == ESTALE && !m->pins && !m->garbage) {
		count(pr, OP_ESTALE);
		mark_evicted(t, m);
		return;
	}
	if (c) {
		if (err != EEXIST)
			fail(pr, "RETAG of %#llx to the tag of %#llx: %s, want EEXIST",
			     m->handle, c->handle, strerror(err));
		return;
	}
	/* To its own tag, an evicted buffer may say 0 or ESTALE. */
	if (err || (m->evicted && r.tag != m->tag)) {
		fail(pr, "RETAG of %#llx (%u pins%s): %s", m->handle, m->pins,
		     m->evicted ? ", evicted" : "", strerror(err));
		return;
	}
	old = m->tag;
	m->tag = r.tag;
	err = old == r.tag ? ENOENT : mm_lookup(pr, old, &l);
	if (err != ENOENT)
		fail(pr, "LOOKUP of tag %#llx after RETAG of %#llx away: %s",
		     old, m->handle, strerror(err));
	check_lookup(t, m);
}

/* mmap() failed with EINVAL: only an evicted buffer may say so. */
static void map_refused(struct thr *t, struct mbuf *b, int err)
{
	if (err != EINVAL || b->pool != ST || b->pins || b->garbage) {
		fail(t->pr, "mmap of %s buffer %#llx (%u pins%s): %s",
		     b->pool == ST ? "storage" : "exec", b->handle, b->pins,
		     b->garbage ? ", garbage in its word" : "",
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

static int mm_retag(struct proc *pr, __u64 handle, __u64 tag, __u64 flags,
		    __u64 reserved)
{
	struct memmgr_retag r = {
		.handle = handle, .tag = tag, .flags = flags,
		.reserved = reserved,
	};

	return ioctl(pr->fd, MEMMGR_IOC_RETAG, &r) ? errno : 0;
}

/* RETAG of a buffer of ours (or an unknown handle) with a bad field. */
static int invalid_retag(struct thr *t, const char **what)
{
	struct mbuf *b = pick(t, ST, false);
	__u64 bit = 1ULL << rnd(&t->rng, 64);
	__u64 handle = b ? b->handle : 1;
	__u64 tag = (__u64)t->idx << 40 | 0xfffffffffULL;

	if (rnd(&t->rng, 2)) {
		*what = "RETAG with a flag";
		return mm_retag(t->pr, handle, tag, bit, 0);
	}
	*what = "RETAG with a reserved bit";
	return mm_retag(t->pr, handle, tag, 0, bit);
}

/*
 * A batch whose header is bad (a flag, a reserved bit, count above
 * MEMMGR_BATCH_MAX: EINVAL) or whose entries cannot be read (EFAULT),
 * over entries that would work: ALLOC_MANY of a valid request, FREE_MANY
 * of one of our buffers (whose FREE would break the model at the next
 * LOOKUP or pause).
 */
static int invalid_batch(struct thr *t, unsigned long cmd, int *want,
			 const char **what)
{
	struct memmgr_alloc a = {
		.pool = EX, .size = t->pr->pg,
		.tag = (__u64)t->idx << 40 | 0xfffffffffULL,
	};
	struct mbuf *m = pick(t, -1, false);
	__u64 h = m ? m->handle : 1;
	struct memmgr_batch b = {
		.entries = cmd == MEMMGR_IOC_ALLOC_MANY ? (uintptr_t)&a :
			   (uintptr_t)&h,
		.count = 1,
	};

	*want = EINVAL;
	switch (rnd(&t->rng, 5)) {
	case 0:
		b.flags = 1U << rnd(&t->rng, 32);
		*what = "batch with a flag";
		break;
	case 1:
		b.reserved0 = 1U << rnd(&t->rng, 32);
		*what = "batch with reserved0";
		break;
	case 2:
		b.reserved[rnd(&t->rng, 2)] = 1ULL << rnd(&t->rng, 64);
		*what = "batch with a reserved bit";
		break;
	case 3:
		b.count = MEMMGR_BATCH_MAX + 1 +
			  rnd(&t->rng, 0xffffffffU - MEMMGR_BATCH_MAX);
		*what = "batch of more than MEMMGR_BATCH_MAX";
		break;
	default:
		b.entries = 0;
		*want = EFAULT;
		*what = "batch of NULL entries";
		break;
	}
	return ioctl(t->pr->fd, cmd, &b) ? errno : 0;
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
	switch (rnd(&t->rng, 13)) {
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
	case 9:
		want = EINVAL;
		got = invalid_retag(t, &what);
		break;
	case 10:
		b = pick(t, EX, false);
		want = b ? EINVAL : ENOENT;
		got = mm_retag(pr, b ? b->handle : t->last_freed ?
			       t->last_freed : (1ULL << 52) +
			       rnd(&t->rng, 1ULL << 40),
			       (__u64)t->idx << 40 | 0xfffffffffULL, 0, 0);
		what = b ? "RETAG of an exec buffer" :
		       "RETAG of an unknown handle";
		break;
	case 11:
		got = invalid_batch(t, MEMMGR_IOC_ALLOC_MANY, &want, &what);
		break;
	case 12:
		got = invalid_batch(t, MEMMGR_IOC_FREE_MANY, &want, &what);
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

/*
 * Invalid mappings of the state area.  A file with one: MAP_PRIVATE
 * (EINVAL), PROT_EXEC (EPERM), past the area's end (EINVAL).  A file
 * without one that holds storage (a buffer of this thread's, live or
 * evicted) may not make one (EBUSY).
 */
static void op_invalid_state_map(struct thr *t)
{
	struct proc *pr = t->pr;
	__u64 len = pr->pg, off = MEMMGR_STATE_OFFSET +
		    rnd(&t->rng, MEMMGR_STATE_SIZE / pr->pg) * pr->pg;
	int prot = PROT_READ | PROT_WRITE, flags = MAP_SHARED, want = EINVAL;
	const char *what;
	void *p;

	if (!pr->state) {
		if (!pick(t, ST, false))
			return;
		want = EBUSY;
		what = "of the state area, storage held";
	} else {
		switch (rnd(&t->rng, 3)) {
		case 0:
			flags = MAP_PRIVATE;
			what = "MAP_PRIVATE of the state area";
			break;
		case 1:
			prot |= PROT_EXEC;
			want = EPERM;
			what = "PROT_EXEC of the state area";
			break;
		default:
			off = MEMMGR_STATE_OFFSET + MEMMGR_STATE_SIZE - pr->pg;
			len = 2 * pr->pg;
			what = "past the end of the state area";
			break;
		}
	}
	count(pr, OP_INVALID);
	p = mmap(NULL, len, prot, flags, pr->fd, off);
	if (p != MAP_FAILED) {
		fail(pr, "mmap %s succeeded", what);
		munmap(p, len);
	} else if (errno != want) {
		fail(pr, "mmap %s: %s, want %s", what, strerror(errno),
		     strerror(want));
	}
}

/*
 * Invalid mappings: MAP_PRIVATE (EINVAL) and PROT_EXEC (EPERM); a third
 * of them of the state area.
 */
static void op_invalid_map(struct thr *t)
{
	struct mbuf *b = pick(t, -1, false);
	bool exec = rnd(&t->rng, 2);
	void *p;

	if (!rnd(&t->rng, 3)) {
		op_invalid_state_map(t);
		return;
	}
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
	__u64 r = rnd(&t->rng, 110);

	if (t->pr->state && !rnd(&t->rng, 200)) {
		op_garbage(t);
		return;
	}
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
	} else if (r < 100) {
		op_invalid_map(t);
	} else if (r < 104) {
		if (t->nbuf < MAX_BUFS)
			op_alloc_many(t);
		else
			op_free_many(t);
	} else if (r < 107) {
		op_free_many(t);
	} else {
		op_retag(t);
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
 * At a pause no one changes a word, so it is what the model says: garbage
 * keeps a generation not the buffer's; an evicted buffer's word is GONE;
 * a live one's has the model's pins, USED if it was pinned since, PARKED
 * only while pinned.
 */
static void check_word(struct thr *t, const struct mbuf *b)
{
	__u64 gen = gen_of(b->handle), w = word_load(word_of(t->pr, b));
	bool ok;

	if (b->garbage)
		ok = (w & ~STATE_LOW) != gen;
	else if (b->evicted)
		ok = w == (gen | MEMMGR_STATE_GONE);
	else
		ok = (w & ~(MEMMGR_STATE_USED | MEMMGR_STATE_PARKED)) ==
		     (gen | b->pins) &&
		     (b->pins || !(w & MEMMGR_STATE_PARKED));
	if (!ok)
		fail(t->pr, "word of %#llx at a pause (%u pins%s): %#llx",
		     b->handle, b->pins, b->garbage ? ", garbage" :
		     b->evicted ? ", evicted" : "", w);
}

/*
 * With every thread parked: learn which unpinned buffers were evicted,
 * then compare the account, the buffers and the file's use, and report
 * them with the storage bytes pinned (or with garbage in their word).
 */
static void reconcile(struct proc *pr, int gen)
{
	struct slot *s = &ctl->slot[pr->slot];
	__u64 sum[MEMMGR_NR_POOLS] = { 0 }, live[MEMMGR_NR_POOLS] = { 0 };
	__u64 pinned = 0;
	struct memmgr_stats st;
	unsigned int i, j, p;

	for (i = 0; i < pr->nthr; i++) {
		struct thr *t = &pr->thr[i];

		for (j = 0; j < t->nbuf; j++) {
			struct mbuf *b = &t->buf[j];

			if (b->pool == ST)
				check_lookup(t, b);
			if (b->pool == ST && pr->state)
				check_word(t, b);
			if (b->evicted)
				continue;
			sum[b->pool] += b->granted;
			live[b->pool]++;
			if (b->pool == ST && (b->pins || b->garbage))
				pinned += b->granted;
		}
	}
	s->pinned = pinned;
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

/* FREE_MANY of every buffer of @t at once. */
static void free_all_many(struct thr *t)
{
	struct memmgr_batch b;
	__u64 h[MAX_BUFS];
	unsigned int i, n = t->nbuf;
	int err;

	for (i = 0; i < n; i++) {
		unmap(t, &t->buf[i]);
		h[i] = t->buf[i].handle;
	}
	b = (struct memmgr_batch){
		.entries = (uintptr_t)h, .count = n, .done = ~0U,
	};
	err = ioctl(t->pr->fd, MEMMGR_IOC_FREE_MANY, &b) ? errno : 0;
	if (err || b.done != n)
		fail(t->pr, "FREE_MANY of all %u buffers at the end: %s, done %u",
		     n, strerror(err), b.done);
	else
		t->nbuf = 0;
}

/*
 * Half the workers free everything themselves (half of their threads with
 * one FREE_MANY); the rest leave it to exit.
 */
static void proc_end(struct proc *pr, __u64 *rng)
{
	struct memmgr_stats st;
	unsigned int i;

	if (rnd(rng, 2))
		return;
	for (i = 0; i < pr->nthr; i++) {
		struct thr *t = &pr->thr[i];

		if (t->nbuf && rnd(rng, 2))
			free_all_many(t);
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

/* Open a file; map its state area first if the slot's workers do. */
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
	/* All of it: the offsets of live and evicted entries add up. */
	if (state_slot(slot)) {
		void *p = mmap(NULL, MEMMGR_STATE_SIZE, PROT_READ | PROT_WRITE,
			       MAP_SHARED, pr->fd, MEMMGR_STATE_OFFSET);

		if (p == MAP_FAILED)
			fail(pr, "mmap of the state area of a new file: %s",
			     strerror(errno));
		else
			pr->state = p;
	}
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
	__u64 used[2] = { 0 }, acct[2] = { 0 }, live[2] = { 0 }, pinned = 0;
	struct memmgr_stats st = mm_stats(parent_fd);
	__u64 T = st.total, S = st.pool[ST].quota, E = st.pool[EX].quota;
	bool ok = true;
	unsigned int i, p;

	for (i = 0; i < cfg.procs; i++) {
		if (!ctl->slot[i].pid)
			continue;
		pinned += ctl->slot[i].pinned;
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
	/* Pinned in a word, by the ioctl or with garbage in the word alike. */
	CHECK(st.pool[ST].pinned == pinned,
	      "%s: storage pinned %llu, buffers pinned or with garbage %llu",
	      when, st.pool[ST].pinned, pinned);
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

static void print_state_slots(void)
{
	char list[4 * MAX_PROCS + 1] = "";
	unsigned int i, n = 0;

	for (i = 0; i < cfg.procs; i++)
		if (state_slot(i))
			n += snprintf(list + n, sizeof(list) - n, " %u", i);
	ksft_print_msg("workers with a state area (pins by swap):%s\n",
		       n ? list : " none");
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
	print_state_slots();
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
