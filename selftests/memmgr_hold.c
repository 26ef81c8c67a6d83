// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr_hold: a helper for the shell tests.  It takes BYTES of one pool
 * through libmemmgr, writes them, prints "ready" and sleeps until killed.
 *
 *   memmgr_hold [-n NAME] storage|exec BYTES [ID]
 *
 * BYTES may end in K, M or G (powers of 1024); ID (the page id or exec id)
 * defaults to 1.  -n sets the command name to NAME (prctl(PR_SET_NAME); at
 * most 15 bytes, the kernel's limit) before /dev/memmgr is opened, so that
 * memmgr lists the client under NAME.  Exits 1 when the memory cannot be
 * had, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "libmemmgr.h"

static int print_usage(void)
{
	fprintf(stderr,
		"usage: memmgr_hold [-n NAME] storage|exec BYTES[K|M|G] [ID]\n");
	return 2;
}

/* A decimal number with an optional K, M or G suffix; 0 if malformed. */
static size_t parse_size(const char *s)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return 0;
	if (*end == 'K')
		shift = 10;
	else if (*end == 'M')
		shift = 20;
	else if (*end == 'G')
		shift = 30;
	if (shift)
		end++;
	if (*end || v > (SIZE_MAX >> shift))
		return 0;
	return (size_t)v << shift;
}

int main(int argc, char **argv)
{
	unsigned long long id = 1;
	struct memmgr *mm;
	size_t size;
	void *ptr;
	int ret;

	if (argc > 2 && !strcmp(argv[1], "-n")) {
		if (strlen(argv[2]) > 15)
			return print_usage();
		if (prctl(PR_SET_NAME, argv[2], 0, 0, 0)) {
			perror("memmgr_hold: PR_SET_NAME");
			return 1;
		}
		argc -= 2;
		argv += 2;
	}
	if (argc < 3 || argc > 4)
		return print_usage();
	size = parse_size(argv[2]);
	if (!size)
		return print_usage();
	if (argc == 4) {
		char *end;

		errno = 0;
		id = strtoull(argv[3], &end, 0);
		if (errno || end == argv[3] || *end)
			return print_usage();
	}

	ret = memmgr_open(&mm, 0);
	if (ret) {
		fprintf(stderr, "memmgr_hold: %s\n", memmgr_strerror(ret));
		return 1;
	}
	if (!strcmp(argv[1], "storage")) {
		ret = memmgr_alloc_storage(mm, id, size, 0, 0, &ptr);
	} else if (!strcmp(argv[1], "exec")) {
		ret = memmgr_alloc_exec(mm, id, size, 0, &ptr);
	} else {
		memmgr_close(mm);
		return print_usage();
	}
	if (ret) {
		fprintf(stderr, "memmgr_hold: %zu bytes of %s: %s\n", size,
			argv[1], memmgr_strerror(ret));
		memmgr_close(mm);
		return 1;
	}
	memset(ptr, 0x5a, size);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
