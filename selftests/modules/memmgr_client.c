// SPDX-License-Identifier: GPL-2.0
/*
 * A sample in-kernel client of memmgr: at load it takes size bytes from
 * pool through the in-kernel API, writes every page and reads it back; it
 * frees them at unload.  A failed request fails the load with its errno,
 * so the kselftest can check the policy applies to the kernel too.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/err.h>
#include <linux/highmem.h>
#include <linux/module.h>
#include <linux/string.h>

#include <linux/memmgr.h>

#include "memmgr_kernel.h"

static unsigned int pool = MEMMGR_POOL_EXEC;
module_param(pool, uint, 0444);
MODULE_PARM_DESC(pool, "MEMMGR_POOL_STORAGE (0) or MEMMGR_POOL_EXEC (1)");

static unsigned long long size = 1 << 20;
module_param(size, ullong, 0444);
MODULE_PARM_DESC(size, "Bytes to take at load");

static struct memmgr_client *client;
static u64 handle;

/* Every page must read as zeros, then hold what was written. */
static int check_pages(void)
{
	u64 i, pages = DIV_ROUND_UP(size, PAGE_SIZE);

	for (i = 0; i < pages; i++) {
		struct page *page = memmgr_kernel_page(client, handle, i);
		bool zero, kept;
		u8 *p;

		if (!page)
			return -EFAULT;
		p = kmap_local_page(page);
		zero = !memchr_inv(p, 0, PAGE_SIZE);
		memset(p, (u8)i, PAGE_SIZE);
		kept = !memchr_inv(p, (u8)i, PAGE_SIZE);
		kunmap_local(p);
		if (!zero || !kept)
			return -EIO;
	}
	return memmgr_kernel_page(client, handle, pages) ? -EINVAL : 0;
}

static int __init memmgr_client_init(void)
{
	int ret;

	client = memmgr_client_open();
	if (IS_ERR(client))
		return PTR_ERR(client);
	ret = memmgr_kernel_alloc(client, pool, size, 1, 0, &handle);
	if (ret)
		goto out_close;
	ret = check_pages();
	if (ret)
		goto out_close;
	pr_info("took %llu bytes from pool %u; every page checked\n", size,
		pool);
	return 0;

out_close:
	memmgr_client_close(client);
	return ret;
}

static void __exit memmgr_client_exit(void)
{
	WARN_ON(memmgr_kernel_free(client, handle));
	memmgr_client_close(client);
}

module_init(memmgr_client_init);
module_exit(memmgr_client_exit);
MODULE_DESCRIPTION("memmgr sample in-kernel client");
MODULE_LICENSE("GPL");
