#!/usr/bin/env bash
# t_75_callout.sh -- recipient verification callouts through Postfix
# against a stand-in internal MTA (mta.py) on loopback, LMDB store (and a
# short pass on Redis): an unknown recipient gets 550 5.1.1 at RCPT, a
# known one is delivered; the answers are cached (no new connection;
# callout=accept-cached/reject-cached) and portero-ctl callout list/flush
# see them; 50 recipients of one transaction share one connection; the
# dictionary-attack brake (421 after brake_limit unknown recipients, no
# further callouts, also on the client's next connection); internal
# clients are not called out for; a target answering 4xx, a target down
# (remembered for down_interval) and a silent target give 450 4.1.1 and
# are not cached.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/portero.sh"
. "$(dirname "$0")/store.sh"
e2e_need_root
e2e_need postfix swaks curl
e2e_init
export E2E_QUIET=1
[ -x "$PORTERO" ] || e2e_bail "no portero binary at $PORTERO"
[ -x "$(dirname "$PORTERO")/portero-ctl" ] || e2e_bail "no portero-ctl next to $PORTERO"
[ -f "$E2E_LIB_DIR/mta.py" ] || e2e_bail "no tests/e2e/mta.py"

e2e_sink_start || e2e_bail "sink"
: >"$E2E_DIR/zone"
e2e_dns_start "$E2E_DIR/zone" || e2e_bail "dns server"
e2e_at_exit '[ "$E2E_FAILED" -gt 0 ] && [ -f "$(pt_log)" ] && { echo "# --- last lines of $(pt_log) ---"; tail -n 40 "$(pt_log)" | sed "s/^/#   /"; echo "# --- last lines of mta.log ---"; tail -n 30 "$E2E_DIR/mta.log" | sed "s/^/#   /"; }'

# the internal MTA knows bob, alice and u01..u47
{
    echo "# known recipients"
    echo "bob@corp.example"
    echo "Alice@Corp.Example"
    for i in $(seq -w 1 47); do echo "u$i@corp.example"; done
} >"$E2E_DIR/mta.users"
: >"$E2E_DIR/mta.log"
st_mta_start || e2e_bail "mta.py did not start"
mkdir -p "$E2E_DIR/lmdb" || e2e_bail "mkdir"

mport=$(e2e_free_port)
conf() {
    pt_conf "
dns = { mode = \"forward\"; forward = [ \"127.0.0.1@$DNS_PORT\" ]; timeout = \"2s\"; };
networks = { internal = [ \"127.0.0.0/8\", \"10.0.0.0/8\" ]; };
callout = { domains = ( { domain = \"corp.example\"; host = \"127.0.0.1\"; port = $ST_MTA_PORT; } );
            timeout = 2; max_time = 4; brake_limit = 5; brake_window = 3600;
            down_interval = 30; positive_ttl = \"31d\"; negative_ttl = \"3d\";
            on_error = \"tempfail\"; };
metrics = { listen = \"127.0.0.1:$mport\"; };
$1"
}
LMDB_STORE="store = { backend = \"lmdb\"; path = \"$E2E_DIR/lmdb/state.lmdb\"; max_size = \"64M\"; };"
conf "$LMDB_STORE"
pt_start || e2e_bail "portero did not start"
PT_SOCK=$E2E_DIR/portero.sock
e2e_postfix_start "unix:$PT_SOCK" || e2e_bail "postfix did not start"

n_sent=0
# send IP RCPTS [FROM]: one transaction from client IP to RCPTS (a,b,...)
send() {
    e2e_send $(pt_client "$1" mx.example.org mx.example.org) \
        --from "${3:-sender@example.org}" --to "$2"
}
re() { printf '%s' "$1" | sed 's/[.[\*^$+?(){}|/]/\\&/g'; }
# mark: remember where the stand-in's log is; since: its lines after that
mark() { MARK=$(wc -l <"$E2E_DIR/mta.log"); }
since() { tail -n "+$((MARK + 1))" "$E2E_DIR/mta.log"; }
since_count() { since | grep -cE -- "$1"; }
# the callout session of the last transaction ended (QUIT and CLOSE)
wait_closed() { e2e_wait_for "${1:-5}" eval 'since | grep -q "^CLOSE"'; }
delivered() {
    n_sent=$((n_sent + 1))
    e2e_wait_delivered "$n_sent" 20
}
rcpt_line() {
    grep -E "\[$(re "$1")\] .*rcpt=<$(re "$2")> verdict=" "$(pt_log)" | tail -n 1
}
metric() {
    curl -s "http://127.0.0.1:$mport/metrics" | sed -nE "s/^$1 ([0-9.]+)\$/\\1/p"
}

# 1. a known recipient is delivered; an unknown one refused at RCPT
mark
send 192.0.2.11 bob@corp.example
e2e_like "known recipient: accepted" "$(e2e_reply_to DOT)" '^250 '
delivered
e2e_grep "known recipient: delivered to the sink" '^RCPT TO:<bob@corp\.example>$' "$(e2e_sink_env)"
pt_wait_log '\[192\.0\.2\.11\] .*verdict=accept'
e2e_like "known recipient: logged callout=accept" \
    "$(grep -E '\[192\.0\.2\.11\] .*verdict=accept' "$(pt_log)")" ' callout=accept '
wait_closed
e2e_is "known recipient: the dialogue with the internal MTA" "$(since | sed -E 's/^CONNECT [0-9]+$/CONNECT/')" \
"CONNECT
EHLO gw.portero.test
MAIL <>
RCPT bob@corp.example 250
QUIT
CLOSE"

mark
send 192.0.2.12 ghost@corp.example
e2e_is "unknown recipient: 550 5.1.1 at RCPT" "$(e2e_reply_to RCPT | sed -E 's/ \[id=[^]]*\]$//')" \
    "550 5.1.1 <ghost@corp.example>: Recipient address rejected: User unknown"
pt_wait_log 'rcpt=<ghost@corp\.example> verdict=reject'
e2e_like "unknown recipient: logged" "$(rcpt_line 192.0.2.12 ghost@corp.example)" \
    'verdict=reject code=550 dsn=5\.1\.1 by=callout .* callout=reject '
wait_closed
e2e_is "unknown recipient: one callout, closed with QUIT" \
    "$(since | grep -vE '^(EHLO|MAIL) ' | sed -E 's/^CONNECT [0-9]+$/CONNECT/')" \
"CONNECT
RCPT ghost@corp.example 550
QUIT
CLOSE"
e2e_is "unknown recipient: nothing delivered" "$(e2e_sink_count)" "$n_sent"

# a domain without a callout target: never asked
mark
send 192.0.2.12 someone@other.example
e2e_like "other domain: accepted without a callout" "$(e2e_reply_to DOT)" '^250 '
delivered
sleep 0.3
e2e_is "other domain: no connection to the internal MTA" "$(since_count .)" 0

# 4. the second query for each is answered from the cache
mark
send 192.0.2.13 bob@corp.example,ghost@corp.example
e2e_is "cache: replies" "$(st_rcpt_replies | sed -E 's/ \[id=[^]]*\]$//')" \
"bob@corp.example 250 2.1.5 Ok
ghost@corp.example 550 5.1.1 <ghost@corp.example>: Recipient address rejected: User unknown"
e2e_like "cache: the known one delivered" "$(e2e_reply_to DOT)" '^250 '
delivered
pt_wait_log '\[192\.0\.2\.13\] .*verdict=accept'
e2e_like "cache: logged callout=reject-cached" "$(rcpt_line 192.0.2.13 ghost@corp.example)" \
    'verdict=reject code=550 dsn=5\.1\.1 by=callout .* callout=reject-cached '
e2e_like "cache: logged callout=accept-cached" \
    "$(grep -E '\[192\.0\.2\.13\] .*verdict=accept' "$(pt_log)")" ' callout=accept-cached '
sleep 0.3
e2e_is "cache: no connection to the internal MTA" "$(since_count .)" 0
out=$(st_ctl -c "$E2E_DIR/portero.conf" callout list 2>&1)
e2e_like "ctl callout list: known" "$out" \
    '^callout <bob@corp\.example> known checked=[0-9T:-]+Z expires=[0-9T:-]+Z$'
e2e_like "ctl callout list: unknown" "$out" \
    '^callout <ghost@corp\.example> unknown checked=[0-9T:-]+Z expires=[0-9T:-]+Z$'
e2e_like "ctl callout list: count" "$out" '^2 record\(s\)$'
# positive_ttl 31d, negative_ttl 3d
ttl_of() {
    local l c x
    l=$(printf '%s\n' "$out" | grep "^callout <$1> ")
    c=$(date -u -d "$(printf '%s' "$l" | sed -E 's/.* checked=([^ ]+).*/\1/')" +%s)
    x=$(date -u -d "$(printf '%s' "$l" | sed -E 's/.* expires=([^ ]+).*/\1/')" +%s)
    echo $((x - c))
}
e2e_is "cache: known kept for positive_ttl" "$(ttl_of bob@corp.example)" $((31 * 86400))
e2e_is "cache: unknown kept for negative_ttl" "$(ttl_of ghost@corp.example)" $((3 * 86400))
out=$(st_ctl -c "$E2E_DIR/portero.conf" callout flush GHOST@corp.example 2>&1)
e2e_is "ctl callout flush ADDRESS" "$out" "flushed 1 record(s)"
out=$(st_ctl -c "$E2E_DIR/portero.conf" callout list 2>&1)
e2e_is "ctl callout flush: the other one stays" "$(printf '%s\n' "$out" | sed -E 's/ checked=.*//')" \
"callout <bob@corp.example> known
1 record(s)"
mark
send 192.0.2.14 ghost@corp.example
e2e_like "flushed: refused again" "$(e2e_reply_to RCPT)" '^550 5\.1\.1 '
pt_wait_log '\[192\.0\.2\.14\] .*rcpt=<ghost@corp\.example> verdict=reject'
e2e_like "flushed: logged callout=reject (asked again)" "$(rcpt_line 192.0.2.14 ghost@corp.example)" ' callout=reject '
wait_closed
e2e_is "flushed: the internal MTA asked again" "$(since_count '^RCPT ghost@corp\.example 550$')" 1

# 5. 50 recipients (47 known, 3 unknown: fewer than brake_limit) share
# one connection
rcpts=""
for i in $(seq -w 1 47); do rcpts="$rcpts,u$i@corp.example"; done
rcpts="x1@corp.example${rcpts},x2@corp.example,x3@corp.example"
mark
send 192.0.2.15 "$rcpts"
replies=$(st_rcpt_replies)
e2e_is "50 recipients: 47 accepted" "$(printf '%s\n' "$replies" | grep -c ' 250 ')" 47
e2e_is "50 recipients: 3 refused with 550 5.1.1" "$(printf '%s\n' "$replies" | grep -c ' 550 5\.1\.1 ')" 3
e2e_like "50 recipients: message accepted" "$(e2e_reply_to DOT)" '^250 '
delivered
e2e_is "50 recipients: delivered to the 47" "$(grep -c '^RCPT TO:' "$(e2e_sink_env)")" 47
wait_closed
e2e_is "50 recipients: one connection" "$(since_count '^CONNECT ')" 1
e2e_is "50 recipients: 50 RCPT commands on it" "$(since_count '^RCPT ')" 50
e2e_is "50 recipients: one MAIL, one QUIT" "$(since_count '^MAIL ')/$(since_count '^QUIT$')" "1/1"

# 6. dictionary-attack brake: 8 unknown recipients from one client
rcpts=$(printf 'n%d@corp.example,' 1 2 3 4 5 6 7 8)
mark
send 198.51.100.66 "${rcpts%,}"
replies=$(st_rcpt_replies | sed -E 's/ \[id=[^]]*\]$//')
e2e_is "brake: the first 5 unknown get 550" \
    "$(printf '%s\n' "$replies" | head -n 5 | awk '{ print $1, $2, $3 }')" \
"n1@corp.example 550 5.1.1
n2@corp.example 550 5.1.1
n3@corp.example 550 5.1.1
n4@corp.example 550 5.1.1
n5@corp.example 550 5.1.1"
e2e_is "brake: then 421 4.7.0" "$(printf '%s\n' "$replies" | sed -n 6p)" \
    "n6@corp.example 421 4.7.0 Too many unknown recipients, closing connection"
e2e_is "brake: the connection is closed (no later RCPT answered)" \
    "$(printf '%s\n' "$replies" | sed -n '7,$p' | grep -vc ' (none)$')" 0
e2e_check "brake: logged" pt_wait_log \
    'callout: client 198\.51\.100\.66 sent 5 unknown recipients within 3600 s: later recipients get 421'
pt_wait_log 'rcpt=<n6@corp\.example> verdict='
e2e_like "brake: 421 logged callout=brake" "$(rcpt_line 198.51.100.66 n6@corp.example)" \
    'verdict=tempfail code=421 dsn=4\.7\.0 by=callout .* callout=brake '
wait_closed
e2e_is "brake: the internal MTA was asked about the first 5 only" \
    "$(since | sed -nE 's/^RCPT ([^ ]+) .*/\1/p' | tr '\n' ' ')" \
    "n1@corp.example n2@corp.example n3@corp.example n4@corp.example n5@corp.example "
mark
send 198.51.100.66 bob@corp.example
e2e_like "brake: the client's next connection gets 421 at its first RCPT" \
    "$(e2e_reply_to RCPT)" '^421 4\.7\.0 Too many unknown recipients, closing connection'
sleep 0.3
e2e_is "brake: ... without a callout" "$(since_count .)" 0
send 198.51.100.67 bob@corp.example
e2e_like "brake: another client is not braked" "$(e2e_reply_to DOT)" '^250 '
delivered

# 7. an internal client is not called out for
mark
send 10.1.2.3 nosuchuser@corp.example
e2e_like "internal client: unknown recipient accepted" "$(e2e_reply_to DOT)" '^250 '
delivered
pt_wait_log '\[10\.1\.2\.3\] .*verdict=accept'
line=$(grep -E '\[10\.1\.2\.3\] .*verdict=accept' "$(pt_log)" | tail -n 1)
case $line in
    *callout=*) e2e_fail "internal client: no callout= in the log" "$line" ;;
    *) e2e_ok "internal client: no callout= in the log" ;;
esac
sleep 0.3
e2e_is "internal client: no connection to the internal MTA" "$(since_count .)" 0

# 3. the internal MTA answers 4xx: 450 4.1.1, not cached
st_mta_stop
st_mta_start --mode tempfail || e2e_bail "mta.py (tempfail) did not start"
mark
send 192.0.2.16 temp1@corp.example
e2e_is "4xx: 450 4.1.1 at RCPT" "$(e2e_reply_to RCPT | sed -E 's/ \[id=[^]]*\]$//')" \
    "450 4.1.1 <temp1@corp.example>: Recipient address rejected: unverified address"
pt_wait_log 'rcpt=<temp1@corp\.example> verdict='
e2e_like "4xx: logged callout=tempfail" "$(rcpt_line 192.0.2.16 temp1@corp.example)" \
    'verdict=tempfail code=450 dsn=4\.1\.1 by=callout .* callout=tempfail '
e2e_check "4xx: the reason logged" grep -qE 'callout: .*450.*; on_error=tempfail' "$(pt_log)"
out=$(st_ctl -c "$E2E_DIR/portero.conf" callout list 2>&1)
case $out in
    *temp1@*) e2e_fail "4xx: not cached" "$out" ;;
    *) e2e_ok "4xx: not cached" ;;
esac
send 192.0.2.16 temp1@corp.example
e2e_like "4xx: again 450" "$(e2e_reply_to RCPT)" '^450 4\.1\.1 '
wait_closed
e2e_is "4xx: asked again (two connections)" "$(since_count '^CONNECT ')" 2

# 2. the internal MTA down: 450 4.1.1, and the target is not tried again
# for down_interval
st_mta_stop
mark
send 192.0.2.17 down1@corp.example
e2e_is "down: 450 4.1.1 at RCPT" "$(e2e_reply_to RCPT | sed -E 's/ \[id=[^]]*\]$//')" \
    "450 4.1.1 <down1@corp.example>: Recipient address rejected: unverified address"
pt_wait_log 'rcpt=<down1@corp\.example> verdict='
e2e_like "down: logged callout=down" "$(rcpt_line 192.0.2.17 down1@corp.example)" \
    'verdict=tempfail code=450 dsn=4\.1\.1 by=callout .* callout=down '
st_mta_start || e2e_bail "mta.py did not start again"
mark
send 192.0.2.17 alice@corp.example
e2e_like "down: within down_interval still 450 (known, not cached)" "$(e2e_reply_to RCPT)" '^450 4\.1\.1 '
e2e_check "down: 'not retried' logged" grep -qE \
    'callout 127\.0\.0\.1:[0-9]+: target down, not retried for [0-9]+ s' "$(pt_log)"
sleep 0.3
e2e_is "down: no connection attempt within down_interval" "$(since_count .)" 0
send 192.0.2.17 bob@corp.example
e2e_like "down: a cached answer still serves" "$(e2e_reply_to DOT)" '^250 '
delivered

m=$(curl -s "http://127.0.0.1:$mport/metrics")
e2e_like "metrics: rejects counted" "$m" 'portero_callout_total\{result="reject"\} [1-9]'
e2e_like "metrics: brakes counted" "$m" 'portero_callout_total\{result="brake"\} [1-9]'
e2e_like "metrics: cache hits counted" "$m" 'portero_callout_cache_total\{outcome="hit"\} [1-9]'

# a silent target (accepts, never answers): 450 within callout.max_time
e2e_check "portero stopped cleanly" pt_stop
pt_check_clean "no sanitizer report"
cp "$(pt_log)" "$E2E_DIR/portero.lmdb1.log"
st_mta_stop
st_mta_start --mode hang || e2e_bail "mta.py (hang) did not start"
pt_start || e2e_bail "portero did not start again"
t0=$(date +%s%N)
send 192.0.2.18 hang1@corp.example
ms=$((($(date +%s%N) - t0) / 1000000))
e2e_like "silent target: 450 4.1.1" "$(e2e_reply_to RCPT)" '^450 4\.1\.1 <hang1@corp\.example>: Recipient address rejected: unverified address'
pt_wait_log 'rcpt=<hang1@corp\.example> verdict='
e2e_like "silent target: logged" "$(rcpt_line 192.0.2.18 hang1@corp.example)" \
    'verdict=tempfail code=450 dsn=4\.1\.1 by=callout .* callout=(down|tempfail|error) '
e2e_check "silent target: the timeout logged" grep -qE \
    'callout: callout 127\.0\.0\.1:[0-9]+: timeout .*; on_error=tempfail' "$(pt_log)"
e2e_diag "silent target: the session took $ms ms"
if [ "$ms" -ge 1500 ] && [ "$ms" -lt 6500 ]; then e2e_ok "silent target: within callout.timeout/max_time"
else e2e_fail "silent target: within callout.timeout/max_time" "$ms ms"; fi
e2e_check "portero stopped cleanly (LMDB)" pt_stop
pt_check_clean "no sanitizer report (LMDB)"
cp "$(pt_log)" "$E2E_DIR/portero.lmdb2.log"

# a short pass on Redis: unknown 550, known delivered, both cached
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    st_mta_stop
    st_mta_start || e2e_bail "mta.py did not start again"
    if st_redis_start; then
        conf "store = { backend = \"redis\"; redis = { servers = [ \"127.0.0.1:$ST_REDIS_PORT\" ]; prefix = \"t75:\"; db = 0; }; };"
        pt_start || e2e_bail "portero (redis) did not start"
        mark
        send 192.0.2.21 alice@corp.example,ghost@corp.example
        e2e_is "redis: replies" "$(st_rcpt_replies | sed -E 's/ \[id=[^]]*\]$//' | awk '{ print $1, $2, $3 }')" \
"alice@corp.example 250 2.1.5
ghost@corp.example 550 5.1.1"
        e2e_like "redis: known delivered" "$(e2e_reply_to DOT)" '^250 '
        delivered
        wait_closed
        e2e_is "redis: one connection, two RCPT" "$(since_count '^CONNECT ')/$(since_count '^RCPT ')" "1/2"
        mark
        send 192.0.2.22 alice@corp.example,ghost@corp.example
        e2e_like "redis: cached: known delivered" "$(e2e_reply_to DOT)" '^250 '
        delivered
        pt_wait_log '\[192\.0\.2\.22\] .*verdict=accept'
        e2e_like "redis: logged callout=reject-cached" "$(rcpt_line 192.0.2.22 ghost@corp.example)" ' callout=reject-cached '
        sleep 0.3
        e2e_is "redis: cached: no connection" "$(since_count .)" 0
        out=$(st_ctl -c "$E2E_DIR/portero.conf" callout list 2>&1)
        e2e_is "redis: ctl callout list" "$(printf '%s\n' "$out" | sed -E 's/ checked=.*//' | LC_ALL=C sort)" \
"2 record(s)
callout <alice@corp.example> known
callout <ghost@corp.example> unknown"
        e2e_check "redis: portero stopped cleanly" pt_stop
        pt_check_clean "redis: no sanitizer report"
        st_redis_stop
    else
        e2e_fail "redis-server up"
    fi
else
    e2e_skip "redis pass" "redis-server or redis-cli missing"
fi

e2e_postfix_stop
st_mta_stop
e2e_done
