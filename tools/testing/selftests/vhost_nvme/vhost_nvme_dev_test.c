// SPDX-License-Identifier: GPL-2.0-only
/*
 * /dev/vhost-nvme as a character device: node, permissions, open/release,
 * the generic vhost feature ioctls and the refusal of unknown ioctls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <linux/vhost_nvme.h>

#include "guest.h"
#include "kselftest_harness.h"

#define DEV_PATH "/dev/vhost-nvme"
TEST(node_is_root_only_char_device)
{
	struct stat st;

	ASSERT_EQ(0, stat(DEV_PATH, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);
	/* A misc device: major 10. */
	EXPECT_EQ(10, major(st.st_rdev));
}

TEST(unprivileged_open_refused)
{
	pid_t pid = fork();
	int status;

	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(2);
		if (open(DEV_PATH, O_RDWR) >= 0)
			_exit(3);
		_exit(errno == EACCES ? 0 : 4);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST(open_pins_module)
{
	long before, during;
	int fd;

	before = guest_module_refcnt();
	ASSERT_GE(before, 0);
	fd = open(DEV_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	during = guest_module_refcnt();
	EXPECT_EQ(before + 1, during);
	EXPECT_EQ(0, close(fd));
	EXPECT_EQ(before, guest_module_refcnt());
}

TEST(many_opens_are_independent)
{
	int fds[16];
	__u64 features;
	int i;

	for (i = 0; i < 16; i++) {
		fds[i] = open(DEV_PATH, O_RDWR | O_CLOEXEC);
		ASSERT_GE(fds[i], 0);
	}
	for (i = 0; i < 16; i++) {
		features = ~0ULL;
		EXPECT_EQ(0, ioctl(fds[i], VHOST_GET_FEATURES, &features));
		EXPECT_EQ(VHOST_NVME_FEATURES, features);
	}
	for (i = 0; i < 16; i++)
		EXPECT_EQ(0, close(fds[i]));
}

FIXTURE(dev) {
	int fd;
};

FIXTURE_SETUP(dev)
{
	self->fd = open(DEV_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_GE(self->fd, 0) {
		TH_LOG("open %s: %s (is vhost_nvme loaded?)", DEV_PATH,
		       strerror(errno));
	}
}

FIXTURE_TEARDOWN(dev)
{
	EXPECT_EQ(0, close(self->fd));
}

TEST_F(dev, unknown_vhost_ioctl_is_enotty)
{
	/* The vhost type, a number no vhost ioctl uses. */
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, _IO(VHOST_VIRTIO, 0xff)));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(dev, foreign_ioctl_is_enotty)
{
	struct termios t;

	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, TCGETS, &t));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(dev, get_features)
{
	__u64 features = ~0ULL;

	ASSERT_EQ(0, ioctl(self->fd, VHOST_GET_FEATURES, &features));
	EXPECT_EQ(VHOST_NVME_FEATURES, features);
}

TEST_F(dev, get_features_bad_pointer_is_efault)
{
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, VHOST_GET_FEATURES, (void *)8));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(dev, set_supported_features)
{
	__u64 features = VHOST_NVME_FEATURES;

	EXPECT_EQ(0, ioctl(self->fd, VHOST_SET_FEATURES, &features));
}

TEST_F(dev, set_unknown_features_refused)
{
	__u64 features = 1ULL << 63;

	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, VHOST_SET_FEATURES, &features));
	EXPECT_EQ(EOPNOTSUPP, errno);
}

TEST_F(dev, set_features_bad_pointer_is_efault)
{
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, VHOST_SET_FEATURES, (void *)8));
	EXPECT_EQ(EFAULT, errno);
}

TEST_HARNESS_MAIN
