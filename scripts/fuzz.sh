#!/bin/bash
# make fuzz: a long soak of the fuzzers (tools/testing/selftests/
# vhost_nvme/fuzz.sh) in one boot of H on the debug kernel (KASAN, UBSAN,
# lockdep, kmemleak; panic_on_warn), then the pin-count and kmemleak
# checks. FUZZ_SECONDS (default 1800) is spread over the four modes
# (40/20/20/20 %); FUZZ_SEED (default: from the clock, printed) makes a
# run repeatable. VHOST_NVME_DEBUG=0 soaks on the stock kernel instead.
# Ends with "N passed, M failed"; the VM's logs stay in $FUZZ_RESULTS
# (default fuzz-out).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
st=tools/testing/selftests/vhost_nvme
secs=${FUZZ_SECONDS:-1800}
seed=${FUZZ_SEED:-$(date +%s)}
out=${FUZZ_RESULTS:-$top/fuzz-out}
mkdir -p "$out"
echo "# fuzz: $secs s, seed $seed (FUZZ_SEED=$seed repeats it); logs in $out"
vm_env=()
args=()
if [ "${VHOST_NVME_DEBUG:-1}" = 1 ]; then
	kdir=$(scripts/debug-kernel.sh) || exit 1
	dko=$(scripts/debug-module.sh) || exit 1
	vm_env=(H_KERNEL="$kdir/arch/x86/boot/bzImage"
		H_KERNEL_RELEASE="$(scripts/debug-kernel.sh --release)"
		VHOST_NVME_KO="$dko")
	args=(-a "panic_on_warn=1 kmemleak=on")
fi
# The VM sees no environment of ours: pass the knobs on its command line.
env ${vm_env[@]+"${vm_env[@]}"} "$st/vm/run-h" -t $((secs + 1200)) \
	-o "$out" ${args[@]+"${args[@]}"} -- env FUZZ_SECONDS="$secs" FUZZ_SEED="$seed" \
	"$st/run_vm_tests.sh" fuzz.sh pins_balanced.sh debug_checks.sh |
	tee "$out/fuzz.log"
rc=${PIPESTATUS[0]}
read -r p f < <(awk '
	/^ok [0-9]+ .*# SKIP/ { next }
	/^ok [0-9]+ /         { p++; next }
	/^not ok [0-9]+ /     { f++ }
	END { print p + 0, f + 0 }' "$out/fuzz.log")
# vm-run: 0/1 the tests' own status; else the VM failed (see $out).
[ "$rc" -le 1 ] || { echo "# vm-run status $rc (see $out)"; f=$((f + 1)); }
# The tests failed without a failing case: one died before reporting.
[ "$rc" != 1 ] || [ "$f" -gt 0 ] || f=1
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
