// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's buffers: one open file's tables (by mmap offset, which the
 * handle names, and by tag) and each buffer's life: allocate, pin, look
 * up, free, release, and free everything when the file closes.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/slab.h>

#include "memmgr.h"
#include "memmgr_trace.h"

static struct kmem_cache *memmgr_buf_cache;

int memmgr_buf_cache_create(void)
{
	memmgr_buf_cache = KMEM_CACHE(memmgr_buffer, 0);
	return memmgr_buf_cache ? 0 : -ENOMEM;
}

void memmgr_buf_cache_destroy(void)
{
	kmem_cache_destroy(memmgr_buf_cache);
}

static struct memmgr_buffer *
buf_create(struct memmgr_file *f, u32 pool, u64 tag, u64 pages)
{
	struct memmgr_buffer *buf;

	buf = xchg(&f->spare_buf, NULL);
	if (!buf)
		buf = kmem_cache_alloc(memmgr_buf_cache, GFP_KERNEL);
	if (!buf)
		return NULL;
	memset(buf, 0, sizeof(*buf));
	kref_init(&buf->ref);
	buf->file = f;
	buf->nr_pages = pages;
	buf->tag = tag;
	buf->pool = pool;
	buf->state = MEMMGR_BUF_NEW;
	buf->evict_idx = -1;
	INIT_LIST_HEAD(&buf->blocks);
	INIT_LIST_HEAD(&buf->lru_node);
	INIT_LIST_HEAD(&buf->notice_node);
	mutex_init(&buf->map_lock);
	RB_CLEAR_NODE(&buf->offset_node);
	RB_CLEAR_NODE(&buf->tag_node);
	return buf;
}

static void buf_destroy(struct kref *ref)
{
	struct memmgr_buffer *buf = container_of(ref, struct memmgr_buffer, ref);

	WARN_ON_ONCE(!list_empty(&buf->blocks));
	mutex_destroy(&buf->map_lock);
	kmem_cache_free(memmgr_buf_cache, buf);
}

void memmgr_buf_put(struct memmgr_buffer *buf)
{
	kref_put(&buf->ref, buf_destroy);
}

/*
 * The file's reference to a buffer it holds is gone: the last one keeps
 * the buffer as the file's spare for its next allocation.  Only for a
 * file still open (@buf->file is alive).
 */
static void buf_recycle(struct kref *ref)
{
	struct memmgr_buffer *buf = container_of(ref, struct memmgr_buffer, ref);

	WARN_ON_ONCE(!list_empty(&buf->blocks));
	mutex_destroy(&buf->map_lock);
	if (cmpxchg(&buf->file->spare_buf, NULL, buf))
		kmem_cache_free(memmgr_buf_cache, buf);
}

/* Order of the tag tree: pool, then tag, then offset. */
static int tag_cmp(u32 pool, u64 tag, u64 pgoff, const struct memmgr_buffer *b)
{
	if (pool != b->pool)
		return pool < b->pool ? -1 : 1;
	if (tag != b->tag)
		return tag < b->tag ? -1 : 1;
	if (pgoff != b->pgoff)
		return pgoff < b->pgoff ? -1 : 1;
	return 0;
}

static void tag_insert_locked(struct memmgr_file *f, struct memmgr_buffer *buf)
{
	struct rb_node **link = &f->tags.rb_node, *parent = NULL;

	lockdep_assert_held(&f->lock);
	while (*link) {
		struct memmgr_buffer *b = rb_entry(*link, struct memmgr_buffer,
						tag_node);

		parent = *link;
		if (tag_cmp(buf->pool, buf->tag, buf->pgoff, b) < 0)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&buf->tag_node, parent, link);
	rb_insert_color(&buf->tag_node, &f->tags);
}

/* The first buffer with @pool and @tag, lowest offset first, or NULL. */
static struct memmgr_buffer *
tag_first_locked(struct memmgr_file *f, u32 pool, u64 tag)
{
	struct rb_node *node = f->tags.rb_node;
	struct memmgr_buffer *found = NULL;

	lockdep_assert_held(&f->lock);
	while (node) {
		struct memmgr_buffer *b = rb_entry(node, struct memmgr_buffer,
						tag_node);

		if (tag_cmp(pool, tag, 0, b) <= 0) {
			if (b->pool == pool && b->tag == tag)
				found = b;
			node = node->rb_left;
		} else {
			node = node->rb_right;
		}
	}
	return found;
}

static struct memmgr_buffer *tag_next(struct memmgr_buffer *buf)
{
	struct rb_node *node = rb_next(&buf->tag_node);
	struct memmgr_buffer *next;

	if (!node)
		return NULL;
	next = rb_entry(node, struct memmgr_buffer, tag_node);
	return next->pool == buf->pool && next->tag == buf->tag ? next : NULL;
}

static u64 buf_handle(const struct memmgr_buffer *buf)
{
	return (u64)buf->seq << 32 | (buf->pgoff + 1);
}

/*
 * Is @buf past its request, LIVE or evicted?  A NEW buffer only holds its
 * tag and range while its request is decided: no call may find it.  A
 * call that finds it NEW and one that finds it LIVE are both ordered
 * correctly against the ALLOC, which has not returned yet; it never goes
 * back to NEW.
 */
static bool buf_granted(const struct memmgr_buffer *buf)
{
	/* Pairs with memmgr_buf_publish_locked(): pages, then LIVE. */
	return smp_load_acquire(&buf->state) != MEMMGR_BUF_NEW;
}

/* The granted buffer a handle names, or NULL. */
static struct memmgr_buffer *find_locked(struct memmgr_file *f, u64 handle)
{
	u32 low = lower_32_bits(handle);
	struct memmgr_buffer *buf;

	if (!low)
		return NULL;
	buf = memmgr_offset_find(f, low - 1);
	if (!buf || buf_handle(buf) != handle || !buf_granted(buf) ||
	    buf->dying)
		return NULL;
	return buf;
}

static void tables_del_locked(struct memmgr_file *f, struct memmgr_buffer *buf)
{
	lockdep_assert_held(&f->lock);
	memmgr_offset_erase(f, buf);
	rb_erase(&buf->tag_node, &f->tags);
}

/*
 * A buffer being freed leaves the file's tables and is found no more.  If
 * the file has a window, the buffer keeps its range of offsets until its
 * mappings are revoked (buf_forget()): the window shows whatever buffer
 * holds a range, so a new buffer must not take the range while the old
 * one's pages may still be mapped there.  Without a window, each mapping
 * belongs to its buffer and the range can go at once.
 */
static void buf_unlink_locked(struct memmgr_file *f, struct memmgr_buffer *buf)
{
	lockdep_assert_held(&f->lock);
	rb_erase(&buf->tag_node, &f->tags);
	if (f->has_window)
		buf->dying = true;
	else
		memmgr_offset_erase(f, buf);
}

/* The buffer is revoked: give its range back and drop the tables' ref. */
static void buf_forget(struct memmgr_file *f, struct memmgr_buffer *buf)
{
	if (buf->dying) {
		mutex_lock(&f->lock);
		memmgr_offset_erase(f, buf);
		mutex_unlock(&f->lock);
	}
	kref_put(&buf->ref, buf_recycle);
}

/**
 * memmgr_buf_get() - a reference to one of a file's buffers by mmap offset
 * @f:		the file
 * @pgoff:	any page offset inside the buffer
 *
 * Return: the buffer, referenced, or NULL.
 */
struct memmgr_buffer *memmgr_buf_get(struct memmgr_file *f, u64 pgoff)
{
	struct memmgr_buffer *buf = NULL;

	mutex_lock(&f->lock);
	buf = memmgr_offset_find(f, pgoff);
	if (buf && buf_granted(buf) && !buf->dying)
		kref_get(&buf->ref);
	else
		buf = NULL;
	mutex_unlock(&f->lock);
	return buf;
}

/*
 * Free a buffer that calls no longer find, keeping the tables' reference
 * for the caller to drop.  Its mappings are revoked (@revoke) before this
 * returns, also when it was evicted and the reclaim worker has not
 * revoked them yet.  If it was LIVE its pages go back; an evicted
 * buffer's pages are the reclaim worker's.
 * Return: the pages given back.
 */
static u64 buf_kill(struct memmgr_file *f, struct memmgr_buffer *buf,
		    bool revoke)
{
	struct memmgr_dev *mm = f->mm;
	u64 pages = 0;

	spin_lock(&mm->lock);
	if (buf->state == MEMMGR_BUF_LIVE) {
		memmgr_uncharge_locked(mm, buf);
		pages = buf->nr_pages;
	}
	if (!list_empty(&buf->notice_node)) {
		/* Freeing a stale entry takes its notice with it. */
		list_del_init(&buf->notice_node);
		f->nr_evicted--;
	}
	spin_unlock(&mm->lock);
	trace_memmgr_free(buf->pool, buf->tag, pages << PAGE_SHIFT, 0);
	if (revoke && f->filp)
		memmgr_buf_revoke(buf, f->filp->f_mapping);
	/* No fault maps it now: @mapped is final.  Kernel clients write. */
	if (pages)
		memmgr_buddy_free(&mm->buddy, &buf->blocks,
				  !f->filp || READ_ONCE(buf->mapped));
	return pages;
}

/*
 * Put a NEW buffer in its file's tables before its request is decided:
 * a storage buffer's tag is the file's from here on, so a second request
 * for it fails before it could wait or evict, and the buffer has its mmap
 * range, so the request cannot fail for want of one after evicting.
 */
static int buf_reserve(struct memmgr_file *f, struct memmgr_buffer *buf)
{
	int ret;

	mutex_lock(&f->lock);
	if (buf->pool == MEMMGR_POOL_STORAGE &&
	    tag_first_locked(f, buf->pool, buf->tag)) {
		ret = -EEXIST;
		goto out_unlock;
	}
	ret = memmgr_offset_insert(f, buf);
	if (ret)
		goto out_unlock;
	buf->seq = f->next_seq++;
	tag_insert_locked(f, buf);
out_unlock:
	mutex_unlock(&f->lock);
	return ret;
}

static void buf_unreserve(struct memmgr_file *f, struct memmgr_buffer *buf)
{
	mutex_lock(&f->lock);
	tables_del_locked(f, buf);
	mutex_unlock(&f->lock);
}

/*
 * A charged buffer has its pages: make it LIVE.  From here on calls find
 * it, and an evictor may take it at once, like any other buffer.
 */
static void buf_publish(struct memmgr_file *f, struct memmgr_buffer *buf,
			bool pinned)
{
	struct memmgr_dev *mm = f->mm;

	spin_lock(&mm->lock);
	memmgr_buf_publish_locked(mm, buf, pinned);
	spin_unlock(&mm->lock);
}

/**
 * memmgr_buf_alloc() - MEMMGR_IOC_ALLOC, its arguments checked
 * @f:		the file
 * @req:	the request; its out fields are filled on success
 * @nonblock:	the file is O_NONBLOCK
 *
 * Nothing is evicted or charged for a request that fails, but for one
 * whose task is killed while it waits for the pages it was granted.
 *
 * Return: 0 or a negative errno (see memmgr_request(), and -EEXIST,
 * -ENOMEM, -ENOSPC, -EINTR).
 */
int memmgr_buf_alloc(struct memmgr_file *f, struct memmgr_alloc *req,
		     bool nonblock)
{
	struct memmgr_dev *mm = f->mm;
	bool pinned = !(req->flags & MEMMGR_ALLOC_UNPINNED);
	struct memmgr_buffer *buf;
	u64 pages;
	int ret;

	/* A size that overflows when rounded is larger than any pool. */
	if (!memmgr_size_to_pages(req->size, PAGE_SHIFT, &pages))
		pages = U64_MAX;
	/* Larger than the offset space: declined as too big (E2BIG). */
	if (pages > MEMMGR_OFFSET_LIMIT >> PAGE_SHIFT)
		pages = U64_MAX;
	buf = buf_create(f, req->pool, req->tag, pages);
	if (!buf)
		return -ENOMEM;
	if (pages != U64_MAX) {
		ret = buf_reserve(f, buf);
		if (ret)
			goto out_put;
	}
	ret = memmgr_request(f, req->pool, req->tag, pages, req->timeout_ms,
			     nonblock);
	if (ret)
		goto out_unreserve;
	ret = memmgr_buddy_alloc(&mm->buddy, pages, &buf->blocks);
	if (ret)
		goto out_uncharge;
	/* Once published, another thread may free it: read it before. */
	req->handle = buf_handle(buf);
	req->offset = buf->pgoff << PAGE_SHIFT;
	req->granted = pages << PAGE_SHIFT;
	buf_publish(f, buf, pinned);
	return 0;

out_uncharge:
	memmgr_buddy_free(&mm->buddy, &buf->blocks, false);
	memmgr_charge_undo(f, req->pool, req->tag, pages);
out_unreserve:
	if (pages != U64_MAX)
		buf_unreserve(f, buf);
out_put:
	memmgr_buf_put(buf);
	return ret;
}

/**
 * memmgr_buf_free() - MEMMGR_IOC_FREE
 * @f:		the file
 * @handle:	one of its buffers, live or evicted
 *
 * Return: 0 or -ENOENT.
 */
int memmgr_buf_free(struct memmgr_file *f, u64 handle)
{
	struct memmgr_buffer *buf;

	mutex_lock(&f->lock);
	buf = find_locked(f, handle);
	if (buf)
		buf_unlink_locked(f, buf);
	mutex_unlock(&f->lock);
	if (!buf)
		return -ENOENT;
	buf_kill(f, buf, true);
	buf_forget(f, buf);
	return 0;
}

/**
 * memmgr_buf_pin() - MEMMGR_IOC_PIN and MEMMGR_IOC_UNPIN
 * @f:		the file
 * @handle:	one of its storage buffers
 * @pin:	true to add a pin, false to drop one
 *
 * Return: 0, -ENOENT, -EINVAL (not storage, or no pin to drop), -ESTALE
 * (evicted) or -EOVERFLOW (too many pins).
 */
int memmgr_buf_pin(struct memmgr_file *f, u64 handle, bool pin)
{
	struct memmgr_dev *mm = f->mm;
	struct memmgr_buffer *buf;
	bool flush = false;
	int ret = 0;

	mutex_lock(&f->lock);
	buf = find_locked(f, handle);
	if (!buf) {
		ret = -ENOENT;
		goto out_unlock;
	}
	spin_lock(&mm->lock);
	if (buf->pool != MEMMGR_POOL_STORAGE) {
		ret = -EINVAL;
	} else if (buf->state != MEMMGR_BUF_LIVE) {
		ret = -ESTALE;
		flush = !memmgr_buf_revoked(buf);
	} else if (pin) {
		if (buf->pins == U32_MAX)
			ret = -EOVERFLOW;
		else if (!buf->pins++)
			memmgr_evictable_del_locked(mm, buf);
	} else if (!buf->pins) {
		ret = -EINVAL;
	} else if (!--buf->pins) {
		memmgr_evictable_add_locked(mm, buf);
		memmgr_wake_locked(mm);
	}
	spin_unlock(&mm->lock);
out_unlock:
	mutex_unlock(&f->lock);
	/* Told it was evicted: its mappings are gone by then. */
	if (flush)
		memmgr_reclaim_flush(mm);
	return ret;
}

/**
 * memmgr_buf_lookup() - MEMMGR_IOC_LOOKUP
 * @f:		the file
 * @req:	in: the tag, or the handle with MEMMGR_LOOKUP_HANDLE; out:
 *		the buffer
 *
 * Return: 0, -ENOENT or -ESTALE (evicted; the entry stays until freed).
 */
int memmgr_buf_lookup(struct memmgr_file *f, struct memmgr_lookup *req)
{
	struct memmgr_dev *mm = f->mm;
	struct memmgr_buffer *buf;
	bool flush = false;
	int ret = 0;

	mutex_lock(&f->lock);
	if (req->flags & MEMMGR_LOOKUP_HANDLE)
		buf = find_locked(f, req->handle);
	else
		buf = tag_first_locked(f, MEMMGR_POOL_STORAGE, req->tag);
	if (!buf || !buf_granted(buf)) {
		ret = -ENOENT;
		goto out_unlock;
	}
	spin_lock(&mm->lock);
	if (buf->state != MEMMGR_BUF_LIVE) {
		ret = -ESTALE;
		flush = !memmgr_buf_revoked(buf);
	} else {
		memmgr_touch_locked(mm, buf);
	}
	spin_unlock(&mm->lock);
	req->tag = buf->tag;
	req->handle = buf_handle(buf);
	req->offset = buf->pgoff << PAGE_SHIFT;
	req->size = buf->nr_pages << PAGE_SHIFT;
out_unlock:
	mutex_unlock(&f->lock);
	/* Told it was evicted: its mappings are gone by then. */
	if (flush)
		memmgr_reclaim_flush(mm);
	return ret;
}

/**
 * memmgr_buf_release() - MEMMGR_IOC_RELEASE
 * @f:		the file
 * @req:	in: pool and tag; out: the bytes given back
 *
 * Buffers of the tag whose ALLOC is still being decided stay.
 *
 * Return: 0.
 */
int memmgr_buf_release(struct memmgr_file *f, struct memmgr_release *req)
{
	struct memmgr_buffer *buf, *next;
	LIST_HEAD(dead);
	u64 pages = 0;

	mutex_lock(&f->lock);
	for (buf = tag_first_locked(f, req->pool, req->tag); buf; buf = next) {
		next = tag_next(buf);
		/* A request of this tag being decided is not released. */
		if (!buf_granted(buf))
			continue;
		buf_unlink_locked(f, buf);
		list_add_tail(&buf->free_node, &dead);
	}
	mutex_unlock(&f->lock);

	list_for_each_entry(buf, &dead, free_node)
		pages += buf_kill(f, buf, true);
	list_for_each_entry_safe(buf, next, &dead, free_node) {
		list_del(&buf->free_node);
		buf_forget(f, buf);
	}
	req->freed = pages << PAGE_SHIFT;
	return 0;
}

/**
 * memmgr_buf_page() - one page of a live buffer, for in-kernel clients
 * @f:		the client
 * @handle:	one of its buffers
 * @index:	a page index in it; zeroed first if its last owner wrote it
 *
 * Return: the page, or NULL.
 */
struct page *memmgr_buf_page(struct memmgr_file *f, u64 handle, u64 index)
{
	struct memmgr_buffer *buf;
	struct page *head, *page = NULL;

	mutex_lock(&f->lock);
	buf = find_locked(f, handle);
	if (!buf || index >= buf->nr_pages)
		goto out_unlock;
	/* Acquire: LIVE, then its blocks (memmgr_buf_publish_locked()). */
	if (smp_load_acquire(&buf->state) != MEMMGR_BUF_LIVE)
		goto out_unlock;
	list_for_each_entry(head, &buf->blocks, lru) {
		u64 n = 1ULL << memmgr_block_order(head);

		if (index < n) {
			page = head + index;
			memmgr_page_expose(page);
			break;
		}
		index -= n;
	}
out_unlock:
	mutex_unlock(&f->lock);
	return page;
}

/**
 * memmgr_file_free_all() - the file is closing: free all its buffers
 * @f: the file; nothing else uses it any more, and no mapping is left
 */
void memmgr_file_free_all(struct memmgr_file *f)
{
	struct memmgr_buffer *buf, *next;
	LIST_HEAD(dead);

	mutex_lock(&f->lock);
	rbtree_postorder_for_each_entry_safe(buf, next, &f->offsets,
					     offset_node)
		list_add_tail(&buf->free_node, &dead);
	f->offsets = RB_ROOT;
	f->tags = RB_ROOT;
	mutex_unlock(&f->lock);

	list_for_each_entry_safe(buf, next, &dead, free_node) {
		list_del(&buf->free_node);
		buf_kill(f, buf, false);
		kref_put(&buf->ref, buf_recycle);
	}
	if (f->spare_buf)
		kmem_cache_free(memmgr_buf_cache, f->spare_buf);
	f->spare_buf = NULL;
}
