// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme: the guest memory table and guest memory access.
 *
 * VHOST_SET_MEM_TABLE maps guest physical addresses to addresses in the
 * owner's address space. The table is built whole into a new vhost_iotlb and
 * published with RCU, so the workers translate without a lock and a table
 * is never changed once published. Data is then copied with
 * copy_{from,to}_user on the owner addresses: only the owner's threads (its
 * ioctls and our workers, which are threads of it) touch guest memory.
 *
 * An owner address is used only within the worker round that translated
 * it: data the backend writes later goes to pages pinned in that round
 * (bios, bounced reads). A new table therefore takes over once every
 * worker finished the round it was in: VHOST_SET_MEM_TABLE waits for
 * that, so the VMM may unmap or remap the old ranges as soon as it
 * returns, and no guest data is written through an address it no longer
 * describes.
 *
 * Translation cache: nearly every access of an I/O (SQE, PRPs, data, CQE,
 * doorbells) falls in the region the previous one did, guest RAM below or
 * above 4 GiB. Each table remembers the region of its last hit and tries it
 * before the interval tree. The cache lives in the table, so replacing the
 * table (VHOST_SET_MEM_TABLE) is what invalidates it.
 */
#include <linux/mm.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vhost_iotlb.h>

#include "nvme.h"

struct vnvme_mem {
	struct vhost_iotlb *iotlb;
	/* the region of the last hit; a map of @iotlb, as long-lived as it */
	struct vhost_iotlb_map *last;
	struct rcu_head rcu;
};

static void vnvme_mem_release(struct rcu_head *rcu)
{
	struct vnvme_mem *mem = container_of(rcu, struct vnvme_mem, rcu);

	vhost_iotlb_free(mem->iotlb);
	kfree(mem);
}

static int vnvme_mem_add(struct vhost_iotlb *iotlb,
			 const struct vhost_memory_region *r)
{
	const u64 mask = VNVME_PAGE_SIZE - 1;
	u64 last;

	/*
	 * Page alignment keeps every 4 KiB guest page inside one region, so
	 * a PRP entry never straddles two.
	 */
	if (!r->memory_size || (r->guest_phys_addr | r->memory_size |
				r->userspace_addr) & mask)
		return -EINVAL;
	if (r->flags_padding)
		return -EINVAL;
	if (check_add_overflow(r->guest_phys_addr, r->memory_size - 1, &last) ||
	    r->userspace_addr + r->memory_size < r->userspace_addr ||
	    !access_ok((void __user *)(unsigned long)r->userspace_addr,
		       r->memory_size))
		return -EINVAL;
	if (vhost_iotlb_itree_first(iotlb, r->guest_phys_addr, last))
		return -EINVAL;		/* overlaps another region */
	return vhost_iotlb_add_range(iotlb, r->guest_phys_addr, last,
				     r->userspace_addr, VHOST_MAP_RW);
}

long vnvme_set_mem_table(struct vnvme_dev *dev, void __user *argp)
{
	struct vhost_memory hdr;
	struct vhost_memory_region *regions;
	struct vnvme_mem *mem, *old;
	u32 i;
	long ret;

	if (copy_from_user(&hdr, argp, sizeof(hdr)))
		return -EFAULT;
	if (hdr.padding || hdr.nregions > VHOST_NVME_MAX_MEM_REGIONS)
		return -EINVAL;
	regions = memdup_array_user(argp + offsetof(struct vhost_memory, regions),
				    hdr.nregions, sizeof(*regions));
	if (IS_ERR(regions))
		return PTR_ERR(regions);

	ret = -ENOMEM;
	mem = kzalloc(sizeof(*mem), GFP_KERNEL_ACCOUNT);
	if (!mem)
		goto out;
	mem->iotlb = vhost_iotlb_alloc(VHOST_NVME_MAX_MEM_REGIONS, 0);
	if (!mem->iotlb) {
		kfree(mem);
		goto out;
	}
	for (i = 0; i < hdr.nregions; i++) {
		ret = vnvme_mem_add(mem->iotlb, &regions[i]);
		if (ret) {
			vhost_iotlb_free(mem->iotlb);
			kfree(mem);
			goto out;
		}
	}
	old = rcu_replace_pointer(dev->mem, mem, lockdep_is_held(&dev->mutex));
	/* Rounds begin under the worker lock: later ones see the new table. */
	for (i = 0; i < VHOST_NVME_MAX_WORKERS; i++) {
		if (dev->workers[i]) {
			mutex_lock(&dev->workers[i]->lock);
			mutex_unlock(&dev->workers[i]->lock);
		}
	}
	if (old)
		call_rcu(&old->rcu, vnvme_mem_release);
	ret = 0;
out:
	kfree(regions);
	return ret;
}

void vnvme_mem_free(struct vnvme_dev *dev)
{
	struct vnvme_mem *mem = rcu_replace_pointer(dev->mem, NULL, true);

	if (mem) {
		synchronize_rcu();
		vnvme_mem_release(&mem->rcu);
	}
}

/*
 * Translate [gpa, gpa + len) to an owner address; @contig gets how many of
 * the @len bytes are contiguous there (the rest is in another region).
 */
int vnvme_gpa_to_hva(struct vnvme_dev *dev, u64 gpa, u64 len,
		     void __user **hva, u64 *contig)
{
	struct vhost_iotlb_map *map;
	struct vnvme_mem *mem;
	u64 last;
	int ret = -EFAULT;

	if (!len || check_add_overflow(gpa, len - 1, &last))
		return -EFAULT;
	rcu_read_lock();
	mem = rcu_dereference(dev->mem);
	if (mem) {
		/* Racy by design: any map of this table is a valid guess. */
		map = READ_ONCE(mem->last);
		if (!map || gpa < map->start || gpa > map->last) {
			map = vhost_iotlb_itree_first(mem->iotlb, gpa, last);
			if (map)
				WRITE_ONCE(mem->last, map);
		}
		if (map && map->start <= gpa) {
			*hva = (void __user *)(unsigned long)
				(map->addr + (gpa - map->start));
			*contig = min(len, map->last - gpa + 1);
			ret = 0;
		}
	}
	rcu_read_unlock();
	return ret;
}

bool vnvme_gpa_valid(struct vnvme_dev *dev, u64 gpa, u64 len)
{
	void __user *hva;
	u64 contig;

	while (len) {
		if (vnvme_gpa_to_hva(dev, gpa, len, &hva, &contig))
			return false;
		gpa += contig;
		len -= contig;
	}
	return true;
}

int vnvme_read_guest(struct vnvme_dev *dev, u64 gpa, void *buf, size_t len)
{
	void __user *hva;
	u64 contig;

	while (len) {
		if (vnvme_gpa_to_hva(dev, gpa, len, &hva, &contig) ||
		    copy_from_user(buf, hva, contig))
			return -EFAULT;
		gpa += contig;
		buf += contig;
		len -= contig;
	}
	return 0;
}
