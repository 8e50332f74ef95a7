// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-nvme: NVM command set decoding and PRP walking.
 *
 * Every field of a submission queue entry is guest-controlled. Each is
 * checked here before anything reaches a backend; a bad one completes the
 * command with the status the NVMe base specification names for it.
 */
#include <linux/uaccess.h>

#include "nvme.h"

#define VNVME_INVALID_FIELD	(NVME_SC_INVALID_FIELD | NVME_STATUS_DNR)
#define VNVME_PRP_OFFSET	(NVME_SC_PRP_INVALID_OFFSET | NVME_STATUS_DNR)
#define VNVME_LBA_RANGE		(NVME_SC_LBA_RANGE | NVME_STATUS_DNR)
/* PRP list entries read from guest memory at a time. */
#define VNVME_PRP_BATCH		32

/* Append one PRP entry's data (within one 4 KiB page) to the request. */
static u16 vnvme_prp_add(struct vnvme_req *req, u64 gpa, u32 len)
{
	struct vnvme_dev *dev = req->sq->dev;
	struct iovec *last;
	void __user *hva;
	u64 contig;

	/* Regions are page aligned, so a page lies inside one region. */
	if (vnvme_gpa_to_hva(dev, gpa, len, &hva, &contig) || contig < len)
		return NVME_SC_DATA_XFER_ERROR;
	if (req->nr_iov) {
		last = &req->iov[req->nr_iov - 1];
		if (last->iov_base + last->iov_len == hva) {
			last->iov_len += len;
			return NVME_SC_SUCCESS;
		}
	}
	if (req->nr_iov == req->max_iov)
		return NVME_SC_INTERNAL;
	req->iov[req->nr_iov].iov_base = hva;
	req->iov[req->nr_iov].iov_len = len;
	req->nr_iov++;
	return NVME_SC_SUCCESS;
}

/* Walk a PRP list starting at @list (PRP2) for @len more bytes. */
static u16 vnvme_prp_list(struct vnvme_req *req, u64 list, u32 len)
{
	struct vnvme_dev *dev = req->sq->dev;
	__le64 prps[VNVME_PRP_BATCH];
	u16 status;

	if (list & 7)
		return VNVME_PRP_OFFSET;
	while (len) {
		u32 nents = (VNVME_PAGE_SIZE - (list & (VNVME_PAGE_SIZE - 1))) / 8;
		u32 needed = DIV_ROUND_UP(len, VNVME_PAGE_SIZE);
		/* A list page too short for the rest ends with a pointer. */
		bool chained = needed > nents;
		u32 ndata = chained ? nents - 1 : needed;
		u32 i, j, n;
		u64 next;

		for (i = 0; i < ndata; i += n) {
			n = min_t(u32, ndata - i, VNVME_PRP_BATCH);
			if (vnvme_read_guest(dev, list + i * 8, prps, n * 8))
				return NVME_SC_DATA_XFER_ERROR;
			for (j = 0; j < n; j++) {
				u64 prp = le64_to_cpu(prps[j]);
				u32 chunk = min_t(u32, len, VNVME_PAGE_SIZE);

				if (prp & (VNVME_PAGE_SIZE - 1))
					return VNVME_PRP_OFFSET;
				status = vnvme_prp_add(req, prp, chunk);
				if (status)
					return status;
				len -= chunk;
			}
		}
		if (!chained)
			break;
		if (vnvme_read_guest(dev, list + ndata * 8, prps, 8))
			return NVME_SC_DATA_XFER_ERROR;
		next = le64_to_cpu(prps[0]);
		if (next & (VNVME_PAGE_SIZE - 1))
			return VNVME_PRP_OFFSET;
		list = next;
	}
	return NVME_SC_SUCCESS;
}

/* Map the data buffer of @cmd, @len bytes, into req->iov. */
static u16 vnvme_prp_map(struct vnvme_req *req, const struct nvme_command *cmd,
			 u32 len)
{
	u64 prp1 = le64_to_cpu(cmd->common.dptr.prp1);
	u64 prp2 = le64_to_cpu(cmd->common.dptr.prp2);
	u32 first;
	u16 status;

	req->nr_iov = 0;
	if (prp1 & 3)
		return VNVME_PRP_OFFSET;
	first = min_t(u32, len, VNVME_PAGE_SIZE - (prp1 & (VNVME_PAGE_SIZE - 1)));
	status = vnvme_prp_add(req, prp1, first);
	if (status)
		return status;
	len -= first;
	if (!len)
		return NVME_SC_SUCCESS;
	if (len <= VNVME_PAGE_SIZE) {
		if (prp2 & (VNVME_PAGE_SIZE - 1))
			return VNVME_PRP_OFFSET;
		return vnvme_prp_add(req, prp2, len);
	}
	return vnvme_prp_list(req, prp2, len);
}

static struct vnvme_ns *vnvme_ns_get(struct vnvme_dev *dev, u32 nsid)
{
	if (nsid < 1 || nsid > VHOST_NVME_MAX_NAMESPACES)
		return NULL;
	return dev->ns[nsid - 1];
}

static bool vnvme_lba_ok(struct vnvme_ns *ns, u64 slba, u64 nlb)
{
	return slba < ns->nsze && nlb <= ns->nsze - slba;
}

static u16 vnvme_cmd_rw(struct vnvme_req *req, const struct nvme_command *cmd)
{
	struct vnvme_ns *ns = req->ns;
	u64 slba = le64_to_cpu(cmd->rw.slba);
	u32 nlb = le16_to_cpu(cmd->rw.length) + 1;
	u64 len = (u64)nlb << ns->lba_shift;
	u16 status;

	req->write = cmd->common.opcode == nvme_cmd_write;
	if (len > VNVME_PAGE_SIZE << req->sq->dev->mdts)
		return VNVME_INVALID_FIELD;
	if (!vnvme_lba_ok(ns, slba, nlb))
		return VNVME_LBA_RANGE;
	if (req->write && ns->read_only)
		return VNVME_READ_ONLY;
	status = vnvme_prp_map(req, cmd, len);
	if (status)
		return status;
	req->len = len;
	req->pos = slba << ns->lba_shift;
	/*
	 * FUA on a read asks for data from non-volatile media, which is what
	 * every read of the backend returns once earlier writes completed;
	 * the block layer refuses (and WARNs on) REQ_FUA on a read.
	 */
	req->fua = req->write && le16_to_cpu(cmd->rw.control) & NVME_RW_FUA;
	return vnvme_io_rw(req);
}

static u16 vnvme_cmd_write_zeroes(struct vnvme_req *req,
				  const struct nvme_command *cmd)
{
	struct vnvme_ns *ns = req->ns;
	u64 slba = le64_to_cpu(cmd->write_zeroes.slba);
	u32 nlb = le16_to_cpu(cmd->write_zeroes.length) + 1;
	u16 control = le16_to_cpu(cmd->write_zeroes.control);

	/* Not limited by MDTS: no data moves between host and controller. */
	if (!vnvme_lba_ok(ns, slba, nlb))
		return VNVME_LBA_RANGE;
	if (ns->read_only)
		return VNVME_READ_ONLY;
	req->write = true;
	req->pos = slba << ns->lba_shift;
	req->len = nlb << ns->lba_shift;
	req->fua = control & NVME_RW_FUA;
	return vnvme_io_write_zeroes(req, control & NVME_WZ_DEAC);
}

/*
 * The ranges are copied into a bounce page, where the checks below and the
 * deallocation on the workqueue read them: the guest cannot change them
 * in between.
 */
static u16 vnvme_cmd_dsm(struct vnvme_req *req, const struct nvme_command *cmd)
{
	u32 nr = (le32_to_cpu(cmd->dsm.nr) & 0xff) + 1;
	struct vnvme_ns *ns = req->ns;
	struct nvme_dsm_range *ranges;
	unsigned int i;
	u16 status;

	BUILD_BUG_ON(256 * sizeof(*ranges) > PAGE_SIZE);
	/* Only deallocate does anything; the other attributes are hints. */
	if (!(le32_to_cpu(cmd->dsm.attributes) & NVME_DSMGMT_AD))
		return NVME_SC_SUCCESS;
	if (ns->read_only)
		return VNVME_READ_ONLY;
	req->len = nr * sizeof(*ranges);
	status = vnvme_prp_map(req, cmd, req->len);
	if (status)
		return status;
	req->write = true;
	status = vnvme_bounce_alloc(req);
	if (status)
		return status;
	ranges = page_address(req->bvec[0].bv_page);
	for (i = 0; i < nr; i++) {
		if (!vnvme_lba_ok(ns, le64_to_cpu(ranges[i].slba),
				  le32_to_cpu(ranges[i].nlb)))
			return VNVME_LBA_RANGE;
	}
	return vnvme_io_discard(req, nr);
}

static u16 vnvme_cmd_dispatch(struct vnvme_req *req,
			      const struct nvme_command *cmd)
{
	struct vnvme_dev *dev = req->sq->dev;
	u32 nsid = le32_to_cpu(cmd->common.nsid);
	u8 opcode = cmd->common.opcode;

	switch (opcode) {
	case nvme_cmd_flush:
	case nvme_cmd_write:
	case nvme_cmd_read:
	case nvme_cmd_write_zeroes:
	case nvme_cmd_dsm:
		break;
	default:
		return NVME_SC_INVALID_OPCODE | NVME_STATUS_DNR;
	}
	/* Fused operations and SGLs are not supported (CAP, SGLS = 0). */
	if (cmd->common.flags & (NVME_CMD_FUSE_FIRST | NVME_CMD_FUSE_SECOND |
				 NVME_CMD_SGL_ALL))
		return VNVME_INVALID_FIELD;

	if (opcode == nvme_cmd_flush && nsid == NVME_NSID_ALL)
		return vnvme_io_flush(req);
	req->ns = vnvme_ns_get(dev, nsid);
	if (!req->ns)
		return NVME_SC_INVALID_NS | NVME_STATUS_DNR;

	switch (opcode) {
	case nvme_cmd_flush:
		return vnvme_io_flush(req);
	case nvme_cmd_write_zeroes:
		return vnvme_cmd_write_zeroes(req, cmd);
	case nvme_cmd_dsm:
		return vnvme_cmd_dsm(req, cmd);
	default:
		return vnvme_cmd_rw(req, cmd);
	}
}

/*
 * Worker, before fetching @cmd: how many bounce pages it may need, so that
 * the SQ can wait for them instead (nvme_bounce.c). A command that will
 * fail its checks needs none.
 */
unsigned int vnvme_cmd_bounce_pages(struct vnvme_dev *dev,
				    const struct nvme_command *cmd)
{
	struct vnvme_ns *ns;
	u64 len;

	switch (cmd->common.opcode) {
	case nvme_cmd_read:
	case nvme_cmd_write:
		ns = vnvme_ns_get(dev, le32_to_cpu(cmd->common.nsid));
		if (!ns)
			return 0;
		len = (u64)(le16_to_cpu(cmd->rw.length) + 1) << ns->lba_shift;
		if (len > VNVME_PAGE_SIZE << dev->mdts)
			return 0;
		return DIV_ROUND_UP(len, PAGE_SIZE);
	case nvme_cmd_dsm:
		return 1;
	default:
		return 0;
	}
}

/* Worker: run one fetched command; its CQE is posted when it ends. */
void vnvme_cmd_execute(struct vnvme_req *req, const struct nvme_command *cmd)
{
	u16 status;

	req->cid = cmd->common.command_id;
	req->opcode = cmd->common.opcode;
	req->ns = NULL;
	req->status = NVME_SC_SUCCESS;
	req->write = false;
	req->fua = false;
	req->deallocate = false;
	req->bio_ready = false;
	req->nr_bounce = 0;
	req->nr_pinned = 0;
	req->nr_iov = 0;
	req->len = 0;
	req->pos = 0;
	if (req->opcode == nvme_cmd_flush)
		req->sq->flushes++;
	else if (req->opcode == nvme_cmd_dsm)
		req->sq->dsms++;

	status = vnvme_cmd_dispatch(req, cmd);
	if (status != VNVME_IN_FLIGHT) {
		req->status = status;
		vnvme_req_complete(req);
	}
}
