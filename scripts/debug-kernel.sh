#!/bin/bash
# Build the debug kernel H boots for make check's sanitizer pass: the
# pinned kernel source (linux-source, the same 6.12 line as the pinned
# image) configured as x86_64_defconfig + kvm_guest.config + the options
# of scripts/debug-kernel.config (what H and the tests need; KASAN, UBSAN,
# lockdep, kmemleak, KCOV, GCOV, fault injection). Small on purpose: the
# Debian config builds four times as much, too slow for CI. Cached
# outside the clone, keyed by a hash of everything that goes into it, so
# an unchanged rerun costs nothing.
#
#   debug-kernel.sh          build if needed; print the build directory
#                            (a KDIR for the module; arch/x86/boot/bzImage)
#   debug-kernel.sh --path   only print it
#   debug-kernel.sh --release  print the kernel release (uname -r)
#
# The recipe is scripts/debug-kernel-build.sh. Its modules are installed
# under the cache and linked from
# /lib/modules/<release>, where H's modprobe (the host root over 9p)
# finds them.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/versions.env"

cache=${VHOST_NVME_CACHE:-/var/cache/vhost-nvme}
src=$("$top/scripts/kernel-source.sh")
frag=$top/scripts/debug-kernel.config
key=$( (cat "$top/scripts/debug-kernel-build.sh" "$frag" "$src/Makefile") |
	sha256sum | cut -c1-16)
dir=$cache/kdebug-$key
release_file=$dir/build/include/config/kernel.release

case "${1:-}" in
--path)
	echo "$dir/build"
	exit 0 ;;
--release)
	cat "$release_file"
	exit 0 ;;
esac
# H's modprobe looks in /lib/modules/<release>: on a machine that has the
# cache but not the link (a new machine, another cache directory), add it.
link_modules() {
	local release
	release=$(cat "$release_file")
	if [ "$(readlink "/lib/modules/$release" || true)" != \
	     "$dir/root/lib/modules/$release" ]; then
		ln -sfn "$dir/root/lib/modules/$release" "/lib/modules/$release"
		depmod "$release"
	fi
}
if [ -f "$dir/ok" ]; then
	link_modules
	echo "$dir/build"
	exit 0
fi

mkdir -p "$cache"
log=$cache/kdebug-build-$key.log
exec 3>&1 >"$log" 2>&1
trap 'echo "debug kernel build: FAILED, last lines of $log:" >&3; tail -n 30 "$log" >&3' ERR
start=$(date +%s)

"$top/scripts/debug-kernel-build.sh" "$src" "$dir" "$frag"
link_modules
echo "debug kernel $(cat "$release_file") built in $(($(date +%s) - start)) s"
touch "$dir/ok"
for old in "$cache"/kdebug-*; do
	case "$old" in
	"$dir" | *.log) ;;
	*) rm -rf "$old" ;;
	esac
done
echo "$dir/build" >&3
