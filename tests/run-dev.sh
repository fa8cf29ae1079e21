#!/bin/sh
# tests/run-dev.sh PORTERO - runs portero in the foreground from a checkout
# on conf/portero-dev.conf (inet socket on loopback, pidfile under build/).
set -e
cd "$(dirname "$0")/.."
mkdir -p build/run
"$1" -t -c conf/portero-dev.conf
cat <<'TXT'

portero is starting in the foreground (Ctrl-C stops it).  Add to Postfix's
main.cf (see conf/postfix-main.cf), then `postfix reload`:

    smtpd_milters = inet:127.0.0.1:8891
    non_smtpd_milters = $smtpd_milters
    milter_default_action = tempfail
    milter_protocol = 6
    milter_connect_macros = j {daemon_name} {daemon_addr} {daemon_port} v _

Metrics: curl http://127.0.0.1:9187/metrics
Try a message without Postfix:
    build/portero-ctl -c conf/portero-dev.conf test --client 192.0.2.1 \
        --helo mx.example.org --from a@example.org --rcpt b@example.com < some.eml

TXT
exec "$1" -f -c conf/portero-dev.conf
