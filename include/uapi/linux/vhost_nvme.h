/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vhost-nvme: userspace interface of /dev/vhost-nvme.
 *
 * A VMM (QEMU's -device vhost-kernel-nvme) emulates the NVMe controller's
 * registers and admin queue and hands the I/O queues to the kernel through
 * this interface: the kernel then fetches submissions from guest memory when
 * the guest's doorbell ioeventfd fires, submits them to a host block device or
 * raw file, and posts completions through an irqfd.
 *
 * The interface follows <linux/vhost.h> conventions and reuses its generic
 * ioctls where they fit:
 *
 *  VHOST_GET_FEATURES / VHOST_SET_FEATURES  feature bits below
 *  VHOST_SET_OWNER      the calling process becomes the owner: the kernel's
 *                       workers run as threads of it, in its address space
 *  VHOST_SET_MEM_TABLE  guest physical to owner virtual address map
 *                       (struct vhost_memory); every region's guest address,
 *                       size and user address must be 4 KiB aligned
 *
 * The NVMe ioctls use the same ioctl type and numbers 0xa0-0xbf. Every
 * structure has a fixed size and layout for 32- and 64-bit userspace;
 * reserved fields and flags not defined here must be zero (else -EINVAL).
 *
 * Typical sequence: open, VHOST_SET_OWNER, VHOST_SET_MEM_TABLE,
 * VHOST_NVME_SET_CONFIG, VHOST_NVME_SET_NAMESPACE, VHOST_NVME_START; then,
 * as the guest's admin commands arrive, VHOST_NVME_CREATE_CQ/_SQ,
 * VHOST_NVME_SET_DBBUF, VHOST_NVME_SET_COALESCING/_VECTOR_CONFIG (Set
 * Features 08h/09h), VHOST_NVME_DELETE_SQ/_CQ; VHOST_NVME_RESET on a
 * controller reset. Tuning, at any time: VHOST_NVME_SET_POLL,
 * VHOST_NVME_SET_WORKER_AFFINITY. Errors are the usual negative errno values: -EINVAL for
 * an invalid argument, -EFAULT for a bad pointer, -EBUSY for a state
 * conflict (documented per ioctl), -EPERM when the caller is not the owner.
 */
#ifndef _UAPI_LINUX_VHOST_NVME_H
#define _UAPI_LINUX_VHOST_NVME_H

#include <linux/types.h>
#include <linux/vhost.h>

/* Feature bits (VHOST_GET_FEATURES / VHOST_SET_FEATURES). */

/* Adaptive busy-polling of shadow doorbells: VHOST_NVME_SET_POLL. */
#define VHOST_NVME_F_POLL		0
/* Reserved: state save/restore for live migration. Not offered yet. */
#define VHOST_NVME_F_MIGRATION		1

/* The feature bits this version offers. */
#define VHOST_NVME_FEATURES		(1ULL << VHOST_NVME_F_POLL)

/* Limits. */
#define VHOST_NVME_MAX_QUEUES		128	/* I/O queue pairs: qid 1..128 */
#define VHOST_NVME_MAX_NAMESPACES	16	/* nsid 1..16 */
#define VHOST_NVME_MAX_WORKERS		16	/* worker index 0..15 */
#define VHOST_NVME_MAX_QUEUE_ENTRIES	65536
#define VHOST_NVME_MAX_MEM_REGIONS	509
#define VHOST_NVME_MAX_MDTS		8	/* 4 KiB << 8 = 1 MiB */
#define VHOST_NVME_MAX_DSTRD		4
#define VHOST_NVME_MAX_POLL_US		10000	/* 10 ms */
#define VHOST_NVME_MAX_CPUS		1024	/* in an affinity bitmap */
#define VHOST_NVME_MAX_VECTORS		2048	/* MSI-X table entries */

/**
 * struct vhost_nvme_config - controller parameters of the I/O path
 * @mdts: Maximum Data Transfer Size as reported in Identify Controller, as
 *	a power of two in units of 4 KiB pages (CAP.MPSMIN = CC.MPS = 4 KiB, the
 *	only memory page size supported). 1..VHOST_NVME_MAX_MDTS; a command
 *	moving more gets Invalid Field in Command. Default 7 (512 KiB).
 * @dstrd: CAP.DSTRD, the doorbell stride exponent: the shadow doorbell and
 *	EventIdx entries of queue y are at u32 index 2y << dstrd (SQ) and
 *	(2y + 1) << dstrd (CQ). 0..VHOST_NVME_MAX_DSTRD. Default 0.
 * @max_queues: highest I/O queue id userspace may create (the number of
 *	queue pairs granted by Set Features Number of Queues).
 *	1..VHOST_NVME_MAX_QUEUES. Default VHOST_NVME_MAX_QUEUES.
 * @reserved: must be zero
 *
 * VHOST_NVME_SET_CONFIG: only while no I/O queue exists and no doorbell
 * buffer is set (else -EBUSY): queue limits and entry indices depend on it.
 */
struct vhost_nvme_config {
	__u8 mdts;
	__u8 dstrd;
	__u16 max_queues;
	__u32 reserved[7];
};

/* struct vhost_nvme_namespace flags */
#define VHOST_NVME_NS_F_READ_ONLY	(1U << 0)

/**
 * struct vhost_nvme_namespace - attach a backend as a namespace
 * @fd: an open block device or regular file. The kernel never opens paths:
 *	the caller opens it (with O_DIRECT for a file, to bypass the host page
 *	cache) and may close its fd afterwards; the kernel keeps a reference.
 *	It must be open for reading, and for writing unless READ_ONLY.
 * @nsid: namespace id, 1..VHOST_NVME_MAX_NAMESPACES
 * @lba_shift: log2 of the namespace's logical block size, 9..12; not below
 *	the backend's own logical block size
 * @flags: VHOST_NVME_NS_F_READ_ONLY: writes fail with Attempted Write to
 *	Read Only Range
 * @nsze: out: namespace size in logical blocks (the backend's size rounded
 *	down); the VMM reports it in Identify Namespace
 * @reserved: must be zero
 *
 * VHOST_NVME_SET_NAMESPACE: -EBUSY while the device is started or if the
 * nsid is attached. A writable namespace is refused where write(2) on @fd
 * would refuse or redirect writes: -EPERM for a read-only block device
 * (blockdev --setro) or an fd opened O_APPEND, -ETXTBSY for an active swap
 * device. The same checks run on every write command, so a backend made
 * read-only, swap or append-only later fails writes with Attempted Write
 * to Read Only Range; file writes also take the file system's freeze
 * protection and pass its LSM checks, like write(2).
 * VHOST_NVME_CLEAR_NAMESPACE takes the nsid (__u32): -EBUSY while started,
 * -ENOENT if not attached.
 */
struct vhost_nvme_namespace {
	__s32 fd;
	__u32 nsid;
	__u32 lba_shift;
	__u32 flags;
	__u64 nsze;
	__u64 reserved[4];
};

/* struct vhost_nvme_cq flags */
#define VHOST_NVME_CQ_F_IEN		(1U << 0)	/* interrupts enabled */

/**
 * struct vhost_nvme_cq - create an I/O completion queue
 * @qid: queue id, 1..config.max_queues, not in use (else -EEXIST)
 * @entries: number of entries, 2..VHOST_NVME_MAX_QUEUE_ENTRIES
 * @gpa: guest physical address of the queue: 4 KiB aligned, physically
 *	contiguous (CAP.CQR = 1), inside the memory table
 * @irqfd: eventfd signalled once per batch of completions when
 *	VHOST_NVME_CQ_F_IEN is set (a KVM irqfd); -1 without IEN
 * @kickfd: optional eventfd the VMM signals when the guest writes this CQ's
 *	head doorbell (an ioeventfd), or -1. Without it the VMM forwards
 *	every head doorbell write with VHOST_NVME_DOORBELL, with shadow
 *	doorbells too: the value is then read from the shadow page, but the
 *	write is what wakes an SQ that waits for room in this CQ (the guest
 *	writes the register only when EventIdx asks for it, i.e. when one
 *	waits).
 * @vector: the MSI-X vector (Interrupt Vector in Create I/O CQ), kept for
 *	the VMM's bookkeeping; the kernel signals @irqfd
 * @flags: VHOST_NVME_CQ_F_*
 * @reserved: must be zero
 *
 * VHOST_NVME_CREATE_CQ. VHOST_NVME_DELETE_CQ takes struct
 * vhost_nvme_queue_id: -ENOENT if none, -EBUSY while an SQ uses it.
 */
struct vhost_nvme_cq {
	__u16 qid;
	__u16 vector;
	__u32 entries;
	__u64 gpa;
	__s32 irqfd;
	__s32 kickfd;
	__u32 flags;
	__u32 reserved[5];
};

/**
 * struct vhost_nvme_sq - create an I/O submission queue
 * @qid: queue id, 1..config.max_queues, not in use (else -EEXIST)
 * @cqid: the completion queue it posts to, which must exist (else -ENOENT)
 * @entries: number of entries, 2..VHOST_NVME_MAX_QUEUE_ENTRIES
 * @gpa: guest physical address of the queue: 4 KiB aligned, physically
 *	contiguous, inside the memory table
 * @kickfd: eventfd the VMM wires to the guest's SQ tail doorbell (a KVM
 *	ioeventfd without datamatch), or -1. A kick means "read the tail": it
 *	is valid only once shadow doorbells are set (VHOST_NVME_SET_DBBUF);
 *	before that the VMM forwards tail values with VHOST_NVME_DOORBELL.
 * @worker: index of the kernel worker that serves this SQ,
 *	0..VHOST_NVME_MAX_WORKERS - 1; created on first use. All SQs of one CQ
 *	are served by one worker: a different index than the CQ's other SQs
 *	is -EINVAL.
 * @flags: none defined, must be zero
 * @reserved: must be zero
 *
 * VHOST_NVME_CREATE_SQ. VHOST_NVME_DELETE_SQ takes struct
 * vhost_nvme_queue_id: stops fetching, waits for the SQ's commands in
 * flight and posts their completions, then frees it; -ENOENT if none.
 */
struct vhost_nvme_sq {
	__u16 qid;
	__u16 cqid;
	__u32 entries;
	__u64 gpa;
	__s32 kickfd;
	__u16 worker;
	__u16 flags;
	__u32 reserved[6];
};

/**
 * struct vhost_nvme_queue_id - names one queue
 * @qid: queue id
 * @reserved: must be zero
 */
struct vhost_nvme_queue_id {
	__u16 qid;
	__u16 reserved[3];
};

/**
 * struct vhost_nvme_dbbuf - Doorbell Buffer Config (admin opcode 7Ch)
 * @dbs_gpa: shadow doorbell page (PRP1 of the command), 4 KiB aligned
 * @eis_gpa: EventIdx page (PRP2), 4 KiB aligned, not the same page
 * @reserved: must be zero
 *
 * VHOST_NVME_SET_DBBUF: from now on every SQ's tail and every CQ's head is
 * read from the shadow page, and the kernel writes EventIdx entries
 * telling the guest when a doorbell write is needed. Both pages must fit
 * the doorbell entries of config.max_queues. Queues that already exist
 * carry on from what the shadow page holds, so the VMM first writes their
 * current tails and heads there (as QEMU's NVMe device does on Doorbell
 * Buffer Config). VHOST_NVME_CLEAR_DBBUF (no argument) returns to forwarded
 * doorbell values, starting from the last shadow values read.
 */
struct vhost_nvme_dbbuf {
	__u64 dbs_gpa;
	__u64 eis_gpa;
	__u64 reserved[2];
};

/**
 * struct vhost_nvme_doorbell - a doorbell write the VMM trapped
 * @qid: I/O queue id
 * @cq: 0: SQ tail doorbell, 1: CQ head doorbell
 * @reserved0: must be zero
 * @value: the value written
 *
 * VHOST_NVME_DOORBELL: the path for guests without shadow doorbells. A
 * value not below the queue's size stops the queue and reports
 * VHOST_NVME_ERR_INVALID_DB_VALUE; an unknown qid is -ENOENT. With shadow
 * doorbells set the write only wakes the queue: the shadow value, written
 * by the guest before the register, is the current one.
 *
 * Whichever way a value arrives, the worker also checks it against the
 * queue's state when it reads it (NVMe's Invalid Doorbell Write Value): an
 * SQ tail may only advance into entries the guest owns, up to the entry
 * before the SQ head last reported in a CQE (a tail that moves back, or
 * past that head, would re-run or overwrite commands); a CQ head may only
 * move within [old head, CQ tail] (past the tail it would hand entries
 * back that were never posted, and the CQ would be overrun). Such a value
 * stops the queue and reports VHOST_NVME_ERR_INVALID_DB_VALUE.
 */
struct vhost_nvme_doorbell {
	__u16 qid;
	__u8 cq;
	__u8 reserved0;
	__u32 value;
};

/**
 * struct vhost_nvme_queue_stats - counters of one I/O queue pair
 * @qid: in: queue id (the SQ, and the CQ with the same id if it exists)
 * @reserved0: must be zero
 * @commands: SQ: commands fetched
 * @errors: SQ: commands completed with a non-zero status
 * @kicks: SQ: wakeups by kick eventfd or forwarded doorbell
 * @sdb_reads: SQ and CQ: shadow doorbell reads
 * @interrupts: CQ: irqfd signals
 * @cq_full: SQ: times fetching paused because the CQ had no free entry
 * @flushes: SQ: Flush commands fetched
 * @dsms: SQ: Dataset Management commands fetched
 * @polled: SQ: times a busy-polling worker found new commands in it,
 *	without a kick
 * @bounce_waits: SQ: times fetching paused because the worker's bounce
 *	buffer budget (module parameter bounce_kb) was in use by commands in
 *	flight; it resumes as they end
 *
 * VHOST_NVME_GET_QUEUE_STATS: -ENOENT if neither queue exists.
 */
struct vhost_nvme_queue_stats {
	__u16 qid;
	__u16 reserved0[3];
	__u64 commands;
	__u64 errors;
	__u64 kicks;
	__u64 sdb_reads;
	__u64 interrupts;
	__u64 cq_full;
	__u64 flushes;
	__u64 dsms;
	__u64 polled;
	__u64 bounce_waits;
};

/* struct vhost_nvme_error types: the Asynchronous Event the VMM posts */
#define VHOST_NVME_ERR_INVALID_DB_VALUE	1	/* Invalid Doorbell Write Value */
#define VHOST_NVME_ERR_BAD_QUEUE_MEMORY	2	/* queue/doorbell page not in memory */
#define VHOST_NVME_ERR_OVERFLOW		3	/* @value errors were dropped */

/**
 * struct vhost_nvme_error - one queue error for the VMM to report
 * @qid: the queue
 * @cq: 0: the SQ, 1: the CQ
 * @type: VHOST_NVME_ERR_*
 * @value: the offending doorbell value, else 0
 * @gpa: the guest address that failed, for BAD_QUEUE_MEMORY, else 0
 *
 * The queue stays stopped until deleted. VHOST_NVME_SET_ERROR_FD takes an
 * eventfd (__s32, -1 clears) signalled when an error is recorded;
 * VHOST_NVME_GET_ERROR returns the oldest unread one, -EAGAIN if none; a
 * record is removed only once it was copied out (-EFAULT keeps it).
 * Up to 64 are kept; errors beyond are counted, and after the kept ones
 * GET_ERROR returns one record of type VHOST_NVME_ERR_OVERFLOW whose
 * @value is how many were dropped (@qid, @cq and @gpa 0).
 */
struct vhost_nvme_error {
	__u16 qid;
	__u8 cq;
	__u8 type;
	__u32 value;
	__u64 gpa;
};

/* VHOST_NVME_SET_POLL: follow the module parameter poll_us (the default) */
#define VHOST_NVME_POLL_DEFAULT		0xffffffffU

/**
 * struct vhost_nvme_poll - busy-polling of the shadow doorbells
 * @poll_us: the idle timeout: how long a worker keeps polling after it
 *	last found work, 0..VHOST_NVME_MAX_POLL_US (0: never poll), or
 *	VHOST_NVME_POLL_DEFAULT
 * @reserved: must be zero
 *
 * VHOST_NVME_SET_POLL; -EOPNOTSUPP unless VHOST_NVME_F_POLL was acked with
 * VHOST_SET_FEATURES. A worker polls only while shadow doorbells are set:
 * then, after a round of work, it keeps reading the shadow SQ tails
 * instead of sleeping, with the SQs' EventIdx left behind, so a busy
 * guest writes no doorbell registers (no VM exits). The window adapts
 * within @poll_us like KVM's halt polling: it shrinks while the worker
 * sleeps longer than @poll_us after a poll came out empty, and grows back
 * when work arrives within it. Takes effect at each worker's next round.
 */
struct vhost_nvme_poll {
	__u32 poll_us;
	__u32 reserved[7];
};

/**
 * struct vhost_nvme_worker_affinity - the CPUs a worker may run on
 * @worker: worker index, 0..VHOST_NVME_MAX_WORKERS - 1; it need not exist
 *	yet: a worker created later starts with this setting
 * @reserved0: must be zero
 * @cpus: CPU bitmap, CPU n is bit n % 64 of cpus[n / 64]; all zero: any
 *	CPU (the default). It must hold an online CPU and no CPU the kernel
 *	cannot have (else -EINVAL).
 *
 * VHOST_NVME_SET_WORKER_AFFINITY: the worker moves before the ioctl
 * returns. Workers are threads of the owner, so its cgroup's cpuset still
 * applies on top.
 */
struct vhost_nvme_worker_affinity {
	__u16 worker;
	__u16 reserved0[3];
	__u64 cpus[VHOST_NVME_MAX_CPUS / 64];
};

/**
 * struct vhost_nvme_coalescing - Interrupt Coalescing (Feature 08h)
 * @threshold: Aggregation Threshold, 0's based: a CQ's interrupt is
 *	signalled once more than @threshold completions wait for it
 * @time: Aggregation Time, in 100 microsecond units: the longest an
 *	interrupt is held back; 0: no delay, which turns coalescing off
 * @reserved0: must be zero
 * @reserved: must be zero
 *
 * VHOST_NVME_SET_COALESCING: applies to every I/O CQ whose interrupt
 * vector has coalescing enabled (VHOST_NVME_SET_VECTOR_CONFIG), counted per
 * CQ. A completion with an error status, and every completion while the
 * device stops, is signalled at once. Completions already waiting follow
 * the new setting at once. VHOST_NVME_RESET restores 0 and 0.
 */
struct vhost_nvme_coalescing {
	__u8 threshold;
	__u8 time;
	__u16 reserved0;
	__u32 reserved[3];
};

/* struct vhost_nvme_vector_config flags */
#define VHOST_NVME_VECTOR_F_NO_COALESCE	(1U << 0)	/* Coalescing Disable */

/**
 * struct vhost_nvme_vector_config - Interrupt Vector Configuration (09h)
 * @vector: the interrupt vector, 0..VHOST_NVME_MAX_VECTORS - 1: the
 *	setting applies to every CQ created with it (struct vhost_nvme_cq
 *	@vector), now and later
 * @flags: VHOST_NVME_VECTOR_F_*
 * @reserved: must be zero
 *
 * VHOST_NVME_SET_VECTOR_CONFIG. VHOST_NVME_RESET enables coalescing on
 * every vector again.
 */
struct vhost_nvme_vector_config {
	__u16 vector;
	__u16 flags;
	__u32 reserved[3];
};

#define VHOST_NVME_SET_CONFIG		_IOW(VHOST_VIRTIO, 0xa0, struct vhost_nvme_config)
#define VHOST_NVME_SET_NAMESPACE	_IOWR(VHOST_VIRTIO, 0xa1, struct vhost_nvme_namespace)
#define VHOST_NVME_CLEAR_NAMESPACE	_IOW(VHOST_VIRTIO, 0xa2, __u32)
#define VHOST_NVME_CREATE_CQ		_IOW(VHOST_VIRTIO, 0xa3, struct vhost_nvme_cq)
#define VHOST_NVME_DELETE_CQ		_IOW(VHOST_VIRTIO, 0xa4, struct vhost_nvme_queue_id)
#define VHOST_NVME_CREATE_SQ		_IOW(VHOST_VIRTIO, 0xa5, struct vhost_nvme_sq)
#define VHOST_NVME_DELETE_SQ		_IOW(VHOST_VIRTIO, 0xa6, struct vhost_nvme_queue_id)
#define VHOST_NVME_SET_DBBUF		_IOW(VHOST_VIRTIO, 0xa7, struct vhost_nvme_dbbuf)
#define VHOST_NVME_CLEAR_DBBUF		_IO(VHOST_VIRTIO, 0xa8)
#define VHOST_NVME_DOORBELL		_IOW(VHOST_VIRTIO, 0xa9, struct vhost_nvme_doorbell)
/* Start fetching commands from the SQs. */
#define VHOST_NVME_START		_IO(VHOST_VIRTIO, 0xaa)
/*
 * Stop fetching, wait for every command in flight and post its completion,
 * then return. Queues and doorbell buffer stay; START resumes.
 */
#define VHOST_NVME_STOP			_IO(VHOST_VIRTIO, 0xab)
/*
 * Controller reset: STOP, delete every queue, clear the doorbell buffer,
 * return interrupt coalescing to its defaults.
 */
#define VHOST_NVME_RESET		_IO(VHOST_VIRTIO, 0xac)
#define VHOST_NVME_GET_QUEUE_STATS	_IOWR(VHOST_VIRTIO, 0xad, struct vhost_nvme_queue_stats)
#define VHOST_NVME_SET_ERROR_FD		_IOW(VHOST_VIRTIO, 0xae, __s32)
#define VHOST_NVME_GET_ERROR		_IOR(VHOST_VIRTIO, 0xaf, struct vhost_nvme_error)
#define VHOST_NVME_SET_POLL		_IOW(VHOST_VIRTIO, 0xb0, struct vhost_nvme_poll)
#define VHOST_NVME_SET_WORKER_AFFINITY	_IOW(VHOST_VIRTIO, 0xb1, struct vhost_nvme_worker_affinity)
#define VHOST_NVME_SET_COALESCING	_IOW(VHOST_VIRTIO, 0xb2, struct vhost_nvme_coalescing)
#define VHOST_NVME_SET_VECTOR_CONFIG	_IOW(VHOST_VIRTIO, 0xb3, struct vhost_nvme_vector_config)

#endif /* _UAPI_LINUX_VHOST_NVME_H */
