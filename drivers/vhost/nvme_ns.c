// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme: namespaces and their backends.
 *
 * A backend is a file the VMM opened and passed by fd: a block device
 * (bios go straight to it through blk-mq) or a regular file (async direct
 * I/O through its ->read_iter/->write_iter). The kernel never opens paths,
 * so what a guest can reach is exactly what the VMM could open.
 */
#include <linux/file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "nvme.h"

static void vnvme_ns_free(struct vnvme_ns *ns)
{
	fput(ns->file);
	kfree(ns);
}

/*
 * Would write(2) to this fd write where it is told? Not to a block device
 * set read-only or in use as swap (blkdev_write_iter), nor through an
 * O_APPEND fd, which writes at the end whatever the offset. Writes check
 * again each time (nvme_io.c): all of these can change later.
 */
static int vnvme_ns_writable(struct vnvme_ns *ns)
{
	struct inode *inode = ns->file->f_mapping->host;

	if (ns->file->f_flags & O_APPEND)
		return -EPERM;
	if (ns->bdev && bdev_read_only(ns->bdev))
		return -EPERM;
	if (IS_SWAPFILE(inode))
		return -ETXTBSY;
	return 0;
}

static int vnvme_ns_setup(struct vnvme_ns *ns, struct file *file,
			  const struct vhost_nvme_namespace *arg)
{
	struct inode *inode = file_inode(file);
	u64 size;

	if (!S_ISBLK(inode->i_mode) && !S_ISREG(inode->i_mode))
		return -EINVAL;
	if (!(file->f_mode & FMODE_READ))
		return -EBADF;
	if (!ns->read_only && !(file->f_mode & FMODE_WRITE))
		return -EBADF;

	if (S_ISBLK(inode->i_mode)) {
		ns->bdev = file_bdev(file);
		if (arg->lba_shift < ilog2(bdev_logical_block_size(ns->bdev)))
			return -EINVAL;
		size = bdev_nr_bytes(ns->bdev);
		/* What bio_iov_iter_get_pages() takes without a bounce. */
		ns->addr_mask = bdev_dma_alignment(ns->bdev);
		ns->len_mask = bdev_logical_block_size(ns->bdev) - 1;
	} else if (S_ISREG(inode->i_mode)) {
		struct super_block *sb = inode->i_sb;
		unsigned int lbs = 512;

		if (!file->f_op->read_iter || !file->f_op->write_iter)
			return -EINVAL;
		ns->direct = file->f_mode & FMODE_CAN_ODIRECT;
		if (sb->s_bdev)
			lbs = bdev_logical_block_size(sb->s_bdev);
		if (arg->lba_shift < ilog2(lbs))
			return -EINVAL;
		size = i_size_read(inode);
		ns->addr_mask = lbs - 1;
		ns->len_mask = lbs - 1;
	} else {
		return -EINVAL;
	}
	ns->lba_shift = arg->lba_shift;
	ns->nsze = size >> arg->lba_shift;
	if (!ns->nsze)
		return -EINVAL;
	return ns->read_only ? 0 : vnvme_ns_writable(ns);
}

long vnvme_set_namespace(struct vnvme_dev *dev, void __user *argp)
{
	struct vhost_nvme_namespace arg;
	struct vnvme_ns *ns;
	struct file *file;
	int ret;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (memchr_inv(arg.reserved, 0, sizeof(arg.reserved)) ||
	    arg.flags & ~VHOST_NVME_NS_F_READ_ONLY ||
	    arg.nsid < 1 || arg.nsid > VHOST_NVME_MAX_NAMESPACES ||
	    arg.lba_shift < 9 || arg.lba_shift > 12)
		return -EINVAL;
	if (dev->running)
		return -EBUSY;
	if (dev->ns[arg.nsid - 1])
		return -EBUSY;

	file = fget(arg.fd);
	if (!file)
		return -EBADF;
	ns = kzalloc(sizeof(*ns), GFP_KERNEL_ACCOUNT);
	if (!ns) {
		fput(file);
		return -ENOMEM;
	}
	ns->file = file;
	ns->read_only = arg.flags & VHOST_NVME_NS_F_READ_ONLY;
	ret = vnvme_ns_setup(ns, file, &arg);
	if (ret)
		goto err;
	arg.nsze = ns->nsze;
	if (copy_to_user(argp, &arg, sizeof(arg))) {
		ret = -EFAULT;
		goto err;
	}
	dev->ns[arg.nsid - 1] = ns;
	return 0;
err:
	vnvme_ns_free(ns);
	return ret;
}

long vnvme_clear_namespace(struct vnvme_dev *dev, void __user *argp)
{
	u32 nsid;

	if (get_user(nsid, (u32 __user *)argp))
		return -EFAULT;
	if (nsid < 1 || nsid > VHOST_NVME_MAX_NAMESPACES)
		return -EINVAL;
	if (dev->running)
		return -EBUSY;
	if (!dev->ns[nsid - 1])
		return -ENOENT;
	vnvme_ns_free(dev->ns[nsid - 1]);
	dev->ns[nsid - 1] = NULL;
	return 0;
}

void vnvme_ns_free_all(struct vnvme_dev *dev)
{
	int i;

	for (i = 0; i < VHOST_NVME_MAX_NAMESPACES; i++) {
		if (dev->ns[i])
			vnvme_ns_free(dev->ns[i]);
		dev->ns[i] = NULL;
	}
}
