#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# insmod creates /dev/vhost-nvme (root-only char device), an open fd pins
# the module, rmmod removes the node. Leaves the module loaded, as found.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/ktap.sh"
ko=${VHOST_NVME_KO:-$here/../../../../drivers/vhost/vhost_nvme.ko}
dev=/dev/vhost-nvme

ktap_header 5
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
ktap_finish
