// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme against a hostile guest and a careless VMM: regression tests
 * for the findings of a hostile-guest review. Each test failed on the
 * module before its fix (the old behaviour is named with each group) and
 * passes after it. The exceptions are coverage next to a fix and passed
 * before too: fua.file (a file ignores FUA on reads), the zero-copy remap,
 * legal_full_lap_still_works, cq_doorbell_with_shadow_wakes_sq and
 * nofalloc.ext2.
 *
 *  A  fua_read*: FUA on a Read. A block device got REQ_OP_READ | REQ_FUA,
 *     which the block layer refuses with a WARN and a Read Error (0x281).
 *  B  memtable_remap_*: the memory table replaced while a bounced read is
 *     in flight. Its data was copied out at completion to the owner
 *     addresses the old table named, by then another mapping of the
 *     owner's (a write into memory the guest no longer owns).
 *  C  poll_off_rearms_eventidx: polling switched off while the worker
 *     polls. The next round ran unpolled but left the SQ's EventIdx behind,
 *     so a guest that follows EventIdx rang no doorbell and its command
 *     was never fetched.
 *  D  Writes that write(2) on the backend's fd would refuse: a read-only
 *     block device (BLKROSET), an active swap device, an fd opened or set
 *     O_APPEND, a frozen file system. All were written (a frozen one even
 *     while frozen).
 *  E  bounce_budget_backpressure: bounce buffers had no budget, every
 *     command in flight could hold up to MDTS of kernel memory;
 *     stats_not_blocked_by_long_commands: the worker zeroed synchronously,
 *     its lock held for the whole round, so every ioctl that takes it
 *     waited for 1 GiB of Write Zeroes.
 *  F  Doorbell values below the queue size that the guest may still not
 *     write: a CQ head past the CQ tail (the room computation wrapped and
 *     the CQ was overrun), an SQ tail moved back (a lap of stale SQEs run
 *     again); legal_full_lap_still_works is the coverage that a check
 *     must not refuse a tail that wrapped past a reported head.
 *  G  The error ring: a record popped before GET_ERROR's copy-out, lost on
 *     -EFAULT; errors past the 64 kept dropped without a trace.
 *  H  cq_doorbell_with_shadow_wakes_sq: coverage of the UAPI's @kickfd
 *     rule. With shadow doorbells, a CQ without a kickfd has its head
 *     doorbell writes forwarded, and they must wake an SQ waiting for room.
 *  I  Write Zeroes: FUA ignored (no flush reached a volatile write cache);
 *     a file system that neither zeroes nor punches ranges got Invalid
 *     Opcode instead of zeroes written.
 *
 * Tests that need configfs null_blk devices, file systems, swap or module
 * parameters create them in the test body and the teardown removes them
 * (teardown runs after a failed ASSERT too, not after a failed setup, so
 * setups create nothing that outlives the process). Every wait is bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <linux/fs.h>

#include "guest.h"
#include "nullb.h"
#include "kselftest_harness.h"

#define LBA_SHIFT	9
#define LBA		(1u << LBA_SHIFT)
#define MEM_SIZE	(64ull << 20)
#define FILE_SIZE	(64ull << 20)
#define HOST_BUF	((1u << 20) + 2 * GUEST_PAGE_SIZE)

#define BOUNCE_PARAM	"/sys/module/vhost_nvme/parameters/bounce_kb"
/* /sys/block/<disk>/stat, 0-based: "flush I/Os", the 16th field. */
#define STAT_FLUSH_IOS	15

static int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- sysfs and configfs attributes -------------------------------------- */

/* Field @idx (0-based) of /sys/block/@disk/stat, or -1. */
static long long block_stat(const char *disk, int idx)
{
	char path[96], buf[512], *p = buf, *end;
	long long v = -1;
	int i;

	snprintf(path, sizeof(path), "/sys/block/%s/stat", disk);
	if (attr_read(path, buf, sizeof(buf)))
		return -1;
	for (i = 0; i <= idx; i++) {
		v = strtoll(p, &end, 10);
		if (end == p)
			return -1;
		p = end;
	}
	return v;
}

static bool have_program(const char *name)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

/* ---- configfs null_blk devices (nullb.c) ------------------------------- */

/* nullb_create() in a test: SKIP without configfs null_blk, else fail. */
static bool test_nullb(struct __test_metadata *_metadata,
		       struct nullb_dev *nb, const struct nullb_attr *attrs,
		       size_t n)
{
	char why[192];
	int rc;

	rc = nullb_create(nb, "vnhostile", attrs, n, why, sizeof(why));
	if (rc == 1)
		SKIP(return false, "%s", why);
	ASSERT_EQ(0, rc) {
		TH_LOG("%s", why);
	}
	return true;
}

/* ---- file systems ------------------------------------------------------- */

struct test_fs {
	char dir[48];		/* mount point; "" if none */
	bool mounted;
	int dirfd;		/* for FIFREEZE/FITHAW, -1 */
	bool frozen;
};

/*
 * mkfs @kind ("ext2" or "minix") on @dev and mount it on a fresh
 * directory. False (and SKIP) without the mkfs program or the kernel's
 * file system. ext2 is served by ext4 where there is no ext2 driver.
 */
static bool fs_create(struct __test_metadata *_metadata, struct test_fs *fs,
		      const char *dev, const char *kind)
{
	static const char *const ext2_types[] = { "ext2", "ext4", NULL };
	static const char *const minix_types[] = { "minix", NULL };
	bool ext2 = !strcmp(kind, "ext2");
	const char *const *types = ext2 ? ext2_types : minix_types;
	const char *mkfs = ext2 ? "mkfs.ext2" : "mkfs.minix";
	char cmd[160];
	int rc, i;

	if (!have_program(mkfs))
		SKIP(return false, "%s not installed", mkfs);
	snprintf(cmd, sizeof(cmd), "%s %s %s >/dev/null 2>&1", mkfs,
		 ext2 ? "-q -F" : "-3", dev);
	rc = system(cmd);
	ASSERT_EQ(0, rc) {
		TH_LOG("%s: exit status 0x%x", cmd, rc);
	}
	snprintf(fs->dir, sizeof(fs->dir), "/tmp/vhost-nvme-mnt.XXXXXX");
	if (!mkdtemp(fs->dir)) {
		rc = -errno;
		fs->dir[0] = 0;
		ASSERT_EQ(0, rc) {
			TH_LOG("mkdtemp: %s", strerror(-rc));
		}
	}
	rc = -ENODEV;
	for (i = 0; types[i] && rc; i++)
		rc = mount(dev, fs->dir, types[i], 0, NULL) ? -errno : 0;
	if (rc == -ENODEV)
		SKIP(return false, "the kernel mounts no %s file system", kind);
	ASSERT_EQ(0, rc) {
		TH_LOG("mount %s (%s) on %s: %s", dev, kind, fs->dir,
		       strerror(-rc));
	}
	fs->mounted = true;
	return true;
}

static void fs_thaw(struct test_fs *fs)
{
	if (fs->frozen && !ioctl(fs->dirfd, FITHAW, 0))
		fs->frozen = false;
}

static void fs_destroy(struct test_fs *fs)
{
	int i;

	fs_thaw(fs);
	if (fs->dirfd >= 0)
		close(fs->dirfd);
	fs->dirfd = -1;
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

/* Create @path of @len bytes, from @data (or zeroes), written and synced. */
static int make_file(const char *path, const void *data, size_t len)
{
	static const char zero[1 << 16];
	size_t done = 0;
	int fd, rc = 0;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (done < len) {
		size_t n = len - done < sizeof(zero) ? len - done : sizeof(zero);
		ssize_t w = write(fd, data ? (const char *)data + done : zero,
				  n);

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

/* ---- the test context --------------------------------------------------- */

/*
 * Everything a test may set up. hctx_teardown() undoes what is set, in an
 * order that cannot deadlock: thaw before closing the device (its release
 * waits for a write the freeze holds), close the device before the
 * backend's system state (swap, read-only, mounts, null_blk).
 */
struct hctx {
	struct guest g;
	struct guest_backend be;
	struct guest_sq *sq;
	__u64 nsze;
	unsigned char *want, *got;	/* HOST_BUF each */
	bool ro_set;			/* BLKROSET 1 on be.fd */
	bool swap_on;			/* swapon(be.path) */
	struct nullb_dev nb;
	struct test_fs fs;
	int fd2;			/* another fd of the backend, or -1 */
	/* a second guest memory region, and the mapping that replaced it */
	void *r2;
	int r2_fd;
	char param_saved[32];		/* bounce_kb to restore, "" if none */
};

static void hctx_init(struct hctx *c)
{
	memset(c, 0, sizeof(*c));
	c->g.fd = c->g.memfd = c->g.errfd = -1;
	c->be.fd = c->be.io_fd = -1;
	c->fs.dirfd = -1;
	c->fd2 = -1;
	c->r2_fd = -1;
}

#define R2_GPA		0x40000000ull
#define R2_SIZE		(8ull << 20)

static void hctx_teardown(struct hctx *c)
{
	int one = 0;

	fs_thaw(&c->fs);
	guest_close(&c->g);
	if (c->swap_on && !swapoff(c->be.path))
		c->swap_on = false;
	if (c->ro_set && !ioctl(c->be.fd, BLKROSET, &one))
		c->ro_set = false;
	guest_backend_close(&c->be);
	if (c->fd2 >= 0)
		close(c->fd2);
	c->fd2 = -1;
	if (c->r2)
		munmap(c->r2, R2_SIZE);
	c->r2 = NULL;
	if (c->r2_fd >= 0)
		close(c->r2_fd);
	c->r2_fd = -1;
	fs_destroy(&c->fs);
	nullb_remove(&c->nb);
	if (c->param_saved[0])
		attr_write(BOUNCE_PARAM, c->param_saved);
	nullb_configfs_release();
	free(c->want);
	free(c->got);
	c->want = c->got = NULL;
}

static void alloc_bufs(struct __test_metadata *_metadata, struct hctx *c)
{
	c->want = aligned_alloc(GUEST_PAGE_SIZE, HOST_BUF);
	c->got = aligned_alloc(GUEST_PAGE_SIZE, HOST_BUF);
	ASSERT_TRUE(c->want && c->got);
}

/* Open a block device of ours as the backend, like guest_backend_open(). */
static void open_bdev(struct __test_metadata *_metadata, struct hctx *c,
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

/*
 * Namespace 1 on @fd, started, with one queue pair (SQ and CQ of
 * @entries) on worker 0, shadow doorbells or forwarded.
 */
static void attach(struct __test_metadata *_metadata, struct hctx *c, int fd,
		   bool shadow, __u32 entries)
{
	ASSERT_OK(guest_set_namespace(&c->g, fd, 1, LBA_SHIFT, 0, &c->nsze));
	ASSERT_OK(guest_start(&c->g));
	if (shadow)
		ASSERT_OK(guest_set_dbbuf(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 1, entries, entries, 0, &c->sq));
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

static void backend_write(struct __test_metadata *_metadata, struct hctx *c,
			  __u64 slba, const void *buf, size_t len)
{
	int rc = guest_backend_pwrite(&c->be, buf, len, slba << LBA_SHIFT);

	ASSERT_EQ(0, rc) {
		TH_LOG("pwrite %s at lba %llu: %s", c->be.path,
		       (unsigned long long)slba, strerror(-rc));
	}
}

static void backend_read(struct __test_metadata *_metadata, struct hctx *c,
			 __u64 slba, void *buf, size_t len)
{
	int rc = guest_backend_pread(&c->be, buf, len, slba << LBA_SHIFT);

	ASSERT_EQ(0, rc) {
		TH_LOG("pread %s at lba %llu: %s", c->be.path,
		       (unsigned long long)slba, strerror(-rc));
	}
}

/* Run @cmd on the context's SQ and expect status @sc. */
#define EXEC_STATUS(c, cmd, sc, what) do { \
	struct guest_cpl __cpl; \
	\
	ASSERT_EXEC((c)->sq, cmd, &__cpl); \
	EXPECT_NVME_STATUS_WHAT(sc, &__cpl, what); \
} while (0)

/* Wait for @n completions; on a shortfall log the queue state. */
#define ASSERT_WAIT(sq, cq, cpl, n, ms) do { \
	int __n = guest_cq_wait(cq, cpl, n, ms); \
	char __st[512] = ""; \
	\
	if (__n != (n)) \
		guest_sq_describe(sq, __st, sizeof(__st)); \
	ASSERT_EQ((n), __n) { \
		TH_LOG("%s", __n < 0 ? guest_strerror(__n) : __st); \
	} \
} while (0)

/*
 * @n completions must be of commands @cid..@cid + @count - 1, each at most
 * once; with @ok set, all successful.
 */
static void check_once(struct __test_metadata *_metadata,
		       const struct guest_cpl *cpl, int n, __u16 cid,
		       int count, bool ok)
{
	bool seen[256] = { false };
	int i;

	for (i = 0; i < n; i++) {
		int k = (__u16)(cpl[i].cid - cid);

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
}

/* ---- A: FUA on reads ---------------------------------------------------- */

static const char *backend_name(enum guest_backend_kind k)
{
	switch (k) {
	case GUEST_BACKEND_BRD:
		return "brd (/dev/ram0)";
	case GUEST_BACKEND_NULLB:
		return "null_blk (/dev/nullb0)";
	default:
		return "file in /tmp";
	}
}

FIXTURE(fua) {
	struct hctx c;
};

FIXTURE_VARIANT(fua) {
	enum guest_backend_kind backend;
};

FIXTURE_VARIANT_ADD(fua, brd) {
	.backend = GUEST_BACKEND_BRD,
};

FIXTURE_VARIANT_ADD(fua, file) {
	.backend = GUEST_BACKEND_FILE,
};

FIXTURE_VARIANT_ADD(fua, null_blk) {
	.backend = GUEST_BACKEND_NULLB,
};

FIXTURE_SETUP(fua)
{
	struct hctx *c = &self->c;
	int rc;

	hctx_init(c);
	rc = guest_backend_open(&c->be, variant->backend, FILE_SIZE);
	if (rc == -EBUSY)
		SKIP(return, "null_blk is loaded without memory_backed=1");
	ASSERT_EQ(0, rc) {
		TH_LOG("backend %s: %s", backend_name(variant->backend),
		       strerror(-rc));
	}
	ASSERT_OK(guest_setup(&c->g, MEM_SIZE));
	ASSERT_OK(guest_set_config(&c->g, 7, 0, 8));
	alloc_bufs(_metadata, c);
	attach(_metadata, c, c->be.fd, true, 64);
}

FIXTURE_TEARDOWN(fua)
{
	hctx_teardown(&self->c);
}

/*
 * FUA on a read asks for data from the medium, not a volatile cache: a
 * read as usual for a backend without one, never an error. A block
 * device must not see REQ_FUA on REQ_OP_READ (submit_bio_noacct() WARNs
 * and fails it).
 */
static void fua_read_case(struct __test_metadata *_metadata, struct hctx *c,
			  __u32 off, __u64 slba, __u64 seed)
{
	struct guest_cpl cpl;
	struct nvme_sqe cmd;
	struct guest_buf b;
	char what[64];

	snprintf(what, sizeof(what), "FUA read of 8 blocks at page offset %u",
		 off);
	ASSERT_OK(guest_buf_alloc(&c->g, &b, off, 8 * LBA, false));
	guest_pattern(c->want, b.len, seed);
	backend_write(_metadata, c, slba, c->want, b.len);
	guest_buf_set_pages(&c->g, &b, 0xa5);
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, slba, 8, NVME_RW_FUA);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	ASSERT_EXEC(c->sq, &cmd, &cpl);
	EXPECT_NVME_STATUS_WHAT(NVME_SC_SUCCESS, &cpl, what);
	guest_buf_read(&c->g, &b, c->got);
	expect_same(_metadata, what, c->want, c->got, b.len);
}

TEST_F(fua, fua_read)
{
	fua_read_case(_metadata, &self->c, 0, 64, 101);
}

/* PRP1 at a dword offset: the read goes through bounce pages. */
TEST_F(fua, fua_read_bounced)
{
	fua_read_case(_metadata, &self->c, 4, 128, 102);
}

/* ---- B: the memory table replaced under reads in flight ----------------- */

#define REMAP_READS	32
/* Each read stays in the backend this long: the table changes meanwhile. */
#define REMAP_DELAY_NS	"200000000"

FIXTURE(remap) {
	struct hctx c;
};

FIXTURE_SETUP(remap)
{
	hctx_init(&self->c);
	ASSERT_OK(guest_setup(&self->c.g, 16 << 20));
	ASSERT_OK(guest_set_config(&self->c.g, 7, 0, 8));
	alloc_bufs(_metadata, &self->c);
}

FIXTURE_TEARDOWN(remap)
{
	hctx_teardown(&self->c);
}

static void *map_memfd(int *fdp, const char *name, int fill, void *at)
{
	void *p;
	int fd;

	fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (ftruncate(fd, R2_SIZE)) {
		close(fd);
		return NULL;
	}
	/* Filled through a mapping of its own before it goes to @at. */
	p = mmap(NULL, R2_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return NULL;
	}
	memset(p, fill, R2_SIZE);
	if (at) {
		munmap(p, R2_SIZE);
		p = mmap(at, R2_SIZE, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, fd, 0);
		if (p == MAP_FAILED) {
			close(fd);
			return NULL;
		}
	}
	*fdp = fd;
	return p;
}

/*
 * 32 reads of 4 KiB into a second memory region, @off into their first
 * page (4: a dword offset the backend cannot take, so the data bounces;
 * 0: zero copy into the pinned guest pages). While they sit in a slow
 * null_blk, the VMM installs a table without that region, unmaps it and
 * maps a new memfd full of 0x5a at the same address. Every read completes
 * once (Success or Data Transfer Error), and no byte of the new mapping
 * changes: it was never guest memory while the reads were in flight.
 */
static void remap_case(struct __test_metadata *_metadata, struct hctx *c,
		       __u32 off)
{
	const struct nullb_attr attrs[] = {
		{ "size", "64" },		/* MiB */
		{ "blocksize", "512" },
		{ "memory_backed", "1" },
		{ "irqmode", "2" },		/* timer */
		{ "completion_nsec", REMAP_DELAY_NS },
	};
	struct vhost_memory_region r[2] = {
		{
			.guest_phys_addr = c->g.mem_gpa,
			.memory_size = c->g.mem_size,
			.userspace_addr = (uintptr_t)c->g.mem,
		},
	};
	struct guest_cpl cpl[REMAP_READS];
	struct vhost_nvme_queue_stats st;
	struct nvme_sqe cmd;
	long changed = 0, pages = 0, first = -1;
	int i, n, inflight, ok = 0, xfer = 0;
	struct guest_cq *cq;
	unsigned char *p;
	int new_fd = -1;
	void *at;
	size_t j;

	if (!test_nullb(_metadata, &c->nb, attrs, ARRAY_SIZE(attrs)))
		return;
	open_bdev(_metadata, c, c->nb.dev);
	c->r2 = map_memfd(&c->r2_fd, "vhost-nvme-region2", 0xa5, NULL);
	ASSERT_NE(NULL, c->r2);
	r[1].guest_phys_addr = R2_GPA;
	r[1].memory_size = R2_SIZE;
	r[1].userspace_addr = (uintptr_t)c->r2;
	ASSERT_OK(guest_set_mem_regions(&c->g, r, 2));
	attach(_metadata, c, c->be.fd, true, 64);
	cq = c->sq->cq;

	guest_pattern(c->want, REMAP_READS * 4096, 110 + off);
	backend_write(_metadata, c, 0, c->want, REMAP_READS * 4096);
	for (i = 0; i < REMAP_READS; i++) {
		/* Pages 2i and 2i + 1 of region 2. */
		__u64 page = R2_GPA + (__u64)2 * i * GUEST_PAGE_SIZE;

		nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, i * 8, 8, 0);
		nvme_sqe_set_prp(&cmd, page + off,
				 off ? page + GUEST_PAGE_SIZE : 0);
		cmd.cid = htole16(0x200 + i);
		ASSERT_OK(guest_sq_push(c->sq, &cmd));
	}
	ASSERT_OK(guest_sq_ring(c->sq));
	/* Fetched (PRPs translated with the old table) before it changes. */
	for (i = 0; i < GUEST_TIMEOUT_MS; i++) {
		ASSERT_OK(guest_get_stats(&c->g, 1, &st));
		if (st.commands == REMAP_READS)
			break;
		guest_msleep(1);
	}
	ASSERT_EQ(REMAP_READS, st.commands);
	/*
	 * Counted before the switch: a module may also drain the reads in
	 * SET_MEM_TABLE, while the old mapping is still there.
	 */
	inflight = REMAP_READS - guest_cq_peek(cq);
	if (!inflight)
		SKIP(return, "all %d reads completed before the table changed: the null_blk was not slow",
		     REMAP_READS);

	ASSERT_OK(guest_set_mem_table(&c->g));
	at = c->r2;
	ASSERT_EQ(0, munmap(at, R2_SIZE));
	c->r2 = NULL;
	p = map_memfd(&new_fd, "vhost-nvme-region2-new", 0x5a, at);
	ASSERT_TRUE(p && p == at) {
		TH_LOG("cannot map a new memfd at %p: %s", at,
		       strerror(errno));
	}
	c->r2 = p;
	close(c->r2_fd);
	c->r2_fd = new_fd;

	ASSERT_WAIT(c->sq, cq, cpl, REMAP_READS, GUEST_TIMEOUT_MS);
	check_once(_metadata, cpl, REMAP_READS, 0x200, REMAP_READS, false);
	for (i = 0; i < REMAP_READS; i++) {
		unsigned int sc = nvme_status(cpl[i].status);

		ok += sc == NVME_SC_SUCCESS;
		xfer += sc == NVME_SC_DATA_XFER_ERROR;
		EXPECT_TRUE(sc == NVME_SC_SUCCESS ||
			    sc == NVME_SC_DATA_XFER_ERROR) {
			TH_LOG("cid 0x%04x: status 0x%03x, want Success or Data Transfer Error",
			       cpl[i].cid, sc);
		}
	}
	guest_msleep(100);
	n = guest_cq_peek(cq);
	EXPECT_EQ(0, n) {
		TH_LOG("%d more completions after all %d", n, REMAP_READS);
	}

	for (j = 0; j < R2_SIZE; j += GUEST_PAGE_SIZE) {
		long k, in_page = 0;

		for (k = 0; k < GUEST_PAGE_SIZE; k++) {
			if (p[j + k] == 0x5a)
				continue;
			if (first < 0)
				first = j + k;
			in_page++;
		}
		changed += in_page;
		pages += !!in_page;
	}
	EXPECT_EQ(0, changed) {
		TH_LOG("%ld bytes in %ld pages of the mapping that replaced region 2 were written (first at offset %ld, now 0x%02x): read data went to owner addresses the old table named",
		       changed, pages, first, p[first]);
	}
	TH_LOG("%d of %d reads in flight when the table changed; %d Success, %d Data Transfer Error",
	       inflight, REMAP_READS, ok, xfer);
}

TEST_F_TIMEOUT(remap, memtable_remap_bounced_read, 60)
{
	remap_case(_metadata, &self->c, 4);
}

/* The zero-copy path, as coverage: its pages are pinned, never re-looked-up. */
TEST_F_TIMEOUT(remap, memtable_remap_zero_copy_read, 60)
{
	remap_case(_metadata, &self->c, 0);
}

/* ---- tests on a brd namespace: C, D1, D2, E2, F, H ---------------------- */

FIXTURE(brd) {
	struct hctx c;
};

FIXTURE_SETUP(brd)
{
	struct hctx *c = &self->c;
	int rc;

	hctx_init(c);
	rc = guest_backend_open(&c->be, GUEST_BACKEND_BRD, 0);
	ASSERT_EQ(0, rc) {
		TH_LOG("backend %s: %s", backend_name(GUEST_BACKEND_BRD),
		       strerror(-rc));
	}
	ASSERT_OK(guest_setup(&c->g, MEM_SIZE));
	ASSERT_OK(guest_set_config(&c->g, 7, 0, 8));
	ASSERT_OK(guest_set_namespace(&c->g, c->be.fd, 1, LBA_SHIFT, 0,
				      &c->nsze));
	ASSERT_OK(guest_start(&c->g));
	alloc_bufs(_metadata, c);
}

FIXTURE_TEARDOWN(brd)
{
	hctx_teardown(&self->c);
}

/* ---- C: polling switched off mid-poll ----------------------------------- */

#define POLL_ITERS	30
/* A command not fetched by then is taken as lost. */
#define LOST_MS		1000

/*
 * Submit one read by the EventIdx rule alone and wait @ms for it. If it
 * does not come, ring the doorbell anyway (what a guest could never know
 * to do) so that the next round starts clean. True if it was lost.
 */
static bool read_by_eventidx(struct __test_metadata *_metadata,
			     struct hctx *c, struct guest_buf *b, int i,
			     int ms)
{
	struct guest_cq *cq = c->sq->cq;
	struct guest_cpl cpl;
	struct nvme_sqe cmd;
	char st[512] = "";
	int cid, n;

	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, (i % 64) * 8, 8, 0);
	guest_prp_build(&c->g, b, 0, &cmd);
	cid = guest_sq_submit(c->sq, &cmd);
	ASSERT_LE(0, cid);
	ASSERT_OK(guest_sq_ring(c->sq));
	n = guest_cq_wait(cq, &cpl, 1, ms);
	ASSERT_LE(0, n) {
		TH_LOG("%s", guest_strerror(n));
	}
	if (!n) {
		ASSERT_OK(guest_sq_doorbell(c->sq, c->sq->tail, true));
		if (guest_cq_wait(cq, &cpl, 1, GUEST_TIMEOUT_MS) != 1)
			guest_sq_describe(c->sq, st, sizeof(st));
		ASSERT_EQ(0, st[0]) {
			TH_LOG("lost even after a doorbell write: %s", st);
		}
	}
	EXPECT_EQ(cid, cpl.cid);
	EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &cpl);
	return !n;
}

/*
 * Each round: polling on, one command (the worker finds it, then polls);
 * polling off and at once a Set Features 08h, whose kick the worker sees
 * while still inside its poll loop - the poll "found news", so the next
 * round runs with polling off. 20 ms later a command that follows the
 * EventIdx rule: the worker must have armed EventIdx when it stopped
 * polling, or the guest writes no doorbell and the command sits there.
 */
TEST_F_TIMEOUT(brd, poll_off_rearms_eventidx, 120)
{
	struct vhost_nvme_worker_affinity a = { .worker = 0 };
	struct vhost_nvme_queue_stats st;
	struct hctx *c = &self->c;
	int it, lost = 0, first_lost = 0;
	struct guest_buf b;
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "one CPU: the worker cannot be inside its poll loop when the guest's ioctls arrive");
	ASSERT_OK(guest_ack_poll(&c->g));
	/* The worker on CPU 1, alone, so nothing cuts its poll short. */
	a.cpus[0] = 1ULL << 1;
	ASSERT_OK(xioctl(c->g.fd, VHOST_NVME_SET_WORKER_AFFINITY, &a));
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(set), &set));
	ASSERT_OK(guest_set_dbbuf(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 16, 0, &c->sq));
	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 4096, false));

	for (it = 0; it < POLL_ITERS && !_metadata->exit_code; it++) {
		ASSERT_OK(guest_set_poll(&c->g, VHOST_NVME_MAX_POLL_US));
		if (read_by_eventidx(_metadata, c, &b, 2 * it,
				     GUEST_TIMEOUT_MS))
			first_lost++;
		ASSERT_OK(guest_set_poll(&c->g, 0));
		ASSERT_OK(guest_set_coalescing(&c->g, 0, 0));
		guest_msleep(20);
		if (read_by_eventidx(_metadata, c, &b, 2 * it + 1, LOST_MS))
			lost++;
	}
	ASSERT_OK(guest_get_stats(&c->g, 1, &st));
	EXPECT_EQ(0, lost) {
		TH_LOG("%d of %d commands queued after polling went off were not fetched within %d ms: EventIdx was left behind",
		       lost, it, LOST_MS);
	}
	EXPECT_EQ(0, first_lost) {
		TH_LOG("%d of %d commands queued with polling on were not fetched",
		       first_lost, it);
	}
	TH_LOG("%d rounds: %d lost after polling off, %d with polling on; commands %llu, found by polling %llu, kicks %llu",
	       it, lost, first_lost, (unsigned long long)st.commands,
	       (unsigned long long)st.polled, (unsigned long long)st.kicks);
}

/* ---- D: writes the backend would refuse --------------------------------- */

/*
 * One write of 8 blocks at @slba that must fail with Attempted Write to
 * Read Only Range and leave the backend as it was (@c->want there);
 * reading still works.
 */
static void refused_write(struct __test_metadata *_metadata, struct hctx *c,
			  __u64 slba, const char *why)
{
	struct nvme_sqe cmd;
	struct guest_buf b;
	char what[96];

	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 4096, false));
	guest_pattern(c->got, 4096, 0xbad);
	guest_buf_write(&c->g, &b, c->got);
	nvme_sqe_rw(&cmd, NVME_CMD_WRITE, 1, slba, 8, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	snprintf(what, sizeof(what), "write to %s", why);
	EXEC_STATUS(c, &cmd, NVME_SC_READ_ONLY, what);
	backend_read(_metadata, c, slba, c->got, 4096);
	snprintf(what, sizeof(what), "backend after a write to %s", why);
	expect_same(_metadata, what, c->want, c->got, 4096);

	guest_buf_set_pages(&c->g, &b, 0);
	cmd.opcode = NVME_CMD_READ;
	snprintf(what, sizeof(what), "read from %s", why);
	EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, what);
	guest_buf_read(&c->g, &b, c->got);
	expect_same(_metadata, what, c->want, c->got, 4096);
}

/* blockdev --setro after attaching: write(2) would get -EPERM. */
TEST_F(brd, setro_bdev)
{
	struct hctx *c = &self->c;
	int one = 1, rc;

	ASSERT_OK(guest_set_dbbuf(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 16, 0, &c->sq));
	guest_pattern(c->want, 4096, 120);
	backend_write(_metadata, c, 1000, c->want, 4096);
	ASSERT_EQ(0, ioctl(c->be.fd, BLKROSET, &one)) {
		TH_LOG("BLKROSET 1 on %s: %s", c->be.path, strerror(errno));
	}
	c->ro_set = true;
	refused_write(_metadata, c, 1000, "a read-only block device");

	/* Attaching it writable now is refused outright. */
	ASSERT_OK(guest_stop(&c->g));
	rc = guest_set_namespace(&c->g, c->be.fd, 2, LBA_SHIFT, 0, NULL);
	EXPECT_EQ(-EPERM, rc) {
		TH_LOG("SET_NAMESPACE writable on a read-only %s: %s, want %s",
		       c->be.path, guest_strerror(rc), strerror(EPERM));
	}
	ASSERT_OK(guest_start(&c->g));
}

/*
 * An active swap device: write(2) gets -ETXTBSY. The swap area is the first
 * 16 MiB only and the write goes to 40 MiB, so that a module that writes
 * anyway corrupts no swapped page.
 */
TEST_F(brd, swap_bdev)
{
	const __u64 slba = (40ull << 20) >> LBA_SHIFT;
	struct hctx *c = &self->c;
	char cmd[96];
	int rc;

	if (!have_program("mkswap"))
		SKIP(return, "mkswap not installed");
	snprintf(cmd, sizeof(cmd), "mkswap %s 16384 >/dev/null 2>&1",
		 c->be.path);
	rc = system(cmd);
	ASSERT_EQ(0, rc) {
		TH_LOG("%s: exit status 0x%x", cmd, rc);
	}
	ASSERT_OK(guest_set_dbbuf(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 1, 16, 16, 0, &c->sq));
	guest_pattern(c->want, 4096, 121);
	backend_write(_metadata, c, slba, c->want, 4096);
	ASSERT_EQ(0, swapon(c->be.path, 0)) {
		TH_LOG("swapon %s: %s", c->be.path, strerror(errno));
	}
	c->swap_on = true;
	refused_write(_metadata, c, slba, "an active swap device");

	ASSERT_OK(guest_stop(&c->g));
	rc = guest_set_namespace(&c->g, c->be.fd, 2, LBA_SHIFT, 0, NULL);
	EXPECT_EQ(-ETXTBSY, rc) {
		TH_LOG("SET_NAMESPACE writable on swap %s: %s, want %s",
		       c->be.path, guest_strerror(rc), strerror(ETXTBSY));
	}
	ASSERT_OK(guest_start(&c->g));
}

/* ---- E2: the worker lock and long commands ------------------------------ */

#define WZ_CMDS		32
#define WZ_NLB		65536		/* 32 MiB of 512-byte blocks */
#define WZ_WAIT_MS	60000

/*
 * 32 Write Zeroes of 32 MiB (1 GiB in all) in one doorbell, on brd, which
 * has no write-zeroes support: the block layer writes zero pages, in the
 * submitter's context. Meanwhile GET_QUEUE_STATS (it takes the worker's
 * lock) is timed, once at once and then every 10 ms: none may wait for a
 * large part of the whole batch, as it does when the worker zeroes
 * everything in one round under its lock.
 */
TEST_F_TIMEOUT(brd, stats_not_blocked_by_long_commands, 180)
{
	double t0, total, worst = 0, first = -1;
	struct vhost_nvme_queue_stats st;
	struct guest_cpl cpl[WZ_CMDS];
	struct hctx *c = &self->c;
	struct nvme_sqe cmd;
	struct guest_cq *cq;
	int i, n = 0, samples = 0;
	char desc[512] = "";

	ASSERT_LE(2 * WZ_NLB, c->nsze);
	ASSERT_OK(guest_set_dbbuf(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 1, 64, 64, 0, &c->sq));
	cq = c->sq->cq;
	for (i = 0; i < WZ_CMDS; i++) {
		nvme_sqe_write_zeroes(&cmd, 1, (__u64)(i % 2) * WZ_NLB, WZ_NLB,
				      false);
		cmd.cid = htole16(0x400 + i);
		ASSERT_OK(guest_sq_push(c->sq, &cmd));
	}
	t0 = now_ms();
	ASSERT_OK(guest_sq_ring(c->sq));
	while ((n = guest_cq_peek(cq)) < WZ_CMDS && now_ms() - t0 < WZ_WAIT_MS) {
		double t = now_ms(), lat;
		int rc = guest_get_stats(&c->g, 1, &st);

		lat = now_ms() - t;
		ASSERT_OK(rc);
		if (first < 0)
			first = lat;
		if (lat > worst)
			worst = lat;
		samples++;
		guest_msleep(10);
	}
	total = now_ms() - t0;
	if (n < WZ_CMDS)
		guest_sq_describe(c->sq, desc, sizeof(desc));
	ASSERT_EQ(WZ_CMDS, n) {
		TH_LOG("%d of %d completions in %d ms: %s", n, WZ_CMDS,
		       WZ_WAIT_MS, desc);
	}
	ASSERT_WAIT(c->sq, cq, cpl, WZ_CMDS, GUEST_TIMEOUT_MS);
	check_once(_metadata, cpl, WZ_CMDS, 0x400, WZ_CMDS, true);
	TH_LOG("1 GiB of Write Zeroes in %.0f ms; GET_QUEUE_STATS took %.1f ms at once, at most %.1f ms in %d calls",
	       total, first, worst, samples);
	if (total < 300)
		SKIP(return, "backend too fast to tell: %.0f ms for all", total);
	EXPECT_GT(total / 4, worst) {
		TH_LOG("GET_QUEUE_STATS waited %.1f ms of the %.0f ms the commands took: the worker held its lock through them",
		       worst, total);
	}
}

/* ---- F: doorbell values the guest may not write ------------------------- */

/* Queue @n one-block reads with ids @cid.., into one page, without ringing. */
static int push_reads(struct hctx *c, struct guest_sq *sq, struct guest_buf *b,
		      int n, __u16 cid)
{
	struct nvme_sqe cmd;
	int i, rc;

	for (i = 0; i < n; i++) {
		nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, cid + i, 1, 0);
		nvme_sqe_set_prp(&cmd, b->page[0], 0);
		cmd.cid = htole16((__u16)(cid + i));
		rc = guest_sq_push(sq, &cmd);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * The one error the device reported: Invalid Doorbell Write Value on the
 * queue, with the value; then no other.
 */
static void expect_db_error(struct __test_metadata *_metadata,
			    struct guest *g, __u16 qid, __u8 cq, __u32 value)
{
	struct vhost_nvme_error e;
	int rc;

	guest_wait_fd(g->errfd, 1000);
	rc = guest_get_error(g, &e);
	EXPECT_EQ(0, rc) {
		TH_LOG("no error for %s %u doorbell value %u: GET_ERROR: %s",
		       cq ? "CQ" : "SQ", qid, value, guest_strerror(rc));
		return;
	}
	EXPECT_TRUE(e.qid == qid && e.cq == cq &&
		    e.type == VHOST_NVME_ERR_INVALID_DB_VALUE &&
		    e.value == value && !e.gpa) {
		TH_LOG("error: qid %u cq %u type %u value %u gpa 0x%llx; want qid %u cq %u type %u (INVALID_DB_VALUE) value %u gpa 0",
		       e.qid, e.cq, e.type, e.value,
		       (unsigned long long)e.gpa, qid, cq,
		       VHOST_NVME_ERR_INVALID_DB_VALUE, value);
	}
	rc = guest_get_error(g, &e);
	EXPECT_EQ(-EAGAIN, rc) {
		TH_LOG("a second error: qid %u cq %u type %u value %u",
		       e.qid, e.cq, e.type, e.value);
	}
}

/*
 * Forwarded doorbells. CQ head 5 before anything was posted: in range, but
 * past the CQ tail (0). Then 12 reads for the 8-entry CQ: taken at its
 * word, the head would make room for 5 more than exist. The CQ must stop
 * and report the value, and no entry may be written twice: at most 7 CQEs
 * (the ring starts full of cid 0xffff, phase 0; a second lap writes phase
 * 0 over a changed cid).
 */
TEST_F(brd, cq_head_beyond_tail)
{
	unsigned int posted = 0, overwritten = 0, i;
	struct hctx *c = &self->c;
	volatile struct nvme_cqe *ring;
	struct guest_cq *cq;
	struct guest_buf b;
	int rc;

	ASSERT_OK(guest_set_error_fd(&c->g));
	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 4096, false));
	ASSERT_OK(guest_create_cq(&c->g, 1, 8, 0, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 1, cq, 16, 0, 0, &c->sq));
	ring = cq->ring;
	for (i = 0; i < 8; i++) {
		ring[i].cid = htole16(0xffff);
		ring[i].sq_head = htole16(0xffff);
		ring[i].status = 0;
	}
	__sync_synchronize();
	/* Forwarded, the ioctl may refuse the value itself as well. */
	rc = guest_cq_doorbell(cq, 5, true);
	EXPECT_TRUE(rc == 0 || rc == -EINVAL) {
		TH_LOG("CQ head doorbell 5: %s", guest_strerror(rc));
	}
	ASSERT_OK(push_reads(c, c->sq, &b, 12, 0x100));
	EXPECT_OK(guest_sq_ring(c->sq));
	guest_msleep(500);
	for (i = 0; i < 8; i++) {
		__u16 st = le16toh(ring[i].status);

		if (st & 1)
			posted++;
		else if (le16toh(ring[i].cid) != 0xffff)
			overwritten++;
	}
	EXPECT_GE(7, posted) {
		TH_LOG("%u CQEs with phase 1 in an 8-entry CQ whose head never moved",
		       posted);
	}
	EXPECT_EQ(0, overwritten) {
		TH_LOG("%u entries written twice (phase 0, cid changed): the CQ was overrun",
		       overwritten);
	}
	expect_db_error(_metadata, &c->g, 1, 1, 5);
}

/*
 * The VMM takes the memory of live queues out of the table (a hot-unplug,
 * a remap): the worker's next look at it fails. The queue stops with one
 * BAD_QUEUE_MEMORY record naming it and the address, posts nothing, and
 * once the memory is back a new queue pair works. @shadow: the doorbell
 * page is what goes missing (the shadow tail read fails); else the SQ
 * ring (the SQE fetch fails).
 */
static void queue_memory_removed(struct __test_metadata *_metadata,
				 struct hctx *c, bool shadow)
{
	struct vhost_memory_region last = {
		.guest_phys_addr = c->g.mem_gpa + c->g.mem_size - 4096,
		.memory_size = 4096,
		.userspace_addr = (uintptr_t)c->g.mem + c->g.mem_size - 4096,
	};
	struct vhost_nvme_error e;
	struct guest_cpl cpl;
	struct guest_cq *cq;
	struct guest_buf b;
	__u64 want_gpa;
	int rc;

	ASSERT_OK(guest_set_error_fd(&c->g));
	if (shadow)
		ASSERT_OK(guest_set_dbbuf(&c->g));
	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 4096, false));
	ASSERT_OK(guest_create_cq(&c->g, 1, 8, 0, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 1, cq, 16, 0, 0, &c->sq));
	ASSERT_OK(push_reads(c, c->sq, &b, 1, 0x100));
	ASSERT_OK(guest_sq_ring(c->sq));
	ASSERT_EQ(1, guest_cq_wait(cq, &cpl, 1, GUEST_TIMEOUT_MS));
	ASSERT_EQ(0, nvme_status(cpl.status));
	ASSERT_GT(last.guest_phys_addr, c->sq->gpa + 16 * 64);
	want_gpa = shadow ? c->g.dbs_gpa : c->sq->gpa;

	/* Only the last page of guest memory is left in the table. */
	ASSERT_OK(guest_set_mem_regions(&c->g, &last, 1));
	ASSERT_OK(push_reads(c, c->sq, &b, 1, 0x200));
	ASSERT_OK(guest_sq_ring(c->sq));
	guest_wait_fd(c->g.errfd, 2000);
	rc = guest_get_error(&c->g, &e);
	ASSERT_EQ(0, rc) {
		TH_LOG("no error record after the %s left the table: %s",
		       shadow ? "doorbell page" : "SQ ring",
		       guest_strerror(rc));
	}
	EXPECT_TRUE(e.qid == 1 && !e.cq &&
		    e.type == VHOST_NVME_ERR_BAD_QUEUE_MEMORY &&
		    e.gpa == want_gpa) {
		TH_LOG("error: qid %u cq %u type %u gpa 0x%llx; want qid 1 cq 0 type %u (BAD_QUEUE_MEMORY) gpa 0x%llx",
		       e.qid, e.cq, e.type, (unsigned long long)e.gpa,
		       VHOST_NVME_ERR_BAD_QUEUE_MEMORY,
		       (unsigned long long)want_gpa);
	}
	guest_msleep(100);
	EXPECT_EQ(0, guest_cq_peek(cq));

	/* Memory back: the broken pair goes, a new one works. */
	ASSERT_OK(guest_set_mem_table(&c->g));
	ASSERT_OK(guest_delete_sq(c->sq));
	c->sq = NULL;
	ASSERT_OK(guest_delete_cq(cq));
	if (shadow)
		ASSERT_OK(guest_clear_dbbuf(&c->g));
	ASSERT_OK(guest_create_cq(&c->g, 1, 8, 0, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 1, cq, 16, 0, 0, &c->sq));
	ASSERT_OK(push_reads(c, c->sq, &b, 1, 0x300));
	ASSERT_OK(guest_sq_ring(c->sq));
	ASSERT_EQ(1, guest_cq_wait(cq, &cpl, 1, GUEST_TIMEOUT_MS));
	EXPECT_EQ(0, nvme_status(cpl.status));
}

TEST_F(brd, sq_ring_removed_from_table)
{
	queue_memory_removed(_metadata, &self->c, false);
}

TEST_F(brd, doorbell_page_removed_from_table)
{
	queue_memory_removed(_metadata, &self->c, true);
}

/*
 * Forwarded. 10 reads for an 8-entry CQ: 7 run, the CQ is full. The tail
 * then moves back to 8, taking entries 8 and 9 away again; when the head
 * moves and the worker carries on, it must not run the 14 stale entries
 * of the lap from 10 round to 8 (cid 0 for the never-written ones, or
 * the first reads again).
 */
TEST_F(brd, sq_tail_moves_back)
{
	struct guest_cpl cpl[32];
	struct hctx *c = &self->c;
	struct guest_cq *cq;
	struct guest_buf b;
	int i, n, rc;

	ASSERT_OK(guest_set_error_fd(&c->g));
	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 4096, false));
	ASSERT_OK(guest_create_cq(&c->g, 1, 8, 0, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 1, cq, 16, 0, 0, &c->sq));
	ASSERT_OK(push_reads(c, c->sq, &b, 10, 0x100));
	ASSERT_OK(guest_sq_ring(c->sq));
	for (i = 0; i < GUEST_TIMEOUT_MS && guest_cq_peek(cq) < 7; i++)
		guest_msleep(1);
	guest_msleep(100);
	n = guest_cq_peek(cq);
	ASSERT_EQ(7, n) {
		TH_LOG("%d CQEs in an 8-entry CQ for 10 commands, want 7 (full)",
		       n);
	}

	rc = guest_sq_doorbell(c->sq, 8, true);
	EXPECT_TRUE(rc == 0 || rc == -EINVAL) {
		TH_LOG("SQ tail doorbell 8 after 10: %s", guest_strerror(rc));
	}
	n = guest_cq_reap(cq, cpl, 7);
	ASSERT_EQ(7, n);
	for (i = 0; i < 7; i++)
		EXPECT_TRUE(cpl[i].sq_head >= 7 && cpl[i].sq_head <= 10) {
			TH_LOG("CQE %d: sq_head %u with 7 of 10 fetched", i,
			       cpl[i].sq_head);
		}
	EXPECT_OK(guest_cq_doorbell(cq, 7, true));
	guest_msleep(500);
	n += guest_cq_reap(cq, cpl + n, ARRAY_SIZE(cpl) - n);
	EXPECT_GE(10, n) {
		TH_LOG("%d completions for 10 commands", n);
	}
	check_once(_metadata, cpl, n, 0x100, 10, false);
	expect_db_error(_metadata, &c->g, 1, 0, 8);
}

/*
 * The legal case next to the two above: after 10 commands, all reported
 * (SQ head 10), 15 more take the tail round to 9, numerically behind the
 * head. Nothing may be refused.
 */
TEST_F(brd, legal_full_lap_still_works)
{
	struct vhost_nvme_error e;
	struct guest_cpl cpl[16];
	struct hctx *c = &self->c;
	struct guest_cq *cq;
	struct guest_buf b;
	int rc;

	ASSERT_OK(guest_set_error_fd(&c->g));
	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 4096, false));
	ASSERT_OK(guest_create_cq(&c->g, 1, 32, GUEST_CQ_IEN, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 1, cq, 16, 0, 0, &c->sq));
	ASSERT_OK(push_reads(c, c->sq, &b, 10, 0x100));
	ASSERT_OK(guest_sq_ring(c->sq));
	ASSERT_WAIT(c->sq, cq, cpl, 10, GUEST_TIMEOUT_MS);
	check_once(_metadata, cpl, 10, 0x100, 10, true);
	ASSERT_EQ(10, c->sq->head);

	ASSERT_OK(push_reads(c, c->sq, &b, 15, 0x200));
	ASSERT_EQ(9, c->sq->tail);
	ASSERT_OK(guest_sq_ring(c->sq));
	ASSERT_WAIT(c->sq, cq, cpl, 15, GUEST_TIMEOUT_MS);
	check_once(_metadata, cpl, 15, 0x200, 15, true);
	EXPECT_EQ(9, c->sq->head);
	rc = guest_get_error(&c->g, &e);
	EXPECT_EQ(-EAGAIN, rc) {
		TH_LOG("error: qid %u cq %u type %u value %u", e.qid, e.cq,
		       e.type, e.value);
	}
}

/* ---- H: CQ head doorbells with shadow doorbells and no kickfd ----------- */

/*
 * A 4-entry CQ without a kickfd under 10 commands: the worker fills it and
 * waits. The guest consumes, writes the shadow head and writes the
 * register only when EventIdx asks; the VMM forwards that write with
 * VHOST_NVME_DOORBELL, as the UAPI says (guest_cq_ring() does both), and
 * that is what lets the SQ go on.
 */
TEST_F(brd, cq_doorbell_with_shadow_wakes_sq)
{
	struct vhost_nvme_queue_stats st;
	struct guest_cpl cpl[10];
	struct hctx *c = &self->c;
	struct guest_cq *cq;
	struct guest_buf b;
	char desc[512] = "";
	double deadline;
	int got = 0, k;

	ASSERT_OK(guest_set_dbbuf(&c->g));
	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 4096, false));
	ASSERT_OK(guest_create_cq(&c->g, 1, 4, GUEST_CQ_IEN, &cq));
	ASSERT_EQ(-1, cq->kickfd);
	ASSERT_OK(guest_create_sq(&c->g, 1, cq, 16, 0, 0, &c->sq));
	ASSERT_OK(push_reads(c, c->sq, &b, 10, 0x100));
	ASSERT_OK(guest_sq_ring(c->sq));
	deadline = now_ms() + GUEST_TIMEOUT_MS;
	while (got < 10 && now_ms() < deadline) {
		k = guest_cq_reap(cq, cpl + got, 10 - got);
		if (k) {
			got += k;
			ASSERT_OK(guest_cq_ring(cq));
			continue;
		}
		/* Rescanned every 50 ms: a lost interrupt cannot stall this. */
		if (guest_wait_fd(cq->irqfd, 50) == 1)
			cq->irqs++;
	}
	if (got < 10)
		guest_sq_describe(c->sq, desc, sizeof(desc));
	ASSERT_EQ(10, got) {
		TH_LOG("%d of 10 completions in %d ms: %s", got,
		       GUEST_TIMEOUT_MS, desc);
	}
	check_once(_metadata, cpl, 10, 0x100, 10, true);
	ASSERT_OK(guest_get_stats(&c->g, 1, &st));
	EXPECT_LT(0, st.cq_full);
	EXPECT_LT(0, cq->kicks);
	TH_LOG("head doorbell writes forwarded %lu of %lu head updates; cq_full %llu",
	       cq->kicks, cq->rings, (unsigned long long)st.cq_full);
}

/* ---- D3: O_APPEND ------------------------------------------------------- */

FIXTURE(file) {
	struct hctx c;
};

FIXTURE_SETUP(file)
{
	struct hctx *c = &self->c;

	hctx_init(c);
	ASSERT_OK(guest_backend_open(&c->be, GUEST_BACKEND_FILE, FILE_SIZE));
	ASSERT_OK(guest_setup(&c->g, MEM_SIZE));
	ASSERT_OK(guest_set_config(&c->g, 7, 0, 8));
	alloc_bufs(_metadata, c);
}

FIXTURE_TEARDOWN(file)
{
	hctx_teardown(&self->c);
}

/*
 * write(2) on an O_APPEND fd writes at the end of the file, whatever the
 * offset: such an fd is refused as a writable namespace (read-only is
 * fine), and an fd that becomes O_APPEND later (F_SETFL on the open file
 * the namespace holds) fails writes, neither writing in place nor
 * appending.
 */
TEST_F(file, append_fd)
{
	struct hctx *c = &self->c;
	struct stat before, after;
	struct nvme_sqe cmd;
	struct guest_buf b;
	int flags, rc;
	char path[64];

	/* The file is unlinked already: reopen it through our fd. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", c->be.fd);
	c->fd2 = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	ASSERT_LE(0, c->fd2);
	rc = guest_set_namespace(&c->g, c->fd2, 1, LBA_SHIFT, 0, NULL);
	EXPECT_EQ(-EPERM, rc) {
		TH_LOG("SET_NAMESPACE writable on an O_APPEND fd: %s, want %s",
		       guest_strerror(rc), strerror(EPERM));
	}
	if (!rc)
		ASSERT_OK(guest_clear_namespace(&c->g, 1));
	rc = guest_set_namespace(&c->g, c->fd2, 2, LBA_SHIFT,
				 VHOST_NVME_NS_F_READ_ONLY, NULL);
	EXPECT_EQ(0, rc) {
		TH_LOG("SET_NAMESPACE read-only on an O_APPEND fd: %s",
		       guest_strerror(rc));
	}

	attach(_metadata, c, c->be.fd, true, 16);
	guest_pattern(c->want, 4096, 130);
	backend_write(_metadata, c, 100, c->want, 4096);
	ASSERT_EQ(0, fstat(c->be.io_fd, &before));
	flags = fcntl(c->be.fd, F_GETFL);
	ASSERT_LE(0, flags);
	ASSERT_EQ(0, fcntl(c->be.fd, F_SETFL, flags | O_APPEND));
	refused_write(_metadata, c, 100, "a file set O_APPEND");
	ASSERT_EQ(0, fstat(c->be.io_fd, &after));
	EXPECT_EQ(before.st_size, after.st_size) {
		TH_LOG("file size %lld before the write, %lld after: it was appended",
		       (long long)before.st_size, (long long)after.st_size);
	}

	/* The read-only namespace on the O_APPEND fd reads as usual. */
	if (!rc) {
		ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 4096, false));
		nvme_sqe_rw(&cmd, NVME_CMD_READ, 2, 100, 8, 0);
		ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
		EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, "read, namespace 2");
		guest_buf_read(&c->g, &b, c->got);
		expect_same(_metadata, "read, namespace 2", c->want, c->got,
			    4096);
	}
}

/* ---- tests on configfs null_blk devices: D4, E1, I1 --------------------- */

FIXTURE(nullb) {
	struct hctx c;
};

FIXTURE_SETUP(nullb)
{
	hctx_init(&self->c);
	ASSERT_OK(guest_setup(&self->c.g, MEM_SIZE));
	/* mdts 8: 1 MiB commands. */
	ASSERT_OK(guest_set_config(&self->c.g, 8, 0, 8));
	alloc_bufs(_metadata, &self->c);
}

FIXTURE_TEARDOWN(nullb)
{
	hctx_teardown(&self->c);
}

#define FROZEN_FILE_SIZE	(16ull << 20)

/*
 * A write to a file on a frozen file system waits for the thaw, as
 * write(2) would (sb_start_write), and the worker waits elsewhere than
 * under its lock: an ioctl that takes it still returns at once. After the
 * thaw the write completes and its data is in the file.
 */
TEST_F_TIMEOUT(nullb, frozen_fs_write, 120)
{
	const struct nullb_attr attrs[] = {
		{ "size", "64" },
		{ "blocksize", "512" },
		{ "memory_backed", "1" },
	};
	struct vhost_nvme_queue_stats st;
	struct hctx *c = &self->c;
	struct guest_cpl cpl;
	struct nvme_sqe cmd;
	struct guest_buf b;
	const char *file = c->be.path;
	double t, lat;
	int n, rc;

	if (!test_nullb(_metadata, &c->nb, attrs, ARRAY_SIZE(attrs)))
		return;
	if (!fs_create(_metadata, &c->fs, c->nb.dev, "ext2"))
		return;
	snprintf(c->be.path, sizeof(c->be.path), "%s/disk", c->fs.dir);
	rc = make_file(file, NULL, FROZEN_FILE_SIZE);
	ASSERT_EQ(0, rc) {
		TH_LOG("create %s: %s", file, strerror(-rc));
	}
	c->be.kind = GUEST_BACKEND_FILE;
	c->be.fd = open_direct(file, O_RDWR);
	c->be.io_fd = open_direct(file, O_RDWR);
	ASSERT_TRUE(c->be.fd >= 0 && c->be.io_fd >= 0);
	attach(_metadata, c, c->be.fd, true, 16);
	ASSERT_EQ(FROZEN_FILE_SIZE >> LBA_SHIFT, c->nsze);

	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 4096, false));
	guest_pattern(c->want, 4096, 140);
	guest_buf_write(&c->g, &b, c->want);
	nvme_sqe_rw(&cmd, NVME_CMD_WRITE, 1, 2048, 8, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));

	c->fs.dirfd = open(c->fs.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, c->fs.dirfd);
	ASSERT_EQ(0, ioctl(c->fs.dirfd, FIFREEZE, 0)) {
		TH_LOG("FIFREEZE %s: %s", c->fs.dir, strerror(errno));
	}
	c->fs.frozen = true;
	ASSERT_LE(0, guest_sq_submit(c->sq, &cmd));
	ASSERT_OK(guest_sq_ring(c->sq));
	n = guest_cq_wait(c->sq->cq, &cpl, 1, 500);
	EXPECT_EQ(0, n) {
		TH_LOG("the write completed while the file system was frozen (status 0x%03x)",
		       n == 1 ? nvme_status(cpl.status) : 0);
	}
	t = now_ms();
	rc = guest_get_stats(&c->g, 1, &st);
	lat = now_ms() - t;
	EXPECT_OK(rc);
	EXPECT_GT(100, lat) {
		TH_LOG("GET_QUEUE_STATS took %.1f ms with a write held by the freeze: the worker waits under its lock",
		       lat);
	}
	ASSERT_EQ(0, ioctl(c->fs.dirfd, FITHAW, 0)) {
		TH_LOG("FITHAW %s: %s", c->fs.dir, strerror(errno));
	}
	c->fs.frozen = false;
	if (n == 0)
		ASSERT_WAIT(c->sq, c->sq->cq, &cpl, 1, GUEST_TIMEOUT_MS);
	EXPECT_NVME_STATUS_WHAT(NVME_SC_SUCCESS, &cpl, "write after thaw");
	backend_read(_metadata, c, 2048, c->got, 4096);
	expect_same(_metadata, "file after the thaw", c->want, c->got, 4096);
}

/* ---- E1: the bounce buffer budget --------------------------------------- */

#define BOUNCE_READS	32
#define BOUNCE_LEN	(256u << 10)

/*
 * With bounce_kb = 1024 a worker holds at most 1 MiB of bounce pages: 32
 * bounced reads of 256 KiB (8 MiB) in one doorbell cannot all be in
 * flight. They wait for each other (bounce_waits) and all complete, with
 * the right data.
 */
TEST_F_TIMEOUT(nullb, bounce_budget_backpressure, 120)
{
	const struct nullb_attr attrs[] = {
		{ "size", "64" },
		{ "blocksize", "512" },
		{ "memory_backed", "1" },
		{ "irqmode", "2" },
		{ "completion_nsec", "50000000" },	/* 50 ms */
	};
	const size_t total = (size_t)BOUNCE_READS * BOUNCE_LEN;
	struct vhost_nvme_queue_stats st;
	struct guest_cpl cpl[BOUNCE_READS];
	struct hctx *c = &self->c;
	unsigned char *want, *got;
	struct guest_buf *b;
	struct nvme_sqe cmd;
	double t0, t;
	char val[32];
	int i, rc;

	rc = attr_read(BOUNCE_PARAM, val, sizeof(val));
	ASSERT_EQ(0, rc) {
		TH_LOG("module parameter %s: %s: this module has no bounce buffer budget",
		       BOUNCE_PARAM, strerror(-rc));
	}
	snprintf(c->param_saved, sizeof(c->param_saved), "%s", val);
	rc = attr_write(BOUNCE_PARAM, "1024");
	ASSERT_EQ(0, rc) {
		TH_LOG("%s = 1024: %s", BOUNCE_PARAM, strerror(-rc));
	}
	if (!test_nullb(_metadata, &c->nb, attrs, ARRAY_SIZE(attrs)))
		return;
	open_bdev(_metadata, c, c->nb.dev);
	attach(_metadata, c, c->be.fd, true, 64);

	want = malloc(total);
	got = malloc(BOUNCE_LEN);
	b = calloc(BOUNCE_READS, sizeof(*b));
	ASSERT_TRUE(want && got && b);
	guest_pattern(want, total, 150);
	backend_write(_metadata, c, 0, want, total);
	for (i = 0; i < BOUNCE_READS; i++) {
		ASSERT_OK(guest_buf_alloc(&c->g, &b[i], 4, BOUNCE_LEN, false));
		guest_buf_set_pages(&c->g, &b[i], 0xa5);
		nvme_sqe_rw(&cmd, NVME_CMD_READ, 1,
			    (__u64)i * (BOUNCE_LEN >> LBA_SHIFT),
			    BOUNCE_LEN >> LBA_SHIFT, 0);
		ASSERT_OK(guest_prp_build(&c->g, &b[i], 0, &cmd));
		cmd.cid = htole16(0x300 + i);
		ASSERT_OK(guest_sq_push(c->sq, &cmd));
	}
	t0 = now_ms();
	ASSERT_OK(guest_sq_ring(c->sq));
	ASSERT_WAIT(c->sq, c->sq->cq, cpl, BOUNCE_READS, 2 * GUEST_TIMEOUT_MS);
	t = now_ms() - t0;
	check_once(_metadata, cpl, BOUNCE_READS, 0x300, BOUNCE_READS, true);
	for (i = 0; i < BOUNCE_READS; i++) {
		char what[48];
		int k = (__u16)(cpl[i].cid - 0x300);

		if (k >= BOUNCE_READS)
			continue;
		snprintf(what, sizeof(what), "bounced read %d", k);
		guest_buf_read(&c->g, &b[k], got);
		expect_same(_metadata, what, want + (size_t)k * BOUNCE_LEN,
			    got, BOUNCE_LEN);
	}
	ASSERT_OK(guest_get_stats(&c->g, 1, &st));
	EXPECT_LT(0, st.bounce_waits) {
		TH_LOG("8 MiB of bounced reads with a 1 MiB budget never waited for bounce pages");
	}
	TH_LOG("%d reads of %u KiB in %.0f ms; bounce_waits %llu",
	       BOUNCE_READS, BOUNCE_LEN >> 10, t,
	       (unsigned long long)st.bounce_waits);
	free(want);
	free(got);
	free(b);
}

/* ---- I1: Write Zeroes with FUA ------------------------------------------ */

/*
 * A null_blk with a volatile write cache and FUA support off: a write
 * with FUA then reaches it as the write and a flush, and so does a
 * flush after the write, whichever way the module implements FUA on
 * Write Zeroes. The flush count in the disk's stat must grow; the range
 * reads back zero.
 */
TEST_F_TIMEOUT(nullb, write_zeroes_fua_flushes, 60)
{
	const struct nullb_attr attrs[] = {
		{ "size", "64" },
		{ "blocksize", "512" },
		{ "memory_backed", "1" },
		{ "cache_size", "16" },		/* MiB */
		{ "fua", "0", true },
	};
	const __u64 slba = 4096, nlb = 64;
	struct hctx *c = &self->c;
	long long before, after;
	struct nvme_sqe cmd;

	if (!test_nullb(_metadata, &c->nb, attrs, ARRAY_SIZE(attrs)))
		return;
	open_bdev(_metadata, c, c->nb.dev);
	attach(_metadata, c, c->be.fd, true, 16);
	guest_pattern(c->want, nlb * LBA, 160);
	backend_write(_metadata, c, slba, c->want, nlb * LBA);

	before = block_stat(c->nb.name, STAT_FLUSH_IOS);
	ASSERT_LE(0, before) {
		TH_LOG("no flush count in /sys/block/%s/stat", c->nb.name);
	}
	nvme_sqe_write_zeroes(&cmd, 1, slba, nlb, false);
	cmd.cdw12 |= htole32(NVME_RW_FUA);
	EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, "write zeroes with FUA");
	after = block_stat(c->nb.name, STAT_FLUSH_IOS);
	EXPECT_LT(before, after) {
		TH_LOG("flush I/Os of %s: %lld before, %lld after a Write Zeroes with FUA: nothing reached the medium",
		       c->nb.name, before, after);
	}
	memset(c->want, 0, nlb * LBA);
	backend_read(_metadata, c, slba, c->got, nlb * LBA);
	expect_same(_metadata, "backend after write zeroes with FUA", c->want,
		    c->got, nlb * LBA);
}

/* ---- I2: Write Zeroes on a file system without fallocate zeroing -------- */

FIXTURE(nofalloc) {
	struct hctx c;
};

FIXTURE_VARIANT(nofalloc) {
	const char *fs;
};

/*
 * minix has no fallocate at all: neither zero range nor punch hole. It is
 * the case the old module failed (Invalid Opcode).
 */
FIXTURE_VARIANT_ADD(nofalloc, minix) {
	.fs = "minix",
};

/*
 * ext2 (through ext4, whose block-mapped files punch holes but do not zero
 * ranges): coverage; the old module got by with a hole.
 */
FIXTURE_VARIANT_ADD(nofalloc, ext2) {
	.fs = "ext2",
};

FIXTURE_SETUP(nofalloc)
{
	hctx_init(&self->c);
	ASSERT_OK(guest_setup(&self->c.g, MEM_SIZE));
	ASSERT_OK(guest_set_config(&self->c.g, 7, 0, 8));
	alloc_bufs(_metadata, &self->c);
}

FIXTURE_TEARDOWN(nofalloc)
{
	hctx_teardown(&self->c);
}

#define NOFALLOC_FILE_SIZE	(8ull << 20)

/* What fallocate @mode does in the file system of @dir, for the log. */
static const char *falloc_probe(const char *dir, int mode)
{
	char path[96];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/probe", dir);
	if (make_file(path, NULL, 1 << 16))
		return "(no probe file)";
	fd = open(path, O_RDWR | O_CLOEXEC);
	rc = fd < 0 ? -errno :
	     fallocate(fd, mode | FALLOC_FL_KEEP_SIZE, 4096, 4096) ? -errno : 0;
	if (fd >= 0)
		close(fd);
	unlink(path);
	return rc ? strerror(-rc) : "supported";
}

/*
 * Blocks 8..71 of a file full of a pattern: zeroed by Write Zeroes with
 * and without DEAC, the blocks around them untouched. Where the file
 * system cannot zero or deallocate a range, zeroes must be written.
 */
TEST_F_TIMEOUT(nofalloc, write_zeroes_without_fallocate, 120)
{
	const struct nullb_attr attrs[] = {
		{ "size", "64" },
		{ "blocksize", "512" },
		{ "memory_backed", "1" },
	};
	const __u64 first = 8, nlb = 64, span = 80;
	struct hctx *c = &self->c;
	unsigned char *data;
	struct nvme_sqe cmd;
	const char *file = c->be.path;
	char what[64];
	int pass, rc;

	if (!test_nullb(_metadata, &c->nb, attrs, ARRAY_SIZE(attrs)))
		return;
	if (!fs_create(_metadata, &c->fs, c->nb.dev, variant->fs))
		return;
	TH_LOG("%s: fallocate zero range: %s, punch hole: %s", variant->fs,
	       falloc_probe(c->fs.dir, FALLOC_FL_ZERO_RANGE),
	       falloc_probe(c->fs.dir, FALLOC_FL_PUNCH_HOLE));
	data = malloc(NOFALLOC_FILE_SIZE);
	ASSERT_NE(NULL, data);
	guest_pattern(data, NOFALLOC_FILE_SIZE, 170);
	snprintf(c->be.path, sizeof(c->be.path), "%s/disk", c->fs.dir);
	rc = make_file(file, data, NOFALLOC_FILE_SIZE);
	free(data);
	ASSERT_EQ(0, rc) {
		TH_LOG("create %s: %s", file, strerror(-rc));
	}
	c->be.kind = GUEST_BACKEND_FILE;
	/*
	 * Buffered: minix opens with O_DIRECT but fails direct I/O with
	 * EINVAL, and the data is checked through the same page cache.
	 */
	c->be.fd = open(file, O_RDWR | O_CLOEXEC);
	c->be.io_fd = open(file, O_RDWR | O_CLOEXEC);
	ASSERT_TRUE(c->be.fd >= 0 && c->be.io_fd >= 0);
	attach(_metadata, c, c->be.fd, true, 16);

	for (pass = 0; pass < 2; pass++) {
		bool deac = pass;

		guest_pattern(c->want, span * LBA, 171 + pass);
		backend_write(_metadata, c, 0, c->want, span * LBA);
		nvme_sqe_write_zeroes(&cmd, 1, first, nlb, deac);
		snprintf(what, sizeof(what), "write zeroes%s on %s",
			 deac ? " with DEAC" : "", variant->fs);
		EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, what);
		memset(c->want + first * LBA, 0, nlb * LBA);
		backend_read(_metadata, c, 0, c->got, span * LBA);
		expect_same(_metadata, what, c->want, c->got, span * LBA);
	}
}

/* ---- G: the error ring -------------------------------------------------- */

FIXTURE(errs) {
	struct hctx c;
};

FIXTURE_SETUP(errs)
{
	hctx_init(&self->c);
	ASSERT_OK(guest_setup(&self->c.g, 16 << 20));
}

FIXTURE_TEARDOWN(errs)
{
	hctx_teardown(&self->c);
}

/* A GET_ERROR whose copy-out fails leaves the record for the next one. */
TEST_F(errs, get_error_efault_keeps_record)
{
	struct guest *g = &self->c.g;
	struct vhost_nvme_error e;
	struct guest_cq *cq;
	int rc;

	ASSERT_OK(guest_create_cq(g, 1, 16, 0, &cq));
	rc = guest_cq_doorbell(cq, 16, true);
	EXPECT_TRUE(rc == 0 || rc == -EINVAL) {
		TH_LOG("CQ head doorbell 16: %s", guest_strerror(rc));
	}
	rc = xioctl(g->fd, VHOST_NVME_GET_ERROR, (void *)8);
	EXPECT_EQ(-EFAULT, rc) {
		TH_LOG("GET_ERROR to address 8: %s, want %s",
		       guest_strerror(rc), strerror(EFAULT));
	}
	rc = guest_get_error(g, &e);
	ASSERT_EQ(0, rc) {
		TH_LOG("GET_ERROR after the -EFAULT: %s: the record was lost",
		       guest_strerror(rc));
	}
	EXPECT_TRUE(e.qid == 1 && e.cq == 1 &&
		    e.type == VHOST_NVME_ERR_INVALID_DB_VALUE &&
		    e.value == 16 && !e.gpa) {
		TH_LOG("error: qid %u cq %u type %u value %u gpa 0x%llx; want CQ 1 INVALID_DB_VALUE 16",
		       e.qid, e.cq, e.type, e.value,
		       (unsigned long long)e.gpa);
	}
	EXPECT_EQ(-EAGAIN, guest_get_error(g, &e));
}

#define OVERFLOW_CQS	70
#define KEPT_ERRORS	64

/*
 * 70 errors, 64 kept: the 64 in order, then one OVERFLOW record counting
 * the 6 dropped, then none.
 */
TEST_F(errs, error_overflow_counted)
{
	struct guest *g = &self->c.g;
	struct vhost_nvme_error e;
	struct guest_cq *cq;
	int i, rc, bad = 0;

	ASSERT_OK(guest_set_config(g, 7, 0, VHOST_NVME_MAX_QUEUES));
	for (i = 1; i <= OVERFLOW_CQS; i++) {
		ASSERT_OK(guest_create_cq(g, i, 2, 0, &cq));
		rc = guest_cq_doorbell(cq, 2, true);
		ASSERT_TRUE(rc == 0 || rc == -EINVAL) {
			TH_LOG("CQ %d head doorbell 2: %s", i,
			       guest_strerror(rc));
		}
	}
	for (i = 1; i <= KEPT_ERRORS; i++) {
		rc = guest_get_error(g, &e);
		ASSERT_EQ(0, rc) {
			TH_LOG("GET_ERROR %d of %d: %s", i, KEPT_ERRORS,
			       guest_strerror(rc));
		}
		if (e.qid == i && e.cq == 1 &&
		    e.type == VHOST_NVME_ERR_INVALID_DB_VALUE && e.value == 2)
			continue;
		if (!bad++)
			TH_LOG("record %d: qid %u cq %u type %u value %u; want qid %d cq 1 type %u value 2",
			       i, e.qid, e.cq, e.type, e.value, i,
			       VHOST_NVME_ERR_INVALID_DB_VALUE);
	}
	EXPECT_EQ(0, bad);
	rc = guest_get_error(g, &e);
	ASSERT_EQ(0, rc) {
		TH_LOG("after %d records: %s, want the OVERFLOW record",
		       KEPT_ERRORS, guest_strerror(rc));
	}
	EXPECT_TRUE(e.type == VHOST_NVME_ERR_OVERFLOW &&
		    e.value == OVERFLOW_CQS - KEPT_ERRORS && !e.qid && !e.cq &&
		    !e.gpa) {
		TH_LOG("record %d: qid %u cq %u type %u value %u gpa 0x%llx; want type %u (OVERFLOW) value %d, the rest 0",
		       KEPT_ERRORS + 1, e.qid, e.cq, e.type, e.value,
		       (unsigned long long)e.gpa, VHOST_NVME_ERR_OVERFLOW,
		       OVERFLOW_CQS - KEPT_ERRORS);
	}
	rc = guest_get_error(g, &e);
	EXPECT_EQ(-EAGAIN, rc) {
		TH_LOG("after the OVERFLOW record: qid %u type %u value %u",
		       e.qid, e.type, e.value);
	}
}

TEST_HARNESS_MAIN
