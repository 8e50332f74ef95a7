#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The queue and I/O suites again with the workers busy-polling shadow
# doorbells (module parameter poll_us): EventIdx is then left unarmed while
# polling and armed only before sleeping, a different path through the
# doorbell protocol that must lose no wakeup either.
here=$(cd "$(dirname "$0")" && pwd)
param=/sys/module/vhost_nvme/parameters/poll_us
old=$(cat "$param") || exit 1
echo "${VHOST_NVME_POLL_US:-50}" >"$param" || exit 1
rc=0
"$here/vhost_nvme_queue_test" || rc=1
"$here/vhost_nvme_io_test" || rc=1
echo "$old" >"$param"
exit $rc
