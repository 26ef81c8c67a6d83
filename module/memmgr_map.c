// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's mappings: mmap() of a buffer, the fault handler that maps its
 * pages (in its own mappings and in its file's window, memmgr_window.c),
 * and revocation when the buffer is freed or evicted.
 *
 * Mappings are VM_PFNMAP: the pages carry no reference for the mapping and
 * cannot be pinned through get_user_pages(), so when a buffer goes nothing
 * outside memmgr still holds its pages.  Pages are mapped by the fault
 * handler, never in mmap(): a VMA is in the file's mapping tree by the time
 * it can fault, so unmap_mapping_range() always finds what was mapped.
 * A fault maps the MEMMGR_FAULT_PAGES chunk of the buffer that holds the
 * faulting page (clipped to the VMA), so its work, and the time it holds
 * map_lock against a revocation that other clients may wait for, is
 * bounded whatever the buffer's size.
 * The handler maps under the buffer's map_lock after checking the buffer is
 * LIVE; revocation takes map_lock after the buffer has left LIVE (unless no
 * fault ever ran on it: see memmgr_buf_revoke()), so no page can be mapped
 * after it.  A fault on a revoked buffer gets SIGBUS.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>

#include <linux/sched/signal.h>

#include "compat.h"
#include "memmgr.h"

/* Pages one fault maps: 2 MiB, aligned within the buffer. */
#define MEMMGR_FAULT_PAGES	512

static void memmgr_vm_open(struct vm_area_struct *vma)
{
	struct memmgr_buffer *buf = vma->vm_private_data;

	kref_get(&buf->ref);
}

static void memmgr_vm_close(struct vm_area_struct *vma)
{
	memmgr_buf_put(vma->vm_private_data);
}

/*
 * The block that holds page @index of the buffer, with the index of its
 * first page in *@start.  The walk starts where the last one ended when
 * it can (@map_head, @map_idx), so the faults of a sequential access walk
 * each block once, however many blocks a fragmented buffer has.
 * Context: map_lock held.
 */
static struct page *block_find(struct memmgr_buffer *buf, u64 index,
			       u64 *start)
{
	struct page *head = buf->map_head;
	u64 idx = buf->map_idx;
	unsigned long n = 0;

	if (!head || index < idx) {
		head = list_first_entry(&buf->blocks, struct page, lru);
		idx = 0;
	}
	while (index - idx >= 1ULL << memmgr_block_order(head)) {
		idx += 1ULL << memmgr_block_order(head);
		head = list_next_entry(head, lru);
		if (!(++n % 1024))
			cond_resched();
	}
	buf->map_head = head;
	buf->map_idx = idx;
	*start = idx;
	return head;
}

/*
 * Map the chunk of the buffer that holds page @index of it, clipped to the
 * VMA and to the buffer, zeroing the pages an earlier owner wrote (the
 * pages are the buffer's until it leaves LIVE, and map_lock serialises the
 * faults that expose them).  Page p of the file's offset space is mapped
 * at @vma's start + (p - @base) pages.  Once the faulting page is mapped,
 * a fatal signal stops the rest, which a later fault maps if the task
 * lives on.
 */
static vm_fault_t map_chunk(struct vm_area_struct *vma, u64 base,
			    struct memmgr_buffer *buf, u64 index)
{
	u64 lo = base > buf->pgoff ? base - buf->pgoff : 0;
	u64 hi = min(base + vma_pages(vma) - buf->pgoff, buf->nr_pages);
	u64 chunk = round_down(index, MEMMGR_FAULT_PAGES);
	u64 start = max(lo, chunk);
	u64 end = min(hi, chunk + MEMMGR_FAULT_PAGES);
	struct page *head, *page;
	unsigned long addr;
	vm_fault_t ret;
	u64 idx, i;

	head = block_find(buf, start, &idx);
	for (i = start; i < end; i++) {
		if (i - idx >= 1ULL << memmgr_block_order(head)) {
			idx += 1ULL << memmgr_block_order(head);
			head = list_next_entry(head, lru);
		}
		if (i > index && fatal_signal_pending(current))
			break;
		page = head + (i - idx);
		addr = vma->vm_start + ((buf->pgoff + i - base) << PAGE_SHIFT);
		memmgr_page_expose(page);
		ret = vmf_insert_pfn(vma, addr, page_to_pfn(page));
		if (ret != VM_FAULT_NOPAGE)
			return ret;
	}
	return VM_FAULT_NOPAGE;
}

/**
 * memmgr_buf_fault() - map what a fault on one buffer's page needs
 * @vma:	the faulting VMA: one of the buffer's own, or a window
 * @base:	the page of the file's offset space at @vma's start
 * @buf:	the buffer, referenced by the caller
 * @index:	the faulting page, as an index in the buffer
 *
 * Return: VM_FAULT_NOPAGE, or VM_FAULT_SIGBUS when the buffer is not LIVE.
 */
vm_fault_t memmgr_buf_fault(struct vm_area_struct *vma, u64 base,
			    struct memmgr_buffer *buf, u64 index)
{
	vm_fault_t ret = VM_FAULT_SIGBUS;

	mutex_lock(&buf->map_lock);
	WRITE_ONCE(buf->mapped, true);
	smp_mb();	/* mapped, then the state; pairs with memmgr_buf_revoke() */
	/* Acquire: LIVE, then its blocks (memmgr_buf_publish_locked()). */
	if (smp_load_acquire(&buf->state) == MEMMGR_BUF_LIVE)
		ret = map_chunk(vma, base, buf, index);
	mutex_unlock(&buf->map_lock);
	return ret;
}

static vm_fault_t memmgr_vm_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct memmgr_buffer *buf = vma->vm_private_data;

	return memmgr_buf_fault(vma, vma->vm_pgoff, buf,
				vmf->pgoff - buf->pgoff);
}

static const struct vm_operations_struct memmgr_vm_ops = {
	.open = memmgr_vm_open,
	.close = memmgr_vm_close,
	.fault = memmgr_vm_fault,
};

/**
 * memmgr_mmap() - map (part of) one live buffer of this file, its window,
 *		its state area or the figures page
 * @filp:	the file
 * @vma:	MAP_SHARED, not executable, inside one live buffer or inside
 *		the window (memmgr_window.c), the state area
 *		(memmgr_state.c) or the figures page (memmgr_figures.c).
 *		A read-only file's shared mapping has VM_MAYSHARE without
 *		VM_SHARED: it is shared all the same.
 *
 * Return: 0, -EINVAL (private, or not inside one live buffer of this
 * file nor inside one of the file's ranges), -EPERM (PROT_EXEC, or a
 * writable figures page) or -EBUSY (a state area made too late).
 */
int memmgr_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct memmgr_file *f = filp->private_data;
	struct memmgr_buffer *buf;

	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	if (vma->vm_pgoff >= MEMMGR_FIGURES_OFFSET >> PAGE_SHIFT)
		return memmgr_figures_mmap(f->mm, vma);
	if (vma->vm_pgoff >= MEMMGR_STATE_OFFSET >> PAGE_SHIFT)
		return memmgr_state_mmap(f, vma);
	if (vma->vm_pgoff >= MEMMGR_WINDOW_OFFSET >> PAGE_SHIFT)
		return memmgr_window_mmap(f, vma);
	buf = memmgr_buf_get(f, vma->vm_pgoff);
	if (!buf)
		return -EINVAL;
	if (vma->vm_pgoff + vma_pages(vma) > buf->pgoff + buf->nr_pages ||
	    READ_ONCE(buf->state) != MEMMGR_BUF_LIVE) {
		memmgr_buf_put(buf);
		return -EINVAL;
	}
	memmgr_vm_flags_mod(vma, VM_PFNMAP | VM_IO | VM_DONTEXPAND |
			    VM_DONTDUMP, VM_MAYEXEC);
	vma->vm_ops = &memmgr_vm_ops;
	vma->vm_private_data = buf;
	return 0;
}

/**
 * memmgr_buf_revoke() - unmap a buffer from every process
 * @buf:	the buffer, no longer LIVE
 * @mapping:	its file's mapping, which holds the buffer's VMAs and the
 *		file's windows
 *
 * A buffer no fault ever mapped has no page tables to clear: only the
 * fault handler maps pages, and it will not for a buffer that left LIVE.
 * The fault handler sets @mapped before it reads the state and this reads
 * @mapped after the state changed, each with a full barrier between: so
 * either this sees @mapped, or the fault sees the buffer is not LIVE.
 * Taking map_lock then waits for a fault that is mapping pages right now.
 *
 * Context: process context, may sleep.
 */
void memmgr_buf_revoke(struct memmgr_buffer *buf,
		       struct address_space *mapping)
{
	smp_mb();	/* the state (set by the caller), then mapped */
	if (!READ_ONCE(buf->mapped))
		return;
	mutex_lock(&buf->map_lock);
	unmap_mapping_range(mapping, (loff_t)buf->pgoff << PAGE_SHIFT,
			    (loff_t)buf->nr_pages << PAGE_SHIFT, 1);
	/* Its range in the file's window, if one is mapped. */
	unmap_mapping_range(mapping, MEMMGR_WINDOW_OFFSET +
			    ((loff_t)buf->pgoff << PAGE_SHIFT),
			    (loff_t)buf->nr_pages << PAGE_SHIFT, 1);
	mutex_unlock(&buf->map_lock);
}
