// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme under allocation failures (CONFIG_FAILSLAB and
 * CONFIG_FAIL_PAGE_ALLOC, Documentation/fault-injection/): every ioctl that
 * allocates either succeeds or fails with -ENOMEM when the first 1..7
 * slab or page allocations of the calling thread fail, the same ioctl then
 * succeeds without injection, and the device still does I/O. The module
 * allocates with GFP_KERNEL_ACCOUNT in the ioctl's thread, so task-filter
 * with make-it-fail set around the one ioctl hits exactly its allocations.
 * Last, bounce page allocations in the worker fail at random while reads
 * run: every command completes once, with Success or Internal Error.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "guest.h"
#include "kselftest_harness.h"

#define MEM_SIZE	(16ull << 20)
#define MEM2_SIZE	(4ull << 20)
#define FILE_SIZE	(4ull << 20)
/* 2 x 7 attempts: fits the 15 worker indices left beside worker 0. */
#define MAX_TIMES	7
#define BATCH		8

#ifndef NVME_SC_INTERNAL
#define NVME_SC_INTERNAL	0x006
#endif

enum { INJ_SLAB, INJ_PAGE, NR_INJ };
static const char *const inj_dir[NR_INJ] = {
	"/sys/kernel/debug/failslab", "/sys/kernel/debug/fail_page_alloc",
};
static const char *const inj_name[NR_INJ] = { "failslab", "fail_page_alloc" };

static int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

static const char *err_name(int rc)
{
	return rc ? strerror(-rc) : "success";
}

static int attr_write(const char *dir, const char *attr, const char *val)
{
	char path[128];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	/*
	 * While page allocations of everyone fail now and then, the write
	 * itself may meet one (-ENOMEM, seen in CI): try again.
	 */
	for (int i = 0; i < 20; i++) {
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		rc = write(fd, val, strlen(val)) < 0 ? -errno : 0;
		close(fd);
		if (rc != -ENOMEM)
			break;
	}
	return rc;
}

/*
 * make-it-fail is inherited by threads the ioctl creates (the workers are
 * copies of the caller): clear it everywhere, not only in our thread.
 */
static void clear_make_it_fail(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	char path[64];

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%d",
			 atoi(e->d_name));
		attr_write(path, "make-it-fail", "0");
	}
	if (d)
		closedir(d);
}

/* Best effort, from any state: nothing may fail after us. */
static void inject_off(void)
{
	int i;

	for (i = 0; i < NR_INJ; i++) {
		attr_write(inj_dir[i], "probability", "0");
		attr_write(inj_dir[i], "times", "0");
		attr_write(inj_dir[i], "task-filter", "N");
	}
	clear_make_it_fail();
}

/*
 * A test that died without its teardown must not leave injection on. Only
 * the harness's top process gets here: test children _exit().
 */
__attribute__((destructor)) static void restore_injection(void)
{
	if (!access(inj_dir[INJ_SLAB], F_OK))
		inject_off();
}

/* Fail every allocation of a make-it-fail task, once times is set. */
static int inject_prepare(void)
{
	static const char *const common[][2] = {
		{ "times", "0" }, { "task-filter", "Y" }, { "probability", "100" },
		{ "interval", "1" }, { "verbose", "0" }, { "space", "0" },
		{ "ignore-gfp-wait", "N" },
	};
	unsigned int i, j;
	int rc = 0;

	for (i = 0; i < NR_INJ; i++)
		for (j = 0; j < ARRAY_SIZE(common) && !rc; j++)
			rc = attr_write(inj_dir[i], common[j][0], common[j][1]);
	if (!rc)
		rc = attr_write(inj_dir[INJ_PAGE], "ignore-gfp-highmem", "N");
	if (!rc)
		rc = attr_write(inj_dir[INJ_PAGE], "min-order", "0");
	return rc;
}

FIXTURE(failslab) {
	struct guest g, g2;	/* g2: a fresh device for SET_OWNER */
	struct guest_backend be;
	struct guest_sq *sq;	/* qpair 1 on worker 0, for the I/O checks */
	long ref0;
	int mif;		/* our /proc/self/task/<tid>/make-it-fail */
	int fd2;		/* a fresh open() */
	int i;			/* attempt number, 0..2 * MAX_TIMES - 1 */
	struct vhost_memory *mem;
	struct vhost_nvme_namespace ns;
	struct vhost_nvme_cq cq;
	struct vhost_nvme_sq sqa;
	struct vhost_nvme_worker_affinity aff;
	cpu_set_t cpus;		/* ours, for SET_WORKER_AFFINITY */
	char why[256];
};

/* Write 4 KiB through @sq and read it back. */
static int io_check(struct guest *g, struct guest_sq *sq, __u64 seed,
		    char *why, size_t len)
{
	static char src[4096], dst[4096];
	__u64 mark = guest_alloc_mark(g), slba = (seed % 64) * 8;
	struct guest_cpl cpl;
	struct guest_buf b;
	struct nvme_sqe c;
	int rc, op;

	guest_pattern(src, sizeof(src), seed);
	rc = guest_buf_alloc(g, &b, 0, 4096, false);
	if (rc) {
		snprintf(why, len, "buffer: %s", err_name(rc));
		goto out;
	}
	guest_buf_write(g, &b, src);
	for (op = NVME_CMD_WRITE; op <= NVME_CMD_READ; op++) {
		nvme_sqe_rw(&c, op, 1, slba, 8, 0);
		guest_prp_build(g, &b, 0, &c);
		if (op == NVME_CMD_READ)	/* what was written is gone */
			guest_buf_set_pages(g, &b, 0xa5);
		rc = guest_exec(sq, &c, &cpl);
		if (!rc && nvme_status(cpl.status))
			rc = -EIO;
		if (rc) {
			snprintf(why, len, "%s of lba %llu: %s, status 0x%03x",
				 op == NVME_CMD_WRITE ? "write" : "read",
				 (unsigned long long)slba, guest_strerror(rc),
				 rc == -EIO ? nvme_status(cpl.status) : 0);
			goto out;
		}
	}
	guest_buf_read(g, &b, dst);
	if (memcmp(src, dst, sizeof(src))) {
		snprintf(why, len, "read back differs at byte %ld",
			 guest_memdiff(src, dst, sizeof(src)));
		rc = -EIO;
	}
out:
	guest_alloc_release(g, mark);
	return rc;
}

FIXTURE_SETUP(failslab)
{
	char path[64];
	int rc;

	if (access(inj_dir[INJ_SLAB], F_OK) || access(inj_dir[INJ_PAGE], F_OK))
		SKIP(return, "no %s or %s: needs CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC, CONFIG_FAULT_INJECTION_DEBUG_FS and debugfs mounted",
		     inj_dir[INJ_SLAB], inj_dir[INJ_PAGE]);
	self->g.fd = self->g.memfd = self->g.errfd = -1;
	self->g2.fd = self->g2.memfd = self->g2.errfd = -1;
	self->be.fd = self->be.io_fd = -1;
	self->fd2 = self->mif = -1;
	/* An earlier test that crashed may have left it on. */
	inject_off();
	self->ref0 = guest_module_refcnt();
	ASSERT_LE(0, self->ref0) {
		TH_LOG("%s unreadable: vhost_nvme not loaded", GUEST_REFCNT_PATH);
	}
	ASSERT_OK(guest_backend_open(&self->be, GUEST_BACKEND_FILE, FILE_SIZE));
	ASSERT_OK(guest_setup(&self->g, MEM_SIZE));
	/* Fault it all in now: no user page fault may eat an injection. */
	memset(self->g.mem, 0, MEM_SIZE);
	ASSERT_OK(guest_set_namespace(&self->g, self->be.fd, 1, 9, 0, NULL));
	ASSERT_OK(guest_start(&self->g));
	ASSERT_OK(guest_create_qpair(&self->g, 1, 64, 64, 0, &self->sq));
	rc = io_check(&self->g, self->sq, 1000, self->why, sizeof(self->why));
	ASSERT_EQ(0, rc) {
		TH_LOG("I/O before any injection: %s", self->why);
	}

	self->mem = calloc(1, sizeof(*self->mem) + sizeof(self->mem->regions[0]));
	ASSERT_NE(NULL, self->mem);
	self->mem->nregions = 1;
	self->mem->regions[0].guest_phys_addr = self->g.mem_gpa;
	self->mem->regions[0].memory_size = self->g.mem_size;
	self->mem->regions[0].userspace_addr = (uintptr_t)self->g.mem;

	/* CPU_SETSIZE is 1024, VHOST_NVME_MAX_CPUS: every bit is valid. */
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(self->cpus), &self->cpus));

	/* Opened now: writing it must not allocate while armed. */
	snprintf(path, sizeof(path), "/proc/self/task/%ld/make-it-fail",
		 (long)syscall(SYS_gettid));
	self->mif = open(path, O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, self->mif) {
		TH_LOG("%s: %s", path, strerror(errno));
	}
	rc = inject_prepare();
	if (rc)
		inject_off();
	ASSERT_EQ(0, rc) {
		TH_LOG("setting up %s and %s: %s", inj_dir[INJ_SLAB],
		       inj_dir[INJ_PAGE], err_name(rc));
	}
}

FIXTURE_TEARDOWN(failslab)
{
	long ref = -1;
	int i;

	/* First: the cleanup below must not fail allocations itself. */
	inject_off();
	if (self->fd2 >= 0)
		close(self->fd2);
	guest_close(&self->g2);
	guest_close(&self->g);
	guest_backend_close(&self->be);
	free(self->mem);
	if (self->mif >= 0)
		close(self->mif);
	/* The workers may drop their references a little later. */
	for (i = 0; i < 50; i++) {
		ref = guest_module_refcnt();
		if (ref == self->ref0)
			break;
		guest_msleep(100);
	}
	EXPECT_EQ(self->ref0, ref) {
		TH_LOG("module refcount %ld 5 s after close, %ld at the start",
		       ref, self->ref0);
	}
}

/* Fail the first @n allocations of this thread from now on. */
static int arm(FIXTURE_DATA(failslab) *self, int inj, int n)
{
	char v[16];
	int rc;

	snprintf(v, sizeof(v), "%d", n);
	rc = attr_write(inj_dir[inj], "times", v);
	if (!rc && pwrite(self->mif, "1", 1, 0) != 1)
		rc = -errno;
	return rc;
}

static void disarm(FIXTURE_DATA(failslab) *self)
{
	/* No allocation before this write: proc writes it from the stack. */
	if (pwrite(self->mif, "0", 1, 0) != 1)
		attr_write(inj_dir[INJ_PAGE], "times", "0");
	attr_write(inj_dir[INJ_SLAB], "times", "0");
	attr_write(inj_dir[INJ_PAGE], "times", "0");
	clear_make_it_fail();
}

enum { OP_OPEN, OP_OWNER, OP_MEM, OP_NS, OP_CQ, OP_SQ, OP_AFF, OP_DBBUF };
static const char *const op_name[] = {
	"open(" GUEST_DEV_PATH ")", "VHOST_SET_OWNER", "VHOST_SET_MEM_TABLE",
	"VHOST_NVME_SET_NAMESPACE", "VHOST_NVME_CREATE_CQ",
	"VHOST_NVME_CREATE_SQ", "VHOST_NVME_SET_WORKER_AFFINITY",
	"VHOST_NVME_SET_DBBUF",
};

static struct vhost_nvme_cq cq_arg(struct guest *g, __u16 qid)
{
	return (struct vhost_nvme_cq){ .qid = qid, .vector = qid,
		.entries = 16, .gpa = guest_alloc(g, 1), .irqfd = -1,
		.kickfd = -1 };
}

/* Without injection: the argument of attempt self->i. */
static int op_prepare(FIXTURE_DATA(failslab) *self, int op)
{
	struct guest *g = &self->g;
	int i = self->i, cpu = 0, k;

	switch (op) {
	case OP_OWNER:	/* on a fresh fd */
		return guest_open(&self->g2, MEM2_SIZE);
	case OP_NS:	/* refused while started */
		self->ns = (struct vhost_nvme_namespace){ .fd = self->be.fd,
			.nsid = 2 + i, .lba_shift = 9 };
		return guest_stop(g);
	case OP_CQ:
		self->cq = cq_arg(g, 2 + i);
		return 0;
	case OP_SQ:	/* a CQ of its own, a new worker index: a new worker */
		self->cq = cq_arg(g, 32 + i);
		self->sqa = (struct vhost_nvme_sq){ .qid = 32 + i,
			.cqid = 32 + i, .entries = 16, .gpa = guest_alloc(g, 1),
			.kickfd = -1, .worker = 1 + i };
		return xioctl(g->fd, VHOST_NVME_CREATE_CQ, &self->cq);
	case OP_AFF:	/* worker 0, which the I/O checks use, moves around */
		for (k = i % CPU_COUNT(&self->cpus);; cpu++)
			if (CPU_ISSET(cpu, &self->cpus) && !k--)
				break;
		memset(&self->aff, 0, sizeof(self->aff));
		self->aff.cpus[cpu / 64] = 1ULL << (cpu % 64);
		return 0;
	}
	return 0;
}

/* Armed: nothing but the syscall, no user page fault, no malloc. */
static int op_call(FIXTURE_DATA(failslab) *self, int op)
{
	int fd = self->g.fd;

	switch (op) {
	case OP_OPEN:
		self->fd2 = open(GUEST_DEV_PATH, O_RDWR | O_CLOEXEC);
		return self->fd2 < 0 ? -errno : 0;
	case OP_OWNER:
		return xioctl(self->g2.fd, VHOST_SET_OWNER, NULL);
	case OP_MEM:
		return xioctl(fd, VHOST_SET_MEM_TABLE, self->mem);
	case OP_NS:
		return xioctl(fd, VHOST_NVME_SET_NAMESPACE, &self->ns);
	case OP_CQ:
		return xioctl(fd, VHOST_NVME_CREATE_CQ, &self->cq);
	case OP_SQ:
		return xioctl(fd, VHOST_NVME_CREATE_SQ, &self->sqa);
	case OP_AFF:
		return xioctl(fd, VHOST_NVME_SET_WORKER_AFFINITY, &self->aff);
	case OP_DBBUF:	/* touches only memory the setup faulted in */
		return guest_set_dbbuf(&self->g);
	}
	return -EINVAL;
}

/* Without injection, after the ioctl succeeded: use what it made. */
static int op_after(FIXTURE_DATA(failslab) *self, int op)
{
	struct guest *g = &self->g2;
	struct guest_sq *sq;
	int rc = 0;

	switch (op) {
	case OP_OPEN:
		rc = xioctl(self->fd2, VHOST_SET_OWNER, NULL);
		snprintf(self->why, sizeof(self->why), "SET_OWNER on it: %s",
			 err_name(rc));
		close(self->fd2);
		self->fd2 = -1;
		break;
	case OP_OWNER:
		rc = guest_set_mem_table(g) ?:
		     guest_set_namespace(g, self->be.fd, 1, 9, 0, NULL) ?:
		     guest_start(g) ?: guest_create_qpair(g, 1, 16, 16, 0, &sq);
		snprintf(self->why, sizeof(self->why),
			 "bringing up the new device: %s", err_name(rc));
		if (!rc)
			rc = io_check(g, sq, 500 + self->i, self->why,
				      sizeof(self->why));
		guest_close(g);
		break;
	case OP_NS:
		rc = guest_start(&self->g);
		snprintf(self->why, sizeof(self->why), "START: %s",
			 err_name(rc));
		break;
	case OP_DBBUF:	/* I/O with shadow doorbells, then forwarded again */
		rc = io_check(&self->g, self->sq, 700 + self->i, self->why,
			      sizeof(self->why));
		if (rc)
			break;
		rc = guest_clear_dbbuf(&self->g);
		snprintf(self->why, sizeof(self->why), "CLEAR_DBBUF: %s",
			 err_name(rc));
		break;
	}
	return rc;
}

/*
 * Fail the first n = 1..MAX_TIMES slab, then page, allocations of the one
 * call; whether it failed or not, the device must then do I/O.
 */
static void run_op(struct __test_metadata *_metadata,
		   FIXTURE_DATA(failslab) *self, int op)
{
	int inj, n, rc, ok = 0, enomem = 0, other = 0, other_err = 0;
	const char *name = op_name[op];

	for (self->i = 0, inj = 0; inj < NR_INJ; inj++) {
		for (n = 1; n <= MAX_TIMES; n++, self->i++) {
			rc = op_prepare(self, op);
			ASSERT_EQ(0, rc) {
				TH_LOG("%s: preparing attempt %d: %s", name,
				       self->i, err_name(rc));
			}
			rc = arm(self, inj, n);
			if (!rc)
				rc = op_call(self, op);
			disarm(self);
			if (!rc)
				ok++;
			else if (rc == -ENOMEM)
				enomem++;
			else
				other++, other_err = rc;
			EXPECT_TRUE(rc == 0 || rc == -ENOMEM) {
				TH_LOG("%s with %s times=%d: %s, want success or %s",
				       name, inj_name[inj], n, err_name(rc),
				       strerror(ENOMEM));
			}
			if (rc) {
				rc = op_call(self, op);
				ASSERT_EQ(0, rc) {
					TH_LOG("%s again without injection, after %s times=%d: %s",
					       name, inj_name[inj], n,
					       err_name(rc));
				}
			}
			rc = op_after(self, op) ?:
			     io_check(&self->g, self->sq, self->i, self->why,
				      sizeof(self->why));
			ASSERT_EQ(0, rc) {
				TH_LOG("after %s with %s times=%d: %s", name,
				       inj_name[inj], n, self->why);
			}
		}
	}
	TH_LOG("%s: %d attempts: %d succeeded, %d failed with ENOMEM, %d with another errno (last: %s)",
	       name, self->i, ok, enomem, other, err_name(other_err));
}

TEST_F(failslab, open_dev) { run_op(_metadata, self, OP_OPEN); }
TEST_F(failslab, set_owner) { run_op(_metadata, self, OP_OWNER); }
TEST_F(failslab, set_mem_table) { run_op(_metadata, self, OP_MEM); }
TEST_F(failslab, set_namespace) { run_op(_metadata, self, OP_NS); }
TEST_F(failslab, create_cq) { run_op(_metadata, self, OP_CQ); }
TEST_F(failslab, create_sq_new_worker) { run_op(_metadata, self, OP_SQ); }
TEST_F(failslab, set_worker_affinity) { run_op(_metadata, self, OP_AFF); }
TEST_F(failslab, set_dbbuf) { run_op(_metadata, self, OP_DBBUF); }

/*
 * Reads at PRP1 offset 4 cannot go to the O_DIRECT file directly: the
 * worker bounces them through pages it allocates. With page allocations
 * failing at random in every task, a read gets Internal Error when its
 * bounce page is refused, but it completes, once.
 */
TEST_F(failslab, io_bounce_failures)
{
	static char want[BATCH * 4096], got[4096];
	int k, j, n, cid[BATCH], good = 0, internal = 0, batches = 0;
	struct guest_cpl cpl[BATCH];
	struct guest_buf b[BATCH];
	struct guest *g = &self->g;
	struct timespec t0, t;
	struct nvme_sqe c;
	bool seen[BATCH];
	char st[512];

	guest_pattern(want, sizeof(want), 42);
	ASSERT_OK(guest_backend_pwrite(&self->be, want, sizeof(want), 0));
	for (k = 0; k < BATCH; k++)
		ASSERT_OK(guest_buf_alloc(g, &b[k], 4, 4096, false));
	/* Every task: the bounce pages are the worker's allocations. */
	ASSERT_OK(attr_write(inj_dir[INJ_PAGE], "task-filter", "N"));
	ASSERT_OK(attr_write(inj_dir[INJ_PAGE], "times", "200"));
	ASSERT_OK(attr_write(inj_dir[INJ_PAGE], "probability", "5"));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (k = 0; k < BATCH; k++) {
			guest_buf_set_pages(g, &b[k], 0xa5);
			nvme_sqe_rw(&c, NVME_CMD_READ, 1, k * 8, 8, 0);
			guest_prp_build(g, &b[k], 0, &c);
			cid[k] = guest_sq_submit(self->sq, &c);
			seen[k] = false;
		}
		ASSERT_OK(guest_sq_ring(self->sq));
		n = guest_cq_wait(self->sq->cq, cpl, BATCH, GUEST_TIMEOUT_MS);
		ASSERT_EQ(BATCH, n) {
			guest_sq_describe(self->sq, st, sizeof(st));
			TH_LOG("batch %d: %d of %d completions: %s", batches,
			       n, BATCH, st);
		}
		for (j = 0; j < BATCH; j++) {
			for (k = 0; k < BATCH && cid[k] != cpl[j].cid; k++)
				;
			ASSERT_TRUE(k < BATCH && !seen[k]) {
				TH_LOG("batch %d: cid %u %s", batches, cpl[j].cid,
				       k < BATCH ? "completed twice" : "not submitted");
			}
			seen[k] = true;
			if (nvme_status(cpl[j].status) == NVME_SC_INTERNAL) {
				internal++;
				continue;
			}
			EXPECT_NVME_STATUS_WHAT(NVME_SC_SUCCESS, &cpl[j],
						"read at PRP1 offset 4");
			guest_buf_read(g, &b[k], got);
			EXPECT_EQ(-1, guest_memdiff(want + k * 4096, got, 4096));
			good++;
		}
		batches++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 1 ||
		 (t.tv_sec - t0.tv_sec == 1 && t.tv_nsec < t0.tv_nsec));
	ASSERT_OK(attr_write(inj_dir[INJ_PAGE], "probability", "0"));
	ASSERT_OK(attr_write(inj_dir[INJ_PAGE], "times", "0"));
	TH_LOG("%d reads in 1 s of fail_page_alloc: %d Success, %d Internal Error",
	       good + internal, good, internal);
	/* Nothing more may arrive: each command completed exactly once. */
	guest_msleep(100);
	EXPECT_EQ(0, guest_cq_peek(self->sq->cq)) {
		TH_LOG("completions beyond the %d commands submitted",
		       batches * BATCH);
	}
	n = io_check(g, self->sq, 9999, self->why, sizeof(self->why));
	EXPECT_EQ(0, n) {
		TH_LOG("I/O after injection stopped: %s", self->why);
	}
}

TEST_HARNESS_MAIN
