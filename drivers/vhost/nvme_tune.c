// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme: the performance settings of a device.
 *
 *   VHOST_NVME_SET_POLL             busy-polling window (else poll_us)
 *   VHOST_NVME_SET_WORKER_AFFINITY  the CPUs a worker may run on
 *   VHOST_NVME_SET_COALESCING       Interrupt Coalescing, Feature 08h
 *   VHOST_NVME_SET_VECTOR_CONFIG    Interrupt Vector Configuration, 09h
 *
 * The workers read these without a lock: each is a single value, and a
 * worker that sees an old one for one more round does no harm. What must
 * not wait for the next kick (held-back interrupts, a new affinity) is
 * pushed through with a kick or a flush of the workers.
 */
#include <linux/cpumask.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>

#include "nvme.h"

static unsigned int poll_us;
module_param(poll_us, uint, 0644);
MODULE_PARM_DESC(poll_us,
		 "Default busy-polling window of the shadow doorbells in microseconds, for devices without VHOST_NVME_SET_POLL (0: off)");

/* The polling window a worker may use now, in ns: 0 is no polling. */
u64 vnvme_poll_limit_ns(struct vnvme_dev *dev)
{
	u32 us = READ_ONCE(dev->poll_us);

	if (us == VHOST_NVME_POLL_DEFAULT)
		us = min_t(u32, READ_ONCE(poll_us), VHOST_NVME_MAX_POLL_US);
	return (u64)us * NSEC_PER_USEC;
}

long vnvme_set_poll(struct vnvme_dev *dev, void __user *argp)
{
	struct vhost_nvme_poll arg;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (!(dev->features & BIT_ULL(VHOST_NVME_F_POLL)))
		return -EOPNOTSUPP;
	if (memchr_inv(arg.reserved, 0, sizeof(arg.reserved)) ||
	    (arg.poll_us > VHOST_NVME_MAX_POLL_US &&
	     arg.poll_us != VHOST_NVME_POLL_DEFAULT))
		return -EINVAL;
	WRITE_ONCE(dev->poll_us, arg.poll_us);
	return 0;
}

long vnvme_set_worker_affinity(struct vnvme_dev *dev, void __user *argp)
{
	struct vhost_nvme_worker_affinity arg;
	struct cpumask *mask = NULL, *old;
	unsigned int nbits = min_t(unsigned int, nr_cpu_ids,
				   VHOST_NVME_MAX_CPUS);
	struct vnvme_worker *w;
	unsigned int i;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (memchr_inv(arg.reserved0, 0, sizeof(arg.reserved0)) ||
	    arg.worker >= VHOST_NVME_MAX_WORKERS)
		return -EINVAL;
	/* No bit for a CPU this kernel cannot have. */
	for (i = nbits; i < VHOST_NVME_MAX_CPUS; i++)
		if (arg.cpus[i / 64] & BIT_ULL(i % 64))
			return -EINVAL;
	if (memchr_inv(arg.cpus, 0, sizeof(arg.cpus))) {
		mask = kzalloc(cpumask_size(), GFP_KERNEL_ACCOUNT);
		if (!mask)
			return -ENOMEM;
		bitmap_from_arr64(cpumask_bits(mask), arg.cpus, nbits);
		if (!cpumask_intersects(mask, cpu_online_mask)) {
			kfree(mask);
			return -EINVAL;
		}
	}
	old = dev->affinity[arg.worker];
	dev->affinity[arg.worker] = mask;
	w = dev->workers[arg.worker];
	if (w) {
		/* The worker applies it to itself: we have no task pointer. */
		mutex_lock(&w->lock);
		w->cpus = mask;
		w->cpus_changed = true;
		mutex_unlock(&w->lock);
		vnvme_worker_kick(w);
		vnvme_worker_flush(w);
	}
	kfree(old);
	return 0;
}

long vnvme_set_coalescing(struct vnvme_dev *dev, void __user *argp)
{
	struct vhost_nvme_coalescing arg;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (arg.reserved0 || memchr_inv(arg.reserved, 0, sizeof(arg.reserved)))
		return -EINVAL;
	WRITE_ONCE(dev->coal_thr, arg.threshold);
	WRITE_ONCE(dev->coal_time, arg.time);
	/* Interrupts held back under the old setting follow the new one. */
	vnvme_workers_kick_all(dev);
	return 0;
}

long vnvme_set_vector_config(struct vnvme_dev *dev, void __user *argp)
{
	struct vhost_nvme_vector_config arg;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (memchr_inv(arg.reserved, 0, sizeof(arg.reserved)) ||
	    arg.flags & ~VHOST_NVME_VECTOR_F_NO_COALESCE ||
	    arg.vector >= VHOST_NVME_MAX_VECTORS)
		return -EINVAL;
	if (arg.flags & VHOST_NVME_VECTOR_F_NO_COALESCE)
		set_bit(arg.vector, dev->no_coalesce);
	else
		clear_bit(arg.vector, dev->no_coalesce);
	vnvme_workers_kick_all(dev);
	return 0;
}

/* Controller reset: Features 08h and 09h return to their defaults. */
void vnvme_coalescing_reset(struct vnvme_dev *dev)
{
	WRITE_ONCE(dev->coal_thr, 0);
	WRITE_ONCE(dev->coal_time, 0);
	bitmap_zero(dev->no_coalesce, VHOST_NVME_MAX_VECTORS);
}

/* After the workers are gone. */
void vnvme_tune_free(struct vnvme_dev *dev)
{
	int i;

	for (i = 0; i < VHOST_NVME_MAX_WORKERS; i++) {
		kfree(dev->affinity[i]);
		dev->affinity[i] = NULL;
	}
}
