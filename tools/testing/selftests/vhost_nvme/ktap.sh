#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Minimal KTAP output for the shell tests: one "ok"/"not ok" line per case,
# diagnostics as "# " lines, and the exit status kselftest expects.

ktap_n=0
ktap_failed=0

ktap_header() {		# number of cases
	echo "TAP version 13"
	echo "1..$1"
}

ktap_diag() {
	sed 's/^/# /'
}

ktap_ok() {		# name
	ktap_n=$((ktap_n + 1))
	echo "ok $ktap_n $1"
}

ktap_fail() {		# name [reason]
	ktap_n=$((ktap_n + 1))
	ktap_failed=$((ktap_failed + 1))
	echo "not ok $ktap_n $1${2:+ # $2}"
}

ktap_check() {		# name command... : ok if the command succeeds
	local name=$1
	shift
	if "$@"; then
		ktap_ok "$name"
	else
		ktap_fail "$name"
	fi
}

ktap_finish() {
	[ $ktap_failed -eq 0 ]
	exit $?
}
