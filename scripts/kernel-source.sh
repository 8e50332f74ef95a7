#!/bin/bash
# Unpack the pinned kernel source (Debian's linux-source package) into the
# cache outside the clone and print its path. It provides checkpatch.pl and
# the kselftest harness headers.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/versions.env"

cache=${VHOST_NVME_CACHE:-/var/cache/vhost-nvme}
tarball=$(ls /usr/src/"$KERNEL_SOURCE_PKG".tar.* 2>/dev/null | head -n 1)
if [ -z "$tarball" ]; then
	echo "kernel-source: /usr/src/$KERNEL_SOURCE_PKG.tar.* missing; run make deps" >&2
	exit 1
fi
ver=$(dpkg-query -W -f='${Version}' "$KERNEL_SOURCE_PKG")
dir=$cache/$KERNEL_SOURCE_PKG-$ver
if [ ! -f "$dir/ok" ]; then
	rm -rf "$dir"
	mkdir -p "$dir"
	tar -C "$dir" --strip-components=1 -xf "$tarball"
	touch "$dir/ok"
fi
echo "$dir"
