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

static void buf_init(struct memmgr_buffer *buf, struct memmgr_file *f,
		     u32 pool, u64 tag, u64 pages)
{
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
}

/* The pages a request's size asks for: U64_MAX for more than can be. */
static u64 req_pages(const struct memmgr_alloc *req)
{
	u64 pages;

	/* A size that overflows when rounded is larger than any pool. */
	if (!memmgr_size_to_pages(req->size, PAGE_SHIFT, &pages))
		return U64_MAX;
	/* Larger than the offset space: declined as too big (E2BIG). */
	if (pages > MEMMGR_OFFSET_LIMIT >> PAGE_SHIFT)
		return U64_MAX;
	return pages;
}

/*
 * Keep up to MEMMGR_SPARES of @n unreferenced buffers, free the rest.  The
 * first goes to the spare slot if it is empty, without a lock: a single
 * FREE then ALLOC takes no lock for its buffer.
 */
static void bufs_recycle(struct memmgr_file *f, struct memmgr_buffer **bufs,
			 u32 n)
{
	u32 i = 0;

	if (n && !cmpxchg(&f->spare_buf, NULL, bufs[0]))
		i = 1;
	if (i == n)
		return;
	spin_lock(&f->spare_lock);
	for (; i < n && f->nr_spares < MEMMGR_SPARES; i++, f->nr_spares++)
		list_add(&bufs[i]->free_node, &f->spares);
	spin_unlock(&f->spare_lock);
	if (i < n)
		kmem_cache_free_bulk(memmgr_buf_cache, n - i, (void **)&bufs[i]);
}

/* New buffers for @n requests: the file's spares first, then the slab's. */
static int bufs_create(struct memmgr_file *f, const struct memmgr_alloc *reqs,
		       struct memmgr_buffer **bufs, u32 n)
{
	u32 i = 0;

	bufs[0] = xchg(&f->spare_buf, NULL);
	if (bufs[0])
		i = 1;
	if (i < n && READ_ONCE(f->nr_spares)) {
		spin_lock(&f->spare_lock);
		for (; i < n && f->nr_spares; i++, f->nr_spares--) {
			bufs[i] = list_first_entry(&f->spares,
						   struct memmgr_buffer,
						   free_node);
			list_del(&bufs[i]->free_node);
		}
		spin_unlock(&f->spare_lock);
	}
	if (i < n && !kmem_cache_alloc_bulk(memmgr_buf_cache, GFP_KERNEL,
					    n - i, (void **)&bufs[i])) {
		bufs_recycle(f, bufs, i);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		buf_init(bufs[i], f, reqs[i].pool, reqs[i].tag,
			 req_pages(&reqs[i]));
	return 0;
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
	bufs_recycle(buf->file, &buf, 1);
}

/*
 * Order of the tag tree: pool, then tag, then sequence number (which the
 * buffer has before its range, so a new buffer's place is found, and a
 * storage tag's owner with it, in one walk: tag_link_locked()).
 */
static int tag_cmp(u32 pool, u64 tag, u32 seq, const struct memmgr_buffer *b)
{
	if (pool != b->pool)
		return pool < b->pool ? -1 : 1;
	if (tag != b->tag)
		return tag < b->tag ? -1 : 1;
	if (seq != b->seq)
		return seq < b->seq ? -1 : 1;
	return 0;
}

/*
 * Where @buf goes in the tag tree, or NULL when it is storage and another
 * storage buffer holds its tag: that one is the in-order neighbour of
 * @buf's place (nothing else sorts between them), and a walk to a place
 * passes both its neighbours.
 */
static struct rb_node **tag_link_locked(struct memmgr_file *f,
					struct memmgr_buffer *buf,
					struct rb_node **parent)
{
	struct rb_node **link = &f->tags.rb_node;

	lockdep_assert_held(&f->lock);
	*parent = NULL;
	while (*link) {
		struct memmgr_buffer *b = rb_entry(*link, struct memmgr_buffer,
						tag_node);

		if (buf->pool == MEMMGR_POOL_STORAGE &&
		    b->pool == MEMMGR_POOL_STORAGE && b->tag == buf->tag)
			return NULL;
		*parent = *link;
		if (tag_cmp(buf->pool, buf->tag, buf->seq, b) < 0)
			link = &b->tag_node.rb_left;
		else
			link = &b->tag_node.rb_right;
	}
	return link;
}

static void tag_insert_locked(struct memmgr_file *f, struct memmgr_buffer *buf)
{
	struct rb_node **link, *parent;

	link = tag_link_locked(f, buf, &parent);
	/* Callers checked the tag; a storage tag found taken is a bug. */
	if (WARN_ON_ONCE(!link))
		return;
	rb_link_node(&buf->tag_node, parent, link);
	rb_insert_color(&buf->tag_node, &f->tags);
}

/* The first buffer with @pool and @tag, oldest first, or NULL. */
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
 * mappings are revoked (bufs_forget()): the window shows whatever buffer
 * holds a range, so a new buffer must not take the range while the old
 * one's pages may still be mapped there.  So too with a state word: the
 * word is the range's, and the old buffer writes it FREED after it left
 * the tables (buf_kill_locked()), which must not land on a new buffer's
 * word.  Without either, each mapping belongs to its buffer and the range
 * can go at once.
 */
static void buf_unlink_locked(struct memmgr_file *f, struct memmgr_buffer *buf)
{
	lockdep_assert_held(&f->lock);
	rb_erase(&buf->tag_node, &f->tags);
	if (f->has_window || buf->word)
		buf->dying = true;
	else
		memmgr_offset_erase(f, buf);
}

/*
 * The buffers are revoked: give their ranges back (the file's lock once)
 * and drop the tables' references; the buffers no one refers to any more
 * are recycled at once (gathered at the front of @bufs).
 */
static void bufs_forget(struct memmgr_file *f, struct memmgr_buffer **bufs,
			u32 n)
{
	bool dying = false;
	u32 i, k = 0;

	for (i = 0; i < n; i++)
		dying |= bufs[i]->dying;
	if (dying) {
		mutex_lock(&f->lock);
		for (i = 0; i < n; i++)
			if (bufs[i]->dying)
				memmgr_offset_erase(f, bufs[i]);
		mutex_unlock(&f->lock);
	}
	for (i = 0; i < n; i++) {
		/* kref_put() but for the release: gathered for one free. */
		if (!refcount_dec_and_test(&bufs[i]->ref.refcount))
			continue;
		WARN_ON_ONCE(!list_empty(&bufs[i]->blocks));
		mutex_destroy(&bufs[i]->map_lock);
		bufs[k++] = bufs[i];
	}
	bufs_recycle(f, bufs, k);
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
static u64 buf_kill_locked(struct memmgr_file *f, struct memmgr_buffer *buf)
{
	struct memmgr_dev *mm = f->mm;
	u64 pages = 0;

	lockdep_assert_held(&mm->lock);
	if (buf->state == MEMMGR_BUF_LIVE) {
		memmgr_uncharge_locked(mm, buf);
		pages = buf->nr_pages;
	}
	if (buf->word)
		memmgr_state_set_locked(buf, MEMMGR_STATE_GONE |
					MEMMGR_STATE_FREED);
	if (!list_empty(&buf->notice_node)) {
		/* Freeing a stale entry takes its notice with it. */
		list_del_init(&buf->notice_node);
		f->nr_evicted--;
	}
	return pages;
}

/* After buf_kill_locked(): revoke, and give back the pages of a LIVE one. */
static void buf_kill_finish(struct memmgr_file *f, struct memmgr_buffer *buf,
			    u64 pages, bool revoke)
{
	trace_memmgr_free(buf->pool, buf->tag, pages << PAGE_SHIFT, 0);
	if (revoke && f->filp)
		memmgr_buf_revoke(buf, f->filp->f_mapping);
	/* No fault maps it now: @mapped is final.  Kernel clients write. */
	if (pages)
		memmgr_buddy_free(&f->mm->buddy, &buf->blocks,
				  !f->filp || READ_ONCE(buf->mapped));
}

static u64 buf_kill(struct memmgr_file *f, struct memmgr_buffer *buf,
		    bool revoke)
{
	u64 pages;

	spin_lock(&f->mm->lock);
	pages = buf_kill_locked(f, buf);
	spin_unlock(&f->mm->lock);
	buf_kill_finish(f, buf, pages, revoke);
	return pages;
}

/*
 * buf_kill() for @n buffers, taking memmgr_dev.lock once and the buddy's
 * lock once per kind of pages (written or not) for all of them.
 */
static void bufs_kill(struct memmgr_file *f, struct memmgr_buffer **bufs,
		      u32 n)
{
	struct memmgr_buddy *b = &f->mm->buddy;
	LIST_HEAD(written);
	LIST_HEAD(clean);
	u64 pages;
	u32 i;

	if (!n)
		return;
	spin_lock(&f->mm->lock);
	for (i = 0; i < n; i++)
		buf_kill_locked(f, bufs[i]);
	spin_unlock(&f->mm->lock);
	for (i = 0; i < n; i++) {
		/* LIVE ones are FREED now, evicted ones stay EVICTED. */
		pages = bufs[i]->state == MEMMGR_BUF_FREED ?
			bufs[i]->nr_pages : 0;
		trace_memmgr_free(bufs[i]->pool, bufs[i]->tag,
				  pages << PAGE_SHIFT, 0);
		if (f->filp)
			memmgr_buf_revoke(bufs[i], f->filp->f_mapping);
		if (!pages)
			continue;
		/* No fault maps it now: @mapped is final.  Kernel clients write. */
		list_splice_init(&bufs[i]->blocks,
				 !f->filp || READ_ONCE(bufs[i]->mapped) ?
				 &written : &clean);
	}
	if (!list_empty(&written))
		memmgr_buddy_free(b, &written, true);
	if (!list_empty(&clean))
		memmgr_buddy_free(b, &clean, false);
}

/*
 * Put a NEW buffer in its file's tables before its request is decided:
 * a storage buffer's tag is the file's from here on, so a second request
 * for it fails before it could wait or evict, and the buffer has its mmap
 * range (and its state word), so the request cannot fail for want of one
 * after evicting.  A size too large for any range is left out: its
 * request fails (E2BIG).
 */
static int buf_reserve_locked(struct memmgr_file *f, struct memmgr_buffer *buf)
{
	struct rb_node **link, *parent;
	int ret;

	lockdep_assert_held(&f->lock);
	if (buf->nr_pages == U64_MAX)
		return 0;
	buf->seq = f->next_seq;
	link = tag_link_locked(f, buf, &parent);
	if (!link)
		return -EEXIST;
	ret = memmgr_offset_insert(f, buf);
	if (ret)
		return ret;
	if (f->has_state && buf->pool == MEMMGR_POOL_STORAGE) {
		ret = memmgr_state_attach_locked(f, buf);
		if (ret) {
			memmgr_offset_erase(f, buf);
			return ret;
		}
	}
	/* The tag tree did not change since the walk: @link still holds. */
	f->next_seq++;
	rb_link_node(&buf->tag_node, parent, link);
	rb_insert_color(&buf->tag_node, &f->tags);
	return 0;
}

/*
 * Reserve @n buffers in order; return how many, *@err for the next (0
 * when all were).  The phases after it set *@err only when one fails, so
 * the first error of a batch is the one it ends with.
 */
static u32 bufs_reserve(struct memmgr_file *f, struct memmgr_buffer **bufs,
			u32 n, int *err)
{
	int ret = 0;
	u32 i;

	mutex_lock(&f->lock);
	for (i = 0; i < n; i++) {
		ret = buf_reserve_locked(f, bufs[i]);
		if (ret)
			break;
	}
	mutex_unlock(&f->lock);
	*err = ret;
	return i;
}

/* Undo bufs_reserve() and bufs_create() for @n buffers. */
static void bufs_unreserve(struct memmgr_file *f, struct memmgr_buffer **bufs,
			   u32 n)
{
	u32 i;

	if (!n)
		return;
	mutex_lock(&f->lock);
	for (i = 0; i < n; i++)
		if (bufs[i]->nr_pages != U64_MAX)
			tables_del_locked(f, bufs[i]);
	mutex_unlock(&f->lock);
}

static void bufs_put(struct memmgr_buffer **bufs, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++)
		memmgr_buf_put(bufs[i]);
}

/*
 * Charge the requests, in order, that the rules grant at once, under one
 * hold of memmgr_dev.lock.  Return how many.
 */
static u32 bufs_request_now(struct memmgr_file *f,
			    const struct memmgr_alloc *reqs,
			    struct memmgr_buffer **bufs, u32 n)
{
	struct memmgr_dev *mm = f->mm;
	u32 i = 0;

	spin_lock(&mm->lock);
	while (i < n && memmgr_request_now_locked(f, reqs[i].pool, reqs[i].tag,
						  bufs[i]->nr_pages))
		i++;
	spin_unlock(&mm->lock);
	return i;
}

/* Undo bufs_request() for @n requests. */
static void bufs_uncharge(struct memmgr_file *f,
			  const struct memmgr_alloc *reqs,
			  struct memmgr_buffer **bufs, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++)
		memmgr_charge_undo(f, reqs[i].pool, reqs[i].tag,
				   bufs[i]->nr_pages);
}

/* Pages for @n charged buffers; return how many got theirs, *@err next. */
static u32 bufs_pages(struct memmgr_dev *mm, struct memmgr_buffer **bufs,
		      u32 n, int *err)
{
	int ret;
	u32 i;

	for (i = 0; i < n; i++) {
		ret = memmgr_buddy_alloc(&mm->buddy, bufs[i]->nr_pages,
					 &bufs[i]->blocks);
		if (ret) {
			memmgr_buddy_free(&mm->buddy, &bufs[i]->blocks, false);
			*err = ret;
			break;
		}
	}
	return i;
}

/*
 * The buffers have their pages: fill in the requests' out fields, then
 * make them LIVE.  From here on calls find them, another thread may free
 * them, and an evictor may take them at once, like any other buffer.
 */
static void bufs_publish(struct memmgr_file *f, struct memmgr_alloc *reqs,
			 struct memmgr_buffer **bufs, u32 n)
{
	struct memmgr_dev *mm = f->mm;
	u32 i;

	for (i = 0; i < n; i++) {
		reqs[i].handle = buf_handle(bufs[i]);
		reqs[i].offset = bufs[i]->pgoff << PAGE_SHIFT;
		reqs[i].granted = bufs[i]->nr_pages << PAGE_SHIFT;
	}
	spin_lock(&mm->lock);
	for (i = 0; i < n; i++)
		memmgr_buf_publish_locked(mm, bufs[i], !(reqs[i].flags &
						       MEMMGR_ALLOC_UNPINNED));
	spin_unlock(&mm->lock);
}

/**
 * memmgr_buf_alloc_many() - allocate for several requests, in order
 * @f:		the file
 * @reqs:	the requests, their arguments checked; out fields are filled
 *		for each one granted
 * @bufs:	room for @n buffer pointers, the caller's scratch
 * @n:		how many, at most MEMMGR_ALLOC_CHUNK
 * @nonblock:	the file is O_NONBLOCK
 * @err:	set to the error of request *return, when that is below @n
 *
 * Each request is decided as a single ALLOC is, in order, and the first
 * that fails ends the batch; each phase takes its lock once for all the
 * requests it has (MEMMGR_IOC_ALLOC is a batch of one).  Nothing is
 * evicted or charged for a request that fails, but for one whose task is
 * killed while it waits for the pages it was granted.
 *
 * Return: the number of requests granted.
 */
u32 memmgr_buf_alloc_many(struct memmgr_file *f, struct memmgr_alloc *reqs,
			  struct memmgr_buffer **bufs, u32 n, bool nonblock,
			  int *err)
{
	u32 reserved, charged, got, done = 0;
	int ret;

	if (WARN_ON_ONCE(!n)) {
		*err = -EINVAL;
		return 0;
	}
	*err = bufs_create(f, reqs, bufs, n);
	if (*err)
		return 0;
	reserved = bufs_reserve(f, bufs, n, err);
	/*
	 * Runs of requests granted at once are made LIVE before the next
	 * request that is not goes through memmgr_request() (which may
	 * evict them, or hold): as the single calls would find them.
	 */
	while (done < reserved) {
		charged = done + bufs_request_now(f, reqs + done, bufs + done,
						  reserved - done);
		if (charged == done) {
			ret = memmgr_request(f, reqs[done].pool, reqs[done].tag,
					     bufs[done]->nr_pages,
					     reqs[done].timeout_ms, nonblock);
			if (ret) {
				*err = ret;
				break;
			}
			charged++;
		}
		got = bufs_pages(f->mm, bufs + done, charged - done, err);
		bufs_publish(f, reqs + done, bufs + done, got);
		done += got;
		if (done < charged) {
			bufs_uncharge(f, reqs + done, bufs + done,
				      charged - done);
			break;
		}
	}
	bufs_unreserve(f, bufs + done, reserved - done);
	bufs_put(bufs + done, n - done);
	return done;
}

/**
 * memmgr_buf_alloc() - MEMMGR_IOC_ALLOC, its arguments checked
 * @f:		the file
 * @req:	the request; its out fields are filled on success
 * @nonblock:	the file is O_NONBLOCK
 *
 * Return: 0 or a negative errno (see memmgr_request(), and -EEXIST,
 * -ENOMEM, -ENOSPC, -EINTR).
 */
int memmgr_buf_alloc(struct memmgr_file *f, struct memmgr_alloc *req,
		     bool nonblock)
{
	struct memmgr_buffer *buf;
	int err;

	return memmgr_buf_alloc_many(f, req, &buf, 1, nonblock, &err) ? 0 : err;
}

/**
 * memmgr_buf_free_many() - free several buffers, in order
 * @f:		the file
 * @handles:	its buffers, live or evicted
 * @bufs:	room for @n buffer pointers, the caller's scratch
 * @n:		how many
 * @err:	set to -ENOENT when handle *return is not one of them
 *
 * Each lock is taken once for the batch (MEMMGR_IOC_FREE is a batch of
 * one).  A handle twice in one batch is not found the second time.
 *
 * Return: the number of buffers freed: the handles before the first
 * unknown one.
 */
u32 memmgr_buf_free_many(struct memmgr_file *f, const u64 *handles,
			 struct memmgr_buffer **bufs, u32 n, int *err)
{
	u32 i;

	*err = 0;
	mutex_lock(&f->lock);
	for (i = 0; i < n; i++) {
		bufs[i] = find_locked(f, handles[i]);
		if (!bufs[i]) {
			*err = -ENOENT;
			break;
		}
		buf_unlink_locked(f, bufs[i]);
	}
	mutex_unlock(&f->lock);
	bufs_kill(f, bufs, i);
	bufs_forget(f, bufs, i);
	return i;
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
	int err;

	memmgr_buf_free_many(f, &handle, &buf, 1, &err);
	return err;
}

/**
 * memmgr_buf_pin() - MEMMGR_IOC_PIN and MEMMGR_IOC_UNPIN
 * @f:		the file
 * @handle:	one of its storage buffers
 * @pin:	true to add a pin, false to drop one
 *
 * A buffer with a state word keeps its pins there (memmgr_state.c).
 *
 * Return: 0, -ENOENT, -EINVAL (not storage, or no pin to drop), -ESTALE
 * (evicted), -EOVERFLOW (too many pins), or for a buffer with a state
 * word -EIO (the word is not the buffer's) or -EAGAIN.
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
	} else if (buf->word) {
		ret = memmgr_state_pin_locked(mm, buf, pin);
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
 * memmgr_buf_retag() - MEMMGR_IOC_RETAG
 * @f:		the file
 * @handle:	one of its live storage buffers
 * @tag:	its new page id
 *
 * Return: 0, -ENOENT, -EINVAL (not storage), -ESTALE (evicted) or
 * -EEXIST (another storage buffer of the file holds @tag).
 */
int memmgr_buf_retag(struct memmgr_file *f, u64 handle, u64 tag)
{
	struct memmgr_dev *mm = f->mm;
	struct memmgr_buffer *buf, *other;
	bool flush = false;
	int ret = 0;

	mutex_lock(&f->lock);
	buf = find_locked(f, handle);
	if (!buf) {
		ret = -ENOENT;
		goto out_unlock;
	}
	if (buf->pool != MEMMGR_POOL_STORAGE) {
		ret = -EINVAL;
		goto out_unlock;
	}
	other = tag_first_locked(f, MEMMGR_POOL_STORAGE, tag);
	if (other && other != buf) {
		ret = -EEXIST;
		goto out_unlock;
	}
	/* Notices and tracing read the tag under memmgr_dev.lock. */
	spin_lock(&mm->lock);
	if (buf->state != MEMMGR_BUF_LIVE) {
		ret = -ESTALE;
		flush = !memmgr_buf_revoked(buf);
	} else if (!other) {
		rb_erase(&buf->tag_node, &f->tags);
		WRITE_ONCE(buf->tag, tag);
		tag_insert_locked(f, buf);
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
		bufs_forget(f, &buf, 1);
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
	list_for_each_entry_safe(buf, next, &f->spares, free_node)
		kmem_cache_free(memmgr_buf_cache, buf);
	if (f->spare_buf)
		kmem_cache_free(memmgr_buf_cache, f->spare_buf);
	f->spare_buf = NULL;
	INIT_LIST_HEAD(&f->spares);
	f->nr_spares = 0;
}
