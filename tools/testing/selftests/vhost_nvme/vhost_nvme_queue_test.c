// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme queues: doorbells (shadow with EventIdx, and forwarded),
 * completion queue wrap, phase and back-pressure, several SQs on one CQ,
 * several workers, start/stop gating, invalid doorbell values, statistics,
 * and teardown (delete, stop, reset, close) with I/O in flight.
 *
 * Most tests run twice: with shadow doorbells (the guest writes tails and
 * heads to memory, kicks only when EventIdx asks) and forwarded (the VMM
 * passes every doorbell value with VHOST_NVME_DOORBELL). Commands are small
 * reads from a file backend: what matters here is that each completes, once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "guest.h"
#include "kselftest_harness.h"

#define FILE_SIZE	(16ull << 20)
#define MEM_SIZE	(32ull << 20)
#define LBA		512

/* Loop counts, sized for a slow (TCG) VM. */
#define STRESS_SINGLE	20000
#define STRESS_BURSTS	2000
#define STRESS_PIPELINE	10000
#define DELETE_ITERS	150	/* per doorbell mode */
#define STOP_ITERS	100	/* per doorbell mode */
#define RESET_ITERS	50	/* per doorbell mode */
#define CLOSE_ITERS	400

struct qctx {
	struct guest g;
	struct guest_backend be;
	struct guest_buf page;		/* target of every small read */
	bool shadow;
};

static void qsetup(struct __test_metadata *_metadata, struct qctx *c,
		   bool shadow)
{
	ASSERT_OK(guest_backend_open(&c->be, GUEST_BACKEND_FILE, FILE_SIZE));
	ASSERT_OK(guest_setup(&c->g, MEM_SIZE));
	ASSERT_OK(guest_set_config(&c->g, 5, 0, 16));
	ASSERT_OK(guest_set_namespace(&c->g, c->be.fd, 1, 9, 0, NULL));
	ASSERT_OK(guest_start(&c->g));
	c->shadow = shadow;
	if (shadow)
		ASSERT_OK(guest_set_dbbuf(&c->g));
	ASSERT_OK(guest_buf_alloc(&c->g, &c->page, 0, 4096, false));
}

static void qteardown(struct qctx *c)
{
	guest_close(&c->g);
	guest_backend_close(&c->be);
}

/* A one-block read into the shared page. */
static void read_cmd(struct qctx *c, struct nvme_sqe *cmd, __u64 slba)
{
	nvme_sqe_rw(cmd, NVME_CMD_READ, 1, slba % (FILE_SIZE / LBA), 1, 0);
	nvme_sqe_set_prp(cmd, c->page.page[0], 0);
}

/* Queue @n reads with command ids @cid..@cid+n-1, without ringing. */
static int push_reads(struct qctx *c, struct guest_sq *sq, int n, __u16 cid)
{
	struct nvme_sqe cmd;
	int i, rc;

	for (i = 0; i < n; i++) {
		read_cmd(c, &cmd, cid + i);
		cmd.cid = htole16((__u16)(cid + i));
		rc = guest_sq_push(sq, &cmd);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * @n completions that must be successful reads from SQ @sqid with ids in
 * [@cid, @cid + @count), each at most once.
 */
static void check_cpls(struct __test_metadata *_metadata,
		       const struct guest_cpl *cpl, int n, __u16 sqid,
		       __u16 cid, int count)
{
	bool seen[256] = { false };
	int i;

	ASSERT_GE(256, count);
	for (i = 0; i < n; i++) {
		int k = (__u16)(cpl[i].cid - cid);

		EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &cpl[i]);
		EXPECT_EQ(sqid, cpl[i].sq_id);
		EXPECT_TRUE(k < count && !seen[k]) {
			TH_LOG("completion %d: cid %u is not one of %u..%u or came twice",
			       i, cpl[i].cid, cid, cid + count - 1);
		}
		if (k < count)
			seen[k] = true;
	}
}

/* Wait for @n completions; on a shortfall log the queue state. */
#define ASSERT_WAIT(sq, cq, cpl, n) do { \
	int __n = guest_cq_wait(cq, cpl, n, GUEST_TIMEOUT_MS); \
	char __st[512] = ""; \
	\
	if (__n != (n)) \
		guest_sq_describe(sq, __st, sizeof(__st)); \
	ASSERT_EQ((n), __n) { \
		TH_LOG("%s", __n < 0 ? guest_strerror(__n) : __st); \
	} \
} while (0)

static void expect_quiet(struct __test_metadata *_metadata,
			 struct guest_cq *cq, int n, unsigned int ms,
			 const char *why)
{
	guest_msleep(ms);
	EXPECT_EQ(n, guest_cq_peek(cq)) {
		TH_LOG("%s: %d completions visible after %u ms, want %d",
		       why, guest_cq_peek(cq), ms, n);
	}
}

static void expect_error(struct __test_metadata *_metadata, struct guest *g,
			 __u16 qid, __u8 cq, __u32 value)
{
	struct vhost_nvme_error err;
	int rc;

	rc = guest_wait_fd(g->errfd, GUEST_TIMEOUT_MS);
	EXPECT_EQ(1, rc) {
		TH_LOG("error eventfd not signalled: %s",
		       rc ? guest_strerror(rc) : "timeout");
	}
	rc = guest_get_error(g, &err);
	ASSERT_EQ(0, rc) {
		TH_LOG("VHOST_NVME_GET_ERROR: %s", guest_strerror(rc));
	}
	EXPECT_EQ(qid, err.qid);
	EXPECT_EQ(cq, err.cq);
	EXPECT_EQ(VHOST_NVME_ERR_INVALID_DB_VALUE, err.type);
	EXPECT_EQ(value, err.value);
	EXPECT_EQ(0, err.gpa);
	/* Read once: the next one is -EAGAIN. */
	EXPECT_EQ(-EAGAIN, guest_get_error(g, &err));
}

FIXTURE(q) {
	struct qctx c;
};

FIXTURE_VARIANT(q) {
	bool shadow;
};

FIXTURE_VARIANT_ADD(q, shadow) {
	.shadow = true,
};

FIXTURE_VARIANT_ADD(q, forwarded) {
	.shadow = false,
};

FIXTURE_SETUP(q)
{
	qsetup(_metadata, &self->c, variant->shadow);
}

FIXTURE_TEARDOWN(q)
{
	qteardown(&self->c);
}

/* Writes and reads through the doorbell mode under test move the data. */
TEST_F(q, data_path)
{
	struct qctx *c = &self->c;
	unsigned char *want, *got;
	struct guest_cpl cpl;
	struct guest_sq *sq;
	struct nvme_sqe cmd;
	struct guest_buf b;
	int i;

	want = malloc(8192);
	got = malloc(8192);
	ASSERT_TRUE(want && got);
	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 16, 0, &sq));
	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 8192, true));
	for (i = 0; i < 64; i++) {
		guest_pattern(want, 8192, i);
		guest_buf_write(&c->g, &b, want);
		nvme_sqe_rw(&cmd, NVME_CMD_WRITE, 1, i * 16, 16, 0);
		ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
		ASSERT_EXEC(sq, &cmd, &cpl);
		EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &cpl);
		ASSERT_OK(guest_backend_pread(&c->be, got, 8192, i * 8192));
		EXPECT_EQ(-1, guest_memdiff(want, got, 8192)) {
			TH_LOG("write %d: backend differs at byte %ld", i,
			       guest_memdiff(want, got, 8192));
		}
		guest_buf_set_pages(&c->g, &b, 0);
		cmd.opcode = NVME_CMD_READ;
		ASSERT_EXEC(sq, &cmd, &cpl);
		EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &cpl);
		guest_buf_read(&c->g, &b, got);
		EXPECT_EQ(-1, guest_memdiff(want, got, 8192)) {
			TH_LOG("read %d: buffer differs at byte %ld", i,
			       guest_memdiff(want, got, 8192));
		}
	}
	free(want);
	free(got);
}

/*
 * A 4-entry CQ: 60 completions wrap it exactly 15 times, the phase flipping
 * each time. Groups of 1..5 commands: groups above 3 only complete because
 * the guest returns CQ slots while waiting.
 */
TEST_F(q, cq_wrap_phase)
{
	struct qctx *c = &self->c;
	struct guest_cpl cpl[5];
	struct guest_cq *cq;
	struct guest_sq *sq;
	int done = 0, n;

	ASSERT_OK(guest_create_cq(&c->g, 1, 4, GUEST_CQ_IEN, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 1, cq, 8, 0, 0, &sq));
	for (n = 1; done < 60; n = n % 5 + 1) {
		if (n > 60 - done)
			n = 60 - done;
		ASSERT_OK(push_reads(c, sq, n, done));
		ASSERT_OK(guest_sq_ring(sq));
		ASSERT_WAIT(sq, cq, cpl, n);
		check_cpls(_metadata, cpl, n, 1, done, n);
		done += n;
	}
	EXPECT_EQ(15, cq->wraps);
	EXPECT_EQ(0, cq->head);
	/* An odd number of wraps: the next pass is written with phase 0. */
	EXPECT_EQ(0, cq->phase);
}

/*
 * Sizes that are not powers of two catch index arithmetic done with masks;
 * 2 is the smallest queue: one usable entry.
 */
TEST_F(q, odd_queue_sizes)
{
	struct qctx *c = &self->c;
	struct guest_cpl cpl[4];
	struct guest_cq *cq;
	struct guest_sq *sq;
	int i;

	ASSERT_OK(guest_create_cq(&c->g, 1, 5, GUEST_CQ_IEN, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 1, cq, 3, 0, 0, &sq));
	for (i = 0; i < 40; i += 2) {
		ASSERT_OK(push_reads(c, sq, 2, i));
		ASSERT_OK(guest_sq_ring(sq));
		ASSERT_WAIT(sq, cq, cpl, 2);
		check_cpls(_metadata, cpl, 2, 1, i, 2);
	}
	EXPECT_EQ(8, cq->wraps);

	ASSERT_OK(guest_create_cq(&c->g, 2, 2, GUEST_CQ_IEN, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 2, cq, 2, 1, 0, &sq));
	for (i = 0; i < 20; i++) {
		ASSERT_OK(push_reads(c, sq, 1, i));
		ASSERT_OK(guest_sq_ring(sq));
		ASSERT_WAIT(sq, cq, cpl, 1);
		check_cpls(_metadata, cpl, 1, 2, i, 1);
		EXPECT_EQ(sq->tail, cpl[0].sq_head);
	}
	EXPECT_EQ(10, cq->wraps);
}

/*
 * Eight commands for a 4-entry CQ: exactly three completions appear (the
 * fourth slot would make the full CQ look empty), the SQ counts a CQ-full
 * pause, and once the guest consumes and moves the head the other five
 * follow. The head reaches the device by the doorbell mode under test, or
 * by the CQ's kick eventfd (@cq_flags GUEST_CQ_KICKFD).
 */
static void backpressure(struct __test_metadata *_metadata, struct qctx *c,
			 unsigned int cq_flags)
{
	struct vhost_nvme_queue_stats st;
	struct guest_cpl cpl[8];
	struct guest_cq *cq;
	struct guest_sq *sq;
	int i;

	ASSERT_OK(guest_create_cq(&c->g, 1, 4, GUEST_CQ_IEN | cq_flags, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 1, cq, 16, 0, 0, &sq));
	ASSERT_OK(push_reads(c, sq, 8, 0x10));
	ASSERT_OK(guest_sq_ring(sq));
	for (i = 0; i < GUEST_TIMEOUT_MS / 50 && guest_cq_peek(cq) < 3; i++)
		guest_wait_fd(cq->irqfd, 50);
	ASSERT_EQ(3, guest_cq_peek(cq));
	expect_quiet(_metadata, cq, 3, 300, "CQ full, head not moved");
	ASSERT_OK(guest_get_stats(&c->g, 1, &st));
	EXPECT_LT(0, st.cq_full);
	EXPECT_GE(8, st.commands);

	ASSERT_WAIT(sq, cq, cpl, 8);
	check_cpls(_metadata, cpl, 8, 1, 0x10, 8);
	TH_LOG("cq doorbells: %lu of %lu head updates; stats: commands %llu cq_full %llu",
	       cq->kicks, cq->rings, (unsigned long long)st.commands,
	       (unsigned long long)st.cq_full);
}

TEST_F(q, cq_full_backpressure)
{
	backpressure(_metadata, &self->c, 0);
}

/*
 * SQs 1-3 post to CQ 1, all on worker 2. Interleaved submissions: every
 * completion names its SQ and that SQ's head, past its own command.
 */
TEST_F(q, shared_cq_multi_sq)
{
	struct qctx *c = &self->c;
	struct guest_sq *sq[3];
	struct guest_cpl cpl[30];
	struct guest_cq *cq;
	struct nvme_sqe cmd;
	int i, q, k;

	ASSERT_OK(guest_create_cq(&c->g, 1, 64, GUEST_CQ_IEN, &cq));
	for (q = 0; q < 3; q++)
		ASSERT_OK(guest_create_sq(&c->g, q + 1, cq, 16, 2, 0, &sq[q]));
	for (i = 0; i < 30; i++) {
		read_cmd(c, &cmd, i);
		/* cid: SQ in the high byte, its command index in the low. */
		cmd.cid = htole16((i % 3 + 1) << 8 | i / 3);
		ASSERT_OK(guest_sq_push(sq[i % 3], &cmd));
		if (i % 4 == 3)
			ASSERT_OK(guest_sq_ring(sq[i % 3]));
	}
	for (q = 0; q < 3; q++)
		ASSERT_OK(guest_sq_ring(sq[q]));
	ASSERT_WAIT(sq[0], cq, cpl, 30);
	for (i = 0; i < 30; i++) {
		q = cpl[i].cid >> 8;
		k = cpl[i].cid & 0xff;
		EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &cpl[i]);
		EXPECT_EQ(q, cpl[i].sq_id);
		EXPECT_TRUE(q >= 1 && q <= 3 && k < 10) {
			TH_LOG("unexpected cid 0x%04x", cpl[i].cid);
		}
		EXPECT_TRUE(cpl[i].sq_head >= k + 1 && cpl[i].sq_head <= 10) {
			TH_LOG("sq %d command %d: sq_head %u, want %d..10", q, k,
			       cpl[i].sq_head, k + 1);
		}
	}
}

struct io_thread {
	struct qctx *c;
	struct guest_sq *sq;
	struct guest_buf buf;
	__u64 slba;
	int iterations;
	char err[640];
};

/*
 * One queue pair per thread, write then read back 8 KiB each time. No
 * harness asserts off the main thread: failures are reported in @err.
 */
static void *io_thread_fn(void *arg)
{
	struct io_thread *t = arg;
	unsigned char want[8192], got[8192];
	struct guest_cpl cpl;
	struct nvme_sqe cmd;
	char st[512];
	int i, rc = 0;

	for (i = 0; i < t->iterations; i++) {
		__u64 slba = t->slba + (i % 64) * 16;

		guest_pattern(want, sizeof(want), t->slba * 1000 + i);
		guest_buf_write(&t->c->g, &t->buf, want);
		nvme_sqe_rw(&cmd, NVME_CMD_WRITE, 1, slba, 16, 0);
		/* Two pages: no PRP list, so nothing to allocate here. */
		guest_prp_build(&t->c->g, &t->buf, 0, &cmd);
		rc = guest_exec(t->sq, &cmd, &cpl);
		if (rc || cpl.status >> 1)
			break;
		guest_buf_set_pages(&t->c->g, &t->buf, 0);
		cmd.opcode = NVME_CMD_READ;
		rc = guest_exec(t->sq, &cmd, &cpl);
		if (rc || cpl.status >> 1)
			break;
		guest_buf_read(&t->c->g, &t->buf, got);
		if (memcmp(want, got, sizeof(got))) {
			snprintf(t->err, sizeof(t->err),
				 "sq %u iteration %d: read back differs at byte %ld",
				 t->sq->qid, i, guest_memdiff(want, got, 8192));
			return NULL;
		}
	}
	if (i == t->iterations)
		return NULL;
	guest_sq_describe(t->sq, st, sizeof(st));
	snprintf(t->err, sizeof(t->err),
		 "iteration %d %s: %s, status 0x%x; %s", i,
		 cmd.opcode == NVME_CMD_READ ? "read" : "write",
		 guest_strerror(rc), rc ? 0 : cpl.status, st);
	return NULL;
}

/* One read that must succeed. */
static void one_read(struct __test_metadata *_metadata, struct qctx *c,
		     struct guest_sq *sq)
{
	struct guest_cpl cpl;
	struct nvme_sqe cmd;

	read_cmd(c, &cmd, 0);
	ASSERT_EXEC(sq, &cmd, &cpl);
	EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &cpl);
}

/*
 * Four queue pairs on workers 0-3, driven from four threads at once. The
 * workers are threads of the owner, created on first use: once each has
 * served a command, workers 1-3 have added three threads; another SQ on
 * worker 1 adds none.
 */
TEST_F_TIMEOUT(q, workers_parallel, 120)
{
	struct qctx *c = &self->c;
	struct io_thread t[4];
	struct guest_sq *sq5;
	pthread_t tid[4];
	struct guest_cq *cq;
	int i, n0, n1;

	memset(t, 0, sizeof(t));
	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 16, 0, &t[0].sq));
	one_read(_metadata, c, t[0].sq);
	n0 = guest_thread_count();
	for (i = 1; i < 4; i++) {
		ASSERT_OK(guest_create_qpair(&c->g, i + 1, 16, 16, i,
					     &t[i].sq));
		one_read(_metadata, c, t[i].sq);
	}
	n1 = guest_thread_count();
	EXPECT_EQ(n0 + 3, n1) {
		TH_LOG("threads: %d with worker 0 in use, %d with workers 0-3",
		       n0, n1);
	}
	ASSERT_OK(guest_create_cq(&c->g, 5, 16, GUEST_CQ_IEN, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 5, cq, 16, 1, 0, &sq5));
	one_read(_metadata, c, sq5);
	EXPECT_EQ(n1, guest_thread_count());

	for (i = 0; i < 4; i++) {
		t[i].c = c;
		t[i].slba = 4096 + i * 2048;
		t[i].iterations = 100;
		ASSERT_OK(guest_buf_alloc(&c->g, &t[i].buf, 0, 8192, true));
	}
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&tid[i], NULL, io_thread_fn, &t[i]));
	for (i = 0; i < 4; i++)
		pthread_join(tid[i], NULL);
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(0, t[i].err[0]) {
			TH_LOG("worker %d: %s", i, t[i].err);
		}
	}
}

/* Nothing is fetched before START, and START finds what was queued. */
TEST_F(q, start_gates_fetching)
{
	struct vhost_nvme_queue_stats st;
	struct qctx *c = &self->c;
	struct guest_cpl cpl[2];
	struct guest_sq *sq;

	ASSERT_OK(guest_stop(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 16, 0, &sq));
	ASSERT_OK(push_reads(c, sq, 2, 0));
	EXPECT_OK(guest_sq_ring(sq));
	expect_quiet(_metadata, sq->cq, 0, 300, "before START");
	ASSERT_OK(guest_get_stats(&c->g, 1, &st));
	EXPECT_EQ(0, st.commands);
	ASSERT_OK(guest_start(&c->g));
	ASSERT_WAIT(sq, sq->cq, cpl, 2);
	check_cpls(_metadata, cpl, 2, 1, 0, 2);
}

/* STOP keeps the queues; what is queued meanwhile runs after START. */
TEST_F(q, stop_resume)
{
	struct qctx *c = &self->c;
	struct guest_cpl cpl[3];
	struct guest_sq *sq;

	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 16, 0, &sq));
	ASSERT_OK(push_reads(c, sq, 1, 0));
	ASSERT_OK(guest_sq_ring(sq));
	ASSERT_WAIT(sq, sq->cq, cpl, 1);
	ASSERT_OK(guest_stop(&c->g));
	ASSERT_OK(push_reads(c, sq, 3, 1));
	EXPECT_OK(guest_sq_ring(sq));
	expect_quiet(_metadata, sq->cq, 0, 300, "while stopped");
	ASSERT_OK(guest_start(&c->g));
	ASSERT_WAIT(sq, sq->cq, cpl, 3);
	check_cpls(_metadata, cpl, 3, 1, 1, 3);
}

/*
 * An SQ tail equal to the queue size: the queue stops and the error is
 * reported once, through the error eventfd. A valid tail afterwards does
 * not restart it; deleting it works.
 */
TEST_F(q, invalid_sq_doorbell)
{
	struct vhost_nvme_queue_stats st;
	struct qctx *c = &self->c;
	struct guest_cpl cpl;
	struct guest_sq *sq;
	int rc;

	ASSERT_OK(guest_set_error_fd(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 16, 0, &sq));
	ASSERT_OK(push_reads(c, sq, 1, 0));
	ASSERT_OK(guest_sq_ring(sq));
	ASSERT_WAIT(sq, sq->cq, &cpl, 1);

	/*
	 * Forwarded, the header does not say whether the ioctl itself fails
	 * as well: accept 0 or -EINVAL, the error record is what counts.
	 */
	rc = guest_sq_doorbell(sq, 16, true);
	EXPECT_TRUE(rc == 0 || rc == -EINVAL) {
		TH_LOG("doorbell 16: %s", guest_strerror(rc));
	}
	expect_error(_metadata, &c->g, 1, 0, 16);

	ASSERT_OK(push_reads(c, sq, 1, 1));
	guest_sq_doorbell(sq, sq->tail, true);
	expect_quiet(_metadata, sq->cq, 0, 300, "stopped SQ");
	ASSERT_OK(guest_get_stats(&c->g, 1, &st));
	EXPECT_EQ(1, st.commands);
	EXPECT_OK(guest_delete_sq(sq));
	EXPECT_OK(guest_delete_cq(c->g.cq[1]));
}

/*
 * A CQ head equal to the queue size (8), then eight more commands - one
 * more than fits, so the device must look at the head. The CQ stops: once
 * the error is reported nothing more is posted, and forwarded (the value
 * checked in the ioctl) nothing at all; a shadow head may be read only
 * when the CQ fills. Deleting its SQ (commands in flight) and it works.
 */
TEST_F(q, invalid_cq_doorbell)
{
	struct qctx *c = &self->c;
	struct guest_cpl cpl;
	struct guest_sq *sq;
	struct guest_cq *cq;
	int rc, n;

	ASSERT_OK(guest_set_error_fd(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 8, 0, &sq));
	cq = sq->cq;
	ASSERT_OK(push_reads(c, sq, 1, 0));
	ASSERT_OK(guest_sq_ring(sq));
	ASSERT_WAIT(sq, cq, &cpl, 1);

	rc = guest_cq_doorbell(cq, 8, !c->shadow);
	EXPECT_TRUE(rc == 0 || rc == -EINVAL) {
		TH_LOG("CQ doorbell 8: %s", guest_strerror(rc));
	}
	ASSERT_OK(push_reads(c, sq, 8, 1));
	ASSERT_OK(guest_sq_ring(sq));
	expect_error(_metadata, &c->g, 1, 1, 8);
	n = guest_cq_peek(cq);
	if (c->shadow) {
		EXPECT_GE(7, n);
	} else {
		EXPECT_EQ(0, n);
	}
	expect_quiet(_metadata, cq, n, 300, "stopped CQ");
	EXPECT_OK(guest_delete_sq(sq));
	EXPECT_OK(guest_delete_cq(cq));
}

/* The counters follow what the guest did. */
TEST_F(q, stats)
{
	struct vhost_nvme_queue_stats st;
	struct qctx *c = &self->c;
	struct guest_cpl cpl;
	struct nvme_sqe cmd;
	struct guest_sq *sq;
	struct guest_cq *cq;
	int i;

	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 16, 0, &sq));
	cq = sq->cq;
	for (i = 0; i < 22; i++) {
		read_cmd(c, &cmd, i);
		/* Two commands fail: errors counts them. */
		if (i == 5 || i == 17)
			cmd.opcode = 0x7f;
		ASSERT_EXEC(sq, &cmd, &cpl);
	}
	/* Flush and Dataset Management have counters of their own. */
	nvme_sqe_flush(&cmd, 1);
	ASSERT_EXEC(sq, &cmd, &cpl);
	EXPECT_EQ(0, cpl.status >> 1);
	for (i = 0; i < 2; i++) {
		nvme_sqe_dsm(&cmd, 1, 1, 0);	/* no attribute: advisory */
		nvme_sqe_set_prp(&cmd, c->page.page[0], 0);
		ASSERT_EXEC(sq, &cmd, &cpl);
		EXPECT_EQ(0, cpl.status >> 1);
	}
	ASSERT_OK(guest_get_stats(&c->g, 1, &st));
	EXPECT_EQ(25, st.commands);
	EXPECT_EQ(2, st.errors);
	EXPECT_EQ(1, st.flushes);
	EXPECT_EQ(2, st.dsms);
	/* Coalesced kicks are one wakeup; never more wakeups than kicks. */
	EXPECT_LE(1, st.kicks);
	EXPECT_GE(sq->kicks + cq->kicks, st.kicks);
	if (c->shadow) {
		EXPECT_LT(0, st.sdb_reads);
	} else {
		EXPECT_EQ(0, st.sdb_reads);
	}
	/* Each irqfd read consumed at least one signal. */
	EXPECT_LE(cq->irqs, st.interrupts);
	EXPECT_LE(1, st.interrupts);
	EXPECT_GE(25, st.interrupts);
	EXPECT_EQ(0, st.cq_full);
	/* Page-aligned reads bounce nothing, so nothing waits for bounces. */
	EXPECT_EQ(0, st.bounce_waits);
	TH_LOG("commands %llu errors %llu kicks %llu (guest %lu+%lu) sdb_reads %llu interrupts %llu (read %lu)",
	       (unsigned long long)st.commands,
	       (unsigned long long)st.errors, (unsigned long long)st.kicks,
	       sq->kicks, cq->kicks, (unsigned long long)st.sdb_reads,
	       (unsigned long long)st.interrupts, cq->irqs);
}

/* Without IEN the CQ is polled: completions arrive, no interrupts. */
TEST_F(q, no_interrupts_without_ien)
{
	struct vhost_nvme_queue_stats st;
	struct qctx *c = &self->c;
	struct guest_cpl cpl[5];
	struct guest_cq *cq;
	struct guest_sq *sq;

	ASSERT_OK(guest_create_cq(&c->g, 1, 16, 0, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 1, cq, 16, 0, 0, &sq));
	ASSERT_OK(push_reads(c, sq, 5, 0));
	ASSERT_OK(guest_sq_ring(sq));
	ASSERT_WAIT(sq, cq, cpl, 5);
	check_cpls(_metadata, cpl, 5, 1, 0, 5);
	ASSERT_OK(guest_get_stats(&c->g, 1, &st));
	EXPECT_EQ(5, st.commands);
	EXPECT_EQ(0, st.interrupts);
}

/*
 * Check that @n completions sit at the start of a CQ ring that has not been
 * consumed, and that nothing was written after them.
 */
static void check_raw_ring(struct __test_metadata *_metadata,
			   struct guest *g, __u64 gpa, __u32 entries, int n,
			   __u16 cid, int count, const char *when)
{
	volatile struct nvme_cqe *ring = guest_ptr(g, gpa);
	bool seen[256] = { false };
	__u32 i;

	for (i = 0; i < entries; i++) {
		__u16 st = le16toh(ring[i].status);
		__u16 k = le16toh(ring[i].cid) - cid;

		if (i >= (__u32)n) {
			EXPECT_EQ(0, st & 1) {
				TH_LOG("%s: CQ slot %u written after the first %d",
				       when, i, n);
			}
			continue;
		}
		EXPECT_EQ(0, nvme_status(st)) {
			TH_LOG("%s: slot %u cid %u status 0x%x", when, i,
			       le16toh(ring[i].cid), st);
		}
		EXPECT_TRUE(k < count && !seen[k]) {
			TH_LOG("%s: slot %u has cid %u, not %u..%u or seen before",
			       when, i, le16toh(ring[i].cid), cid,
			       cid + count - 1);
		}
		if (k < count && k < 256)
			seen[k] = true;
	}
}

/* How many completions lead the (never consumed) CQ ring at @gpa. */
static int raw_count(struct guest *g, __u64 gpa, __u32 entries)
{
	volatile struct nvme_cqe *ring = guest_ptr(g, gpa);
	__u32 n = 0;

	while (n < entries && (le16toh(ring[n].status) & 1))
		n++;
	return n;
}

/* Vary the moment of teardown a little from one iteration to the next. */
static void jitter(int it)
{
	if (it % 3 == 1)
		usleep(it % 50);
	else if (it % 3 == 2)
		sched_yield();
}

/*
 * DELETE_SQ right after the doorbell, the commands in any state: when it
 * returns, every command it fetched has its completion posted, and nothing
 * is posted later (checked on the old ring at the next iteration).
 */
TEST_F_TIMEOUT(q, delete_sq_inflight, 180)
{
	struct qctx *c = &self->c;
	unsigned long done = 0;
	__u64 mark, old_gpa = 0;
	struct guest_cq *cq;
	struct guest_sq *sq;
	int it, n = 0;

	mark = guest_alloc_mark(&c->g);
	for (it = 0; it < DELETE_ITERS && !_metadata->exit_code; it++) {
		__u16 cid = it * 8;

		if (old_gpa)
			check_raw_ring(_metadata, &c->g, old_gpa, 16, n,
				       cid - 8, 8, "later, after DELETE_SQ");
		guest_alloc_release(&c->g, mark);
		ASSERT_OK(guest_create_cq(&c->g, 1, 16, GUEST_CQ_IEN, &cq));
		ASSERT_OK(guest_create_sq(&c->g, 1, cq, 16, it % 4, 0, &sq));
		ASSERT_OK(push_reads(c, sq, 8, cid));
		ASSERT_OK(guest_sq_ring(sq));
		jitter(it);
		ASSERT_OK(guest_delete_sq(sq));
		old_gpa = cq->gpa;
		n = raw_count(&c->g, old_gpa, 16);
		EXPECT_GE(8, n);
		check_raw_ring(_metadata, &c->g, old_gpa, 16, n, cid, 8,
			       "DELETE_SQ returned");
		ASSERT_OK(guest_delete_cq(cq));
		done += n;
	}
	guest_msleep(100);
	check_raw_ring(_metadata, &c->g, old_gpa, 16, n, (it - 1) * 8, 8,
		       "100 ms after the last DELETE_SQ");
	TH_LOG("%lu of %d commands completed before their SQ went", done,
	       8 * it);
	/* And the queue id still works. */
	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 16, 0, &sq));
	one_read(_metadata, c, sq);
}

/*
 * STOP right after the doorbell: when it returns, what it fetched has
 * completed and nothing more is posted; START runs the rest. Every command
 * completes exactly once.
 */
TEST_F_TIMEOUT(q, stop_inflight, 180)
{
	struct qctx *c = &self->c;
	struct guest_cpl cpl[8];
	unsigned long early = 0;
	struct guest_cq *cq;
	struct guest_sq *sq;
	int it, n;

	ASSERT_OK(guest_create_cq(&c->g, 1, 32, GUEST_CQ_IEN, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 1, cq, 16, 0, 0, &sq));
	for (it = 0; it < STOP_ITERS && !_metadata->exit_code; it++) {
		__u16 cid = it * 8;

		ASSERT_OK(push_reads(c, sq, 8, cid));
		ASSERT_OK(guest_sq_ring(sq));
		jitter(it);
		ASSERT_OK(guest_stop(&c->g));
		n = guest_cq_peek(cq);
		if (it % 10 == 0)
			expect_quiet(_metadata, cq, n, 20, "stopped");
		n = guest_cq_reap(cq, cpl, 8);
		early += n;
		ASSERT_OK(guest_start(&c->g));
		ASSERT_WAIT(sq, cq, cpl + n, 8 - n);
		/* Give back the slots of the early ones too. */
		ASSERT_OK(guest_cq_ring(cq));
		check_cpls(_metadata, cpl, 8, 1, cid, 8);
	}
	TH_LOG("%lu of %d commands completed before STOP returned", early,
	       8 * it);
}

/*
 * RESET right after the doorbell: it stops, deletes the queues (their ids
 * are free again) and clears the doorbell buffer; namespaces stay. What
 * completed is in the old ring and nothing arrives later.
 */
TEST_F_TIMEOUT(q, reset_inflight, 180)
{
	struct qctx *c = &self->c;
	unsigned long done = 0;
	struct guest_cq *cq;
	struct guest_sq *sq;
	__u64 mark, gpa = 0;
	int it, n = 0;

	mark = guest_alloc_mark(&c->g);
	for (it = 0; it < RESET_ITERS && !_metadata->exit_code; it++) {
		__u16 cid = it * 8;

		if (gpa)
			check_raw_ring(_metadata, &c->g, gpa, 16, n, cid - 8,
				       8, "later, after RESET");
		guest_alloc_release(&c->g, mark);
		if (c->shadow)
			ASSERT_OK(guest_set_dbbuf(&c->g));
		ASSERT_OK(guest_create_cq(&c->g, 1, 16, GUEST_CQ_IEN, &cq));
		ASSERT_OK(guest_create_sq(&c->g, 1, cq, 16, it % 2, 0, &sq));
		gpa = cq->gpa;
		ASSERT_OK(push_reads(c, sq, 8, cid));
		ASSERT_OK(guest_sq_ring(sq));
		jitter(it);
		ASSERT_OK(guest_reset(&c->g));
		n = raw_count(&c->g, gpa, 16);
		EXPECT_GE(8, n);
		check_raw_ring(_metadata, &c->g, gpa, 16, n, cid, 8,
			       "RESET returned");
		done += n;
		/* RESET includes STOP. */
		ASSERT_OK(guest_start(&c->g));
	}
	TH_LOG("%lu of %d commands completed before RESET returned", done,
	       8 * it);
	/* The namespace stayed, and the device works after all that. */
	if (c->shadow)
		ASSERT_OK(guest_set_dbbuf(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 16, 0, &sq));
	one_read(_metadata, c, sq);
}

/* Tests of the shadow doorbell / EventIdx protocol itself. */
FIXTURE(sdb) {
	struct qctx c;
};

FIXTURE_SETUP(sdb)
{
	qsetup(_metadata, &self->c, true);
}

FIXTURE_TEARDOWN(sdb)
{
	qteardown(&self->c);
}

static void log_doorbells(struct __test_metadata *_metadata,
			  struct qctx *c, struct guest_sq *sq)
{
	struct vhost_nvme_queue_stats st = { 0 };

	guest_get_stats(&c->g, sq->qid, &st);
	TH_LOG("sq doorbells %lu of %lu tails, cq doorbells %lu of %lu heads, irq reads %lu; device: commands %llu kicks %llu sdb_reads %llu interrupts %llu cq_full %llu",
	       sq->kicks, sq->rings, sq->cq->kicks, sq->cq->rings,
	       sq->cq->irqs, (unsigned long long)st.commands,
	       (unsigned long long)st.kicks,
	       (unsigned long long)st.sdb_reads,
	       (unsigned long long)st.interrupts,
	       (unsigned long long)st.cq_full);
}

/*
 * One command at a time, the EventIdx rule deciding each kick. The guest
 * writes its next tail while the worker may still be between posting the
 * last completion and going to sleep: a lost wakeup is a timeout here.
 */
TEST_F_TIMEOUT(sdb, eventidx_single_stress, 300)
{
	struct qctx *c = &self->c;
	struct guest_cpl cpl;
	struct guest_sq *sq;
	struct nvme_sqe cmd;
	char st[512];
	int i, rc;

	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 16, 0, &sq));
	for (i = 0; i < STRESS_SINGLE; i++) {
		read_cmd(c, &cmd, i);
		rc = guest_exec(sq, &cmd, &cpl);
		if (rc || cpl.status >> 1)
			break;
	}
	if (i < STRESS_SINGLE)
		guest_sq_describe(sq, st, sizeof(st));
	EXPECT_EQ(STRESS_SINGLE, i) {
		TH_LOG("command %d: %s, status 0x%x; %s", i,
		       guest_strerror(rc), rc ? 0 : cpl.status, st);
	}
	log_doorbells(_metadata, c, sq);
}

/* Bursts of 1-8 commands per doorbell. */
TEST_F_TIMEOUT(sdb, eventidx_bursts, 300)
{
	struct qctx *c = &self->c;
	unsigned int seed = 4242;
	struct guest_cpl cpl[8];
	struct guest_sq *sq;
	__u16 cid = 0;
	int i, n;

	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 16, 0, &sq));
	for (i = 0; i < STRESS_BURSTS && !_metadata->exit_code; i++) {
		n = 1 + rand_r(&seed) % 8;
		ASSERT_OK(push_reads(c, sq, n, cid));
		ASSERT_OK(guest_sq_ring(sq));
		ASSERT_WAIT(sq, sq->cq, cpl, n);
		check_cpls(_metadata, cpl, n, 1, cid, n);
		cid += n;
	}
	log_doorbells(_metadata, c, sq);
}

/*
 * Keep up to @depth commands in flight, ringing each as it is queued and
 * taking completions as they come: tails move while the worker is busy,
 * so EventIdx lags the tail and most writes need no doorbell. A worker
 * that does not re-read the tail after publishing EventIdx strands a
 * command here.
 */
static void pipeline(struct __test_metadata *_metadata, struct qctx *c,
		     __u32 sq_entries, __u32 cq_entries, int depth)
{
	static bool outstanding[65536];
	int submitted = 0, done = 0, inflight = 0, i, n;
	struct guest_cpl cpl[64];
	struct guest_sq *sq;
	struct guest_cq *cq;
	struct nvme_sqe cmd;
	char st[512] = "";

	ASSERT_OK(guest_create_cq(&c->g, 1, cq_entries, GUEST_CQ_IEN, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 1, cq, sq_entries, 0, 0, &sq));
	while (done < STRESS_PIPELINE && !_metadata->exit_code) {
		while (inflight < depth && submitted < STRESS_PIPELINE) {
			read_cmd(c, &cmd, submitted);
			cmd.cid = htole16((__u16)submitted);
			ASSERT_OK(guest_sq_push(sq, &cmd));
			ASSERT_OK(guest_sq_ring(sq));
			outstanding[(__u16)submitted] = true;
			submitted++;
			inflight++;
		}
		n = guest_cq_wait(cq, cpl, 1, GUEST_TIMEOUT_MS);
		if (n == 1)
			n += guest_cq_reap(cq, cpl + 1, 63);
		if (n < 1)
			guest_sq_describe(sq, st, sizeof(st));
		ASSERT_LE(1, n) {
			TH_LOG("%d done, %d in flight: %s; %s", done, inflight,
			       n ? guest_strerror(n) : "timeout", st);
		}
		ASSERT_OK(guest_cq_ring(cq));
		for (i = 0; i < n; i++) {
			EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &cpl[i]);
			EXPECT_TRUE(outstanding[cpl[i].cid]) {
				TH_LOG("cid %u completed but not outstanding",
				       cpl[i].cid);
			}
			outstanding[cpl[i].cid] = false;
		}
		done += n;
		inflight -= n;
	}
	log_doorbells(_metadata, c, sq);
}

/* A roomy CQ: the only wakeups are the SQ doorbells EventIdx asks for. */
TEST_F_TIMEOUT(sdb, eventidx_pipelined, 300)
{
	pipeline(_metadata, &self->c, 64, 64, 48);
}

/*
 * An 8-entry CQ under 12 commands in flight: the CQ fills over and over,
 * so the CQ head's EventIdx decides the wakeups too.
 */
TEST_F_TIMEOUT(sdb, eventidx_pipelined_cq_full, 300)
{
	pipeline(_metadata, &self->c, 16, 8, 12);
}

/*
 * Once the worker has nothing to do, the SQ's EventIdx equals the tail it
 * consumed: the only value for which the guest's next tail write needs a
 * doorbell. Anything else and an idle queue never wakes up.
 */
TEST_F(sdb, eventidx_tracks_tail)
{
	struct qctx *c = &self->c;
	volatile __u32 *ei;
	struct guest_cpl cpl;
	struct guest_sq *sq;
	struct nvme_sqe cmd;
	unsigned long kicks;
	int i, j;

	ASSERT_OK(guest_create_qpair(&c->g, 1, 4, 16, 0, &sq));
	ei = &c->g.eis[guest_db_index(&c->g, 1, false)];
	for (i = 0; i < 10; i++) {
		kicks = sq->kicks;
		read_cmd(c, &cmd, i);
		ASSERT_EXEC(sq, &cmd, &cpl);
		/* The previous round left EventIdx at the old tail. */
		EXPECT_EQ(kicks + 1, sq->kicks);
		for (j = 0; j < 100 && le32toh(*ei) != sq->tail; j++)
			guest_msleep(10);
		EXPECT_EQ(sq->tail, le32toh(*ei)) {
			TH_LOG("round %d: SQ EventIdx %u, tail %u", i,
			       le32toh(*ei), sq->tail);
		}
	}
}

/* Back-pressure released by the CQ's own head doorbell eventfd. */
TEST_F(sdb, cq_kickfd_backpressure)
{
	backpressure(_metadata, &self->c, GUEST_CQ_KICKFD);
}

/*
 * With shadow doorbells a forwarded SQ doorbell only wakes the queue: the
 * shadow tail (3) counts, not the forwarded value (1). A value out of
 * range is still refused like any other.
 */
TEST_F(sdb, doorbell_ioctl_only_wakes)
{
	struct vhost_nvme_doorbell d = { .qid = 1, .cq = 0, .value = 1 };
	struct qctx *c = &self->c;
	struct guest_cpl cpl[3];
	struct guest_sq *sq;
	int rc;

	ASSERT_OK(guest_set_error_fd(&c->g));
	ASSERT_OK(guest_create_cq(&c->g, 1, 16, GUEST_CQ_IEN, NULL));
	ASSERT_OK(guest_create_sq(&c->g, 1, c->g.cq[1], 16, 0,
				  GUEST_SQ_NO_KICKFD, &sq));
	ASSERT_OK(push_reads(c, sq, 3, 0));
	__sync_synchronize();
	c->g.dbs[guest_db_index(&c->g, 1, false)] = htole32(3);
	sq->db_tail = 3;
	__sync_synchronize();
	ASSERT_EQ(0, ioctl(c->g.fd, VHOST_NVME_DOORBELL, &d));
	ASSERT_WAIT(sq, sq->cq, cpl, 3);
	check_cpls(_metadata, cpl, 3, 1, 0, 3);

	d.value = 16;
	rc = ioctl(c->g.fd, VHOST_NVME_DOORBELL, &d) ? -errno : 0;
	EXPECT_TRUE(rc == 0 || rc == -EINVAL) {
		TH_LOG("doorbell 16: %s", guest_strerror(rc));
	}
	expect_error(_metadata, &c->g, 1, 0, 16);
}

/*
 * Doorbell stride 4: queue y's entries are at u32 index (2y + c) << 4.
 * I/O on queues 3 and 5 works, the EventIdx lands at the strided index
 * and nothing is written where stride 0 would put it.
 */
TEST_F(sdb, dstrd_stride)
{
	static const __u32 unstrided[] = { 6, 7, 10, 11 };
	struct qctx *c = &self->c;
	struct guest_sq *sq3, *sq5;
	struct guest_cpl cpl;
	struct nvme_sqe cmd;
	volatile __u32 *ei;
	size_t i;
	int j;

	ASSERT_OK(guest_clear_dbbuf(&c->g));
	ASSERT_OK(guest_set_config(&c->g, 5, 4, 8));
	ASSERT_OK(guest_set_dbbuf(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 3, 16, 16, 0, &sq3));
	ASSERT_OK(guest_create_qpair(&c->g, 5, 16, 16, 1, &sq5));
	for (i = 0; i < 20; i++) {
		read_cmd(c, &cmd, i);
		ASSERT_EXEC(i % 2 ? sq5 : sq3, &cmd, &cpl);
		EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &cpl);
	}
	ei = &c->g.eis[guest_db_index(&c->g, 3, false)];
	for (j = 0; j < 100 && le32toh(*ei) != sq3->tail; j++)
		guest_msleep(10);
	EXPECT_EQ(sq3->tail, le32toh(*ei));
	for (i = 0; i < ARRAY_SIZE(unstrided); i++) {
		EXPECT_EQ(0, c->g.eis[unstrided[i]]) {
			TH_LOG("EventIdx page u32 %u written (0x%x)",
			       unstrided[i], c->g.eis[unstrided[i]]);
		}
	}
}

/*
 * Forwarded, then shadow doorbells (set with the queues live), then
 * forwarded again: I/O works in each phase and the shadow page is read
 * only while it is set.
 */
TEST_F(sdb, dbbuf_mode_switch)
{
	struct vhost_nvme_queue_stats st1, st2, st3;
	struct qctx *c = &self->c;
	struct guest_cpl cpl;
	struct guest_sq *sq;
	struct nvme_sqe cmd;
	int i;

	ASSERT_OK(guest_clear_dbbuf(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 1, 8, 8, 0, &sq));
	for (i = 0; i < 30; i++) {
		if (i == 10) {
			ASSERT_OK(guest_get_stats(&c->g, 1, &st1));
			ASSERT_OK(guest_set_dbbuf(&c->g));
		} else if (i == 20) {
			ASSERT_OK(guest_clear_dbbuf(&c->g));
			ASSERT_OK(guest_get_stats(&c->g, 1, &st2));
		}
		read_cmd(c, &cmd, i);
		ASSERT_EXEC(sq, &cmd, &cpl);
		EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &cpl);
	}
	ASSERT_OK(guest_get_stats(&c->g, 1, &st3));
	EXPECT_EQ(0, st1.sdb_reads);
	EXPECT_LT(st1.sdb_reads, st2.sdb_reads);
	EXPECT_EQ(st2.sdb_reads, st3.sdb_reads);
	EXPECT_EQ(30, st3.commands);
}

/*
 * close() with I/O in flight, over and over, in both doorbell modes: the
 * release waits for the I/O and frees everything - the module's reference
 * count and the process's thread count (the workers) return to where they
 * started.
 */
FIXTURE(release) {
	struct guest_backend be;
};

FIXTURE_SETUP(release)
{
	ASSERT_OK(guest_backend_open(&self->be, GUEST_BACKEND_FILE,
				     FILE_SIZE));
}

FIXTURE_TEARDOWN(release)
{
	guest_backend_close(&self->be);
}

TEST_F_TIMEOUT(release, close_inflight, 180)
{
	long ref0, ref = -1;
	int it, i, threads0, threads = -1;

	ref0 = guest_module_refcnt();
	ASSERT_LE(0, ref0) {
		TH_LOG("cannot read %s", GUEST_REFCNT_PATH);
	}
	threads0 = guest_thread_count();
	for (it = 0; it < CLOSE_ITERS && !_metadata->exit_code; it++) {
		struct qctx c = { .shadow = it % 2 };
		struct guest_sq *sq;

		ASSERT_OK(guest_setup(&c.g, 4 << 20));
		ASSERT_OK(guest_set_namespace(&c.g, self->be.fd, 1, 9, 0,
					      NULL));
		ASSERT_OK(guest_start(&c.g));
		if (c.shadow)
			ASSERT_OK(guest_set_dbbuf(&c.g));
		ASSERT_OK(guest_buf_alloc(&c.g, &c.page, 0, 4096, false));
		ASSERT_OK(guest_create_qpair(&c.g, 1, 16, 16, it % 3, &sq));
		ASSERT_OK(push_reads(&c, sq, 8, 0));
		ASSERT_OK(guest_sq_ring(sq));
		jitter(it);
		guest_close(&c.g);
	}
	/* The last release may still be finishing its thread exits. */
	for (i = 0; i < 50; i++) {
		ref = guest_module_refcnt();
		threads = guest_thread_count();
		if (ref == ref0 && threads == threads0)
			break;
		guest_msleep(100);
	}
	EXPECT_EQ(ref0, ref);
	EXPECT_EQ(threads0, threads);
}

TEST_HARNESS_MAIN
