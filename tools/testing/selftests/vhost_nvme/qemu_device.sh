#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs in H: end-to-end tests of QEMU's -device vhost-kernel-nvme with a
# real Linux guest G (stock nvme driver, nested KVM). G's half is
# qemu_device_guest.sh; H watches the device's counters over QMP
# (vm/qmp-watch) and checks what reached the backend.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/ktap.sh"
vm=$here/vm
ko=${VHOST_NVME_KO:-$here/../../../../drivers/vhost/vhost_nvme.ko}
top=$(cd "$here/../../../.." && pwd)
qemu=${G_QEMU:-$("$top/scripts/qemu-build.sh" --path)}
export G_QEMU=$qemu
out=$(mktemp -d /tmp/qemu_device.XXXXXX)
g_append="-a nvme.write_queues=1 -a nvme.poll_queues=1"

modprobe kvm_amd 2>/dev/null || modprobe kvm_intel 2>/dev/null
lsmod | grep -q '^vhost_nvme ' || insmod "$ko"

refcnt() { cat /sys/module/vhost_nvme/refcnt 2>/dev/null; }
val() { sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n1; }
# sum of column N (2 = commands ... 9 = dsms) of a queue-stats file
col_sum() { awk -v c="$2" '{ s += $c } END { print s + 0 }' "$1" 2>/dev/null; }
busy_queues() { awk '$2 > 0' "$1" 2>/dev/null | wc -l; }
fio_ok() { [ "$(val "$1" "fio_$2")" = "rc:0,err:0" ]; }

# run_g NAME DEVICE-OPTIONS MODE [run-g options...]: boot G with the
# device (id nv0), QMP watched into $out/NAME; G's results in
# $out/NAME/g/MODE.txt. Returns run-g's status. A G that died before its
# nvme driver bound our device is booted once more (g_died_before_bind).
# With $coalesce set (coalesce=0xff07 run_g ...), G's script finds it in
# /vn/coalesce and sets Interrupt Coalescing (08h) to it before its I/O.
run_g() {
	local name=$1 devopts=$2 mode=$3 d=$out/$1 try rc watch
	shift 3
	for try in 1 2; do
		rm -rf "$d"
		mkdir -p "$d/g"
		[ -z "${coalesce:-}" ] || echo "$coalesce" >"$d/g/coalesce"
		"$vm/qmp-watch" "$d/qmp.sock" nv0 "$d" "$d/g" &
		watch=$!
		"$vm/run-g" -s -r 1 -o "$d/g" -t 420 $g_append \
			-q "-device vhost-kernel-nvme,id=nv0,$devopts" \
			-q "-qmp unix:$d/qmp.sock,server=on,wait=off" "$@" \
			-- bash "$here/qemu_device_guest.sh" "$mode" \
			>"$d/run-g.out" 2>"$d/run-g.err"
		rc=$?
		wait $watch
		[ $rc -ne 0 ] || return 0
		echo "run $name: run-g status $rc" | ktap_diag
		failed_g_report "$d" | ktap_diag
		if [ $try -eq 1 ] && g_died_before_bind "$d" $rc "$mode"; then
			keep_failed_g "$name-first" "$d"
			echo "run $name: G died before its nvme driver bound our device: the world's (no queue of ours existed, so none of our code had touched G's memory), booted once more" | ktap_diag
			continue
		fi
		keep_failed_g "$name" "$d"
		return $rc
	done
}

# Did the G in DIR die (crash, reset, hang: run-g status 200 or 202)
# before G's nvme driver bound our device? Until then the device has no
# admin queue and the kernel module no I/O queue, so nothing of ours has
# read or written G's memory or raised its interrupts: such a death is the
# nested world's (docs/testing.md), like the deaths guest_boot.sh retries.
# The kernel log of the last boot names no nvme controller, and no boot
# got as far as G's script writing its first result (MODE.txt: a G run
# with -action reboot=reset may have bound the device in an earlier boot).
g_died_before_bind() {	# DIR STATUS MODE
	[ "$2" = 200 ] || [ "$2" = 202 ] || return 1
	[ ! -e "$1/g/$3.txt" ] || return 1
	! grep -q 'nvme nvme[0-9]' "$1/g/dmesg.log" 2>/dev/null
}

# What vm-run said of a failed G: all of it when short; else its start
# (G seen from H, backtraces) and its end (the FAIL line, console).
failed_g_report() {
	local err=$1/run-g.err
	if [ "$(wc -l <"$err")" -le 70 ]; then
		cat "$err"
	else
		head -n 50 "$err"
		echo "[...]"
		tail -n 20 "$err"
	fi
}

# H's /tmp dies with H: a failed G's folder (registers, H's view of it,
# console, kernel log, QMP counters) goes to H's results share, which
# make check keeps on the host (VHOST_NVME_RUNS).
keep_failed_g() {	# NAME DIR
	[ -d /vn ] || return 0
	mkdir -p "/vn/e2e-$1" &&
		tar -C "$2" --exclude='*.sock' -cf - . | tar -C "/vn/e2e-$1" -xf -
	echo "run $1: G's files kept in the results share, e2e-$1/" | ktap_diag
}

# What G wrote is on the backend: fio re-reads it in H and verifies.
h_verify() {	# backend NAME BS SIZE OFFSET
	fio --name="$2" --filename="$1" --direct=1 --ioengine=libaio \
		--rw=randwrite --bs="$3" --iodepth=16 --size="$4" \
		--offset="$5" --numjobs=2 --offset_increment="$4" \
		--verify=crc32c --verify_only --verify_fatal=1 \
		--output-format=terse --terse-version=3 >"$out/hv.$2" 2>&1
}
# doorbell writes QEMU trapped between G's marks
traps_during() { echo $(( $(cat "$1/io-end.traps" 2>/dev/null || echo -1) - $(cat "$1/io-start.traps" 2>/dev/null || echo 0) )); }

# QEMU_DEVICE_RUNS="B D E" runs only those of the runs below (default all:
# A B C D E); the plan counts their cases.
runs=${QEMU_DEVICE_RUNS:-A B C D E}
declare -A run_cases=([A]=18 [B]=3 [C]=7 [D]=3 [E]=7)
plan=0
for r in $runs; do
	plan=$((plan + ${run_cases[$r]:?"QEMU_DEVICE_RUNS: no run $r"}))
done
ktap_header $plan
modprobe brd rd_nr=2 rd_size=$((256 * 1024))	# /dev/ram0, /dev/ram1: 256 MiB

# --- A: block device backend, shadow doorbells, resets -----------------
run_A() {
	A=$out/A
	run_g A "backend=/dev/ram0,serial=VKN-E2E-1,num-queues=4" main \
		-q "-action reboot=reset"
	ra=$A/g/main.txt
	echo "G: $(tr '\n' ' ' <"$ra" 2>/dev/null)" | ktap_diag
	echo "queue stats after G's I/O (qid commands errors kicks sdb_reads interrupts cq_full flushes dsms polled):" | ktap_diag
	ktap_diag <"$A/io-end.stats" 2>/dev/null
	echo "QEMU I/O doorbell traps: $(cat "$A/io-start.traps" 2>/dev/null) before G's I/O, $(cat "$A/io-end.traps" 2>/dev/null) after" | ktap_diag

	if [ "$(val "$ra" bound)" = yes ] && [ "$(val "$ra" listed)" = 1 ]; then
		ktap_ok e2e.nvme_binds_and_lists
	else
		ktap_fail e2e.nvme_binds_and_lists
	fi
	if [ "$(val "$ra" sn)" = VKN-E2E-1 ] &&
	   [ "$(val "$ra" mn)" = "QEMU vhost-kernel NVMe Ctrl" ]; then
		ktap_ok e2e.id_ctrl_serial_model
	else
		ktap_fail e2e.id_ctrl_serial_model "sn=$(val "$ra" sn) mn=$(val "$ra" mn)"
	fi
	if [ $(( $(val "$ra" oacs) & 0x100 )) -ne 0 ] 2>/dev/null; then
		ktap_ok e2e.oacs_dbbuf_advertised
	else
		ktap_fail e2e.oacs_dbbuf_advertised "oacs=$(val "$ra" oacs)"
	fi
	want_nsze=$(( $(blockdev --getsize64 /dev/ram0) / 512 ))
	if [ "$(( $(val "$ra" nsze) ))" = "$want_nsze" ] 2>/dev/null &&
	   [ "$(val "$ra" lbads)" = 9 ]; then
		ktap_ok e2e.id_ns_size_and_lba_format
	else
		ktap_fail e2e.id_ns_size_and_lba_format "nsze=$(val "$ra" nsze) want $want_nsze lbads=$(val "$ra" lbads)"
	fi
	for t in v4k_qd1 v4k_qd32 v128k_qd32; do
		if fio_ok "$ra" $t; then
			ktap_ok "e2e.fio_verify_$t"
		else
			ktap_fail "e2e.fio_verify_$t" "$(val "$ra" fio_$t)"
		fi
	done
	if h_verify /dev/ram0 v4k_qd32 4k 16m 16m &&
	   h_verify /dev/ram0 v128k_qd32 128k 16m 48m; then
		ktap_ok e2e.h_reads_back_what_g_wrote
	else
		ktap_fail e2e.h_reads_back_what_g_wrote
		tail -n 5 "$out"/hv.* | ktap_diag
	fi
	st=$A/io-end.stats
	if [ "$(val "$ra" hw_queues)" -ge 3 ] 2>/dev/null &&
	   [ "$(busy_queues "$st")" -ge 3 ]; then
		ktap_ok e2e.several_io_queues_used
	else
		ktap_fail e2e.several_io_queues_used "hw_queues=$(val "$ra" hw_queues) busy=$(busy_queues "$st")"
	fi
	if [ "$(val "$ra" io_poll)" = 1 ] &&
	   [ "$(val "$ra" fio_poll | cut -d, -f1-2)" = "rc:0,err:0" ]; then
		ktap_ok e2e.polled_queue_without_interrupts
	else
		ktap_fail e2e.polled_queue_without_interrupts "io_poll=$(val "$ra" io_poll) $(val "$ra" fio_poll)"
	fi
	if [ -s "$A/io-end.traps" ] && [ "$(traps_during "$A")" = 0 ]; then
		ktap_ok e2e.shadow_doorbells_qemu_traps_zero
	else
		ktap_fail e2e.shadow_doorbells_qemu_traps_zero "traps during I/O=$(traps_during "$A")"
	fi
	if [ "$(col_sum "$st" 4)" -gt 0 ] && [ "$(col_sum "$st" 5)" -gt 0 ]; then
		ktap_ok e2e.kernel_kicks_and_shadow_reads
	else
		ktap_fail e2e.kernel_kicks_and_shadow_reads "kicks=$(col_sum "$st" 4) sdb_reads=$(col_sum "$st" 5)"
	fi
	if [ "$(col_sum "$st" 6)" -gt 0 ] && [ "$(col_sum "$st" 3)" = 0 ]; then
		ktap_ok e2e.kernel_interrupts_no_errors
	else
		ktap_fail e2e.kernel_interrupts_no_errors "interrupts=$(col_sum "$st" 6) errors=$(col_sum "$st" 3)"
	fi
	if [ "$(val "$ra" fsync_rc)" = 0 ] && [ "$(col_sum "$st" 8)" -gt 0 ]; then
		ktap_ok e2e.flush_reaches_kernel
	else
		ktap_fail e2e.flush_reaches_kernel "fsync_rc=$(val "$ra" fsync_rc) flushes=$(col_sum "$st" 8)"
	fi
	h_zero=$(dd if=/dev/ram0 bs=1M count=1 skip=200 iflag=direct status=none | tr -d '\0' | wc -c)
	h_kept=$(dd if=/dev/ram0 bs=1M count=1 skip=201 iflag=direct status=none | tr -d '\253' | wc -c)
	if [ "$(val "$ra" blkdiscard_rc)" = 0 ] && [ "$(col_sum "$st" 9)" -gt 0 ] &&
	   [ "$(val "$ra" discarded_nonzero)" = 0 ] && [ "$h_zero" = 0 ] &&
	   [ "$(val "$ra" kept_pattern)" = 0 ] && [ "$h_kept" = 0 ]; then
		ktap_ok e2e.discard_reads_back_zeroes
	else
		ktap_fail e2e.discard_reads_back_zeroes "rc=$(val "$ra" blkdiscard_rc) dsms=$(col_sum "$st" 9) G:$(val "$ra" discarded_nonzero)/$(val "$ra" kept_pattern) H:$h_zero/$h_kept"
	fi
	if [ "$(val "$ra" reset_rc)" = 0 ] && fio_ok "$ra" during_reset &&
	   [ "$(val "$ra" state_after_reset)" = live ]; then
		ktap_ok e2e.reset_controller_during_fio
	else
		ktap_fail e2e.reset_controller_during_fio "reset_rc=$(val "$ra" reset_rc) $(val "$ra" fio_during_reset) state=$(val "$ra" state_after_reset)"
	fi
	if [ -e "$A/reset-sent" ] && fio_ok "$A/g/main2.txt" after_vm_reset &&
	   ! grep -q vm_reset=not-seen "$ra"; then
		ktap_ok e2e.vm_reset_during_fio_then_io_again
	else
		ktap_fail e2e.vm_reset_during_fio_then_io_again "$(cat "$A/g/main2.txt" 2>/dev/null)"
	fi
	if [ "$(refcnt)" = 0 ]; then
		ktap_ok e2e.poweroff_leaves_refcount_zero
	else
		ktap_fail e2e.poweroff_leaves_refcount_zero "refcnt=$(refcnt)"
	fi
}

# --- B: dbbuf=off: every doorbell trapped and forwarded ----------------
run_B() {
	B=$out/B
	run_g B "backend=/dev/ram1,serial=VKN-E2E-2,dbbuf=off" verify
	rb=$B/g/verify.txt
	if fio_ok "$rb" v4k_qd32 && fio_ok "$rb" v128k_qd8; then
		ktap_ok e2e.dbbuf_off_fio_verify
	else
		ktap_fail e2e.dbbuf_off_fio_verify "$(tr '\n' ' ' <"$rb" 2>/dev/null)"
	fi
	echo "dbbuf=off: QEMU doorbell traps during G's I/O $(traps_during "$B"); stats:" | ktap_diag
	ktap_diag <"$B/io-end.stats" 2>/dev/null
	if [ "$(traps_during "$B")" -gt 0 ] &&
	   [ "$(col_sum "$B/io-end.stats" 4)" -gt 0 ] &&
	   [ "$(col_sum "$B/io-end.stats" 5)" = 0 ]; then
		ktap_ok e2e.dbbuf_off_doorbells_forwarded
	else
		ktap_fail e2e.dbbuf_off_doorbells_forwarded "traps=$(traps_during "$B") kicks=$(col_sum "$B/io-end.stats" 4) sdb_reads=$(col_sum "$B/io-end.stats" 5)"
	fi
	if h_verify /dev/ram1 v4k_qd32 4k 16m 0; then
		ktap_ok e2e.dbbuf_off_h_reads_back
	else
		ktap_fail e2e.dbbuf_off_h_reads_back
	fi
}

# --- C: raw image file backend, and G without MSI/MSI-X (pci=nomsi): ----
# completions reach G as INTx that QEMU raises and lowers
run_C() {
	img=/var/tmp/vkn-e2e.img
	mkdir -p /var/tmp
	rm -f $img
	truncate -s 128M $img
	# with busy-polling, two pinned workers and interrupt coalescing: G sets
	# 08h to 8 entries / 25.5 ms
	C=$out/C
	coalesce=0xff07 run_g C "backend=$img,serial=VKN-E2E-3,workers=2,poll-us=2000,worker-affinity=1:0" \
		verify -a pci=nomsi
	rc_=$C/g/verify.txt
	echo "file backend, G with pci=nomsi: $(tr '\n' ' ' <"$rc_" 2>/dev/null)" | ktap_diag
	if fio_ok "$rc_" v4k_qd32 && fio_ok "$rc_" v128k_qd8; then
		ktap_ok e2e.file_backend_fio_verify
	else
		ktap_fail e2e.file_backend_fio_verify "$(tr '\n' ' ' <"$rc_" 2>/dev/null)"
	fi
	if [ "$(val "$rc_" irq)" = intx ]; then
		ktap_ok e2e.intx_fallback_without_msi
	else
		ktap_fail e2e.intx_fallback_without_msi "irq=$(val "$rc_" irq)"
	fi
	if h_verify $img v4k_qd32 4k 16m 0 && h_verify $img v128k_qd8 128k 16m 32m; then
		ktap_ok e2e.file_backend_h_reads_back
	else
		ktap_fail e2e.file_backend_h_reads_back
	fi
	echo "poll-us=2000, coalescing 8/25.5 ms: stats (... flushes dsms polled):" | ktap_diag
	ktap_diag <"$C/io-end.stats" 2>/dev/null
	if [ "$(col_sum "$C/io-end.stats" 10)" -gt 0 ]; then
		ktap_ok e2e.poll_us_finds_commands_without_kicks
	else
		ktap_fail e2e.poll_us_finds_commands_without_kicks "polled=$(col_sum "$C/io-end.stats" 10)"
	fi
	# Get Features reads back what G set; 09h reports coalescing on for an
	# I/O vector and refuses a vector the controller does not have
	if [ "$(val "$rc_" setfeat8_rc)" = 0 ] &&
	   [ "$(( $(val "$rc_" getfeat8) ))" = $((0xff07)) ] 2>/dev/null &&
	   [ "$(( $(val "$rc_" getfeat9) ))" = 1 ] 2>/dev/null &&
	   [ "$(val "$rc_" getfeat9_bad_iv_rc)" != 0 ]; then
		ktap_ok e2e.set_get_features_coalescing
	else
		ktap_fail e2e.set_get_features_coalescing "$(grep feat "$rc_" | tr '\n' ' ')"
	fi
	# 8 completions per interrupt at QD32 (fewer when the 25.5 ms run out)
	c_cmds=$(col_sum "$C/io-end.stats" 2)
	c_irqs=$(col_sum "$C/io-end.stats" 6)
	if [ "$c_irqs" -gt 0 ] && [ $((c_irqs * 3)) -lt "$c_cmds" ]; then
		ktap_ok e2e.coalescing_fewer_interrupts
	else
		ktap_fail e2e.coalescing_fewer_interrupts "commands=$c_cmds interrupts=$c_irqs"
	fi
	if [ "$(refcnt)" = 0 ]; then
		ktap_ok e2e.runs_leave_refcount_zero
	else
		ktap_fail e2e.runs_leave_refcount_zero "refcnt=$(refcnt)"
	fi
	rm -f $img
}

# --- D: kill -9 of QEMU mid-fio, the backend slow -----------------------
# The backend is a dm-delay device (100 ms) over /dev/ram0, so that the
# kill finds G's I/O waiting in it: QEMU's exit (the release of its
# /dev/vhost-nvme fd) waits for that I/O, within a bound, and leaves
# nothing behind - the module's reference dropped, the backend free to
# remove. Without dm-delay, /dev/ram0 itself.
run_D() {
	D=$out/D
	mkdir -p "$D/g"
	d_backend=/dev/ram0 d_dm= d_skip=
	# A device left by an earlier run would make the create fail.
	dmsetup --noudevsync remove --force vnkill >/dev/null 2>&1
	if ! modprobe -q dm-delay 2>/dev/null; then
		d_skip="no dm-delay"
	elif timeout -k 5 30 dmsetup --noudevsync create vnkill --table \
		"0 $(blockdev --getsz /dev/ram0) delay /dev/ram0 0 100" \
		>"$D/dm.log" 2>&1; then
		d_dm=vnkill
		for b in /sys/block/dm-*; do
			[ "$(cat "$b/dm/name" 2>/dev/null)" = vnkill ] &&
				d_backend=/dev/${b##*/}
		done
	else
		echo "run D: dmsetup create: $(cat "$D/dm.log")" | ktap_diag
	fi
	echo "run D: backend $d_backend${d_dm:+ (dm-delay 100 ms over /dev/ram0)}" | ktap_diag
	# QEMU itself (argv[0] is the binary), not vm-run, whose arguments
	# carry the same -device string.
	d_re="^$qemu .*id=nv0,backend=$d_backend,serial=VKN-E2E-4"
	(
		for _ in $(seq 600); do
			[ -e "$D/g/kill-me" ] && break
			sleep 0.5
		done
		[ -e "$D/g/kill-me" ] || exit 0
		qpid=$(pgrep -f "$d_re" | head -n 1)
		[ -n "$qpid" ] || exit 0
		# Bios dm-delay holds right now: reads, writes, flushes. G's
		# fio may still be starting (a debug kernel is slow): wait up
		# to 30 s for its I/O to be in the backend.
		for _ in $(seq 300); do
			[ -n "$d_dm" ] || break
			dmsetup status vnkill 2>/dev/null |
				awk '{ print $4 + $5 + $6 }' >"$D/held"
			[ "$(cat "$D/held")" -gt 0 ] 2>/dev/null && break
			sleep 0.1
		done
		t0=$(date +%s%N)
		kill -9 "$qpid"
		echo "$qpid" >"$D/killed"
		# Released: QEMU gone and its fd's release (which waits for
		# the I/O in the backend) done, the module reference dropped.
		for _ in $(seq 600); do
			[ ! -e "/proc/$qpid" ] && [ "$(refcnt)" = 0 ] && break
			sleep 0.1
		done
		[ ! -e "/proc/$qpid" ] && [ "$(refcnt)" = 0 ] &&
			echo $(( ($(date +%s%N) - t0) / 1000000 )) >"$D/exit-ms"
	) &
	killer=$!
	run_g D "backend=$d_backend,serial=VKN-E2E-4" kill
	d_rc=$?
	wait $killer
	echo "run D: QEMU (pid $(cat "$D/killed" 2>/dev/null || echo none)) killed with $(cat "$D/held" 2>/dev/null || echo '?') bios held in the backend; released $(cat "$D/exit-ms" 2>/dev/null || echo never) ms later" | ktap_diag
	if [ -s "$D/killed" ] && [ $d_rc -ne 0 ] &&
	   ! grep -q killed=no "$D/g/kill.txt" 2>/dev/null; then
		ktap_ok e2e.kill9_qemu_mid_fio
	else
		ktap_fail e2e.kill9_qemu_mid_fio "run-g status $d_rc, QEMU pid $(cat "$D/killed" 2>/dev/null || echo 'not found')"
	fi
	for _ in $(seq 20); do
		[ "$(refcnt)" = 0 ] && break
		sleep 0.5
	done
	if [ "$(refcnt)" = 0 ]; then
		ktap_ok e2e.kill9_leaves_refcount_zero
	else
		ktap_fail e2e.kill9_leaves_refcount_zero "refcnt=$(refcnt)"
	fi
	# The kill found I/O in the slow backend, the release waited for it
	# and ended, and nothing holds the backend any more.
	if [ -n "$d_skip" ]; then
		ktap_ok "e2e.kill9_slow_backend_released # SKIP $d_skip"
	elif [ -n "$d_dm" ] && [ -s "$D/exit-ms" ] &&
	     [ "$(cat "$D/held" 2>/dev/null || echo 0)" -gt 0 ] &&
	     timeout -k 5 30 dmsetup --noudevsync remove vnkill; then
		ktap_ok e2e.kill9_slow_backend_released
		d_dm=
	else
		ktap_fail e2e.kill9_slow_backend_released "held $(cat "$D/held" 2>/dev/null || echo '?'), released $(cat "$D/exit-ms" 2>/dev/null || echo never) ms; $(dmsetup info -c vnkill 2>&1 | tail -n 1)"
	fi
	[ -z "$d_dm" ] || timeout -k 5 30 dmsetup --noudevsync remove --force vnkill
}

# --- E: configuration errors: one line naming the cause, no crash -------
# QEMU exits 1 with "qemu-system-x86_64: -device ...: <our message>".
# With qe_user set, QEMU runs as that uid/gid.
run_E() {
	qe_user=
	qemu_err() {	# expected-regex qemu-args...
		local re=$1 as=()
		shift
		[ -n "$qe_user" ] &&
			as=(setpriv "--reuid=$qe_user" "--regid=$qe_user" --clear-groups --)
		timeout 60 "${as[@]}" "$qemu" -L /usr/share/qemu -L /usr/share/seabios \
			-display none -monitor none -nodefaults -m 256 "$@" \
			>"$out/qe.log" 2>&1 </dev/null
		local rc=$?
		ktap_diag <"$out/qe.log"
		[ $rc -eq 1 ] && grep -Eq "$re" "$out/qe.log"
	}
	ktap_check e2e.config_missing_backend \
		qemu_err "backend.*'/nonexistent'.*No such file" -accel kvm \
		-device vhost-kernel-nvme,backend=/nonexistent,serial=x
	ktap_check e2e.config_no_backend_property \
		qemu_err "property 'backend'.*required" -accel kvm \
		-device vhost-kernel-nvme,serial=x
	ktap_check e2e.config_bad_worker_affinity \
		qemu_err "worker-affinity '1:x'" -accel kvm \
		-device vhost-kernel-nvme,backend=/dev/ram0,serial=x,workers=2,worker-affinity=1:x
	ktap_check e2e.config_kvm_not_in_use \
		qemu_err "needs KVM" -accel qtest \
		-device vhost-kernel-nvme,backend=/dev/ram0,serial=x
	# nobody may use KVM and read the backend here, not /dev/vhost-nvme
	kvm_mode=$(stat -c %a /dev/kvm)
	chmod 666 /dev/kvm /dev/ram1
	qe_user=65534
	ktap_check e2e.config_device_not_accessible \
		qemu_err "/dev/vhost-nvme: Permission denied" -accel kvm \
		-device vhost-kernel-nvme,backend=/dev/ram1,serial=x
	qe_user=
	chmod "$kvm_mode" /dev/kvm
	chmod 660 /dev/ram1
	if rmmod vhost_nvme; then
		ktap_ok e2e.rmmod_after_all_runs
	else
		ktap_fail e2e.rmmod_after_all_runs "refcnt=$(refcnt)"
	fi
	ktap_check e2e.config_module_not_loaded \
		qemu_err "vhost_nvme module loaded" -accel kvm \
		-device vhost-kernel-nvme,backend=/dev/ram0,serial=x
}

# In order whatever the order asked: E unloads the module at its end.
for r in A B C D E; do
	[[ " $runs " == *" $r "* ]] && "run_$r"
done
lsmod | grep -q '^vhost_nvme ' || insmod "$ko"
ktap_finish
