#!/bin/bash
# Prove dkms.conf: "dkms build" of this tree for the pinned kernel, in a
# private DKMS tree (nothing is installed or registered system-wide).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/versions.env"
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/dkms.conf")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$work/src/vhost-nvme-$ver
mkdir -p "$src" "$work/dkms"
# The sources DKMS needs, without build products of the work tree.
(cd "$top" && git ls-files dkms.conf drivers include | tar -cf - -T -) |
	tar -C "$src" -xf -
dkms add --sourcetree "$work/src" --dkmstree "$work/dkms" "vhost-nvme/$ver" >/dev/null
dkms build --sourcetree "$work/src" --dkmstree "$work/dkms" \
	-k "$KERNEL_VERSION" "vhost-nvme/$ver" >"$work/build.log" 2>&1 ||
	{ cat "$work/build.log"; exit 1; }
ko=$(find "$work/dkms/vhost-nvme/$ver/$KERNEL_VERSION" -name 'vhost_nvme.ko*' | head -n 1)
[ -n "$ko" ] || { echo "dkms-build: no vhost_nvme.ko produced"; cat "$work/build.log"; exit 1; }
modinfo -F vermagic "$ko"
