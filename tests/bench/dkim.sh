#!/bin/bash
# dkim.sh -- DKIM signing at end of message: portero against OpenDKIM.
#
# miltergen (-m full) pushes whole messages from 192.0.2.10 (miltergen's
# default client address, made internal, so that the mail is outbound and
# signed) with From: Sender <sender@example.test> through:
#   - tests/bench/nullmilter -N -R: the do-nothing libmilter milter, the
#     protocol ceiling;
#   - portero with one dkim key for example.test: RSA-2048, then Ed25519;
#   - OpenDKIM's milter (/usr/sbin/opendkim -f, generated opendkim.conf:
#     Mode s, the same key file, relaxed/relaxed, From oversigned,
#     InternalHosts 192.0.2.0/24): RSA-2048, then Ed25519;
# at concurrency 1 and DKIM_CONC (8), and prints msgs/s, latency p50/p99
# (ms, from MAIL to the last reply of the message), the signature header
# replies per message (SMFIR_INSHEADER/ADDHEADER counted by miltergen:
# 1.00 = every message got its DKIM-Signature) and the ratios
# portero/opendkim and portero/null.  `openssl speed` gives the crypto
# ceiling (signatures/s on one core).
#
# Body size: DKIM_BODY (default 4074 bytes = 42 whole lines of
# miltergen's body, ~4.5 KB with the headers).  OpenDKIM does not sign a
# body that does not end in CRLF ("syntax error: CRLF at end of body
# missing"), and miltergen -b 4096 ends mid-line; Postfix always hands
# milters CRLF-terminated bodies, so whole lines are the real case.
#
# Checks (PASS/FAIL lines, exit 1 if one fails): every message through
# portero and through OpenDKIM got one signature header; one message per
# milter and algorithm, sent with miltertest, carries a DKIM-Signature
# that python3-dkim verifies against the public key published by the e2e
# DNS test server (tests/e2e/dnsd.py on 127.0.0.1).  No pass/fail on the
# figures unless DKIM_TARGET (e.g. 0.8) is set: then portero/opendkim at
# the higher concurrency must reach it for each algorithm.
#
# Environment:
#   PORTERO=path     portero binary (default build/portero)
#   MILTERGEN=path   miltergen binary (default: built into build/bench)
#   NULLMILTER=path  nullmilter binary (default: built into build/bench)
#   OPENDKIM=path    OpenDKIM milter (default /usr/sbin/opendkim)
#   DKIM_MSGS=N      messages per run (default 3000)
#   DKIM_CONC=N      the loaded concurrency (default 8)
#   DKIM_BODY=N      body bytes (default 4074, see above)
#   DKIM_REPEAT=N    runs per row, the best msgs/s kept (default 1)
#   DKIM_SPEED=0     skip openssl speed (~12 s)
#   DKIM_TARGET=R    acceptance ratio portero/opendkim (default: none)
#   CC               C compiler (default cc)
# Exit status 1 if a check fails, 2 if the bench could not run.
# Raw output: build/bench/raw/dkim-*.  Only loopback is used.
#
# Usage: tests/bench/dkim.sh          (about 1 minute on 2 cores)

set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build/bench
raw=$build/raw
python=/usr/bin/python3
e2e=$root/tests/e2e

portero=${PORTERO:-$root/build/portero}
case $portero in
/*) ;;
*) portero=$PWD/$portero ;;
esac
opendkim=${OPENDKIM:-/usr/sbin/opendkim}
n=${DKIM_MSGS:-3000}
conc_hi=${DKIM_CONC:-8}
body=${DKIM_BODY:-4074}
repeat=${DKIM_REPEAT:-1}
target=${DKIM_TARGET:-}
cc=${CC:-cc}
cflags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wformat=2 -Wshadow
    -Wstrict-prototypes -Wmissing-prototypes -Wvla -O2"

tmp=
pids=
stopping=
rows=()
checks=()
failed=0
declare -A rate		# "milter alg conc" -> msgs/s

BENCH_TAG=dkim
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# ---- build ----
mkdir -p "$build" "$raw"
rm -f "$raw"/dkim-*
miltergen=$(bench_tool miltergen -lpthread)
nullmilter=$(bench_tool nullmilter -lmilter -lpthread)
have_portero=1
[ -x "$portero" ] || { log "dkim: no portero at $portero: its rows are skipped"; have_portero=0; }
have_opendkim=1
[ -x "$opendkim" ] || { log "dkim: no $opendkim: its rows are skipped"; have_opendkim=0; }
have_mt=1
command -v miltertest >/dev/null 2>&1 || have_mt=0
"$python" -c 'import dkim, nacl, dnslib' 2>/dev/null || have_mt=0

tmp=$(mktemp -d /tmp/portero-dkim.XXXXXX)
chmod 700 "$tmp"
start=$(date +%s)

# ---- keys, and the DNS test server for the verification ----
openssl genrsa -out "$tmp/rsa.pem" 2048 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$tmp/ed25519.pem" 2>/dev/null
chmod 600 "$tmp/rsa.pem" "$tmp/ed25519.pem"
{
	echo "brsa._domainkey.example.test TXT v=DKIM1; k=rsa; p=$(openssl pkey \
	    -in "$tmp/rsa.pem" -pubout -outform DER 2>/dev/null | base64 -w0)"
	echo "bed._domainkey.example.test TXT v=DKIM1; k=ed25519; p=$(openssl \
	    pkey -in "$tmp/ed25519.pem" -pubout -outform DER 2>/dev/null |
	    tail -c 32 | base64 -w0)"
} >"$tmp/zone"
dns_port=
if [ "$have_mt" = 1 ]; then
	"$python" "$e2e/dnsd.py" --zone "$tmp/zone" --port-file "$tmp/dns.port" \
	    --query-log "$tmp/dns.log" 2>"$tmp/dnsd.err" &
	pids="$pids $!"
	for _ in $(seq 1 100); do
		[ -s "$tmp/dns.port" ] && break
		sleep 0.1
	done
	dns_port=$(cat "$tmp/dns.port" 2>/dev/null || true)
	[ -n "$dns_port" ] || { log "dkim: dnsd.py did not start"; have_mt=0; }
fi

# One message through a milter with miltertest, the signature headers
# it inserted written in front of the message, to $2.
cat >"$tmp/one.lua" <<'LUA'
-- globals from -D: sock, outfile
local conn = mt.connect(sock, 50, 0.1)
if conn == nil then error("cannot connect to " .. sock) end
mt.macro(conn, SMFIC_CONNECT, "j", "mx-bench.example.test",
    "{daemon_name}", "mx-bench.example.test", "{daemon_addr}", "127.0.0.1",
    "{daemon_port}", "25", "_", "mx.example.test [192.0.2.10]")
if mt.conninfo(conn, "mx.example.test", "192.0.2.10") ~= nil then
	error("conninfo") end
mt.macro(conn, SMFIC_MAIL, "i", "4BENCH0001", "{mail_addr}",
    "sender@example.test")
if mt.mailfrom(conn, "<sender@example.test>") ~= nil then error("mail") end
mt.macro(conn, SMFIC_RCPT, "i", "4BENCH0001", "{rcpt_addr}",
    "rcpt1@example.test")
if mt.rcptto(conn, "<rcpt1@example.test>") ~= nil then error("rcpt") end
local hdrs = {
	{ "Received", "from mx.example.test (mx.example.test [192.0.2.10])\n\tby mx-bench.example.test (Postfix) with ESMTP id 4BENCH0001\n\tfor <rcpt1@example.test>; Mon, 01 Jan 2024 00:00:00 +0000" },
	{ "From", "Sender <sender@example.test>" },
	{ "To", "<rcpt1@example.test>" },
	{ "Subject", "Benchmark message 4BENCH0001" },
	{ "Date", "Mon, 01 Jan 2024 00:00:00 +0000" },
	{ "Message-ID", "<4BENCH0001.0@example.test>" },
	{ "MIME-Version", "1.0" },
	{ "Content-Type", "text/plain; charset=utf-8" },
}
for _, h in ipairs(hdrs) do
	if mt.header(conn, h[1], h[2]) ~= nil then error("header") end
end
if mt.eoh(conn) ~= nil then error("eoh") end
local body = ""
for i = 0, 41 do
	body = body .. string.format("%05d Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt\r\n", i)
end
if mt.bodystring(conn, body) ~= nil then error("body") end
if mt.eom(conn) ~= nil then error("eom") end
local out = io.open(outfile, "w")
local n = 0
for i = 0, 7 do
	local v = mt.getheader(conn, "DKIM-Signature", i)
	if v ~= nil then
		v = string.gsub(v, "\r?\n", "\r\n")
		out:write("DKIM-Signature:" .. v .. "\r\n")
		n = n + 1
	end
end
for _, h in ipairs(hdrs) do
	out:write(h[1] .. ": " .. string.gsub(h[2], "\r?\n", "\r\n") .. "\r\n")
end
out:write("\r\n" .. body)
out:close()
print("signature headers " .. n)
mt.disconnect(conn)
LUA

# verify_one MILTER ALG SPEC: one message through SPEC, its signature
# checked by python3-dkim (key from the DNS test server)
verify_one() {
	local m=$1 alg=$2 spec=$3 f out rc=0
	if [ "$have_mt" = 0 ]; then
		check FAIL "$m $alg: no miltertest or python3-dkim/nacl/dnslib: signature not verified"
		return 0
	fi
	f=$raw/dkim-$m-$alg-one.eml
	out=$(miltertest -D "sock=$spec" -D "outfile=$f" -s "$tmp/one.lua" 2>&1) || rc=$?
	echo "$out" >"$raw/dkim-$m-$alg-one.txt"
	if [ "$rc" -ne 0 ] || [ ! -s "$f" ]; then
		check FAIL "$m $alg: miltertest failed: $(echo "$out" | tail -n 1)"
		return 0
	fi
	rc=0
	out=$("$python" "$e2e/dkimverify.py" --port "$dns_port" "$f" 2>&1) || rc=$?
	echo "$out" >>"$raw/dkim-$m-$alg-one.txt"
	if [ "$rc" = 0 ] && [ "$(grep -c '^sig .* result=pass' <<<"$out")" = 1 ]; then
		check PASS "$m $alg: a DKIM-Signature verified by python3-dkim ($(grep '^sig' <<<"$out" | sed -E 's/^sig 0 result=pass (d=[^ ]+ s=[^ ]+ a=[^ ]+ c=[^ ]+).*/\1/'))"
	else
		check FAIL "$m $alg: signature not verified: $(tr '\n' ' ' <<<"$out")"
	fi
}

# wait_sock PID PATH: the unix socket exists while PID lives
wait_sock() {
	local _i
	for _i in $(seq 1 100); do
		kill -0 "$1" 2>/dev/null || return 1
		[ -S "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# run LABEL-MILTER ALG SPEC CONC: best of $repeat runs -> rows
run() {
	local m=$1 alg=$2 spec=$3 c=$4 k out res best='' bestrate=-1 rep='' hdrs r
	for k in $(seq 1 "$repeat"); do
		out=$raw/dkim-$m-$alg-c$c-$k.txt
		"$miltergen" -s "$spec" -c "$c" -n "$n" -m full -b "$body" \
		    >"$out" 2>&1 || true
		res=$(grep '^result ' "$out" | tail -n 1 || true)
		[ -n "$res" ] || { log "dkim: $m $alg c=$c: no result:"; tail -n 5 "$out" >&2; continue; }
		r=$(field rate "$res")
		if awk -v a="$r" -v b="$bestrate" 'BEGIN { exit !(a > b) }'; then
			best=$res
			bestrate=$r
			rep=$(grep '^replies' "$out" | tail -n 1)
		fi
	done
	if [ -z "$best" ]; then
		rows+=("$m|$alg|$c|-|-|-|-|-|-")
		return 0
	fi
	# signature headers added per message (insert 'i' or add 'h')
	hdrs=$(awk -v n="$(field msgs "$best")" '{
	    for (i = 2; i <= NF; i++) { split($i, kv, "=");
		if (kv[1] == "i" || kv[1] == "h") s += kv[2] }
	    } END { printf "%.2f", s / n }' <<<"$rep")
	rate[$m $alg $c]=$(field rate "$best")
	rows+=("$m|$alg|$c|$(field msgs "$best")|$(field rate "$best")|$(field p50 "$best")|$(field p99 "$best")|$(field errors "$best")|$hdrs")
}

# ---- openssl speed: the crypto ceiling ----
rsa_speed=-
ed_speed=-
if [ "${DKIM_SPEED:-1}" != 0 ]; then
	log "dkim: openssl speed -seconds 3 rsa2048 ed25519"
	openssl speed -seconds 3 rsa2048 ed25519 >"$raw/dkim-openssl-speed.txt" 2>&1 || true
	rsa_speed=$(awk '/^rsa 2048 bits/ { print $(NF - 1) }' "$raw/dkim-openssl-speed.txt" | head -n 1)
	ed_speed=$(awk '/Ed25519/ && $NF ~ /^[0-9.]+$/ { print $(NF - 1) }' "$raw/dkim-openssl-speed.txt" | head -n 1)
	: "${rsa_speed:=-}" "${ed_speed:=-}"
fi

# ---- null milter ----
log "dkim: null milter"
"$nullmilter" -p "unix:$tmp/null.sock" -N -R 2>"$tmp/null.err" &
npid=$!
pids="$pids $npid"
if wait_sock "$npid" "$tmp/null.sock"; then
	run null - "unix:$tmp/null.sock" 1
	run null - "unix:$tmp/null.sock" "$conc_hi"
else
	log "dkim: nullmilter did not start"; cat "$tmp/null.err" >&2
fi
kill -TERM "$npid" 2>/dev/null || true
stopping="$stopping $npid"

# ---- portero ----
# portero_conf ALG KEYFILE SELECTOR
portero_bench() {
	local alg=$1 key=$2 sel=$3 a pid
	case $alg in rsa) a=rsa-sha256 ;; *) a=ed25519-sha256 ;; esac
	cat >"$tmp/portero-$alg.conf" <<EOF
milter = { socket = "unix:$tmp/portero-$alg.sock"; pidfile = "$tmp/portero-$alg.pid";
  user = ""; group = ""; shutdown_timeout = 1; };
log = { level = "warning"; stderr = true; };
networks = { internal = [ "192.0.2.0/24", "127.0.0.0/8" ]; };
dkim = { sign_for = "authenticated+internal";
  keys = ( { domain = "example.test"; selector = "$sel"; key = "$key"; algorithm = "$a"; } );
  canonicalization = "relaxed/relaxed"; oversign = [ "From" ]; };
EOF
	log "dkim: portero $alg"
	"$portero" -f -c "$tmp/portero-$alg.conf" >"$tmp/portero-$alg.log" 2>&1 &
	pid=$!
	pids="$pids $pid"
	if ! wait_sock "$pid" "$tmp/portero-$alg.sock"; then
		log "dkim: portero ($alg) did not start:"
		tail -n 20 "$tmp/portero-$alg.log" >&2
		check FAIL "portero $alg: did not start"
		return 0
	fi
	sleep 0.3
	verify_one portero "$alg" "unix:$tmp/portero-$alg.sock"
	run portero "$alg" "unix:$tmp/portero-$alg.sock" 1
	run portero "$alg" "unix:$tmp/portero-$alg.sock" "$conc_hi"
	kill -TERM "$pid" 2>/dev/null || true
	stopping="$stopping $pid"
	cp "$tmp/portero-$alg.log" "$raw/dkim-portero-$alg.stderr"
	if grep -v 'verdict=' "$tmp/portero-$alg.log" | grep -qiE 'dkim|error|sanitizer'; then
		log "dkim: portero ($alg) stderr, last lines:"
		grep -v 'verdict=' "$tmp/portero-$alg.log" |
		    grep -iE 'dkim|error|sanitizer' | tail -n 5 | sed 's/^/    /' >&2
	fi
	if grep -qE 'verdict=.* dkim=(error|unsigned)' "$tmp/portero-$alg.log"; then
		check FAIL "portero $alg: messages not signed: $(grep -E 'verdict=.* dkim=(error|unsigned)' \
		    "$tmp/portero-$alg.log" | sed -E 's/.* dkim=([^ ]+).*/dkim=\1/' | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
	fi
}
if [ "$have_portero" = 1 ]; then
	portero_bench rsa "$tmp/rsa.pem" brsa
	portero_bench ed25519 "$tmp/ed25519.pem" bed
fi

# ---- OpenDKIM ----
opendkim_bench() {
	local alg=$1 key=$2 sel=$3 a pid
	case $alg in rsa) a=rsa-sha256 ;; *) a=ed25519-sha256 ;; esac
	# RequireSafeKeys: OpenDKIM also refuses a key under a world-writable
	# directory (/tmp); Nameservers: it never asks in signing mode, but
	# nothing may go to the system resolver
	cat >"$tmp/opendkim-$alg.conf" <<EOF
Syslog no
Background no
AutoRestart no
Mode s
Socket local:$tmp/opendkim-$alg.sock
PidFile $tmp/opendkim-$alg.pid
UMask 007
Domain example.test
Selector $sel
KeyFile $key
SignatureAlgorithm $a
Canonicalization relaxed/relaxed
OversignHeaders From
InternalHosts 192.0.2.0/24, 127.0.0.1
RequireSafeKeys false
Nameservers 127.0.0.1
SoftwareHeader no
EOF
	log "dkim: opendkim $alg"
	"$opendkim" -f -x "$tmp/opendkim-$alg.conf" >"$tmp/opendkim-$alg.log" 2>&1 &
	pid=$!
	pids="$pids $pid"
	if ! wait_sock "$pid" "$tmp/opendkim-$alg.sock"; then
		log "dkim: opendkim ($alg) did not start:"
		tail -n 20 "$tmp/opendkim-$alg.log" >&2
		check FAIL "opendkim $alg: did not start"
		return 0
	fi
	verify_one opendkim "$alg" "unix:$tmp/opendkim-$alg.sock"
	run opendkim "$alg" "unix:$tmp/opendkim-$alg.sock" 1
	run opendkim "$alg" "unix:$tmp/opendkim-$alg.sock" "$conc_hi"
	kill -TERM "$pid" 2>/dev/null || true
	stopping="$stopping $pid"
}
if [ "$have_opendkim" = 1 ]; then
	opendkim_bench rsa "$tmp/rsa.pem" brsa
	opendkim_bench ed25519 "$tmp/ed25519.pem" bed
fi
wait_stopping

# ---- report ----
ratio() {	# ratio A B
	awk -v a="${1:--}" -v b="${2:--}" 'BEGIN {
	    if (a == "-" || b == "-" || a == "" || b == "" || b + 0 <= 0) print "-";
	    else printf "%.2f", a / b }'
}
echo
echo "DKIM signing at end of message (miltergen -m full, body $body bytes," \
    "$n messages per run, unix socket)"
ncpu=$(nproc)
printf '%-9s %-8s %4s %6s %9s %7s %7s %6s %8s %8s %8s %8s\n' milter alg conc \
    msgs msgs/s p50ms p99ms errors sigs/msg vs-odkim vs-null vs-ssl
for r in "${rows[@]}"; do
	IFS='|' read -r m alg c msgs rt p50 p99 err hdrs <<<"$r"
	vo=-
	[ "$m" = portero ] && vo=$(ratio "$rt" "${rate[opendkim $alg $c]:-}")
	vn=-
	[ "$m" != null ] && vn=$(ratio "$rt" "${rate[null - $c]:-}")
	# the crypto ceiling for this concurrency: one core per connection
	vs=-
	case $alg in
	rsa) vs=$(ratio "$rt" "$(awk -v s="$rsa_speed" -v c="$c" -v n="$ncpu" \
	    'BEGIN { if (s == "-") print "-"; else print s * (c < n ? c : n) }')") ;;
	ed25519) vs=$(ratio "$rt" "$(awk -v s="$ed_speed" -v c="$c" -v n="$ncpu" \
	    'BEGIN { if (s == "-") print "-"; else print s * (c < n ? c : n) }')") ;;
	esac
	printf '%-9s %-8s %4s %6s %9s %7s %7s %6s %8s %8s %8s %8s\n' "$m" "$alg" \
	    "$c" "$msgs" "$rt" "$p50" "$p99" "$err" "$hdrs" "$vo" "$vn" "$vs"
	if [ "$m" != null ]; then
		if [ "$hdrs" = 1.00 ] && [ "$err" = 0 ]; then
			check PASS "$m $alg c=$c: one signature header per message, no errors"
		else
			check FAIL "$m $alg c=$c: $hdrs signature headers per message, $err errors"
		fi
	fi
done
echo "crypto ceiling (openssl speed, one core): rsa2048 $rsa_speed sign/s," \
    "ed25519 $ed_speed sign/s; $(nproc) cores"
echo "sigs/msg: DKIM-Signature insert/add replies per message seen by" \
    "miltergen; vs-odkim: portero msgs/s / OpenDKIM msgs/s (same algorithm" \
    "and concurrency); vs-null: msgs/s / null milter msgs/s (same" \
    "concurrency); vs-ssl: msgs/s / (openssl sign/s x min(conc, cores))."
if [ -n "$target" ]; then
	for alg in rsa ed25519; do
		v=$(ratio "${rate[portero $alg $conc_hi]:-}" "${rate[opendkim $alg $conc_hi]:-}")
		if awk -v v="$v" -v t="$target" 'BEGIN { exit !(v != "-" && v >= t) }'; then
			check PASS "portero/opendkim $alg c=$conc_hi $v >= $target"
		else
			check FAIL "portero/opendkim $alg c=$conc_hi $v (want >= $target)"
		fi
	done
fi
for c in "${checks[@]}"; do
	echo "$c"
done
echo "total $(($(date +%s) - start)) s; raw output in $raw/dkim-*"
exit "$failed"
