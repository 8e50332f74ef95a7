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
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "nvme.h"

static int vhost_nvme_open(struct inode *inode, struct file *file)
{
	struct vnvme_dev *dev;

	dev = kvzalloc(sizeof(*dev), GFP_KERNEL_ACCOUNT);
	if (!dev)
		return -ENOMEM;
	mutex_init(&dev->mutex);
	init_waitqueue_head(&dev->idle_wq);
	spin_lock_init(&dev->err_lock);
	dev->mdts = VNVME_DEFAULT_MDTS;
	dev->max_queues = VHOST_NVME_MAX_QUEUES;
	dev->poll_us = VHOST_NVME_POLL_DEFAULT;
	file->private_data = dev;
	return 0;
}

/*
 * The last reference is gone: the VMM closed the fd or died. Stop, wait for
 * every command in flight (a dead owner's completions are dropped, not
 * posted), then free everything. Guest memory is not touched from here.
 */
static int vhost_nvme_release(struct inode *inode, struct file *file)
{
	struct vnvme_dev *dev = file->private_data;

	mutex_lock(&dev->mutex);
	vnvme_stop(dev);
	vnvme_delete_all_queues(dev);
	vnvme_workers_destroy(dev);
	vnvme_tune_free(dev);
	vnvme_ns_free_all(dev);
	mutex_unlock(&dev->mutex);
	vnvme_owner_put(dev);
	vnvme_mem_free(dev);
	if (dev->err_ctx)
		eventfd_ctx_put(dev->err_ctx);
	if (dev->mm)
		mmdrop(dev->mm);
	mutex_destroy(&dev->mutex);
	kvfree(dev);
	return 0;
}

static long vnvme_set_features(struct vnvme_dev *dev, u64 __user *argp)
{
	u64 features;

	if (copy_from_user(&features, argp, sizeof(features)))
		return -EFAULT;
	if (features & ~VHOST_NVME_FEATURES)
		return -EOPNOTSUPP;
	dev->features = features;
	return 0;
}

static long vnvme_set_owner(struct vnvme_dev *dev)
{
	int ret;

	if (dev->mm)
		return -EBUSY;
	ret = vnvme_owner_get(dev);
	if (ret)
		return ret;
	dev->mm = current->mm;
	mmgrab(dev->mm);
	return 0;
}

static bool vnvme_has_queues(struct vnvme_dev *dev)
{
	int i;

	for (i = 1; i <= VHOST_NVME_MAX_QUEUES; i++)
		if (dev->sqs[i] || dev->cqs[i])
			return true;
	return false;
}

static long vnvme_set_config(struct vnvme_dev *dev, void __user *argp)
{
	struct vhost_nvme_config cfg;

	if (copy_from_user(&cfg, argp, sizeof(cfg)))
		return -EFAULT;
	if (memchr_inv(cfg.reserved, 0, sizeof(cfg.reserved)) ||
	    cfg.mdts < 1 || cfg.mdts > VHOST_NVME_MAX_MDTS ||
	    cfg.dstrd > VHOST_NVME_MAX_DSTRD ||
	    cfg.max_queues < 1 || cfg.max_queues > VHOST_NVME_MAX_QUEUES)
		return -EINVAL;
	if (vnvme_has_queues(dev) || dev->dbs_gpa)
		return -EBUSY;
	dev->mdts = cfg.mdts;
	dev->dstrd = cfg.dstrd;
	dev->max_queues = cfg.max_queues;
	return 0;
}

static void vnvme_start(struct vnvme_dev *dev)
{
	int i;

	WRITE_ONCE(dev->running, true);
	for (i = 1; i <= VHOST_NVME_MAX_QUEUES; i++) {
		struct vnvme_sq *sq = dev->sqs[i];

		if (sq) {
			atomic_set(&sq->kicked, 1);
			vnvme_worker_kick(sq->worker);
		}
	}
}

static long vnvme_set_error_fd(struct vnvme_dev *dev, void __user *argp)
{
	struct eventfd_ctx *ctx = NULL, *old;
	int fd;

	if (get_user(fd, (int __user *)argp))
		return -EFAULT;
	if (fd < -1)
		return -EINVAL;
	if (fd >= 0) {
		ctx = eventfd_ctx_fdget(fd);
		if (IS_ERR(ctx))
			return PTR_ERR(ctx);
	}
	spin_lock_irq(&dev->err_lock);
	old = dev->err_ctx;
	dev->err_ctx = ctx;
	if (ctx && (dev->err_count || dev->err_dropped))
		eventfd_signal(ctx);
	spin_unlock_irq(&dev->err_lock);
	if (old)
		eventfd_ctx_put(old);
	return 0;
}

/*
 * The oldest record, then the count of those dropped. It is removed only
 * once copied out; GET_ERROR calls are serialised by dev->mutex and
 * errors are only ever added, so the record peeked is still the oldest.
 */
static long vnvme_get_error(struct vnvme_dev *dev, void __user *argp)
{
	struct vhost_nvme_error e = { .type = VHOST_NVME_ERR_OVERFLOW };
	bool kept;

	spin_lock_irq(&dev->err_lock);
	kept = dev->err_count;
	if (kept)
		e = dev->errors[dev->err_head];
	else
		e.value = dev->err_dropped;
	spin_unlock_irq(&dev->err_lock);
	if (!kept && !e.value)
		return -EAGAIN;
	if (copy_to_user(argp, &e, sizeof(e)))
		return -EFAULT;
	spin_lock_irq(&dev->err_lock);
	if (kept) {
		dev->err_head = (dev->err_head + 1) % VNVME_MAX_ERRORS;
		dev->err_count--;
	} else {
		dev->err_dropped -= e.value;
	}
	spin_unlock_irq(&dev->err_lock);
	return 0;
}

static long vnvme_ioctl_start(struct vnvme_dev *dev, void __user *argp)
{
	vnvme_start(dev);
	return 0;
}

static long vnvme_ioctl_stop(struct vnvme_dev *dev, void __user *argp)
{
	vnvme_stop(dev);
	return 0;
}

static long vnvme_ioctl_reset(struct vnvme_dev *dev, void __user *argp)
{
	vnvme_stop(dev);
	vnvme_delete_all_queues(dev);
	vnvme_clear_dbbuf(dev);
	vnvme_coalescing_reset(dev);
	return 0;
}

static long vnvme_ioctl_clear_dbbuf(struct vnvme_dev *dev, void __user *argp)
{
	vnvme_clear_dbbuf(dev);
	return 0;
}

/*
 * The ioctls that need the owner: they create workers, which are threads of
 * the owner, or describe its memory. Called with dev->mutex held.
 */
static const struct {
	unsigned int cmd;
	long (*fn)(struct vnvme_dev *dev, void __user *argp);
} vnvme_owner_ioctls[] = {
	{ VHOST_SET_MEM_TABLE,		vnvme_set_mem_table },
	{ VHOST_NVME_SET_CONFIG,	vnvme_set_config },
	{ VHOST_NVME_SET_NAMESPACE,	vnvme_set_namespace },
	{ VHOST_NVME_CLEAR_NAMESPACE,	vnvme_clear_namespace },
	{ VHOST_NVME_CREATE_CQ,		vnvme_create_cq },
	{ VHOST_NVME_DELETE_CQ,		vnvme_delete_cq },
	{ VHOST_NVME_CREATE_SQ,		vnvme_create_sq },
	{ VHOST_NVME_DELETE_SQ,		vnvme_delete_sq },
	{ VHOST_NVME_SET_DBBUF,		vnvme_set_dbbuf },
	{ VHOST_NVME_CLEAR_DBBUF,	vnvme_ioctl_clear_dbbuf },
	{ VHOST_NVME_DOORBELL,		vnvme_doorbell },
	{ VHOST_NVME_START,		vnvme_ioctl_start },
	{ VHOST_NVME_STOP,		vnvme_ioctl_stop },
	{ VHOST_NVME_RESET,		vnvme_ioctl_reset },
	{ VHOST_NVME_GET_QUEUE_STATS,	vnvme_queue_stats },
	{ VHOST_NVME_SET_ERROR_FD,	vnvme_set_error_fd },
	{ VHOST_NVME_GET_ERROR,		vnvme_get_error },
	{ VHOST_NVME_SET_POLL,		vnvme_set_poll },
	{ VHOST_NVME_SET_WORKER_AFFINITY, vnvme_set_worker_affinity },
	{ VHOST_NVME_SET_COALESCING,	vnvme_set_coalescing },
	{ VHOST_NVME_SET_VECTOR_CONFIG,	vnvme_set_vector_config },
};

static long vnvme_owner_ioctl(struct vnvme_dev *dev, unsigned int cmd,
			      void __user *argp)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vnvme_owner_ioctls); i++) {
		if (vnvme_owner_ioctls[i].cmd != cmd)
			continue;
		if (!dev->mm || dev->mm != current->mm)
			return -EPERM;
		return vnvme_owner_ioctls[i].fn(dev, argp);
	}
	/* The VFS turns -ENOIOCTLCMD into -ENOTTY for userspace. */
	return -ENOIOCTLCMD;
}

static long vhost_nvme_ioctl(struct file *file, unsigned int cmd,
			     unsigned long arg)
{
	struct vnvme_dev *dev = file->private_data;
	void __user *argp = (void __user *)arg;
	u64 features = VHOST_NVME_FEATURES;
	long ret;

	if (cmd == VHOST_GET_FEATURES)
		return copy_to_user(argp, &features, sizeof(features)) ?
		       -EFAULT : 0;

	mutex_lock(&dev->mutex);
	switch (cmd) {
	case VHOST_SET_FEATURES:
		ret = vnvme_set_features(dev, argp);
		break;
	case VHOST_SET_OWNER:
		ret = vnvme_set_owner(dev);
		break;
	default:
		ret = vnvme_owner_ioctl(dev, cmd, argp);
		break;
	}
	mutex_unlock(&dev->mutex);
	return ret;
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
	BUILD_BUG_ON(sizeof(struct vhost_nvme_config) != 32);
	BUILD_BUG_ON(sizeof(struct vhost_nvme_namespace) != 56);
	BUILD_BUG_ON(sizeof(struct vhost_nvme_cq) != 48);
	BUILD_BUG_ON(sizeof(struct vhost_nvme_sq) != 48);
	BUILD_BUG_ON(sizeof(struct vhost_nvme_queue_id) != 8);
	BUILD_BUG_ON(sizeof(struct vhost_nvme_dbbuf) != 32);
	BUILD_BUG_ON(sizeof(struct vhost_nvme_doorbell) != 8);
	BUILD_BUG_ON(sizeof(struct vhost_nvme_queue_stats) != 88);
	BUILD_BUG_ON(sizeof(struct vhost_nvme_error) != 16);
	BUILD_BUG_ON(sizeof(struct vhost_nvme_poll) != 32);
	BUILD_BUG_ON(sizeof(struct vhost_nvme_worker_affinity) != 136);
	BUILD_BUG_ON(sizeof(struct vhost_nvme_coalescing) != 16);
	BUILD_BUG_ON(sizeof(struct vhost_nvme_vector_config) != 16);

	return misc_register(&vhost_nvme_misc);
}

static void __exit vhost_nvme_exit(void)
{
	misc_deregister(&vhost_nvme_misc);
	/* Replaced memory tables are freed by call_rcu(): let them run. */
	rcu_barrier();
}

module_init(vhost_nvme_init);
module_exit(vhost_nvme_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vhost-nvme: NVMe I/O queues in the kernel for KVM guests");
MODULE_SOFTDEP("pre: vhost_iotlb");
