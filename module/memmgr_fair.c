// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's exec ids: which are active, and what each holds, for exec_fair.
 *
 * An exec id is keyed by its file and its tag, and is active while it holds
 * execution memory or has a request in flight (being decided or held).
 * Each active id has a struct memmgr_execid in its file's tree; the count
 * of them, over all files, is N in the fair-share rules of
 * memmgr_policy.c.  The tree may also hold the file's one idle node
 * (memmgr_file.idle_execid), which N does not count.  Everything here runs
 * under memmgr_dev.lock, except for a closed file's last clean-up.
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
 * memmgr_execid_refill() - give the file a node for a new exec id
 * @f: the file, whose memmgr_execid_get_locked() found no node to use
 *
 * The file keeps one node that is not active: the last exec id that went
 * idle, left in its tree so that the id's next request finds it (an exec
 * id that comes and goes costs no tree insertion), and otherwise the node
 * for the next new exec id.  This gives it one when it has none.
 *
 * Context: process context, may sleep; takes memmgr_dev.lock.
 * Return: 0 or -ENOMEM.
 */
int memmgr_execid_refill(struct memmgr_file *f)
{
	struct memmgr_execid *id = kzalloc(sizeof(*id), GFP_KERNEL);

	if (!id)
		return -ENOMEM;
	RB_CLEAR_NODE(&id->node);
	spin_lock(&f->mm->lock);
	if (!f->idle_execid) {
		f->idle_execid = id;
		id = NULL;
	}
	spin_unlock(&f->mm->lock);
	kfree(id);		/* another request gave it one first */
	return 0;
}

/* Take the file's idle node out of the tree if it is there. */
static struct memmgr_execid *execid_unlink_idle(struct memmgr_file *f)
{
	struct memmgr_execid *id = f->idle_execid;

	if (id && !RB_EMPTY_NODE(&id->node)) {
		rb_erase(&id->node, &f->execids);
		RB_CLEAR_NODE(&id->node);
	}
	return id;
}

/* An exec id that holds nothing and asks for nothing is no longer active. */
static void execid_maybe_idle_locked(struct memmgr_file *f,
				     struct memmgr_execid *id)
{
	struct memmgr_execid *old;

	if (id->pages || id->requests)
		return;
	f->mm->nr_execids--;
	/* The file keeps the newest idle node, in the tree. */
	old = execid_unlink_idle(f);
	f->idle_execid = id;
	kfree(old);
}

static void execid_insert_locked(struct memmgr_file *f,
				 struct memmgr_execid *new)
{
	struct rb_node **link = &f->execids.rb_node, *parent = NULL;

	while (*link) {
		struct memmgr_execid *id = rb_entry(*link, struct memmgr_execid,
						    node);

		parent = *link;
		link = new->tag < id->tag ? &parent->rb_left :
					    &parent->rb_right;
	}
	rb_link_node(&new->node, parent, link);
	rb_insert_color(&new->node, &f->execids);
}

/**
 * memmgr_execid_get_locked() - an exec id starts a request
 * @f:		its file
 * @tag:	the exec id
 *
 * Return: the id, active until memmgr_execid_put_locked(); NULL when it
 * is new and the file has no node for it (see memmgr_execid_refill()).
 */
struct memmgr_execid *memmgr_execid_get_locked(struct memmgr_file *f, u64 tag)
{
	struct memmgr_execid *id = execid_find_locked(f, tag);

	if (!id) {
		id = execid_unlink_idle(f);
		if (!id)
			return NULL;
		id->tag = tag;
		execid_insert_locked(f, id);
	}
	if (id == f->idle_execid) {
		f->idle_execid = NULL;
		f->mm->nr_execids++;
	}
	id->requests++;
	return id;
}

/**
 * memmgr_execids_exit() - free a closed file's exec id nodes
 * @f: the file; all its memory is freed, so no exec id is active
 */
void memmgr_execids_exit(struct memmgr_file *f)
{
	struct memmgr_execid *idle = execid_unlink_idle(f);

	f->idle_execid = NULL;
	kfree(idle);
	WARN_ON_ONCE(!RB_EMPTY_ROOT(&f->execids));
}

/* The request of memmgr_execid_get_locked() is over. */
void memmgr_execid_put_locked(struct memmgr_file *f, struct memmgr_execid *id)
{
	id->requests--;
	execid_maybe_idle_locked(f, id);
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
	execid_maybe_idle_locked(f, id);
}
