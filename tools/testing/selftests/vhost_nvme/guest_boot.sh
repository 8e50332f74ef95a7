#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs in H: boot the nested guest G under KVM with the project's QEMU and
# check what comes back: G's kernel version, that G runs on KVM, and that a
# short fio on a virtio-blk disk (backed by a null_blk in H) completes.
# No vhost-nvme device is in these guests and our module is not used by
# them, so none of our code is in their path: a G that dies in early boot
# (run-g -r 2) or crashes, resets itself or hangs later (g_run below) is
# the nested world's failure (docs/testing.md), and is retried once with
# a line saying so.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/ktap.sh"
run_g=$here/vm/run-g
out=$(mktemp -d /tmp/guest_boot.XXXXXX)

ktap_header 5

# g_run NAME run-g-args...: run-g, once more if the VM crashed, reset or
# hung (status 200); its stderr ends in $out/NAME.err.
g_run() {
	local name=$1 rc
	shift
	"$run_g" -o "$out/$name" "$@" >/dev/null 2>"$out/$name.err"
	rc=$?
	[ $rc -eq 200 ] || return $rc
	echo "$name: world failure in a G without our code, retried once:" \
		"$(grep -m 1 -o 'vm-run: FAIL.*' "$out/$name.err")" | ktap_diag
	mv "$out/$name" "$out/$name.try1"
	"$run_g" -o "$out/$name" "$@" >/dev/null 2>"$out/$name.err"
}
if modprobe kvm_amd 2>/dev/null || modprobe kvm_intel 2>/dev/null; then
	ktap_ok guest_boot.kvm_in_h
else
	ktap_fail guest_boot.kvm_in_h "no kvm_amd/kvm_intel"
fi

# The QEMU build has no TCG: it can only start G through /dev/kvm.
g_run g1 -s -r 2 -t 240 -- sh -c '
	echo "uname=$(uname -r)"
	dmesg | grep -o -m 1 "Hypervisor detected: KVM"
	echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
	echo "cpus=$(nproc)"
'
rc=$?
g_out=$(cat "$out/g1/out.log" 2>/dev/null)
echo "$g_out" | ktap_diag
if [ $rc -eq 0 ]; then
	ktap_ok guest_boot.boots_and_returns
else
	ktap_fail guest_boot.boots_and_returns "run-g status $rc"
	ktap_diag <"$out/g1.err"
fi
if echo "$g_out" | grep -qx "uname=$(uname -r)"; then
	ktap_ok guest_boot.kernel_version
else
	ktap_fail guest_boot.kernel_version
fi
if echo "$g_out" | grep -q "Hypervisor detected: KVM" &&
   echo "$g_out" | grep -qx "clocksource=kvm-clock"; then
	ktap_ok guest_boot.runs_on_kvm
else
	ktap_fail guest_boot.runs_on_kvm
fi

# A few seconds of I/O on a virtio disk backed by null_blk in H.
modprobe null_blk nr_devices=1 queue_mode=2 irqmode=0 gb=1 bs=512
g_run g2 -s -r 2 -t 240 \
	-q "-drive file=/dev/nullb0,if=none,id=d0,format=raw,cache=none,aio=native" \
	-q "-device virtio-blk-pci,drive=d0" -- sh -c '
	modprobe virtio_blk
	fio --name=g --filename=/dev/vda --direct=1 --ioengine=libaio \
		--rw=randread --bs=4k --iodepth=8 --runtime=3 --time_based \
		--output-format=terse --terse-version=3 | cut -d";" -f6-9
'
rc=$?
fio_line=$(cat "$out/g2/out.log" 2>/dev/null)
echo "fio (read kB, bw, iops, runtime): $fio_line" | ktap_diag
iops=$(echo "$fio_line" | cut -d";" -f3)
if [ $rc -eq 0 ] && [ "${iops:-0}" -gt 0 ] 2>/dev/null; then
	ktap_ok guest_boot.fio_on_virtio_blk
else
	ktap_fail guest_boot.fio_on_virtio_blk "run-g status $rc"
	ktap_diag <"$out/g2.err"
fi
rmmod null_blk
rm -rf "$out"
ktap_finish
