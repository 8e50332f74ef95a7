#!/bin/bash
# make bench: performance runs in the VM world. Today: the kernel-only
# microbenchmark (vhost_nvme_bench, vhost-nvme vs io_uring on the same
# null_blk in H). Ratios measured in one run are the result; absolute
# numbers are distorted by TCG.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
vm=$top/tools/testing/selftests/vhost_nvme/vm
echo "# machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; H runs under QEMU TCG"
exec "$vm/run-h" -t 1200 -- "$vm/bench-h"
