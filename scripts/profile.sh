#!/bin/bash
# make profile: where the time of a fio workload in G goes, per device, in
# one boot of H (vm/profile-h, vm/profile-report): G's vCPU in guest mode
# and after each kind of exit, interrupts injected, H's CPU by thread, all
# per I/O, from KVM's and the scheduler's tracepoints in H. Knobs:
# PROFILE_DEVICES (names of vm/bench-devices; default "nvme
# vhost-kernel-nvme"), PROFILE_RW, PROFILE_BS, PROFILE_QD (randread 4k 32),
# PROFILE_TRACE_SECS (2), BENCH_POLL_US (the -poll modes' window, 5000:
# docs/performance.md says why), BENCH_COALESCE (the coalesce modes' G
# setting, 0x0a07).
# Reports and traces stay in $PROFILE_RESULTS/profile (bench-out/profile).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
vm=$top/tools/testing/selftests/vhost_nvme/vm
out=${PROFILE_RESULTS:-$top/bench-out}
mkdir -p "$out"
# The VM sees no environment of ours: pass the knobs on its command line.
exec "$vm/run-h" -t 2400 -o "$out" -- env \
	PROFILE_DEVICES="${PROFILE_DEVICES:-nvme vhost-kernel-nvme}" \
	PROFILE_RW="${PROFILE_RW:-randread}" PROFILE_BS="${PROFILE_BS:-4k}" \
	PROFILE_QD="${PROFILE_QD:-32}" \
	PROFILE_TRACE_SECS="${PROFILE_TRACE_SECS:-2}" \
	BENCH_POLL_US="${BENCH_POLL_US:-5000}" \
	BENCH_COALESCE="${BENCH_COALESCE:-0x0a07}" "$vm/profile-h"
