# shellcheck shell=bash
# tests/bench/lib.sh -- helpers shared by the bench scripts (sourced).
# BENCH_TAG prefixes their messages ("bench", "connect").

log() {
	printf '%s\n' "$*" >&2
}

# Stop one process by PID: SIGTERM, wait up to 10 s, then SIGKILL.
stop_pid() {
	local pid=$1 i
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null || true
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "${BENCH_TAG:-bench}: pid $pid ignored SIGTERM for 10 s, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# Wait for every PID in $stopping (given SIGTERM earlier; SIGKILL after
# 10 s): libmilter takes up to ~5 s to notice SIGTERM, so the next run
# goes on meanwhile instead of idling.
wait_stopping() {
	local p i
	for i in $(seq 1 100); do
		for p in $stopping; do
			kill -0 "$p" 2>/dev/null && break
			p=
		done
		[ -z "$p" ] && break
		sleep 0.1
	done
	for p in $stopping; do
		stop_pid "$p"
	done
	stopping=
}

# Stops every process in $pids and removes $tmp and $shm (an EXIT trap).
bench_cleanup() {
	local p
	for p in ${pids:-}; do
		stop_pid "$p"
	done
	[ -n "${shm:-}" ] && rm -rf "$shm"
	[ -n "${tmp:-}" ] && rm -rf "$tmp"
}

# field NAME LINE: value of NAME=... in a result line ("-" if none)
field() {
	local kv
	for kv in $2; do
		case $kv in
		"$1"=*) echo "${kv#*=}"; return 0 ;;
		esac
	done
	echo "-"
}

# check PASS|FAIL TEXT: records a check for the summary (the caller's
# checks array) and marks the run failed (failed=1) on FAIL.
check() {
	checks+=("$1 $2")
	[ "$1" = PASS ] || failed=1
}

# bench_tool NAME [LIBS...]: prints the path of the bench helper NAME
# (miltergen, nullmilter): $MILTERGEN / $NULLMILTER when set, else
# tests/bench/NAME.c built into $build with $cc $cflags and LIBS.
bench_tool() {
	local name=$1 var bin
	shift
	var=$(echo "$name" | tr '[:lower:]' '[:upper:]')
	if [ -n "${!var:-}" ]; then
		echo "${!var}"
		return 0
	fi
	bin=$build/$name
	# shellcheck disable=SC2086
	"$cc" $cflags -o "$bin" "$here/$name.c" "$@" >&2 || return 1
	echo "$bin"
}
