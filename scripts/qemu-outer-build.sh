#!/bin/bash
# Build the outer QEMU: the one that runs H under TCG on this machine.
#
# It is QEMU $QEMU_VERSION from the same Debian source package as the
# project's own build (qemu-build.sh), without our device series, with TCG
# and without KVM (this machine's /dev/kvm cannot run H), plus the fixes
# to the emulator in qemu/outer/*.patch. Why not the packaged binary:
# bookworm-backports stops at 10.0.2, the stable releases since fixed TCG
# bugs of the kind H and G were seen to die of, and some fixes are not in
# any 10.0 release (docs/testing.md). Cached like qemu-build.sh, keyed by
# its inputs.
#
#   qemu-outer-build.sh           build if needed, print the binary's path
#   qemu-outer-build.sh --path    only print where the binary is (or will be)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/versions.env"

cache=${VHOST_NVME_CACHE:-/var/cache/vhost-nvme}
key=$( (echo "$QEMU_DEB_VERSION"; cat "$0" "$top"/qemu/outer/*.patch) |
	sha256sum | cut -c1-16)
dir=$cache/qemu-outer-$QEMU_VERSION-$key
bin=$dir/build/qemu-system-x86_64

if [ "${1:-}" = --path ]; then
	echo "$bin"
	exit 0
fi
if [ -x "$bin" ] && [ -f "$dir/ok" ]; then
	echo "$bin"
	exit 0
fi

log=$cache/qemu-outer-build-$key.log
mkdir -p "$cache"
exec 3>&1 >"$log" 2>&1
trap 'echo "qemu-outer-build: FAILED, last lines of $log:" >&3; tail -n 30 "$log" >&3' ERR

# 1. The Debian source package, downloaded once per version.
dl=$("$top/scripts/qemu-source.sh")

# 2. Unpack with Debian's patches applied, then the emulator fixes.
rm -rf "$dir"
mkdir -p "$dir"
dpkg-source -x "$dl"/qemu_*.dsc "$dir/src"
for p in "$top"/qemu/outer/*.patch; do
	echo "applying $(basename "$p")"
	patch -d "$dir/src" -p1 --no-backup-if-mismatch <"$p"
done

# 3. x86_64 with TCG, and the 9p export H's root comes through.
mkdir -p "$dir/build"
cd "$dir/build"
../src/configure --target-list=x86_64-softmmu --enable-tcg --disable-kvm \
	--enable-virtfs --disable-docs --disable-werror --disable-gtk \
	--disable-sdl --disable-vnc --disable-opengl --disable-spice \
	--disable-xen --disable-install-blobs --disable-download \
	--python=/usr/bin/python3
ninja qemu-system-x86_64
touch "$dir/ok"
for old in "$cache"/qemu-outer-"$QEMU_VERSION"-*; do
	[ "$old" = "$dir" ] || rm -rf "$old"
done
echo "$bin" >&3
