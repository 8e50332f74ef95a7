#!/bin/bash
# Stability check of the nested VM world: the stress of vm/world-stress,
# looped, each run in a fresh H, with the failure kind of every run.
#
#   world-check.sh [-n RUNS] [-k]     (-k: keep going after a failure)
#
# The configuration comes from the environment, defaults = the chosen one
# (docs/testing.md): OUTER_QEMU, H_CPU, H_SMP, H_MEM, H_APPEND (extra H
# kernel arguments, e.g. kvm_amd.npt=0), G_SMP, G_MEM, G_APPEND,
# STRESS_SECS, IPI_STORM (vm/world-stress). Ends with "N passed, M failed"
# over the runs.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
vm=$top/tools/testing/selftests/vhost_nvme/vm
runs=20 keep=0
while getopts "n:k" opt; do
	case "$opt" in
	n) runs=$OPTARG ;;
	k) keep=1 ;;
	*) exit 2 ;;
	esac
done

export STRESS_SECS=${STRESS_SECS:-40} G_SMP=${G_SMP:-1} G_MEM=${G_MEM:-1G}
export G_APPEND=${G_APPEND:-} IPI_STORM=${IPI_STORM:-0}
outer=${OUTER_QEMU:-$("$top/scripts/qemu-outer-build.sh")} || exit 2
config="outer=$("$outer" --version | head -n 1 | awk '{print $4}')"
config+=" H_CPU=${H_CPU:-max} H_SMP=${H_SMP:-2} H_MEM=${H_MEM:-4G}"
config+=" H_APPEND='${H_APPEND:-}'"
config+=" G_SMP=$G_SMP G_MEM=$G_MEM G_APPEND='$G_APPEND' secs=$STRESS_SECS"
config+=" IPI_STORM=$IPI_STORM"
logs=${VHOST_NVME_RUNS:-/var/tmp/vhost-nvme-world-check}/$(date +%Y%m%d-%H%M%S)
mkdir -p "$logs"
echo "world-check: $config; logs in $logs"

pass=0 fail=0 streak=0 best=0
for i in $(seq "$runs"); do
	start=$(date +%s)
	h_args=()
	[ -n "${H_APPEND:-}" ] && h_args+=(-a "$H_APPEND")
	# The command line is all that reaches H (not the environment).
	"$vm/run-h" -n -s -o "$logs/$i" \
		-c "${H_SMP:-2}" -m "${H_MEM:-4G}" -t $((STRESS_SECS + 400)) \
		"${h_args[@]}" -- \
		env STRESS_SECS="$STRESS_SECS" G_SMP="$G_SMP" G_MEM="$G_MEM" \
		G_APPEND="$G_APPEND" IPI_STORM="$IPI_STORM" \
		"$vm/world-stress" h 2>"$logs/$i.err"
	rc=$?
	secs=$(( $(date +%s) - start ))
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)) streak=$((streak + 1))
		[ $streak -gt $best ] && best=$streak
		echo "run $i: ok ($(grep -h '^fio:' "$logs/$i/out.log"), ${secs}s)"
		continue
	fi
	fail=$((fail + 1)) streak=0
	# Name the failure: the innermost vm-run FAIL line says where it was.
	why=$(grep -h -o 'vm-run: FAIL.*' "$logs/$i/out.log" "$logs/$i.err" |
		head -n 1)
	[ -n "$why" ] || why="stress exited $rc: $(tail -n 1 "$logs/$i/out.log")"
	echo "run $i: ${why#vm-run: } (${secs}s; logs $logs/$i)"
	[ $keep -eq 1 ] || break
done
echo "world-check: $config: $pass/$((pass + fail)) passed, longest streak $best"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
