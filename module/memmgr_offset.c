// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's mmap offsets: each open file has its own offset space, from 0
 * up to MEMMGR_OFFSET_LIMIT, and a new buffer takes the lowest free range
 * large enough for it (first fit).  A freed buffer's range is free again
 * once the buffer is out of the file's tables; an evicted buffer keeps its
 * range until its owner frees it.  So the space a file uses is bounded by
 * what it holds, and no counter can run out: a 32-bit process reaches
 * every offset with mmap2()'s 32-bit page offset.
 *
 * Reuse is safe because a mapping belongs to the buffer it was made for
 * (its vm_private_data), not to the offset: the fault handler maps only
 * that buffer's pages, and only while it is LIVE.  A mapping of a freed
 * buffer gets SIGBUS even after a new buffer took its range, and revoking
 * either buffer's range (unmap_mapping_range()) at worst clears the other
 * one's page tables, which its next fault fills again.
 *
 * The file's offset tree (memmgr_file.offsets) is an augmented rbtree,
 * like the VMA tree's free-gap tracking before the maple tree: each buffer
 * records the free pages between the previous buffer's end (or 0) and its
 * own start (@gap), and the largest such gap in its subtree
 * (@subtree_gap).  Finding the lowest fitting range is one descent.
 *
 * All of it runs under memmgr_file.lock.
 */
#include <linux/rbtree_augmented.h>

#include "memmgr.h"

static u64 buf_gap(struct memmgr_buffer *buf)
{
	return buf->gap;
}

RB_DECLARE_CALLBACKS_MAX(static, offset_gap_cb, struct memmgr_buffer,
			 offset_node, u64, subtree_gap, buf_gap);

static struct memmgr_buffer *offset_entry(struct rb_node *node)
{
	return node ? rb_entry(node, struct memmgr_buffer, offset_node) : NULL;
}

static u64 subtree_gap(struct rb_node *node)
{
	return node ? offset_entry(node)->subtree_gap : 0;
}

/*
 * The lowest buffer with at least @pages free pages right before it, or
 * NULL if no buffer has: the range then starts after the last buffer.
 */
static struct memmgr_buffer *gap_find(struct rb_root *root, u64 pages)
{
	struct rb_node *node = root->rb_node;

	if (subtree_gap(node) < pages)
		return NULL;
	while (node) {
		struct memmgr_buffer *buf = offset_entry(node);

		if (subtree_gap(node->rb_left) >= pages) {
			node = node->rb_left;
			continue;
		}
		if (buf->gap >= pages)
			return buf;
		node = node->rb_right;
	}
	return NULL;		/* not reached: the subtree had the gap */
}

/* Link @buf, whose @pgoff is set and free, into the tree. */
static void offset_link(struct rb_root *root, struct memmgr_buffer *buf)
{
	struct rb_node **link = &root->rb_node, *parent = NULL;

	while (*link) {
		parent = *link;
		if (buf->pgoff < offset_entry(parent)->pgoff)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	/* Its gap is 0: the range starts where the free one did. */
	buf->gap = 0;
	buf->subtree_gap = 0;
	rb_link_node(&buf->offset_node, parent, link);
	rb_insert_augmented(&buf->offset_node, root, &offset_gap_cb);
}

/**
 * memmgr_offset_insert() - give a buffer the lowest free range of its file
 * @f:		the file
 * @buf:	the buffer, @nr_pages set, in no tree yet
 *
 * Context: memmgr_file.lock held.
 * Return: 0 with @buf->pgoff set and @buf in the file's offset tree, or
 * -ENOSPC when no free range below MEMMGR_OFFSET_LIMIT is large enough.
 */
int memmgr_offset_insert(struct memmgr_file *f, struct memmgr_buffer *buf)
{
	u64 limit = MEMMGR_OFFSET_LIMIT >> PAGE_SHIFT, start;
	struct memmgr_buffer *next, *last;

	lockdep_assert_held(&f->lock);
	next = gap_find(&f->offsets, buf->nr_pages);
	if (next) {
		start = next->pgoff - next->gap;
		/* @next's gap shrinks by the new range, before the link. */
		next->gap -= buf->nr_pages;
		offset_gap_cb_propagate(&next->offset_node, NULL);
	} else {
		last = offset_entry(rb_last(&f->offsets));
		start = last ? last->pgoff + last->nr_pages : 0;
		if (buf->nr_pages > limit - start)
			return -ENOSPC;
	}
	buf->pgoff = start;
	offset_link(&f->offsets, buf);
	return 0;
}

/**
 * memmgr_offset_erase() - free a buffer's range
 * @f:		the file
 * @buf:	a buffer in the file's offset tree
 *
 * Context: memmgr_file.lock held.
 */
void memmgr_offset_erase(struct memmgr_file *f, struct memmgr_buffer *buf)
{
	struct memmgr_buffer *next = offset_entry(rb_next(&buf->offset_node));

	lockdep_assert_held(&f->lock);
	rb_erase_augmented(&buf->offset_node, &f->offsets, &offset_gap_cb);
	RB_CLEAR_NODE(&buf->offset_node);
	if (next) {
		next->gap += buf->gap + buf->nr_pages;
		offset_gap_cb_propagate(&next->offset_node, NULL);
	}
}

/**
 * memmgr_offset_find() - the buffer whose range holds a page offset
 * @f:		the file
 * @pgoff:	a page offset
 *
 * Context: memmgr_file.lock held.
 * Return: the buffer, in any state, or NULL.
 */
struct memmgr_buffer *memmgr_offset_find(struct memmgr_file *f, u64 pgoff)
{
	struct rb_node *node = f->offsets.rb_node;

	lockdep_assert_held(&f->lock);
	while (node) {
		struct memmgr_buffer *b = offset_entry(node);

		if (pgoff < b->pgoff)
			node = node->rb_left;
		else if (pgoff - b->pgoff >= b->nr_pages)
			node = node->rb_right;
		else
			return b;
	}
	return NULL;
}
