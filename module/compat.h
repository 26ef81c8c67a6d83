/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel interfaces memmgr uses that changed between versions.
 * Each is decided by a probe in Kbuild of the headers built against, not
 * by a version number: distributions backport.
 */
#ifndef _MEMMGR_COMPAT_H
#define _MEMMGR_COMPAT_H

#include <linux/bits.h>
#include <linux/mm.h>
#include <linux/mmzone.h>

/*
 * Pages in a block of the kernel's largest allocatable order.  That order
 * is MAX_PAGE_ORDER since 6.8, MAX_ORDER in 6.4 to 6.7, and MAX_ORDER - 1
 * up to 6.3 (where MAX_ORDER was exclusive).  MAX_ORDER_NR_PAGES is the
 * pages of that largest block in all of them, so no probe has to tell an
 * inclusive MAX_ORDER from an exclusive one.
 */
#ifdef MAX_PAGE_ORDER
#define MEMMGR_KERNEL_MAX_BLOCK_PAGES	BIT(MAX_PAGE_ORDER)
#else
#define MEMMGR_KERNEL_MAX_BLOCK_PAGES	((unsigned long)MAX_ORDER_NR_PAGES)
#endif

/* vm_flags became read-only with accessors in 6.3. */
static inline void memmgr_vm_flags_mod(struct vm_area_struct *vma,
				       unsigned long set, unsigned long clear)
{
#ifdef MEMMGR_HAVE_VM_FLAGS_SET
	vm_flags_mod(vma, set, clear);
#else
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
#endif
}

#endif /* _MEMMGR_COMPAT_H */
