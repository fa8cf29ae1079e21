#!/usr/bin/env bash
# tests/cli/run.sh BUILD_DIR - command-line behaviour of portero and
# portero-ctl: config checking (-t) with file:line:setting messages, -V,
# and `portero-ctl test` verdicts and output.  Prints TAP.
set -u
B=${1:-build}
cd "$(dirname "$0")/../.."
n=0 failed=0
T=$(mktemp -d /tmp/portero-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }

# expect_t NAME FILE RC PATTERN : portero -t exits RC and says PATTERN
expect_t() {
	local out rc
	out=$("$B/portero" -t -c "$2" 2>&1)
	rc=$?
	if [ "$rc" = "$3" ] && grep -qE -- "$4" <<<"$out"; then
		ok "$1"
	else
		nok "$1" "rc=$rc want $3" "output: $out" "want: $4"
	fi
}

D=tests/data/conf
expect_t "-t accepts a minimal config" $D/good-minimal.conf 0 "is valid"
# the sample names the portero user that the package creates (sysusers);
# on a test machine without it, check a copy that runs as nobody
sample=conf/portero.conf
if ! id portero >/dev/null 2>&1; then
	sed 's/^\( *user *= *\)"portero"/\1"nobody"/' conf/portero.conf >"$T/sample.conf"
	sample=$T/sample.conf
fi
expect_t "-t accepts the sample config" "$sample" 0 "is valid"
expect_t "-t accepts the dev config" conf/portero-dev.conf 0 "is valid"
expect_t "-t names an unknown setting" $D/bad-unknown.conf 1 \
    "bad-unknown.conf:4: setting 'milter.time_out': unknown setting"
expect_t "-t names a wrong type" $D/bad-type.conf 1 \
    "bad-type.conf:3: setting 'thresholds.reject': expected a number"
expect_t "-t names a bad CIDR" $D/bad-cidr.conf 1 \
    "bad-cidr.conf:2: setting 'networks.internal\[1\]': '10.0.0.0/40'"
expect_t "-t names a missing file" $D/bad-file.conf 1 \
    "bad-file.conf:2: setting 'content.header_checks': cannot read '/nonexistent/portero/header_checks'"
expect_t "-t reports a syntax error with its line" $D/bad-syntax.conf 1 \
    "bad-syntax.conf:3: syntax error"
expect_t "-t reports a missing config file" /nonexistent/portero.conf 1 \
    "/nonexistent/portero.conf: No such file"

if "$B/portero" -V | grep -qE '^portero [0-9]+\.[0-9]+'; then ok "-V prints the version"; else nok "-V prints the version"; fi
"$B/portero" -x >/dev/null 2>&1; rc=$?
if [ $rc = 2 ]; then ok "bad option exits 2"; else nok "bad option exits 2" "rc=$rc"; fi

"$B/portero" -d loud -t -c $D/good-minimal.conf >"$T/d.out" 2>&1; rc=$?
if [ $rc = 2 ] && grep -q "not one of debug" "$T/d.out"; then ok "-d with an unknown level is a usage error"; else nok "-d with an unknown level is a usage error" "rc=$rc" "$(cat "$T/d.out")"; fi

# make install lays out binaries, man pages, config and systemd files
if make -s install O="$B" DESTDIR="$T/inst" PREFIX=/usr >"$T/inst.out" 2>&1 &&
    [ -x "$T/inst/usr/sbin/portero" ] && [ -x "$T/inst/usr/sbin/portero-ctl" ] &&
    [ -f "$T/inst/usr/share/man/man8/portero.8" ] &&
    [ -f "$T/inst/usr/share/man/man5/portero.conf.5" ] &&
    [ -f "$T/inst/usr/share/man/man8/portero-ctl.8" ] &&
    [ -f "$T/inst/etc/portero/portero.conf" ] &&
    grep -q '^ExecStart=/usr/sbin/portero -f' "$T/inst/usr/lib/systemd/system/portero.service" &&
    [ -f "$T/inst/usr/lib/tmpfiles.d/portero.conf" ]; then
	ok "make install DESTDIR PREFIX"
else
	nok "make install DESTDIR PREFIX" "$(cat "$T/inst.out")" "$(find "$T/inst" -type f)"
fi
for m in man/portero.8 man/portero.conf.5 man/portero-ctl.8; do
	w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)
	if [ -z "$w" ]; then ok "$m renders without warnings"; else nok "$m renders without warnings" "$w"; fi
done

# make run's last step: the dev config from the checkout, in the foreground
if ! (exec 3<>/dev/tcp/127.0.0.1/8891) 2>/dev/null; then
	tests/run-dev.sh "$B/portero" >"$T/dev.out" 2>&1 &
	dev=$!
	for i in $(seq 1 100); do
		grep -q "serving on inet:8891@127.0.0.1" "$T/dev.out" && break
		sleep 0.1
	done
	if grep -q "serving on inet:8891@127.0.0.1" "$T/dev.out" &&
	    grep -q "smtpd_milters = inet:127.0.0.1:8891" "$T/dev.out" &&
	    grep -q "milter_default_action = tempfail" "$T/dev.out" &&
	    (exec 3<>/dev/tcp/127.0.0.1/8891) 2>/dev/null &&
	    curl -s http://127.0.0.1:9187/metrics | grep -q '^portero_config_generation 1$'; then
		ok "make run: dev config serves on 8891, prints the Postfix lines, metrics on 9187"
	else
		nok "make run: dev config serves on 8891, prints the Postfix lines, metrics on 9187" "$(cat "$T/dev.out")"
	fi
	kill -TERM $dev
	wait $dev
	if grep -q "portero\[$dev\]: stopped" "$T/dev.out"; then ok "make run: stops cleanly on SIGTERM"; else nok "make run: stops cleanly on SIGTERM" "$(tail -5 "$T/dev.out")"; fi
else
	echo "ok - make run # SKIP port 8891 is in use"
fi

# portero-ctl test
cat >"$T/t.conf" <<'CONF'
milter = { socket = "inet:8891@127.0.0.1"; user = ""; group = ""; pidfile = ""; };
networks = { internal = [ "10.0.0.0/8" ]; };
whitelist = { recipients = [ "postmaster@corp.example" ]; };
blacklist = { clients = [ "203.0.113.0/24" ]; senders = [ "spammer@example.net" ]; };
helo = { our_names = [ "gw.corp.example" ]; ours_action = "reject"; };
sender = { };
thresholds = { reject = 3.0; };
CONF
printf 'From: a@example.com\nTo: b@corp.example\nSubject: hi\n\nhello\n' >"$T/m.eml"

# expect_ctl NAME PATTERN ARGS... : output of portero-ctl test matches
expect_ctl() {
	local name=$1 pat=$2 out rc
	shift 2
	out=$("$B/portero-ctl" -c "$T/t.conf" test "$@" <"$T/m.eml" 2>&1)
	rc=$?
	if [ $rc = 0 ] && grep -qE -- "$pat" <<<"$out"; then
		ok "$name"
	else
		nok "$name" "rc=$rc" "output: $out" "want: $pat"
	fi
}
expect_ctl "ctl test: clean message accepted" \
    '^TEST: conn=[0-9a-f]{8} id=[0-9a-f]{8}\.1 client=mx\.example\.test\[192\.0\.2\.9\] helo=<mx\.example\.test> from=<a@example\.com> rcpt=<b@corp\.example> verdict=accept reason="" score=0\.0 dir=in size=[0-9]+ ms=[0-9]+$' \
    --client 192.0.2.9 --client-name mx.example.test --helo mx.example.test --from a@example.com --rcpt b@corp.example
expect_ctl "ctl test: blacklisted client refused at RCPT" \
    'rcpt=<b@corp\.example> verdict=reject code=554 dsn=5\.7\.1 by=blacklist' \
    --client 203.0.113.5 --helo mx.example.test --from a@example.com --rcpt b@corp.example
expect_ctl "ctl test: postmaster exempt" \
    'rcpt=<postmaster@corp\.example> verdict=accept' \
    --client 203.0.113.5 --helo mx.example.test --from a@example.com --rcpt b@corp.example --rcpt postmaster@corp.example
expect_ctl "ctl test: score over threshold" \
    'verdict=reject code=550 dsn=5\.7\.1 by=policy reason="helo:non_fqdn=1\.0 sender:non_fqdn=2\.0" score=3\.0' \
    --client 192.0.2.9 --helo localhost --from a@localhost --rcpt b@corp.example
expect_ctl "ctl test: authenticated is outbound" \
    'verdict=accept reason="" score=0\.0 dir=out' \
    --client 203.0.113.5 --helo laptop --auth alice --from alice@corp.example --rcpt x@example.org
expect_ctl "ctl test: queue id" '^Q1234567890ab: ' --queue-id Q1234567890ab --rcpt b@corp.example

out=$("$B/portero-ctl" test -c "$T/t.conf" --rcpt b@corp.example --queue-id QX123 <"$T/m.eml" 2>&1); rc=$?
if [ $rc = 0 ] && grep -q "^QX123: .*verdict=accept" <<<"$out"; then ok "ctl test takes -c after the command"; else nok "ctl test takes -c after the command" "rc=$rc $out"; fi
out=$("$B/portero-ctl" -c "$T/t.conf" test --client 203.0.113.9 --helo mx.example.test --from a@example.com --queue-id QZ123 --rcpt b@corp.example --rcpt postmaster@corp.example <"$T/m.eml" 2>&1); rc=$?
if grep -q "^NOQUEUE: .*rcpt=<b@corp.example> verdict=reject" <<<"$out" && grep -q "^QZ123: .*rcpt=<postmaster@corp.example> verdict=accept" <<<"$out"; then
	ok "ctl test: NOQUEUE before the first accepted recipient, like Postfix"
else
	nok "ctl test: NOQUEUE before the first accepted recipient, like Postfix" "$out"
fi
out=$("$B/portero-ctl" -c "$T/t.conf" test <"$T/m.eml" 2>&1); rc=$?
if [ $rc = 2 ] && grep -q usage <<<"$out"; then ok "ctl test without --rcpt is a usage error"; else nok "ctl test without --rcpt is a usage error" "rc=$rc"; fi
out=$("$B/portero-ctl" -c /nonexistent.conf test --rcpt a@b.example <"$T/m.eml" 2>&1); rc=$?
if [ $rc = 2 ] && grep -q "/nonexistent.conf" <<<"$out"; then ok "ctl test with a missing config fails clearly"; else nok "ctl test with a missing config fails clearly" "rc=$rc $out"; fi
# binary junk as a message: clean verdict
head -c 20000 /dev/urandom >"$T/junk.eml"
out=$("$B/portero-ctl" -c "$T/t.conf" test --rcpt b@corp.example <"$T/junk.eml" 2>&1); rc=$?
if [ $rc = 0 ] && grep -q "verdict=accept" <<<"$out"; then ok "ctl test on binary junk gives a verdict"; else nok "ctl test on binary junk gives a verdict" "rc=$rc $out"; fi

echo "1..$n"
exit $failed
