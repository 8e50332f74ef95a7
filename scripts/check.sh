#!/bin/bash
# The test command's last step (make check builds first): host-side static
# checks, then one boot of H that runs every kselftest and end-to-end test
# (tools/testing/selftests/vhost_nvme/run_vm_tests.sh), then one boot of H
# on the debug kernel (scripts/debug-kernel.sh, built and cached here) that
# runs the kselftests, the fuzzers and the end-to-end tests of the device
# with panic_on_warn, kmemleak and the module's line coverage. Prints each
# case as it completes, each pass's time, and ends with exactly one line
# "N passed, M failed".
#
# Environment: VHOST_NVME_TESTS="name ..." runs only those tests in H (in
# both passes); VHOST_NVME_DEBUG=0 skips the debug kernel pass;
# QEMU_DEVICE_DEBUG_RUNS="A B C D E" picks the end-to-end runs of the debug
# pass (default D E; the stock pass runs all);
# VHOST_NVME_RUNS=DIR keeps the VM logs there (default: a temp dir);
# H_SMP=N boots H with N vCPUs (default 2, vm-run's) and H_APPEND="..." adds
# kernel arguments to H's command line (kvm_amd.npt=0, say), for world
# experiments.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
st=tools/testing/selftests/vhost_nvme
# H mounts a tmpfs of its own on /tmp: a checkout there is invisible to it.
case "$top/" in
/tmp/*)
	echo "make check: $top is under /tmp, which the test VM hides behind a tmpfs of its own; clone the tree elsewhere (/var/tmp, a home directory)"
	exit 1 ;;
esac

runs=${VHOST_NVME_RUNS:-$(mktemp -d "${TMPDIR:-/tmp}/vhost-nvme-check.XXXXXX")}
mkdir -p "$runs"
summary=$runs/summary
passed=0 failed=0 skipped=0

result() {		# ok|not-ok name [reason]
	if [ "$1" = ok ]; then
		passed=$((passed + 1))
		echo "ok - $2"
	else
		failed=$((failed + 1))
		echo "not ok - $2${3:+ # $3}"
	fi
}

# 1. Host-side: static checks and the other ways to build the module.

host_test() {		# name command...
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		result ok "$name"
	else
		echo "$out" | tail -n 30 | sed 's/^/# /'
		result not-ok "$name"
	fi
}

# sparse (make C=2) must say nothing about our files.
sparse_clean() {
	local out
	out=$(make -s sparse 2>&1) || { echo "$out"; return 1; }
	! echo "$out" | grep -E 'warning|error'
}
host_test host.checkpatch_strict make -s checkpatch
host_test host.sparse_clean sparse_clean
host_test host.dkms_build scripts/dkms-build.sh
host_test host.in_kernel_tree_build scripts/intree-build.sh
host_test host.qemu_patches_checkpatch_and_header scripts/qemu-patches-check.sh

# 2. One boot of H per pass runs the VM tests; count their KTAP case lines.
h_pass() {		# name outdir [env NAME=value...] -- tests...
	local name=$1 dir=$2 envs=() p f s rc
	shift 2
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	local t0=$SECONDS
	echo "# booting H (TCG) for the $name pass; logs in $dir"
	env "${envs[@]}" "$st/vm/run-h" -o "$dir" ${H_SMP:+-c "$H_SMP"} \
		${H_APPEND:+-a "$H_APPEND"} ${h_args[@]+"${h_args[@]}"} -- \
		env ${h_vm_env[@]+"${h_vm_env[@]}"} \
		"$st/run_vm_tests.sh" "$@" 2>"$dir.err" | tee "$dir.log"
	rc=${PIPESTATUS[0]}
	echo "# the $name pass took $((SECONDS - t0)) s"
	read -r p f s < <(awk '
		/^ok [0-9]+ .*# SKIP/ { s++; next }
		/^ok [0-9]+ /         { p++; next }
		/^not ok [0-9]+ /     { f++ }
		END { print p + 0, f + 0, s + 0 }' "$dir.log")
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	case $rc in
	0 | 1)
		result ok "$name.kernel_log_clean_and_vm_completed" ;;
	201)
		sed 's/^/# /' "$dir.err"
		result not-ok "$name.kernel_log_clean_and_vm_completed" "kernel warning in H" ;;
	*)
		sed 's/^/# /' "$dir.err"
		result not-ok "$name.kernel_log_clean_and_vm_completed" "vm-run status $rc" ;;
	esac
	# The runner failed but no case said so (a test died before reporting).
	if [ "$rc" = 1 ] && [ "$f" = 0 ]; then
		result not-ok "$name.runner_status" "run_vm_tests.sh failed without a failing case"
	fi
	if [ $((p + f)) -eq 0 ]; then
		result not-ok "$name.ran_tests" "no test case reported"
	fi
}

read -r -a sel <<<"${VHOST_NVME_TESTS:-}"
h_args=()
h_vm_env=()	# the environment of the tests in H
h_pass H "$runs/H" -- "${sel[@]}"

# 3. The debug kernel (KASAN, UBSAN, lockdep, kmemleak, KCOV, GCOV, fault
# injection; scripts/debug-kernel.sh) under the kselftests, the fuzzers and
# the end-to-end tests of our device, panic_on_warn so that any warning
# ends the run. VHOST_NVME_DEBUG=0 skips it.
debug_tests=(module_load.sh vhost_nvme_dev_test vhost_nvme_ioctl_test
	vhost_nvme_io_test vhost_nvme_queue_test vhost_nvme_tune_test
	vhost_nvme_hostile_test vhost_nvme_fault_test fuzz.sh
	vhost_nvme_failslab_test qemu_device.sh pins_balanced.sh
	debug_checks.sh)
[ ${#sel[@]} -gt 0 ] && debug_tests=("${sel[@]}")
if [ "${VHOST_NVME_DEBUG:-1}" = 1 ]; then
	if kdir=$(scripts/debug-kernel.sh) &&
	   dko=$(scripts/debug-module.sh 2>"$runs/debug-module.log"); then
		h_args=(-a "panic_on_warn=1 kmemleak=on")
		# End to end on the debug kernel: runs D (G's fio on our device,
		# then kill -9 of QEMU with I/O in a slow backend) and E
		# (configuration errors, rmmod); the stock pass has all five.
		# QEMU_DEVICE_DEBUG_RUNS="A B C D E" runs them all here too:
		# 957 s instead of about 200 on this machine.
		h_vm_env=(QEMU_DEVICE_RUNS="${QEMU_DEVICE_DEBUG_RUNS:-D E}")
		h_pass H-debug "$runs/H-debug" \
			H_KERNEL="$kdir/arch/x86/boot/bzImage" \
			H_KERNEL_RELEASE="$(scripts/debug-kernel.sh --release)" \
			VHOST_NVME_KO="$dko" -- "${debug_tests[@]}"
		echo "# line coverage of the module on the debug kernel:"
		scripts/coverage.sh "$runs/H-debug/gcov" "$(dirname "$dko")" |
			sed 's/^/# /'
	else
		sed 's/^/# /' "$runs/debug-module.log" 2>/dev/null
		result not-ok H-debug.build "debug kernel or module did not build"
	fi
fi

line="$passed passed, $failed failed"
[ $skipped -eq 0 ] || line+=", $skipped skipped"
echo "$line" >"$summary"
echo "$line"
[ $failed -eq 0 ]
