// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr: a reserve of memory taken from the kernel at load, split between
 * a storage pool and an execution pool, and served to userspace through
 * ioctl() and mmap() on /dev/memmgr.  See README.md and DESIGN.md.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/ctype.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "memmgr.h"

static unsigned long long total;

/*
 * memparse()'s syntax (a number in C notation, then K, M, G, T, P or E),
 * but a value that does not fit in 64 bits reads as ULLONG_MAX, which is
 * more than any RAM, instead of wrapping to a small one.
 */
static int total_set(const char *val, const struct kernel_param *kp)
{
	static const char suffixes[] = "KMGTPE";
	unsigned long long v = ULLONG_MAX;
	const char *suffix;
	char num[32];
	size_t len;

	if (val[0] == '0' && (val[1] == 'x' || val[1] == 'X'))
		len = 2 + strspn(val + 2, "0123456789abcdefABCDEF");
	else
		len = strspn(val, "0123456789");
	if (!len)
		return -EINVAL;
	/* Longer than any 64-bit number: only digits, so just too large. */
	if (len < sizeof(num)) {
		int ret;

		memcpy(num, val, len);
		num[len] = '\0';
		ret = kstrtoull(num, 0, &v);
		if (ret && ret != -ERANGE)
			return ret;
		if (ret)
			v = ULLONG_MAX;
	}
	suffix = val[len] ? strchr(suffixes, toupper(val[len])) : NULL;
	if (suffix) {
		unsigned int shift = 10 * (suffix - suffixes + 1);

		v = v > ULLONG_MAX >> shift ? ULLONG_MAX : v << shift;
		len++;
	}
	if (val[len] && strcmp(val + len, "\n"))
		return -EINVAL;
	*(unsigned long long *)kp->arg = v;
	return 0;
}

static const struct kernel_param_ops total_ops = {
	.set = total_set,
	.get = param_get_ullong,
};
module_param_cb(total, &total_ops, &total, 0444);
MODULE_PARM_DESC(total,
		 "Bytes to reserve at load, memparse syntax (256M, 1G); rounded down to pages. Default 0: a quarter of RAM. Reads back what was reserved.");

/* evict_policy: which unpinned storage buffer goes first. */
bool memmgr_evict_lru;

static int evict_policy_set(const char *val, const struct kernel_param *kp)
{
	if (sysfs_streq(val, "random"))
		WRITE_ONCE(memmgr_evict_lru, false);
	else if (sysfs_streq(val, "lru"))
		WRITE_ONCE(memmgr_evict_lru, true);
	else
		return -EINVAL;
	return 0;
}

static int evict_policy_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n",
			  READ_ONCE(memmgr_evict_lru) ? "lru" : "random");
}

static const struct kernel_param_ops evict_policy_ops = {
	.set = evict_policy_set,
	.get = evict_policy_get,
};
module_param_cb(evict_policy, &evict_policy_ops, NULL, 0644);
MODULE_PARM_DESC(evict_policy,
		 "Which unpinned storage buffer is evicted first: random (default) or lru (least recently allocated, pinned, unpinned or looked up). Writable at runtime; later evictions follow it.");

/* mode: split (the base rules) or unified (Spark's); see memmgr_policy.c. */
static bool unified;

static int mode_set(const char *val, const struct kernel_param *kp)
{
	struct memmgr_dev *mm = memmgr_instance;
	bool u;

	if (sysfs_streq(val, "split"))
		u = false;
	else if (sysfs_streq(val, "unified"))
		u = true;
	else
		return -EINVAL;
	WRITE_ONCE(unified, u);
	if (mm) {
		/* Later requests follow the new rules; holds may fit now. */
		spin_lock(&mm->lock);
		mm->policy.unified = u;
		memmgr_wake_locked(mm);
		spin_unlock(&mm->lock);
	}
	return 0;
}

static int mode_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n", READ_ONCE(unified) ? "unified" : "split");
}

static const struct kernel_param_ops mode_ops = {
	.set = mode_set,
	.get = mode_get,
};
module_param_cb(mode, &mode_ops, NULL, 0644);
MODULE_PARM_DESC(mode,
		 "split (default: storage within its quota, execution borrows only free storage memory) or unified (Spark's rules: storage borrows free execution memory, execution evicts storage above its quota). Writable at runtime, for later requests.");

/* exec_fair: fair shares between exec ids; see memmgr_policy.c. */
bool memmgr_exec_fair;

static int exec_fair_set(const char *val, const struct kernel_param *kp)
{
	struct memmgr_dev *mm = memmgr_instance;
	bool fair;
	int ret = kstrtobool(val, &fair);

	if (ret)
		return ret;
	WRITE_ONCE(memmgr_exec_fair, fair);
	if (mm) {
		/* Holds kept back by their share may go now. */
		spin_lock(&mm->lock);
		memmgr_wake_locked(mm);
		spin_unlock(&mm->lock);
	}
	return 0;
}

static const struct kernel_param_ops exec_fair_ops = {
	.set = exec_fair_set,
	.get = param_get_bool,
};
module_param_cb(exec_fair, &exec_fair_ops, &memmgr_exec_fair, 0644);
MODULE_PARM_DESC(exec_fair,
		 "1: with N active exec ids, one may hold at most 1/N of what execution can use (Spark's ExecutionMemoryPool). Default 0. Writable at runtime.");

static unsigned int storage_pct = 50;
module_param(storage_pct, uint, 0444);
MODULE_PARM_DESC(storage_pct,
		 "The storage pool's share of total, in percent (0-100, default 50); execution gets the rest.");

/* The one instance, for the in-kernel API and sysfs. */
struct memmgr_dev *memmgr_instance;

/*
 * Make @mm the instance (NULL: none), under the lock every parameter write
 * holds.  The parameters' files exist while insmod takes the reserve: mode
 * is read into the policy here, before any client can reach the device,
 * so a write made at any time before is in force and every later one
 * finds the instance (mode_set()).
 */
static void memmgr_publish(struct memmgr_dev *mm)
{
	kernel_param_lock(THIS_MODULE);
	if (mm)
		mm->policy.unified = READ_ONCE(unified);
	memmgr_instance = mm;
	kernel_param_unlock(THIS_MODULE);
}

static int memmgr_setup(struct memmgr_dev *mm, u64 pages)
{
	unsigned int pool;
	int ret;

	spin_lock_init(&mm->lock);
	mutex_init(&mm->files_lock);
	INIT_LIST_HEAD(&mm->files);
	memmgr_policy_init(&mm->policy, pages, storage_pct);
	for (pool = 0; pool < MEMMGR_NR_POOLS; pool++)
		INIT_LIST_HEAD(&mm->waiters[pool]);
	INIT_LIST_HEAD(&mm->reclaim);
	INIT_DELAYED_WORK(&mm->reclaim_work, memmgr_reclaim_work);
	mm->buddy.short_of_pages = memmgr_reclaim_kick;
	ret = memmgr_evictable_init(&mm->evictable, pages);
	if (ret)
		return ret;
	ret = memmgr_figures_init(mm);
	if (ret) {
		memmgr_evictable_exit(&mm->evictable);
		return ret;
	}
	mm->misc.minor = MISC_DYNAMIC_MINOR;
	mm->misc.name = "memmgr";
	mm->misc.fops = &memmgr_fops;
	mm->misc.mode = 0600;
	return 0;
}

static int __init memmgr_init(void)
{
	u64 ram = (u64)totalram_pages() << PAGE_SHIFT;
	struct memmgr_dev *mm;
	u64 pages;
	int ret;

	if (storage_pct > 100) {
		pr_err("storage_pct=%u: must be 0 to 100\n", storage_pct);
		return -EINVAL;
	}
	if (!total)
		total = ram / 4;
	pages = total >> PAGE_SHIFT;
	if (!pages) {
		pr_err("total=%llu: less than a page\n", total);
		return -EINVAL;
	}
	if (total > ram) {
		pr_err("total=%llu: more than the %llu bytes of RAM\n", total,
		       ram);
		return -ENOMEM;
	}

	mm = kzalloc(sizeof(*mm), GFP_KERNEL);
	if (!mm)
		return -ENOMEM;
	ret = memmgr_setup(mm, pages);
	if (ret)
		goto out_free_dev;
	ret = memmgr_buf_cache_create();
	if (ret)
		goto out_free_evictable;
	ret = memmgr_buddy_reserve(&mm->buddy, pages);
	if (ret) {
		pr_err("could not reserve %llu bytes: %d\n", total, ret);
		goto out_destroy_cache;
	}
	ret = memmgr_inode_init();
	if (ret)
		goto out_release_reserve;
	ret = memmgr_sysfs_init(mm);
	if (ret)
		goto out_inode_exit;
	memmgr_debugfs_init(mm);
	total = pages << PAGE_SHIFT;
	memmgr_publish(mm);
	ret = misc_register(&mm->misc);
	if (ret)
		goto out_unpublish;
	pr_info("reserved %llu KiB: storage %llu KiB, execution %llu KiB\n",
		total >> 10, mm->policy.quota[MEMMGR_POOL_STORAGE] <<
		(PAGE_SHIFT - 10), mm->policy.quota[MEMMGR_POOL_EXEC] <<
		(PAGE_SHIFT - 10));
	return 0;

out_unpublish:
	memmgr_publish(NULL);
	memmgr_debugfs_exit(mm);
	memmgr_sysfs_exit(mm);
out_inode_exit:
	memmgr_inode_exit();
out_release_reserve:
	memmgr_buddy_release(&mm->buddy);
out_destroy_cache:
	memmgr_buf_cache_destroy();
out_free_evictable:
	memmgr_figures_exit(mm);
	memmgr_evictable_exit(&mm->evictable);
out_free_dev:
	kfree(mm);
	return ret;
}

static void __exit memmgr_exit(void)
{
	struct memmgr_dev *mm = memmgr_instance;

	/* Parameter writes (mode=) see the device gone from here on. */
	memmgr_publish(NULL);
	misc_deregister(&mm->misc);
	memmgr_debugfs_exit(mm);
	memmgr_sysfs_exit(mm);
	/* Evictions of files closed since may still give pages back. */
	memmgr_reclaim_flush(mm);
	memmgr_inode_exit();
	memmgr_buddy_release(&mm->buddy);
	memmgr_buf_cache_destroy();
	memmgr_figures_exit(mm);
	memmgr_evictable_exit(&mm->evictable);
	kfree(mm);
}

module_init(memmgr_init);
module_exit(memmgr_exit);
MODULE_DESCRIPTION("Storage and execution memory pools over a reserved buddy allocator");
MODULE_LICENSE("GPL");
