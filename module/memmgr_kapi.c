// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's in-kernel API (memmgr_kernel.h): a client is a struct
 * memmgr_file without a struct file, so requests go through the same
 * request path, rules, holds and statistics as userspace's.
 */
#include <linux/err.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "memmgr.h"
#include "memmgr_kernel.h"

struct memmgr_client {
	struct memmgr_file file;
};

/**
 * memmgr_client_open() - become a client of memmgr
 *
 * Context: process context, may sleep.
 * Return: the client, or ERR_PTR(-ENOMEM).
 */
struct memmgr_client *memmgr_client_open(void)
{
	struct memmgr_client *c;

	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return ERR_PTR(-ENOMEM);
	memmgr_file_init(memmgr_instance, &c->file, NULL);
	return c;
}
EXPORT_SYMBOL_GPL(memmgr_client_open);

/**
 * memmgr_client_close() - free every buffer of a client, and the client
 * @c: the client; no other call on it may be running
 *
 * Context: process context, may sleep.
 */
void memmgr_client_close(struct memmgr_client *c)
{
	memmgr_file_exit(&c->file);
	kfree(c);
}
EXPORT_SYMBOL_GPL(memmgr_client_close);

/**
 * memmgr_kernel_alloc() - MEMMGR_IOC_ALLOC for the kernel
 * @c:		the client
 * @pool:	MEMMGR_POOL_STORAGE or MEMMGR_POOL_EXEC
 * @size:	bytes, > 0, rounded up to pages
 * @tag:	page id (unique within the client) or exec id
 * @timeout_ms:	0 declines at once, > 0 holds up to that long,
 *		MEMMGR_WAIT_FOREVER holds until granted or a signal
 * @handle:	out: the buffer, for memmgr_kernel_page() and _free()
 *
 * The buffer reads as zeros.  A storage buffer is pinned for its life.
 *
 * Context: process context, may sleep.
 * Return: 0, or -EINVAL, -E2BIG, -EAGAIN, -ETIMEDOUT, -EINTR, -EEXIST,
 * -ENOMEM as for the ioctl.
 */
int memmgr_kernel_alloc(struct memmgr_client *c, u32 pool, u64 size, u64 tag,
			s64 timeout_ms, u64 *handle)
{
	struct memmgr_alloc req = {
		.pool = pool, .size = size, .tag = tag,
		.timeout_ms = timeout_ms,
	};
	int ret;

	if (pool >= MEMMGR_NR_POOLS || !size ||
	    timeout_ms < MEMMGR_WAIT_FOREVER)
		return -EINVAL;
	ret = memmgr_buf_alloc(&c->file, &req, false);
	if (!ret)
		*handle = req.handle;
	return ret;
}
EXPORT_SYMBOL_GPL(memmgr_kernel_alloc);

/**
 * memmgr_kernel_free() - free one of a client's buffers
 * @c:		the client
 * @handle:	from memmgr_kernel_alloc()
 *
 * Context: process context, may sleep.
 * Return: 0 or -ENOENT.
 */
int memmgr_kernel_free(struct memmgr_client *c, u64 handle)
{
	return memmgr_buf_free(&c->file, handle);
}
EXPORT_SYMBOL_GPL(memmgr_kernel_free);

/**
 * memmgr_kernel_page() - one page of a client's buffer
 * @c:		the client
 * @handle:	from memmgr_kernel_alloc()
 * @index:	the page's index in the buffer
 *
 * The page stays the buffer's until memmgr_kernel_free(); map it with
 * kmap_local_page().
 *
 * Context: process context, may sleep.
 * Return: the page, or NULL for an unknown handle or an index past the end.
 */
struct page *memmgr_kernel_page(struct memmgr_client *c, u64 handle,
				u64 index)
{
	return memmgr_buf_page(&c->file, handle, index);
}
EXPORT_SYMBOL_GPL(memmgr_kernel_page);
