#!/bin/bash
# Build the outer QEMU: the one that runs H under TCG on this machine.
#
# It is QEMU $QEMU_VERSION from the same Debian source package as the
# project's own build (qemu-build.sh), without our device series, with TCG
# and without KVM (this machine's /dev/kvm cannot run H), plus the fixes
# to the emulator in qemu/outer/*.patch. Why not the packaged binary:
# bookworm-backports stops at 10.0.2, the stable releases since fixed TCG
# bugs of the kind H and G were seen to die of, and some fixes are not in
# any 10.0 release (docs/testing.md). Cached like qemu-build.sh
# (scripts/qemu-cached-build.sh).
#
#   qemu-outer-build.sh           build if needed, print the binary's path
#   qemu-outer-build.sh --path    only print where the binary is (or will be)
set -euo pipefail
name=qemu-outer
here=$(cd "$(dirname "$0")" && pwd)
patches=()
for p in "$here"/../qemu/outer/*.patch; do
	[ -e "$p" ] && patches+=("$p")
done
accel=(--enable-tcg --disable-kvm)
. "$here/qemu-cached-build.sh"
