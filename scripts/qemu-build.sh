#!/bin/bash
# Build qemu-system-x86_64 $QEMU_VERSION with the project's patch series.
#
# The Debian source package (trixie) is fetched with apt, unpacked with
# Debian's own patches applied, then every qemu/*.patch is applied in order.
# Source and build live in a cache outside the clone, keyed by a hash of
# everything that goes into the build, so an unchanged rerun costs seconds.
#
#   qemu-build.sh           build if needed, print the binary's path
#   qemu-build.sh --path    only print where the binary is (or will be)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/versions.env"

cache=${VHOST_NVME_CACHE:-/var/cache/vhost-nvme}
key=$( (echo "$QEMU_DEB_VERSION"; cat "$0"; cat "$top"/qemu/*.patch 2>/dev/null || true) |
	sha256sum | cut -c1-16)
dir=$cache/qemu-$QEMU_VERSION-$key
bin=$dir/build/qemu-system-x86_64

if [ "${1:-}" = --path ]; then
	echo "$bin"
	exit 0
fi
if [ -x "$bin" ] && [ -f "$dir/ok" ]; then
	echo "$bin"
	exit 0
fi

log=$cache/qemu-build-$key.log
mkdir -p "$cache"
exec 3>&1 >"$log" 2>&1
trap 'echo "qemu-build: FAILED, last lines of $log:" >&3; tail -n 30 "$log" >&3' ERR

# 1. The Debian source package, downloaded once per version.
dl=$("$top/scripts/qemu-source.sh")

# 2. Unpack (dpkg-source applies Debian's quilt series), then our patches.
rm -rf "$dir"
mkdir -p "$dir"
dpkg-source -x "$dl"/qemu_*.dsc "$dir/src"
for p in "$top"/qemu/*.patch; do
	[ -e "$p" ] || continue
	echo "applying $(basename "$p")"
	patch -d "$dir/src" -p1 --no-backup-if-mismatch <"$p"
done

# 3. Configure and build only what the project runs: x86_64 with KVM.
mkdir -p "$dir/build"
cd "$dir/build"
../src/configure --target-list=x86_64-softmmu --enable-kvm --disable-tcg \
	--enable-virtfs --disable-docs --disable-werror --disable-gtk \
	--disable-sdl --disable-vnc --disable-opengl --disable-spice \
	--disable-xen --disable-install-blobs --disable-download \
	--python=/usr/bin/python3
ninja qemu-system-x86_64
touch "$dir/ok"
# Keep the cache to the current build and the downloaded source.
for old in "$cache"/qemu-"$QEMU_VERSION"-*; do
	[ "$old" = "$dir" ] || rm -rf "$old"
done
echo "$bin" >&3
