#!/bin/bash
# Prove the drivers/vhost Kconfig and Makefile fragments work inside a
# kernel tree: graft them and our sources into the pinned linux-source
# tree, configure it from the pinned kernel's config with VHOST_NVME=m, and
# build drivers/vhost there: Kbuild must compile and link our composite
# vhost_nvme.o and list it as a module. (Linking the .ko needs modpost with
# a vmlinux, a full kernel build; symbol resolution is proven by the
# out-of-tree build against the real kernel's Module.symvers.) The prepared
# object tree is cached, keyed by source version and config, so a rerun
# compiles only the vhost directory.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/versions.env"
cache=${VHOST_NVME_CACHE:-/var/cache/vhost-nvme}
ksrc=$("$top/scripts/kernel-source.sh")
config=/boot/config-$KERNEL_VERSION
# Bump the "prepare" tag when the preparation steps below change.
key=$( (echo "$ksrc prepare-1"; cat "$config") | sha256sum | cut -c1-16)
tree=$cache/intree-$key/src
obj=$cache/intree-$key/obj
log=$cache/intree-$key.log
jobs=$(nproc)

if [ ! -f "$cache/intree-$key/ok" ]; then
	rm -rf "$cache"/intree-*
	mkdir -p "$obj"
	# Hard links: cheap, and every file we change is replaced, not edited.
	cp -al "$ksrc" "$tree"
fi

# Graft: the kernel's own fragments plus ours, and our sources.
for f in Kconfig Makefile; do
	cat "$ksrc/drivers/vhost/$f" "$top/drivers/vhost/$f" >"$tree/drivers/vhost/$f.new"
	rm -f "$tree/drivers/vhost/$f"
	mv "$tree/drivers/vhost/$f.new" "$tree/drivers/vhost/$f"
done
for f in "$top"/drivers/vhost/*.[ch]; do
	case "$f" in *.mod.c) continue ;; esac
	rm -f "$tree/drivers/vhost/$(basename "$f")"
	cp "$f" "$tree/drivers/vhost/"
done
rm -f "$tree/include/uapi/linux/vhost_nvme.h"
cp "$top/include/uapi/linux/vhost_nvme.h" "$tree/include/uapi/linux/"

if [ ! -f "$cache/intree-$key/ok" ]; then
	echo "intree-build: configuring and preparing $tree (once)" >&2
	cp "$config" "$obj/.config"
	"$tree/scripts/config" --file "$obj/.config" --module VHOST_NVME \
		--disable MODULE_SIG_ALL --set-str SYSTEM_TRUSTED_KEYS "" \
		--set-str SYSTEM_REVOCATION_KEYS "" --set-str MODULE_SIG_KEY ""
	make -C "$tree" O="$obj" olddefconfig >"$log" 2>&1
	make -C "$tree" O="$obj" -j"$jobs" modules_prepare >>"$log" 2>&1 ||
		{ tail -n 30 "$log"; exit 1; }
	touch "$cache/intree-$key/ok"
fi
grep -q '^CONFIG_VHOST_NVME=m' "$obj/.config" ||
	{ echo "intree-build: Kconfig did not offer VHOST_NVME"; exit 1; }
rm -f "$obj/drivers/vhost/vhost_nvme.o"
make -C "$tree" O="$obj" -j"$jobs" drivers/vhost/ >>"$log" 2>&1 ||
	{ tail -n 30 "$log"; exit 1; }
[ -f "$obj/drivers/vhost/vhost_nvme.o" ] &&
	grep -qx 'drivers/vhost/vhost_nvme.o' "$obj/drivers/vhost/modules.order" ||
	{ echo "intree-build: vhost_nvme.o not built as a module"; exit 1; }
echo "in-tree: drivers/vhost/vhost_nvme.o built, listed in modules.order"
