#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run last on the debug kernel (make check's sanitizer pass), with the
# module still loaded and nothing of ours open:
#  - kmemleak: a scan finds no unreferenced object allocated by our code;
#  - gcov: the module's coverage data (.gcda) is copied to the results
#    share (gcov/), where check.sh turns it into the line coverage table.
# Either check is skipped on a kernel without it (the stock kernel).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/ktap.sh"
leaks=/sys/kernel/debug/kmemleak

ktap_header 2

if [ -w "$leaks" ]; then
	# Objects become "unreferenced" only after two scans find no
	# pointer to them (kmemleak's own rule); the first may race frees.
	echo scan >"$leaks"
	sleep 2
	echo scan >"$leaks"
	report=$(cat "$leaks")
	ours=$(echo "$report" | awk '
		/^unreferenced object/ { obj = $0; bt = ""; next }
		{ bt = bt "\n" $0 }
		/vnvme_|vhost_nvme/ && obj { print obj bt; obj = "" }')
	n=$(echo "$report" | grep -c '^unreferenced object')
	echo "kmemleak: $n unreferenced objects in all, of ours:" | ktap_diag
	if [ -z "$ours" ]; then
		echo "none" | ktap_diag
		ktap_ok kmemleak.none_of_ours
	else
		echo "$ours" | head -n 60 | ktap_diag
		ktap_fail kmemleak.none_of_ours
	fi
else
	echo "ok $((ktap_n += 1)) kmemleak.none_of_ours # SKIP no kmemleak"
fi

gcov=$(find /sys/kernel/debug/gcov -path '*drivers/vhost' -type d 2>/dev/null |
	head -n 1)
if [ -n "$gcov" ] && [ -d /vn ]; then
	mkdir -p /vn/gcov
	n=0
	for f in "$gcov"/*.gcda; do
		cat "$f" >"/vn/gcov/$(basename "$f")" && n=$((n + 1))
	done
	echo "gcov: $n .gcda files from $gcov" | ktap_diag
	ktap_check gcov.collected [ "$n" -gt 0 ]
else
	echo "ok $((ktap_n += 1)) gcov.collected # SKIP no gcov data of the module"
fi
ktap_finish
