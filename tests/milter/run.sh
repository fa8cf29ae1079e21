#!/bin/bash
# run.sh - milter-protocol tests: runs every tests/milter/t_*.lua with
# miltertest against a freshly started daemon and prints TAP.
#
#   tests/milter/run.sh PORTERO_BINARY [t_name ...]
#
# Per test: a temporary directory; the config from t_name.conf, or else
# default.conf, with @DIR@ replaced by that directory; the daemon in the
# foreground (`portero -f -c`) logging to DIR/portero.log; then
#   PORTERO_SOCK=unix:DIR/portero.sock PORTERO_LOG=DIR/portero.log \
#   PORTERO_TESTDIR=tests/milter PORTERO_TMP=DIR miltertest -s t_name.lua
# then SIGTERM to the supervisor (SIGKILL after 15 s).  A test fails if the
# script fails, the daemon does not start or stop cleanly, the milter child
# was restarted (a crash), or the log shows a sanitizer report.
# Tests run JOBS (default 4) at a time, each with its own daemon (most of
# a test's time is the daemon's shutdown: libmilter polls every 5 s); the
# TAP lines come out in order.  KEEP=1 keeps the temporary directories.
# Exit status 0 iff all passed.

set -u

if [ $# -lt 1 ]; then
	echo "usage: $0 PORTERO_BINARY [t_name ...]" >&2
	exit 2
fi
case $1 in
/*)	BIN=$1 ;;
*)	BIN=$(pwd)/$1 ;;
esac
shift
if [ ! -x "$BIN" ]; then
	echo "$0: $BIN is not an executable" >&2
	exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
for tool in miltertest python3; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "$0: $tool is not installed" >&2
		exit 2
	fi
done

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS UBSAN_OPTIONS
# a TSan build (PORTERO_TSAN=1, or linked with libtsan): libmilter's own
# shutdown races are suppressed (see tsan.supp), nothing else
if [ "${PORTERO_TSAN:-0}" = 1 ] || ldd "$BIN" 2>/dev/null | grep -q libtsan; then
	TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}suppressions=$HERE/tsan.supp"
	export TSAN_OPTIONS
fi

if [ $# -gt 0 ]; then
	TESTS=
	for t in "$@"; do
		TESTS="$TESTS $HERE/${t%.lua}.lua"
	done
else
	TESTS=$(ls "$HERE"/t_*.lua)
fi


# diagnostics: "# " lines, printable ASCII only
diag() {
	LC_ALL=C tr -c '\11\12\40-\176' '?' | sed 's/^/# /'
}

# is_running PID
is_running() {
	kill -0 "$1" 2>/dev/null
}

# run_one N PATH: runs one test, writes its TAP lines to $RESULTS/N
run_one() {
	local n=$1 t=$2 name why tmp conf log sock pid i rc child drc res
	name=$(basename "$t" .lua)
	res=$RESULTS/$n
	why=
	tmp=$(mktemp -d /tmp/portero-mt.XXXXXX)
	conf=$HERE/$name.conf
	[ -f "$conf" ] || conf=$HERE/default.conf
	sed "s|@DIR@|$tmp|g" "$conf" >"$tmp/portero.conf"
	log=$tmp/portero.log
	sock=$tmp/portero.sock

	"$BIN" -f -c "$tmp/portero.conf" >"$tmp/stdout" 2>"$log" &
	pid=$!

	# the supervisor opens the socket before it forks the milter child
	i=0
	while [ ! -S "$sock" ] && is_running $pid && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if [ ! -S "$sock" ]; then
		why="daemon did not create $sock"
	else
		(cd "$HERE" && PORTERO_SOCK=unix:$sock PORTERO_LOG=$log \
		    PORTERO_TESTDIR=$HERE PORTERO_TMP=$tmp \
		    timeout 90 miltertest -s "$t") >"$tmp/miltertest.out" 2>&1
		rc=$?
		[ $rc -eq 0 ] || why="miltertest exited with status $rc"
	fi

	# stop: SIGTERM to the supervisor, which stops the child
	child=$(sed -n 's/.*milter process \([0-9][0-9]*\) serving.*/\1/p' \
	    "$log" | head -n 1)
	kill -TERM $pid 2>/dev/null
	i=0
	while is_running $pid && [ $i -lt 150 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if is_running $pid; then
		why="${why:+$why; }daemon still running 15 s after SIGTERM"
		kill -KILL $pid 2>/dev/null
	fi
	wait $pid 2>/dev/null
	drc=$?
	if [ -n "$child" ] && is_running "$child"; then
		why="${why:+$why; }milter child $child outlived the supervisor"
		kill -KILL "$child" 2>/dev/null
	fi
	[ $drc -eq 0 ] || why="${why:+$why; }daemon exited with status $drc"

	if grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error:' \
	    -e 'LeakSanitizer' -e 'ERROR: ThreadSanitizer' \
	    -e 'WARNING: ThreadSanitizer' "$log"; then
		why="${why:+$why; }sanitizer report in the daemon log"
	fi
	if grep -q -e 'restarting it' -e 'did not stop in time' "$log"; then
		why="${why:+$why; }milter child crashed or hung"
	fi

	if [ -z "$why" ]; then
		echo "ok $n - $name" >"$res"
		[ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"
	else
		{
		echo "not ok $n - $name"
		echo "$why" | diag
		if [ -s "$tmp/miltertest.out" ]; then
			echo "miltertest output:" | diag
			tail -n 40 "$tmp/miltertest.out" | diag
		fi
		if grep -q -e 'Sanitizer' -e 'runtime error:' "$log"; then
			echo "sanitizer report:" | diag
			grep -A 30 -e 'ERROR: ' -e 'runtime error:' "$log" |
			    head -n 60 | diag
		elif [ -n "$why" ]; then
			echo "daemon log (last 10 lines):" | diag
			tail -n 10 "$log" | cut -c 1-400 | diag
		fi
		echo "files kept in $tmp" | diag
		} >"$res"
	fi
}

RESULTS=$(mktemp -d /tmp/portero-mt-results.XXXXXX)
JOBS=${JOBS:-4}
n=0
for t in $TESTS; do
	n=$((n + 1))
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n
	done
	run_one $n "$t" &
done
wait

failed=0
i=0
while [ $i -lt $n ]; do
	i=$((i + 1))
	if [ -s "$RESULTS/$i" ]; then
		cat "$RESULTS/$i"
	else
		echo "not ok $i - (no result)"
	fi
	grep -q '^ok ' "$RESULTS/$i" 2>/dev/null || failed=$((failed + 1))
done
rm -rf "$RESULTS"

echo "1..$n"
[ $failed -eq 0 ] || echo "# $failed of $n failed"
[ $failed -eq 0 ]
