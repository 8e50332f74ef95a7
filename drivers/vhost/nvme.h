/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vhost-nvme internal interfaces: the device, its workers, queues and
 * requests, and the functions the source files offer each other.
 *
 * Locking, from outside in:
 *   vnvme_dev.mutex     configuration ioctls (queues, namespaces, dbbuf)
 *   vnvme_worker.lock   held by the worker for a whole round; ioctls take it
 *                       to change what the worker sees (its SQ list, queue
 *                       states, the doorbell buffer)
 * Completion context (bio end_io, ki_complete) takes no lock: it pushes the
 * request on the worker's lock-free done list and wakes the worker, which
 * writes the CQE into guest memory from the owner's address space.
 */
#ifndef _DRIVERS_VHOST_NVME_H
#define _DRIVERS_VHOST_NVME_H

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/llist.h>
#include <linux/mutex.h>
#include <linux/nvme.h>
#include <linux/poll.h>
#include <linux/uio.h>
#include <linux/vhost_nvme.h>
#include <linux/wait.h>

#define VNVME_PAGE_SHIFT	12
#define VNVME_PAGE_SIZE		BIT(VNVME_PAGE_SHIFT)
#define VNVME_SQE_SIZE		64
#define VNVME_CQE_SIZE		16
/* Commands of one SQ in flight at once: the size of its request pool. */
#define VNVME_MAX_INFLIGHT	128
/* Commands fetched from one SQ before the worker looks at the others. */
#define VNVME_SQ_BUDGET		32
#define VNVME_MAX_ERRORS	64
#define VNVME_DEFAULT_MDTS	7
#define VNVME_READ_ONLY		(NVME_SC_READ_ONLY | NVME_STATUS_DNR)
/* Returned instead of a status by a command that went to the backend. */
#define VNVME_IN_FLIGHT		0xffff

struct vnvme_dev;
struct vnvme_worker;
struct vnvme_sq;

/* An eventfd we are woken by (SQ kick, CQ head doorbell). */
struct vnvme_kick {
	struct file *file;
	wait_queue_head_t *wqh;
	wait_queue_entry_t wait;
	poll_table pt;
	void (*fn)(struct vnvme_kick *kick);
};

/* A namespace and its backend. Changed only while the device is stopped. */
struct vnvme_ns {
	struct file *file;
	struct block_device *bdev;	/* NULL: a regular file */
	u64 nsze;			/* in logical blocks */
	u32 lba_shift;
	bool read_only;
	bool direct;			/* file: IOCB_DIRECT possible */
	/* Alignment masks an iovec must meet to skip the bounce buffer. */
	unsigned int addr_mask;
	unsigned int len_mask;
};

enum vnvme_q_state {
	VNVME_Q_ACTIVE,
	VNVME_Q_STOPPED,	/* being deleted: fetch nothing more */
	VNVME_Q_ERROR,		/* invalid doorbell or queue memory */
};

struct vnvme_cq {
	struct vnvme_dev *dev;
	struct vnvme_worker *worker;	/* NULL until its first SQ */
	u16 qid;
	u16 vector;
	u32 entries;
	u64 gpa;
	u32 tail;		/* next entry we write */
	u32 head;		/* last head the guest told us */
	u32 reserved;		/* entries promised to commands in flight */
	u32 db_value;		/* forwarded head doorbell */
	bool phase;
	bool ien;
	/* CQEs posted since the last interrupt, for coalescing */
	u32 unsignalled;
	bool unsignalled_error;		/* one of them has an error status */
	u64 first_unsignalled;		/* ktime_get_ns() of the first */
	enum vnvme_q_state state;
	unsigned int nr_sqs;
	struct eventfd_ctx *irq;
	struct vnvme_kick kick;
	u64 interrupts;
	u64 sdb_reads;
};

enum vnvme_block {
	VNVME_BLOCK_NONE,
	VNVME_BLOCK_POOL,	/* no free request: wait for a completion */
	VNVME_BLOCK_CQ,		/* CQ full: wait for the guest to move its head */
	VNVME_BLOCK_BOUNCE,	/* bounce budget spent: wait for a completion */
};

struct vnvme_req;

struct vnvme_sq {
	struct vnvme_dev *dev;
	struct vnvme_worker *worker;
	struct vnvme_cq *cq;
	struct list_head node;		/* in worker->sqs */
	u16 qid;
	u32 entries;
	u64 gpa;
	u32 head;			/* next entry we fetch */
	u32 tail;			/* last tail read */
	u32 head_reported;		/* SQ head in the last CQE posted */
	u32 db_value;			/* forwarded tail doorbell */
	enum vnvme_q_state state;
	enum vnvme_block blocked;
	atomic_t kicked;
	atomic_t outstanding;		/* submitted to the backend, not ended */
	unsigned int inflight;		/* fetched, CQE not yet written */
	struct vnvme_kick kick;
	struct vnvme_req *reqs;
	struct vnvme_req *free;		/* free list of reqs */
	unsigned int nr_reqs;
	struct iovec *iov_mem;		/* max_iov per request */
	struct bio_vec *bvec_mem;
	struct page **page_mem;
	atomic_long_t kick_count;
	/* statistics (worker-owned) */
	u64 commands;
	u64 errors;
	u64 flushes;
	u64 dsms;
	u64 sdb_reads;
	u64 cq_full;
	u64 polled;
	u64 bounce_waits;
};

/* One command from fetch to CQE. Preallocated per SQ. */
struct vnvme_req {
	struct vnvme_sq *sq;
	struct vnvme_req *next_free;
	struct llist_node done;
	struct vnvme_ns *ns;
	u16 cid;
	u16 status;		/* NVMe status field, without the phase bit */
	u8 opcode;
	bool write;
	bool fua;
	bool deallocate;	/* write zeroes: DEAC */
	bool bio_ready;		/* @bio was initialised: uninit it */
	u32 len;
	u64 pos;		/* byte offset in the backend */
	unsigned int nr_iov;
	unsigned int max_iov;
	struct iovec *iov;	/* the guest buffer, as owner addresses */
	struct bio_vec *bvec;	/* inline vecs of @bio, or the bounce pages */
	unsigned int nr_bounce;	/* bounce pages in @bvec, 0: none */
	/* A bounced read: the guest's pages of @iov, pinned at submission. */
	struct page **pages;
	unsigned int nr_pinned;
	struct bio bio;
	struct kiocb iocb;
	struct work_struct work;	/* backend work that blocks */
};

struct vnvme_flush {
	struct llist_node node;
	struct completion done;
};

struct vnvme_worker {
	struct vnvme_dev *dev;
	struct vhost_task *task;
	unsigned int index;
	struct mutex lock;		/* see top of file */
	struct list_head sqs;
	struct llist_head done;		/* ended requests */
	struct llist_head flushes;
	atomic_t pending;		/* something was kicked */
	atomic_t cq_moved;		/* a CQ head doorbell was rung */
	bool polling;			/* busy-polling: EventIdx left unarmed */
	bool eventidx_behind;		/* a poll found work: SQs not re-armed */
	u64 poll_ns;			/* adaptive window, 0: not yet set */
	u64 idle_since;			/* went to sleep after an empty poll */
	/* Wakes the worker when a held-back interrupt is due. */
	struct hrtimer coal_timer;
	spinlock_t timer_lock;		/* @timer_off vs the timer */
	bool timer_off;			/* being destroyed: do not wake */
	struct cpumask *cpus;		/* affinity to apply, NULL: any CPU */
	bool cpus_changed;
	/* Bounce pages held by this worker's requests (nvme_bounce.c). */
	unsigned int bounce_used;
	bool bounce_waiters;		/* an SQ waits for bounce pages */
	bool bounce_freed;		/* ...and some were freed */
	bool dead;			/* the owner was killed */
	u64 kcov_handle;		/* the owner's, for remote coverage */
	/* This worker's copy of the doorbell buffer (0: off), see dev. */
	u64 dbs_gpa;
	u64 eis_gpa;
};

struct vnvme_mem;

/* What a work item saved while it ran in the owner's context. */
struct vnvme_owner_save {
	const struct cred *cred;
	struct mem_cgroup *memcg;
};

struct vnvme_dev {
	struct mutex mutex;		/* configuration ioctls */
	struct mm_struct *mm;		/* owner's, from VHOST_SET_OWNER */
	/* The owner's context for blocking work (nvme_owner.c). */
	struct workqueue_struct *wq;
	const struct cred *cred;
	struct mem_cgroup *memcg;
	struct cgroup_subsys_state *blkcg_css;
	u64 features;
	struct vnvme_mem __rcu *mem;
	/* config */
	u8 mdts;
	u8 dstrd;
	u16 max_queues;
	bool running;
	/* tuning (nvme_tune.c), read by the workers without a lock */
	u32 poll_us;			/* VHOST_NVME_POLL_DEFAULT: module's */
	u8 coal_thr;			/* Feature 08h */
	u8 coal_time;
	DECLARE_BITMAP(no_coalesce, VHOST_NVME_MAX_VECTORS);	/* 09h CD */
	struct cpumask *affinity[VHOST_NVME_MAX_WORKERS];
	/*
	 * Doorbell buffer, both 0 when off. Each worker reads its own copy,
	 * updated under its lock, so no worker ever sees half a change.
	 */
	u64 dbs_gpa;
	u64 eis_gpa;
	struct vnvme_ns *ns[VHOST_NVME_MAX_NAMESPACES];
	struct vnvme_cq *cqs[VHOST_NVME_MAX_QUEUES + 1];
	struct vnvme_sq *sqs[VHOST_NVME_MAX_QUEUES + 1];
	struct vnvme_worker *workers[VHOST_NVME_MAX_WORKERS];
	wait_queue_head_t idle_wq;	/* an SQ's outstanding reached 0 */
	/* queue errors for the VMM */
	spinlock_t err_lock;
	struct vhost_nvme_error errors[VNVME_MAX_ERRORS];
	unsigned int err_head, err_count;
	u32 err_dropped;		/* not kept: the ring was full */
	struct eventfd_ctx *err_ctx;
};

/* nvme_owner.c: the owner's context for work on the workqueue */
int vnvme_owner_get(struct vnvme_dev *dev);
void vnvme_owner_put(struct vnvme_dev *dev);
void vnvme_owner_enter(struct vnvme_dev *dev, struct vnvme_owner_save *save);
void vnvme_owner_leave(struct vnvme_owner_save *save);

/* nvme_mem.c: guest memory */
long vnvme_set_mem_table(struct vnvme_dev *dev, void __user *argp);
void vnvme_mem_free(struct vnvme_dev *dev);
bool vnvme_gpa_valid(struct vnvme_dev *dev, u64 gpa, u64 len);
int vnvme_gpa_to_hva(struct vnvme_dev *dev, u64 gpa, u64 len,
		     void __user **hva, u64 *contig);
int vnvme_read_guest(struct vnvme_dev *dev, u64 gpa, void *buf, size_t len);

/* nvme_ns.c: namespaces and their backends */
long vnvme_set_namespace(struct vnvme_dev *dev, void __user *argp);
long vnvme_clear_namespace(struct vnvme_dev *dev, void __user *argp);
void vnvme_ns_free_all(struct vnvme_dev *dev);

/* nvme_tune.c: polling, worker affinity, interrupt coalescing */
long vnvme_set_poll(struct vnvme_dev *dev, void __user *argp);
long vnvme_set_worker_affinity(struct vnvme_dev *dev, void __user *argp);
long vnvme_set_coalescing(struct vnvme_dev *dev, void __user *argp);
long vnvme_set_vector_config(struct vnvme_dev *dev, void __user *argp);
void vnvme_coalescing_reset(struct vnvme_dev *dev);
void vnvme_tune_free(struct vnvme_dev *dev);
u64 vnvme_poll_limit_ns(struct vnvme_dev *dev);

/* nvme_worker.c: workers and kicks */
struct vnvme_worker *vnvme_worker_get(struct vnvme_dev *dev,
				      unsigned int index);
void vnvme_worker_flush(struct vnvme_worker *w);
void vnvme_worker_kick(struct vnvme_worker *w);
void vnvme_worker_cq_moved(struct vnvme_worker *w);
void vnvme_workers_kick_all(struct vnvme_dev *dev);
void vnvme_workers_destroy(struct vnvme_dev *dev);
int vnvme_kick_start(struct vnvme_kick *kick, int fd,
		     void (*fn)(struct vnvme_kick *kick));
void vnvme_kick_stop(struct vnvme_kick *kick);
void vnvme_req_ended(struct vnvme_req *req);

/* nvme_queue.c: queues, doorbells, completions */
long vnvme_create_cq(struct vnvme_dev *dev, void __user *argp);
long vnvme_delete_cq(struct vnvme_dev *dev, void __user *argp);
long vnvme_create_sq(struct vnvme_dev *dev, void __user *argp);
long vnvme_delete_sq(struct vnvme_dev *dev, void __user *argp);
long vnvme_set_dbbuf(struct vnvme_dev *dev, void __user *argp);
void vnvme_clear_dbbuf(struct vnvme_dev *dev);
long vnvme_doorbell(struct vnvme_dev *dev, void __user *argp);
long vnvme_queue_stats(struct vnvme_dev *dev, void __user *argp);
void vnvme_stop(struct vnvme_dev *dev);
void vnvme_delete_all_queues(struct vnvme_dev *dev);
void vnvme_sq_process(struct vnvme_sq *sq);
bool vnvme_sq_ready(struct vnvme_sq *sq);
void vnvme_req_complete(struct vnvme_req *req);
void vnvme_cq_signal(struct vnvme_cq *cq, u64 *due);
void vnvme_report_error(struct vnvme_dev *dev, u16 qid, bool cq, u8 type,
			u32 value, u64 gpa);

/* nvme_cmd.c: command decoding and PRPs */
void vnvme_cmd_execute(struct vnvme_req *req, const struct nvme_command *cmd);
unsigned int vnvme_cmd_bounce_pages(struct vnvme_dev *dev,
				    const struct nvme_command *cmd);

/* nvme_bounce.c: bounce buffers and their budget */
bool vnvme_bounce_fits(struct vnvme_worker *w, unsigned int pages);
u16 vnvme_bounce_alloc(struct vnvme_req *req);
void vnvme_bounce_release(struct vnvme_req *req);

/* nvme_io.c: backend I/O */
u16 vnvme_io_rw(struct vnvme_req *req);
u16 vnvme_io_flush(struct vnvme_req *req);
u16 vnvme_io_write_zeroes(struct vnvme_req *req, bool deallocate);
u16 vnvme_io_discard(struct vnvme_req *req, unsigned int nr);
void vnvme_io_finish(struct vnvme_req *req);
u16 vnvme_blk_status_to_nvme(blk_status_t sts, bool write);

static inline u32 vnvme_db_index(struct vnvme_dev *dev, u16 qid, bool cq)
{
	return (2 * qid + cq) << dev->dstrd;
}

#endif /* _DRIVERS_VHOST_NVME_H */
