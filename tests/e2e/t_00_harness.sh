#!/bin/bash
# Self-test of the e2e harness (no milter needed): sink, DNS test server,
# private Postfix, XCLIENT, delivery, maillog, and "milter down => tempfail".
# Output is TAP. Exit 0 if all ok, 1 otherwise.

# shellcheck disable=SC2046,SC2119  # $(e2e_xclient_args) splits on purpose
. "$(dirname "$0")/lib.sh"

e2e_need_root
e2e_need swaks
[ -x "$E2E_PY" ] || e2e_skip_all "missing $E2E_PY"
"$E2E_PY" -c 'import dnslib' 2>/dev/null || e2e_skip_all "python3-dnslib missing"
e2e_init

# ---------------------------------------------------------------- helpers
e2e_check "sink started" e2e_sink_start
e2e_like "SINK_PORT is a port" "$SINK_PORT" '^[0-9]+$'

ZONE=$E2E_DIR/zone.txt
cat >"$ZONE" <<'EOF'
# name TYPE value
host.example.test        A     192.0.2.10
host.example.test        AAAA  2001:db8::10
mx.example.test          A     203.0.113.7
7.113.0.203.in-addr.arpa PTR   mx.example.test
example.test             MX    10 mx.example.test
example.test             TXT   v=spf1 ip4:203.0.113.0/24 -all
alias.example.test       CNAME host.example.test
broken.example.test      SERVFAIL
slow.example.test        TIMEOUT
*.dnsbl.test             A     127.0.0.2
EOF
e2e_check "dns server started" e2e_dns_start "$ZONE"

out=$(e2e_dns_query host.example.test A)
e2e_like "dns: A record from the zone file" "$out" '^host\.example\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.10$'
e2e_like "dns: status NOERROR" "$out" '^status: NOERROR$'
out=$(e2e_dns_query HOST.Example.TEST AAAA tcp)
e2e_like "dns: AAAA over TCP, case-insensitive" "$out" 'IN[[:space:]]+AAAA[[:space:]]+2001:db8::10$'
out=$(e2e_dns_query nosuch.example.test A)
e2e_like "dns: NXDOMAIN for unknown names" "$out" '^status: NXDOMAIN$'
out=$(e2e_dns_query host.example.test TXT)
e2e_is "dns: NODATA for a known name, other type" "$out" "status: NOERROR"
out=$(e2e_dns_query 7.113.0.203.in-addr.arpa PTR)
e2e_like "dns: PTR" "$out" 'PTR[[:space:]]+mx\.example\.test\.$'
out=$(e2e_dns_query alias.example.test A)
e2e_like "dns: CNAME followed" "$out" 'A[[:space:]]+192\.0\.2\.10$'
out=$(e2e_dns_query 7.113.0.203.dnsbl.test A)
e2e_like "dns: wildcard" "$out" 'A[[:space:]]+127\.0\.0\.2$'
out=$(e2e_dns_query broken.example.test A)
e2e_like "dns: forced SERVFAIL" "$out" '^status: SERVFAIL$'
out=$(e2e_dns_query slow.example.test A)
e2e_like "dns: forced TIMEOUT (no answer)" "$out" '^status: TIMEOUT$'
echo "added.example.test A 192.0.2.99" >>"$ZONE"
out=$(e2e_dns_query added.example.test A)
e2e_like "dns: zone file reloaded on change" "$out" 'A[[:space:]]+192\.0\.2\.99$'
if command -v dig >/dev/null 2>&1; then
    out=$(dig +short +norec +time=2 +tries=1 @127.0.0.1 -p "$DNS_PORT" mx.example.test A)
    e2e_is "dns: dig agrees" "$out" "203.0.113.7"
else
    e2e_skip "dns: dig agrees" "dig not installed"
fi
e2e_grep "dns: queries logged" '^host\.example\.test AAAA tcp$' "$DNS_QUERY_LOG"

# ---------------------------------------------------------------- postfix, no milter
e2e_check "postfix started without a milter" e2e_postfix_start ""
e2e_is "smtpd_milters is empty" "$(e2e_postconf -h smtpd_milters)" ""
e2e_check "master process running" e2e_alive "$E2E_PF_MASTER"
if command -v ss >/dev/null 2>&1; then
    listen=$(ss -H -ltnup 2>/dev/null | grep -E "pid=($(e2e_postfix_pids | paste -sd'|')),")
    e2e_like "postfix listens on 127.0.0.1:$SMTP_PORT" "$listen" "127\.0\.0\.1:$SMTP_PORT "
    bad=$(printf '%s\n' "$listen" | awk 'NF && $5 !~ /^127\./')
    e2e_is "postfix listens on nothing but 127.0.0.1" "$bad" ""
else
    e2e_skip "postfix listens on 127.0.0.1:$SMTP_PORT" "ss not installed"
fi

tag="harness-$$-$RANDOM"
e2e_send $(e2e_xclient_args 203.0.113.7 mx.example.test mx.example.test) \
    --from sender@example.test --to rcpt@example.org \
    --header "Subject: $tag" --header "X-E2E-Tag: $tag"
rc=$?
e2e_is "swaks exit code 0" "$rc" 0
e2e_like "XCLIENT accepted" "$(e2e_reply_to XCLIENT)" '^220 '
e2e_like "RCPT accepted" "$(e2e_reply_to RCPT)" '^250 '
e2e_like "250 queued" "$(e2e_last_reply)" '^250 2\.0\.0 Ok: queued as [0-9A-Za-z]+$'
qid=$(e2e_last_qid)
e2e_like "long queue id ($qid)" "$qid" '^[0-9A-Za-z]{10,}$'

e2e_check "delivered to the sink" e2e_wait_delivered 1 15
e2e_is "exactly one message in the sink" "$(e2e_sink_count)" 1
env=$(e2e_sink_env 1)
e2e_grep "envelope: MAIL FROM" '^MAIL FROM:<sender@example\.test>( |$)' "$env"
e2e_grep "envelope: RCPT TO" '^RCPT TO:<rcpt@example\.org>$' "$env"
e2e_is "envelope: one recipient" "$(grep -c '^RCPT TO:' "$env")" 1
e2e_grep "message: our header arrived" "^X-E2E-Tag: $tag$" "$(e2e_sink_msg 1)"
e2e_grep "message: Postfix added Received (XCLIENT client)" \
    '^Received: from mx\.example\.test \(mx\.example\.test \[203\.0\.113\.7\]\)' "$(e2e_sink_msg 1)"
e2e_grep "message: raw copy has CRLF" $'\r$' "$(e2e_sink_raw 1)"

e2e_check "maillog: status=sent logged" e2e_wait_log "$qid: to=<rcpt@example\.org>.*status=sent"
e2e_grep "maillog: long queue id with XCLIENT client" \
    "postfix-e2e/smtpd\[[0-9]+\]: $qid: client=mx\.example\.test\[203\.0\.113\.7\]" "$(e2e_maillog)"
e2e_is "e2e_log_qid finds the id" "$(e2e_log_qid "client=mx\.example\.test\[203\.0\.113\.7\]")" "$qid"
e2e_like "e2e_log_for lists its lines" "$(e2e_log_for "$qid")" 'removed'
e2e_nogrep "maillog: no warnings or errors" '(warning|error|fatal|panic):' "$(e2e_maillog)"
e2e_is "smtpd listens only on 127.0.0.1" "$(e2e_postconf -h inet_interfaces)" 127.0.0.1

# XCLIENT variants used by later tests: SASL login and IPv6 clients
e2e_send $(e2e_xclient_args IPV6:2001:db8::7 mx6.example.test mx6.example.test alice) \
    --from a6@example.test --to r6@example.org >/dev/null
qid6=$(e2e_last_qid)
e2e_like "XCLIENT IPv6 + LOGIN: queued" "$qid6" '^[0-9A-Za-z]{10,}$'
e2e_check "maillog: IPv6 client and SASL login" \
    e2e_wait_log "$qid6: client=mx6\.example\.test\[2001:db8::7\], sasl_method=XCLIENT, sasl_username=alice"
e2e_check "second message delivered" e2e_wait_delivered 2 15
e2e_is "queue empty" "$(e2e_queue_count)" 0
e2e_is "hold queue empty" "$(e2e_hold_count)" 0

# sendmail submission (goes through non_smtpd_milters later)
printf 'Subject: via sendmail\n\nhello\n' |
    e2e_sendmail -f local@example.test dest@example.org
e2e_check "sendmail submission delivered" e2e_wait_delivered 3 15
e2e_grep "sendmail envelope" '^RCPT TO:<dest@example\.org>$' "$(e2e_sink_env 3)"

# ---------------------------------------------------------------- milter down
e2e_check "postfix stopped" e2e_postfix_stop
e2e_is "no postfix processes left" "$(e2e_postfix_pids)" ""
before=$(e2e_sink_count)
e2e_check "postfix started with an unreachable milter" \
    e2e_postfix_start "unix:/nonexistent.sock"
e2e_is "milter_default_action = tempfail" "$(e2e_postconf -h milter_default_action)" tempfail
E2E_QUIET=1 e2e_send $(e2e_xclient_args 203.0.113.7 mx.example.test mx.example.test) \
    --from sender@example.test --to rcpt@example.org
rc=$?
e2e_like "milter down: swaks fails (rc=$rc)" "$rc" '^[1-9][0-9]*$'
reply=$(e2e_last_reply)
e2e_like "milter down: 4xx reply ($reply)" "$reply" '^4[0-9][0-9] '
e2e_check "milter down: maillog shows the milter failure" \
    e2e_wait_log 'warning: connect to Milter service unix:/nonexistent\.sock'
e2e_nogrep "milter down: nothing queued" 'queued as' "$E2E_LAST_TRANSCRIPT"
sleep 1
e2e_is "milter down: nothing delivered" "$(e2e_sink_count)" "$before"
e2e_is "milter down: queue empty" "$(e2e_queue_count)" 0

# reload to no milter: accepted again (e2e_postfix_reload works)
e2e_check "reload without milter" e2e_postfix_reload "smtpd_milters ="
E2E_QUIET=1 e2e_send --from sender@example.test --to rcpt@example.org
e2e_like "after reload: queued" "$(e2e_last_reply)" '^250 .*queued as'
e2e_check "after reload: delivered" e2e_wait_delivered $((before + 1)) 15

e2e_done
