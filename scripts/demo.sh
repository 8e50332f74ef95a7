#!/bin/bash
# make demo: the project's main job shown end to end in the VM world.
# Boots H (TCG) with vhost_nvme.ko loaded, shows /dev/vhost-nvme, starts the
# nested KVM guest G and runs a short fio in it on a disk backed by a
# null_blk in H, then prints a one-screen summary.
#
# Today G's disk is QEMU's virtio-blk: -device vhost-kernel-nvme takes its
# place once the QEMU device lands (see README, "Status").
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
vm=$top/tools/testing/selftests/vhost_nvme/vm
exec "$vm/run-h" -- "$vm/demo-h"
