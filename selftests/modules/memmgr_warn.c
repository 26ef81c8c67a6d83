// SPDX-License-Identifier: GPL-2.0
/*
 * A module that WARNs when loaded: the VM runner's own test loads it and
 * expects the runner to fail.
 */
#include <linux/bug.h>
#include <linux/module.h>

static int __init memmgr_warn_init(void)
{
	WARN(1, "memmgr_warn: a warning on purpose\n");
	return 0;
}

static void __exit memmgr_warn_exit(void)
{
}

module_init(memmgr_warn_init);
module_exit(memmgr_warn_exit);
MODULE_DESCRIPTION("memmgr VM runner test: WARNs on load");
MODULE_LICENSE("GPL");
