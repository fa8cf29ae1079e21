#!/usr/bin/env bash
# t_30_privileges.sh -- started as root, portero opens its socket, gives it
# to milter.user:milter.group with milter.socket_mode, and serves as that
# user; over an inet socket Postfix talks to it just the same.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/portero.sh"
e2e_need_root
e2e_need postfix swaks
id nobody >/dev/null 2>&1 || e2e_skip_all "no user nobody"
e2e_init
e2e_sink_start || e2e_bail "sink"
export E2E_QUIET=1
# the release build: a sanitizer runtime cannot stop the world in a
# process that changed its user (it is no longer dumpable)
PORTERO=$E2E_LIB_DIR/../../build/portero
PT_USER=nobody
pt_conf 'blacklist = { senders = [ "spammer@example.net" ]; };'
pt_start || e2e_bail "portero did not start"
e2e_is "socket owned by nobody:postfix" "$(stat -c '%U:%G %a' "$PT_SOCK")" "nobody:postfix 660"
child=$(pt_child)
uid=$(awk '/^Uid:/ { print $2 "," $3 "," $4 "," $5 }' "/proc/$child/status")
e2e_is "milter child runs as nobody (real, effective, saved, fs)" "$uid" \
    "$(id -u nobody),$(id -u nobody),$(id -u nobody),$(id -u nobody)"
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$PT_PID/status")
e2e_is "supervisor dropped root too" "$uid" "$(id -u nobody)"
gid=$(awk '/^Groups:/ { $1 = ""; print }' "/proc/$child/status" | tr -d ' ')
e2e_like "no supplementary group of root kept" "$gid" "^($(id -g nobody))?$"
e2e_postfix_start "unix:$PT_SOCK" || e2e_bail "postfix did not start"
e2e_send $(pt_client 192.0.2.50 mx.example.org mx.example.org) \
    --from a@example.org --to bob@corp.example
e2e_like "mail flows through the unprivileged milter" "$(e2e_reply_to DOT)" '^250 '
e2e_send $(pt_client 192.0.2.50 mx.example.org mx.example.org) \
    --from spammer@example.net --to bob@corp.example
e2e_like "and it still refuses" "$(e2e_reply_to RCPT)" '^550 5\.7\.1 '
e2e_postfix_stop
pt_stop

# inet socket (TCP_NODELAY is set on the listener)
port=$(e2e_free_port)
PT_USER=
pt_conf 'blacklist = { senders = [ "spammer@example.net" ]; };'
sed -i "s|socket = \"unix:[^\"]*\"|socket = \"inet:$port@127.0.0.1\"|" "$E2E_DIR/portero.conf"
PT_SOCK=
e2e_bg portero "$PORTERO" -f -c "$E2E_DIR/portero.conf"
PT_PID=$E2E_BG_PID
e2e_wait_port "$port" 10 || e2e_bail "portero did not listen on $port"
e2e_postfix_start "inet:127.0.0.1:$port" || e2e_bail "postfix did not start"
e2e_send $(pt_client 192.0.2.51 mx.example.org mx.example.org) \
    --from spammer@example.net --to bob@corp.example
e2e_like "inet socket: refusal" "$(e2e_reply_to RCPT)" '^550 5\.7\.1 .*Sender address rejected'
e2e_send $(pt_client 192.0.2.51 mx.example.org mx.example.org) \
    --from a@example.org --to bob@corp.example
e2e_like "inet socket: accepted" "$(e2e_reply_to DOT)" '^250 '
e2e_postfix_stop
pt_stop
e2e_done
