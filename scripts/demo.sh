#!/bin/bash
# make demo: the project's main job shown end to end in the VM world.
# Boots H (TCG) with vhost_nvme.ko loaded, starts the nested KVM guest G
# with -device vhost-kernel-nvme on a null_blk in H, runs a short fio in G
# with the stock nvme driver and prints a one-screen summary: IOPS, and the
# kernel's shadow doorbell reads, kicks and interrupts against the doorbell
# writes QEMU had to trap (0 once the guest set up shadow doorbells).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
vm=$top/tools/testing/selftests/vhost_nvme/vm
exec "$vm/run-h" -- "$vm/demo-h"
