# shellcheck shell=bash
# tests/e2e/store.sh -- helpers for the greylist and callout e2e tests
# (source after lib.sh and portero.sh): a private redis-server on
# loopback, the stand-in internal MTA (mta.py), portero-ctl.  Every
# process is started with e2e_bg (stopped by PID at exit) and stopped by
# PID here.

ST_REDIS_PID=
ST_REDIS_PORT=
ST_REDIS_N=0
ST_MTA_PID=
ST_MTA_PORT=
ST_MTA_N=0

# st_ctl ARGS...: portero-ctl next to $PORTERO (the build under test).
st_ctl() {
    "$(dirname "$PORTERO")/portero-ctl" "$@"
}

# st_redis_ping [PORT]: the server answers PONG.
st_redis_ping() {
    [ "$(redis-cli -h 127.0.0.1 -p "${1:-$ST_REDIS_PORT}" ping 2>/dev/null)" = PONG ]
}

# st_redis_cli ARGS...: redis-cli against the test server.
st_redis_cli() {
    redis-cli -h 127.0.0.1 -p "$ST_REDIS_PORT" "$@"
}

# st_redis_start [PORT]: start redis-server on 127.0.0.1:PORT (a free port
# if none; the same port again after st_redis_stop to simulate a restart),
# no persistence, in the foreground under e2e_bg; wait for PING. Sets
# ST_REDIS_PORT and ST_REDIS_PID; its log is $E2E_DIR/redis.N.log.
st_redis_start() {
    local want=$1 port
    for _ in 1 2 3 4 5; do
        port=${want:-$(e2e_free_port)}
        ST_REDIS_N=$((ST_REDIS_N + 1))
        mkdir -p "$E2E_DIR/redis" || return 1
        e2e_bg "redis.$ST_REDIS_N" redis-server --port "$port" \
            --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
            --dir "$E2E_DIR/redis" --protected-mode yes --logfile ""
        ST_REDIS_PID=$E2E_BG_PID
        if e2e_wait_for 10 st_redis_ping "$port"; then
            ST_REDIS_PORT=$port
            return 0
        fi
        echo "# redis-server on port $port did not answer:"
        sed 's/^/#   /' "$E2E_DIR/redis.$ST_REDIS_N.log"
        e2e_kill "$ST_REDIS_PID"
        ST_REDIS_PID=
        # a fixed port may still be busy for a moment: try again
        sleep 0.5
    done
    return 1
}

# st_redis_stop: stop the server by PID (data is lost: no persistence).
st_redis_stop() {
    [ -n "$ST_REDIS_PID" ] || return 0
    e2e_kill "$ST_REDIS_PID" 5
    local rc=$?
    ST_REDIS_PID=
    return $rc
}

# st_mta_start [mta.py options...]: start the stand-in internal MTA
# (tests/e2e/mta.py) on 127.0.0.1:$ST_MTA_PORT (a free port the first
# time, the same port on later starts), log $E2E_DIR/mta.log (appended),
# users file $E2E_DIR/mta.users. Sets ST_MTA_PID.
st_mta_start() {
    local picked=
    ST_MTA_N=$((ST_MTA_N + 1))
    for _ in 1 2 3 4 5; do
        [ -n "$ST_MTA_PORT" ] || { ST_MTA_PORT=$(e2e_free_port); picked=1; }
        rm -f "$E2E_DIR/mta.port"
        # readiness by --port-file: a test connection would be logged
        e2e_bg "mta.$ST_MTA_N" "$E2E_PY" "$E2E_LIB_DIR/mta.py" \
            --host 127.0.0.1 --port "$ST_MTA_PORT" \
            --users "$E2E_DIR/mta.users" --log "$E2E_DIR/mta.log" \
            --port-file "$E2E_DIR/mta.port" "$@"
        ST_MTA_PID=$E2E_BG_PID
        if e2e_wait_file "$E2E_DIR/mta.port" 10 "$ST_MTA_PID"; then
            return 0
        fi
        echo "# mta.py on port $ST_MTA_PORT did not start:"
        sed 's/^/#   /' "$E2E_DIR/mta.$ST_MTA_N.log"
        e2e_kill "$ST_MTA_PID"
        ST_MTA_PID=
        [ -n "$picked" ] && ST_MTA_PORT=
        sleep 0.5
    done
    return 1
}

# st_mta_stop: stop the stand-in by PID.
st_mta_stop() {
    [ -n "$ST_MTA_PID" ] || return 0
    e2e_kill "$ST_MTA_PID" 5
    local rc=$?
    ST_MTA_PID=
    return $rc
}

# st_mta_count ERE: lines of the stand-in's log matching ERE.
st_mta_count() {
    local n
    n=$(grep -cE -- "$1" "$E2E_DIR/mta.log" 2>/dev/null)
    echo "${n:-0}"
}

# st_rcpt_replies [TRANSCRIPT]: one "ADDRESS REPLY" line per RCPT TO
# command of the last swaks session, in order (REPLY = the final reply
# line, or "(none)" when the connection closed before one came).
st_rcpt_replies() {
    awk '
        /^ *-> / || /^ *~> / {
            line = $0; sub(/^ *[-~]> /, "", line)
            if (pending != "") { print pending " (none)"; pending = "" }
            if (toupper(substr(line, 1, 8)) == "RCPT TO:") {
                a = line; sub(/^[^<]*</, "", a); sub(/>.*$/, "", a)
                pending = a
            }
            next
        }
        /^<[-~*]+ +[0-9][0-9][0-9] / {
            r = $0; sub(/^<[-~*]+ +/, "", r)
            if (pending != "") { print pending " " r; pending = "" }
        }
        END { if (pending != "") print pending " (none)" }' \
        "${1:-$E2E_DIR/swaks.last}"
}
