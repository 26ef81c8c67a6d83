// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's window: one mapping in which every buffer of an open file
 * appears at its own offset (MEMMGR_WINDOW_OFFSET + the buffer's offset in
 * the file), so that a client maps once, whatever the number of its
 * buffers, and an ALLOC hands back memory that is already mapped.
 *
 * A window VMA belongs to its file, not to a buffer.  Its fault handler
 * looks the faulting offset up in the file's offset tree, takes a
 * reference on the buffer there and maps a chunk of it exactly as a fault
 * on the buffer's own mapping does (memmgr_buf_fault(): the same map_lock,
 * the same LIVE check, the same @mapped flag), so revocation covers both:
 * memmgr_buf_revoke() clears the buffer's range in its own mappings and in
 * the file's window.  Where no buffer is, or the buffer is not LIVE (being
 * allocated, evicted or freed), the fault gets SIGBUS.  A freed buffer's
 * range in the window shows whichever buffer takes the range next.
 *
 * Lock order: the fault holds mmap_lock, then memmgr_file.lock (the
 * lookup), then the buffer's map_lock, as memmgr.h writes it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>

#include "compat.h"
#include "memmgr.h"

#define WINDOW_PGOFF	(MEMMGR_WINDOW_OFFSET >> PAGE_SHIFT)
#define WINDOW_PAGES	(MEMMGR_OFFSET_LIMIT >> PAGE_SHIFT)

static vm_fault_t memmgr_window_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct memmgr_file *f = vma->vm_private_data;
	u64 pgoff = vmf->pgoff - WINDOW_PGOFF;
	struct memmgr_buffer *buf;
	vm_fault_t ret;

	buf = memmgr_buf_get(f, pgoff);
	if (!buf)
		return VM_FAULT_SIGBUS;
	ret = memmgr_buf_fault(vma, vma->vm_pgoff - WINDOW_PGOFF, buf,
			       pgoff - buf->pgoff);
	memmgr_buf_put(buf);
	return ret;
}

static const struct vm_operations_struct memmgr_window_ops = {
	.fault = memmgr_window_fault,
};

/**
 * memmgr_window_mmap() - map (part of) a file's window
 * @f:		the file; its VMAs hold a reference on its struct file
 * @vma:	shared, not executable, at or past MEMMGR_WINDOW_OFFSET
 *
 * Return: 0, or -EINVAL when @vma does not lie inside the window.
 */
int memmgr_window_mmap(struct memmgr_file *f, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff - WINDOW_PGOFF >= WINDOW_PAGES ||
	    vma_pages(vma) > WINDOW_PAGES - (vma->vm_pgoff - WINDOW_PGOFF))
		return -EINVAL;
	/* From now on freed buffers keep their range until revoked. */
	mutex_lock(&f->lock);
	f->has_window = true;
	mutex_unlock(&f->lock);
	memmgr_vm_flags_mod(vma, VM_PFNMAP | VM_IO | VM_DONTEXPAND |
			    VM_DONTDUMP, VM_MAYEXEC);
	vma->vm_ops = &memmgr_window_ops;
	vma->vm_private_data = f;
	return 0;
}
