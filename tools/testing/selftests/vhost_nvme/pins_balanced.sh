#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run after the other suites, with nothing of ours open: every page the
# kernel pinned (FOLL_PIN: our bounced reads, bios of zero-copy I/O,
# direct I/O of anything else) was unpinned again. A pin left behind is a
# guest page that can never be freed or migrated; an extra unpin corrupts
# the page's refcount. Both show as a difference between the two vmstat
# counters.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/ktap.sh"

ktap_header 1
counter() {
	awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat
}
# Completions and their unpinning may still be under way for a moment.
for _ in $(seq 50); do
	acq=$(counter nr_foll_pin_acquired)
	rel=$(counter nr_foll_pin_released)
	[ "$acq" = "$rel" ] && break
	sleep 0.1
done
echo "pinned $acq pages, unpinned $rel" | ktap_diag
balanced() {
	[ -n "$acq" ] && [ "$acq" = "$rel" ]
}
ktap_check pins.acquired_equals_released balanced
ktap_finish
