#!/usr/bin/env bash
# t_70_greylist.sh -- greylisting through Postfix, the same scenarios on
# the LMDB store and then on a private redis-server (the configs differ
# only in the store group): a suspicious client's first attempt gets
# 451 4.7.1 at RCPT and nothing is delivered; an early retry 451 again; a
# retry after greylist.delay passes and is delivered; after
# greylist.auto_whitelist passes the network is whitelisted; a clean
# client in selective mode is not greylisted; an SPF-passing domain's
# retry from another network passes (origin spf:DOMAIN); portero-ctl
# greylist list/show/del/whitelist add/del against the daemon's store;
# a manual whitelist entry with a short duration expires (invisible in
# LMDB, gone by key TTL in Redis); triplets that never passed are gone
# after retry_window (60 s, the smallest allowed: the script waits about
# a minute at the end). Redis only: every key has a TTL; two
# configurations on one Redis see each other's passes (portero-ctl test);
# Redis down fails open (greylist=error, metric) and greylisting resumes
# when it is back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/portero.sh"
. "$(dirname "$0")/store.sh"
e2e_need_root
e2e_need postfix swaks curl
e2e_init
export E2E_QUIET=1
[ -x "$PORTERO" ] || e2e_bail "no portero binary at $PORTERO"
[ -x "$(dirname "$PORTERO")/portero-ctl" ] || e2e_bail "no portero-ctl next to $PORTERO"
have_redis=1
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || have_redis=0

e2e_sink_start || e2e_bail "sink"
cat >"$E2E_DIR/zone" <<'ZONE'
bigmail.example TXT v=spf1 ip4:198.18.0.0/16 -all
ZONE
e2e_dns_start "$E2E_DIR/zone" || e2e_bail "dns server"
e2e_at_exit '[ "$E2E_FAILED" -gt 0 ] && [ -f "$(pt_log)" ] && { echo "# --- last lines of $(pt_log) ---"; tail -n 40 "$(pt_log)" | sed "s/^/#   /"; }'

# the milter socket path is fixed ($E2E_DIR/portero.sock): one Postfix
# for every daemon started below
PT_SOCK=$E2E_DIR/portero.sock
e2e_postfix_start "unix:$PT_SOCK" || e2e_bail "postfix did not start"

mport=$(e2e_free_port)
# common part of both configurations: 203.0.113.0/24 and 198.18.0.0/15
# are greylisted by network; HELO "localhost" scores 5 (>= 4: greylisted)
common="
dns = { mode = \"forward\"; forward = [ \"127.0.0.1@$DNS_PORT\" ]; timeout = \"2s\"; };
helo = { non_fqdn = 5.0; };
spf = { enabled = true; };
thresholds = { greylist = 4.0; reject = 10.0; };
whitelist = { clients = [ \"203.0.113.77\" ]; };
greylist = { mode = \"selective\"; delay = 3; retry_window = 60; expire = 3600;
             auto_whitelist = 2; ipv4_prefix = 24; countries = [ ];
             networks = [ \"203.0.113.0/24\", \"198.18.0.0/15\" ];
             spf_domain = true; on_error = \"accept\"; };
metrics = { listen = \"127.0.0.1:$mport\"; };"

n_sent=0
# send IP FROM [HELO [LOGIN]]: one message to bob@corp.example from
# client IP (LOGIN: SASL-authenticated)
send() {
    e2e_send $(pt_client "$1" mx.example.org "${3:-mx.example.org}" $4) \
        --from "$2" --to bob@corp.example
}
# re ADDR: the address as an ERE
re() { printf '%s' "$1" | sed 's/[.[\*^$+?(){}|/]/\\&/g'; }

# greylisted B NAME IP FROM OUTCOME [HELO]: refused with 451 4.7.1 at
# RCPT, logged greylist=OUTCOME, nothing delivered
greylisted() {
    local b=$1 name=$2 ip=$3 from=$4 outcome=$5 helo=$6
    send "$ip" "$from" "$helo"
    [ "$outcome" = new ] && LAST_NEW=$(date +%s)
    e2e_like "$b: $name: 451 4.7.1 at RCPT" "$(e2e_reply_to RCPT)" \
        '^451 4\.7\.1 Greylisted, please try again later \(in [0-9]+ seconds\) \[id='
    if pt_wait_log "\[$(re "$ip")\] .*from=<$(re "$from")> rcpt=<bob@corp\.example> verdict=tempfail code=451 dsn=4\.7\.1 by=greylist .*greylist=$outcome "; then
        e2e_ok "$b: $name: logged greylist=$outcome"
    else
        e2e_fail "$b: $name: logged greylist=$outcome" \
            "$(grep -F "from=<$from>" "$(pt_log)" | tail -n 3)"
    fi
    e2e_is "$b: $name: nothing delivered" "$(e2e_sink_count)" "$n_sent"
}
# accepted B NAME IP FROM OUTCOME [HELO [LOGIN]]: delivered at once, the
# message line says greylist=OUTCOME ("" = no greylist field at all)
accepted() {
    local b=$1 name=$2 ip=$3 from=$4 outcome=$5 helo=$6 login=$7 line
    send "$ip" "$from" "$helo" "$login"
    e2e_like "$b: $name: accepted" "$(e2e_reply_to DOT)" '^250 '
    n_sent=$((n_sent + 1))
    pt_wait_log "\[$(re "$ip")\] .*from=<$(re "$from")> rcpt=<bob@corp\.example> verdict=accept"
    line=$(grep -E "\[$(re "$ip")\] .*from=<$(re "$from")> rcpt=<bob@corp\.example> verdict=accept" "$(pt_log)" | tail -n 1)
    if [ -n "$outcome" ]; then
        e2e_like "$b: $name: logged greylist=$outcome" "$line" " greylist=$outcome "
    else
        case $line in
            *greylist=*|"") e2e_fail "$b: $name: not greylisted (no greylist= field)" "line: '$line'" ;;
            *) e2e_ok "$b: $name: not greylisted (no greylist= field)" ;;
        esac
    fi
    if e2e_wait_delivered "$n_sent" 20; then
        e2e_grep "$b: $name: delivered to the sink" "^MAIL FROM:<$(re "$from")>" "$(e2e_sink_env)"
    else
        e2e_fail "$b: $name: delivered to the sink" "sink has $(e2e_sink_count), want $n_sent"
    fi
}
metric() {
    curl -s "http://127.0.0.1:$mport/metrics" | sed -nE "s/^$1 ([0-9.]+)\$/\\1/p"
}

# phase BACKEND STORE-GROUP: every scenario against one store
phase() {
    local b=$1 store=$2 t0 left out n
    pt_conf "$common
$store"
    if ! pt_start; then
        e2e_fail "$b: portero started" "$(tail -n 20 "$(pt_log)")"
        return 1
    fi
    e2e_ok "$b: portero started"

    # 1. first attempt of a suspicious client (greylist.networks)
    greylisted "$b" "new triplet" 203.0.113.7 alice@example.org new
    e2e_like "$b: new triplet: waits greylist.delay" "$(e2e_reply_to RCPT)" '\(in 3 seconds\)'
    # first attempts of the other triplets, which wait out the same delay
    greylisted "$b" "second sender, same network" 203.0.113.8 carol@example.org new
    greylisted "$b" "SPF-passing domain" 198.18.1.1 x@bigmail.example new
    # the last first attempt that is retried below
    t0=$(date +%s)
    e2e_check "$b: SPF-passing domain: spf=pass logged" grep -qE \
        'from=<x@bigmail\.example> .*verdict=tempfail .* spf=pass greylist=new' "$(pt_log)"
    greylisted "$b" "score above thresholds.greylist (HELO localhost)" \
        198.51.100.20 eve@example.org new localhost
    e2e_check "$b: score-selected: the HELO score is the reason" grep -qE \
        'from=<eve@example\.org> .*by=greylist reason="[^"]*helo:non_fqdn=5\.0[^"]*" score=5\.' "$(pt_log)"

    # 2. retry before the delay
    greylisted "$b" "early retry" 203.0.113.7 alice@example.org early
    e2e_like "$b: early retry: fewer seconds to wait" "$(e2e_reply_to RCPT)" '\(in [0-3] seconds\)'

    # 5. a clean client (score 0.5 < 4) is not greylisted
    accepted "$b" "clean client" 192.0.2.10 clean@example.org ""
    # never greylisted, although in greylist.networks: authenticated and
    # whitelisted (whitelist.clients) clients
    accepted "$b" "authenticated client" 203.0.113.50 auth@example.org "" mx.example.org alice
    accepted "$b" "whitelist.clients" 203.0.113.77 wl@example.org ""

    # 10 (start). a manual whitelist entry for 2 s
    out=$(st_ctl -c "$E2E_DIR/portero.conf" greylist whitelist add 198.19.7.0/24 2s 2>&1)
    e2e_like "$b: ctl whitelist add with a duration" "$out" '^whitelisted 198\.19\.7\.0/24 for 2 s$'
    out=$(st_ctl -c "$E2E_DIR/portero.conf" greylist list 2>&1)
    e2e_like "$b: short whitelist entry listed" "$out" '^whitelist 198\.19\.7\.0/24 manual expires='
    e2e_like "$b: list shows a waiting triplet" "$out" \
        '^triplet 203\.0\.113\.0/24 <alice@example\.org> <bob@corp\.example> waiting passes=0 first=[0-9T:-]+Z last=[0-9T:-]+Z expires=[0-9T:-]+Z$'
    if [ "$b" = redis ]; then
        # every key of ours has a TTL (expiry is Redis' job)
        local keys k ttl bad=""
        keys=$(st_redis_cli --scan --pattern 't70:*' 2>&1)
        n=$(printf '%s\n' "$keys" | grep -c .)
        for k in $keys; do
            ttl=$(st_redis_cli ttl "$k")
            [ "$ttl" -gt 0 ] 2>/dev/null || bad="$bad $k=$ttl"
        done
        if [ "$n" -ge 5 ] && [ -z "$bad" ]; then
            e2e_ok "redis: all $n keys under the prefix have a TTL"
        else
            e2e_fail "redis: all keys under the prefix have a TTL" "keys: $keys" "bad:$bad"
        fi
    fi

    # wait out greylist.delay (3 s) from the first attempts
    left=$((t0 + 4 - $(date +%s)))
    [ "$left" -gt 0 ] && sleep "$left"

    # 7 (del). removing a triplet: its retry after the delay is new again
    out=$(st_ctl -c "$E2E_DIR/portero.conf" greylist del 198.51.100.20 eve@example.org bob@corp.example 2>&1)
    e2e_is "$b: ctl greylist del SENDER RCPT" "$out" "deleted 1 record"

    # 3. retry after the delay
    accepted "$b" "retry after the delay" 203.0.113.7 alice@example.org passed
    # 4. a second sender of the network passes: auto_whitelist = 2
    accepted "$b" "second sender passes" 203.0.113.8 carol@example.org passed
    e2e_check "$b: auto-whitelisting logged" pt_wait_log \
        'greylist: 203\.0\.113\.0/24 auto-whitelisted after 2 passes'
    accepted "$b" "new sender of an auto-whitelisted network" 203.0.113.99 dave@example.org whitelisted
    # 6. the SPF-passing domain retries from another /24
    accepted "$b" "SPF domain retries from another network" 198.18.200.1 x@bigmail.example passed
    # 7. the deleted triplet
    greylisted "$b" "deleted triplet" 198.51.100.20 eve@example.org new localhost

    # 10 (end). the 2 s whitelist entry is gone (its network is greylisted)
    out=$(st_ctl -c "$E2E_DIR/portero.conf" greylist list 2>&1)
    if printf '%s\n' "$out" | grep -q '^whitelist 198\.19\.7\.0/24'; then
        e2e_fail "$b: expired whitelist entry no longer listed" "$out"
    else
        e2e_ok "$b: expired whitelist entry no longer listed"
    fi
    greylisted "$b" "network of the expired entry" 198.19.7.7 hank@example.org new

    # 7. portero-ctl sees what the daemon wrote
    e2e_like "$b: list: auto whitelist entry" "$out" \
        '^whitelist 203\.0\.113\.0/24 auto passes=2 expires=[0-9T:-]+Z$'
    e2e_like "$b: list: passed triplet" "$out" \
        '^triplet 203\.0\.113\.0/24 <alice@example\.org> <bob@corp\.example> passed passes=1 '
    e2e_like "$b: list: SPF-domain triplet" "$out" \
        '^triplet spf:bigmail\.example <x@bigmail\.example> <bob@corp\.example> passed passes=1 '
    e2e_like "$b: list: the re-created triplet waits" "$out" \
        '^triplet 198\.51\.100\.0/24 <eve@example\.org> <bob@corp\.example> waiting passes=0 '
    n=$(printf '%s\n' "$out" | grep -cE '^(triplet|whitelist) ')
    e2e_like "$b: list: record count" "$out" "^$n record\\(s\\)\$"
    out=$(st_ctl -c "$E2E_DIR/portero.conf" greylist show 203.0.113.7 2>&1)
    e2e_is "$b: show IP: the network's records" \
        "$(printf '%s\n' "$out" | sed -E 's/ (first|last|expires)=[^ ]+//g' | LC_ALL=C sort)" \
"3 record(s)
triplet 203.0.113.0/24 <alice@example.org> <bob@corp.example> passed passes=1
triplet 203.0.113.0/24 <carol@example.org> <bob@corp.example> passed passes=1
whitelist 203.0.113.0/24 auto passes=2"
    out=$(st_ctl -c "$E2E_DIR/portero.conf" greylist show x@bigmail.example 2>&1)
    e2e_like "$b: show ADDRESS" "$out" '^triplet spf:bigmail\.example <x@bigmail\.example> '

    # 7. a manual whitelist entry: the network's first attempt passes
    out=$(st_ctl -c "$E2E_DIR/portero.conf" greylist whitelist add 198.19.5.0/24 2>&1)
    e2e_like "$b: ctl whitelist add NETWORK" "$out" '^whitelisted 198\.19\.5\.0/24 for 31536000 s$'
    accepted "$b" "manually whitelisted network" 198.19.5.9 frank@example.org whitelisted
    out=$(st_ctl -c "$E2E_DIR/portero.conf" greylist whitelist del 198.19.5.9 2>&1)
    e2e_is "$b: ctl whitelist del IP" "$out" "removed 198.19.5.0/24"
    greylisted "$b" "after whitelist del" 198.19.5.9 grace@example.org new

    n=$(metric 'portero_greylist_total\{outcome="new"\}')
    e2e_is "$b: metrics: new triplets counted" "$n" 7

    if [ "$b" = redis ]; then
        redis_only
    fi

    e2e_check "$b: portero stopped cleanly" pt_stop
    pt_check_clean "$b: no sanitizer report"
    cp "$(pt_log)" "$E2E_DIR/portero.$b.log"
    cp "$E2E_DIR/portero.conf" "$E2E_DIR/portero.$b.conf"
}

# Redis only: 9. a second gateway (another config on the same Redis);
# 8. Redis down and back
redis_only() {
    local out i ok t0 rport keys ttl
    sed -e "s|portero\.sock|portero2.sock|; s|portero\.pid|portero2.pid|" \
        -e "/^metrics = /d" "$E2E_DIR/portero.conf" >"$E2E_DIR/portero2.conf"
    # a new triplet through the second gateway lands in the shared store
    out=$(printf 'Subject: t\n\nbody\n' | st_ctl -c "$E2E_DIR/portero2.conf" test \
        --client 198.18.77.1 --helo mx.bigmail.example --from ivan@bigmail.example \
        --rcpt bob@corp.example 2>&1)
    e2e_like "redis: the second gateway greylists a new triplet" "$out" \
        'verdict=tempfail code=451 dsn=4\.7\.1 by=greylist .*greylist=new '
    out=$(st_ctl -c "$E2E_DIR/portero.conf" greylist show ivan@bigmail.example 2>&1)
    e2e_like "redis: ... the first gateway's store has it" "$out" \
        '^triplet spf:bigmail\.example <ivan@bigmail\.example> <bob@corp\.example> waiting '
    # a triplet that passed at the first gateway passes at the second
    out=$(printf 'Subject: t\n\nbody\n' | st_ctl -c "$E2E_DIR/portero2.conf" test \
        --client 198.18.77.1 --helo mx.bigmail.example --from x@bigmail.example \
        --rcpt bob@corp.example 2>&1)
    e2e_like "redis: a second gateway sees the first one's pass" "$out" \
        'rcpt=<bob@corp\.example> verdict=accept .*spf=pass greylist=passed '
    out=$(st_ctl -c "$E2E_DIR/portero.conf" greylist show x@bigmail.example 2>&1)
    e2e_like "redis: the second gateway's pass counted" "$out" \
        '^triplet spf:bigmail\.example <x@bigmail\.example> <bob@corp\.example> passed passes=2 '
    # that was the domain's second pass: whitelisted at the first gateway
    accepted redis "origin auto-whitelisted by passes at two gateways" \
        198.18.3.3 kate@bigmail.example whitelisted

    # 8. Redis down: fail open
    rport=$ST_REDIS_PORT
    e2e_check "redis: stopped" st_redis_stop
    accepted redis "Redis down: fail open" 198.19.9.9 judy@example.org error
    e2e_check "redis: store failure logged" pt_wait_log \
        'greylist: check failed: .*; on_error=accept'
    n=$(metric 'portero_greylist_total\{outcome="error"\}')
    if [ "${n:-0}" -gt 0 ] 2>/dev/null; then
        e2e_ok "redis: metrics: greylist errors counted ($n)"
    else
        e2e_fail "redis: metrics: greylist errors counted" "got '$n'"
    fi

    # Redis back on the same port: greylisting resumes (the client may
    # back off for up to 30 s after failures)
    e2e_check "redis: restarted on the same port" st_redis_start "$rport"
    t0=$(date +%s)
    ok=0
    for ((i = 1; $(date +%s) - t0 < 40; i++)); do
        send 198.19.10.10 "back$i@example.org"
        case $(e2e_reply_to RCPT) in
            451\ 4.7.1\ Greylisted*) ok=1; break ;;
        esac
        # accepted while still failing open
        e2e_reply_to DOT | grep -q '^250 ' && n_sent=$((n_sent + 1))
        sleep 2
    done
    if [ $ok = 1 ]; then
        LAST_NEW=$(date +%s)
        e2e_ok "redis: greylisting resumes after Redis is back ($(($(date +%s) - t0)) s, attempt $i)"
        pt_wait_log "from=<back$i@example\.org> .*greylist=new " &&
            e2e_ok "redis: resumed: logged greylist=new" ||
            e2e_fail "redis: resumed: logged greylist=new"
    else
        e2e_fail "redis: greylisting resumes after Redis is back" "last reply: $(e2e_last_reply)"
    fi
    # the triplet of the restarted Redis lives for retry_window (60 s)
    keys=$(st_redis_cli --scan --pattern 't70:*' 2>&1)
    e2e_is "redis: after the restart one key (the new triplet)" "$(printf '%s\n' "$keys" | grep -c .)" 1
    ttl=$(st_redis_cli ttl "$keys" 2>&1)
    if [ "$ttl" -gt 40 ] 2>/dev/null && [ "$ttl" -le 60 ]; then
        e2e_ok "redis: a waiting triplet's key TTL is retry_window ($ttl s)"
    else
        e2e_fail "redis: a waiting triplet's key TTL is retry_window" "key '$keys' ttl '$ttl'"
    fi
    # let the sink catch up with the messages accepted during the outage
    e2e_wait_delivered "$n_sent" 20
}


mkdir -p "$E2E_DIR/lmdb" || e2e_bail "mkdir lmdb"
LAST_NEW=
phase lmdb "store = { backend = \"lmdb\"; path = \"$E2E_DIR/lmdb/state.lmdb\"; max_size = \"64M\"; };"
if [ $have_redis = 1 ]; then
    if st_redis_start; then
        e2e_ok "redis-server up on 127.0.0.1:$ST_REDIS_PORT"
        phase redis "store = { backend = \"redis\"; redis = { servers = [ \"127.0.0.1:$ST_REDIS_PORT\" ]; prefix = \"t70:\"; db = 0; }; };"
    else
        e2e_fail "redis-server up"
    fi
else
    e2e_skip "redis backend" "redis-server or redis-cli missing"
fi

# 10. wait out retry_window after the last new triplet (about a minute)
left=$((LAST_NEW + 61 - $(date +%s)))
e2e_diag "waiting $left s for retry_window (60 s) to pass"
[ "$left" -gt 0 ] && sleep "$left"
out=$(st_ctl -c "$E2E_DIR/portero.lmdb.conf" greylist list 2>&1)
unlike() { if printf '%s\n' "$2" | grep -Eq -- "$3"; then e2e_fail "$1" "$2"; else e2e_ok "$1"; fi; }
unlike "lmdb: triplets that never passed expired after retry_window" "$out" ' waiting passes='
e2e_like "lmdb: passed triplets stay (expire)" "$out" \
    '^triplet 203\.0\.113\.0/24 <alice@example\.org> <bob@corp\.example> passed passes=1 '
if [ -n "$ST_REDIS_PID" ]; then
    e2e_is "redis: the waiting triplet's key expired" "$(st_redis_cli --scan --pattern 't70:*' 2>&1)" ""
    out=$(st_ctl -c "$E2E_DIR/portero.redis.conf" greylist list 2>&1)
    e2e_is "redis: greylist list is empty" "$out" "0 record(s)"
    st_redis_stop
fi

e2e_postfix_stop
e2e_done
