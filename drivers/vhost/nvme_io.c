// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme: backend I/O.
 *
 * Block device: reads and writes are one bio per command, embedded in the
 * preallocated request, whose pages are the guest's own, pinned by
 * bio_iov_iter_get_pages() (zero copy). Flush is an empty preflush bio;
 * discard and write zeroes use the block layer's bio chain builders.
 *
 * Regular file: async direct I/O through ->read_iter/->write_iter with the
 * request's kiocb; flush, write zeroes and deallocate block, so they run
 * on a workqueue.
 *
 * A buffer whose alignment the backend cannot take (NVMe allows any dword
 * address) goes through bounce pages: copied in before a write, out after
 * a read, by the worker.
 *
 * Completion (any context) only records the status and hands the request to
 * the worker (vnvme_req_ended); vnvme_io_finish() then releases the pages
 * in process context, before the CQE is posted.
 */
#include <linux/fs.h>
#include <linux/falloc.h>	/* after fs.h: it needs the types */
#include <linux/highmem.h>
#include <linux/uio.h>

#include "nvme.h"

/* The one place where block layer status becomes NVMe status. */
u16 vnvme_blk_status_to_nvme(blk_status_t sts, bool write)
{
	switch (sts) {
	case BLK_STS_OK:
		return NVME_SC_SUCCESS;
	case BLK_STS_NOSPC:
		return NVME_SC_CAP_EXCEEDED | NVME_STATUS_DNR;
	case BLK_STS_TARGET:
		return NVME_SC_LBA_RANGE | NVME_STATUS_DNR;
	case BLK_STS_NOTSUPP:
		return NVME_SC_INVALID_OPCODE | NVME_STATUS_DNR;
	case BLK_STS_MEDIUM:
	case BLK_STS_IOERR:
		return write ? NVME_SC_WRITE_FAULT : NVME_SC_READ_ERROR;
	case BLK_STS_PROTECTION:
		return NVME_SC_GUARD_CHECK | NVME_STATUS_DNR;
	default:
		/* Transient (resource, timeout, transport): may be retried. */
		return NVME_SC_INTERNAL;
	}
}

static void vnvme_req_set_errno(struct vnvme_req *req, long err)
{
	req->status = vnvme_blk_status_to_nvme(errno_to_blk_status(err),
					       req->write);
}

static void vnvme_bio_end_io(struct bio *bio)
{
	struct vnvme_req *req = bio->bi_private;

	if (bio->bi_status)
		req->status = vnvme_blk_status_to_nvme(bio->bi_status,
						       req->write);
	vnvme_req_ended(req);
}

/* End of a bio chain built by the block layer (discard, zeroes). */
static void vnvme_chain_end_io(struct bio *bio)
{
	struct vnvme_req *req = bio->bi_private;

	if (bio->bi_status)
		req->status = vnvme_blk_status_to_nvme(bio->bi_status,
						       req->write);
	bio_put(bio);
	vnvme_req_ended(req);
}

static void vnvme_submit(struct vnvme_req *req, struct bio *bio,
			 bio_end_io_t *end_io)
{
	bio->bi_private = req;
	bio->bi_end_io = end_io;
	atomic_inc(&req->sq->outstanding);
	submit_bio(bio);
}

/*
 * Submit a chain the block layer built. Bios already chained must run even
 * if building the rest failed (they end the chain); @err is then the
 * command's status.
 */
static u16 vnvme_submit_chain(struct vnvme_req *req, struct bio *bio, int err)
{
	u16 status = NVME_SC_SUCCESS;

	if (err)
		status = vnvme_blk_status_to_nvme(errno_to_blk_status(err),
						  true);
	if (!bio)
		return status;
	req->status = status;
	vnvme_submit(req, bio, vnvme_chain_end_io);
	return VNVME_IN_FLIGHT;
}

/* Allocate bounce pages into req->bvec; copy the guest data in for a write. */
static u16 vnvme_bounce_alloc(struct vnvme_req *req)
{
	struct iov_iter iter;
	u32 left = req->len;

	iov_iter_init(&iter, ITER_SOURCE, req->iov, req->nr_iov, req->len);
	while (left) {
		u32 n = min_t(u32, left, PAGE_SIZE);
		struct page *page = alloc_page(GFP_KERNEL);

		if (!page)
			return NVME_SC_INTERNAL;
		bvec_set_page(&req->bvec[req->nr_bounce++], page, n, 0);
		if (req->write && copy_page_from_iter(page, 0, n, &iter) != n)
			return NVME_SC_DATA_XFER_ERROR;
		left -= n;
	}
	return NVME_SC_SUCCESS;
}

static void vnvme_bounce_free(struct vnvme_req *req)
{
	while (req->nr_bounce)
		__free_page(req->bvec[--req->nr_bounce].bv_page);
}

/* Worker: copy a bounced read out to the guest buffer. */
static void vnvme_bounce_copy_out(struct vnvme_req *req)
{
	struct iov_iter iter;
	unsigned int i;

	iov_iter_init(&iter, ITER_DEST, req->iov, req->nr_iov, req->len);
	for (i = 0; i < req->nr_bounce; i++) {
		struct bio_vec *bv = &req->bvec[i];

		if (copy_page_to_iter(bv->bv_page, 0, bv->bv_len, &iter) !=
		    bv->bv_len) {
			req->status = NVME_SC_DATA_XFER_ERROR;
			return;
		}
	}
}

static u16 vnvme_bdev_rw(struct vnvme_req *req, struct iov_iter *iter)
{
	struct vnvme_ns *ns = req->ns;
	struct bio *bio = &req->bio;
	blk_opf_t opf;
	unsigned int i;

	opf = req->write ? REQ_OP_WRITE | REQ_SYNC | REQ_IDLE : REQ_OP_READ;
	if (req->fua)
		opf |= REQ_FUA;
	if (req->nr_bounce) {
		/* The bio's vec table is req->bvec, already filled. */
		bio_init(bio, ns->bdev, req->bvec, req->max_iov, opf);
		req->bio_ready = true;
		for (i = 0; i < req->nr_bounce; i++)
			__bio_add_page(bio, req->bvec[i].bv_page,
				       req->bvec[i].bv_len, 0);
	} else {
		bio_init(bio, ns->bdev, req->bvec, req->max_iov, opf);
		req->bio_ready = true;
		if (bio_iov_iter_get_pages(bio, iter) || iov_iter_count(iter))
			return NVME_SC_DATA_XFER_ERROR;
	}
	bio->bi_iter.bi_sector = req->pos >> SECTOR_SHIFT;
	vnvme_submit(req, bio, vnvme_bio_end_io);
	return VNVME_IN_FLIGHT;
}

static void vnvme_file_complete(struct kiocb *iocb, long ret)
{
	struct vnvme_req *req = container_of(iocb, struct vnvme_req, iocb);

	if (ret < 0)
		vnvme_req_set_errno(req, ret);
	else if (ret != req->len)
		req->status = req->write ? NVME_SC_WRITE_FAULT :
					   NVME_SC_READ_ERROR;
	vnvme_req_ended(req);
}

static u16 vnvme_file_rw(struct vnvme_req *req, struct iov_iter *iter)
{
	struct vnvme_ns *ns = req->ns;
	struct kiocb *iocb = &req->iocb;
	struct file *file = ns->file;
	ssize_t ret;

	/* Not the file's own flags: no O_APPEND, and O_DIRECT our choice. */
	init_sync_kiocb(iocb, file);
	iocb->ki_pos = req->pos;
	iocb->ki_flags = 0;
	if (ns->direct) {
		/* Async: ->ki_complete runs when the I/O ends. */
		iocb->ki_flags |= IOCB_DIRECT;
		iocb->ki_complete = vnvme_file_complete;
	}
	if (req->fua)
		iocb->ki_flags |= IOCB_DSYNC;
	atomic_inc(&req->sq->outstanding);
	if (req->write)
		ret = file->f_op->write_iter(iocb, iter);
	else
		ret = file->f_op->read_iter(iocb, iter);
	if (ret != -EIOCBQUEUED)
		vnvme_file_complete(iocb, ret);
	return VNVME_IN_FLIGHT;
}

u16 vnvme_io_rw(struct vnvme_req *req)
{
	struct vnvme_ns *ns = req->ns;
	struct iov_iter iter;
	u16 status;

	iov_iter_init(&iter, req->write ? ITER_SOURCE : ITER_DEST, req->iov,
		      req->nr_iov, req->len);
	if (!iov_iter_is_aligned(&iter, ns->addr_mask, ns->len_mask)) {
		status = vnvme_bounce_alloc(req);
		if (status)
			return status;
		iov_iter_bvec(&iter, req->write ? ITER_SOURCE : ITER_DEST,
			      req->bvec, req->nr_bounce, req->len);
	}
	if (ns->bdev)
		return vnvme_bdev_rw(req, &iter);
	return vnvme_file_rw(req, &iter);
}

/* Work item: the file operations that block, and flushing every namespace. */
static void vnvme_io_work(struct work_struct *work)
{
	struct vnvme_req *req = container_of(work, struct vnvme_req, work);
	struct vnvme_ns *ns = req->ns;
	int ret = 0;
	unsigned int i;

	switch (req->opcode) {
	case nvme_cmd_flush:
		if (ns) {
			ret = vfs_fsync(ns->file, 0);
			break;
		}
		for (i = 0; i < VHOST_NVME_MAX_NAMESPACES && !ret; i++) {
			ns = req->sq->dev->ns[i];
			if (ns && ns->bdev)
				ret = blkdev_issue_flush(ns->bdev);
			else if (ns)
				ret = vfs_fsync(ns->file, 0);
		}
		break;
	case nvme_cmd_write_zeroes:
		ret = vfs_fallocate(ns->file, FALLOC_FL_ZERO_RANGE |
				    FALLOC_FL_KEEP_SIZE, req->pos, req->len);
		if (ret != -EOPNOTSUPP)
			break;
		/* A hole reads back as zeroes; re-allocate unless DEAC. */
		ret = vfs_fallocate(ns->file, FALLOC_FL_PUNCH_HOLE |
				    FALLOC_FL_KEEP_SIZE, req->pos, req->len);
		if (!ret && !req->deallocate)
			vfs_fallocate(ns->file, FALLOC_FL_KEEP_SIZE, req->pos,
				      req->len);
		break;
	}
	if (ret)
		vnvme_req_set_errno(req, ret);
	vnvme_req_ended(req);
}

static u16 vnvme_io_defer(struct vnvme_req *req)
{
	INIT_WORK(&req->work, vnvme_io_work);
	atomic_inc(&req->sq->outstanding);
	queue_work(vnvme_wq, &req->work);
	return VNVME_IN_FLIGHT;
}

u16 vnvme_io_flush(struct vnvme_req *req)
{
	struct vnvme_ns *ns = req->ns;

	req->write = true;
	if (!ns || !ns->bdev)
		return vnvme_io_defer(req);
	bio_init(&req->bio, ns->bdev, NULL, 0, REQ_OP_WRITE | REQ_PREFLUSH);
	req->bio_ready = true;
	vnvme_submit(req, &req->bio, vnvme_bio_end_io);
	return VNVME_IN_FLIGHT;
}

u16 vnvme_io_write_zeroes(struct vnvme_req *req, bool deallocate)
{
	struct vnvme_ns *ns = req->ns;
	struct bio *bio = NULL;
	int ret;

	if (!ns->bdev) {
		req->deallocate = deallocate;
		return vnvme_io_defer(req);
	}
	ret = __blkdev_issue_zeroout(ns->bdev, req->pos >> SECTOR_SHIFT,
				     req->len >> SECTOR_SHIFT, GFP_KERNEL, &bio,
				     deallocate ? 0 : BLKDEV_ZERO_NOUNMAP);
	return vnvme_submit_chain(req, bio, ret);
}

/*
 * Punching holes is quick and Dataset Management is rare: done in the
 * worker, as the ranges live in its scratch page.
 */
static u16 vnvme_file_discard(struct vnvme_req *req,
			      const struct nvme_dsm_range *r, unsigned int nr)
{
	struct vnvme_ns *ns = req->ns;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < nr && !ret; i++) {
		u64 nlb = le32_to_cpu(r[i].nlb);

		if (nlb)
			ret = vfs_fallocate(ns->file, FALLOC_FL_PUNCH_HOLE |
					    FALLOC_FL_KEEP_SIZE,
					    le64_to_cpu(r[i].slba) << ns->lba_shift,
					    nlb << ns->lba_shift);
	}
	/* Deallocate is advisory: a file system without holes is fine. */
	if (ret && ret != -EOPNOTSUPP)
		return vnvme_blk_status_to_nvme(errno_to_blk_status(ret), true);
	return NVME_SC_SUCCESS;
}

u16 vnvme_io_discard(struct vnvme_req *req, const struct nvme_dsm_range *r,
		     unsigned int nr)
{
	struct vnvme_ns *ns = req->ns;
	struct bio *bio = NULL;
	unsigned int i;
	int ret = 0;

	if (!ns->bdev)
		return vnvme_file_discard(req, r, nr);
	if (!bdev_max_discard_sectors(ns->bdev))
		return NVME_SC_SUCCESS;		/* advisory */
	for (i = 0; i < nr; i++) {
		u64 nlb = le32_to_cpu(r[i].nlb);

		if (!nlb)
			continue;
		ret = __blkdev_issue_discard(ns->bdev,
					     (le64_to_cpu(r[i].slba) <<
					      ns->lba_shift) >> SECTOR_SHIFT,
					     (nlb << ns->lba_shift) >> SECTOR_SHIFT,
					     GFP_KERNEL, &bio);
		if (ret)
			break;
	}
	return vnvme_submit_chain(req, bio, ret);
}

/* Worker or drain: release what the request held, before its CQE. */
void vnvme_io_finish(struct vnvme_req *req)
{
	if (req->nr_bounce) {
		if (!req->write && !req->status && !req->sq->worker->dead)
			vnvme_bounce_copy_out(req);
		vnvme_bounce_free(req);
	} else if (req->bio_ready) {
		/* Reads wrote into the guest pages: mark them dirty. */
		bio_release_pages(&req->bio, !req->write);
	}
	if (req->bio_ready) {
		bio_uninit(&req->bio);
		req->bio_ready = false;
	}
}
