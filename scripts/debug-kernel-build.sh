#!/bin/bash
# The recipe of the debug kernel: configure and build SRC into DIR/build,
# install its modules under DIR/root. Only what goes into the kernel lives
# here: scripts/debug-kernel.sh keys its cache by a hash of this file, of
# scripts/debug-kernel.config and of the source, and does the rest.
#
#   debug-kernel-build.sh SRC DIR FRAGMENT
set -euo pipefail
src=$1
dir=$2
frag=$3

rm -rf "$dir"
mkdir -p "$dir/build"
kmake() {
	make -C "$src" O="$dir/build" -j"$(nproc)" "$@"
}
kmake x86_64_defconfig
kmake kvm_guest.config
while IFS= read -r line; do
	case "$line" in
	'#'* | '') continue ;;
	esac
	name=${line%%=*}
	value=${line#*=}
	case "$value" in
	y) "$src/scripts/config" --file "$dir/build/.config" --enable "$name" ;;
	n) "$src/scripts/config" --file "$dir/build/.config" --disable "$name" ;;
	m) "$src/scripts/config" --file "$dir/build/.config" --module "$name" ;;
	\"*) "$src/scripts/config" --file "$dir/build/.config" \
		--set-str "$name" "$(eval echo "$value")" ;;
	*) "$src/scripts/config" --file "$dir/build/.config" \
		--set-val "$name" "$value" ;;
	esac
done <"$frag"
kmake olddefconfig
# Every option asked for must have survived olddefconfig's dependencies.
while IFS= read -r line; do
	case "$line" in
	'#'* | '') continue ;;
	esac
	name=${line%%=*}
	value=${line#*=}
	case "$value" in
	y) grep -qx "$name=y" "$dir/build/.config" ||
		{ echo "debug kernel: $name=y did not stick"; exit 1; } ;;
	esac
done <"$frag"
kmake bzImage modules
kmake INSTALL_MOD_PATH="$dir/root" INSTALL_MOD_STRIP=1 modules_install
