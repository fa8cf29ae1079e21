# shellcheck shell=bash
# tests/e2e/lib.sh -- end-to-end test harness for portero.
#
# Source it from a bash test script:
#     . "$(dirname "$0")/lib.sh"
#     e2e_init
#     ...
#     e2e_done
#
# Everything runs on loopback only (127.0.0.1): a capture SMTP sink
# (sink.py), an authoritative DNS test server (dnsd.py) and a private
# Postfix instance that relays everything to the sink. Nothing here uses
# the system resolver. Every process started is stopped by PID on exit.
# Functions never call `exit` except e2e_init (on setup failure),
# e2e_skip_all, e2e_bail and e2e_done; they return non-zero on failure.
# See tests/e2e/README.md.

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_PY=${E2E_PY:-/usr/bin/python3}       # Debian python (python3-dnslib)
E2E_POSTFIX_BIN=${E2E_POSTFIX_BIN:-/usr/sbin}
E2E_TESTNUM=0
E2E_FAILED=0
E2E_PIDS=()
E2E_AT_EXIT=()
E2E_PF_DIR=
E2E_PF_MASTER=
E2E_LAST_TRANSCRIPT=

# --------------------------------------------------------------------------
# setup / teardown

# e2e_init: create $E2E_DIR, install the cleanup trap.
e2e_init() {
    E2E_DIR=$(mktemp -d /tmp/portero-e2e.XXXXXXXX) || e2e_bail "mktemp failed"
    # the postfix user must be able to traverse it (/tmp itself is 1777)
    chmod 755 "$E2E_DIR" || e2e_bail "chmod $E2E_DIR failed"
    export E2E_DIR
    trap e2e_cleanup EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
    return 0
}

# e2e_skip_all REASON: whole script skipped (TAP "1..0 # SKIP"), exit 0.
e2e_skip_all() {
    echo "1..0 # SKIP $*"
    exit 0
}

# e2e_bail REASON: abort the script ("Bail out!"), exit 1.
e2e_bail() {
    echo "Bail out! $*"
    exit 1
}

# e2e_need CMD...: skip the whole script unless all commands exist.
e2e_need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || e2e_skip_all "missing $c"
    done
}

# e2e_need_root: skip the whole script unless running as root.
e2e_need_root() {
    [ "$(id -u)" = 0 ] || e2e_skip_all "needs root (private Postfix instance)"
}

# e2e_at_exit CMD...: run CMD (eval'd) at cleanup, before anything is
# stopped (e.g. dump the milter's log when a test failed: check E2E_FAILED).
# Test scripts must not replace the EXIT trap; use this instead.
e2e_at_exit() {
    E2E_AT_EXIT+=("$*")
}

# e2e_cleanup: stop Postfix and every background process, remove $E2E_DIR.
# Installed as the EXIT trap by e2e_init; safe to call more than once.
e2e_cleanup() {
    local rc=$? c
    trap - EXIT
    for c in "${E2E_AT_EXIT[@]}"; do
        eval "$c"
    done
    E2E_AT_EXIT=()
    if [ -n "$E2E_PF_MASTER" ]; then
        if [ "$E2E_FAILED" -gt 0 ] && [ -n "$E2E_PF_DIR" ] && [ -s "$E2E_PF_DIR/maillog" ]; then
            echo "# --- last lines of $E2E_PF_DIR/maillog ---"
            tail -n 25 "$E2E_PF_DIR/maillog" | sed 's/^/#   /'
        fi
        e2e_postfix_stop
    fi
    local pid
    for pid in "${E2E_PIDS[@]}"; do
        e2e_kill "$pid"
    done
    E2E_PIDS=()
    if [ -n "$E2E_DIR" ] && [ -d "$E2E_DIR" ]; then
        if [ "${E2E_KEEP:-0}" = 1 ]; then
            echo "# E2E_KEEP=1: kept $E2E_DIR"
        else
            rm -rf -- "$E2E_DIR"
        fi
    fi
    return $rc
}

# e2e_bg NAME CMD...: start CMD in the background, stdout+stderr to
# $E2E_DIR/NAME.log, register its PID for cleanup; sets E2E_BG_PID.
# (Use it to start the milter under test.)
e2e_bg() {
    local name=$1; shift
    "$@" </dev/null >"$E2E_DIR/$name.log" 2>&1 &
    E2E_BG_PID=$!
    E2E_PIDS+=("$E2E_BG_PID")
    return 0
}

# e2e_alive PID: the process exists and is not a zombie (PID 1 in
# containers may reap orphans, e.g. Postfix daemons, only every few seconds).
e2e_alive() {
    local s
    [ -n "$1" ] || return 1
    { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
    s=${s##*) }
    case ${s%% *} in Z|X|x) return 1 ;; esac
    return 0
}

# e2e_kill PID [GRACE_SECONDS]: SIGTERM, wait up to GRACE (default 3s),
# then SIGKILL. Only by PID. Returns 0 once the process is gone.
e2e_kill() {
    local pid=$1 grace=${2:-3} i
    [ -n "$pid" ] || return 0
    if e2e_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < grace * 20; i++)); do
            e2e_alive "$pid" || break
            sleep 0.05
        done
    fi
    if e2e_alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null
        sleep 0.05
    fi
    wait "$pid" 2>/dev/null
    # forget it
    local p keep=()
    for p in "${E2E_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    E2E_PIDS=("${keep[@]}")
    ! e2e_alive "$pid"
}

# e2e_free_port: print a currently free TCP port on 127.0.0.1.
e2e_free_port() {
    "$E2E_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# e2e_wait_port PORT [TIMEOUT=10]: wait until 127.0.0.1:PORT accepts TCP.
e2e_wait_port() {
    local port=$1 timeout=${2:-10} i
    for ((i = 0; i < timeout * 20; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# e2e_wait_file FILE [TIMEOUT=10] [PID]: wait until FILE is non-empty
# (fails early if PID dies).
e2e_wait_file() {
    local f=$1 timeout=${2:-10} pid=$3 i
    for ((i = 0; i < timeout * 20; i++)); do
        [ -s "$f" ] && return 0
        if [ -n "$pid" ] && ! e2e_alive "$pid"; then
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# e2e_wait_socket PATH [TIMEOUT=10] [PID]: wait until PATH is a unix socket
# (e.g. the milter's), failing early if PID dies.
e2e_wait_socket() {
    local path=$1 timeout=${2:-10} pid=$3 i
    for ((i = 0; i < timeout * 20; i++)); do
        [ -S "$path" ] && return 0
        if [ -n "$pid" ] && ! e2e_alive "$pid"; then
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# e2e_wait_for TIMEOUT CMD...: retry CMD every 0.1s until it succeeds.
e2e_wait_for() {
    local timeout=$1 i; shift
    for ((i = 0; i < timeout * 10; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    "$@" >/dev/null 2>&1
}

# --------------------------------------------------------------------------
# capture sink

# e2e_sink_start: start sink.py on a free port; exports SINK_PORT, SINK_DIR.
e2e_sink_start() {
    SINK_DIR=$E2E_DIR/sink
    mkdir -p "$SINK_DIR" || return 1
    rm -f "$E2E_DIR/sink.port"
    e2e_bg sink "$E2E_PY" "$E2E_LIB_DIR/sink.py" --dir "$SINK_DIR" \
        --port-file "$E2E_DIR/sink.port"
    E2E_SINK_PID=$E2E_BG_PID
    if ! e2e_wait_file "$E2E_DIR/sink.port" 10 "$E2E_SINK_PID"; then
        echo "# sink did not start:"; sed 's/^/#   /' "$E2E_DIR/sink.log"
        return 1
    fi
    SINK_PORT=$(cat "$E2E_DIR/sink.port")
    export SINK_PORT SINK_DIR
    e2e_wait_port "$SINK_PORT" 10
}

# e2e_sink_count: number of messages received by the sink.
e2e_sink_count() {
    local n=0 f
    for f in "$SINK_DIR"/*.eml; do [ -e "$f" ] && n=$((n + 1)); done
    echo "$n"
}

# e2e_sink_msg [N]: path of message N (1-based; default: the last one), LF ends.
e2e_sink_msg() {
    local n=${1:-$(e2e_sink_count)}
    printf '%s/%04d.eml\n' "$SINK_DIR" "$n"
}

# e2e_sink_raw [N]: path of message N exactly as received (CRLF).
e2e_sink_raw() {
    local n=${1:-$(e2e_sink_count)}
    printf '%s/%04d.raw\n' "$SINK_DIR" "$n"
}

# e2e_sink_env [N]: path of the envelope file of message N
# ("MAIL FROM:<...>" then one "RCPT TO:<...>" line per recipient).
e2e_sink_env() {
    local n=${1:-$(e2e_sink_count)}
    printf '%s/%04d.env\n' "$SINK_DIR" "$n"
}

# e2e_no_received: a message (stdin) without the Received fields of its
# header, continuation lines included (Postfix's own, which milters never
# see), to compare a delivered message with the one sent.
e2e_no_received() {
    awk 'h == 0 && /^\r?$/ { h = 1 }
         h == 0 && /^Received:/ { skip = 1; next }
         h == 0 && skip && /^[ \t]/ { next }
         { skip = 0; print }'
}

# e2e_sink_reply rcpt|data [REPLY]: make the sink answer RCPT (or end of
# DATA) with REPLY, e.g. "450 4.2.0 try later"; no REPLY = back to 250.
e2e_sink_reply() {
    local what=$1; shift
    if [ $# -gt 0 ]; then
        printf '%s\n' "$*" >"$SINK_DIR/reply-$what"
    else
        rm -f "$SINK_DIR/reply-$what"
    fi
}

# --------------------------------------------------------------------------
# DNS test server

# e2e_dns_start ZONEFILE: start dnsd.py (UDP+TCP on 127.0.0.1); exports
# DNS_PORT and DNS_QUERY_LOG (one "qname TYPE proto" line per query).
e2e_dns_start() {
    local zone=$1
    [ -n "$zone" ] || { echo "# e2e_dns_start: need a zone file"; return 1; }
    case $zone in /*) ;; *) zone=$PWD/$zone ;; esac
    DNS_QUERY_LOG=$E2E_DIR/dns-queries.log
    rm -f "$E2E_DIR/dns.port"
    : >"$DNS_QUERY_LOG"
    e2e_bg dnsd "$E2E_PY" "$E2E_LIB_DIR/dnsd.py" --zone "$zone" \
        --port-file "$E2E_DIR/dns.port" --query-log "$DNS_QUERY_LOG"
    E2E_DNS_PID=$E2E_BG_PID
    if ! e2e_wait_file "$E2E_DIR/dns.port" 10 "$E2E_DNS_PID"; then
        echo "# dnsd did not start:"; sed 's/^/#   /' "$E2E_DIR/dnsd.log"
        return 1
    fi
    DNS_PORT=$(cat "$E2E_DIR/dns.port")
    export DNS_PORT DNS_QUERY_LOG
    e2e_wait_port "$DNS_PORT" 10
}

# e2e_dns_query NAME [TYPE=A] [udp|tcp]: ask the test server; prints
# "status: RCODE" and then one zone-format line per answer record
# ("status: TIMEOUT" and rc 2 if no answer within 2s).
e2e_dns_query() {
    "$E2E_PY" "$E2E_LIB_DIR/dnsq.py" --port "$DNS_PORT" ${3:+--$3} "$1" "${2:-A}"
}

# --------------------------------------------------------------------------
# private Postfix instance

e2e__pf_main_cf() {
    local d=$1 port=$2 milter=$3
    cat <<EOF
# generated by tests/e2e/lib.sh -- private test instance, loopback only
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-e2e
maillog_file = $d/maillog
maillog_file_prefixes = $d
myhostname = gw.portero.test
mydomain = portero.test
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
# smtpd listens on 127.0.0.1 only (inet_interfaces), but IPv6 must be
# enabled or "XCLIENT ADDR=IPV6:2001:db8::7" fails: "501 Bad ADDR syntax"
inet_protocols = ipv4, ipv6
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains = static:ALL
relay_recipient_maps =
relayhost = [127.0.0.1]:$SINK_PORT
default_transport = smtp
relay_transport = relay
local_transport = error:local delivery disabled
virtual_transport = error:virtual delivery disabled
transport_maps =
fallback_relay =
smtp_fallback_relay =
smtp_dns_support_level = disabled
smtp_bind_address = 127.0.0.1
smtp_address_preference = ipv4
smtpd_peername_lookup = no
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtpd_sasl_auth_enable = no
# "permit" alone is fatal in smtpd ("specify at least one working instance
# of reject_unauth_destination ..."); with relay_domains = static:ALL this
# still lets every recipient through, whatever client XCLIENT presents.
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_authorized_xclient_hosts = 127.0.0.0/8
enable_long_queue_ids = yes
smtpd_milters = $milter
non_smtpd_milters = \$smtpd_milters
milter_default_action = tempfail
milter_protocol = 6
milter_connect_macros = j {daemon_name} {daemon_addr} {daemon_port} v _
milter_connect_timeout = 5s
milter_command_timeout = 10s
milter_content_timeout = 20s
biff = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_new_tls_session_rate_limit = 0
smtpd_client_auth_rate_limit = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 1000
smtpd_junk_command_limit = 1000
in_flow_delay = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
delay_warning_time = 0
smtp_connect_timeout = 5s
smtp_helo_timeout = 20s
default_process_limit = 20
EOF
}

e2e__pf_master_cf() {
    local port=$1
    cat <<EOF
# generated by tests/e2e/lib.sh -- every service chroot = n
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# e2e_postfix_start MILTER [param=value ...]: start a fresh private Postfix
# in $E2E_DIR/postfix: etc/ (config_directory: main.cf, master.cf), queue/,
# data/, maillog. smtpd listens on 127.0.0.1:$SMTP_PORT and everything is
# relayed to the sink (start it first). MILTER is the smtpd_milters value
# ("" = no milter), e.g. "unix:$E2E_DIR/portero.sock" or "inet:127.0.0.1:PORT".
# Extra main.cf settings may follow. Exports SMTP_PORT, E2E_PF_DIR (the
# postfix/ dir), E2E_PF_CONF (its etc/); sets E2E_PF_MASTER (master PID).
e2e_postfix_start() {
    local milter=$1; shift
    local d=$E2E_DIR/postfix port
    [ -n "$SINK_PORT" ] || { echo "# e2e_postfix_start: start the sink first"; return 1; }
    [ -z "$E2E_PF_MASTER" ] || { echo "# e2e_postfix_start: already running"; return 1; }
    E2E_PF_DIR=$d
    E2E_PF_CONF=$d/etc
    export E2E_PF_DIR E2E_PF_CONF
    mkdir -p "$d" || return 1
    chmod 755 "$d"
    # fresh queue each start; keep older logs as maillog.N
    rm -rf "$d/queue" "$d/data"
    if [ -e "$d/maillog" ]; then
        local n=1
        while [ -e "$d/maillog.$n" ]; do n=$((n + 1)); done
        mv "$d/maillog" "$d/maillog.$n"
    fi
    # config_directory must not contain queue/ or data/: "postfix check"
    # walks it and warns about every non-root-owned file (and is slow)
    mkdir -p "$d/etc" || return 1
    chmod 755 "$d/etc"
    e2e__pf_mkqueue "$d/queue" "$d/data" || return 1

    for _ in 1 2 3; do
        port=$(e2e_free_port) || return 1
        e2e__pf_main_cf "$d" "$port" "$milter" >"$d/etc/main.cf"
        e2e__pf_master_cf "$port" >"$d/etc/master.cf"
        if [ $# -gt 0 ]; then
            "$E2E_POSTFIX_BIN/postconf" -c "$d/etc" -e "$@" || return 1
        fi
        e2e__pf_cool "$d/etc"
        if e2e__pf_run_master "$d/etc" >"$d/start.log" 2>&1; then
            E2E_PF_MASTER=$(tr -d ' \n' <"$d/queue/pid/master.pid" 2>/dev/null)
            SMTP_PORT=$port
            export SMTP_PORT
            if e2e__smtp_banner "$port" 10; then
                return 0
            fi
            echo "# postfix started but 127.0.0.1:$port gives no 220 banner:"
            [ -f "$d/maillog" ] && tail -n 20 "$d/maillog" | sed 's/^/#   /'
            return 1
        fi
        # the free port may have been taken in between: retry with another
        if ! grep -q 'Address already in use' "$d/start.log" "$d/maillog" 2>/dev/null; then
            break
        fi
    done
    echo "# postfix did not start:"
    sed 's/^/#   /' "$d/start.log"
    [ -f "$d/maillog" ] && tail -n 20 "$d/maillog" | sed 's/^/#   /'
    return 1
}

# Postfix re-reads a main.cf modified less than ~2s ago every 300ms until
# it is "cool" (dict_load_file: "pausing to let file cool down"), which
# costs ~2s at every start/reload and in the first daemons. Backdate it.
e2e__pf_cool() {
    touch -d "@$(($(date +%s) - 10))" "$1/main.cf" "$1/master.cf"
}

# create queue_directory and data_directory as postfix-files wants them
# (what "postfix start" does via "post-install create-missing")
e2e__pf_mkqueue() {
    local q=$1 data=$2 sub
    mkdir -p "$q" "$data" || return 1
    chmod 755 "$q" && chown root:root "$q" || return 1
    chown postfix: "$data" && chmod 700 "$data" || return 1
    for sub in active bounce corrupt defer deferred flush hold incoming \
               private saved trace; do
        mkdir -p "$q/$sub" && chown postfix: "$q/$sub" && chmod 700 "$q/$sub" || return 1
    done
    mkdir -p "$q/maildrop" "$q/public" "$q/pid" || return 1
    chown postfix:postdrop "$q/maildrop" "$q/public" || return 1
    chmod 730 "$q/maildrop" && chmod 710 "$q/public" && chmod 755 "$q/pid"
}

# start the master: by default directly ("master -w" waits until it is
# initialized, like "postfix start" does after its checks); the integrity
# checks of "postfix start" (post-install, postsuper, check-warn) take ~2s
# and find nothing on a fresh queue. E2E_PF_START=postfix uses
# "postfix -c DIR start" instead.
e2e__pf_run_master() {
    local conf=$1
    if [ "${E2E_PF_START:-master}" = postfix ]; then
        "$E2E_POSTFIX_BIN/postfix" -c "$conf" start
    else
        local daemon_dir
        daemon_dir=$("$E2E_POSTFIX_BIN/postconf" -c "$conf" -h daemon_directory) || return 1
        "$daemon_dir/master" -c "$conf" -w
    fi
}

# wait for an SMTP 220 banner on 127.0.0.1:PORT
e2e__smtp_banner() {
    local port=$1 deadline=$((SECONDS + ${2:-10})) line
    while [ $SECONDS -le $deadline ]; do
        line=$(
            exec 2>/dev/null
            exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
            IFS= read -r -t 2 l <&3
            printf 'QUIT\r\n' >&3
            printf '%s\n' "$l"
        )
        case $line in 220*) return 0 ;; esac
        sleep 0.1
    done
    return 1
}

# e2e_postfix_pids: master PID and its children (one per line).
e2e_postfix_pids() {
    [ -n "$E2E_PF_MASTER" ] || return 0
    e2e_alive "$E2E_PF_MASTER" || return 0
    echo "$E2E_PF_MASTER"
    ps -o pid= --ppid "$E2E_PF_MASTER" 2>/dev/null | tr -d ' '
}

# e2e_postfix_stop: stop the instance (SIGTERM to the master PID, as
# "postfix stop" does, without its 1s polling), wait for the master and
# all its children to go, SIGKILL leftovers by PID after 10s.
e2e_postfix_stop() {
    [ -n "$E2E_PF_MASTER" ] || return 0
    local pids p i alive
    pids=$(e2e_postfix_pids)
    kill -TERM "$E2E_PF_MASTER" 2>/dev/null
    for ((i = 0; i < 200; i++)); do
        alive=
        for p in $pids; do e2e_alive "$p" && alive="$alive $p"; done
        [ -z "$alive" ] && break
        sleep 0.05
    done
    for p in $alive; do
        echo "# postfix process $p did not exit, SIGKILL"
        kill -KILL "$p" 2>/dev/null
    done
    E2E_PF_MASTER=
    return 0
}

# e2e_postfix_reload [param=value ...]: change main.cf and "postfix reload"
# (keeps the queue). New smtpd connections see the new settings after the
# reload completes (waits until the log shows it).
e2e_postfix_reload() {
    [ -n "$E2E_PF_MASTER" ] || return 1
    if [ $# -gt 0 ]; then
        "$E2E_POSTFIX_BIN/postconf" -c "$E2E_PF_CONF" -e "$@" || return 1
    fi
    e2e__pf_cool "$E2E_PF_CONF"
    local before old p
    before=$(grep -c 'reload -- version' "$E2E_PF_DIR/maillog" 2>/dev/null)
    # children of the old generation (an idle smtpd must not take the next
    # connection with the old settings)
    old=$(e2e_postfix_pids | grep -vx "$E2E_PF_MASTER")
    "$E2E_POSTFIX_BIN/postfix" -c "$E2E_PF_CONF" reload >/dev/null 2>&1 || return 1
    e2e_wait_for 10 e2e__log_count_gt 'reload -- version' "${before:-0}" || return 1
    for p in $old; do
        e2e_wait_for 5 eval "! e2e_alive $p" || echo "# old postfix process $p still running"
    done
    return 0
}

e2e__log_count_gt() {
    local n
    n=$(grep -c -- "$1" "$E2E_PF_DIR/maillog" 2>/dev/null)
    [ "${n:-0}" -gt "$2" ]
}

# e2e_postconf ARGS...: run postconf against the test instance.
e2e_postconf() {
    "$E2E_POSTFIX_BIN/postconf" -c "$E2E_PF_CONF" "$@"
}

# e2e_sendmail ARGS... <MESSAGE: submit via the instance's sendmail
# (exercises non_smtpd_milters), e.g. e2e_sendmail -f a@x.test b@y.test <msg
e2e_sendmail() {
    "$E2E_POSTFIX_BIN/sendmail" -C "$E2E_PF_CONF" "$@"
}

# e2e_flush: ask the queue manager to retry deferred mail now.
e2e_flush() {
    "$E2E_POSTFIX_BIN/postqueue" -c "$E2E_PF_CONF" -f >/dev/null 2>&1
}

# e2e_queue_json: the queue as JSON, one object per line (postqueue -j).
e2e_queue_json() {
    "$E2E_POSTFIX_BIN/postqueue" -c "$E2E_PF_CONF" -j
}

# e2e_queue_count [QUEUE]: messages in the queue (QUEUE: active, deferred,
# hold, incoming, maildrop; default all).
e2e_queue_count() {
    e2e_queue_json | "$E2E_PY" -c '
import json, sys
want = sys.argv[1] if len(sys.argv) > 1 else None
n = 0
for line in sys.stdin:
    line = line.strip()
    if line and (want is None or json.loads(line).get("queue_name") == want):
        n += 1
print(n)' "$@"
}

# e2e_hold_count: messages in the hold queue (quarantine).
e2e_hold_count() {
    e2e_queue_count hold
}

# e2e_wait_delivered N [TIMEOUT=20]: wait until the sink holds >= N
# messages (flushing the queue now and then). Non-zero on timeout.
e2e_wait_delivered() {
    local want=$1 timeout=${2:-20} i
    for ((i = 0; i < timeout * 10; i++)); do
        [ "$(e2e_sink_count)" -ge "$want" ] && return 0
        # qmgr normally delivers at once; flush deferred mail every 2s
        if [ $i -gt 0 ] && [ $((i % 20)) = 0 ]; then e2e_flush; fi
        sleep 0.1
    done
    [ "$(e2e_sink_count)" -ge "$want" ]
}

# --------------------------------------------------------------------------
# maillog

# e2e_maillog: path of the instance's log file.
e2e_maillog() {
    echo "$E2E_PF_DIR/maillog"
}

# e2e_wait_log ERE [TIMEOUT=10]: wait until the maillog has a matching
# line (logging goes through postlogd and is asynchronous).
e2e_wait_log() {
    e2e_wait_for "${2:-10}" grep -Eq -- "$1" "$E2E_PF_DIR/maillog"
}

# e2e_log_qid ERE: queue id of the last maillog line matching ERE that
# carries one (long ids: 10+ chars of [0-9A-Za-z]).
e2e_log_qid() {
    grep -E -- "$1" "$E2E_PF_DIR/maillog" 2>/dev/null |
        sed -nE 's/^.*\]: ([0-9A-Za-z]{10,}): .*$/\1/p' | tail -n 1 |
        grep . || return 1
}

# e2e_log_for QID: all maillog lines of one queue id.
e2e_log_for() {
    grep -F -- ": $1: " "$E2E_PF_DIR/maillog"
}

# --------------------------------------------------------------------------
# SMTP client (swaks)

# e2e_send ARGS...: swaks --server 127.0.0.1 --port $SMTP_PORT --timeout 20
# ARGS...; the transcript goes to $E2E_DIR/swaks.XXXXXX (path in
# E2E_LAST_TRANSCRIPT, copied to $E2E_DIR/swaks.last) and is printed as
# TAP comments unless E2E_QUIET=1. Returns swaks' exit code.
e2e_send() {
    local t rc
    t=$(mktemp "$E2E_DIR/swaks.XXXXXX") || return 1
    swaks --server 127.0.0.1 --port "$SMTP_PORT" --timeout 20 "$@" >"$t" 2>&1
    rc=$?
    E2E_LAST_TRANSCRIPT=$t
    export E2E_LAST_TRANSCRIPT
    cp "$t" "$E2E_DIR/swaks.last"
    if [ "${E2E_QUIET:-0}" != 1 ]; then
        sed 's/^/#   /' "$t"
    fi
    return $rc
}

# e2e_last_reply [TRANSCRIPT]: last SMTP reply line from the server,
# ignoring the 221 to QUIT, e.g. "451 4.7.1 Service unavailable ...".
e2e_last_reply() {
    local t=${1:-$E2E_DIR/swaks.last}
    grep -E '^<[-~*]+ +[0-9]{3} ' "$t" | sed -E 's/^<[-~*]+ +//' |
        grep -v '^221 ' | tail -n 1
}

# e2e_reply_to VERB [TRANSCRIPT]: final reply line to the last client
# command VERB (BANNER, EHLO, HELO, XCLIENT, MAIL, RCPT, DATA (=354),
# DOT (= end of data, the "queued as" reply), QUIT).
e2e_reply_to() {
    local want=$1 t=${2:-$E2E_DIR/swaks.last}
    awk -v want="$(echo "$want" | tr "[:lower:]" "[:upper:]")" '
        BEGIN { verb = "BANNER"; indata = 0 }
        /^ *-> / || /^ *~> / {
            line = $0; sub(/^ *[-~]> /, "", line)
            if (indata) { if (line == ".") { verb = "DOT"; indata = 0 } ; next }
            split(line, w, /[ :]/); verb = toupper(w[1]); next
        }
        /^<[-~*]+ +[0-9][0-9][0-9] / {
            line = $0; sub(/^<[-~*]+ +/, "", line)
            if (verb == want) r = line
            if (verb == "DATA" && line ~ /^354/) indata = 1
        }
        END { if (r != "") print r; else exit 1 }' "$t"
}

# e2e_last_qid [TRANSCRIPT]: queue id from the "250 ... queued as ID" reply.
e2e_last_qid() {
    local t=${1:-$E2E_DIR/swaks.last}
    sed -nE 's/^<[-~*]+ +250 .*queued as ([0-9A-Za-z]+).*$/\1/p' "$t" |
        tail -n 1 | grep . || return 1
}

# e2e_xclient_args ADDR [NAME [HELO [LOGIN]]]: swaks options that make
# Postfix (and the milter) see that client; IPv6 as "IPV6:2001:db8::7",
# NAME "" or "[UNAVAILABLE]" for no reverse name. HELO is sent both as
# XCLIENT HELO= and as swaks' EHLO (swaks sends EHLO again after XCLIENT,
# which would otherwise replace it). LOGIN makes the session
# SASL-authenticated (milter macro {auth_authen}; same as "--xclient LOGIN=x").
# Use unquoted: e2e_send $(e2e_xclient_args 203.0.113.7 mx.example.test) ...
e2e_xclient_args() {
    local out="--xclient-addr $1"
    [ -n "$2" ] && out="$out --xclient-name $2"
    [ -n "$3" ] && out="$out --xclient-helo $3 --helo $3"
    [ -n "$4" ] && out="$out --xclient-login $4"
    echo "$out"
}

# --------------------------------------------------------------------------
# TAP

# e2e_diag TEXT...: print a TAP comment line per line of TEXT.
e2e_diag() {
    printf '%s\n' "$*" | sed 's/^/# /'
}

# e2e_ok NAME: a passing test.
e2e_ok() {
    E2E_TESTNUM=$((E2E_TESTNUM + 1))
    echo "ok $E2E_TESTNUM - $1"
    return 0
}

# e2e_fail NAME [DETAIL...]: a failing test, DETAIL as diagnostics.
e2e_fail() {
    local name=$1; shift
    E2E_TESTNUM=$((E2E_TESTNUM + 1))
    E2E_FAILED=$((E2E_FAILED + 1))
    echo "not ok $E2E_TESTNUM - $name"
    [ $# -gt 0 ] && e2e_diag "$@"
    return 1
}

# e2e_skip NAME REASON: a skipped test ("ok N - NAME # SKIP REASON").
e2e_skip() {
    E2E_TESTNUM=$((E2E_TESTNUM + 1))
    echo "ok $E2E_TESTNUM - $1 # SKIP ${2:-skipped}"
    return 0
}

# e2e_check NAME CMD...: ok if CMD exits 0, else not ok with its output.
# CMD runs in the current shell (not a subshell), so e.g.
# "e2e_check 'postfix up' e2e_postfix_start ''" keeps the variables it sets.
e2e_check() {
    local name=$1 rc out; shift
    out=$(mktemp "$E2E_DIR/check.XXXXXX") || out=/dev/null
    "$@" >"$out" 2>&1
    rc=$?
    if [ $rc = 0 ]; then
        e2e_ok "$name"
    else
        e2e_fail "$name" "command failed (rc=$rc): $*" "$(cat "$out" 2>/dev/null)"
    fi
    [ "$out" = /dev/null ] || rm -f "$out"
    return $rc
}

# e2e_is NAME GOT EXPECTED: string equality.
e2e_is() {
    if [ "$2" = "$3" ]; then
        e2e_ok "$1"
    else
        e2e_fail "$1" "got:      '$2'" "expected: '$3'"
    fi
}

# e2e_like NAME STRING ERE: a line of STRING matches the extended regex ERE.
e2e_like() {
    if printf '%s\n' "$2" | grep -Eq -- "$3"; then
        e2e_ok "$1"
    else
        e2e_fail "$1" "got:      '$2'" "expected to match /$3/"
    fi
}

# e2e_grep NAME ERE FILE: FILE has a line matching ERE.
e2e_grep() {
    if grep -Eq -- "$2" "$3" 2>/dev/null; then
        e2e_ok "$1"
    else
        e2e_fail "$1" "no line matching /$2/ in $3:" "$(head -n 40 "$3" 2>&1)"
    fi
}

# e2e_nogrep NAME ERE FILE: FILE has no line matching ERE.
e2e_nogrep() {
    if ! grep -Eq -- "$2" "$3" 2>/dev/null; then
        e2e_ok "$1"
    else
        e2e_fail "$1" "unexpected line(s) matching /$2/ in $3:" "$(grep -E -- "$2" "$3" | head -n 10)"
    fi
}

# e2e_done: print the plan "1..N" and exit 0 if every test passed, else 1.
e2e_done() {
    echo "1..$E2E_TESTNUM"
    if [ "$E2E_FAILED" -gt 0 ]; then
        echo "# $E2E_FAILED of $E2E_TESTNUM failed"
        exit 1
    fi
    exit 0
}
