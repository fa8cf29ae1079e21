#!/bin/bash
# connect.sh -- portero connect-stage latency with DNS and GeoIP checks.
#
# At connect portero asks every DNSBL zone, every DNSWL zone and the
# client's PTR at once and waits once (dns.timeout at most), then, for
# rdns, the A record of the PTR name (a second round), and looks the
# client up in the GeoIP database.  This bench answers all of it from
# the e2e DNS test server (tests/e2e/dnsd.py, on 127.0.0.1) with an
# artificial delay per zone, and times the connect stage with
# miltergen --connect-only (from the write of SMFIC_CONNECT to portero's
# reply; one milter connection per measurement):
#
#   zone1..zone6.bench.example (DNSBL)  answers after 20 30 40 50 60 70 ms
#   wl.bench.example (DNSWL)            answers after 30 ms
#   PTR of 192.0.2.N                    answers after 40 ms
#   A of hostN.bench.example (rdns)     no delay (second round, ~0.5 ms)
#   GeoIP                               tests/data/geoip/make-mmdb.pl db
#
# No client is listed: the lists answer NXDOMAIN, the PTRs resolve back.
# Asked one after the other that is 340 ms; asked in parallel, the stage
# costs its slowest answer (70 ms) plus the rdns second round.
#
# Scenarios, each on a fresh portero (empty resolver cache), at
# concurrency 1 (the latency of one connect stage: the acceptance rows)
# and at CONNECT_LOAD_CONC (8) connections at once:
#   ref 1 zone    zone6 alone (no dnswl, rdns, geoip): one 70 ms answer
#                 through the same stack, the yardstick
#   cold          every connection from a new address of 192.0.2.0/24:
#                 nothing can be in the cache
#   warm          one priming connection from 192.0.2.10, then all from
#                 it: every answer comes from libunbound's cache
#   cold+timeout  zone3 replaced by a zone that never answers,
#                 dns.timeout = 1s: the stage must end at 1 s
#   warm+timeout  the same from 192.0.2.10 after a priming connection
# The "dns-qs" column counts the queries that reached the test server
# during the measured run (the warm runs must not send any).
#
# Acceptance (issue 3 item 8), checked at concurrency 1: cold p50 within
# 20% of the slowest single answer (parallel, not the 340 ms sum), warm
# p99 under 1 ms, cold+timeout ending at dns.timeout.  The loaded rows
# are reported, not checked.
#
# Note: the test server answers NXDOMAIN without an SOA record, so
# libunbound keeps those negative answers 5 s only (its default for a
# negative answer without SOA; real lists send an SOA with their negative
# TTL).  The warm run is short enough (checked: dns-qs = 0).
#
# Environment:
#   PORTERO=path        portero binary (default build/portero)
#   MILTERGEN=path      miltergen binary (default: built into build/bench)
#   CONNECT_LOAD_CONC=N concurrency of the loaded rows (default 8)
#   CONNECT_REF=N       connections of the ref run (default 40)
#   CONNECT_COLD=N      connections of the cold run, concurrency 1 (80)
#   CONNECT_LOAD=N      connections of the loaded cold run (200, <= 254)
#   CONNECT_WARM=N      connections of the warm runs (default 2000)
#   CONNECT_TIMEOUT1=N  connections of cold+timeout, concurrency 1 (6)
#   CONNECT_TIMEOUT=N   connections of the loaded timeout runs (40)
#   CONNECT_REPEAT=N    runs of each scenario but the timeout ones, the
#                       one with the lowest p99 is kept (default 2)
#   CC                  C compiler (default cc)
# Raw output goes to build/bench/raw/connect-*.  Only loopback is used;
# the system resolver never is.  Exit status 1 if the acceptance checks
# (cold p50 within 20% of the slowest answer, warm p99 under 1 ms and no
# query, the timeout run ending within 10% of dns.timeout) fail, 2 if the
# bench could not run, 0 otherwise (also when skipped).  The test server
# counts each DELAY from the query's arrival, so its own ~1 ms of work
# per query is inside the delay, not added to it.
#
# Usage: tests/bench/connect.sh        (about 80 s)

set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build/bench
raw=$build/raw
python=/usr/bin/python3
dnsd=$root/tests/e2e/dnsd.py
mkmmdb=$root/tests/data/geoip/make-mmdb.pl

portero=${PORTERO:-$root/build/portero}
case $portero in
/*) ;;
*) portero=$PWD/$portero ;;
esac
load_conc=${CONNECT_LOAD_CONC:-8}
n_ref=${CONNECT_REF:-40}
n_cold=${CONNECT_COLD:-80}
n_load=${CONNECT_LOAD:-200}
n_warm=${CONNECT_WARM:-2000}
n_tmo1=${CONNECT_TIMEOUT1:-6}
n_tmo=${CONNECT_TIMEOUT:-40}
repeat=${CONNECT_REPEAT:-2}
cc=${CC:-cc}
cflags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wformat=2 -Wshadow
    -Wstrict-prototypes -Wmissing-prototypes -Wvla -O2"

# zone delays (ms): DNSBL zone1..zone6, DNSWL, PTR; the forward A has none
bl_delays=(20 30 40 50 60 70)
wl_delay=30
ptr_delay=40
slowest=70			# slowest answer of the first round
serial=$((20 + 30 + 40 + 50 + 60 + 70 + wl_delay + ptr_delay))
tmo_ms=1000			# dns.timeout of the timeout runs

tmp=
pids=		# every process started, for the EXIT trap
stopping=	# porteros sent SIGTERM, waited for at the end
rows=()
notes=()
checks=()
failed=0

BENCH_TAG=connect
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

trap bench_cleanup EXIT
trap 'exit 130' INT TERM

skip() {
	echo "connect stage: skipped ($*)"
	exit 0
}

# ---- prerequisites ----
[ -x "$portero" ] || skip "portero not built: no executable $portero"
if ! [ -x "$python" ] || ! "$python" -c 'import dnslib' 2>/dev/null; then
	skip "needs $python with python3-dnslib"
fi
geoip=1
geoip_note="GeoIP: test database from tests/data/geoip/make-mmdb.pl"
if [ ! -f "$mkmmdb" ]; then
	geoip=0
	geoip_note="GeoIP: skipped (no $mkmmdb)"
elif ! perl -MMaxMind::DB::Writer::Tree -e 1 2>/dev/null; then
	geoip=0
	geoip_note="GeoIP: skipped (perl MaxMind::DB::Writer missing)"
fi

mkdir -p "$build" "$raw"
rm -f "$raw"/connect-*
if [ -n "${MILTERGEN:-}" ]; then
	miltergen=$MILTERGEN
else
	miltergen=$build/miltergen
	log "connect: building $miltergen"
	# shellcheck disable=SC2086
	"$cc" $cflags -o "$miltergen" "$here/miltergen.c" -lpthread
fi

tmp=$(mktemp -d /tmp/portero-connect.XXXXXX)
start=$(date +%s)

# ---- DNS test server ----
zone=$tmp/zone
{
	echo "# generated by tests/bench/connect.sh"
	for i in 1 2 3 4 5 6; do
		echo "*.zone$i.bench.example DELAY ${bl_delays[$((i - 1))]}"
	done
	echo "*.wl.bench.example DELAY $wl_delay"
	echo "*.silent.bench.example TIMEOUT"
	# conventional test entries, for portero's zone self-tests
	for z in zone1 zone2 zone3 zone4 zone5 zone6 wl silent; do
		echo "2.0.0.127.$z.bench.example A 127.0.0.2"
	done
	echo "*.2.0.192.in-addr.arpa DELAY $ptr_delay"
	for i in $(seq 1 254); do
		echo "$i.2.0.192.in-addr.arpa PTR host$i.bench.example"
		echo "host$i.bench.example A 192.0.2.$i"
	done
} >"$zone"
qlog=$tmp/dns-queries.log
: >"$qlog"
"$python" "$dnsd" --zone "$zone" --port-file "$tmp/dns.port" \
    --query-log "$qlog" 2>"$tmp/dnsd.log" &
dnsd_pid=$!
pids="$pids $dnsd_pid"
for i in $(seq 1 100); do
	[ -s "$tmp/dns.port" ] && break
	kill -0 "$dnsd_pid" 2>/dev/null || break
	sleep 0.1
done
if [ ! -s "$tmp/dns.port" ]; then
	log "connect: dnsd did not start:"
	sed 's/^/    /' "$tmp/dnsd.log" >&2
	exit 2
fi
dns_port=$(cat "$tmp/dns.port")

if [ "$geoip" = 1 ] && ! perl "$mkmmdb" "$tmp/country.mmdb" >&2; then
	geoip=0
	geoip_note="GeoIP: skipped (make-mmdb.pl failed)"
fi

# ---- portero ----
# write_conf FILE KIND TIMEOUT: KIND full (6 DNSBL zones, DNSWL, rdns,
# GeoIP), silent (zone3 replaced by the silent zone) or ref (zone6 only).
write_conf() {
	local f=$1 kind=$2 timeout=$3 dir z zones=() i
	dir=$(dirname "$f")
	case $kind in
	ref) zones=(zone6) ;;
	full) zones=(zone1 zone2 zone3 zone4 zone5 zone6) ;;
	silent) zones=(zone1 zone2 silent zone4 zone5 zone6) ;;
	esac
	{
		cat <<EOF
milter = { socket = "unix:$dir/milter.sock"; pidfile = "$dir/portero.pid";
  user = ""; group = ""; };
log = { level = "warning"; stderr = true; };
metrics = { listen = "127.0.0.1:$(free_port)"; };
dns = { mode = "forward"; forward = [ "127.0.0.1@$dns_port" ];
  timeout = "$timeout"; };
EOF
		printf 'dnsbl = ('
		i=0
		for z in "${zones[@]}"; do
			[ $i -gt 0 ] && printf ','
			printf '\n  { zone = "%s.bench.example"; score = 1.0; }' "$z"
			i=$((i + 1))
		done
		printf ' );\n'
		if [ "$kind" != ref ]; then
			echo 'dnswl = ( { zone = "wl.bench.example"; score = -1.0; } );'
			echo 'rdns = { enabled = true; };'
			[ "$geoip" = 1 ] && echo "geoip = { database =" \
			    "\"$tmp/country.mmdb\"; scores = { DE = 0.5; }; };"
		fi
		true
	} >"$f"
}

free_port() {
	"$python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# metrics: the running portero's /metrics text (empty if unreachable)
metrics() {
	"$python" - "$metrics_url" <<'EOF' || true
import sys, urllib.request
try:
    sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read()
                     .decode())
except Exception:
    pass
EOF
}

# metric NAME_AND_LABELS: one value from /metrics ("-" if unreachable)
metric() {
	metrics | awk -v w="$1" '$1 == w { v = $2 } NF { any = 1 }
	    END { print any ? (v == "" ? 0 : v) : "-" }'
}

# portero_start KIND TIMEOUT: fresh portero; sets ppid, spec, metrics_url
portero_start() {
	local dir i nz
	dir=$(mktemp -d "$tmp/portero.XXXXXX")
	write_conf "$dir/portero.conf" "$1" "$2"
	if ! "$portero" -t -c "$dir/portero.conf" >"$dir/check" 2>&1; then
		log "connect: portero -t refused the generated config:"
		sed 's/^/    /' "$dir/check" >&2
		exit 2
	fi
	"$portero" -f -c "$dir/portero.conf" >"$dir/stderr" 2>&1 &
	ppid=$!
	pids="$pids $ppid"
	pdir=$dir
	spec=unix:$dir/milter.sock
	metrics_url="http://$(sed -n 's/.*listen = "\([^"]*\)".*/\1/p' \
	    "$dir/portero.conf")/metrics"
	for i in $(seq 1 100); do
		[ -S "$dir/milter.sock" ] && break
		kill -0 "$ppid" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -S "$dir/milter.sock" ]; then
		log "connect: portero did not start:"
		sed 's/^/    /' "$dir/stderr" >&2
		exit 2
	fi
	# wait for the zone self-tests of the start (one zone after the
	# other, 2 queries each, dns.timeout for the silent zone) to finish
	nz=$(grep -c 'zone = ' "$dir/portero.conf")
	for i in $(seq 1 100); do
		[ "$(metrics | grep -c '^portero_dnsl_zone_healthy{')" -ge "$nz" ] &&
		    break
		kill -0 "$ppid" 2>/dev/null || break
		sleep 0.1
	done
}

# portero_stop LABEL: SIGTERM (waited for by wait_stopping); its stderr
# goes to build/bench/raw/ when it says more than the usual
portero_stop() {
	kill -TERM "$ppid" 2>/dev/null || true
	stopping="$stopping $ppid"
	if grep -qv 'running as root' "$pdir/stderr"; then
		cp "$pdir/stderr" "$raw/connect-$1.stderr"
	fi
}

# gen LABEL CONC N ADDRESS-ARGS...: one miltergen run; prints its result
# line (empty on failure), raw output in build/bench/raw/.
gen() {
	local label=$1 c=$2 n=$3 out rc=0
	shift 3
	out=$raw/connect-$label.txt
	"$miltergen" -s "$spec" -c "$c" -n "$n" --connect-only "$@" \
	    >"$out" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		log "connect: $label: miltergen exit $rc:"
		grep -v '^symlist\|^negotiated' "$out" | sed 's/^/    /' >&2
	fi
	grep '^result ' "$out" | tail -n 1 || true
}

# run_once KIND TIMEOUT CONC N PRIME LABEL ADDRESS-ARGS...: fresh portero,
# optional priming connection, one measured run.  Sets r_res (result line,
# empty on failure), r_queries (queries that reached the DNS server during
# the run), r_tmo and r_sf (questions that ended in timeout / servfail).
run_once() {
	local kind=$1 to=$2 c=$3 n=$4 prime=$5 label=$6 q0 t0 s0
	shift 6
	# a portero asking a silent zone may go on asking it while it stops:
	# let it go first, so the query count is this run's own
	if [ "$kind" = silent ] || [ "$prev_kind" = silent ]; then
		wait_stopping
	fi
	prev_kind=$kind
	portero_start "$kind" "$to"
	[ "$prime" = 1 ] && gen "$label-prime" 1 1 "$@" >/dev/null
	q0=$(wc -l <"$qlog")
	t0=$(metric 'portero_dns_queries_total{result="timeout"}')
	s0=$(metric 'portero_dns_queries_total{result="servfail"}')
	r_res=$(gen "$label" "$c" "$n" "$@")
	r_queries=$(($(wc -l <"$qlog") - q0))
	r_tmo=$(awk -v a="$(metric \
	    'portero_dns_queries_total{result="timeout"}')" -v b="$t0" \
	    'BEGIN { print (a == "-" || b == "-") ? "-" : a - b }')
	r_sf=$(awk -v a="$(metric \
	    'portero_dns_queries_total{result="servfail"}')" -v b="$s0" \
	    'BEGIN { print (a == "-" || b == "-") ? "-" : a - b }')
	portero_stop "$label"
}

# scenario NAME KIND TIMEOUT CONC N PRIME SLOWEST REPEAT ADDRESS-ARGS...:
# REPEAT runs (each on a fresh portero), the one with the lowest p99 is
# kept (other work on the machine only ever adds latency).  Adds a row
# and sets last_res, last_ratio, last_queries.
scenario() {
	local name=$1 kind=$2 to=$3 c=$4 n=$5 prime=$6 slow=$7 rep=$8 i
	local res='' q='' tmo='' sf='' ratio label
	shift 8
	label=${name// /_}-c$c
	for i in $(seq 1 "$rep"); do
		log "connect: $name: $n connections, concurrency $c" \
		    "(run $i/$rep)"
		run_once "$kind" "$to" "$c" "$n" "$prime" "$label-$i" "$@"
		[ -n "$r_res" ] || continue
		if [ -z "$res" ] || awk -v a="$(field p99 "$r_res")" \
		    -v b="$(field p99 "$res")" 'BEGIN { exit !(a < b) }'; then
			res=$r_res
			q=$r_queries
			tmo=$r_tmo
			sf=$r_sf
		fi
	done
	if [ -z "$res" ]; then
		rows+=("$name|$c|$n|-|-|-|$slow|-|-|-|-|failed")
		failed=1
		last_res="result p50=999999 p99=999999 max=999999"
		last_ratio=999
		last_queries=999
		return
	fi
	ratio=$(awk -v a="$(field p50 "$res")" -v b="$slow" \
	    'BEGIN { printf "%.2f", a / b }')
	rows+=("$name|$c|$(field msgs "$res")|$(field p50 "$res")|$(field \
	    p99 "$res")|$(field max "$res")|$slow|$ratio|$q|$tmo|$sf|$(field \
	    errors "$res")")
	last_res=$res
	last_ratio=$ratio
	last_queries=$q
}

# check TEXT... RESULT: an acceptance line, RESULT 1 = ok
check() {
	local res=${*: -1} text=${*:1:$#-1}
	if [ "$res" = 1 ]; then
		checks+=("ok    $text")
	else
		checks+=("FAIL  $text")
		failed=1
	fi
}

# note TEXT...: a remark on a loaded row (not an acceptance check)
note() {
	notes+=("note  $*")
}

# tmo_check NAME: the stage ended at dns.timeout (p50 in 1000..1100 ms,
# max at most 1100 ms)
tmo_check() {
	check "$1: the stage ends at dns.timeout: p50 $(field p50 \
	    "$last_res") ms, max $(field max "$last_res") ms" "$(awk \
	    -v p="$(field p50 "$last_res")" -v m="$(field max "$last_res")" \
	    -v t="$tmo_ms" 'BEGIN { print (p >= t && p <= 1.1 * t &&
	    m <= 1.1 * t) }')"
}

prev_kind=
cold=(--client-ip-range 192.0.2.0/24)
warm=(--client-ip 192.0.2.10)
L=$load_conc

scenario "ref 1 zone" ref 2s 1 "$n_ref" 0 "$slowest" "$repeat" "${cold[@]}"
ref_p50=$(field p50 "$last_res")

scenario "cold" full 2s 1 "$n_cold" 0 "$slowest" "$repeat" "${cold[@]}"
check "cold: p50 within 20% of the slowest answer ($slowest ms):" \
    "p50 $(field p50 "$last_res") ms, p50/slowest $last_ratio" "$(awk \
    -v r="$last_ratio" 'BEGIN { print (r <= 1.2) }')"
cold_p50=$(field p50 "$last_res")

scenario "cold" full 2s "$L" "$n_load" 0 "$slowest" "$repeat" "${cold[@]}"
[ "$(awk -v r="$last_ratio" 'BEGIN { print (r <= 1.2) }')" = 1 ] ||
    note "cold, concurrency $L: p50/slowest $last_ratio: the questions of" \
    "concurrent connections queue in the resolver"

scenario "warm" full 2s 1 "$n_warm" 1 "$slowest" "$repeat" "${warm[@]}"
check "warm: p99 under 1 ms with every answer cached: p99" \
    "$(field p99 "$last_res") ms, $last_queries DNS queries during the run" \
    "$(awk -v p="$(field p99 "$last_res")" -v q="$last_queries" \
    'BEGIN { print (p < 1.0 && q == 0) }')"

scenario "warm" full 2s "$L" "$n_warm" 1 "$slowest" "$repeat" "${warm[@]}"
[ "$(awk -v p="$(field p99 "$last_res")" 'BEGIN { print (p < 1.0) }')" = 1 ] ||
    note "warm, concurrency $L: p99 $(field p99 "$last_res") ms: cache" \
    "hits share the two CPUs with the other connections"

scenario "cold+timeout" silent 1s 1 "$n_tmo1" 0 "$tmo_ms" 1 "${cold[@]}"
tmo_check "cold+timeout, concurrency 1"

scenario "cold+timeout" silent 1s "$L" "$n_tmo" 0 "$tmo_ms" 1 "${cold[@]}"
[ "$(awk -v m="$(field max "$last_res")" -v t="$tmo_ms" \
    'BEGIN { print (m <= 1.1 * t) }')" = 1 ] ||
    note "cold+timeout, concurrency $L: max $(field max "$last_res") ms," \
    "over dns.timeout; $r_tmo questions timed out for $n_tmo connections" \
    "with one silent zone"

scenario "warm+timeout" silent 1s "$L" "$n_tmo" 1 "$tmo_ms" 1 "${warm[@]}"

# ---- report ----
echo
echo "connect stage (SMFIC_CONNECT to its reply) with 6 DNSBL zones, 1" \
    "DNSWL, PTR + forward-confirmation, GeoIP"
fmt='%-13s %4s %5s %9s %9s %9s %7s %6s %6s %7s %8s %6s\n'
# shellcheck disable=SC2059
printf "$fmt" scenario conc conns p50ms p99ms maxms slowest p50/sl dns-qs \
    timeout servfail errors
for r in "${rows[@]}"; do
	IFS='|' read -r s c n p50 p99 mx sl ra q to sf er <<<"$r"
	# shellcheck disable=SC2059
	printf "$fmt" "$s" "$c" "$n" "$p50" "$p99" "$mx" "$sl" "$ra" "$q" \
	    "$to" "$sf" "$er"
done
echo
echo "slowest: the slowest single answer of the first round (zone6, $slowest" \
    "ms; the PTR takes $ptr_delay ms; the rdns second round, the A of the" \
    "PTR name, has no delay), or dns.timeout ($tmo_ms ms) when a zone never" \
    "answers.  The same answers one after the other: $serial ms."
echo "ref 1 zone: zone6 alone, p50 $ref_p50 ms; all lookups: p50" \
    "$cold_p50 ms (concurrency 1)."
echo "dns-qs: queries that reached the DNS test server during the run;" \
    "timeout, servfail: questions portero saw end so (dns.timeout or an" \
    "error from libunbound)."
echo "best of $repeat runs by p99 (1 run for the timeout rows), each on a" \
    "fresh portero; $geoip_note."
for c in "${checks[@]}" "${notes[@]}"; do
	echo "$c"
done
wait_stopping
echo "total $(($(date +%s) - start)) s; raw output in $raw/connect-*"
[ "$failed" = 0 ] || exit 1
exit 0
