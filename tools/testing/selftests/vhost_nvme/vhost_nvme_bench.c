// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost_nvme_bench: 4 KiB random-read IOPS of the vhost-nvme data path
 * against io_uring on the same block device, measured in one run.
 *
 * The vhost-nvme side is the userspace guest of the selftests (guest.c):
 * one queue pair with shadow doorbells, completions taken from the irqfd,
 * exactly what a guest driver does, minus the VM. io_uring reads the device
 * with O_DIRECT, interrupt-driven (no SQPOLL, no IOPOLL), the peer a host
 * application would use. Runs alternate between the two and repeat; the
 * median of each is reported with the ratio. Absolute numbers depend on the
 * machine (under TCG they are slow); the ratio is the result.
 *
 *   vhost_nvme_bench [-d DEV] [-t SECONDS] [-r REPEATS] [-q QD,...]
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include "guest.h"

#define BS		4096
#define MAX_QD		128
#define MAX_REPEATS	15

static __u64 rng_state = 0x9e3779b97f4a7c15ull;

/* A block-aligned random offset below @span bytes (xorshift64). */
static __u64 rand_off(__u64 span)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (rng_state % (span / BS)) * BS;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "vhost_nvme_bench: %s: %s\n", what, strerror(err));
	exit(1);
}

/* vhost-nvme: one queue pair, QD @qd, for @secs seconds; returns IOPS. */
static double run_vhost(const char *dev, __u64 span, int qd, double secs)
{
	struct guest_cpl cpl[MAX_QD];
	__u64 buf[MAX_QD], done = 0;
	__u16 slot_of[65536];
	struct nvme_sqe cmd;
	struct guest_sq *sq;
	struct guest g;
	double t0, t;
	int fd, i, k, rc, cid;

	rc = guest_setup(&g, GUEST_MEM_SIZE);
	if (rc)
		die("guest_setup", -rc);
	fd = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		die(dev, errno);
	rc = guest_set_namespace(&g, fd, 1, 9, 0, NULL);
	if (!rc)
		rc = guest_start(&g);
	if (!rc)
		rc = guest_set_dbbuf(&g);
	if (!rc)
		rc = guest_create_qpair(&g, 1, 1024, 1024, 0, &sq);
	if (rc)
		die("queue setup", -rc);
	close(fd);

	for (i = 0; i < qd; i++)
		buf[i] = guest_alloc(&g, 1);
	/* Each slot keeps its buffer; a CQE's command id finds its slot. */
	for (i = 0; i < qd; i++) {
		nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, rand_off(span) >> 9,
			    BS >> 9, 0);
		nvme_sqe_set_prp(&cmd, buf[i], 0);
		cid = guest_sq_submit(sq, &cmd);
		if (cid < 0)
			die("submit", -cid);
		slot_of[cid] = i;
	}
	rc = guest_sq_ring(sq);
	t0 = now_s();
	for (t = t0; !rc && t - t0 < secs; t = now_s()) {
		k = guest_cq_reap(sq->cq, cpl, qd);
		if (!k) {
			rc = guest_wait_fd(sq->cq->irqfd, 5000);
			if (rc == 0)
				die("no completion within 5 s", ETIMEDOUT);
			rc = rc < 0 ? rc : 0;
			continue;
		}
		rc = guest_cq_ring(sq->cq);
		for (i = 0; !rc && i < k; i++) {
			int slot = slot_of[cpl[i].cid];

			if (nvme_status(cpl[i].status))
				die("read failed", EIO);
			nvme_sqe_rw(&cmd, NVME_CMD_READ, 1,
				    rand_off(span) >> 9, BS >> 9, 0);
			nvme_sqe_set_prp(&cmd, buf[slot], 0);
			cid = guest_sq_submit(sq, &cmd);
			if (cid < 0)
				rc = cid;
			else
				slot_of[cid] = slot;
		}
		if (!rc)
			rc = guest_sq_ring(sq);
		done += k;
	}
	if (rc)
		die("I/O loop", -rc);
	t = now_s() - t0;
	/* Drain what is still in flight before the device goes away. */
	guest_close(&g);
	return done / t;
}

/* io_uring: O_DIRECT reads of @dev at QD @qd for @secs seconds. */
static double run_uring(const char *dev, __u64 span, int qd, double secs)
{
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	void *buf[MAX_QD];
	__u64 done = 0;
	double t0, t;
	int fd, i, rc;

	fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		die(dev, errno);
	rc = io_uring_queue_init(qd * 2, &ring, 0);
	if (rc)
		die("io_uring_queue_init", -rc);
	for (i = 0; i < qd; i++) {
		if (posix_memalign(&buf[i], BS, BS))
			die("posix_memalign", ENOMEM);
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_read(sqe, fd, buf[i], BS, rand_off(span));
		io_uring_sqe_set_data64(sqe, i);
	}
	t0 = now_s();
	for (t = t0; t - t0 < secs; t = now_s()) {
		unsigned int head, n = 0;

		rc = io_uring_submit_and_wait(&ring, 1);
		if (rc < 0)
			die("io_uring_submit_and_wait", -rc);
		io_uring_for_each_cqe(&ring, head, cqe) {
			i = io_uring_cqe_get_data64(cqe);
			if (cqe->res != BS)
				die("io_uring read", cqe->res < 0 ? -cqe->res : EIO);
			sqe = io_uring_get_sqe(&ring);
			io_uring_prep_read(sqe, fd, buf[i], BS, rand_off(span));
			io_uring_sqe_set_data64(sqe, i);
			n++;
		}
		io_uring_cq_advance(&ring, n);
		done += n;
	}
	t = now_s() - t0;
	io_uring_queue_exit(&ring);
	for (i = 0; i < qd; i++)
		free(buf[i]);
	close(fd);
	return done / t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	const char *dev = "/dev/nullb0", *qds = "1,32";
	double secs = 3, vh[MAX_REPEATS], ur[MAX_REPEATS];
	int repeats = 3, opt, fd, r;
	__u64 size, span;
	char *list, *tok;

	while ((opt = getopt(argc, argv, "d:t:r:q:")) != -1) {
		switch (opt) {
		case 'd':
			dev = optarg;
			break;
		case 't':
			secs = atof(optarg);
			break;
		case 'r':
			repeats = atoi(optarg);
			break;
		case 'q':
			qds = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-d dev] [-t secs] [-r repeats] [-q qd,...]\n",
				argv[0]);
			return 2;
		}
	}
	if (repeats < 1 || repeats > MAX_REPEATS || secs <= 0) {
		fprintf(stderr, "vhost_nvme_bench: bad -r or -t\n");
		return 2;
	}
	fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size))
		die(dev, errno);
	close(fd);
	/* Stay within the first GiB: a working set both paths share. */
	span = size < (1ull << 30) ? size : (1ull << 30);

	printf("# vhost_nvme_bench: 4 KiB random reads of %s, %.1f s x %d, medians\n",
	       dev, secs, repeats);
	printf("# ratios, not absolute numbers, are the result (this may run under TCG)\n");
	list = strdup(qds);
	for (tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		int qd = atoi(tok);
		double mv, mu;

		if (qd < 1 || qd > MAX_QD) {
			fprintf(stderr, "vhost_nvme_bench: QD %d out of 1..%d\n",
				qd, MAX_QD);
			return 2;
		}
		for (r = 0; r < repeats; r++) {
			/* Alternate, so drift of the machine hits both alike. */
			vh[r] = run_vhost(dev, span, qd, secs);
			ur[r] = run_uring(dev, span, qd, secs);
			printf("# qd %d run %d: vhost-nvme %.0f IOPS, io_uring %.0f IOPS\n",
			       qd, r + 1, vh[r], ur[r]);
			fflush(stdout);
		}
		mv = median(vh, repeats);
		mu = median(ur, repeats);
		printf("qd %-3d vhost-nvme %9.0f IOPS  io_uring %9.0f IOPS  ratio %.2f\n",
		       qd, mv, mu, mv / mu);
		fflush(stdout);
	}
	free(list);
	return 0;
}
