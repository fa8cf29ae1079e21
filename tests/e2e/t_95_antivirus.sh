#!/usr/bin/env bash
# t_95_antivirus.sh -- the antivirus module through Postfix, on a ClamAV
# database generated here (EICAR as an .hdb from sigtool --md5 and as the
# classic offset-0 .ndb body signature, .ndb signatures for markers):
#   - EICAR as a plain body, as a base64 attachment, inside a zip
#     attachment and inside an attached message (message/rfc822) is
#     refused at the end of DATA: "554 5.7.1 Virus found: NAME", and the
#     decision line has av=infected:NAME; so is a marker of the .ndb;
#   - outbound mail is scanned too: an internal client (networks.internal)
#     sending EICAR is refused (dir=out);
#   - a clean message with attachments arrives byte for byte as sent (but
#     for Postfix's Received), logged av=clean;
#   - a 30 MB message is scanned from the temporary file (content
#     memory_limit small, portero_content_spooled_total) and delivered
#     with av=clean; the spool directory is empty afterwards;
#   - zips nested deeper than max_recursion, and a zip bomb (64 MB of
#     zeros in 64 KB) past max_scan_size: scan_limit_action "tempfail"
#     gives 451 4.3.0 and av=limit:Heuristics.Limits.Exceeded.MaxRecursion
#     (.MaxScanSize); after a reload with "accept" both are delivered;
#   - a new .ndb added and SIGUSR1 during a stream of 30 clean messages
#     (two senders in parallel): every one gets 250, the new generation
#     has one signature more and replaces the old scanners, and afterwards
#     the new signature refuses its marker (it passed before);
#   - metrics: portero_av_scans_total{result="infected"}, _signatures;
#   - antivirus.clamd (a private clamd on a unix socket, same database;
#     skipped without /usr/sbin/clamd): the scan manager stops, EICAR gets
#     the same 554, a clean message is delivered;
#   - a scanner killed with SIGKILL mid-scan (PORTERO_TEST_SCAN_DELAY_MS
#     makes each scan wait before it starts; portero restarted with it):
#     that message gets 451 4.3.0 and av=error:scanner process died, a new
#     scanner replaces it and the next message is scanned normally.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/portero.sh"
e2e_need_root
e2e_need postfix swaks sigtool
e2e_init
export E2E_QUIET=1
have_curl=1
command -v curl >/dev/null 2>&1 || have_curl=0
CLAMD=${E2E_CLAMD:-/usr/sbin/clamd}
unset PORTERO_TEST_SCAN_DELAY_MS

e2e_sink_start || e2e_bail "sink"
e2e_at_exit '[ "$E2E_FAILED" -gt 0 ] && [ -f "$(pt_log)" ] && { echo "# --- last lines of $(pt_log) ---"; tail -n 40 "$(pt_log)" | sed "s/^/#   /"; }'

DB=$E2E_DIR/db
SPOOL=$E2E_DIR/spool
AVTMP=$E2E_DIR/avtmp
M=$E2E_DIR/msg
mkdir -p "$DB" "$SPOOL" "$AVTMP" "$M" && chmod 700 "$SPOOL" "$AVTMP" ||
    e2e_bail "mkdir"

# ---- the signature database and the messages ---------------------------------
# EICAR in two halves, so this script is not itself the test virus
printf '%s%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-' \
    'ANTIVIRUS-TEST-FILE!$H+H*' >"$E2E_DIR/eicar.txt"
MARKER1=PORTERO-TEST-MARKER-7d1f
MARKER2=PORTERO-TEST-MARKER-NEW-42
# Name:TargetType:Offset:HexSignature
ndb() { printf '%s:0:*:%s\n' "$1" "$(printf '%s' "$2" | od -An -tx1 | tr -d ' \n')"; }
# like freshclam: a temporary name, then rename
db_put() { cat >"$DB/.$1.tmp" && mv "$DB/.$1.tmp" "$DB/$1"; }
sigtool --md5 "$E2E_DIR/eicar.txt" | sed 's/:[^:]*$/:Eicar-Test-Signature/' | db_put test.hdb
# a hash only matches a whole file: a text body is saved by libclamav
# with its line end, so it also needs the classic body signature (offset
# 0: a part that starts with EICAR)
printf 'Eicar-Test-Signature:0:0:%s\n' "$(od -An -tx1 "$E2E_DIR/eicar.txt" | tr -d ' \n')" |
    db_put eicar.ndb
ndb Portero.Test.Sig "$MARKER1" | db_put test.ndb
[ "$(cut -d: -f2 "$DB/test.hdb")" = 68 ] || e2e_bail "sigtool --md5: $(cat "$DB/test.hdb")"

# every message (CRLF) but the big one; see the names below
"$E2E_PY" - "$M" "$E2E_DIR/eicar.txt" "$MARKER1" "$MARKER2" <<'PY' || e2e_bail "messages"
import base64, io, os, sys, zipfile
out, eicar_path, marker1, marker2 = sys.argv[1:5]
eicar = open(eicar_path, "rb").read()
n = [0]

def hdr(subject, frm="Alice <alice@example.org>", to="Bob <bob@corp.example>"):
    n[0] += 1
    return ("From: %s\nTo: %s\nDate: Wed, 25 Nov 2026 10:00:00 +0000\n"
            "Message-ID: <av-%d-%s@example.org>\nSubject: %s\n"
            % (frm, to, n[0], os.urandom(4).hex(), subject))

def b64(data):
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76))

def att(name, data, ctype="application/octet-stream"):
    return ('Content-Type: %s; name="%s"\nContent-Transfer-Encoding: base64\n'
            'Content-Disposition: attachment; filename="%s"\n\n%s\n'
            % (ctype, name, name, b64(data)))

def multipart(h, parts, boundary="b1"):
    body = "".join("--%s\n%s" % (boundary, p) for p in parts)
    return (h + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; '
            'boundary="%s"\n\n%s--%s--\n' % (boundary, body, boundary))

def text(s):
    return "Content-Type: text/plain; charset=utf-8\n\n%s\n" % s

def zipped(name, data, method=zipfile.ZIP_DEFLATED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", method) as z:
        z.writestr(name, data)
    return b.getvalue()

def write(name, s):
    if isinstance(s, str):
        s = s.encode("latin-1")
    s = s.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    open(os.path.join(out, name), "wb").write(s)

E = eicar.decode("latin-1")
write("plain.eml", hdr("plain") + "\n" + E + "\n")
write("b64.eml", multipart(hdr("attached"), [text("see the file"),
                                             att("note.txt", eicar)]))
write("zip.eml", multipart(hdr("zipped"), [text("see the archive"),
      att("docs.zip", zipped("readme.txt", eicar), "application/zip")]))
inner = multipart(hdr("inner", "x@example.net"), [text("inner text"),
                  att("note.txt", eicar)], "i1")
write("rfc822.eml", multipart(hdr("fwd"), [text("forwarded"),
      "Content-Type: message/rfc822\n\n" + inner]))
write("out.eml", multipart(hdr("from inside", "Carol <carol@corp.example>",
      "Dave <dave@example.net>"), [text("see the file"), att("note.txt", eicar)]))
write("marker1.eml", hdr("marker one") + "\nhello " + marker1 + "\n")
write("marker2.eml", hdr("marker two") + "\nhello " + marker2 + "\n")
write("clean.eml", multipart(hdr("files"), [text("please see the files"),
      att("report.pdf", b"%PDF-1.4\n" + os.urandom(6000), "application/pdf"),
      att("data.zip", zipped("data.csv", b"a,b,c\n1,2,3\n" * 200),
          "application/zip")]))
# 20 zips one in the other (stored), a text file in the innermost
data, name = b"nothing to see here\n", "hello.txt"
for i in range(20):
    data, name = zipped(name, data, zipfile.ZIP_STORED), "level%d.zip" % i
write("nest.eml", multipart(hdr("nested"), [text("deep"),
      att("archive.zip", data, "application/zip")]))
write("bomb.eml", multipart(hdr("bomb"), [text("zeros"),
      att("zeros.zip", zipped("zeros.bin", bytes(64 << 20)), "application/zip")]))
write("small.eml", hdr("stream") + "\njust text\n")
PY

# ---- portero and Postfix ------------------------------------------------------
mport=$(e2e_free_port)
# conf [ANTIVIRUS-EXTRA]
conf() {
    pt_conf "
networks = { internal = [ \"10.0.0.0/8\" ]; };
metrics = { listen = \"127.0.0.1:$mport\"; };
content = { spool_dir = \"$SPOOL\"; memory_limit = \"256K\"; max_size = \"60M\"; };
antivirus = { database = \"$DB\"; tmpdir = \"$AVTMP\"; scanners = ${SCANNERS:-2};
  check_interval = \"0s\"; timeout = \"60s\"; max_scan_time = \"50s\";
  max_file_size = \"60M\"; max_scan_size = \"${MAXSCAN:-150M}\"; max_recursion = 16;
  $1 };"
}
conf 'scan_limit_action = "tempfail";'
"$PORTERO" -t -c "$E2E_DIR/portero.conf" >"$E2E_DIR/conf-check.log" 2>&1 ||
    e2e_bail "config refused: $(cat "$E2E_DIR/conf-check.log")"
pt_start || e2e_bail "portero did not start"
e2e_check "signature database loaded" pt_wait_log 'antivirus: generation 1: [0-9]+ signatures' 60
e2e_postfix_start "unix:$PT_SOCK" "message_size_limit=80000000" \
    "milter_content_timeout=90s" || e2e_bail "postfix did not start"

EXT=192.0.2.10
INT=10.1.2.3
n_sent=0
n_infected=0
LOGMARK=0
# mark: decision lines after this point are the next message's
mark() { LOGMARK=$(wc -l <"$(pt_log)"); }
# dline: the newest decision line since mark (waits for it)
dline() {
    e2e_wait_for 10 eval 'tail -n +$((LOGMARK + 1)) "$(pt_log)" | grep -q " verdict="'
    tail -n +$((LOGMARK + 1)) "$(pt_log)" | grep ' verdict=' | tail -n 1
}
# send DATAFILE [CLIENT-ADDR]: one message through Postfix
send() {
    mark
    if [ "${2:-$EXT}" = "$INT" ]; then
        e2e_send $(pt_client "$INT" pc1.corp.example pc1.corp.example) \
            --from carol@corp.example --to dave@example.net --data "$1"
    else
        e2e_send $(pt_client "${2:-$EXT}" mx.example.org mx.example.org) \
            --from alice@example.org --to bob@corp.example --data "$1"
    fi
}
# infected NAME DATAFILE SIG-ERE [CLIENT-ADDR]: 554 naming the signature
infected() {
    send "$2" "$4"
    e2e_like "$1: 554 5.7.1 Virus found" "$(e2e_reply_to DOT)" "^554 5\.7\.1 Virus found: $3\b"
    e2e_like "$1: av=infected logged" "$(dline)" "verdict=reject code=554 dsn=5\.7\.1 .* av=infected:$3\b"
    n_infected=$((n_infected + 1))
}
# delivered NAME DATAFILE [CLIENT-ADDR]: 250 at the end of DATA, and in the sink
delivered() {
    send "$2" "$3"
    if ! e2e_like "$1: 250" "$(e2e_reply_to DOT)" '^250 '; then
        tail -n 5 "$E2E_DIR/swaks.last" | sed 's/^/#   /'
        return 1
    fi
    n_sent=$((n_sent + 1))
    e2e_check "$1: delivered" e2e_wait_delivered "$n_sent" 30
}
# sink_raw_of FILE: the sink's raw copy of the message sent from FILE
sink_raw_of() {
    local id
    id=$(grep -m1 -i '^Message-ID:' "$1" | tr -d '\r')
    grep -lxF -- "$id"$'\r' "$SINK_DIR"/*.raw | tail -n 1
}
metric() {
    curl -s "http://127.0.0.1:$mport/metrics" | grep -F "$1 " | grep -vE '^#' |
        sed -E 's/.* ([0-9.e+]+)$/\1/' | head -n 1
}
# reload: SIGUSR1 to the supervisor; waits for the milter's new
# configuration and the scan manager's new generation (when it runs one)
reload() {
    local c0 g0 want_gen=${1:-1}
    c0=$(grep -c 'configuration reloaded from' "$(pt_log)")
    g0=$(grep -c 'antivirus: generation [0-9]*:' "$(pt_log)")
    kill -USR1 "$PT_PID"
    e2e_wait_for 30 eval '[ "$(grep -c "configuration reloaded from" "$(pt_log)")" -gt "$c0" ]' || return 1
    [ "$want_gen" = 1 ] || return 0
    e2e_wait_for 60 eval '[ "$(grep -c "antivirus: generation [0-9]*:" "$(pt_log)")" -gt "$g0" ]'
}
SIG='Eicar-Test-Signature(\.UNOFFICIAL)?'
# scanner processes: children of the scan manager (comm portero-avmgr),
# itself a child of the supervisor next to the milter process
children() { cat "/proc/$1/task/$1/children" 2>/dev/null; }
avmgr() {
    local p
    for p in $(children "$PT_PID"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = portero-avmgr ] && { echo "$p"; return 0; }
    done
    return 1
}
scanners() {
    local m p
    m=$(avmgr) || return 1
    for p in $(children "$m"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = portero-scan ] && e2e_alive "$p" && echo "$p"
    done
}
# sigs: signature count of the newest engine generation
sigs() { grep -oE 'antivirus: generation [0-9]+: [0-9]+ signatures' "$(pt_log)" | tail -n 1 | awk '{print $4}'; }

# ---- EICAR every way ----------------------------------------------------------
infected "EICAR as the plain body" "$M/plain.eml" "$SIG"
infected "EICAR as a base64 attachment" "$M/b64.eml" "$SIG"
infected "EICAR inside a zip attachment" "$M/zip.eml" "$SIG"
infected "EICAR inside an attached message" "$M/rfc822.eml" "$SIG"
infected "custom .ndb signature" "$M/marker1.eml" 'Portero\.Test\.Sig(\.UNOFFICIAL)?'
infected "outbound: internal client sending EICAR" "$M/out.eml" "$SIG" "$INT"
e2e_like "outbound: the decision line says dir=out" "$(dline)" ' dir=out '
e2e_is "nothing infected delivered" "$(e2e_sink_count)" 0

# ---- clean mail ---------------------------------------------------------------
if delivered "clean message with attachments" "$M/clean.eml"; then
    # (swaks ends the data with one more CRLF of its own)
    got=$(e2e_no_received <"$(sink_raw_of "$M/clean.eml")" | sed '${/^\r$/d}' | md5sum)
    e2e_is "clean message delivered byte for byte" "$got" "$(md5sum <"$M/clean.eml")"
fi
e2e_like "clean message: av=clean logged" "$(dline)" 'verdict=accept .* av=clean( |$)'
delivered "marker of the next signature passes before it exists" "$M/marker2.eml"

# ---- a 30 MB message from the temporary file ------------------------------------
{
    printf '%s\r\n' 'From: Alice <alice@example.org>' 'To: Bob <bob@corp.example>' \
        'Date: Wed, 25 Nov 2026 10:00:00 +0000' "Message-ID: <big-$RANDOM$RANDOM@example.org>" \
        'Subject: big one' 'MIME-Version: 1.0' 'Content-Type: multipart/mixed; boundary="big"' \
        '' '--big' 'Content-Type: text/plain' '' 'data follows' '--big' \
        'Content-Type: application/octet-stream; name="data.bin"' \
        'Content-Transfer-Encoding: base64' ''
    head -c 22500000 /dev/urandom | base64 -w 76 | sed 's/$/\r/'
    printf -- '--big--\r\n'
} >"$M/big.eml"
e2e_diag "big message: $(stat -c %s "$M/big.eml") bytes"
spooled0=$([ $have_curl = 1 ] && metric portero_content_spooled_total)
t0=$SECONDS
delivered "30 MB message" "$M/big.eml"
e2e_diag "30 MB message took $((SECONDS - t0)) s"
e2e_like "30 MB message: av=clean logged" "$(dline)" 'verdict=accept .* av=clean .*size=3[0-9]{7} '
if [ $have_curl = 1 ]; then
    spooled1=$(metric portero_content_spooled_total)
    e2e_is "30 MB message scanned from a temporary file" "$(( ${spooled1:-0} - ${spooled0:-0} ))" 1
else
    e2e_skip "30 MB message scanned from a temporary file" "no curl"
fi
e2e_is "spool directory empty afterwards" "$(find "$SPOOL" -mindepth 1 | wc -l)" 0
rm -f "$M/big.eml"

# ---- scan limits ----------------------------------------------------------------
# (the 30 MB message needed the larger max_scan_size)
MAXSCAN=40M conf 'scan_limit_action = "tempfail";'
e2e_check "reload with max_scan_size 40M" reload
send "$M/nest.eml"
e2e_like "zips nested past max_recursion: 451 (scan_limit_action tempfail)" "$(e2e_reply_to DOT)" \
    '^451 4\.3\.0 Message could not be virus-scanned \(Heuristics\.Limits\.Exceeded\.MaxRecursion\)'
e2e_like "nested zips: av=limit logged" "$(dline)" \
    'verdict=tempfail code=451 dsn=4\.3\.0 .* av=limit:Heuristics\.Limits\.Exceeded\.MaxRecursion'
send "$M/bomb.eml"
e2e_like "zip bomb past max_scan_size: 451 (scan_limit_action tempfail)" "$(e2e_reply_to DOT)" \
    '^451 4\.3\.0 Message could not be virus-scanned \(Heuristics\.Limits\.Exceeded\.MaxScanSize\)'
e2e_like "zip bomb: av=limit logged" "$(dline)" \
    'verdict=tempfail code=451 dsn=4\.3\.0 .* av=limit:Heuristics\.Limits\.Exceeded\.MaxScanSize'
MAXSCAN=40M conf 'scan_limit_action = "accept";'
e2e_check "reload with scan_limit_action accept" reload
delivered "nested zips after the reload: accepted" "$M/nest.eml"
e2e_like "nested zips: still av=limit, verdict accept" "$(dline)" \
    'verdict=accept .* av=limit:Heuristics\.Limits\.Exceeded\.MaxRecursion'
delivered "zip bomb after the reload: accepted" "$M/bomb.eml"
e2e_like "zip bomb: still av=limit, verdict accept" "$(dline)" \
    'verdict=accept .* av=limit:Heuristics\.Limits\.Exceeded\.MaxScanSize'

# ---- a new signature and a reload during a stream of scans ----------------------
# stream ID N: N clean messages in a row, one transcript each
stream() {
    local i
    for ((i = 1; i <= $2; i++)); do
        swaks --server 127.0.0.1 --port "$SMTP_PORT" --timeout 30 \
            $(pt_client "$EXT" mx.example.org mx.example.org) \
            --from alice@example.org --to bob@corp.example \
            --data "$M/small.eml" >"$E2E_DIR/stream.$1.$i.tmp" 2>&1
        mv "$E2E_DIR/stream.$1.$i.tmp" "$E2E_DIR/stream.$1.$i"
    done
}
stream_done() { find "$E2E_DIR" -maxdepth 1 -name 'stream.*' ! -name '*.tmp' | wc -l; }
stream a 15 & spa=$!
E2E_PIDS+=("$spa")
stream b 15 & spb=$!
E2E_PIDS+=("$spb")
e2e_wait_for 60 eval '[ "$(stream_done)" -ge 6 ]'
sigs0=$(sigs)
ndb Portero.Test.New "$MARKER2" | db_put new.ndb
if reload; then e2e_ok "reload with the new signature"; else e2e_fail "reload with the new signature"; fi
at_reload=$(stream_done)
e2e_diag "stream: $at_reload of 30 messages done when the new generation was up"
wait "$spa" "$spb"
e2e_kill "$spa"; e2e_kill "$spb"     # (gone: just forgets them)
e2e_like "the reload happened during the stream" "$at_reload" '^([0-9]|1[0-9]|2[0-9])$'
ok=0 bad=
for f in "$E2E_DIR"/stream.[ab].*; do
    if e2e_reply_to DOT "$f" | grep -q '^250 '; then
        ok=$((ok + 1))
    else
        bad="$bad ${f##*/}: $(e2e_reply_to DOT "$f" || tail -n 3 "$f")"
    fi
done
e2e_is "stream: all 30 messages got 250" "$ok" 30 || e2e_diag "$bad"
n_sent=$((n_sent + 30))
e2e_check "stream: all 30 delivered" e2e_wait_delivered "$n_sent" 60
e2e_is "the new generation has one signature more" "$(sigs)" "$((sigs0 + 1))"
e2e_check "the old generation's scanners are gone: 2 scanners" \
    e2e_wait_for 30 eval '[ "$(scanners | wc -l)" = 2 ]'
infected "new signature after the reload" "$M/marker2.eml" 'Portero\.Test\.New(\.UNOFFICIAL)?'

# ---- metrics -----------------------------------------------------------------------
if [ $have_curl = 1 ]; then
    v=$(metric 'portero_av_scans_total{result="infected"}')
    if [ "${v%.*}" -ge "$n_infected" ] 2>/dev/null; then
        e2e_ok "metric: infected scans >= $n_infected ($v)"
    else
        e2e_fail "metric: infected scans >= $n_infected" "got '$v'"
    fi
    v=$(metric portero_av_signatures)
    e2e_like "metric: portero_av_signatures > 0" "${v%.*}" '^[1-9][0-9]*$'
    v=$(metric 'portero_av_scans_total{result="limit"}')
    e2e_like "metric: limit scans >= 4" "${v%.*}" '^([4-9]|[1-9][0-9]+)$'
else
    e2e_skip "metrics" "no curl"
fi

# ---- antivirus.clamd -----------------------------------------------------------------
if [ -x "$CLAMD" ]; then
    CD=$E2E_DIR/clamd
    mkdir -p "$CD" && chmod 700 "$CD"
    cat >"$CD/clamd.conf" <<EOF
LocalSocket $CD/clamd.sock
DatabaseDirectory $DB
TemporaryDirectory $CD
Foreground yes
LogFile $CD/clamd.log
PidFile $CD/clamd.pid
AlertExceedsMax yes
SelfCheck 0
EOF
    e2e_bg clamd "$CLAMD" -c "$CD/clamd.conf"
    CLAMD_PID=$E2E_BG_PID
    if e2e_check "clamd up" e2e_wait_socket "$CD/clamd.sock" 60 "$CLAMD_PID"; then
        conf "clamd = \"unix:$CD/clamd.sock\";"
        e2e_check "reload with antivirus.clamd" reload 0
        e2e_check "scan manager stopped (clamd does the scans)" e2e_wait_for 30 eval '! avmgr'
        infected "clamd: EICAR attachment" "$M/b64.eml" "$SIG"
        infected "clamd: EICAR inside a zip" "$M/zip.eml" "$SIG"
        delivered "clamd: clean message" "$M/clean.eml"
        e2e_like "clamd: av=clean logged" "$(dline)" 'verdict=accept .* av=clean( |$)'
        e2e_grep "clamd saw the EICAR" 'stream.*Eicar-Test-Signature.* FOUND' "$CD/clamd.log"
    else
        sed 's/^/#   /' "$E2E_DIR/clamd.log" "$CD/clamd.log" 2>/dev/null | tail -n 20
    fi
    e2e_kill "$CLAMD_PID" 10
else
    e2e_skip "antivirus.clamd" "no $CLAMD (package clamav-daemon)"
fi

pt_stop
pt_check_clean "no sanitizer report (first run)"

# ---- a scanner killed mid-scan ------------------------------------------------------
# each scan waits 4 s before it starts (test hook of the scan manager,
# read from the environment when it starts); one scanner
mv "$(pt_log)" "$E2E_DIR/portero.1.log"
SCANNERS=1 conf ''
export PORTERO_TEST_SCAN_DELAY_MS=4000
pt_start || e2e_bail "portero did not restart"
unset PORTERO_TEST_SCAN_DELAY_MS
e2e_check "restarted with the scan delay hook" pt_wait_log 'antivirus: generation 1: [0-9]+ signatures' 60
e2e_check "one scanner process" e2e_wait_for 30 eval '[ "$(scanners | wc -l)" = 1 ]'
victim=$(scanners)
# scanning: the scanner holds the message (the milter's memfd)
scanning() { ls -l "/proc/$1/fd" 2>/dev/null | grep -q 'memfd:portero-msg'; }
mark
( swaks --server 127.0.0.1 --port "$SMTP_PORT" --timeout 60 \
    $(pt_client "$EXT" mx.example.org mx.example.org) \
    --from alice@example.org --to bob@corp.example \
    --data "$M/small.eml" >"$E2E_DIR/killed.txt" 2>&1 ) &
kpid=$!
E2E_PIDS+=("$kpid")
if e2e_check "the scanner has the message" e2e_wait_for 30 scanning "$victim"; then
    kill -KILL "$victim"
fi
wait "$kpid"
e2e_kill "$kpid"
e2e_like "scanner killed mid-scan: 451 4.3.0" "$(e2e_reply_to DOT "$E2E_DIR/killed.txt")" '^451 4\.3\.0 '
e2e_like "scanner killed mid-scan: av=error logged" "$(dline)" 'verdict=tempfail .* av=error:'
e2e_grep "the manager saw it die" "scanner 1 \(generation 1, pid $victim\) killed by signal 9" "$(pt_log)"
e2e_check "a new scanner replaces it" e2e_wait_for 30 eval \
    '[ "$(scanners | wc -l)" = 1 ] && [ "$(scanners)" != "$victim" ]'
delivered "next message scanned normally" "$M/small.eml"
e2e_like "next message: av=clean" "$(dline)" 'verdict=accept .* av=clean( |$)'

pt_stop
pt_check_clean "no sanitizer report"
e2e_is "scanner temporary directories removed" "$(find "$AVTMP" -mindepth 1 | wc -l)" 0
e2e_done
