// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme: bounce buffers.
 *
 * A command's data goes through kernel pages instead of the guest's own
 * when the backend cannot take the guest buffer as it is (NVMe allows any
 * dword address, a block device wants its DMA alignment) or when the I/O
 * runs on a workqueue, which has no access to the owner's memory.
 *
 * Writes copy the guest data in at submission. Reads pin the guest's pages
 * at submission and copy into those pages at completion: the owner
 * addresses the PRP walk produced are valid only while the memory table
 * they came from is (VHOST_SET_MEM_TABLE waits for every worker round that
 * may still use the old one, see nvme_mem.c), so nothing is written
 * through them once the round that translated them is over. Like a bio's
 * pages, pinned pages stay the guest's even if the VMM unmaps or remaps
 * the range meanwhile.
 *
 * Bounce pages are charged to the owner's memory cgroup (the worker is a
 * thread of the owner) and bounded per worker by the module parameter
 * bounce_kb: an SQ whose next command might not fit waits, without
 * fetching it, until a command in flight gives pages back.
 */
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/uio.h>

#include "nvme.h"

static unsigned int bounce_kb = 8192;
module_param(bounce_kb, uint, 0644);
MODULE_PARM_DESC(bounce_kb,
		 "Bounce buffer pages a worker's commands in flight may hold, in KiB (default 8192); one command always fits");

/*
 * Worker: may a command that needs up to @pages bounce pages start now?
 * With nothing held, always: the budget never stops a lone command.
 */
bool vnvme_bounce_fits(struct vnvme_worker *w, unsigned int pages)
{
	u64 limit = (u64)READ_ONCE(bounce_kb) * SZ_1K >> PAGE_SHIFT;

	return !pages || !w->bounce_used || w->bounce_used + pages <= limit;
}

/* Pin the guest pages under req->iov, for a read's copy out. */
static u16 vnvme_bounce_pin(struct vnvme_req *req)
{
	unsigned int i;

	for (i = 0; i < req->nr_iov; i++) {
		unsigned long base = (unsigned long)req->iov[i].iov_base;
		unsigned long end = base + req->iov[i].iov_len;
		int n = DIV_ROUND_UP(end, PAGE_SIZE) - base / PAGE_SIZE;
		int got;

		/* At most max_iov pages: each PRP entry is within one page. */
		if (req->nr_pinned + n > req->max_iov)
			return NVME_SC_INTERNAL;
		got = pin_user_pages_fast(base & PAGE_MASK, n, FOLL_WRITE,
					  req->pages + req->nr_pinned);
		if (got > 0)
			req->nr_pinned += got;
		if (got != n)
			return NVME_SC_DATA_XFER_ERROR;
	}
	return NVME_SC_SUCCESS;
}

/*
 * Worker: allocate req->len bytes of bounce pages into req->bvec; copy the
 * guest data in for a write, pin the guest buffer for a read.
 */
u16 vnvme_bounce_alloc(struct vnvme_req *req)
{
	struct vnvme_worker *w = req->sq->worker;
	struct iov_iter iter;
	u32 left = req->len;

	iov_iter_init(&iter, ITER_SOURCE, req->iov, req->nr_iov, req->len);
	while (left) {
		u32 n = min_t(u32, left, PAGE_SIZE);
		struct page *page = alloc_page(GFP_KERNEL_ACCOUNT);

		if (!page)
			return NVME_SC_INTERNAL;
		bvec_set_page(&req->bvec[req->nr_bounce++], page, n, 0);
		w->bounce_used++;
		if (req->write && copy_page_from_iter(page, 0, n, &iter) != n)
			return NVME_SC_DATA_XFER_ERROR;
		left -= n;
	}
	return req->write ? NVME_SC_SUCCESS : vnvme_bounce_pin(req);
}

/* Copy a bounced read into the pinned guest pages. */
static bool vnvme_bounce_copy_out(struct vnvme_req *req)
{
	struct iov_iter from;
	unsigned int i, p = 0;

	iov_iter_bvec(&from, ITER_SOURCE, req->bvec, req->nr_bounce, req->len);
	for (i = 0; i < req->nr_iov; i++) {
		unsigned long base = (unsigned long)req->iov[i].iov_base;
		size_t left = req->iov[i].iov_len;

		while (left) {
			size_t off = offset_in_page(base);
			size_t n = min(left, PAGE_SIZE - off);

			if (copy_page_from_iter(req->pages[p++], off, n,
						&from) != n)
				return false;
			base += n;
			left -= n;
		}
	}
	return true;
}

/*
 * Worker or drain: a bounced command ended. Finish a read's copy (not for
 * a dead owner: no guest any more), unpin and free. SQs that waited for
 * pages get another go in the worker's next round.
 */
void vnvme_bounce_release(struct vnvme_req *req)
{
	struct vnvme_worker *w = req->sq->worker;
	bool copied = false;

	if (req->nr_pinned) {
		if (!req->status && !w->dead) {
			copied = vnvme_bounce_copy_out(req);
			if (!copied)
				req->status = NVME_SC_DATA_XFER_ERROR;
		}
		unpin_user_pages_dirty_lock(req->pages, req->nr_pinned, copied);
		req->nr_pinned = 0;
	}
	w->bounce_used -= req->nr_bounce;
	while (req->nr_bounce)
		__free_page(req->bvec[--req->nr_bounce].bv_page);
	if (w->bounce_waiters) {
		w->bounce_freed = true;
		atomic_set(&w->pending, 1);
	}
}
