// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme: the owner's context for backend work on the workqueue.
 *
 * The workers are threads of the owner, so what they do is charged and
 * checked as the VMM's own: its memory cgroup, its io cgroup's limits and
 * weights, its credentials for the file system's and the LSM's checks.
 * Work that blocks runs on the device's workqueue instead (nvme_io.c),
 * whose kworkers would be root's; each work item therefore runs in the
 * context taken from the owner at VHOST_SET_OWNER, as the loop driver
 * does for its workers.
 */
#include <linux/blk-cgroup.h>
#include <linux/cgroup.h>
#include <linux/cred.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/sched/mm.h>
#include <linux/workqueue.h>

#include "nvme.h"

/* VHOST_SET_OWNER, in the owner's context. */
int vnvme_owner_get(struct vnvme_dev *dev)
{
	/* Per device: one guest's slow commands never queue behind another's. */
	dev->wq = alloc_workqueue("vhost-nvme-%d", WQ_UNBOUND, 0, current->pid);
	if (!dev->wq)
		return -ENOMEM;
	dev->cred = get_current_cred();
	dev->memcg = get_mem_cgroup_from_mm(current->mm);
#ifdef CONFIG_BLK_CGROUP
	dev->blkcg_css = task_get_css(current, io_cgrp_id);
#endif
	return 0;
}

/* Release, after the last work item ended. */
void vnvme_owner_put(struct vnvme_dev *dev)
{
	if (!dev->wq)
		return;
	destroy_workqueue(dev->wq);
	put_cred(dev->cred);
	mem_cgroup_put(dev->memcg);
	if (dev->blkcg_css)
		css_put(dev->blkcg_css);
}

/* Work item: take on the owner's context; vnvme_owner_leave() drops it. */
void vnvme_owner_enter(struct vnvme_dev *dev, struct vnvme_owner_save *save)
{
	save->cred = override_creds(dev->cred);
	save->memcg = set_active_memcg(dev->memcg);
	kthread_associate_blkcg(dev->blkcg_css);
}

void vnvme_owner_leave(struct vnvme_owner_save *save)
{
	kthread_associate_blkcg(NULL);
	set_active_memcg(save->memcg);
	revert_creds(save->cred);
}
