#!/bin/bash
# Build the initramfs used by H and G (busybox + the 9p/overlay modules of
# the pinned kernel + initramfs-init) into the cache, keyed by its inputs,
# and print its path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../../../.." && pwd)
. "$top/scripts/versions.env"

cache=${VHOST_NVME_CACHE:-/var/cache/vhost-nvme}
# VN_KERNEL_RELEASE: another kernel's modules (vm-run's H_KERNEL).
release=${VN_KERNEL_RELEASE:-$KERNEL_VERSION}
mods="netfs 9pnet 9pnet_virtio 9p overlay"
paths=()
for m in $mods; do
	paths+=("$(modinfo -k "$release" -n "$m")")
done
key=$( (cat "$here/initramfs-init" "$0" /bin/busybox "${paths[@]}") |
	sha256sum | cut -c1-16)
out=$cache/initramfs-$release-$key.cpio.gz
if [ -f "$out" ]; then
	echo "$out"
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,modules,proc,sys,dev}
cp /bin/busybox "$work/bin/busybox"
cp "$here/initramfs-init" "$work/init"
chmod 755 "$work/init"
for i in "${!paths[@]}"; do
	name=$(echo $mods | cut -d' ' -f$((i + 1)))
	case "${paths[$i]}" in
	*.xz) xz -dc "${paths[$i]}" >"$work/modules/$name.ko" ;;
	*.zst) zstd -qdc "${paths[$i]}" >"$work/modules/$name.ko" ;;
	*) cp "${paths[$i]}" "$work/modules/$name.ko" ;;
	esac
done
mkdir -p "$cache"
(cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
rm -f $(ls "$cache"/initramfs-"$release"-*.cpio.gz | grep -v "$key")
echo "$out"
