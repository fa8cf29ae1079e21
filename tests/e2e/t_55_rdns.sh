#!/usr/bin/env bash
# t_55_rdns.sh -- reverse DNS scoring through Postfix, every answer from
# the DNS test server: a forward-confirmed name scores nothing; no PTR,
# a PTR that does not resolve back, and generic names (the address
# written into the name, or a keyword pattern) each score.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/portero.sh"
e2e_need_root
e2e_need postfix swaks
e2e_init
e2e_sink_start || e2e_bail "sink"
cat >"$E2E_DIR/zone" <<'ZONE'
7.2.0.192.in-addr.arpa PTR mail.example.org
mail.example.org A 192.0.2.7
8.2.0.192.in-addr.arpa PTR forged.example.org
forged.example.org A 192.0.2.99
9.2.0.192.in-addr.arpa PTR 192-0-2-9.static.example.net
192-0-2-9.static.example.net A 192.0.2.9
10.2.0.192.in-addr.arpa PTR host10.pool.example.net
host10.pool.example.net A 192.0.2.10
7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa PTR v6.example.org
v6.example.org AAAA 2001:db8::7
ZONE
e2e_dns_start "$E2E_DIR/zone" || e2e_bail "dns server"
pt_conf "
dns = { mode = \"forward\"; forward = [ \"127.0.0.1@$DNS_PORT\" ]; timeout = \"2s\"; };
rdns = { missing = 1.5; mismatch = 1.0; generic = 0.75; };
thresholds = { reject = 10.0; };"
pt_start || e2e_bail "portero did not start"
e2e_postfix_start "unix:$PT_SOCK" || e2e_bail "postfix did not start"
export E2E_QUIET=1

# expect_reason ADDR WHAT REASON: mail from ADDR (XCLIENT form) flows and
# logs REASON
expect_reason() {
    e2e_send $(pt_client "$1" mx.example.org mx.example.org) \
        --from a@example.org --to bob@corp.example
    local a=${1#IPV6:}
    e2e_like "$2: delivered" "$(e2e_reply_to DOT)" '^250 '
    pt_wait_log "\[$a\] .*verdict=accept"
    e2e_check "$2: $3" grep -qE "\[$a\] .*verdict=accept reason=\"$3\"" "$(pt_log)"
}
expect_reason 192.0.2.7 "forward-confirmed name" ''
expect_reason 192.0.2.8 "PTR not resolving back" 'rdns:mismatch=1\.0'
expect_reason 192.0.2.9 "address in the name" 'rdns:generic=0\.75'
expect_reason 192.0.2.10 "dynamic keyword" 'rdns:generic=0\.75'
expect_reason 192.0.2.11 "no PTR" 'rdns:missing=1\.5'
expect_reason IPV6:2001:db8::7 "IPv6 forward-confirmed" ''
e2e_check "IPv6 PTR asked in ip6.arpa" grep -q '^7\.0\.0\.0.*\.8\.b\.d\.0\.1\.0\.0\.2\.ip6\.arpa PTR' "$DNS_QUERY_LOG"

e2e_postfix_stop
pt_stop
pt_check_clean "no sanitizer report"
e2e_done
