// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme: workers and kicks.
 *
 * A worker is a vhost_task: a thread of the owner (the VMM), so it runs in
 * the owner's address space, cgroups and rlimits and can reach guest memory
 * with copy_{from,to}_user. It sleeps until something is pending:
 *   - a kick: an eventfd (the guest's doorbell ioeventfd, or a forwarded
 *     doorbell) says an SQ may have new commands or a CQ has room again;
 *   - a request ended: bio end_io / ki_complete pushed it on @done;
 *   - a flush: an ioctl waits for the worker to finish a round.
 * Each round runs with the worker's lock held: ioctls take that lock to
 * change what the worker sees.
 */
#include <linux/file.h>
#include <linux/moduleparam.h>
#include <linux/sched/clock.h>
#include <linux/sched/vhost_task.h>
#include <linux/slab.h>

#include "nvme.h"

static unsigned int poll_us;
module_param(poll_us, uint, 0644);
MODULE_PARM_DESC(poll_us,
		 "After a busy round, busy-poll shadow doorbells this many microseconds before sleeping (0: off)");

static int vnvme_kick_wakeup(wait_queue_entry_t *wait, unsigned int mode,
			     int sync, void *key)
{
	struct vnvme_kick *kick = container_of(wait, struct vnvme_kick, wait);

	if (key && !(key_to_poll(key) & EPOLLIN))
		return 0;
	kick->fn(kick);
	return 0;
}

static void vnvme_kick_queue(struct file *file, wait_queue_head_t *wqh,
			     poll_table *pt)
{
	struct vnvme_kick *kick = container_of(pt, struct vnvme_kick, pt);

	kick->wqh = wqh;
	add_wait_queue(wqh, &kick->wait);
}

/*
 * Call @fn whenever the eventfd @fd is signalled. The eventfd's count is
 * never read: a kick only says "look again", the value is in guest memory.
 */
int vnvme_kick_start(struct vnvme_kick *kick, int fd,
		     void (*fn)(struct vnvme_kick *kick))
{
	struct eventfd_ctx *ctx;
	struct file *file;
	__poll_t mask;

	file = fget(fd);
	if (!file)
		return -EBADF;
	ctx = eventfd_ctx_fileget(file);
	if (IS_ERR(ctx)) {
		fput(file);
		return -EINVAL;
	}
	eventfd_ctx_put(ctx);

	kick->file = file;
	kick->fn = fn;
	kick->wqh = NULL;
	init_waitqueue_func_entry(&kick->wait, vnvme_kick_wakeup);
	init_poll_funcptr(&kick->pt, vnvme_kick_queue);
	mask = vfs_poll(file, &kick->pt);
	if (!kick->wqh) {
		fput(file);
		kick->file = NULL;
		return -EINVAL;
	}
	if (mask & EPOLLIN)
		fn(kick);
	return 0;
}

void vnvme_kick_stop(struct vnvme_kick *kick)
{
	if (!kick->file)
		return;
	remove_wait_queue(kick->wqh, &kick->wait);
	fput(kick->file);
	kick->file = NULL;
}

void vnvme_worker_kick(struct vnvme_worker *w)
{
	atomic_set(&w->pending, 1);
	vhost_task_wake(w->task);
}

/* A CQ of this worker has room again: retry the SQs that waited for it. */
void vnvme_worker_cq_moved(struct vnvme_worker *w)
{
	atomic_set(&w->cq_moved, 1);
	vnvme_worker_kick(w);
}

/* Completion context: hand an ended request to its worker. */
void vnvme_req_ended(struct vnvme_req *req)
{
	struct vnvme_sq *sq = req->sq;
	struct vnvme_worker *w = sq->worker;

	/*
	 * Once outstanding drops to 0 a deleting thread may go on and free
	 * the SQ and the device: it waits for an RCU grace period first, so
	 * the wake_up below still finds them.
	 */
	rcu_read_lock();
	llist_add(&req->done, &w->done);
	vhost_task_wake(w->task);
	if (atomic_dec_and_test(&sq->outstanding))
		wake_up_all(&sq->dev->idle_wq);
	rcu_read_unlock();
}

static void vnvme_worker_complete(struct vnvme_worker *w)
{
	struct llist_node *list = llist_del_all(&w->done);
	struct vnvme_req *req, *tmp;

	list = llist_reverse_order(list);
	llist_for_each_entry_safe(req, tmp, list, done)
		vnvme_req_complete(req);
}

/* Mark every SQ that can fetch now (see vnvme_sq_ready() for EventIdx). */
static bool vnvme_worker_find_work(struct vnvme_worker *w)
{
	struct vnvme_sq *sq;
	bool found = false;

	list_for_each_entry(sq, &w->sqs, node) {
		if (vnvme_sq_ready(sq)) {
			atomic_set(&sq->kicked, 1);
			found = true;
		}
	}
	return found;
}

/*
 * After a round with shadow doorbells and poll_us set: spin up to poll_us
 * for new commands (read straight from the shadow doorbells, EventIdx left
 * unarmed so the guest makes no doorbell writes), completions, kicks or
 * flushes. Before giving up, arm EventIdx on every SQ and look once more:
 * the protocol at the top of nvme_queue.c. Work found sets @pending, so
 * the worker runs another round at once.
 */
static void vnvme_worker_poll(struct vnvme_worker *w)
{
	u64 end = local_clock() + (u64)READ_ONCE(poll_us) * NSEC_PER_USEC;
	bool found = false;

	if (!w->polling)
		return;
	do {
		if (atomic_read(&w->pending) || !llist_empty(&w->done) ||
		    !llist_empty(&w->flushes) || vnvme_worker_find_work(w)) {
			found = true;
			break;
		}
		cpu_relax();
	} while (!need_resched() && local_clock() < end);
	w->polling = false;
	if (!found)
		found = vnvme_worker_find_work(w);
	if (found)
		atomic_set(&w->pending, 1);
}

static bool vnvme_worker_fn(void *data)
{
	struct vnvme_worker *w = data;
	struct llist_node *flushes;
	struct vnvme_flush *f, *tmp;
	struct vnvme_sq *sq;
	bool cq_moved;

	if (!atomic_read(&w->pending) && llist_empty(&w->done) &&
	    llist_empty(&w->flushes))
		return false;
	__set_current_state(TASK_RUNNING);
	flushes = llist_del_all(&w->flushes);

	mutex_lock(&w->lock);
	atomic_set(&w->pending, 0);
	w->polling = READ_ONCE(poll_us) && w->eis_gpa;
	vnvme_worker_complete(w);
	cq_moved = atomic_xchg(&w->cq_moved, 0);
	list_for_each_entry(sq, &w->sqs, node) {
		if (atomic_xchg(&sq->kicked, 0) ||
		    (cq_moved && sq->blocked == VNVME_BLOCK_CQ))
			vnvme_sq_process(sq);
	}
	/* Completions that ended while we fetched, and one irq per CQ. */
	vnvme_worker_complete(w);
	list_for_each_entry(sq, &w->sqs, node)
		vnvme_cq_signal(sq->cq);
	vnvme_worker_poll(w);
	mutex_unlock(&w->lock);

	llist_for_each_entry_safe(f, tmp, flushes, node)
		complete(&f->done);
	cond_resched();
	return true;
}

/* Complete the requests that ended, without posting: the worker is dead. */
static void vnvme_worker_drain(struct vnvme_worker *w)
{
	struct llist_node *list = llist_del_all(&w->done);
	struct vnvme_req *req, *tmp;

	llist_for_each_entry_safe(req, tmp, list, done)
		vnvme_req_complete(req);
}

static void vnvme_worker_killed(void *data)
{
	struct vnvme_worker *w = data;
	struct llist_node *flushes;
	struct vnvme_flush *f, *tmp;

	/*
	 * The owner is exiting: nobody will post completions any more.
	 * Flushes are queued under the lock, so none is left waiting.
	 */
	mutex_lock(&w->lock);
	WRITE_ONCE(w->dead, true);
	flushes = llist_del_all(&w->flushes);
	llist_for_each_entry_safe(f, tmp, flushes, node)
		complete(&f->done);
	mutex_unlock(&w->lock);
}

/*
 * Wait until the worker finished a full round that began after this call:
 * then it saw every state change made before. A dead worker has no round to
 * wait for; its ended requests are drained here, without posting.
 */
void vnvme_worker_flush(struct vnvme_worker *w)
{
	struct vnvme_flush f;

	init_completion(&f.done);
	mutex_lock(&w->lock);
	if (w->dead) {
		vnvme_worker_drain(w);
		mutex_unlock(&w->lock);
		return;
	}
	llist_add(&f.node, &w->flushes);
	mutex_unlock(&w->lock);
	vhost_task_wake(w->task);
	wait_for_completion(&f.done);
}

struct vnvme_worker *vnvme_worker_get(struct vnvme_dev *dev,
				      unsigned int index)
{
	struct vnvme_worker *w = dev->workers[index];
	char name[TASK_COMM_LEN];

	if (w)
		return w;
	w = kzalloc(sizeof(*w), GFP_KERNEL_ACCOUNT);
	if (!w)
		return ERR_PTR(-ENOMEM);
	w->scratch = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!w->scratch) {
		kfree(w);
		return ERR_PTR(-ENOMEM);
	}
	w->dev = dev;
	w->index = index;
	mutex_init(&w->lock);
	INIT_LIST_HEAD(&w->sqs);
	init_llist_head(&w->done);
	init_llist_head(&w->flushes);
	w->dbs_gpa = dev->dbs_gpa;
	w->eis_gpa = dev->eis_gpa;
	snprintf(name, sizeof(name), "vhost-nvme-%d", current->pid);
	w->task = vhost_task_create(vnvme_worker_fn, vnvme_worker_killed, w,
				    name);
	if (IS_ERR(w->task)) {
		long err = PTR_ERR(w->task);

		free_page((unsigned long)w->scratch);
		kfree(w);
		return ERR_PTR(err);
	}
	vhost_task_start(w->task);
	dev->workers[index] = w;
	return w;
}

void vnvme_workers_destroy(struct vnvme_dev *dev)
{
	int i;

	for (i = 0; i < VHOST_NVME_MAX_WORKERS; i++) {
		struct vnvme_worker *w = dev->workers[i];

		if (!w)
			continue;
		WARN_ON(!list_empty(&w->sqs));
		vhost_task_stop(w->task);
		w->dead = true;
		vnvme_worker_drain(w);
		mutex_destroy(&w->lock);
		free_page((unsigned long)w->scratch);
		kfree(w);
		dev->workers[i] = NULL;
	}
}
