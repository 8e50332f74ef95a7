// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme: I/O queues, doorbells and completions.
 *
 * The queue ioctls create and delete CQs and SQs and set the doorbell
 * buffer. The worker side fetches commands from an SQ up to the tail the
 * guest published (shadow doorbell, or a value the VMM forwarded), and
 * writes CQEs. Both run under the worker's lock; see nvme.h.
 *
 * EventIdx: before the worker goes idle on an SQ it writes the SQ's
 * EventIdx entry (= the tail it consumed up to), issues a full barrier and
 * reads the shadow tail again. The guest (Linux: nvme_dbbuf_need_event())
 * writes the shadow tail, issues a full barrier, then reads EventIdx and
 * rings the MMIO doorbell (our kick) only if its update crossed EventIdx.
 * Either the guest sees our EventIdx and kicks, or we see its tail on the
 * re-read: a wakeup is never lost. The CQ side is the same, used only
 * while an SQ waits for CQ room.
 */
#include <linux/file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "nvme.h"

void vnvme_report_error(struct vnvme_dev *dev, u16 qid, bool cq, u8 type,
			u32 value, u64 gpa)
{
	struct vhost_nvme_error *e;
	unsigned long flags;

	spin_lock_irqsave(&dev->err_lock, flags);
	/* Once one is dropped, all are until that is read: order is kept. */
	if (dev->err_dropped || dev->err_count == VNVME_MAX_ERRORS) {
		if (dev->err_dropped < U32_MAX)
			dev->err_dropped++;
	} else {
		e = &dev->errors[(dev->err_head + dev->err_count) %
				 VNVME_MAX_ERRORS];
		e->qid = qid;
		e->cq = cq;
		e->type = type;
		e->value = value;
		e->gpa = gpa;
		dev->err_count++;
	}
	if (dev->err_ctx)
		eventfd_signal(dev->err_ctx);
	spin_unlock_irqrestore(&dev->err_lock, flags);
}

/* Guest u32 accesses of the doorbell buffer: single loads and stores. */
static int vnvme_dbbuf_get(struct vnvme_dev *dev, u64 page, u32 idx,
			   u32 *val)
{
	void __user *hva;
	__le32 v;
	u64 contig;

	if (vnvme_gpa_to_hva(dev, page + idx * 4, 4, &hva, &contig) ||
	    get_user(v, (__le32 __user *)hva))
		return -EFAULT;
	*val = le32_to_cpu(v);
	return 0;
}

static int vnvme_dbbuf_put(struct vnvme_dev *dev, u64 page, u32 idx, u32 val)
{
	void __user *hva;
	u64 contig;

	if (vnvme_gpa_to_hva(dev, page + idx * 4, 4, &hva, &contig) ||
	    put_user(cpu_to_le32(val), (__le32 __user *)hva))
		return -EFAULT;
	return 0;
}

/*
 * Worker: the guest's current SQ tail or CQ head for queue @qid, from the
 * shadow doorbell or else the last forwarded value. False puts the queue in
 * error (@state) and reports why: unreadable, or not below @entries.
 */
static bool vnvme_db_read(struct vnvme_worker *w, u16 qid, bool cq,
			  u32 entries, u32 forwarded, u64 *sdb_reads,
			  enum vnvme_q_state *state, u32 *val)
{
	struct vnvme_dev *dev = w->dev;
	u32 v = forwarded;

	if (w->dbs_gpa) {
		if (vnvme_dbbuf_get(dev, w->dbs_gpa,
				    vnvme_db_index(dev, qid, cq), &v)) {
			*state = VNVME_Q_ERROR;
			vnvme_report_error(dev, qid, cq,
					   VHOST_NVME_ERR_BAD_QUEUE_MEMORY,
					   0, w->dbs_gpa);
			return false;
		}
		(*sdb_reads)++;
	}
	if (v >= entries) {
		*state = VNVME_Q_ERROR;
		vnvme_report_error(dev, qid, cq,
				   VHOST_NVME_ERR_INVALID_DB_VALUE, v, 0);
		return false;
	}
	*val = v;
	return true;
}

/*
 * Invalid Doorbell Write Value beyond the queue size: the guest owns the
 * SQ entries from the last tail up to the one before the SQ head it was
 * last told of in a CQE. A tail outside that would re-run commands
 * already fetched (a full lap) or overwrite ones not yet fetched.
 */
static bool vnvme_sq_tail_ok(const struct vnvme_sq *sq, u32 tail)
{
	u32 n = sq->entries;

	return (tail + n - sq->tail) % n <=
	       (sq->head_reported + n - 1 - sq->tail) % n;
}

static bool vnvme_sq_read_tail(struct vnvme_sq *sq, u32 *tail)
{
	if (!vnvme_db_read(sq->worker, sq->qid, false, sq->entries,
			   READ_ONCE(sq->db_value), &sq->sdb_reads,
			   &sq->state, tail))
		return false;
	if (vnvme_sq_tail_ok(sq, *tail))
		return true;
	sq->state = VNVME_Q_ERROR;
	vnvme_report_error(sq->dev, sq->qid, false,
			   VHOST_NVME_ERR_INVALID_DB_VALUE, *tail, 0);
	return false;
}

/*
 * Worker: is there anything new in the SQ? Before saying no, arm EventIdx
 * and look once more (see top of file).
 */
static bool vnvme_sq_has_work(struct vnvme_sq *sq)
{
	struct vnvme_worker *w = sq->worker;
	struct vnvme_dev *dev = sq->dev;
	u32 tail;

	if (!vnvme_sq_read_tail(sq, &tail))
		return false;
	/* A polling worker leaves EventIdx behind: no doorbell writes. */
	if (tail == sq->head && w->eis_gpa && !w->polling) {
		if (vnvme_dbbuf_put(dev, w->eis_gpa,
				    vnvme_db_index(dev, sq->qid, false), tail)) {
			sq->state = VNVME_Q_ERROR;
			vnvme_report_error(dev, sq->qid, false,
					   VHOST_NVME_ERR_BAD_QUEUE_MEMORY,
					   0, w->eis_gpa);
			return false;
		}
		smp_mb();	/* EventIdx store before the tail re-read */
		if (!vnvme_sq_read_tail(sq, &tail))
			return false;
	}
	sq->tail = tail;
	return tail != sq->head;
}

/*
 * Worker: can @sq fetch a command now? Reads the tail when needed; arms
 * EventIdx before saying no, unless the worker is polling.
 */
bool vnvme_sq_ready(struct vnvme_sq *sq)
{
	if (sq->state != VNVME_Q_ACTIVE || !READ_ONCE(sq->dev->running) ||
	    sq->blocked != VNVME_BLOCK_NONE)
		return false;
	return sq->head != sq->tail || vnvme_sq_has_work(sq);
}

/*
 * A CQ head may only move over entries we posted: within [head, tail].
 * Past the tail it would hand back entries never written, and the room
 * computed from it would let the CQ be overrun.
 */
static bool vnvme_cq_read_head(struct vnvme_cq *cq, struct vnvme_worker *w)
{
	u32 n = cq->entries, head;

	if (!vnvme_db_read(w, cq->qid, true, n, READ_ONCE(cq->db_value),
			   &cq->sdb_reads, &cq->state, &head))
		return false;
	if ((head + n - cq->head) % n > (cq->tail + n - cq->head) % n) {
		cq->state = VNVME_Q_ERROR;
		vnvme_report_error(cq->dev, cq->qid, true,
				   VHOST_NVME_ERR_INVALID_DB_VALUE, head, 0);
		return false;
	}
	cq->head = head;
	return true;
}

static u32 vnvme_cq_room(struct vnvme_cq *cq)
{
	u32 used = (cq->tail + cq->entries - cq->head) % cq->entries;

	return cq->entries - 1 - used - cq->reserved;
}

/*
 * Worker: promise one CQ entry to a command about to be fetched. A full CQ
 * is never overwritten: the SQ waits until the guest moves the head.
 */
static bool vnvme_cq_reserve(struct vnvme_cq *cq, struct vnvme_worker *w)
{
	if (cq->state != VNVME_Q_ACTIVE)
		return false;
	if (!vnvme_cq_room(cq)) {
		if (!vnvme_cq_read_head(cq, w))
			return false;
		if (!vnvme_cq_room(cq) && w->eis_gpa) {
			if (vnvme_dbbuf_put(cq->dev, w->eis_gpa,
					    vnvme_db_index(cq->dev, cq->qid, true),
					    cq->head)) {
				cq->state = VNVME_Q_ERROR;
				vnvme_report_error(cq->dev, cq->qid, true,
						   VHOST_NVME_ERR_BAD_QUEUE_MEMORY,
						   0, w->eis_gpa);
				return false;
			}
			smp_mb();	/* EventIdx store before the re-read */
			if (!vnvme_cq_read_head(cq, w))
				return false;
		}
		if (!vnvme_cq_room(cq))
			return false;
	}
	cq->reserved++;
	return true;
}

/* Worker: write one CQE. The dword holding the phase bit goes last. */
static void vnvme_cq_post(struct vnvme_cq *cq, struct vnvme_sq *sq,
			  u16 cid, u16 status)
{
	struct nvme_completion cqe = {
		.sq_head = cpu_to_le16(sq->head),
		.sq_id = cpu_to_le16(sq->qid),
		.command_id = cid,
		.status = cpu_to_le16(status << 1 | cq->phase),
	};
	u64 gpa = cq->gpa + (u64)cq->tail * VNVME_CQE_SIZE;
	void __user *hva;
	u32 last;
	u64 contig;

	BUILD_BUG_ON(sizeof(cqe) != VNVME_CQE_SIZE);
	memcpy(&last, &cqe.command_id, sizeof(last));
	if (vnvme_gpa_to_hva(cq->dev, gpa, VNVME_CQE_SIZE, &hva, &contig) ||
	    contig < VNVME_CQE_SIZE ||
	    copy_to_user(hva, &cqe, offsetof(struct nvme_completion,
					     command_id))) {
		cq->state = VNVME_Q_ERROR;
		vnvme_report_error(cq->dev, cq->qid, true,
				   VHOST_NVME_ERR_BAD_QUEUE_MEMORY, 0, gpa);
		return;
	}
	smp_wmb();	/* the guest polls the phase bit: it must go last */
	if (put_user(last, (u32 __user *)(hva + 12))) {
		cq->state = VNVME_Q_ERROR;
		return;
	}
	sq->head_reported = sq->head;
	if (++cq->tail == cq->entries) {
		cq->tail = 0;
		cq->phase = !cq->phase;
	}
	/* The clock is read only when coalescing may hold the interrupt. */
	if (!cq->unsignalled++ && READ_ONCE(cq->dev->coal_time))
		cq->first_unsignalled = ktime_get_ns();
	if (status)
		cq->unsignalled_error = true;
}

/*
 * Interrupt coalescing (Feature 08h): may the interrupt for the CQEs
 * waiting on @cq be held back? Not past the aggregation threshold or time,
 * not for an error, not on a vector with Coalescing Disable (09h), not
 * while the device stops. When held, @due is lowered to when it is due.
 */
static bool vnvme_cq_hold_irq(struct vnvme_cq *cq, u64 *due)
{
	struct vnvme_dev *dev = cq->dev;
	u8 time = READ_ONCE(dev->coal_time);
	u64 deadline;

	if (!time || cq->unsignalled > READ_ONCE(dev->coal_thr) ||
	    cq->unsignalled_error || !READ_ONCE(dev->running) ||
	    (cq->vector < VHOST_NVME_MAX_VECTORS &&
	     test_bit(cq->vector, dev->no_coalesce)))
		return false;
	deadline = cq->first_unsignalled + (u64)time * 100 * NSEC_PER_USEC;
	if (ktime_get_ns() >= deadline)
		return false;
	*due = min(*due, deadline);
	return true;
}

/* The interrupt for every CQE waiting on @cq, now. */
static void vnvme_cq_fire(struct vnvme_cq *cq)
{
	if (cq->unsignalled && cq->ien && cq->irq) {
		eventfd_signal(cq->irq);
		cq->interrupts++;
	}
	cq->unsignalled = 0;
	cq->unsignalled_error = false;
}

/* Worker, end of a round: one interrupt for the CQEs of the round. */
void vnvme_cq_signal(struct vnvme_cq *cq, u64 *due)
{
	if (!cq->unsignalled)
		return;
	if (cq->ien && cq->irq && vnvme_cq_hold_irq(cq, due))
		return;
	vnvme_cq_fire(cq);
}

/*
 * Worker (or a flush of a dead worker): the request ended; post its CQE
 * and put it back in the pool.
 */
void vnvme_req_complete(struct vnvme_req *req)
{
	struct vnvme_sq *sq = req->sq;
	struct vnvme_cq *cq = sq->cq;
	struct vnvme_worker *w = sq->worker;

	vnvme_io_finish(req);
	if (req->status)
		sq->errors++;
	cq->reserved--;
	if (!w->dead && cq->state == VNVME_Q_ACTIVE)
		vnvme_cq_post(cq, sq, req->cid, req->status);
	sq->inflight--;
	req->next_free = sq->free;
	sq->free = req;
	if (sq->blocked == VNVME_BLOCK_POOL) {
		sq->blocked = VNVME_BLOCK_NONE;
		atomic_set(&sq->kicked, 1);
		atomic_set(&w->pending, 1);
	}
}

/* Worker: fetch and start the commands the guest queued. */
void vnvme_sq_process(struct vnvme_sq *sq)
{
	struct vnvme_worker *w = sq->worker;
	struct vnvme_dev *dev = sq->dev;
	unsigned int budget = VNVME_SQ_BUDGET;
	struct nvme_command cmd;
	struct vnvme_req *req;
	struct blk_plug plug;

	if (sq->state != VNVME_Q_ACTIVE || !READ_ONCE(dev->running))
		return;
	blk_start_plug(&plug);
	while (budget) {
		if (sq->head == sq->tail && !vnvme_sq_has_work(sq))
			break;
		if (!sq->free) {
			sq->blocked = VNVME_BLOCK_POOL;
			break;
		}
		if (!vnvme_cq_reserve(sq->cq, w)) {
			sq->blocked = VNVME_BLOCK_CQ;
			sq->cq_full++;
			break;
		}
		sq->blocked = VNVME_BLOCK_NONE;
		if (vnvme_read_guest(dev, sq->gpa + (u64)sq->head *
				     VNVME_SQE_SIZE, &cmd, sizeof(cmd))) {
			sq->cq->reserved--;
			sq->state = VNVME_Q_ERROR;
			vnvme_report_error(dev, sq->qid, false,
					   VHOST_NVME_ERR_BAD_QUEUE_MEMORY, 0,
					   sq->gpa);
			break;
		}
		/* Not fetched yet: read again when pages come back. */
		if (!vnvme_bounce_fits(w, vnvme_cmd_bounce_pages(dev, &cmd))) {
			sq->cq->reserved--;
			sq->blocked = VNVME_BLOCK_BOUNCE;
			sq->bounce_waits++;
			w->bounce_waiters = true;
			break;
		}
		if (++sq->head == sq->entries)
			sq->head = 0;
		req = sq->free;
		sq->free = req->next_free;
		sq->inflight++;
		sq->commands++;
		budget--;
		vnvme_cmd_execute(req, &cmd);
	}
	blk_finish_plug(&plug);
	if (!budget) {
		/* Let the other SQs of this worker have a turn. */
		atomic_set(&sq->kicked, 1);
		atomic_set(&w->pending, 1);
	}
}

static void vnvme_sq_kicked(struct vnvme_kick *kick)
{
	struct vnvme_sq *sq = container_of(kick, struct vnvme_sq, kick);

	atomic_long_inc(&sq->kick_count);
	atomic_set(&sq->kicked, 1);
	vnvme_worker_kick(sq->worker);
}

static void vnvme_cq_kicked(struct vnvme_kick *kick)
{
	struct vnvme_cq *cq = container_of(kick, struct vnvme_cq, kick);
	struct vnvme_worker *w = READ_ONCE(cq->worker);

	if (w)
		vnvme_worker_cq_moved(w);
}

static bool vnvme_queue_args_ok(struct vnvme_dev *dev, u16 qid, u32 entries,
				u64 gpa, u32 entry_size)
{
	return qid >= 1 && qid <= dev->max_queues &&
	       entries >= 2 && entries <= VHOST_NVME_MAX_QUEUE_ENTRIES &&
	       !(gpa & (VNVME_PAGE_SIZE - 1)) &&
	       vnvme_gpa_valid(dev, gpa, (u64)entries * entry_size);
}

long vnvme_create_cq(struct vnvme_dev *dev, void __user *argp)
{
	struct vhost_nvme_cq arg;
	struct vnvme_cq *cq;
	bool ien, has_irqfd;
	int ret;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	ien = arg.flags & VHOST_NVME_CQ_F_IEN;
	has_irqfd = arg.irqfd >= 0;
	if (memchr_inv(arg.reserved, 0, sizeof(arg.reserved)) ||
	    arg.flags & ~VHOST_NVME_CQ_F_IEN ||
	    !vnvme_queue_args_ok(dev, arg.qid, arg.entries, arg.gpa,
				 VNVME_CQE_SIZE) ||
	    ien != has_irqfd || arg.kickfd < -1)
		return -EINVAL;
	if (dev->cqs[arg.qid])
		return -EEXIST;

	cq = kzalloc(sizeof(*cq), GFP_KERNEL_ACCOUNT);
	if (!cq)
		return -ENOMEM;
	cq->dev = dev;
	cq->qid = arg.qid;
	cq->vector = arg.vector;
	cq->entries = arg.entries;
	cq->gpa = arg.gpa;
	cq->phase = true;
	cq->ien = ien;
	cq->state = VNVME_Q_ACTIVE;
	if (ien) {
		cq->irq = eventfd_ctx_fdget(arg.irqfd);
		if (IS_ERR(cq->irq)) {
			ret = PTR_ERR(cq->irq);
			goto err;
		}
	}
	if (arg.kickfd >= 0) {
		ret = vnvme_kick_start(&cq->kick, arg.kickfd, vnvme_cq_kicked);
		if (ret)
			goto err_irq;
	}
	dev->cqs[arg.qid] = cq;
	return 0;
err_irq:
	if (cq->irq)
		eventfd_ctx_put(cq->irq);
err:
	kfree(cq);
	return ret;
}

static void vnvme_cq_free(struct vnvme_dev *dev, struct vnvme_cq *cq)
{
	vnvme_kick_stop(&cq->kick);
	if (cq->irq)
		eventfd_ctx_put(cq->irq);
	dev->cqs[cq->qid] = NULL;
	kfree(cq);
}

static int vnvme_queue_id(void __user *argp, u16 *qid)
{
	struct vhost_nvme_queue_id arg;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (memchr_inv(arg.reserved, 0, sizeof(arg.reserved)) ||
	    arg.qid < 1 || arg.qid > VHOST_NVME_MAX_QUEUES)
		return -EINVAL;
	*qid = arg.qid;
	return 0;
}

long vnvme_delete_cq(struct vnvme_dev *dev, void __user *argp)
{
	struct vnvme_cq *cq;
	u16 qid;
	int ret;

	ret = vnvme_queue_id(argp, &qid);
	if (ret)
		return ret;
	cq = dev->cqs[qid];
	if (!cq)
		return -ENOENT;
	if (cq->nr_sqs)
		return -EBUSY;
	vnvme_cq_free(dev, cq);
	return 0;
}

static int vnvme_sq_alloc_pool(struct vnvme_dev *dev, struct vnvme_sq *sq)
{
	unsigned int max_iov = (1U << dev->mdts) + 1;
	unsigned int i;

	sq->nr_reqs = min_t(u32, sq->entries - 1, VNVME_MAX_INFLIGHT);
	sq->reqs = kvcalloc(sq->nr_reqs, sizeof(*sq->reqs), GFP_KERNEL_ACCOUNT);
	sq->iov_mem = kvcalloc(sq->nr_reqs * max_iov, sizeof(*sq->iov_mem),
			       GFP_KERNEL_ACCOUNT);
	sq->bvec_mem = kvcalloc(sq->nr_reqs * max_iov, sizeof(*sq->bvec_mem),
				GFP_KERNEL_ACCOUNT);
	sq->page_mem = kvcalloc(sq->nr_reqs * max_iov, sizeof(*sq->page_mem),
				GFP_KERNEL_ACCOUNT);
	if (!sq->reqs || !sq->iov_mem || !sq->bvec_mem || !sq->page_mem)
		return -ENOMEM;
	for (i = 0; i < sq->nr_reqs; i++) {
		struct vnvme_req *req = &sq->reqs[i];

		req->sq = sq;
		req->max_iov = max_iov;
		req->iov = &sq->iov_mem[i * max_iov];
		req->bvec = &sq->bvec_mem[i * max_iov];
		req->pages = &sq->page_mem[i * max_iov];
		req->next_free = sq->free;
		sq->free = req;
	}
	return 0;
}

static void vnvme_sq_free(struct vnvme_sq *sq)
{
	kvfree(sq->page_mem);
	kvfree(sq->bvec_mem);
	kvfree(sq->iov_mem);
	kvfree(sq->reqs);
	kfree(sq);
}

long vnvme_create_sq(struct vnvme_dev *dev, void __user *argp)
{
	struct vnvme_worker *w;
	struct vhost_nvme_sq arg;
	struct vnvme_cq *cq;
	struct vnvme_sq *sq;
	int ret;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (memchr_inv(arg.reserved, 0, sizeof(arg.reserved)) || arg.flags ||
	    !vnvme_queue_args_ok(dev, arg.qid, arg.entries, arg.gpa,
				 VNVME_SQE_SIZE) ||
	    arg.cqid < 1 || arg.cqid > VHOST_NVME_MAX_QUEUES ||
	    arg.worker >= VHOST_NVME_MAX_WORKERS || arg.kickfd < -1)
		return -EINVAL;
	if (dev->sqs[arg.qid])
		return -EEXIST;
	cq = dev->cqs[arg.cqid];
	if (!cq)
		return -ENOENT;
	if (cq->worker && cq->worker->index != arg.worker)
		return -EINVAL;

	w = vnvme_worker_get(dev, arg.worker);
	if (IS_ERR(w))
		return PTR_ERR(w);
	sq = kzalloc(sizeof(*sq), GFP_KERNEL_ACCOUNT);
	if (!sq)
		return -ENOMEM;
	sq->dev = dev;
	sq->worker = w;
	sq->cq = cq;
	sq->qid = arg.qid;
	sq->entries = arg.entries;
	sq->gpa = arg.gpa;
	sq->state = VNVME_Q_ACTIVE;
	ret = vnvme_sq_alloc_pool(dev, sq);
	if (ret)
		goto err;
	if (arg.kickfd >= 0) {
		ret = vnvme_kick_start(&sq->kick, arg.kickfd, vnvme_sq_kicked);
		if (ret)
			goto err;
	}

	mutex_lock(&w->lock);
	list_add_tail(&sq->node, &w->sqs);
	WRITE_ONCE(cq->worker, w);
	cq->nr_sqs++;
	mutex_unlock(&w->lock);
	dev->sqs[arg.qid] = sq;
	/* The guest may have queued commands already. */
	atomic_set(&sq->kicked, 1);
	vnvme_worker_kick(w);
	return 0;
err:
	vnvme_sq_free(sq);
	return ret;
}

/* Stop fetching from @sq, wait for its commands and post their CQEs. */
static void vnvme_sq_quiesce(struct vnvme_dev *dev, struct vnvme_sq *sq)
{
	struct vnvme_worker *w = sq->worker;

	mutex_lock(&w->lock);
	if (sq->state == VNVME_Q_ACTIVE)
		sq->state = VNVME_Q_STOPPED;
	mutex_unlock(&w->lock);
	wait_event(dev->idle_wq, !atomic_read(&sq->outstanding));
	vnvme_worker_flush(w);
}

/* Quiesce @sq and take it off its worker; free it after an RCU period. */
static void vnvme_sq_unlink(struct vnvme_dev *dev, struct vnvme_sq *sq)
{
	struct vnvme_worker *w = sq->worker;
	struct vnvme_cq *cq = sq->cq;

	vnvme_kick_stop(&sq->kick);
	vnvme_sq_quiesce(dev, sq);
	mutex_lock(&w->lock);
	WARN_ON(sq->inflight);
	list_del(&sq->node);
	/* No round of this worker may look at the CQ again. */
	vnvme_cq_fire(cq);
	if (!--cq->nr_sqs)
		WRITE_ONCE(cq->worker, NULL);
	mutex_unlock(&w->lock);
	dev->sqs[sq->qid] = NULL;
}

static void vnvme_sq_destroy(struct vnvme_dev *dev, struct vnvme_sq *sq)
{
	vnvme_sq_unlink(dev, sq);
	/* vnvme_req_ended() may still be leaving: see there. */
	synchronize_rcu();
	vnvme_sq_free(sq);
}

long vnvme_delete_sq(struct vnvme_dev *dev, void __user *argp)
{
	struct vnvme_sq *sq;
	u16 qid;
	int ret;

	ret = vnvme_queue_id(argp, &qid);
	if (ret)
		return ret;
	sq = dev->sqs[qid];
	if (!sq)
		return -ENOENT;
	vnvme_sq_destroy(dev, sq);
	return 0;
}

/* Publish the doorbell buffer to every worker, each under its lock. */
static void vnvme_dbbuf_publish(struct vnvme_dev *dev)
{
	int i;

	for (i = 0; i < VHOST_NVME_MAX_WORKERS; i++) {
		struct vnvme_worker *w = dev->workers[i];
		struct vnvme_sq *sq;

		if (!w)
			continue;
		mutex_lock(&w->lock);
		w->dbs_gpa = dev->dbs_gpa;
		w->eis_gpa = dev->eis_gpa;
		list_for_each_entry(sq, &w->sqs, node) {
			/*
			 * Back to forwarded values: carry on from the last
			 * shadow values, until the VMM forwards newer ones.
			 */
			if (!w->dbs_gpa) {
				WRITE_ONCE(sq->db_value, sq->tail);
				WRITE_ONCE(sq->cq->db_value, sq->cq->head);
			}
			/* Where the tail comes from changed: look again. */
			atomic_set(&sq->kicked, 1);
		}
		mutex_unlock(&w->lock);
		vnvme_worker_kick(w);
	}
}

long vnvme_set_dbbuf(struct vnvme_dev *dev, void __user *argp)
{
	struct vhost_nvme_dbbuf arg;
	u64 need = (u64)vnvme_db_index(dev, dev->max_queues, true) * 4 + 4;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (memchr_inv(arg.reserved, 0, sizeof(arg.reserved)) ||
	    !arg.dbs_gpa || !arg.eis_gpa || arg.dbs_gpa == arg.eis_gpa ||
	    (arg.dbs_gpa | arg.eis_gpa) & (VNVME_PAGE_SIZE - 1) ||
	    need > VNVME_PAGE_SIZE ||
	    !vnvme_gpa_valid(dev, arg.dbs_gpa, VNVME_PAGE_SIZE) ||
	    !vnvme_gpa_valid(dev, arg.eis_gpa, VNVME_PAGE_SIZE))
		return -EINVAL;
	dev->dbs_gpa = arg.dbs_gpa;
	dev->eis_gpa = arg.eis_gpa;
	vnvme_dbbuf_publish(dev);
	return 0;
}

void vnvme_clear_dbbuf(struct vnvme_dev *dev)
{
	dev->dbs_gpa = 0;
	dev->eis_gpa = 0;
	vnvme_dbbuf_publish(dev);
}

/*
 * A forwarded doorbell value was out of range: stop the queue, report it.
 * Once: a guest writing bad values in a loop must not flood the VMM's
 * error ring and crowd out other queues' errors.
 */
static void vnvme_doorbell_invalid(struct vnvme_dev *dev,
				   struct vnvme_worker *w,
				   enum vnvme_q_state *state,
				   const struct vhost_nvme_doorbell *arg)
{
	bool was_active;

	/* A CQ without SQs has no worker yet, and nobody else to race. */
	if (w)
		mutex_lock(&w->lock);
	was_active = *state == VNVME_Q_ACTIVE;
	*state = VNVME_Q_ERROR;
	if (w)
		mutex_unlock(&w->lock);
	if (was_active)
		vnvme_report_error(dev, arg->qid, arg->cq,
				   VHOST_NVME_ERR_INVALID_DB_VALUE, arg->value,
				   0);
}

long vnvme_doorbell(struct vnvme_dev *dev, void __user *argp)
{
	struct vhost_nvme_doorbell arg;
	struct vnvme_sq *sq;
	struct vnvme_cq *cq;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (arg.reserved0 || arg.cq > 1 || arg.qid < 1 ||
	    arg.qid > VHOST_NVME_MAX_QUEUES)
		return -EINVAL;

	if (arg.cq) {
		cq = dev->cqs[arg.qid];
		if (!cq)
			return -ENOENT;
		if (arg.value >= cq->entries) {
			vnvme_doorbell_invalid(dev, cq->worker, &cq->state, &arg);
			return 0;
		}
		WRITE_ONCE(cq->db_value, arg.value);
		if (cq->worker)
			vnvme_worker_cq_moved(cq->worker);
		return 0;
	}
	sq = dev->sqs[arg.qid];
	if (!sq)
		return -ENOENT;
	if (arg.value >= sq->entries) {
		vnvme_doorbell_invalid(dev, sq->worker, &sq->state, &arg);
		return 0;
	}
	/* With shadow doorbells the shadow value is the newer one. */
	WRITE_ONCE(sq->db_value, arg.value);
	vnvme_sq_kicked(&sq->kick);
	return 0;
}

long vnvme_queue_stats(struct vnvme_dev *dev, void __user *argp)
{
	struct vhost_nvme_queue_stats st;
	struct vnvme_sq *sq;
	struct vnvme_cq *cq;
	u16 qid;

	if (copy_from_user(&st, argp, sizeof(st)))
		return -EFAULT;
	if (memchr_inv(st.reserved0, 0, sizeof(st.reserved0)) ||
	    st.qid < 1 || st.qid > VHOST_NVME_MAX_QUEUES)
		return -EINVAL;
	qid = st.qid;
	sq = dev->sqs[qid];
	cq = dev->cqs[qid];
	if (!sq && !cq)
		return -ENOENT;
	memset(&st, 0, sizeof(st));
	st.qid = qid;
	if (sq) {
		mutex_lock(&sq->worker->lock);
		st.commands = sq->commands;
		st.errors = sq->errors;
		st.sdb_reads = sq->sdb_reads;
		st.cq_full = sq->cq_full;
		st.flushes = sq->flushes;
		st.dsms = sq->dsms;
		st.polled = sq->polled;
		st.bounce_waits = sq->bounce_waits;
		mutex_unlock(&sq->worker->lock);
		st.kicks = atomic_long_read(&sq->kick_count);
	}
	if (cq) {
		struct vnvme_worker *w = cq->worker;

		if (w)
			mutex_lock(&w->lock);
		st.interrupts = cq->interrupts;
		st.sdb_reads += cq->sdb_reads;
		if (w)
			mutex_unlock(&w->lock);
	}
	if (copy_to_user(argp, &st, sizeof(st)))
		return -EFAULT;
	return 0;
}

/*
 * Stop fetching on every SQ, wait for every command in flight and post its
 * completion. The CQ entries were reserved when the commands were fetched,
 * so posting never waits for the guest.
 */
void vnvme_stop(struct vnvme_dev *dev)
{
	int i;

	WRITE_ONCE(dev->running, false);
	for (i = 0; i < VHOST_NVME_MAX_WORKERS; i++)
		if (dev->workers[i])
			vnvme_worker_flush(dev->workers[i]);
	for (i = 1; i <= VHOST_NVME_MAX_QUEUES; i++) {
		struct vnvme_sq *sq = dev->sqs[i];

		if (sq)
			wait_event(dev->idle_wq, !atomic_read(&sq->outstanding));
	}
	for (i = 0; i < VHOST_NVME_MAX_WORKERS; i++)
		if (dev->workers[i])
			vnvme_worker_flush(dev->workers[i]);
}

void vnvme_delete_all_queues(struct vnvme_dev *dev)
{
	struct vnvme_sq *sq, *tmp;
	LIST_HEAD(unlinked);
	int i;

	for (i = 1; i <= VHOST_NVME_MAX_QUEUES; i++) {
		sq = dev->sqs[i];
		if (sq) {
			vnvme_sq_unlink(dev, sq);
			list_add(&sq->node, &unlinked);
		}
	}
	if (!list_empty(&unlinked)) {
		/* One grace period for all: see vnvme_req_ended(). */
		synchronize_rcu();
		list_for_each_entry_safe(sq, tmp, &unlinked, node)
			vnvme_sq_free(sq);
	}
	for (i = 1; i <= VHOST_NVME_MAX_QUEUES; i++)
		if (dev->cqs[i])
			vnvme_cq_free(dev, dev->cqs[i]);
}
