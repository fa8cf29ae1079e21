#!/usr/bin/env bash
# t_10_verdicts.sh -- Postfix -> portero -> sink: clean mail is delivered
# unchanged; blacklisted client, sender and recipient get the SPEC replies;
# a HELO claiming our name is refused; whitelisted recipients and
# authenticated clients pass; log lines carry the long queue id and the
# decision id of the reply.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/portero.sh"
e2e_need_root
e2e_need postfix swaks
e2e_init
e2e_sink_start || e2e_bail "sink"
pt_conf '
networks = { internal = [ "10.99.0.0/16", "127.0.0.0/8" ]; };
whitelist = { recipients = [ "postmaster@corp.example" ]; };
blacklist = { clients = [ "203.0.113.0/24" ]; senders = [ "spammer@example.net" ];
  recipients = [ "nobody@corp.example" ]; };
helo = { ours_action = "reject"; };
sender = { };
thresholds = { reject = 10.0; };
metrics = { listen = "127.0.0.1:'"$(e2e_free_port)"'"; };'
mport=$(sed -nE 's/.*listen = "127\.0\.0\.1:([0-9]+)".*/\1/p' "$E2E_DIR/portero.conf")
pt_start || e2e_bail "portero did not start"
e2e_postfix_start "unix:$PT_SOCK" || e2e_bail "postfix did not start"
export E2E_QUIET=1

# 1. clean message: delivered, no header added or removed by portero
cat >"$E2E_DIR/clean.eml" <<'MSG'
From: Alice <alice@example.org>
To: Bob <bob@corp.example>
Subject: quarterly report
Date: Wed, 25 Nov 2026 10:00:00 +0000
Message-ID: <clean-1@example.org>
X-Custom: stays

Hello Bob,
the report is attached in spirit.
MSG
e2e_send $(pt_client 192.0.2.10 mx.example.org mx.example.org) \
    --from alice@example.org --to bob@corp.example --data "$E2E_DIR/clean.eml"
e2e_like "clean message queued" "$(e2e_reply_to DOT)" '^250 .*queued as'
qid=$(e2e_last_qid)
e2e_like "queue id is a long one" "$qid" '^[0-9A-Za-z]{12,}$'
if e2e_wait_delivered 1; then
    e2e_ok "clean message delivered"
    got=$(grep -v '^Received:' "$(e2e_sink_msg 1)" | sed '/^\s/d')
    want=$(cat "$E2E_DIR/clean.eml")
    e2e_is "delivered message unchanged (but Postfix's Received)" "$got" "$want"
else
    e2e_fail "clean message delivered"
    e2e_fail "delivered message unchanged"
fi
pt_wait_log "^portero\[[0-9]+\]: $qid: conn=[0-9a-f]{8} id=[0-9a-f]{8}\.1 client=mx\.example\.org\[192\.0\.2\.10\] helo=<mx\.example\.org> from=<alice@example\.org> rcpt=<bob@corp\.example> verdict=accept"
e2e_check "accept logged with the long queue id" grep -qE "$qid: conn=.* verdict=accept reason=\"\" score=0\.0 dir=in" "$(pt_log)"

# 2. blacklisted client: refused at RCPT with the zone-style reply
e2e_send $(pt_client 203.0.113.7 mx.spam.example mx.spam.example) \
    --from a@example.org --to bob@corp.example
r=$(e2e_reply_to RCPT)
e2e_like "blacklisted client refused at RCPT" "$r" \
    '^554 5\.7\.1 (<bob@corp\.example>: Recipient address rejected: )?Service unavailable; client \[203\.0\.113\.7\] blocked by local policy \[id=[0-9a-f]{8}\.1\]$'
id=$(sed -nE 's/.*\[id=([0-9a-f.]+)\].*/\1/p' <<<"$r")
pt_wait_log "id=$id .*verdict=reject"
e2e_check "refusal logged with the reply's decision id" \
    grep -qE "NOQUEUE: conn=[0-9a-f]{8} id=$id client=mx\.spam\.example\[203\.0\.113\.7\] .*rcpt=<bob@corp\.example> verdict=reject code=554 dsn=5\.7\.1 by=blacklist" "$(pt_log)"

# 3. whitelisted recipient from the same client is accepted
e2e_send $(pt_client 203.0.113.7 mx.spam.example mx.spam.example) \
    --from a@example.org --to postmaster@corp.example
e2e_like "postmaster accepted from a blacklisted client" "$(e2e_reply_to DOT)" '^250 '

# 4. blacklisted sender
e2e_send $(pt_client 192.0.2.11 mx.example.net mx.example.net) \
    --from spammer@example.net --to bob@corp.example
e2e_like "blacklisted sender refused" "$(e2e_reply_to RCPT)" \
    '^550 5\.7\.1 .*<spammer@example\.net>: Sender address rejected: Access denied \[id=[0-9a-f]{8}\.1\]$'

# 5. blacklisted recipient among good ones: only the good one is delivered
before=$(e2e_sink_count)
e2e_send $(pt_client 192.0.2.12 mx.example.net mx.example.net) \
    --from a@example.org --to nobody@corp.example,carol@corp.example
e2e_check "blacklisted recipient refused" grep -qE \
    '^<\*\* +550 5\.7\.1 .*<nobody@corp\.example>: Recipient address rejected: Access denied' "$E2E_DIR/swaks.last"
e2e_like "message for the other recipient queued" "$(e2e_reply_to DOT)" '^250 '
if e2e_wait_delivered $((before + 1)); then
    e2e_check "delivered to the good recipient only" grep -qx 'RCPT TO:<carol@corp.example>' "$(e2e_sink_env)"
    e2e_check "not to the refused one" bash -c "! grep -q nobody '$(e2e_sink_env)'"
else
    e2e_fail "delivered to the good recipient only"
fi

# 6. HELO claiming our own name ($myhostname, macro j)
e2e_send $(pt_client 192.0.2.13 "" gw.portero.test) \
    --from a@example.org --to bob@corp.example
e2e_like "HELO claiming our name refused" "$(e2e_reply_to RCPT)" \
    '^550 5\.7\.1 .*Helo command rejected: Host claims to be us \[id='
pt_wait_log 'reason="helo:ours=5\.0"'
e2e_check "HELO refusal logged with its reason" grep -qE 'helo=<gw\.portero\.test> .*verdict=reject code=550 .*by=helo reason="helo:ours=5\.0"' "$(pt_log)"

# 7. an authenticated client from a blacklisted address is outbound
e2e_send $(pt_client 203.0.113.8 laptop.example laptop.example alice) \
    --from alice@corp.example --to friend@example.org
e2e_like "authenticated client accepted" "$(e2e_reply_to DOT)" '^250 '
pt_wait_log 'from=<alice@corp\.example> .*verdict=accept .*dir=out'
e2e_check "authenticated mail logged as outbound" grep -qE 'from=<alice@corp\.example> .*verdict=accept reason="" score=0\.0 dir=out' "$(pt_log)"

# 8. local submission through sendmail(1) passes the milter too
printf 'Subject: local\n\nlocal body\n' | e2e_sendmail -f root@gw.portero.test local@corp.example
pt_wait_log 'from=<root@gw\.portero\.test> .*verdict=accept .*dir=out' 20
e2e_check "sendmail submission seen by portero (non_smtpd_milters)" \
    grep -qE 'from=<root@gw\.portero\.test> .*verdict=accept .*dir=out' "$(pt_log)"

# 9. metrics over HTTP count what happened
m=$(curl -s "http://127.0.0.1:$mport/metrics")
e2e_like "metrics: refusals by module" "$m" 'portero_refusals_total\{module="blacklist"\} 3'
e2e_like "metrics: HELO refusal counted" "$m" 'portero_refusals_total\{module="helo"\} 1'
e2e_like "metrics: messages by verdict" "$m" 'portero_messages_total\{verdict="reject"\} 4'
acc=$(sed -nE 's/^portero_messages_total\{verdict="accept"\} ([0-9]+)$/\1/p' <<<"$m")
e2e_like "metrics: accepted messages counted" "${acc:-0}" '^[5-9]$'
e2e_like "metrics: per-stage latency histogram" "$m" 'portero_stage_seconds_count\{stage="rcpt"\} [1-9]'
e2e_is "metrics: other paths are 404" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/")" 404

e2e_postfix_stop
pt_stop
pt_check_clean "no sanitizer report"
e2e_done
