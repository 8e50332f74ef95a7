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
#include <linux/kcov.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/sched/stat.h>
#include <linux/sched/vhost_task.h>
#include <linux/slab.h>

#include "nvme.h"

/* Bounds of the adaptive polling window (KVM's halt polling has the same). */
#define VNVME_POLL_MIN_NS	(2 * NSEC_PER_USEC)

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

void vnvme_workers_kick_all(struct vnvme_dev *dev)
{
	int i;

	for (i = 0; i < VHOST_NVME_MAX_WORKERS; i++)
		if (dev->workers[i])
			vnvme_worker_kick(dev->workers[i]);
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

/*
 * Mark every SQ that can fetch now (see vnvme_sq_ready() for EventIdx);
 * @polled: found by polling, for the statistics.
 */
static bool vnvme_worker_find_work(struct vnvme_worker *w, bool polled)
{
	struct vnvme_sq *sq;
	bool found = false;

	list_for_each_entry(sq, &w->sqs, node) {
		if (vnvme_sq_ready(sq)) {
			atomic_set(&sq->kicked, 1);
			sq->polled += polled;
			found = true;
		}
	}
	return found;
}

static bool vnvme_worker_has_news(struct vnvme_worker *w)
{
	return atomic_read(&w->pending) || !llist_empty(&w->done) ||
	       !llist_empty(&w->flushes);
}

/*
 * Start of a round: adapt the polling window to how long the worker slept
 * after its last poll came out empty. Slept longer than the limit: even a
 * full window would have been wasted, halve it. Woken within the limit: a
 * longer window would have saved the sleep and the guest's doorbell write,
 * double it. The same rule as KVM's halt polling.
 */
static void vnvme_worker_poll_adapt(struct vnvme_worker *w, u64 limit)
{
	u64 slept;

	if (!w->idle_since)
		return;
	slept = local_clock() - w->idle_since;
	w->idle_since = 0;
	if (slept > limit)
		w->poll_ns /= 2;
	else
		w->poll_ns *= 2;
	w->poll_ns = clamp(w->poll_ns, min(VNVME_POLL_MIN_NS, limit), limit);
}

/*
 * After a round with shadow doorbells and a polling window: spin up to the
 * window for new commands (read straight from the shadow doorbells,
 * EventIdx left unarmed so the guest makes no doorbell writes),
 * completions, kicks or flushes. Before giving up, arm EventIdx on every
 * SQ and look once more: the protocol at the top of nvme_queue.c. Work
 * found sets @pending, so the worker runs another round at once.
 *
 * The spin yields as soon as anything else wants this CPU, not only when
 * the scheduler says so (need_resched() comes a slice later): the task
 * waiting may be the guest's vCPU, whose submissions the spin waits for.
 * KVM's halt polling stops on the same single_task_running() test.
 */
static void vnvme_worker_poll(struct vnvme_worker *w)
{
	u64 start = local_clock();
	bool found = false;

	if (!w->polling)
		return;
	do {
		if (vnvme_worker_has_news(w) ||
		    vnvme_worker_find_work(w, true)) {
			found = true;
			break;
		}
		cpu_relax();
	} while (!need_resched() && single_task_running() &&
		 local_clock() - start < w->poll_ns);
	w->polling = false;
	if (!found)
		found = vnvme_worker_find_work(w, false);
	if (found) {
		/* Re-armed in the next round, or by its own poll. */
		w->eventidx_behind = true;
		atomic_set(&w->pending, 1);
	} else {
		w->eventidx_behind = false;
		w->idle_since = local_clock();
	}
}

/*
 * A round without polling after one that polled: the SQs the poll did not
 * find work in still have EventIdx where polling left it, behind the
 * guest's tail, and a guest that follows EventIdx would ring no doorbell
 * for them. Look at every SQ, which arms EventIdx where there is none.
 */
static void vnvme_worker_rearm(struct vnvme_worker *w)
{
	struct vnvme_sq *sq;

	list_for_each_entry(sq, &w->sqs, node)
		atomic_set(&sq->kicked, 1);
	w->eventidx_behind = false;
}

/* Apply a new affinity (nvme_tune.c) to ourselves, the worker thread. */
static void vnvme_worker_set_cpus(struct vnvme_worker *w)
{
	const struct cpumask *mask = w->cpus ? w->cpus : cpu_possible_mask;

	w->cpus_changed = false;
	if (set_cpus_allowed_ptr(current, mask))
		pr_warn_ratelimited("vhost-nvme: worker %u: cannot set its CPU affinity\n",
				    w->index);
}

/*
 * End of a round: signal every CQ whose interrupt is due and arm the
 * timer for the earliest one that interrupt coalescing holds back.
 */
static void vnvme_worker_signal(struct vnvme_worker *w)
{
	struct vnvme_sq *sq;
	u64 due = U64_MAX;

	list_for_each_entry(sq, &w->sqs, node)
		vnvme_cq_signal(sq->cq, &due);
	if (due != U64_MAX)
		hrtimer_start(&w->coal_timer, ns_to_ktime(due),
			      HRTIMER_MODE_ABS);
}

static enum hrtimer_restart vnvme_worker_timer(struct hrtimer *t)
{
	struct vnvme_worker *w = container_of(t, struct vnvme_worker,
					      coal_timer);
	unsigned long flags;

	spin_lock_irqsave(&w->timer_lock, flags);
	if (!w->timer_off)
		vnvme_worker_kick(w);
	spin_unlock_irqrestore(&w->timer_lock, flags);
	return HRTIMER_NORESTART;
}

static bool vnvme_worker_fn(void *data)
{
	struct vnvme_worker *w = data;
	struct llist_node *flushes;
	struct vnvme_flush *f, *tmp;
	struct vnvme_sq *sq;
	bool cq_moved, bounce_freed;
	u64 limit;

	if (!vnvme_worker_has_news(w))
		return false;
	__set_current_state(TASK_RUNNING);
	flushes = llist_del_all(&w->flushes);

	/* A round is coverage of the owner's KCOV (as in drivers/vhost). */
	kcov_remote_start_common(w->kcov_handle);
	mutex_lock(&w->lock);
	atomic_set(&w->pending, 0);
	if (w->cpus_changed)
		vnvme_worker_set_cpus(w);
	limit = w->eis_gpa ? vnvme_poll_limit_ns(w->dev) : 0;
	w->polling = limit;
	if (limit && !w->poll_ns)
		w->poll_ns = limit;
	if (limit)
		vnvme_worker_poll_adapt(w, limit);
	else
		w->idle_since = 0;
	if (!limit && w->eventidx_behind)
		vnvme_worker_rearm(w);
	vnvme_worker_complete(w);
	cq_moved = atomic_xchg(&w->cq_moved, 0);
	bounce_freed = w->bounce_freed;
	if (bounce_freed) {
		w->bounce_freed = false;
		w->bounce_waiters = false;
	}
	list_for_each_entry(sq, &w->sqs, node) {
		if (atomic_xchg(&sq->kicked, 0) ||
		    (cq_moved && sq->blocked == VNVME_BLOCK_CQ) ||
		    (bounce_freed && sq->blocked == VNVME_BLOCK_BOUNCE))
			vnvme_sq_process(sq);
	}
	/* Completions that ended while we fetched, and one irq per CQ. */
	vnvme_worker_complete(w);
	vnvme_worker_signal(w);
	vnvme_worker_poll(w);
	mutex_unlock(&w->lock);
	kcov_remote_stop();

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
	w->dev = dev;
	w->index = index;
	w->kcov_handle = kcov_common_handle();
	mutex_init(&w->lock);
	spin_lock_init(&w->timer_lock);
	hrtimer_init(&w->coal_timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS);
	w->coal_timer.function = vnvme_worker_timer;
	/* A worker applies its affinity itself, on its first round. */
	w->cpus = dev->affinity[index];
	w->cpus_changed = w->cpus;
	atomic_set(&w->pending, !!w->cpus);
	INIT_LIST_HEAD(&w->sqs);
	init_llist_head(&w->done);
	init_llist_head(&w->flushes);
	w->dbs_gpa = dev->dbs_gpa;
	w->eis_gpa = dev->eis_gpa;
	snprintf(name, sizeof(name), "vhost-nvme-%d", current->pid);
	w->task = vhost_task_create(vnvme_worker_fn, vnvme_worker_killed, w,
				    name);
	/* NULL before 6.14 (and 6.12.20), an ERR_PTR since. */
	if (IS_ERR_OR_NULL(w->task)) {
		long err = w->task ? PTR_ERR(w->task) : -ENOMEM;

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
		/*
		 * The timer must not wake a task that vhost_task_stop() freed;
		 * the last round may still arm it, hence the second cancel.
		 */
		spin_lock_irq(&w->timer_lock);
		w->timer_off = true;
		spin_unlock_irq(&w->timer_lock);
		hrtimer_cancel(&w->coal_timer);
		vhost_task_stop(w->task);
		hrtimer_cancel(&w->coal_timer);
		w->dead = true;
		vnvme_worker_drain(w);
		mutex_destroy(&w->lock);
		kfree(w);
		dev->workers[i] = NULL;
	}
}
