#!/bin/bash
# Line coverage of the module from the debug pass: gcov on the .gcda files
# H copied out (debug_checks.sh) against the .gcno files of the debug
# module build. Prints one line per source file and the total.
#   coverage.sh GCDA_DIR BUILD_DIR
set -uo pipefail
gcda=$1 build=$2
[ -d "$gcda" ] && ls "$gcda"/*.gcda >/dev/null 2>&1 ||
	{ echo "coverage: no .gcda files in $gcda"; exit 1; }
cp "$gcda"/*.gcda "$build/"
cd "$build" || exit 1
printf '%-16s %7s %7s %7s\n' file lines covered percent
total=0 hit=0
for c in nvme_*.c; do
	[ -f "${c%.c}.gcno" ] || continue
	# "Lines executed:85.00% of 200" for the file itself, not headers.
	read -r pct lines < <(gcov -n -o . "$c" 2>/dev/null | awk -v f="$c" '
		$0 ~ "^File .*" f "'"'"'" { want = 1; next }
		want && /^Lines executed:/ {
			sub("Lines executed:", ""); sub("%", ""); print $1, $3; exit }')
	[ -n "${lines:-}" ] || continue
	covered=$(awk -v p="$pct" -v n="$lines" 'BEGIN { printf "%d", p * n / 100 + 0.5 }')
	printf '%-16s %7d %7d %6.1f%%\n' "$c" "$lines" "$covered" "$pct"
	total=$((total + lines)) hit=$((hit + covered))
done
[ $total -gt 0 ] || { echo "coverage: gcov found no lines"; exit 1; }
printf '%-16s %7d %7d %6.1f%%\n' total $total $hit \
	"$(awk -v h=$hit -v t=$total 'BEGIN { print 100 * h / t }')"
