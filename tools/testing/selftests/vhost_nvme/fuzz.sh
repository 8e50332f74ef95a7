#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The fuzzers: vhost_nvme_fuzz in each of its modes, with the volume
# make check asks of every pass - on the debug kernel too:
#
#   sqe    30 s of full-size commands, golden data, the rewriting thread
#   fast   1,000,000 commands (small transfers, half adversarial)
#   state  2,000 actions of the VMM under I/O
#   ioctl  10,000 ioctl sequences from several threads and processes
#
# Each mode stops at its count or at its time limit, whichever is first;
# a count not reached is a failed case of its own ("fuzz.<mode>_volume"),
# so a make check that fuzzed less than it says cannot pass.
#
# FUZZ_SECONDS=N (make fuzz) soaks instead: N seconds over the four modes
# (40/20/20/20 %), no counts. FUZZ_SEED=N (default 1) picks the seed.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/ktap.sh"
fuzz=$here/vhost_nvme_fuzz
seed=${FUZZ_SEED:-1}
failed=0

# mode unit target seconds
if [ -n "${FUZZ_SECONDS:-}" ]; then
	runs=("sqe commands 0 $((FUZZ_SECONDS * 40 / 100))"
	      "fast commands 0 $((FUZZ_SECONDS * 20 / 100))"
	      "state actions 0 $((FUZZ_SECONDS * 20 / 100))"
	      "ioctl sequences 0 $((FUZZ_SECONDS * 20 / 100))")
else
	runs=("sqe commands 0 30"
	      "fast commands 1000000 420"
	      "state actions 2000 300"
	      "ioctl sequences 10000 90")
fi

volume=()
died=()
for r in "${runs[@]}"; do
	read -r mode unit target secs <<<"$r"
	[ "$secs" -gt 0 ] || secs=1
	out=$(mktemp)
	start=$(date +%s)
	"$fuzz" --mode "$mode" --seed "$seed" --seconds "$secs" \
		"--$unit" "$target" | tee "$out"
	rc=${PIPESTATUS[0]}
	# 0 clean, 1 violations (its own "not ok"), 4 could not run here;
	# anything else (a signal) printed no result: it is one here.
	case $rc in
	0 | 4) ;;
	1) failed=1 ;;
	*) failed=1; died+=("$mode $rc") ;;
	esac
	got=$(sed -n "s/^fuzz $mode: .* $unit=\([0-9]*\) .*/\1/p" "$out")
	rm -f "$out"
	echo "$mode: ${got:-0} $unit in $(($(date +%s) - start)) s" | ktap_diag
	[ "$target" -gt 0 ] && volume+=("$mode $unit ${got:-0} $target $secs")
done

# The volume of each mode, and modes that died, as cases of their own.
if [ $((${#volume[@]} + ${#died[@]})) -gt 0 ]; then
	ktap_header $((${#volume[@]} + ${#died[@]}))
	for d in ${died[@]+"${died[@]}"}; do
		read -r mode rc <<<"$d"
		ktap_fail "fuzz.${mode}_completed" "exit status $rc: no summary"
	done
	for v in ${volume[@]+"${volume[@]}"}; do
		read -r mode unit got target secs <<<"$v"
		if [ "$got" -ge "$target" ]; then
			ktap_ok "fuzz.${mode}_volume"
		else
			echo "$mode: $got $unit of $target in the $secs s allowed" |
				ktap_diag
			ktap_fail "fuzz.${mode}_volume" "$got of $target $unit"
		fi
	done
fi
[ $failed -eq 0 ] && [ $ktap_failed -eq 0 ]
