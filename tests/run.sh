#!/usr/bin/env bash
# tests/run.sh - runs every test suite and prints one closing line
# "N passed, N failed, N skipped".  Each suite prints TAP lines ("ok N - x",
# "not ok N - x", "... # SKIP why"); a suite that exits non-zero without
# reporting a failure counts as one failed test.  Called by `make test`
# after the normal, ASan/UBSan and TSan builds.
#
#   tests/run.sh [SUITE...]    suites: unit tsan cli milter e2e fuzz
set -u
cd "$(dirname "$0")/.."
top=$PWD
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(unit tsan cli milter e2e fuzz)
pass=0 fail=0 skip=0
log=$(mktemp -d /tmp/portero-tests.XXXXXX)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
export CMOCKA_MESSAGE_OUTPUT=TAP

# run_suite NAME CMD... : runs CMD, echoes its output, counts TAP lines.
run_suite() {
	local name=$1 out rc p f s
	shift
	out="$log/$name.out"
	echo "== $name: $*"
	"$@" >"$out" 2>&1
	rc=$?
	cat "$out"
	p=$(grep -cE '^ok [0-9]* ?-? ?.*' "$out" | tr -d ' ')
	s=$(grep -E '^ok ' "$out" | grep -c '# SKIP' | tr -d ' ')
	f=$(grep -cE '^not ok ' "$out" | tr -d ' ')
	p=$((p - s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited with status $rc"
		f=1
	fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	echo "== $name: $p passed, $f failed, $s skipped"
}

unit_bins() {
	local dir=$1 t rc=0
	for t in "$dir"/tests/test_*; do
		[ -x "$t" ] || continue
		"$t" || rc=1
	done
	return $rc
}

# The TSan build, with the suppressions of tests/unit/tsan.supp.
unit_tsan() {
	TSAN_OPTIONS="$TSAN_OPTIONS:suppressions=$top/tests/unit/tsan.supp" \
	    unit_bins build/tsan
}

for s in "${suites[@]}"; do
	case $s in
	unit)	run_suite unit-asan unit_bins build/asan ;;
	tsan)	run_suite unit-tsan unit_tsan ;;
	cli)	run_suite cli tests/cli/run.sh build/asan ;;
	milter)	run_suite milter-asan tests/milter/run.sh build/asan/portero
		run_suite milter-tsan env PORTERO_TSAN=1 \
		    tests/milter/run.sh build/tsan/portero ;;
	e2e)	if [ "$(id -u)" != 0 ] || ! command -v postfix >/dev/null; then
			echo "ok - e2e # SKIP needs root and postfix"
			skip=$((skip + 1))
		else
			run_suite e2e tests/e2e/run.sh build/asan/portero
		fi ;;
	fuzz)	run_suite fuzz tests/fuzz/run.sh "${FUZZ_SECONDS:-5}" ;;
	*)	echo "unknown suite $s"; fail=$((fail + 1)) ;;
	esac
done
rm -rf "$log"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
