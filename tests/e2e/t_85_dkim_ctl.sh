#!/usr/bin/env bash
# t_85_dkim_ctl.sh -- portero-ctl dkim keygen and dkim check, no Postfix:
# keygen writes DOMAIN.SELECTOR.pem with mode 0600 (RSA and Ed25519),
# never over an existing file, and prints a zone-file TXT line of quoted
# strings of at most 255 bytes and a config entry; the printed records
# go into the DNS test server; dkim check says match (with -k and with
# the key the config names), mismatch for another key, no record,
# revoked, and error for a bad record, SERVFAIL and a key file readable
# by others (accepted with dkim.allow_unsafe_keys); python3-dkim signs a
# message with each generated key and verifies it against the published
# record (and fails against another key's record).  No private key
# material on the output.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/portero.sh"
e2e_init
CTL=${PORTERO_CTL:-$(dirname "$PORTERO")/portero-ctl}
[ -x "$CTL" ] || e2e_bail "no portero-ctl at $CTL"
"$E2E_PY" -c 'import dkim, dnslib' 2>/dev/null ||
    e2e_skip_all "python3-dkim and python3-dnslib needed"

D=mail.example
KEYS=$E2E_DIR/keys
mkdir -p "$KEYS" "$E2E_DIR/other" || e2e_bail "mkdir"
: >"$E2E_DIR/zone"
e2e_dns_start "$E2E_DIR/zone" || e2e_bail "dns server"

SAN_RE='ERROR: AddressSanitizer|runtime error:|LeakSanitizer|WARNING: ThreadSanitizer'
SAN_SEEN=
# ctl ARGS...: runs portero-ctl; OUT (stdout), ERR (stderr), RC.  Call it
# directly (not in $(...)): it sets variables.
ctl() {
    OUT=$("$CTL" "$@" 2>"$E2E_DIR/ctl.err")
    RC=$?
    ERR=$(cat "$E2E_DIR/ctl.err")
    if grep -qE "$SAN_RE" "$E2E_DIR/ctl.err"; then
        SAN_SEEN="$SAN_SEEN
portero-ctl $*:
$ERR"
    fi
    printf '%s\n%s\n' "$OUT" "$ERR" >>"$E2E_DIR/ctl.all"
}

# rc_is NAME WANT: the last ctl exit status
rc_is() {
    e2e_is "$1" "$RC" "$2" || e2e_diag "stdout: $OUT" "stderr: $ERR"
}

# zone_of ZONE-LINE: the line keygen printed in dnsd.py syntax
# ("NAME TXT "s1" "s2"", without the trailing dot and the parentheses)
zone_of() {
    local name=${1%%. IN TXT *} value=${1#* IN TXT }
    value=${value#( }
    value=${value% )}
    echo "$name TXT $value"
}

# strings_ok ZONE-LINE: every quoted string is at most 255 bytes
strings_ok() {
    local s
    while read -r s; do
        [ ${#s} -le 257 ] || return 1
    done < <(grep -oE '"[^"]*"' <<<"$1")
}

# keygen_ok NAME SELECTOR ALG KIND: keygen into $KEYS, checks its output
# and the file; sets ZONE_<SELECTOR> to the zone-file line.
keygen_ok() {
    local name=$1 sel=$2 alg=$3 kind=$4 f=$KEYS/$D.$2.pem zl
    ctl dkim keygen -d "$D" -s "$sel" -a "$alg" -o "$KEYS"
    rc_is "$name: exit 0" 0
    e2e_is "$name: three lines of output" "$(wc -l <<<"$OUT")" 3
    e2e_like "$name: a comment line" "$(sed -n 1p <<<"$OUT")" "^; DKIM key $D, selector $sel: $kind"
    zl=$(sed -n 2p <<<"$OUT")
    if [ "$alg" = rsa ]; then
        e2e_like "$name: zone line in strings, in parentheses" "$zl" \
            "^$sel\\._domainkey\\.$D\\. IN TXT \\( \"v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+\"( \"[A-Za-z0-9+/=]+\")+ \\)\$"
    else
        e2e_like "$name: zone line, one string" "$zl" \
            "^$sel\\._domainkey\\.$D\\. IN TXT \"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=\"\$"
    fi
    e2e_check "$name: strings of at most 255 bytes" strings_ok "$zl"
    e2e_is "$name: config entry" "$(sed -n 3p <<<"$OUT")" \
        "dkim = { keys = ( { domain = \"$D\"; selector = \"$sel\"; key = \"$f\"; algorithm = \"$alg-sha256\"; } ); };"
    e2e_is "$name: file mode 0600" "$(stat -c %a "$f" 2>&1)" 600
    e2e_like "$name: PKCS#8 PEM" "$(head -n 1 "$f")" '^-----BEGIN PRIVATE KEY-----$'
    printf -v "ZONE_$sel" '%s' "$zl"
}

# --- keygen
keygen_ok "keygen rsa" rsa1 rsa "rsa 2048 bits, private key in $KEYS/$D.rsa1.pem"
keygen_ok "keygen ed25519" ed1 ed25519 "ed25519, private key in $KEYS/$D.ed1.pem"
e2e_like "keygen rsa: 2048 bits" "$(openssl pkey -in "$KEYS/$D.rsa1.pem" -noout -text 2>&1 | head -n 1)" '2048 bit'

sum=$(sha256sum <"$KEYS/$D.rsa1.pem")
ctl dkim keygen -d "$D" -s rsa1 -o "$KEYS"
rc_is "keygen again: exit 1" 1
e2e_like "keygen again: refuses to overwrite" "$ERR" "$KEYS/$D\\.rsa1\\.pem exists: not overwritten"
e2e_is "keygen again: key file unchanged" "$(sha256sum <"$KEYS/$D.rsa1.pem")" "$sum"
e2e_is "keygen again: nothing on stdout" "$OUT" ""

ctl dkim keygen -d "$D" -s rsa4k -b 4096 -o "$KEYS"
rc_is "keygen rsa 4096: exit 0" 0
e2e_check "keygen rsa 4096: strings of at most 255 bytes" strings_ok "$(sed -n 2p <<<"$OUT")"
e2e_is "keygen rsa 4096: three strings" "$(sed -n 2p <<<"$OUT" | grep -oE '"[^"]*"' | wc -l)" 3
ZONE_rsa4k=$(sed -n 2p <<<"$OUT")

ctl dkim keygen -d "bad domain" -s x -o "$KEYS"
rc_is "keygen bad domain: usage error" 2
ctl dkim keygen -d "$D" -s "a/b" -o "$KEYS"
rc_is "keygen bad selector: usage error" 2
ctl dkim keygen -d "$D" -s x -a dsa -o "$KEYS"
rc_is "keygen bad algorithm: usage error" 2
ctl dkim keygen -d "$D" -s x -b 512 -o "$KEYS"
rc_is "keygen 512 bits: usage error" 2
ctl dkim keygen -d "$D" -o "$KEYS"
rc_is "keygen without -s: usage error" 2
e2e_like "usage line" "$ERR" '^usage: portero-ctl'
ctl dkim keygen -d "$D" -s x -o "$E2E_DIR/nosuchdir"
rc_is "keygen into a missing directory: exit 1" 1

# another key, published under selector "other"
ctl dkim keygen -d "$D" -s other -o "$E2E_DIR/other"
rc_is "keygen another key: exit 0" 0
ZONE_other=$(sed -n 2p <<<"$OUT")

# --- the zone
{
    zone_of "$ZONE_rsa1"
    zone_of "$ZONE_ed1"
    zone_of "$ZONE_rsa4k"
    zone_of "$ZONE_other"
    echo "multi._domainkey.$D TXT google-site-verification=abc"
    zone_of "$ZONE_rsa1" | sed 's/^rsa1\./multi./'
    echo "revoked._domainkey.$D TXT v=DKIM1; k=rsa; p="
    echo "bad._domainkey.$D TXT v=DKIM1; k=dsa; p=AAAA"
    echo "fail._domainkey.$D SERVFAIL"
    echo "notdkim._domainkey.$D TXT v=spf1 -all"
} >"$E2E_DIR/zone"
e2e_like "the RSA record is served" "$(e2e_dns_query "rsa1._domainkey.$D" TXT)" 'v=DKIM1; k=rsa; p='

cat >"$E2E_DIR/portero.conf" <<CONF
dns = { mode = "forward"; forward = [ "127.0.0.1@$DNS_PORT" ]; timeout = "2s"; };
dkim = {
  keys = ( { domain = "$D"; selector = "rsa1"; key = "$KEYS/$D.rsa1.pem"; algorithm = "rsa-sha256"; },
           { domain = "$D"; selector = "ed1"; key = "$KEYS/$D.ed1.pem"; algorithm = "ed25519-sha256"; } );
};
CONF
C=$E2E_DIR/portero.conf

# --- check
ctl -c "$C" dkim check -d "$D" -s rsa1 -k "$KEYS/$D.rsa1.pem"
rc_is "check rsa -k: exit 0" 0
e2e_is "check rsa -k: match" "$OUT" "match: rsa1._domainkey.$D publishes the public key of $KEYS/$D.rsa1.pem (rsa 2048 bits)"
ctl -c "$C" dkim check -d "$D" -s rsa1
rc_is "check rsa, key from the config: exit 0" 0
e2e_like "check rsa, key from the config: match" "$OUT" "^match: rsa1\\._domainkey\\.$D publishes the public key of $KEYS/$D\\.rsa1\\.pem"
ctl -c "$C" dkim check -d "${D^^}" -s ED1
rc_is "check ed25519, key from the config (names in upper case): exit 0" 0
e2e_is "check ed25519: match" "$OUT" "match: ed1._domainkey.$D publishes the public key of $KEYS/$D.ed1.pem (ed25519)"
ctl -c "$C" dkim check -d "$D" -s rsa4k -k "$KEYS/$D.rsa4k.pem"
rc_is "check rsa 4096 (record in 3 strings): exit 0" 0
e2e_like "check rsa 4096: match" "$OUT" '^match: .*\(rsa 4096 bits\)$'
ctl -c "$C" dkim check -d "$D" -s multi -k "$KEYS/$D.rsa1.pem"
rc_is "check among several TXT records: exit 0" 0
e2e_like "check among several TXT records: match, 2 records" "$OUT" '^match: .*\(rsa 2048 bits; 2 TXT records\)$'

ctl -c "$C" dkim check -d "$D" -s other -k "$KEYS/$D.rsa1.pem"
rc_is "check another key: exit 1" 1
e2e_like "check another key: mismatch" "$OUT" "^mismatch: other\\._domainkey\\.$D publishes a different key"
ctl -c "$C" dkim check -d "$D" -s other -k "$KEYS/$D.ed1.pem"
rc_is "check an rsa record with an ed25519 key: exit 1" 1
e2e_like "check an rsa record with an ed25519 key: mismatch" "$OUT" '^mismatch: .*key of another type'
ctl -c "$C" dkim check -d "$D" -s nosuch -k "$KEYS/$D.rsa1.pem"
rc_is "check missing record: exit 1" 1
e2e_like "check missing record: no record" "$OUT" "^no record: nosuch\\._domainkey\\.$D"
ctl -c "$C" dkim check -d "$D" -s notdkim -k "$KEYS/$D.rsa1.pem"
rc_is "check a name with no DKIM record: exit 1" 1
e2e_like "check a name with no DKIM record: no record" "$OUT" '^no record: .*no DKIM key record'
ctl -c "$C" dkim check -d "$D" -s revoked -k "$KEYS/$D.rsa1.pem"
rc_is "check revoked: exit 1" 1
e2e_like "check revoked: revoked" "$OUT" "^revoked: revoked\\._domainkey\\.$D"
ctl -c "$C" dkim check -d "$D" -s bad -k "$KEYS/$D.rsa1.pem"
rc_is "check bad record: exit 1" 1
e2e_like "check bad record: error" "$OUT" '^error: .*bad DKIM key record: unsupported key type k=dsa'
ctl -c "$C" dkim check -d "$D" -s fail -k "$KEYS/$D.rsa1.pem"
rc_is "check SERVFAIL: exit 1" 1
e2e_like "check SERVFAIL: error" "$OUT" '^error: .*DNS servfail'
ctl -c "$C" dkim check -d "$D" -s nokey
rc_is "check, no key in the config: exit 1" 1
e2e_like "check, no key in the config: error" "$OUT" '^error: .*names no key for domain mail\.example selector nokey'
ctl -c "$C" dkim check -d "$D" -s rsa1 -k "$E2E_DIR/nosuch.pem"
rc_is "check missing key file: exit 1" 1
e2e_like "check missing key file: error" "$OUT" '^error: key file .*nosuch\.pem: No such file or directory'
ctl -c "$E2E_DIR/nosuch.conf" dkim check -d "$D" -s rsa1
rc_is "check without a config: exit 2" 2
ctl -c "$C" dkim check -d "$D"
rc_is "check without -s: usage error" 2

cp "$KEYS/$D.rsa1.pem" "$E2E_DIR/open.pem" && chmod 640 "$E2E_DIR/open.pem"
ctl -c "$C" dkim check -d "$D" -s rsa1 -k "$E2E_DIR/open.pem"
rc_is "check a key readable by the group: exit 1" 1
e2e_is "check a key readable by the group: error" "$OUT" \
    "error: key file $E2E_DIR/open.pem: is readable by group or others (mode 0640): chmod 600 it, or set dkim.allow_unsafe_keys"
sed 's/^dkim = {$/dkim = { allow_unsafe_keys = true;/' "$C" >"$E2E_DIR/unsafe.conf"
ctl -c "$E2E_DIR/unsafe.conf" dkim check -d "$D" -s rsa1 -k "$E2E_DIR/open.pem"
rc_is "same with dkim.allow_unsafe_keys: exit 0" 0
e2e_like "same with dkim.allow_unsafe_keys: match" "$OUT" '^match: '

# --- an independent signer and verifier (python3-dkim) with the keys
cat >"$E2E_DIR/signverify.py" <<'PY'
"""signverify.py PORT rsa|ed25519 KEYFILE SELECTOR DOMAIN: sign a message
with the key (python3-dkim), verify it with the key record from the DNS
test server on 127.0.0.1:PORT; prints and exits "pass" 0 / "fail" 1."""
import base64
import sys

import dkim
from dnslib import QTYPE, DNSRecord

port = int(sys.argv[1])
alg, keyfile, sel, dom = sys.argv[2:6]


def txt(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode("ascii")
    q = DNSRecord.question(name.rstrip("."), "TXT")
    r = DNSRecord.parse(q.send("127.0.0.1", port, tcp=False, timeout=timeout))
    if r.header.tc:
        r = DNSRecord.parse(q.send("127.0.0.1", port, tcp=True,
                                   timeout=timeout))
    for rr in r.rr:
        if rr.rtype == QTYPE.TXT:
            return b"".join(rr.rdata.data)
    return None


msg = (b"From: Alice <alice@" + dom.encode() + b">\r\n"
       b"To: bob@example.net\r\nSubject: t_85\r\n"
       b"Message-ID: <t85@" + dom.encode() + b">\r\n\r\nHello.\r\n")
pem = open(keyfile, "rb").read()
if alg == "rsa":
    key, sa = pem, b"rsa-sha256"
else:
    # python3-dkim wants the raw 32-byte seed, base64: the end of the
    # 48-byte PKCS#8 DER of an Ed25519 key
    body = b"".join(l for l in pem.splitlines() if not l.startswith(b"-----"))
    der = base64.b64decode(body)
    assert len(der) == 48 and der.startswith(
        bytes.fromhex("302e020100300506032b657004220420")), "not Ed25519"
    key, sa = base64.b64encode(der[16:]), b"ed25519-sha256"
sig = dkim.sign(msg, sel.encode(), dom.encode(), key, signature_algorithm=sa,
                include_headers=[b"from", b"to", b"subject"])
ok = dkim.verify(sig + msg, dnsfunc=txt)
print("pass" if ok else "fail")
sys.exit(0 if ok else 1)
PY
sv() {
    "$E2E_PY" "$E2E_DIR/signverify.py" "$DNS_PORT" "$@" 2>&1
}
e2e_is "python3-dkim verifies an rsa signature with the published key" \
    "$(sv rsa "$KEYS/$D.rsa1.pem" rsa1 "$D")" pass
e2e_is "python3-dkim verifies an ed25519 signature with the published key" \
    "$(sv ed25519 "$KEYS/$D.ed1.pem" ed1 "$D")" pass
e2e_is "python3-dkim verifies an rsa 4096 signature with the published key" \
    "$(sv rsa "$KEYS/$D.rsa4k.pem" rsa4k "$D")" pass
e2e_is "python3-dkim: a signature against another key's record fails" \
    "$(sv rsa "$KEYS/$D.rsa1.pem" other "$D")" fail

# --- no private key material on any output
e2e_nogrep "no private key on the output" 'PRIVATE KEY' "$E2E_DIR/ctl.all"
priv=$(sed -n 2p "$KEYS/$D.rsa1.pem")
e2e_check "no line of the key file on the output" bash -c "! grep -qF -- '$priv' '$E2E_DIR/ctl.all'"
if [ -z "$SAN_SEEN" ]; then
    e2e_ok "no sanitizer report"
else
    e2e_fail "no sanitizer report" "$SAN_SEEN"
fi
e2e_done
