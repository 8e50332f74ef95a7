// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme when the backend fails: device-mapper tables swapped or
 * slowed under commands in flight, a file system that fills up, a block
 * device deleted while the module holds it. What each case guards against:
 *
 *  dm_error_mid_flight: an I/O error in the middle of a busy queue (a
 *     dm-linear table swapped to the error target for 0.5 s under 32
 *     commands in flight) lost, posted twice or mapped to the wrong
 *     status. Every command completes once, with Success or Write Fault /
 *     Unrecovered Read Error (vnvme_blk_status_to_nvme(BLK_STS_IOERR)),
 *     errors come only while the error table is live, the namespace keeps
 *     data once the linear table is back, and the module's reference
 *     goes with the fd.
 *  dm_delay_delete_sq, dm_delay_reset, dm_delay_close: teardown under a
 *     slow backend (dm-delay, 200 ms) returning before the backend is
 *     done (a CQE written after its queue is gone, a request reused while
 *     its bio is in flight) or not returning at all. DELETE_SQ and RESET
 *     must have posted every completion when they return, as the UAPI
 *     says; close must have let the writes land and drop the module
 *     reference; the device (or a new one on the same backend) works
 *     afterwards.
 *  enospc_file: a file backend on a full file system. -ENOSPC must become
 *     Capacity Exceeded with DNR (not Success, not a hang, not a generic
 *     error), the data written before reads back, a failed write leaves
 *     nothing, and writes work again once there is room.
 *  backend_removed_in_flight: a null_blk powered off and removed (its
 *     del_gendisk) under 32 commands in flight while the namespace still
 *     holds it open: no crash, no hang, every command completes once,
 *     later ones fail with an error status, STOP and close work.
 *  slow_backend_stats: a worker that waits for a slow backend while
 *     holding its lock, which makes every ioctl that takes the lock
 *     (GET_QUEUE_STATS here) wait as long.
 *
 * The configfs null_blk devices, dm devices and the tmpfs are created in
 * the test bodies and removed by the teardown, which runs after a failed
 * ASSERT too (not after a failed setup, so the setup creates nothing that
 * outlives the process). A test without dmsetup, a device-mapper target
 * or configfs null_blk is skipped, saying which. Every wait is bounded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <linux/fs.h>

#include "guest.h"
#include "nullb.h"
#include "kselftest_harness.h"

#define LBA_SHIFT	9
#define LBA		(1u << LBA_SHIFT)
#define MEM_SIZE	(64ull << 20)
#define HOST_BUF	((1u << 20) + 2 * GUEST_PAGE_SIZE)
#define QUEUE_ENTRIES	64
/* 4 KiB of 512-byte blocks: the unit of every command here but case 3's. */
#define BLK_LBAS	(GUEST_PAGE_SIZE / LBA)

#define NULLB_MB	64
#define NULLB_SECTORS	((unsigned long long)NULLB_MB << 11)

/* Teardown ioctls may take the backend's delay, and this much more. */
#define SLACK_MS	5000

/* The statuses a failing backend produces (drivers/vhost/nvme_io.c). */
#ifndef NVME_SC_CAP_EXCEEDED
#define NVME_SC_CAP_EXCEEDED	0x081
#endif
#ifndef NVME_SC_WRITE_FAULT
#define NVME_SC_WRITE_FAULT	0x280
#endif
#ifndef NVME_SC_READ_ERROR
#define NVME_SC_READ_ERROR	0x281
#endif

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static __s64 now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__s64)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- sysfs, configfs and programs ---------------------------------------- */

static bool have_program(const char *name)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

/*
 * Run a shell command: its exit status (-1 if it did not run or was
 * killed), and what it printed (stdout and stderr, on one line, cut to
 * @len - 1 bytes) in @out for the log.
 */
static __attribute__((format(printf, 3, 4)))
int run_cmd(char *out, size_t len, const char *fmt, ...)
{
	char cmd[512];
	size_t n = 0;
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
	va_end(ap);
	strcat(cmd, " 2>&1");
	out[0] = 0;
	p = popen(cmd, "r");
	if (!p) {
		snprintf(out, len, "popen: %s", strerror(errno));
		return -1;
	}
	while (n + 1 < len && fgets(out + n, len - n, p))
		n += strlen(out + n);
	/* Read the rest: a command blocked on a full pipe never exits. */
	while (fgetc(p) != EOF)
		;
	st = pclose(p);
	while (n && out[n - 1] == '\n')
		out[--n] = 0;
	/* One line: the log prefixes only the first with "#". */
	for (; n; n--)
		if (out[n - 1] == '\n')
			out[n - 1] = ' ';
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* ---- configfs null_blk devices (nullb.c) ------------------------------- */

/* nullb_create() in a test: SKIP without configfs null_blk, else fail. */
static bool test_nullb(struct __test_metadata *_metadata,
		       struct nullb_dev *nb, const struct nullb_attr *attrs,
		       size_t n)
{
	char why[192];
	int rc;

	rc = nullb_create(nb, "vnfault", attrs, n, why, sizeof(why));
	if (rc == 1)
		SKIP(return false, "%s", why);
	ASSERT_EQ(0, rc) {
		TH_LOG("%s", why);
	}
	return true;
}

/* ---- device-mapper devices ----------------------------------------------- */

/*
 * dmsetup without udev synchronisation, which waits for a udev that may
 * not run (or not answer) in the test VM: the node is devtmpfs's
 * /dev/dm-N. Under timeout(1) where there is one, so that a stuck
 * dmsetup fails its command instead of the test's time.
 */
static char dmsetup[64] = "dmsetup --noudevsync";

struct dm_dev {
	char name[32];		/* "" if none */
	char dev[64];		/* /dev/dm-N */
};

/*
 * dmsetup and every target in @targets (space separated) are there; if
 * not, SKIP and false.
 */
static bool dm_ready(struct __test_metadata *_metadata, const char *targets)
{
	char out[1024], list[1024], want[64], *t, *w, *save, *save2;
	int rc;

	if (!have_program("dmsetup"))
		SKIP(return false, "dmsetup not installed");
	if (have_program("timeout"))
		snprintf(dmsetup, sizeof(dmsetup),
			 "timeout -k 5 30 dmsetup --noudevsync");
	/* The targets not built into dm-mod are modules of their own. */
	rc = system("modprobe -q dm-mod 2>/dev/null");
	snprintf(want, sizeof(want), "%s", targets);
	for (t = strtok_r(want, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		char cmd[64];
		bool found = false;

		snprintf(cmd, sizeof(cmd), "modprobe -q dm-%s 2>/dev/null", t);
		rc = system(cmd);
		rc = run_cmd(out, sizeof(out), "%s targets", dmsetup);
		if (rc)
			SKIP(return false, "dmsetup targets: exit %d: %.400s", rc,
			     out);
		/* "name vX.Y.Z" per target; a version never equals a name. */
		snprintf(list, sizeof(list), "%s", out);
		for (w = strtok_r(list, " \t", &save2); w && !found;
		     w = strtok_r(NULL, " \t", &save2))
			found = !strcmp(w, t);
		if (!found)
			SKIP(return false, "device-mapper target \"%s\" not available (dmsetup targets: %.400s)",
			     t, out);
	}
	return true;
}

/* The devtmpfs node of the dm device called @name. */
static int dm_find_node(const char *name, char *dev, size_t len)
{
	char path[320], val[64];
	struct dirent *e;
	int rc = -ENOENT;
	DIR *d;

	d = opendir("/sys/block");
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "dm-", 3) || strlen(e->d_name) > 16)
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/dm/name",
			 e->d_name);
		if (attr_read(path, val, sizeof(val)) || strcmp(val, name))
			continue;
		snprintf(dev, len, "/dev/%.16s", e->d_name);
		rc = 0;
		break;
	}
	closedir(d);
	return rc;
}

static void dm_create(struct __test_metadata *_metadata, struct dm_dev *dm,
		      const char *table)
{
	static int seq;
	char name[32], out[512];
	int rc;

	snprintf(name, sizeof(name), "vnfault%d_%d", getpid(), seq++);
	rc = run_cmd(out, sizeof(out), "%s create %s --table '%s'", dmsetup,
		     name, table);
	ASSERT_EQ(0, rc) {
		TH_LOG("dmsetup create %s --table '%s': exit %d: %s", name,
		       table, rc, out);
	}
	snprintf(dm->name, sizeof(dm->name), "%s", name);
	rc = dm_find_node(dm->name, dm->dev, sizeof(dm->dev));
	ASSERT_EQ(0, rc) {
		TH_LOG("no /sys/block/dm-*/dm/name says %s", dm->name);
	}
	rc = guest_wait_for_node(dm->dev);
	ASSERT_EQ(0, rc) {
		TH_LOG("%s (%s) did not appear", dm->dev, dm->name);
	}
}

/*
 * Replace the live table: load @table inactive, then resume, which
 * suspends (waiting for the bios in flight, queueing new ones), swaps the
 * tables and resumes, the queued bios going to the new table.
 */
static int dm_swap(struct dm_dev *dm, const char *table, char *out,
		   size_t len)
{
	int rc;

	rc = run_cmd(out, len, "%s reload %s --table '%s'", dmsetup,
		     dm->name, table);
	if (!rc)
		rc = run_cmd(out, len, "%s resume %s", dmsetup, dm->name);
	return rc;
}

/*
 * A test that failed between reload and resume may have left the device
 * suspended, the bios sent to it queued: they must go on before anything
 * waits for them (the device's release does).
 */
static void dm_resume(struct dm_dev *dm)
{
	char out[256];

	if (dm->name[0])
		run_cmd(out, sizeof(out), "%s resume %s", dmsetup, dm->name);
}

static void dm_remove(struct dm_dev *dm)
{
	char out[256];
	int i;

	if (!dm->name[0])
		return;
	dm_resume(dm);
	/* udev's probe of a just-closed device may hold it a moment. */
	for (i = 0; i < 50; i++) {
		if (!run_cmd(out, sizeof(out), "%s remove %s", dmsetup,
			     dm->name))
			break;
		guest_msleep(100);
	}
	dm->name[0] = 0;
}

/* ---- a small tmpfs ------------------------------------------------------- */

struct test_tmpfs {
	char dir[48];		/* mount point; "" if none */
	bool mounted;
};

static void tmpfs_create(struct __test_metadata *_metadata,
			 struct test_tmpfs *fs, const char *opts)
{
	int rc;

	snprintf(fs->dir, sizeof(fs->dir), "/tmp/vhost-nvme-tmpfs.XXXXXX");
	if (!mkdtemp(fs->dir)) {
		rc = -errno;
		fs->dir[0] = 0;
		ASSERT_EQ(0, rc) {
			TH_LOG("mkdtemp: %s", strerror(-rc));
		}
	}
	rc = mount("tmpfs", fs->dir, "tmpfs", 0, opts) ? -errno : 0;
	ASSERT_EQ(0, rc) {
		TH_LOG("mount -t tmpfs -o %s on %s: %s", opts, fs->dir,
		       strerror(-rc));
	}
	fs->mounted = true;
}

static void tmpfs_destroy(struct test_tmpfs *fs)
{
	int i;

	/* The device's last file references may go a moment after close. */
	for (i = 0; fs->mounted && i < 50; i++) {
		if (!umount(fs->dir))
			fs->mounted = false;
		else
			guest_msleep(100);
	}
	if (fs->dir[0] && !fs->mounted)
		rmdir(fs->dir);
	fs->dir[0] = 0;
}

/* Create @path of @len bytes of zeroes, written (allocated) and synced. */
static int make_file(const char *path, size_t len)
{
	static const char zero[1 << 16];
	size_t done = 0;
	int fd, rc = 0;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (done < len) {
		size_t n = len - done;
		ssize_t w;

		if (n > sizeof(zero))
			n = sizeof(zero);
		w = write(fd, zero, n);

		if (w <= 0) {
			rc = w < 0 ? -errno : -EIO;
			break;
		}
		done += w;
	}
	if (!rc && fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

/* As a VMM would: O_DIRECT if the file system takes it. */
static int open_direct(const char *path, int flags)
{
	int fd = open(path, flags | O_DIRECT | O_CLOEXEC);

	if (fd < 0 && errno == EINVAL)
		fd = open(path, flags | O_CLOEXEC);
	return fd;
}

/* ---- the test context ---------------------------------------------------- */

/* Commands of a batch: alternately a 4 KiB write and a 4 KiB read. */
#define BATCH		32
/* The batch's LBAs: 1 MiB into the namespace, clear of io_verify()'s. */
#define BATCH_SLBA	2048

struct batch {
	struct guest_buf page[BATCH];
	__u16 cid;		/* of command 0 */
	__u64 seed;		/* old data; write i's is seed + 1 + i */
	double rung;		/* now_ms() of the doorbell */
};

/* The storm of case 1: QD 32 of random 4 KiB reads and writes. */
#define STORM_QD	32
#define STORM_MS	3000
/*
 * The storm goes on until the test stops it, STORM_MS / 2 after the linear
 * table is back (table swaps take seconds on a slow kernel), or this long.
 */
#define STORM_MAX_MS	60000
/* How long the error table is live, from the storm's halfway point. */
#define STORM_ERROR_MS	500
/* An error may still be reaped this long after the linear table is back. */
#define STORM_LATE_MS	1000
#define DRAIN_MS	10000

struct storm {
	pthread_t thread;
	bool running;
	struct guest *g;
	struct guest_sq *sq;
	__u64 blocks;			/* 4 KiB blocks of the namespace */
	__u64 rnd;
	__u64 page[STORM_QD];		/* each slot's data page */
	int slot_cid[STORM_QD];		/* in flight: its cid, else -1 */
	bool slot_write[STORM_QD];
	short *slot_of;			/* [65536]: cid -> slot, or -1 */
	/* Set by the test, read by the storm; now_us(), 0: not yet. */
	int stop;
	__s64 error_start;		/* the error table is about to load */
	__s64 linear_live;		/* the linear table is live again */
	/* Set by the storm, read by the test after the join. */
	int inflight;
	long submitted, completed, ok, errors;
	long write_faults, read_errors;
	long early, late, wrong, stray;
	char first_bad[192];
	int rc;				/* a guest call failed: -errno */
	const char *rc_what;
};

/*
 * Everything a test may set up. fctx_teardown() undoes what is set: a
 * suspended dm device resumed first (the storm's drain and the device's
 * release wait for its bios), then the storm thread (it uses the device),
 * the device before the backend, the backend's fds before the devices and
 * file system under it.
 */
struct fctx {
	struct guest g;
	struct guest_backend be;
	struct guest_sq *sq;
	__u64 nsze;
	long ref0;			/* module refcount before the open */
	unsigned char *want, *got;	/* HOST_BUF each */
	struct nullb_dev nb;
	struct dm_dev dm;
	struct test_tmpfs fs;
	struct batch batch;
	struct storm storm;
	bool fmr_set;			/* fail_make_request configured */
};

static void storm_stop(struct storm *s);

static void fctx_init(struct fctx *c)
{
	memset(c, 0, sizeof(*c));
	c->g.fd = c->g.memfd = c->g.errfd = -1;
	c->be.fd = c->be.io_fd = -1;
}

static void fmr_restore(struct fctx *c);

static void fctx_teardown(struct fctx *c)
{
	fmr_restore(c);
	dm_resume(&c->dm);
	storm_stop(&c->storm);
	guest_close(&c->g);
	guest_backend_close(&c->be);
	tmpfs_destroy(&c->fs);
	dm_remove(&c->dm);
	nullb_remove(&c->nb);
	nullb_configfs_release();
	free(c->storm.slot_of);
	c->storm.slot_of = NULL;
	free(c->want);
	free(c->got);
	c->want = c->got = NULL;
}

/* Open a block device of ours as the backend, like guest_backend_open(). */
static void open_bdev(struct __test_metadata *_metadata, struct fctx *c,
		      const char *path)
{
	snprintf(c->be.path, sizeof(c->be.path), "%s", path);
	c->be.kind = GUEST_BACKEND_NULLB;
	c->be.fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, c->be.fd) {
		TH_LOG("open %s: %s", path, strerror(errno));
	}
	c->be.io_fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, c->be.io_fd) {
		TH_LOG("open %s O_DIRECT: %s", path, strerror(errno));
	}
	ASSERT_EQ(0, ioctl(c->be.fd, BLKGETSIZE64, &c->be.size));
}

/* Namespace 1 on @fd, started, shadow doorbells, one queue pair. */
static void attach(struct __test_metadata *_metadata, struct fctx *c, int fd)
{
	ASSERT_OK(guest_set_namespace(&c->g, fd, 1, LBA_SHIFT, 0, &c->nsze));
	ASSERT_OK(guest_start(&c->g));
	ASSERT_OK(guest_set_dbbuf(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 1, QUEUE_ENTRIES, QUEUE_ENTRIES,
				     0, &c->sq));
}

/* Report the first differing byte and how many differ. */
static void expect_same(struct __test_metadata *_metadata, const char *what,
			const void *want, const void *got, size_t len)
{
	const unsigned char *w = want, *g = got;
	long d = guest_memdiff(want, got, len);
	size_t i, n = 0;

	EXPECT_EQ(-1, d) {
		for (i = 0; i < len; i++)
			n += w[i] != g[i];
		TH_LOG("%s: byte %ld of %zu is 0x%02x, want 0x%02x (%zu bytes differ)",
		       what, d, len, g[d], w[d], n);
	}
}

static void expect_zero(struct __test_metadata *_metadata, const char *what,
			const void *buf, size_t len)
{
	static const unsigned char zero[4096];
	const unsigned char *p = buf;
	size_t off;

	for (off = 0; off < len; off += sizeof(zero)) {
		size_t n = len - off < sizeof(zero) ? len - off : sizeof(zero);

		if (memcmp(p + off, zero, n)) {
			expect_same(_metadata, what, zero, p + off, n);
			TH_LOG("(in the block at byte %zu)", off);
			return;
		}
	}
}

static void backend_write(struct __test_metadata *_metadata, struct fctx *c,
			  __u64 slba, const void *buf, size_t len)
{
	int rc = guest_backend_pwrite(&c->be, buf, len, slba << LBA_SHIFT);

	ASSERT_EQ(0, rc) {
		TH_LOG("pwrite %s at lba %llu: %s", c->be.path,
		       (unsigned long long)slba, strerror(-rc));
	}
}

static void backend_read(struct __test_metadata *_metadata, struct fctx *c,
			 __u64 slba, void *buf, size_t len)
{
	int rc = guest_backend_pread(&c->be, buf, len, slba << LBA_SHIFT);

	ASSERT_EQ(0, rc) {
		TH_LOG("pread %s at lba %llu: %s", c->be.path,
		       (unsigned long long)slba, strerror(-rc));
	}
}

/* Wait for @n completions; on a shortfall log the queue state. */
#define ASSERT_WAIT(sq, cq, cpl, n, ms) do { \
	int __n = guest_cq_wait(cq, cpl, n, ms); \
	char __st[512] = ""; \
	\
	if (__n != (n)) \
		guest_sq_describe(sq, __st, sizeof(__st)); \
	ASSERT_EQ((n), __n) { \
		TH_LOG("%d of %d completions in %d ms: %s", __n, (n), (ms), \
		       __n < 0 ? guest_strerror(__n) : __st); \
	} \
} while (0)

/*
 * @n completions must be of commands @cid..@cid + @count - 1, each at most
 * once; with @ok set, all successful. Returns how many were successful.
 */
static int check_once(struct __test_metadata *_metadata,
		      const struct guest_cpl *cpl, int n, __u16 cid,
		      int count, bool ok)
{
	bool seen[256] = { false };
	int i, good = 0;

	for (i = 0; i < n; i++) {
		int k = (__u16)(cpl[i].cid - cid);

		good += !nvme_status(cpl[i].status);
		if (ok)
			EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &cpl[i]);
		EXPECT_TRUE(k < count && k < 256 && !seen[k]) {
			TH_LOG("completion %d: cid 0x%04x (sq_head %u, status 0x%x) is not one of 0x%04x..0x%04x or came twice",
			       i, cpl[i].cid, cpl[i].sq_head, cpl[i].status,
			       cid, cid + count - 1);
		}
		if (k < count && k < 256)
			seen[k] = true;
	}
	return good;
}

/* The module's reference count is back to @ref0, within 5 s. */
static void expect_refcnt(struct __test_metadata *_metadata, long ref0,
			  const char *when)
{
	long ref = -1;
	int i;

	for (i = 0; i < 50; i++) {
		ref = guest_module_refcnt();
		if (ref == ref0)
			break;
		guest_msleep(100);
	}
	EXPECT_EQ(ref0, ref) {
		TH_LOG("module refcount still %ld 5 s %s; it was %ld before the device was opened",
		       ref, when, ref0);
	}
}

/*
 * @n writes of 4 KiB, each of its own pattern, to LBAs @slba, @slba + 8,
 * ..., then @n reads of them: the data path works and keeps data.
 */
static void io_verify(struct __test_metadata *_metadata, struct fctx *c,
		      __u64 slba, int n, __u64 seed, const char *when)
{
	struct guest_cpl cpl;
	struct nvme_sqe cmd;
	struct guest_buf b;
	char what[128];
	int i;

	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, GUEST_PAGE_SIZE, false));
	for (i = 0; i < n && !_metadata->exit_code; i++) {
		guest_pattern(c->want, GUEST_PAGE_SIZE, seed + i);
		guest_buf_write(&c->g, &b, c->want);
		nvme_sqe_rw(&cmd, NVME_CMD_WRITE, 1, slba + i * BLK_LBAS,
			    BLK_LBAS, 0);
		ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
		snprintf(what, sizeof(what), "%s: write %d of %d", when, i + 1,
			 n);
		ASSERT_EXEC(c->sq, &cmd, &cpl);
		EXPECT_NVME_STATUS_WHAT(NVME_SC_SUCCESS, &cpl, what);
	}
	for (i = 0; i < n && !_metadata->exit_code; i++) {
		guest_buf_set_pages(&c->g, &b, 0xa5);
		nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, slba + i * BLK_LBAS,
			    BLK_LBAS, 0);
		ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
		snprintf(what, sizeof(what), "%s: read %d of %d", when, i + 1,
			 n);
		ASSERT_EXEC(c->sq, &cmd, &cpl);
		EXPECT_NVME_STATUS_WHAT(NVME_SC_SUCCESS, &cpl, what);
		guest_buf_read(&c->g, &b, c->got);
		guest_pattern(c->want, GUEST_PAGE_SIZE, seed + i);
		expect_same(_metadata, what, c->want, c->got, GUEST_PAGE_SIZE);
	}
}

/* ---- a batch of commands in flight --------------------------------------- */

/* What the batch's LBAs hold once all its writes are done. */
static void batch_expected(struct fctx *c, unsigned char *buf)
{
	int i;

	guest_pattern(buf, BATCH * GUEST_PAGE_SIZE, c->batch.seed);
	for (i = 0; i < BATCH; i += 2)
		guest_pattern(buf + (size_t)i * GUEST_PAGE_SIZE,
			      GUEST_PAGE_SIZE, c->batch.seed + 1 + i);
}

/*
 * Fill the batch's LBAs with a pattern (through the backend, not the
 * device), then queue 32 commands with ids @cid..: even ones write 4 KiB
 * of a pattern of their own, odd ones read 4 KiB into pages full of a
 * canary, each at its own LBA and page; one doorbell for all.
 */
static void batch_submit(struct __test_metadata *_metadata, struct fctx *c,
			 __u16 cid, __u64 seed)
{
	struct batch *b = &c->batch;
	struct nvme_sqe cmd;
	int i;

	b->cid = cid;
	b->seed = seed;
	guest_pattern(c->want, BATCH * GUEST_PAGE_SIZE, seed);
	backend_write(_metadata, c, BATCH_SLBA, c->want,
		      BATCH * GUEST_PAGE_SIZE);
	for (i = 0; i < BATCH; i++) {
		bool write = !(i % 2);

		ASSERT_OK(guest_buf_alloc(&c->g, &b->page[i], 0,
					  GUEST_PAGE_SIZE, false));
		if (write) {
			guest_pattern(c->got, GUEST_PAGE_SIZE, seed + 1 + i);
			guest_buf_write(&c->g, &b->page[i], c->got);
		} else {
			guest_buf_set_pages(&c->g, &b->page[i], 0xa5);
		}
		nvme_sqe_rw(&cmd, write ? NVME_CMD_WRITE : NVME_CMD_READ, 1,
			    BATCH_SLBA + i * BLK_LBAS, BLK_LBAS, 0);
		ASSERT_OK(guest_prp_build(&c->g, &b->page[i], 0, &cmd));
		cmd.cid = htole16((__u16)(cid + i));
		ASSERT_OK(guest_sq_push(c->sq, &cmd));
	}
	ASSERT_OK(guest_sq_ring(c->sq));
	b->rung = now_ms();
}

/*
 * Wait until the worker fetched the whole batch, then count the commands
 * still in the backend (no CQE yet).
 */
static int batch_in_flight(struct __test_metadata *_metadata, struct fctx *c)
{
	struct vhost_nvme_queue_stats st;
	double deadline = now_ms() + GUEST_TIMEOUT_MS;

	for (;;) {
		ASSERT_OK(guest_get_stats(&c->g, c->sq->qid, &st));
		if (st.commands >= BATCH || now_ms() > deadline)
			break;
		guest_msleep(1);
	}
	ASSERT_EQ(BATCH, st.commands) {
		TH_LOG("the worker fetched %llu of %d commands in %d ms",
		       (unsigned long long)st.commands, BATCH,
		       GUEST_TIMEOUT_MS);
	}
	return BATCH - guest_cq_peek(c->sq->cq);
}

/* Each successful read of the batch brought the backend's data. */
static void batch_check_reads(struct __test_metadata *_metadata,
			      struct fctx *c, const struct guest_cpl *cpl,
			      int n)
{
	struct batch *b = &c->batch;
	char what[64];
	int i;

	batch_expected(c, c->want);
	for (i = 0; i < n; i++) {
		int k = (__u16)(cpl[i].cid - b->cid);

		/* Odd commands read; the others are checked elsewhere. */
		if (k >= BATCH || !(k % 2) || nvme_status(cpl[i].status))
			continue;
		guest_buf_read(&c->g, &b->page[k], c->got);
		snprintf(what, sizeof(what), "read %d of the batch", k);
		expect_same(_metadata, what,
			    c->want + (size_t)k * GUEST_PAGE_SIZE, c->got,
			    GUEST_PAGE_SIZE);
	}
}

/* The backend holds every write of the batch, and the rest as it was. */
static void batch_check_backend(struct __test_metadata *_metadata,
				struct fctx *c, const char *when)
{
	const size_t len = BATCH * GUEST_PAGE_SIZE;

	backend_read(_metadata, c, BATCH_SLBA, c->got, len);
	batch_expected(c, c->want);
	expect_same(_metadata, when, c->want, c->got, len);
}

/*
 * The CQEs of a CQ ring whose queue is gone (its memory is still ours):
 * the entries of the first lap, phase 1, from slot 0 on.
 */
static int ring_collect(volatile struct nvme_cqe *ring, __u32 entries,
			struct guest_cpl *out, int max)
{
	int n = 0;

	__sync_synchronize();
	while (n < max && (__u32)n < entries) {
		__u16 st = le16toh(ring[n].status);

		if (!(st & 1))
			break;
		out[n].result = le32toh(ring[n].result);
		out[n].sq_head = le16toh(ring[n].sq_head);
		out[n].sq_id = le16toh(ring[n].sq_id);
		out[n].cid = le16toh(ring[n].cid);
		out[n].status = st;
		n++;
	}
	return n;
}

FIXTURE(fault) {
	struct fctx c;
};

FIXTURE_SETUP(fault)
{
	struct fctx *c = &self->c;

	fctx_init(c);
	c->ref0 = guest_module_refcnt();
	ASSERT_LE(0, c->ref0) {
		TH_LOG("cannot read %s: is vhost_nvme loaded?",
		       GUEST_REFCNT_PATH);
	}
	ASSERT_OK(guest_setup(&c->g, MEM_SIZE));
	ASSERT_OK(guest_set_config(&c->g, 7, 0, 8));
	c->want = aligned_alloc(GUEST_PAGE_SIZE, HOST_BUF);
	c->got = aligned_alloc(GUEST_PAGE_SIZE, HOST_BUF);
	ASSERT_TRUE(c->want && c->got);
}

FIXTURE_TEARDOWN(fault)
{
	fctx_teardown(&self->c);
}

/* ---- 1: the error target swapped in under a busy queue ------------------- */

static __u64 storm_rand(struct storm *s)
{
	s->rnd ^= s->rnd << 13;
	s->rnd ^= s->rnd >> 7;
	s->rnd ^= s->rnd << 17;
	return s->rnd;
}

/* Remember the first thing that went wrong, for the log after the join. */
static __attribute__((format(printf, 2, 3)))
void storm_note(struct storm *s, const char *fmt, ...)
{
	va_list ap;

	if (s->first_bad[0])
		return;
	va_start(ap, fmt);
	vsnprintf(s->first_bad, sizeof(s->first_bad), fmt, ap);
	va_end(ap);
}

static void storm_complete(struct storm *s, const struct guest_cpl *cpl)
{
	unsigned int sc = nvme_status(cpl->status);
	int slot = s->slot_of[cpl->cid];
	__s64 t, error_start, linear_live;
	bool write;

	if (slot < 0 || cpl->sq_id != s->sq->qid) {
		s->stray++;
		storm_note(s, "cid 0x%04x sq %u status 0x%03x: not in flight (never submitted, or completed already)",
			   cpl->cid, cpl->sq_id, sc);
		return;
	}
	write = s->slot_write[slot];
	s->slot_of[cpl->cid] = -1;
	s->slot_cid[slot] = -1;
	s->inflight--;
	s->completed++;
	if (sc == NVME_SC_SUCCESS) {
		s->ok++;
		return;
	}
	s->errors++;
	if (sc != (write ? NVME_SC_WRITE_FAULT : NVME_SC_READ_ERROR)) {
		s->wrong++;
		storm_note(s, "%s cid 0x%04x: status 0x%03x dnr %u, want Success or 0x%03x",
			   write ? "write" : "read", cpl->cid, sc,
			   nvme_dnr(cpl->status),
			   write ? NVME_SC_WRITE_FAULT : NVME_SC_READ_ERROR);
		return;
	}
	if (write)
		s->write_faults++;
	else
		s->read_errors++;
	t = now_us();
	error_start = __atomic_load_n(&s->error_start, __ATOMIC_SEQ_CST);
	linear_live = __atomic_load_n(&s->linear_live, __ATOMIC_SEQ_CST);
	if (!error_start) {
		s->early++;
		storm_note(s, "%s cid 0x%04x: status 0x%03x before the error table was loaded",
			   write ? "write" : "read", cpl->cid, sc);
	} else if (linear_live && t > linear_live + STORM_LATE_MS * 1000) {
		s->late++;
		storm_note(s, "%s cid 0x%04x: status 0x%03x %lld ms after the linear table was live again",
			   write ? "write" : "read", cpl->cid, sc,
			   (long long)(t - linear_live) / 1000);
	}
}

/*
 * Take what the CQ holds; if nothing, wait up to @ms for its interrupt
 * and look again (on a timeout too: a lost interrupt shows as a slow
 * storm, the drain deadline as lost commands). Returns how many, or a
 * negative errno.
 */
static int reap_some(struct guest_cq *cq, struct guest_cpl *out, int max,
		     int ms)
{
	int k, rc;

	k = guest_cq_reap(cq, out, max);
	if (!k) {
		rc = guest_wait_fd(cq->irqfd, ms);
		if (rc < 0)
			return rc;
		cq->irqs += rc;
		k = guest_cq_reap(cq, out, max);
	}
	if (k) {
		rc = guest_cq_ring(cq);
		if (rc)
			return rc;
	}
	return k;
}

/*
 * The storm: until stopped (see STORM_MAX_MS), keep every slot busy with a read or write of a
 * random 4 KiB block; then drain, for at most DRAIN_MS. The only user of
 * the guest while it runs; it records, the test thread checks.
 */
static void *storm_fn(void *arg)
{
	struct storm *s = arg;
	struct guest_cq *cq = s->sq->cq;
	struct guest_cpl cpl[STORM_QD];
	__s64 end = now_us() + (__s64)STORM_MAX_MS * 1000, drain_end = 0;
	__u16 cid = 0;
	int i, k, rc;

	for (;;) {
		__s64 t = now_us();
		bool submit = t < end &&
			      !__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST);

		if (!submit) {
			if (!s->inflight)
				break;
			if (!drain_end)
				drain_end = t + (__s64)DRAIN_MS * 1000;
			else if (t > drain_end)
				break;
		}
		for (i = 0; submit && i < STORM_QD; i++) {
			struct nvme_sqe cmd;
			bool write;
			__u64 blk;

			if (s->slot_cid[i] >= 0)
				continue;
			write = storm_rand(s) & 1;
			blk = storm_rand(s) % s->blocks;
			if (write)
				guest_pattern(guest_ptr(s->g, s->page[i]),
					      GUEST_PAGE_SIZE, s->submitted);
			nvme_sqe_rw(&cmd,
				    write ? NVME_CMD_WRITE : NVME_CMD_READ, 1,
				    blk * BLK_LBAS, BLK_LBAS, 0);
			nvme_sqe_set_prp(&cmd, s->page[i], 0);
			/* Ids wrap: skip one still in flight. */
			while (s->slot_of[cid] >= 0)
				cid++;
			cmd.cid = htole16(cid);
			rc = guest_sq_push(s->sq, &cmd);
			if (rc) {
				s->rc = rc;
				s->rc_what = "guest_sq_push";
				return NULL;
			}
			s->slot_of[cid] = i;
			s->slot_cid[i] = cid;
			s->slot_write[i] = write;
			cid++;
			s->inflight++;
			s->submitted++;
		}
		if (submit) {
			rc = guest_sq_ring(s->sq);
			if (rc) {
				s->rc = rc;
				s->rc_what = "guest_sq_ring";
				return NULL;
			}
		}
		k = reap_some(cq, cpl, STORM_QD, 50);
		if (k < 0) {
			s->rc = k;
			s->rc_what = "reaping the CQ";
			return NULL;
		}
		for (i = 0; i < k; i++)
			storm_complete(s, &cpl[i]);
	}
	return NULL;
}

static void storm_start(struct __test_metadata *_metadata, struct fctx *c)
{
	struct storm *s = &c->storm;
	int i, rc;

	s->g = &c->g;
	s->sq = c->sq;
	s->blocks = c->nsze / BLK_LBAS;
	s->rnd = 0x9e3779b97f4a7c15ull;
	s->slot_of = malloc(65536 * sizeof(*s->slot_of));
	ASSERT_NE(NULL, s->slot_of);
	memset(s->slot_of, 0xff, 65536 * sizeof(*s->slot_of));
	for (i = 0; i < STORM_QD; i++) {
		s->page[i] = guest_alloc(&c->g, 1);
		ASSERT_NE(0, s->page[i]);
		s->slot_cid[i] = -1;
	}
	rc = pthread_create(&s->thread, NULL, storm_fn, s);
	ASSERT_EQ(0, rc) {
		TH_LOG("pthread_create: %s", strerror(rc));
	}
	s->running = true;
}

/* The storm's end: STORM_MS from its start, then at most DRAIN_MS. */
static void storm_join(struct storm *s)
{
	if (!s->running)
		return;
	pthread_join(s->thread, NULL);
	s->running = false;
}

/* For the teardown: stop submitting now, and wait for the drain. */
static void storm_stop(struct storm *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_SEQ_CST);
	storm_join(s);
}

/*
 * A dm-linear device over a slow null_blk (20 ms per command, so that
 * commands sit in it) under a QD 32 storm of random reads and writes. At
 * half time the table becomes the error target, 0.5 s later linear
 * again. Each command must complete once, with Success or the IOERR
 * status of its direction; errors only while the error table may have
 * seen them. Then 100 writes and reads must keep their data.
 */
/* The storm's backend: 64 MiB of memory, 20 ms per request (timer). */
static const struct nullb_attr storm_nullb[] = {
	{ "size", "64" },		/* MiB, = NULLB_MB */
	{ "blocksize", "512" },
	{ "memory_backed", "1" },
	{ "irqmode", "2" },		/* timer */
	{ "completion_nsec", "20000000" },
};

/*
 * After a storm with a fault of @fault's between error_start and
 * linear_live: every command completed once, with Success or the I/O
 * error of its direction, errors only while the fault was on, and the
 * queue's counters agree.
 */
static void storm_expect(struct __test_metadata *_metadata, struct fctx *c,
			 const char *fault)
{
	struct vhost_nvme_queue_stats st;
	struct storm *s = &c->storm;
	int rc;

	ASSERT_EQ(0, s->rc) {
		TH_LOG("storm: %s: %s", s->rc_what, guest_strerror(s->rc));
	}
	TH_LOG("%ld commands: %ld Success, %ld Write Fault, %ld Unrecovered Read Error, %ld other",
	       s->submitted, s->ok, s->write_faults, s->read_errors, s->wrong);
	EXPECT_EQ(0, s->inflight) {
		TH_LOG("%d commands never completed (%d s after the storm ended)",
		       s->inflight, DRAIN_MS / 1000);
	}
	EXPECT_EQ(0, s->stray) {
		TH_LOG("%ld completions of commands not in flight; first: %s",
		       s->stray, s->first_bad);
	}
	EXPECT_EQ(0, s->wrong) {
		TH_LOG("%ld completions with a status other than Success or the I/O error of their direction; first: %s",
		       s->wrong, s->first_bad);
	}
	EXPECT_EQ(0, s->early + s->late) {
		TH_LOG("%ld errors before %s, %ld after it ended; first: %s",
		       s->early, fault, s->late, s->first_bad);
	}
	EXPECT_LT(0, s->write_faults + s->read_errors) {
		TH_LOG("no command failed during the %d ms of %s: the error never reached the guest",
		       STORM_ERROR_MS, fault);
	}
	guest_msleep(100);
	rc = guest_cq_peek(c->sq->cq);
	EXPECT_EQ(0, rc) {
		TH_LOG("%d CQEs after every command had completed", rc);
	}
	ASSERT_OK(guest_get_stats(&c->g, 1, &st));
	EXPECT_EQ(s->submitted, st.commands);
	EXPECT_EQ(s->errors, st.errors) {
		TH_LOG("the queue counted %llu errors, the guest saw %ld",
		       (unsigned long long)st.errors, s->errors);
	}
}

TEST_F_TIMEOUT(fault, dm_error_mid_flight, 180)
{
	struct fctx *c = &self->c;
	struct storm *s = &c->storm;
	char linear[160], error[64], out[512];
	double t, to_error, to_linear;
	int rc;

	if (!dm_ready(_metadata, "linear error"))
		return;
	if (!test_nullb(_metadata, &c->nb, storm_nullb,
			ARRAY_SIZE(storm_nullb)))
		return;
	snprintf(linear, sizeof(linear), "0 %llu linear %s 0", NULLB_SECTORS,
		 c->nb.dev);
	snprintf(error, sizeof(error), "0 %llu error", NULLB_SECTORS);
	dm_create(_metadata, &c->dm, linear);
	open_bdev(_metadata, c, c->dm.dev);
	attach(_metadata, c, c->be.fd);
	ASSERT_EQ(NULLB_SECTORS, c->nsze);

	storm_start(_metadata, c);
	guest_msleep(STORM_MS / 2);
	__atomic_store_n(&s->error_start, now_us(), __ATOMIC_SEQ_CST);
	t = now_ms();
	rc = dm_swap(&c->dm, error, out, sizeof(out));
	to_error = now_ms() - t;
	ASSERT_EQ(0, rc) {
		TH_LOG("swap to the error table: exit %d: %s", rc, out);
	}
	guest_msleep(STORM_ERROR_MS);
	t = now_ms();
	rc = dm_swap(&c->dm, linear, out, sizeof(out));
	to_linear = now_ms() - t;
	__atomic_store_n(&s->linear_live, now_us(), __ATOMIC_SEQ_CST);
	ASSERT_EQ(0, rc) {
		TH_LOG("swap back to the linear table: exit %d: %s", rc, out);
	}
	/* The rest of the storm runs on the linear table. */
	guest_msleep(STORM_MS / 2);
	__atomic_store_n(&s->stop, 1, __ATOMIC_SEQ_CST);
	storm_join(s);

	storm_expect(_metadata, c, "the error table");
	TH_LOG("table swaps took %.0f ms (to error) and %.0f ms (back)",
	       to_error, to_linear);
	io_verify(_metadata, c, 0, 100, 1000, "after the linear table was back");
	guest_close(&c->g);
	expect_refcnt(_metadata, c->ref0, "after close");
}

/*
 * Commands the module runs on its workqueue (Write Zeroes, with and
 * without FUA, and DSM deallocate: blkdev_issue_zeroout() and
 * blkdev_issue_discard() return an errno, not a bio status) on a dm
 * error target: each fails with the I/O error of a write, and works once
 * the linear table is back.
 */
TEST_F_TIMEOUT(fault, dm_error_deferred_commands, 120)
{
	const struct nullb_attr attrs[] = {
		{ "size", "64" },		/* MiB, = NULLB_MB */
		{ "blocksize", "512" },
		{ "memory_backed", "1" },
		{ "discard", "1" },
	};
	static const char *const what[] = {
		"write zeroes", "write zeroes (FUA)", "dataset management",
	};
	struct fctx *c = &self->c;
	char linear[160], error[64], out[512];
	struct nvme_dsm_range *r;
	struct nvme_sqe cmd;
	struct guest_cpl cpl;
	unsigned int want;
	__u64 list;
	int round, i, rc;

	if (!dm_ready(_metadata, "linear error"))
		return;
	if (!test_nullb(_metadata, &c->nb, attrs, ARRAY_SIZE(attrs)))
		return;
	snprintf(linear, sizeof(linear), "0 %llu linear %s 0", NULLB_SECTORS,
		 c->nb.dev);
	snprintf(error, sizeof(error), "0 %llu error", NULLB_SECTORS);
	dm_create(_metadata, &c->dm, error);
	open_bdev(_metadata, c, c->dm.dev);
	attach(_metadata, c, c->be.fd);
	list = guest_alloc(&c->g, 1);
	ASSERT_NE(0, list);
	r = guest_ptr(&c->g, list);
	r->cattr = 0;
	r->nlb = htole32(256);
	r->slba = htole64(1024);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < 3; i++) {
			if (i < 2)
				nvme_sqe_write_zeroes(&cmd, 1, 2048, 256, false);
			else
				nvme_sqe_dsm(&cmd, 1, 1, NVME_DSM_AD);
			if (i == 1)
				cmd.cdw12 |= htole32(NVME_RW_FUA);
			if (i == 2)
				nvme_sqe_set_prp(&cmd, list, 0);
			rc = guest_exec(c->sq, &cmd, &cpl);
			ASSERT_EQ(0, rc) {
				TH_LOG("%s: %s", what[i], guest_strerror(rc));
			}
			TH_LOG("%s on the %s table: status 0x%03x", what[i],
			       round ? "linear" : "error",
			       nvme_status(cpl.status));
			want = round ? NVME_SC_SUCCESS : NVME_SC_WRITE_FAULT;
			EXPECT_EQ(want, nvme_status(cpl.status));
		}
		if (!round) {
			rc = dm_swap(&c->dm, linear, out, sizeof(out));
			ASSERT_EQ(0, rc) {
				TH_LOG("swap to the linear table: exit %d: %s",
				       rc, out);
			}
		}
	}
	guest_close(&c->g);
	expect_refcnt(_metadata, c->ref0, "after close");
}

/*
 * A file backend truncated under the namespace (by the VMM or anyone with
 * the file): a read past the new end is short, and fails as Unrecovered
 * Read Error rather than returning stale guest memory as data; a read
 * before it works, and a write past it extends the file again.
 */
TEST_F_TIMEOUT(fault, file_truncated_under_namespace, 60)
{
	const __u64 size = 16ull << 20, cut = size / 2;
	struct fctx *c = &self->c;
	struct guest_cpl cpl;
	struct nvme_sqe cmd;
	struct guest_buf b;
	struct stat sb;

	ASSERT_OK(guest_backend_open(&c->be, GUEST_BACKEND_FILE, size));
	attach(_metadata, c, c->be.fd);
	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, GUEST_PAGE_SIZE, false));
	ASSERT_EQ(0, ftruncate(c->be.fd, cut));

	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, cut / LBA, BLK_LBAS, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	ASSERT_EXEC(c->sq, &cmd, &cpl);
	EXPECT_NVME_STATUS_WHAT(NVME_SC_READ_ERROR, &cpl, "a read past the end");
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, cut / LBA - 1, BLK_LBAS, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	ASSERT_EXEC(c->sq, &cmd, &cpl);
	EXPECT_NVME_STATUS_WHAT(NVME_SC_READ_ERROR, &cpl,
				"a read across the end");
	io_verify(_metadata, c, 0, 4, 77, "before the end");
	io_verify(_metadata, c, (size - GUEST_PAGE_SIZE) / LBA, 1, 78,
		  "at the old end");
	ASSERT_EQ(0, fstat(c->be.fd, &sb));
	EXPECT_EQ(size, (__u64)sb.st_size);
	guest_close(&c->g);
	expect_refcnt(_metadata, c->ref0, "after close");
}

/*
 * The block layer's own fault injection (CONFIG_FAIL_MAKE_REQUEST): every
 * bio to the backend fails in submit_bio() itself while the disk's
 * make-it-fail is set, mid-storm. Debug kernels have it; others SKIP.
 */
#define FMR_DIR	"/sys/kernel/debug/fail_make_request"

static void fmr_set(struct __test_metadata *_metadata, const char *attr,
		    const char *val)
{
	char path[128];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", FMR_DIR, attr);
	rc = attr_write(path, val);
	ASSERT_EQ(0, rc) {
		TH_LOG("%s=%s: %s", path, val, strerror(-rc));
	}
}

/* Back to the defaults of fail_make_request, the disk's flag cleared. */
static void fmr_restore(struct fctx *c)
{
	static const char *const dflt[][2] = {
		{ "probability", "0" }, { "interval", "1" },
		{ "times", "1" }, { "verbose", "2" },
	};
	char path[128];
	size_t i;

	if (!c->fmr_set)
		return;
	if (c->nb.name[0]) {
		snprintf(path, sizeof(path), "/sys/block/%s/make-it-fail",
			 c->nb.name);
		attr_write(path, "0");
	}
	for (i = 0; i < ARRAY_SIZE(dflt); i++) {
		snprintf(path, sizeof(path), "%s/%s", FMR_DIR, dflt[i][0]);
		attr_write(path, dflt[i][1]);
	}
	c->fmr_set = false;
}

TEST_F_TIMEOUT(fault, fail_make_request_mid_flight, 180)
{
	struct fctx *c = &self->c;
	struct storm *s = &c->storm;
	char mif[128];
	int rc;

	if (access(FMR_DIR, F_OK))
		SKIP(return, "no %s: needs CONFIG_FAIL_MAKE_REQUEST, CONFIG_FAULT_INJECTION_DEBUG_FS and debugfs mounted",
		     FMR_DIR);
	if (!test_nullb(_metadata, &c->nb, storm_nullb,
			ARRAY_SIZE(storm_nullb)))
		return;
	snprintf(mif, sizeof(mif), "/sys/block/%s/make-it-fail", c->nb.name);
	/* Every bio of a disk marked make-it-fail, quietly, until told. */
	c->fmr_set = true;
	fmr_set(_metadata, "verbose", "0");
	fmr_set(_metadata, "interval", "1");
	fmr_set(_metadata, "times", "-1");
	fmr_set(_metadata, "probability", "100");
	open_bdev(_metadata, c, c->nb.dev);
	attach(_metadata, c, c->be.fd);

	storm_start(_metadata, c);
	guest_msleep(STORM_MS / 2);
	__atomic_store_n(&s->error_start, now_us(), __ATOMIC_SEQ_CST);
	rc = attr_write(mif, "1");
	ASSERT_EQ(0, rc) {
		TH_LOG("%s=1: %s", mif, strerror(-rc));
	}
	guest_msleep(STORM_ERROR_MS);
	rc = attr_write(mif, "0");
	__atomic_store_n(&s->linear_live, now_us(), __ATOMIC_SEQ_CST);
	fmr_set(_metadata, "probability", "0");
	ASSERT_EQ(0, rc) {
		TH_LOG("%s=0: %s", mif, strerror(-rc));
	}
	guest_msleep(STORM_MS / 2);
	__atomic_store_n(&s->stop, 1, __ATOMIC_SEQ_CST);
	storm_join(s);

	storm_expect(_metadata, c, "make-it-fail");
	io_verify(_metadata, c, 0, 100, 1000, "after make-it-fail was cleared");
	guest_close(&c->g);
	expect_refcnt(_metadata, c->ref0, "after close");
}

/* ---- 2: teardown under a slow backend (dm-delay) ------------------------- */

#define DELAY_MS	200

/*
 * A dm-delay device (@ms on reads, writes and flushes) over a fast
 * memory-backed null_blk, attached and started. False (and SKIP) without
 * dm-delay or configfs null_blk.
 */
static bool delay_setup(struct __test_metadata *_metadata, struct fctx *c,
			unsigned int ms)
{
	const struct nullb_attr attrs[] = {
		{ "size", "64" },		/* MiB, = NULLB_MB */
		{ "blocksize", "512" },
		{ "memory_backed", "1" },
	};
	char table[192];

	if (!dm_ready(_metadata, "delay"))
		return false;
	if (!test_nullb(_metadata, &c->nb, attrs, ARRAY_SIZE(attrs)))
		return false;
	snprintf(table, sizeof(table), "0 %llu delay %s 0 %u %s 0 %u",
		 NULLB_SECTORS, c->nb.dev, ms, c->nb.dev, ms);
	dm_create(_metadata, &c->dm, table);
	open_bdev(_metadata, c, c->dm.dev);
	attach(_metadata, c, c->be.fd);
	return true;
}

/*
 * DELETE_SQ with 32 commands in the backend: it waits for them and posts
 * their CQEs (and their interrupt) before it returns, within the delay
 * and some; nothing is posted after. The qid can then be used again.
 */
TEST_F_TIMEOUT(fault, dm_delay_delete_sq, 120)
{
	struct guest_cpl cpl[QUEUE_ENTRIES];
	struct fctx *c = &self->c;
	struct guest_cq *cq;
	double t0, t, waited;
	int inflight, n, irq, rc;

	if (!delay_setup(_metadata, c, DELAY_MS))
		return;
	cq = c->sq->cq;
	batch_submit(_metadata, c, 0x100, 200);
	/* Before the count: every CQE posted after it raises a new one. */
	guest_wait_fd(cq->irqfd, 0);
	inflight = batch_in_flight(_metadata, c);
	if (!inflight)
		SKIP(return, "all %d commands completed before DELETE_SQ: dm-delay did not delay",
		     BATCH);

	t0 = now_ms();
	waited = t0 - c->batch.rung;
	rc = guest_delete_sq(c->sq);
	t = now_ms() - t0;
	ASSERT_OK(rc);
	c->sq = NULL;
	n = guest_cq_peek(cq);
	irq = guest_wait_fd(cq->irqfd, 0);
	TH_LOG("DELETE_SQ took %.0f ms with %d of %d commands in flight for %.0f ms (delay %d ms)",
	       t, inflight, BATCH, waited, DELAY_MS);
	EXPECT_GT(DELAY_MS + SLACK_MS, t);
	EXPECT_EQ(BATCH, n) {
		TH_LOG("DELETE_SQ returned with %d of %d CQEs posted: it did not wait for the commands in flight",
		       n, BATCH);
	}
	EXPECT_EQ(1, irq) {
		TH_LOG("no interrupt for the CQEs DELETE_SQ posted: %s",
		       irq < 0 ? guest_strerror(irq) : "irqfd not signalled");
	}
	n = guest_cq_reap(cq, cpl, ARRAY_SIZE(cpl));
	check_once(_metadata, cpl, n, 0x100, BATCH, true);
	batch_check_reads(_metadata, c, cpl, n);
	guest_msleep(300);
	n = guest_cq_peek(cq);
	EXPECT_EQ(0, n) {
		TH_LOG("%d CQEs posted after DELETE_SQ returned", n);
	}
	batch_check_backend(_metadata, c, "backend after DELETE_SQ");

	/* Queue id 1 is free again, and the namespace works. */
	ASSERT_OK(guest_delete_cq(cq));
	ASSERT_OK(guest_create_qpair(&c->g, 1, QUEUE_ENTRIES, QUEUE_ENTRIES,
				     0, &c->sq));
	io_verify(_metadata, c, 0, 4, 2000, "after DELETE_SQ");
}

/*
 * RESET with 32 commands in the backend: it is STOP (which posts every
 * completion) and then the queues go. When it returns, the old CQ's
 * memory holds all 32 CQEs; the controller starts again.
 */
TEST_F_TIMEOUT(fault, dm_delay_reset, 120)
{
	struct guest_cpl cpl[QUEUE_ENTRIES];
	volatile struct nvme_cqe *ring;
	struct fctx *c = &self->c;
	double t0, t, waited;
	int inflight, n, rc;
	__u32 entries;

	if (!delay_setup(_metadata, c, DELAY_MS))
		return;
	ring = c->sq->cq->ring;
	entries = c->sq->cq->entries;
	batch_submit(_metadata, c, 0x100, 300);
	inflight = batch_in_flight(_metadata, c);
	if (!inflight)
		SKIP(return, "all %d commands completed before RESET: dm-delay did not delay",
		     BATCH);

	t0 = now_ms();
	waited = t0 - c->batch.rung;
	rc = guest_reset(&c->g);
	t = now_ms() - t0;
	ASSERT_OK(rc);
	c->sq = NULL;
	n = ring_collect(ring, entries, cpl, ARRAY_SIZE(cpl));
	TH_LOG("RESET took %.0f ms with %d of %d commands in flight for %.0f ms (delay %d ms)",
	       t, inflight, BATCH, waited, DELAY_MS);
	EXPECT_GT(DELAY_MS + SLACK_MS, t);
	EXPECT_EQ(BATCH, n) {
		TH_LOG("RESET returned with %d of %d CQEs in the CQ's memory: STOP did not post every completion",
		       n, BATCH);
	}
	check_once(_metadata, cpl, n, 0x100, BATCH, true);
	batch_check_reads(_metadata, c, cpl, n);
	batch_check_backend(_metadata, c, "backend after RESET");

	/* A controller enabled again after the reset. */
	ASSERT_OK(guest_start(&c->g));
	ASSERT_OK(guest_set_dbbuf(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 1, QUEUE_ENTRIES, QUEUE_ENTRIES,
				     0, &c->sq));
	io_verify(_metadata, c, 0, 4, 3000, "after RESET");
}

/*
 * close() with 32 commands in the backend: the release waits for them
 * (the writes are in the backend when close returns), within the delay
 * and some, and the module reference goes. A new device on the same
 * backend fd then works.
 */
TEST_F_TIMEOUT(fault, dm_delay_close, 120)
{
	struct fctx *c = &self->c;
	double t0, t, waited;
	int inflight;

	if (!delay_setup(_metadata, c, DELAY_MS))
		return;
	batch_submit(_metadata, c, 0x100, 400);
	inflight = batch_in_flight(_metadata, c);
	if (!inflight)
		SKIP(return, "all %d commands completed before close: dm-delay did not delay",
		     BATCH);

	t0 = now_ms();
	waited = t0 - c->batch.rung;
	guest_close(&c->g);
	t = now_ms() - t0;
	c->sq = NULL;
	TH_LOG("close took %.0f ms with %d of %d commands in flight for %.0f ms (delay %d ms)",
	       t, inflight, BATCH, waited, DELAY_MS);
	EXPECT_GT(DELAY_MS + SLACK_MS, t);
	expect_refcnt(_metadata, c->ref0, "after close with commands in flight");
	batch_check_backend(_metadata, c,
			    "backend after close (the writes were in flight)");

	ASSERT_OK(guest_setup(&c->g, MEM_SIZE));
	ASSERT_OK(guest_set_config(&c->g, 7, 0, 8));
	attach(_metadata, c, c->be.fd);
	io_verify(_metadata, c, 0, 4, 4000, "a new device on the same backend");
}

/* ---- 3: a file system that fills up -------------------------------------- */

#define ENOSPC_FS_OPTS		"size=2m"
#define ENOSPC_FILE_SIZE	(16ull << 20)
/* Takes space before the writes, and gives it back after. */
#define ENOSPC_FILLER_SIZE	(512u << 10)
#define ENOSPC_CMD		(64u << 10)
#define ENOSPC_CMDS		64		/* 4 MiB */
#define ENOSPC_RETRY		4

/* Command @i: 64 KiB at byte @i * 64 Ki, through @tmpl's PRPs. */
static void enospc_cmd(struct nvme_sqe *cmd, __u8 opcode, int i,
		       const struct nvme_sqe *tmpl)
{
	nvme_sqe_rw(cmd, opcode, 1, (__u64)i * (ENOSPC_CMD / LBA),
		    ENOSPC_CMD / LBA, 0);
	cmd->prp1 = tmpl->prp1;
	cmd->prp2 = tmpl->prp2;
}

/*
 * A sparse 16 MiB file on a 2 MiB tmpfs, 512 KiB of it taken by another
 * file: 4 MiB written in order, 64 KiB at a time. The writes that fit
 * succeed, the rest get Capacity Exceeded with DNR - as many as fit by
 * statfs. A command that straddles the end (free space not a multiple of
 * 64 KiB) is a short write, which the module reports as Write Fault; the
 * sizes here leave the free space aligned, where that is not accepted.
 * Reads of what was written return it, failed writes left zeroes; once
 * the other file is gone, writes work again.
 */
TEST_F_TIMEOUT(fault, enospc_file, 120)
{
	unsigned int status[ENOSPC_CMDS];
	struct fctx *c = &self->c;
	char filler[96], what[96];
	struct nvme_sqe tmpl, cmd;
	struct guest_cpl cpl;
	struct guest_buf b;
	struct statfs sfs;
	__u64 free_bytes, fit;
	int i, first_fail = -1, fd, rc;
	bool aligned;

	tmpfs_create(_metadata, &c->fs, ENOSPC_FS_OPTS);
	snprintf(filler, sizeof(filler), "%s/filler", c->fs.dir);
	rc = make_file(filler, ENOSPC_FILLER_SIZE);
	ASSERT_EQ(0, rc) {
		TH_LOG("create %s: %s", filler, strerror(-rc));
	}
	snprintf(c->be.path, sizeof(c->be.path), "%s/disk", c->fs.dir);
	fd = open(c->be.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ASSERT_LE(0, fd);
	rc = ftruncate(fd, ENOSPC_FILE_SIZE) ? -errno : 0;
	close(fd);
	ASSERT_EQ(0, rc);
	c->be.kind = GUEST_BACKEND_FILE;
	c->be.size = ENOSPC_FILE_SIZE;
	c->be.fd = open_direct(c->be.path, O_RDWR);
	c->be.io_fd = open_direct(c->be.path, O_RDWR);
	ASSERT_TRUE(c->be.fd >= 0 && c->be.io_fd >= 0);
	attach(_metadata, c, c->be.fd);
	ASSERT_EQ(ENOSPC_FILE_SIZE >> LBA_SHIFT, c->nsze);

	ASSERT_EQ(0, statfs(c->fs.dir, &sfs));
	free_bytes = (__u64)sfs.f_bfree * sfs.f_bsize;
	fit = free_bytes / ENOSPC_CMD;
	aligned = !(free_bytes % ENOSPC_CMD);
	ASSERT_LT(fit, ENOSPC_CMDS) {
		TH_LOG("%llu bytes free on the tmpfs: the writes would all fit",
		       (unsigned long long)free_bytes);
	}
	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, ENOSPC_CMD, false));
	nvme_sqe_init(&tmpl, NVME_CMD_WRITE, 1);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &tmpl));

	for (i = 0; i < ENOSPC_CMDS; i++) {
		guest_pattern(c->want, ENOSPC_CMD, 500 + i);
		guest_buf_write(&c->g, &b, c->want);
		enospc_cmd(&cmd, NVME_CMD_WRITE, i, &tmpl);
		ASSERT_EXEC(c->sq, &cmd, &cpl);
		status[i] = nvme_status(cpl.status);
		if (status[i] && first_fail < 0)
			first_fail = i;
		snprintf(what, sizeof(what), "write %d (at %u KiB)", i,
			 i * (ENOSPC_CMD >> 10));
		if (first_fail < 0)
			continue;
		/* Space only shrinks: once one failed, all must. */
		if (i == first_fail && !aligned &&
		    status[i] == NVME_SC_WRITE_FAULT) {
			TH_LOG("%s: Write Fault, the short write at the end of the free space",
			       what);
			continue;
		}
		EXPECT_NVME_STATUS_WHAT(NVME_SC_CAP_EXCEEDED, &cpl, what);
		EXPECT_EQ(1, nvme_dnr(cpl.status)) {
			TH_LOG("%s: Capacity Exceeded without DNR (status 0x%04x)",
			       what, cpl.status);
		}
	}
	TH_LOG("%llu KiB free: %llu writes of %u KiB fit; the first failure was write %d",
	       (unsigned long long)free_bytes >> 10, (unsigned long long)fit,
	       ENOSPC_CMD >> 10, first_fail);
	ASSERT_LT(0, first_fail) {
		TH_LOG("%s", first_fail < 0 ?
		       "all 4 MiB written to a file on a 2 MiB file system" :
		       "even the first write failed");
	}
	if (aligned) {
		EXPECT_EQ(fit, first_fail) {
			TH_LOG("write %d failed with %llu writes' space free",
			       first_fail, (unsigned long long)fit);
		}
	}

	/* What was written reads back; the failed writes left nothing. */
	for (i = 0; i < first_fail && !_metadata->exit_code; i++) {
		guest_buf_set_pages(&c->g, &b, 0xa5);
		enospc_cmd(&cmd, NVME_CMD_READ, i, &tmpl);
		snprintf(what, sizeof(what), "read %d (at %u KiB)", i,
			 i * (ENOSPC_CMD >> 10));
		ASSERT_EXEC(c->sq, &cmd, &cpl);
		EXPECT_NVME_STATUS_WHAT(NVME_SC_SUCCESS, &cpl, what);
		guest_buf_read(&c->g, &b, c->got);
		guest_pattern(c->want, ENOSPC_CMD, 500 + i);
		expect_same(_metadata, what, c->want, c->got, ENOSPC_CMD);
	}
	for (i = first_fail; i < ENOSPC_CMDS && !_metadata->exit_code; i++) {
		if (status[i] != NVME_SC_CAP_EXCEEDED)
			continue;
		backend_read(_metadata, c, (__u64)i * (ENOSPC_CMD / LBA),
			     c->got, ENOSPC_CMD);
		snprintf(what, sizeof(what),
			 "file after the failed write %d", i);
		expect_zero(_metadata, what, c->got, ENOSPC_CMD);
	}

	/* Room again: the writes that failed now succeed. */
	ASSERT_EQ(0, unlink(filler));
	for (i = first_fail; i < first_fail + ENOSPC_RETRY &&
	     i < ENOSPC_CMDS && !_metadata->exit_code; i++) {
		guest_pattern(c->want, ENOSPC_CMD, 600 + i);
		guest_buf_write(&c->g, &b, c->want);
		enospc_cmd(&cmd, NVME_CMD_WRITE, i, &tmpl);
		snprintf(what, sizeof(what), "write %d again, after freeing %u KiB",
			 i, ENOSPC_FILLER_SIZE >> 10);
		ASSERT_EXEC(c->sq, &cmd, &cpl);
		EXPECT_NVME_STATUS_WHAT(NVME_SC_SUCCESS, &cpl, what);

		guest_buf_set_pages(&c->g, &b, 0xa5);
		enospc_cmd(&cmd, NVME_CMD_READ, i, &tmpl);
		ASSERT_EXEC(c->sq, &cmd, &cpl);
		EXPECT_NVME_STATUS_WHAT(NVME_SC_SUCCESS, &cpl, what);
		guest_buf_read(&c->g, &b, c->got);
		expect_same(_metadata, what, c->want, c->got, ENOSPC_CMD);
	}
}

/* ---- 4: the block device removed under commands in flight ---------------- */

#define REMOVED_WAIT_MS	10000
#define LATER_CMDS	8

/*
 * 32 commands in a slow null_blk (100 ms each); then power=0 (its
 * del_gendisk, which waits for them) and rmdir, while the namespace
 * still holds the disk open. Every command completes once within 10 s,
 * whatever its status; commands after the removal complete with an
 * error, they do not hang; STOP and close work and the reference goes.
 */
TEST_F_TIMEOUT(fault, backend_removed_in_flight, 120)
{
	const struct nullb_attr attrs[] = {
		{ "size", "64" },
		{ "blocksize", "512" },
		{ "memory_backed", "1" },
		{ "irqmode", "2" },		/* timer */
		{ "completion_nsec", "100000000" },
	};
	struct guest_cpl cpl[QUEUE_ENTRIES];
	struct fctx *c = &self->c;
	char dir[128], path[192], what[64];
	double t0, t_off, t_rm, t_stop, t_close, t;
	int inflight, ok, i, n, rc;
	struct nvme_sqe cmd;

	if (!test_nullb(_metadata, &c->nb, attrs, ARRAY_SIZE(attrs)))
		return;
	open_bdev(_metadata, c, c->nb.dev);
	attach(_metadata, c, c->be.fd);
	batch_submit(_metadata, c, 0x100, 700);
	inflight = batch_in_flight(_metadata, c);
	if (!inflight)
		SKIP(return, "all %d commands completed before the removal: the null_blk was not slow",
		     BATCH);

	snprintf(dir, sizeof(dir), "%s/%s", NULLB_CFG_DIR, c->nb.name);
	snprintf(path, sizeof(path), "%s/power", dir);
	t0 = now_ms();
	rc = attr_write(path, "0");
	t_off = now_ms() - t0;
	ASSERT_EQ(0, rc) {
		TH_LOG("%s = 0: %s", path, strerror(-rc));
	}
	c->nb.powered = false;
	t = now_ms();
	rc = rmdir(dir) ? -errno : 0;
	t_rm = now_ms() - t;
	ASSERT_EQ(0, rc) {
		TH_LOG("rmdir %s: %s", dir, strerror(-rc));
	}
	c->nb.name[0] = 0;

	ASSERT_WAIT(c->sq, c->sq->cq, cpl, BATCH, REMOVED_WAIT_MS);
	ok = check_once(_metadata, cpl, BATCH, 0x100, BATCH, false);
	TH_LOG("power=0 took %.0f ms, rmdir %.0f ms; of %d commands (%d in flight), %d Success; all completed %.0f ms after the power-off",
	       t_off, t_rm, BATCH, inflight, ok, now_ms() - t0);
	EXPECT_GT(REMOVED_WAIT_MS, t_off + t_rm) {
		TH_LOG("removing the disk took %.0f ms with commands in flight",
		       t_off + t_rm);
	}
	guest_msleep(100);
	n = guest_cq_peek(c->sq->cq);
	EXPECT_EQ(0, n) {
		TH_LOG("%d CQEs more after all %d", n, BATCH);
	}

	/* The disk is gone: later commands fail, and do not hang. */
	for (i = 0; i < LATER_CMDS; i++) {
		nvme_sqe_rw(&cmd, i % 2 ? NVME_CMD_READ : NVME_CMD_WRITE, 1,
			    BATCH_SLBA + i * BLK_LBAS, BLK_LBAS, 0);
		ASSERT_OK(guest_prp_build(&c->g, &c->batch.page[i], 0, &cmd));
		cmd.cid = htole16(0x200 + i);
		ASSERT_OK(guest_sq_push(c->sq, &cmd));
	}
	ASSERT_OK(guest_sq_ring(c->sq));
	ASSERT_WAIT(c->sq, c->sq->cq, cpl, LATER_CMDS, REMOVED_WAIT_MS);
	check_once(_metadata, cpl, LATER_CMDS, 0x200, LATER_CMDS, false);
	for (i = 0; i < LATER_CMDS; i++) {
		int k = (__u16)(cpl[i].cid - 0x200);

		snprintf(what, sizeof(what), "%s %d after the removal",
			 k % 2 ? "read" : "write", k);
		EXPECT_NE(0, nvme_status(cpl[i].status)) {
			TH_LOG("%s: Success on a deleted disk", what);
		}
		TH_LOG("%s: status 0x%03x dnr %u", what,
		       nvme_status(cpl[i].status), nvme_dnr(cpl[i].status));
	}

	t = now_ms();
	rc = guest_stop(&c->g);
	t_stop = now_ms() - t;
	EXPECT_OK(rc);
	t = now_ms();
	guest_close(&c->g);
	t_close = now_ms() - t;
	c->sq = NULL;
	TH_LOG("STOP took %.0f ms, close %.0f ms", t_stop, t_close);
	EXPECT_GT(SLACK_MS, t_stop);
	EXPECT_GT(SLACK_MS, t_close);
	expect_refcnt(_metadata, c->ref0, "after close");
}

/* ---- 5: ioctls while the backend is slow --------------------------------- */

#define SLOW_MS		500
#define STATS_MAX_MS	100

/*
 * 32 commands in a backend that takes 500 ms: GET_QUEUE_STATS, which
 * takes the worker's lock, is timed every 10 ms until they complete.
 * None may take 100 ms: the worker must not wait for the backend while
 * it holds the lock.
 */
TEST_F_TIMEOUT(fault, slow_backend_stats, 120)
{
	struct vhost_nvme_queue_stats st;
	struct guest_cpl cpl[BATCH];
	struct fctx *c = &self->c;
	double t0, t, lat, worst = 0, first = -1, total;
	int samples = 0, busy = 0, posted, rc;
	char desc[512] = "";

	if (!delay_setup(_metadata, c, SLOW_MS))
		return;
	batch_submit(_metadata, c, 0x100, 800);
	t0 = c->batch.rung;
	while ((posted = guest_cq_peek(c->sq->cq)) < BATCH &&
	       now_ms() - t0 < SLOW_MS + GUEST_TIMEOUT_MS) {
		t = now_ms();
		rc = guest_get_stats(&c->g, 1, &st);
		lat = now_ms() - t;
		ASSERT_OK(rc);
		if (first < 0)
			first = lat;
		if (lat > worst)
			worst = lat;
		samples++;
		/* Fetched, no CQE yet: the backend holds them now. */
		if (st.commands > (__u64)guest_cq_peek(c->sq->cq))
			busy++;
		guest_msleep(10);
	}
	total = now_ms() - t0;
	if (posted < BATCH)
		guest_sq_describe(c->sq, desc, sizeof(desc));
	ASSERT_EQ(BATCH, posted) {
		TH_LOG("%d of %d CQEs in %.0f ms: %s", posted, BATCH, total,
		       desc);
	}
	ASSERT_WAIT(c->sq, c->sq->cq, cpl, BATCH, GUEST_TIMEOUT_MS);
	check_once(_metadata, cpl, BATCH, 0x100, BATCH, true);
	batch_check_reads(_metadata, c, cpl, BATCH);
	batch_check_backend(_metadata, c, "backend after the slow batch");
	TH_LOG("%d commands in %.0f ms (delay %d ms); GET_QUEUE_STATS took %.1f ms at once, at most %.1f ms in %d calls (%d with commands in the backend)",
	       BATCH, total, SLOW_MS, first, worst, samples, busy);
	if (!busy)
		SKIP(return, "no GET_QUEUE_STATS while commands were in the backend (all done in %.0f ms)",
		     total);
	EXPECT_GT(STATS_MAX_MS, worst) {
		TH_LOG("GET_QUEUE_STATS waited %.1f ms with commands in a %d ms backend: the worker holds its lock while it waits for the backend",
		       worst, SLOW_MS);
	}
}

TEST_HARNESS_MAIN
