/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vhost-nvme: userspace interface of /dev/vhost-nvme.
 *
 * A VMM (QEMU's -device vhost-kernel-nvme) emulates the NVMe controller's
 * registers and admin queue and hands the I/O queues to the kernel through
 * this interface: the kernel then fetches submissions from guest memory when
 * the guest's doorbell ioeventfd fires, submits them to a host block device or
 * raw file, and posts completions through an irqfd.
 *
 * The interface follows <linux/vhost.h> conventions: the same ioctl type
 * (VHOST_VIRTIO), and the generic VHOST_GET_FEATURES/VHOST_SET_FEATURES
 * ioctls where they fit.
 */
#ifndef _UAPI_LINUX_VHOST_NVME_H
#define _UAPI_LINUX_VHOST_NVME_H

#include <linux/types.h>
#include <linux/vhost.h>

/*
 * Feature bits reported by VHOST_GET_FEATURES. None are defined yet: the
 * device answers 0, and VHOST_SET_FEATURES accepts only a subset of what
 * VHOST_GET_FEATURES reported.
 */
#define VHOST_NVME_FEATURES	0ULL

#endif /* _UAPI_LINUX_VHOST_NVME_H */
