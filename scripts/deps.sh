#!/bin/bash
# Install every Debian package the project needs: the pinned kernel image,
# headers and source, the outer QEMU for the test VM, QEMU build
# dependencies, and the tools the tests run in H and G.
# Idempotent and quiet when everything is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"

export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -q -y -o Dpkg::Use-Pty=0 "$@"; }

sources_changed=0
add_source() {		# file, content
	if [ ! -f "$1" ] || ! cmp -s "$1" <(printf '%s\n' "$2"); then
		printf '%s\n' "$2" >"$1"
		sources_changed=1
	fi
}

# bookworm-backports: meson >= 1.5 for QEMU 10, and the outer QEMU 10.0.x.
add_source /etc/apt/sources.list.d/vhost-nvme-backports.sources \
"Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"

# trixie deb-src: the QEMU $QEMU_VERSION source package.
add_source /etc/apt/sources.list.d/vhost-nvme-trixie-src.sources \
"Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"

pkgs=(
	# kernel for H and G, module build, reading and checkpatch
	"linux-image-$KERNEL_VERSION-unsigned"
	"linux-headers-$KERNEL_VERSION"
	"$KERNEL_SOURCE_PKG"
	# the VM harness and the tests in H and G
	busybox-static kmod cpio xz-utils zstd fio nvme-cli util-linux
	seabios procps psmisc
	# make bench: the chart
	gnuplot-nox
	# static checks
	sparse dkms
	# kernel-tree build of the fragments (scripts/intree-build.sh)
	libelf-dev libssl-dev bc
	# QEMU build
	dpkg-dev ninja-build pkg-config flex bison python3-venv
	libglib2.0-dev libpixman-1-dev libfdt-dev zlib1g-dev libslirp-dev
	libaio-dev liburing-dev libnuma-dev libcap-ng-dev libattr1-dev
)
bp_pkgs=(meson qemu-system-x86 qemu-system-data qemu-system-common)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
bp_missing=()
for p in "${bp_pkgs[@]}"; do
	v=$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>/dev/null || true)
	case "$v" in
	*"ok installed"*bpo*) ;;
	*) bp_missing+=("$p") ;;
	esac
done

if [ ${#missing[@]} -eq 0 ] && [ ${#bp_missing[@]} -eq 0 ] &&
   [ $sources_changed -eq 0 ]; then
	exit 0
fi

echo "deps: installing ${missing[*]} ${bp_missing[*]}"
apt_get update >/dev/null
[ ${#missing[@]} -eq 0 ] ||
	apt_get install --no-install-recommends "${missing[@]}" >/dev/null
[ ${#bp_missing[@]} -eq 0 ] ||
	apt_get install --no-install-recommends -t "$OUTER_QEMU_SUITE" \
		"${bp_missing[@]}" >/dev/null
echo "deps: done"
