// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr-demo: the story `make demo` tells, in the VM, against the loaded
 * module.  Each step prints what it does and the pools after it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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

#define MiB (1024ULL * 1024)

static int fd;

static void die(const char *what)
{
	fprintf(stderr, "memmgr-demo: %s: %s\n", what, strerror(errno));
	exit(1);
}

static struct memmgr_stats stats(void)
{
	struct memmgr_stats st;

	if (ioctl(fd, MEMMGR_IOC_STATS, &st))
		die("MEMMGR_IOC_STATS");
	return st;
}

/* The pools after each step, as memmgrctl shows them. */
static void show(void)
{
	fflush(stdout);
	if (system("memmgrctl stats"))
		fprintf(stderr, "memmgr-demo: memmgrctl stats failed\n");
	printf("\n");
}

static int alloc(__u32 pool, __u64 size, __u64 tag, __s64 timeout,
		 __u32 flags, struct memmgr_alloc *out)
{
	struct memmgr_alloc a = {
		.pool = pool, .flags = flags, .size = size, .tag = tag,
		.timeout_ms = timeout,
	};

	if (ioctl(fd, MEMMGR_IOC_ALLOC, &a))
		return -errno;
	if (out)
		*out = a;
	return 0;
}

static void must_alloc(__u32 pool, __u64 size, __u64 tag, __u32 flags,
		       struct memmgr_alloc *out)
{
	int ret = alloc(pool, size, tag, 0, flags, out);

	if (ret) {
		errno = -ret;
		die("MEMMGR_IOC_ALLOC");
	}
}

static void must_free(__u64 handle)
{
	struct memmgr_buf b = { .handle = handle };

	if (ioctl(fd, MEMMGR_IOC_FREE, &b))
		die("MEMMGR_IOC_FREE");
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *free_later(void *arg)
{
	usleep(500 * 1000);
	printf("    ... execution frees the 128 MiB it borrowed\n");
	must_free(*(__u64 *)arg);
	return NULL;
}

static sigjmp_buf jmp;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(jmp, 1);
}

int main(void)
{
	struct memmgr_alloc e1, e2, s1 = { 0 }, s[5];
	unsigned char *maps[5];
	struct memmgr_stats st;
	pthread_t thread;
	__u64 S, E;
	double t0;
	pid_t pid;
	int i, ret;

	fd = open("/dev/memmgr", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "memmgr-demo: /dev/memmgr: %s (is memmgr.ko loaded?)\n",
			strerror(errno));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	st = stats();
	S = st.pool[MEMMGR_POOL_STORAGE].quota;
	E = st.pool[MEMMGR_POOL_EXEC].quota;
	if (S < 512 * MiB || E < 512 * MiB) {
		fprintf(stderr, "memmgr-demo: load memmgr with total=1G or more\n");
		return 1;
	}

	printf("1. memmgr reserved %llu MiB at load and split it 50/50:\n",
	       st.total / MiB);
	show();

	printf("2. Execution takes its whole quota (%llu MiB), then 128 MiB more:\n"
	       "   it borrows free storage memory.\n", E / MiB);
	must_alloc(MEMMGR_POOL_EXEC, E, 1, 0, &e1);
	must_alloc(MEMMGR_POOL_EXEC, 128 * MiB, 1, 0, &e2);
	show();

	printf("3. Storage asks for all of its quota (%llu MiB), holding up to 5 s:\n"
	       "   it cannot have what execution borrowed, so it waits.\n",
	       S / MiB);
	pthread_create(&thread, NULL, free_later, &e2.handle);
	t0 = now();
	ret = alloc(MEMMGR_POOL_STORAGE, S, 100, 5000, 0, &s1);
	pthread_join(thread, NULL);
	if (ret) {
		errno = -ret;
		die("the held storage request");
	}
	printf("    granted after %.2f s, once the borrowed memory came back\n",
	       now() - t0);
	show();

	printf("4. Storage is full. Five 1/4-quota buffers are asked for: page 1\n"
	       "   pinned, pages 2-5 unpinned (evictable). Each mapped and written.\n");
	must_free(s1.handle);
	for (i = 0; i < 5; i++) {
		must_alloc(MEMMGR_POOL_STORAGE, S / 4, i + 1,
			   i ? MEMMGR_ALLOC_UNPINNED : 0, &s[i]);
		maps[i] = mmap(NULL, s[i].granted, PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, s[i].offset);
		if (maps[i] == MAP_FAILED)
			die("mmap");
		memset(maps[i], 'a' + i, s[i].granted);
	}
	printf("   The fifth did not fit: one unpinned buffer was evicted at random.\n");
	for (i = 0; i < 5; i++) {
		struct memmgr_lookup l = { .tag = i + 1 };
		unsigned char *p;

		ret = ioctl(fd, MEMMGR_IOC_LOOKUP, &l) ? errno : 0;
		printf("    page %d: %s", i + 1,
		       ret == ESTALE ? "evicted (LOOKUP: ESTALE)" : "resident");
		if (ret == ESTALE) {
			p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd,
				 s[i].offset);
			if (p == MAP_FAILED)
				printf(", new mmap refused");
			signal(SIGBUS, on_sigbus);
			if (sigsetjmp(jmp, 1))
				printf(", old mapping: SIGBUS");
			else
				printf(", old mapping reads '%c'!", *maps[i]);
		} else {
			printf(", reads '%c'", *maps[i]);
		}
		printf("%s\n", i == 0 ? " (pinned)" : "");
	}
	show();

	printf("5. Execution frees its %llu MiB. A child process takes 256 MiB of\n"
	       "   execution memory and is killed with SIGKILL while it holds it:\n",
	       E / MiB);
	must_free(e1.handle);
	pid = fork();
	if (!pid) {
		int cfd = open("/dev/memmgr", O_RDWR);
		struct memmgr_alloc a = {
			.pool = MEMMGR_POOL_EXEC, .size = 256 * MiB, .tag = 7,
		};

		if (cfd < 0 || ioctl(cfd, MEMMGR_IOC_ALLOC, &a))
			_exit(1);
		pause();
		_exit(0);
	}
	do {
		usleep(10000);
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			fprintf(stderr, "memmgr-demo: the child failed\n");
			return 1;
		}
		st = stats();
	} while (st.pool[MEMMGR_POOL_EXEC].used < 256 * MiB);
	printf("   while it runs:\n");
	show();
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	printf("   after kill -9, its memory is back in the pool:\n");
	show();
	close(fd);
	return 0;
}
