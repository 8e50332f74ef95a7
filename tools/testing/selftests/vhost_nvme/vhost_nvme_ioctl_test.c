// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme ioctl arguments: every ioctl refuses what the UAPI header
 * calls invalid with the errno it names - reserved fields and flags,
 * limits, addresses outside guest memory, file descriptors of the wrong
 * kind, state conflicts, callers that are not the owner - and accepts the
 * boundary values just inside the limits. Where the header leaves the
 * errno open (bad file descriptors, too many memory regions) either of the
 * two plausible ones is accepted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include "guest.h"
#include "kselftest_harness.h"

#define MEM_SIZE	(16ull << 20)
#define FILE_SIZE	(4ull << 20)

static int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

static const char *err_name(int rc)
{
	return rc ? strerror(-rc) : "success";
}

/* The ioctl must fail with @err. */
#define EXPECT_ERR(err, fd, req, arg, what) do { \
	int __rc = xioctl(fd, req, arg); \
	\
	EXPECT_EQ(-(err), __rc) { \
		TH_LOG("%s: %s, want %s", what, err_name(__rc), \
		       strerror(err)); \
	} \
} while (0)

/* The ioctl must fail with @e1 or @e2: the header does not pick one. */
#define EXPECT_ERR2(e1, e2, fd, req, arg, what) do { \
	int __rc = xioctl(fd, req, arg); \
	\
	EXPECT_TRUE(__rc == -(e1) || __rc == -(e2)) { \
		TH_LOG("%s: %s, want %s or %s", what, err_name(__rc), \
		       strerror(e1), strerror(e2)); \
	} \
} while (0)

/* The ioctl must succeed. */
#define EXPECT_IOCTL_OK(fd, req, arg, what) do { \
	int __rc = xioctl(fd, req, arg); \
	\
	EXPECT_EQ(0, __rc) { \
		TH_LOG("%s: %s", what, err_name(__rc)); \
	} \
} while (0)

FIXTURE(ctl) {
	struct guest g;
	struct guest_backend be;
	int pipefd[2];
	int efd;
};

FIXTURE_SETUP(ctl)
{
	self->pipefd[0] = self->pipefd[1] = self->efd = -1;
	ASSERT_OK(guest_backend_open(&self->be, GUEST_BACKEND_FILE,
				     FILE_SIZE));
	ASSERT_OK(guest_setup(&self->g, MEM_SIZE));
	ASSERT_EQ(0, pipe2(self->pipefd, O_CLOEXEC));
	self->efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, self->efd);
}

FIXTURE_TEARDOWN(ctl)
{
	guest_close(&self->g);
	guest_backend_close(&self->be);
	close(self->pipefd[0]);
	close(self->pipefd[1]);
	close(self->efd);
}

/* A valid CQ argument with @entries at a fresh address. */
static struct vhost_nvme_cq cq_arg(struct guest *g, __u16 qid,
				   __u32 entries)
{
	struct vhost_nvme_cq a = {
		.qid = qid,
		.vector = qid,
		.entries = entries,
		.irqfd = -1,
		.kickfd = -1,
	};

	a.gpa = guest_alloc(g, (entries * 16 + 4095) / 4096);
	return a;
}

static struct vhost_nvme_sq sq_arg(struct guest *g, __u16 qid, __u16 cqid,
				   __u32 entries)
{
	struct vhost_nvme_sq a = {
		.qid = qid,
		.cqid = cqid,
		.entries = entries,
		.kickfd = -1,
	};

	a.gpa = guest_alloc(g, (entries * 64 + 4095) / 4096);
	return a;
}

static struct vhost_memory *mem_table(unsigned int n)
{
	return calloc(1, sizeof(struct vhost_memory) +
		      n * sizeof(struct vhost_memory_region));
}

TEST_F(ctl, set_owner_twice)
{
	EXPECT_ERR(EBUSY, self->g.fd, VHOST_SET_OWNER, NULL,
		   "second VHOST_SET_OWNER");
}

/*
 * A forked child shares the fd but not the address space: it is not the
 * owner, and every state-changing or queue ioctl is -EPERM. Afterwards the
 * owner's queue is still there.
 */
TEST_F(ctl, not_owner_eperm)
{
	struct guest *g = &self->g;
	struct vhost_nvme_config cfg = { .mdts = 5, .max_queues = 8 };
	struct vhost_nvme_namespace ns = {
		.fd = self->be.fd, .nsid = 2, .lba_shift = 9,
	};
	struct vhost_nvme_queue_id id = { .qid = 1 };
	struct vhost_nvme_doorbell db = { .qid = 1, .value = 0 };
	struct vhost_nvme_queue_stats st = { .qid = 1 };
	struct vhost_nvme_dbbuf dbbuf = { 0 };
	struct vhost_nvme_error err;
	struct vhost_nvme_cq cq;
	struct vhost_nvme_sq sq;
	struct vhost_memory *m;
	__u32 nsid = 1;
	__s32 efd = self->efd;
	int status, i;
	pid_t pid;
	struct {
		const char *name;
		unsigned long req;
		void *arg;
	} t[] = {
		{ "VHOST_SET_MEM_TABLE", VHOST_SET_MEM_TABLE, NULL },
		{ "SET_CONFIG", VHOST_NVME_SET_CONFIG, &cfg },
		{ "SET_NAMESPACE", VHOST_NVME_SET_NAMESPACE, &ns },
		{ "CLEAR_NAMESPACE", VHOST_NVME_CLEAR_NAMESPACE, &nsid },
		{ "CREATE_CQ", VHOST_NVME_CREATE_CQ, &cq },
		{ "CREATE_SQ", VHOST_NVME_CREATE_SQ, &sq },
		{ "DELETE_SQ", VHOST_NVME_DELETE_SQ, &id },
		{ "DELETE_CQ", VHOST_NVME_DELETE_CQ, &id },
		{ "SET_DBBUF", VHOST_NVME_SET_DBBUF, &dbbuf },
		{ "CLEAR_DBBUF", VHOST_NVME_CLEAR_DBBUF, NULL },
		{ "DOORBELL", VHOST_NVME_DOORBELL, &db },
		{ "GET_QUEUE_STATS", VHOST_NVME_GET_QUEUE_STATS, &st },
		{ "SET_ERROR_FD", VHOST_NVME_SET_ERROR_FD, &efd },
		{ "GET_ERROR", VHOST_NVME_GET_ERROR, &err },
		{ "START", VHOST_NVME_START, NULL },
		{ "STOP", VHOST_NVME_STOP, NULL },
		{ "RESET", VHOST_NVME_RESET, NULL },
	};

	ASSERT_OK(guest_set_config(g, 5, 0, 8));
	ASSERT_OK(guest_set_namespace(g, self->be.fd, 1, 9, 0, NULL));
	ASSERT_OK(guest_create_qpair(g, 1, 16, 16, 0, NULL));
	ASSERT_OK(guest_start(g));
	/* Valid arguments: ownership is the only thing wrong. */
	cq = cq_arg(g, 2, 16);
	sq = sq_arg(g, 2, 1, 16);
	dbbuf.dbs_gpa = guest_alloc(g, 1);
	dbbuf.eis_gpa = guest_alloc(g, 1);
	m = mem_table(1);
	ASSERT_NE(NULL, m);
	m->nregions = 1;
	m->regions[0].guest_phys_addr = g->mem_gpa;
	m->regions[0].memory_size = g->mem_size;
	m->regions[0].userspace_addr = (uintptr_t)g->mem;
	t[0].arg = m;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		for (i = 0; i < (int)ARRAY_SIZE(t); i++)
			if (xioctl(g->fd, t[i].req, t[i].arg) != -EPERM)
				_exit(1 + i);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	i = WEXITSTATUS(status);
	EXPECT_EQ(0, i) {
		TH_LOG("%s from a non-owner did not fail with EPERM",
		       i <= (int)ARRAY_SIZE(t) ? t[i - 1].name : "?");
	}
	st.qid = 1;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_GET_QUEUE_STATS, &st,
			"owner's queue after the child");
	free(m);
}

TEST_F(ctl, mem_table_unaligned)
{
	struct guest *g = &self->g;
	struct vhost_memory *m = mem_table(1);
	static const char *const what[] = {
		"guest address +2 KiB", "size +2 KiB", "user address +2 KiB",
	};
	int i;

	ASSERT_NE(NULL, m);
	m->nregions = 1;
	for (i = 0; i < 3; i++) {
		m->regions[0].guest_phys_addr = g->mem_gpa + (i == 0 ? 2048 : 0);
		m->regions[0].memory_size = g->mem_size / 2 + (i == 1 ? 2048 : 0);
		m->regions[0].userspace_addr = (uintptr_t)g->mem +
					       (i == 2 ? 2048 : 0);
		EXPECT_ERR(EINVAL, g->fd, VHOST_SET_MEM_TABLE, m, what[i]);
	}
	m->regions[0].guest_phys_addr = g->mem_gpa;
	m->regions[0].memory_size = g->mem_size;
	m->regions[0].userspace_addr = (uintptr_t)g->mem;
	m->padding = 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_SET_MEM_TABLE, m, "padding 1");
	m->padding = 0;
	EXPECT_IOCTL_OK(g->fd, VHOST_SET_MEM_TABLE, m, "valid table");
	free(m);
}

TEST_F(ctl, mem_table_overlap)
{
	struct guest *g = &self->g;
	struct vhost_memory *m = mem_table(2);
	__u64 half = g->mem_size / 2;

	ASSERT_NE(NULL, m);
	m->nregions = 2;
	m->regions[0].guest_phys_addr = g->mem_gpa;
	m->regions[0].memory_size = half;
	m->regions[0].userspace_addr = (uintptr_t)g->mem;
	m->regions[1].guest_phys_addr = g->mem_gpa + half - 4096;
	m->regions[1].memory_size = half;
	m->regions[1].userspace_addr = (uintptr_t)g->mem + half;
	EXPECT_ERR(EINVAL, g->fd, VHOST_SET_MEM_TABLE, m,
		   "guest ranges overlap by a page");
	/* Adjacent is fine. */
	m->regions[1].guest_phys_addr = g->mem_gpa + half;
	EXPECT_IOCTL_OK(g->fd, VHOST_SET_MEM_TABLE, m, "adjacent regions");
	/* A range that wraps around the 64-bit space. */
	m->nregions = 1;
	m->regions[0].guest_phys_addr = ~0ull & ~4095ull;
	m->regions[0].memory_size = 8192;
	EXPECT_ERR(EINVAL, g->fd, VHOST_SET_MEM_TABLE, m,
		   "guest range wraps");
	free(m);
}

/* 509 regions is the limit; 510 is refused (-E2BIG as vhost, or -EINVAL). */
TEST_F(ctl, mem_table_too_many)
{
	struct guest *g = &self->g;
	struct vhost_memory *m = mem_table(VHOST_NVME_MAX_MEM_REGIONS + 1);
	unsigned int i;

	ASSERT_NE(NULL, m);
	for (i = 0; i <= VHOST_NVME_MAX_MEM_REGIONS; i++) {
		m->regions[i].guest_phys_addr = g->mem_gpa + i * 4096ull;
		m->regions[i].memory_size = 4096;
		m->regions[i].userspace_addr = (uintptr_t)g->mem + i * 4096;
	}
	m->nregions = VHOST_NVME_MAX_MEM_REGIONS;
	EXPECT_IOCTL_OK(g->fd, VHOST_SET_MEM_TABLE, m, "509 regions");
	m->nregions = VHOST_NVME_MAX_MEM_REGIONS + 1;
	EXPECT_ERR2(E2BIG, EINVAL, g->fd, VHOST_SET_MEM_TABLE, m,
		    "510 regions");
	free(m);
}

TEST_F(ctl, config_invalid)
{
	static const struct {
		const char *what;
		struct vhost_nvme_config c;
	} bad[] = {
		{ "mdts 0", { .mdts = 0, .max_queues = 8 } },
		{ "mdts 9", { .mdts = 9, .max_queues = 8 } },
		{ "dstrd 5", { .mdts = 5, .dstrd = 5, .max_queues = 8 } },
		{ "max_queues 0", { .mdts = 5, .max_queues = 0 } },
		{ "max_queues 129", { .mdts = 5, .max_queues = 129 } },
		{ "reserved[0]", { .mdts = 5, .max_queues = 8,
				   .reserved = { 1 } } },
		{ "reserved[6]", { .mdts = 5, .max_queues = 8,
				   .reserved = { [6] = 1 } } },
	};
	struct vhost_nvme_config c;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		c = bad[i].c;
		EXPECT_ERR(EINVAL, self->g.fd, VHOST_NVME_SET_CONFIG, &c,
			   bad[i].what);
	}
	c = (struct vhost_nvme_config){ .mdts = 1, .dstrd = 0,
					.max_queues = 1 };
	EXPECT_IOCTL_OK(self->g.fd, VHOST_NVME_SET_CONFIG, &c, "low limits");
	c = (struct vhost_nvme_config){ .mdts = 8, .dstrd = 4,
					.max_queues = 128 };
	EXPECT_IOCTL_OK(self->g.fd, VHOST_NVME_SET_CONFIG, &c, "high limits");
}

TEST_F(ctl, config_busy_with_queues)
{
	struct guest *g = &self->g;
	struct vhost_nvme_config c = { .mdts = 5, .max_queues = 8 };
	struct guest_cq *cq;

	ASSERT_OK(guest_create_cq(g, 1, 16, 0, &cq));
	EXPECT_ERR(EBUSY, g->fd, VHOST_NVME_SET_CONFIG, &c, "with a CQ");
	ASSERT_OK(guest_delete_cq(cq));
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_CONFIG, &c, "CQ deleted");
}

TEST_F(ctl, namespace_invalid_nsid)
{
	struct guest *g = &self->g;

	EXPECT_EQ(-EINVAL, guest_set_namespace(g, self->be.fd, 0, 9, 0, NULL));
	EXPECT_EQ(-EINVAL, guest_set_namespace(g, self->be.fd, 17, 9, 0,
					       NULL));
	EXPECT_OK(guest_set_namespace(g, self->be.fd, 1, 9, 0, NULL));
	EXPECT_OK(guest_set_namespace(g, self->be.fd, 16, 9, 0, NULL));
}

TEST_F(ctl, namespace_invalid_lba_shift)
{
	struct guest *g = &self->g;

	EXPECT_EQ(-EINVAL, guest_set_namespace(g, self->be.fd, 1, 8, 0, NULL));
	EXPECT_EQ(-EINVAL, guest_set_namespace(g, self->be.fd, 1, 13, 0,
					       NULL));
	EXPECT_OK(guest_set_namespace(g, self->be.fd, 1, 9, 0, NULL));
	EXPECT_OK(guest_set_namespace(g, self->be.fd, 2, 12, 0, NULL));
}

TEST_F(ctl, namespace_flags_and_reserved)
{
	struct vhost_nvme_namespace ns;
	int i;

	for (i = 0; i < 6; i++) {
		char what[32];

		memset(&ns, 0, sizeof(ns));
		ns.fd = self->be.fd;
		ns.nsid = 1;
		ns.lba_shift = 9;
		if (i == 0)
			ns.flags = 1u << 1;
		else if (i == 1)
			ns.flags = 1u << 31;
		else
			ns.reserved[i - 2] = 1;
		if (i < 2)
			snprintf(what, sizeof(what), "flags 0x%x", ns.flags);
		else
			snprintf(what, sizeof(what), "reserved[%d]", i - 2);
		EXPECT_ERR(EINVAL, self->g.fd, VHOST_NVME_SET_NAMESPACE, &ns,
			   what);
	}
}

TEST_F(ctl, namespace_bad_fd)
{
	struct guest *g = &self->g;
	int rc, fd;

	/* Not a block device or regular file: the header says -EINVAL. */
	rc = guest_set_namespace(g, self->pipefd[0], 1, 9, 0, NULL);
	EXPECT_EQ(-EINVAL, rc) {
		TH_LOG("pipe: %s", err_name(rc));
	}
	rc = guest_set_namespace(g, self->efd, 1, 9, 0, NULL);
	EXPECT_EQ(-EINVAL, rc) {
		TH_LOG("eventfd: %s", err_name(rc));
	}
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	rc = guest_set_namespace(g, fd, 1, 9, 0, NULL);
	close(fd);
	EXPECT_EQ(-EINVAL, rc) {
		TH_LOG("/dev/null: %s", err_name(rc));
	}
	fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	rc = guest_set_namespace(g, fd, 1, 9, VHOST_NVME_NS_F_READ_ONLY,
				 NULL);
	close(fd);
	EXPECT_EQ(-EINVAL, rc) {
		TH_LOG("directory: %s", err_name(rc));
	}
	/* No file at all. */
	rc = guest_set_namespace(g, -1, 1, 9, 0, NULL);
	EXPECT_TRUE(rc == -EBADF || rc == -EINVAL) {
		TH_LOG("fd -1: %s", err_name(rc));
	}
	fd = dup(self->be.fd);
	ASSERT_LE(0, fd);
	close(fd);
	rc = guest_set_namespace(g, fd, 1, 9, 0, NULL);
	EXPECT_TRUE(rc == -EBADF || rc == -EINVAL) {
		TH_LOG("closed fd: %s", err_name(rc));
	}
}

/* Open for reading, and for writing unless READ_ONLY. */
TEST_F(ctl, namespace_access_mode)
{
	struct guest *g = &self->g;
	char path[64];
	int ro, wo, rc;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", self->be.fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	wo = open(path, O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, ro);
	ASSERT_LE(0, wo);
	rc = guest_set_namespace(g, ro, 1, 9, 0, NULL);
	EXPECT_TRUE(rc == -EBADF || rc == -EINVAL) {
		TH_LOG("read-only fd, writable namespace: %s", err_name(rc));
	}
	rc = guest_set_namespace(g, wo, 1, 9, VHOST_NVME_NS_F_READ_ONLY,
				 NULL);
	EXPECT_TRUE(rc == -EBADF || rc == -EINVAL) {
		TH_LOG("write-only fd: %s", err_name(rc));
	}
	EXPECT_OK(guest_set_namespace(g, ro, 1, 9, VHOST_NVME_NS_F_READ_ONLY,
				      NULL));
	close(ro);
	close(wo);
}

/*
 * nsze is the size in logical blocks, rounded down; an nsid can be
 * attached once (-EBUSY), cleared once (-ENOENT), then attached again.
 */
TEST_F(ctl, namespace_nsze_attach_clear)
{
	struct guest *g = &self->g;
	struct guest_backend be;
	__u64 nsze = 0;

	ASSERT_OK(guest_backend_open(&be, GUEST_BACKEND_FILE,
				     (64ull << 20) + 1000));
	EXPECT_OK(guest_set_namespace(g, be.fd, 1, 9, 0, &nsze));
	EXPECT_EQ(((64ull << 20) + 1000) >> 9, nsze);
	EXPECT_OK(guest_set_namespace(g, be.fd, 2, 12, 0, &nsze));
	EXPECT_EQ(16384, nsze);
	EXPECT_EQ(-EBUSY, guest_set_namespace(g, be.fd, 1, 9, 0, NULL));
	EXPECT_OK(guest_clear_namespace(g, 1));
	EXPECT_EQ(-ENOENT, guest_clear_namespace(g, 1));
	EXPECT_EQ(-ENOENT, guest_clear_namespace(g, 3));
	/* The kernel holds its own reference: our fd may go. */
	guest_backend_close(&be);
	EXPECT_OK(guest_set_namespace(g, self->be.fd, 1, 9, 0, &nsze));
	EXPECT_EQ(FILE_SIZE >> 9, nsze);
}

TEST_F(ctl, namespace_busy_while_started)
{
	struct guest *g = &self->g;

	ASSERT_OK(guest_set_namespace(g, self->be.fd, 1, 9, 0, NULL));
	ASSERT_OK(guest_start(g));
	EXPECT_EQ(-EBUSY, guest_set_namespace(g, self->be.fd, 2, 9, 0, NULL));
	EXPECT_EQ(-EBUSY, guest_clear_namespace(g, 1));
	ASSERT_OK(guest_stop(g));
	EXPECT_OK(guest_set_namespace(g, self->be.fd, 2, 9, 0, NULL));
	EXPECT_OK(guest_clear_namespace(g, 1));
}

TEST_F(ctl, cq_invalid_qid)
{
	struct guest *g = &self->g;
	static const __u16 qids[] = { 0, 5, VHOST_NVME_MAX_QUEUES + 1,
				      0xffff };
	struct vhost_nvme_cq a;
	char what[32];
	size_t i;

	ASSERT_OK(guest_set_config(g, 5, 0, 4));
	for (i = 0; i < ARRAY_SIZE(qids); i++) {
		a = cq_arg(g, qids[i], 16);
		snprintf(what, sizeof(what), "qid %u (max_queues 4)", qids[i]);
		EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_CREATE_CQ, &a, what);
	}
	a = cq_arg(g, 4, 16);
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_CQ, &a, "qid 4");
}

TEST_F(ctl, cq_invalid_entries)
{
	struct guest *g = &self->g;
	static const __u32 bad[] = { 0, 1, VHOST_NVME_MAX_QUEUE_ENTRIES + 1,
				     1u << 28, 0xffffffffu };
	struct vhost_nvme_cq a;
	char what[32];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		a = cq_arg(g, 1, 16);
		a.entries = bad[i];
		snprintf(what, sizeof(what), "entries %u", bad[i]);
		EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_CREATE_CQ, &a, what);
	}
	a = cq_arg(g, 1, 2);
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_CQ, &a, "entries 2");
	a = cq_arg(g, 2, VHOST_NVME_MAX_QUEUE_ENTRIES);
	ASSERT_NE(0, a.gpa);
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_CQ, &a, "entries 65536");
}

TEST_F(ctl, cq_invalid_gpa)
{
	struct guest *g = &self->g;
	__u64 end = guest_mem_end(g);
	struct {
		const char *what;
		__u64 gpa;
		__u32 entries;
	} t[] = {
		{ "gpa +8", 0, 16 },
		{ "gpa +2048", 0, 16 },
		{ "gpa at the end of memory", end, 16 },
		{ "queue across the end", end - 4096, 512 },
		{ "gpa 0", 0, 16 },
		{ "gpa wrapping", ~0ull & ~4095ull, 512 },
	};
	struct vhost_nvme_cq a;
	size_t i;

	a = cq_arg(g, 1, 16);
	t[0].gpa = a.gpa + 8;
	t[1].gpa = a.gpa + 2048;
	for (i = 0; i < ARRAY_SIZE(t); i++) {
		a.gpa = t[i].gpa;
		a.entries = t[i].entries;
		EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_CREATE_CQ, &a, t[i].what);
	}
	/* The last page exactly is inside. */
	a.gpa = end - 4096;
	a.entries = 256;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_CQ, &a, "last page");
}

TEST_F(ctl, cq_flags_and_reserved)
{
	struct guest *g = &self->g;
	struct vhost_nvme_cq a;
	char what[32];
	int i;

	a = cq_arg(g, 1, 16);
	a.flags = 1u << 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_CREATE_CQ, &a, "flags 0x2");
	a.flags = 1u << 31;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_CREATE_CQ, &a, "flags 1<<31");
	a.flags = 0;
	for (i = 0; i < 5; i++) {
		a.reserved[i] = 1;
		snprintf(what, sizeof(what), "reserved[%d]", i);
		EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_CREATE_CQ, &a, what);
		a.reserved[i] = 0;
	}
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_CQ, &a, "clean argument");
}

/* Wrong kinds of irqfd/kickfd: -EINVAL or -EBADF (the header is silent). */
TEST_F(ctl, cq_bad_fds)
{
	struct guest *g = &self->g;
	struct vhost_nvme_cq a;
	int closed;

	closed = dup(self->efd);
	ASSERT_LE(0, closed);
	close(closed);
	a = cq_arg(g, 1, 16);
	a.flags = VHOST_NVME_CQ_F_IEN;
	a.irqfd = -1;
	EXPECT_ERR2(EINVAL, EBADF, g->fd, VHOST_NVME_CREATE_CQ, &a,
		    "IEN, irqfd -1");
	a.irqfd = self->pipefd[0];
	EXPECT_ERR2(EINVAL, EBADF, g->fd, VHOST_NVME_CREATE_CQ, &a,
		    "IEN, irqfd a pipe");
	a.irqfd = closed;
	EXPECT_ERR2(EINVAL, EBADF, g->fd, VHOST_NVME_CREATE_CQ, &a,
		    "IEN, irqfd closed");
	a.irqfd = self->efd;
	a.kickfd = self->pipefd[1];
	EXPECT_ERR2(EINVAL, EBADF, g->fd, VHOST_NVME_CREATE_CQ, &a,
		    "kickfd a pipe");
	a.kickfd = closed;
	EXPECT_ERR2(EINVAL, EBADF, g->fd, VHOST_NVME_CREATE_CQ, &a,
		    "kickfd closed");
	a.kickfd = -1;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_CQ, &a, "IEN with an eventfd");
	/* Without IEN no irqfd is needed. */
	a = cq_arg(g, 2, 16);
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_CQ, &a, "no IEN, irqfd -1");
}

TEST_F(ctl, cq_duplicate)
{
	struct guest *g = &self->g;
	struct vhost_nvme_cq a = cq_arg(g, 3, 16);

	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_CQ, &a, "CQ 3");
	a = cq_arg(g, 3, 32);
	EXPECT_ERR(EEXIST, g->fd, VHOST_NVME_CREATE_CQ, &a, "CQ 3 again");
}

TEST_F(ctl, sq_invalid_args)
{
	struct guest *g = &self->g;
	struct vhost_nvme_cq cq;
	struct vhost_nvme_sq a, good;
	char what[128];
	int i;

	ASSERT_OK(guest_set_config(g, 5, 0, 4));
	cq = cq_arg(g, 1, 16);
	ASSERT_EQ(0, xioctl(g->fd, VHOST_NVME_CREATE_CQ, &cq));
	good = sq_arg(g, 1, 1, 16);

	for (i = 0; i < 16; i++) {
		a = good;
		if (i == 0)
			a.qid = 0;
		else if (i == 1)
			a.qid = 5;		/* max_queues 4 */
		else if (i == 2)
			a.entries = 0;
		else if (i == 3)
			a.entries = 1;
		else if (i == 4)
			a.entries = VHOST_NVME_MAX_QUEUE_ENTRIES + 1;
		else if (i == 5)
			a.entries = 1u << 27;	/* 8 GiB of queue */
		else if (i == 6)
			a.gpa += 64;
		else if (i == 7)
			a.gpa = guest_mem_end(g);
		else if (i == 8)
			a.gpa = guest_mem_end(g) - 4096;	/* 8 KiB */
		else if (i == 9)
			a.flags = 1;
		else if (i == 10)
			a.flags = 0x8000;
		else if (i == 11)
			a.worker = VHOST_NVME_MAX_WORKERS;
		else if (i == 12)
			a.worker = 0xffff;
		else if (i == 13)
			a.reserved[0] = 1;
		else if (i == 14)
			a.reserved[5] = 1;
		else
			a.gpa = 0;
		if (i == 8)
			a.entries = 128;
		snprintf(what, sizeof(what),
			 "case %d: qid %u entries %u gpa 0x%llx flags 0x%x worker %u",
			 i, a.qid, a.entries, (unsigned long long)a.gpa,
			 a.flags, a.worker);
		EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_CREATE_SQ, &a, what);
	}
	a = good;
	a.kickfd = self->pipefd[1];
	EXPECT_ERR2(EINVAL, EBADF, g->fd, VHOST_NVME_CREATE_SQ, &a,
		    "kickfd a pipe");
	a.kickfd = self->efd;
	a.worker = VHOST_NVME_MAX_WORKERS - 1;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_SQ, &a, "worker 15, eventfd");
	a = sq_arg(g, 4, 1, VHOST_NVME_MAX_QUEUE_ENTRIES);
	ASSERT_NE(0, a.gpa);
	a.worker = VHOST_NVME_MAX_WORKERS - 1;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_SQ, &a, "entries 65536");
}

TEST_F(ctl, sq_missing_cq)
{
	struct guest *g = &self->g;
	struct vhost_nvme_cq cq = cq_arg(g, 1, 16);
	struct vhost_nvme_sq a = sq_arg(g, 2, 2, 16);

	EXPECT_ERR(ENOENT, g->fd, VHOST_NVME_CREATE_SQ, &a, "CQ 2 missing");
	ASSERT_EQ(0, xioctl(g->fd, VHOST_NVME_CREATE_CQ, &cq));
	EXPECT_ERR(ENOENT, g->fd, VHOST_NVME_CREATE_SQ, &a,
		   "CQ 2 missing, CQ 1 there");
	/* SQ and CQ ids are separate: SQ 2 on CQ 1 is fine. */
	a.cqid = 1;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_SQ, &a, "SQ 2 on CQ 1");
}

TEST_F(ctl, sq_duplicate)
{
	struct guest *g = &self->g;
	struct vhost_nvme_cq cq = cq_arg(g, 1, 16);
	struct vhost_nvme_sq a = sq_arg(g, 1, 1, 16);

	ASSERT_EQ(0, xioctl(g->fd, VHOST_NVME_CREATE_CQ, &cq));
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_SQ, &a, "SQ 1");
	a = sq_arg(g, 1, 1, 16);
	EXPECT_ERR(EEXIST, g->fd, VHOST_NVME_CREATE_SQ, &a, "SQ 1 again");
}

/* All SQs of a CQ are served by one worker. */
TEST_F(ctl, sq_worker_mismatch)
{
	struct guest *g = &self->g;
	struct vhost_nvme_cq cq1 = cq_arg(g, 1, 16), cq2 = cq_arg(g, 2, 16);
	struct vhost_nvme_sq a;

	ASSERT_EQ(0, xioctl(g->fd, VHOST_NVME_CREATE_CQ, &cq1));
	ASSERT_EQ(0, xioctl(g->fd, VHOST_NVME_CREATE_CQ, &cq2));
	a = sq_arg(g, 1, 1, 16);
	a.worker = 3;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_SQ, &a, "SQ 1 worker 3");
	a = sq_arg(g, 2, 1, 16);
	a.worker = 4;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_CREATE_SQ, &a,
		   "SQ 2 on CQ 1 with worker 4");
	a.worker = 3;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_SQ, &a, "SQ 2 worker 3");
	a = sq_arg(g, 3, 2, 16);
	a.worker = 4;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_SQ, &a,
			"SQ 3 on CQ 2 worker 4");
}

TEST_F(ctl, delete_errors)
{
	struct guest *g = &self->g;
	struct vhost_nvme_cq cq = cq_arg(g, 1, 16);
	struct vhost_nvme_sq sq = sq_arg(g, 1, 1, 16);
	struct vhost_nvme_queue_id id = { .qid = 1 };

	ASSERT_EQ(0, xioctl(g->fd, VHOST_NVME_CREATE_CQ, &cq));
	ASSERT_EQ(0, xioctl(g->fd, VHOST_NVME_CREATE_SQ, &sq));
	EXPECT_ERR(EBUSY, g->fd, VHOST_NVME_DELETE_CQ, &id, "CQ 1 with SQ 1");
	id.reserved[2] = 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_DELETE_SQ, &id,
		   "DELETE_SQ reserved[2]");
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_DELETE_CQ, &id,
		   "DELETE_CQ reserved[2]");
	id.reserved[2] = 0;
	id.qid = 5;
	EXPECT_ERR(ENOENT, g->fd, VHOST_NVME_DELETE_SQ, &id, "SQ 5");
	EXPECT_ERR(ENOENT, g->fd, VHOST_NVME_DELETE_CQ, &id, "CQ 5");
	id.qid = 1;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_DELETE_SQ, &id, "SQ 1");
	EXPECT_ERR(ENOENT, g->fd, VHOST_NVME_DELETE_SQ, &id, "SQ 1 again");
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_DELETE_CQ, &id, "CQ 1");
	EXPECT_ERR(ENOENT, g->fd, VHOST_NVME_DELETE_CQ, &id, "CQ 1 again");
	/* The ids are free again. */
	cq = cq_arg(g, 1, 16);
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_CQ, &cq, "CQ 1 re-created");
}

TEST_F(ctl, dbbuf_invalid)
{
	struct guest *g = &self->g;
	__u64 p1 = guest_alloc(g, 1), p2 = guest_alloc(g, 1);
	__u64 end = guest_mem_end(g);
	struct vhost_nvme_dbbuf d;
	struct vhost_nvme_config c = { .mdts = 5, .max_queues = 16 };
	struct {
		const char *what;
		__u64 dbs, eis;
	} t[] = {
		{ "dbs +8", p1 + 8, p2 },
		{ "eis +2048", p1, p2 + 2048 },
		{ "same page", p1, p1 },
		{ "dbs outside memory", end, p2 },
		{ "eis at gpa 0", p1, 0 },
		{ "eis wrapping", p1, ~0ull & ~4095ull },
	};
	size_t i;

	ASSERT_EQ(0, xioctl(g->fd, VHOST_NVME_SET_CONFIG, &c));
	for (i = 0; i < ARRAY_SIZE(t); i++) {
		d = (struct vhost_nvme_dbbuf){ .dbs_gpa = t[i].dbs,
					       .eis_gpa = t[i].eis };
		EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_DBBUF, &d, t[i].what);
	}
	d = (struct vhost_nvme_dbbuf){ .dbs_gpa = p1, .eis_gpa = p2 };
	d.reserved[1] = 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_DBBUF, &d, "reserved[1]");
	d.reserved[1] = 0;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_DBBUF, &d, "valid pages");
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CLEAR_DBBUF, NULL, "CLEAR_DBBUF");

	/*
	 * Stride 16 and 128 queues: the entries run 16 KiB past the last
	 * page of memory - they do not fit.
	 */
	c = (struct vhost_nvme_config){ .mdts = 5, .dstrd = 4,
					.max_queues = 128 };
	ASSERT_EQ(0, xioctl(g->fd, VHOST_NVME_SET_CONFIG, &c));
	d = (struct vhost_nvme_dbbuf){ .dbs_gpa = end - 4096, .eis_gpa = p2 };
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_SET_DBBUF, &d,
		   "dstrd 4, 128 queues, dbs in the last page");
}

TEST_F(ctl, doorbell_invalid)
{
	struct guest *g = &self->g;
	struct vhost_nvme_doorbell d = { .qid = 3 };

	ASSERT_OK(guest_create_qpair(g, 1, 16, 16, 0, NULL));
	EXPECT_ERR(ENOENT, g->fd, VHOST_NVME_DOORBELL, &d, "SQ 3");
	d.cq = 1;
	EXPECT_ERR(ENOENT, g->fd, VHOST_NVME_DOORBELL, &d, "CQ 3");
	d.qid = 1;
	d.cq = 2;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_DOORBELL, &d, "cq 2");
	d.cq = 0;
	d.reserved0 = 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_DOORBELL, &d, "reserved0");
	d.reserved0 = 0;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_DOORBELL, &d, "SQ 1 tail 0");
}

TEST_F(ctl, error_fd_and_get_error)
{
	struct guest *g = &self->g;
	struct vhost_nvme_error e;
	__s32 fd;

	EXPECT_ERR(EAGAIN, g->fd, VHOST_NVME_GET_ERROR, &e, "no error yet");
	fd = self->pipefd[0];
	EXPECT_ERR2(EINVAL, EBADF, g->fd, VHOST_NVME_SET_ERROR_FD, &fd,
		    "a pipe");
	fd = -2;
	EXPECT_ERR2(EINVAL, EBADF, g->fd, VHOST_NVME_SET_ERROR_FD, &fd, "-2");
	fd = self->efd;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_ERROR_FD, &fd, "an eventfd");
	fd = -1;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_ERROR_FD, &fd, "-1 clears");
	EXPECT_ERR(EAGAIN, g->fd, VHOST_NVME_GET_ERROR, &e, "still none");
}

TEST_F(ctl, stats_args)
{
	struct guest *g = &self->g;
	struct vhost_nvme_queue_stats st;

	ASSERT_OK(guest_create_qpair(g, 1, 16, 16, 0, NULL));
	memset(&st, 0xff, sizeof(st));
	st.qid = 1;
	st.reserved0[0] = st.reserved0[1] = st.reserved0[2] = 0;
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_GET_QUEUE_STATS, &st, "queue 1");
	/* A new queue counted nothing, and the output is fully written. */
	EXPECT_EQ(0, st.commands);
	EXPECT_EQ(0, st.errors);
	EXPECT_EQ(0, st.kicks);
	EXPECT_EQ(0, st.sdb_reads);
	EXPECT_EQ(0, st.interrupts);
	EXPECT_EQ(0, st.cq_full);
	EXPECT_EQ(0, st.flushes);
	EXPECT_EQ(0, st.dsms);
	EXPECT_EQ(0, st.polled);
	EXPECT_EQ(0, st.bounce_waits);
	memset(&st, 0, sizeof(st));
	st.qid = 7;
	EXPECT_ERR(ENOENT, g->fd, VHOST_NVME_GET_QUEUE_STATS, &st, "queue 7");
	st.qid = 1;
	st.reserved0[1] = 1;
	EXPECT_ERR(EINVAL, g->fd, VHOST_NVME_GET_QUEUE_STATS, &st,
		   "reserved0[1]");
}

TEST_F(ctl, bad_pointers_efault)
{
	static const struct {
		const char *name;
		unsigned long req;
	} t[] = {
		{ "VHOST_SET_MEM_TABLE", VHOST_SET_MEM_TABLE },
		{ "SET_CONFIG", VHOST_NVME_SET_CONFIG },
		{ "SET_NAMESPACE", VHOST_NVME_SET_NAMESPACE },
		{ "CLEAR_NAMESPACE", VHOST_NVME_CLEAR_NAMESPACE },
		{ "CREATE_CQ", VHOST_NVME_CREATE_CQ },
		{ "CREATE_SQ", VHOST_NVME_CREATE_SQ },
		{ "DELETE_SQ", VHOST_NVME_DELETE_SQ },
		{ "DELETE_CQ", VHOST_NVME_DELETE_CQ },
		{ "SET_DBBUF", VHOST_NVME_SET_DBBUF },
		{ "DOORBELL", VHOST_NVME_DOORBELL },
		{ "GET_QUEUE_STATS", VHOST_NVME_GET_QUEUE_STATS },
		{ "SET_ERROR_FD", VHOST_NVME_SET_ERROR_FD },
		{ "SET_POLL", VHOST_NVME_SET_POLL },
		{ "SET_WORKER_AFFINITY", VHOST_NVME_SET_WORKER_AFFINITY },
		{ "SET_COALESCING", VHOST_NVME_SET_COALESCING },
		{ "SET_VECTOR_CONFIG", VHOST_NVME_SET_VECTOR_CONFIG },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(t); i++)
		EXPECT_ERR(EFAULT, self->g.fd, t[i].req, (void *)8, t[i].name);
}

/*
 * RESET stops the device, deletes every queue (their ids are free) and
 * clears the doorbell buffer; the namespaces stay, and as the device is
 * stopped they may be changed.
 */
TEST_F(ctl, reset_clears_queues)
{
	struct guest *g = &self->g;
	struct vhost_nvme_queue_id id = { .qid = 1 };
	struct vhost_nvme_config c = { .mdts = 6, .max_queues = 8 };
	struct vhost_nvme_cq cq;

	ASSERT_OK(guest_set_namespace(g, self->be.fd, 1, 9, 0, NULL));
	ASSERT_OK(guest_start(g));
	ASSERT_OK(guest_set_dbbuf(g));
	ASSERT_OK(guest_create_qpair(g, 1, 16, 16, 0, NULL));
	ASSERT_OK(guest_create_qpair(g, 2, 16, 16, 1, NULL));
	ASSERT_OK(guest_reset(g));
	EXPECT_ERR(ENOENT, g->fd, VHOST_NVME_DELETE_SQ, &id, "SQ 1");
	EXPECT_ERR(ENOENT, g->fd, VHOST_NVME_DELETE_CQ, &id, "CQ 1");
	id.qid = 2;
	EXPECT_ERR(ENOENT, g->fd, VHOST_NVME_DELETE_SQ, &id, "SQ 2");
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_SET_CONFIG, &c, "config");
	cq = cq_arg(g, 1, 16);
	EXPECT_IOCTL_OK(g->fd, VHOST_NVME_CREATE_CQ, &cq, "CQ 1 again");
	EXPECT_EQ(-EBUSY, guest_set_namespace(g, self->be.fd, 1, 9, 0, NULL));
	EXPECT_OK(guest_clear_namespace(g, 1));
}

TEST_HARNESS_MAIN
