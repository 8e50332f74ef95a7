# Sourced by qemu-build.sh and qemu-outer-build.sh, the two QEMU builds
# of the project, after they set:
#   name     the cache folder's prefix (qemu, qemu-outer)
#   patches  the patch files applied, in order, after Debian's series
#   accel    the configure options that differ (KVM or TCG)
# and with "$@" their own arguments. Builds qemu-system-x86_64
# $QEMU_VERSION from the Debian source package into a cache outside the
# clone, keyed by a hash of everything that goes into it (this file, the
# calling script, the patches, the package version), so an unchanged
# rerun costs seconds; prints the binary's path. --path only prints where
# the binary is (or will be).
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$top/scripts/versions.env"

cache=${VHOST_NVME_CACHE:-/var/cache/vhost-nvme}
key=$( (echo "$QEMU_DEB_VERSION"; cat "${BASH_SOURCE[0]}" "$0" \
	${patches[@]+"${patches[@]}"}) | sha256sum | cut -c1-16)
dir=$cache/$name-$QEMU_VERSION-$key
bin=$dir/build/qemu-system-x86_64

if [ "${1:-}" = --path ]; then
	echo "$bin"
	exit 0
fi
if [ -x "$bin" ] && [ -f "$dir/ok" ]; then
	echo "$bin"
	exit 0
fi

log=$cache/$name-build-$key.log
mkdir -p "$cache"
exec 3>&1 >"$log" 2>&1
trap 'echo "$name build: FAILED, last lines of $log:" >&3; tail -n 30 "$log" >&3' ERR

# 1. The Debian source package, downloaded once per version.
dl=$("$top/scripts/qemu-source.sh")

# 2. Unpack (dpkg-source applies Debian's quilt series), then ours.
rm -rf "$dir"
mkdir -p "$dir"
dpkg-source -x "$dl"/qemu_*.dsc "$dir/src"
for p in ${patches[@]+"${patches[@]}"}; do
	echo "applying $(basename "$p")"
	patch -d "$dir/src" -p1 --no-backup-if-mismatch <"$p"
done

# 3. Configure and build only what the project runs: x86_64, with the 9p
# export the VMs' root comes through.
mkdir -p "$dir/build"
cd "$dir/build"
../src/configure --target-list=x86_64-softmmu "${accel[@]}" \
	--enable-virtfs --disable-docs --disable-werror --disable-gtk \
	--disable-sdl --disable-vnc --disable-opengl --disable-spice \
	--disable-xen --disable-install-blobs --disable-download \
	--python=/usr/bin/python3
ninja qemu-system-x86_64
touch "$dir/ok"
# Keep the cache to the current build and the downloaded source.
for old in "$cache/$name-$QEMU_VERSION"-*; do
	[ "$old" = "$dir" ] || rm -rf "$old"
done
echo "$bin" >&3
