// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme: the /dev/vhost-nvme character device.
 *
 * Each open file is one virtual NVMe controller's I/O side, owned by the
 * process (VMM) that opened it. This file holds the device's lifetime:
 * registration, open, release and the ioctl dispatcher.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vhost_nvme.h>

/**
 * struct vhost_nvme_dev - state of one open /dev/vhost-nvme
 * @mutex: serialises ioctls that change the device's configuration
 * @features: feature bits accepted by VHOST_SET_FEATURES
 */
struct vhost_nvme_dev {
	struct mutex mutex;	/* serialises configuration ioctls */
	u64 features;
};

static int vhost_nvme_open(struct inode *inode, struct file *file)
{
	struct vhost_nvme_dev *dev;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL_ACCOUNT);
	if (!dev)
		return -ENOMEM;
	mutex_init(&dev->mutex);
	file->private_data = dev;
	return 0;
}

static int vhost_nvme_release(struct inode *inode, struct file *file)
{
	struct vhost_nvme_dev *dev = file->private_data;

	mutex_destroy(&dev->mutex);
	kfree(dev);
	return 0;
}

static long vhost_nvme_set_features(struct vhost_nvme_dev *dev,
				    u64 __user *argp)
{
	u64 features;

	if (copy_from_user(&features, argp, sizeof(features)))
		return -EFAULT;
	if (features & ~VHOST_NVME_FEATURES)
		return -EOPNOTSUPP;
	mutex_lock(&dev->mutex);
	dev->features = features;
	mutex_unlock(&dev->mutex);
	return 0;
}

static long vhost_nvme_ioctl(struct file *file, unsigned int cmd,
			     unsigned long arg)
{
	struct vhost_nvme_dev *dev = file->private_data;
	void __user *argp = (void __user *)arg;
	u64 features = VHOST_NVME_FEATURES;

	switch (cmd) {
	case VHOST_GET_FEATURES:
		if (copy_to_user(argp, &features, sizeof(features)))
			return -EFAULT;
		return 0;
	case VHOST_SET_FEATURES:
		return vhost_nvme_set_features(dev, argp);
	default:
		/* The VFS turns this into -ENOTTY for userspace. */
		return -ENOIOCTLCMD;
	}
}

static const struct file_operations vhost_nvme_fops = {
	.owner		= THIS_MODULE,
	.open		= vhost_nvme_open,
	.release	= vhost_nvme_release,
	.unlocked_ioctl	= vhost_nvme_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice vhost_nvme_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "vhost-nvme",
	.fops	= &vhost_nvme_fops,
	/* Access to a host block device: root (or a delegated fd) only. */
	.mode	= 0600,
};

static int __init vhost_nvme_init(void)
{
	return misc_register(&vhost_nvme_misc);
}

static void __exit vhost_nvme_exit(void)
{
	misc_deregister(&vhost_nvme_misc);
}

module_init(vhost_nvme_init);
module_exit(vhost_nvme_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vhost-nvme: NVMe I/O queues in the kernel for KVM guests");
