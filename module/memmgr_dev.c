// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's device: /dev/memmgr, one struct memmgr_file per open, and the
 * ioctl layer.  Each command copies its argument in, checks every field
 * the ABI says must be zero, calls one helper and copies the result out.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/poll.h>
#include <linux/random.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "memmgr.h"

static bool all_zero(const __u64 *v, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (v[i])
			return false;
	return true;
}

/*
 * Can the argument be written back?  Checked before a command does
 * anything that a failed copy-out would lose or would have done for
 * nothing, by writing back its first and last words as they were read:
 * an argument (a few dozen bytes) spans two pages at most, and those two
 * words lie on them.
 */
static bool writable(void __user *uarg, const void *req, size_t size)
{
	const u64 *v = req;
	u64 __user *u = uarg;
	size_t last = size / sizeof(u64) - 1;

	return !put_user(v[0], &u[0]) && !put_user(v[last], &u[last]);
}

/* writable() covers arguments made of whole 64-bit words. */
static_assert(sizeof(struct memmgr_alloc) % sizeof(u64) == 0);
static_assert(sizeof(struct memmgr_lookup) % sizeof(u64) == 0);
static_assert(sizeof(struct memmgr_release) % sizeof(u64) == 0);
static_assert(sizeof(struct memmgr_evicted) % sizeof(u64) == 0);

/**
 * memmgr_alloc_check() - the checks of an ALLOC's arguments
 * @req:	as copied in
 *
 * Return: 0 or -EINVAL.
 */
int memmgr_alloc_check(const struct memmgr_alloc *req)
{
	if (req->pool >= MEMMGR_NR_POOLS ||
	    (req->flags & ~MEMMGR_ALLOC_FLAGS) || !req->size ||
	    req->timeout_ms < MEMMGR_WAIT_FOREVER ||
	    !all_zero(req->reserved, ARRAY_SIZE(req->reserved)))
		return -EINVAL;
	if ((req->flags & MEMMGR_ALLOC_UNPINNED) &&
	    req->pool != MEMMGR_POOL_STORAGE)
		return -EINVAL;
	return 0;
}

static long ioctl_alloc(struct file *filp, void __user *uarg)
{
	struct memmgr_alloc req;
	int ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	ret = memmgr_alloc_check(&req);
	if (ret)
		return ret;
	if (!writable(uarg, &req, sizeof(req)))
		return -EFAULT;

	ret = memmgr_buf_alloc(filp->private_data, &req,
			       filp->f_flags & O_NONBLOCK);
	if (ret)
		return ret;
	/* Only if another thread took the memory away meanwhile. */
	if (copy_to_user(uarg, &req, sizeof(req))) {
		memmgr_buf_free(filp->private_data, req.handle);
		return -EFAULT;
	}
	return 0;
}

static long ioctl_buf(struct file *filp, unsigned int cmd, void __user *uarg)
{
	struct memmgr_buf req;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags)
		return -EINVAL;
	if (cmd == MEMMGR_IOC_FREE)
		return memmgr_buf_free(filp->private_data, req.handle);
	return memmgr_buf_pin(filp->private_data, req.handle,
			      cmd == MEMMGR_IOC_PIN);
}

static long ioctl_retag(struct file *filp, void __user *uarg)
{
	struct memmgr_retag req;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.reserved)
		return -EINVAL;
	return memmgr_buf_retag(filp->private_data, req.handle, req.tag);
}

static long ioctl_lookup(struct file *filp, void __user *uarg)
{
	struct memmgr_lookup req;
	int ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if ((req.flags & ~(u64)MEMMGR_LOOKUP_FLAGS) ||
	    !all_zero(req.reserved, ARRAY_SIZE(req.reserved)))
		return -EINVAL;
	if (!writable(uarg, &req, sizeof(req)))
		return -EFAULT;
	if (req.flags & MEMMGR_LOOKUP_HANDLE)
		req = (struct memmgr_lookup){ .flags = req.flags,
					      .handle = req.handle };
	else
		req = (struct memmgr_lookup){ .tag = req.tag };
	ret = memmgr_buf_lookup(filp->private_data, &req);
	if (ret && ret != -ESTALE)
		return ret;
	if (copy_to_user(uarg, &req, sizeof(req)))
		return -EFAULT;
	return ret;
}

static long ioctl_release(struct file *filp, void __user *uarg)
{
	struct memmgr_release req;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.pool >= MEMMGR_NR_POOLS || req.flags)
		return -EINVAL;
	if (!writable(uarg, &req, sizeof(req)))
		return -EFAULT;
	memmgr_buf_release(filp->private_data, &req);
	if (copy_to_user(uarg, &req, sizeof(req)))
		return -EFAULT;
	return 0;
}

/* At most this many notices per call: the kernel buffer is one page. */
#define MEMMGR_EVICTED_MAX	(PAGE_SIZE / sizeof(u64))

static long ioctl_evicted(struct file *filp, void __user *uarg)
{
	struct memmgr_evicted req;
	void __user *utags;
	u64 *tags;
	u32 count;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags || !all_zero(req.reserved, ARRAY_SIZE(req.reserved)))
		return -EINVAL;
	utags = u64_to_user_ptr(req.tags);
	count = min_t(u32, req.count, MEMMGR_EVICTED_MAX);
	/* Fail on anything unwritable before any notice is taken. */
	if (!writable(uarg, &req, sizeof(req)) ||
	    (count && clear_user(utags, count * sizeof(u64))))
		return -EFAULT;
	tags = kmalloc_array(max_t(u32, count, 1), sizeof(*tags), GFP_KERNEL);
	if (!tags)
		return -ENOMEM;
	req.count = memmgr_evicted_pop(filp->private_data, tags, count,
				       &req.pending);
	if (copy_to_user(utags, tags, req.count * sizeof(u64)) ||
	    copy_to_user(uarg, &req, sizeof(req))) {
		kfree(tags);
		return -EFAULT;
	}
	kfree(tags);
	return 0;
}

static long ioctl_stats(struct file *filp, void __user *uarg)
{
	struct memmgr_stats st;

	memset(&st, 0, sizeof(st));
	memmgr_stats_fill(filp->private_data, &st);
	if (copy_to_user(uarg, &st, sizeof(st)))
		return -EFAULT;
	return 0;
}

static long memmgr_ioctl(struct file *filp, unsigned int cmd,
			 unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case MEMMGR_IOC_ALLOC:
		return ioctl_alloc(filp, uarg);
	case MEMMGR_IOC_FREE:
	case MEMMGR_IOC_PIN:
	case MEMMGR_IOC_UNPIN:
		return ioctl_buf(filp, cmd, uarg);
	case MEMMGR_IOC_LOOKUP:
		return ioctl_lookup(filp, uarg);
	case MEMMGR_IOC_RELEASE:
		return ioctl_release(filp, uarg);
	case MEMMGR_IOC_STATS:
		return ioctl_stats(filp, uarg);
	case MEMMGR_IOC_EVICTED:
		return ioctl_evicted(filp, uarg);
	case MEMMGR_IOC_ALLOC_MANY:
		return memmgr_ioctl_alloc_many(filp, uarg);
	case MEMMGR_IOC_FREE_MANY:
		return memmgr_ioctl_free_many(filp, uarg);
	case MEMMGR_IOC_RETAG:
		return ioctl_retag(filp, uarg);
	default:
		return -ENOTTY;
	}
}

/**
 * memmgr_file_init() - set up a client and list it
 * @mm:		the device
 * @f:		zeroed
 * @filp:	its file, or NULL for an in-kernel client
 */
void memmgr_file_init(struct memmgr_dev *mm, struct memmgr_file *f,
		      struct file *filp)
{
	f->mm = mm;
	f->filp = filp;
	f->pid = get_pid(task_tgid(current));
	get_task_comm(f->comm, current);
	mutex_init(&f->lock);
	f->offsets = RB_ROOT;
	/* Handles of two files differ, but by chance. */
	f->next_seq = get_random_u32();
	f->tags = RB_ROOT;
	INIT_LIST_HEAD(&f->evicted);
	INIT_LIST_HEAD(&f->waiters[MEMMGR_POOL_STORAGE]);
	INIT_LIST_HEAD(&f->waiters[MEMMGR_POOL_EXEC]);
	f->execids = RB_ROOT;
	xa_init(&f->state_pages);
	spin_lock_init(&f->spare_lock);
	INIT_LIST_HEAD(&f->spares);
	init_waitqueue_head(&f->poll_wait);
	mutex_lock(&mm->files_lock);
	list_add_tail(&f->node, &mm->files);
	mutex_unlock(&mm->files_lock);
}

/**
 * memmgr_file_exit() - free all of a client's memory and unlist it
 * @f: the client; nothing else uses it any more
 */
void memmgr_file_exit(struct memmgr_file *f)
{
	struct memmgr_dev *mm = f->mm;

	memmgr_file_free_all(f);
	memmgr_state_exit(f);
	memmgr_execids_exit(f);
	mutex_lock(&mm->files_lock);
	list_del(&f->node);
	mutex_unlock(&mm->files_lock);
	put_pid(f->pid);
	mutex_destroy(&f->lock);
}

/* POLLPRI while eviction notices are queued. */
static __poll_t memmgr_poll(struct file *filp, poll_table *wait)
{
	struct memmgr_file *f = filp->private_data;
	__poll_t mask = 0;

	poll_wait(filp, &f->poll_wait, wait);
	spin_lock(&f->mm->lock);
	if (f->nr_evicted)
		mask |= EPOLLPRI;
	spin_unlock(&f->mm->lock);
	return mask;
}

/* Each open file maps its buffers in an address space of its own. */
static int memmgr_open(struct inode *inode, struct file *filp)
{
	struct miscdevice *misc = filp->private_data;
	struct memmgr_file *f;
	int ret;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	f->inode = memmgr_inode_new();
	if (IS_ERR(f->inode)) {
		ret = PTR_ERR(f->inode);
		goto out_free;
	}
	filp->f_mapping = f->inode->i_mapping;
	memmgr_file_init(container_of(misc, struct memmgr_dev, misc), f, filp);
	filp->private_data = f;
	return 0;

out_free:
	kfree(f);
	return ret;
}

static int memmgr_release(struct inode *inode, struct file *filp)
{
	struct memmgr_file *f = filp->private_data;

	memmgr_file_exit(f);
	iput(f->inode);
	kfree(f);
	return 0;
}

const struct file_operations memmgr_fops = {
	.owner = THIS_MODULE,
	.open = memmgr_open,
	.release = memmgr_release,
	.unlocked_ioctl = memmgr_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = memmgr_mmap,
	.poll = memmgr_poll,
	.llseek = noop_llseek,
};
