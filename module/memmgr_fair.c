// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's exec ids: which are active, and what each holds, for exec_fair.
 *
 * An exec id is keyed by its file and its tag, and is active while it holds
 * execution memory or has a request in flight (being decided or held).
 * Each active id has a struct memmgr_execid in its file's tree; the count
 * of them, over all files, is N in the fair-share rules of
 * memmgr_policy.c.  Everything here runs under memmgr_dev.lock.
 */
#include <linux/slab.h>

#include "memmgr.h"

static struct memmgr_execid *execid_find_locked(struct memmgr_file *f,
						u64 tag)
{
	struct rb_node *node = f->execids.rb_node;

	lockdep_assert_held(&f->mm->lock);
	while (node) {
		struct memmgr_execid *id = rb_entry(node, struct memmgr_execid,
						    node);

		if (tag == id->tag)
			return id;
		node = tag < id->tag ? node->rb_left : node->rb_right;
	}
	return NULL;
}

/**
 * memmgr_execid_spare() - a zeroed node for a new exec id
 * @f: the file
 *
 * The file keeps one node from its last exec id that went idle, so a
 * request of an exec id that comes and goes does not allocate.
 *
 * Context: process context, may sleep.
 * Return: the node, or NULL when memory is short.
 */
struct memmgr_execid *memmgr_execid_spare(struct memmgr_file *f)
{
	struct memmgr_execid *id = xchg(&f->spare_execid, NULL);

	return id ? id : kzalloc(sizeof(*id), GFP_KERNEL);
}

/* Keep @id (zeroed, unused) as the file's spare node, or free it. */
void memmgr_execid_keep(struct memmgr_file *f, struct memmgr_execid *id)
{
	if (id && cmpxchg(&f->spare_execid, NULL, id))
		kfree(id);
}

/* Forget an exec id that holds nothing and asks for nothing. */
static void execid_maybe_free_locked(struct memmgr_file *f,
				     struct memmgr_execid *id)
{
	if (id->pages || id->requests)
		return;
	rb_erase(&id->node, &f->execids);
	f->mm->nr_execids--;
	memset(id, 0, sizeof(*id));
	memmgr_execid_keep(f, id);
}

/**
 * memmgr_execid_get_locked() - an exec id starts a request
 * @f:		its file
 * @tag:	the exec id
 * @spare:	a zeroed allocation, used (and set to NULL) if the id is new
 *
 * Return: the id, active until memmgr_execid_put_locked().
 */
struct memmgr_execid *memmgr_execid_get_locked(struct memmgr_file *f, u64 tag,
					       struct memmgr_execid **spare)
{
	struct rb_node **link = &f->execids.rb_node, *parent = NULL;
	struct memmgr_execid *id = execid_find_locked(f, tag);

	if (!id) {
		while (*link) {
			parent = *link;
			id = rb_entry(parent, struct memmgr_execid, node);
			link = tag < id->tag ? &parent->rb_left :
					       &parent->rb_right;
		}
		id = *spare;
		*spare = NULL;
		id->tag = tag;
		rb_link_node(&id->node, parent, link);
		rb_insert_color(&id->node, &f->execids);
		f->mm->nr_execids++;
	}
	id->requests++;
	return id;
}

/* The request of memmgr_execid_get_locked() is over. */
void memmgr_execid_put_locked(struct memmgr_file *f, struct memmgr_execid *id)
{
	id->requests--;
	execid_maybe_free_locked(f, id);
}

/**
 * memmgr_execid_uncharge_locked() - an exec id's buffer is gone
 * @f:		its file
 * @tag:	the exec id
 * @pages:	the buffer's size
 */
void memmgr_execid_uncharge_locked(struct memmgr_file *f, u64 tag, u64 pages)
{
	struct memmgr_execid *id = execid_find_locked(f, tag);

	if (WARN_ON_ONCE(!id || id->pages < pages))
		return;
	id->pages -= pages;
	execid_maybe_free_locked(f, id);
}
