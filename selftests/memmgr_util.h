/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by memmgr's kselftests: each ioctl as a call that returns
 * 0 or -errno, the statistics, module parameters, and SIGBUS probes.
 */
#ifndef MEMMGR_UTIL_H
#define MEMMGR_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/memmgr.h>

#define MM_DEV		"/dev/memmgr"
#define MM_PARAMS	"/sys/module/memmgr/parameters/"

static inline int mm_open(int flags)
{
	return open(MM_DEV, O_RDWR | O_CLOEXEC | flags);
}

/* MEMMGR_IOC_ALLOC with a timeout; the reply in *out when given. */
static inline int mm_alloc_wait(int fd, __u32 pool, __u64 size, __u64 tag,
				__s64 timeout, __u32 flags,
				struct memmgr_alloc *out)
{
	struct memmgr_alloc a = {
		.pool = pool, .flags = flags, .size = size, .tag = tag,
		.timeout_ms = timeout,
	};
	int ret = ioctl(fd, MEMMGR_IOC_ALLOC, &a) ? -errno : 0;

	if (out)
		*out = a;
	return ret;
}

/* MEMMGR_IOC_ALLOC that declines at once. */
static inline int mm_alloc(int fd, __u32 pool, __u64 size, __u64 tag,
			   __u32 flags, struct memmgr_alloc *out)
{
	return mm_alloc_wait(fd, pool, size, tag, 0, flags, out);
}

/* MEMMGR_IOC_FREE, _PIN or _UNPIN. */
static inline int mm_buf(int fd, unsigned long cmd, __u64 handle)
{
	struct memmgr_buf b = { .handle = handle };

	return ioctl(fd, cmd, &b) ? -errno : 0;
}

static inline int mm_lookup(int fd, __u64 tag, struct memmgr_lookup *out)
{
	struct memmgr_lookup l = { .tag = tag };
	int ret = ioctl(fd, MEMMGR_IOC_LOOKUP, &l) ? -errno : 0;

	if (out)
		*out = l;
	return ret;
}

/* The statistics; all ones if the ioctl failed. */
static inline struct memmgr_stats mm_stats(int fd)
{
	struct memmgr_stats st;

	memset(&st, 0xff, sizeof(st));
	if (ioctl(fd, MEMMGR_IOC_STATS, &st))
		memset(&st, 0xff, sizeof(st));
	return st;
}

/* Wait (at most 10 s) until the device holds @n requests. */
static inline int mm_wait_waiters(int fd, __u32 n)
{
	int i;

	for (i = 0; i < 10000; i++) {
		if (mm_stats(fd).waiters == n)
			return 0;
		usleep(1000);
	}
	return -1;
}

/* Write a module parameter: 0 or -errno. */
static inline int mm_set_param(const char *name, const char *value)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), MM_PARAMS "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	n = n < 0 ? -errno : 0;
	close(fd);
	return n;
}

/* Do all @n bytes at @p read @v?  (volatile: mappings may go away.) */
static inline int mm_all_bytes(const volatile unsigned char *p, size_t n,
			       unsigned char v)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

static inline sigjmp_buf *mm_sigbus_jmp(void)
{
	static sigjmp_buf jmp;

	return &jmp;
}

static inline void mm_on_sigbus(int sig)
{
	siglongjmp(*mm_sigbus_jmp(), 1);
}

/* Read a byte; return SIGBUS if the access faulted, else 0. */
static inline int probe_read(volatile unsigned char *p, unsigned char *val)
{
	struct sigaction sa = { .sa_handler = mm_on_sigbus }, old;
	int ret = 0;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(*mm_sigbus_jmp(), 1))
		ret = SIGBUS;
	else
		*val = *p;
	sigaction(SIGBUS, &old, NULL);
	return ret;
}

/* Write a byte; return SIGBUS if the access faulted, else 0. */
static inline int probe_write(volatile unsigned char *p, unsigned char val)
{
	struct sigaction sa = { .sa_handler = mm_on_sigbus }, old;
	int ret = 0;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(*mm_sigbus_jmp(), 1))
		ret = SIGBUS;
	else
		*p = val;
	sigaction(SIGBUS, &old, NULL);
	return ret;
}

#endif /* MEMMGR_UTIL_H */
