#!/usr/bin/env bash
# t_20_lifecycle.sh -- the daemon's life around Postfix: reload with a
# broken config keeps serving; a good reload changes behaviour for new
# connections without dropping one in flight; SIGKILL of the milter child
# is repaired within a second; a flood over milter.max_connections gets
# tempfail without a crash; SIGKILL of portero during a transaction makes
# Postfix tempfail and delivers nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/portero.sh"
e2e_need_root
e2e_need postfix swaks
e2e_init
e2e_sink_start || e2e_bail "sink"
PT_MILTER_EXTRA='max_connections = 10;'
BASE='networks = { internal = [ "127.0.0.0/8" ]; };
helo = { };
thresholds = { reject = 10.0; };'
pt_conf "$BASE
blacklist = { clients = [ \"203.0.113.0/24\" ]; };"
pt_start || e2e_bail "portero did not start"
e2e_postfix_start "unix:$PT_SOCK" smtpd_client_connection_count_limit=0 \
    default_process_limit=200 || e2e_bail "postfix did not start"
export E2E_QUIET=1
SMTPC="$E2E_PY $E2E_LIB_DIR/smtpc.py"

send_clean() {
    e2e_send $(pt_client "$1" mx.example.org mx.example.org) \
        --from a@example.org --to bob@corp.example
}

# 1. reload with a broken config: logged, old config keeps serving
cp "$E2E_DIR/portero.conf" "$E2E_DIR/good.conf"
echo 'bogus_setting = 1;' >>"$E2E_DIR/portero.conf"
kill -USR1 "$PT_PID"
pt_wait_log "reload failed, keeping the running configuration: .*portero\.conf:[0-9]+: setting 'bogus_setting': unknown setting" 10
e2e_check "broken reload is refused by name" grep -qE "reload failed.*'bogus_setting'" "$(pt_log)"
send_clean 192.0.2.20
e2e_like "still serving after a broken reload" "$(e2e_reply_to DOT)" '^250 '
send_clean 203.0.113.9
e2e_like "old config still in force (blacklist)" "$(e2e_reply_to RCPT)" '^554 5\.7\.1 '

# 2. a connection in flight keeps its config across a good reload
rm -f "$E2E_DIR/gate" "$E2E_DIR/inflight.out"
$SMTPC "$SMTP_PORT" pause 192.0.2.30 "$E2E_DIR/gate" "$E2E_DIR/inflight.out" &
inflight=$!
e2e_wait_for 20 grep -q ready "$E2E_DIR/inflight.out"
pt_conf "$BASE
blacklist = { clients = [ \"192.0.2.0/24\" ]; };"
kill -USR1 "$PT_PID"
pt_wait_log "configuration reloaded from .* \(generation 2\)" 10
e2e_check "good reload logged" grep -q "configuration reloaded" "$(pt_log)"
send_clean 192.0.2.21
e2e_like "new connection sees the new config" "$(e2e_reply_to RCPT)" \
    '^554 5\.7\.1 .*client \[192\.0\.2\.21\] blocked'
send_clean 203.0.113.9
e2e_like "new config dropped the old blacklist" "$(e2e_reply_to DOT)" '^250 '
touch "$E2E_DIR/gate"
wait "$inflight"
e2e_check "in-flight connection was not dropped" grep -q '^RCPT2 250' "$E2E_DIR/inflight.out"
e2e_like "in-flight message finished under its old config" \
    "$(grep '^DATA' "$E2E_DIR/inflight.out")" '^DATA 250 '
pt_conf "$BASE"
kill -USR1 "$PT_PID"
pt_wait_log "\(generation 3\)" 10

# 3. SIGKILL of the milter child: restarted within a second
old=$(pt_child)
t0=$(date +%s%N)
kill -KILL "$old"
e2e_wait_for 5 bash -c "c=\$(cat /proc/$PT_PID/task/$PT_PID/children 2>/dev/null); [ -n \"\$c\" ] && [ \"\${c%% *}\" != $old ]"
new=$(pt_child)
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
e2e_diag "child $old killed, new child $new after ${ms} ms"
if [ -n "$new" ] && [ "$new" != "$old" ] && [ "$ms" -le 1500 ]; then
    e2e_ok "killed child restarted within a second"
else
    e2e_fail "killed child restarted within a second" "old=$old new=$new ms=$ms"
fi
e2e_check "the supervisor logged the crash" grep -qE "milter process $old killed by signal 9" "$(pt_log)"
send_clean 192.0.2.22
e2e_like "transactions succeed after the restart" "$(e2e_reply_to DOT)" '^250 '

# 4. max_connections + 50 concurrent sessions: tempfail beyond the cap
$SMTPC "$SMTP_PORT" hold 60 192.0.2.40 "$E2E_DIR/flood.out"
okn=$(grep -c '^250 ' "$E2E_DIR/flood.out")
tfn=$(grep -cE '^4[0-9][0-9] ' "$E2E_DIR/flood.out")
e2e_diag "flood: $okn accepted, $tfn tempfailed, $(wc -l <"$E2E_DIR/flood.out") sessions"
e2e_is "10 sessions within the cap were served" "$okn" 10
e2e_is "50 sessions over the cap got tempfail" "$tfn" 50
pt_wait_log "verdict=tempfail code=451 dsn=4\.3\.2 by=max_connections" 5
e2e_check "over-cap refusals logged" grep -q "by=max_connections" "$(pt_log)"
e2e_check "portero survived the flood" e2e_alive "$PT_PID"
send_clean 192.0.2.23
e2e_like "serving normally after the flood" "$(e2e_reply_to DOT)" '^250 '

# 5. SIGKILL of portero during a transaction: Postfix tempfails
e2e_wait_for 20 bash -c "[ \$(postqueue -c '$E2E_PF_CONF' -j | wc -l) = 0 ]"
before=$(e2e_sink_count)
rm -f "$E2E_DIR/gate" "$E2E_DIR/kill.out"
$SMTPC "$SMTP_PORT" pause 192.0.2.31 "$E2E_DIR/gate" "$E2E_DIR/kill.out" &
victim=$!
e2e_wait_for 20 grep -q ready "$E2E_DIR/kill.out"
child=$(pt_child)
kill -KILL "$PT_PID"
e2e_wait_for 5 bash -c "! kill -0 $child 2>/dev/null"
e2e_check "the milter child died with the supervisor" bash -c "! kill -0 $child 2>/dev/null"
touch "$E2E_DIR/gate"
wait "$victim"
e2e_like "Postfix tempfails the transaction" "$(grep -E '^(RCPT2|DATA)' "$E2E_DIR/kill.out" | grep -v ' 250' | head -1)" \
    '^(RCPT2|DATA) 4[0-9][0-9]'
e2e_flush
sleep 2
e2e_is "nothing was delivered for it" "$(e2e_sink_count)" "$before"
PT_PID=

e2e_postfix_stop
pt_check_clean "no sanitizer report"
e2e_done
