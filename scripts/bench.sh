#!/bin/bash
# make bench: performance runs in the VM world, all in one boot of H: the
# kernel-only microbenchmark (vhost_nvme_bench, vhost-nvme vs io_uring on
# the same null_blk in H), then fio in H on the backend (the ceiling) and
# in G on QEMU's nvme, nvme with ioeventfd, virtio-blk with an iothread and
# vhost-kernel-nvme, on that same null_blk. Ratios measured in one run are
# the result; absolute numbers are distorted by TCG. The tables are printed;
# results, bench.json and the chart bench.png stay in $BENCH_RESULTS/bench
# (default bench-out/bench). BENCH_POLL_US is the polling window of the
# -poll modes: 5000 us by default, longer than G's gap between two
# submissions in this world (docs/performance.md); on hardware tens of us.
# BENCH_COALESCE is the Feature 08h value G sets in the coalesce modes.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
vm=$top/tools/testing/selftests/vhost_nvme/vm
echo "# machine: $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n1)), $(free -g | awk '/Mem:/ {print $2}') GiB; H (2 vCPUs) runs under QEMU TCG, G under nested KVM in H"
out=${BENCH_RESULTS:-$top/bench-out}
mkdir -p "$out"
echo "# ratios, not absolute numbers, are the result; files in $out/bench"
# The VM sees no environment of ours: pass the knobs on its command line.
exec "$vm/run-h" -t 3600 -o "$out" -- env BENCH_SECS="${BENCH_SECS:-3}" \
	BENCH_REPEATS="${BENCH_REPEATS:-3}" BENCH_POLL_US="${BENCH_POLL_US:-5000}" \
	BENCH_ONLY="${BENCH_ONLY:-}" BENCH_COALESCE="${BENCH_COALESCE:-0x0a07}" \
	"$vm/bench-h"
