/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A small userspace "guest" for the vhost-nvme selftests.
 *
 * The test process plays both the VMM and the guest driver: it owns the
 * device (VHOST_SET_OWNER), lends a memfd as guest memory
 * (VHOST_SET_MEM_TABLE), builds NVMe I/O queues, commands and PRP lists in
 * that memory at chosen guest physical addresses, rings doorbells the way
 * Linux's nvme driver does (shadow doorbells with EventIdx, or values
 * forwarded with VHOST_NVME_DOORBELL as a VMM would after an MMIO trap) and
 * reaps completions by phase, woken by the CQ's irqfd.
 *
 * Nothing here includes kselftest_harness.h (it defines functions, so only
 * one object may include it): the functions return 0 or a negative errno
 * and the tests assert. The EXPECT_NVME_STATUS()-style macros at the end
 * expand in test files only.
 */
#ifndef VHOST_NVME_GUEST_H
#define VHOST_NVME_GUEST_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <linux/vhost_nvme.h>

#define GUEST_DEV_PATH		"/dev/vhost-nvme"
#define GUEST_REFCNT_PATH	"/sys/module/vhost_nvme/refcnt"

#define GUEST_PAGE_SHIFT	12
#define GUEST_PAGE_SIZE		(1u << GUEST_PAGE_SHIFT)
/* Guest memory starts above 0 so that GPA 0 is a "not in memory" address. */
#define GUEST_MEM_GPA		0x100000ull
#define GUEST_MEM_SIZE		(64ull << 20)
/* How long any completion or event may take before a test calls it lost. */
#define GUEST_TIMEOUT_MS	5000

/* NVMe I/O command set opcodes */
#define NVME_CMD_FLUSH		0x00
#define NVME_CMD_WRITE		0x01
#define NVME_CMD_READ		0x02
#define NVME_CMD_COMPARE	0x05
#define NVME_CMD_WRITE_ZEROES	0x08
#define NVME_CMD_DSM		0x09

/* SQE byte 1: bits 1:0 FUSE, bits 7:6 PSDT */
#define NVME_SQE_FUSE(x)	((x) & 0x3)
#define NVME_SQE_PSDT(x)	(((x) & 0x3) << 6)

#define NVME_RW_FUA		(1u << 30)	/* cdw12 */
#define NVME_WZ_DEAC		(1u << 25)	/* cdw12 */
#define NVME_DSM_AD		(1u << 2)	/* cdw11 */
#define NVME_DSM_IDR		(1u << 0)
#define NVME_DSM_IDW		(1u << 1)

#define NVME_NSID_ALL		0xffffffffu

/*
 * Status as (SCT << 8) | SC, the form nvme_status() returns and Linux's
 * NVME_SC_* use: one number to compare, DNR and phase left out.
 */
#define NVME_SC_SUCCESS		0x000
#define NVME_SC_INVALID_OPCODE	0x001
#define NVME_SC_INVALID_FIELD	0x002
#define NVME_SC_DATA_XFER_ERROR	0x004
#define NVME_SC_INVALID_NS	0x00b
#define NVME_SC_PRP_OFFSET	0x013
#define NVME_SC_LBA_RANGE	0x080
#define NVME_SC_READ_ONLY	0x182

/* Submission queue entry, little-endian as in guest memory. */
struct nvme_sqe {
	__u8	opcode;
	__u8	flags;
	__le16	cid;
	__le32	nsid;
	__le32	cdw2;
	__le32	cdw3;
	__le64	mptr;
	__le64	prp1;
	__le64	prp2;
	__le32	cdw10;
	__le32	cdw11;
	__le32	cdw12;
	__le32	cdw13;
	__le32	cdw14;
	__le32	cdw15;
};

/* Completion queue entry, little-endian as in guest memory. */
struct nvme_cqe {
	__le32	result;
	__le32	rsvd;
	__le16	sq_head;
	__le16	sq_id;
	__le16	cid;
	__le16	status;		/* bit 0 phase, bits 15:1 status field */
};

/* Dataset Management range */
struct nvme_dsm_range {
	__le32	cattr;
	__le32	nlb;
	__le64	slba;
};

_Static_assert(sizeof(struct nvme_sqe) == 64, "SQE is 64 bytes");
_Static_assert(sizeof(struct nvme_cqe) == 16, "CQE is 16 bytes");
_Static_assert(sizeof(struct nvme_dsm_range) == 16, "DSM range is 16 bytes");

/* A completion as the tests see it: host byte order, phase stripped. */
struct guest_cpl {
	__u32	result;
	__u16	sq_head;
	__u16	sq_id;
	__u16	cid;
	__u16	status;		/* the raw status field (bit 0 = phase) */
};

static inline unsigned int nvme_sc(__u16 status)
{
	return (status >> 1) & 0xff;
}

static inline unsigned int nvme_sct(__u16 status)
{
	return (status >> 9) & 0x7;
}

static inline unsigned int nvme_dnr(__u16 status)
{
	return (status >> 15) & 1;
}

/* (SCT << 8) | SC, comparable with NVME_SC_* */
static inline unsigned int nvme_status(__u16 status)
{
	return nvme_sct(status) << 8 | nvme_sc(status);
}

/*
 * Linux's nvme_dbbuf_need_event(): a doorbell write is needed when the
 * device's EventIdx lies in [old, new) - it asked to be told once the
 * value moved past it - computed in 16 bits like the driver does.
 */
static inline bool nvme_dbbuf_need_event(__u16 event_idx, __u16 new_idx,
					 __u16 old)
{
	return (__u16)(new_idx - event_idx - 1) < (__u16)(new_idx - old);
}

struct guest_cq;
struct guest_sq;

struct guest {
	int fd;			/* /dev/vhost-nvme, -1 when closed */
	int memfd;
	void *mem;		/* our mapping of guest memory */
	__u64 mem_gpa;		/* guest physical address of mem */
	__u64 mem_size;
	__u64 alloc_next;	/* page allocator: next free offset */
	unsigned int mdts;	/* as last set with guest_set_config() */
	unsigned int dstrd;
	unsigned int max_queues;
	/* Shadow doorbell and EventIdx pages; NULL in forwarded mode. */
	__u64 dbs_gpa, eis_gpa;
	volatile __u32 *dbs, *eis;
	int errfd;		/* error eventfd, -1 if not set */
	struct guest_cq *cq[VHOST_NVME_MAX_QUEUES + 1];
	struct guest_sq *sq[VHOST_NVME_MAX_QUEUES + 1];
};

struct guest_cq {
	struct guest *g;
	__u16 qid;
	__u32 entries;
	__u64 gpa;
	volatile struct nvme_cqe *ring;
	__u32 head;		/* next entry to look at */
	__u32 db_head;		/* head last published to the device */
	__u8 phase;		/* phase of new entries at head, starts 1 */
	int irqfd;		/* -1 without IEN */
	int kickfd;		/* -1 if none */
	unsigned long irqs;	/* irqfd wakeups read */
	unsigned long rings;	/* head updates published */
	unsigned long kicks;	/* of which needed a doorbell write */
	unsigned long wraps;	/* times head wrapped (phase flipped) */
};

struct guest_sq {
	struct guest *g;
	struct guest_cq *cq;
	__u16 qid;
	__u16 worker;
	__u32 entries;
	__u64 gpa;
	struct nvme_sqe *ring;
	__u32 tail;		/* next free slot */
	__u32 db_tail;		/* tail last published to the device */
	__u32 head;		/* SQ head as last reported in a CQE */
	int kickfd;		/* -1 if none */
	__u16 next_cid;
	unsigned long rings;	/* tail updates published */
	unsigned long kicks;	/* of which needed a doorbell write */
};

/* guest_create_cq() flags */
#define GUEST_CQ_IEN		(1u << 0)	/* interrupts, with an irqfd */
#define GUEST_CQ_KICKFD		(1u << 1)	/* a head doorbell eventfd */
/* guest_create_sq() flags */
#define GUEST_SQ_NO_KICKFD	(1u << 0)

/* Device and memory */
int guest_open(struct guest *g, size_t mem_size);
int guest_set_owner(struct guest *g);
int guest_set_mem_table(struct guest *g);
/* Any table: guest_set_mem_table() installs just the guest's own memory. */
int guest_set_mem_regions(struct guest *g,
			  const struct vhost_memory_region *r, unsigned int n);
int guest_setup(struct guest *g, size_t mem_size);
void guest_close(struct guest *g);
int guest_reopen(struct guest *g);

/* Guest memory: a bump allocator of zeroed 4 KiB pages. */
__u64 guest_alloc(struct guest *g, unsigned int npages);
static inline __u64 guest_alloc_mark(struct guest *g)
{
	return g->alloc_next;
}
void guest_alloc_release(struct guest *g, __u64 mark);
void *guest_ptr(struct guest *g, __u64 gpa);
static inline __u64 guest_mem_end(struct guest *g)
{
	return g->mem_gpa + g->mem_size;
}

/* Controller-level ioctls */
int guest_set_config(struct guest *g, unsigned int mdts, unsigned int dstrd,
		     unsigned int max_queues);
int guest_set_namespace(struct guest *g, int fd, __u32 nsid, __u32 lba_shift,
			__u32 flags, __u64 *nsze);
int guest_clear_namespace(struct guest *g, __u32 nsid);
int guest_start(struct guest *g);
int guest_stop(struct guest *g);
int guest_reset(struct guest *g);
int guest_set_dbbuf(struct guest *g);
int guest_clear_dbbuf(struct guest *g);
int guest_set_error_fd(struct guest *g);
int guest_get_error(struct guest *g, struct vhost_nvme_error *err);
int guest_get_stats(struct guest *g, __u16 qid,
		    struct vhost_nvme_queue_stats *st);
/* Tuning: VHOST_NVME_F_POLL, SET_POLL, SET_COALESCING */
int guest_ack_poll(struct guest *g);
int guest_set_poll(struct guest *g, __u32 us);
int guest_set_coalescing(struct guest *g, __u8 thr, __u8 time);

/* Queues */
int guest_create_cq(struct guest *g, __u16 qid, __u32 entries,
		    unsigned int flags, struct guest_cq **cqp);
int guest_create_sq(struct guest *g, __u16 qid, struct guest_cq *cq,
		    __u32 entries, __u16 worker, unsigned int flags,
		    struct guest_sq **sqp);
int guest_create_qpair(struct guest *g, __u16 qid, __u32 sq_entries,
		       __u32 cq_entries, __u16 worker, struct guest_sq **sqp);
int guest_delete_sq(struct guest_sq *sq);
int guest_delete_cq(struct guest_cq *cq);
__u32 guest_db_index(struct guest *g, __u16 qid, bool cq);

/* Submission */
int guest_sq_space(struct guest_sq *sq);
int guest_sq_push(struct guest_sq *sq, const struct nvme_sqe *cmd);
int guest_sq_submit(struct guest_sq *sq, struct nvme_sqe *cmd);
int guest_sq_doorbell(struct guest_sq *sq, __u32 value, bool force);
int guest_sq_ring(struct guest_sq *sq);

/* Completion */
int guest_cq_peek(struct guest_cq *cq);
int guest_cq_reap(struct guest_cq *cq, struct guest_cpl *out, int max);
int guest_cq_doorbell(struct guest_cq *cq, __u32 value, bool force);
int guest_cq_ring(struct guest_cq *cq);
int guest_cq_wait(struct guest_cq *cq, struct guest_cpl *out, int n,
		  int timeout_ms);
int guest_exec(struct guest_sq *sq, struct nvme_sqe *cmd,
	       struct guest_cpl *cpl);
int guest_wait_fd(int fd, int timeout_ms);
void guest_sq_describe(struct guest_sq *sq, char *buf, size_t len);
const char *guest_strerror(int err);

/* Commands. nlb is a count of logical blocks (1..65536), not 0-based. */
void nvme_sqe_init(struct nvme_sqe *c, __u8 opcode, __u32 nsid);
void nvme_sqe_rw(struct nvme_sqe *c, __u8 opcode, __u32 nsid, __u64 slba,
		 __u32 nlb, __u32 cdw12_flags);
void nvme_sqe_flush(struct nvme_sqe *c, __u32 nsid);
void nvme_sqe_write_zeroes(struct nvme_sqe *c, __u32 nsid, __u64 slba,
			   __u32 nlb, bool deac);
void nvme_sqe_dsm(struct nvme_sqe *c, __u32 nsid, unsigned int nr,
		  __u32 attributes);
void nvme_sqe_set_prp(struct nvme_sqe *c, __u64 prp1, __u64 prp2);

/*
 * A data buffer in guest memory: @npages 4 KiB pages (not necessarily
 * contiguous), the data starting @off bytes into the first one.
 */
#define GUEST_BUF_MAX_PAGES	260	/* 1 MiB at any offset, and some */

struct guest_buf {
	__u32 off;
	__u32 len;
	unsigned int npages;
	__u64 page[GUEST_BUF_MAX_PAGES];
};

int guest_buf_alloc(struct guest *g, struct guest_buf *b, __u32 off,
		    __u32 len, bool scatter);
void guest_buf_write(struct guest *g, const struct guest_buf *b,
		     const void *src);
void guest_buf_read(struct guest *g, const struct guest_buf *b, void *dst);
void guest_buf_set_pages(struct guest *g, const struct guest_buf *b, int c);
long guest_buf_check_outside(struct guest *g, const struct guest_buf *b,
			     int c);
int guest_prp_build(struct guest *g, const struct guest_buf *b,
		    __u32 list_off, struct nvme_sqe *cmd);

/* Backends: a block device or a raw file to attach as a namespace. */
enum guest_backend_kind {
	GUEST_BACKEND_FILE,	/* in /tmp (tmpfs in H) */
	GUEST_BACKEND_BRD,
	GUEST_BACKEND_NULLB,
	GUEST_BACKEND_EXT4_FILE, /* on ext4 on a loop device, O_DIRECT */
};

struct guest_backend {
	enum guest_backend_kind kind;
	int fd;			/* handed to VHOST_NVME_SET_NAMESPACE */
	int io_fd;		/* the test's own O_DIRECT access */
	char path[64];
	__u64 size;		/* bytes */
	bool discard_zeroes;	/* deallocated blocks read back as zeroes */
	char mnt[48];		/* EXT4_FILE: its mount point, "" if none */
};

int guest_backend_open(struct guest_backend *be, enum guest_backend_kind k,
		       __u64 file_size);
/* Any block device, as a GUEST_BACKEND_NULLB-like backend (no data kept). */
int guest_backend_open_block(struct guest_backend *be, const char *path);
void guest_backend_close(struct guest_backend *be);
int guest_nullb_load(void);
/* Wait up to 5 s for a device node to appear. */
int guest_wait_for_node(const char *path);
int guest_backend_pread(struct guest_backend *be, void *buf, size_t len,
			__u64 off);
int guest_backend_pwrite(struct guest_backend *be, const void *buf,
			 size_t len, __u64 off);

/* Misc */
long guest_module_refcnt(void);
int guest_thread_count(void);
void guest_pattern(void *buf, size_t len, __u64 seed);
long guest_memdiff(const void *a, const void *b, size_t len);
void guest_msleep(unsigned int ms);

/*
 * For test files (kselftest_harness.h): compare a completion's status and
 * say which command it was and what came back when it differs.
 */
#define EXPECT_NVME_STATUS_WHAT(want, cpl, what) \
	EXPECT_EQ((unsigned int)(want), nvme_status((cpl)->status)) { \
		TH_LOG("%s%scid %u sq %u: status 0x%04x = sct %u sc 0x%02x " \
		       "dnr %u, want sct %u sc 0x%02x", (what), \
		       *(what) ? ": " : "", (cpl)->cid, (cpl)->sq_id, \
		       (cpl)->status, nvme_sct((cpl)->status), \
		       nvme_sc((cpl)->status), nvme_dnr((cpl)->status), \
		       (unsigned int)(want) >> 8, (unsigned int)(want) & 0xff); \
	}

#define EXPECT_NVME_STATUS(want, cpl) EXPECT_NVME_STATUS_WHAT(want, cpl, "")

/* Run one command to completion; fail the test (with queue state) if lost. */
#define ASSERT_EXEC(sq, cmd, cpl) do { \
	int __rc = guest_exec(sq, cmd, cpl); \
	char __st[512] = ""; \
	\
	if (__rc) \
		guest_sq_describe(sq, __st, sizeof(__st)); \
	ASSERT_EQ(0, __rc) { \
		TH_LOG("opcode 0x%02x: %s; %s", (cmd)->opcode, \
		       guest_strerror(__rc), __st); \
	} \
} while (0)

/* An ioctl-level helper call that must succeed. */
#define ASSERT_OK(call) do { \
	int __rc = (call); \
	\
	ASSERT_EQ(0, __rc) { \
		TH_LOG("%s: %s", #call, guest_strerror(__rc)); \
	} \
} while (0)

#define EXPECT_OK(call) do { \
	int __rc = (call); \
	\
	EXPECT_EQ(0, __rc) { \
		TH_LOG("%s: %s", #call, guest_strerror(__rc)); \
	} \
} while (0)

#endif /* VHOST_NVME_GUEST_H */
