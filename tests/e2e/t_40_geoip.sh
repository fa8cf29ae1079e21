#!/usr/bin/env bash
# t_40_geoip.sh -- Postfix -> portero with a generated GeoIP database: a
# client from a scored country (RO) is refused at RCPT by the score
# threshold and logged with country=RO and geoip:RO=6.0; clients from other
# countries (DE, US over IPv6) pass and are logged with their country; an
# authenticated client from RO passes (logged, not scored); then the
# database file is replaced the way geoipupdate does it (new file renamed
# over the old) and, without a reload, the next client from the moved
# network is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/portero.sh"
e2e_need_root
e2e_need postfix swaks perl
e2e_init
MKDB=$E2E_LIB_DIR/../data/geoip/make-mmdb.pl
DB=$E2E_DIR/GeoIP/GeoLite2-Country.mmdb
mkdir -p "$E2E_DIR/GeoIP" && chmod 755 "$E2E_DIR/GeoIP"
e2e_check "test database written" perl "$MKDB" "$DB"
e2e_sink_start || e2e_bail "sink"
pt_conf '
geoip = { database = "'"$DB"'"; scores = { RO = 6.0; }; };
thresholds = { reject = 5.0; };'
pt_start || e2e_bail "portero did not start"
e2e_at_exit '[ $E2E_FAILED -gt 0 ] && sed "s/^/# /" "$(pt_log)"'
e2e_postfix_start "unix:$PT_SOCK" || e2e_bail "postfix did not start"
export E2E_QUIET=1

# 1. a client in RO: 6.0 points at connect, over thresholds.reject
e2e_send $(pt_client 203.0.113.7 mx.example.ro mx.example.ro) \
    --from a@example.ro --to bob@corp.example
r=$(e2e_reply_to RCPT)
e2e_like "client in RO refused at RCPT" "$r" \
    '^550 5\.7\.1 (<bob@corp\.example>: Recipient address rejected: )?Message rejected as spam \[id=[0-9a-f]{8}\.1\]$'
id=$(sed -nE 's/.*\[id=([0-9a-f.]+)\].*/\1/p' <<<"$r")
pt_wait_log "id=$id .*verdict=reject"
e2e_check "refusal logged with country=RO and geoip:RO=6.0" grep -qE \
    "NOQUEUE: conn=[0-9a-f]{8} id=$id client=mx\.example\.ro\[203\.0\.113\.7\] country=RO helo=<mx\.example\.ro> .*verdict=reject code=550 dsn=5\.7\.1 by=policy reason=\"geoip:RO=6\.0\" score=6\.0" \
    "$(pt_log)"
e2e_is "nothing delivered" "$(e2e_sink_count)" 0

# 2. a client in DE: accepted, its country logged
e2e_send $(pt_client 192.0.2.10 mx.example.de mx.example.de) \
    --from a@example.de --to bob@corp.example
e2e_like "client in DE accepted" "$(e2e_reply_to DOT)" '^250 .*queued as'
qid=$(e2e_last_qid)
pt_wait_log "$qid: .*verdict=accept"
e2e_check "accept logged with country=DE" grep -qE \
    "$qid: conn=[0-9a-f]{8} id=[0-9a-f]{8}\.1 client=mx\.example\.de\[192\.0\.2\.10\] country=DE helo=<mx\.example\.de> .*verdict=accept reason=\"\" score=0\.0 dir=in" \
    "$(pt_log)"
e2e_check "delivered" e2e_wait_delivered 1

# 3. IPv6 client in US
e2e_send $(pt_client IPV6:2001:db8::7 mx6.example.us mx6.example.us) \
    --from a@example.us --to bob@corp.example
e2e_like "IPv6 client accepted" "$(e2e_reply_to DOT)" '^250 '
pt_wait_log 'client=mx6\.example\.us\[2001:db8::7\] country=US .*verdict=accept'
e2e_check "IPv6 client logged with country=US" grep -qE \
    'client=mx6\.example\.us\[2001:db8::7\] country=US .*verdict=accept' "$(pt_log)"

# 4. an authenticated client in RO is outbound: country logged, no points
e2e_send $(pt_client 203.0.113.8 laptop.example laptop.example alice) \
    --from alice@corp.example --to friend@example.org
e2e_like "authenticated client in RO accepted" "$(e2e_reply_to DOT)" '^250 '
pt_wait_log 'from=<alice@corp\.example> .*verdict=accept'
e2e_check "logged with country=RO, no points, dir=out" grep -qE \
    'client=laptop\.example\[203\.0\.113\.8\] country=RO .*from=<alice@corp\.example> .*verdict=accept reason="" score=0\.0 dir=out' \
    "$(pt_log)"

# 5. geoipupdate-style replacement: 192.0.2.0/24 is now in RO
e2e_check "new database renamed over the old" perl "$MKDB" "$DB" 192.0.2.0/24=RO
sleep 1.5
e2e_send $(pt_client 192.0.2.11 mx2.example.de mx2.example.de) \
    --from a@example.de --to bob@corp.example
r=$(e2e_reply_to RCPT)
e2e_like "client of the moved network refused without a reload" "$r" \
    '^550 5\.7\.1 (<bob@corp\.example>: Recipient address rejected: )?Message rejected as spam \[id='
pt_wait_log 'client=mx2\.example\.de\[192\.0\.2\.11\] .*verdict=reject'
e2e_check "logged with country=RO and geoip:RO=6.0" grep -qE \
    'client=mx2\.example\.de\[192\.0\.2\.11\] country=RO .*verdict=reject code=550 .*reason="geoip:RO=6\.0"' \
    "$(pt_log)"
e2e_check "reopening the file was logged" grep -qF \
    "geoip: $DB changed on disk, reopened (type GeoIP2-Country" "$(pt_log)"
e2e_nogrep "no configuration reload happened" 'configuration reloaded' "$(pt_log)"
e2e_nogrep "no check errors logged" 'geoip: check failed' "$(pt_log)"

e2e_postfix_stop
pt_stop
pt_check_clean "no sanitizer report"
e2e_done
