// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection through /proc/thread-self/fail-nth: make the n-th
 * failslab or fail_page_alloc site of one operation fail, for n = 1, 2, ...
 * until the operation runs out of sites, and check each run fails cleanly
 * (a clean errno, nothing left loaded or charged) or succeeds.
 *
 *   memmgr_failnth insmod KO [PARAMS]	load memmgr.ko (not loaded yet)
 *   memmgr_failnth alloc		ALLOC, mmap, touch, FREE on both pools
 *
 * The debug kernel's failslab and fail_page_alloc must be set to fail
 * sleeping allocations of any order (memmgr_fault_test.sh does).  Prints
 * TAP and the kselftest totals line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/memmgr.h>

#define MAX_SITES	5000

struct outcome {
	int err;	/* 0 or the first errno the operation met */
	int step;	/* which step met it */
	int injected;	/* the n-th site was reached and failed */
};

static int set_failnth(int fd, unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	return pwrite(fd, buf, len, 0) == len ? 0 : -1;
}

/* fail-nth reads 0 once the n-th site has failed. */
static int failnth_consumed(int fd)
{
	char buf[16] = "";

	if (pread(fd, buf, sizeof(buf) - 1, 0) <= 0)
		return 0;
	return atoi(buf) == 0;
}

/* @fd: the module file, opened before fail-nth was set. */
static void op_insmod(int fd, const char *params, struct outcome *o)
{
	if (syscall(SYS_finit_module, fd, params, 0)) {
		o->err = errno;
		o->step = 1;
	}
}

/* ALLOC, mmap, write every page, munmap, FREE: in one pool. */
static void alloc_one(int fd, __u32 pool, struct outcome *o)
{
	struct memmgr_alloc a = { .pool = pool, .size = 64 << 10, .tag = 1 };
	struct memmgr_buf b = { 0 };
	void *p;

	if (ioctl(fd, MEMMGR_IOC_ALLOC, &a)) {
		o->err = errno;
		o->step = 1;
		return;
	}
	p = mmap(NULL, a.granted, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 a.offset);
	if (p == MAP_FAILED) {
		o->err = errno;
		o->step = 2;
	} else {
		memset(p, 0x3c, a.granted);
		munmap(p, a.granted);
	}
	b.handle = a.handle;
	if (ioctl(fd, MEMMGR_IOC_FREE, &b) && !o->err) {
		o->err = errno;
		o->step = 3;
	}
}

/* @fd: /dev/memmgr, opened before fail-nth was set. */
static void op_alloc(int fd, struct outcome *o)
{
	unsigned int pool;

	for (pool = 0; pool < MEMMGR_NR_POOLS && !o->err; pool++)
		alloc_one(fd, pool, o);
}

/* Run one operation in a child with fail-nth = n; return its outcome. */
static struct outcome run(char **argv, unsigned int n)
{
	struct outcome o = { .err = -1 };
	int pipefd[2];
	pid_t pid;

	if (pipe(pipefd))
		return o;
	pid = fork();
	if (!pid) {
		int insmod = !strcmp(argv[1], "insmod");
		int nth = open("/proc/thread-self/fail-nth", O_RDWR);
		struct outcome c = { 0 };
		int fd;

		/* Everything the operation needs is open before the count. */
		fd = insmod ? open(argv[2], O_RDONLY | O_CLOEXEC) :
			      open("/dev/memmgr", O_RDWR | O_CLOEXEC);
		if (nth < 0 || fd < 0 || set_failnth(nth, n))
			_exit(1);
		if (insmod)
			op_insmod(fd, argv[3] ? argv[3] : "", &c);
		else
			op_alloc(fd, &c);
		c.injected = failnth_consumed(nth);
		set_failnth(nth, 0);
		close(fd);
		_exit(write(pipefd[1], &c, sizeof(c)) != sizeof(c));
	}
	close(pipefd[1]);
	if (read(pipefd[0], &o, sizeof(o)) != sizeof(o))
		o.err = -1;
	close(pipefd[0]);
	waitpid(pid, NULL, 0);
	return o;
}

static int module_loaded(void)
{
	char line[256];
	FILE *f = fopen("/proc/modules", "r");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = !strncmp(line, "memmgr ", 7);
	fclose(f);
	return found;
}

static int pools_idle(void)
{
	int fd = open("/dev/memmgr", O_RDWR | O_CLOEXEC);
	struct memmgr_stats st;
	int idle;

	if (fd < 0)
		return 0;
	idle = !ioctl(fd, MEMMGR_IOC_STATS, &st) && !st.waiters &&
	       !st.pool[0].used && !st.pool[1].used && st.free == st.total;
	close(fd);
	return idle;
}

/* After one run: is everything as it should be? */
static int clean(char **argv, const struct outcome *o)
{
	int insmod = !strcmp(argv[1], "insmod");

	if (o->err && (!o->step || (o->err != ENOMEM && o->err != EINTR)))
		return 0;
	if (!insmod)
		return pools_idle();
	if (o->err)
		return !module_loaded();
	/* Loaded despite the fault: it must work, and unload. */
	return module_loaded() && pools_idle() &&
	       !syscall(SYS_delete_module, "memmgr", O_NONBLOCK);
}

int main(int argc, char **argv)
{
	unsigned int n, injected = 0, failed = 0, bad = 0;

	if (argc < 2 || (strcmp(argv[1], "alloc") &&
			 (strcmp(argv[1], "insmod") || argc < 3))) {
		fprintf(stderr, "usage: %s insmod KO [PARAMS] | alloc\n",
			argv[0]);
		return 2;
	}
	printf("TAP version 13\n");
	for (n = 1; n <= MAX_SITES; n++) {
		struct outcome o = run(argv, n);
		int ok = o.err >= 0 && clean(argv, &o);

		if (getenv("FAILNTH_DEBUG"))
			printf("# n=%u err=%d step=%d injected=%d\n", n, o.err,
			       o.step, o.injected);
		injected += o.injected;
		failed += o.err > 0;
		if (!ok) {
			bad++;
			printf("# fault %u: step %d failed with %s (%d), not cleanly\n",
			       n, o.step, o.err > 0 ? strerror(o.err) : "?", o.err);
		}
		if (!o.injected)
			break;
	}
	printf("%sok 1 %s: %u faults injected, %u clean failures, %u bad\n",
	       bad || n > MAX_SITES ? "not " : "", argv[1], injected, failed,
	       bad);
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:0 error:0\n",
	       !bad && n <= MAX_SITES, bad || n > MAX_SITES);
	return bad ? 1 : 0;
}
