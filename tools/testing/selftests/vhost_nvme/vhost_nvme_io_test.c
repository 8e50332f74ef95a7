// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme data path: every PRP shape moves exactly the right bytes
 * between guest memory and the backend, each supported opcode does what it
 * says, and malformed commands complete with the status the UAPI header
 * promises. The backend is checked directly (O_DIRECT pread/pwrite), never
 * through the device under test.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest.h"
#include "kselftest_harness.h"

#define LBA_SHIFT	9
#define LBA		(1u << LBA_SHIFT)
#define FILE_SIZE	(64ull << 20)
#define HOST_BUF	((1u << 20) + 2 * GUEST_PAGE_SIZE)
/* Data bytes per MDTS: 4 KiB << mdts. */
#define MDTS_BYTES(m)	(GUEST_PAGE_SIZE << (m))

/* What both fixtures share: a started device with one queue pair. */
struct io_ctx {
	struct guest g;
	struct guest_backend be;
	struct guest_sq *sq;
	__u64 nsze;
	unsigned char *want, *got;
	__u64 seed;
};

static const char *backend_name(enum guest_backend_kind k)
{
	switch (k) {
	case GUEST_BACKEND_BRD:
		return "brd (/dev/ram0)";
	case GUEST_BACKEND_NULLB:
		return "null_blk (/dev/nullb0)";
	case GUEST_BACKEND_EXT4_FILE:
		return "file on ext4 (O_DIRECT)";
	default:
		return "file in /tmp";
	}
}

static void ctx_setup(struct __test_metadata *_metadata, struct io_ctx *c,
		      enum guest_backend_kind kind, unsigned int mdts)
{
	int rc;

	rc = guest_backend_open(&c->be, kind, FILE_SIZE);
	if (rc == -EBUSY)
		SKIP(return, "null_blk is loaded without memory_backed=1");
	if (rc == -ENODEV && kind == GUEST_BACKEND_EXT4_FILE)
		SKIP(return, "no ext4 on a loop device here (mkfs.ext4, loop, ext4)");
	ASSERT_EQ(0, rc) {
		TH_LOG("backend %s: %s", backend_name(kind), strerror(-rc));
	}
	ASSERT_OK(guest_setup(&c->g, GUEST_MEM_SIZE));
	ASSERT_OK(guest_set_config(&c->g, mdts, 0, 8));
	ASSERT_OK(guest_set_namespace(&c->g, c->be.fd, 1, LBA_SHIFT, 0,
				      &c->nsze));
	ASSERT_EQ(c->be.size >> LBA_SHIFT, c->nsze);
	ASSERT_OK(guest_start(&c->g));
	ASSERT_OK(guest_set_dbbuf(&c->g));
	ASSERT_OK(guest_create_qpair(&c->g, 1, 64, 64, 0, &c->sq));
	c->want = aligned_alloc(GUEST_PAGE_SIZE, HOST_BUF);
	c->got = aligned_alloc(GUEST_PAGE_SIZE, HOST_BUF);
	ASSERT_TRUE(c->want && c->got);
	c->seed = 1;
}

static void ctx_teardown(struct io_ctx *c)
{
	guest_close(&c->g);
	guest_backend_close(&c->be);
	free(c->want);
	free(c->got);
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

static void backend_write(struct __test_metadata *_metadata,
			  struct io_ctx *c, __u64 slba, const void *buf,
			  size_t len)
{
	int rc = guest_backend_pwrite(&c->be, buf, len, slba << LBA_SHIFT);

	ASSERT_EQ(0, rc) {
		TH_LOG("pwrite %s at lba %llu: %s", c->be.path,
		       (unsigned long long)slba, strerror(-rc));
	}
}

static void backend_read(struct __test_metadata *_metadata, struct io_ctx *c,
			 __u64 slba, void *buf, size_t len)
{
	int rc = guest_backend_pread(&c->be, buf, len, slba << LBA_SHIFT);

	ASSERT_EQ(0, rc) {
		TH_LOG("pread %s at lba %llu: %s", c->be.path,
		       (unsigned long long)slba, strerror(-rc));
	}
}

/* Run @cmd and expect success. */
#define EXEC_SUCCESS(c, cmd) do { \
	struct guest_cpl __cpl; \
	\
	ASSERT_EXEC((c)->sq, cmd, &__cpl); \
	EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &__cpl); \
} while (0)

/* Run @cmd and expect status @sc. */
#define EXEC_STATUS(c, cmd, sc, what) do { \
	struct guest_cpl __cpl; \
	\
	ASSERT_EXEC((c)->sq, cmd, &__cpl); \
	EXPECT_NVME_STATUS_WHAT(sc, &__cpl, what); \
} while (0)

/*
 * The core data check. Write a fresh pattern through the buffer and PRPs
 * of @b (PRP list at @list_off) and compare the backend; then put another
 * pattern in the backend, read it through the same PRPs into pages full of
 * a canary, and compare the buffer - and that no byte of those pages
 * outside the buffer was touched.
 */
static void rw_verify(struct __test_metadata *_metadata, struct io_ctx *c,
		      const struct guest_buf *b, __u32 list_off, __u64 slba)
{
	__u32 len = b->len, nlb = len >> LBA_SHIFT;
	struct nvme_sqe cmd;
	char what[96];
	long bad;
	int rc;

	snprintf(what, sizeof(what), "%u bytes at page offset %u, list at %u",
		 len, b->off, list_off);

	/* Junk in the backend first: a write that does nothing must fail. */
	memset(c->got, 0xee, len);
	backend_write(_metadata, c, slba, c->got, len);
	guest_pattern(c->want, len, c->seed++);
	guest_buf_write(&c->g, b, c->want);
	nvme_sqe_rw(&cmd, NVME_CMD_WRITE, 1, slba, nlb, 0);
	rc = guest_prp_build(&c->g, b, list_off, &cmd);
	ASSERT_EQ(0, rc);
	EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, what);
	backend_read(_metadata, c, slba, c->got, len);
	expect_same(_metadata, "backend after write", c->want, c->got, len);

	guest_pattern(c->want, len, c->seed++);
	backend_write(_metadata, c, slba, c->want, len);
	guest_buf_set_pages(&c->g, b, 0xa5);
	cmd.opcode = NVME_CMD_READ;
	EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, what);
	guest_buf_read(&c->g, b, c->got);
	expect_same(_metadata, "guest buffer after read", c->want, c->got,
		    len);
	bad = guest_buf_check_outside(&c->g, b, 0xa5);
	EXPECT_EQ(-1, bad) {
		TH_LOG("%s: read wrote outside the buffer, page %ld byte %ld",
		       what, bad / GUEST_PAGE_SIZE, bad % GUEST_PAGE_SIZE);
	}
}

/* Allocate a buffer and rw_verify() it. */
static void prp_case(struct __test_metadata *_metadata, struct io_ctx *c,
		     __u32 off, __u32 len, bool scatter, __u32 list_off,
		     __u64 slba)
{
	struct guest_buf b;

	ASSERT_OK(guest_buf_alloc(&c->g, &b, off, len, scatter));
	rw_verify(_metadata, c, &b, list_off, slba);
}

FIXTURE(io) {
	struct io_ctx c;
};

FIXTURE_VARIANT(io) {
	enum guest_backend_kind backend;
};

FIXTURE_VARIANT_ADD(io, brd) {
	.backend = GUEST_BACKEND_BRD,
};

FIXTURE_VARIANT_ADD(io, file) {
	.backend = GUEST_BACKEND_FILE,
};

FIXTURE_VARIANT_ADD(io, null_blk) {
	.backend = GUEST_BACKEND_NULLB,
};

/* Asynchronous direct I/O: completions through ->ki_complete. */
FIXTURE_VARIANT_ADD(io, ext4_file) {
	.backend = GUEST_BACKEND_EXT4_FILE,
};

FIXTURE_SETUP(io)
{
	/* mdts 8: 1 MiB commands, enough PRP entries to chain list pages. */
	ctx_setup(_metadata, &self->c, variant->backend, 8);
}

FIXTURE_TEARDOWN(io)
{
	ctx_teardown(&self->c);
}

/* PRP1 only, the whole page. */
TEST_F(io, prp1_single_page)
{
	prp_case(_metadata, &self->c, 0, 4096, false, 0, 8);
}

/* PRP1 with an offset, the data ending inside or exactly at the page. */
TEST_F(io, prp1_offset_in_page)
{
	prp_case(_metadata, &self->c, 512, 2048, false, 0, 16);
	prp_case(_metadata, &self->c, 3584, 512, false, 0, 24);
}

/* Dword-aligned but not sector-aligned data pointers are valid PRPs. */
TEST_F(io, prp1_dword_offset)
{
	prp_case(_metadata, &self->c, 4, 512, false, 0, 32);
	prp_case(_metadata, &self->c, 516, 4096, true, 0, 40);
}

/* Two pages: PRP2 is the second data page, not a list. */
TEST_F(io, prp2_data_page)
{
	prp_case(_metadata, &self->c, 0, 8192, true, 0, 48);
	prp_case(_metadata, &self->c, 512, 4096, true, 0, 64);
	prp_case(_metadata, &self->c, 2048, 6144, true, 0, 80);
}

TEST_F(io, prp_list_one_page)
{
	prp_case(_metadata, &self->c, 0, 64 << 10, true, 0, 256);
}

/* 1 MiB = MDTS: 255 entries, one list page. */
TEST_F(io, prp_list_max_transfer)
{
	prp_case(_metadata, &self->c, 0, 1 << 20, true, 0, 4096);
}

/*
 * The list starts near the end of its page, so its last slot points to a
 * second list page: 3 data entries then the chain (4064), or a first page
 * whose only slot is the chain pointer (4088).
 */
TEST_F(io, prp_list_chained)
{
	prp_case(_metadata, &self->c, 0, 1 << 20, true, 4064, 8192);
	prp_case(_metadata, &self->c, 0, 1 << 20, true, 4088, 12288);
}

/*
 * 255 entries that end exactly in the last slot of the list page: that
 * slot is data, not a pointer, because nothing follows.
 */
TEST_F(io, prp_list_exact_fit)
{
	prp_case(_metadata, &self->c, 0, 1 << 20, true, 4096 - 255 * 8,
		 16384);
}

/* An offset in the first data page, with a list after it. */
TEST_F(io, prp_list_first_offset)
{
	prp_case(_metadata, &self->c, 1024, 128 << 10, true, 0, 20480);
	/* 257 pages: 255 entries, a chain, then two on the next page. */
	prp_case(_metadata, &self->c, 3072, 1 << 20, true, 2056, 24576);
}

/* PRP2 points into its list page at a non-zero, 8-aligned offset. */
TEST_F(io, prp_list_pointer_offset)
{
	prp_case(_metadata, &self->c, 0, 64 << 10, true, 37 * 8, 28672);
}

TEST_F(io, write_fua)
{
	struct io_ctx *c = &self->c;
	struct guest_buf b;
	struct nvme_sqe cmd;
	__u64 slba = 30000;

	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 16384, true));
	memset(c->got, 0, b.len);
	backend_write(_metadata, c, slba, c->got, b.len);
	guest_pattern(c->want, b.len, 77);
	guest_buf_write(&c->g, &b, c->want);
	nvme_sqe_rw(&cmd, NVME_CMD_WRITE, 1, slba, b.len / LBA, NVME_RW_FUA);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	EXEC_SUCCESS(c, &cmd);
	backend_read(_metadata, c, slba, c->got, b.len);
	expect_same(_metadata, "backend after FUA write", c->want, c->got,
		    b.len);
}

TEST_F(io, flush)
{
	struct io_ctx *c = &self->c;
	struct guest_buf b;
	struct nvme_sqe cmd;
	__u64 slba = 31000;

	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 4096, false));
	guest_pattern(c->want, b.len, 78);
	guest_buf_write(&c->g, &b, c->want);
	nvme_sqe_rw(&cmd, NVME_CMD_WRITE, 1, slba, b.len / LBA, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	EXEC_SUCCESS(c, &cmd);
	nvme_sqe_flush(&cmd, 1);
	EXEC_SUCCESS(c, &cmd);
	backend_read(_metadata, c, slba, c->got, b.len);
	expect_same(_metadata, "backend after write+flush", c->want, c->got,
		    b.len);
}

/*
 * Zero 16 blocks inside a 64-block pattern: those read back as zeroes,
 * through the device and in the backend; the neighbours keep the pattern.
 */
static void write_zeroes_case(struct __test_metadata *_metadata,
			      struct io_ctx *c, bool deac)
{
	const __u64 base = 32768, first = base + 8, n = 16;
	const size_t len = 64 * LBA;
	struct guest_buf b;
	struct nvme_sqe cmd;

	guest_pattern(c->want, len, deac ? 80 : 79);
	backend_write(_metadata, c, base, c->want, len);
	nvme_sqe_write_zeroes(&cmd, 1, first, n, deac);
	EXEC_SUCCESS(c, &cmd);
	memset(c->want + (first - base) * LBA, 0, n * LBA);
	backend_read(_metadata, c, base, c->got, len);
	expect_same(_metadata, "backend after write zeroes", c->want, c->got,
		    len);

	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, len, true));
	guest_buf_set_pages(&c->g, &b, 0x5a);
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, base, len / LBA, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	EXEC_SUCCESS(c, &cmd);
	guest_buf_read(&c->g, &b, c->got);
	expect_same(_metadata, "guest read after write zeroes", c->want,
		    c->got, len);
}

TEST_F(io, write_zeroes)
{
	write_zeroes_case(_metadata, &self->c, false);
}

TEST_F(io, write_zeroes_deac)
{
	write_zeroes_case(_metadata, &self->c, true);
}

/*
 * Three 4 KiB-aligned ranges (brd discards whole pages only) in a 1 MiB
 * pattern. With AD they are deallocated: zeroes where the backend
 * deallocates (brd, null_blk with discard=1, tmpfs punches holes), else
 * left as they were - Deallocate is advisory. Without AD nothing changes.
 * Outside the ranges nothing may change either way.
 */
static void dsm_case(struct __test_metadata *_metadata, struct io_ctx *c,
		     __u32 attributes)
{
	static const struct { __u64 slba; __u32 nlb; } r[] = {
		{ 64, 8 }, { 256, 64 }, { 1024, 8 },
	};
	const __u64 base = 40960;
	const size_t len = 1 << 20;
	bool deallocate = attributes & NVME_DSM_AD;
	struct nvme_dsm_range *ranges;
	unsigned char *orig;
	struct nvme_sqe cmd;
	__u64 list;
	size_t i;

	orig = malloc(len);
	ASSERT_NE(NULL, orig);
	guest_pattern(orig, len, 81);
	backend_write(_metadata, c, base, orig, len);

	list = guest_alloc(&c->g, 1);
	ASSERT_NE(0, list);
	ranges = guest_ptr(&c->g, list);
	for (i = 0; i < ARRAY_SIZE(r); i++) {
		ranges[i].cattr = 0;
		ranges[i].nlb = htole32(r[i].nlb);
		ranges[i].slba = htole64(base + r[i].slba);
	}
	nvme_sqe_dsm(&cmd, 1, ARRAY_SIZE(r), attributes);
	nvme_sqe_set_prp(&cmd, list, 0);
	EXEC_SUCCESS(c, &cmd);

	backend_read(_metadata, c, base, c->got, len);
	memcpy(c->want, orig, len);
	for (i = 0; deallocate && i < ARRAY_SIZE(r); i++) {
		size_t off = r[i].slba * LBA, n = r[i].nlb * LBA;
		bool zero = true;
		size_t j;

		for (j = 0; j < n; j++)
			zero &= !c->got[off + j];
		/*
		 * Deallocated blocks must read as zeroes where the backend
		 * frees them; elsewhere Deallocate is advisory: a range is
		 * either all zeroes or all kept.
		 */
		if (c->be.discard_zeroes || zero)
			memset(c->want + off, 0, n);
	}
	expect_same(_metadata, deallocate ?
		    "backend after deallocate (ranges zero if supported)" :
		    "backend after DSM without AD (unchanged)",
		    c->want, c->got, len);
	free(orig);
}

TEST_F(io, dsm_deallocate)
{
	dsm_case(_metadata, &self->c, NVME_DSM_AD);
}

TEST_F(io, dsm_without_ad)
{
	/* Integral Dataset for Read/Write are hints: no data change. */
	dsm_case(_metadata, &self->c, NVME_DSM_IDR | NVME_DSM_IDW);
}

/*
 * A second namespace on the same backend with 4 KiB logical blocks: LBA n
 * is byte n * 4096 of the backend, and its size is counted in 4 KiB.
 */
TEST_F(io, lba_4k_namespace)
{
	struct io_ctx *c = &self->c;
	struct guest_buf b;
	struct nvme_sqe cmd;
	struct guest_cpl cpl;
	__u64 nsze = 0;
	char path[64];
	int fd;

	/* A file is unlinked already: reopen it through our fd. */
	if (c->be.kind == GUEST_BACKEND_FILE)
		snprintf(path, sizeof(path), "/proc/self/fd/%d", c->be.fd);
	else
		snprintf(path, sizeof(path), "%s", c->be.path);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_OK(guest_stop(&c->g));
	ASSERT_OK(guest_set_namespace(&c->g, fd, 2, 12, 0, &nsze));
	close(fd);
	EXPECT_EQ(c->be.size >> 12, nsze);
	ASSERT_OK(guest_start(&c->g));

	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 8192, true));
	memset(c->got, 0, 4 * 4096);
	backend_write(_metadata, c, 5 * 8, c->got, 4 * 4096);
	guest_pattern(c->want, 8192, 82);
	guest_buf_write(&c->g, &b, c->want);
	nvme_sqe_rw(&cmd, NVME_CMD_WRITE, 2, 6, 2, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	EXEC_SUCCESS(c, &cmd);
	/* Namespace 2 LBA 6 = namespace 1 LBA 48. */
	backend_read(_metadata, c, 6 * 8, c->got, 8192);
	expect_same(_metadata, "backend at 4K LBA 6", c->want, c->got, 8192);
	backend_read(_metadata, c, 5 * 8, c->got, 4096);
	expect_zero(_metadata, "backend at 4K LBA 5 (untouched)", c->got,
		    4096);

	nvme_sqe_rw(&cmd, NVME_CMD_READ, 2, nsze - 1, 2, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	ASSERT_EXEC(c->sq, &cmd, &cpl);
	EXPECT_NVME_STATUS(NVME_SC_LBA_RANGE, &cpl);
}

/*
 * Random reads, writes and write zeroes of random sizes at random buffer
 * offsets, checked against a model of the region kept here.
 */
TEST_F_TIMEOUT(io, random_mixed, 120)
{
	const __u64 base = 65536, nblocks = 8192;
	struct io_ctx *c = &self->c;
	unsigned int seed = 12345, i;
	unsigned char *model;
	struct guest_buf b;
	struct nvme_sqe cmd;
	__u64 mark;

	model = malloc(nblocks * LBA);
	ASSERT_NE(NULL, model);
	guest_pattern(model, nblocks * LBA, 83);
	backend_write(_metadata, c, base, model, nblocks * LBA);
	mark = guest_alloc_mark(&c->g);
	for (i = 0; i < 150; i++) {
		__u32 nlb = 1 + rand_r(&seed) % 256;
		__u64 lba = rand_r(&seed) % (nblocks - nlb + 1);
		__u32 off = (rand_r(&seed) % 1024) * 4;
		unsigned int op = rand_r(&seed) % 10;
		__u32 len = nlb * LBA;
		char what[96];

		snprintf(what, sizeof(what), "op %u: %s lba +%llu nlb %u off %u",
			 i, op < 5 ? "write" : op < 9 ? "read" : "zeroes",
			 (unsigned long long)lba, nlb, off);
		guest_alloc_release(&c->g, mark);
		ASSERT_OK(guest_buf_alloc(&c->g, &b, off, len, true));
		if (op < 5) {
			guest_pattern(model + lba * LBA, len, 1000 + i);
			guest_buf_write(&c->g, &b, model + lba * LBA);
			nvme_sqe_rw(&cmd, NVME_CMD_WRITE, 1, base + lba, nlb, 0);
		} else if (op < 9) {
			guest_buf_set_pages(&c->g, &b, 0xa5);
			nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, base + lba, nlb, 0);
		} else {
			memset(model + lba * LBA, 0, len);
			nvme_sqe_write_zeroes(&cmd, 1, base + lba, nlb, false);
		}
		if (op < 9)
			ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
		EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, what);
		if (op >= 5 && op < 9) {
			guest_buf_read(&c->g, &b, c->got);
			expect_same(_metadata, what, model + lba * LBA, c->got,
				    len);
		}
		if (_metadata->exit_code)
			break;
	}
	for (i = 0; i < nblocks * LBA >> 20; i++) {
		backend_read(_metadata, c, base + (i << 11), c->want, 1 << 20);
		expect_same(_metadata, "backend vs model", model + (i << 20),
			    c->want, 1 << 20);
	}
	free(model);
}

/*
 * Status checks: one fault per command, on a file backend, mdts 3
 * (32 KiB) so that transfers over the limit are cheap.
 */
#define STATUS_MDTS	3

FIXTURE(status) {
	struct io_ctx c;
	struct guest_buf page;	/* a one-page data buffer */
};

FIXTURE_SETUP(status)
{
	ctx_setup(_metadata, &self->c, GUEST_BACKEND_FILE, STATUS_MDTS);
	ASSERT_OK(guest_buf_alloc(&self->c.g, &self->page, 0, 4096, false));
}

FIXTURE_TEARDOWN(status)
{
	ctx_teardown(&self->c);
}

/* A read or write of one page at LBA 0 of @nsid, valid but for the test. */
static void page_cmd(FIXTURE_DATA(status) *self, struct nvme_sqe *cmd,
		     __u8 opcode, __u32 nsid)
{
	nvme_sqe_rw(cmd, opcode, nsid, 0, 8, 0);
	guest_prp_build(&self->c.g, &self->page, 0, cmd);
}

TEST_F(status, invalid_opcode)
{
	static const __u8 ops[] = { NVME_CMD_COMPARE, 0x04, 0x0a, 0x7f, 0xff };
	struct nvme_sqe cmd;
	char what[32];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ops); i++) {
		page_cmd(self, &cmd, NVME_CMD_READ, 1);
		cmd.opcode = ops[i];
		snprintf(what, sizeof(what), "opcode 0x%02x", ops[i]);
		EXEC_STATUS(&self->c, &cmd, NVME_SC_INVALID_OPCODE, what);
	}
}

TEST_F(status, invalid_namespace)
{
	static const struct { __u8 op; __u32 nsid; } t[] = {
		{ NVME_CMD_READ, 0 },
		{ NVME_CMD_READ, 2 },		/* not attached */
		{ NVME_CMD_READ, 16 },		/* not attached, in range */
		{ NVME_CMD_READ, 17 },
		{ NVME_CMD_READ, NVME_NSID_ALL },
		{ NVME_CMD_WRITE, 0 },
		{ NVME_CMD_WRITE, 3 },
		{ NVME_CMD_WRITE_ZEROES, 5 },
		{ NVME_CMD_DSM, 0 },
		{ NVME_CMD_FLUSH, 0 },
		{ NVME_CMD_FLUSH, 2 },
	};
	struct nvme_sqe cmd;
	char what[48];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(t); i++) {
		page_cmd(self, &cmd, t[i].op, t[i].nsid);
		if (t[i].op == NVME_CMD_DSM)
			cmd.cdw11 = htole32(NVME_DSM_AD);
		snprintf(what, sizeof(what), "opcode 0x%02x nsid 0x%x",
			 t[i].op, t[i].nsid);
		EXEC_STATUS(&self->c, &cmd, NVME_SC_INVALID_NS, what);
	}
}

/* Flush with NSID FFFFFFFFh applies to all namespaces: valid. */
TEST_F(status, flush_all_namespaces)
{
	struct nvme_sqe cmd;

	nvme_sqe_flush(&cmd, NVME_NSID_ALL);
	EXEC_STATUS(&self->c, &cmd, NVME_SC_SUCCESS, "flush nsid all");
	nvme_sqe_flush(&cmd, 1);
	EXEC_STATUS(&self->c, &cmd, NVME_SC_SUCCESS, "flush nsid 1");
}

TEST_F(status, mdts_exceeded)
{
	const __u32 max = MDTS_BYTES(STATUS_MDTS);
	struct io_ctx *c = &self->c;
	struct guest_buf b;
	struct nvme_sqe cmd;

	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, max + LBA, true));
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, 0, max / LBA + 1, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	EXEC_STATUS(c, &cmd, NVME_SC_INVALID_FIELD, "read mdts + 512");
	cmd.opcode = NVME_CMD_WRITE;
	EXEC_STATUS(c, &cmd, NVME_SC_INVALID_FIELD, "write mdts + 512");
	/* The largest NLB there is: 32 MiB. */
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, 0, 65536, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	EXEC_STATUS(c, &cmd, NVME_SC_INVALID_FIELD, "read 65536 blocks");

	/* Exactly MDTS is fine, also when it spans one page more. */
	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, max, true));
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, 0, max / LBA, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, "read mdts");
	ASSERT_OK(guest_buf_alloc(&c->g, &b, 512, max, true));
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, 0, max / LBA, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, "read mdts at offset 512");
}

/* Write Zeroes moves no data: MDTS does not limit it. */
TEST_F(status, write_zeroes_ignores_mdts)
{
	struct io_ctx *c = &self->c;
	const __u64 slba = 8192, n = 2048;	/* 1 MiB */
	struct nvme_sqe cmd;

	guest_pattern(c->want, (n + 16) * LBA, 84);
	backend_write(_metadata, c, slba - 8, c->want, (n + 16) * LBA);
	nvme_sqe_write_zeroes(&cmd, 1, slba, n, false);
	EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, "write zeroes 1 MiB");
	memset(c->want + 8 * LBA, 0, n * LBA);
	backend_read(_metadata, c, slba - 8, c->got, (n + 16) * LBA);
	expect_same(_metadata, "backend after 1 MiB write zeroes", c->want,
		    c->got, (n + 16) * LBA);

	/* 65536 blocks, up to the very end of the namespace. */
	nvme_sqe_write_zeroes(&cmd, 1, c->nsze - 65536, 65536, false);
	EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, "write zeroes 32 MiB");
}

TEST_F(status, sgl_rejected)
{
	struct nvme_sqe cmd;
	unsigned int psdt;
	char what[32];

	for (psdt = 1; psdt <= 3; psdt++) {
		page_cmd(self, &cmd, psdt & 1 ? NVME_CMD_READ : NVME_CMD_WRITE,
			 1);
		cmd.flags = NVME_SQE_PSDT(psdt);
		snprintf(what, sizeof(what), "psdt %u", psdt);
		EXEC_STATUS(&self->c, &cmd, NVME_SC_INVALID_FIELD, what);
	}
}

TEST_F(status, fused_rejected)
{
	struct nvme_sqe cmd;
	unsigned int fuse;
	char what[32];

	for (fuse = 1; fuse <= 3; fuse++) {
		page_cmd(self, &cmd, fuse & 1 ? NVME_CMD_READ : NVME_CMD_WRITE,
			 1);
		cmd.flags = NVME_SQE_FUSE(fuse);
		snprintf(what, sizeof(what), "fuse %u", fuse);
		EXEC_STATUS(&self->c, &cmd, NVME_SC_INVALID_FIELD, what);
	}
}

TEST_F(status, prp1_not_dword_aligned)
{
	struct nvme_sqe cmd;
	unsigned int off;
	char what[32];

	for (off = 1; off < 4; off++) {
		nvme_sqe_rw(&cmd, off & 1 ? NVME_CMD_READ : NVME_CMD_WRITE, 1,
			    0, 1, 0);
		nvme_sqe_set_prp(&cmd, self->page.page[0] + 512 + off, 0);
		snprintf(what, sizeof(what), "prp1 offset %u", 512 + off);
		EXEC_STATUS(&self->c, &cmd, NVME_SC_PRP_OFFSET, what);
	}
}

/* Two pages: PRP2 is a data pointer and must be page aligned. */
TEST_F(status, prp2_data_pointer_unaligned)
{
	struct io_ctx *c = &self->c;
	struct guest_buf b;
	struct nvme_sqe cmd;

	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 8192, true));
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, 0, 16, 0);
	nvme_sqe_set_prp(&cmd, b.page[0], b.page[1] + 512);
	EXEC_STATUS(c, &cmd, NVME_SC_PRP_OFFSET, "8 KiB, prp2 offset 512");
	/* Crossing from an offset first page: same rule. */
	nvme_sqe_rw(&cmd, NVME_CMD_WRITE, 1, 0, 8, 0);
	nvme_sqe_set_prp(&cmd, b.page[0] + 2048, b.page[1] + 8);
	EXEC_STATUS(c, &cmd, NVME_SC_PRP_OFFSET, "4 KiB at 2048, prp2 offset 8");
}

/* 32 KiB = MDTS: 8 pages, 7 list entries; spoil one at a time. */
TEST_F(status, prp_list_entry_with_offset)
{
	static const unsigned int idx[] = { 0, 3, 6 };
	struct io_ctx *c = &self->c;
	struct guest_buf b;
	struct nvme_sqe cmd;
	char what[48];
	__le64 *ent;
	size_t i;

	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, MDTS_BYTES(STATUS_MDTS),
				  true));
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, 0, b.len / LBA, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	ent = guest_ptr(&c->g, le64toh(cmd.prp2));
	for (i = 0; i < ARRAY_SIZE(idx); i++) {
		__u64 saved = le64toh(ent[idx[i]]);

		ent[idx[i]] = htole64(saved + 512);
		snprintf(what, sizeof(what), "list entry %u offset 512",
			 idx[i]);
		EXEC_STATUS(c, &cmd, NVME_SC_PRP_OFFSET, what);
		ent[idx[i]] = htole64(saved);
	}
	/* Restored, the same command is fine. */
	EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, "restored list");
}

TEST_F(status, prp_list_pointer_unaligned)
{
	struct io_ctx *c = &self->c;
	struct guest_buf b;
	struct nvme_sqe cmd;
	__u64 prp2;

	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 16384, true));
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, 0, 32, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 64, &cmd));
	prp2 = le64toh(cmd.prp2);
	cmd.prp2 = htole64(prp2 - 4);
	EXEC_STATUS(c, &cmd, NVME_SC_PRP_OFFSET, "list pointer offset 60");
	cmd.prp2 = htole64(prp2 + 1);
	EXEC_STATUS(c, &cmd, NVME_SC_PRP_OFFSET, "list pointer offset 65");
	cmd.prp2 = htole64(prp2);
	EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, "list pointer offset 64");
}

TEST_F(status, lba_out_of_range)
{
	struct io_ctx *c = &self->c;
	__u64 nsze = c->nsze;
	static const char *const names[] = {
		"read last+1 block", "read at nsze", "write wrapping 2^64",
		"read at 2^63", "write zeroes past the end",
	};
	struct nvme_sqe cmd[5];
	size_t i;

	nvme_sqe_rw(&cmd[0], NVME_CMD_READ, 1, nsze - 1, 2, 0);
	nvme_sqe_rw(&cmd[1], NVME_CMD_READ, 1, nsze, 1, 0);
	nvme_sqe_rw(&cmd[2], NVME_CMD_WRITE, 1, ~0ull, 2, 0);
	nvme_sqe_rw(&cmd[3], NVME_CMD_READ, 1, 1ull << 63, 1, 0);
	nvme_sqe_write_zeroes(&cmd[4], 1, nsze - 4, 8, false);
	for (i = 0; i < ARRAY_SIZE(cmd); i++) {
		if (i < 4)
			guest_prp_build(&c->g, &self->page, 0, &cmd[i]);
		EXEC_STATUS(c, &cmd[i], NVME_SC_LBA_RANGE, names[i]);
	}
	/* The last 8 blocks are in range. */
	nvme_sqe_rw(&cmd[0], NVME_CMD_READ, 1, nsze - 8, 8, 0);
	guest_prp_build(&c->g, &self->page, 0, &cmd[0]);
	EXEC_STATUS(c, &cmd[0], NVME_SC_SUCCESS, "read the last 8 blocks");
}

TEST_F(status, data_outside_memory)
{
	struct io_ctx *c = &self->c;
	__u64 end = guest_mem_end(&c->g);
	struct guest_buf b;
	struct nvme_sqe cmd;
	__le64 *ent;

	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, 0, 8, 0);
	nvme_sqe_set_prp(&cmd, end, 0);
	EXEC_STATUS(c, &cmd, NVME_SC_DATA_XFER_ERROR, "read to the end");
	nvme_sqe_rw(&cmd, NVME_CMD_WRITE, 1, 0, 8, 0);
	nvme_sqe_set_prp(&cmd, 0, 0);
	EXEC_STATUS(c, &cmd, NVME_SC_DATA_XFER_ERROR, "write from gpa 0");
	nvme_sqe_set_prp(&cmd, c->g.mem_gpa - GUEST_PAGE_SIZE, 0);
	EXEC_STATUS(c, &cmd, NVME_SC_DATA_XFER_ERROR,
		    "write from the page below memory");
	nvme_sqe_set_prp(&cmd, ~0ull & ~(__u64)(GUEST_PAGE_SIZE - 1), 0);
	EXEC_STATUS(c, &cmd, NVME_SC_DATA_XFER_ERROR,
		    "write from the last page of the 64-bit space");

	/* Straddling the end: the first page is in, the second is not. */
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, 0, 16, 0);
	nvme_sqe_set_prp(&cmd, end - GUEST_PAGE_SIZE, end);
	EXEC_STATUS(c, &cmd, NVME_SC_DATA_XFER_ERROR, "prp2 at the end");

	/* A list entry outside memory. */
	ASSERT_OK(guest_buf_alloc(&c->g, &b, 0, 16384, true));
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, 0, 32, 0);
	ASSERT_OK(guest_prp_build(&c->g, &b, 0, &cmd));
	ent = guest_ptr(&c->g, le64toh(cmd.prp2));
	ent[1] = htole64(end + (1 << 20));
	EXEC_STATUS(c, &cmd, NVME_SC_DATA_XFER_ERROR, "list entry outside");
	cmd.opcode = NVME_CMD_WRITE;
	EXEC_STATUS(c, &cmd, NVME_SC_DATA_XFER_ERROR,
		    "write, list entry outside");
}

/* A READ_ONLY namespace refuses writes; once cleared, all I/O. */
TEST_F(status, read_only_namespace)
{
	struct io_ctx *c = &self->c;
	struct nvme_sqe cmd;
	char path[64];
	int fd;

	/* The file is unlinked: open it read-only through our fd. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", c->be.fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_OK(guest_stop(&c->g));
	ASSERT_OK(guest_set_namespace(&c->g, fd, 2, LBA_SHIFT,
				      VHOST_NVME_NS_F_READ_ONLY, NULL));
	close(fd);
	ASSERT_OK(guest_start(&c->g));

	guest_pattern(c->want, 4096, 85);
	backend_write(_metadata, c, 100, c->want, 4096);
	nvme_sqe_rw(&cmd, NVME_CMD_WRITE, 2, 100, 8, 0);
	guest_prp_build(&c->g, &self->page, 0, &cmd);
	EXEC_STATUS(c, &cmd, NVME_SC_READ_ONLY, "write");
	nvme_sqe_write_zeroes(&cmd, 2, 100, 8, false);
	EXEC_STATUS(c, &cmd, NVME_SC_READ_ONLY, "write zeroes");
	backend_read(_metadata, c, 100, c->got, 4096);
	expect_same(_metadata, "backend after refused writes", c->want,
		    c->got, 4096);

	/* Reading is fine. */
	guest_buf_set_pages(&c->g, &self->page, 0);
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 2, 100, 8, 0);
	guest_prp_build(&c->g, &self->page, 0, &cmd);
	EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, "read");
	guest_buf_read(&c->g, &self->page, c->got);
	expect_same(_metadata, "read from the read-only namespace", c->want,
		    c->got, 4096);
	nvme_sqe_flush(&cmd, 2);
	EXEC_STATUS(c, &cmd, NVME_SC_SUCCESS, "flush");

	/* Detached again, the namespace is gone for I/O. */
	ASSERT_OK(guest_stop(&c->g));
	ASSERT_OK(guest_clear_namespace(&c->g, 2));
	ASSERT_OK(guest_start(&c->g));
	nvme_sqe_rw(&cmd, NVME_CMD_READ, 2, 100, 8, 0);
	guest_prp_build(&c->g, &self->page, 0, &cmd);
	EXEC_STATUS(c, &cmd, NVME_SC_INVALID_NS, "read after CLEAR_NAMESPACE");
}

TEST_F(status, command_id_echoed)
{
	static const __u16 cids[] = { 0, 1, 0x7fff, 0x8000, 0xfffe, 0xffff };
	struct io_ctx *c = &self->c;
	struct guest_cpl cpl[ARRAY_SIZE(cids)];
	bool seen[ARRAY_SIZE(cids)] = { false };
	struct nvme_sqe cmd;
	size_t i, j;
	int n;

	for (i = 0; i < ARRAY_SIZE(cids); i++) {
		nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, i, 1, 0);
		guest_prp_build(&c->g, &self->page, 0, &cmd);
		cmd.cid = htole16(cids[i]);
		ASSERT_OK(guest_sq_push(c->sq, &cmd));
	}
	ASSERT_OK(guest_sq_ring(c->sq));
	n = guest_cq_wait(c->sq->cq, cpl, ARRAY_SIZE(cids), GUEST_TIMEOUT_MS);
	ASSERT_EQ((int)ARRAY_SIZE(cids), n);
	for (j = 0; j < ARRAY_SIZE(cids); j++) {
		EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &cpl[j]);
		EXPECT_EQ(1, cpl[j].sq_id);
		for (i = 0; i < ARRAY_SIZE(cids); i++)
			if (cpl[j].cid == cids[i] && !seen[i])
				break;
		EXPECT_LT(i, ARRAY_SIZE(cids)) {
			TH_LOG("completion %zu: cid 0x%04x not submitted or seen twice",
			       j, cpl[j].cid);
		}
		if (i < ARRAY_SIZE(cids))
			seen[i] = true;
	}
}

/*
 * SQ 7 posts to CQ 3, so the ids cannot be confused. A burst of five:
 * each completion's SQ head is past its own command and at most the tail.
 * Then one at a time around the 8-entry ring: the head equals the tail.
 */
TEST_F(status, sq_head_and_sq_id)
{
	struct io_ctx *c = &self->c;
	struct guest_cpl cpl[5];
	struct guest_sq *sq;
	struct guest_cq *cq;
	struct nvme_sqe cmd;
	int i, n;

	ASSERT_OK(guest_create_cq(&c->g, 3, 16, GUEST_CQ_IEN, &cq));
	ASSERT_OK(guest_create_sq(&c->g, 7, cq, 8, 1, 0, &sq));
	for (i = 0; i < 5; i++) {
		nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, i, 1, 0);
		guest_prp_build(&c->g, &self->page, 0, &cmd);
		cmd.cid = htole16(0x100 + i);
		ASSERT_OK(guest_sq_push(sq, &cmd));
	}
	ASSERT_OK(guest_sq_ring(sq));
	n = guest_cq_wait(cq, cpl, 5, GUEST_TIMEOUT_MS);
	ASSERT_EQ(5, n);
	for (i = 0; i < 5; i++) {
		int k = cpl[i].cid - 0x100;

		EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &cpl[i]);
		EXPECT_EQ(7, cpl[i].sq_id);
		ASSERT_TRUE(k >= 0 && k < 5) {
			TH_LOG("unexpected cid 0x%x", cpl[i].cid);
		}
		EXPECT_TRUE(cpl[i].sq_head >= k + 1 && cpl[i].sq_head <= 5) {
			TH_LOG("command %d: sq_head %u, want %d..5", k,
			       cpl[i].sq_head, k + 1);
		}
	}
	for (i = 0; i < 12; i++) {
		nvme_sqe_rw(&cmd, NVME_CMD_READ, 1, i, 1, 0);
		guest_prp_build(&c->g, &self->page, 0, &cmd);
		ASSERT_EXEC(sq, &cmd, &cpl[0]);
		EXPECT_NVME_STATUS(NVME_SC_SUCCESS, &cpl[0]);
		EXPECT_EQ(7, cpl[0].sq_id);
		EXPECT_EQ(sq->tail, cpl[0].sq_head) {
			TH_LOG("single command %d: sq_head %u, tail %u", i,
			       cpl[0].sq_head, sq->tail);
		}
	}
}

TEST_HARNESS_MAIN
