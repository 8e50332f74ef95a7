// SPDX-License-Identifier: GPL-2.0-only
/* null_blk devices through configfs for the tests; see nullb.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "guest.h"
#include "nullb.h"

int attr_write(const char *path, const char *val)
{
	size_t len = strlen(val);
	int fd, rc = 0;
	ssize_t n;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0)
		rc = -errno;
	else if ((size_t)n != len)
		rc = -EIO;
	close(fd);
	return rc;
}

int attr_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* This process mounted configfs: unmount it again at the end. */
static bool configfs_mounted_here;

static bool configfs_mounted(void)
{
	FILE *f = fopen("/proc/mounts", "r");
	char line[512];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, " " CONFIGFS_DIR " configfs ");
	fclose(f);
	return found;
}

/* configfs mounted and null_blk loaded: 0, or 1 and why not. */
static int nullb_cfg_ready(char *why, size_t len)
{
	int rc;

	if (!configfs_mounted()) {
		/* A module, or built in: if neither, the mount says so. */
		rc = system("modprobe configfs 2>/dev/null");
		(void)rc;
		if (mount("none", CONFIGFS_DIR, "configfs", 0, NULL)) {
			snprintf(why, len, "cannot mount configfs on %s: %s",
				 CONFIGFS_DIR, strerror(errno));
			return 1;
		}
		configfs_mounted_here = true;
	}
	if (guest_nullb_load()) {
		snprintf(why, len, "cannot load null_blk");
		return 1;
	}
	if (access(NULLB_CFG_DIR, F_OK)) {
		snprintf(why, len, "null_blk has no configfs interface (%s: %s)",
			 NULLB_CFG_DIR, strerror(errno));
		return 1;
	}
	return 0;
}

void nullb_configfs_release(void)
{
	if (configfs_mounted_here && !umount(CONFIGFS_DIR))
		configfs_mounted_here = false;
}

int nullb_create(struct nullb_dev *nb, const char *prefix,
		 const struct nullb_attr *attrs, size_t n, char *why,
		 size_t len)
{
	static int seq;
	char dir[128], path[192];
	size_t i;
	int rc;

	memset(nb, 0, sizeof(*nb));
	if (nullb_cfg_ready(why, len))
		return 1;
	snprintf(nb->name, sizeof(nb->name), "%s%d_%d", prefix, getpid(),
		 seq++);
	snprintf(dir, sizeof(dir), "%s/%s", NULLB_CFG_DIR, nb->name);
	if (mkdir(dir, 0755)) {
		rc = -errno;
		snprintf(why, len, "mkdir %s: %s", dir, strerror(-rc));
		nb->name[0] = 0;
		return rc;
	}
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, attrs[i].name);
		rc = attr_write(path, attrs[i].value);
		if (rc && attrs[i].optional) {
			printf("# null_blk: cannot set %s=%s (%s), left at its default\n",
			       attrs[i].name, attrs[i].value, strerror(-rc));
			continue;
		}
		if (rc) {
			snprintf(why, len, "null_blk %s: %s=%s: %s", nb->name,
				 attrs[i].name, attrs[i].value, strerror(-rc));
			return rc;
		}
	}
	snprintf(path, sizeof(path), "%s/power", dir);
	rc = attr_write(path, "1");
	if (rc) {
		snprintf(why, len, "null_blk %s: power=1: %s", nb->name,
			 strerror(-rc));
		return rc;
	}
	nb->powered = true;
	snprintf(nb->dev, sizeof(nb->dev), "/dev/%s", nb->name);
	rc = guest_wait_for_node(nb->dev);
	if (rc)
		snprintf(why, len, "%s did not appear after power=1", nb->dev);
	return rc;
}

void nullb_remove(struct nullb_dev *nb)
{
	char dir[128], path[192];
	int i;

	if (!nb->name[0])
		return;
	snprintf(dir, sizeof(dir), "%s/%s", NULLB_CFG_DIR, nb->name);
	snprintf(path, sizeof(path), "%s/power", dir);
	/* A backend just closed may keep the disk busy a little longer. */
	for (i = 0; i < 50; i++) {
		if (nb->powered && !attr_write(path, "0"))
			nb->powered = false;
		if (!nb->powered && !rmdir(dir))
			break;
		guest_msleep(100);
	}
	nb->name[0] = 0;
}
