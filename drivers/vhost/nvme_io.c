// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme: backend I/O.
 *
 * Block device: reads and writes are one bio per command, embedded in the
 * preallocated request, whose pages are the guest's own, pinned by
 * bio_iov_iter_get_pages() (zero copy). Flush is an empty preflush bio.
 *
 * Regular file: async direct I/O with the request's kiocb through
 * vfs_iocb_iter_read/write(), which check and notify like read(2) and
 * write(2) do (rw_verify_area, freeze protection, fsnotify).
 *
 * What may block for long runs on a workqueue, never in the worker: the
 * worker holds its lock for a whole round, and the VMM's ioctls need it.
 * That is write zeroes, deallocate and file flushes, buffered file I/O
 * (a file without O_DIRECT support) and writes to a frozen file system.
 * Their data goes through bounce pages (nvme_bounce.c): a workqueue has no
 * access to the owner's memory.
 *
 * Writes are checked like a write(2) to the backend's fd would be: not to
 * a block device made read-only (BLKROSET) or in use as swap, not through
 * an fd opened O_APPEND, each of which fails with Attempted Write to Read
 * Only Range.
 *
 * Completion (any context) only records the status and hands the request to
 * the worker (vnvme_req_ended); vnvme_io_finish() then releases the pages
 * in process context, before the CQE is posted.
 */
#include <linux/fs.h>
#include <linux/falloc.h>	/* after fs.h: it needs the types */
#include <linux/uio.h>

#include "nvme.h"

/* Zero pages written at a time where a file cannot zero a range itself. */
#define VNVME_ZERO_PAGES	16

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

static u16 vnvme_errno_to_nvme(long err, bool write)
{
	/* Refused as write(2) would be: the host made it read-only. */
	if (write && (err == -EPERM || err == -ETXTBSY || err == -EROFS))
		return VNVME_READ_ONLY;
	return vnvme_blk_status_to_nvme(errno_to_blk_status(err), write);
}

static void vnvme_req_set_errno(struct vnvme_req *req, long err)
{
	req->status = vnvme_errno_to_nvme(err, req->write);
}

/*
 * May @ns be written now? The checks blkdev_write_iter() and an O_APPEND
 * fd make for write(2), repeated per command: the host may change them
 * while the namespace is attached. (A file's own write checks run in
 * vfs_iocb_iter_write() and vfs_fallocate().)
 */
static u16 vnvme_ns_write_check(struct vnvme_ns *ns)
{
	if (ns->bdev) {
		if (bdev_read_only(ns->bdev) ||
		    IS_SWAPFILE(ns->file->f_mapping->host))
			return VNVME_READ_ONLY;
	} else if (READ_ONCE(ns->file->f_flags) & O_APPEND) {
		return VNVME_READ_ONLY;
	}
	return NVME_SC_SUCCESS;
}

static void vnvme_bio_end_io(struct bio *bio)
{
	struct vnvme_req *req = bio->bi_private;

	if (bio->bi_status)
		req->status = vnvme_blk_status_to_nvme(bio->bi_status,
						       req->write);
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

static u16 vnvme_bdev_rw(struct vnvme_req *req, struct iov_iter *iter)
{
	struct vnvme_ns *ns = req->ns;
	struct bio *bio = &req->bio;
	blk_opf_t opf;
	unsigned int i;

	opf = req->write ? REQ_OP_WRITE | REQ_SYNC | REQ_IDLE : REQ_OP_READ;
	if (req->fua)
		opf |= REQ_FUA;
	bio_init(bio, ns->bdev, req->bvec, req->max_iov, opf);
	req->bio_ready = true;
	if (req->nr_bounce) {
		/* The bio's vec table is req->bvec, already filled. */
		for (i = 0; i < req->nr_bounce; i++)
			__bio_add_page(bio, req->bvec[i].bv_page,
				       req->bvec[i].bv_len, 0);
	} else if (bio_iov_iter_get_pages(bio, iter) || iov_iter_count(iter)) {
		return NVME_SC_DATA_XFER_ERROR;
	}
	bio->bi_iter.bi_sector = req->pos >> SECTOR_SHIFT;
	vnvme_submit(req, bio, vnvme_bio_end_io);
	return VNVME_IN_FLIGHT;
}

static void vnvme_file_ended(struct vnvme_req *req, long ret)
{
	if (ret < 0)
		vnvme_req_set_errno(req, ret);
	else if (ret != req->len)
		req->status = req->write ? NVME_SC_WRITE_FAULT :
					   NVME_SC_READ_ERROR;
}

/* ->ki_complete of async direct I/O. */
static void vnvme_file_complete(struct kiocb *iocb, long ret)
{
	struct vnvme_req *req = container_of(iocb, struct vnvme_req, iocb);

	/* vfs_iocb_iter_write() left the freeze protection to us. */
	if (iocb->ki_flags & IOCB_WRITE)
		kiocb_end_write(iocb);
	vnvme_file_ended(req, ret);
	vnvme_req_ended(req);
}

/*
 * Start a file read or write. The kiocb takes the fd's own flags, as
 * write(2) would (O_DSYNC stays durable); O_DIRECT is ours to choose.
 * Without @ki_complete it runs synchronously (on the workqueue).
 */
static long vnvme_file_start(struct vnvme_req *req, struct iov_iter *iter,
			     bool async)
{
	struct vnvme_ns *ns = req->ns;
	struct kiocb *iocb = &req->iocb;

	init_sync_kiocb(iocb, ns->file);
	iocb->ki_pos = req->pos;
	iocb->ki_flags &= ~IOCB_DIRECT;
	/* Stacked file systems end the inner write's freeze hold by it. */
	if (req->write)
		iocb->ki_flags |= IOCB_WRITE;
	if (ns->direct)
		iocb->ki_flags |= IOCB_DIRECT;
	if (req->fua)
		iocb->ki_flags |= IOCB_DSYNC;
	if (async)
		iocb->ki_complete = vnvme_file_complete;
	/* Checked at submission too; this is the value the write would use. */
	if (req->write && iocb->ki_flags & IOCB_APPEND)
		return -EPERM;
	if (req->write)
		return vfs_iocb_iter_write(ns->file, iocb, iter);
	return vfs_iocb_iter_read(ns->file, iocb, iter);
}

static u16 vnvme_file_rw(struct vnvme_req *req, struct iov_iter *iter)
{
	long ret;

	atomic_inc(&req->sq->outstanding);
	ret = vnvme_file_start(req, iter, true);
	if (ret != -EIOCBQUEUED) {
		vnvme_file_ended(req, ret);
		vnvme_req_ended(req);
	}
	return VNVME_IN_FLIGHT;
}

static u16 vnvme_io_defer(struct vnvme_req *req);

/*
 * Does @req's file I/O have to leave the worker? Buffered I/O is
 * synchronous, and a write to a frozen file system waits for the thaw
 * (checked without the freeze lock: a freeze that starts right after
 * holds up this one write in the worker, as it would a write(2)).
 */
static bool vnvme_file_must_defer(struct vnvme_req *req)
{
	struct vnvme_ns *ns = req->ns;

	return !ns->direct ||
	       (req->write && READ_ONCE(file_inode(ns->file)->i_sb->s_writers.frozen));
}

/* Can the backend take the guest buffer as it is, without a bounce? */
static bool vnvme_iov_aligned(const struct vnvme_req *req)
{
	const struct vnvme_ns *ns = req->ns;
	unsigned int i;

	for (i = 0; i < req->nr_iov; i++)
		if ((unsigned long)req->iov[i].iov_base & ns->addr_mask ||
		    req->iov[i].iov_len & ns->len_mask)
			return false;
	return true;
}

u16 vnvme_io_rw(struct vnvme_req *req)
{
	struct vnvme_ns *ns = req->ns;
	bool defer = !ns->bdev && vnvme_file_must_defer(req);
	struct iov_iter iter;
	u16 status;

	if (req->write) {
		status = vnvme_ns_write_check(ns);
		if (status)
			return status;
	}
	iov_iter_init(&iter, req->write ? ITER_SOURCE : ITER_DEST, req->iov,
		      req->nr_iov, req->len);
	if (defer || !vnvme_iov_aligned(req)) {
		status = vnvme_bounce_alloc(req);
		if (status)
			return status;
		iov_iter_bvec(&iter, req->write ? ITER_SOURCE : ITER_DEST,
			      req->bvec, req->nr_bounce, req->len);
	}
	if (defer)
		return vnvme_io_defer(req);
	if (ns->bdev)
		return vnvme_bdev_rw(req, &iter);
	return vnvme_file_rw(req, &iter);
}

/* Work item: file read or write through the bounce pages, synchronously. */
static int vnvme_work_file_rw(struct vnvme_req *req)
{
	struct iov_iter iter;

	iov_iter_bvec(&iter, req->write ? ITER_SOURCE : ITER_DEST, req->bvec,
		      req->nr_bounce, req->len);
	vnvme_file_ended(req, vnvme_file_start(req, &iter, false));
	return 0;
}

/* Write zeroes to a file range that cannot be zeroed in place. */
static int vnvme_file_write_zeroes(struct vnvme_req *req)
{
	struct bio_vec bv[VNVME_ZERO_PAGES];
	struct file *file = req->ns->file;
	u64 pos = req->pos, left = req->len;
	struct kiocb kiocb;
	struct iov_iter iter;
	unsigned int i, n;
	ssize_t ret;

	while (left) {
		u64 chunk = min_t(u64, left, VNVME_ZERO_PAGES * PAGE_SIZE);

		for (n = 0, i = 0; i < chunk; i += PAGE_SIZE, n++)
			bvec_set_page(&bv[n], ZERO_PAGE(0),
				      min_t(u64, chunk - i, PAGE_SIZE), 0);
		iov_iter_bvec(&iter, ITER_SOURCE, bv, n, chunk);
		init_sync_kiocb(&kiocb, file);
		kiocb.ki_pos = pos;
		/* Buffered, which every file system takes. */
		kiocb.ki_flags &= ~IOCB_DIRECT;
		kiocb.ki_flags |= IOCB_WRITE;
		if (kiocb.ki_flags & IOCB_APPEND)
			return -EPERM;
		ret = vfs_iocb_iter_write(file, &kiocb, &iter);
		if (ret < 0)
			return ret;
		if (ret != chunk)
			return -EIO;
		pos += chunk;
		left -= chunk;
		cond_resched();
	}
	return 0;
}

/*
 * Zero a file range: in place where the file system can (ZERO_RANGE, or
 * a hole punched and, unless deallocating, allocated again), else by
 * writing zeroes. Write Zeroes is advertised for every backend.
 */
static int vnvme_work_file_zeroes(struct vnvme_req *req)
{
	struct file *file = req->ns->file;
	int ret;

	ret = vfs_fallocate(file, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
			    req->pos, req->len);
	if (ret == -EOPNOTSUPP) {
		ret = vfs_fallocate(file, FALLOC_FL_PUNCH_HOLE |
				    FALLOC_FL_KEEP_SIZE, req->pos, req->len);
		if (!ret && !req->deallocate)
			vfs_fallocate(file, FALLOC_FL_KEEP_SIZE, req->pos,
				      req->len);
	}
	if (ret == -EOPNOTSUPP)
		ret = vnvme_file_write_zeroes(req);
	if (!ret && req->fua)
		ret = vfs_fsync_range(file, req->pos, req->pos + req->len - 1,
				      1);
	return ret;
}

static int vnvme_work_bdev_zeroes(struct vnvme_req *req)
{
	struct block_device *bdev = req->ns->bdev;
	int ret;

	ret = blkdev_issue_zeroout(bdev, req->pos >> SECTOR_SHIFT,
				   req->len >> SECTOR_SHIFT, GFP_KERNEL,
				   req->deallocate ? 0 : BLKDEV_ZERO_NOUNMAP);
	/* No FUA on the block layer's zeroing bios: flush after them. */
	if (!ret && req->fua)
		ret = blkdev_issue_flush(bdev);
	return ret;
}

/* Deallocate the DSM ranges in the bounce page; the ranges were checked. */
static int vnvme_work_discard(struct vnvme_req *req)
{
	const struct nvme_dsm_range *r = page_address(req->bvec[0].bv_page);
	unsigned int nr = req->len / sizeof(*r), i;
	struct vnvme_ns *ns = req->ns;
	int ret = 0;

	for (i = 0; i < nr && !ret; i++) {
		u64 pos = le64_to_cpu(r[i].slba) << ns->lba_shift;
		u64 len = (u64)le32_to_cpu(r[i].nlb) << ns->lba_shift;

		if (!len)
			continue;
		if (ns->bdev)
			ret = blkdev_issue_discard(ns->bdev, pos >> SECTOR_SHIFT,
						   len >> SECTOR_SHIFT,
						   GFP_KERNEL);
		else
			ret = vfs_fallocate(ns->file, FALLOC_FL_PUNCH_HOLE |
					    FALLOC_FL_KEEP_SIZE, pos, len);
		cond_resched();
	}
	/* Deallocate is advisory: a backend without it is fine. */
	return ret == -EOPNOTSUPP ? 0 : ret;
}

static int vnvme_work_flush(struct vnvme_req *req)
{
	struct vnvme_ns *ns = req->ns;
	unsigned int i;
	int ret = 0;

	if (ns)
		return vfs_fsync(ns->file, 0);
	for (i = 0; i < VHOST_NVME_MAX_NAMESPACES && !ret; i++) {
		ns = req->sq->dev->ns[i];
		if (ns && ns->bdev)
			ret = blkdev_issue_flush(ns->bdev);
		else if (ns)
			ret = vfs_fsync(ns->file, 0);
	}
	return ret;
}

/* Work item: the backend operations that block, as the owner. */
static void vnvme_io_work(struct work_struct *work)
{
	struct vnvme_req *req = container_of(work, struct vnvme_req, work);
	struct vnvme_owner_save save;
	int ret = 0;

	vnvme_owner_enter(req->sq->dev, &save);

	switch (req->opcode) {
	case nvme_cmd_flush:
		ret = vnvme_work_flush(req);
		break;
	case nvme_cmd_write_zeroes:
		ret = req->ns->bdev ? vnvme_work_bdev_zeroes(req) :
				      vnvme_work_file_zeroes(req);
		break;
	case nvme_cmd_dsm:
		ret = vnvme_work_discard(req);
		break;
	default:
		ret = vnvme_work_file_rw(req);
		break;
	}
	vnvme_owner_leave(&save);
	if (ret)
		vnvme_req_set_errno(req, ret);
	vnvme_req_ended(req);
}

static u16 vnvme_io_defer(struct vnvme_req *req)
{
	INIT_WORK(&req->work, vnvme_io_work);
	atomic_inc(&req->sq->outstanding);
	queue_work(req->sq->dev->wq, &req->work);
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
	u16 status = vnvme_ns_write_check(req->ns);

	if (status)
		return status;
	req->deallocate = deallocate;
	return vnvme_io_defer(req);
}

/* The @nr ranges are in the request's bounce page, checked. */
u16 vnvme_io_discard(struct vnvme_req *req, unsigned int nr)
{
	struct vnvme_ns *ns = req->ns;
	u16 status = vnvme_ns_write_check(ns);

	if (status)
		return status;
	if (ns->bdev && !bdev_max_discard_sectors(ns->bdev))
		return NVME_SC_SUCCESS;		/* advisory */
	req->len = nr * sizeof(struct nvme_dsm_range);
	return vnvme_io_defer(req);
}

/* Worker or drain: release what the request held, before its CQE. */
void vnvme_io_finish(struct vnvme_req *req)
{
	if (req->nr_bounce) {
		vnvme_bounce_release(req);
	} else if (req->bio_ready) {
		/* Reads wrote into the guest pages: mark them dirty. */
		bio_release_pages(&req->bio, !req->write);
	}
	if (req->bio_ready) {
		bio_uninit(&req->bio);
		req->bio_ready = false;
	}
}
