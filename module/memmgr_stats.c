// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's statistics: MEMMGR_IOC_STATS, one read-only sysfs attribute per
 * figure in /sys/module/memmgr/stats/, and root-only debugfs files in
 * /sys/kernel/debug/memmgr/ (the open clients, and the buddy allocator's
 * free blocks per order).  Every figure is read under memmgr_dev.lock, so
 * one snapshot is consistent.
 */
#include <linux/debugfs.h>
#include <linux/kobject.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/seq_file.h>
#include <linux/string_helpers.h>
#include <linux/sysfs.h>

#include "memmgr.h"

static void pool_fill_locked(struct memmgr_dev *mm, unsigned int pool,
			     struct memmgr_pool_stats *ps)
{
	const struct memmgr_policy *p = &mm->policy;
	const struct memmgr_counters *c = &mm->stats[pool];

	ps->quota = p->quota[pool] << PAGE_SHIFT;
	ps->used = p->used[pool] << PAGE_SHIFT;
	ps->borrowed = memmgr_policy_borrowed(p, pool) << PAGE_SHIFT;
	ps->peak = c->peak << PAGE_SHIFT;
	if (pool == MEMMGR_POOL_STORAGE)
		ps->pinned = (p->used[pool] - p->evictable +
			      memmgr_state_pinned_locked(mm)) << PAGE_SHIFT;
	ps->allocs = c->allocs;
	ps->frees = c->frees;
	ps->declined = c->declined;
	ps->held = c->held;
	ps->evictions = c->evictions;
	ps->evicted_bytes = c->evicted_pages << PAGE_SHIFT;
}

static void stats_fill_locked(struct memmgr_dev *mm, struct memmgr_stats *st)
{
	unsigned int pool;

	lockdep_assert_held(&mm->lock);
	st->total = mm->policy.total << PAGE_SHIFT;
	st->free = memmgr_policy_free(&mm->policy) << PAGE_SHIFT;
	st->page_size = PAGE_SIZE;
	st->waiters = mm->nr_waiters;
	for (pool = 0; pool < MEMMGR_NR_POOLS; pool++)
		pool_fill_locked(mm, pool, &st->pool[pool]);
}

/**
 * memmgr_stats_fill() - MEMMGR_IOC_STATS
 * @f:	the file asking: its own use is reported too
 * @st:	zeroed by the caller
 */
void memmgr_stats_fill(struct memmgr_file *f, struct memmgr_stats *st)
{
	struct memmgr_dev *mm = f->mm;
	unsigned int pool;

	spin_lock(&mm->lock);
	stats_fill_locked(mm, st);
	for (pool = 0; pool < MEMMGR_NR_POOLS; pool++)
		st->client_used[pool] = f->used[pool] << PAGE_SHIFT;
	spin_unlock(&mm->lock);
}

/* sysfs: /sys/module/memmgr/stats/<name>, one figure each. */

static struct memmgr_dev *stats_mm;

struct stat_attr {
	struct kobj_attribute attr;
	int pool;		/* MEMMGR_POOL_*, or -1 for the device */
	size_t offset;		/* of a __u64 in the pool or device stats */
};

static ssize_t stat_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	struct stat_attr *sa = container_of(attr, struct stat_attr, attr);
	struct memmgr_stats st = {};
	const void *base;

	spin_lock(&stats_mm->lock);
	stats_fill_locked(stats_mm, &st);
	spin_unlock(&stats_mm->lock);
	base = sa->pool < 0 ? (void *)&st : (void *)&st.pool[sa->pool];
	return sysfs_emit(buf, "%llu\n", *(const u64 *)(base + sa->offset));
}

static ssize_t waiters_show(struct kobject *kobj, struct kobj_attribute *attr,
			    char *buf)
{
	u32 waiters;

	spin_lock(&stats_mm->lock);
	waiters = stats_mm->nr_waiters;
	spin_unlock(&stats_mm->lock);
	return sysfs_emit(buf, "%u\n", waiters);
}

#define STAT_ATTR(_name, _pool, _offset)				\
	{ .attr = __ATTR(_name, 0444, stat_show, NULL), .pool = _pool,	\
	  .offset = _offset }
#define DEV_OFF(_field)		offsetof(struct memmgr_stats, _field)
#define POOL_OFF(_field)	offsetof(struct memmgr_pool_stats, _field)
#define ST			MEMMGR_POOL_STORAGE
#define EX			MEMMGR_POOL_EXEC

static struct stat_attr stat_attrs[] = {
	STAT_ATTR(total, -1, DEV_OFF(total)),
	STAT_ATTR(free, -1, DEV_OFF(free)),
	STAT_ATTR(storage_quota, ST, POOL_OFF(quota)),
	STAT_ATTR(storage_used, ST, POOL_OFF(used)),
	STAT_ATTR(storage_borrowed, ST, POOL_OFF(borrowed)),
	STAT_ATTR(storage_peak, ST, POOL_OFF(peak)),
	STAT_ATTR(storage_pinned, ST, POOL_OFF(pinned)),
	STAT_ATTR(storage_allocs, ST, POOL_OFF(allocs)),
	STAT_ATTR(storage_frees, ST, POOL_OFF(frees)),
	STAT_ATTR(storage_declined, ST, POOL_OFF(declined)),
	STAT_ATTR(storage_held, ST, POOL_OFF(held)),
	STAT_ATTR(storage_evictions, ST, POOL_OFF(evictions)),
	STAT_ATTR(storage_evicted_bytes, ST, POOL_OFF(evicted_bytes)),
	STAT_ATTR(exec_quota, EX, POOL_OFF(quota)),
	STAT_ATTR(exec_used, EX, POOL_OFF(used)),
	STAT_ATTR(exec_borrowed, EX, POOL_OFF(borrowed)),
	STAT_ATTR(exec_peak, EX, POOL_OFF(peak)),
	STAT_ATTR(exec_allocs, EX, POOL_OFF(allocs)),
	STAT_ATTR(exec_frees, EX, POOL_OFF(frees)),
	STAT_ATTR(exec_declined, EX, POOL_OFF(declined)),
	STAT_ATTR(exec_held, EX, POOL_OFF(held)),
};

static struct kobj_attribute waiters_attr = __ATTR_RO(waiters);

static struct attribute *stats_attrs[ARRAY_SIZE(stat_attrs) + 2];

static const struct attribute_group stats_group = {
	.attrs = stats_attrs,
};

int memmgr_sysfs_init(struct memmgr_dev *mm)
{
	unsigned int i;
	int ret;

	stats_mm = mm;
	for (i = 0; i < ARRAY_SIZE(stat_attrs); i++)
		stats_attrs[i] = &stat_attrs[i].attr.attr;
	stats_attrs[i] = &waiters_attr.attr;

	mm->stats_kobj = kobject_create_and_add("stats",
						&THIS_MODULE->mkobj.kobj);
	if (!mm->stats_kobj)
		return -ENOMEM;
	ret = sysfs_create_group(mm->stats_kobj, &stats_group);
	if (ret)
		kobject_put(mm->stats_kobj);
	return ret;
}

void memmgr_sysfs_exit(struct memmgr_dev *mm)
{
	sysfs_remove_group(mm->stats_kobj, &stats_group);
	kobject_put(mm->stats_kobj);
}

/* debugfs: root-only views for operators. */

/*
 * clients: a header line, then one line per client, oldest first, of four
 * fields separated by single spaces:
 *
 *	pid comm storage_bytes exec_bytes
 *
 * pid is the thread group id of the process that opened the client (for
 * an in-kernel client, of the task that called memmgr_client_open()), as
 * the reader's pid namespace numbers it: 0 if it has no id there (it
 * lives in a pid namespace the reader cannot see).  comm is its command
 * name at open, escaped so that it holds no whitespace: space, backslash
 * and every byte that is not printable ASCII are written as \ooo (three
 * octal digits).  comm is empty if the name was.
 */
static int clients_show(struct seq_file *m, void *v)
{
	struct pid_namespace *ns = task_active_pid_ns(current);
	struct memmgr_dev *mm = m->private;
	struct memmgr_file *f;

	seq_puts(m, "pid comm storage_bytes exec_bytes\n");
	mutex_lock(&mm->files_lock);
	list_for_each_entry(f, &mm->files, node) {
		u64 used[MEMMGR_NR_POOLS];

		spin_lock(&mm->lock);
		memcpy(used, f->used, sizeof(used));
		spin_unlock(&mm->lock);
		seq_printf(m, "%d ", pid_nr_ns(f->pid, ns));
		seq_escape_str(m, f->comm,
			       ESCAPE_OCTAL | ESCAPE_NAP | ESCAPE_APPEND,
			       " \\");
		seq_printf(m, " %llu %llu\n",
			   used[MEMMGR_POOL_STORAGE] << PAGE_SHIFT,
			   used[MEMMGR_POOL_EXEC] << PAGE_SHIFT);
	}
	mutex_unlock(&mm->files_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(clients);

static int buddy_show(struct seq_file *m, void *v)
{
	struct memmgr_dev *mm = m->private;
	unsigned long nr_free[MEMMGR_MAX_ORDER + 1];
	unsigned int order;

	memmgr_buddy_counts(&mm->buddy, nr_free);
	seq_puts(m, "order block_bytes free_blocks\n");
	for (order = 0; order <= MEMMGR_MAX_ORDER; order++)
		seq_printf(m, "%u %lu %lu\n", order, PAGE_SIZE << order,
			   nr_free[order]);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(buddy);

void memmgr_debugfs_init(struct memmgr_dev *mm)
{
	mm->debugfs = debugfs_create_dir("memmgr", NULL);
	debugfs_create_file("clients", 0400, mm->debugfs, mm, &clients_fops);
	debugfs_create_file("buddy", 0400, mm->debugfs, mm, &buddy_fops);
}

void memmgr_debugfs_exit(struct memmgr_dev *mm)
{
	debugfs_remove_recursive(mm->debugfs);
}
