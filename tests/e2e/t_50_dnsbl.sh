#!/usr/bin/env bash
# t_50_dnsbl.sh -- DNSBL and DNSWL scoring through Postfix, with every DNS
# answer from the test server on loopback: a listed client is refused with
# the zone named; a light listing passes with its score logged; a DNSWL
# whitelisted client is never refused by score; IPv6 clients are looked up
# in nibble form; an error code (127.255.255.254) is not a listing and is
# logged; a silent zone is skipped within dns.timeout and mail flows.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/portero.sh"
e2e_need_root
e2e_need postfix swaks
e2e_init
e2e_sink_start || e2e_bail "sink"
cat >"$E2E_DIR/zone" <<'ZONE'
7.113.0.203.zen.example A 127.0.0.2
7.113.0.203.zen.example A 127.0.0.10
8.113.0.203.zen.example A 127.0.0.10
9.113.0.203.zen.example A 127.255.255.254
7.100.51.198.zen.example A 127.0.0.2
7.100.51.198.wl.example A 127.0.9.1
7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example A 127.0.0.2
*.silent.example TIMEOUT
20.113.0.203.bits.example A 127.0.0.6
2.0.0.127.zen.example A 127.0.0.2
2.0.0.127.wl.example A 127.0.0.2
1.0.0.127.wl.example A 127.0.0.2
ZONE
e2e_dns_start "$E2E_DIR/zone" || e2e_bail "dns server"
mport=$(e2e_free_port)
pt_conf "
dns = { mode = \"forward\"; forward = [ \"127.0.0.1@$DNS_PORT\" ]; timeout = \"2s\"; };
dnsbl = ( { zone = \"zen.example\"; score = 3.0;
            codes = ( { code = \"127.0.0.2\"; score = 20.0; }, { code = \"127.0.0.10\"; score = 2.0; } ); },
          { zone = \"silent.example\"; score = 5.0; },
          { zone = \"bits.example\"; score = 1.0;
            codes = ( { mask = 4; score = 2.5; }, { mask = 2; score = 1.5; }, { mask = 8; score = 9.0; } ); } );
dnswl = ( { zone = \"wl.example\"; score = -5.0; whitelist = true; } );
thresholds = { reject = 10.0; };
metrics = { listen = \"127.0.0.1:$mport\"; };"
pt_start || e2e_bail "portero did not start"
e2e_postfix_start "unix:$PT_SOCK" || e2e_bail "postfix did not start"
export E2E_QUIET=1
send() {
    e2e_send $(pt_client "$1" mx.example.org mx.example.org) \
        --from a@example.org --to bob@corp.example
}

send 203.0.113.7
e2e_like "listed client refused with the zone named" "$(e2e_reply_to RCPT)" \
    '^554 5\.7\.1 .*Service unavailable; client \[203\.0\.113\.7\] blocked using zen\.example \[id='
e2e_check "refusal logged with the zone's points" grep -qE \
    'client=mx\.example\.org\[203\.0\.113\.7\] .*verdict=reject code=554 .*reason="dnsbl:zen\.example=20\.0"' "$(pt_log)"

send 203.0.113.8
e2e_like "lightly listed client passes" "$(e2e_reply_to DOT)" '^250 '
pt_wait_log 'client=mx\.example\.org\[203\.0\.113\.8\] .*verdict=accept'
e2e_check "its score is in the log" grep -qE \
    'client=mx\.example\.org\[203\.0\.113\.8\] .*verdict=accept reason="dnsbl:zen\.example=2\.0" score=2\.0' "$(pt_log)"

send 203.0.113.20
e2e_like "bitmask zone: listed client passes on a light score" "$(e2e_reply_to DOT)" '^250 '
pt_wait_log 'client=mx\.example\.org\[203\.0\.113\.20\] .*verdict=accept'
e2e_check "bitmask zone: the best matching bit's score (127.0.0.6: 4 and 2, not 8)" grep -qE \
    'client=mx\.example\.org\[203\.0\.113\.20\] .*verdict=accept reason="dnsbl:bits\.example=2\.5" score=2\.5' "$(pt_log)"

send 198.51.100.7
e2e_like "DNSWL-whitelisted client is not refused by score" "$(e2e_reply_to DOT)" '^250 '
pt_wait_log 'client=mx\.example\.org\[198\.51\.100\.7\] .*verdict=accept'
e2e_check "both lists scored it" grep -qE \
    'client=mx\.example\.org\[198\.51\.100\.7\] .*reason="dnswl:wl\.example=-5\.0 dnsbl:zen\.example=20\.0" score=15\.0' "$(pt_log)"

send IPV6:2001:db8::7
e2e_like "IPv6 client looked up in nibble form and refused" "$(e2e_reply_to RCPT)" \
    '^554 5\.7\.1 .*client \[2001:db8::7\] blocked using zen\.example'
e2e_check "nibble query asked" grep -q \
    '^7\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.8\.b\.d\.0\.1\.0\.0\.2\.zen\.example' "$DNS_QUERY_LOG"

send 203.0.113.9
e2e_like "an error code is not a listing" "$(e2e_reply_to DOT)" '^250 '
e2e_check "the error code is logged loudly" grep -qE \
    'zen\.example: answer outside 127\.0\.0\.0/8 or an error code: not a listing \(is this resolver blocked' "$(pt_log)"

# the silent zone was asked for every client: each stage stayed within
# dns.timeout (2 s) and the zone was skipped
t0=$(date +%s%N)
send 192.0.2.44
t1=$(date +%s%N)
e2e_like "mail flows while a zone is silent" "$(e2e_reply_to DOT)" '^250 '
ms=$(((t1 - t0) / 1000000))
e2e_diag "session with a silent zone took $ms ms"
if [ "$ms" -lt 4500 ]; then e2e_ok "silent zone costs at most dns.timeout"; else e2e_fail "silent zone costs at most dns.timeout" "$ms ms"; fi
e2e_check "the silent zone's lookups are logged as skipped" grep -qE \
    'silent\.example: lookup timeout; skipped' "$(pt_log)"
m=$(curl -s "http://127.0.0.1:$mport/metrics")
e2e_like "metrics: DNS timeouts counted" "$m" 'portero_dns_queries_total\{result="timeout"\} [1-9]'
e2e_like "metrics: zone errors counted" "$m" 'portero_dnsl_errors_total\{zone="silent\.example"\} [1-9]'
e2e_like "metrics: error-code answers counted" "$m" 'portero_dnsl_errors_total\{zone="zen\.example"\} 1'

# portero-ctl test asks the same DNS and scores the same way
ctl=$(dirname "$PORTERO")/portero-ctl
out=$(printf 'Subject: t\n\nbody\n' | "$ctl" -c "$E2E_DIR/portero.conf" test \
    --client 203.0.113.8 --client-name mx.example.org --rcpt bob@corp.example 2>&1)
e2e_like "portero-ctl test shows the daemon's scores" "$out" \
    'verdict=accept reason="dnsbl:zen\.example=2\.0" score=2\.0'
out=$(printf 'Subject: t\n\nbody\n' | "$ctl" -c "$E2E_DIR/portero.conf" test \
    --client 203.0.113.7 --rcpt bob@corp.example 2>&1)
e2e_like "portero-ctl test refuses a listed client the same way" "$out" \
    'verdict=reject code=554 dsn=5\.7\.1 by=policy reason="dnsbl:zen\.example=20\.0"'

# zone self-tests at start: zen.example healthy; wl.example lists the
# 127.0.0.1 probe (a broken zone); silent.example does not answer
e2e_like "self-test: healthy zone" "$m" 'portero_dnsl_zone_healthy\{zone="zen\.example"\} 1'
e2e_like "self-test: zone listing everything is unhealthy" "$m" 'portero_dnsl_zone_healthy\{zone="wl\.example"\} 0'
e2e_like "self-test: silent zone is unhealthy" "$m" 'portero_dnsl_zone_healthy\{zone="silent\.example"\} 0'
e2e_check "self-test failure logged" grep -qE \
    'wl\.example: zone failed its self-test \(127\.0\.0\.2: ok, 127\.0\.0\.1: ok\)' "$(pt_log)"

e2e_postfix_stop
pt_stop
pt_check_clean "no sanitizer report"
e2e_done
