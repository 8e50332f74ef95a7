#!/bin/bash
# Static checks of the QEMU patch series (qemu/*.patch) and of the fixes to
# the outer QEMU (qemu/outer/*.patch), run by make check:
#  - QEMU's own scripts/checkpatch.pl (from the unpacked QEMU source that
#    make qemu built) finds no error, and no warning other than the two a
#    new device always gets: "does MAINTAINERS need updating" for new files
#    (the series updates MAINTAINERS), and "are you using
#    update-linux-headers.sh" for linux-headers/linux/vhost_nvme.h, which is
#    not in Linux yet and so is copied instead of imported;
#  - that copy is byte for byte include/uapi/linux/vhost_nvme.h.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
src=$(dirname "$("$top/scripts/qemu-build.sh" --path)")/../src
[ -x "$src/scripts/checkpatch.pl" ] || { echo "no QEMU source (make qemu)"; exit 1; }
fail=0
for p in "$top"/qemu/*.patch "$top"/qemu/outer/*.patch; do
	out=$(cd "$src" && ./scripts/checkpatch.pl "$p" 2>&1)
	bad=$(echo "$out" | grep -E '^(ERROR|WARNING)' |
		grep -vE 'does MAINTAINERS need updating|are you using scripts/update-linux-headers.sh')
	if [ -n "$bad" ] || ! echo "$out" | grep -q '^total: 0 errors'; then
		echo "$(basename "$p"):"
		echo "$out" | tail -n 20
		fail=1
	fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
hdr=$(grep -l 'linux-headers/linux/vhost_nvme.h' "$top"/qemu/*.patch | head -n 1)
if [ -z "$hdr" ] || ! patch -s -d "$tmp" -p1 <"$hdr" >/dev/null ||
   ! cmp "$tmp/linux-headers/linux/vhost_nvme.h" \
	"$top/include/uapi/linux/vhost_nvme.h"; then
	echo "linux-headers/linux/vhost_nvme.h in the series differs from include/uapi"
	fail=1
fi
exit $fail
