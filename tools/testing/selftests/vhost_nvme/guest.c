// SPDX-License-Identifier: GPL-2.0-only
/*
 * The vhost-nvme selftests' userspace guest: memory, device ioctls, queues,
 * doorbells, commands, PRPs and backends. See guest.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/fs.h>
#include <linux/magic.h>

#include "guest.h"

#define DIV_ROUND_UP(n, d)	(((n) + (d) - 1) / (d))
#define MIN(a, b)		((a) < (b) ? (a) : (b))

static int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

static int eventfd_kick(int fd)
{
	__u64 one = 1;

	return write(fd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

static __s64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__s64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void guest_msleep(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- device and memory ------------------------------------------------ */

int guest_open(struct guest *g, size_t mem_size)
{
	int rc;

	memset(g, 0, sizeof(*g));
	g->fd = -1;
	g->memfd = -1;
	g->errfd = -1;
	g->mem_gpa = GUEST_MEM_GPA;
	g->mem_size = mem_size;
	/* The header's defaults, until guest_set_config() says otherwise. */
	g->mdts = 7;
	g->max_queues = VHOST_NVME_MAX_QUEUES;

	g->memfd = memfd_create("vhost-nvme-guest", MFD_CLOEXEC);
	if (g->memfd < 0)
		goto err;
	if (ftruncate(g->memfd, mem_size))
		goto err;
	g->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      g->memfd, 0);
	if (g->mem == MAP_FAILED) {
		g->mem = NULL;
		goto err;
	}
	g->fd = open(GUEST_DEV_PATH, O_RDWR | O_CLOEXEC);
	if (g->fd < 0)
		goto err;
	return 0;
err:
	rc = -errno;
	guest_close(g);
	return rc;
}

int guest_set_owner(struct guest *g)
{
	return xioctl(g->fd, VHOST_SET_OWNER, NULL);
}

int guest_set_mem_regions(struct guest *g,
			  const struct vhost_memory_region *r, unsigned int n)
{
	struct vhost_memory *m;
	int rc;

	m = calloc(1, sizeof(*m) + n * sizeof(m->regions[0]));
	if (!m)
		return -ENOMEM;
	m->nregions = n;
	memcpy(m->regions, r, n * sizeof(*r));
	rc = xioctl(g->fd, VHOST_SET_MEM_TABLE, m);
	free(m);
	return rc;
}

int guest_set_mem_table(struct guest *g)
{
	struct vhost_memory_region r = {
		.guest_phys_addr = g->mem_gpa,
		.memory_size = g->mem_size,
		.userspace_addr = (uintptr_t)g->mem,
	};

	return guest_set_mem_regions(g, &r, 1);
}

/* Ack VHOST_NVME_F_POLL: -EOPNOTSUPP if the module does not offer it. */
int guest_ack_poll(struct guest *g)
{
	__u64 f;

	if (ioctl(g->fd, VHOST_GET_FEATURES, &f))
		return -errno;
	if (!(f & (1ULL << VHOST_NVME_F_POLL)))
		return -EOPNOTSUPP;
	f = 1ULL << VHOST_NVME_F_POLL;
	return xioctl(g->fd, VHOST_SET_FEATURES, &f);
}

int guest_set_poll(struct guest *g, __u32 us)
{
	struct vhost_nvme_poll p = { .poll_us = us };

	return xioctl(g->fd, VHOST_NVME_SET_POLL, &p);
}

int guest_set_coalescing(struct guest *g, __u8 thr, __u8 time)
{
	struct vhost_nvme_coalescing c = { .threshold = thr, .time = time };

	return xioctl(g->fd, VHOST_NVME_SET_COALESCING, &c);
}

int guest_setup(struct guest *g, size_t mem_size)
{
	int rc;

	rc = guest_open(g, mem_size);
	if (rc)
		return rc;
	rc = guest_set_owner(g);
	if (!rc)
		rc = guest_set_mem_table(g);
	if (rc)
		guest_close(g);
	return rc;
}

static void free_cq(struct guest_cq *cq)
{
	if (cq->irqfd >= 0)
		close(cq->irqfd);
	if (cq->kickfd >= 0)
		close(cq->kickfd);
	free(cq);
}

static void free_sq(struct guest_sq *sq)
{
	if (sq->kickfd >= 0)
		close(sq->kickfd);
	free(sq);
}

/* Forget every queue: the device no longer has them (reset or close). */
static void forget_queues(struct guest *g)
{
	int i;

	for (i = 0; i <= VHOST_NVME_MAX_QUEUES; i++) {
		if (g->sq[i])
			free_sq(g->sq[i]);
		if (g->cq[i])
			free_cq(g->cq[i]);
		g->sq[i] = NULL;
		g->cq[i] = NULL;
	}
}

/*
 * Close the device and open a new one over the same guest memory, as a
 * VMM that restarts its device model does: the queues, the doorbell buffer
 * and the error fd went with the old device. The new one has an owner and
 * nothing else: no memory table, no configuration.
 */
int guest_reopen(struct guest *g)
{
	if (g->fd >= 0)
		close(g->fd);
	forget_queues(g);
	if (g->errfd >= 0)
		close(g->errfd);
	g->errfd = -1;
	g->dbs = g->eis = NULL;
	g->dbs_gpa = g->eis_gpa = 0;
	g->fd = open(GUEST_DEV_PATH, O_RDWR | O_CLOEXEC);
	if (g->fd < 0)
		return -errno;
	return guest_set_owner(g);
}

void guest_close(struct guest *g)
{
	/*
	 * The device goes first: its release stops the queues and waits for
	 * I/O in flight, which may still be writing into guest memory.
	 */
	if (g->fd >= 0)
		close(g->fd);
	g->fd = -1;
	forget_queues(g);
	if (g->errfd >= 0)
		close(g->errfd);
	g->errfd = -1;
	if (g->mem)
		munmap(g->mem, g->mem_size);
	g->mem = NULL;
	if (g->memfd >= 0)
		close(g->memfd);
	g->memfd = -1;
	g->dbs = g->eis = NULL;
}

__u64 guest_alloc(struct guest *g, unsigned int npages)
{
	__u64 len = (__u64)npages << GUEST_PAGE_SHIFT;
	__u64 off = g->alloc_next;

	if (!npages || len > g->mem_size - off)
		return 0;
	g->alloc_next += len;
	memset((char *)g->mem + off, 0, len);
	return g->mem_gpa + off;
}

void guest_alloc_release(struct guest *g, __u64 mark)
{
	if (mark <= g->alloc_next)
		g->alloc_next = mark;
}

void *guest_ptr(struct guest *g, __u64 gpa)
{
	if (gpa < g->mem_gpa || gpa - g->mem_gpa >= g->mem_size)
		return NULL;
	return (char *)g->mem + (gpa - g->mem_gpa);
}

/* ---- controller ioctls ------------------------------------------------ */

int guest_set_config(struct guest *g, unsigned int mdts, unsigned int dstrd,
		     unsigned int max_queues)
{
	struct vhost_nvme_config c = {
		.mdts = mdts,
		.dstrd = dstrd,
		.max_queues = max_queues,
	};
	int rc;

	rc = xioctl(g->fd, VHOST_NVME_SET_CONFIG, &c);
	if (!rc) {
		g->mdts = mdts;
		g->dstrd = dstrd;
		g->max_queues = max_queues;
	}
	return rc;
}

int guest_set_namespace(struct guest *g, int fd, __u32 nsid, __u32 lba_shift,
			__u32 flags, __u64 *nsze)
{
	struct vhost_nvme_namespace ns = {
		.fd = fd,
		.nsid = nsid,
		.lba_shift = lba_shift,
		.flags = flags,
	};
	int rc;

	rc = xioctl(g->fd, VHOST_NVME_SET_NAMESPACE, &ns);
	if (!rc && nsze)
		*nsze = ns.nsze;
	return rc;
}

int guest_clear_namespace(struct guest *g, __u32 nsid)
{
	return xioctl(g->fd, VHOST_NVME_CLEAR_NAMESPACE, &nsid);
}

int guest_start(struct guest *g)
{
	return xioctl(g->fd, VHOST_NVME_START, NULL);
}

int guest_stop(struct guest *g)
{
	return xioctl(g->fd, VHOST_NVME_STOP, NULL);
}

int guest_reset(struct guest *g)
{
	int rc = xioctl(g->fd, VHOST_NVME_RESET, NULL);

	/* Reset deletes every queue and clears the doorbell buffer. */
	if (!rc) {
		forget_queues(g);
		g->dbs = g->eis = NULL;
		g->dbs_gpa = g->eis_gpa = 0;
	}
	return rc;
}

__u32 guest_db_index(struct guest *g, __u16 qid, bool cq)
{
	return (2u * qid + cq) << g->dstrd;
}

int guest_set_dbbuf(struct guest *g)
{
	/* Enough for the entries of every queue id up to max_queues. */
	__u32 bytes = (guest_db_index(g, g->max_queues, true) + 1) * 4;
	unsigned int npages = DIV_ROUND_UP(bytes, GUEST_PAGE_SIZE);
	struct vhost_nvme_dbbuf d = { 0 };
	volatile __u32 *dbs, *eis;
	int i, rc;

	d.dbs_gpa = guest_alloc(g, npages);
	d.eis_gpa = guest_alloc(g, npages);
	if (!d.dbs_gpa || !d.eis_gpa)
		return -ENOMEM;
	dbs = guest_ptr(g, d.dbs_gpa);
	eis = guest_ptr(g, d.eis_gpa);
	/*
	 * Queues that already exist carry on from the values the device has
	 * (what QEMU writes into the page on Doorbell Buffer Config), with
	 * EventIdx equal to them: the next write needs a doorbell, as for a
	 * new queue whose entries are all 0. Left at 0, EventIdx would tell
	 * this guest not to ring an idle queue.
	 */
	for (i = 1; i <= VHOST_NVME_MAX_QUEUES; i++) {
		__u32 s = guest_db_index(g, i, false);
		__u32 c = guest_db_index(g, i, true);

		if (g->sq[i])
			dbs[s] = eis[s] = htole32(g->sq[i]->db_tail);
		if (g->cq[i])
			dbs[c] = eis[c] = htole32(g->cq[i]->db_head);
	}
	__sync_synchronize();
	rc = xioctl(g->fd, VHOST_NVME_SET_DBBUF, &d);
	if (rc)
		return rc;
	g->dbs_gpa = d.dbs_gpa;
	g->eis_gpa = d.eis_gpa;
	g->dbs = dbs;
	g->eis = eis;
	return 0;
}

int guest_clear_dbbuf(struct guest *g)
{
	int rc = xioctl(g->fd, VHOST_NVME_CLEAR_DBBUF, NULL);

	if (!rc) {
		g->dbs = g->eis = NULL;
		g->dbs_gpa = g->eis_gpa = 0;
	}
	return rc;
}

int guest_set_error_fd(struct guest *g)
{
	__s32 fd;
	int rc;

	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	rc = xioctl(g->fd, VHOST_NVME_SET_ERROR_FD, &fd);
	if (rc) {
		close(fd);
		return rc;
	}
	if (g->errfd >= 0)
		close(g->errfd);
	g->errfd = fd;
	return 0;
}

int guest_get_error(struct guest *g, struct vhost_nvme_error *err)
{
	memset(err, 0, sizeof(*err));
	return xioctl(g->fd, VHOST_NVME_GET_ERROR, err);
}

int guest_get_stats(struct guest *g, __u16 qid,
		    struct vhost_nvme_queue_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->qid = qid;
	return xioctl(g->fd, VHOST_NVME_GET_QUEUE_STATS, st);
}

/* ---- queues ------------------------------------------------------------ */

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	return fd < 0 ? -errno : fd;
}

/*
 * A new queue starts at 0 in the shadow page too, and with no EventIdx
 * left over from an earlier queue of that id: Linux's driver gets the same
 * from the zeroed pages it allocates at every controller (re)start.
 */
static void reset_shadow(struct guest *g, __u16 qid, bool cq)
{
	if (!g->dbs)
		return;
	g->dbs[guest_db_index(g, qid, cq)] = 0;
	g->eis[guest_db_index(g, qid, cq)] = 0;
	__sync_synchronize();
}

int guest_create_cq(struct guest *g, __u16 qid, __u32 entries,
		    unsigned int flags, struct guest_cq **cqp)
{
	struct vhost_nvme_cq arg = { 0 };
	struct guest_cq *cq;
	int rc;

	if (!qid || qid > VHOST_NVME_MAX_QUEUES || g->cq[qid] || !entries ||
	    entries > VHOST_NVME_MAX_QUEUE_ENTRIES)
		return -EINVAL;
	cq = calloc(1, sizeof(*cq));
	if (!cq)
		return -ENOMEM;
	cq->g = g;
	cq->qid = qid;
	cq->entries = entries;
	cq->phase = 1;
	cq->irqfd = -1;
	cq->kickfd = -1;
	rc = -ENOMEM;
	cq->gpa = guest_alloc(g, DIV_ROUND_UP(entries * 16, GUEST_PAGE_SIZE));
	if (!cq->gpa)
		goto err;
	cq->ring = guest_ptr(g, cq->gpa);
	if (flags & GUEST_CQ_IEN) {
		rc = cq->irqfd = new_eventfd();
		if (rc < 0)
			goto err;
	}
	if (flags & GUEST_CQ_KICKFD) {
		rc = cq->kickfd = new_eventfd();
		if (rc < 0)
			goto err;
	}
	reset_shadow(g, qid, true);

	arg.qid = qid;
	arg.vector = qid;
	arg.entries = entries;
	arg.gpa = cq->gpa;
	arg.irqfd = cq->irqfd;
	arg.kickfd = cq->kickfd;
	arg.flags = (flags & GUEST_CQ_IEN) ? VHOST_NVME_CQ_F_IEN : 0;
	rc = xioctl(g->fd, VHOST_NVME_CREATE_CQ, &arg);
	if (rc)
		goto err;
	g->cq[qid] = cq;
	if (cqp)
		*cqp = cq;
	return 0;
err:
	if (cq->irqfd < 0)
		cq->irqfd = -1;
	if (cq->kickfd < 0)
		cq->kickfd = -1;
	free_cq(cq);
	return rc;
}

int guest_create_sq(struct guest *g, __u16 qid, struct guest_cq *cq,
		    __u32 entries, __u16 worker, unsigned int flags,
		    struct guest_sq **sqp)
{
	struct vhost_nvme_sq arg = { 0 };
	struct guest_sq *sq;
	int rc;

	if (!qid || qid > VHOST_NVME_MAX_QUEUES || g->sq[qid] || !entries ||
	    entries > VHOST_NVME_MAX_QUEUE_ENTRIES)
		return -EINVAL;
	sq = calloc(1, sizeof(*sq));
	if (!sq)
		return -ENOMEM;
	sq->g = g;
	sq->cq = cq;
	sq->qid = qid;
	sq->worker = worker;
	sq->entries = entries;
	sq->kickfd = -1;
	rc = -ENOMEM;
	sq->gpa = guest_alloc(g, DIV_ROUND_UP(entries * 64, GUEST_PAGE_SIZE));
	if (!sq->gpa)
		goto err;
	sq->ring = guest_ptr(g, sq->gpa);
	if (!(flags & GUEST_SQ_NO_KICKFD)) {
		rc = sq->kickfd = new_eventfd();
		if (rc < 0) {
			sq->kickfd = -1;
			goto err;
		}
	}
	reset_shadow(g, qid, false);

	arg.qid = qid;
	arg.cqid = cq ? cq->qid : 0;
	arg.entries = entries;
	arg.gpa = sq->gpa;
	arg.kickfd = sq->kickfd;
	arg.worker = worker;
	rc = xioctl(g->fd, VHOST_NVME_CREATE_SQ, &arg);
	if (rc)
		goto err;
	g->sq[qid] = sq;
	if (sqp)
		*sqp = sq;
	return 0;
err:
	free_sq(sq);
	return rc;
}

int guest_create_qpair(struct guest *g, __u16 qid, __u32 sq_entries,
		       __u32 cq_entries, __u16 worker, struct guest_sq **sqp)
{
	struct guest_cq *cq;
	int rc;

	rc = guest_create_cq(g, qid, cq_entries, GUEST_CQ_IEN, &cq);
	if (rc)
		return rc;
	rc = guest_create_sq(g, qid, cq, sq_entries, worker, 0, sqp);
	if (rc)
		guest_delete_cq(cq);
	return rc;
}

int guest_delete_sq(struct guest_sq *sq)
{
	struct vhost_nvme_queue_id id = { .qid = sq->qid };
	struct guest *g = sq->g;
	int rc;

	rc = xioctl(g->fd, VHOST_NVME_DELETE_SQ, &id);
	if (!rc) {
		g->sq[sq->qid] = NULL;
		free_sq(sq);
	}
	return rc;
}

int guest_delete_cq(struct guest_cq *cq)
{
	struct vhost_nvme_queue_id id = { .qid = cq->qid };
	struct guest *g = cq->g;
	int rc;

	rc = xioctl(g->fd, VHOST_NVME_DELETE_CQ, &id);
	if (!rc) {
		g->cq[cq->qid] = NULL;
		free_cq(cq);
	}
	return rc;
}

/* ---- submission -------------------------------------------------------- */

static int doorbell_ioctl(struct guest *g, __u16 qid, __u8 cq, __u32 value)
{
	struct vhost_nvme_doorbell d = {
		.qid = qid,
		.cq = cq,
		.value = value,
	};

	return xioctl(g->fd, VHOST_NVME_DOORBELL, &d);
}

int guest_sq_space(struct guest_sq *sq)
{
	/* One slot always stays empty: head == tail means empty. */
	return (sq->head + sq->entries - sq->tail - 1) % sq->entries;
}

int guest_sq_push(struct guest_sq *sq, const struct nvme_sqe *cmd)
{
	if (!guest_sq_space(sq))
		return -ENOSPC;
	memcpy(&sq->ring[sq->tail], cmd, sizeof(*cmd));
	sq->tail = (sq->tail + 1) % sq->entries;
	return 0;
}

int guest_sq_submit(struct guest_sq *sq, struct nvme_sqe *cmd)
{
	int rc;

	cmd->cid = htole16(sq->next_cid++);
	rc = guest_sq_push(sq, cmd);
	return rc ? rc : le16toh(cmd->cid);
}

/*
 * Publish @value as the SQ tail. With shadow doorbells this is Linux's
 * nvme_dbbuf_update_and_check_event(): store the tail in the shadow page,
 * full barrier, read EventIdx, and write the real doorbell (here: signal
 * the kick eventfd, the ioeventfd a VMM would wire up) only if the device
 * asked for it - or always when @force. Without shadow doorbells the VMM
 * would trap the MMIO write and forward the value.
 */
int guest_sq_doorbell(struct guest_sq *sq, __u32 value, bool force)
{
	struct guest *g = sq->g;
	__u32 old = sq->db_tail;

	sq->db_tail = value;
	sq->rings++;
	if (g->dbs) {
		__u32 idx = guest_db_index(g, sq->qid, false);
		__u32 ei;

		/* The SQEs must be visible before the tail that covers them. */
		__sync_synchronize();
		g->dbs[idx] = htole32(value);
		/*
		 * The device writes EventIdx, then re-reads the tail; we
		 * write the tail, then read EventIdx. A full barrier on both
		 * sides means one of us sees the other's store.
		 */
		__sync_synchronize();
		ei = le32toh(g->eis[idx]);
		if (!force && !nvme_dbbuf_need_event(ei, value, old))
			return 0;
		sq->kicks++;
		if (sq->kickfd >= 0)
			return eventfd_kick(sq->kickfd);
		return doorbell_ioctl(g, sq->qid, 0, value);
	}
	sq->kicks++;
	__sync_synchronize();
	return doorbell_ioctl(g, sq->qid, 0, value);
}

int guest_sq_ring(struct guest_sq *sq)
{
	if (sq->tail == sq->db_tail)
		return 0;
	return guest_sq_doorbell(sq, sq->tail, false);
}

/* ---- completion -------------------------------------------------------- */

static __u16 cqe_status(volatile struct nvme_cqe *e)
{
	/* Acquire: the rest of the entry is read after the phase says new. */
	return le16toh(__atomic_load_n(&e->status, __ATOMIC_ACQUIRE));
}

int guest_cq_peek(struct guest_cq *cq)
{
	__u32 head = cq->head;
	__u8 phase = cq->phase;
	__u32 n = 0;

	while (n < cq->entries) {
		if ((cqe_status(&cq->ring[head]) & 1) != phase)
			break;
		n++;
		if (++head == cq->entries) {
			head = 0;
			phase ^= 1;
		}
	}
	return n;
}

int guest_cq_reap(struct guest_cq *cq, struct guest_cpl *out, int max)
{
	struct guest *g = cq->g;
	int n = 0;

	while (n < max) {
		volatile struct nvme_cqe *e = &cq->ring[cq->head];
		__u16 st = cqe_status(e);
		struct guest_sq *sq;
		struct guest_cpl c;

		if ((st & 1) != cq->phase)
			break;
		c.result = le32toh(e->result);
		c.sq_head = le16toh(e->sq_head);
		c.sq_id = le16toh(e->sq_id);
		c.cid = le16toh(e->cid);
		c.status = st;
		/* The device tells us how far it consumed the SQ. */
		sq = c.sq_id <= VHOST_NVME_MAX_QUEUES ? g->sq[c.sq_id] : NULL;
		if (sq && sq->cq == cq && c.sq_head < sq->entries)
			sq->head = c.sq_head;
		if (out)
			out[n] = c;
		n++;
		if (++cq->head == cq->entries) {
			cq->head = 0;
			cq->phase ^= 1;
			cq->wraps++;
		}
	}
	return n;
}

/* Publish @value as the CQ head; the EventIdx rule as for the SQ tail. */
int guest_cq_doorbell(struct guest_cq *cq, __u32 value, bool force)
{
	struct guest *g = cq->g;
	__u32 old = cq->db_head;

	cq->db_head = value;
	cq->rings++;
	/* Done reading the entries before the device may reuse them. */
	__sync_synchronize();
	if (g->dbs) {
		__u32 idx = guest_db_index(g, cq->qid, true);
		__u32 ei;

		g->dbs[idx] = htole32(value);
		__sync_synchronize();
		ei = le32toh(g->eis[idx]);
		if (!force && !nvme_dbbuf_need_event(ei, value, old))
			return 0;
		cq->kicks++;
		if (cq->kickfd >= 0)
			return eventfd_kick(cq->kickfd);
		return doorbell_ioctl(g, cq->qid, 1, value);
	}
	cq->kicks++;
	return doorbell_ioctl(g, cq->qid, 1, value);
}

int guest_cq_ring(struct guest_cq *cq)
{
	if (cq->head == cq->db_head)
		return 0;
	return guest_cq_doorbell(cq, cq->head, false);
}

int guest_wait_fd(int fd, int timeout_ms)
{
	__s64 deadline = now_ms() + timeout_ms;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	__u64 count;
	int rc;

	for (;;) {
		__s64 left = deadline - now_ms();

		rc = poll(&p, 1, left > 0 ? (int)left : 0);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		if (rc == 0)
			return 0;
		/* Drain it: the next poll then waits for a new signal. */
		if (read(fd, &count, sizeof(count)) == sizeof(count))
			return 1;
		if (errno != EAGAIN)
			return -errno;
		if (left <= 0)
			return 0;
	}
}

/*
 * Collect @n completions (into @out unless NULL), giving each batch's slots
 * back to the device as we go so that a full CQ drains. Returns how many
 * arrived within @timeout_ms, fewer than @n on timeout. The irqfd is read
 * before the entries are scanned, so an interrupt for an entry posted
 * after the scan is never lost. With interrupts enabled, entries are only
 * taken when an interrupt (or an earlier one) announced them: if the wait
 * times out, what sits in the CQ by then was posted without an interrupt
 * and does not count - a guest would never have looked.
 */
int guest_cq_wait(struct guest_cq *cq, struct guest_cpl *out, int n,
		  int timeout_ms)
{
	__s64 deadline = now_ms() + timeout_ms;
	int got = 0, k, rc;

	for (;;) {
		k = guest_cq_reap(cq, out ? out + got : NULL, n - got);
		if (k) {
			got += k;
			rc = guest_cq_ring(cq);
			if (rc)
				return rc;
		}
		if (got >= n)
			return got;
		if (now_ms() >= deadline)
			return got;
		if (cq->irqfd >= 0) {
			rc = guest_wait_fd(cq->irqfd, deadline - now_ms());
			if (rc < 0)
				return rc;
			if (rc == 0)
				return got;
			cq->irqs++;
		} else {
			usleep(100);
		}
	}
}

int guest_exec(struct guest_sq *sq, struct nvme_sqe *cmd,
	       struct guest_cpl *cpl)
{
	int cid, n, rc;

	cid = guest_sq_submit(sq, cmd);
	if (cid < 0)
		return cid;
	rc = guest_sq_ring(sq);
	if (rc)
		return rc;
	n = guest_cq_wait(sq->cq, cpl, 1, GUEST_TIMEOUT_MS);
	if (n < 0)
		return n;
	if (n == 0)
		return -ETIMEDOUT;
	if (cpl->cid != cid || cpl->sq_id != sq->qid)
		return -EPROTO;
	return 0;
}

void guest_sq_describe(struct guest_sq *sq, char *buf, size_t len)
{
	struct guest_cq *cq = sq->cq;
	struct guest *g = sq->g;
	int n;

	n = snprintf(buf, len,
		     "sq %u: entries %u tail %u published %u head %u kicks %lu/%lu",
		     sq->qid, sq->entries, sq->tail, sq->db_tail, sq->head,
		     sq->kicks, sq->rings);
	if (g->dbs && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - n, " shadow %u eventidx %u",
			      le32toh(g->dbs[guest_db_index(g, sq->qid, 0)]),
			      le32toh(g->eis[guest_db_index(g, sq->qid, 0)]));
	if (!cq || n < 0 || (size_t)n >= len)
		return;
	/* "posted" entries are there but were not (yet) reaped. */
	n += snprintf(buf + n, len - n,
		      "; cq %u: entries %u head %u phase %u published %u irqs %lu posted %d",
		      cq->qid, cq->entries, cq->head, cq->phase, cq->db_head,
		      cq->irqs, guest_cq_peek(cq));
	if (g->dbs && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - n, " shadow %u eventidx %u",
			 le32toh(g->dbs[guest_db_index(g, cq->qid, 1)]),
			 le32toh(g->eis[guest_db_index(g, cq->qid, 1)]));
}

const char *guest_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -ETIMEDOUT:
		return "no completion announced within the timeout (lost doorbell if none posted, lost interrupt if posted)";
	case -EPROTO:
		return "a completion for another command arrived";
	default:
		return strerror(-err);
	}
}

/* ---- commands ------------------------------------------------------------ */

void nvme_sqe_init(struct nvme_sqe *c, __u8 opcode, __u32 nsid)
{
	memset(c, 0, sizeof(*c));
	c->opcode = opcode;
	c->nsid = htole32(nsid);
}

void nvme_sqe_rw(struct nvme_sqe *c, __u8 opcode, __u32 nsid, __u64 slba,
		 __u32 nlb, __u32 cdw12_flags)
{
	nvme_sqe_init(c, opcode, nsid);
	c->cdw10 = htole32((__u32)slba);
	c->cdw11 = htole32((__u32)(slba >> 32));
	c->cdw12 = htole32(((nlb - 1) & 0xffff) | cdw12_flags);
}

void nvme_sqe_flush(struct nvme_sqe *c, __u32 nsid)
{
	nvme_sqe_init(c, NVME_CMD_FLUSH, nsid);
}

void nvme_sqe_write_zeroes(struct nvme_sqe *c, __u32 nsid, __u64 slba,
			   __u32 nlb, bool deac)
{
	nvme_sqe_rw(c, NVME_CMD_WRITE_ZEROES, nsid, slba, nlb,
		    deac ? NVME_WZ_DEAC : 0);
}

void nvme_sqe_dsm(struct nvme_sqe *c, __u32 nsid, unsigned int nr,
		  __u32 attributes)
{
	nvme_sqe_init(c, NVME_CMD_DSM, nsid);
	c->cdw10 = htole32((nr - 1) & 0xff);
	c->cdw11 = htole32(attributes);
}

void nvme_sqe_set_prp(struct nvme_sqe *c, __u64 prp1, __u64 prp2)
{
	c->prp1 = htole64(prp1);
	c->prp2 = htole64(prp2);
}

/* ---- buffers and PRPs ------------------------------------------------- */

int guest_buf_alloc(struct guest *g, struct guest_buf *b, __u32 off,
		    __u32 len, bool scatter)
{
	unsigned int n = DIV_ROUND_UP((__u64)off + len, GUEST_PAGE_SIZE);
	unsigned int i;
	__u64 base;

	if (off >= GUEST_PAGE_SIZE || !len || n > GUEST_BUF_MAX_PAGES)
		return -EINVAL;
	memset(b, 0, sizeof(*b));
	b->off = off;
	b->len = len;
	b->npages = n;
	/*
	 * Scattered: every other page, in descending order, so that a device
	 * that assumes contiguous or ascending pages gets the wrong data.
	 */
	base = guest_alloc(g, scatter ? 2 * n : n);
	if (!base)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		b->page[i] = scatter ?
			base + ((__u64)2 * (n - 1 - i) << GUEST_PAGE_SHIFT) :
			base + ((__u64)i << GUEST_PAGE_SHIFT);
	return 0;
}

static void buf_copy(struct guest *g, const struct guest_buf *b, char *host,
		     bool to_guest)
{
	__u32 done = 0, off = b->off;
	unsigned int i = 0;

	while (done < b->len) {
		__u32 chunk = MIN(GUEST_PAGE_SIZE - off, b->len - done);
		char *p = (char *)guest_ptr(g, b->page[i]) + off;

		if (to_guest)
			memcpy(p, host + done, chunk);
		else
			memcpy(host + done, p, chunk);
		done += chunk;
		off = 0;
		i++;
	}
}

void guest_buf_write(struct guest *g, const struct guest_buf *b,
		     const void *src)
{
	buf_copy(g, b, (char *)src, true);
}

void guest_buf_read(struct guest *g, const struct guest_buf *b, void *dst)
{
	buf_copy(g, b, dst, false);
}

void guest_buf_set_pages(struct guest *g, const struct guest_buf *b, int c)
{
	unsigned int i;

	for (i = 0; i < b->npages; i++)
		memset(guest_ptr(g, b->page[i]), c, GUEST_PAGE_SIZE);
}

/*
 * After guest_buf_set_pages(@c) and a read into the buffer: the first byte
 * outside the data (but in its pages) that is no longer @c, as an offset
 * from the start of the first page, or -1.
 */
long guest_buf_check_outside(struct guest *g, const struct guest_buf *b,
			     int c)
{
	__u64 start = b->off, end = (__u64)b->off + b->len;
	unsigned int i, j;

	for (i = 0; i < b->npages; i++) {
		unsigned char *p = guest_ptr(g, b->page[i]);

		for (j = 0; j < GUEST_PAGE_SIZE; j++) {
			__u64 pos = ((__u64)i << GUEST_PAGE_SHIFT) + j;

			if (pos >= start && pos < end)
				continue;
			if (p[j] != (unsigned char)c)
				return pos;
		}
	}
	return -1;
}

/*
 * PRP1 points at the data; PRP2 is the second page if the data ends there,
 * else a PRP list starting @list_off bytes into a fresh page. When more
 * than one entry remains at the last slot of a list page, that slot points
 * to the next list page instead.
 */
int guest_prp_build(struct guest *g, const struct guest_buf *b,
		    __u32 list_off, struct nvme_sqe *cmd)
{
	const unsigned int slots = GUEST_PAGE_SIZE / 8;
	unsigned int i, slot;
	__le64 *ent;
	__u64 list;

	cmd->prp1 = htole64(b->page[0] + b->off);
	cmd->prp2 = 0;
	if (b->npages == 1)
		return 0;
	if (b->npages == 2) {
		cmd->prp2 = htole64(b->page[1]);
		return 0;
	}
	if (list_off % 8 || list_off >= GUEST_PAGE_SIZE)
		return -EINVAL;
	list = guest_alloc(g, 1);
	if (!list)
		return -ENOMEM;
	cmd->prp2 = htole64(list + list_off);
	ent = guest_ptr(g, list);
	slot = list_off / 8;
	for (i = 1; i < b->npages; i++) {
		if (slot == slots - 1 && i < b->npages - 1) {
			__u64 next = guest_alloc(g, 1);

			if (!next)
				return -ENOMEM;
			ent[slot] = htole64(next);
			ent = guest_ptr(g, next);
			slot = 0;
		}
		ent[slot++] = htole64(b->page[i]);
	}
	return 0;
}

/* ---- backends ---------------------------------------------------------- */

/* 64 MiB ram disk; 1 GiB null_blk that keeps data and can discard it. */
#define BRD_MODPROBE	"modprobe brd rd_nr=1 rd_size=65536"
#define NULLB_MODPROBE	"modprobe null_blk nr_devices=1 memory_backed=1 discard=1 gb=1 bs=512 queue_mode=2"

static pid_t start_pid;
static bool brd_was_loaded, nullb_was_loaded;

static bool module_loaded(const char *name)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return access(path, F_OK) == 0;
}

static bool module_param_yes(const char *mod, const char *param)
{
	char path[128], v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/%s/parameters/%s", mod,
		 param);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fread(&v, 1, 1, f) != 1)
		v = 0;
	fclose(f);
	return v == 'Y' || v == '1';
}

/*
 * Leave the system as found: the programs that run after us (guest_boot.sh
 * loads null_blk with its own parameters) must not inherit our modules.
 * Only the harness's top process unloads; its test children _exit().
 */
__attribute__((constructor)) static void record_modules(void)
{
	start_pid = getpid();
	brd_was_loaded = module_loaded("brd");
	nullb_was_loaded = module_loaded("null_blk");
}

static void unload(const char *name)
{
	char cmd[64];
	int i;

	snprintf(cmd, sizeof(cmd), "rmmod %s 2>/dev/null", name);
	/* A just-closed namespace may drop its reference a little later. */
	for (i = 0; i < 50 && module_loaded(name); i++) {
		if (system(cmd) == 0)
			return;
		guest_msleep(100);
	}
}

__attribute__((destructor)) static void restore_modules(void)
{
	if (getpid() != start_pid)
		return;
	if (!brd_was_loaded && module_loaded("brd"))
		unload("brd");
	if (!nullb_was_loaded && module_loaded("null_blk"))
		unload("null_blk");
}

/*
 * null_blk as the NULLB backend wants it (a memory-backed nullb0). Tests
 * that add devices of their own through configfs load it the same way, so
 * that whichever runs first, /dev/nullb0 stays usable by the others.
 */
int guest_nullb_load(void)
{
	if (module_loaded("null_blk"))
		return 0;
	return system(NULLB_MODPROBE) == 0 ? 0 : -ENODEV;
}

int guest_wait_for_node(const char *path)
{
	int i;

	for (i = 0; i < 100; i++) {
		if (access(path, F_OK) == 0)
			return 0;
		guest_msleep(50);
	}
	return -ENODEV;
}

static int open_block(struct guest_backend *be, const char *path)
{
	int rc;

	rc = guest_wait_for_node(path);
	if (rc)
		return rc;
	snprintf(be->path, sizeof(be->path), "%s", path);
	be->fd = open(path, O_RDWR | O_CLOEXEC);
	if (be->fd < 0)
		return -errno;
	/* Bypass the page cache: the module's bios do. */
	be->io_fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (be->io_fd < 0)
		return -errno;
	if (ioctl(be->fd, BLKGETSIZE64, &be->size))
		return -errno;
	return 0;
}

static int open_file(struct guest_backend *be, __u64 size)
{
	struct statfs sfs;
	int fd;

	snprintf(be->path, sizeof(be->path), "/tmp/vhost-nvme-test.XXXXXX");
	fd = mkostemp(be->path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size)) {
		close(fd);
		return -errno;
	}
	close(fd);
	/* As a VMM would: O_DIRECT, if the filesystem takes it. */
	be->fd = open(be->path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (be->fd < 0 && errno == EINVAL)
		be->fd = open(be->path, O_RDWR | O_CLOEXEC);
	if (be->fd < 0)
		return -errno;
	be->io_fd = open(be->path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (be->io_fd < 0 && errno == EINVAL)
		be->io_fd = open(be->path, O_RDWR | O_CLOEXEC);
	if (be->io_fd < 0)
		return -errno;
	/* Nothing to clean up if the test dies: the fds keep it alive. */
	unlink(be->path);
	be->size = size;
	/* tmpfs punches holes for deallocation; others may not. */
	be->discard_zeroes = !fstatfs(be->fd, &sfs) &&
			     sfs.f_type == TMPFS_MAGIC;
	return 0;
}

/*
 * A raw image on ext4 (on a loop device over a file in /tmp), written in
 * full and opened O_DIRECT, as QEMU's cache=none opens one: ext4's direct
 * I/O completes asynchronously (->ki_complete), where tmpfs completes each
 * I/O before it returns. -ENODEV without mkfs.ext4, loop or ext4.
 */
static int open_ext4_file(struct guest_backend *be, __u64 size)
{
	char cmd[512];

	snprintf(be->mnt, sizeof(be->mnt), "/tmp/vhost-nvme-ext4.XXXXXX");
	if (!mkdtemp(be->mnt)) {
		be->mnt[0] = 0;
		return -errno;
	}
	snprintf(be->path, sizeof(be->path), "%s/image", be->mnt);
	snprintf(cmd, sizeof(cmd),
		 "modprobe -q loop 2>/dev/null; truncate -s %llu %s.fs && mkfs.ext4 -q -F %s.fs >/dev/null 2>&1 && mount -o loop %s.fs %s && dd if=/dev/zero of=%s bs=1M count=%llu oflag=direct status=none",
		 (unsigned long long)(size + (32ull << 20)), be->mnt, be->mnt,
		 be->mnt, be->mnt, be->path,
		 (unsigned long long)(size >> 20));
	if (system(cmd))
		return -ENODEV;
	be->fd = open(be->path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (be->fd < 0)
		return -errno;
	be->io_fd = open(be->path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (be->io_fd < 0)
		return -errno;
	be->size = size;
	/* DSM punches holes: they read back as zeroes. */
	be->discard_zeroes = true;
	return 0;
}

static void close_ext4_file(struct guest_backend *be)
{
	char cmd[384];
	int rc;

	if (!be->mnt[0])
		return;
	/*
	 * mount -o loop set autoclear: the loop device goes with the mount.
	 * The image only once it is unmounted; if busy, detach it lazily.
	 */
	snprintf(cmd, sizeof(cmd),
		 "if umount %s 2>/dev/null; then rm -f %s.fs; rmdir %s; else umount -l %s 2>/dev/null; fi",
		 be->mnt, be->mnt, be->mnt, be->mnt);
	rc = system(cmd);
	(void)rc;
	be->mnt[0] = 0;
}

int guest_backend_open(struct guest_backend *be, enum guest_backend_kind k,
		       __u64 file_size)
{
	int rc;

	memset(be, 0, sizeof(*be));
	be->kind = k;
	be->fd = -1;
	be->io_fd = -1;
	switch (k) {
	case GUEST_BACKEND_FILE:
		rc = open_file(be, file_size);
		break;
	case GUEST_BACKEND_EXT4_FILE:
		rc = open_ext4_file(be, file_size);
		break;
	case GUEST_BACKEND_BRD:
		if (access("/dev/ram0", F_OK) && system(BRD_MODPROBE) != 0)
			return -ENODEV;
		rc = open_block(be, "/dev/ram0");
		/* brd frees the pages of a discarded range: zeroes. */
		be->discard_zeroes = true;
		break;
	case GUEST_BACKEND_NULLB:
		if (guest_nullb_load())
			return -ENODEV;
		/* Someone else's null_blk without memory keeps no data. */
		if (!module_param_yes("null_blk", "memory_backed"))
			return -EBUSY;
		rc = open_block(be, "/dev/nullb0");
		be->discard_zeroes = module_param_yes("null_blk", "discard");
		break;
	default:
		rc = -EINVAL;
	}
	/* The data tests use the first 40 MiB of a block device. */
	if (!rc && (k == GUEST_BACKEND_BRD || k == GUEST_BACKEND_NULLB) &&
	    be->size < (40ull << 20))
		rc = -ENOSPC;
	if (rc)
		guest_backend_close(be);
	return rc;
}

int guest_backend_open_block(struct guest_backend *be, const char *path)
{
	int rc;

	memset(be, 0, sizeof(*be));
	be->kind = GUEST_BACKEND_NULLB;
	be->fd = -1;
	be->io_fd = -1;
	rc = open_block(be, path);
	if (rc)
		guest_backend_close(be);
	return rc;
}

void guest_backend_close(struct guest_backend *be)
{
	if (be->fd >= 0)
		close(be->fd);
	if (be->io_fd >= 0)
		close(be->io_fd);
	be->fd = be->io_fd = -1;
	close_ext4_file(be);
}

/* O_DIRECT wants an aligned buffer: go through one. */
static int backend_io(struct guest_backend *be, void *buf, size_t len,
		      __u64 off, bool write)
{
	size_t done = 0;
	void *bounce;
	ssize_t r;
	int rc = 0;

	if (posix_memalign(&bounce, GUEST_PAGE_SIZE, len))
		return -ENOMEM;
	if (write)
		memcpy(bounce, buf, len);
	while (done < len) {
		if (write)
			r = pwrite(be->io_fd, (char *)bounce + done, len - done,
				   off + done);
		else
			r = pread(be->io_fd, (char *)bounce + done, len - done,
				  off + done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO;
			break;
		}
		done += r;
	}
	if (!rc && !write)
		memcpy(buf, bounce, len);
	free(bounce);
	return rc;
}

int guest_backend_pread(struct guest_backend *be, void *buf, size_t len,
			__u64 off)
{
	return backend_io(be, buf, len, off, false);
}

int guest_backend_pwrite(struct guest_backend *be, const void *buf,
			 size_t len, __u64 off)
{
	return backend_io(be, (void *)buf, len, off, true);
}

/* ---- misc -------------------------------------------------------------- */

long guest_module_refcnt(void)
{
	FILE *f = fopen(GUEST_REFCNT_PATH, "r");
	long n = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &n) != 1)
		n = -1;
	fclose(f);
	return n;
}

/* Threads of this process; the device's workers are among them. */
int guest_thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* A byte stream that differs at every 8-byte step and for every seed. */
void guest_pattern(void *buf, size_t len, __u64 seed)
{
	__u64 x = seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, MIN(8, len - i));
	}
}

long guest_memdiff(const void *a, const void *b, size_t len)
{
	const unsigned char *x = a, *y = b;
	size_t i;

	if (!memcmp(a, b, len))
		return -1;
	for (i = 0; i < len; i++)
		if (x[i] != y[i])
			return i;
	return -1;
}
