# shellcheck shell=bash
# tests/e2e/portero.sh -- start and stop the portero daemon under test,
# for e2e scripts (source after lib.sh).  PORTERO is the binary (default
# build/asan/portero).  The daemon logs to $E2E_DIR/portero.log.

PORTERO=${PORTERO:-$E2E_LIB_DIR/../../build/asan/portero}
PT_PID=
PT_SOCK=

# pt_conf [EXTRA]: write $E2E_DIR/portero.conf: unix socket in $E2E_DIR
# owned by group postfix, logs on stderr, then EXTRA (libconfig text).
pt_conf() {
    PT_SOCK=$E2E_DIR/portero.sock
    cat >"$E2E_DIR/portero.conf" <<CONF
milter = { socket = "unix:$PT_SOCK"; socket_mode = "0660"; user = "${PT_USER:-}";
  group = "postfix"; pidfile = "$E2E_DIR/portero.pid"; shutdown_timeout = "2s";
  ${PT_MILTER_EXTRA:-} };
log = { level = "info"; stderr = true; };
$1
CONF
    chmod 644 "$E2E_DIR/portero.conf"
}

# pt_start: start portero on $E2E_DIR/portero.conf, wait for its socket.
pt_start() {
    rm -f "$PT_SOCK"
    e2e_bg portero "$PORTERO" -f -c "$E2E_DIR/portero.conf"
    PT_PID=$E2E_BG_PID
    e2e_wait_for 10 test -S "$PT_SOCK" || { cat "$E2E_DIR/portero.log"; return 1; }
    e2e_wait_for 10 pt_child >/dev/null
}

# pt_child: PID of the milter child (the supervisor's only child).
pt_child() {
    local c
    c=$(cat "/proc/$PT_PID/task/$PT_PID/children" 2>/dev/null)
    c=${c%% *}
    [ -n "$c" ] && echo "$c"
}

# pt_log: the daemon's log file.
pt_log() { echo "$E2E_DIR/portero.log"; }

# pt_wait_log ERE [TIMEOUT=10]: wait until the daemon logged a matching line.
pt_wait_log() {
    e2e_wait_for "${2:-10}" grep -qE -- "$1" "$(pt_log)"
}

# pt_stop: SIGTERM the supervisor, wait for it; fails on sanitizer reports.
pt_stop() {
    [ -n "$PT_PID" ] || return 0
    e2e_kill "$PT_PID" 20
    PT_PID=
    ! grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer|WARNING: ThreadSanitizer' \
        "$(pt_log)"
}

# pt_check_clean NAME: TAP test that the log has no sanitizer report.
pt_check_clean() {
    if grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer|WARNING: ThreadSanitizer' "$(pt_log)"; then
        e2e_fail "$1" "$(grep -A20 -E 'Sanitizer|runtime error' "$(pt_log)" | head -40)"
    else
        e2e_ok "$1"
    fi
}

# pt_client ADDR NAME HELO [LOGIN]: swaks options presenting that client
# (XCLIENT) and sending that HELO name after it (swaks re-sends EHLO).
pt_client() {
    echo "$(e2e_xclient_args "$@") --helo $3"
}
