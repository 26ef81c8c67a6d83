/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel interfaces memmgr uses that changed between versions.
 * Each is decided by a probe in Kbuild of the headers built against, not
 * by a version number: distributions backport.
 */
#ifndef _MEMMGR_COMPAT_H
#define _MEMMGR_COMPAT_H

#include <linux/mm.h>

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
