#!/bin/bash
# Build vhost_nvme.ko against the debug kernel (scripts/debug-kernel.sh),
# with GCOV and KCOV instrumentation, in build/debug/ of the clone (a copy
# of the sources: the stock build keeps drivers/vhost/). Prints the path
# of the module. DEBUG_KDIR=dir builds against another debug kernel build.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kdir=${DEBUG_KDIR:-$("$top/scripts/debug-kernel.sh")}
out=$top/build/debug
rm -rf "$out"
mkdir -p "$out/drivers" "$out/include/uapi/linux"
cp -r "$top/drivers/vhost" "$out/drivers/"
rm -f "$out"/drivers/vhost/*.{o,ko,mod,mod.c,cmd} "$out"/drivers/vhost/.*.cmd
cp "$top"/include/uapi/linux/*.h "$out/include/uapi/linux/"
make -s -C "$kdir" M="$out/drivers/vhost" CONFIG_VHOST_NVME=m \
	GCOV_PROFILE=y KCOV_INSTRUMENT=y modules >&2
echo "$out/drivers/vhost/vhost_nvme.ko"
