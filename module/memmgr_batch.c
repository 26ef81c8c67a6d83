// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's batched calls: MEMMGR_IOC_ALLOC_MANY and MEMMGR_IOC_FREE_MANY
 * do a list of ALLOCs or FREEs in one system call, so that a cache warming
 * up or dropping a table makes one call per batch.
 *
 * Entries are done in order, each exactly as its single call would do it,
 * and the batch stops at the first that fails: the caller learns how many
 * were done (@done), and the error of the next one, which had no effect,
 * nor had any after it.  Nothing is done that the caller is not told of:
 * an ALLOC entry's out fields are checked writable before it is done, and
 * an entry whose out fields could not be written after all is undone.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>
#include <linux/uaccess.h>

#include "memmgr.h"

/* An ALLOC_MANY chunk's entries, and the buffers made for them */
struct batch_scratch {
	struct memmgr_alloc reqs[MEMMGR_ALLOC_CHUNK];
	struct memmgr_buffer *bufs[MEMMGR_ALLOC_CHUNK];
};

static int batch_get(void __user *uarg, struct memmgr_batch *b)
{
	if (copy_from_user(b, uarg, sizeof(*b)))
		return -EFAULT;
	if (b->flags || b->reserved0 || b->reserved[0] || b->reserved[1] ||
	    b->count > MEMMGR_BATCH_MAX)
		return -EINVAL;
	b->done = 0;
	/* @done goes back whatever happens: it must be writable first. */
	if (put_user(b->done, &((struct memmgr_batch __user *)uarg)->done))
		return -EFAULT;
	return 0;
}

static int batch_put(void __user *uarg, struct memmgr_batch *b, int ret)
{
	if (put_user(b->done, &((struct memmgr_batch __user *)uarg)->done))
		return -EFAULT;
	return ret;
}

static_assert(MEMMGR_ALLOC_CHUNK * sizeof(struct memmgr_alloc) <= PAGE_SIZE);

/*
 * An entry's in fields, and its out fields, field by field inside a user
 * access section (user_access_begin()): a string copy of whole entries
 * costs more (under TCG, which copies a byte at a time, 0.2 us an entry).
 * Return false on a fault.
 */
static __always_inline bool alloc_read(struct memmgr_alloc __user *u,
				       struct memmgr_alloc *r)
{
	unsafe_get_user(r->pool, &u->pool, efault);
	unsafe_get_user(r->flags, &u->flags, efault);
	unsafe_get_user(r->size, &u->size, efault);
	unsafe_get_user(r->tag, &u->tag, efault);
	unsafe_get_user(r->timeout_ms, &u->timeout_ms, efault);
	unsafe_get_user(r->reserved[0], &u->reserved[0], efault);
	unsafe_get_user(r->reserved[1], &u->reserved[1], efault);
	return true;
efault:
	return false;
}

static __always_inline bool alloc_write(struct memmgr_alloc __user *u,
					const struct memmgr_alloc *r)
{
	unsafe_put_user(r->handle, &u->handle, efault);
	unsafe_put_user(r->offset, &u->offset, efault);
	unsafe_put_user(r->granted, &u->granted, efault);
	return true;
efault:
	return false;
}

/*
 * How many of the first @n entries can be written back.  They span two
 * pages at most (a chunk is less than a page), so writing back a word of
 * the first entry and one of the last as they were read (as memmgr_dev.c's
 * writable() does) checks every page they are on.
 */
static u32 alloc_chunk_writable(struct memmgr_alloc __user *uents,
				const struct memmgr_alloc *reqs, u32 n)
{
	unsigned long start = (unsigned long)uents;
	u32 first = min_t(unsigned long, n, (PAGE_ALIGN(start + 1) - start) /
			  sizeof(*reqs));

	if (put_user(reqs[0].pool, &uents[0].pool))
		return 0;
	/* The entries past @first reach into the second page. */
	if (first < n &&
	    put_user(reqs[n - 1].reserved[1], &uents[n - 1].reserved[1]))
		return first;
	return n;
}

/* Read the in fields of @n entries in one user access section. */
static u32 alloc_chunk_read(struct memmgr_alloc __user *uents,
			    struct memmgr_alloc *reqs, u32 n)
{
	u32 i = 0;

	if (!user_access_begin(uents, n * sizeof(*uents)))
		return 0;
	while (i < n && alloc_read(&uents[i], &reqs[i]))
		i++;
	user_access_end();
	return i;
}

/*
 * Read and check a chunk's entries.  Return how many can be done: those
 * before the first that cannot be read, is not valid or cannot be written
 * back, whose error goes to *@err.
 */
static u32 alloc_chunk_check(struct memmgr_alloc __user *uents,
			     struct memmgr_alloc *reqs, u32 n, int *err)
{
	u32 i, ok, w;
	int ret;

	*err = 0;
	ok = alloc_chunk_read(uents, reqs, n);
	if (ok < n)
		*err = -EFAULT;
	for (i = 0; i < ok; i++) {
		ret = memmgr_alloc_check(&reqs[i]);
		if (ret) {
			*err = ret;
			break;
		}
	}
	w = i ? alloc_chunk_writable(uents, reqs, i) : 0;
	if (w < i)
		*err = -EFAULT;
	return w;
}

/* The out fields of @n granted entries; return how many were written. */
static u32 alloc_chunk_write(struct memmgr_alloc __user *uents,
			     const struct memmgr_alloc *reqs, u32 n)
{
	u32 i = 0;

	if (!user_access_begin(uents, n * sizeof(*uents)))
		return 0;
	while (i < n && alloc_write(&uents[i], &reqs[i]))
		i++;
	user_access_end();
	return i;
}

/*
 * One chunk of ALLOC_MANY.  Entries granted whose out fields cannot be
 * written after all (another thread unmapped them) are freed again.
 * Return how many are done, *@err for the next.
 */
static u32 alloc_chunk(struct file *filp, struct memmgr_alloc __user *uents,
		       struct batch_scratch *s, u32 n, int *err)
{
	struct memmgr_alloc *reqs = s->reqs;
	struct memmgr_file *f = filp->private_data;
	u32 valid, done, i, j;
	int check;

	valid = alloc_chunk_check(uents, reqs, n, &check);
	if (!valid) {
		*err = check;
		return 0;
	}
	done = memmgr_buf_alloc_many(f, reqs, s->bufs, valid,
				     filp->f_flags & O_NONBLOCK, err);
	if (done == valid)
		*err = check;
	i = done ? alloc_chunk_write(uents, reqs, done) : 0;
	if (i == done)
		return done;
	*err = -EFAULT;
	for (j = i; j < done; j++)
		memmgr_buf_free(f, reqs[j].handle);
	return i;
}

/**
 * memmgr_ioctl_alloc_many() - MEMMGR_IOC_ALLOC_MANY
 * @filp:	the file
 * @uarg:	its struct memmgr_batch
 *
 * Return: 0 when every entry was granted, else the error of entry @done.
 */
long memmgr_ioctl_alloc_many(struct file *filp, void __user *uarg)
{
	struct memmgr_alloc __user *uents;
	struct batch_scratch *s;
	struct memmgr_batch b;
	u32 n;
	int ret;

	ret = batch_get(uarg, &b);
	if (ret || !b.count)
		return ret;
	s = kmalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	uents = u64_to_user_ptr(b.entries);
	while (b.done < b.count) {
		n = min_t(u32, b.count - b.done, MEMMGR_ALLOC_CHUNK);
		b.done += alloc_chunk(filp, uents + b.done, s, n, &ret);
		if (ret)
			break;
	}
	kfree(s);
	return batch_put(uarg, &b, ret);
}

/* Read @n handles as alloc_chunk_read() reads entries; return how many. */
static u32 free_chunk_read(u64 __user *uhandles, u64 *handles, u32 n)
{
	u32 i = 0;

	if (!user_access_begin(uhandles, n * sizeof(*uhandles)))
		return 0;
	for (; i < n; i++)
		unsafe_get_user(handles[i], &uhandles[i], out);
out:
	user_access_end();
	return i;
}

/**
 * memmgr_ioctl_free_many() - MEMMGR_IOC_FREE_MANY
 * @filp:	the file
 * @uarg:	its struct memmgr_batch
 *
 * Return: 0 when every handle was freed, else the error of entry @done
 * (-EFAULT, -ENOENT).
 */
long memmgr_ioctl_free_many(struct file *filp, void __user *uarg)
{
	struct memmgr_buffer *bufs[MEMMGR_ALLOC_CHUNK] __uninitialized;
	u64 handles[MEMMGR_ALLOC_CHUNK] __uninitialized;
	u64 __user *uhandles;
	struct memmgr_batch b;
	u32 n, ok;
	int ret;

	ret = batch_get(uarg, &b);
	if (ret)
		return ret;
	uhandles = u64_to_user_ptr(b.entries);
	while (b.done < b.count && !ret) {
		n = min_t(u32, b.count - b.done, MEMMGR_ALLOC_CHUNK);
		/* The handles before the first that cannot be read are freed. */
		ok = free_chunk_read(uhandles + b.done, handles, n);
		if (ok)
			b.done += memmgr_buf_free_many(filp->private_data,
						       handles, bufs, ok, &ret);
		if (ok < n && !ret)
			ret = -EFAULT;
	}
	return batch_put(uarg, &b, ret);
}
