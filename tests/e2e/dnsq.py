#!/usr/bin/python3
"""Query the e2e DNS test server: dnsq.py --port N [--tcp] NAME [TYPE].

Prints "status: RCODE" and then one zone-format line per answer record;
"status: TIMEOUT" (exit 2) if there is no reply within --timeout seconds.
Talks only to --server (default 127.0.0.1); never the system resolver.
"""
import argparse
import socket
import sys

from dnslib import QTYPE, RCODE, DNSRecord


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tcp", action="store_true")
    ap.add_argument("--udp", action="store_true")
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("name")
    ap.add_argument("qtype", nargs="?", default="A")
    a = ap.parse_args()
    if not (a.server.startswith("127.") or a.server == "::1"):
        sys.exit("dnsq: loopback servers only")
    q = DNSRecord.question(a.name, a.qtype.upper())
    try:
        data = q.send(a.server, a.port, tcp=a.tcp, timeout=a.timeout)
    except socket.timeout:
        print("status: TIMEOUT")
        return 2
    r = DNSRecord.parse(data)
    print("status: %s" % RCODE.get(r.header.rcode))
    for rr in r.rr:
        print(rr.toZone())
    return 0


if __name__ == "__main__":
    sys.exit(main())
