# SPDX-License-Identifier: GPL-2.0
#
# vhost-nvme: top-level entry points. See README for what each one does.
#
#   make deps         install every Debian package the project needs
#   make module       build drivers/vhost/vhost_nvme.ko (KDIR= to override)
#   make selftests    build the kselftest programs
#   make qemu         build QEMU with our patch series, and the outer
#                     QEMU (TCG) that runs the test VM (both cached)
#   make check        all of the above, then every test in the VM world
#   make demo         the main job, shown end to end in the VM world
#   make bench        performance runs (ratios against peers, one boot)
#   make fuzz         a long soak of the fuzzers on the debug kernel
#                     (FUZZ_SECONDS=, FUZZ_SEED=)
#   make world-check  stability loop of the nested VM world
#   make checkpatch   checkpatch.pl --strict on the kernel files

include scripts/versions.env

KDIR ?= /usr/src/linux-headers-$(KERNEL_VERSION)
SELFTESTS := tools/testing/selftests/vhost_nvme
KERNEL_FILES := $(filter-out %.mod.c,$(wildcard drivers/vhost/*.[ch] include/uapi/linux/*.h))
MAKEFLAGS += --no-print-directory

.PHONY: all deps module selftests qemu check demo bench fuzz profile world-check \
	checkpatch sparse clean

all: module selftests

deps:
	@scripts/deps.sh

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR)/drivers/vhost CONFIG_VHOST_NVME=m modules

sparse:
	$(MAKE) -C $(KDIR) M=$(CURDIR)/drivers/vhost CONFIG_VHOST_NVME=m C=2 modules

selftests:
	$(MAKE) -C $(SELFTESTS) KSFT_DIR=$$(scripts/kernel-source.sh)/tools/testing/selftests

qemu:
	@scripts/qemu-build.sh
	@scripts/qemu-outer-build.sh

checkpatch:
	@perl $$(scripts/kernel-source.sh)/scripts/checkpatch.pl --no-tree \
		--strict --terse -f $(KERNEL_FILES)

# Each step is its own make so that -j cannot reorder them.
check:
	@$(MAKE) deps
	@$(MAKE) module selftests qemu
	@scripts/check.sh

demo:
	@$(MAKE) deps
	@$(MAKE) module qemu
	@scripts/demo.sh

bench:
	@$(MAKE) deps
	@$(MAKE) module selftests qemu
	@scripts/bench.sh

fuzz:
	@$(MAKE) deps
	@$(MAKE) module selftests qemu
	@scripts/fuzz.sh

profile:
	@$(MAKE) deps
	@$(MAKE) module qemu
	@scripts/profile.sh

world-check:
	@$(MAKE) deps
	@$(MAKE) module qemu
	@scripts/world-check.sh $(WORLD_CHECK_ARGS)

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR)/drivers/vhost clean
	$(MAKE) -C $(SELFTESTS) KSFT_DIR=. clean
