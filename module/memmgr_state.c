// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's state area: one 64-bit word per page of an open file's offset
 * space, mapped into the client at MEMMGR_STATE_OFFSET, with which the
 * client pins and unpins its storage buffers by compare-and-swap, with no
 * system call, and the kernel claims a buffer for eviction by a
 * compare-and-swap from "no pin" (uapi/linux/memmgr.h has the protocol).
 * This is Chromium's DiscardableSharedMemory lock word, one per buffer,
 * with the generation of the buffer in it so a stale handle cannot pin
 * the next buffer at the same offset.
 *
 * The words are the client's to write, so the kernel believes one thing
 * of a word only: that it may evict the buffer when the word is exactly
 * "this generation, no pin".  Its own record (the buffer's state, its
 * charge, the evictable set) decides the rest.  A client that writes
 * garbage keeps its own buffers from being evicted, which it could do
 * with pins anyway, and hurts no one else.
 *
 * The kernel counts no pins made in words.  A buffer pinned there stays in
 * the evictable set until an eviction finds it pinned; the kernel then
 * parks it, after futexes' waiters bit: it sets PARKED in the word and
 * takes the buffer out of the set, and the client's unpin that drops the
 * last pin is then a MEMMGR_IOC_UNPIN, which puts it back.  A claim is
 * made in two steps, EVICTING then GONE (or back), both under
 * memmgr_dev.lock, so that a choice of victims that falls short can be
 * undone: a client that finds EVICTING asks the kernel (the PIN ioctl),
 * which answers once the choice is made.
 *
 * Pages of words are allocated when a buffer first needs one, or when the
 * client touches a hole below the highest page a buffer needed (a fault:
 * it then reads as words of no buffer; above that page a fault gets
 * SIGBUS), and kept until the file is released: 8 bytes per page of the
 * offsets the file used, charged to the client's memory cgroup.  Words
 * are read and written through the kernel's own mapping of the pages,
 * under memmgr_dev.lock.  The words need 64-bit atomic loads and stores:
 * a 64-bit kernel (a 32-bit client's cmpxchg8b is fine).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/string.h>
#include <linux/xarray.h>

#include "compat.h"
#include "memmgr.h"
#include "memmgr_state.h"

#define STATE_PGOFF	(MEMMGR_STATE_OFFSET >> PAGE_SHIFT)
#define STATE_PAGES	(MEMMGR_STATE_SIZE >> PAGE_SHIFT)
#define WORDS_PER_PAGE	(PAGE_SIZE / sizeof(u64))

static_assert(MEMMGR_STATE_SIZE / sizeof(u64) ==
	      MEMMGR_OFFSET_LIMIT >> PAGE_SHIFT);
static_assert(IS_ENABLED(CONFIG_64BIT),
	      "state words need 64-bit atomic loads and stores");

/* The page of words @index, made if there is none yet. */
static struct page *state_page_locked(struct memmgr_file *f, pgoff_t index)
{
	struct page *page;
	int ret;

	lockdep_assert_held(&f->lock);
	page = xa_load(&f->state_pages, index);
	if (page)
		return page;
	page = alloc_page(GFP_KERNEL_ACCOUNT);
	if (!page)
		return NULL;
	memset64(page_address(page), MEMMGR_STATE_EMPTY, WORDS_PER_PAGE);
	ret = xa_err(xa_store(&f->state_pages, index, page,
			      GFP_KERNEL_ACCOUNT));
	if (ret) {
		__free_page(page);
		return NULL;
	}
	return page;
}

/*
 * A page of words below the file's high-water mark, made if it is a hole
 * (no buffer began in its range yet); beyond the mark, SIGBUS.  So the
 * area's memory stays within 8 bytes per page of offsets the file used.
 */
static vm_fault_t state_fault(struct vm_fault *vmf)
{
	struct memmgr_file *f = vmf->vma->vm_private_data;
	pgoff_t index = vmf->pgoff - STATE_PGOFF;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	struct page *page;

	mutex_lock(&f->lock);
	if (index < f->state_hi) {
		ret = VM_FAULT_OOM;
		page = state_page_locked(f, index);
		if (page) {
			get_page(page);
			vmf->page = page;
			ret = 0;
		}
	}
	mutex_unlock(&f->lock);
	return ret;
}

static const struct vm_operations_struct memmgr_state_ops = {
	.fault = state_fault,
};

/* Does the file hold a storage buffer, live, evicted or being allocated? */
static bool has_storage_locked(struct memmgr_file *f)
{
	struct rb_node *first = rb_first(&f->tags);

	lockdep_assert_held(&f->lock);
	return first && rb_entry(first, struct memmgr_buffer,
				 tag_node)->pool == MEMMGR_POOL_STORAGE;
}

/**
 * memmgr_state_mmap() - map (part of) a file's state area
 * @f:		the file; its VMAs hold a reference on its struct file
 * @vma:	shared, not executable, at or past MEMMGR_STATE_OFFSET
 *
 * The first mapping makes the area: from then on every storage buffer of
 * the file keeps its pins in its word.  Not inherited by a child.
 *
 * Return: 0, -EINVAL when @vma does not lie inside the area, or -EBUSY
 * when the area is not made yet and the file holds storage buffers.
 */
int memmgr_state_mmap(struct memmgr_file *f, struct vm_area_struct *vma)
{
	struct memmgr_dev *mm = f->mm;
	int ret = 0;

	if (vma->vm_pgoff - STATE_PGOFF >= STATE_PAGES ||
	    vma_pages(vma) > STATE_PAGES - (vma->vm_pgoff - STATE_PGOFF))
		return -EINVAL;
	mutex_lock(&f->lock);
	if (!f->has_state) {
		if (has_storage_locked(f)) {
			ret = -EBUSY;
		} else {
			f->has_state = true;
			spin_lock(&mm->lock);
			mm->nr_state_files++;
			spin_unlock(&mm->lock);
		}
	}
	mutex_unlock(&f->lock);
	if (ret)
		return ret;
	memmgr_vm_flags_mod(vma, VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP,
			    VM_MAYEXEC);
	vma->vm_ops = &memmgr_state_ops;
	vma->vm_private_data = f;
	return 0;
}

/**
 * memmgr_state_attach_locked() - give a new storage buffer its word
 * @f:		the file, with a state area
 * @buf:	the buffer, with its range; its word says "no buffer" until
 *		memmgr_state_publish_locked()
 *
 * Context: memmgr_file.lock held; may sleep.
 * Return: 0 or -ENOMEM.
 */
int memmgr_state_attach_locked(struct memmgr_file *f,
			       struct memmgr_buffer *buf)
{
	pgoff_t index = buf->pgoff / WORDS_PER_PAGE;
	struct page *page;

	page = state_page_locked(f, index);
	if (!page)
		return -ENOMEM;
	f->state_hi = max_t(pgoff_t, f->state_hi, index + 1);
	buf->word = (u64 *)page_address(page) + buf->pgoff % WORDS_PER_PAGE;
	return 0;
}

/**
 * memmgr_state_publish_locked() - a buffer with a word becomes LIVE
 * @buf:	the buffer
 * @pinned:	it starts with one pin
 */
void memmgr_state_publish_locked(struct memmgr_buffer *buf, bool pinned)
{
	WRITE_ONCE(*buf->word, memmgr_state_gen(buf) | pinned);
}

/**
 * memmgr_state_set_locked() - a buffer with a word was evicted or freed
 * @buf:	the buffer
 * @flags:	MEMMGR_STATE_GONE, with MEMMGR_STATE_FREED when freed
 *
 * Whatever the client had in the word, the kernel's record has decided.
 */
void memmgr_state_set_locked(struct memmgr_buffer *buf, u64 flags)
{
	WRITE_ONCE(*buf->word, memmgr_state_gen(buf) | flags);
}

/*
 * Add or drop a pin in the word.  Return the pins it had, or a negative
 * errno.
 */
static long state_pin_word(struct memmgr_buffer *buf, bool pin)
{
	u64 w, pins, new;
	int i;

	for (i = 0; i < MEMMGR_STATE_TRIES; i++) {
		w = READ_ONCE(*buf->word);
		if (memmgr_state_foreign(buf, w))
			return -EIO;
		pins = w & MEMMGR_STATE_PINS;
		if (pin) {
			if (pins == MEMMGR_STATE_PINS)
				return -EOVERFLOW;
			/* The kernel's pins park: it sees them. */
			new = (w + 1) | MEMMGR_STATE_USED |
			      MEMMGR_STATE_PARKED;
		} else {
			if (!pins)
				return -EINVAL;
			new = w - 1;
			if (pins == 1)
				new &= ~MEMMGR_STATE_PARKED;
		}
		if (cmpxchg64(buf->word, w, new) == w)
			return pins;
	}
	return -EAGAIN;
}

/**
 * memmgr_state_pin_locked() - MEMMGR_IOC_PIN/UNPIN of a buffer with a word
 * @mm:		the device
 * @buf:	a LIVE storage buffer with a word
 * @pin:	true to add a pin, false to drop one
 *
 * A pin parks the buffer (out of the evictable set, PARKED in the word);
 * the unpin that drops the last pin puts a parked buffer back in the set,
 * as the most recently used.
 *
 * Context: memmgr_dev.lock held.
 * Return: 0, -EINVAL (no pin to drop), -EOVERFLOW, -EIO (the word is not
 * the buffer's) or -EAGAIN (the client kept changing the word).
 */
int memmgr_state_pin_locked(struct memmgr_dev *mm, struct memmgr_buffer *buf,
			    bool pin)
{
	long pins;

	lockdep_assert_held(&mm->lock);
	pins = state_pin_word(buf, pin);
	if (pins < 0)
		return pins;
	if (pin && !buf->parked) {
		buf->parked = true;
		if (buf->evict_idx >= 0)
			memmgr_evictable_del_locked(mm, buf);
	} else if (!pin && pins == 1 && buf->parked) {
		buf->parked = false;
		memmgr_evictable_add_locked(mm, buf);
		memmgr_wake_locked(mm);
	} else if (!pin && pins == 1) {
		memmgr_touch_locked(mm, buf);
	}
	return 0;
}

/**
 * memmgr_state_pinned_locked() - pages of the evictable set pinned in words
 * @mm:		the device
 *
 * The buffers of the set whose word the kernel could not claim right now
 * (pinned, or not the buffer's): what STATS counts as pinned besides the
 * buffers out of the set.  O(buffers in the set), and nothing when no
 * file has a state area.
 *
 * Context: memmgr_dev.lock held.
 */
u64 memmgr_state_pinned_locked(struct memmgr_dev *mm)
{
	struct memmgr_evictable *e = &mm->evictable;
	struct memmgr_buffer *buf;
	u64 pages = 0, mask, w;
	unsigned long i;
	unsigned int k;

	lockdep_assert_held(&mm->lock);
	if (!mm->nr_state_files)
		return 0;
	for (mask = e->mask; mask; mask &= mask - 1) {
		k = __ffs64(mask);
		for (i = 0; i < e->nr[k]; i++) {
			buf = e->bufs[k][i];
			if (!buf->word)
				continue;
			w = READ_ONCE(*buf->word);
			if ((w & ~MEMMGR_STATE_USED) != memmgr_state_gen(buf))
				pages += buf->nr_pages;
		}
	}
	return pages;
}

/**
 * memmgr_state_exit() - the file is released: free its state area
 * @f:		the file; no buffer and no mapping of it is left
 */
void memmgr_state_exit(struct memmgr_file *f)
{
	struct memmgr_dev *mm = f->mm;
	struct page *page;
	unsigned long index;

	if (!f->has_state)
		return;
	xa_for_each(&f->state_pages, index, page)
		put_page(page);
	xa_destroy(&f->state_pages);
	spin_lock(&mm->lock);
	mm->nr_state_files--;
	spin_unlock(&mm->lock);
}
