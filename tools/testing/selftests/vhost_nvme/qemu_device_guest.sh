#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs in G (started by qemu_device.sh in H): the guest half of the
# end-to-end tests of -device vhost-kernel-nvme. The stock nvme driver
# drives the device; results go to /vn/<mode>.txt (the run's share) as
# key=value lines that qemu_device.sh checks.
#   main      identify, reset_controller under fio, fio verify, polled
#             queue, flush, discard, then a VM reset under fio (after it,
#             a second boot verifies I/O again). Disjoint ranges (MiB):
#             0-16 48-80 fio verify, 128-160 under reset, 160-192 under
#             VM reset, 200-202 discard, 220 fsync, 240-256 second boot
#   verify    fio verify only (dbbuf=off, file backend); if H left
#             /vn/coalesce, first Set Features Interrupt Coalescing (08h)
#             with its value and report Get Features 08h and 09h
#   kill      start fio and let H kill QEMU
mode=$1
dev=/dev/nvme0n1
res=/vn/$mode.txt

modprobe nvme
for _ in $(seq 100); do
	[ -b $dev ] && break
	sleep 0.2
done
[ -b $dev ] || { echo "bound=no" >>"$res"; exit 1; }

# fio random writes then read-back verify (crc32c), two jobs on two
# disjoint ranges: NAME BS QD SIZE OFFSET. Prints NAME=rc:N,err:N.
# H snapshots the device's counters when G leaves /vn/mark-NAME.
mark() {
	touch "/vn/mark-$1"
	sleep 1
}

fio_verify() {
	fio --name="$1" --filename=$dev --direct=1 --ioengine=libaio \
		--rw=randwrite --bs="$2" --iodepth="$3" --size="$4" \
		--offset="$5" --numjobs=2 --offset_increment="$4" \
		--verify=crc32c --do_verify=1 --verify_fatal=1 \
		--group_reporting --output-format=terse --terse-version=3 \
		>"/tmp/$1.fio" 2>"/tmp/$1.err"
	local rc=$?
	echo "fio_$1=rc:$rc,err:$(grep '^3;' "/tmp/$1.fio" | cut -d';' -f5 | head -n1)"
	[ $rc -eq 0 ] || sed 's/^/# /' "/tmp/$1.err" | head -n 5 >&2
}

case $mode in
main)
	if [ -e /vn/boot1-done ]; then
		# second boot, after the VM reset QEMU did mid-fio
		fio_verify after_vm_reset 4k 16 8m 240m >>/vn/main2.txt
		exit 0
	fi
	{
		echo "bound=yes"
		nvme id-ctrl /dev/nvme0 | sed -n 's/^\(sn\|mn\|oacs\) *: *\(.*[^ ]\) *$/\1=\2/p'
		nvme id-ns $dev | sed -n 's/^nsze *: *\(.*\)$/nsze=\1/p'
		nvme id-ns $dev | grep -m1 "in use" | sed -n 's/.*lbads:\([0-9]*\).*/lbads=\1/p'
		echo "listed=$(nvme list | grep -c "^$dev ")"
		echo "hw_queues=$(ls /sys/block/nvme0n1/mq | wc -l)"
		echo "io_poll=$(cat /sys/block/nvme0n1/queue/io_poll)"
		# controller reset while fio writes and verifies
		fio_verify during_reset 4k 16 16m 128m &
		sleep 2
		echo 1 >/sys/class/nvme/nvme0/reset_controller
		echo "reset_rc=$?"
		wait
		echo "state_after_reset=$(cat /sys/class/nvme/nvme0/state)"
		mark io-start
		fio_verify v4k_qd1 4k 1 8m 0
		fio_verify v4k_qd32 4k 32 16m 16m
		fio_verify v128k_qd32 128k 32 16m 48m
		fio --name=poll --filename=$dev --direct=1 --ioengine=io_uring \
			--hipri --rw=randread --bs=4k --size=4m \
			--output-format=terse --terse-version=3 >/tmp/poll.fio
		echo "fio_poll=rc:$?,err:$(cut -d';' -f5 /tmp/poll.fio),ios:$(cut -d';' -f6 /tmp/poll.fio)"
		# flush: fsync of the block device sends a Flush command
		dd if=/dev/urandom of=$dev bs=4k count=4 seek=$((220 * 256)) oflag=direct \
			conv=fsync status=none
		echo "fsync_rc=$?"
		# discard 1 MiB of a 2 MiB pattern at 200 MiB
		tr '\0' '\253' </dev/zero | dd of=$dev bs=1M count=2 seek=200 \
			iflag=fullblock oflag=direct status=none
		blkdiscard -o $((200 << 20)) -l $((1 << 20)) $dev
		echo "blkdiscard_rc=$?"
		echo "discarded_nonzero=$(dd if=$dev bs=1M count=1 skip=200 iflag=direct status=none | tr -d '\0' | wc -c)"
		echo "kept_pattern=$(dd if=$dev bs=1M count=1 skip=201 iflag=direct status=none | tr -d '\253' | wc -c)"
		mark io-end
	} >>"$res"
	touch /vn/boot1-done
	# VM reset (system_reset from H) while fio runs
	fio --name=vmreset --filename=$dev --direct=1 --ioengine=libaio \
		--rw=randrw --bs=4k --iodepth=16 --size=32m --offset=160m \
		--runtime=20 --time_based --output-format=terse >/dev/null &
	sleep 1
	touch /vn/reset-me
	wait
	echo "vm_reset=not-seen" >>"$res"
	;;
verify)
	{
		echo "bound=yes"
		if grep nvme0 /proc/interrupts | grep -q MSI; then
			echo "irq=msi"
		else
			echo "irq=intx"
		fi
		if [ -e /vn/coalesce ]; then
			v=$(cat /vn/coalesce)
			nvme set-feature /dev/nvme0 -f 8 -v "$v" >/dev/null 2>&1
			echo "setfeat8_rc=$?"
			echo "getfeat8=$(nvme get-feature /dev/nvme0 -f 8 -s 0 2>&1 |
				sed -n 's/.*Current value: *\(0x[0-9a-f]*\).*/\1/p')"
			echo "getfeat9=$(nvme get-feature /dev/nvme0 -f 9 --cdw11=1 2>&1 |
				sed -n 's/.*Current value: *\(0x[0-9a-f]*\).*/\1/p')"
			nvme get-feature /dev/nvme0 -f 9 --cdw11=999 >/dev/null 2>&1
			echo "getfeat9_bad_iv_rc=$?"
		fi
		mark io-start
		fio_verify v4k_qd32 4k 32 16m 0
		fio_verify v128k_qd8 128k 8 16m 32m
		mark io-end
	} >>"$res"
	;;
kill)
	fio --name=kill --filename=$dev --direct=1 --ioengine=libaio \
		--rw=randrw --bs=4k --iodepth=32 --size=64m --runtime=120 \
		--time_based --output-format=terse >/dev/null &
	sleep 2
	touch /vn/kill-me
	wait
	echo "killed=no" >>"$res"
	;;
esac
