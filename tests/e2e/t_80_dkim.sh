#!/usr/bin/env bash
# t_80_dkim.sh -- DKIM signing of outbound mail through Postfix; every
# signature is checked by python3-dkim (tests/e2e/dkimverify.py), which
# asks the DNS test server for the key records published in the zone.
#   - a.example (RSA), b.example (Ed25519) and c.example (RSA and
#     Ed25519: two signatures) signed for an internal client (10.1.2.3)
#     and for an authenticated one (203.0.113.50, XCLIENT LOGIN):
#     c=relaxed/relaxed, the expected a=, From twice in h=, no l=, the
#     log field dkim=signed:d=..,s=..,a=..; a subdomains = true key signs
#     a subdomain's mail with d= the parent;
#   - outbound.strip_headers: Received, X-Originating-IP, X-Mailer and
#     X-PHP-Originating-Script from the internal client are gone (only
#     Postfix's own Received, which the milter never sees, is left), the
#     signature still verifies; the same message inbound keeps them, is
#     not signed and its log line has no dkim= field;
#   - a From domain without a key: delivered unsigned, dkim=unsigned:no-key
#     (no From at all: dkim=unsigned:no-from);
#   - portero -t refuses a key file of mode 0640 ("readable by group or
#     others", naming the file), a missing key file and a key file owned
#     by another user; a daemon on such a config logs the bad keys, mail
#     of those domains goes unsigned with dkim=error:key-unavailable,
#     other domains are still signed; metrics;
#   - OpenDKIM KeyTable/SigningTable ("*@d.example" wildcard and a plain
#     domain pattern): signed the same way; then the sample migration
#     tables of tests/data/dkim/ (address before wildcard, "*@*.sub...",
#     NAME:SIGNER giving i=), dkim.keys still taking precedence;
#   - sign_for = "authenticated": an internal unauthenticated client is
#     not signed, an authenticated one is; sign_for = "internal": the
#     reverse.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/portero.sh"
e2e_need_root
e2e_need postfix swaks openssl
e2e_init
export E2E_QUIET=1
[ -x "$PORTERO" ] || e2e_bail "no portero binary at $PORTERO"
"$E2E_PY" -c 'import dkim, nacl, dnslib' 2>/dev/null ||
    e2e_skip_all "needs python3-dkim, python3-nacl and python3-dnslib in $E2E_PY"
have_curl=1
command -v curl >/dev/null 2>&1 || have_curl=0

# ---- keys and the zone ----------------------------------------------------
K=$E2E_DIR/keys
mkdir -p "$K" && chmod 700 "$K" || e2e_bail "mkdir $K"
# genkey rsa|ed25519 FILE: a PEM private key, mode 0600
genkey() {
    case $1 in
    rsa) openssl genrsa -out "$2" 2048 ;;
    ed25519) openssl genpkey -algorithm ed25519 -out "$2" ;;
    esac >/dev/null 2>&1 && chmod 600 "$2"
}
# txt rsa|ed25519 FILE: the key's DNS record "v=DKIM1; k=...; p=..."
# (Ed25519: the raw 32-byte public key, RFC 8463)
txt() {
    local p
    if [ "$1" = rsa ]; then
        p=$(openssl pkey -in "$2" -pubout -outform DER 2>/dev/null | base64 -w0)
    else
        p=$(openssl pkey -in "$2" -pubout -outform DER 2>/dev/null | tail -c 32 | base64 -w0)
    fi
    echo "v=DKIM1; k=$1; p=$p"
}
genkey rsa "$K/a.pem" && genkey ed25519 "$K/b.pem" &&
    genkey rsa "$K/c-rsa.pem" && genkey ed25519 "$K/c-ed.pem" &&
    genkey rsa "$K/d.pem" && genkey ed25519 "$K/t.pem" &&
    genkey rsa "$K/bad.pem" && genkey rsa "$K/other.pem" ||
    e2e_bail "openssl could not generate the keys"
chmod 640 "$K/bad.pem"
chown nobody "$K/other.pem"
{
    echo "s1._domainkey.a.example TXT $(txt rsa "$K/a.pem")"
    echo "e1._domainkey.b.example TXT $(txt ed25519 "$K/b.pem")"
    echo "r1._domainkey.c.example TXT $(txt rsa "$K/c-rsa.pem")"
    echo "e1._domainkey.c.example TXT $(txt ed25519 "$K/c-ed.pem")"
    echo "t1._domainkey.d.example TXT $(txt rsa "$K/d.pem")"
    echo "t2._domainkey.t.example TXT $(txt ed25519 "$K/t.pem")"
    # the subdomains = true key (a.example's key under another name)
    echo "s1._domainkey.p.example TXT $(txt rsa "$K/a.pem")"
    echo "s1._domainkey.bad.example TXT $(txt rsa "$K/bad.pem")"
} >"$E2E_DIR/zone"
# OpenDKIM tables of our own (the samples of tests/data/dkim/ come later)
cat >"$E2E_DIR/KeyTable" <<EOF
# name       domain:selector:key file
dkey         d.example:t1:$K/d.pem
tkey         t.example:t2:$K/t.pem
EOF
cat >"$E2E_DIR/SigningTable" <<EOF
# pattern     key name
*@d.example   dkey
t.example     tkey
EOF
chmod 644 "$E2E_DIR/KeyTable" "$E2E_DIR/SigningTable"

e2e_sink_start || e2e_bail "sink"
e2e_dns_start "$E2E_DIR/zone" || e2e_bail "dns server"
e2e_at_exit '[ "$E2E_FAILED" -gt 0 ] && [ -f "$(pt_log)" ] && { echo "# --- last lines of $(pt_log) ---"; tail -n 40 "$(pt_log)" | sed "s/^/#   /"; }'

mport=$(e2e_free_port)
KEY_A="{ domain = \"a.example\"; selector = \"s1\"; key = \"$K/a.pem\"; algorithm = \"rsa-sha256\"; }"
KEY_B="{ domain = \"b.example\"; selector = \"e1\"; key = \"$K/b.pem\"; algorithm = \"ed25519-sha256\"; }"
KEY_C="{ domain = \"c.example\"; selector = \"r1\"; key = \"$K/c-rsa.pem\"; algorithm = \"rsa-sha256\"; },
          { domain = \"c.example\"; selector = \"e1\"; key = \"$K/c-ed.pem\"; algorithm = \"ed25519-sha256\"; }"
KEY_P="{ domain = \"p.example\"; selector = \"s1\"; key = \"$K/a.pem\"; algorithm = \"rsa-sha256\"; subdomains = true; }"
KEY_BAD="{ domain = \"bad.example\"; selector = \"s1\"; key = \"$K/bad.pem\"; algorithm = \"rsa-sha256\"; }"
KEY_MISSING="{ domain = \"missing.example\"; selector = \"s1\"; key = \"$K/missing.pem\"; algorithm = \"rsa-sha256\"; }"
KEY_OTHER="{ domain = \"other.example\"; selector = \"s1\"; key = \"$K/other.pem\"; algorithm = \"rsa-sha256\"; }"
TABLES="key_table = \"$E2E_DIR/KeyTable\"; signing_table = \"$E2E_DIR/SigningTable\";"

# conf SIGN_FOR KEYS [DKIM-EXTRA]: the portero config
conf() {
    pt_conf "
dns = { mode = \"forward\"; forward = [ \"127.0.0.1@$DNS_PORT\" ]; timeout = \"2s\"; };
networks = { internal = [ \"127.0.0.0/8\", \"10.0.0.0/8\" ]; };
thresholds = { reject = 10.0; };
metrics = { listen = \"127.0.0.1:$mport\"; };
outbound = { strip_headers = [ \"Received\", \"X-Originating-IP\", \"X-Mailer\", \"X-PHP-Originating-Script\" ]; };
dkim = { sign_for = \"$1\";
         keys = ( $2 );
         canonicalization = \"relaxed/relaxed\"; oversign = [ \"From\" ];
         allow_unsafe_keys = false; envelope_fallback = false;
         $3 };"
}

# ---- helpers --------------------------------------------------------------
INT=10.1.2.3		# internal (networks.internal)
EXT=203.0.113.7		# external, inbound
AUTHIP=203.0.113.50	# external address, SASL-authenticated
n_sent=0
MSG=			# .raw path of the last message found by sink_find

re() { printf '%s' "$1" | sed 's/[.[\*^$+?(){}|/]/\\&/g'; }

# send IP FROM [LOGIN [DATAFILE]]: one message to bob@example.org
send() {
    local ip=$1 from=$2 login=$3 data=$4
    e2e_send $(pt_client "$ip" client.example.org client.example.org "$login") \
        --from "$from" --to bob@example.org ${data:+--data "$data"}
}

# sink_find FROM: MSG = the .raw of the last message with that envelope
# sender (the .eml next to it)
sink_find() {
    local f
    MSG=
    for f in "$SINK_DIR"/*.env; do
        [ -e "$f" ] || continue
        head -n 1 "$f" | grep -qF "MAIL FROM:<$1>" && MSG=${f%.env}.raw
    done
    [ -n "$MSG" ]
}

# logline FROM: the daemon's decision line for that sender (waits)
logline() {
    pt_wait_log "from=<$(re "$1")> rcpt=<bob@example\.org> verdict=" 10
    grep -E "from=<$(re "$1")> rcpt=<bob@example\.org> verdict=" "$(pt_log)" | tail -n 1
}

# delivered NAME FROM: the last session got 250 after DATA and the sink
# has the message (MSG set)
delivered() {
    if ! e2e_like "$1: delivered" "$(e2e_reply_to DOT)" '^250 '; then
        sed 's/^/#   /' "$E2E_DIR/swaks.last" | tail -n 15
        return 1
    fi
    n_sent=$((n_sent + 1))
    if e2e_wait_delivered "$n_sent" 20 && sink_find "$2"; then
        return 0
    fi
    e2e_fail "$1: in the sink" "sink has $(e2e_sink_count), want $n_sent"
    return 1
}

# headers FILE: the header block of a message, LF line ends
headers() { sed -e 's/\r$//' -e '/^$/q' "$1"; }

# verify NAME SPEC...: every DKIM-Signature of $MSG verifies and they
# are exactly SPEC ("domain:selector:algorithm" each, any order), each
# with c=relaxed/relaxed and no l=, and From twice in h= (oversigned)
verify() {
    local name=$1 out rc nsig want got bad=0 badov=0 line h nfrom
    shift
    out=$("$E2E_PY" "$E2E_LIB_DIR/dkimverify.py" --port "$DNS_PORT" "$MSG" 2>&1)
    rc=$?
    nsig=$(grep -c '^sig ' <<<"$out")
    if [ $rc = 0 ] && [ "$nsig" = $# ]; then
        e2e_ok "$name: $# signature(s), each verifies (python3-dkim, key from the test DNS)"
    else
        e2e_fail "$name: $# signature(s), each verifies (python3-dkim, key from the test DNS)" \
            "dkimverify rc=$rc:
$out
header:
$(headers "$MSG")"
    fi
    [ "$nsig" -gt 0 ] || return 1
    want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
    # d= is a domain name: compared without regard to case
    got=$(sed -nE 's/^sig [0-9]+ result=[a-z]+ d=([^ ]+) s=([^ ]+) a=([^ ]+) .*/\1:\2:\3/p' <<<"$out" |
        awk -F: '{ print tolower($1) ":" $2 ":" $3 }' | sort | tr '\n' ' ')
    VERIFY_OUT=$out
    e2e_is "$name: d=, s=, a= of the signatures" "$got" "$want"
    while read -r line; do
        case $line in sig*) ;; *) continue ;; esac
        case $line in
        *" c=relaxed/relaxed l=none "*) ;;
        *) bad=1 ;;
        esac
        h=$(sed -nE 's/.* h=([^ ]+).*/\1/p' <<<"$line")
        nfrom=$(tr ':' '\n' <<<"$h" | grep -cx from)
        [ "$nfrom" = 2 ] || badov=1
    done <<<"$out"
    if [ $bad = 0 ]; then
        e2e_ok "$name: c=relaxed/relaxed, no l="
    else
        e2e_fail "$name: c=relaxed/relaxed, no l=" "$(grep '^sig' <<<"$out")"
    fi
    if [ $badov = 0 ]; then
        e2e_ok "$name: From twice in h= (oversigned)"
    else
        e2e_fail "$name: From twice in h= (oversigned)" "$(grep -o 'sig [0-9]* .* h=[^ ]*' <<<"$out" | sed -E 's/ result=.* h=/ h=/')"
    fi
}

# nosig NAME: $MSG has no DKIM-Signature field
nosig() {
    if headers "$MSG" | grep -qi '^DKIM-Signature:'; then
        e2e_fail "$1: no DKIM-Signature" "$(headers "$MSG" | grep -i -A3 '^DKIM-Signature:')"
    else
        e2e_ok "$1: no DKIM-Signature"
    fi
}

# signed NAME IP FROM LOGIN LOGRE SPEC...: a message from FROM (header
# From = envelope sender) is delivered, verifies as SPEC, logged LOGRE
signed() {
    local name=$1 ip=$2 from=$3 login=$4 logre=$5
    shift 5
    send "$ip" "$from" "$login"
    delivered "$name" "$from" || return 1
    verify "$name" "$@"
    e2e_like "$name: logged dkim=signed" "$(logline "$from")" " dkim=signed:($logre) dir=out "
}

# unsigned NAME IP FROM LOGIN FIELD [DATAFILE]: delivered without a
# signature; FIELD: the log's dkim= value, "" = no dkim= field at all
unsigned() {
    local name=$1 ip=$2 from=$3 login=$4 field=$5 data=$6 line
    send "$ip" "$from" "$login" "$data"
    delivered "$name" "$from" || return 1
    nosig "$name"
    line=$(logline "$from")
    if [ -n "$field" ]; then
        e2e_like "$name: logged dkim=$field" "$line" " dkim=$(re "$field") dir="
    else
        case $line in
        ""|*" dkim="*) e2e_fail "$name: no dkim= in the log line" "line: '$line'" ;;
        *) e2e_ok "$name: no dkim= in the log line" ;;
        esac
    fi
}

metric() {
    curl -s "http://127.0.0.1:$mport/metrics" | grep -F "$1 " | sed -E 's/.* ([0-9.e+]+)$/\1/' | head -n 1
}
# metric_ge NAME SERIES MIN: the metric's value is at least MIN
metric_ge() {
    local v
    if [ "$have_curl" = 0 ]; then
        e2e_skip "$1" "no curl"
        return 0
    fi
    v=$(metric "$2")
    if [ -n "$v" ] && awk -v v="$v" -v m="$3" 'BEGIN { exit !(v >= m) }'; then
        e2e_ok "$1"
    else
        e2e_fail "$1" "$2 = '${v:-absent}', want >= $3" \
            "$(curl -s "http://127.0.0.1:$mport/metrics" | grep '^portero_dkim')"
    fi
}

# restart NAME: stop the daemon (sanitizer check), keep its log, start
# it on the current $E2E_DIR/portero.conf
restart() {
    if [ -n "$PT_PID" ]; then
        pt_stop
        pt_check_clean "$1: no sanitizer report in the previous daemon's log"
        cp "$(pt_log)" "$E2E_DIR/portero.$1.log"
    fi
    pt_start
}

ABC_LOG_C='d=c\.example,s=r1,a=rsa-sha256;d=c\.example,s=e1,a=ed25519-sha256|d=c\.example,s=e1,a=ed25519-sha256;d=c\.example,s=r1,a=rsa-sha256'

# ---- 1. the three domains, internal and authenticated -----------------
conf "authenticated+internal" "$KEY_A, $KEY_B, $KEY_C, $KEY_P" "$TABLES"
out=$("$PORTERO" -t -c "$E2E_DIR/portero.conf" 2>&1)
e2e_is "portero -t accepts the config (rc 0)" "$?" 0 || e2e_diag "$out"
pt_start || e2e_bail "portero did not start"
PT_SOCK=$E2E_DIR/portero.sock
# local_header_rewrite_clients empty: cleanup adds no From: to mail
# without one (the milter sees the headers cleanup adds)
e2e_postfix_start "unix:$PT_SOCK" local_header_rewrite_clients= ||
    e2e_bail "postfix did not start"

signed "a.example internal" $INT int@a.example "" \
    'd=a\.example,s=s1,a=rsa-sha256' a.example:s1:rsa-sha256
e2e_grep "the verifier asked the test DNS server for s1._domainkey.a.example TXT" \
    '^s1\._domainkey\.a\.example TXT' "$DNS_QUERY_LOG"
signed "a.example authenticated" $AUTHIP auth@a.example alice \
    'd=a\.example,s=s1,a=rsa-sha256' a.example:s1:rsa-sha256
signed "b.example internal" $INT int@b.example "" \
    'd=b\.example,s=e1,a=ed25519-sha256' b.example:e1:ed25519-sha256
signed "b.example authenticated" $AUTHIP auth@b.example alice \
    'd=b\.example,s=e1,a=ed25519-sha256' b.example:e1:ed25519-sha256
signed "c.example internal" $INT int@c.example "" \
    "$ABC_LOG_C" c.example:r1:rsa-sha256 c.example:e1:ed25519-sha256
signed "c.example authenticated" $AUTHIP auth@c.example alice \
    "$ABC_LOG_C" c.example:r1:rsa-sha256 c.example:e1:ed25519-sha256
# the From domain decides, whatever the envelope sender
cat >"$E2E_DIR/hdrfrom.eml" <<'MSG'
From: Header From <someone@B.Example>
To: bob@example.org
Subject: From header domain
Date: Mon, 01 Jan 2024 00:00:00 +0000
Message-ID: <hdrfrom.1@b.example>

the key is chosen by the From header
MSG
send $INT env@a.example "" "$E2E_DIR/hdrfrom.eml"
if delivered "From header decides" env@a.example; then
    verify "From header decides (envelope a.example, From B.Example)" b.example:e1:ed25519-sha256
fi
# subdomains = true: a key for p.example signs mail from host.p.example
signed "subdomains = true" $INT user@host.p.example "" \
    'd=p\.example,s=s1,a=rsa-sha256' p.example:s1:rsa-sha256

# ---- 2. outbound header cleanup -----------------------------------------
mkmsg() {
    cat <<MSG
Received: from laptop.corp.example (laptop.corp.example [10.1.2.3])
	by mx.corp.example (Postfix) with ESMTP id 4ABCDEF;
	Mon, 01 Jan 2024 00:00:00 +0000
Received: from [192.168.1.5] by laptop.corp.example; Mon, 01 Jan 2024 00:00:00 +0000
X-Originating-IP: [192.168.1.5]
X-Mailer: PHPMailer 6.8.0 (https://github.com/PHPMailer/PHPMailer)
X-PHP-Originating-Script: 1000:mailer.php
From: Strip Test <$1>
To: bob@example.org
Subject: trace headers
Date: Mon, 01 Jan 2024 00:00:00 +0000
Message-ID: <$2@a.example>
X-Keep: kept

body of the trace header test
MSG
}
mkmsg strip-out@a.example strip.out >"$E2E_DIR/strip-out.eml"
mkmsg strip-in@a.example strip.in >"$E2E_DIR/strip-in.eml"
TRACE_RE='^(X-Originating-IP|X-Mailer|X-PHP-Originating-Script):'
send $INT strip-out@a.example "" "$E2E_DIR/strip-out.eml"
if delivered "strip (outbound)" strip-out@a.example; then
    h=$(headers "$MSG")
    e2e_is "strip (outbound): one Received left" "$(grep -c '^Received:' <<<"$h")" 1
    # Postfix adds its own Received (by the gateway) after the milter:
    # the milter never sees it, it must stay; the client's two must go
    e2e_like "strip (outbound): the one left is Postfix's own" \
        "$(grep -A2 '^Received:' <<<"$h" | tr -d '\n')" \
        '^Received: from client\.example\.org .*by gw\.portero\.test \(Postfix\) with E?SMTP id '
    if grep -qE 'laptop\.corp\.example|mx\.corp\.example' <<<"$h"; then
        e2e_fail "strip (outbound): the client's Received fields are gone" \
            "$(grep -E -B1 -A2 'laptop\.corp\.example|mx\.corp\.example' <<<"$h")"
    else
        e2e_ok "strip (outbound): the client's Received fields are gone"
    fi
    if grep -qiE "$TRACE_RE" <<<"$h"; then
        e2e_fail "strip (outbound): X-Originating-IP, X-Mailer, X-PHP-Originating-Script gone" \
            "$(grep -iE "$TRACE_RE" <<<"$h")"
    else
        e2e_ok "strip (outbound): X-Originating-IP, X-Mailer, X-PHP-Originating-Script gone"
    fi
    e2e_like "strip (outbound): other fields kept" "$h" '^X-Keep: kept$'
    verify "strip (outbound)" a.example:s1:rsa-sha256
    e2e_like "strip (outbound): logged dkim=signed" "$(logline strip-out@a.example)" \
        ' dkim=signed:d=a\.example,s=s1,a=rsa-sha256 dir=out '
fi
unsigned "strip (inbound)" $EXT strip-in@a.example "" "" "$E2E_DIR/strip-in.eml"
h=$(headers "$MSG")
e2e_is "strip (inbound): all three Received kept (two + Postfix's)" \
    "$(grep -c '^Received:' <<<"$h")" 3
e2e_is "strip (inbound): X-Originating-IP, X-Mailer, X-PHP-Originating-Script kept" \
    "$(grep -ciE "$TRACE_RE" <<<"$h")" 3
e2e_like "strip (inbound): logged dir=in" "$(logline strip-in@a.example)" ' verdict=accept .* dir=in '

# ---- 3. no key -----------------------------------------------------------
unsigned "no key" $INT user@nokey.example "" "unsigned:no-key"
printf 'To: bob@example.org\nSubject: no From\nDate: Mon, 01 Jan 2024 00:00:00 +0000\nMessage-ID: <nofrom.1@a.example>\n\nno From field\n' \
    >"$E2E_DIR/nofrom.eml"
unsigned "no From field" $INT nofrom@a.example "" "unsigned:no-from" "$E2E_DIR/nofrom.eml"
unsigned "table pattern: *@d.example does not match sub.d.example" $INT user@sub.d.example "" "unsigned:no-key"

# ---- 5. OpenDKIM KeyTable / SigningTable ------------------------------
signed "table: *@d.example wildcard" $INT someone@d.example "" \
    'd=d\.example,s=t1,a=rsa-sha256' d.example:t1:rsa-sha256
signed "table: domain pattern t.example" $AUTHIP user@t.example alice \
    'd=t\.example,s=t2,a=ed25519-sha256' t.example:t2:ed25519-sha256

# the sample migration tables of tests/data/dkim/ (KEYDIR = the key dir):
# an address before a wildcard, "*@corp.example", a domain pattern, an
# i= identity (NAME:SIGNER), "*@*.sub.example" for subdomains
SAMPLE=$E2E_LIB_DIR/../data/dkim
sample_tables() {
    genkey rsa "$K/corp.example.s2026.pem" && genkey ed25519 "$K/corp.example.ed2026.pem" &&
        genkey rsa "$K/shop.example.mail.pem" && genkey rsa "$K/sub.example.s1.pem" ||
        { e2e_fail "sample tables: keys" "openssl failed"; return 1; }
    sed "s#KEYDIR#$K#g" "$SAMPLE/KeyTable" >"$E2E_DIR/KeyTable.sample"
    cp "$SAMPLE/SigningTable" "$E2E_DIR/SigningTable.sample"
    {
        echo "s2026._domainkey.corp.example TXT $(txt rsa "$K/corp.example.s2026.pem")"
        echo "ed2026._domainkey.corp.example TXT $(txt ed25519 "$K/corp.example.ed2026.pem")"
        echo "mail._domainkey.shop.example TXT $(txt rsa "$K/shop.example.mail.pem")"
        echo "s1._domainkey.sub.example TXT $(txt rsa "$K/sub.example.s1.pem")"
    } >>"$E2E_DIR/zone"
    conf "authenticated+internal" "$KEY_A" \
        "key_table = \"$E2E_DIR/KeyTable.sample\"; signing_table = \"$E2E_DIR/SigningTable.sample\";"
    if ! restart sample-tables; then
        e2e_fail "sample tables: daemon starts" "$(tail -n 20 "$(pt_log)")"
        return 1
    fi
    signed "sample tables: board@corp.example (address before the wildcard)" $INT board@corp.example "" \
        'd=corp\.example,s=ed2026,a=ed25519-sha256' corp.example:ed2026:ed25519-sha256
    signed "sample tables: *@corp.example" $AUTHIP staff@corp.example alice \
        'd=corp\.example,s=s2026,a=rsa-sha256' corp.example:s2026:rsa-sha256
    signed "sample tables: news@shop.example (NAME:SIGNER)" $INT news@shop.example "" \
        'd=[Ss]hop\.[Ee]xample,s=mail,a=rsa-sha256' shop.example:mail:rsa-sha256
    e2e_like "sample tables: news@shop.example: i=news@shop.example" "$VERIFY_OUT" \
        '^sig 0 result=pass .* i=news@shop\.example( |$)'
    signed "sample tables: domain pattern shop.example" $INT orders@shop.example "" \
        'd=[Ss]hop\.[Ee]xample,s=mail,a=rsa-sha256' shop.example:mail:rsa-sha256
    signed "sample tables: *@*.sub.example" $INT x@host.sub.example "" \
        'd=sub\.example,s=s1,a=rsa-sha256' sub.example:s1:rsa-sha256
    signed "sample tables: dkim.keys still first" $INT y@a.example "" \
        'd=a\.example,s=s1,a=rsa-sha256' a.example:s1:rsa-sha256
}

metric_ge "metrics: portero_dkim_total{result=\"signed\"}" 'portero_dkim_total{result="signed"}' 11
metric_ge "metrics: portero_dkim_total{result=\"unsigned\"}" 'portero_dkim_total{result="unsigned"}' 3
metric_ge "metrics: portero_dkim_signatures_total{key=\"rsa-sha256 a.example\"}" \
    'portero_dkim_signatures_total{key="rsa-sha256 a.example"}' 3
metric_ge "metrics: portero_dkim_signatures_total{key=\"ed25519-sha256 c.example\"}" \
    'portero_dkim_signatures_total{key="ed25519-sha256 c.example"}' 2

# ---- 4. unsafe and missing key files -----------------------------------
# tconf KEYS: a config file $E2E_DIR/t.conf for portero -t
tconf() {
    local save=$E2E_DIR/portero.conf.save
    cp "$E2E_DIR/portero.conf" "$save"
    conf "authenticated+internal" "$1"
    mv "$E2E_DIR/portero.conf" "$E2E_DIR/t.conf"
    mv "$save" "$E2E_DIR/portero.conf"
}
tconf "$KEY_A, $KEY_BAD"
out=$("$PORTERO" -t -c "$E2E_DIR/t.conf" 2>&1)
rc=$?
e2e_is "portero -t: key file mode 0640 refused (exit 1)" "$rc" 1
e2e_like "portero -t: mode 0640: the message names the file and 'group or others'" \
    "$out" "$(re "$K/bad.pem").*readable by group or others"
tconf "$KEY_A, $KEY_MISSING"
out=$("$PORTERO" -t -c "$E2E_DIR/t.conf" 2>&1)
rc=$?
e2e_is "portero -t: missing key file refused (exit 1)" "$rc" 1
e2e_like "portero -t: missing key file: the message names the file" "$out" "$(re "$K/missing.pem")"
tconf "$KEY_A, $KEY_OTHER"
out=$("$PORTERO" -t -c "$E2E_DIR/t.conf" 2>&1)
rc=$?
e2e_is "portero -t: key file owned by another user refused (exit 1)" "$rc" 1
e2e_like "portero -t: other owner: the message names the file" "$out" "$(re "$K/other.pem").*owned by"

# the daemon (no -t) starts on such a config, logs, signs the rest
conf "authenticated+internal" "$KEY_A, $KEY_BAD, $KEY_MISSING"
if restart bad-keys; then
    e2e_ok "daemon starts with an unsafe and a missing key file"
    e2e_grep "daemon: the mode 0640 key file is logged" \
        "$(re "$K/bad.pem").*group or others" "$(pt_log)"
    e2e_grep "daemon: the missing key file is logged" "$(re "$K/missing.pem")" "$(pt_log)"
    unsigned "unsafe key (0640)" $INT user@bad.example "" "error:key-unavailable"
    unsigned "missing key" $AUTHIP user@missing.example alice "error:key-unavailable"
    signed "a.example next to the bad keys" $INT again@a.example "" \
        'd=a\.example,s=s1,a=rsa-sha256' a.example:s1:rsa-sha256
    metric_ge "metrics: portero_dkim_errors_total{domain=\"bad.example\"}" \
        'portero_dkim_errors_total{domain="bad.example"}' 1
    metric_ge "metrics: portero_dkim_total{result=\"error\"}" 'portero_dkim_total{result="error"}' 2
else
    e2e_fail "daemon starts with an unsafe and a missing key file" "$(tail -n 20 "$(pt_log)")"
fi

# ---- 5b. the sample tables of tests/data/dkim/ -----------------------------
if [ -f "$SAMPLE/KeyTable" ] && [ -f "$SAMPLE/SigningTable" ]; then
    sample_tables
else
    e2e_skip "sample tables" "no tests/data/dkim/KeyTable and SigningTable"
fi

# ---- 6. sign_for ------------------------------------------------------------
conf "authenticated" "$KEY_A, $KEY_B"
if restart sign-for-auth; then
    unsigned "sign_for=authenticated: internal client" $INT int2@a.example "" ""
    signed "sign_for=authenticated: authenticated client" $AUTHIP auth2@b.example alice \
        'd=b\.example,s=e1,a=ed25519-sha256' b.example:e1:ed25519-sha256
else
    e2e_fail "sign_for=authenticated: daemon starts" "$(tail -n 20 "$(pt_log)")"
fi
conf "internal" "$KEY_A, $KEY_B"
if restart sign-for-internal; then
    unsigned "sign_for=internal: authenticated client" $AUTHIP auth3@a.example alice ""
    signed "sign_for=internal: internal client" $INT int3@a.example "" \
        'd=a\.example,s=s1,a=rsa-sha256' a.example:s1:rsa-sha256
else
    e2e_fail "sign_for=internal: daemon starts" "$(tail -n 20 "$(pt_log)")"
fi

e2e_postfix_stop
pt_stop
pt_check_clean "no sanitizer report"
e2e_done
