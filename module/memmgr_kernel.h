/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memmgr's in-kernel API: other modules allocate and free memory from the
 * storage and execution pools under the same rules as userspace.
 *
 * A client is like an open file of /dev/memmgr: it owns its buffers, its
 * storage page ids are unique within it, and closing it frees everything.
 * Buffers of in-kernel clients are never evictable: storage buffers stay
 * pinned, so their pages stay valid until memmgr_kernel_free().
 */
#ifndef _MEMMGR_KERNEL_H
#define _MEMMGR_KERNEL_H

#include <linux/types.h>

struct memmgr_client;
struct page;

struct memmgr_client *memmgr_client_open(void);
void memmgr_client_close(struct memmgr_client *c);
int memmgr_kernel_alloc(struct memmgr_client *c, u32 pool, u64 size, u64 tag,
			s64 timeout_ms, u64 *handle);
int memmgr_kernel_free(struct memmgr_client *c, u64 handle);
struct page *memmgr_kernel_page(struct memmgr_client *c, u64 handle,
				u64 index);

#endif /* _MEMMGR_KERNEL_H */
