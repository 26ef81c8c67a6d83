// SPDX-License-Identifier: GPL-2.0
/*
 * memmgr's per-file address spaces.
 *
 * Each open file has mmap offsets of its own (memmgr_offset.c), so two
 * files' buffers may lie at the same offsets.  If every open shared the
 * device inode's address space, revoking one file's buffer
 * (unmap_mapping_range()) would also clear another file's page tables at
 * those offsets: never wrong data, since a fault maps only its own VMA's
 * buffer, but a refault and a TLB flush in a process that did nothing, at
 * the will of any other client.  So each open file gets an anonymous inode
 * of a small internal filesystem, and its f_mapping is that inode's: the
 * file's VMAs, and only they, are in it.  VFIO gives each device an inode
 * for the same reason.
 *
 * The filesystem is mounted once, at load, and unmounted at unload, after
 * every file is closed and the reclaim worker is done.  Its type has no
 * owner: the mount would otherwise hold a reference on this module and
 * rmmod could never succeed.  It is not registered, so nothing else can
 * mount it.  The inode is reference counted: the file holds one, and the
 * reclaim worker one per evicted buffer it has still to revoke, so a
 * file's close never waits for the worker.
 */
#include <linux/fs.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>

#include "memmgr.h"

#define MEMMGR_FS_MAGIC	0x6d6d6772	/* "mmgr" */

static struct vfsmount *memmgr_mnt;

static int memmgr_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, MEMMGR_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type memmgr_fs_type = {
	.name = "memmgr",
	.init_fs_context = memmgr_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

int memmgr_inode_init(void)
{
	memmgr_mnt = kern_mount(&memmgr_fs_type);
	return PTR_ERR_OR_ZERO(memmgr_mnt);
}

void memmgr_inode_exit(void)
{
	kern_unmount(memmgr_mnt);
}

/**
 * memmgr_inode_new() - an inode whose address space holds one file's VMAs
 *
 * Context: process context, may sleep.
 * Return: the inode, or an ERR_PTR(); iput() drops it.
 */
struct inode *memmgr_inode_new(void)
{
	return alloc_anon_inode(memmgr_mnt->mnt_sb);
}
