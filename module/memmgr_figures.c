// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's figures page: the pools' figures (struct memmgr_figures) in one
 * page that every client may map read-only at MEMMGR_FIGURES_OFFSET, so a
 * cache can size itself and see pressure coming without a system call.
 *
 * The page is written under memmgr_dev.lock whenever a figure changes,
 * while it is mapped (a page more for every request to touch: under TCG,
 * whose TLB is flushed at every system call, 0.15 us a call), inside a
 * sequence count kept in the page itself (odd while writing), so a reader
 * that sees the same even count before and after its reads has a
 * consistent snapshot.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>

#include "compat.h"
#include "memmgr.h"

#define FIGURES_PGOFF	(MEMMGR_FIGURES_OFFSET >> PAGE_SHIFT)

static_assert(sizeof(struct memmgr_figures) <= PAGE_SIZE);

/**
 * memmgr_figures_init() - the figures page, with the figures at load
 * @mm:		the device, its policy set up
 *
 * Return: 0 or -ENOMEM.
 */
int memmgr_figures_init(struct memmgr_dev *mm)
{
	mm->figures_page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!mm->figures_page)
		return -ENOMEM;
	mm->figures = page_address(mm->figures_page);
	mm->figures->page_size = PAGE_SIZE;
	return 0;
}

void memmgr_figures_exit(struct memmgr_dev *mm)
{
	if (mm->figures_page)
		put_page(mm->figures_page);
	mm->figures_page = NULL;
	mm->figures = NULL;
}

/**
 * memmgr_figures_write_locked() - write the figures of this moment
 * @mm:		the device
 *
 * Context: memmgr_dev.lock held.
 */
void memmgr_figures_write_locked(struct memmgr_dev *mm)
{
	struct memmgr_figures *fig = mm->figures;
	const struct memmgr_policy *p = &mm->policy;
	unsigned int pool;

	lockdep_assert_held(&mm->lock);
	WRITE_ONCE(fig->seq, fig->seq + 1);
	smp_wmb();	/* odd, then the figures: pairs with the reader's rmb */
	WRITE_ONCE(fig->total, p->total << PAGE_SHIFT);
	WRITE_ONCE(fig->free, memmgr_policy_free(p) << PAGE_SHIFT);
	for (pool = 0; pool < MEMMGR_NR_POOLS; pool++) {
		struct memmgr_pool_figures *pf = &fig->pool[pool];

		WRITE_ONCE(pf->quota, p->quota[pool] << PAGE_SHIFT);
		WRITE_ONCE(pf->used, p->used[pool] << PAGE_SHIFT);
		WRITE_ONCE(pf->evictions, mm->stats[pool].evictions);
		WRITE_ONCE(pf->evicted_bytes,
			   mm->stats[pool].evicted_pages << PAGE_SHIFT);
	}
	smp_wmb();	/* the figures, then even */
	WRITE_ONCE(fig->seq, fig->seq + 1);
}

/* Every fault, the first and any after MADV_DONTNEED, maps the page. */
static vm_fault_t figures_fault(struct vm_fault *vmf)
{
	struct memmgr_dev *mm = vmf->vma->vm_private_data;

	get_page(mm->figures_page);
	vmf->page = mm->figures_page;
	return 0;
}

/* Count the page's mappings (a split or a fork makes one more). */
static void figures_vm_open(struct vm_area_struct *vma)
{
	struct memmgr_dev *mm = vma->vm_private_data;

	spin_lock(&mm->lock);
	if (!mm->figures_users++)
		memmgr_figures_write_locked(mm);
	spin_unlock(&mm->lock);
}

static void figures_vm_close(struct vm_area_struct *vma)
{
	struct memmgr_dev *mm = vma->vm_private_data;

	spin_lock(&mm->lock);
	mm->figures_users--;
	spin_unlock(&mm->lock);
}

static const struct vm_operations_struct memmgr_figures_ops = {
	.open = figures_vm_open,
	.close = figures_vm_close,
	.fault = figures_fault,
};

/**
 * memmgr_figures_mmap() - map the figures page, read-only
 * @mm:		the device; a mapping holds a file of it, so it stays
 * @vma:	shared, one page at MEMMGR_FIGURES_OFFSET
 *
 * Return: 0, -EINVAL (not exactly the page) or -EPERM (writable).
 */
int memmgr_figures_mmap(struct memmgr_dev *mm, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff != FIGURES_PGOFF || vma_pages(vma) != 1)
		return -EINVAL;
	if (vma->vm_flags & VM_WRITE)
		return -EPERM;
	memmgr_vm_flags_mod(vma, VM_DONTEXPAND | VM_DONTDUMP,
			    VM_MAYWRITE | VM_MAYEXEC);
	vma->vm_ops = &memmgr_figures_ops;
	vma->vm_private_data = mm;
	/* The core calls .open for copies of a VMA, not for the first. */
	figures_vm_open(vma);
	return 0;
}
