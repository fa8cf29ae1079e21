#!/bin/sh
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
# KEEP=1 keeps the temporary directories.  Exit status 0 iff all passed.

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

if [ $# -gt 0 ]; then
	TESTS=
	for t in "$@"; do
		TESTS="$TESTS $HERE/${t%.lua}.lua"
	done
else
	TESTS=$(ls "$HERE"/t_*.lua)
fi

n=0
failed=0

diag() {
	sed 's/^/# /'
}

# is_running PID
is_running() {
	kill -0 "$1" 2>/dev/null
}

for t in $TESTS; do
	name=$(basename "$t" .lua)
	n=$((n + 1))
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
		echo "ok $n - $name"
		[ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"
	else
		failed=$((failed + 1))
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
	fi
done

echo "1..$n"
[ $failed -eq 0 ] || echo "# $failed of $n failed"
[ $failed -eq 0 ]
