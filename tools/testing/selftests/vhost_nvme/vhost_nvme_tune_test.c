// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme performance settings: busy-polling (VHOST_NVME_F_POLL,
 * VHOST_NVME_SET_POLL, module parameter poll_us), worker CPU affinity and
 * interrupt coalescing (Set Features 08h/09h as VHOST_NVME_SET_COALESCING
 * and _SET_VECTOR_CONFIG): their arguments, and that each does what it
 * says, seen from the guest (doorbell writes saved, interrupts held back
 * and let through) and from /proc (where the worker may run).
 *
 * Timing is only ever checked as a lower bound the kernel promises (a held
 * interrupt waits for the aggregation time) or as "at least once in N
 * tries" against it: a slow VM can make anything slower, never faster.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "guest.h"
#include "kselftest_harness.h"

#define MEM_SIZE	(16ull << 20)
#define FILE_SIZE	(4ull << 20)
#define POLL_PARAM	"/sys/module/vhost_nvme/parameters/poll_us"
/* Aggregation time used below: 25.5 ms, the longest Feature 08h allows. */
#define COAL_TIME	255
#define COAL_TIME_MS	25.5
#define TRIES		10

static int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

#define EXPECT_ERR(err, fd, req, arg, what) do { \
	int __rc = xioctl(fd, req, arg); \
	\
	EXPECT_EQ(-(err), __rc) { \
		TH_LOG("%s: %s, want %s", what, guest_strerror(__rc), \
		       strerror(err)); \
	} \
} while (0)

#define EXPECT_IOCTL_OK(fd, req, arg, what) do { \
	int __rc = xioctl(fd, req, arg); \
	\
	EXPECT_EQ(0, __rc) { \
		TH_LOG("%s: %s", what, guest_strerror(__rc)); \
	} \
} while (0)

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

FIXTURE(tune) {
	struct guest g;
	struct guest_backend be;
	struct guest_buf page;
	struct guest_sq *sq;
};

FIXTURE_SETUP(tune)
{
	ASSERT_EQ(0, guest_backend_open(&self->be, GUEST_BACKEND_FILE,
					FILE_SIZE));
	ASSERT_EQ(0, guest_setup(&self->g, MEM_SIZE));
	ASSERT_EQ(0, guest_set_config(&self->g, 5, 0, 8));
	ASSERT_EQ(0, guest_set_namespace(&self->g, self->be.fd, 1, 9, 0,
					 NULL));
	ASSERT_EQ(0, guest_start(&self->g));
	ASSERT_EQ(0, guest_set_dbbuf(&self->g));
	ASSERT_EQ(0, guest_buf_alloc(&self->g, &self->page, 0, 4096, false));
	self->sq = NULL;
}

FIXTURE_TEARDOWN(tune)
{
	guest_close(&self->g);
	guest_backend_close(&self->be);
}

static void read_cmd(struct guest *g, struct guest_buf *b,
		     struct nvme_sqe *cmd, int i)
{
	nvme_sqe_rw(cmd, NVME_CMD_READ, 1, (i % 64) * 8, 8, 0);
	guest_prp_build(g, b, 0, cmd);
}

static int set_vector(struct guest *g, __u16 vector, bool no_coalesce)
{
	struct vhost_nvme_vector_config v = {
		.vector = vector,
		.flags = no_coalesce ? VHOST_NVME_VECTOR_F_NO_COALESCE : 0,
	};

	return xioctl(g->fd, VHOST_NVME_SET_VECTOR_CONFIG, &v);
}

TEST_F(tune, poll_feature_and_args)
{
	struct guest *g = &self->g;
	struct vhost_nvme_poll p = { .poll_us = 10 };
	__u64 f;

	ASSERT_EQ(0, ioctl(g->fd, VHOST_GET_FEATURES, &f));
	EXPECT_EQ(1ULL << VHOST_NVME_F_POLL, f);
	EXPECT_ERR(EOPNOTSUPP, g->fd, VHOST_NVME_SET_POLL, &p, "not acked");
	f = 1ULL << VHOST_NVME_F_MIGRATION;
	EXPECT_ERR(EOPNOTSUPP, g->fd, VHOST_SET_FEATURES, &f, "F_MIGRATION");
	ASSERT_EQ(0, guest_ack_poll(g));
	p.poll_us = VHOST_NVME_MAX_POLL_US + 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_POLL, &p, "over the max");
	p.poll_us = VHOST_NVME_POLL_DEFAULT - 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_POLL, &p, "0xfffffffe");
	p.poll_us = 10;
	p.reserved[6] = 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_POLL, &p, "reserved[6]");
	p.reserved[6] = 0;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_POLL, &p, "10 us");
	p.poll_us = 0;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_POLL, &p, "off");
	p.poll_us = VHOST_NVME_MAX_POLL_US;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_POLL, &p, "the max");
	p.poll_us = VHOST_NVME_POLL_DEFAULT;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_POLL, &p, "module default");
}

/*
 * The guest's thread on CPU 0 and the worker on CPU 1, as a vCPU thread and
 * its worker would be placed. On one CPU, the wakeup of the guest thread by
 * a completion preempts the polling worker (need_resched() ends the poll),
 * so polling could find nothing whatever its window, and a test would
 * measure where the scheduler put the two threads. With one CPU there is
 * no such placement: no command can be found by polling, and the cases
 * that count on it skip.
 */
static bool two_cpus(void)
{
	return sysconf(_SC_NPROCESSORS_ONLN) >= 2;
}

static void place_guest_and_worker(struct __test_metadata *_metadata,
				   struct guest *g)
{
	struct vhost_nvme_worker_affinity a = { .worker = 0 };
	cpu_set_t set;

	if (!two_cpus())
		return;
	a.cpus[0] = 1ULL << 1;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_WORKER_AFFINITY, &a, "CPU 1");
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	EXPECT_EQ(0, sched_setaffinity(0, sizeof(set), &set));
}

/*
 * Back-to-back commands, the next one queued as soon as the previous one
 * completed: return the guest's doorbell writes and the worker's "polled"
 * count.
 */
static void run_back_to_back(struct __test_metadata *_metadata,
			     FIXTURE_DATA(tune) *self, int n,
			     unsigned long *kicks, __u64 *polled)
{
	struct vhost_nvme_queue_stats st;
	struct guest_cpl cpl;
	struct nvme_sqe cmd;
	int i;

	place_guest_and_worker(_metadata, &self->g);
	ASSERT_EQ(0, guest_create_qpair(&self->g, 1, 64, 64, 0, &self->sq));
	for (i = 0; i < n; i++) {
		read_cmd(&self->g, &self->page, &cmd, i);
		ASSERT_EQ(0, guest_exec(self->sq, &cmd, &cpl));
		ASSERT_EQ(0, cpl.status >> 1);
	}
	ASSERT_EQ(0, guest_get_stats(&self->g, 1, &st));
	EXPECT_EQ(n, st.commands);
	*kicks = self->sq->kicks;
	*polled = st.polled;
	TH_LOG("%d commands: %lu doorbell writes, %llu found by polling",
	       n, *kicks, (unsigned long long)*polled);
}

/*
 * A polling worker leaves EventIdx behind while it polls: commands that
 * arrive within the window are found without a doorbell write.
 */
TEST_F(tune, poll_saves_doorbell_writes)
{
	unsigned long kicks;
	__u64 polled;

	if (!two_cpus())
		SKIP(return, "one CPU: the guest cannot queue while the worker polls");
	ASSERT_EQ(0, guest_ack_poll(&self->g));
	ASSERT_EQ(0, guest_set_poll(&self->g, VHOST_NVME_MAX_POLL_US));
	run_back_to_back(_metadata, self, 200, &kicks, &polled);
	EXPECT_LT(0, polled);
	EXPECT_GT(200 / 2, kicks);
}

/* Write the module parameter poll_us; return its old value, or -1. */
static int module_poll_us(int us)
{
	FILE *f = fopen(POLL_PARAM, "r");
	int old = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &old) != 1)
		old = -1;
	fclose(f);
	f = fopen(POLL_PARAM, "w");
	if (!f)
		return -1;
	fprintf(f, "%d\n", us);
	return fclose(f) ? -1 : old;
}

/*
 * Polling off for this device, on for the module: the device's setting
 * wins, every command needs its doorbell write.
 */
TEST_F(tune, poll_off_device_overrides_module)
{
	unsigned long kicks;
	__u64 polled;
	int old = module_poll_us(VHOST_NVME_MAX_POLL_US);

	ASSERT_LE(0, old);
	ASSERT_EQ(0, guest_ack_poll(&self->g));
	ASSERT_EQ(0, guest_set_poll(&self->g, 0));
	run_back_to_back(_metadata, self, 50, &kicks, &polled);
	module_poll_us(old);
	EXPECT_EQ(0, polled);
	EXPECT_EQ(50, kicks);
}

/* Without VHOST_NVME_SET_POLL the module parameter decides. */
TEST_F(tune, poll_default_follows_module)
{
	unsigned long kicks;
	__u64 polled;
	int old;

	if (!two_cpus())
		SKIP(return, "one CPU: the guest cannot queue while the worker polls");
	old = module_poll_us(VHOST_NVME_MAX_POLL_US);
	ASSERT_LE(0, old);
	run_back_to_back(_metadata, self, 200, &kicks, &polled);
	module_poll_us(old);
	EXPECT_LT(0, polled);
	EXPECT_GT(200 / 2, kicks);
}

/*
 * The rest of the first line of /proc/self/task/@tid/@file that starts
 * with @key, without its newline, into @out ("" if none).
 */
static void task_line(const char *tid, const char *file, const char *key,
		      char *out, size_t len)
{
	char path[300], line[200];
	FILE *f;

	out[0] = 0;
	snprintf(path, sizeof(path), "/proc/self/task/%s/%s", tid, file);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, strlen(key))) {
			snprintf(out, len, "%s", line + strlen(key));
			break;
		}
	}
	fclose(f);
	out[strcspn(out, "\n")] = 0;
}

/*
 * The CPUs the worker thread (a thread of ours named vhost-nvme-<pid>) may
 * run on, from /proc: "" if there is no such thread.
 */
static void worker_cpus(char *out, size_t len)
{
	char name[64], want[32];
	struct dirent *d;
	DIR *dir;

	out[0] = 0;
	snprintf(want, sizeof(want), "vhost-nvme-%d", getpid());
	dir = opendir("/proc/self/task");
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		task_line(d->d_name, "comm", "", name, sizeof(name));
		if (!strcmp(name, want))
			task_line(d->d_name, "status", "Cpus_allowed_list:\t",
				  out, len);
	}
	closedir(dir);
}

TEST_F(tune, worker_affinity)
{
	struct vhost_nvme_worker_affinity a = { 0 };
	struct guest *g = &self->g;
	long ncpus = sysconf(_SC_NPROCESSORS_CONF);
	char cpus[256], all[64];

	a.worker = VHOST_NVME_MAX_WORKERS;
	a.cpus[0] = 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_WORKER_AFFINITY, &a,
		   "worker 16");
	a.worker = 0;
	a.reserved0[2] = 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_WORKER_AFFINITY, &a,
		   "reserved0[2]");
	a.reserved0[2] = 0;
	a.cpus[0] = 0;
	a.cpus[15] = 1ULL << 63;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_WORKER_AFFINITY, &a,
		   "CPU 1023");
	a.cpus[15] = 0;

	/* Set before the worker exists: it starts there. */
	a.cpus[0] = 1;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_WORKER_AFFINITY, &a, "CPU 0");
	ASSERT_EQ(0, guest_create_qpair(g, 1, 16, 16, 0, &self->sq));
	/* The worker applies it on its first round: make it run one. */
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_WORKER_AFFINITY, &a, "again");
	worker_cpus(cpus, sizeof(cpus));
	EXPECT_STREQ("0", cpus);
	if (ncpus < 2)
		return;
	/* Moved while running, before the ioctl returns. */
	a.cpus[0] = 2;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_WORKER_AFFINITY, &a, "CPU 1");
	worker_cpus(cpus, sizeof(cpus));
	EXPECT_STREQ("1", cpus);
	/* All zero: any CPU again. */
	a.cpus[0] = 0;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_WORKER_AFFINITY, &a, "any");
	worker_cpus(cpus, sizeof(cpus));
	snprintf(all, sizeof(all), "0-%ld", ncpus - 1);
	EXPECT_STREQ(all, cpus);
}

TEST_F(tune, coalescing_args)
{
	struct vhost_nvme_coalescing c = { .threshold = 255, .time = 255 };
	struct vhost_nvme_vector_config v = { .vector = 1 };
	struct guest *g = &self->g;

	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_COALESCING, &c, "255/255");
	c.reserved0 = 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_COALESCING, &c, "reserved0");
	c.reserved0 = 0;
	c.reserved[2] = 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_COALESCING, &c,
		   "reserved[2]");
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_VECTOR_CONFIG, &v, "vector 1");
	v.vector = VHOST_NVME_MAX_VECTORS - 1;
	v.flags = VHOST_NVME_VECTOR_F_NO_COALESCE;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_VECTOR_CONFIG, &v, "last");
	v.vector = VHOST_NVME_MAX_VECTORS;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_VECTOR_CONFIG, &v,
		   "vector 2048");
	v.vector = 1;
	v.flags = 2;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_VECTOR_CONFIG, &v, "flag 2");
	v.flags = 0;
	v.reserved[0] = 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_VECTOR_CONFIG, &v,
		   "reserved[0]");
}

/*
 * Submit @n commands (@bad: an invalid opcode) at once and wait for their
 * interrupt; return the milliseconds from the doorbell to the interrupt.
 */
static double timed_batch(struct __test_metadata *_metadata,
			  FIXTURE_DATA(tune) *self, int n, bool bad)
{
	struct guest_cq *cq = self->sq->cq;
	struct guest_cpl cpl[8];
	struct nvme_sqe cmd;
	double t0;
	int i, got = 0, rc;

	for (i = 0; i < n; i++) {
		read_cmd(&self->g, &self->page, &cmd, i);
		if (bad)
			cmd.opcode = 0x7f;
		EXPECT_LE(0, guest_sq_push(self->sq, &cmd));
	}
	t0 = now_ms();
	EXPECT_EQ(0, guest_sq_ring(self->sq));
	while (got < n) {
		rc = guest_wait_fd(cq->irqfd, GUEST_TIMEOUT_MS);
		EXPECT_EQ(1, rc) {
			TH_LOG("no interrupt for %d of %d completions",
			       n - got, n);
			return -1;
		}
		cq->irqs++;
		got += guest_cq_reap(cq, cpl, n - got);
		EXPECT_EQ(0, guest_cq_ring(cq));
	}
	return now_ms() - t0;
}

/* Of TRIES batches, the fastest: a held interrupt cannot be fast. */
static double fastest_batch(struct __test_metadata *_metadata,
			    FIXTURE_DATA(tune) *self, int n, bool bad)
{
	double best = 1e9, t;
	int i;

	for (i = 0; i < TRIES; i++) {
		t = timed_batch(_metadata, self, n, bad);
		if (t >= 0 && t < best)
			best = t;
	}
	return best;
}

/*
 * Threshold 8 entries, time 25.5 ms: one completion waits for the time,
 * never less (the deadline runs from when the CQE was written, after our
 * doorbell write).
 */
TEST_F(tune, coalescing_holds_for_time)
{
	double t;
	int i;

	ASSERT_EQ(0, guest_set_coalescing(&self->g, 7, COAL_TIME));
	ASSERT_EQ(0, guest_create_qpair(&self->g, 1, 16, 16, 0, &self->sq));
	for (i = 0; i < 3; i++) {
		t = timed_batch(_metadata, self, 1, false);
		EXPECT_LE(COAL_TIME_MS, t);
		TH_LOG("held %.1f ms", t);
	}
}

/* Threshold reached: the interrupt goes at once. */
TEST_F(tune, coalescing_threshold_reached)
{
	struct vhost_nvme_queue_stats st;
	double t;

	ASSERT_EQ(0, guest_set_coalescing(&self->g, 3, COAL_TIME));
	ASSERT_EQ(0, guest_create_qpair(&self->g, 1, 16, 16, 0, &self->sq));
	t = fastest_batch(_metadata, self, 4, false);
	EXPECT_GT(COAL_TIME_MS, t);
	ASSERT_EQ(0, guest_get_stats(&self->g, 1, &st));
	/* 4 completions per interrupt, or the time ran out first */
	EXPECT_GE(2 * TRIES, st.interrupts);
	TH_LOG("fastest %.1f ms, %llu interrupts for %d batches", t,
	       (unsigned long long)st.interrupts, TRIES);
}

/* An error completion is never held back. */
TEST_F(tune, coalescing_not_for_errors)
{
	double t;

	ASSERT_EQ(0, guest_set_coalescing(&self->g, 7, COAL_TIME));
	ASSERT_EQ(0, guest_create_qpair(&self->g, 1, 16, 16, 0, &self->sq));
	t = fastest_batch(_metadata, self, 1, true);
	EXPECT_GT(COAL_TIME_MS, t);
}

/* Coalescing Disable on the CQ's vector (guest_create_cq uses vector = qid). */
TEST_F(tune, coalescing_disabled_on_vector)
{
	double t;

	ASSERT_EQ(0, guest_set_coalescing(&self->g, 7, COAL_TIME));
	ASSERT_EQ(0, set_vector(&self->g, 2, true));
	ASSERT_EQ(0, guest_create_qpair(&self->g, 1, 16, 16, 0, &self->sq));
	/* vector 1 still coalesces */
	EXPECT_LE(COAL_TIME_MS, timed_batch(_metadata, self, 1, false));
	ASSERT_EQ(0, set_vector(&self->g, 1, true));
	t = fastest_batch(_metadata, self, 1, false);
	EXPECT_GT(COAL_TIME_MS, t);
	/* and back on */
	ASSERT_EQ(0, set_vector(&self->g, 1, false));
	EXPECT_LE(COAL_TIME_MS, timed_batch(_metadata, self, 1, false));
}

/* Time 0 means no delay, whatever the threshold; RESET restores 0/0. */
TEST_F(tune, coalescing_time_zero_and_reset)
{
	ASSERT_EQ(0, guest_set_coalescing(&self->g, 7, 0));
	ASSERT_EQ(0, guest_create_qpair(&self->g, 1, 16, 16, 0, &self->sq));
	EXPECT_GT(COAL_TIME_MS, fastest_batch(_metadata, self, 1, false));
	ASSERT_EQ(0, guest_set_coalescing(&self->g, 7, COAL_TIME));
	ASSERT_EQ(0, set_vector(&self->g, 1, true));
	ASSERT_EQ(0, guest_reset(&self->g));
	/* guest_reset forgot the queues; the device forgot 08h and 09h */
	ASSERT_EQ(0, guest_start(&self->g));
	ASSERT_EQ(0, guest_set_dbbuf(&self->g));
	ASSERT_EQ(0, guest_create_qpair(&self->g, 1, 16, 16, 0, &self->sq));
	EXPECT_GT(COAL_TIME_MS, fastest_batch(_metadata, self, 1, false));
}

/* A held interrupt is let go when the device stops. */
TEST_F(tune, coalescing_released_by_stop)
{
	struct guest_cq *cq;
	struct nvme_sqe cmd;

	ASSERT_EQ(0, guest_set_coalescing(&self->g, 7, COAL_TIME));
	ASSERT_EQ(0, guest_create_qpair(&self->g, 1, 16, 16, 0, &self->sq));
	cq = self->sq->cq;
	read_cmd(&self->g, &self->page, &cmd, 0);
	ASSERT_LE(0, guest_sq_push(self->sq, &cmd));
	ASSERT_EQ(0, guest_sq_ring(self->sq));
	/* The CQE is written, its interrupt held... */
	while (!guest_cq_peek(cq))
		usleep(100);
	ASSERT_EQ(0, guest_stop(&self->g));
	/* ...and signalled by the time STOP returned. */
	EXPECT_EQ(1, guest_wait_fd(cq->irqfd, 0));
}

TEST_HARNESS_MAIN
