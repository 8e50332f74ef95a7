#!/bin/bash
# The Debian source package of QEMU $QEMU_DEB_VERSION, downloaded once into
# the cache (apt-get source, deb-src of trixie: scripts/deps.sh); prints
# its folder. Used by qemu-cached-build.sh for both builds.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/versions.env"

cache=${VHOST_NVME_CACHE:-/var/cache/vhost-nvme}
dl=$cache/qemu-dl-$QEMU_DEB_VERSION
dl=${dl//:/_}
if [ ! -f "$dl/ok" ]; then
	rm -rf "$dl"
	mkdir -p "$dl"
	(cd "$dl" && apt-get source -q --download-only "qemu=$QEMU_DEB_VERSION") >&2
	touch "$dl/ok"
fi
echo "$dl"
