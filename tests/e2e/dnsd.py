#!/usr/bin/python3
"""Authoritative DNS test server for portero end-to-end tests (python3-dnslib).

Run with /usr/bin/python3 (Debian's python3-dnslib). Listens on 127.0.0.1,
UDP and TCP, on the same port.

Zone file: one record per line, "#" or ";" starts a comment line:

    name [ttl] TYPE value

  TYPE    value
  A       192.0.2.1
  AAAA    2001:db8::1
  PTR     mx.example.test
  CNAME   target.example.test
  MX      10 mx.example.test          (preference optional, default 10)
  TXT     v=spf1 -all                 (rest of line is one string, split in
                                       255-byte chunks) or "s1" "s2" (quoted
                                       strings, one character-string each)
  SERVFAIL [QTYPE]   answer SERVFAIL for this name (only for QTYPE if given)
  TIMEOUT  [QTYPE]   never answer queries for this name (or only for QTYPE)
  DELAY MS [QTYPE]   answer queries for this name MS milliseconds late (only
                     for QTYPE if given), whatever the answer (records,
                     NODATA, NXDOMAIN, SERVFAIL)

Names are case-insensitive, a trailing dot is optional, "*.suffix" is a
wildcard for any name below suffix that has no records of its own. Unknown
names get NXDOMAIN; known names (or empty non-terminals) without records of
the asked type get NOERROR with no answer. CNAMEs are followed inside the zone.
The file is re-read whenever its mtime/size changes, so tests may append.

DELAY lines are kept apart from the records: they neither create a name nor
hide a wildcard, so "*.bl.example DELAY 50" alone delays the NXDOMAIN of
every name below bl.example. The delay of a query is that of the DELAY line
of the name asked (not of a CNAME target), else of the nearest "*.suffix"
DELAY line; TIMEOUT wins over DELAY. The delay counts from the query's
arrival (a UDP datagram's kernel receive timestamp, a TCP message's last
byte), so the time this server spends receiving, parsing and answering is
inside it, not added to it: a burst of queries gets its answers at the
times the zone says, like a set of remote servers with fixed round-trip
times (as long as the server keeps up: about 1 ms of work per query). A
delayed answer is sent from a timer thread of its own, so the server goes
on answering other queries (over TCP too: the answers of one connection
may then come out of order, as RFC 7766 allows). The query is logged when
it arrives.

Every query is logged to --query-log (if given) as "qname QTYPE udp|tcp".

Usage: dnsd.py --zone FILE [--port N] [--port-file FILE] [--query-log FILE]
"""

import argparse
import os
import shlex
import socket
import socketserver
import struct
import sys
import threading
import time

from dnslib import (AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A,
                    DNSRecord)

SUPPORTED = ("A", "AAAA", "PTR", "TXT", "MX", "CNAME")
SPECIAL = ("SERVFAIL", "TIMEOUT")
DELAY = "DELAY"
SO_TIMESTAMPNS = 35     # Linux <asm-generic/socket.h>, not in module socket


def norm(name):
    name = str(name).strip().lower()
    if name.endswith(".") and name != ".":
        name = name[:-1]
    return name


def txt_chunks(value):
    value = value.strip()
    if value.startswith('"'):
        parts = shlex.split(value, posix=True)
    else:
        parts = [value]
    out = []
    for p in parts:
        b = p.encode("utf-8")
        if not b:
            out.append(b"")
        while b:
            out.append(b[:255])
            b = b[255:]
    return out


class Zone:
    def __init__(self, path):
        self.path = path
        self.sig = None
        self.records = {}   # name -> list of (TYPE, ttl, rdata-or-arg)
        self.delays = {}    # name -> list of (seconds, QTYPE or None)
        self.lock = threading.Lock()
        self.maybe_reload()

    def maybe_reload(self):
        try:
            st = os.stat(self.path)
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            sig = None
        with self.lock:
            if sig == self.sig:
                return
            self.sig = sig
            self.records, self.delays = self.parse() if sig else ({}, {})

    def parse(self):
        recs = {}
        delays = {}
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.readlines()
        except OSError:
            return recs, delays
        for lineno, line in enumerate(lines, 1):
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            fields = s.split(None, 2)
            if len(fields) < 2:
                self.warn(lineno, "need at least: name TYPE")
                continue
            name = norm(fields[0])
            rest = s.split(None, 1)[1]
            ttl = 60
            f2 = rest.split(None, 1)
            if f2[0].isdigit():
                ttl = int(f2[0])
                rest = f2[1] if len(f2) > 1 else ""
                f2 = rest.split(None, 1)
            if not f2:
                self.warn(lineno, "missing TYPE")
                continue
            rtype = f2[0].upper()
            value = f2[1].strip() if len(f2) > 1 else ""
            if rtype == DELAY:
                p = value.split()
                try:
                    ms = float(p[0]) if p else -1.0
                except ValueError:
                    ms = -1.0
                if not 0 <= ms <= 600000 or len(p) > 2:
                    self.warn(lineno, "want: name DELAY MILLISECONDS "
                              "[QTYPE] (0..600000)")
                    continue
                delays.setdefault(name, []).append(
                    (ms / 1000.0, p[1].upper() if len(p) > 1 else None))
                continue
            try:
                if rtype in SPECIAL:
                    rd = value.upper() or None
                elif rtype == "A":
                    rd = A(value)
                elif rtype == "AAAA":
                    rd = AAAA(value)
                elif rtype == "PTR":
                    rd = PTR(value)
                elif rtype == "CNAME":
                    rd = CNAME(value)
                elif rtype == "MX":
                    p = value.split()
                    if len(p) == 1:
                        rd = MX(p[0], 10)
                    else:
                        rd = MX(p[1], int(p[0]))
                elif rtype == "TXT":
                    rd = TXT(txt_chunks(value))
                else:
                    self.warn(lineno, "unsupported type %s" % rtype)
                    continue
            except Exception as e:  # bad value
                self.warn(lineno, "bad value: %s" % e)
                continue
            recs.setdefault(name, []).append((rtype, ttl, rd))
        return recs, delays

    def warn(self, lineno, msg):
        sys.stderr.write("dnsd: %s:%d: %s\n" % (self.path, lineno, msg))
        sys.stderr.flush()

    def lookup(self, qname):
        """Records for qname (exact, else wildcard), and whether the name exists."""
        recs = self.records.get(qname)
        if recs is not None:
            return recs, True
        labels = qname.split(".")
        for i in range(1, len(labels)):
            w = "*." + ".".join(labels[i:])
            if w in self.records:
                return self.records[w], True
        suffix = "." + qname
        for n in self.records:
            if n.endswith(suffix):
                return [], True      # empty non-terminal
        return [], False

    def delay(self, qname, qtype):
        """Seconds to hold the answer to (qname, qtype): 0 if none."""
        with self.lock:
            if not self.delays:
                return 0.0
            name = norm(qname)
            cands = [name]
            labels = name.split(".")
            cands += ["*." + ".".join(labels[i:])
                      for i in range(1, len(labels))]
            for n in cands:
                lines = self.delays.get(n)
                if lines is None:
                    continue
                for secs, t in lines:
                    if t is None or t == qtype:
                        return secs
            return 0.0


def answer(zone, request):
    """Return reply DNSRecord, or None to stay silent."""
    zone.maybe_reload()
    reply = request.reply()          # sets qr, copies id/question, rd
    reply.header.aa = 1
    reply.header.ra = 0
    reply.header.ad = 0
    if not request.questions:
        reply.header.rcode = RCODE.FORMERR
        return reply
    q = request.q
    qtype = QTYPE.get(q.qtype)
    with zone.lock:
        name = norm(q.qname)
        seen = set()
        for _ in range(10):          # CNAME chain bound
            recs, exists = zone.lookup(name)
            for rtype, _ttl, arg in recs:
                if rtype in SPECIAL and (arg is None or arg == qtype):
                    if rtype == "TIMEOUT":
                        return None
                    reply.header.rcode = RCODE.SERVFAIL
                    return reply
            if not exists:
                if not reply.rr:
                    reply.header.rcode = RCODE.NXDOMAIN
                return reply
            cname = [r for r in recs if r[0] == "CNAME"]
            if cname and qtype != "CNAME":
                _t, ttl, rd = cname[0]
                reply.add_answer(RR(name, QTYPE.CNAME, rdata=rd, ttl=ttl))
                name = norm(rd.label)
                if name in seen:
                    return reply
                seen.add(name)
                continue
            for rtype, ttl, rd in recs:
                if rtype == qtype or (qtype == "ANY" and rtype in SUPPORTED):
                    owner = q.qname if norm(q.qname) == name else name
                    reply.add_answer(RR(owner, getattr(QTYPE, rtype),
                                        rdata=rd, ttl=ttl))
            return reply
    return reply


class Common:
    def log(self, request, proto):
        path = self.server.query_log
        if not path:
            return
        try:
            line = "%s %s %s\n" % (norm(request.q.qname),
                                   QTYPE.get(request.q.qtype), proto)
        except Exception:
            line = "? ? %s\n" % proto
        with self.server.log_lock:
            with open(path, "a") as f:
                f.write(line)

    def respond(self, data, proto):
        """The reply's bytes (None: stay silent) and its delay (seconds)."""
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return None, 0.0
        self.log(request, proto)
        reply = answer(self.server.zone, request)
        if reply is None:
            return None, 0.0
        delay = 0.0
        if request.questions:
            delay = self.server.zone.delay(request.q.qname,
                                           QTYPE.get(request.q.qtype))
        out = reply.pack()
        if proto == "udp":
            limit = 512
            for ar in request.ar:
                if ar.rtype == QTYPE.OPT:
                    limit = max(512, ar.rclass)
            if len(out) > limit:
                t = request.reply()
                t.header.aa = 1
                t.header.tc = 1
                out = t.pack()
        return out, delay

    @staticmethod
    def later(arrived, delay, send):
        """Run send() delay seconds after time.monotonic() was arrived:
        now if that time has passed, else from a timer thread."""
        if delay > 0:
            delay -= time.monotonic() - arrived
        if delay <= 0:
            send()
            return
        t = threading.Timer(delay, send)
        t.daemon = True
        t.start()


class UDPHandler(Common, socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request[:2]
        arrived = (self.request[2] if len(self.request) > 2
                   else time.monotonic())
        out, delay = self.respond(data, "udp")
        if out is None:
            return
        peer = self.client_address

        def send():
            try:
                sock.sendto(out, peer)
            except OSError:
                pass
        self.later(arrived, delay, send)


class TCPHandler(Common, socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(30)
        wlock = threading.Lock()    # whole messages, also from timers
        try:
            while True:
                hdr = self.recvn(sock, 2)
                if not hdr:
                    return
                (n,) = struct.unpack("!H", hdr)
                data = self.recvn(sock, n)
                if data is None:
                    return
                arrived = time.monotonic()
                out, delay = self.respond(data, "tcp")
                if out is None:
                    continue
                msg = struct.pack("!H", len(out)) + out
                if delay <= 0:
                    with wlock:
                        sock.sendall(msg)
                    continue

                def send(msg=msg):
                    try:
                        with wlock:
                            sock.sendall(msg)
                    except OSError:
                        pass         # the client closed meanwhile
                self.later(arrived, delay, send)
        except OSError:
            return

    @staticmethod
    def recvn(sock, n):
        buf = b""
        while len(buf) < n:
            c = sock.recv(n - len(buf))
            if not c:
                return None
            buf += c
        return buf


class UDPServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True

    kernel_stamps = False

    def server_activate(self):
        # Kernel receive timestamps (Linux): a burst of datagrams waits in
        # the socket while this loop starts one handler thread per
        # datagram (~1 ms each), and DELAY counts from the real arrival.
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.kernel_stamps = sys.platform.startswith("linux")
        except OSError:
            pass

    def get_request(self):
        # the request carries the datagram's arrival (time.monotonic())
        if not self.kernel_stamps:
            (data, sock), addr = super().get_request()
            return (data, sock, time.monotonic()), addr
        data, anc, _flags, addr = self.socket.recvmsg(self.max_packet_size,
                                                      64)
        arrived = time.monotonic()
        for level, ctype, cdata in anc:
            if (level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS and
                    len(cdata) == 16):
                sec, nsec = struct.unpack("@qq", cdata)
                age = time.time() - (sec + nsec / 1e9)
                arrived -= min(max(age, 0.0), 1.0)
        return (data, self.socket, arrived), addr


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def bind_pair(port):
    for _ in range(50):
        u = UDPServer(("127.0.0.1", port), UDPHandler)
        p = u.server_address[1]
        try:
            t = TCPServer(("127.0.0.1", p), TCPHandler)
            return u, t
        except OSError:
            u.server_close()
            if port:
                raise
    raise OSError("could not bind UDP+TCP on the same port")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zone", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--query-log")
    a = ap.parse_args()
    # Hand the interpreter lock over every 0.5 ms instead of 5 ms: a
    # thread parsing a query must not hold up the receipt of the next one
    # or a DELAY timer that is due.
    sys.setswitchinterval(0.0005)
    zone = Zone(a.zone)
    udp, tcp = bind_pair(a.port)
    log_lock = threading.Lock()
    for s in (udp, tcp):
        s.zone = zone
        s.query_log = a.query_log
        s.log_lock = log_lock
    port = udp.server_address[1]
    threading.Thread(target=tcp.serve_forever, kwargs={"poll_interval": 0.2},
                     daemon=True).start()
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    else:
        print(port, flush=True)
    try:
        udp.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
