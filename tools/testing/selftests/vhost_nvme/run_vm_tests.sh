#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs in H (started by the top-level "make check" through vm/run-h): every
# kselftest program and end-to-end test of this directory, one after the
# other, their KTAP lines going straight to the output. The caller counts
# the "ok"/"not ok" case lines. An argument list selects tests by name.
here=$(cd "$(dirname "$0")" && pwd)
cd "$here" || exit 1

tests=(module_load.sh vhost_nvme_dev_test vhost_nvme_ioctl_test
	vhost_nvme_io_test vhost_nvme_queue_test vhost_nvme_tune_test
	vhost_nvme_hostile_test vhost_nvme_fault_test fuzz.sh
	vhost_nvme_failslab_test polling.sh
	guest_boot.sh
	qemu_device.sh pins_balanced.sh debug_checks.sh)
[ $# -gt 0 ] && tests=("$@")

failed=0
for t in "${tests[@]}"; do
	echo "# ==== $t"
	if [ ! -x "./$t" ]; then
		echo "not ok 1 $t # missing (not built?)"
		failed=1
		continue
	fi
	start=$(date +%s)
	"./$t"
	rc=$?
	echo "# ==== $t exit=$rc ($(( $(date +%s) - start ))s)"
	[ $rc -eq 0 ] || failed=1
done
exit $failed
