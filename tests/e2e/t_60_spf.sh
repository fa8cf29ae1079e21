#!/usr/bin/env bash
# t_60_spf.sh -- SPF through Postfix, every TXT/A/MX answer from the DNS
# test server: pass; fail refused with 550 5.7.23 naming the domain;
# softfail, neutral, none and permerror scored; temperror (a TXT query
# that never gets an answer) refused with 451 4.4.3 within dns.timeout,
# and the evaluation's time limit (4 x dns.timeout);
# include:, redirect=, exists: with %{i}, %{l}; the 10-lookup and the
# void-lookup limits; the HELO identity for the null sender; the
# Authentication-Results header in the delivered message; authenticated
# and internal clients not checked; portero-ctl test agreeing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/portero.sh"
e2e_need_root
e2e_need postfix swaks
e2e_init
e2e_sink_start || e2e_bail "sink"
{
cat <<'ZONE'
pass.example TXT v=spf1 ip4:203.0.113.0/24 -all
pass.example TXT google-site-verification=not-spf
fail.example TXT v=spf1 ip4:198.51.100.0/24 -all
soft.example TXT v=spf1 ~all
neutral.example TXT v=spf1 ?all
none.example A 192.0.2.1
syntax.example TXT v=spf1 ip4:203.0.113.0/33 -all
two.example TXT v=spf1 -all
two.example TXT v=spf1 +all
slow.example TIMEOUT TXT
inc.example TXT v=spf1 include:_spf.inc.example -all
_spf.inc.example TXT v=spf1 ip4:203.0.113.7 -all
redir.example TXT v=spf1 redirect=_spf.redir.example
_spf.redir.example TXT "v=spf1 ip4:203.0.113.7 " "-all"
exists.example TXT v=spf1 exists:%{ir}._ok.%{d} -all
7.113.0.203._ok.exists.example A 127.0.0.2
lp.example TXT v=spf1 exists:%{l}._users.%{o} -all
alice._users.lp.example A 127.0.0.2
mx.example TXT v=spf1 mx:mx.example/24 -all
mx.example MX 10 mx1.mx.example
mx1.mx.example A 203.0.113.200
void.example TXT v=spf1 a:nx1.void.example a:nx2.void.example a:nx3.void.example ip4:203.0.113.7 -all
mail.heloid.example TXT v=spf1 ip4:203.0.113.7 -all
ptrslow.example TXT v=spf1 ptr -all
*.ptrslow.example TIMEOUT
ZONE
# ten PTR names whose address lookups never get an answer: ptr skips
# them, but not past the evaluation's time limit
for i in $(seq 1 10); do
    echo "50.113.0.203.in-addr.arpa PTR n$i.ptrslow.example"
done
# eleven a: terms with addresses that do not match: the 11th is not asked
terms=""
for i in $(seq 1 11); do
    terms="$terms a:h$i.limit.example"
    echo "h$i.limit.example A 192.0.2.$i"
done
echo "limit.example TXT v=spf1$terms ip4:203.0.113.7 -all"
} >"$E2E_DIR/zone"
e2e_dns_start "$E2E_DIR/zone" || e2e_bail "dns server"
pt_conf "
dns = { mode = \"forward\"; forward = [ \"127.0.0.1@$DNS_PORT\" ]; timeout = \"2s\"; };
spf = { fail_action = \"reject\"; softfail_score = 2.5; neutral_score = 0.5;
        none_score = 0.5; permerror_score = 1.0; };
thresholds = { reject = 10.0; };"
pt_start || e2e_bail "portero did not start"
e2e_postfix_start "unix:$PT_SOCK" || e2e_bail "postfix did not start"
export E2E_QUIET=1

n_sent=0
# send IP FROM [HELO]: one message from client IP (XCLIENT)
send() {
    e2e_send $(pt_client "$1" mx.example.org "${3:-mx.example.org}") \
        --from "$2" --to bob@corp.example
}
# accepted NAME IP FROM RESULT REASON: delivered, logged with spf=RESULT
# and reason="REASON"; the delivered copy carries the header
accepted() {
    send "$2" "$3"
    e2e_like "$1: delivered" "$(e2e_reply_to DOT)" '^250 '
    n_sent=$((n_sent + 1))
    pt_wait_log "from=<$3> .*verdict=accept"
    e2e_check "$1: logged spf=$4" grep -qE \
        "client=mx\.example\.org\[$2\] .*from=<$3> .*verdict=accept reason=\"$5\" score=[0-9.]+ spf=$4 dir=in" "$(pt_log)"
    e2e_wait_delivered "$n_sent" 20
    e2e_grep "$1: Authentication-Results in the delivered message" \
        "^Authentication-Results: gw\.portero\.test; spf=$4 smtp\.mailfrom=$3\$" "$(e2e_sink_msg)"
}
# refused NAME IP FROM CODE-RE [HELO]: refused at RCPT with CODE-RE
refused() {
    send "$2" "$3" "$5"
    e2e_like "$1: refused" "$(e2e_reply_to RCPT)" "$4"
}

accepted "pass" 203.0.113.7 a@pass.example pass ''
e2e_is "pass: the header is added once" \
    "$(grep -c '^Authentication-Results:' "$(e2e_sink_msg)")" 1
# forged Authentication-Results claiming our authserv-id are removed;
# another host's stay
cat >"$E2E_DIR/forged.eml" <<'MSG'
Authentication-Results: gw.portero.test; spf=pass smtp.mailfrom=a@pass.example
Authentication-Results: other.example; dkim=pass header.d=example.org
Authentication-Results: GW.portero.test;
	dkim=pass header.d=forged.example
From: a@pass.example
To: bob@corp.example
Subject: forged results

body
MSG
e2e_send $(pt_client 203.0.113.7 mx.example.org mx.example.org) \
    --from a@pass.example --to bob@corp.example --data "$E2E_DIR/forged.eml"
e2e_like "forged: delivered" "$(e2e_reply_to DOT)" '^250 '
n_sent=$((n_sent + 1))
e2e_wait_delivered "$n_sent" 20
ar=$(grep -A1 '^Authentication-Results:' "$(e2e_sink_msg)")
e2e_is "forged: headers claiming our authserv-id removed, ours added, others kept" \
    "$(grep '^Authentication-Results:' "$(e2e_sink_msg)")" \
    "Authentication-Results: gw.portero.test; spf=pass smtp.mailfrom=a@pass.example
Authentication-Results: other.example; dkim=pass header.d=example.org"
e2e_check "forged: the folded forged header is gone" bash -c "! grep -q 'forged.example' '$(e2e_sink_msg)'"

e2e_like "pass: the header is on top, under Postfix's Received" \
    "$(sed -n '/^[^ \t]/p' "$(e2e_sink_msg)" | grep -v '^Received:' | head -n 1)" \
    '^Authentication-Results: '

refused "fail" 203.0.113.7 a@fail.example \
    '^550 5\.7\.23 SPF validation failed for fail\.example \[id='
pt_wait_log 'from=<a@fail\.example> .*verdict=reject'
e2e_check "fail: logged" grep -qE \
    'from=<a@fail\.example> rcpt=<bob@corp\.example> verdict=reject code=550 dsn=5\.7\.23 by=spf reason="" score=0\.0 spf=fail dir=in' "$(pt_log)"

accepted "softfail" 203.0.113.7 a@soft.example softfail 'spf:softfail=2\.5'
accepted "neutral" 203.0.113.7 a@neutral.example neutral 'spf:neutral=0\.5'
accepted "none" 203.0.113.7 a@none.example none 'spf:none=0\.5'
accepted "permerror: syntax (/33)" 203.0.113.7 a@syntax.example permerror 'spf:permerror=1\.0'
accepted "permerror: two records" 203.0.113.7 a@two.example permerror 'spf:permerror=1\.0'

t0=$(date +%s%N)
refused "temperror" 203.0.113.7 a@slow.example \
    '^451 4\.4\.3 Temporary SPF DNS failure, try again later \[id='
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
e2e_diag "session with a silent TXT took $ms ms"
if [ "$ms" -lt 4500 ]; then e2e_ok "temperror: within dns.timeout"; else e2e_fail "temperror: within dns.timeout" "$ms ms"; fi
pt_wait_log 'from=<a@slow\.example> .*verdict=tempfail'
e2e_check "temperror: logged" grep -qE \
    'from=<a@slow\.example> .*verdict=tempfail code=451 dsn=4\.4\.3 by=spf .*spf=temperror' "$(pt_log)"

t0=$(date +%s%N)
refused "time limit: temperror" 203.0.113.50 a@ptrslow.example \
    '^451 4\.4\.3 Temporary SPF DNS failure'
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
e2e_diag "ptr with ten silent names took $ms ms (limit: 4 x dns.timeout)"
if [ "$ms" -ge 7000 ] && [ "$ms" -lt 10500 ]; then e2e_ok "time limit: 4 x dns.timeout"; else e2e_fail "time limit: 4 x dns.timeout" "$ms ms"; fi
pt_wait_log 'spf: temperror for ptrslow\.example: evaluation took more than 8000 ms'
e2e_check "time limit: logged" grep -q \
    'spf: temperror for ptrslow\.example: evaluation took more than 8000 ms; on_error=tempfail' "$(pt_log)"

accepted "include: pass" 203.0.113.7 a@inc.example pass ''
refused "include: fail" 203.0.113.8 a@inc.example '^550 5\.7\.23 SPF validation failed for inc\.example'
accepted "redirect= (record in two strings)" 203.0.113.7 a@redir.example pass ''
refused "redirect=: fail" 203.0.113.8 a@redir.example '^550 5\.7\.23 '
accepted "exists: with %{ir} and %{d}" 203.0.113.7 a@exists.example pass ''
refused "exists: no record" 203.0.113.8 a@exists.example '^550 5\.7\.23 '
accepted "%{l} and %{o}" 203.0.113.9 alice@lp.example pass ''
refused "%{l}: other user" 203.0.113.9 bob@lp.example '^550 5\.7\.23 SPF validation failed for lp\.example'
e2e_check "%{l}: the expanded name was asked" grep -q '^bob\._users\.lp\.example A' "$DNS_QUERY_LOG"
accepted "mx/24" 203.0.113.77 a@mx.example pass ''
accepted "11 DNS terms: permerror" 203.0.113.7 a@limit.example permerror 'spf:permerror=1\.0'
e2e_check "11 DNS terms: the 11th is never asked" \
    bash -c "grep -q '^h10\.limit\.example A' '$DNS_QUERY_LOG' && ! grep -q '^h11\.limit\.example' '$DNS_QUERY_LOG'"
accepted "3 void lookups: permerror" 203.0.113.7 a@void.example permerror 'spf:permerror=1\.0'

# the null sender: the HELO identity (postmaster@HELO)
send 203.0.113.7 '<>' mail.heloid.example
e2e_like "HELO identity: delivered" "$(e2e_reply_to DOT)" '^250 '
n_sent=$((n_sent + 1))
pt_wait_log 'helo=<mail\.heloid\.example> from=<> .*verdict=accept'
e2e_check "HELO identity: logged spf=pass" grep -qE \
    'helo=<mail\.heloid\.example> from=<> .*verdict=accept reason="" score=0\.0 spf=pass' "$(pt_log)"
e2e_wait_delivered "$n_sent" 20
e2e_grep "HELO identity: Authentication-Results smtp.helo" \
    '^Authentication-Results: gw\.portero\.test; spf=pass smtp\.helo=mail\.heloid\.example$' "$(e2e_sink_msg)"
refused "HELO identity: fail" 203.0.113.8 '<>' \
    '^550 5\.7\.23 SPF validation failed for mail\.heloid\.example' \
    mail.heloid.example

# not checked: an authenticated client, an internal one
e2e_send $(pt_client 203.0.113.8 laptop.example laptop.example alice) \
    --from alice@fail.example --to friend@example.org
e2e_like "authenticated client: not checked" "$(e2e_reply_to DOT)" '^250 '
n_sent=$((n_sent + 1))
pt_wait_log 'from=<alice@fail\.example> .*verdict=accept'
e2e_check "authenticated client: no spf= in the log" grep -qE \
    'from=<alice@fail\.example> .*verdict=accept reason="" score=0\.0 dir=out' "$(pt_log)"
e2e_wait_delivered "$n_sent" 20
e2e_nogrep "authenticated client: no Authentication-Results" \
    '^Authentication-Results:' "$(e2e_sink_msg)"
send 127.0.0.1 postmaster@fail.example
e2e_like "internal client: not checked" "$(e2e_reply_to DOT)" '^250 '
pt_wait_log 'from=<postmaster@fail\.example> .*verdict=accept'
e2e_check "internal client: no spf= in the log" grep -qE \
    'from=<postmaster@fail\.example> .*verdict=accept reason="" score=0\.0 dir=out' "$(pt_log)"

# portero-ctl test asks the same DNS and gives the same results
ctl=$(dirname "$PORTERO")/portero-ctl
out=$(printf 'Subject: t\n\nbody\n' | "$ctl" -c "$E2E_DIR/portero.conf" test \
    --client 203.0.113.7 --helo mx.example.org --from a@soft.example --rcpt bob@corp.example 2>&1)
e2e_like "portero-ctl test: softfail" "$out" \
    'verdict=accept reason="spf:softfail=2\.5" score=2\.5 spf=softfail dir=in'
e2e_like "portero-ctl test: the header" "$out" \
    '\+Authentication-Results: localhost; spf=softfail smtp\.mailfrom=a@soft\.example'
out=$(printf 'Subject: t\n\nbody\n' | "$ctl" -c "$E2E_DIR/portero.conf" test \
    --client 203.0.113.7 --from a@fail.example --rcpt bob@corp.example 2>&1)
e2e_like "portero-ctl test: fail refused the same way" "$out" \
    'verdict=reject code=550 dsn=5\.7\.23 by=spf reason="" score=0\.0 spf=fail'
out=$(printf 'Subject: t\n\nbody\n' | "$ctl" -c "$E2E_DIR/portero.conf" test \
    --client ::ffff:203.0.113.7 --from a@pass.example --rcpt bob@corp.example 2>&1)
e2e_like "portero-ctl test: an IPv4-mapped client is evaluated as IPv4" "$out" \
    'verdict=accept .*spf=pass'

e2e_postfix_stop
pt_stop
pt_check_clean "no sanitizer report"
e2e_done
