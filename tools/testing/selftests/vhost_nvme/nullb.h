/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * null_blk devices of a test's own, made through configfs, and the sysfs
 * and configfs attribute files they are made of. For tests and fuzzers
 * that need a backend other than guest.c's nullb0: a delay, a size, no
 * memory behind it, one to power off under I/O.
 */
#ifndef VHOST_NVME_NULLB_H
#define VHOST_NVME_NULLB_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIGFS_DIR	"/sys/kernel/config"
#define NULLB_CFG_DIR	CONFIGFS_DIR "/nullb"

/* Write @val to an attribute file; read one without its newline. */
int attr_write(const char *path, const char *val);
int attr_read(const char *path, char *buf, size_t len);

struct nullb_attr {
	const char *name;
	const char *value;
	bool optional;		/* an older null_blk may not have it */
};

struct nullb_dev {
	char name[32];		/* configfs item = disk name; "" if none */
	char dev[64];		/* /dev/<name> */
	bool powered;
};

/*
 * mkdir NULLB_CFG_DIR/<prefix><pid>_<n>, write @attrs in order, then
 * power=1, and wait for /dev/<name>. Returns 0; 1 if this system has no
 * configfs null_blk (a reason to skip); or -errno. Either way @why says
 * what went wrong, and nullb_remove() takes away whatever was made.
 */
int nullb_create(struct nullb_dev *nb, const char *prefix,
		 const struct nullb_attr *attrs, size_t n, char *why,
		 size_t len);
/* power=0 and rmdir, retried while a just-closed user keeps it busy. */
void nullb_remove(struct nullb_dev *nb);
/* Unmount configfs if nullb_create() mounted it. */
void nullb_configfs_release(void);

#endif
