#!/bin/bash
# Build qemu-system-x86_64 $QEMU_VERSION with the project's patch series
# (qemu/*.patch, -device vhost-kernel-nvme): the QEMU that runs G under KVM
# inside H. The Debian source package (trixie) is unpacked with Debian's
# own patches applied, then ours in order; cached outside the clone
# (scripts/qemu-cached-build.sh).
#
#   qemu-build.sh           build if needed, print the binary's path
#   qemu-build.sh --path    only print where the binary is (or will be)
set -euo pipefail
name=qemu
here=$(cd "$(dirname "$0")" && pwd)
patches=()
for p in "$here"/../qemu/*.patch; do
	[ -e "$p" ] && patches+=("$p")
done
accel=(--enable-kvm --disable-tcg)
. "$here/qemu-cached-build.sh"
