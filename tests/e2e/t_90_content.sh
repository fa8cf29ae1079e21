#!/usr/bin/env bash
# t_90_content.sh -- the content stage through Postfix:
#   - the administrators' header_checks and body_checks files
#     (tests/data/rules/*.seed, regexp: syntax, trailing blanks and all)
#     load unchanged and act as Postfix would: REJECT gives 550 5.7.1 at
#     the end of DATA; IGNORE removes Received / X-Mailer /
#     X-Originating-IP / X-PHP-Originating-Script (only Postfix's own
#     Received, which the milter never sees, is left); the base64 line
#     of a Windows executable is refused by body_checks;
#   - HOLD puts the message in Postfix's hold queue (postqueue -j);
#     DISCARD answers 250, delivers nothing and logs verdict=discard;
#   - blocked attachments: invoice.exe, an RFC 2047 encoded .scr, an RFC
#     2231 continued name ending in .js, .exe inside an attached message
#     are refused ("550 5.7.1 Attachment type not allowed: NAME");
#     report.pdf passes, and a clean message with attachments arrives
#     byte for byte as sent but for the header fields portero adds;
#   - GTUBE is refused at the default kill level; a message between tag2
#     and kill gets the subject tag and X-Spam-Flag: YES; forged X-Spam-*
#     fields from the sender are gone;
#   - a catastrophic pattern against a crafted header: 451 within the
#     match limit, not a stalled worker;
#   - a 30 MB message is kept in a temporary file (metric), delivered, and
#     the spool directory is empty afterwards; a crash leftover there is
#     removed at start; over content.max_size: 552 5.3.4.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/portero.sh"
e2e_need_root
e2e_need postfix swaks
e2e_init
export E2E_QUIET=1
have_curl=1
command -v curl >/dev/null 2>&1 || have_curl=0
DATA=$E2E_LIB_DIR/../data/rules

e2e_sink_start || e2e_bail "sink"
e2e_at_exit '[ "$E2E_FAILED" -gt 0 ] && [ -f "$(pt_log)" ] && { echo "# --- last lines of $(pt_log) ---"; tail -n 40 "$(pt_log)" | sed "s/^/#   /"; }'

SPOOL=$E2E_DIR/spool
mkdir -p "$SPOOL" && chmod 700 "$SPOOL"
# what a crash between creating and unlinking a file could leave
: >"$SPOOL/portero-Xy12ab"
# the seed tables as they are, plus rules of our own after them
cp "$DATA/header_checks.seed" "$E2E_DIR/header_checks"
cat >>"$E2E_DIR/header_checks" <<'EOF'
/^Subject: please hold/ HOLD held for review
/^Subject: drop this/ DISCARD
/^Subject: cheap watches/ SCORE 6.0 cheap subject
/^X-Crafted: (a|aa)+(?<=b)$/ REJECT never reached
EOF
cp "$DATA/body_checks.seed" "$E2E_DIR/body_checks"
chmod 644 "$E2E_DIR/header_checks" "$E2E_DIR/body_checks"

mport=$(e2e_free_port)
conf() {
    pt_conf "
networks = { internal = [ \"10.0.0.0/8\" ]; };
thresholds = { reject = 10.0; };
metrics = { listen = \"127.0.0.1:$mport\"; };
content = { header_checks = \"regexp:$E2E_DIR/header_checks\";
  body_checks = \"regexp:$E2E_DIR/body_checks\";
  spool_dir = \"$SPOOL\"; memory_limit = \"1M\"; $1 };
spam = { tag_level = 1.0; tag2_level = 5.0; kill_level = 15.0; };"
}
conf 'max_size = "50M";'
pt_start || e2e_bail "portero did not start"
e2e_postfix_start "unix:$PT_SOCK" "message_size_limit=80000000" ||
    e2e_bail "postfix did not start"
e2e_check "crash leftover in the spool directory removed at start" \
    test ! -e "$SPOOL/portero-Xy12ab"

EXT=192.0.2.10
n_sent=0
# send NAME DATAFILE [FROM]: one message from EXT to bob@corp.example
send() {
    e2e_send $(pt_client $EXT mx.example.org mx.example.org) \
        --from "${3:-alice@example.org}" --to bob@corp.example --data "$2"
}
# refused NAME DATAFILE ERE: the end of DATA got a reply matching ERE
refused() {
    send "$1" "$2"
    e2e_like "$1" "$(e2e_reply_to DOT)" "$3"
}
# delivered NAME DATAFILE: 250 at the end of DATA, and in the sink
delivered() {
    send "$1" "$2"
    if ! e2e_like "$1: 250" "$(e2e_reply_to DOT)" '^250 '; then
        tail -n 5 "$E2E_DIR/swaks.last" | sed 's/^/#   /'
        return 1
    fi
    n_sent=$((n_sent + 1))
    e2e_check "$1: delivered" e2e_wait_delivered "$n_sent" 20
}
metric() {
    curl -s "http://127.0.0.1:$mport/metrics" | grep -E "^$1 " | sed -E 's/.* ([0-9.e+]+)$/\1/' | head -n 1
}
# msg FILE HEADERS BODY: a message file with CRLF line ends
msg() {
    printf '%b\n\n%b\n' "$2" "$3" | sed 's/$/\r/' >"$1"
}
HDR='From: Alice <alice@example.org>\nTo: Bob <bob@corp.example>\nDate: Wed, 25 Nov 2026 10:00:00 +0000\nMessage-ID: <m-RANDOM@example.org>'
hdr() { printf '%s' "${HDR/RANDOM/$RANDOM$RANDOM}"; }

# ---- the seed tables -------------------------------------------------------
msg "$E2E_DIR/m1.eml" "$(hdr)\nSubject: Make Money fast" "hello"
refused "seed header_checks: /Make Money/ REJECT" "$E2E_DIR/m1.eml" '^550 5\.7\.1 '
pt_wait_log 'verdict=reject code=550 dsn=5\.7\.1 .*content=header_checks:15' 10
e2e_grep "decision line names the rule" 'verdict=reject code=550 dsn=5\.7\.1 .*content=header_checks:15' "$(pt_log)"
msg "$E2E_DIR/m2.eml" "$(hdr)\nSubject: Got Debt k42" "hello"
refused "seed header_checks: /Got Debt? [7xkeh]/ refuses 'Got Debt k42'" "$E2E_DIR/m2.eml" '^550 5\.7\.1 '
# POSIX ERE as in Postfix: "t?" is an optional t, not a literal '?'
msg "$E2E_DIR/m3.eml" "$(hdr)\nSubject: Got Debt? k42" "hello"
delivered "seed header_checks: ... but not 'Got Debt? k42' (as Postfix)" "$E2E_DIR/m3.eml"

msg "$E2E_DIR/m4.eml" "Received: from pc1.corp.internal (10.9.9.9)\nReceived: from pc2.corp.internal\n$(hdr)\nSubject: cleanup\nX-Mailer: Outlook 16\nX-Originating-IP: [10.9.9.9]\nX-PHP-Originating-Script: 33:mail.php\nX-Keep: yes" "body"
delivered "seed IGNORE rules" "$E2E_DIR/m4.eml"
got=$(sed -e 's/\r$//' -e '/^$/q' "$(e2e_sink_msg)")
e2e_is "IGNORE removed Received (but Postfix's own), X-Mailer, X-Originating-IP, X-PHP-Originating-Script" \
    "$(grep -ciE '^(Received: from pc|X-Mailer|X-Originating-IP|X-PHP-Originating-Script)' <<<"$got")" 0
e2e_is "other fields kept" "$(grep -c '^X-Keep: yes' <<<"$got")" 1

b64exe=$(head -c 200 /dev/zero | sed 's/^/MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00/' | head -c 120 | base64 -w 76 | head -n 2)
msg "$E2E_DIR/m5.eml" "$(hdr)\nSubject: your file\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"" \
    "--b1\nContent-Type: text/plain\n\nsee attached\n--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n$b64exe\n--b1--"
refused "seed body_checks: base64 of an executable" "$E2E_DIR/m5.eml" '^550 5\.7\.1 '
e2e_grep "body_checks rule logged" 'content=body_checks:[0-9]+' "$(pt_log)"

# ---- HOLD and DISCARD ------------------------------------------------------
msg "$E2E_DIR/m6.eml" "$(hdr)\nSubject: please hold this" "x"
send "HOLD" "$E2E_DIR/m6.eml"
e2e_like "HOLD: 250 to the client" "$(e2e_reply_to DOT)" '^250 '
e2e_check "HOLD: in Postfix's hold queue" e2e_wait_for 10 eval '[ "$(e2e_hold_count)" = 1 ]'
e2e_grep "HOLD: logged verdict=quarantine" 'verdict=quarantine .*content=header_checks:' "$(pt_log)"
msg "$E2E_DIR/m7.eml" "$(hdr)\nSubject: drop this one" "x"
before=$(e2e_sink_count)
send "DISCARD" "$E2E_DIR/m7.eml"
e2e_like "DISCARD: 250 to the client" "$(e2e_reply_to DOT)" '^250 '
e2e_grep "DISCARD: logged verdict=discard" 'verdict=discard .*content=header_checks:' "$(pt_log)"
sleep 1
e2e_is "DISCARD: nothing delivered" "$(e2e_sink_count)" "$before"

# ---- attachments -----------------------------------------------------------
# att FILE CONTENT-HEADERS: a message with a text part and one attachment
att() {
    msg "$1" "$(hdr)\nSubject: files\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"zz\"" \
        "--zz\nContent-Type: text/plain; charset=utf-8\n\nplease see the file\n--zz\n$2\nContent-Transfer-Encoding: base64\n\naGVsbG8gd29ybGQ=\n--zz--"
}
att "$E2E_DIR/a1.eml" 'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="invoice.exe"'
refused "invoice.exe refused" "$E2E_DIR/a1.eml" '^550 5\.7\.1 Attachment type not allowed: invoice\.exe'
att "$E2E_DIR/a2.eml" 'Content-Type: application/octet-stream; name="=?UTF-8?B?ZmFjdHVyYV8yMDI2LnNjcg==?="'
refused "RFC 2047 encoded .scr refused" "$E2E_DIR/a2.eml" '^550 5\.7\.1 Attachment type not allowed: factura_2026\.scr'
att "$E2E_DIR/a3.eml" 'Content-Type: application/octet-stream\nContent-Disposition: attachment;\n filename*0="quarterly-results-";\n filename*1="viewer.js"'
refused "RFC 2231 continued name ending in .js refused" "$E2E_DIR/a3.eml" '^550 5\.7\.1 Attachment type not allowed: quarterly-results-viewer\.js'
msg "$E2E_DIR/a4.eml" "$(hdr)\nSubject: fwd\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"o\"" \
    "--o\nContent-Type: text/plain\n\nforwarded\n--o\nContent-Type: message/rfc822\n\nFrom: x@example.net\nSubject: inner\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"i\"\n\n--i\nContent-Type: application/octet-stream; name=\"setup.exe\"\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n--i--\n--o--"
refused ".exe inside an attached message refused" "$E2E_DIR/a4.eml" '^550 5\.7\.1 Attachment type not allowed: setup\.exe'
att "$E2E_DIR/a5.eml" 'Content-Type: application/pdf\nContent-Disposition: attachment; filename="report.pdf"'
if delivered "report.pdf passes" "$E2E_DIR/a5.eml"; then
    # byte for byte, but for Postfix's Received and the header fields
    # portero adds (none here: score 0 is below tag_level)
    # (swaks ends the data with one more CRLF of its own)
    got=$(e2e_no_received <"$(e2e_sink_raw)" | sed '${/^\r$/d}' | md5sum)
    want=$(md5sum <"$E2E_DIR/a5.eml")
    e2e_is "clean message with attachments delivered byte for byte" "$got" "$want"
fi

# ---- GTUBE and the spam levels -----------------------------------------------
G1='XJS*C4JDBQADN1.NSBN3*2IDNEN*'
G2='GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
msg "$E2E_DIR/g.eml" "$(hdr)\nSubject: test" "This is the GTUBE\n$G1$G2\n"
refused "GTUBE refused at the default kill level" "$E2E_DIR/g.eml" '^550 5\.7\.1 Message rejected as spam'
e2e_grep "GTUBE logged" 'verdict=reject .* by=spam reason="content:gtube=1000\.0"' "$(pt_log)"
msg "$E2E_DIR/s.eml" "$(hdr)\nSubject: cheap watches\nX-Spam-Flag: NO\nX-Spam-Status: No, score=-50.0\nX-Spam-Score: -50" "buy"
if delivered "between tag2 and kill: delivered" "$E2E_DIR/s.eml"; then
    got=$(sed -e 's/\r$//' -e '/^$/q' "$(e2e_sink_msg)")
    e2e_like "subject tagged" "$got" '^Subject: \*\*\*SPAM\*\*\* cheap watches$'
    e2e_is "X-Spam-Flag: YES (the sender's NO is gone)" "$(grep '^X-Spam-Flag:' <<<"$got")" "X-Spam-Flag: YES"
    e2e_like "X-Spam-Status is portero's" "$(grep '^X-Spam-Status:' <<<"$got")" '^X-Spam-Status: Yes, score=6\.00 required=5\.00 tests=content:header_checks:'
    e2e_is "one X-Spam-Status, one X-Spam-Score" "$(grep -c '^X-Spam-Status:' <<<"$got") $(grep -c '^X-Spam-Score:' <<<"$got")" "1 1"
    e2e_is "X-Spam-Level: six stars" "$(grep '^X-Spam-Level:' <<<"$got")" "X-Spam-Level: ******"
fi

# ---- a catastrophic pattern --------------------------------------------------
# (the lookbehind keeps the prefilter from ruling the header out: it widens
# lookarounds, so PCRE2 meets the exponential case)
msg "$E2E_DIR/c.eml" "$(hdr)\nSubject: crafted\nX-Crafted: $(printf 'a%.0s' $(seq 1 40))" "x"
t0=$(date +%s%N)
refused "catastrophic pattern: 451 (match limit), never a silent pass" "$E2E_DIR/c.eml" '^451 4\.3\.0 '
t1=$(date +%s%N)
e2e_like "catastrophic pattern: answered within 3 s" "$(( (t1 - t0) / 1000000 ))" '^([0-9]{1,3}|[12][0-9]{3})$'
e2e_grep "match limit logged" 'content: check failed: .*limit' "$(pt_log)"

# ---- a 30 MB message from the temporary file ------------------------------------
{
    printf '%b\r\n' "$(hdr | sed 's/\\n/\r\n/g')" 'Subject: big one' 'MIME-Version: 1.0' \
        'Content-Type: multipart/mixed; boundary="big"' '' '--big' 'Content-Type: text/plain' '' 'data follows' \
        '--big' 'Content-Type: application/octet-stream; name="data.bin"' 'Content-Transfer-Encoding: base64' ''
    head -c 22000000 /dev/urandom | base64 -w 76 | sed 's/$/\r/'
    printf -- '--big--\r\n'
} >"$E2E_DIR/big.eml"
spooled0=$( [ $have_curl = 1 ] && metric portero_content_spooled_total)
delivered "30 MB message" "$E2E_DIR/big.eml"
if [ $have_curl = 1 ]; then
    spooled1=$(metric portero_content_spooled_total)
    e2e_is "30 MB message kept in a temporary file" "$(( ${spooled1:-0} - ${spooled0:-0} ))" 1
else
    e2e_skip "30 MB message kept in a temporary file" "no curl"
fi
e2e_is "spool directory empty afterwards" "$(find "$SPOOL" -name 'portero-*' | wc -l)" 0

# ---- content.max_size ----------------------------------------------------------
conf 'max_size = "1M";'
kill -USR1 "$PT_PID"
pt_wait_log "configuration reloaded from" 10
sleep 0.5
head -c 1500000 /dev/urandom | base64 -w 76 >"$E2E_DIR/b1.txt"
msg "$E2E_DIR/over.eml" "$(hdr)\nSubject: too big" "$(cat "$E2E_DIR/b1.txt")"
refused "over content.max_size: 552 5.3.4" "$E2E_DIR/over.eml" '^552 5\.3\.4 '
e2e_grep "552 logged" 'verdict=reject code=552 dsn=5\.3\.4' "$(pt_log)"
e2e_is "spool directory still empty" "$(find "$SPOOL" -name 'portero-*' | wc -l)" 0

pt_stop
pt_check_clean "no sanitizer report"
e2e_done
