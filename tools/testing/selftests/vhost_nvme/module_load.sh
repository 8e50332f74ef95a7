#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# insmod creates /dev/vhost-nvme (root-only char device), an open fd pins
# the module, rmmod removes the node, and rmmod right after a device
# replaced its memory table (tables freed by RCU callbacks, which must not
# outlive the module's text) leaves a kernel that can load it again.
# Leaves the module loaded, as found.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/ktap.sh"
ko=${VHOST_NVME_KO:-$here/../../../../drivers/vhost/vhost_nvme.ko}
dev=/dev/vhost-nvme

ktap_header 6
lsmod | grep -q '^vhost_nvme ' && rmmod vhost_nvme
modprobe vhost_iotlb

node_ok() {
	[ -c $dev ] && [ "$(stat -c %a:%u $dev)" = 600:0 ]
}
ktap_check module_load.insmod_creates_node \
	sh -c "insmod '$ko' && [ -c $dev ]"
ktap_check module_load.node_mode_0600_root node_ok

exec 3<>$dev
ktap_check module_load.open_fd_blocks_rmmod \
	sh -c "! rmmod vhost_nvme 2>/dev/null && [ -c $dev ]"
exec 3>&-

ktap_check module_load.rmmod_removes_node \
	sh -c "rmmod vhost_nvme && [ ! -e $dev ]"
ktap_check module_load.reload sh -c "insmod '$ko' && [ -c $dev ]"

# With lazy RCU the callbacks freeing the replaced tables may still be
# queued when rmmod returns; without an rcu_barrier() in the module's exit
# one then runs in freed module text and H dies (the harness reports the
# dead VM). Loaded again afterwards either way, as the script promises.
churn_then_rmmod() {
	# CPU 0: the helper changed the tables on CPU 1 (see there), and a
	# grace period waited for on CPU 1 would run their callbacks first.
	"$here/vhost_nvme_memtable_churn" 8 &&
		taskset -c 0 rmmod vhost_nvme || return 1
	# Lazy callbacks wait up to 10 s (or for memory pressure): let them
	# run before the module is loaded again, maybe at the same address.
	echo 2 >/proc/sys/vm/drop_caches
	sleep 11
	insmod "$ko" && [ -c $dev ]
}
ktap_check module_load.rmmod_after_memtable_churn churn_then_rmmod
lsmod | grep -q '^vhost_nvme ' || insmod "$ko"
ktap_finish
