#!/usr/bin/python3
"""Verify every DKIM-Signature of a message against the e2e DNS server.

    dkimverify.py --port N [--server 127.0.0.1] MESSAGE-FILE

The key records are asked of the DNS test server (dnsd.py) on loopback
only, with dnslib (UDP, then TCP when the answer is truncated); nothing
uses the system resolver.  python3-dkim checks one signature per call
(DKIM.verify(idx=...)), so each DKIM-Signature field is verified on its
own.  Prints one line per signature, in the order of the fields:

    sig IDX result=pass|fail d=D s=S a=A c=C l=none|VALUE h=a:b:c i=I|- [why=...]

then "count N".  Exit 0 when there is at least one signature and every
one verifies, 1 otherwise, 2 on a usage or DNS error.
"""
import argparse
import re
import socket
import sys

import dkim
from dnslib import QTYPE, DNSRecord

SERVER = "127.0.0.1"
PORT = 0
QUERIES = []


def txt_lookup(name, timeout=5):
    """dnsfunc for python3-dkim: the TXT record of name, or None."""
    if isinstance(name, bytes):
        name = name.decode("ascii")
    name = name.rstrip(".")
    QUERIES.append(name)
    q = DNSRecord.question(name, "TXT")
    data = q.send(SERVER, PORT, tcp=False, timeout=timeout)
    r = DNSRecord.parse(data)
    if r.header.tc:
        r = DNSRecord.parse(q.send(SERVER, PORT, tcp=True, timeout=timeout))
    for rr in r.rr:
        if rr.rtype == QTYPE.TXT:
            return b"".join(rr.rdata.data)
    return None


def sig_fields(msg):
    """The DKIM-Signature field values (unfolded), in message order."""
    head = re.split(rb"\r?\n\r?\n", msg, maxsplit=1)[0]
    fields = re.split(rb"\r?\n(?![ \t])", head)
    out = []
    for f in fields:
        m = re.match(rb"(?i)dkim-signature[ \t]*:(.*)", f, re.S)
        if m:
            out.append(re.sub(rb"\r?\n", b"", m.group(1)))
    return out


def tags(value):
    t = {}
    for part in value.split(b";"):
        if b"=" in part:
            k, v = part.split(b"=", 1)
            t[k.strip().decode()] = re.sub(rb"[ \t]", b"", v).decode()
    return t


def main():
    global SERVER, PORT
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("message")
    a = ap.parse_args()
    if not (a.server.startswith("127.") or a.server == "::1"):
        print("dkimverify: loopback servers only", file=sys.stderr)
        return 2
    SERVER, PORT = a.server, a.port
    with open(a.message, "rb") as f:
        msg = f.read()
    if b"\r\n" not in msg:
        msg = msg.replace(b"\n", b"\r\n")
    sigs = sig_fields(msg)
    ok = len(sigs) > 0
    for idx, value in enumerate(sigs):
        t = tags(value)
        why = ""
        try:
            d = dkim.DKIM(msg, minkey=1024)
            res = d.verify(idx=idx, dnsfunc=txt_lookup)
        except socket.timeout:
            print("dkimverify: DNS timeout", file=sys.stderr)
            return 2
        except Exception as e:  # a DKIMException or a parse error
            res = False
            why = "%s: %s" % (type(e).__name__, e)
        if not res and not why:
            why = "signature does not verify"
        ok = ok and bool(res)
        line = "sig %d result=%s d=%s s=%s a=%s c=%s l=%s h=%s i=%s" % (
            idx, "pass" if res else "fail", t.get("d", "-"),
            t.get("s", "-"), t.get("a", "-"), t.get("c", "simple/simple"),
            t.get("l", "none"), t.get("h", "-").lower(), t.get("i", "-"))
        if why:
            line += " why=%s" % why.replace("\n", " ")
        print(line)
    print("count %d" % len(sigs))
    print("queries %s" % ",".join(QUERIES))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
