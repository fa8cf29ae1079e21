#!/bin/bash
# run.sh -- portero benchmark driver.
#
# Builds tests/bench/miltergen.c (milter protocol load generator) and
# tests/bench/nullmilter.c (do-nothing libmilter milter, the ceiling)
# into build/bench/, then for the unix and inet (127.0.0.1) transports
# and the "envelope" and "full" scenarios drives, with 16 concurrent
# milter connections:
#   - nullmilter -N -R (TCP_NODELAY on its listening socket, the same
#     no-reply flags as portero), the reference ceiling;
#   - nullmilter -N (libmilter chooses the flags itself);
#   - portero ($PORTERO -f -c CONF with a generated config), if built;
# and, on inet only, some rows that show where Nagle's algorithm stalls:
#   - nullmilter without -N (one reply per command: no stall expected);
#   - nullmilter -H without / with -N (adds a header at end of message,
#     i.e. two replies back to back: ~40 ms stall without TCP_NODELAY).
# Prints a table: msgs/s, latency p50/p99/max (ms), errors, the
# portero/null throughput ratio and peak RSS (largest VmHWM of the
# process and its descendants, since the process started).
# Then tests/bench/connect.sh: portero's connect-stage latency with
# DNSBL/DNSWL/rDNS lookups answered by the e2e DNS test server, and GeoIP
# (its own table; see that script).
#
# Environment:
#   PORTERO=path       portero binary (default build/portero)
#   BENCH_MSGS=N       envelope messages per run (default 50000);
#                      full runs use N/2 unless BENCH_MSGS_FULL is set
#   BENCH_MSGS_FULL=N  full messages per run
#   BENCH_STALL_MSGS=N messages for the (slow) Nagle stall row (800)
#   BENCH_CONC=N       concurrent connections (default 16)
#   BENCH_BODY=N       body bytes of the full scenario (default 4096)
#   BENCH_REPEAT=N     run each measurement N times, keep the best (2)
#   BENCH_CONNECT=0    skip the connect-stage bench (connect.sh, ~80 s)
#   BENCH_RCPT=0       skip the RCPT-stage callout bench (rcpt.sh, ~30 s)
#   BENCH_STORE=0      skip the store bench (store.sh: LMDB and Redis
#                      operations/s, LMDB growth over 1,000,000 records)
#   BENCH_CONTENT=0    skip the end-of-message bench (content.sh: content
#                      rules + ClamAV against clamav-milter + clamd, ~2 min)
#   CC                 C compiler (default cc)
# Raw generator output goes to build/bench/raw/.  Only loopback is used.
#
# Usage: tests/bench/run.sh            (about 3 min on 2 cores)
#        PORTERO=/path/to/portero BENCH_MSGS=10000 tests/bench/run.sh
#
# Noise: Debian's libmilter is built with its worker pool: a session
# stays on a worker only while the next command arrives within 1 ms,
# otherwise it goes back to one poll-controller thread.  With 16
# connections on 2 cores the null milter's runs are then sometimes
# served in waves (see "threads first-done/last-done" in the raw
# output), hence best-of-BENCH_REPEAT.

set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build/bench
raw=$build/raw

portero=${PORTERO:-$root/build/portero}
case $portero in
/*) ;;
*) portero=$PWD/$portero ;;
esac
conc=${BENCH_CONC:-16}
env_msgs=${BENCH_MSGS:-50000}
full_msgs=${BENCH_MSGS_FULL:-$((env_msgs / 2))}
[ "$full_msgs" -ge 1 ] || full_msgs=1
stall_msgs=${BENCH_STALL_MSGS:-800}
body=${BENCH_BODY:-4096}
repeat=${BENCH_REPEAT:-2}
cc=${CC:-cc}
cflags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wformat=2 -Wshadow
    -Wstrict-prototypes -Wmissing-prototypes -Wvla -O2"
python=/usr/bin/python3

tmp=
pids=		# every process started, for the EXIT trap
stopping=	# processes sent SIGTERM, waited for at the end
rows=()
negs=()

BENCH_TAG=bench
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

# Ask a process to stop (SIGTERM, by PID); it is waited for by
# wait_stopping.  libmilter based milters take up to ~5 s to notice, so
# the next run proceeds meanwhile instead of idling.
stop_async() {
	kill -TERM "$1" 2>/dev/null || true
	stopping="$stopping $1"
}

# All descendants of a PID (children via the ppid field of /proc/*/stat).
descendants() {
	local todo="$1" p s rest f
	local -a fields
	while [ -n "$todo" ]; do
		# shellcheck disable=SC2086  # split the PID list
		set -- $todo
		p=$1
		shift
		todo="$*"
		for f in /proc/[0-9]*/stat; do
			s=$(cat "$f" 2>/dev/null) || continue
			rest=${s##*) }
			read -r -a fields <<<"$rest"
			if [ "${fields[1]:-}" = "$p" ]; then
				f=${f#/proc/}
				f=${f%/stat}
				echo "$f"
				todo="$todo $f"
			fi
		done
	done
}

# Largest VmHWM (KiB) among the given PIDs and their descendants.
peak_rss_kib() {
	local max=0 p v
	for p in "$@" $(descendants "$*"); do
		v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" \
		    2>/dev/null || true)
		[ -n "$v" ] && [ "$v" -gt "$max" ] && max=$v
	done
	echo "$max"
}

trap bench_cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	"$python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Is the milter socket spec listening?  unix:PATH or inet:PORT@127.0.0.1
listening() {
	local spec=$1 port hex
	case $spec in
	unix:*)
		[ -S "${spec#unix:}" ]
		;;
	inet:*)
		port=${spec#inet:}
		port=${port%@*}
		hex=$(printf '%04X' "$port")
		awk -v a="0100007F:$hex" '$2 == a && $4 == "0A" { f = 1 }
		    END { exit !f }' /proc/net/tcp
		;;
	esac
}

# wait_ready PID SPEC SECONDS: wait until SPEC listens while PID lives.
wait_ready() {
	local pid=$1 spec=$2 n=$(($3 * 20)) i
	for i in $(seq 1 "$n"); do
		kill -0 "$pid" 2>/dev/null || return 1
		listening "$spec" && return 0
		sleep 0.05
	done
	return 1
}

# new_spec TRANSPORT DIR: a fresh socket spec for one milter instance.
new_spec() {
	case $1 in
	unix) echo "unix:$2/milter.sock" ;;
	inet) echo "inet:$(free_port)@127.0.0.1" ;;
	esac
}

# run_gen LABEL SPEC MODE MSGS [extra generator args]: prints the result
# line of the best (highest msgs/s) of $repeat runs.
run_gen() {
	local label=$1 spec=$2 mode=$3 msgs=$4 out rc i res best='' bestrate=-1
	local rate
	shift 4
	out=$raw/${label// /_}.txt
	: >"$out"
	for i in $(seq 1 "$repeat"); do
		log "bench: $label: $msgs messages, concurrency $conc" \
		    "(run $i/$repeat)"
		rc=0
		"$build/miltergen" -s "$spec" -c "$conc" -n "$msgs" \
		    -m "$mode" -b "$body" "$@" >"$out.tmp" 2>&1 || rc=$?
		cat "$out.tmp" >>"$out"
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
			log "bench: $label: miltergen failed (exit $rc):"
			sed 's/^/    /' "$out.tmp" >&2
		fi
		res=$(grep '^result ' "$out.tmp" | tail -n 1 || true)
		rm -f "$out.tmp"
		[ -n "$res" ] || continue
		rate=$(field rate "$res")
		if awk -v a="$rate" -v b="$bestrate" 'BEGIN { exit !(a > b) }'
		then
			best=$res
			bestrate=$rate
		fi
	done
	echo "$best"
}

# add_row TRANSPORT SCENARIO MILTER RESULT RATIO RSS_KIB
add_row() {
	local res=$4 rss=$6 mib="-"
	[ "$rss" != "-" ] && [ "$rss" -gt 0 ] &&
	    mib=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')
	if [ -z "$res" ]; then
		rows+=("$1|$2|$3|-|-|-|-|-|failed|-|$mib")
		return
	fi
	local r="$1|$2|$3" f
	for f in msgs rate p50 p99 max errors; do
		r="$r|$(field "$f" "$res")"
	done
	rows+=("$r|$5|$mib")
}

# null_runs TRANSPORT NAME "FLAGS" MSGS_ENV MSGS_FULL: one nullmilter
# instance, both scenarios (a scenario with 0 messages is skipped).
declare -A nullrate
null_runs() {
	local tr=$1 name=$2 flags=$3 menv=$4 mfull=$5 dir spec pid res rss
	dir=$(mktemp -d "$tmp/null.XXXXXX")
	spec=$(new_spec "$tr" "$dir")
	# shellcheck disable=SC2086
	"$build/nullmilter" -p "$spec" $flags 2>"$dir/stderr" &
	pid=$!
	pids="$pids $pid"
	if ! wait_ready "$pid" "$spec" 5; then
		log "bench: nullmilter $flags on $spec did not start:"
		sed 's/^/    /' "$dir/stderr" >&2
		exit 1
	fi
	if [ "$menv" -gt 0 ]; then
		res=$(run_gen "$tr-envelope-$name" "$spec" envelope "$menv")
		rss=$(peak_rss_kib "$pid")
		add_row "$tr" envelope "$name" "$res" "" "$rss"
		nullrate[$tr-envelope-$name]=$(field rate "$res")
	fi
	if [ "$mfull" -gt 0 ]; then
		res=$(run_gen "$tr-full-$name" "$spec" full "$mfull")
		rss=$(peak_rss_kib "$pid")
		add_row "$tr" full "$name" "$res" "" "$rss"
		nullrate[$tr-full-$name]=$(field rate "$res")
	fi
	[ -n "$res" ] && negs+=("$name: $(cat "$raw/$tr"-*-"${name// /_}.txt" |
	    grep '^negotiated' | head -n 1 | sed 's/^negotiated //')")
	stop_async "$pid"
}

portero_ok=1

# portero_run TRANSPORT SCENARIO MSGS: fresh portero for one run.
portero_run() {
	local tr=$1 sc=$2 msgs=$3 dir spec pid ppid res rss ratio base
	[ "$portero_ok" = 1 ] || return 0
	if [ ! -x "$portero" ]; then
		echo "portero: not built, skipped (no executable $portero)"
		portero_ok=0
		return 0
	fi
	dir=$(mktemp -d "$tmp/portero.XXXXXX")
	spec=$(new_spec "$tr" "$dir")
	cat >"$dir/portero.conf" <<EOF
milter = { socket = "$spec"; pidfile = "$dir/portero.pid"; user = ""; group = ""; };
log = { level = "warning"; stderr = true; };
networks = { internal = [ "10.99.0.0/16" ]; };
whitelist = { clients = [ "198.51.100.0/24" ]; senders = [ "friend@example.org" ]; };
blacklist = { clients = [ "203.0.113.0/24" ]; senders = [ "spammer@example.net" ]; };
helo = { invalid = 1.0; non_fqdn = 1.0; };
sender = { non_fqdn = 2.0; };
thresholds = { reject = 10.0; };
EOF
	"$portero" -f -c "$dir/portero.conf" >"$dir/stderr" 2>&1 &
	pid=$!
	pids="$pids $pid"
	if ! wait_ready "$pid" "$spec" 5; then
		echo "portero: did not start within 5 s, skipped"
		sed 's/^/    /' "$dir/stderr" | tail -n 20
		stop_pid "$pid"
		portero_ok=0
		return 0
	fi
	res=$(run_gen "$tr-$sc-portero" "$spec" "$sc" "$msgs")
	ppid=$(cat "$dir/portero.pid" 2>/dev/null || echo "$pid")
	case $ppid in
	''|*[!0-9]*) ppid=$pid ;;
	esac
	rss=$(peak_rss_kib "$pid" "$ppid")
	base=${nullrate[$tr-$sc-null -N -R]:-}
	ratio=-
	if [ -n "$res" ] && [ -n "$base" ] && [ "$base" != "-" ]; then
		ratio=$(awk -v a="$(field rate "$res")" -v b="$base" \
		    'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
	fi
	add_row "$tr" "$sc" portero "$res" "$ratio" "$rss"
	[ -n "$res" ] && negs+=("portero: $(grep '^negotiated' \
	    "$raw/$tr-$sc-portero.txt" | head -n 1 | sed 's/^negotiated //')")
	stop_async "$pid"
	cp "$dir/stderr" "$raw/$tr-$sc-portero.stderr"
	if grep -qv 'running as root\|verdict=' "$dir/stderr"; then
		log "bench: portero stderr ($tr $sc), last lines:"
		grep -v 'running as root\|verdict=' "$dir/stderr" |
		    tail -n 5 | sed 's/^/    /' >&2
	fi
}

# ---- build ----
mkdir -p "$build" "$raw"
rm -f "$raw"/*.txt "$raw"/*.stderr
log "bench: building into $build"
# shellcheck disable=SC2086
"$cc" $cflags -o "$build/miltergen" "$here/miltergen.c" -lpthread
# shellcheck disable=SC2086
"$cc" $cflags -o "$build/nullmilter" "$here/nullmilter.c" -lmilter -lpthread

tmp=$(mktemp -d /tmp/portero-bench.XXXXXX)
start=$(date +%s)

for tr in unix inet; do
	null_runs "$tr" "null -N -R" "-N -R" "$env_msgs" "$full_msgs"
	null_runs "$tr" "null -N" "-N" "$env_msgs" "$full_msgs"
	portero_run "$tr" envelope "$env_msgs"
	portero_run "$tr" full "$full_msgs"
done
# Nagle rows (inet only).  Plain null milter: one reply per command.
null_runs inet "null" "" "$((env_msgs / 2))" "$((full_msgs / 2))"
# Two replies back to back at end of message (header + accept).
null_runs inet "null -H" "-H" 0 "$stall_msgs"
null_runs inet "null -H -N" "-H -N" 0 "$stall_msgs"
wait_stopping

# ---- report ----
echo
printf '%-5s %-9s %-11s %7s %9s %8s %8s %8s %6s %7s %8s\n' \
    transport scenario milter msgs msgs/s p50ms p99ms maxms errors \
    vs-null rss-MiB
for r in "${rows[@]}"; do
	IFS='|' read -r t s m n rate p50 p99 mx err ratio mib <<<"$r"
	printf '%-5s %-9s %-11s %7s %9s %8s %8s %8s %6s %7s %8s\n' \
	    "$t" "$s" "$m" "$n" "$rate" "$p50" "$p99" "$mx" "$err" \
	    "${ratio:--}" "$mib"
done
echo
for n in "${negs[@]}"; do
	echo "negotiated by $n"
done | sort -u
echo "concurrency $conc, body $body bytes, latency in ms from MAIL to the" \
    "last reply of the message."
echo "vs-null: portero msgs/s / null -N -R msgs/s (same transport and" \
    "scenario): the null milter with the same no-reply flags as portero."
echo "rss-MiB: peak VmHWM over the milter's process tree since it started."
echo "null -H adds a header at end of message (two replies back to back)."
echo "total $(($(date +%s) - start)) s; raw generator output in $raw"

# ---- connect stage with DNS lookups (its own table) ----
if [ "${BENCH_CONNECT:-1}" != 0 ]; then
	echo
	rc=0
	MILTERGEN=$build/miltergen PORTERO=$portero "$here/connect.sh" || rc=$?
	[ "$rc" -eq 0 ] || log "bench: connect.sh: exit $rc (1: an" \
	    "acceptance check failed, see its FAIL lines; 2: it could not run)"
fi

# ---- RCPT stage with callouts, and the state store (their own tables) ----
if [ "${BENCH_RCPT:-1}" != 0 ]; then
	echo
	rc=0
	MILTERGEN=$build/miltergen PORTERO=$portero "$here/rcpt.sh" || rc=$?
	[ "$rc" -eq 0 ] || log "bench: rcpt.sh: exit $rc"
fi
if [ "${BENCH_STORE:-1}" != 0 ] && [ -x "$here/store.sh" ]; then
	echo
	rc=0
	"$here/store.sh" || rc=$?
	[ "$rc" -eq 0 ] || log "bench: store.sh: exit $rc"
fi

# ---- end of message: content rules and ClamAV (its own table) ----
if [ "${BENCH_CONTENT:-1}" != 0 ]; then
	echo
	rc=0
	MILTERGEN=$build/miltergen PORTERO=$portero "$here/content.sh" || rc=$?
	[ "$rc" -eq 0 ] || log "bench: content.sh: exit $rc (1: a check" \
	    "failed, see its FAIL lines; 2: it could not run)"
fi
